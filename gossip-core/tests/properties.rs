//! Properties of the wire format and of delta application, checked with
//! proptest under a fixed seed (reproducible, no failure files written).
//!
//! * (a) every valid frame survives `decode(encode(f))` and `encoded_len` is exact;
//! * (b) applying the same genuine Ack twice leaves the receiver as once;
//! * (c) genuine deltas fed in any order never replace newer state with
//!   older: the receiver always holds exactly the owner's state at some
//!   version prefix, and that prefix never shrinks;
//! * (d) no engine ever sends a frame over `max_frame_bytes`, whatever the
//!   frame size and values, and repeated exchanges converge.
//!

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use gossip_core::wire::{
    Body, Broadcast, BroadcastKind, Digest, DigestEntry, Frame, KeyValue, PeerDelta, Sender,
    PROTOCOL_VERSION,
};
use gossip_core::{Config, Engine, PeerId, PeerStatus, Transmit};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

mod common;
use common::{snapshot, splitmix};

/// The owner's generation: a start time in milliseconds.
const GEN: u64 = 1_700_000_000_000;
/// `Config::default().max_version`.
const MAXV: u64 = 1 << 48;

fn pt_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x0060_551b),
        ..ProptestConfig::default()
    }
}

// ---- (a) round trip ---------------------------------------------------------

fn peer_id() -> impl Strategy<Value = PeerId> {
    prop_oneof!["[a-z0-9.:-]{1,16}", "\\PC{1,8}"].prop_map(PeerId::from)
}

fn addr() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9.:]{0,24}", "\\PC{0,6}"]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9/_-]{1,24}", "\\PC{1,8}"]
}

fn generation() -> impl Strategy<Value = u64> {
    prop_oneof![1..10u64, GEN - 1_000_000..GEN + 1_000_000, Just(u64::MAX)]
}

fn version() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1..100u64, 0..=MAXV, Just(MAXV)]
}

fn digest_entry() -> impl Strategy<Value = DigestEntry> {
    (
        peer_id(),
        prop_oneof![Just(0u64), generation()],
        version(),
        version(),
        version(),
        status(),
    )
        .prop_map(
            |(id, generation, max_version, heartbeat, gc_floor, (status, status_age_ms))| {
                DigestEntry {
                    id,
                    generation,
                    max_version,
                    heartbeat,
                    gc_floor,
                    status,
                    status_age_ms,
                }
            },
        )
}

fn digest() -> impl Strategy<Value = Digest> {
    (
        any::<bool>(),
        "[a-z0-9]{0,8}",
        "[a-z0-9]{0,8}",
        vec(digest_entry(), 0..6),
        // A ranged digest of some buckets only: a bitmap of 8 to 64 buckets.
        prop_oneof![Just(0usize), Just(1), Just(2), Just(8)],
        any::<u64>(),
        // A ranged digest's peer filter: probes, salt and bits, or none.
        proptest::option::of((1u8..=16, any::<u64>(), vec(any::<u8>(), 1..40))),
    )
        .prop_map(
            |(ranged, mut range_start, mut range_end, entries, cover_len, bits, filter)| {
                // A ranged digest's range may be empty but never backwards.
                if ranged && !range_end.is_empty() && range_end < range_start {
                    std::mem::swap(&mut range_start, &mut range_end);
                }
                Digest {
                    ranged,
                    range_start,
                    range_end,
                    entries,
                    summary: None,
                    cover: if ranged {
                        bits.to_le_bytes()[..cover_len].to_vec().into()
                    } else {
                        Default::default()
                    },
                    filter: match filter {
                        Some((probes, salt, bits)) if ranged => {
                            let mut f = vec![probes];
                            f.extend_from_slice(&salt.to_le_bytes());
                            f.extend_from_slice(&bits);
                            f.into()
                        }
                        _ => Default::default(),
                    },
                }
            },
        )
}

/// A status and its age: live with no age, or dead or left for any time.
fn status() -> impl Strategy<Value = (PeerStatus, u64)> {
    prop_oneof![
        Just((PeerStatus::Live, 0)),
        any::<u64>().prop_map(|a| (PeerStatus::Dead, a)),
        any::<u64>().prop_map(|a| (PeerStatus::Left, a)),
    ]
}

fn delta() -> impl Strategy<Value = PeerDelta> {
    let entry = (key(), vec(any::<u8>(), 0..48), any::<bool>(), 1..1_000u64);
    (
        (peer_id(), generation(), addr(), version()),
        prop_oneof![Just(0u64), 0..100u64, 0..MAXV / 2],
        vec(entry, 0..8),
        0..100u64,
        any::<bool>(),
        (version(), any::<bool>(), status()),
    )
        .prop_map(
            |((id, generation, addr, heartbeat), from, raw, extra, to_max, flags)| {
                let (gc_floor, reset, (status, status_age_ms)) = flags;
                let mut v = from;
                let entries: Vec<KeyValue> = raw
                    .into_iter()
                    .map(|(key, value, deleted, gap)| {
                        v += gap;
                        KeyValue {
                            key,
                            value: if deleted {
                                Bytes::new()
                            } else {
                                Bytes::from(value)
                            },
                            version: v,
                            deleted,
                        }
                    })
                    .collect();
                PeerDelta {
                    id,
                    generation,
                    addr: addr.into(),
                    heartbeat,
                    from_version: from,
                    to_version: if to_max { MAXV } else { v + extra },
                    gc_floor,
                    reset,
                    status,
                    status_age_ms,
                    heartbeat_age_ms: heartbeat % 10_000,
                    entries,
                }
            },
        )
}

fn frame() -> impl Strategy<Value = Frame> {
    let body = prop_oneof![
        digest().prop_map(Body::Syn),
        (digest(), vec(delta(), 0..4)).prop_map(|(d, x)| Body::SynAck(d, x)),
        vec(delta(), 0..4).prop_map(Body::Ack),
    ];
    (
        "[a-z][a-z0-9-]{0,20}",
        peer_id(),
        generation(),
        addr(),
        body,
    )
        .prop_map(|(cluster_id, id, generation, addr, body)| Frame {
            protocol: PROTOCOL_VERSION,
            cluster_id,
            sender: Sender {
                id,
                generation,
                addr,
            },
            body,
            broadcasts: Vec::new(),
        })
}

proptest! {
    #![proptest_config(pt_config(256))]

    #[test]
    fn a_valid_frame_round_trips_with_an_exact_length(f in frame()) {
        let bytes = f.encode();
        prop_assert_eq!(f.encoded_len(), bytes.len());
        let mut config = Config::default().cluster_id(f.cluster_id.clone());
        config.max_frame_bytes = 1 << 20;
        let back = Frame::decode(&bytes, &config, u64::MAX);
        prop_assert_eq!(back.as_ref(), Ok(&f));
        // Re-encoding is stable byte for byte.
        prop_assert_eq!(back.unwrap().encode(), bytes);
    }
}

/// A broadcast of any kind whose fields fit its kind and the default limits.
fn broadcast() -> impl Strategy<Value = Broadcast> {
    (
        "[a-z]{1,12}",
        peer_id(),
        vec(any::<u8>(), 32),
        1u64..u64::MAX,
        vec(any::<u8>(), 0..300),
        vec(any::<u8>(), 64),
        0u8..3,
        (
            1u32..=16,
            0u64..60_000,
            addr(),
            "[a-z]{0,8}",
            vec(any::<u8>(), 0..8),
        ),
        vec(any::<u8>(), 16),
    )
        .prop_map(
            |(
                topic,
                author,
                key,
                seq,
                payload,
                sig,
                kind,
                (hops, timeout, reply_to, fk, fv),
                rid,
            )| {
                let base = Broadcast {
                    topic,
                    author,
                    author_key: Bytes::from(key),
                    seq,
                    payload: Bytes::from(payload),
                    signature: Bytes::from(sig),
                    ..Broadcast::message_defaults()
                };
                match kind {
                    0 => base,
                    1 => Broadcast {
                        kind: BroadcastKind::Query,
                        hops,
                        timeout_ms: timeout,
                        reply_to: if reply_to.is_empty() {
                            "r".into()
                        } else {
                            reply_to
                        },
                        filter_key: fk,
                        filter_value: Bytes::from(fv),
                        ..base
                    },
                    _ => Broadcast {
                        kind: BroadcastKind::Reply,
                        request_id: Bytes::from(rid),
                        ..base
                    },
                }
            },
        )
}

proptest! {
    #![proptest_config(pt_config(128))]

    /// Broadcasts riding on any body keep the length exact and round-trip;
    /// cut anywhere, the frame is refused without a panic.
    #[test]
    fn frames_with_broadcasts_round_trip_and_truncations_are_refused(
        f in frame(),
        list in vec(broadcast(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let f = Frame { broadcasts: list, ..f };
        let bytes = f.encode();
        prop_assert_eq!(f.encoded_len(), bytes.len());
        let mut config = Config::default().cluster_id(f.cluster_id.clone());
        config.max_frame_bytes = 1 << 20;
        let back = Frame::decode(&bytes, &config, u64::MAX);
        prop_assert_eq!(back.as_ref(), Ok(&f));
        let at = cut.index(bytes.len());
        let cut_frame = Frame::decode(&bytes[..at], &config, u64::MAX);
        // A cut at a field boundary can still decode (proto3), to another frame.
        prop_assert!(cut_frame.as_ref() != Ok(&f));
    }
}

// ---- shared: owner histories and a tiny network --------------------------------

/// One step of a test script.
#[derive(Debug, Clone)]
enum Op {
    /// Set key `key-{k}` to a value padded by `len` bytes.
    Set(u8, usize),
    /// Delete key `key-{k}` (a no-op if it is not set).
    Delete(u8),
    /// Run an exchange (how depends on the test; the number picks a variant).
    Exchange(u8),
}

fn ops(len: std::ops::Range<usize>, value: usize) -> impl Strategy<Value = Vec<Op>> {
    vec(
        prop_oneof![
            4 => (0..10u8, 0..value).prop_map(|(k, v)| Op::Set(k, v)),
            2 => (0..10u8).prop_map(Op::Delete),
            2 => (0..3u8).prop_map(Op::Exchange),
        ],
        len,
    )
}

/// Every write the owner made: (version, key, value or `None` for a delete).
type History = Vec<(u64, String, Option<Bytes>)>;

/// The owner's live keys after every write up to version `m`.
fn state_at(history: &History, m: u64) -> Vec<(String, Bytes)> {
    let mut keys: BTreeMap<String, Option<Bytes>> = BTreeMap::new();
    for (v, k, val) in history {
        if *v <= m {
            keys.insert(k.clone(), val.clone());
        }
    }
    keys.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

/// Applies a Set or Delete to the owner, recording it; false for an Exchange.
fn write(owner: &mut Engine, op: &Op, now: Instant, history: &mut History) -> bool {
    match op {
        Op::Set(k, len) => {
            let key = format!("key-{k}");
            // Unique per write, so a value tells which version it is.
            let value = Bytes::from(format!("w{}-{}", history.len(), "v".repeat(*len)));
            let version = owner.set(&key, value.clone(), now).expect("valid key");
            history.push((version, key, Some(value)));
            true
        }
        Op::Delete(k) => {
            let key = format!("key-{k}");
            if let Some(version) = owner.delete(&key, now).expect("not left") {
                history.push((version, key, None));
            }
            true
        }
        Op::Exchange(_) => false,
    }
}

/// Whether a frame carries a delta about `id` (SynAck or Ack).
fn carries_delta_of(bytes: &[u8], config: &Config, id: &str) -> bool {
    let f = Frame::decode(bytes, config, u64::MAX).expect("genuine frame decodes");
    match f.body {
        Body::SynAck(_, d) | Body::Ack(d) => d.iter().any(|d| d.id.as_str() == id),
        Body::Syn(_) | Body::Probe(_) | Body::ProbeAck(_) => false,
    }
}

/// Engines by id (which is also their address), delivering frames at once.
struct Net {
    engines: BTreeMap<String, Engine>,
    now: Instant,
}

impl Net {
    /// Everything the engines have queued, tagged with the sender; events
    /// are discarded.
    fn outbox(&mut self) -> VecDeque<(String, Transmit)> {
        let mut q = VecDeque::new();
        for (id, e) in &mut self.engines {
            while let Some(t) = e.poll_transmit() {
                q.push_back((id.clone(), t));
            }
            while e.poll_event().is_some() {}
        }
        q
    }

    /// Delivers every queued frame, and the replies, until all is quiet.
    /// `seen` is shown each frame first. Every genuine frame must be accepted.
    fn run(&mut self, mut seen: impl FnMut(&str, &Transmit)) {
        let mut q = self.outbox();
        while let Some((from, t)) = q.pop_front() {
            seen(&from, &t);
            let Some(e) = self.engines.get_mut(&t.to) else {
                continue;
            };
            if let Err(err) = e.handle_frame(self.now, &from, &t.frame) {
                panic!("{from} -> {}: genuine frame dropped: {err}", t.to);
            }
            while let Some(out) = e.poll_transmit() {
                q.push_back((t.to.clone(), out));
            }
            while e.poll_event().is_some() {}
        }
    }
}

// ---- (b) idempotence -------------------------------------------------------------

proptest! {
    #![proptest_config(pt_config(128))]

    #[test]
    fn applying_the_same_ack_twice_is_the_same_as_once(
        script in ops(1..40, 32),
        seed in any::<u64>(),
    ) {
        let t0 = Instant::now();
        let config = Config::local().rng_seed(seed);
        let interval = config.gossip_interval;
        let mut owner = Engine::new(config.clone(), "owner".into(), "owner".into(), GEN, t0)
            .unwrap()
            .with_seeds(["r"]);
        let mut r = Engine::new(config.clone(), "r".into(), "r".into(), GEN + 7, t0).unwrap();
        let (io, ir) = (PeerId::from("owner"), PeerId::from("r"));
        let mut history = History::new();
        let mut now = t0;
        let mut acks = 0;
        for op in script.iter().chain([Op::Exchange(0)].iter()) {
            if write(&mut owner, op, now, &mut history) {
                continue;
            }
            // An exchange started by the owner; its Ack to r is fed twice.
            owner.handle_tick(now);
            let mut q: VecDeque<(bool, Transmit)> =
                std::iter::from_fn(|| owner.poll_transmit()).map(|t| (true, t)).collect();
            while let Some((from_owner, t)) = q.pop_front() {
                if !from_owner {
                    owner.handle_frame(now, "r", &t.frame).unwrap();
                    q.extend(std::iter::from_fn(|| owner.poll_transmit()).map(|t| (true, t)));
                    continue;
                }
                prop_assert_eq!(&t.to, "r");
                // An Ack, and the peers its deltas describe.
                let ack = match Frame::decode(&t.frame, &config, u64::MAX).unwrap().body {
                    Body::Ack(deltas) => Some(deltas.len() as u64),
                    _ => None,
                };
                r.handle_frame(now, "owner", &t.frame).unwrap();
                let replies: Vec<Transmit> = std::iter::from_fn(|| r.poll_transmit()).collect();
                while r.poll_event().is_some() {}
                if let Some(deltas) = ack {
                    acks += 1;
                    prop_assert!(replies.is_empty(), "an Ack is not answered");
                    let once = snapshot(&r);
                    let stats = r.stats();
                    r.handle_frame(now, "owner", &t.frame).unwrap();
                    prop_assert_eq!(snapshot(&r), once);
                    prop_assert!(r.poll_transmit().is_none());
                    prop_assert_eq!(r.poll_event(), None, "a replay is not news");
                    let mut expected = stats;
                    expected.frames_in += 1;
                    expected.bytes_in += t.frame.len() as u64;
                    expected.deltas_received += deltas;
                    prop_assert_eq!(r.stats(), expected);
                }
                q.extend(replies.into_iter().map(|t| (false, t)));
            }
            // Each exchange brings r up to date with the owner.
            prop_assert_eq!(r.keys(&io), owner.keys(&io));
            prop_assert_eq!(
                r.peer(&io).map(|p| p.max_version),
                owner.peer(&io).map(|p| p.max_version)
            );
            now += interval;
        }
        prop_assert!(acks >= 1, "no Ack was exchanged");
        prop_assert_eq!(state_at(&history, u64::MAX), owner.keys(&io));
        prop_assert!(owner.peer(&ir).is_some());
    }
}

// ---- (c) never older ----------------------------------------------------------------

/// Script (c): the owner `o` writes; between writes a newcomer (a SynAck
/// from version 0), a persistent peer `p` (a SynAck from what it holds) or the
/// owner itself (Acks to the peers it picks) runs an exchange, and every frame
/// of the owner carrying its delta is captured. Then a fresh receiver `f` is
/// fed them in a shuffled order, with some replays.
///
/// Always: `f`'s max_version for the owner never decreases, every value it
/// holds is one the owner wrote to that key at a version at most max_version,
/// and no key ever goes back to an older value or comes back after a delete.
/// With `exact` (deltas never cut: big frames, small values), `f` must hold
/// exactly the owner's state at its max_version.
fn never_older(
    config: Config,
    script: &[Op],
    order_seed: u64,
    replays: usize,
    exact: bool,
) -> Result<(), TestCaseError> {
    let t0 = Instant::now();
    let interval = config.gossip_interval;
    let io = PeerId::from("o");
    let mut net = Net {
        engines: BTreeMap::new(),
        now: t0,
    };
    let new = |id: &str, generation: u64, now: Instant| {
        let e = Engine::new(config.clone(), id.into(), id.into(), generation, now).unwrap();
        if id == "o" {
            e
        } else {
            e.with_seeds(["o"])
        }
    };
    net.engines.insert("o".into(), new("o", GEN, t0));
    net.engines.insert("p".into(), new("p", GEN + 1, t0));
    let mut history = History::new();
    let mut captured: Vec<Bytes> = Vec::new();
    let mut fresh = 0;
    for op in script.iter().chain([Op::Exchange(0)].iter()) {
        let owner = net.engines.get_mut("o").unwrap();
        if write(owner, op, net.now, &mut history) {
            continue;
        }
        net.now += interval;
        let now = net.now;
        match op {
            Op::Exchange(0) => {
                fresh += 1;
                let id = format!("c{fresh}");
                net.engines
                    .insert(id.clone(), new(&id, GEN + 10 + fresh, now));
                net.engines.get_mut(&id).unwrap().handle_tick(now);
            }
            Op::Exchange(1) => net.engines.get_mut("p").unwrap().handle_tick(now),
            _ => net.engines.get_mut("o").unwrap().handle_tick(now),
        }
        net.run(|from, t| {
            if from == "o" && carries_delta_of(&t.frame, &config, "o") {
                captured.push(t.frame.clone());
            }
        });
    }
    prop_assert_eq!(state_at(&history, u64::MAX), net.engines["o"].keys(&io));
    prop_assert!(!captured.is_empty());

    let mut order: Vec<usize> = (0..captured.len()).collect();
    let mut s = order_seed;
    for i in (1..order.len()).rev() {
        order.swap(i, (splitmix(&mut s) % (i as u64 + 1)) as usize);
    }
    for _ in 0..replays {
        order.push((splitmix(&mut s) % captured.len() as u64) as usize);
    }

    // Which write each value is (values are unique per write).
    let writes: BTreeMap<Bytes, (u64, String)> = history
        .iter()
        .filter_map(|(v, k, val)| val.clone().map(|val| (val, (*v, k.clone()))))
        .collect();
    let later = net.now + interval;
    let mut f = Engine::new(config.clone(), "f".into(), "f".into(), GEN + 3, t0).unwrap();
    let mut prev = 0;
    // Per key, the oldest version f may still hold.
    let mut floor: BTreeMap<String, u64> = BTreeMap::new();
    for (step, &i) in order.iter().enumerate() {
        f.handle_frame(later, "o", &captured[i]).unwrap();
        while f.poll_transmit().is_some() {}
        while f.poll_event().is_some() {}
        let at = format!("step {step} (frame {i} of {})", captured.len());
        let m = f.peer(&io).map_or(0, |p| p.max_version);
        prop_assert!(m >= prev, "{}: max_version fell from {} to {}", at, prev, m);
        prev = m;
        let held = f.keys(&io);
        prop_assert_eq!(f.peer(&io).map_or(0, |p| p.keys), held.len(), "{}", at);
        for (k, val) in &held {
            let Some((w, wk)) = writes.get(val) else {
                return Err(TestCaseError::fail(format!(
                    "{at}: {k} = {val:?} never written"
                )));
            };
            prop_assert_eq!(wk, k, "{}: value of another key", at);
            prop_assert!(
                *w <= m,
                "{}: {} at version {} above max_version {}",
                at,
                k,
                w,
                m
            );
            let lo = floor.get(k).copied().unwrap_or(0);
            prop_assert!(
                *w >= lo,
                "{}: {} went back from version {} to {}",
                at,
                k,
                lo,
                w
            );
            floor.insert(k.clone(), *w);
        }
        for (k, lo) in floor.iter_mut() {
            if held.iter().any(|(h, _)| h == k) {
                continue;
            }
            // Gone: only a delete newer than what was held, within the prefix.
            let delete = history
                .iter()
                .find(|(v, hk, val)| hk == k && val.is_none() && *v >= *lo && *v <= m);
            let Some((v, _, _)) = delete else {
                return Err(TestCaseError::fail(format!(
                    "{at}: {k} (version {lo}) vanished without a delete up to {m}"
                )));
            };
            *lo = *v;
        }
        if exact {
            prop_assert_eq!(
                held,
                state_at(&history, m),
                "{}: not the owner's state at version {}",
                at,
                m
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(pt_config(128))]

    #[test]
    fn deltas_in_any_order_never_replace_newer_with_older(
        script in ops(1..50, 32),
        seed in any::<u64>(),
        order_seed in any::<u64>(),
        replays in 0..10usize,
    ) {
        never_older(Config::local().rng_seed(seed), &script, order_seed, replays, true)?;
    }

    #[test]
    fn cut_deltas_in_any_order_never_replace_newer_with_older(
        script in ops(1..50, 300),
        seed in any::<u64>(),
        order_seed in any::<u64>(),
        replays in 0..10usize,
    ) {
        // 1 KiB frames and values up to 300 bytes: deltas are cut short.
        let mut config = Config::local().rng_seed(seed);
        config.max_frame_bytes = 1024;
        config.max_key_bytes = 64;
        config.max_id_bytes = 32;
        config.max_value_bytes = 600;
        never_older(config, &script, order_seed, replays, false)?;
    }
}

// ---- (d) byte budget and convergence ---------------------------------------------------

/// How large a value is, relative to the configured maximum.
#[derive(Debug, Clone)]
enum Size {
    Small(usize),
    /// Thousandths of `max_value_bytes`.
    Frac(u32),
    Max,
}

#[derive(Debug, Clone)]
enum BigOp {
    /// Set key number `k` padded to `pad` more bytes, to a value of `size`.
    Set(u8, u8, Size),
    /// Delete the owner's `n`-th live key (modulo their number), if any.
    Delete(u16),
}

fn big_ops() -> impl Strategy<Value = Vec<BigOp>> {
    let size = prop_oneof![
        4 => (0..64usize).prop_map(Size::Small),
        2 => (0..=1000u32).prop_map(Size::Frac),
        1 => Just(Size::Max),
    ];
    vec(
        prop_oneof![
            5 => (0..50u8, 0..=58u8, size).prop_map(|(k, p, s)| BigOp::Set(k, p, s)),
            1 => any::<u16>().prop_map(BigOp::Delete),
        ],
        1..60,
    )
}

proptest! {
    #![proptest_config(pt_config(128))]

    #[test]
    fn frames_stay_within_the_budget_and_exchanges_converge(
        max_frame in 1024..=65_536usize,
        script in big_ops(),
        joins in vec(0..60usize, 3),
        seed in any::<u64>(),
    ) {
        let mut config = Config::local().rng_seed(seed);
        config.max_frame_bytes = max_frame;
        config.max_key_bytes = 64;
        config.max_id_bytes = 32;
        // The largest value Config::validate allows for this frame size.
        config.max_value_bytes = max_frame
            - (config.max_key_bytes + 3 * config.max_id_bytes + config.cluster_id.len() + 192);
        config.validate().unwrap();
        let max_value = config.max_value_bytes;
        let interval = config.gossip_interval;

        let t0 = Instant::now();
        let io = PeerId::from("o");
        let mut net = Net { engines: BTreeMap::new(), now: t0 };
        net.engines.insert(
            "o".into(),
            Engine::new(config.clone(), "o".into(), "o".into(), GEN, t0).unwrap(),
        );
        let mut biggest = 0;
        let mut check = |from: &str, t: &Transmit| {
            assert!(
                t.frame.len() <= max_frame,
                "{from} -> {} sent {} bytes, max_frame_bytes {max_frame}",
                t.to,
                t.frame.len()
            );
            biggest = biggest.max(t.frame.len());
        };
        let round = |net: &mut Net, check: &mut dyn FnMut(&str, &Transmit)| {
            net.now += interval;
            let now = net.now;
            for e in net.engines.values_mut() {
                e.handle_tick(now);
            }
            net.run(check);
        };
        for (i, op) in script.iter().enumerate() {
            for (r, _) in joins.iter().enumerate().filter(|&(_, &j)| j == i) {
                let id = format!("r{r}");
                let e = Engine::new(config.clone(), id.as_str().into(), id.clone(), GEN + 1 + r as u64, net.now)
                    .unwrap()
                    .with_seeds(["o"]);
                net.engines.insert(id, e);
            }
            let now = net.now;
            let owner = net.engines.get_mut("o").unwrap();
            match op {
                BigOp::Set(k, pad, size) => {
                    let key = format!("k{k:02}{}", "x".repeat(*pad as usize));
                    let len = match size {
                        Size::Small(n) => (*n).min(max_value),
                        Size::Frac(x) => max_value * *x as usize / 1000,
                        Size::Max => max_value,
                    };
                    owner.set(&key, Bytes::from(vec![(len % 251) as u8; len]), now).unwrap();
                }
                BigOp::Delete(n) => {
                    let keys = owner.keys(&io);
                    if !keys.is_empty() {
                        let key = keys[*n as usize % keys.len()].0.clone();
                        owner.delete(&key, now).unwrap();
                    }
                }
            }
            round(&mut net, &mut check);
        }
        // Receivers that join after the last write join now.
        for (r, _) in joins.iter().enumerate().filter(|&(_, &j)| j >= script.len()) {
            let id = format!("r{r}");
            let e = Engine::new(config.clone(), id.as_str().into(), id.clone(), GEN + 1 + r as u64, net.now)
                .unwrap()
                .with_seeds(["o"]);
            net.engines.insert(id, e);
        }
        let converged = |net: &Net| {
            let owner = &net.engines["o"];
            let want = owner.keys(&io);
            let top = owner.peer(&io).unwrap().max_version;
            net.engines.iter().all(|(id, e)| {
                id == "o"
                    || (e.keys(&io) == want && e.peer(&io).is_some_and(|p| p.max_version == top))
            })
        };
        let mut rounds = 0;
        while !converged(&net) {
            prop_assert!(
                rounds < 2_000,
                "not converged after {} rounds (max_frame_bytes {}): {:?}",
                rounds,
                max_frame,
                net.engines
                    .iter()
                    .map(|(id, e)| (id.clone(), e.peer(&io).map(|p| (p.max_version, p.keys))))
                    .collect::<Vec<_>>()
            );
            round(&mut net, &mut check);
            rounds += 1;
        }
        prop_assert_eq!(net.engines.len(), 4);
        prop_assert!(biggest > 0);
    }
}

#[test]
fn the_budget_property_covers_its_extremes() {
    // The smallest and largest frame sizes the property draws are valid
    // configurations with the chosen key and id limits.
    for max_frame in [1024, 65_536] {
        let mut config = Config::local();
        config.max_frame_bytes = max_frame;
        config.max_key_bytes = 64;
        config.max_id_bytes = 32;
        config.max_value_bytes = max_frame - (64 + 3 * 32 + config.cluster_id.len() + 192);
        config.validate().unwrap();
        config.max_value_bytes += 1;
        assert!(config.validate().is_err(), "the formula is tight");
    }
}

// ---- a known engine bug --------------------------------------------------------------

/// `Frame::decode` drops any delta with more than
/// `max(2 * max_keys_per_peer, 16)` entries, but the delta builder only
/// counts bytes: an owner holding its `max_keys_per_peer` live keys plus
/// tombstones (kept for `tombstone_grace`) sends deltas every receiver drops
/// whole, so a new or lagging receiver cannot learn that owner (nor anything
/// else in the same frame) until the tombstones are collected.
#[test]
fn a_delta_with_many_tombstones_is_accepted_by_its_receiver() {
    let mut config = Config::local().rng_seed(1);
    config.max_keys_per_peer = 8; // decode limit: max(2 * 8, 16) = 16 entries
    let interval = config.gossip_interval;
    let t0 = Instant::now();
    let mut owner = Engine::new(config.clone(), "o".into(), "o".into(), GEN, t0)
        .unwrap()
        .with_seeds(["r"]);
    let mut r = Engine::new(config.clone(), "r".into(), "r".into(), GEN + 1, t0)
        .unwrap()
        .with_seeds(["o"]);
    // 9 tombstones and 8 live keys: 17 current entries, well within 64 KiB.
    for i in 0..9 {
        let key = format!("old-{i}");
        owner.set(&key, Bytes::from_static(b"x"), t0).unwrap();
        owner.delete(&key, t0).unwrap();
    }
    for i in 0..8 {
        owner
            .set(&format!("new-{i}"), Bytes::from_static(b"y"), t0)
            .unwrap();
    }
    let io = PeerId::from("o");
    let mut now = t0;
    let mut rejected = Vec::new();
    // Ten seconds of rounds, well within the 30 s tombstone grace.
    for _ in 0..100 {
        owner.handle_tick(now);
        r.handle_tick(now);
        let mut q: VecDeque<(bool, Transmit)> = VecDeque::new();
        q.extend(std::iter::from_fn(|| owner.poll_transmit()).map(|t| (true, t)));
        q.extend(std::iter::from_fn(|| r.poll_transmit()).map(|t| (false, t)));
        while let Some((from_owner, t)) = q.pop_front() {
            let (to, from) = if from_owner {
                (&mut r, "o")
            } else {
                (&mut owner, "r")
            };
            if let Err(e) = to.handle_frame(now, from, &t.frame) {
                rejected.push(e);
            }
            q.extend(std::iter::from_fn(|| to.poll_transmit()).map(|t| (!from_owner, t)));
        }
        now += interval;
    }
    assert!(
        rejected.is_empty(),
        "{} genuine frames dropped in 10 s, first: {:?}",
        rejected.len(),
        rejected.first()
    );
    // Membership itself is lost: the frames introducing the owner are dropped.
    assert_eq!(r.live_peers(), vec![io.clone()]);
    assert_eq!(r.keys(&io), owner.keys(&io));
}
