//! What the fuzz targets share: a three-node fixture whose node `b` holds
//! real state, genuine frames captured before `b` saw them, structured
//! mutations of those frames, the invariants checked after every input, and
//! the seed corpus (`cargo run --example make_corpus`).
//!
//! Input format of `apply_frame` (so that seeds can be written by hand and
//! libFuzzer's mutations keep meaning): byte 0 is flags (bit 0: `b` has a
//! keyring, and frames are sealed with the cluster key unless an op says
//! otherwise); then records `[op][len lo][len hi][payload; len]` until the
//! input ends (a short last record takes what is left):
//!
//! | op % 7 | payload | what `b` receives |
//! |---|---|---|
//! | 0 | bytes | the bytes as they are |
//! | 1 | bytes | the bytes sealed with the cluster key (plaintext if unkeyed) |
//! | 2 | `[which][mutations...]` | a genuine frame, mutated, encoded, sealed if keyed |
//! | 3 | `[which]` | a genuine frame, replayed as captured |
//! | 4 | `[ms lo][ms hi]` | nothing: time advances, `b` runs a round |
//! | 5 | `[which]` | a genuine frame sealed with a wrong key |
//! | 6 | `[which]` | a genuine frame in plaintext (refused if keyed) |

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip_core::pubsub::sign;
use gossip_core::wire::{Body, Broadcast, BroadcastKind, DigestEntry, Frame, KeyValue, PeerDelta};
use gossip_core::{Config, Engine, Identity, Key, Keyring, PeerId, PeerStatus};

/// `b`'s generation: a start time in milliseconds.
pub const GEN_B: u64 = 1_700_000_000_000;
const GEN_A: u64 = GEN_B + 1_000;
const GEN_C: u64 = GEN_B + 2_000;
/// The cluster id of every fixture.
pub const CLUSTER: &str = "fuzz";

/// Small limits, so that inputs reach them.
pub fn config(keyed: bool) -> Config {
    let mut c = Config::local().rng_seed(7).cluster_id(CLUSTER);
    c.max_frame_bytes = 4096;
    c.max_peers = 8;
    c.max_keys_per_peer = 4;
    c.max_digest_entries = 8;
    c.max_key_bytes = 16;
    c.max_value_bytes = 64;
    c.max_id_bytes = 16;
    if keyed {
        c.keyring = Some(keyring());
    }
    c
}

/// The cluster key.
pub fn key() -> Key {
    Key::from_bytes(&[0x42; 32]).expect("32 bytes")
}

/// A key no node holds.
pub fn wrong_key() -> Key {
    Key::from_bytes(&[0x66; 32]).expect("32 bytes")
}

/// The cluster keyring, with reproducible nonces.
pub fn keyring() -> Keyring {
    Keyring::new(key()).with_nonce_seed(1)
}

/// Three engines: `a` and `c` hold keys and know `b`; `b` knows both.
pub struct Fixture {
    /// Whether the cluster is keyed.
    pub keyed: bool,
    /// Sender of the captured frames.
    pub a: Engine,
    /// The node under test.
    pub b: Engine,
    /// A third peer, so `b` holds state about more than its correspondent.
    pub c: Engine,
    /// The time of the next input.
    pub now: Instant,
    /// Genuine frames from `a` to `b` that `b` has not seen, in plaintext:
    /// a Syn with a newer heartbeat, a SynAck and an Ack carrying versions
    /// `b` lacks.
    pub genuine: Vec<Bytes>,
    /// `b`'s own keys, which nothing received may change.
    own_keys: Vec<(String, Bytes)>,
}

fn drain(e: &mut Engine) -> Vec<gossip_core::Transmit> {
    while e.poll_event().is_some() {}
    std::iter::from_fn(|| e.poll_transmit()).collect()
}

impl Fixture {
    /// Builds the fixture; deterministic.
    pub fn new(keyed: bool) -> Fixture {
        let t0 = Instant::now();
        let cfg = config(keyed);
        let mut a = Engine::new(cfg.clone(), "a".into(), "a".into(), GEN_A, t0)
            .expect("valid")
            .with_seeds(["b"]);
        let mut b = Engine::new(cfg.clone(), "b".into(), "b".into(), GEN_B, t0).expect("valid");
        let mut c = Engine::new(cfg, "c".into(), "c".into(), GEN_C, t0)
            .expect("valid")
            .with_seeds(["b"]);
        let v = |s: &'static str| Bytes::from_static(s.as_bytes());
        a.set("role", v("web"), t0).expect("set");
        a.set("tmp", v("x"), t0).expect("set");
        a.delete("tmp", t0).expect("delete");
        b.set("role", v("db"), t0).expect("set");
        c.set("zone", v("eu"), t0).expect("set");
        let mut now = t0;
        // A few rounds until everyone knows everyone.
        for _ in 0..6 {
            now += Duration::from_millis(100);
            for e in [&mut a, &mut b, &mut c] {
                e.handle_tick(now);
            }
            deliver_all(&mut [&mut a, &mut b, &mut c], now);
        }
        // Fresh writes at `a`; its next frames to `b` are captured.
        now += Duration::from_millis(100);
        a.set("fresh", v("one"), now).expect("set");
        a.set("load", v("0.5"), now).expect("set");
        let mut genuine = Vec::new();
        let open = |t: &Bytes| -> Bytes {
            if keyed {
                Bytes::from(keyring().open(CLUSTER, t).expect("genuine frame opens"))
            } else {
                t.clone()
            }
        };
        // A Syn of `a` (newer heartbeat), delivered to `b` so that `b`
        // answers; `a`'s Ack to that answer is captured.
        a.handle_tick(now);
        let syn = drain(&mut a).into_iter().find(|t| t.to == "b");
        if let Some(syn) = syn {
            genuine.push(open(&syn.frame));
            let _ = b.handle_frame(now, "a", &syn.frame);
            for t in drain(&mut b).into_iter().filter(|t| t.to == "a") {
                let _ = a.handle_frame(now, "b", &t.frame);
            }
            if let Some(ack) = drain(&mut a).into_iter().find(|t| t.to == "b") {
                genuine.push(open(&ack.frame));
            }
        }
        // `b` starts an exchange with `a`: `a`'s SynAck is captured.
        now += Duration::from_millis(100);
        b.handle_tick(now);
        for t in drain(&mut b).into_iter().filter(|t| t.to == "a") {
            let _ = a.handle_frame(now, "b", &t.frame);
        }
        if let Some(sa) = drain(&mut a).into_iter().find(|t| t.to == "b") {
            genuine.push(open(&sa.frame));
        }
        drain(&mut b);
        let own_keys = b.keys(&PeerId::from("b"));
        Fixture {
            keyed,
            a,
            b,
            c,
            now: now + Duration::from_millis(5),
            genuine,
            own_keys,
        }
    }

    /// The genuine frame chosen by `which` (decoded), if any was captured.
    pub fn genuine_frame(&self, which: u8) -> Option<Frame> {
        if self.genuine.is_empty() {
            return None;
        }
        let bytes = &self.genuine[which as usize % self.genuine.len()];
        Frame::decode(bytes, self.b.config(), u64::MAX).ok()
    }

    /// Seals `frame` with the cluster key if the cluster is keyed.
    pub fn seal_if_keyed(&self, frame: &[u8]) -> Bytes {
        if self.keyed {
            keyring().seal(CLUSTER, frame)
        } else {
            Bytes::copy_from_slice(frame)
        }
    }

    /// Hands `bytes` to `b`, then checks the invariants.
    pub fn feed(&mut self, bytes: &[u8]) {
        let result = self.b.handle_frame(self.now, "a", bytes);
        if let Err(e) = result {
            // Every error displays without panicking.
            let _ = e.to_string();
        }
        self.check();
    }

    /// Advances time and runs `b`'s round, then checks the invariants.
    pub fn tick(&mut self, ms: u16) {
        self.now += Duration::from_millis(u64::from(ms));
        self.b.handle_tick(self.now);
        self.check();
        // Keep the correspondents' queues from growing across a long input.
        drain(&mut self.a);
        drain(&mut self.c);
    }

    /// What must hold whatever `b` was fed: every frame `b` emits is within
    /// `max_frame_bytes`, opens under the cluster key when keyed, and is
    /// accepted by a peer with the same configuration; `b` tracks at most
    /// `max_peers` others and `max_keys_per_peer` live keys each; `b`'s own
    /// keys never change.
    pub fn check(&mut self) {
        let cfg = self.b.config().clone();
        for t in drain(&mut self.b) {
            assert!(
                t.frame.len() <= cfg.max_frame_bytes,
                "b sent {} bytes, over max_frame_bytes {}",
                t.frame.len(),
                cfg.max_frame_bytes
            );
            let plain = if self.keyed {
                keyring()
                    .open(CLUSTER, &t.frame)
                    .expect("b's frames open under the cluster key")
            } else {
                assert!(!Keyring::is_sealed(&t.frame), "unkeyed b sealed a frame");
                t.frame.to_vec()
            };
            let frame = match Frame::decode(&plain, &cfg, u64::MAX) {
                Ok(f) => f,
                Err(e) => panic!("a peer would drop what b sent: {e}"),
            };
            assert_eq!(frame.sender.id.as_str(), "b");
        }
        let views: Vec<_> = self.b.peers().collect();
        assert!(views.len() <= cfg.max_peers + 1, "{} peers", views.len());
        for v in &views {
            assert!(
                v.keys <= cfg.max_keys_per_peer,
                "{} holds {} keys",
                v.id,
                v.keys
            );
        }
        assert_eq!(
            self.b.keys(&PeerId::from("b")),
            self.own_keys,
            "b's own keys changed"
        );
    }
}

/// Delivers every queued frame among `engines` (addresses are ids) until
/// none is left, for at most 16 waves.
fn deliver_all(engines: &mut [&mut Engine], now: Instant) {
    for _ in 0..16 {
        let mut queued = Vec::new();
        for e in engines.iter_mut() {
            let from = e.id().to_string();
            for t in drain(e) {
                queued.push((from.clone(), t));
            }
        }
        if queued.is_empty() {
            return;
        }
        for (from, t) in queued {
            if let Some(e) = engines.iter_mut().find(|e| e.id().as_str() == t.to) {
                let _ = e.handle_frame(now, &from, &t.frame);
            }
        }
    }
}

/// Reads the mutation script: one byte at a time, zero when exhausted.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, _| (v << 8) | u64::from(self.byte()))
    }
    /// An interesting number: small, near a limit, or anything.
    fn number(&mut self) -> u64 {
        match self.byte() % 8 {
            0..=3 => u64::from(self.byte() % 16),
            4 => (1 << 48) + u64::from(self.byte() % 3) - 1,
            5 => GEN_B + u64::from(self.byte()) * 1000,
            6 => u64::MAX - u64::from(self.byte() % 2),
            _ => self.u64(),
        }
    }
    /// An id: one of the cluster's, or a short or long made-up one.
    fn id(&mut self) -> String {
        match self.byte() % 8 {
            0 => "a".into(),
            1 => "b".into(),
            2 => "c".into(),
            3 => String::new(),
            4 => "x".repeat(16 + (self.byte() % 2) as usize),
            _ => format!("p{}", self.byte() % 12),
        }
    }
    fn bytes(&mut self) -> Bytes {
        let len = match self.byte() % 4 {
            0 => 0,
            1 => 64 + (self.byte() % 2) as usize,
            _ => (self.byte() % 8) as usize,
        };
        Bytes::from((0..len).map(|_| self.byte()).collect::<Vec<u8>>())
    }
}

/// Applies the mutations `script` describes to a genuine frame.
pub fn mutate(frame: &mut Frame, script: &[u8]) {
    let mut s = Script(script);
    for _ in 0..32 {
        if s.done() {
            break;
        }
        match s.byte() % 14 {
            0 => frame.sender.generation = s.number(),
            1 => frame.sender.id = s.id().into(),
            2 => frame.sender.addr = s.id(),
            3 => frame.protocol = (s.number() % 4) as u32,
            4 => {
                // Switch the body's kind, keeping what can be kept.
                let (digest, deltas) = match std::mem::replace(&mut frame.body, Body::Ack(vec![])) {
                    Body::Syn(d) => (d, vec![]),
                    Body::SynAck(d, x) => (d, x),
                    Body::Ack(x) => (Default::default(), x),
                    // A probe holds neither.
                    Body::Probe(_) | Body::ProbeAck(_) => (Default::default(), vec![]),
                };
                frame.body = match s.byte() % 3 {
                    0 => Body::Syn(digest),
                    1 => Body::SynAck(digest, deltas),
                    _ => Body::Ack(deltas),
                };
            }
            5..=7 => {
                let digest = match &mut frame.body {
                    Body::Syn(d) | Body::SynAck(d, _) => d,
                    Body::Ack(_) | Body::Probe(_) | Body::ProbeAck(_) => continue,
                };
                match s.byte() % 5 {
                    0 => digest.entries.push(DigestEntry {
                        id: s.id().into(),
                        generation: s.number(),
                        max_version: s.number(),
                        heartbeat: s.number(),
                        gc_floor: s.number(),
                        status: match s.byte() % 3 {
                            1 => PeerStatus::Dead,
                            2 => PeerStatus::Left,
                            _ => PeerStatus::Live,
                        },
                        status_age_ms: s.number(),
                    }),
                    1 if !digest.entries.is_empty() => {
                        let i = s.byte() as usize % digest.entries.len();
                        digest.entries.remove(i);
                    }
                    2 if !digest.entries.is_empty() => {
                        let i = s.byte() as usize % digest.entries.len();
                        let e = &mut digest.entries[i];
                        match s.byte() % 5 {
                            0 => e.generation = s.number(),
                            1 => e.max_version = s.number(),
                            2 => e.heartbeat = s.number(),
                            3 => e.gc_floor = s.number(),
                            4 if s.byte() % 2 == 0 => {
                                e.status = match s.byte() % 3 {
                                    0 => PeerStatus::Live,
                                    1 => PeerStatus::Dead,
                                    _ => PeerStatus::Left,
                                };
                                e.status_age_ms = s.number();
                            }
                            _ => e.id = s.id().into(),
                        }
                    }
                    3 => digest.ranged = !digest.ranged,
                    _ => {
                        if s.byte() % 2 == 0 {
                            digest.range_start = s.id();
                        } else {
                            digest.range_end = s.id();
                        }
                    }
                }
            }
            12 => {
                // A made-up broadcast: every field at or near its limits.
                let key = if s.byte() % 2 == 0 {
                    Bytes::from(vec![s.byte(); 32])
                } else {
                    s.bytes()
                };
                let signature = if s.byte() % 2 == 0 {
                    Bytes::from(vec![s.byte(); 64])
                } else {
                    s.bytes()
                };
                frame.broadcasts.push(Broadcast {
                    topic: s.id(),
                    author: s.id().into(),
                    author_key: key,
                    seq: s.number(),
                    payload: s.bytes(),
                    signature,
                    kind: match s.byte() % 3 {
                        0 => BroadcastKind::Message,
                        1 => BroadcastKind::Query,
                        _ => BroadcastKind::Reply,
                    },
                    hops: (s.number() % 300) as u32,
                    timeout_ms: s.number(),
                    reply_to: s.id(),
                    request_id: s.bytes(),
                    filter_key: s.id(),
                    filter_value: s.bytes(),
                });
            }
            13 => {
                // A genuinely signed broadcast, then maybe one field altered
                // (a forgery) or sent again (a duplicate or replay).
                let author = Identity::from_bytes(&[0x17; 32]).expect("32 bytes");
                let mut m = sign(
                    &author,
                    CLUSTER,
                    &s.id(),
                    &PeerId::from(s.id()),
                    s.number(),
                    s.bytes(),
                );
                match s.byte() % 4 {
                    0 => m.payload = s.bytes(),
                    1 => m.seq = s.number(),
                    2 => frame.broadcasts.push(m.clone()),
                    _ => {}
                }
                frame.broadcasts.push(m);
            }
            _ => {
                let deltas = match &mut frame.body {
                    Body::SynAck(_, x) | Body::Ack(x) => x,
                    Body::Syn(_) | Body::Probe(_) | Body::ProbeAck(_) => continue,
                };
                if deltas.is_empty() || s.byte() % 4 == 0 {
                    let from = s.number();
                    deltas.push(PeerDelta {
                        id: s.id().into(),
                        generation: s.number(),
                        addr: s.id().into(),
                        heartbeat: s.number(),
                        from_version: from,
                        to_version: from.saturating_add(s.number() % 8),
                        gc_floor: s.number(),
                        reset: s.byte() % 2 == 1,
                        status: match s.byte() % 4 {
                            1 => PeerStatus::Left,
                            2 => PeerStatus::Dead,
                            _ => PeerStatus::Live,
                        },
                        status_age_ms: s.number(),
                        heartbeat_age_ms: s.number(),
                        entries: vec![],
                    });
                    continue;
                }
                let i = s.byte() as usize % deltas.len();
                let d = &mut deltas[i];
                match s.byte() % 12 {
                    0 => d.generation = s.number(),
                    1 => d.heartbeat = s.number(),
                    2 => d.from_version = s.number(),
                    3 => d.to_version = s.number(),
                    4 => d.gc_floor = s.number(),
                    5 => d.reset = !d.reset,
                    6 => {
                        // Any status, with any age.
                        d.status = match s.byte() % 3 {
                            0 => PeerStatus::Live,
                            1 => PeerStatus::Dead,
                            _ => PeerStatus::Left,
                        };
                        d.status_age_ms = s.number();
                        d.heartbeat_age_ms = s.number();
                    }
                    7 => d.id = s.id().into(),
                    8 => {
                        // A well-formed entry at the end of the range.
                        d.to_version = d.to_version.saturating_add(1);
                        let deleted = s.byte() % 3 == 0;
                        d.entries.push(KeyValue {
                            key: format!("k{}", s.byte() % 8),
                            value: if deleted { Bytes::new() } else { s.bytes() },
                            version: d.to_version,
                            deleted,
                        });
                    }
                    9 if !d.entries.is_empty() => {
                        let j = s.byte() as usize % d.entries.len();
                        d.entries.remove(j);
                    }
                    10 if !d.entries.is_empty() => {
                        let j = s.byte() as usize % d.entries.len();
                        let kv = &mut d.entries[j];
                        match s.byte() % 4 {
                            0 => kv.key = s.id(),
                            1 => kv.value = s.bytes(),
                            2 => kv.version = s.number(),
                            _ => kv.deleted = !kv.deleted,
                        }
                    }
                    _ => {
                        deltas.remove(i);
                    }
                }
            }
        }
    }
}

/// The `apply_frame` target: see the module documentation for the format.
pub fn run_apply(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut f = Fixture::new(flags & 1 == 1);
    let mut steps = 0;
    while rest.len() >= 3 && steps < 64 {
        steps += 1;
        let op = rest[0] % 7;
        let len = u16::from_le_bytes([rest[1], rest[2]]) as usize;
        let end = (3 + len).min(rest.len());
        let payload = &rest[3..end];
        rest = &rest[end..];
        let which = payload.first().copied().unwrap_or(0);
        match op {
            0 => f.feed(payload),
            1 => {
                let sealed = f.seal_if_keyed(payload);
                f.feed(&sealed);
            }
            2 => {
                if let Some(mut frame) = f.genuine_frame(which) {
                    mutate(&mut frame, payload.get(1..).unwrap_or(&[]));
                    let sealed = f.seal_if_keyed(&frame.encode());
                    f.feed(&sealed);
                }
            }
            3 => {
                if let Some(frame) = f.genuine_frame(which) {
                    let sealed = f.seal_if_keyed(&frame.encode());
                    f.feed(&sealed);
                }
            }
            4 => {
                let ms = u16::from_le_bytes([which, payload.get(1).copied().unwrap_or(0)]);
                f.tick(ms);
            }
            5 => {
                if let Some(frame) = f.genuine_frame(which) {
                    let forged = Keyring::new(wrong_key()).seal(CLUSTER, &frame.encode());
                    f.feed(&forged);
                }
            }
            _ => {
                if let Some(frame) = f.genuine_frame(which) {
                    f.feed(&frame.encode());
                }
            }
        }
    }
}

/// The `decode_frame` target: decoding arbitrary bytes never panics; what
/// decodes passes the raw-byte checks, re-encodes to at most its input's
/// length with `encoded_len` exact, and decodes back to itself; opening
/// arbitrary bytes never panics, and the keyring opens what it sealed.
pub fn run_decode(data: &[u8]) {
    let lax = Config::local().cluster_id(CLUSTER);
    for cfg in [config(false), lax] {
        match Frame::decode(data, &cfg, u64::MAX) {
            Ok(frame) => {
                let bytes = frame.encode();
                assert_eq!(bytes.len(), frame.encoded_len(), "encoded_len is exact");
                assert!(bytes.len() <= data.len(), "re-encoding grew the frame");
                let again =
                    Frame::decode(&bytes, &cfg, u64::MAX).expect("re-encoded frame decodes");
                assert_eq!(again, frame);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    let ring = keyring();
    // Whatever opens (the corpus holds genuine sealed frames) must be the
    // payload between the header and the tag.
    if let Ok(plain) = ring.open(CLUSTER, data) {
        assert_eq!(
            plain.len() + gossip_core::keyring::SEAL_OVERHEAD,
            data.len()
        );
    }
    let sealed = ring.seal(CLUSTER, data);
    assert_eq!(ring.open(CLUSTER, &sealed).as_deref(), Ok(data));
}

/// The seed corpus: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for keyed in [false, true] {
        let f = Fixture::new(keyed);
        let tag = if keyed { "keyed" } else { "plain" };
        for (i, g) in f.genuine.iter().enumerate() {
            let kind = match f.genuine_frame(i as u8).map(|fr| fr.body) {
                Some(Body::Syn(_)) => "syn",
                Some(Body::SynAck(..)) => "synack",
                _ => "ack",
            };
            if !keyed {
                out.push(("decode_frame", format!("genuine-{kind}"), g.to_vec()));
            } else {
                out.push((
                    "decode_frame",
                    format!("sealed-{kind}"),
                    f.seal_if_keyed(g).to_vec(),
                ));
            }
            let flags = u8::from(keyed);
            let rec = |op: u8, payload: &[u8]| {
                let mut r = vec![op, payload.len() as u8, (payload.len() >> 8) as u8];
                r.extend_from_slice(payload);
                r
            };
            // The frame as captured (raw / sealed by the harness).
            let mut d = vec![flags];
            d.extend(rec(if keyed { 1 } else { 0 }, g));
            out.push(("apply_frame", format!("{tag}-{kind}"), d));
            // Replayed, mutated, then a round.
            let mut d = vec![flags];
            d.extend(rec(3, &[i as u8]));
            d.extend(rec(2, &[i as u8, 9, 8, 0, 2, 7, 5, 5, 1]));
            d.extend(rec(4, &[100, 0]));
            d.extend(rec(2, &[i as u8, 5, 0, 4, 3, 3, 3, 3, 3]));
            out.push(("apply_frame", format!("{tag}-{kind}-mutated"), d));
            // Forged and plaintext variants.
            let mut d = vec![flags];
            d.extend(rec(5, &[i as u8]));
            d.extend(rec(6, &[i as u8]));
            d.extend(rec(4, &[0, 4]));
            out.push(("apply_frame", format!("{tag}-{kind}-forged"), d));
            // Broadcasts riding along: made-up ones, then signed ones
            // (as they are, altered, twice).
            let mut d = vec![flags];
            d.extend(rec(
                2,
                &[i as u8, 12, 0, 3, 1, 0, 2, 1, 5, 2, 3, 0, 4, 1, 1, 2],
            ));
            d.extend(rec(
                2,
                &[
                    i as u8, 13, 7, 2, 5, 3, 3, 13, 7, 2, 5, 3, 0, 13, 5, 1, 4, 2, 2,
                ],
            ));
            d.extend(rec(2, &[i as u8, 13, 7, 2, 5, 3, 1]));
            d.extend(rec(4, &[100, 0]));
            out.push(("apply_frame", format!("{tag}-{kind}-broadcasts"), d));
        }
        if !keyed {
            // A genuine frame carrying a signed message and a signed query.
            if let Some(mut fr) = f.genuine_frame(0) {
                let author = Identity::from_bytes(&[0x17; 32]).expect("32 bytes");
                fr.broadcasts.push(sign(
                    &author,
                    CLUSTER,
                    "t",
                    &PeerId::from("x"),
                    1 << 40,
                    Bytes::from_static(b"hello"),
                ));
                fr.broadcasts.push(gossip_core::pubsub::sign_broadcast(
                    &author,
                    CLUSTER,
                    Broadcast {
                        topic: "q".into(),
                        author: PeerId::from("x"),
                        seq: (1 << 40) + 1,
                        kind: BroadcastKind::Query,
                        hops: 3,
                        timeout_ms: 1000,
                        reply_to: "x".into(),
                        filter_key: "k".into(),
                        filter_value: Bytes::from_static(b"v"),
                        ..Broadcast::message_defaults()
                    },
                ));
                out.push((
                    "decode_frame",
                    "genuine-broadcasts".into(),
                    fr.encode().to_vec(),
                ));
            }
        }
        // Silence: time passes in rounds, peers go dead.
        let mut d = vec![u8::from(keyed)];
        for _ in 0..8 {
            d.extend([4, 2, 0, 0, 2]);
        }
        out.push(("apply_frame", format!("{tag}-silence"), d));
    }
    // Edge cases for the decoder.
    let edges: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("magic-only", vec![0xE7]),
        ("sealed-header-only", {
            let mut v = vec![0xE7, 1];
            v.extend(key().id().0.to_be_bytes());
            v.extend([0; 24 + 16]);
            v
        }),
        ("protocol-1-only", vec![0x08, 0x01]),
        (
            "varint-overflow",
            vec![
                0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F,
            ],
        ),
        ("group", vec![0x0B, 0x0C]),
        ("length-past-end", vec![0x12, 0x7F, b'f']),
        ("field-zero", vec![0x00, 0x00]),
    ];
    for (name, bytes) in edges {
        out.push(("decode_frame", name.to_string(), bytes));
    }
    out
}
