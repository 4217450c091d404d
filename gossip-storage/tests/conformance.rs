//! `MemoryStorage` and `RedbStorage` against the shared `Storage` conformance suite.

use std::cell::RefCell;

use gossip_storage::{MemoryStorage, RedbStorage};

#[test]
fn memory_storage_passes_the_conformance_suite() {
    gossip_core::testing::storage::run(MemoryStorage::new);
}

#[test]
fn redb_storage_passes_the_conformance_suite() {
    let dirs = RefCell::new(Vec::new());
    gossip_core::testing::storage::run(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = RedbStorage::open(dir.path()).expect("open");
        dirs.borrow_mut().push(dir);
        s
    });
}

/// The suite again, each check's writes then read back from a reopened store.
#[test]
fn redb_storage_passes_the_conformance_suite_across_a_reopen() {
    use gossip_core::testing::storage as suite;
    use gossip_storage::Storage;
    // Each check writes and reads; run it, reopen, and compare everything
    // the first store held with what the reopened one holds.
    let checks: &[fn(&dyn Storage)] = &[
        suite::check_peer_round_trip,
        suite::check_put_peer_replaces,
        suite::check_put_peer_leaves_keys,
        suite::check_keys_sorted,
        suite::check_put_key_overwrites,
        suite::check_remove_key,
        suite::check_clear_keys_keeps_record,
        suite::check_remove_peer_removes_keys,
        suite::check_status_filters,
        suite::check_large_values,
    ];
    for check in checks {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = RedbStorage::open(dir.path()).expect("open");
        check(&s);
        s.flush().expect("flush");
        let mut before = s.peers();
        before.sort_by(|a, b| a.id.cmp(&b.id));
        let keys: Vec<_> = before.iter().map(|r| s.keys(&r.id)).collect();
        drop(s);
        let again = RedbStorage::open(dir.path()).expect("reopen");
        let mut after = again.peers();
        after.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(before, after);
        let keys_after: Vec<_> = after.iter().map(|r| again.keys(&r.id)).collect();
        assert_eq!(keys, keys_after);
    }
}
