//! Process-wide interning of peer ids, key names and addresses.
//!
//! Every node holds an entry for every peer, keyed by the peer's id and
//! naming its address; decoded from frames, each would be an allocation of
//! its own in every node that holds it. Several engines in one process (the
//! simulator, a test cluster, a process that runs many nodes) share one
//! copy instead: a table of weak references, so a name no engine holds any
//! longer is freed and its slot purged when the table has doubled since the
//! last purge. Interning happens when a peer enters a table, not per frame.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use foldhash::fast::{FixedState, RandomState};

use crate::PeerId;

/// Shards per table: the simulator's threads intern at once.
const SHARDS: usize = 16;

struct Table<T: ?Sized> {
    names: HashMap<Box<str>, Weak<T>, RandomState>,
    /// Size after the last purge: the next purge comes at twice it.
    purged_at: usize,
}

impl<T: ?Sized> Table<T> {
    fn new() -> Self {
        Table {
            names: HashMap::default(),
            purged_at: 0,
        }
    }
}

type Shards<T> = OnceLock<Box<[Mutex<Table<T>>]>>;

static NAMES: Shards<str> = OnceLock::new();
static ADDRS: Shards<String> = OnceLock::new();

/// The shared copy of `s` in `table`, made by `make` if none is held.
fn shared<T: ?Sized>(table: &Shards<T>, s: &str, make: fn(&str) -> Arc<T>) -> Arc<T> {
    let shards = table.get_or_init(|| (0..SHARDS).map(|_| Mutex::new(Table::new())).collect());
    // The shard is chosen by a fixed hash; each shard's map has a seed of
    // its own.
    let shard = FixedState::with_seed(0x9e37_79b9).hash_one(s) as usize % SHARDS;
    // A poisoned lock only means another thread panicked while holding it;
    // the table is still a valid cache.
    let mut t = shards[shard].lock().unwrap_or_else(|e| e.into_inner());
    if let Some(arc) = t.names.get(s).and_then(Weak::upgrade) {
        return arc;
    }
    if t.names.len() >= 2 * t.purged_at.max(512) {
        t.names.retain(|_, w| w.strong_count() > 0);
        t.purged_at = t.names.len();
    }
    let arc = make(s);
    t.names.insert(s.into(), Arc::downgrade(&arc));
    arc
}

/// The shared copy of `s`: a peer id, a key name, or an address used as a
/// map key.
pub(crate) fn name(s: &str) -> Arc<str> {
    shared(&NAMES, s, |s| Arc::from(s))
}

/// The shared copy of address `s`: a thin pointer (8 bytes where an
/// `Arc<str>` is 16), since every node holds one per peer.
pub(crate) fn addr(s: &str) -> Arc<String> {
    shared(&ADDRS, s, |s| Arc::new(s.to_owned()))
}

/// The shared copy of `id`.
pub(crate) fn id(id: &PeerId) -> PeerId {
    PeerId::from(name(id.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_while_held_and_freed_after() {
        let a = name("intern-test-a");
        let b = name("intern-test-a");
        assert!(Arc::ptr_eq(&a, &b));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none(), "no engine holds it: freed");
        let c = name("intern-test-a");
        assert_eq!(&*c, "intern-test-a");
        let p = id(&PeerId::from("intern-test-a"));
        assert!(Arc::ptr_eq(p.as_arc(), &c));
    }
}
