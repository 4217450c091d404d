//! The wire format: frames, their encoding, exact sizes, and validation.
//!
//! The generated protobuf types (from `proto/gossip.proto`) stay private to
//! this module; the engine works with the plain types below, converted at the
//! edge. Decoding checks every limit before the engine sees a frame, so a
//! frame the engine handles is well-formed and within bounds.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::Config;
use crate::error::DecodeError;
use crate::{PeerId, PeerStatus};

mod decode;

// The frame, digest and exchange messages are read by `decode` and written
// by `enc` without them; the tests hold both to prost's reading and writing.
#[allow(missing_docs, unreachable_pub, dead_code, clippy::all)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/gossip.v1.rs"));
}

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// One message on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Protocol version of the sender.
    pub protocol: u32,
    /// Cluster the frame belongs to.
    pub cluster_id: String,
    /// Who sent it and where to answer.
    pub sender: Sender,
    /// The message.
    pub body: Body,
    /// Epidemic broadcasts riding on the message (encoded inside the body:
    /// `Syn.broadcasts`, `SynAck.broadcasts`, `Ack.broadcasts`). Empty in
    /// steady state, when they cost no byte.
    pub broadcasts: Vec<Broadcast>,
}

/// The sender of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// Its id.
    pub id: PeerId,
    /// Its generation.
    pub generation: u64,
    /// The address to answer at.
    pub addr: String,
}

/// The three messages of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The initiator's digest.
    Syn(Digest),
    /// Requests from the responder, and the deltas the initiator lacks.
    SynAck(Digest, Vec<PeerDelta>),
    /// The deltas the responder asked for.
    Ack(Vec<PeerDelta>),
    /// Monitored liveness: a watcher asks another peer about a silent
    /// peer, or a helper that does not time the peer pings it (the target
    /// is then the receiver itself).
    Probe(Probe),
    /// The answer to a [`Body::Probe`].
    ProbeAck(Probe),
}

/// A question about a watched peer gone silent, or its answer (monitored
/// liveness, SWIM's indirect probe; see `monitor.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The peer in doubt.
    pub target: PeerId,
    /// Its generation as the sender holds it.
    pub generation: u64,
    /// The sender's last heartbeat of it.
    pub heartbeat: u64,
    /// Question: how long the asker has not heard it. Answer: how long
    /// since the answerer's last beat of it, when `timed`.
    pub silence_ms: u64,
    /// Answer only: whether the answerer times the target itself (watches
    /// it and has had a beat since it began to).
    pub timed: bool,
}

impl Probe {
    fn encoded_len(&self) -> usize {
        len_bytes(self.target.as_str().len())
            + len_u64(self.generation)
            + len_u64(self.heartbeat)
            + len_u64(self.silence_ms)
            + len_bool(self.timed)
    }
    fn encode_into(&self, b: &mut Vec<u8>) {
        enc::bytes(1, self.target.as_str().as_bytes(), b);
        enc::uint(2, self.generation, b);
        enc::uint(3, self.heartbeat, b);
        enc::uint(4, self.silence_ms, b);
        enc::boolean(5, self.timed, b);
    }
}

/// A summary of what a node knows; see `proto/gossip.proto`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Digest {
    /// Whether absence from `entries` within the range means "unknown".
    pub ranged: bool,
    /// First id covered (inclusive).
    pub range_start: String,
    /// First id not covered; empty for no upper bound.
    pub range_end: String,
    /// The entries.
    pub entries: Vec<DigestEntry>,
    /// The idle exchange's summary of the sender's whole table, in place
    /// of entries (see [`Summary`]).
    pub summary: Option<Summary>,
    /// For a digest of some buckets only: a bitmap of `8 * len` buckets
    /// (a power of two, at least 8); a peer in the range is covered only if
    /// its bucket's bit is set. Empty: every peer in the range.
    pub cover: Bytes,
    /// A Bloom filter of the peers the digest covers beyond its entries
    /// (see `filter.rs` for the layout): a peer of the range held at
    /// another generation or version, or not at all, is not in it; one in
    /// a hundred or so tests as held wrongly. Empty: none.
    pub filter: Bytes,
}

/// A summary of a node's whole table, for the idle exchange: when nothing
/// changed, two nodes compare these instead of a digest entry per peer, and
/// only heartbeats move.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// XOR over every peer held (the node itself included) of a hash of
    /// its id, generation, max_version, gc_floor and status (with relayed
    /// liveness, whether it left: see `not_live`).
    pub hash: u64,
    /// How many peers the table holds, the node itself included (at least 1).
    pub peers: u32,
    /// The low 8 bits of each peer's heartbeat, in id order: `peers`
    /// bytes, or none (monitored liveness, where heartbeats are not
    /// relayed). Meaningful only to a receiver whose own summary has the
    /// same hash and count.
    pub heartbeats: Bytes,
    /// The sender's own heartbeat when the summary is a beat to a node that
    /// watches it (monitored liveness, `Config::monitors`); 0 otherwise.
    pub heartbeat: u64,
    /// The table's hash by bucket, as 4-byte little-endian words (a power
    /// of two of them, at least 8), for reconciling two large tables that
    /// differ; empty otherwise (see `table_hash.rs`).
    pub buckets: Bytes,
    /// With `heartbeats` (relayed liveness): the positions, in id order
    /// from 0, of the peers the sender does not hold live, increasing. A
    /// relayed death is the holder's own judgement and is left out of
    /// `hash`; the receiver takes a heartbeat byte as proof of life only
    /// where the sender holds the peer live.
    pub not_live: Vec<u32>,
}

impl Digest {
    /// Whether `id` lies in the digest's range (false for unranged digests).
    pub fn covers(&self, id: &str) -> bool {
        self.ranged
            && id >= self.range_start.as_str()
            && (self.range_end.is_empty() || id < self.range_end.as_str())
            && (self.cover.is_empty() || crate::table_hash::bitmap_covers(&self.cover, id))
    }
}

/// What one node knows of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestEntry {
    /// The peer.
    pub id: PeerId,
    /// Its generation (0: unknown).
    pub generation: u64,
    /// Highest version held.
    pub max_version: u64,
    /// Highest heartbeat seen.
    pub heartbeat: u64,
    /// Garbage-collection floor.
    pub gc_floor: u64,
    /// How the sender sees the peer.
    pub status: PeerStatus,
    /// For how long the sender has seen it so, in milliseconds (0 for live).
    pub status_age_ms: u64,
}

/// One peer's entries with versions in `(from_version, to_version]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDelta {
    /// The peer.
    pub id: PeerId,
    /// Its generation.
    pub generation: u64,
    /// Its address: shared, since every node that holds the peer holds it
    /// (a decoded one is interned; an empty one leaves a known peer's
    /// address as it was).
    pub addr: Arc<String>,
    /// Its heartbeat as the sender knows it.
    pub heartbeat: u64,
    /// Exclusive lower bound of the versions covered.
    pub from_version: u64,
    /// Inclusive upper bound of the versions covered.
    pub to_version: u64,
    /// The sender's garbage-collection floor for the peer.
    pub gc_floor: u64,
    /// The receiver must drop its keys for the peer first.
    pub reset: bool,
    /// How the sender sees the peer. `Left` is honoured only on a complete
    /// delta (`to_version` is the sender's `max_version`).
    pub status: PeerStatus,
    /// For how long the sender has seen it so, in milliseconds (0 for live).
    pub status_age_ms: u64,
    /// How long ago the sender saw `heartbeat` arrive, in milliseconds.
    pub heartbeat_age_ms: u64,
    /// Entries in increasing version order.
    pub entries: Vec<KeyValue>,
}

/// A versioned key/value or tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (empty for a tombstone).
    pub value: Bytes,
    /// The owner's version.
    pub version: u64,
    /// Whether this is a tombstone.
    pub deleted: bool,
}

/// One message of the epidemic broadcast channel; see `proto/gossip.proto`
/// and [`crate::pubsub`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// The topic.
    pub topic: String,
    /// The author's node id as it claims it (covered by the signature).
    pub author: PeerId,
    /// The author's ed25519 public key, 32 bytes.
    pub author_key: Bytes,
    /// The author's sequence number (positive).
    pub seq: u64,
    /// The message.
    pub payload: Bytes,
    /// The ed25519 signature, 64 bytes.
    pub signature: Bytes,
    /// What the message is.
    pub kind: BroadcastKind,
    /// Query: hops it may still travel (not signed; relays decrement it).
    pub hops: u32,
    /// Query: how long the originator waits for replies, in milliseconds.
    pub timeout_ms: u64,
    /// Query: the originator's address, where replies go.
    pub reply_to: String,
    /// Reply: the id of the query it answers.
    pub request_id: Bytes,
    /// Query: only nodes whose key `filter_key` holds `filter_value` answer
    /// (empty: every node).
    pub filter_key: String,
    /// Query: the value `filter_key` must hold.
    pub filter_value: Bytes,
}

/// What a [`Broadcast`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum BroadcastKind {
    /// A topic message, delivered to the topic's subscribers.
    #[default]
    Message,
    /// A query, forwarded up to its hop limit, answered by replies.
    Query,
    /// A reply to a query, sent straight to its originator.
    Reply,
}

impl BroadcastKind {
    fn code(self) -> u64 {
        match self {
            BroadcastKind::Message => 0,
            BroadcastKind::Query => 1,
            BroadcastKind::Reply => 2,
        }
    }
}

/// Length of an ed25519 public key.
pub const AUTHOR_KEY_LEN: usize = 32;
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a message id, as a reply names the query it answers.
pub const REQUEST_ID_LEN: usize = 16;

// ---- exact encoded sizes (proto3 omits default scalars) -------------------

fn varint(v: u64) -> usize {
    prost::encoding::encoded_len_varint(v)
}
fn len_u64(v: u64) -> usize {
    if v == 0 {
        0
    } else {
        1 + varint(v)
    }
}
fn status_code(s: PeerStatus) -> u64 {
    match s {
        PeerStatus::Live => 0,
        PeerStatus::Dead => 1,
        PeerStatus::Left => 2,
    }
}
fn len_status(s: PeerStatus) -> usize {
    len_u64(status_code(s))
}
fn len_bool(b: bool) -> usize {
    if b {
        2
    } else {
        0
    }
}
fn len_bytes(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 + varint(n as u64) + n
    }
}
/// Size of an embedded message field (or repeated element) of body size `n`.
pub(crate) fn len_msg(n: usize) -> usize {
    1 + varint(n as u64) + n
}

impl KeyValue {
    /// Encoded size of the message body.
    pub fn encoded_len(&self) -> usize {
        len_bytes(self.key.len())
            + len_bytes(self.value.len())
            + len_u64(self.version)
            + len_bool(self.deleted)
    }
}

impl Broadcast {
    /// Encoded size of the message body.
    pub fn encoded_len(&self) -> usize {
        len_bytes(self.topic.len())
            + len_bytes(self.author.as_str().len())
            + len_bytes(self.author_key.len())
            + len_u64(self.seq)
            + len_bytes(self.payload.len())
            + len_bytes(self.signature.len())
            + len_u64(self.kind.code())
            + len_u64(u64::from(self.hops))
            + len_u64(self.timeout_ms)
            + len_bytes(self.reply_to.len())
            + len_bytes(self.request_id.len())
            + len_bytes(self.filter_key.len())
            + len_bytes(self.filter_value.len())
    }
    fn encode_into(&self, b: &mut Vec<u8>) {
        enc::bytes(1, self.topic.as_bytes(), b);
        enc::bytes(2, self.author.as_str().as_bytes(), b);
        enc::bytes(3, &self.author_key, b);
        enc::uint(4, self.seq, b);
        enc::bytes(5, &self.payload, b);
        enc::bytes(6, &self.signature, b);
        enc::uint(7, self.kind.code(), b);
        enc::uint(8, u64::from(self.hops), b);
        enc::uint(9, self.timeout_ms, b);
        enc::bytes(10, self.reply_to.as_bytes(), b);
        enc::bytes(11, &self.request_id, b);
        enc::bytes(12, self.filter_key.as_bytes(), b);
        enc::bytes(13, &self.filter_value, b);
    }
}

impl Broadcast {
    /// A topic message with every field empty: the base to fill in.
    pub fn message_defaults() -> Broadcast {
        Broadcast {
            topic: String::new(),
            author: PeerId::from(""),
            author_key: Bytes::new(),
            seq: 0,
            payload: Bytes::new(),
            signature: Bytes::new(),
            kind: BroadcastKind::Message,
            hops: 0,
            timeout_ms: 0,
            reply_to: String::new(),
            request_id: Bytes::new(),
            filter_key: String::new(),
            filter_value: Bytes::new(),
        }
    }
}

/// Encoded size of a list of broadcasts as repeated fields.
pub(crate) fn broadcasts_len(list: &[Broadcast]) -> usize {
    list.iter().map(|x| len_msg(x.encoded_len())).sum()
}

impl PeerDelta {
    /// Encoded size of the header fields (everything but `entries`).
    pub(crate) fn header_len(&self) -> usize {
        len_bytes(self.id.as_str().len())
            + len_u64(self.generation)
            + len_bytes(self.addr.len())
            + len_u64(self.heartbeat)
            + len_u64(self.from_version)
            + len_u64(self.to_version)
            + len_u64(self.gc_floor)
            + len_bool(self.reset)
            + len_status(self.status)
            + len_u64(self.status_age_ms)
            + len_u64(self.heartbeat_age_ms)
    }
    /// Encoded size of the message body.
    pub fn encoded_len(&self) -> usize {
        self.header_len()
            + self
                .entries
                .iter()
                .map(|e| len_msg(e.encoded_len()))
                .sum::<usize>()
    }
}

impl DigestEntry {
    /// Encoded size of the message body.
    pub fn encoded_len(&self) -> usize {
        len_bytes(self.id.as_str().len())
            + len_u64(self.generation)
            + len_u64(self.max_version)
            + len_u64(self.heartbeat)
            + len_u64(self.gc_floor)
            + len_status(self.status)
            + len_u64(self.status_age_ms)
    }
}

impl Digest {
    /// Encoded size of the header fields (everything but `entries`).
    pub(crate) fn header_len(&self) -> usize {
        len_bool(self.ranged)
            + len_bytes(self.range_start.len())
            + len_bytes(self.range_end.len())
            + self.summary.as_ref().map_or(0, Summary::encoded_len)
            + len_bytes(self.cover.len())
            + len_bytes(self.filter.len())
    }
    /// Encoded size of the message body.
    pub fn encoded_len(&self) -> usize {
        self.header_len()
            + self
                .entries
                .iter()
                .map(|e| len_msg(e.encoded_len()))
                .sum::<usize>()
    }
}

impl Summary {
    /// Encoded size of the three summary fields of a `Digest`.
    pub(crate) fn encoded_len(&self) -> usize {
        (if self.hash == 0 { 0 } else { 9 })
            + len_u64(u64::from(self.peers))
            + len_bytes(self.heartbeats.len())
            + len_u64(self.heartbeat)
            + len_bytes(self.buckets.len())
            + len_bytes(self.not_live_len())
    }
    /// Encoded size of the packed `not_live` positions.
    fn not_live_len(&self) -> usize {
        self.not_live.iter().map(|&i| varint(u64::from(i))).sum()
    }
    /// The encoded size of a summary of `peers` peers (its hash taken as
    /// non-zero), for budgeting before it is built.
    pub(crate) fn len_for(peers: usize) -> usize {
        9 + len_u64(peers as u64) + len_bytes(peers) + len_u64(u64::MAX)
    }
}

impl Sender {
    fn encoded_len(&self) -> usize {
        len_bytes(self.id.as_str().len()) + len_u64(self.generation) + len_bytes(self.addr.len())
    }
}

/// Protobuf field writers that, like proto3, omit default scalars.
mod enc {
    /// A varint as protobuf writes it (prost's `encode_varint` pushes a
    /// byte at a time through `BufMut`, a sixteenth of a join's
    /// instructions by callgrind): small values, most of a frame's, in one
    /// push.
    #[inline]
    pub(super) fn varint(mut v: u64, b: &mut Vec<u8>) {
        if v < 0x80 {
            b.push(v as u8);
            return;
        }
        let mut buf = [0u8; 10];
        let mut n = 0;
        while v >= 0x80 {
            buf[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        buf[n] = v as u8;
        b.extend_from_slice(&buf[..=n]);
    }
    /// A field's key: its tag and wire type (0 varint, 2 length-delimited).
    #[inline]
    fn key(tag: u32, wire_type: u32, b: &mut Vec<u8>) {
        varint(u64::from(tag << 3 | wire_type), b);
    }
    pub(super) fn uint(tag: u32, v: u64, b: &mut Vec<u8>) {
        if v != 0 {
            key(tag, 0, b);
            varint(v, b);
        }
    }
    pub(super) fn boolean(tag: u32, v: bool, b: &mut Vec<u8>) {
        if v {
            key(tag, 0, b);
            b.push(1);
        }
    }
    pub(super) fn bytes(tag: u32, v: &[u8], b: &mut Vec<u8>) {
        if !v.is_empty() {
            header(tag, v.len(), b);
            b.extend_from_slice(v);
        }
    }
    /// The key and length of a length-delimited field of `len` bytes.
    pub(super) fn header(tag: u32, len: usize, b: &mut Vec<u8>) {
        key(tag, 2, b);
        varint(len as u64, b);
    }
}

impl Sender {
    fn encode_into(&self, b: &mut Vec<u8>) {
        enc::bytes(1, self.id.as_str().as_bytes(), b);
        enc::uint(2, self.generation, b);
        enc::bytes(3, self.addr.as_bytes(), b);
    }
}

impl DigestEntry {
    fn encode_into(&self, b: &mut Vec<u8>) {
        enc::bytes(1, self.id.as_str().as_bytes(), b);
        enc::uint(2, self.generation, b);
        enc::uint(3, self.max_version, b);
        enc::uint(4, self.heartbeat, b);
        enc::uint(5, self.gc_floor, b);
        enc::uint(6, status_code(self.status), b);
        enc::uint(7, self.status_age_ms, b);
    }
}

impl Digest {
    fn encode_into(&self, b: &mut Vec<u8>) {
        enc::boolean(1, self.ranged, b);
        enc::bytes(2, self.range_start.as_bytes(), b);
        enc::bytes(3, self.range_end.as_bytes(), b);
        for e in &self.entries {
            enc::header(4, e.encoded_len(), b);
            e.encode_into(b);
        }
        if let Some(sum) = &self.summary {
            if sum.hash != 0 {
                b.push((5 << 3) | 1);
                b.extend_from_slice(&sum.hash.to_le_bytes());
            }
            enc::uint(6, u64::from(sum.peers), b);
            enc::bytes(7, &sum.heartbeats, b);
            enc::uint(8, sum.heartbeat, b);
            enc::bytes(9, &sum.buckets, b);
            if !sum.not_live.is_empty() {
                enc::header(11, sum.not_live_len(), b);
                for &i in &sum.not_live {
                    enc::varint(u64::from(i), b);
                }
            }
        }
        enc::bytes(10, &self.cover, b);
        enc::bytes(12, &self.filter, b);
    }
}

impl KeyValue {
    fn encode_into(&self, b: &mut Vec<u8>) {
        enc::bytes(1, self.key.as_bytes(), b);
        enc::bytes(2, &self.value, b);
        enc::uint(3, self.version, b);
        enc::boolean(4, self.deleted, b);
    }
}

impl PeerDelta {
    fn encode_into(&self, b: &mut Vec<u8>) {
        enc::bytes(1, self.id.as_str().as_bytes(), b);
        enc::uint(2, self.generation, b);
        enc::bytes(3, self.addr.as_bytes(), b);
        enc::uint(4, self.heartbeat, b);
        enc::uint(5, self.from_version, b);
        enc::uint(6, self.to_version, b);
        enc::uint(7, self.gc_floor, b);
        enc::boolean(8, self.reset, b);
        for kv in &self.entries {
            enc::header(10, kv.encoded_len(), b);
            kv.encode_into(b);
        }
        enc::uint(11, status_code(self.status), b);
        enc::uint(12, self.status_age_ms, b);
        enc::uint(13, self.heartbeat_age_ms, b);
    }
}

impl Frame {
    /// Encoded size of everything but the body's content: protocol, cluster,
    /// sender, and the body's own field header for a body of `body_len` bytes.
    pub(crate) fn envelope_len(
        protocol: u32,
        cluster_id: &str,
        sender: &Sender,
        body_len: usize,
    ) -> usize {
        len_u64(protocol as u64)
            + len_bytes(cluster_id.len())
            + len_msg(sender.encoded_len())
            + len_msg(body_len)
    }

    /// Encoded size of the whole frame.
    pub fn encoded_len(&self) -> usize {
        Frame::envelope_len(
            self.protocol,
            &self.cluster_id,
            &self.sender,
            self.body_len(),
        )
    }

    /// Encoded size of the body message's content, broadcasts included.
    fn body_len(&self) -> usize {
        self.sizes().0
    }

    /// The body's encoded size, its digest's (0 without one) and each of
    /// its deltas': each computed once, for [`Frame::encode`] to write
    /// their field headers with.
    fn sizes(&self) -> (usize, usize, Vec<usize>) {
        let (digest, deltas) = match &self.body {
            Body::Syn(d) => (d.encoded_len(), &[][..]),
            Body::SynAck(d, deltas) => (d.encoded_len(), &deltas[..]),
            Body::Ack(deltas) => (0, &deltas[..]),
            // No broadcasts ride on a probe.
            Body::Probe(p) | Body::ProbeAck(p) => return (p.encoded_len(), 0, Vec::new()),
        };
        let lens: Vec<usize> = deltas.iter().map(PeerDelta::encoded_len).collect();
        let digest_field = match self.body {
            Body::Ack(_) => 0,
            _ => len_msg(digest),
        };
        let body = digest_field
            + lens.iter().map(|&n| len_msg(n)).sum::<usize>()
            + broadcasts_len(&self.broadcasts);
        (body, digest, lens)
    }

    /// Encodes the frame: protobuf, byte for byte what prost would write
    /// for the schema, straight from these types into one buffer of the
    /// exact size (no intermediate message, no copy of every peer id).
    pub fn encode(&self) -> Bytes {
        let (body, dl, delta_lens) = self.sizes();
        let len = Frame::envelope_len(self.protocol, &self.cluster_id, &self.sender, body);
        let mut b = Vec::with_capacity(len);
        enc::uint(1, self.protocol as u64, &mut b);
        enc::bytes(2, self.cluster_id.as_bytes(), &mut b);
        enc::header(3, self.sender.encoded_len(), &mut b);
        self.sender.encode_into(&mut b);
        // The broadcasts' field number in each body message.
        let tag = match &self.body {
            Body::Syn(d) => {
                enc::header(10, body, &mut b);
                enc::header(1, dl, &mut b);
                d.encode_into(&mut b);
                2
            }
            Body::SynAck(d, deltas) => {
                enc::header(11, body, &mut b);
                enc::header(1, dl, &mut b);
                d.encode_into(&mut b);
                for (x, &n) in deltas.iter().zip(&delta_lens) {
                    enc::header(2, n, &mut b);
                    x.encode_into(&mut b);
                }
                3
            }
            Body::Ack(deltas) => {
                enc::header(12, body, &mut b);
                for (x, &n) in deltas.iter().zip(&delta_lens) {
                    enc::header(1, n, &mut b);
                    x.encode_into(&mut b);
                }
                2
            }
            Body::Probe(p) | Body::ProbeAck(p) => {
                let tag = if matches!(self.body, Body::Probe(_)) {
                    13
                } else {
                    14
                };
                enc::header(tag, body, &mut b);
                p.encode_into(&mut b);
                debug_assert_eq!(b.len(), self.encoded_len());
                return Bytes::from(b);
            }
        };
        for x in &self.broadcasts {
            enc::header(tag, x.encoded_len(), &mut b);
            x.encode_into(&mut b);
        }
        debug_assert_eq!(b.len(), self.encoded_len());
        Bytes::from(b)
    }

    /// Decodes and validates a frame against the limits in `config`:
    /// size, protocol version, cluster id, id and key lengths, value sizes,
    /// entry counts, version and generation bounds (`max_generation`), and
    /// entry order. Any violation drops the whole frame.
    ///
    /// Sizes, counts and lengths (the checks of [`prescan`]) are taken
    /// on the raw bytes as the frame is read, each before the field it
    /// bounds, so nothing is allocated past a limit.
    pub fn decode(
        bytes: &[u8],
        config: &Config,
        max_generation: u64,
    ) -> Result<Frame, DecodeError> {
        if bytes.len() > config.max_frame_bytes {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: config.max_frame_bytes,
            });
        }
        envelope(bytes, config)?;
        decode::frame(bytes, config, max_generation)
    }
}

/// The most entries one peer's delta may carry: live keys plus as many
/// tombstones. Senders cut deltas at this count as they cut at the byte budget.
pub(crate) fn max_delta_entries(c: &Config) -> usize {
    c.max_keys_per_peer.saturating_mul(2).max(16)
}

/// The most deltas one frame may carry: an honest sender describes each
/// peer it knows at most once, and knows at most `max_peers` others.
pub(crate) fn max_deltas_per_frame(c: &Config) -> usize {
    c.max_peers.saturating_add(1)
}

/// A status from the wire; values this version does not know are invalid.
fn status(code: i32) -> Result<PeerStatus, DecodeError> {
    match code {
        0 => Ok(PeerStatus::Live),
        1 => Ok(PeerStatus::Dead),
        2 => Ok(PeerStatus::Left),
        other => Err(invalid(format!("unknown peer status {other}"))),
    }
}

fn invalid(msg: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(msg.into())
}

fn over(
    what: &'static str,
    got: usize,
    max: usize,
    limit: &'static str,
) -> Result<(), DecodeError> {
    if got > max {
        return Err(DecodeError::OverLimit {
            what,
            got,
            max,
            limit,
        });
    }
    Ok(())
}

fn malformed(msg: &str) -> DecodeError {
    DecodeError::Malformed(msg.to_string())
}

// ---- checking limits on the raw bytes ------------------------------------

/// Walks the protobuf encoding of a `Frame` without allocating and checks
/// what [`Frame::decode`] checks as it reads: that the protocol version and cluster id
/// are ours (`UnknownVersion`, `WrongCluster`), that the wire format is
/// sound as far as lengths and varints go (`Malformed`), and every count
/// and length limit (`OverLimit`): ids, addresses and range bounds
/// (`max_id_bytes`), keys (`max_key_bytes`), values (`max_value_bytes`),
/// digest entries (`max_digest_entries`, summed over the frame, as protobuf
/// merges repeated digests), entries per delta (`2 * max_keys_per_peer`,
/// at least 16), deltas per frame (`max_peers + 1`), and broadcasts: their
/// count per frame (`max_broadcasts_per_frame`), topics (`max_topic_bytes`),
/// authors (`max_id_bytes`), payloads (`max_message_bytes`), keys and
/// signatures (32 and 64 bytes).
///
/// Decoding allocates a struct per entry, each after these checks have
/// passed for it; with these counts bounded, what a frame can make this
/// node allocate is bounded by the limits, not by how many tiny entries fit
/// in `max_frame_bytes`. A frame that decodes is one this function passes.
/// Groups (wire types 3 and 4, deprecated and never sent) are refused as
/// malformed.
pub fn prescan(bytes: &[u8], config: &Config) -> Result<(), DecodeError> {
    envelope(bytes, config)?;
    Scan::new(config).walk(Msg::Frame, bytes)
}

/// The protocol version and cluster id of a frame, checked first: a frame
/// of another cluster with other limits is counted as another cluster's.
/// Reads only the frame's own fields, not what they hold.
fn envelope(bytes: &[u8], config: &Config) -> Result<(), DecodeError> {
    // Version and cluster first, as decoding checks them: a frame of another
    // cluster with other limits is counted as another cluster's.
    let (mut protocol, mut cluster): (u64, &[u8]) = (0, b"");
    let mut buf = bytes;
    while !buf.is_empty() {
        let (field, wire) = key(&mut buf)?;
        match (field, wire) {
            (1, 0) => protocol = read_varint(&mut buf)?,
            (2, 2) => cluster = len_delimited(&mut buf)?,
            _ => skip(&mut buf, wire)?,
        }
    }
    if protocol as u32 != PROTOCOL_VERSION {
        return Err(DecodeError::UnknownVersion {
            got: protocol as u32,
            ours: PROTOCOL_VERSION,
        });
    }
    if cluster != config.cluster_id.as_bytes() {
        return Err(DecodeError::WrongCluster {
            got: String::from_utf8_lossy(cluster).into_owned(),
            ours: config.cluster_id.clone(),
        });
    }
    Ok(())
}

/// The messages of `proto/gossip.proto`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Msg {
    Frame,
    Sender,
    Syn,
    SynAck,
    Ack,
    Digest,
    DigestEntry,
    PeerDelta,
    KeyValue,
    Broadcast,
    Probe,
}

/// The counts and lengths [`prescan`] checks, taken field by field: by
/// [`Scan::walk`] over raw bytes, and by the decoder as it reads (so a frame
/// that decodes is one `prescan` passes, in one pass over its bytes).
struct Scan<'a> {
    config: &'a Config,
    digest_entries: usize,
    deltas: usize,
    broadcasts: usize,
}

impl<'a> Scan<'a> {
    fn new(config: &'a Config) -> Self {
        Scan {
            config,
            digest_entries: 0,
            deltas: 0,
            broadcasts: 0,
        }
    }

    /// Checks every length-delimited field of `buf`, a `msg`, and of the
    /// messages within it.
    fn walk(&mut self, msg: Msg, mut buf: &[u8]) -> Result<(), DecodeError> {
        let mut entries = 0;
        while !buf.is_empty() {
            let (field, wire) = key(&mut buf)?;
            if wire != 2 {
                // Scalars (wrong wire types are left to the decoder).
                skip(&mut buf, wire)?;
                continue;
            }
            let data = len_delimited(&mut buf)?;
            if let Some(inner) = self.field(msg, field, data, &mut entries)? {
                self.walk(inner, data)?;
            }
        }
        Ok(())
    }

    /// Checks field `field` of a `msg`, length-delimited and holding
    /// `data`, against its limit or count (`entries`: a delta's entries so
    /// far). Returns the message `data` holds, if it holds one whose fields
    /// have limits of their own.
    fn field(
        &mut self,
        msg: Msg,
        field: u32,
        data: &[u8],
        entries: &mut usize,
    ) -> Result<Option<Msg>, DecodeError> {
        let c = self.config;
        let id = |what| over(what, data.len(), c.max_id_bytes, "max_id_bytes");
        match (msg, field) {
            (Msg::Frame, 3) => Ok(Some(Msg::Sender)),
            (Msg::Frame, 10) => Ok(Some(Msg::Syn)),
            (Msg::Frame, 11) => Ok(Some(Msg::SynAck)),
            (Msg::Frame, 12) => Ok(Some(Msg::Ack)),
            (Msg::Frame, 13) | (Msg::Frame, 14) => Ok(Some(Msg::Probe)),
            (Msg::Probe, 1) => id("peer id bytes").map(|()| None),
            (Msg::Sender, 1) | (Msg::DigestEntry, 1) | (Msg::PeerDelta, 1) => {
                id("peer id bytes").map(|()| None)
            }
            (Msg::Sender, 3) | (Msg::PeerDelta, 3) => id("address bytes").map(|()| None),
            (Msg::Syn, 1) | (Msg::SynAck, 1) => Ok(Some(Msg::Digest)),
            (Msg::SynAck, 2) | (Msg::Ack, 1) => {
                self.deltas += 1;
                over(
                    "deltas in one frame",
                    self.deltas,
                    max_deltas_per_frame(c),
                    "max_peers",
                )?;
                Ok(Some(Msg::PeerDelta))
            }
            (Msg::Digest, 2) | (Msg::Digest, 3) => id("range bound bytes").map(|()| None),
            (Msg::Digest, 7) => over(
                "summary heartbeat bytes",
                data.len(),
                max_deltas_per_frame(c),
                "max_peers",
            )
            .map(|()| None),
            (Msg::Digest, 9) => over(
                "summary bucket bytes",
                data.len(),
                4 << crate::table_hash::MAX_BUCKET_BITS,
                "2^16 buckets",
            )
            .map(|()| None),
            (Msg::Digest, 10) => over(
                "covered bucket bytes",
                data.len(),
                (1 << crate::table_hash::MAX_BUCKET_BITS) / 8,
                "2^16 buckets",
            )
            .map(|()| None),
            // At most 16 bits a peer (`Config::filter_bits`).
            (Msg::Digest, 12) => over(
                "peer filter bytes",
                data.len(),
                crate::filter::HEADER + 2 * c.max_peers,
                "max_peers",
            )
            .map(|()| None),
            // Packed positions, at most five bytes each.
            (Msg::Digest, 11) => over(
                "not-live position bytes",
                data.len(),
                5 * max_deltas_per_frame(c),
                "max_peers",
            )
            .map(|()| None),
            (Msg::Syn, 2) | (Msg::SynAck, 3) | (Msg::Ack, 2) => {
                self.broadcasts += 1;
                over(
                    "broadcasts in one frame",
                    self.broadcasts,
                    c.max_broadcasts_per_frame,
                    "max_broadcasts_per_frame",
                )?;
                Ok(Some(Msg::Broadcast))
            }
            (Msg::Broadcast, 1) => over(
                "topic bytes",
                data.len(),
                c.max_topic_bytes,
                "max_topic_bytes",
            )
            .map(|()| None),
            (Msg::Broadcast, 2) => id("author id bytes").map(|()| None),
            (Msg::Broadcast, 3) => over(
                "author key bytes",
                data.len(),
                AUTHOR_KEY_LEN,
                "ed25519 public key length",
            )
            .map(|()| None),
            (Msg::Broadcast, 5) => over(
                "message bytes",
                data.len(),
                c.max_message_bytes,
                "max_message_bytes",
            )
            .map(|()| None),
            (Msg::Broadcast, 6) => over(
                "signature bytes",
                data.len(),
                SIGNATURE_LEN,
                "ed25519 signature length",
            )
            .map(|()| None),
            (Msg::Broadcast, 10) => id("reply address bytes").map(|()| None),
            (Msg::Broadcast, 11) => over(
                "request id bytes",
                data.len(),
                REQUEST_ID_LEN,
                "request id length",
            )
            .map(|()| None),
            (Msg::Broadcast, 12) => over(
                "filter key bytes",
                data.len(),
                c.max_key_bytes,
                "max_key_bytes",
            )
            .map(|()| None),
            (Msg::Broadcast, 13) => over(
                "filter value bytes",
                data.len(),
                c.max_value_bytes,
                "max_value_bytes",
            )
            .map(|()| None),
            (Msg::Digest, 4) => {
                self.digest_entries += 1;
                over(
                    "digest entries",
                    self.digest_entries,
                    c.max_digest_entries,
                    "max_digest_entries",
                )?;
                Ok(Some(Msg::DigestEntry))
            }
            (Msg::PeerDelta, 10) => {
                *entries += 1;
                over(
                    "entries in one delta",
                    *entries,
                    max_delta_entries(c),
                    "max_keys_per_peer",
                )?;
                Ok(Some(Msg::KeyValue))
            }
            (Msg::KeyValue, 1) => {
                over("key bytes", data.len(), c.max_key_bytes, "max_key_bytes").map(|()| None)
            }
            (Msg::KeyValue, 2) => over(
                "value bytes",
                data.len(),
                c.max_value_bytes,
                "max_value_bytes",
            )
            .map(|()| None),
            _ => Ok(None),
        }
    }
}

/// A varint, as prost reads it (at most 10 bytes, no overflow).
#[inline]
fn read_varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    // Most varints of a frame (field keys, lengths, flags, small counts)
    // are one byte.
    if let Some((&b, rest)) = buf.split_first() {
        if b < 0x80 {
            *buf = rest;
            return Ok(u64::from(b));
        }
    }
    read_long_varint(buf)
}

fn read_long_varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for i in 0..10 {
        let Some((&b, rest)) = buf.split_first() else {
            return Err(malformed("truncated varint"));
        };
        *buf = rest;
        if i == 9 && b > 1 {
            return Err(malformed("varint overflows 64 bits"));
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err(malformed("varint overflows 64 bits"))
}

/// A field key: (field number, wire type).
#[inline]
fn key(buf: &mut &[u8]) -> Result<(u32, u8), DecodeError> {
    let k = read_varint(buf)?;
    if k > u64::from(u32::MAX) {
        return Err(malformed("field key overflows 32 bits"));
    }
    let (field, wire) = ((k >> 3) as u32, (k & 7) as u8);
    if field == 0 {
        return Err(malformed("field number 0"));
    }
    Ok((field, wire))
}

fn len_delimited<'b>(buf: &mut &'b [u8]) -> Result<&'b [u8], DecodeError> {
    let len = read_varint(buf)?;
    if len > buf.len() as u64 {
        return Err(malformed("length runs past the end of the frame"));
    }
    let (data, rest) = buf.split_at(len as usize);
    *buf = rest;
    Ok(data)
}

fn skip(buf: &mut &[u8], wire: u8) -> Result<(), DecodeError> {
    let n = match wire {
        0 => return read_varint(buf).map(drop),
        1 => 8,
        2 => return len_delimited(buf).map(drop),
        5 => 4,
        _ => return Err(malformed("unsupported wire type (groups are refused)")),
    };
    if buf.len() < n {
        return Err(malformed("truncated fixed-width field"));
    }
    *buf = &buf[n..];
    Ok(())
}

struct Validator<'a> {
    config: &'a Config,
    max_generation: u64,
}

impl Validator<'_> {
    fn id(&self, id: &str) -> Result<PeerId, DecodeError> {
        self.id_bytes(id.as_bytes())
    }
    /// A digest entry's id, a copy of its own. Interning it (as a delta's
    /// id is) costs the shared table's lock and the id's shared count, which
    /// both threads of the simulator touch: with mimalloc, the allocation
    /// is the cheaper (`gossip-bench sim-child --nodes 4000`: 66.7 to 70.1
    /// s of user time against 77.6 to 77.8 with digest ids interned; see
    /// bench/NOTES.md). A digest entry is read and dropped; it never
    /// enters a table.
    fn plain_id(&self, id: &[u8]) -> Result<PeerId, DecodeError> {
        self.check_id(id)?;
        std::str::from_utf8(id)
            .map(PeerId::from)
            .map_err(|_| malformed("a string that is not UTF-8"))
    }
    /// A peer id from a frame's bytes: the shared copy (see `intern.rs`),
    /// read as UTF-8 only if no id held has these bytes.
    fn id_bytes(&self, id: &[u8]) -> Result<PeerId, DecodeError> {
        self.check_id(id)?;
        crate::intern::id_bytes(id).map_err(|_| malformed("a string that is not UTF-8"))
    }
    fn check_id(&self, id: &[u8]) -> Result<(), DecodeError> {
        if id.is_empty() {
            return Err(invalid("empty peer id"));
        }
        over(
            "peer id bytes",
            id.len(),
            self.config.max_id_bytes,
            "max_id_bytes",
        )
    }
    fn addr(&self, addr: &str) -> Result<String, DecodeError> {
        self.check_addr(addr)?;
        Ok(addr.to_owned())
    }
    /// [`Validator::addr`], the shared copy (a peer's address in a delta).
    fn shared_addr(&self, addr: &str) -> Result<Arc<String>, DecodeError> {
        self.check_addr(addr)?;
        Ok(crate::intern::addr(addr))
    }
    fn check_addr(&self, addr: &str) -> Result<(), DecodeError> {
        over(
            "address bytes",
            addr.len(),
            self.config.max_id_bytes,
            "max_id_bytes",
        )
    }
    fn probe(&self, p: pb::Probe) -> Result<Probe, DecodeError> {
        Ok(Probe {
            target: self.id(&p.target)?,
            generation: self.generation(p.generation, false)?,
            heartbeat: self.version("heartbeat", p.heartbeat)?,
            silence_ms: p.silence_ms,
            timed: p.timed,
        })
    }
    fn generation(&self, g: u64, zero_ok: bool) -> Result<u64, DecodeError> {
        if (g == 0 && !zero_ok) || g > self.max_generation {
            return Err(invalid(format!(
                "absurd generation {g} (limit {})",
                self.max_generation
            )));
        }
        Ok(g)
    }
    fn version(&self, what: &str, v: u64) -> Result<u64, DecodeError> {
        if v > self.config.max_version {
            return Err(invalid(format!(
                "absurd {what} {v} (limit {})",
                self.config.max_version
            )));
        }
        Ok(v)
    }
    fn entry(&self, e: decode::EntryIn<'_>) -> Result<DigestEntry, DecodeError> {
        Ok(DigestEntry {
            id: self.plain_id(e.id)?,
            generation: self.generation(e.generation, true)?,
            max_version: self.version("max_version", e.max_version)?,
            heartbeat: self.version("heartbeat", e.heartbeat)?,
            gc_floor: self.version("gc_floor", e.gc_floor)?,
            status: status(e.status)?,
            status_age_ms: e.status_age_ms,
        })
    }
    fn digest(&self, d: decode::DigestIn<'_>) -> Result<Digest, DecodeError> {
        let c = self.config;
        over(
            "range bound bytes",
            d.range_start.len(),
            c.max_id_bytes,
            "max_id_bytes",
        )?;
        over(
            "range bound bytes",
            d.range_end.len(),
            c.max_id_bytes,
            "max_id_bytes",
        )?;
        over(
            "digest entries",
            d.entries.len(),
            c.max_digest_entries,
            "max_digest_entries",
        )?;
        if d.ranged && !d.range_end.is_empty() && d.range_end < d.range_start {
            // Found by fuzzing: a backwards range made the engine panic.
            return Err(invalid("digest range ends before it starts"));
        }
        // Each entry was checked as it was read (`Validator::entry`).
        let entries = d.entries;
        if !d.covered_buckets.is_empty() {
            let n = d.covered_buckets.len();
            over(
                "covered bucket bytes",
                n,
                (1 << crate::table_hash::MAX_BUCKET_BITS) / 8,
                "2^16 buckets",
            )?;
            if !n.is_power_of_two() {
                return Err(invalid(format!(
                    "a bucket bitmap of {n} bytes (not a power of two)"
                )));
            }
            if !d.ranged || d.peer_count != 0 {
                return Err(invalid("a bucket bitmap on a digest that is not ranged"));
            }
        }
        if !d.peer_filter.is_empty() {
            over(
                "peer filter bytes",
                d.peer_filter.len(),
                crate::filter::HEADER + 2 * c.max_peers,
                "max_peers",
            )?;
            crate::filter::check(d.peer_filter).map_err(invalid)?;
            if !d.ranged || d.peer_count != 0 {
                return Err(invalid("a peer filter on a digest that is not ranged"));
            }
        }
        if !d.bucket_hashes.is_empty() {
            let n = d.bucket_hashes.len();
            over(
                "summary bucket bytes",
                n,
                4 << crate::table_hash::MAX_BUCKET_BITS,
                "2^16 buckets",
            )?;
            if n % 4 != 0 || !(n / 4).is_power_of_two() || n / 4 < 8 {
                return Err(invalid(format!(
                    "{n} bytes of bucket hashes (not 4 times a power of two from 8)"
                )));
            }
            if d.peer_count == 0 || !d.heartbeats.is_empty() {
                return Err(invalid(
                    "bucket hashes without a summary, or with its heartbeats",
                ));
            }
        }
        let summary = if d.peer_count == 0 {
            if d.state_hash != 0
                || !d.heartbeats.is_empty()
                || d.sender_heartbeat != 0
                || !d.not_live.is_empty()
            {
                return Err(invalid("digest summary without a peer count"));
            }
            None
        } else {
            over(
                "peers in a summary",
                d.peer_count as usize,
                max_deltas_per_frame(c),
                "max_peers",
            )?;
            // None (monitored liveness relays no heartbeats) or one per peer.
            if !d.heartbeats.is_empty() && d.heartbeats.len() != d.peer_count as usize {
                return Err(invalid(format!(
                    "summary of {} peers with {} heartbeat bytes",
                    d.peer_count,
                    d.heartbeats.len()
                )));
            }
            if !entries.is_empty() || d.ranged {
                return Err(invalid("digest has both entries and a summary"));
            }
            if !d.not_live.is_empty() {
                if d.heartbeats.is_empty() {
                    return Err(invalid("not-live positions without heartbeats"));
                }
                let increasing = d.not_live.windows(2).all(|w| w[0] < w[1]);
                let last = d.not_live[d.not_live.len() - 1];
                if !increasing || last >= d.peer_count {
                    return Err(invalid(format!(
                        "not-live positions out of order or past the summary's {} peers",
                        d.peer_count
                    )));
                }
            }
            Some(Summary {
                hash: d.state_hash,
                peers: d.peer_count,
                heartbeats: Bytes::copy_from_slice(d.heartbeats),
                heartbeat: self.version("sender_heartbeat", d.sender_heartbeat)?,
                buckets: Bytes::copy_from_slice(d.bucket_hashes),
                not_live: d.not_live,
            })
        };
        Ok(Digest {
            ranged: d.ranged,
            range_start: d.range_start.to_owned(),
            range_end: d.range_end.to_owned(),
            entries,
            summary,
            cover: Bytes::copy_from_slice(d.covered_buckets),
            filter: Bytes::copy_from_slice(d.peer_filter),
        })
    }
    fn delta(&self, d: decode::DeltaIn<'_>) -> Result<PeerDelta, DecodeError> {
        let c = self.config;
        let from = self.version("from_version", d.from_version)?;
        let to = self.version("to_version", d.to_version)?;
        if from > to {
            return Err(invalid(format!("delta range ({from}, {to}] is empty")));
        }
        let gc_floor = self.version("gc_floor", d.gc_floor)?;
        over(
            "entries in one delta",
            d.entries.len(),
            max_delta_entries(c),
            "max_keys_per_peer",
        )?;
        let mut prev = from;
        let mut entries = Vec::with_capacity(d.entries.len());
        for kv in d.entries {
            if kv.version <= prev || kv.version > to {
                return Err(invalid(format!(
                    "entry version {} out of order in ({from}, {to}] after {prev}",
                    kv.version
                )));
            }
            prev = kv.version;
            if kv.key.is_empty() {
                return Err(invalid("empty key"));
            }
            over("key bytes", kv.key.len(), c.max_key_bytes, "max_key_bytes")?;
            over(
                "value bytes",
                kv.value.len(),
                c.max_value_bytes,
                "max_value_bytes",
            )?;
            if kv.deleted && !kv.value.is_empty() {
                return Err(invalid("tombstone with a value"));
            }
            entries.push(KeyValue {
                key: kv.key.to_owned(),
                value: Bytes::copy_from_slice(kv.value),
                version: kv.version,
                deleted: kv.deleted,
            });
        }
        Ok(PeerDelta {
            id: self.id_bytes(d.id)?,
            generation: self.generation(d.generation, false)?,
            addr: self.shared_addr(d.addr)?,
            heartbeat: self.version("heartbeat", d.heartbeat)?,
            from_version: from,
            to_version: to,
            gc_floor,
            reset: d.reset,
            status: status(d.status)?,
            status_age_ms: d.status_age_ms,
            heartbeat_age_ms: d.heartbeat_age_ms,
            entries,
        })
    }
}

impl Validator<'_> {
    fn broadcast(&self, b: pb::Broadcast) -> Result<Broadcast, DecodeError> {
        let c = self.config;
        if b.topic.is_empty() {
            return Err(invalid("broadcast with an empty topic"));
        }
        over(
            "topic bytes",
            b.topic.len(),
            c.max_topic_bytes,
            "max_topic_bytes",
        )?;
        over(
            "message bytes",
            b.payload.len(),
            c.max_message_bytes,
            "max_message_bytes",
        )?;
        if b.author_key.len() != AUTHOR_KEY_LEN {
            return Err(invalid(format!(
                "broadcast author key of {} bytes (ed25519 keys are {AUTHOR_KEY_LEN})",
                b.author_key.len()
            )));
        }
        if b.signature.len() != SIGNATURE_LEN {
            return Err(invalid(format!(
                "broadcast signature of {} bytes (ed25519 signatures are {SIGNATURE_LEN})",
                b.signature.len()
            )));
        }
        if b.seq == 0 {
            return Err(invalid("broadcast sequence number 0"));
        }
        let kind = match b.kind {
            0 => BroadcastKind::Message,
            1 => BroadcastKind::Query,
            2 => BroadcastKind::Reply,
            other => return Err(invalid(format!("unknown broadcast kind {other}"))),
        };
        over(
            "reply address bytes",
            b.reply_to.len(),
            c.max_id_bytes,
            "max_id_bytes",
        )?;
        over(
            "filter key bytes",
            b.filter_key.len(),
            c.max_key_bytes,
            "max_key_bytes",
        )?;
        over(
            "filter value bytes",
            b.filter_value.len(),
            c.max_value_bytes,
            "max_value_bytes",
        )?;
        let query = kind == BroadcastKind::Query;
        let reply = kind == BroadcastKind::Reply;
        if query != (b.hops > 0)
            || query == b.reply_to.is_empty()
            || (!query
                && (b.timeout_ms > 0 || !b.filter_key.is_empty() || !b.filter_value.is_empty()))
        {
            return Err(invalid("broadcast fields do not fit its kind"));
        }
        if query
            && (b.hops > c.max_query_hops || b.timeout_ms > c.max_query_timeout.as_millis() as u64)
        {
            return Err(invalid(format!(
                "absurd query: {} hops (limit {}), {} ms (limit {:?})",
                b.hops, c.max_query_hops, b.timeout_ms, c.max_query_timeout
            )));
        }
        if reply != (b.request_id.len() == REQUEST_ID_LEN) || (!reply && !b.request_id.is_empty()) {
            return Err(invalid(
                "a reply names a 16-byte request id, nothing else does",
            ));
        }
        Ok(Broadcast {
            topic: b.topic,
            author: self.id(&b.author)?,
            author_key: b.author_key,
            seq: b.seq,
            payload: b.payload,
            signature: b.signature,
            kind,
            hops: b.hops,
            timeout_ms: b.timeout_ms,
            reply_to: b.reply_to,
            request_id: b.request_id,
            filter_key: b.filter_key,
            filter_value: b.filter_value,
        })
    }
}

#[cfg(test)]
fn broadcast_to_pb(b: &Broadcast) -> pb::Broadcast {
    pb::Broadcast {
        topic: b.topic.clone(),
        author: b.author.to_string(),
        author_key: b.author_key.clone(),
        seq: b.seq,
        payload: b.payload.clone(),
        signature: b.signature.clone(),
        kind: b.kind.code() as i32,
        hops: b.hops,
        timeout_ms: b.timeout_ms,
        reply_to: b.reply_to.clone(),
        request_id: b.request_id.clone(),
        filter_key: b.filter_key.clone(),
        filter_value: b.filter_value.clone(),
    }
}

#[cfg(test)]
fn digest_to_pb(d: &Digest) -> pb::Digest {
    pb::Digest {
        ranged: d.ranged,
        range_start: d.range_start.clone(),
        range_end: d.range_end.clone(),
        entries: d
            .entries
            .iter()
            .map(|e| pb::DigestEntry {
                id: e.id.to_string(),
                generation: e.generation,
                max_version: e.max_version,
                heartbeat: e.heartbeat,
                gc_floor: e.gc_floor,
                status: status_code(e.status) as i32,
                status_age_ms: e.status_age_ms,
            })
            .collect(),
        state_hash: d.summary.as_ref().map_or(0, |x| x.hash),
        peer_count: d.summary.as_ref().map_or(0, |x| x.peers),
        heartbeats: d
            .summary
            .as_ref()
            .map_or_else(Bytes::new, |x| x.heartbeats.clone()),
        sender_heartbeat: d.summary.as_ref().map_or(0, |x| x.heartbeat),
        bucket_hashes: d
            .summary
            .as_ref()
            .map_or_else(Bytes::new, |x| x.buckets.clone()),
        covered_buckets: d.cover.clone(),
        peer_filter: d.filter.clone(),
        not_live: d
            .summary
            .as_ref()
            .map_or_else(Vec::new, |x| x.not_live.clone()),
    }
}

#[cfg(test)]
fn probe_to_pb(p: &Probe) -> pb::Probe {
    pb::Probe {
        target: p.target.to_string(),
        generation: p.generation,
        heartbeat: p.heartbeat,
        silence_ms: p.silence_ms,
        timed: p.timed,
    }
}

#[cfg(test)]
fn delta_to_pb(d: &PeerDelta) -> pb::PeerDelta {
    pb::PeerDelta {
        id: d.id.to_string(),
        generation: d.generation,
        addr: d.addr.to_string(),
        heartbeat: d.heartbeat,
        from_version: d.from_version,
        to_version: d.to_version,
        gc_floor: d.gc_floor,
        reset: d.reset,
        status: status_code(d.status) as i32,
        status_age_ms: d.status_age_ms,
        heartbeat_age_ms: d.heartbeat_age_ms,
        entries: d
            .entries
            .iter()
            .map(|kv| pb::KeyValue {
                key: kv.key.clone(),
                value: kv.value.clone(),
                version: kv.version,
                deleted: kv.deleted,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    /// What prost writes for the same frame, through the generated types.
    fn prost_encode(f: &Frame) -> Vec<u8> {
        frame_to_pb(f).encode_to_vec()
    }

    /// The frame as prost's generated types hold it.
    fn frame_to_pb(f: &Frame) -> pb::Frame {
        pb::Frame {
            protocol: f.protocol,
            cluster_id: f.cluster_id.clone(),
            sender: Some(pb::Sender {
                id: f.sender.id.to_string(),
                generation: f.sender.generation,
                addr: f.sender.addr.clone(),
            }),
            body: Some({
                let broadcasts: Vec<pb::Broadcast> =
                    f.broadcasts.iter().map(broadcast_to_pb).collect();
                match &f.body {
                    Body::Syn(d) => pb::frame::Body::Syn(pb::Syn {
                        digest: Some(digest_to_pb(d)),
                        broadcasts,
                    }),
                    Body::SynAck(d, deltas) => pb::frame::Body::SynAck(pb::SynAck {
                        digest: Some(digest_to_pb(d)),
                        deltas: deltas.iter().map(delta_to_pb).collect(),
                        broadcasts,
                    }),
                    Body::Ack(deltas) => pb::frame::Body::Ack(pb::Ack {
                        deltas: deltas.iter().map(delta_to_pb).collect(),
                        broadcasts,
                    }),
                    Body::Probe(p) => pb::frame::Body::Probe(probe_to_pb(p)),
                    Body::ProbeAck(p) => pb::frame::Body::ProbeAck(probe_to_pb(p)),
                }
            }),
        }
    }

    /// `bytes` changed at random: bits flipped, bytes set, inserted or cut,
    /// the frame truncated, or a piece of it appended (protobuf then reads
    /// repeated fields twice and merges embedded messages).
    fn mutate(bytes: &[u8], rng: &mut impl rand::Rng) -> Vec<u8> {
        let mut m = bytes.to_vec();
        for _ in 0..rng.random_range(1..=2) {
            let at = rng.random_range(0..=m.len());
            match rng.random_range(0..6) {
                0 if at < m.len() => m[at] ^= 1 << rng.random_range(0..8),
                1 if at < m.len() => m[at] = rng.random(),
                2 => m.truncate(at),
                3 => m.insert(at, rng.random()),
                4 => {
                    let end = rng.random_range(at..=m.len().min(at + 8));
                    m.drain(at..end);
                }
                _ => {
                    let from = rng.random_range(0..=at);
                    m.extend_from_within(from..at);
                }
            }
        }
        m
    }

    #[test]
    fn the_hand_decoder_reads_what_prost_reads() {
        use rand::SeedableRng;
        let mut config = Config::local();
        config.cluster_id = "prod".into();
        // Limits the frames reach, so the checks taken while reading are
        // held to `prescan`'s too.
        let mut tight = config.clone();
        tight.max_peers = 8;
        tight.max_keys_per_peer = 4;
        tight.max_digest_entries = 8;
        tight.max_key_bytes = 5;
        tight.max_value_bytes = 64;
        tight.max_id_bytes = 9;
        let seed = 7;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // Decoded by both, refused by both, refused by our checks only,
        // refused by `prescan`'s limits.
        let (mut read, mut refused, mut checked, mut over) = (0, 0, 0, 0);
        for (i, f) in frames().iter().enumerate() {
            let bytes = f.encode();
            // A sender field with an id over every limit, then the frame:
            // prost keeps the later id, `prescan` refuses the earlier.
            let long = Frame {
                sender: Sender {
                    id: PeerId::from("x".repeat(config.max_id_bytes + 1)),
                    ..f.sender.clone()
                },
                ..f.clone()
            }
            .encode();
            let sender_field = pb::Frame::decode(&long[..]).expect("decodes").sender;
            let prefix = pb::Frame {
                sender: sender_field,
                ..Default::default()
            }
            .encode_to_vec();
            let mut cases = vec![
                bytes.to_vec(),
                [&bytes[..], &bytes[..]].concat(),
                [&prefix[..], &bytes[..]].concat(),
            ];
            cases.extend((0..2000).map(|_| mutate(&bytes, &mut rng)));
            for (k, m) in cases.iter().enumerate() {
                let config = if k % 2 == 0 { &config } else { &tight };
                let ours = Frame::decode(m, config, u64::MAX);
                if prescan(m, config).is_err() {
                    assert!(ours.is_err(), "seed {seed}, frame {i}, case {k}");
                    over += 1;
                    continue;
                }
                match (ours, pb::Frame::decode(&m[..])) {
                    (Ok(frame), Ok(mut p)) => {
                        // A body without its digest reads as an empty digest.
                        match &mut p.body {
                            Some(pb::frame::Body::Syn(s)) => {
                                s.digest.get_or_insert_default();
                            }
                            Some(pb::frame::Body::SynAck(s)) => {
                                s.digest.get_or_insert_default();
                            }
                            _ => {}
                        }
                        assert_eq!(frame_to_pb(&frame), p, "seed {seed}, frame {i}, case {k}");
                        read += 1;
                    }
                    (Ok(_), Err(e)) => {
                        panic!("seed {seed}, frame {i}, case {k}: read what prost refuses ({e})")
                    }
                    (Err(DecodeError::Malformed(e)), Ok(_)) => {
                        panic!("seed {seed}, frame {i}, case {k}: refused what prost reads ({e})")
                    }
                    (Err(_), Ok(_)) => checked += 1,
                    (Err(_), Err(_)) => refused += 1,
                }
            }
        }
        // Each kind of outcome comes up often, so the comparison is not empty.
        assert!(
            read > 2000 && refused > 300 && checked > 100 && over > 10000,
            "read {read}, refused {refused}, checked {checked}, over {over}"
        );
    }

    fn entry(id: &str, n: u64) -> DigestEntry {
        DigestEntry {
            id: PeerId::from(id),
            generation: n,
            max_version: n.wrapping_mul(3),
            heartbeat: n.wrapping_mul(1000),
            gc_floor: n / 2,
            status: [PeerStatus::Live, PeerStatus::Dead, PeerStatus::Left][n as usize % 3],
            status_age_ms: (n % 3) * 1234,
        }
    }

    fn delta(id: &str, n: u64, keys: usize) -> PeerDelta {
        PeerDelta {
            id: PeerId::from(id),
            generation: n + 1,
            addr: if n % 2 == 0 {
                String::new().into()
            } else {
                format!("mem:{id}").into()
            },
            heartbeat: n * 7,
            from_version: n,
            to_version: n + keys as u64,
            gc_floor: 0,
            reset: n % 3 == 0,
            status: match n % 5 {
                0 => PeerStatus::Left,
                1 => PeerStatus::Dead,
                _ => PeerStatus::Live,
            },
            status_age_ms: if n % 5 < 2 { n * 17 } else { 0 },
            heartbeat_age_ms: n * 31,
            entries: (0..keys)
                .map(|k| KeyValue {
                    key: format!("key-{k}"),
                    value: if k % 2 == 0 {
                        Bytes::new()
                    } else {
                        Bytes::from(vec![k as u8; k * 50])
                    },
                    version: n + k as u64 + 1,
                    deleted: k % 2 == 0,
                })
                .collect(),
        }
    }

    fn broadcast(n: u64) -> Broadcast {
        Broadcast {
            topic: format!("topic-{}", n % 3),
            author: PeerId::from(format!("author-{n}")),
            author_key: Bytes::from(vec![n as u8; AUTHOR_KEY_LEN]),
            seq: (1_700_000_000_000 << 16) + n * 300,
            payload: Bytes::from(vec![0xa5; (n as usize * 97) % 400]),
            signature: Bytes::from(vec![0x5a ^ n as u8; SIGNATURE_LEN]),
            ..match n % 3 {
                0 => Broadcast::message_defaults(),
                1 => Broadcast {
                    kind: BroadcastKind::Query,
                    hops: n as u32,
                    timeout_ms: n * 1000,
                    reply_to: format!("10.0.0.{n}:7946"),
                    filter_key: if n % 2 == 0 {
                        String::new()
                    } else {
                        "role".into()
                    },
                    filter_value: if n % 2 == 0 {
                        Bytes::new()
                    } else {
                        Bytes::from("db")
                    },
                    ..Broadcast::message_defaults()
                },
                _ => Broadcast {
                    kind: BroadcastKind::Reply,
                    request_id: Bytes::from(vec![n as u8; REQUEST_ID_LEN]),
                    ..Broadcast::message_defaults()
                },
            }
        }
    }

    fn frames() -> Vec<Frame> {
        let sender = Sender {
            id: PeerId::from("node-a"),
            generation: 1_700_000_000_000,
            addr: "127.0.0.1:7946".into(),
        };
        let frame = |body| Frame {
            protocol: PROTOCOL_VERSION,
            cluster_id: "prod".into(),
            sender: sender.clone(),
            body,
            broadcasts: Vec::new(),
        };
        let with = |body, n: u64| Frame {
            broadcasts: (1..=n).map(broadcast).collect(),
            ..frame(body)
        };
        let whole = Digest {
            ranged: false,
            range_start: String::new(),
            range_end: String::new(),
            entries: (0..300)
                .map(|i| entry(&format!("peer-{i:04}"), i))
                .collect(),
            summary: None,
            cover: Bytes::new(),
            filter: Bytes::new(),
        };
        let ranged_copy = Digest {
            ranged: true,
            range_start: "peer-0100".into(),
            range_end: "peer-0200".into(),
            entries: vec![entry("peer-0150", 0)],
            summary: None,
            cover: Bytes::new(),
            filter: Bytes::new(),
        };
        let ranged = Digest {
            ranged: true,
            range_start: "peer-0100".into(),
            range_end: "peer-0200".into(),
            entries: vec![entry("peer-0150", 0), entry("peer-0151", 1 << 30)],
            summary: None,
            cover: Bytes::new(),
            filter: Bytes::new(),
        };
        let deltas: Vec<PeerDelta> = (0..12)
            .map(|i| delta(&format!("p{i}"), i, i as usize))
            .collect();
        let summary = |peers: u32, hash: u64| Digest {
            summary: Some(Summary {
                hash,
                peers,
                heartbeats: (0..peers).map(|i| (i * 37) as u8).collect(),
                heartbeat: 0,
                buckets: Bytes::new(),
                not_live: Vec::new(),
            }),
            ..Digest::default()
        };
        vec![
            frame(Body::Syn(summary(1, 0))),
            frame(Body::Syn(summary(300, u64::MAX - 5))),
            frame(Body::SynAck(summary(50, 0x0123_4567_89ab_cdef), Vec::new())),
            // A beat (monitored liveness): no heartbeat bytes, the sender's own.
            frame(Body::Syn(Digest {
                summary: Some(Summary {
                    hash: 99,
                    peers: 12,
                    heartbeats: Bytes::new(),
                    heartbeat: 300_000,
                    buckets: Bytes::new(),
                    not_live: Vec::new(),
                }),
                ..Digest::default()
            })),
            with(Body::Syn(summary(7, 42)), 2),
            // Relayed liveness: the peers the sender holds dead or left.
            frame(Body::Syn(Digest {
                summary: Some(Summary {
                    not_live: vec![0, 3, 200, 299],
                    ..summary(300, 77).summary.unwrap()
                }),
                ..Digest::default()
            })),
            // Reconciliation: a larger table's bucket hashes, and a digest
            // of some buckets only.
            frame(Body::Syn(Digest {
                summary: Some(Summary {
                    hash: 5,
                    peers: 300,
                    buckets: (0..32u8).flat_map(|i| [i, 0, 0, i]).collect(),
                    ..Summary::default()
                }),
                ..Digest::default()
            })),
            frame(Body::Syn(Digest {
                cover: Bytes::from_static(&[0b1000_0001, 0, 0, 4]),
                filter: Bytes::new(),
                ..ranged.clone()
            })),
            // Indirect probes (monitored liveness), question and answer.
            frame(Body::Probe(Probe {
                target: PeerId::from("peer-0007"),
                generation: 1 << 40,
                heartbeat: 12_345,
                silence_ms: 1_600,
                timed: false,
            })),
            frame(Body::ProbeAck(Probe {
                target: PeerId::from("peer-0007"),
                generation: 1 << 40,
                heartbeat: 12_349,
                silence_ms: 180,
                timed: true,
            })),
            frame(Body::ProbeAck(Probe {
                target: PeerId::from("p"),
                generation: 1,
                heartbeat: 0,
                silence_ms: 0,
                timed: false,
            })),
            frame(Body::Syn(Digest::default())),
            frame(Body::Syn(whole.clone())),
            frame(Body::Syn(ranged.clone())),
            frame(Body::SynAck(Digest::default(), Vec::new())),
            frame(Body::SynAck(ranged, deltas.clone())),
            frame(Body::SynAck(whole, deltas[..3].to_vec())),
            frame(Body::Ack(Vec::new())),
            frame(Body::Ack(deltas.clone())),
            with(Body::Syn(Digest::default()), 1),
            with(Body::Syn(ranged_copy.clone()), 3),
            with(Body::SynAck(Digest::default(), Vec::new()), 2),
            with(Body::SynAck(ranged_copy, deltas[..4].to_vec()), 5),
            with(Body::Ack(Vec::new()), 1),
            with(Body::Ack(deltas), 4),
            Frame {
                protocol: 0,
                cluster_id: String::new(),
                sender: Sender {
                    id: PeerId::from("x"),
                    generation: 0,
                    addr: String::new(),
                },
                body: Body::Ack(vec![delta("y", 0, 0)]),
                broadcasts: Vec::new(),
            },
        ]
    }

    #[test]
    fn the_hand_encoder_writes_what_prost_writes() {
        for (i, f) in frames().iter().enumerate() {
            let ours = f.encode();
            assert_eq!(&ours[..], &prost_encode(f)[..], "frame {i}");
            assert_eq!(ours.len(), f.encoded_len(), "frame {i}");
        }
    }

    #[test]
    fn encoded_frames_decode_to_themselves() {
        let mut config = Config::local();
        config.cluster_id = "prod".into();
        for (i, f) in frames()
            .into_iter()
            .enumerate()
            .filter(|(_, f)| f.protocol != 0)
        {
            let back = Frame::decode(&f.encode(), &config, u64::MAX).expect("decodes");
            assert_eq!(back, f, "frame {i}");
        }
    }

    #[test]
    fn malformed_summaries_are_refused() {
        let mut config = Config::local();
        config.cluster_id = "prod".into();
        config.max_peers = 100;
        let base = frames().remove(0);
        let with_digest = |d: Digest| Frame {
            body: Body::Syn(d),
            ..base.clone()
        };
        let sum = |peers: u32, len: usize| Summary {
            hash: 7,
            peers,
            heartbeats: Bytes::from(vec![1; len]),
            heartbeat: 0,
            buckets: Bytes::new(),
            not_live: Vec::new(),
        };
        // Heartbeats that do not match the count, a count over max_peers,
        // a summary beside entries, a hash with no count, a beat's
        // heartbeat with no count or over max_version; bucket hashes not
        // 4 times a power of two from 8, beside heartbeats, or without a
        // summary; a bucket bitmap not a power of two, or on an unranged
        // digest.
        let buckets = |n: usize| Bytes::from(vec![3u8; n]);
        let bad = [
            with_digest(Digest {
                summary: Some(Summary {
                    buckets: buckets(4 * 12),
                    ..sum(3, 0)
                }),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(Summary {
                    buckets: buckets(4 * 4),
                    ..sum(3, 0)
                }),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(Summary {
                    buckets: buckets(4 * 8),
                    ..sum(3, 3)
                }),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(Summary {
                    buckets: buckets(4 * 8),
                    ..sum(0, 0)
                }),
                ..Digest::default()
            }),
            with_digest(Digest {
                ranged: true,
                cover: buckets(3),
                filter: Bytes::new(),
                ..Digest::default()
            }),
            with_digest(Digest {
                cover: buckets(4),
                filter: Bytes::new(),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(sum(3, 4)),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(sum(500, 500)),
                ..Digest::default()
            }),
            with_digest(Digest {
                entries: vec![entry("peer", 1)],
                summary: Some(sum(1, 1)),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(sum(0, 0)),
                ..Digest::default()
            }),
            // A beat's heartbeat with no peer count, and an absurd one.
            with_digest(Digest {
                summary: Some(Summary {
                    hash: 0,
                    peers: 0,
                    heartbeats: Bytes::new(),
                    heartbeat: 5,
                    buckets: Bytes::new(),
                    not_live: Vec::new(),
                }),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(Summary {
                    heartbeat: u64::MAX,
                    ..sum(3, 0)
                }),
                ..Digest::default()
            }),
            // Not-live positions out of order, repeated, past the count,
            // or with no heartbeats to qualify.
            with_digest(Digest {
                summary: Some(Summary {
                    not_live: vec![2, 1],
                    ..sum(3, 3)
                }),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(Summary {
                    not_live: vec![1, 1],
                    ..sum(3, 3)
                }),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(Summary {
                    not_live: vec![3],
                    ..sum(3, 3)
                }),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(Summary {
                    not_live: vec![0],
                    ..sum(3, 0)
                }),
                ..Digest::default()
            }),
            // A peer filter with no bits, no probes or too many, on an
            // unranged digest, beside a summary, or longer than max_peers
            // peers at 16 bits.
            with_digest(Digest {
                ranged: true,
                filter: Bytes::from(vec![7u8; crate::filter::HEADER]),
                ..Digest::default()
            }),
            with_digest(Digest {
                ranged: true,
                filter: Bytes::from([&[0u8][..], &[1; 9]].concat()),
                ..Digest::default()
            }),
            with_digest(Digest {
                ranged: true,
                filter: Bytes::from([&[17u8][..], &[1; 9]].concat()),
                ..Digest::default()
            }),
            with_digest(Digest {
                filter: Bytes::from(vec![7u8; 12]),
                ..Digest::default()
            }),
            with_digest(Digest {
                summary: Some(sum(3, 0)),
                filter: Bytes::from(vec![7u8; 12]),
                ..Digest::default()
            }),
            with_digest(Digest {
                ranged: true,
                filter: Bytes::from(vec![7u8; crate::filter::HEADER + 2 * config.max_peers + 1]),
                ..Digest::default()
            }),
        ];
        assert_refused(&bad, &config);
    }

    /// Each frame decodes to an `Invalid` or `OverLimit` error.
    fn assert_refused(bad: &[Frame], config: &Config) {
        for (i, f) in bad.iter().enumerate() {
            let err = Frame::decode(&f.encode(), config, u64::MAX);
            assert!(
                matches!(
                    err,
                    Err(DecodeError::Invalid(_)) | Err(DecodeError::OverLimit { .. })
                ),
                "case {i}: {err:?}"
            );
        }
    }

    #[test]
    fn bad_probes_are_refused() {
        let mut config = Config::local();
        config.cluster_id = "prod".into();
        config.max_id_bytes = 16;
        let base = frames().remove(0);
        let probe = |target: &str, generation: u64, heartbeat: u64| Frame {
            body: Body::Probe(Probe {
                target: PeerId::from(target),
                generation,
                heartbeat,
                silence_ms: 10,
                timed: false,
            }),
            ..base.clone()
        };
        let good = probe("peer", 7, 3);
        assert_eq!(
            Frame::decode(&good.encode(), &config, u64::MAX).expect("decodes"),
            good
        );
        let bad = [
            probe("", 7, 3),
            probe("a-target-id-too-long-for-the-limit", 7, 3),
            probe("peer", 0, 3),
            probe("peer", 7, u64::MAX),
        ];
        assert_refused(&bad, &config);
    }
}
