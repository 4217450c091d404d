//! `kill -9` during a burst of writes, then reopen: repeated, the book always
//! opens, passes redb's integrity check, and holds everything the writer
//! process had confirmed durable before it died.
//!
//! The writer is this test binary itself, re-run as a child with
//! `GOSSIP_CRASH_CHILD` naming the data directory (the `child_writer` test,
//! which does nothing otherwise). The child confirms a base book (flushed),
//! then writes without pause, printing `durable N` after each flush; the
//! parent kills it after a number of confirmations drawn from a fixed seed.
//! `GOSSIP_CRASH_ROUNDS` sets the number of kills (default 20; a soak run
//! uses hundreds).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use bytes::Bytes;
use gossip_storage::{PeerId, PeerRecord, PeerStatus, RedbConfig, RedbStorage, Storage, Versioned};

const BASE: usize = 20;
const CHILD_ENV: &str = "GOSSIP_CRASH_CHILD";
const DELAY_ENV: &str = "GOSSIP_CRASH_COMMIT_DELAY_MS";

fn record(id: &str, generation: u64) -> PeerRecord {
    PeerRecord {
        id: id.into(),
        generation,
        addr: format!("{id}.example:7946"),
        status: PeerStatus::Live,
    }
}

/// The child: runs only when the parent set `GOSSIP_CRASH_CHILD`.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    // Half the rounds commit as soon as the writer is free, so the kill
    // often lands inside a commit; the others gather for `commit_delay`.
    let mut config = RedbConfig::default();
    if std::env::var(DELAY_ENV).is_ok_and(|v| v == "0") {
        config.commit_delay = std::time::Duration::ZERO;
    }
    let s = RedbStorage::open_with(&dir, config).expect("child opens");
    let counter = PeerId::from("counter");
    let start = s.get(&counter, "n").map_or(0, |v| v.version);
    for i in 0..BASE {
        s.put_peer(record(&format!("base-{i:02}"), 1)).unwrap();
    }
    s.flush().unwrap();
    println!("ready {start}");
    let mut n = start;
    loop {
        // A burst: a counter, churned peers with keys, removals.
        for j in 0..50u64 {
            n += 1;
            let id = format!("churn-{:03}", (n * 7 + j) % 300);
            let pid = PeerId::from(id.as_str());
            s.put_peer(record(&id, n)).unwrap();
            s.put_key(
                &pid,
                "k",
                Versioned {
                    value: Bytes::from(vec![b'x'; (n % 512) as usize]),
                    version: n,
                },
            )
            .unwrap();
            if n % 5 == 0 {
                s.remove_peer(&PeerId::from(format!("churn-{:03}", n % 300)))
                    .unwrap();
            }
            s.put_key(
                &counter,
                "n",
                Versioned {
                    value: Bytes::new(),
                    version: n,
                },
            )
            .unwrap();
        }
        s.flush().unwrap();
        println!("durable {n}");
    }
}

/// SplitMix64: a fixed-seed sequence of kill points.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn kill_9_during_writes_never_loses_the_book() {
    let rounds: usize = std::env::var("GOSSIP_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x5EED_0011;
    let mut durable = 0u64;
    for round in 0..rounds {
        let wait_for = splitmix(&mut seed) % 6;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env(DELAY_ENV, if round % 2 == 0 { "0" } else { "100" })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut confirmations = 0;
        for line in out.lines() {
            let line = line.expect("child output");
            if let Some(n) = line.strip_prefix("durable ") {
                durable = n.trim().parse().unwrap();
                confirmations += 1;
            } else if line.starts_with("ready") {
                confirmations += 1;
            } else {
                continue;
            }
            if confirmations > wait_for {
                break;
            }
        }
        // Mid-burst: the child is writing its next batch now.
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reap");
        assert!(!status.success(), "round {round}: the child was not killed");

        let s = RedbStorage::open(dir.path())
            .unwrap_or_else(|e| panic!("round {round} (seed kill point {wait_for}): {e}"));
        let book: Vec<String> = s.book().iter().map(|r| r.id.to_string()).collect();
        for i in 0..BASE {
            let id = format!("base-{i:02}");
            assert!(book.contains(&id), "round {round}: {id} lost from the book");
            assert_eq!(s.peer(&id.as_str().into()), Some(record(&id, 1)));
        }
        let n = s.get(&"counter".into(), "n").map_or(0, |v| v.version);
        assert!(
            n >= durable,
            "round {round}: counter {n} is behind the confirmed {durable}"
        );
        drop(s);
    }
    // The last state stays usable for writing.
    let s = RedbStorage::open(dir.path()).unwrap();
    s.put_peer(record("after", 1)).unwrap();
    s.flush().unwrap();
    drop(s);
    assert!(RedbStorage::open(dir.path())
        .unwrap()
        .peer(&"after".into())
        .is_some());
}
