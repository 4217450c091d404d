use std::time::Duration;

use bytes::Bytes;

use super::*;

fn record(id: &str, generation: u64, status: PeerStatus) -> PeerRecord {
    PeerRecord {
        id: id.into(),
        generation,
        addr: format!("{id}.example:7946"),
        status,
    }
}

fn value(v: &'static str, version: u64) -> Versioned {
    Versioned {
        value: Bytes::from_static(v.as_bytes()),
        version,
    }
}

fn ids(records: &[PeerRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn the_mirror_and_the_book_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStorage::open(dir.path()).unwrap();
    s.put_peer(record("a", 7, PeerStatus::Live)).unwrap();
    s.put_peer(record("b", 3, PeerStatus::Dead)).unwrap();
    s.put_key(&"a".into(), "role", value("db", 1)).unwrap();
    s.put_key(&"a".into(), "zone", value("eu", 2)).unwrap();
    s.remove_key(&"a".into(), "zone").unwrap();
    s.flush().unwrap();
    assert!(s.writer_stats().commits >= 1);
    drop(s);

    let s = RedbStorage::open(dir.path()).unwrap();
    assert_eq!(s.peer(&"a".into()), Some(record("a", 7, PeerStatus::Live)));
    assert_eq!(s.peer(&"b".into()), Some(record("b", 3, PeerStatus::Dead)));
    assert_eq!(
        s.keys(&"a".into()),
        vec![("role".to_string(), value("db", 1))]
    );
    // b was never seen live by this store: not in the book.
    assert_eq!(ids(&s.book()), vec!["a"]);
}

#[test]
fn dropping_the_last_clone_commits_what_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStorage::open(dir.path()).unwrap();
    let c = s.clone();
    for i in 0..100 {
        c.put_peer(record(&format!("p{i:03}"), 1, PeerStatus::Live))
            .unwrap();
    }
    drop(c);
    drop(s);
    let s = RedbStorage::open(dir.path()).unwrap();
    assert_eq!(s.peers().len(), 100);
    assert_eq!(s.book().len(), 100);
}

#[test]
fn the_book_outlives_the_mirror_and_forgets_peers_that_left() {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStorage::open(dir.path()).unwrap();
    s.put_peer(record("a", 1, PeerStatus::Live)).unwrap();
    s.put_peer(record("b", 1, PeerStatus::Live)).unwrap();
    s.put_peer(record("c", 1, PeerStatus::Live)).unwrap();
    s.flush().unwrap();
    // What a starting engine does to the mirror, and a crash detection.
    s.remove_peer(&"a".into()).unwrap();
    s.put_peer(record("b", 1, PeerStatus::Dead)).unwrap();
    s.put_peer(record("c", 1, PeerStatus::Left)).unwrap();
    s.flush().unwrap();
    assert_eq!(s.peer(&"a".into()), None);
    let book = s.book();
    assert_eq!(ids(&book), vec!["a", "b"]);
    assert_eq!(book[1].status, PeerStatus::Dead);
    drop(s);
    let s = RedbStorage::open(dir.path()).unwrap();
    assert_eq!(ids(&s.book()), vec!["a", "b"]);
    assert_eq!(s.peer(&"a".into()), None);
}

#[test]
fn the_book_keeps_at_most_max_book_entries() {
    let dir = tempfile::tempdir().unwrap();
    let config = RedbConfig {
        max_book_entries: 3,
        ..RedbConfig::default()
    };
    let s = RedbStorage::open_with(dir.path(), config.clone()).unwrap();
    for i in 0..10 {
        s.put_peer(record(&format!("p{i}"), 1, PeerStatus::Live))
            .unwrap();
        // One commit per peer, so each has its own, later stamp.
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(ids(&s.book()), vec!["p7", "p8", "p9"]);
    drop(s);
    let s = RedbStorage::open_with(dir.path(), config).unwrap();
    assert_eq!(ids(&s.book()), vec!["p7", "p8", "p9"]);
}

#[test]
fn book_entries_past_the_ttl_are_forgotten_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStorage::open(dir.path()).unwrap();
    s.put_peer(record("a", 1, PeerStatus::Live)).unwrap();
    s.flush().unwrap();
    drop(s);
    std::thread::sleep(Duration::from_millis(30));
    let config = RedbConfig {
        book_ttl: Duration::from_millis(10),
        ..RedbConfig::default()
    };
    let s = RedbStorage::open_with(dir.path(), config).unwrap();
    assert!(s.book().is_empty());
    drop(s);
    // And the file forgot it too.
    let s = RedbStorage::open(dir.path()).unwrap();
    assert!(s.book().is_empty());
}

#[test]
fn many_key_changes_collapse_into_one_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let config = RedbConfig {
        max_dirty_keys: 4,
        ..RedbConfig::default()
    };
    let s = RedbStorage::open_with(dir.path(), config).unwrap();
    let id = PeerId::from("a");
    for i in 0..50u64 {
        s.put_key(&id, &format!("k{i:02}"), value("v", i + 1))
            .unwrap();
    }
    for i in 0..25 {
        s.remove_key(&id, &format!("k{i:02}")).unwrap();
    }
    s.flush().unwrap();
    drop(s);
    let s = RedbStorage::open(dir.path()).unwrap();
    let keys: Vec<String> = s.keys(&id).into_iter().map(|(k, _)| k).collect();
    let want: Vec<String> = (25..50).map(|i| format!("k{i:02}")).collect();
    assert_eq!(keys, want);
}

#[test]
fn clear_keys_leaves_other_peers_keys_alone_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStorage::open(dir.path()).unwrap();
    for p in ["a", "ab", "b"] {
        s.put_key(&p.into(), "k", value("v", 1)).unwrap();
    }
    s.flush().unwrap();
    s.clear_keys(&"a".into()).unwrap();
    s.flush().unwrap();
    drop(s);
    let s = RedbStorage::open(dir.path()).unwrap();
    assert!(s.keys(&"a".into()).is_empty());
    assert_eq!(s.keys(&"ab".into()).len(), 1);
    assert_eq!(s.keys(&"b".into()).len(), 1);
}

#[test]
fn a_missing_book_is_an_error_when_creating_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = RedbConfig {
        create: false,
        ..RedbConfig::default()
    };
    let gone = dir.path().join("nope");
    let e = RedbStorage::open_with(&gone, config.clone()).unwrap_err();
    assert!(
        matches!(e, OpenError::Missing { ref path } if *path == gone),
        "{e}"
    );
    let e = RedbStorage::open_with(dir.path(), config).unwrap_err();
    assert!(
        matches!(e, OpenError::Missing { ref path } if *path == dir.path().join(DB_FILE)),
        "{e}"
    );
}

#[test]
fn a_file_where_the_directory_should_be_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let e = RedbStorage::open(&file).unwrap_err();
    assert!(matches!(e, OpenError::NotADirectory { .. }), "{e}");
}

#[test]
fn garbage_and_truncated_files_are_corrupt() {
    for bytes in [vec![], b"not a database".to_vec(), vec![0xAB; 64 * 1024]] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), &bytes).unwrap();
        let e = RedbStorage::open(dir.path()).unwrap_err();
        assert!(
            matches!(e, OpenError::Corrupt { .. }),
            "{} bytes: {e:?}",
            bytes.len()
        );
        assert!(e.to_string().contains("corrupt"), "{e}");
    }
}

#[test]
fn a_damaged_book_is_refused_or_recovered_never_a_panic() {
    // Overwrite a run of bytes in the middle of a real book: redb either
    // detects it (Corrupt) or the damaged page was not in use; either way
    // opening returns, and what opens passes the integrity check.
    let dir = tempfile::tempdir().unwrap();
    let s = RedbStorage::open(dir.path()).unwrap();
    for i in 0..200 {
        s.put_peer(record(&format!("peer-{i:04}"), 1, PeerStatus::Live))
            .unwrap();
    }
    s.flush().unwrap();
    drop(s);
    let path = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 3..len / 3 + 4096] {
        *b ^= 0x5A;
    }
    std::fs::write(&path, &bytes).unwrap();
    match RedbStorage::open(dir.path()) {
        Ok(s) => assert!(s.peers().len() <= 200),
        Err(e) => assert!(matches!(e, OpenError::Corrupt { .. }), "{e:?}"),
    }
}

#[test]
fn a_book_open_elsewhere_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = RedbStorage::open(dir.path()).unwrap();
    let e = RedbStorage::open(dir.path()).unwrap_err();
    assert!(matches!(e, OpenError::Locked { .. }), "{e:?}");
}

#[test]
fn a_redb_file_of_another_kind_is_a_schema_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let db = Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w
                .open_table(TableDefinition::<&str, &str>::new("other"))
                .unwrap();
            t.insert("x", "y").unwrap();
        }
        w.commit().unwrap();
    }
    let e = RedbStorage::open(dir.path()).unwrap_err();
    assert!(matches!(e, OpenError::Schema { .. }), "{e:?}");

    let dir = tempfile::tempdir().unwrap();
    drop(RedbStorage::open(dir.path()).unwrap());
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(META).unwrap().insert("schema", 99).unwrap();
        w.commit().unwrap();
    }
    let e = RedbStorage::open(dir.path()).unwrap_err();
    assert!(e.to_string().contains("schema version 99"), "{e}");
}

#[test]
fn an_unknown_status_byte_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    drop(RedbStorage::open(dir.path()).unwrap());
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(PEERS)
            .unwrap()
            .insert("a", (1, 9, "a:1"))
            .unwrap();
        w.commit().unwrap();
    }
    let e = RedbStorage::open(dir.path()).unwrap_err();
    assert!(matches!(e, OpenError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("status byte 9"), "{e}");
}

#[test]
fn invalid_bounds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = RedbConfig {
        max_book_entries: 0,
        ..RedbConfig::default()
    };
    let e = RedbStorage::open_with(dir.path(), config).unwrap_err();
    assert!(matches!(e, OpenError::Config(_)), "{e:?}");
}

#[test]
fn errors_are_send_sync_static() {
    fn check<T: Send + Sync + 'static>() {}
    check::<OpenError>();
    check::<RedbStorage>();
}
