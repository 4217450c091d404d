//! Queries with replies in the simulator: the hop limit, the filter, replies
//! reaching the originator, a clean timeout.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use gossip_core::sim::Sim;
use gossip_core::{Config, Identity, PeerId, PubSubError, QueryEvent, QueryOptions};

fn id(i: usize) -> String {
    format!("n{i:02}")
}

/// A converged cluster of `n` nodes, each with an identity.
fn cluster(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(seed, Config::local());
    for i in 0..n {
        sim.add_node(&id(i), &[&id(0)]);
    }
    assert!(sim
        .run_until(Duration::from_secs(20), |s| s.all_see_all_live())
        .is_some());
    for i in 0..n {
        let key = Identity::from_bytes(&[i as u8 + 1; 32]).unwrap();
        sim.engine_mut(&id(i)).set_identity(key);
    }
    sim
}

fn requests(sim: &mut Sim, i: usize) -> Vec<gossip_core::Request> {
    std::iter::from_fn(|| sim.engine_mut(&id(i)).poll_request()).collect()
}

fn sent(sim: &Sim, i: usize) -> u64 {
    sim.engine(&id(i)).stats().broadcasts_sent
}

#[test]
fn a_query_stops_at_its_hop_limit_and_replies_reach_the_originator() {
    let n = 30;
    let mut sim = cluster(n, 31);
    sim.set_loss(0.1);
    // One hop: only the peers the originator sends it to get it, and none
    // of them forwards it.
    let now = sim.now();
    let one = QueryOptions {
        hops: 1,
        timeout: Duration::from_secs(3),
        filter: None,
    };
    let q1 = sim
        .engine_mut(&id(0))
        .query("who", Bytes::from_static(b"ping"), &one, now)
        .unwrap();
    sim.run_for(Duration::from_secs(4));
    let mut reached = 0;
    for i in 1..n {
        let got = requests(&mut sim, i);
        assert!(got.len() <= 1, "{} got it twice", id(i));
        for r in got {
            assert_eq!((r.id, r.hops_left), (q1, 1));
            reached += 1;
        }
        assert_eq!(sent(&sim, i), 0, "{} forwarded a one-hop query", id(i));
    }
    assert!(
        reached >= 1 && reached as u64 <= sent(&sim, 0),
        "{reached} reached"
    );
    assert_eq!(
        std::iter::from_fn(|| sim.engine_mut(&id(0)).poll_query_event()).collect::<Vec<_>>(),
        vec![QueryEvent::Closed { query: q1 }],
        "no one replied; the timeout closed it"
    );

    // Three hops: further, never more than three, everyone once; replies
    // reach the originator.
    let now = sim.now();
    let three = QueryOptions {
        hops: 3,
        timeout: Duration::from_secs(3),
        filter: None,
    };
    let q = sim
        .engine_mut(&id(0))
        .query("who", Bytes::from_static(b"ping"), &three, now)
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    let mut reached = BTreeSet::new();
    for i in 1..n {
        for r in requests(&mut sim, i) {
            assert_eq!(r.id, q);
            assert_eq!(r.name, "who");
            assert_eq!(r.from, PeerId::from(id(0).as_str()));
            assert!((1..=3).contains(&r.hops_left), "{}", r.hops_left);
            assert!(reached.insert(i), "{} got it twice", id(i));
            let now = sim.now();
            sim.engine_mut(&id(i))
                .reply(r.id, Bytes::from(format!("pong from {i}")), now)
                .unwrap();
        }
    }
    assert!(reached.len() > 3, "three hops reach further: {reached:?}");
    sim.set_loss(0.0);
    sim.run_for(Duration::from_millis(500));
    let mut from = BTreeSet::new();
    while let Some(e) = sim.engine_mut(&id(0)).poll_query_event() {
        match e {
            QueryEvent::Reply {
                query,
                from: f,
                payload,
            } => {
                assert_eq!(query, q);
                let i: usize = f.as_str()[1..].parse().unwrap();
                assert_eq!(payload, Bytes::from(format!("pong from {i}")));
                assert!(from.insert(i), "one reply each");
            }
            QueryEvent::Closed { .. } => panic!("closed before its timeout"),
        }
    }
    assert_eq!(from, reached, "every reply reached the originator");
    // The timeout closes it, at the originator and at the responders.
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        sim.engine_mut(&id(0)).poll_query_event(),
        Some(QueryEvent::Closed { query: q })
    );
    assert_eq!(sim.engine_mut(&id(0)).poll_query_event(), None);
    let r = *reached.iter().next().unwrap();
    let now = sim.now();
    assert_eq!(
        sim.engine_mut(&id(r)).reply(q, Bytes::new(), now),
        Err(PubSubError::UnknownRequest)
    );
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.engine_mut(&id(0)).poll_query_event(), None);
    assert_eq!(
        sim.engine(&id(0)).stats().replies_received,
        reached.len() as u64
    );
}

#[test]
fn a_filter_picks_the_responders_and_bad_queries_are_refused() {
    let n = 5;
    let mut sim = Sim::new(5, Config::local());
    for i in 0..n {
        sim.add_node(&id(i), &[&id(0)]);
    }
    assert!(sim
        .run_until(Duration::from_secs(10), |s| s.all_see_all_live())
        .is_some());
    sim.engine_mut(&id(0))
        .set_identity(Identity::from_bytes(&[9; 32]).unwrap());
    for i in [2, 4] {
        sim.set(&id(i), "role", "db");
    }
    sim.set(&id(3), "role", "web");
    assert!(sim
        .run_until(Duration::from_secs(5), |s| s.all_have(
            &id(3),
            "role",
            Some("web")
        ))
        .is_some());
    let now = sim.now();
    let options = QueryOptions {
        filter: Some(("role".into(), Bytes::from_static(b"db"))),
        ..QueryOptions::default()
    };
    let q = sim
        .engine_mut(&id(0))
        .query("load", Bytes::new(), &options, now)
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    for i in 1..n {
        let got = requests(&mut sim, i);
        assert_eq!(got.len(), usize::from(i % 2 == 0), "{}", id(i));
        assert!(got.iter().all(|r| r.id == q));
    }
    let e = sim.engine_mut(&id(0));
    let max = e.config().max_query_hops;
    for bad in [
        QueryOptions {
            hops: 0,
            ..QueryOptions::default()
        },
        QueryOptions {
            hops: max + 1,
            ..QueryOptions::default()
        },
        QueryOptions {
            timeout: Duration::ZERO,
            ..QueryOptions::default()
        },
        QueryOptions {
            timeout: Duration::from_secs(3601),
            ..QueryOptions::default()
        },
    ] {
        assert!(matches!(
            e.query("x", Bytes::new(), &bad, now),
            Err(PubSubError::BadQuery { .. })
        ));
    }
    assert_eq!(e.stats().queries_sent, 1);
}
