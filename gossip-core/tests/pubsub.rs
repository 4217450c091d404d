//! Topic pub/sub on the broadcast channel, in the simulator and against
//! single engines: delivery once per subscriber under loss, none to
//! non-subscribers, forged, altered and replayed messages dropped and
//! counted, bad broadcasts dropping their frame with no state change.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip_core::pubsub::{sign, PUBLIC_KEY_KEY};
use gossip_core::sim::Sim;
use gossip_core::wire::{
    Body, Broadcast, BroadcastKind, Frame, PeerDelta, Sender, PROTOCOL_VERSION,
};
use gossip_core::{Config, DecodeError, Engine, Identity, Message, PeerId, PeerStatus, Stats};

mod common;
use common::snapshot;

const TOPIC: &str = "chat";

fn id(i: usize) -> String {
    format!("n{i:03}")
}

/// A cluster of `n` converged nodes, the even ones subscribed to `TOPIC`
/// and every node aware of every subscription.
fn cluster(seed: u64, n: usize) -> Sim {
    let mut sim = Sim::new(seed, Config::local());
    sim.record_events = false;
    sim.add_node(&id(0), &[]);
    for i in 1..n {
        sim.add_node(&id(i), &[&id(0)]);
    }
    let took = sim.run_until(Duration::from_secs(60), |s| s.all_see_all_live());
    assert!(took.is_some(), "the cluster converges");
    for i in (0..n).step_by(2) {
        sim.subscribe(&id(i), TOPIC);
    }
    let key = format!("gossip.sub/{TOPIC}");
    let took = sim.run_until(Duration::from_secs(60), |s| {
        (0..n)
            .step_by(2)
            .all(|i| s.all_have(&id(i), &key, Some("")))
    });
    assert!(took.is_some(), "subscriptions spread");
    sim
}

/// Every message each node delivered, drained from its engine.
fn delivered(sim: &mut Sim, n: usize) -> Vec<Vec<Message>> {
    (0..n)
        .map(|i| std::iter::from_fn(|| sim.engine_mut(&id(i)).poll_message()).collect())
        .collect()
}

#[test]
fn a_message_reaches_every_subscriber_exactly_once_at_20_percent_loss() {
    let n = 100;
    let mut sim = cluster(1010, n);
    sim.set_loss(0.2);
    let bytes_before = sim.stats.bytes_sent;
    // Three authors: a non-subscriber and two subscribers.
    let authors = [id(1), id(2), id(51)];
    let mut sent = BTreeMap::new();
    for (k, a) in authors.iter().enumerate() {
        let payload = format!("hello {k} from {a}");
        let seq = sim.publish(a, TOPIC, payload.as_bytes());
        sent.insert((PeerId::from(a.as_str()), seq), payload);
    }
    let subscribers: Vec<usize> = (0..n).step_by(2).collect();
    let expect = |i: usize| authors.iter().filter(|a| **a != id(i)).count() as u64;
    let took = sim.run_until(Duration::from_secs(30), |s| {
        subscribers
            .iter()
            .all(|&i| s.engine(&id(i)).stats().messages_delivered == expect(i))
    });
    let took = took.expect("every subscriber gets every message within 30 s");
    // Let every retransmission run out, then count.
    sim.run_for(Duration::from_secs(20));
    let rounds = took.as_millis() / Config::local().gossip_interval.as_millis();
    let total: u64 = (0..n)
        .map(|i| sim.engine(&id(i)).stats().broadcast_bytes_sent)
        .sum();
    eprintln!(
        "N = {n}, 20% loss: all {} subscribers had all 3 messages after {took:?} \
         ({rounds} rounds); broadcast bytes {total} ({} per message per node); \
         all bytes during the run {}",
        subscribers.len(),
        total / 3 / n as u64,
        sim.stats.bytes_sent - bytes_before
    );
    let all = delivered(&mut sim, n);
    for (i, got) in all.iter().enumerate() {
        let st = sim.engine(&id(i)).stats();
        if i % 2 == 0 {
            let mut keys: Vec<(PeerId, u64)> =
                got.iter().map(|m| (m.author.clone(), m.seq)).collect();
            keys.sort();
            let want: Vec<(PeerId, u64)> = sent
                .keys()
                .filter(|(a, _)| a.as_str() != id(i))
                .cloned()
                .collect();
            assert_eq!(keys, want, "{} delivers each message once", id(i));
            for m in got {
                assert_eq!(m.topic, TOPIC);
                assert_eq!(sent[&(m.author.clone(), m.seq)].as_bytes(), &m.payload[..]);
            }
            assert_eq!(st.messages_forged + st.messages_replayed, 0);
        } else {
            assert!(got.is_empty(), "non-subscriber {} delivers nothing", id(i));
            assert_eq!(st.messages_delivered, 0);
            if id(i) != authors[0] {
                // Nobody sent it a message: it carried none of the traffic.
                assert_eq!(st.messages_accepted + st.messages_duplicate, 0, "{}", id(i));
            }
        }
    }
    for i in 0..n {
        assert_eq!(sim.engine(&id(i)).pending_broadcasts(), 0, "queues drain");
    }
    // Drained, the channel sends nothing more.
    let sent = |s: &Sim| -> u64 {
        (0..n)
            .map(|i| s.engine(&id(i)).stats().broadcasts_sent)
            .sum()
    };
    let before = sent(&sim);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sent(&sim), before);
}

#[test]
fn an_identity_without_messages_costs_no_byte() {
    // The same cluster run twice, once with identity keys installed but no
    // message published: the network carries the same frames.
    let run = |with_identity: bool| {
        let mut sim = Sim::new(77, Config::local());
        for i in 0..10 {
            sim.add_node(&id(i), &[&id(0)]);
        }
        if with_identity {
            for i in 0..10 {
                let key = Identity::from_bytes(&[i as u8; 32]).unwrap();
                sim.engine_mut(&id(i)).set_identity(key);
            }
        }
        sim.run_for(Duration::from_secs(20));
        sim.stats
    };
    assert_eq!(run(false), run(true));
}

// ---- single engines: hostile messages -------------------------------------

const GEN_A: u64 = 1_700_000_000_000;
const GEN_B: u64 = GEN_A + 1_000;

/// `b` subscribes to `TOPIC` and knows `a`; `a` published once, so `b`
/// knows `a`'s advertised key too. Frames are built by hand, from `a`.
struct Pair {
    a: Engine,
    b: Engine,
    now: Instant,
    /// An author unknown to `b` and its key.
    x: Identity,
}

fn exchange(from: &mut Engine, to: &mut Engine, now: Instant) {
    // Until nothing more flows between them.
    for _ in 0..10 {
        let mut moved = false;
        while let Some(t) = from.poll_transmit() {
            let _ = to.handle_frame(now, from.id().as_str(), &t.frame);
            moved = true;
        }
        while let Some(t) = to.poll_transmit() {
            let _ = from.handle_frame(now, to.id().as_str(), &t.frame);
            moved = true;
        }
        if !moved {
            break;
        }
    }
}

fn pair() -> Pair {
    let t0 = Instant::now();
    let cfg = Config::local().rng_seed(3);
    let mut a = Engine::new(cfg.clone(), "a".into(), "a".into(), GEN_A, t0)
        .unwrap()
        .with_seeds(["b"])
        .with_identity(Identity::from_bytes(&[1; 32]).unwrap());
    let mut b = Engine::new(cfg, "b".into(), "b".into(), GEN_B, t0).unwrap();
    b.subscribe(TOPIC, t0).unwrap();
    a.publish(TOPIC, Bytes::from_static(b"first"), t0).unwrap();
    let mut now = t0;
    for _ in 0..5 {
        a.handle_tick(now);
        exchange(&mut a, &mut b, now);
        b.handle_tick(now);
        exchange(&mut b, &mut a, now);
        now += Duration::from_millis(100);
    }
    let first = b.poll_message().expect("b got a's message");
    assert_eq!(&first.payload[..], b"first");
    assert!(b.poll_message().is_none());
    assert!(b.get(&PeerId::from("a"), PUBLIC_KEY_KEY).is_some());
    while b.poll_event().is_some() {}
    Pair {
        a,
        b,
        now,
        x: Identity::from_bytes(&[2; 32]).unwrap(),
    }
}

impl Pair {
    fn frame(&self, broadcasts: Vec<Broadcast>) -> Frame {
        Frame {
            protocol: PROTOCOL_VERSION,
            cluster_id: self.b.config().cluster_id.clone(),
            sender: Sender {
                id: PeerId::from("a"),
                generation: GEN_A,
                addr: "a".into(),
            },
            body: Body::Ack(Vec::new()),
            broadcasts,
        }
    }
    fn msg(&self, who: &Identity, author: &str, seq: u64, payload: &'static [u8]) -> Broadcast {
        sign(
            who,
            &self.b.config().cluster_id,
            TOPIC,
            &PeerId::from(author),
            seq,
            Bytes::from_static(payload),
        )
    }
    /// Feeds `b` the frame; returns what it delivered and how its counters moved.
    fn feed(&mut self, f: &Frame) -> (Result<(), DecodeError>, Vec<Message>, Stats) {
        let before = self.b.stats();
        let r = self.b.handle_frame(self.now, "a", &f.encode());
        let got = std::iter::from_fn(|| self.b.poll_message()).collect();
        let mut after = self.b.stats();
        // Accepted frames move these; the tests look at the rest.
        after.frames_in = before.frames_in;
        after.bytes_in = before.bytes_in;
        (r, got, diff(before, after))
    }
}

/// The counters that moved from `a` to `b` (all others zero).
fn diff(a: Stats, b: Stats) -> Stats {
    let mut d = Stats::default();
    macro_rules! sub {
        ($($f:ident),*) => { $(d.$f = b.$f - a.$f;)* };
    }
    sub!(
        dropped_malformed,
        dropped_invalid,
        dropped_over_limit,
        dropped_oversize,
        messages_delivered,
        messages_accepted,
        messages_duplicate,
        messages_forged,
        messages_replayed
    );
    d
}

fn only(f: impl FnOnce(&mut Stats)) -> Stats {
    let mut s = Stats::default();
    f(&mut s);
    s
}

#[test]
fn forged_altered_and_replayed_messages_are_dropped_and_counted() {
    let mut p = pair();
    let x = p.x.clone();
    let seq = 5_000;
    let genuine = p.msg(&x, "x", seq, b"genuine");
    let (r, got, d) = p.feed(&p.frame(vec![genuine.clone()]));
    assert!(r.is_ok());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].author_key, x.public_key());
    assert_eq!(
        d,
        only(|s| {
            s.messages_delivered = 1;
            s.messages_accepted = 1;
        })
    );

    // The same copy again (another relay): recognised, not delivered.
    let (_, got, d) = p.feed(&p.frame(vec![genuine.clone()]));
    assert!(got.is_empty());
    assert_eq!(d, only(|s| s.messages_duplicate = 1));

    let state = snapshot(&p.b);
    // A forged signature: x's key, signed by another.
    let mut forged = p.msg(
        &Identity::from_bytes(&[9; 32]).unwrap(),
        "x",
        seq + 1,
        b"evil",
    );
    forged.author_key = genuine.author_key.clone();
    // An altered payload under the genuine signature.
    let mut altered = genuine.clone();
    altered.payload = Bytes::from_static(b"altered");
    // An altered sequence number.
    let mut renumbered = genuine.clone();
    renumbered.seq += 1;
    // A message claiming to come from `a`, which advertises another key.
    let impostor = p.msg(&x, "a", seq + 2, b"i am a");
    // A query genuinely from `a` whose replies would go elsewhere.
    let deflect = gossip_core::pubsub::sign_broadcast(
        &Identity::from_bytes(&[1; 32]).unwrap(),
        &p.b.config().cluster_id,
        Broadcast {
            topic: "q".into(),
            author: PeerId::from("a"),
            seq: GEN_A << 20,
            kind: BroadcastKind::Query,
            hops: 2,
            timeout_ms: 1000,
            reply_to: "victim:80".into(),
            ..Broadcast::message_defaults()
        },
    );
    for (what, m) in [
        ("forged signature", forged),
        ("altered payload", altered),
        ("altered seq", renumbered),
        ("wrong key for a", impostor),
        ("replies aimed elsewhere", deflect),
    ] {
        let (r, got, d) = p.feed(&p.frame(vec![m]));
        assert!(r.is_ok(), "{what}: the frame stands");
        assert!(got.is_empty(), "{what}: not delivered");
        assert_eq!(d, only(|s| s.messages_forged = 1), "{what}");
    }

    // Replays: the author reuses a sequence number (another payload, so
    // another id), then, once far ahead, sends one older than the window.
    let reused = p.msg(&x, "x", seq, b"same seq, new text");
    let (_, got, d) = p.feed(&p.frame(vec![reused]));
    assert!(got.is_empty());
    assert_eq!(d, only(|s| s.messages_replayed = 1), "reused seq");
    let window = p.b.config().broadcast_replay_window;
    let ahead = p.msg(&x, "x", seq + window + 10, b"far ahead");
    let (_, got, _) = p.feed(&p.frame(vec![ahead]));
    assert_eq!(got.len(), 1);
    let old = p.msg(&x, "x", seq + 5, b"never seen but too old");
    let (_, got, d) = p.feed(&p.frame(vec![old]));
    assert!(got.is_empty());
    assert_eq!(
        d,
        only(|s| s.messages_replayed = 1),
        "older than the window"
    );
    // The membership state never moved.
    assert_eq!(snapshot(&p.b), state);
    assert!(p.b.poll_event().is_none());
    let _ = &p.a;
}

#[test]
fn bad_broadcasts_drop_the_whole_frame_and_change_nothing() {
    let mut p = pair();
    let x = p.x.clone();
    let c = p.b.config().clone();
    let good = p.msg(&x, "x", 9_000, b"fine");
    // A delta `b` would apply (a newer heartbeat of `a`) rides along, so a
    // frame that were accepted would show.
    let a_view = p.b.peer(&PeerId::from("a")).unwrap();
    let delta = PeerDelta {
        id: PeerId::from("a"),
        generation: GEN_A,
        addr: String::from("a").into(),
        heartbeat: a_view.heartbeat + 50,
        from_version: a_view.max_version,
        to_version: a_view.max_version,
        gc_floor: 0,
        reset: false,
        status: PeerStatus::Live,
        status_age_ms: 0,
        heartbeat_age_ms: 0,
        entries: Vec::new(),
    };
    let base = p.frame(Vec::new());
    let with = |m: Broadcast| {
        let mut f = base.clone();
        f.broadcasts = vec![good.clone(), m];
        f.body = Body::Ack(vec![delta.clone()]);
        f
    };
    let change = |f: fn(&mut Broadcast, &Config)| {
        let mut m = good.clone();
        m.seq += 1;
        f(&mut m, &c);
        with(m)
    };
    type Case = (&'static str, Vec<u8>, fn(&mut Stats));
    let mut cases: Vec<Case> = vec![
        (
            "payload over max_message_bytes",
            change(|m, c| m.payload = Bytes::from(vec![1; c.max_message_bytes + 1]))
                .encode()
                .to_vec(),
            |s| s.dropped_over_limit = 1,
        ),
        (
            "topic over max_topic_bytes",
            change(|m, c| m.topic = "t".repeat(c.max_topic_bytes + 1))
                .encode()
                .to_vec(),
            |s| s.dropped_over_limit = 1,
        ),
        (
            "author id over max_id_bytes",
            change(|m, c| m.author = PeerId::from("x".repeat(c.max_id_bytes + 1)))
                .encode()
                .to_vec(),
            |s| s.dropped_over_limit = 1,
        ),
        (
            "33-byte key",
            change(|m, _| m.author_key = Bytes::from(vec![1; 33]))
                .encode()
                .to_vec(),
            |s| s.dropped_over_limit = 1,
        ),
        (
            "65-byte signature",
            change(|m, _| m.signature = Bytes::from(vec![1; 65]))
                .encode()
                .to_vec(),
            |s| s.dropped_over_limit = 1,
        ),
        (
            "31-byte key",
            change(|m, _| m.author_key = Bytes::from(vec![1; 31]))
                .encode()
                .to_vec(),
            |s| s.dropped_invalid = 1,
        ),
        (
            "63-byte signature",
            change(|m, _| m.signature = Bytes::from(vec![1; 63]))
                .encode()
                .to_vec(),
            |s| s.dropped_invalid = 1,
        ),
        (
            "sequence number 0",
            change(|m, _| m.seq = 0).encode().to_vec(),
            |s| s.dropped_invalid = 1,
        ),
        (
            "empty topic",
            change(|m, _| m.topic.clear()).encode().to_vec(),
            |s| s.dropped_invalid = 1,
        ),
        (
            "empty author",
            change(|m, _| m.author = PeerId::from("")).encode().to_vec(),
            |s| s.dropped_invalid = 1,
        ),
    ];
    let query = |m: &mut Broadcast| {
        m.kind = BroadcastKind::Query;
        m.hops = 2;
        m.reply_to = "a".into();
        m.timeout_ms = 1000;
    };
    type Change = fn(&mut Broadcast, &Config);
    type Want = fn(&mut Stats);
    let kinds: Vec<(&'static str, Change, Want)> = vec![
        (
            "hops on a message",
            |m, _| m.hops = 1,
            |s| s.dropped_invalid = 1,
        ),
        (
            "a query without a reply address",
            |m, _| {
                m.kind = BroadcastKind::Query;
                m.hops = 1;
            },
            |s| s.dropped_invalid = 1,
        ),
        (
            "a query without hops",
            |m, _| {
                m.kind = BroadcastKind::Query;
                m.reply_to = "a".into();
            },
            |s| s.dropped_invalid = 1,
        ),
        (
            "a query over max_query_hops",
            |m, c| {
                m.kind = BroadcastKind::Query;
                m.reply_to = "a".into();
                m.hops = c.max_query_hops + 1;
            },
            |s| s.dropped_invalid = 1,
        ),
        (
            "a query over max_query_timeout",
            |m, c| {
                m.kind = BroadcastKind::Query;
                m.reply_to = "a".into();
                m.hops = 1;
                m.timeout_ms = c.max_query_timeout.as_millis() as u64 + 1;
            },
            |s| s.dropped_invalid = 1,
        ),
        (
            "a reply with a 15-byte request id",
            |m, _| {
                m.kind = BroadcastKind::Reply;
                m.request_id = Bytes::from(vec![1; 15]);
            },
            |s| s.dropped_invalid = 1,
        ),
        (
            "a message naming a request",
            |m, _| m.request_id = Bytes::from(vec![1; 16]),
            |s| s.dropped_invalid = 1,
        ),
        (
            "a 17-byte request id",
            |m, _| {
                m.kind = BroadcastKind::Reply;
                m.request_id = Bytes::from(vec![1; 17]);
            },
            |s| s.dropped_over_limit = 1,
        ),
        (
            "a reply address over max_id_bytes",
            |m, c| m.reply_to = "r".repeat(c.max_id_bytes + 1),
            |s| s.dropped_over_limit = 1,
        ),
        (
            "a filter key over max_key_bytes",
            |m, c| m.filter_key = "k".repeat(c.max_key_bytes + 1),
            |s| s.dropped_over_limit = 1,
        ),
        (
            "a filter on a message",
            |m, _| m.filter_key = "role".into(),
            |s| s.dropped_invalid = 1,
        ),
    ];
    for (what, f, want) in kinds {
        cases.push((what, change(f).encode().to_vec(), want));
    }
    // A well-formed query is accepted (the shapes above are refused for
    // what they change).
    let mut ok = good.clone();
    ok.seq += 7;
    query(&mut ok);
    let ok = gossip_core::pubsub::sign_broadcast(&x, &c.cluster_id, ok);
    let mut many = p.frame(vec![good.clone(); c.max_broadcasts_per_frame + 1]);
    many.body = Body::Ack(vec![delta.clone()]);
    cases.push(("too many broadcasts", many.encode().to_vec(), |s| {
        s.dropped_over_limit = 1
    }));
    let whole = with(good.clone()).encode().to_vec();
    for cut in [1, 5, 40, 64 + 20] {
        cases.push(("truncated", whole[..whole.len() - cut].to_vec(), |s| {
            s.dropped_malformed = 1
        }));
    }
    let state = snapshot(&p.b);
    for (what, bytes, want) in cases {
        let before = p.b.stats();
        let r = p.b.handle_frame(p.now, "a", &bytes);
        assert!(r.is_err(), "{what}: dropped");
        let got: Vec<Message> = std::iter::from_fn(|| p.b.poll_message()).collect();
        assert!(got.is_empty(), "{what}: nothing delivered");
        assert_eq!(diff(before, p.b.stats()), only(want), "{what}: {r:?}");
        assert_eq!(p.b.stats().frames_in, before.frames_in, "{what}");
        assert_eq!(snapshot(&p.b), state, "{what}: no state change");
        assert!(p.b.poll_event().is_none(), "{what}");
    }
    // The same frame, well-formed, is accepted: the cases above were
    // dropped for what they changed, not for the rest.
    let (r, _, d) = p.feed(&p.frame(vec![ok]));
    assert!(r.is_ok());
    assert_eq!(d.messages_accepted, 1, "a good query");
    assert!(p.b.poll_request().is_some());
    let (r, got, d) = p.feed(&with(good.clone()));
    assert!(r.is_ok());
    assert_eq!(got.len(), 1, "the good message, once");
    assert_eq!(d.messages_duplicate, 1, "the copy of it");
    assert_ne!(snapshot(&p.b), state, "the delta applied");
}

#[test]
fn publish_and_subscribe_refuse_bad_arguments_without_change() {
    let t0 = Instant::now();
    let mut e = Engine::new(Config::local(), "a".into(), "a".into(), GEN_A, t0).unwrap();
    use gossip_core::PubSubError as E;
    assert_eq!(e.publish(TOPIC, Bytes::new(), t0), Err(E::NoIdentity));
    e.set_identity(Identity::from_bytes(&[4; 32]).unwrap());
    assert_eq!(e.subscribe("", t0), Err(E::EmptyTopic));
    let long = "t".repeat(e.config().max_topic_bytes + 1);
    assert!(matches!(
        e.subscribe(&long, t0),
        Err(E::TopicTooLong { .. })
    ));
    assert!(matches!(
        e.publish(&long, Bytes::new(), t0),
        Err(E::TopicTooLong { .. })
    ));
    let max = e.max_publish_bytes(TOPIC);
    assert!(max > 0 && max <= e.config().max_message_bytes);
    assert_eq!(
        e.publish(TOPIC, Bytes::from(vec![0; max + 1]), t0),
        Err(E::MessageTooLarge { len: max + 1, max })
    );
    let before = e.stats();
    assert_eq!(before.messages_published, 0);
    assert_eq!(e.pending_broadcasts(), 0);
    // The largest publishable message fits a frame with its deltas.
    let s1 = e.publish(TOPIC, Bytes::from(vec![0; max]), t0).unwrap();
    let s2 = e.publish(TOPIC, Bytes::from_static(b"x"), t0).unwrap();
    assert_eq!(s2, s1 + 1);
    assert!(s1 > GEN_A << 16, "numbered from the generation");
    let mut small = Config::local();
    small.max_subscriptions = 1;
    let mut e = Engine::new(small, "a".into(), "a".into(), GEN_A, t0).unwrap();
    e.subscribe("one", t0).unwrap();
    e.subscribe("one", t0).unwrap();
    assert_eq!(
        e.subscribe("two", t0),
        Err(E::TooManySubscriptions { max: 1 })
    );
    assert_eq!(e.subscriptions().collect::<Vec<_>>(), ["one"]);
    assert_eq!(e.unsubscribe("one", t0), Ok(true));
    assert_eq!(e.unsubscribe("one", t0), Ok(false));
    assert!(!e.subscribes(&PeerId::from("a"), "one"));
}

/// Broadcast latency and cost, every node subscribed, no loss: rounds and
/// virtual time until every subscriber has a message, and broadcast bytes
/// sent per message per node:
/// `cargo test -p gossip-core --test pubsub -- --ignored --nocapture figures`.
/// BENCHMARKS.md's figures now come from the same method in the bench
/// (`cargo run --release -p gossip-bench -- broadcast`), which is faster.
fn figures(n: usize, seed: u64) {
    let mut sim = Sim::new(seed, Config::local());
    sim.record_events = false;
    sim.add_node(&id(0), &[]);
    for i in 1..n {
        sim.add_node(&id(i), &[&id(0)]);
    }
    assert!(sim
        .run_until(Duration::from_secs(300), |s| s.all_see_all_live())
        .is_some());
    for i in 0..n {
        sim.subscribe(&id(i), TOPIC);
    }
    let key = format!("gossip.sub/{TOPIC}");
    assert!(sim
        .run_until(Duration::from_secs(300), |s| (0..n).all(|i| s.all_have(
            &id(i),
            &key,
            Some("")
        )))
        .is_some());
    let interval = Config::local().gossip_interval;
    for (k, size) in [16usize, 1024].into_iter().enumerate() {
        let bytes0: u64 = (0..n)
            .map(|i| sim.engine(&id(i)).stats().broadcast_bytes_sent)
            .sum();
        let copies0: u64 = (0..n)
            .map(|i| sim.engine(&id(i)).stats().broadcasts_sent)
            .sum();
        let author = id(n / 2 + k);
        let before: Vec<u64> = (0..n)
            .map(|i| sim.engine(&id(i)).stats().messages_delivered)
            .collect();
        sim.publish(&author, TOPIC, &vec![7; size]);
        let took = sim
            .run_until(Duration::from_secs(60), |s| {
                (0..n).all(|i| {
                    id(i) == author || s.engine(&id(i)).stats().messages_delivered > before[i]
                })
            })
            .expect("everyone gets it");
        sim.run_for(Duration::from_secs(10));
        let bytes: u64 = (0..n)
            .map(|i| sim.engine(&id(i)).stats().broadcast_bytes_sent)
            .sum::<u64>()
            - bytes0;
        let copies: u64 = (0..n)
            .map(|i| sim.engine(&id(i)).stats().broadcasts_sent)
            .sum::<u64>()
            - copies0;
        eprintln!(
            "N = {n}, {size} B payload: all subscribers after {took:?} ({:.1} rounds of \
             {interval:?}); {copies} copies ({:.1} per node), {bytes} broadcast bytes \
             ({} per node)",
            took.as_secs_f64() / interval.as_secs_f64(),
            copies as f64 / n as f64,
            bytes / n as u64,
        );
        for (i, was) in before.iter().enumerate() {
            let st = sim.engine(&id(i)).stats();
            let want = was + u64::from(id(i) != author);
            assert_eq!(st.messages_delivered, want, "once, at {}", id(i));
        }
    }
}

#[test]
fn figures_at_50() {
    figures(50, 50);
}

#[test]
#[ignore = "slow (over ten minutes in the test profile): run for BENCHMARKS.md"]
fn figures_at_1000() {
    figures(1000, 1000);
}

#[test]
fn small_frames_carry_broadcasts_and_deltas_within_the_budget() {
    // 2 KiB frames, state changing at the same time as messages of the
    // largest publishable size flow: every frame fits, the messages arrive,
    // and the keys still converge (deltas keep three quarters of a frame).
    let mut config = Config::local();
    config.max_frame_bytes = 2048;
    config.max_value_bytes = 700;
    let n = 12;
    let mut sim = Sim::new(4242, config.clone());
    sim.add_node(&id(0), &[]);
    for i in 1..n {
        sim.add_node(&id(i), &[&id(0)]);
    }
    assert!(sim
        .run_until(Duration::from_secs(20), |s| s.all_see_all_live())
        .is_some());
    for i in 0..n {
        sim.subscribe(&id(i), TOPIC);
    }
    sim.run_for(Duration::from_secs(3));
    let max = sim.engine(&id(1)).max_publish_bytes(TOPIC);
    assert!(
        max > 200,
        "a quarter of a 2 KiB frame holds {max} bytes of message"
    );
    for k in 0..6 {
        let v = "v".repeat(700);
        sim.set(&id(k), &format!("big-{k}"), &v);
        sim.publish(&id(k + 1), TOPIC, &vec![k as u8; max]);
    }
    let took = sim.run_until(Duration::from_secs(30), |s| {
        (0..6).all(|k| s.all_have(&id(k), &format!("big-{k}"), Some(&"v".repeat(700))))
            && (0..n).all(|i| {
                let want = 6 - u64::from((1..=6).contains(&i));
                s.engine(&id(i)).stats().messages_delivered == want
            })
    });
    assert!(took.is_some(), "keys and messages both arrive");
    assert!(
        sim.stats.max_frame <= config.max_frame_bytes as u64,
        "largest frame {} bytes",
        sim.stats.max_frame
    );
    let sent: u64 = (0..n)
        .map(|i| sim.engine(&id(i)).stats().broadcasts_sent)
        .sum();
    assert!(sent > 0);
}
