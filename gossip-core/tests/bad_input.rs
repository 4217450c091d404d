//! Hostile and broken input against a node that holds real state.
//!
//! Two engines `a` and `b` exchange state (a few keys each, both know each
//! other); then genuine frames from `a` are captured *before* `b` sees them,
//! so that accepting one would change `b`'s state. Each test feeds `b` a
//! broken variant (random bytes, truncations, another cluster, another
//! protocol version, absurd versions or generations, oversized frames,
//! unordered deltas, frames claiming to come from `b`, deltas that do not
//! connect) and checks that it is dropped, that exactly the right counter
//! moved by exactly one, and that `b`'s state did not change.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip_core::wire::{Body, DigestEntry, Frame, KeyValue, PeerDelta, PROTOCOL_VERSION};
use gossip_core::{
    Config, DecodeError, Engine, Event, Keyring, PeerId, PeerStatus, Stats, Transmit,
};

mod common;
use common::{snapshot, Rng};

/// `b`'s generation: a start time in milliseconds.
const GEN_B: u64 = 1_700_000_000_000;
/// `a` started one second after `b`.
const GEN_A: u64 = GEN_B + 1_000;
const TWO_DAYS_MS: u64 = 2 * 24 * 3600 * 1000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Empties the engine's transmit and event queues.
fn drain(e: &mut Engine) -> (Vec<Transmit>, Vec<Event>) {
    let t = std::iter::from_fn(|| e.poll_transmit()).collect();
    let v = std::iter::from_fn(|| e.poll_event()).collect();
    (t, v)
}

/// The one frame `e` queued, which must be addressed to `to`.
fn take_one(e: &mut Engine, to: &str) -> Bytes {
    let (t, _) = drain(e);
    assert_eq!(t.len(), 1, "expected exactly one frame, got {t:?}");
    assert_eq!(t[0].to, to);
    t[0].frame.clone()
}

/// The counter a decode error is charged to.
fn charge(e: &DecodeError) -> fn(&mut Stats) {
    match e {
        DecodeError::TooLarge { .. } => |s| s.dropped_oversize += 1,
        DecodeError::Malformed(_) => |s| s.dropped_malformed += 1,
        DecodeError::UnknownVersion { .. } => |s| s.dropped_unknown_version += 1,
        DecodeError::WrongCluster { .. } => |s| s.dropped_wrong_cluster += 1,
        DecodeError::OverLimit { .. } => |s| s.dropped_over_limit += 1,
        DecodeError::UnknownKey { .. } => |s| s.dropped_unknown_key += 1,
        DecodeError::BadTag { .. } => |s| s.dropped_bad_tag += 1,
        DecodeError::PlaintextRefused => |s| s.dropped_plaintext += 1,
        _ => |s| s.dropped_invalid += 1,
    }
}

struct Fixture {
    a: Engine,
    b: Engine,
    /// When the fixture was built; `b` started at `t0`.
    t0: Instant,
    /// When the bad frames arrive.
    now: Instant,
    /// A Syn from `a` that `b` has not seen (it carries a newer heartbeat).
    syn: Bytes,
    /// A SynAck from `a` that `b` has not seen: a delta of three new
    /// versions of `a` (two sets and a delete) in `(4, 7]`.
    syn_ack: Bytes,
    /// The Ack of the first exchange, already applied by `b`.
    old_ack: Bytes,
    /// The SynAck `b` sent to `a` in the first exchange.
    b_syn_ack: Bytes,
}

fn config() -> Config {
    // Digests on every exchange: the fixture captures a Syn answered by a
    // SynAck with deltas (with summaries first, a table that differs is
    // answered by a Syn the other way).
    Config::local().rng_seed(7).idle_summary(false)
}

fn fixture() -> Fixture {
    let t0 = Instant::now();
    let mut a = Engine::new(config(), "a".into(), "a".into(), GEN_A, t0)
        .unwrap()
        .with_seeds(["b"]);
    let mut b = Engine::new(config(), "b".into(), "b".into(), GEN_B, t0).unwrap();
    a.set("role", Bytes::from_static(b"web"), t0).unwrap(); // v1
    a.set("zone", Bytes::from_static(b"eu-1"), t0).unwrap(); // v2
    a.set("tmp", Bytes::from_static(b"x"), t0).unwrap(); // v3
    a.delete("tmp", t0).unwrap(); // v4
    b.set("role", Bytes::from_static(b"db"), t0).unwrap();
    b.set("disk", Bytes::from_static(b"ssd"), t0).unwrap();

    // First exchange, started by `a` through its seed.
    a.handle_tick(t0);
    let syn = take_one(&mut a, "b");
    b.handle_frame(t0, "a", &syn).unwrap();
    let b_syn_ack = take_one(&mut b, "a");
    a.handle_frame(t0, "b", &b_syn_ack).unwrap();
    let old_ack = take_one(&mut a, "b");
    b.handle_frame(t0, "a", &old_ack).unwrap();
    drain(&mut a);
    drain(&mut b);
    let (ia, ib) = (PeerId::from("a"), PeerId::from("b"));
    assert_eq!(b.peer(&ia).unwrap().max_version, 4);
    assert_eq!(b.keys(&ia).len(), 2);
    assert_eq!(a.keys(&ib).len(), 2);
    assert_eq!(b.live_peers(), vec![ia.clone()]);
    assert_eq!(a.live_peers(), vec![ib.clone()]);

    // New writes at `a`, then `b` starts an exchange: `a` answers with a
    // SynAck carrying them, which is captured instead of delivered.
    let t1 = t0 + ms(100);
    a.set("fresh-1", Bytes::from_static(b"one"), t1).unwrap(); // v5
    a.set("fresh-2", Bytes::from_static(b"two"), t1).unwrap(); // v6
    a.delete("zone", t1).unwrap(); // v7
    b.handle_tick(t1);
    let b_syn = take_one(&mut b, "a");
    a.handle_frame(t1, "b", &b_syn).unwrap();
    let syn_ack = take_one(&mut a, "b");
    // And a round of `a`: its Syn carries a heartbeat `b` has not seen.
    a.handle_tick(t1);
    let syn = take_one(&mut a, "b");
    drain(&mut b);

    Fixture {
        a,
        b,
        t0,
        now: t1 + ms(5),
        syn,
        syn_ack,
        old_ack,
        b_syn_ack,
    }
}

impl Fixture {
    /// Decodes a genuine frame (no generation limit) for re-encoding.
    fn frame(&self, bytes: &[u8]) -> Frame {
        Frame::decode(bytes, self.b.config(), u64::MAX).expect("genuine frame")
    }

    /// What `b` (which has no keyring) makes of `bytes` at `self.now`: a
    /// sealed frame (first byte 0xE7) names a key it does not hold.
    fn decode(&self, bytes: &[u8]) -> Result<Frame, DecodeError> {
        if Keyring::is_sealed(bytes) && bytes.len() <= self.b.config().max_frame_bytes {
            return Err(match Keyring::key_id_of(bytes) {
                Some(key) => DecodeError::UnknownKey { key },
                None => DecodeError::Malformed("truncated sealed frame".into()),
            });
        }
        Frame::decode(bytes, self.b.config(), self.generation_limit())
    }

    /// The generation limit `b` applies at `self.now`.
    fn generation_limit(&self) -> u64 {
        let elapsed = self.now.duration_since(self.t0).as_millis() as u64;
        GEN_B + elapsed + self.b.config().max_generation_skew.as_millis() as u64
    }

    /// Feeds `bytes` to `b`, expecting it dropped: returns the error after
    /// checking that exactly the counter `bump` names moved by exactly one,
    /// and that `b`'s state, events and transmits are untouched.
    fn dropped(&mut self, bytes: &[u8], bump: fn(&mut Stats), what: &str) -> DecodeError {
        drain(&mut self.b);
        let state = snapshot(&self.b);
        let before = self.b.stats();
        let err = match self.b.handle_frame(self.now, "a", bytes) {
            Err(e) => e,
            Ok(()) => panic!("{what}: frame was accepted"),
        };
        let mut expected = before;
        bump(&mut expected);
        assert_eq!(self.b.stats(), expected, "{what}: counters ({err})");
        assert_eq!(snapshot(&self.b), state, "{what}: state changed ({err})");
        let (t, ev) = drain(&mut self.b);
        assert!(t.is_empty(), "{what}: sent {t:?}");
        assert!(ev.is_empty(), "{what}: events {ev:?}");
        err
    }

    /// Like `dropped`, for a frame re-encoded from `f`.
    fn dropped_frame(&mut self, f: &Frame, bump: fn(&mut Stats), what: &str) -> DecodeError {
        let bytes = f.encode();
        self.dropped(&bytes, bump, what)
    }

    /// Feeds `bytes` to `b`, expecting it accepted (a control).
    fn accepted(&mut self, bytes: &[u8], what: &str) {
        if let Err(e) = self.b.handle_frame(self.now, "a", bytes) {
            panic!("{what}: a valid frame was dropped: {e}");
        }
    }

    /// The fresh SynAck's body, for mutation.
    fn syn_ack_frame(&self) -> Frame {
        let f = self.frame(&self.syn_ack);
        let Body::SynAck(_, deltas) = &f.body else {
            panic!("not a SynAck: {f:?}")
        };
        let d = deltas
            .iter()
            .find(|d| d.id.as_str() == "a")
            .expect("a's delta");
        assert_eq!((d.from_version, d.to_version), (4, 7));
        assert_eq!(d.entries.len(), 3);
        f
    }
}

/// Applies `change` to `a`'s delta in a SynAck or Ack frame.
fn with_delta(mut f: Frame, change: impl FnOnce(&mut PeerDelta)) -> Frame {
    let deltas = match &mut f.body {
        Body::SynAck(_, d) | Body::Ack(d) => d,
        _ => panic!("no deltas in a Syn or a probe"),
    };
    change(deltas.iter_mut().find(|d| d.id.as_str() == "a").unwrap());
    f
}

#[test]
fn the_captured_frames_are_genuine_and_would_change_state() {
    // The control for every other test: unbroken, these frames are accepted
    // and change `b`'s state, so "state unchanged" below means something.
    let mut f = fixture();
    let ia = PeerId::from("a");
    let before = snapshot(&f.b);
    let stats = f.b.stats();
    f.accepted(&f.syn.clone(), "fresh Syn");
    assert_ne!(snapshot(&f.b), before, "the Syn carries a newer heartbeat");
    f.accepted(&f.syn_ack.clone(), "fresh SynAck");
    assert_eq!(f.b.peer(&ia).unwrap().max_version, 7);
    assert_eq!(f.b.get(&ia, "fresh-2").map(|v| &v[..]), Some(&b"two"[..]));
    assert_eq!(f.b.get(&ia, "zone"), None);
    assert_eq!(f.b.stats().frames_in, stats.frames_in + 2);
    // A replay of an applied Ack is harmless.
    let state = snapshot(&f.b);
    f.accepted(&f.old_ack.clone(), "replayed Ack");
    assert_eq!(snapshot(&f.b), state);
    // `a` is untouched by all this; keep it alive for the borrow checker.
    assert_eq!(f.a.peer(&ia).unwrap().max_version, 7);
}

#[test]
fn random_bytes_are_dropped_and_counted() {
    let mut f = fixture();
    let max = f.b.config().max_frame_bytes;
    for seed in 0..3_000u64 {
        let mut rng = Rng(seed);
        let len = match rng.below(10) {
            0 => rng.below(8) as usize,
            1..=7 => rng.below(600) as usize,
            8 => rng.below(max as u64 + 1) as usize,
            _ => max + 1 + rng.below(4096) as usize,
        };
        let bytes = rng.bytes(len);
        let what = format!("random bytes, seed {seed}, {len} bytes");
        // Which counter depends on what the bytes happen to look like; work
        // it out from the error, then check it in `dropped`.
        let err = f
            .decode(&bytes)
            .err()
            .unwrap_or_else(|| panic!("{what}: random bytes decoded"));
        let got = f.dropped(&bytes, charge(&err), &what);
        assert_eq!(got, err, "{what}");
        if len > max {
            assert!(matches!(got, DecodeError::TooLarge { .. }), "{what}: {got}");
        }
    }
}

#[test]
fn corrupted_genuine_frames_never_panic_and_drops_change_nothing() {
    // Random byte flips, insertions and deletions in genuine frames: some
    // still decode (a flipped value byte is just another value) and may be
    // applied; every one that is dropped must leave `b` untouched.
    let mut f = fixture();
    let originals = [f.syn.clone(), f.syn_ack.clone(), f.old_ack.clone()];
    let mut drops = 0;
    for seed in 0..3_000u64 {
        let mut rng = Rng(seed ^ 0x5eed);
        let mut bytes = originals[rng.below(3) as usize].to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len() as u64) as usize;
            match rng.below(3) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes.insert(at, rng.next() as u8),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        let what = format!("corrupted frame, seed {}", seed ^ 0x5eed);
        match f.decode(&bytes) {
            Err(e) => {
                let got = f.dropped(&bytes, charge(&e), &what);
                assert_eq!(got, e, "{what}");
                drops += 1;
            }
            Ok(frame) if frame.sender.id.as_str() == "b" => {
                f.dropped(&bytes, |s| s.dropped_invalid += 1, &what);
            }
            Ok(_) => {
                // Decodes: whatever it does, it must not panic.
                let _ = f.b.handle_frame(f.now, "a", &bytes);
                drain(&mut f.b);
            }
        }
    }
    assert!(drops > 1_000, "only {drops} corrupted frames were dropped");
}

#[test]
fn every_truncation_of_a_genuine_frame_is_dropped() {
    let mut f = fixture();
    let frames = [
        ("Syn", f.syn.clone()),
        ("SynAck", f.syn_ack.clone()),
        ("Ack", f.old_ack.clone()),
    ];
    for (name, frame) in frames {
        for len in 0..frame.len() {
            let prefix = &frame[..len];
            let what = format!("{name} truncated to {len} of {} bytes", frame.len());
            // The body is the frame's last field and is length-delimited, so
            // no proper prefix can decode to a complete frame: an empty
            // prefix has protocol 0, one that stops before the body has no
            // body, and one that cuts a field is malformed.
            let err = f
                .decode(prefix)
                .err()
                .unwrap_or_else(|| panic!("{what}: decoded"));
            let got = f.dropped(prefix, charge(&err), &what);
            assert_eq!(got, err, "{what}");
        }
    }
    // The whole frames still go through afterwards.
    f.accepted(&f.syn_ack.clone(), "whole SynAck");
    assert_eq!(f.b.peer(&"a".into()).unwrap().max_version, 7);
}

#[test]
fn a_frame_from_another_cluster_is_dropped() {
    let mut f = fixture();
    for frame in [f.syn.clone(), f.syn_ack.clone()] {
        let mut other = f.frame(&frame);
        other.cluster_id = "another-cluster".into();
        let e = f.dropped_frame(&other, |s| s.dropped_wrong_cluster += 1, "another cluster");
        assert_eq!(
            e,
            DecodeError::WrongCluster {
                got: "another-cluster".into(),
                ours: "default".into()
            }
        );
        // A prefix or a case change of the id is another cluster too.
        for id in ["defaul", "Default", "default ", ""] {
            let mut near = f.frame(&frame);
            near.cluster_id = id.into();
            let e = f.dropped_frame(&near, |s| s.dropped_wrong_cluster += 1, id);
            assert!(matches!(e, DecodeError::WrongCluster { .. }), "{id:?}: {e}");
        }
    }
}

#[test]
fn an_unknown_protocol_version_is_dropped() {
    let mut f = fixture();
    for version in [2, 0, PROTOCOL_VERSION + 100, u32::MAX] {
        let mut frame = f.syn_ack_frame();
        frame.protocol = version;
        let e = f.dropped_frame(
            &frame,
            |s| s.dropped_unknown_version += 1,
            &format!("protocol {version}"),
        );
        assert_eq!(
            e,
            DecodeError::UnknownVersion {
                got: version,
                ours: PROTOCOL_VERSION
            }
        );
    }
    // Version is checked before the cluster: a v2 frame of another cluster
    // is counted once, as a version problem.
    let mut frame = f.syn_ack_frame();
    frame.protocol = 2;
    frame.cluster_id = "another-cluster".into();
    let e = f.dropped_frame(&frame, |s| s.dropped_unknown_version += 1, "v2 elsewhere");
    assert!(matches!(e, DecodeError::UnknownVersion { got: 2, .. }));
}

#[test]
fn absurd_versions_and_heartbeats_are_dropped() {
    let mut f = fixture();
    let max = f.b.config().max_version;
    let bump: fn(&mut Stats) = |s| s.dropped_invalid += 1;
    let cases: Vec<(&str, Frame)> = vec![
        (
            "delta to_version above max_version",
            with_delta(f.syn_ack_frame(), |d| d.to_version = max + 1),
        ),
        (
            "delta to_version u64::MAX",
            with_delta(f.syn_ack_frame(), |d| d.to_version = u64::MAX),
        ),
        (
            "delta heartbeat above max_version",
            with_delta(f.syn_ack_frame(), |d| d.heartbeat = max + 1),
        ),
        (
            "delta heartbeat u64::MAX",
            with_delta(f.syn_ack_frame(), |d| d.heartbeat = u64::MAX),
        ),
        (
            "delta from_version above max_version",
            with_delta(f.syn_ack_frame(), |d| {
                d.from_version = max + 1;
                d.to_version = max + 10;
                d.entries.clear();
            }),
        ),
        (
            "delta gc_floor above max_version",
            with_delta(f.syn_ack_frame(), |d| d.gc_floor = max + 1),
        ),
    ];
    for (what, frame) in cases {
        let e = f.dropped_frame(&frame, bump, what);
        assert!(matches!(e, DecodeError::Invalid(_)), "{what}: {e}");
    }
    // The same in a Syn's digest entries.
    let syn = f.frame(&f.syn);
    for field in ["max_version", "heartbeat", "gc_floor"] {
        let mut bad = syn.clone();
        let Body::Syn(d) = &mut bad.body else {
            panic!("not a Syn")
        };
        let e: &mut DigestEntry = d.entries.iter_mut().find(|e| e.id.as_str() == "a").unwrap();
        match field {
            "max_version" => e.max_version = max + 1,
            "heartbeat" => e.heartbeat = max + 1,
            _ => e.gc_floor = max + 1,
        }
        let what = format!("digest {field} above max_version");
        let e = f.dropped_frame(&bad, bump, &what);
        assert!(matches!(e, DecodeError::Invalid(_)), "{what}: {e}");
    }
}

#[test]
fn absurd_generations_are_dropped() {
    let mut f = fixture();
    let limit = f.generation_limit();
    let bump: fn(&mut Stats) = |s| s.dropped_invalid += 1;
    let mut cases: Vec<(String, Frame)> = Vec::new();
    for g in [u64::MAX / 2, u64::MAX, GEN_A + TWO_DAYS_MS, limit + 1] {
        let mut frame = f.syn_ack_frame();
        frame.sender.generation = g;
        cases.push((format!("sender generation {g}"), frame));
        cases.push((
            format!("delta generation {g}"),
            with_delta(f.syn_ack_frame(), |d| d.generation = g),
        ));
        let mut syn = f.frame(&f.syn);
        let Body::Syn(d) = &mut syn.body else {
            panic!("not a Syn")
        };
        d.entries[0].generation = g;
        cases.push((format!("digest generation {g}"), syn));
    }
    // Zero is no generation at all (digest entries may say 0: "unknown").
    let mut frame = f.syn_ack_frame();
    frame.sender.generation = 0;
    cases.push(("sender generation 0".into(), frame));
    cases.push((
        "delta generation 0".into(),
        with_delta(f.syn_ack_frame(), |d| d.generation = 0),
    ));
    for (what, frame) in &cases {
        let e = f.dropped_frame(frame, bump, what);
        assert!(matches!(e, DecodeError::Invalid(_)), "{what}: {e}");
    }
    // Right at the limit is believable: a peer whose clock runs a day ahead.
    let mut frame = f.syn_ack_frame();
    frame.sender.generation = limit;
    f.accepted(&frame.encode(), "sender generation at the limit");
    assert_eq!(f.b.peer(&"a".into()).unwrap().max_version, 7);
}

#[test]
fn a_frame_over_max_frame_bytes_is_dropped_before_parsing() {
    let mut f = fixture();
    let max = f.b.config().max_frame_bytes;
    // A genuine Syn padded with digest entries (generation 0: "unknown").
    let base = f.frame(&f.syn);
    let pad = |n: usize, start: &str| {
        let mut syn = base.clone();
        let Body::Syn(d) = &mut syn.body else {
            panic!("not a Syn")
        };
        d.range_start = start.to_string();
        for i in 0..n {
            d.entries.push(DigestEntry {
                id: format!("pad-{i:06}").into(),
                generation: 0,
                max_version: 0,
                heartbeat: 0,
                gc_floor: 0,
                status: PeerStatus::Live,
                status_age_ms: 0,
            });
        }
        syn
    };
    let per_entry = pad(1, "").encoded_len() - pad(0, "").encoded_len();
    let mut n = (max - pad(0, "").encoded_len()) / per_entry;
    while pad(n, "").encoded_len() <= max {
        n += 1;
    }
    let big = pad(n, "");
    let bytes = big.encode();
    assert_eq!(bytes.len(), big.encoded_len());
    let e = f.dropped(&bytes, |s| s.dropped_oversize += 1, "padded Syn");
    assert_eq!(
        e,
        DecodeError::TooLarge {
            len: bytes.len(),
            max
        }
    );
    // Garbage one byte over: still TooLarge, not Malformed (never parsed).
    let e = f.dropped(&vec![0xff; max + 1], |s| s.dropped_oversize += 1, "max + 1");
    assert_eq!(e, DecodeError::TooLarge { len: max + 1, max });
    // Exactly at the limit is not oversize: garbage is then malformed...
    let e = f.dropped(
        &vec![0xff; max],
        |s| s.dropped_malformed += 1,
        "max garbage",
    );
    assert!(matches!(e, DecodeError::Malformed(_)), "{e}");
    // ...and a valid frame of exactly max_frame_bytes is accepted.
    let exact = (n - 3..n).rev().find_map(|m| {
        (0..=255usize).find_map(|k| {
            let frame = pad(m, &"a".repeat(k));
            (frame.encoded_len() == max).then_some(frame)
        })
    });
    let exact = exact.expect("some padding gives exactly max_frame_bytes");
    let bytes = exact.encode();
    assert_eq!(bytes.len(), max);
    let before = f.b.stats();
    f.accepted(&bytes, "Syn of exactly max_frame_bytes");
    assert_eq!(f.b.stats().frames_in, before.frames_in + 1);
    assert_eq!(f.b.stats().dropped_oversize, before.dropped_oversize);
}

#[test]
fn unordered_or_out_of_range_entries_are_dropped() {
    let mut f = fixture();
    let bump: fn(&mut Stats) = |s| s.dropped_invalid += 1;
    let kv = |key: &str, version: u64| KeyValue {
        key: key.into(),
        value: Bytes::from_static(b"v"),
        version,
        deleted: false,
    };
    let cases: Vec<(&str, Frame)> = vec![
        (
            "entries swapped",
            with_delta(f.syn_ack_frame(), |d| d.entries.swap(0, 1)),
        ),
        (
            "entries reversed",
            with_delta(f.syn_ack_frame(), |d| d.entries.reverse()),
        ),
        (
            "duplicate version",
            with_delta(f.syn_ack_frame(), |d| {
                d.entries[1].version = d.entries[0].version
            }),
        ),
        (
            "entry at from_version (excluded)",
            with_delta(f.syn_ack_frame(), |d| d.entries.insert(0, kv("old", 4))),
        ),
        (
            "entry below from_version",
            with_delta(f.syn_ack_frame(), |d| d.entries.insert(0, kv("old", 1))),
        ),
        (
            "entry above to_version",
            with_delta(f.syn_ack_frame(), |d| d.entries.push(kv("late", 8))),
        ),
        (
            "to_version below the last entry",
            with_delta(f.syn_ack_frame(), |d| d.to_version = 6),
        ),
        (
            "empty range: from above to",
            with_delta(f.syn_ack_frame(), |d| {
                d.from_version = 8;
                d.entries.clear();
            }),
        ),
        (
            "entry version 0 in (0, to]",
            with_delta(f.syn_ack_frame(), |d| {
                d.from_version = 0;
                d.entries.insert(0, kv("zero", 0));
            }),
        ),
        (
            "tombstone with a value",
            with_delta(f.syn_ack_frame(), |d| {
                let t = d.entries.iter_mut().find(|e| e.deleted).unwrap();
                t.value = Bytes::from_static(b"ghost");
            }),
        ),
        (
            "empty key",
            with_delta(f.syn_ack_frame(), |d| d.entries[0].key.clear()),
        ),
    ];
    for (what, frame) in cases {
        let e = f.dropped_frame(&frame, bump, what);
        assert!(matches!(e, DecodeError::Invalid(_)), "{what}: {e}");
    }
    // One bad delta among good ones drops the whole frame.
    let mut frame = f.syn_ack_frame();
    if let Body::SynAck(_, deltas) = &mut frame.body {
        let mut bad = deltas[0].clone();
        bad.id = "zz".into();
        bad.from_version = 0;
        bad.entries.swap(0, 1);
        deltas.push(bad);
    }
    let e = f.dropped_frame(&frame, bump, "one bad delta of two");
    assert!(matches!(e, DecodeError::Invalid(_)), "{e}");
}

#[test]
fn a_frame_claiming_to_come_from_this_node_is_dropped() {
    let mut f = fixture();
    let bump: fn(&mut Stats) = |s| s.dropped_invalid += 1;
    // `b`'s own SynAck of the first exchange, reflected back.
    let e = f.dropped(&f.b_syn_ack.clone(), bump, "reflected SynAck");
    assert!(matches!(e, DecodeError::Invalid(_)), "{e}");
    // A fresh frame of `a` with `b`'s id as sender, whatever the generation.
    for generation in [GEN_B, GEN_B + 1, GEN_A] {
        for frame in [f.syn.clone(), f.syn_ack.clone()] {
            let mut forged = f.frame(&frame);
            forged.sender.id = "b".into();
            forged.sender.generation = generation;
            let e = f.dropped_frame(&forged, bump, "forged sender");
            assert!(matches!(e, DecodeError::Invalid(_)), "{e}");
        }
    }
}

#[test]
fn gossip_about_this_node_from_others_changes_nothing() {
    // Not a drop (the frame is valid), but a delta about `b` itself, newer
    // than `b`, must not touch `b`'s own state.
    let mut f = fixture();
    let mut frame = f.syn_ack_frame();
    if let Body::SynAck(_, deltas) = &mut frame.body {
        deltas.clear();
        deltas.push(PeerDelta {
            id: "b".into(),
            generation: GEN_B + 5,
            addr: String::from("evil").into(),
            heartbeat: 1_000,
            from_version: 0,
            to_version: 100,
            gc_floor: 0,
            reset: true,
            status: PeerStatus::Left,
            status_age_ms: 0,
            heartbeat_age_ms: 0,
            entries: vec![KeyValue {
                key: "role".into(),
                value: Bytes::from_static(b"pwned"),
                version: 100,
                deleted: false,
            }],
        });
    }
    let ib = PeerId::from("b");
    let mine = f.b.peer(&ib).unwrap();
    let keys = f.b.keys(&ib);
    f.accepted(&frame.encode(), "delta about b");
    assert_eq!(f.b.peer(&ib).unwrap(), mine);
    assert_eq!(f.b.keys(&ib), keys);
}

#[test]
fn a_delta_that_does_not_connect_is_skipped_without_state_change() {
    let mut f = fixture();
    let kv = |key: &str, version: u64| KeyValue {
        key: key.into(),
        value: Bytes::from_static(b"v"),
        version,
        deleted: false,
    };
    let ia = PeerId::from("a");
    let hb = f.b.peer(&ia).unwrap().heartbeat;
    let cases = vec![
        (
            "unknown peer, from_version 3",
            PeerDelta {
                id: "z".into(),
                generation: GEN_A,
                addr: String::from("z").into(),
                heartbeat: 5,
                from_version: 3,
                to_version: 5,
                gc_floor: 0,
                reset: false,
                status: PeerStatus::Live,
                status_age_ms: 0,
                heartbeat_age_ms: 0,
                entries: vec![kv("k1", 4), kv("k2", 5)],
            },
        ),
        (
            "known peer, gap after what b holds (4)",
            PeerDelta {
                id: ia.clone(),
                generation: GEN_A,
                addr: String::from("a").into(),
                heartbeat: hb,
                from_version: 5,
                to_version: 7,
                gc_floor: 0,
                reset: false,
                status: PeerStatus::Live,
                status_age_ms: 0,
                heartbeat_age_ms: 0,
                entries: vec![kv("k1", 6), kv("k2", 7)],
            },
        ),
        (
            "known peer, newer generation, from_version 1",
            PeerDelta {
                id: ia.clone(),
                generation: GEN_A + 10,
                addr: String::from("a").into(),
                heartbeat: 1,
                from_version: 1,
                to_version: 2,
                gc_floor: 0,
                reset: false,
                status: PeerStatus::Live,
                status_age_ms: 0,
                heartbeat_age_ms: 0,
                entries: vec![kv("k1", 2)],
            },
        ),
    ];
    for (what, delta) in cases {
        let frame = Frame {
            protocol: PROTOCOL_VERSION,
            cluster_id: "default".into(),
            sender: f.frame(&f.syn).sender,
            body: Body::Ack(vec![delta]),
            broadcasts: Vec::new(),
        };
        let bytes = frame.encode();
        drain(&mut f.b);
        let state = snapshot(&f.b);
        let before = f.b.stats();
        f.accepted(&bytes, what);
        let mut expected = before;
        expected.frames_in += 1;
        expected.bytes_in += bytes.len() as u64;
        expected.deltas_skipped += 1;
        expected.deltas_received += 1;
        assert_eq!(f.b.stats(), expected, "{what}");
        assert_eq!(snapshot(&f.b), state, "{what}");
        let (t, ev) = drain(&mut f.b);
        assert!(t.is_empty() && ev.is_empty(), "{what}: {t:?} {ev:?}");
    }
    assert!(f.b.peer(&"z".into()).is_none());
}
