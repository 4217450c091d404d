//! The keyring and the limits, at the engine level, deterministic.
//!
//! A small harness runs keyed engines in virtual time with instant delivery
//! and taps every frame, so an outsider can replay real ciphertexts. The
//! outsider knows the protocol, the cluster id, the peers' ids and
//! addresses and the key ids (they are in every header), but not the key.
//! It can send any bytes to any node; it cannot stop or delay genuine
//! frames (that is a network partition, not something a key can prevent).
//!
//! Then: turning encryption on in a running cluster and rotating keys at
//! the engine level, sealed frames within `max_frame_bytes`, every limit at
//! its boundary and one past it, and the inputs fuzzing found.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip_core::keyring::SEAL_OVERHEAD;
use gossip_core::wire::PROTOCOL_VERSION;
use gossip_core::wire::{Body, Digest, DigestEntry, Frame, KeyValue, PeerDelta, Sender};
use gossip_core::{
    Config, DecodeError, Engine, Event, Key, Keyring, KeyringError, PeerId, PeerStatus, Plaintext,
    Stats,
};

mod common;
use common::Rng;

const GEN: u64 = 1_700_000_000_000;
const TICK: Duration = Duration::from_millis(10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn key(n: u8) -> Key {
    Key::from_bytes(&[n; 32]).unwrap()
}

fn keyed(config: Config, k: Key, nonce_seed: u64) -> Config {
    config.keyring(Keyring::new(k).with_nonce_seed(nonce_seed))
}

/// Engines `n1..nN` (address = id), all seeded with `n1`, in virtual time.
struct Net {
    now: Instant,
    engines: BTreeMap<String, Engine>,
    /// Every frame sent, as sent.
    captured: Vec<Bytes>,
    /// Every event, with its observer.
    events: Vec<(String, Event)>,
}

impl Net {
    fn new(n: usize, config: &Config) -> Net {
        let now = Instant::now();
        let mut engines = BTreeMap::new();
        for i in 1..=n {
            let id = format!("n{i}");
            let e = Engine::new(
                config.clone(),
                id.as_str().into(),
                id.clone(),
                GEN + i as u64,
                now,
            )
            .unwrap()
            .with_seeds(["n1"]);
            engines.insert(id, e);
        }
        Net {
            now,
            engines,
            captured: Vec::new(),
            events: Vec::new(),
        }
    }

    fn engine(&mut self, id: &str) -> &mut Engine {
        self.engines.get_mut(id).unwrap()
    }

    /// Advances time by one tick, runs due rounds, delivers everything.
    fn step(&mut self) {
        self.now += TICK;
        let now = self.now;
        for e in self.engines.values_mut() {
            e.handle_tick(now);
        }
        self.pump();
    }

    fn run(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            self.step();
        }
    }

    fn run_until(&mut self, limit: Duration, what: &str, cond: impl Fn(&Net) -> bool) {
        let until = self.now + limit;
        while !cond(self) {
            assert!(self.now < until, "{what}: not within {limit:?}");
            self.step();
        }
    }

    fn pump(&mut self) {
        for _ in 0..32 {
            let mut queued = Vec::new();
            for (id, e) in self.engines.iter_mut() {
                while let Some(ev) = e.poll_event() {
                    self.events.push((id.clone(), ev));
                }
                while let Some(t) = e.poll_transmit() {
                    queued.push((id.clone(), t));
                }
            }
            if queued.is_empty() {
                return;
            }
            for (from, t) in queued {
                self.captured.push(t.frame.clone());
                if let Some(e) = self.engines.get_mut(&t.to) {
                    let _ = e.handle_frame(self.now, &from, &t.frame);
                }
            }
        }
    }

    /// Hands `bytes` to node `to` as if from `from`; returns the result.
    fn inject(&mut self, to: &str, from: &str, bytes: &[u8]) -> Result<(), DecodeError> {
        let now = self.now;
        self.engine(to).handle_frame(now, from, bytes)
    }

    /// Whether every node sees every other live, with `key` set.
    fn converged(&self, key: &str) -> bool {
        let ids: Vec<&String> = self.engines.keys().collect();
        self.engines.values().all(|e| {
            ids.iter().all(|id| {
                let pid = PeerId::from(id.as_str());
                if pid == *e.id() {
                    return true;
                }
                e.peer(&pid).is_some_and(|p| p.status == PeerStatus::Live)
                    && e.get(&pid, key).is_some()
            })
        })
    }

    /// Every node's view of every peer: generation, address, status, versions, keys.
    /// `except` is left out (a peer whose state legitimately changes).
    #[allow(clippy::type_complexity)]
    fn views(
        &self,
        except: &str,
    ) -> Vec<(
        String,
        Vec<(PeerId, u64, String, PeerStatus, u64, Vec<(String, Bytes)>)>,
    )> {
        self.engines
            .iter()
            .map(|(id, e)| {
                let peers = e
                    .peers()
                    .filter(|p| p.id.as_str() != except)
                    .map(|p| {
                        let keys = e.keys(&p.id);
                        (p.id, p.generation, p.addr, p.status, p.max_version, keys)
                    })
                    .collect();
                (id.clone(), peers)
            })
            .collect()
    }

    fn total(&self, f: impl Fn(&Stats) -> u64) -> u64 {
        self.engines.values().map(|e| f(&e.stats())).sum()
    }

    /// Events other than key updates and deletes (membership changes).
    fn membership_events(&self) -> Vec<&(String, Event)> {
        self.events
            .iter()
            .filter(|(_, e)| !matches!(e, Event::KeyUpdated { .. } | Event::KeyDeleted { .. }))
            .collect()
    }
}

/// Frames an outsider writes: each would change a node's state if accepted.
fn forgeries(now_gen: u64, victim: &str) -> Vec<Frame> {
    let sender = |id: &str, generation: u64| Sender {
        id: id.into(),
        generation,
        addr: id.to_string(),
    };
    let delta = |id: &str, generation: u64, left: bool, entries: Vec<KeyValue>| PeerDelta {
        id: id.into(),
        generation,
        addr: String::from("evil-addr").into(),
        heartbeat: 1_000_000,
        from_version: 0,
        to_version: entries.last().map_or(1_000, |e| e.version),
        gc_floor: 0,
        reset: true,
        status: if left {
            PeerStatus::Left
        } else {
            PeerStatus::Live
        },
        status_age_ms: 0,
        heartbeat_age_ms: 0,
        entries,
    };
    let kv = |key: &str, value: &'static [u8], version: u64| KeyValue {
        key: key.into(),
        value: Bytes::from_static(value),
        version,
        deleted: false,
    };
    let frame = |sender: Sender, body: Body| Frame {
        protocol: PROTOCOL_VERSION,
        cluster_id: "default".into(),
        sender,
        body,
        broadcasts: Vec::new(),
    };
    vec![
        // A new peer introducing itself and its keys.
        frame(
            sender("evil", now_gen),
            Body::Ack(vec![delta(
                "evil",
                now_gen,
                false,
                vec![kv("role", b"db", 1)],
            )]),
        ),
        // Another peer "restarting" with new keys (a generation bump).
        frame(
            sender("evil", now_gen),
            Body::Ack(vec![delta(
                victim,
                now_gen + 5,
                false,
                vec![kv("role", b"pwned", 1)],
            )]),
        ),
        // Another peer "leaving".
        frame(
            sender("evil", now_gen),
            Body::Ack(vec![delta(victim, GEN + 2, true, vec![])]),
        ),
        // A Syn in a peer's name with a huge heartbeat and versions.
        frame(
            sender(victim, GEN + 2),
            Body::Syn(Digest {
                ranged: false,
                range_start: String::new(),
                range_end: String::new(),
                entries: vec![DigestEntry {
                    id: victim.into(),
                    generation: GEN + 2,
                    max_version: 1_000,
                    heartbeat: 1_000_000,
                    gc_floor: 0,
                    status: PeerStatus::Live,
                    status_age_ms: 0,
                }],
                summary: None,
                cover: Default::default(),
                filter: Default::default(),
            }),
        ),
    ]
}

// ---- acceptance 1: an outsider ---------------------------------------------------

#[test]
fn an_outsider_flood_cannot_join_change_state_or_kill_anyone() {
    let k = key(1);
    let config = keyed(Config::local().rng_seed(3), k.clone(), 1);
    let mut net = Net::new(5, &config);
    for (i, id) in ["n1", "n2", "n3", "n4", "n5"].iter().enumerate() {
        let now = net.now;
        net.engine(id)
            .set("index", Bytes::from(i.to_string()), now)
            .unwrap();
    }
    net.run_until(Duration::from_secs(10), "keyed cluster converges", |n| {
        n.converged("index")
    });
    assert!(net.captured.iter().all(|f| Keyring::is_sealed(f)));
    let membership_before = net.membership_events().len();
    let views_before = net.views("n3");
    let victim = "n2";
    let forged: Vec<Bytes> = forgeries(GEN + 100, victim)
        .iter()
        .map(Frame::encode)
        .collect();
    let wrong = Keyring::new(key(2)).with_nonce_seed(9);
    let ids: Vec<String> = net.engines.keys().cloned().collect();
    let mut rng = Rng(0xbad);
    let mut sent = 0u64;
    let mut accepted_replays = 0u64;
    // 30 s of flood, 20 frames per node per 10 ms tick, with a legitimate
    // change in the middle that must still spread.
    for step in 0..3_000u64 {
        if step == 1_500 {
            let now = net.now;
            net.engine("n3")
                .set("during", Bytes::from_static(b"flood"), now)
                .unwrap();
        }
        for to in &ids {
            for _ in 0..4 {
                let forgery = &forged[rng.below(forged.len() as u64) as usize];
                let captured = net.captured[rng.below(net.captured.len() as u64) as usize].clone();
                let mut tampered = captured.to_vec();
                let at = rng.below(tampered.len() as u64) as usize;
                tampered[at] ^= 1 << rng.below(8);
                let mut forged_header = vec![0xE7, 1];
                forged_header.extend(k.id().0.to_be_bytes());
                let len = 24 + 16 + rng.below(300) as usize;
                forged_header.extend(rng.bytes(len));
                let random = {
                    let len = rng.below(600) as usize;
                    rng.bytes(len)
                };
                let frames: [(&str, Vec<u8>); 5] = [
                    ("random bytes", random),
                    ("valid plaintext", forgery.to_vec()),
                    ("wrong key", wrong.seal("default", forgery).to_vec()),
                    ("right key id, no key", forged_header),
                    ("tampered capture", tampered),
                ];
                for (what, bytes) in frames {
                    sent += 1;
                    if net.inject(to, "evil", &bytes).is_ok() {
                        panic!("{what} accepted by {to}");
                    }
                }
                // A replayed genuine frame is accepted, and harmless.
                sent += 1;
                if net.inject(to, "evil", &captured).is_ok() {
                    accepted_replays += 1;
                }
            }
        }
        net.step();
        // Throughout: everyone live, nobody new, nobody dead or left.
        for e in net.engines.values() {
            assert_eq!(e.live_peers().len(), 4, "{} at step {step}", e.id());
            assert!(e.peer(&"evil".into()).is_none());
        }
    }
    assert!(sent > 300_000, "{sent} frames");
    assert!(accepted_replays > 0);
    assert!(
        net.engines
            .values()
            .all(|e| e.id().as_str() == "n3" || e.get(&"n3".into(), "during").is_some()),
        "the legitimate change spread"
    );
    // No membership event at all during the flood: no join, restart,
    // death, departure.
    let after = net.membership_events();
    assert_eq!(
        after.len(),
        membership_before,
        "{:?}",
        &after[membership_before..]
    );
    // Nothing anyone holds changed, but for n3's legitimate change.
    assert_eq!(net.views("n3"), views_before);
    // The victim's keys everywhere are its own.
    for e in net.engines.values() {
        assert_eq!(
            e.get(&victim.into(), "index").map(|v| v.to_vec()),
            Some(b"1".to_vec())
        );
        assert_eq!(e.get(&victim.into(), "role"), None);
    }
    // Every rejection was counted under its reason.
    assert!(net.total(|s| s.dropped_bad_tag) > 0);
    assert!(net.total(|s| s.dropped_unknown_key) > 0);
    assert!(net.total(|s| s.dropped_plaintext) > 0);
    assert!(net.total(|s| s.dropped_malformed + s.dropped_plaintext) > 0);
    // Control: the same forgeries sealed with the cluster key do get in.
    let real = Keyring::new(k).with_nonce_seed(77);
    let sealed = real.seal("default", &forged[0]);
    net.inject("n1", "evil", &sealed).unwrap();
    assert!(net.engine("n1").peer(&"evil".into()).is_some());
}

#[test]
fn without_a_keyring_the_same_forgeries_do_get_in() {
    // What the keyring buys: in a plaintext cluster the outsider's frames
    // are valid, and a node reports a peer as left, invents a peer and
    // takes forged keys.
    let mut net = Net::new(3, &Config::local().rng_seed(3));
    net.run_until(Duration::from_secs(10), "converges", |n| {
        n.engines.values().all(|e| e.live_peers().len() == 2)
    });
    for frame in forgeries(GEN + 100, "n2") {
        net.inject("n1", "evil", &frame.encode()).unwrap();
    }
    let n1 = net.engine("n1");
    assert!(n1.peer(&"evil".into()).is_some());
    assert_eq!(
        n1.get(&"n2".into(), "role").map(|v| v.to_vec()),
        Some(b"pwned".to_vec())
    );
}

#[test]
fn a_node_without_the_key_cannot_join() {
    // An outsider running the real software with no key, then with the
    // wrong key, seeded with a member's address.
    let config = keyed(Config::local().rng_seed(5), key(1), 1);
    let mut net = Net::new(3, &config);
    net.run_until(Duration::from_secs(10), "converges", |n| {
        n.engines.values().all(|e| e.live_peers().len() == 2)
    });
    for (name, cfg) in [
        ("plain", Config::local().rng_seed(6)),
        ("wrong-key", keyed(Config::local().rng_seed(7), key(2), 2)),
        // Accepting plaintext does not help it: members do not send any.
        ("accepting", {
            let mut c = keyed(Config::local().rng_seed(8), key(2), 3);
            c.plaintext = Plaintext::Accept;
            c
        }),
    ] {
        let now = net.now;
        let e = Engine::new(cfg, name.into(), name.to_string(), GEN + 50, now)
            .unwrap()
            .with_seeds(["n1", "n2"]);
        net.engines.insert(name.to_string(), e);
    }
    net.run(Duration::from_secs(20));
    for (id, e) in &net.engines {
        let known: Vec<String> = e.peers().map(|p| p.id.to_string()).collect();
        if id.starts_with('n') {
            assert_eq!(known, ["n1", "n2", "n3"], "{id} let an outsider in");
            assert_eq!(e.live_peers().len(), 2);
        } else {
            assert_eq!(
                known,
                std::slice::from_ref(id),
                "{id} learned of the cluster"
            );
        }
    }
    let n1 = net.engine("n1").stats();
    assert!(
        n1.dropped_plaintext > 0 && n1.dropped_unknown_key > 0,
        "{n1:?}"
    );
    // Members never answer an outsider: it received nothing at all.
    for name in ["plain", "wrong-key", "accepting"] {
        let s = net.engine(name).stats();
        assert_eq!(
            s.frames_in + s.dropped_unknown_key + s.dropped_bad_tag,
            0,
            "{name}: {s:?}"
        );
    }
}

// ---- turning encryption on, and rotating keys --------------------------------------

#[test]
fn encryption_is_turned_on_in_a_running_cluster_without_a_death() {
    let mut net = Net::new(4, &Config::local().rng_seed(11));
    net.run_until(Duration::from_secs(10), "converges", |n| {
        n.engines.values().all(|e| e.live_peers().len() == 3)
    });
    let ids: Vec<String> = net.engines.keys().cloned().collect();
    let k = key(7);
    // Step 1, node by node: take the key, keep sending plaintext.
    for id in &ids {
        let e = net.engine(id);
        e.set_plaintext(Plaintext::Send);
        e.add_key(k.clone()).unwrap();
        net.run(ms(500));
    }
    // Step 2, node by node: seal (everyone can open), still accept plaintext.
    for id in &ids {
        net.engine(id).set_plaintext(Plaintext::Accept);
        net.run(ms(500));
    }
    // Step 3, node by node: refuse plaintext.
    for id in &ids {
        net.engine(id).set_plaintext(Plaintext::Refuse);
        net.run(ms(500));
    }
    let from = net.captured.len();
    net.run(Duration::from_secs(2));
    assert!(net.captured[from..].iter().all(|f| Keyring::is_sealed(f)));
    let died: Vec<_> = net
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::PeerDead { .. }))
        .collect();
    assert!(died.is_empty(), "{died:?}");
    assert!(net.engines.values().all(|e| e.live_peers().len() == 3));
    assert_eq!(
        net.total(|s| s.dropped_unknown_key + s.dropped_plaintext),
        0
    );
    // Plaintext is now refused.
    let plain = forgeries(GEN + 10, "n2")[0].encode();
    assert_eq!(
        net.inject("n1", "evil", &plain),
        Err(DecodeError::PlaintextRefused)
    );
}

#[test]
fn keys_rotate_in_a_running_cluster_without_a_death() {
    let (old, new) = (key(1), key(2));
    let config = keyed(Config::local().rng_seed(12), old.clone(), 4);
    let mut net = Net::new(4, &config);
    net.run_until(Duration::from_secs(10), "converges", |n| {
        n.engines.values().all(|e| e.live_peers().len() == 3)
    });
    let ids: Vec<String> = net.engines.keys().cloned().collect();
    for id in &ids {
        assert_eq!(net.engine(id).add_key(new.clone()).unwrap(), new.id());
        net.run(ms(300));
    }
    for id in &ids {
        net.engine(id).set_primary_key(new.id()).unwrap();
        net.run(ms(300));
    }
    let switched = net.captured.len();
    for id in &ids {
        net.engine(id).remove_key(old.id()).unwrap();
        net.run(ms(300));
    }
    net.run(Duration::from_secs(2));
    // Every frame since the switch is sealed with the new key.
    assert!(net.captured[switched..]
        .iter()
        .all(|f| Keyring::key_id_of(f) == Some(new.id())));
    assert!(!net
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::PeerDead { .. })));
    assert!(net.engines.values().all(|e| e.live_peers().len() == 3));
    assert_eq!(net.total(|s| s.dropped_unknown_key + s.dropped_bad_tag), 0);
    // A frame sealed with the retired key is now refused.
    let stale = Keyring::new(old.clone()).seal("default", &forgeries(GEN, "n2")[3].encode());
    assert_eq!(
        net.inject("n1", "n2", &stale),
        Err(DecodeError::UnknownKey { key: old.id() })
    );
    // The engine refuses to remove its primary, or keys it does not hold.
    let e = net.engine("n1");
    assert!(matches!(
        e.remove_key(new.id()),
        Err(KeyringError::RemovePrimary(_))
    ));
    assert!(matches!(
        e.set_primary_key(old.id()),
        Err(KeyringError::UnknownKey(_))
    ));
    assert_eq!(e.keyring().unwrap().ids(), vec![new.id()]);
}

#[test]
fn a_keyed_simulation_is_as_deterministic_as_a_plain_one() {
    // Nonces come from the OS, yet they never change a decision: two runs
    // with the same seed and different OS-seeded keyrings emit the same
    // events at the same times, and send as many frames and bytes.
    use gossip_core::sim::Sim;
    let run = || {
        // A fresh OS-seeded keyring for each run.
        let mut sim = Sim::new(42, Config::local().keyring(Keyring::new(key(1))));
        sim.add_node("a", &[]);
        for id in ["b", "c", "d"] {
            sim.add_node(id, &["a"]);
        }
        sim.run_for(Duration::from_secs(5));
        sim.set("b", "k", "v");
        sim.crash("c");
        sim.run_for(Duration::from_secs(10));
        assert!(sim.all_report("c", PeerStatus::Dead));
        assert!(sim.all_have("b", "k", Some("v")));
        (sim.events.clone(), sim.stats)
    };
    let (first, second) = (run(), run());
    assert_eq!(first.0, second.0);
    assert_eq!(first.1, second.1);
    assert!(first.1.bytes_sent > 0);
}

#[test]
fn the_keyring_never_shows_key_material() {
    let k = Key::from_bytes(&(0..32).collect::<Vec<u8>>()).unwrap();
    let config = keyed(Config::local(), k.clone(), 1);
    let text = format!("{config:?} {k:?} {:?}", config.keyring);
    let hex = k.to_hex();
    for window in [&hex[..8], &hex[20..28], "0, 1, 2, 3", "[0, 1"] {
        assert!(!text.contains(window), "{window} in {text}");
    }
    assert!(text.contains(&k.id().to_string()));
}

// ---- sealed frames and the frame budget --------------------------------------------

#[test]
fn sealed_frames_fill_but_never_exceed_max_frame_bytes() {
    let mut config = keyed(Config::local().rng_seed(21), key(1), 1);
    config.max_frame_bytes = 2048;
    config.max_value_bytes = 600;
    let mut net = Net::new(3, &config);
    let now = net.now;
    for i in 0..40 {
        net.engine("n2")
            .set(&format!("k{i:02}"), Bytes::from(vec![b'v'; 590]), now)
            .unwrap();
    }
    net.run_until(Duration::from_secs(30), "big keys spread", |n| {
        n.engines.values().all(|e| e.keys(&"n2".into()).len() == 40)
    });
    let largest = net.captured.iter().map(Bytes::len).max().unwrap();
    assert!(largest <= 2048, "a sealed frame of {largest} bytes");
    assert!(
        largest > 2048 - 600,
        "frames should fill the budget, largest {largest}"
    );
    assert_eq!(net.total(|s| s.dropped_oversize), 0);
}

#[test]
fn a_sealed_frame_over_max_frame_bytes_is_dropped_before_opening() {
    let k = key(1);
    let config = keyed(Config::local(), k.clone(), 1);
    let max = config.max_frame_bytes;
    let t0 = Instant::now();
    let mut b = Engine::new(config, "b".into(), "b".into(), GEN, t0).unwrap();
    let ring = Keyring::new(k);
    // One byte over: never opened, so no tag failure is counted.
    let frame = ring.seal("default", &vec![0u8; max + 1 - SEAL_OVERHEAD]);
    assert_eq!(frame.len(), max + 1);
    let before = b.stats();
    assert_eq!(
        b.handle_frame(t0, "x", &frame),
        Err(DecodeError::TooLarge { len: max + 1, max })
    );
    let mut expected = before;
    expected.dropped_oversize += 1;
    assert_eq!(b.stats(), expected);
    // At the limit it is opened (and the garbage inside is malformed).
    let frame = ring.seal("default", &vec![0xffu8; max - SEAL_OVERHEAD]);
    assert_eq!(frame.len(), max);
    assert!(matches!(
        b.handle_frame(t0, "x", &frame),
        Err(DecodeError::Malformed(_))
    ));
}

// ---- acceptance 3: every limit at its boundary and one past it ---------------------

/// A receiver `b` with small limits, and frames from `a` built by hand.
struct Limits {
    b: Engine,
    now: Instant,
    config: Config,
}

const GEN_A: u64 = GEN + 1_000;

impl Limits {
    fn new(change: impl FnOnce(&mut Config)) -> Limits {
        let mut config = Config::local().rng_seed(1);
        config.max_peers = 5;
        config.max_keys_per_peer = 10; // 20 entries per delta
        config.max_key_bytes = 32;
        config.max_value_bytes = 100;
        config.max_id_bytes = 24;
        config.max_digest_entries = 8;
        change(&mut config);
        let now = Instant::now();
        let b = Engine::new(config.clone(), "b".into(), "b".into(), GEN, now).unwrap();
        Limits {
            b,
            now: now + ms(5),
            config,
        }
    }

    fn frame(&self, body: Body) -> Frame {
        Frame {
            protocol: PROTOCOL_VERSION,
            cluster_id: self.config.cluster_id.clone(),
            sender: Sender {
                id: "a".into(),
                generation: GEN_A,
                addr: "a".into(),
            },
            body,
            broadcasts: Vec::new(),
        }
    }

    /// Feeds the frame (sealed if `b` has a keyring); returns the result
    /// and the counters' change.
    fn feed(&mut self, frame: &Frame) -> (Result<(), DecodeError>, Stats) {
        let bytes = match &self.config.keyring {
            Some(k) => k.seal(&self.config.cluster_id, &frame.encode()),
            None => frame.encode(),
        };
        let before = self.b.stats();
        let r = self.b.handle_frame(self.now, "a", &bytes);
        while self.b.poll_event().is_some() {}
        while self.b.poll_transmit().is_some() {}
        (r, diff(self.b.stats(), before))
    }

    /// Expects `frame` accepted.
    fn accepts(&mut self, frame: &Frame, what: &str) -> Stats {
        let (r, d) = self.feed(frame);
        assert_eq!(r, Ok(()), "{what}: at the limit, refused");
        assert_eq!(d.frames_in, 1, "{what}");
        d
    }

    /// Expects `frame` dropped as over `limit`, counted once, nothing changed.
    fn refuses(&mut self, frame: &Frame, limit: &str, what: &str) {
        let state: Vec<_> = self.b.peers().map(|p| (self.b.keys(&p.id), p)).collect();
        let (r, d) = self.feed(frame);
        match r {
            Err(DecodeError::OverLimit { limit: l, .. }) => assert_eq!(l, limit, "{what}"),
            other => panic!("{what}: one past the limit gave {other:?}"),
        }
        let mut expected = Stats::default();
        expected.dropped_over_limit = 1;
        assert_eq!(d, expected, "{what}: counters");
        let after: Vec<_> = self.b.peers().map(|p| (self.b.keys(&p.id), p)).collect();
        assert_eq!(after, state, "{what}: state changed");
    }
}

/// Counter changes (transport stats left out).
fn diff(after: Stats, before: Stats) -> Stats {
    let mut d = Stats::default();
    macro_rules! sub {
        ($($f:ident),*) => { $(d.$f = after.$f - before.$f;)* };
    }
    sub!(
        frames_in,
        bytes_in,
        frames_out,
        bytes_out,
        dropped_oversize,
        dropped_malformed,
        dropped_wrong_cluster,
        dropped_unknown_version,
        dropped_invalid,
        dropped_over_limit,
        dropped_bad_tag,
        dropped_unknown_key,
        dropped_plaintext,
        deltas_skipped,
        peers_refused,
        keys_refused,
        storage_errors,
        rounds
    );
    d.frames_out = 0;
    d.bytes_out = 0;
    d.bytes_in = 0;
    d
}

fn delta(id: &str, entries: Vec<KeyValue>) -> PeerDelta {
    PeerDelta {
        id: id.into(),
        generation: GEN_A,
        addr: id.to_string().into(),
        heartbeat: 1,
        from_version: 0,
        to_version: entries.last().map_or(0, |e| e.version),
        gc_floor: 0,
        reset: false,
        status: PeerStatus::Live,
        status_age_ms: 0,
        heartbeat_age_ms: 0,
        entries,
    }
}

fn kvs(n: usize, key_len: usize, value_len: usize) -> Vec<KeyValue> {
    (0..n)
        .map(|i| KeyValue {
            key: format!("{i:0>width$}", width = key_len),
            value: Bytes::from(vec![b'v'; value_len]),
            version: i as u64 + 1,
            deleted: false,
        })
        .collect()
}

fn entry(id: &str) -> DigestEntry {
    DigestEntry {
        id: id.into(),
        generation: GEN_A,
        max_version: 1,
        heartbeat: 1,
        gc_floor: 0,
        status: PeerStatus::Live,
        status_age_ms: 0,
    }
}

fn syn(entries: Vec<DigestEntry>) -> Body {
    Body::Syn(Digest {
        ranged: false,
        range_start: String::new(),
        range_end: String::new(),
        entries,
        summary: None,
        cover: Default::default(),
        filter: Default::default(),
    })
}

/// Runs `check` on a plaintext receiver and on a keyed one: limits hold
/// the same behind the seal.
fn both(change: fn(&mut Config), check: fn(&mut Limits)) {
    check(&mut Limits::new(change));
    check(&mut Limits::new(|c| {
        change(c);
        c.keyring = Some(Keyring::new(key(3)).with_nonce_seed(3));
    }));
}

#[test]
fn key_length_at_and_past_max_key_bytes() {
    both(
        |_| {},
        |l| {
            let f = l.frame(Body::Ack(vec![delta("a", kvs(1, 32, 1))]));
            l.accepts(&f, "32-byte key");
            let f = l.frame(Body::Ack(vec![delta("c", kvs(1, 33, 1))]));
            l.refuses(&f, "max_key_bytes", "33-byte key");
        },
    );
}

#[test]
fn value_size_at_and_past_max_value_bytes() {
    both(
        |_| {},
        |l| {
            let f = l.frame(Body::Ack(vec![delta("a", kvs(1, 3, 100))]));
            l.accepts(&f, "100-byte value");
            let f = l.frame(Body::Ack(vec![delta("c", kvs(1, 3, 101))]));
            l.refuses(&f, "max_value_bytes", "101-byte value");
        },
    );
}

#[test]
fn id_and_address_length_at_and_past_max_id_bytes() {
    both(
        |_| {},
        |l| {
            let long = "i".repeat(24);
            let f = l.frame(Body::Ack(vec![delta(&long, vec![])]));
            l.accepts(&f, "24-byte id");
            assert!(l.b.peer(&long.as_str().into()).is_some());
            let longer = "i".repeat(25);
            let f = l.frame(Body::Ack(vec![delta(&longer, vec![])]));
            l.refuses(&f, "max_id_bytes", "25-byte id");
            let mut f = l.frame(syn(vec![entry("a")]));
            f.sender.addr = "x".repeat(25);
            l.refuses(&f, "max_id_bytes", "25-byte sender address");
            let f = l.frame(syn(vec![entry(&longer)]));
            l.refuses(&f, "max_id_bytes", "25-byte id in a digest");
        },
    );
}

#[test]
fn digest_entries_at_and_past_max_digest_entries() {
    both(
        |_| {},
        |l| {
            let entries = |n: usize| (0..n).map(|i| entry(&format!("p{i}"))).collect();
            let f = l.frame(syn(entries(8)));
            l.accepts(&f, "8 digest entries");
            let f = l.frame(syn(entries(9)));
            l.refuses(&f, "max_digest_entries", "9 digest entries");
            // Protobuf merges repeated digests: the count is over the frame.
            let mut bytes = l.frame(syn(entries(5))).encode().to_vec();
            bytes.extend_from_slice(&l.frame(syn(entries(5))).encode());
            assert!(matches!(
                Frame::decode(&bytes, &l.config, u64::MAX),
                Err(DecodeError::OverLimit {
                    limit: "max_digest_entries",
                    ..
                })
            ));
        },
    );
}

#[test]
fn entries_per_delta_at_and_past_their_limit() {
    // A delta may carry 2 * max_keys_per_peer entries (live keys and as many
    // tombstones): 20 here.
    both(
        |_| {},
        |l| {
            let mut entries = kvs(20, 3, 0);
            for e in entries.iter_mut().skip(10) {
                e.deleted = true;
            }
            let f = l.frame(Body::Ack(vec![delta("a", entries)]));
            l.accepts(&f, "20 entries");
            let f = l.frame(Body::Ack(vec![delta("c", kvs(21, 3, 0))]));
            l.refuses(&f, "max_keys_per_peer", "21 entries");
        },
    );
}

#[test]
fn keys_per_peer_at_and_past_max_keys_per_peer() {
    both(
        |_| {},
        |l| {
            let f = l.frame(Body::Ack(vec![delta("a", kvs(10, 3, 1))]));
            let d = l.accepts(&f, "10 keys");
            assert_eq!(d.keys_refused, 0);
            assert_eq!(l.b.keys(&"a".into()).len(), 10);
            // One more key: the frame is valid, the key is refused and counted.
            let mut d11 = delta("a", kvs(11, 3, 1));
            d11.from_version = 10;
            d11.entries.drain(..10);
            let f = l.frame(Body::Ack(vec![d11]));
            let d = l.accepts(&f, "11th key");
            assert_eq!(d.keys_refused, 1);
            assert_eq!(l.b.keys(&"a".into()).len(), 10);
            assert_eq!(l.b.peer(&"a".into()).unwrap().max_version, 10);
        },
    );
}

#[test]
fn peers_known_at_and_past_max_peers() {
    both(
        |_| {},
        |l| {
            // max_peers = 5 others; `a` and four more are accepted.
            let deltas = ["a", "p1", "p2", "p3", "p4"]
                .map(|id| delta(id, vec![]))
                .to_vec();
            let d = l.accepts(&l.frame(Body::Ack(deltas)), "5 peers");
            assert_eq!(d.peers_refused, 0);
            assert_eq!(l.b.peers().count(), 6);
            let d = l.accepts(&l.frame(Body::Ack(vec![delta("p5", vec![])])), "6th peer");
            assert_eq!(d.peers_refused, 1);
            assert!(l.b.peer(&"p5".into()).is_none());
            assert_eq!(l.b.peers().count(), 6);
        },
    );
}

#[test]
fn deltas_per_frame_at_and_past_their_limit() {
    // At most max_peers + 1 deltas (an honest sender describes each peer it
    // knows once: max_peers others and itself): 6 here.
    both(
        |_| {},
        |l| {
            let ids = |n: usize| (0..n).map(|i| delta(&format!("p{i}"), vec![])).collect();
            l.accepts(&l.frame(Body::Ack(ids(6))), "6 deltas");
            let f = l.frame(Body::Ack(ids(7)));
            l.refuses(&f, "max_peers", "7 deltas");
        },
    );
}

#[test]
fn frame_size_at_and_past_max_frame_bytes() {
    both(
        |c| c.max_frame_bytes = 1024,
        |l| {
            let max = l.config.max_frame_bytes;
            let overhead = if l.config.keyring.is_some() {
                SEAL_OVERHEAD
            } else {
                0
            };
            // An Ack of `a`'s keys, its last value sized to hit the limit exactly.
            let sized = |n: usize, last: usize| {
                let mut entries = kvs(n, 3, 100);
                entries.last_mut().unwrap().value = Bytes::from(vec![b'v'; last]);
                l.frame(Body::Ack(vec![delta("a", entries)]))
            };
            let exact = (1..=10)
                .flat_map(|n| (0..=100).map(move |last| (n, last)))
                .map(|(n, last)| sized(n, last))
                .find(|f| f.encoded_len() + overhead == max)
                .expect("some size hits the limit exactly");
            let mut over = exact.clone();
            over.sender.addr.push('a');
            let (r, d) = l.feed(&over);
            assert_eq!(r, Err(DecodeError::TooLarge { len: max + 1, max }));
            assert_eq!(d.dropped_oversize, 1);
            assert_eq!(d.dropped_bad_tag + d.dropped_malformed + d.frames_in, 0);
            l.accepts(&exact, "frame of max_frame_bytes");
        },
    );
}

// ---- what fuzzing found --------------------------------------------------------------

#[test]
fn a_backwards_digest_range_is_dropped_not_a_panic() {
    // apply_frame found it in seconds: a ranged Syn whose range ends before
    // it starts reached `BTreeMap::range`, which panics.
    let mut l = Limits::new(|_| {});
    let mut f = l.frame(syn(vec![entry("a")]));
    if let Body::Syn(d) = &mut f.body {
        d.ranged = true;
        d.range_start = "p".into();
        d.range_end = "c".into();
    }
    let (r, d) = l.feed(&f);
    assert!(matches!(r, Err(DecodeError::Invalid(_))), "{r:?}");
    assert_eq!(d.dropped_invalid, 1);
    // An empty range [x, x) is fine, and so is an unranged digest.
    for (ranged, start, end) in [(true, "c", "c"), (false, "p", "c")] {
        let mut f = l.frame(syn(vec![entry("a")]));
        if let Body::Syn(d) = &mut f.body {
            d.ranged = ranged;
            d.range_start = start.into();
            d.range_end = end.into();
        }
        l.accepts(&f, "empty or unranged range");
    }
}

#[test]
fn the_checked_in_fuzz_inputs_replay_without_a_panic() {
    // The seed corpus and every input fuzzing found, fed to a decoder, the
    // keyring and an engine (the fuzz targets' full harness runs them with
    // `fuzz/run.sh`; this keeps them in the default test run).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in [
        "corpus/decode_frame",
        "corpus/apply_frame",
        "regressions/decode_frame",
        "regressions/apply_frame",
    ] {
        let Ok(files) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for file in files {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            let mut config = Config::local().rng_seed(1).cluster_id("fuzz");
            let _ = Frame::decode(&bytes, &config, u64::MAX);
            let t0 = Instant::now();
            let mut plain = Engine::new(config.clone(), "b".into(), "b".into(), GEN, t0).unwrap();
            let _ = plain.handle_frame(t0, "x", &bytes);
            config.keyring = Some(Keyring::new(Key::from_bytes(&[0x42; 32]).unwrap()));
            let mut sealed = Engine::new(config, "b".into(), "b".into(), GEN, t0).unwrap();
            let _ = sealed.handle_frame(t0, "x", &bytes);
            n += 1;
        }
    }
    assert!(n >= 30, "only {n} fuzz inputs found");
}
