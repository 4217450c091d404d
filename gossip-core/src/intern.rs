//! Process-wide interning of peer ids, key names and addresses.
//!
//! Every node holds an entry for every peer, keyed by the peer's id and
//! naming its address; decoded from frames, each would be an allocation of
//! its own in every node that holds it. Several engines in one process (the
//! simulator, a test cluster, a process that runs many nodes) share one
//! copy instead: a table of weak references, so a name no engine holds any
//! longer is freed and its slot purged when the table has doubled since the
//! last purge. A peer's address and its keys' names are interned when they
//! enter a table; a peer id as a frame is decoded (`Validator::id`), so the
//! ids a digest or a delta names are the table's own: a lookup compares them
//! by pointer, and an id the table takes costs no allocation.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use foldhash::fast::{FixedState, RandomState};

use crate::PeerId;
use gossip_storage::WeakPeerId;

/// Shards per table: the simulator's threads intern at once.
const SHARDS: usize = 16;

/// A weak reference an intern table holds: it does not keep its name alive.
trait Weakly {
    /// What it is a weak reference to.
    type Strong;
    fn upgrade(&self) -> Option<Self::Strong>;
    fn is_held(&self) -> bool;
}

impl<T: ?Sized> Weakly for Weak<T> {
    type Strong = Arc<T>;
    fn upgrade(&self) -> Option<Arc<T>> {
        Weak::upgrade(self)
    }
    fn is_held(&self) -> bool {
        self.strong_count() > 0
    }
}

impl Weakly for WeakPeerId {
    type Strong = PeerId;
    fn upgrade(&self) -> Option<PeerId> {
        WeakPeerId::upgrade(self)
    }
    fn is_held(&self) -> bool {
        WeakPeerId::is_held(self)
    }
}

struct Table<W> {
    names: HashMap<Box<str>, W, RandomState>,
    /// Size after the last purge: the next purge comes at twice it.
    purged_at: usize,
}

impl<W> Table<W> {
    fn new() -> Self {
        Table {
            names: HashMap::default(),
            purged_at: 0,
        }
    }
}

type Shards<W> = OnceLock<Box<[Mutex<Table<W>>]>>;

static NAMES: Shards<Weak<str>> = OnceLock::new();
static ADDRS: Shards<Weak<String>> = OnceLock::new();
static IDS: Shards<WeakPeerId> = OnceLock::new();

/// The shared copy of `s` in `table`, made by `make` if none is held
/// (`weak` makes the table's reference to it).
fn shared<W: Weakly>(
    table: &Shards<W>,
    s: &str,
    make: impl FnOnce(&str) -> W::Strong,
    weak: fn(&W::Strong) -> W,
) -> W::Strong {
    let shards = table.get_or_init(|| (0..SHARDS).map(|_| Mutex::new(Table::new())).collect());
    // The shard is chosen by a fixed hash; each shard's map has a seed of
    // its own.
    let shard = FixedState::with_seed(0x9e37_79b9).hash_one(s) as usize % SHARDS;
    // A poisoned lock only means another thread panicked while holding it;
    // the table is still a valid cache.
    let mut t = shards[shard].lock().unwrap_or_else(|e| e.into_inner());
    if let Some(strong) = t.names.get(s).and_then(W::upgrade) {
        return strong;
    }
    if t.names.len() >= 2 * t.purged_at.max(512) {
        t.names.retain(|_, w| w.is_held());
        t.purged_at = t.names.len();
    }
    let strong = make(s);
    t.names.insert(s.into(), weak(&strong));
    strong
}

/// The shared copy of `s`: a key name, or an address used as a map key.
pub(crate) fn name(s: &str) -> Arc<str> {
    shared(&NAMES, s, |s| Arc::from(s), Arc::downgrade)
}

/// The shared copy of address `s`: a thin pointer (8 bytes where an
/// `Arc<str>` is 16), since every node holds one per peer.
pub(crate) fn addr(s: &str) -> Arc<String> {
    shared(&ADDRS, s, |s| Arc::new(s.to_owned()), Arc::downgrade)
}

/// The shared copy of `id`.
pub(crate) fn id(id: &PeerId) -> PeerId {
    shared(&IDS, id.as_str(), |_| id.clone(), PeerId::downgrade)
}

/// The shared copy of the id `s`, made if none is held.
pub(crate) fn id_str(s: &str) -> PeerId {
    shared(&IDS, s, |s| PeerId::from(s), PeerId::downgrade)
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
        let q = id(&PeerId::from("intern-test-a"));
        assert!(p.ptr_eq(&q), "one copy of an id while held");
    }
}
