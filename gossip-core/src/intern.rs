//! Process-wide interning of peer ids, key names and addresses.
//!
//! Every node holds an entry for every peer, keyed by the peer's id and
//! naming its address; decoded from frames, each would be an allocation of
//! its own in every node that holds it. Several engines in one process (the
//! simulator, a test cluster, a process that runs many nodes) share one
//! copy instead: a table of weak references, so a name no engine holds any
//! longer is freed and its slot purged when the table has doubled since the
//! last purge. A peer's keys' names are interned when they enter a table; a
//! delta's id and address as the frame is decoded (`Validator::id_bytes`,
//! `Validator::shared_addr`), so a new peer's cost no allocation and a known
//! peer's compare by pointer. A digest entry's id is not interned: it is
//! read and dropped, and an allocation of its own costs less than the
//! shared table's lock and the id's shared count (`Validator::plain_id`).

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use foldhash::fast::RandomState;
use hashbrown::HashTable;

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
    names: HashTable<(Box<str>, W)>,
    /// Size after the last purge: the next purge comes at twice it.
    purged_at: usize,
}

impl<W> Table<W> {
    fn new() -> Self {
        Table {
            names: HashTable::new(),
            purged_at: 0,
        }
    }
}

type Shards<W> = OnceLock<Box<[Mutex<Table<W>>]>>;

static NAMES: Shards<Weak<str>> = OnceLock::new();
static ADDRS: Shards<Weak<String>> = OnceLock::new();
static IDS: Shards<WeakPeerId> = OnceLock::new();

/// The tables' hasher, seeded once per process (a table's layout is not
/// predictable from outside it).
static SEED: OnceLock<RandomState> = OnceLock::new();

fn hash(bytes: &[u8]) -> u64 {
    SEED.get_or_init(RandomState::default).hash_one(bytes)
}

/// The shared copy of the string `bytes` in `table`, made by `make` if none
/// is held (`weak` makes the table's reference to it), from the string
/// `text` reads from the bytes (or its error). One hash picks the shard and
/// the slot, and bytes equal to a held name are not read as text.
fn shared<'b, W: Weakly, E>(
    table: &Shards<W>,
    bytes: &'b [u8],
    text: impl FnOnce(&'b [u8]) -> Result<&'b str, E>,
    make: impl FnOnce(&str) -> W::Strong,
    weak: fn(&W::Strong) -> W,
) -> Result<W::Strong, E> {
    let shards = table.get_or_init(|| (0..SHARDS).map(|_| Mutex::new(Table::new())).collect());
    let h = hash(bytes);
    // The shard from bits the slot (the low ones) and the tag (the top
    // seven) do not use.
    let shard = (h >> 32) as usize % SHARDS;
    // A poisoned lock only means another thread panicked while holding it;
    // the table is still a valid cache.
    let mut t = shards[shard].lock().unwrap_or_else(|e| e.into_inner());
    let eq = |(k, _): &(Box<str>, W)| k.as_bytes() == bytes;
    if let Some(strong) = t.names.find(h, eq).and_then(|(_, w)| w.upgrade()) {
        return Ok(strong);
    }
    let s = text(bytes)?;
    if t.names.len() >= 2 * t.purged_at.max(512) {
        t.names.retain(|(_, w)| w.is_held());
        t.purged_at = t.names.len();
    }
    let strong = make(s);
    match t.names.find_mut(h, eq) {
        // A name no engine held any longer, not yet purged.
        Some((_, w)) => *w = weak(&strong),
        None => {
            t.names
                .insert_unique(h, (s.into(), weak(&strong)), |(k, _)| hash(k.as_bytes()));
        }
    }
    Ok(strong)
}

/// The shared copy of `s` in `table` ([`shared`] of a string's bytes).
fn shared_str<W: Weakly>(
    table: &Shards<W>,
    s: &str,
    make: impl FnOnce(&str) -> W::Strong,
    weak: fn(&W::Strong) -> W,
) -> W::Strong {
    let Ok(strong) = shared(
        table,
        s.as_bytes(),
        |_| Ok::<_, std::convert::Infallible>(s),
        make,
        weak,
    );
    strong
}

/// The shared copy of `s`: a key name, or an address used as a map key.
pub(crate) fn name(s: &str) -> Arc<str> {
    shared_str(&NAMES, s, |s| Arc::from(s), Arc::downgrade)
}

/// The shared copy of address `s`: a thin pointer (8 bytes where an
/// `Arc<str>` is 16), since every node holds one per peer.
pub(crate) fn addr(s: &str) -> Arc<String> {
    shared_str(&ADDRS, s, |s| Arc::new(s.to_owned()), Arc::downgrade)
}

/// The shared copy of `id`.
pub(crate) fn id(id: &PeerId) -> PeerId {
    shared_str(&IDS, id.as_str(), |_| id.clone(), PeerId::downgrade)
}

/// The shared copy of the id whose bytes are `bytes`, made if none is held
/// (an error if none is and they are not UTF-8).
pub(crate) fn id_bytes(bytes: &[u8]) -> Result<PeerId, std::str::Utf8Error> {
    shared(
        &IDS,
        bytes,
        std::str::from_utf8,
        |s| PeerId::from(s),
        PeerId::downgrade,
    )
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
        let r = id_bytes(b"intern-test-a").expect("UTF-8");
        assert!(p.ptr_eq(&r), "an id from a frame's bytes is the held one");
        assert!(id_bytes(b"intern-test-\xff").is_err(), "not UTF-8");
        assert!(id_bytes(b"\xc3").is_err(), "a cut character");
    }
}
