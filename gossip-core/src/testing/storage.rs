//! The conformance suite every [`Storage`] implementation must pass.
//!
//! It checks the trait's contract: records round-trip and `put_peer`
//! replaces them without touching the peer's keys; keys round-trip, are
//! overwritten, removed, cleared and listed sorted by key; `remove_peer`
//! removes the record and its keys; reads of unknown peers and keys return
//! `None` or nothing, and writes to unknown peers succeed; `live_peers`,
//! `dead_peers` and `with_status` filter by status and are sorted; readers on
//! four threads run alongside a writer of 1,000 peers and keys, after which
//! every write is visible; 1 MiB values round-trip byte for byte.
//!
//! [`run`] runs every check, each on a fresh storage, and panics naming the
//! check that failed. Each check is also public, to run one on its own.
//!
//! ```ignore
//! #[test]
//! fn my_storage_passes_the_conformance_suite() {
//!     gossip_core::testing::storage::run(MyStorage::new);
//! }
//! ```

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::{PeerId, PeerRecord, PeerStatus, Storage, Versioned};

type Check = fn(&dyn Storage);

/// Every check with its name, in the order [`run`] runs them.
const CHECKS: &[(&str, Check)] = &[
    ("peer_round_trip", check_peer_round_trip),
    ("put_peer_replaces", check_put_peer_replaces),
    ("put_peer_leaves_keys", check_put_peer_leaves_keys),
    ("keys_sorted", check_keys_sorted),
    ("put_key_overwrites", check_put_key_overwrites),
    ("remove_key", check_remove_key),
    ("clear_keys_keeps_record", check_clear_keys_keeps_record),
    ("remove_peer_removes_keys", check_remove_peer_removes_keys),
    ("unknown_peers", check_unknown_peers),
    ("status_filters", check_status_filters),
    (
        "concurrent_reads_and_writes",
        check_concurrent_reads_and_writes,
    ),
    ("large_values", check_large_values),
];

/// Runs every `check_*` function of this module, each on a fresh storage from `make`.
///
/// # Panics
///
/// If a check fails, with a message naming it.
pub fn run<S: Storage, F: FnMut() -> S>(mut make: F) {
    for (name, check) in CHECKS {
        let storage = make();
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| check(&storage))) {
            let reason = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panic!("storage conformance check `{name}` failed: {reason}");
        }
    }
}

fn record(id: &str, generation: u64, status: PeerStatus) -> PeerRecord {
    PeerRecord {
        id: id.into(),
        generation,
        addr: format!("{id}.example:7946"),
        status,
    }
}

fn value(value: impl Into<Bytes>, version: u64) -> Versioned {
    Versioned {
        value: value.into(),
        version,
    }
}

fn put_peer(s: &dyn Storage, r: PeerRecord) {
    s.put_peer(r).expect("put_peer failed");
}

fn put_key(s: &dyn Storage, peer: &PeerId, key: &str, v: Versioned) {
    s.put_key(peer, key, v).expect("put_key failed");
}

fn sorted(mut records: Vec<PeerRecord>) -> Vec<PeerRecord> {
    records.sort_by(|a, b| a.id.cmp(&b.id));
    records
}

/// `put_peer` then `peer` and `peers` return the record.
pub fn check_peer_round_trip(s: &dyn Storage) {
    let a = record("a", 1, PeerStatus::Live);
    let b = record("b", 7, PeerStatus::Dead);
    put_peer(s, a.clone());
    put_peer(s, b.clone());
    assert_eq!(s.peer(&a.id), Some(a.clone()), "peer(a) after put_peer");
    assert_eq!(s.peer(&b.id), Some(b.clone()), "peer(b) after put_peer");
    assert_eq!(sorted(s.peers()), vec![a, b], "peers() after two put_peer");
}

/// A second `put_peer` for the same id replaces the record.
pub fn check_put_peer_replaces(s: &dyn Storage) {
    put_peer(s, record("a", 1, PeerStatus::Live));
    let newer = PeerRecord {
        addr: "elsewhere:1".into(),
        ..record("a", 2, PeerStatus::Dead)
    };
    put_peer(s, newer.clone());
    assert_eq!(
        s.peer(&newer.id),
        Some(newer.clone()),
        "peer() after replacing put_peer"
    );
    assert_eq!(s.peers(), vec![newer], "peers() holds one record per id");
}

/// `put_peer` does not touch the peer's keys, whether set before or after.
pub fn check_put_peer_leaves_keys(s: &dyn Storage) {
    let id = PeerId::from("a");
    put_key(s, &id, "before", value("1", 1));
    put_peer(s, record("a", 1, PeerStatus::Live));
    put_key(s, &id, "after", value("2", 2));
    put_peer(s, record("a", 2, PeerStatus::Dead));
    assert_eq!(
        s.keys(&id),
        vec![
            ("after".into(), value("2", 2)),
            ("before".into(), value("1", 1))
        ],
        "keys() after put_peer"
    );
}

/// `put_key` then `get` returns the value; `keys` lists one peer's keys sorted.
pub fn check_keys_sorted(s: &dyn Storage) {
    let (a, b) = (PeerId::from("a"), PeerId::from("b"));
    put_peer(s, record("a", 1, PeerStatus::Live));
    for (i, key) in ["m", "z", "a", "k10", "k2"].into_iter().enumerate() {
        put_key(s, &a, key, value(key.to_owned(), i as u64));
    }
    put_key(s, &b, "b-only", value("x", 1));
    assert_eq!(s.get(&a, "z"), Some(value("z", 1)), "get() after put_key");
    let keys: Vec<String> = s.keys(&a).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        ["a", "k10", "k2", "m", "z"],
        "keys() sorted, this peer's only"
    );
    assert_eq!(s.get(&a, "b-only"), None, "keys are per peer");
}

/// A second `put_key` for the same key replaces value and version.
pub fn check_put_key_overwrites(s: &dyn Storage) {
    let id = PeerId::from("a");
    put_key(s, &id, "k", value("old", 1));
    put_key(s, &id, "k", value("new", 2));
    assert_eq!(
        s.get(&id, "k"),
        Some(value("new", 2)),
        "get() after overwrite"
    );
    assert_eq!(
        s.keys(&id),
        vec![("k".into(), value("new", 2))],
        "keys() after overwrite"
    );
}

/// `remove_key` removes that key only.
pub fn check_remove_key(s: &dyn Storage) {
    let id = PeerId::from("a");
    put_peer(s, record("a", 1, PeerStatus::Live));
    put_key(s, &id, "gone", value("1", 1));
    put_key(s, &id, "kept", value("2", 2));
    s.remove_key(&id, "gone").expect("remove_key failed");
    assert_eq!(s.get(&id, "gone"), None, "get() after remove_key");
    assert_eq!(
        s.keys(&id),
        vec![("kept".into(), value("2", 2))],
        "keys() after remove_key"
    );
    s.remove_key(&id, "gone")
        .expect("remove_key of a missing key failed");
    assert!(s.peer(&id).is_some(), "remove_key left the record");
}

/// `clear_keys` removes every key of that peer and keeps its record.
pub fn check_clear_keys_keeps_record(s: &dyn Storage) {
    let (a, b) = (PeerId::from("a"), PeerId::from("b"));
    let rec = record("a", 1, PeerStatus::Live);
    put_peer(s, rec.clone());
    put_key(s, &a, "x", value("1", 1));
    put_key(s, &a, "y", value("2", 2));
    put_key(s, &b, "x", value("3", 3));
    s.clear_keys(&a).expect("clear_keys failed");
    assert!(s.keys(&a).is_empty(), "keys() after clear_keys");
    assert_eq!(s.get(&a, "x"), None, "get() after clear_keys");
    assert_eq!(s.peer(&a), Some(rec), "clear_keys keeps the record");
    assert_eq!(
        s.get(&b, "x"),
        Some(value("3", 3)),
        "clear_keys touches one peer"
    );
}

/// `remove_peer` removes the record and all keys; a new record does not bring
/// them back.
pub fn check_remove_peer_removes_keys(s: &dyn Storage) {
    let (a, b) = (PeerId::from("a"), PeerId::from("b"));
    put_peer(s, record("a", 1, PeerStatus::Live));
    put_peer(s, record("b", 1, PeerStatus::Live));
    put_key(s, &a, "x", value("1", 1));
    put_key(s, &b, "x", value("2", 2));
    s.remove_peer(&a).expect("remove_peer failed");
    assert_eq!(s.peer(&a), None, "peer() after remove_peer");
    assert_eq!(s.get(&a, "x"), None, "get() after remove_peer");
    assert!(s.keys(&a).is_empty(), "keys() after remove_peer");
    assert_eq!(
        s.peers(),
        vec![record("b", 1, PeerStatus::Live)],
        "peers() after remove_peer"
    );
    assert_eq!(
        s.get(&b, "x"),
        Some(value("2", 2)),
        "remove_peer touches one peer"
    );

    put_peer(s, record("a", 2, PeerStatus::Live));
    assert!(s.keys(&a).is_empty(), "keys came back with a new record");

    // A peer known only by its keys.
    let c = PeerId::from("c");
    put_key(s, &c, "x", value("3", 3));
    s.remove_peer(&c)
        .expect("remove_peer of a keys-only peer failed");
    assert!(
        s.keys(&c).is_empty(),
        "remove_peer of a keys-only peer left keys"
    );
}

/// Reads of unknown peers and keys find nothing; writes to them succeed.
pub fn check_unknown_peers(s: &dyn Storage) {
    let id = PeerId::from("nobody");
    assert_eq!(s.peer(&id), None, "peer() of an unknown peer");
    assert_eq!(s.get(&id, "k"), None, "get() of an unknown peer");
    assert!(s.keys(&id).is_empty(), "keys() of an unknown peer");
    assert!(s.peers().is_empty(), "peers() of an empty storage");
    assert!(
        s.live_peers().is_empty() && s.dead_peers().is_empty(),
        "status lists of an empty storage"
    );
    s.remove_peer(&id)
        .expect("remove_peer of an unknown peer failed");
    s.remove_key(&id, "k")
        .expect("remove_key of an unknown peer failed");
    s.clear_keys(&id)
        .expect("clear_keys of an unknown peer failed");

    put_key(s, &id, "k", value("v", 1));
    assert_eq!(
        s.get(&id, "k"),
        Some(value("v", 1)),
        "put_key before any record"
    );
    assert_eq!(s.get(&id, "other"), None, "get() of an unknown key");
    assert_eq!(s.peer(&id), None, "put_key created a record");
    assert!(
        s.peers().is_empty(),
        "peers() lists a peer without a record"
    );
    put_peer(s, record("nobody", 1, PeerStatus::Live));
    assert_eq!(
        s.get(&id, "k"),
        Some(value("v", 1)),
        "a key set before the record was lost"
    );
}

/// `live_peers`, `dead_peers` and `with_status` filter by status, sorted, and
/// follow status changes.
pub fn check_status_filters(s: &dyn Storage) {
    let ids = |names: &[&str]| names.iter().map(|&n| PeerId::from(n)).collect::<Vec<_>>();
    for (name, status) in [
        ("e", PeerStatus::Live),
        ("b", PeerStatus::Dead),
        ("a", PeerStatus::Live),
        ("d", PeerStatus::Left),
        ("c", PeerStatus::Live),
        ("f", PeerStatus::Dead),
    ] {
        put_peer(s, record(name, 1, status));
    }
    assert_eq!(s.live_peers(), ids(&["a", "c", "e"]), "live_peers()");
    assert_eq!(s.dead_peers(), ids(&["b", "f"]), "dead_peers()");
    assert_eq!(
        s.with_status(PeerStatus::Live),
        ids(&["a", "c", "e"]),
        "with_status(Live)"
    );
    assert_eq!(
        s.with_status(PeerStatus::Dead),
        ids(&["b", "f"]),
        "with_status(Dead)"
    );
    assert_eq!(
        s.with_status(PeerStatus::Left),
        ids(&["d"]),
        "with_status(Left)"
    );

    put_peer(s, record("a", 2, PeerStatus::Dead));
    s.remove_peer(&"f".into()).expect("remove_peer failed");
    assert_eq!(
        s.live_peers(),
        ids(&["c", "e"]),
        "live_peers() after a status change"
    );
    assert_eq!(
        s.dead_peers(),
        ids(&["a", "b"]),
        "dead_peers() after a status change"
    );
}

/// Four threads read while one writes 1,000 peers and keys; readers only see
/// well-formed data, and afterwards every write is visible.
pub fn check_concurrent_reads_and_writes(s: &dyn Storage) {
    const N: u64 = 1_000;
    let name = |i: u64| format!("peer-{i:04}");
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                // Read the flag first so at least one full pass follows the last write.
                let finished = done.load(Ordering::Acquire);
                for r in s.peers() {
                    assert_eq!(r, record(r.id.as_str(), 1, PeerStatus::Live), "torn record");
                }
                let live = s.live_peers();
                assert!(
                    live.windows(2).all(|w| w[0] < w[1]),
                    "live_peers() not sorted"
                );
                for id in live.iter().step_by(37) {
                    if let Some(v) = s.get(id, "n") {
                        assert_eq!(v.value, Bytes::from(id.to_string()), "torn value");
                    }
                }
                if finished {
                    break;
                }
            });
        }
        scope.spawn(|| {
            for i in 0..N {
                let id = PeerId::from(name(i));
                put_peer(s, record(id.as_str(), 1, PeerStatus::Live));
                put_key(s, &id, "n", value(id.to_string(), i));
            }
            done.store(true, Ordering::Release);
        });
    });
    assert_eq!(
        s.peers().len(),
        N as usize,
        "peers() after the writer finished"
    );
    let live = s.live_peers();
    assert_eq!(
        live,
        (0..N).map(|i| PeerId::from(name(i))).collect::<Vec<_>>(),
        "live_peers()"
    );
    for (i, id) in live.iter().enumerate() {
        assert_eq!(
            s.get(id, "n"),
            Some(value(id.to_string(), i as u64)),
            "get({id}, n)"
        );
    }
}

/// 1 MiB values round-trip byte for byte through `get` and `keys`.
pub fn check_large_values(s: &dyn Storage) {
    let id = PeerId::from("a");
    let big = Bytes::from(
        (0..1 << 20)
            .map(|i: u32| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    put_peer(s, record("a", 1, PeerStatus::Live));
    put_key(s, &id, "big", value(big.clone(), 1));
    let got = s
        .get(&id, "big")
        .expect("get() of a 1 MiB value returned None");
    assert!(
        got.value == big,
        "1 MiB value changed through get() (len {})",
        got.value.len()
    );
    let keys = s.keys(&id);
    assert!(
        keys.len() == 1 && keys[0].1.value == big,
        "1 MiB value changed through keys()"
    );
}
