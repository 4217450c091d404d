//! Frames read from protobuf's wire format straight into the engine's types.
//!
//! prost's generated types would first build an intermediate struct per
//! message, a `String` per id (copied again into the id's `Arc`), and grow
//! each repeated field one push at a time; in a join, where a frame carries
//! a digest of every peer and hundreds of deltas, that was a fifth of the
//! simulator's time (bench/NOTES.md, "Frames decoded without prost's
//! structs"). This reader walks the bytes once, takes `prescan`'s limits
//! and counts field by field as it reads (so nothing is allocated past a
//! limit, and a frame that decodes is one [`prescan`](super::prescan)
//! passes), and borrows strings and bytes from the frame until the checks
//! of [`Validator`] turn them into owned values.
//!
//! It reads what prost reads, as protobuf defines it: fields in any order,
//! unknown fields skipped, the last value of a scalar or string kept, the
//! occurrences of an embedded message merged (as if concatenated), repeated
//! `uint32` packed or not, a oneof set to its last variant, strings checked
//! as UTF-8, a known field with another wire type refused. The unit test
//! `the_hand_decoder_reads_what_prost_reads` holds it to prost's reading of
//! the same bytes, mutated and truncated at random. Broadcasts and probes,
//! rare and small, are still read through prost's types.

use prost::Message as _;

use super::{
    invalid, key, len_delimited, malformed, pb, read_varint, Body, DecodeError, Frame, Msg, Scan,
    Sender, Validator, PROTOCOL_VERSION,
};
use crate::config::Config;

/// One field's value, by wire type.
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

impl<'a> Value<'a> {
    fn varint(self) -> Result<u64, DecodeError> {
        match self {
            Value::Varint(v) => Ok(v),
            _ => Err(malformed("a varint field with another wire type")),
        }
    }
    fn fixed64(self) -> Result<u64, DecodeError> {
        match self {
            Value::Fixed64(v) => Ok(v),
            _ => Err(malformed("a fixed64 field with another wire type")),
        }
    }
    fn bytes(self) -> Result<&'a [u8], DecodeError> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err(malformed("a length-delimited field with another wire type")),
        }
    }
    fn str(self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| malformed("a string that is not UTF-8"))
    }
    /// A `bool` as prost reads it: any varint but 0 is true.
    fn boolean(self) -> Result<bool, DecodeError> {
        Ok(self.varint()? != 0)
    }
    /// A `uint32` or an enum (`int32`) as prost reads it: the varint's low
    /// 32 bits.
    fn uint32(self) -> Result<u32, DecodeError> {
        Ok(self.varint()? as u32)
    }
}

/// Calls `f` with each field of `buf`, a `msg`, in wire order, after
/// checking each length-delimited one against its limit or count (`scan`,
/// as [`prescan`](super::prescan) would). A message within it that this
/// module leaves to prost (a sender, a probe, a broadcast) is checked
/// whole here; the others are checked field by field as `f` reads them.
fn fields<'a>(
    mut buf: &'a [u8],
    msg: Msg,
    scan: &mut Scan<'_>,
    mut f: impl FnMut(&mut Scan<'_>, u32, Value<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut entries = 0;
    while !buf.is_empty() {
        let (field, wire) = key(&mut buf)?;
        let value = match wire {
            0 => Value::Varint(read_varint(&mut buf)?),
            1 => Value::Fixed64(u64::from_le_bytes(fixed::<8>(&mut buf)?)),
            2 => {
                let data = len_delimited(&mut buf)?;
                if let Some(inner @ (Msg::Sender | Msg::Probe | Msg::Broadcast)) =
                    scan.field(msg, field, data, &mut entries)?
                {
                    scan.walk(inner, data)?;
                }
                Value::Bytes(data)
            }
            5 => {
                fixed::<4>(&mut buf)?;
                Value::Fixed32
            }
            _ => return Err(malformed("unsupported wire type (groups are refused)")),
        };
        f(scan, field, value)?;
    }
    Ok(())
}

fn fixed<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N], DecodeError> {
    let Some((head, rest)) = buf.split_first_chunk::<N>() else {
        return Err(malformed("truncated fixed-width field"));
    };
    *buf = rest;
    Ok(*head)
}

/// A `DigestEntry` as read, before its checks.
#[derive(Default)]
pub(super) struct EntryIn<'a> {
    pub(super) id: &'a [u8],
    pub(super) generation: u64,
    pub(super) max_version: u64,
    pub(super) heartbeat: u64,
    pub(super) gc_floor: u64,
    pub(super) status: i32,
    pub(super) status_age_ms: u64,
}

impl<'a> EntryIn<'a> {
    fn read(buf: &'a [u8], scan: &mut Scan<'_>) -> Result<Self, DecodeError> {
        let mut e = EntryIn::default();
        fields(buf, Msg::DigestEntry, scan, |_, field, v| {
            match field {
                // Read as UTF-8 by `Validator::id_bytes`, only if it is
                // not an id already held.
                1 => e.id = v.bytes()?,
                2 => e.generation = v.varint()?,
                3 => e.max_version = v.varint()?,
                4 => e.heartbeat = v.varint()?,
                5 => e.gc_floor = v.varint()?,
                6 => e.status = v.uint32()? as i32,
                7 => e.status_age_ms = v.varint()?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(e)
    }
}

/// A `KeyValue` as read, before its checks.
#[derive(Default)]
pub(super) struct KeyValueIn<'a> {
    pub(super) key: &'a str,
    pub(super) value: &'a [u8],
    pub(super) version: u64,
    pub(super) deleted: bool,
}

/// A `PeerDelta` as read, before its checks.
#[derive(Default)]
pub(super) struct DeltaIn<'a> {
    pub(super) id: &'a [u8],
    pub(super) generation: u64,
    pub(super) addr: &'a str,
    pub(super) heartbeat: u64,
    pub(super) from_version: u64,
    pub(super) to_version: u64,
    pub(super) gc_floor: u64,
    pub(super) reset: bool,
    pub(super) status: i32,
    pub(super) status_age_ms: u64,
    pub(super) heartbeat_age_ms: u64,
    pub(super) entries: Vec<KeyValueIn<'a>>,
}

impl<'a> DeltaIn<'a> {
    fn read(buf: &'a [u8], scan: &mut Scan<'_>) -> Result<Self, DecodeError> {
        let mut d = DeltaIn::default();
        fields(buf, Msg::PeerDelta, scan, |scan, field, v| {
            match field {
                1 => d.id = v.bytes()?,
                2 => d.generation = v.varint()?,
                3 => d.addr = v.str()?,
                4 => d.heartbeat = v.varint()?,
                5 => d.from_version = v.varint()?,
                6 => d.to_version = v.varint()?,
                7 => d.gc_floor = v.varint()?,
                8 => d.reset = v.boolean()?,
                10 => {
                    let mut kv = KeyValueIn::default();
                    fields(v.bytes()?, Msg::KeyValue, scan, |_, field, v| {
                        match field {
                            1 => kv.key = v.str()?,
                            2 => kv.value = v.bytes()?,
                            3 => kv.version = v.varint()?,
                            4 => kv.deleted = v.boolean()?,
                            _ => {}
                        }
                        Ok(())
                    })?;
                    d.entries.push(kv);
                }
                11 => d.status = v.uint32()? as i32,
                12 => d.status_age_ms = v.varint()?,
                13 => d.heartbeat_age_ms = v.varint()?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(d)
    }
}

/// A `Digest` as read: its entries already checked (each on its own), the
/// rest before the checks that relate its fields.
#[derive(Default)]
pub(super) struct DigestIn<'a> {
    pub(super) ranged: bool,
    pub(super) range_start: &'a str,
    pub(super) range_end: &'a str,
    pub(super) entries: Vec<crate::wire::DigestEntry>,
    pub(super) state_hash: u64,
    pub(super) peer_count: u32,
    pub(super) heartbeats: &'a [u8],
    pub(super) sender_heartbeat: u64,
    pub(super) bucket_hashes: &'a [u8],
    pub(super) covered_buckets: &'a [u8],
    pub(super) peer_filter: &'a [u8],
    pub(super) not_live: Vec<u32>,
}

impl<'a> DigestIn<'a> {
    /// Reads one occurrence of the digest into `self` (protobuf merges
    /// them), checking each entry as it comes.
    fn merge(
        &mut self,
        buf: &'a [u8],
        v: &Validator<'_>,
        scan: &mut Scan<'_>,
    ) -> Result<(), DecodeError> {
        // Room for as many entries as the bytes could hold at twenty
        // bytes an entry (about the least a peer with a short id and a
        // clock-based generation takes): growing one push at a time copied
        // the list over and over (a twentieth of a join's instructions).
        let room = (buf.len() / 20).min(super::max_deltas_per_frame(v.config));
        if self.entries.capacity() == 0 {
            // The room this thread kept from an earlier frame (`spare.rs`).
            self.entries = crate::spare::entries();
        }
        self.entries
            .reserve(room.saturating_sub(self.entries.len()));
        fields(buf, Msg::Digest, scan, |scan, field, value| {
            match field {
                1 => self.ranged = value.boolean()?,
                2 => self.range_start = value.str()?,
                3 => self.range_end = value.str()?,
                4 => {
                    let entry = v.entry(EntryIn::read(value.bytes()?, scan)?)?;
                    self.entries.push(entry);
                }
                5 => self.state_hash = value.fixed64()?,
                6 => self.peer_count = value.uint32()?,
                7 => self.heartbeats = value.bytes()?,
                8 => self.sender_heartbeat = value.varint()?,
                9 => self.bucket_hashes = value.bytes()?,
                10 => self.covered_buckets = value.bytes()?,
                12 => self.peer_filter = value.bytes()?,
                11 => match value {
                    Value::Varint(x) => self.not_live.push(x as u32),
                    Value::Bytes(mut packed) => {
                        while !packed.is_empty() {
                            self.not_live.push(read_varint(&mut packed)? as u32);
                        }
                    }
                    _ => return Err(malformed("a repeated uint32 with another wire type")),
                },
                _ => {}
            }
            Ok(())
        })
    }
}

/// The body of a `Syn`, `SynAck` or `Ack` as read (merged over its
/// occurrences): its digest, its deltas checked, its broadcasts' bytes.
#[derive(Default)]
struct ExchangeIn<'a> {
    digest: DigestIn<'a>,
    deltas: Vec<crate::wire::PeerDelta>,
    broadcasts: Vec<&'a [u8]>,
}

/// Which of the frame's oneof `body` was read last.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    None,
    Syn,
    SynAck,
    Ack,
    Probe,
    ProbeAck,
}

/// Decodes a frame whose version and cluster were checked; see
/// [`Frame::decode`].
pub(super) fn frame(
    bytes: &[u8],
    config: &Config,
    max_generation: u64,
) -> Result<Frame, DecodeError> {
    let v = Validator {
        config,
        max_generation,
    };
    let (mut protocol, mut cluster) = (0u32, "");
    let mut sender: Option<pb::Sender> = None;
    let mut kind = Kind::None;
    let mut scan = Scan::new(config);
    let mut body = ExchangeIn::default();
    let mut probe = pb::Probe::default();
    fields(bytes, Msg::Frame, &mut scan, |scan, field, value| {
        // A oneof field of another variant replaces the one read so far;
        // the same variant again merges into it.
        let mut switch = |to: Kind| {
            if kind != to {
                kind = to;
                body.digest = DigestIn::default();
                body.deltas.clear();
                body.broadcasts.clear();
                probe = pb::Probe::default();
            }
        };
        match field {
            1 => protocol = value.uint32()?,
            2 => cluster = value.str()?,
            3 => sender
                .get_or_insert_with(pb::Sender::default)
                .merge(value.bytes()?)
                .map_err(|e| DecodeError::Malformed(e.to_string()))?,
            10..=12 => {
                switch(match field {
                    10 => Kind::Syn,
                    11 => Kind::SynAck,
                    _ => Kind::Ack,
                });
                exchange(field, value.bytes()?, &mut body, &v, scan)?;
            }
            13 | 14 => {
                switch(if field == 13 {
                    Kind::Probe
                } else {
                    Kind::ProbeAck
                });
                probe
                    .merge(value.bytes()?)
                    .map_err(|e| DecodeError::Malformed(e.to_string()))?;
            }
            _ => {}
        }
        Ok(())
    })?;
    if protocol != PROTOCOL_VERSION {
        return Err(DecodeError::UnknownVersion {
            got: protocol,
            ours: PROTOCOL_VERSION,
        });
    }
    if cluster != config.cluster_id {
        return Err(DecodeError::WrongCluster {
            got: cluster.to_owned(),
            ours: config.cluster_id.clone(),
        });
    }
    let sender = sender.ok_or_else(|| invalid("frame has no sender"))?;
    let sender = Sender {
        id: v.id(&sender.id)?,
        generation: v.generation(sender.generation, false)?,
        addr: v.addr(&sender.addr)?,
    };
    let ExchangeIn {
        digest,
        deltas,
        broadcasts,
    } = body;
    let body = match kind {
        Kind::None => return Err(invalid("frame has no body")),
        Kind::Syn => Body::Syn(v.digest(digest)?),
        Kind::SynAck => Body::SynAck(v.digest(digest)?, deltas),
        Kind::Ack => Body::Ack(deltas),
        Kind::Probe => Body::Probe(v.probe(probe)?),
        Kind::ProbeAck => Body::ProbeAck(v.probe(probe)?),
    };
    // Deltas and broadcasts were counted against their limits (`scan`)
    // before each was read, discarded ones included.
    let broadcasts = broadcasts
        .into_iter()
        .map(|b| {
            let b = pb::Broadcast::decode(b).map_err(|e| DecodeError::Malformed(e.to_string()))?;
            v.broadcast(b)
        })
        .collect::<Result<_, _>>()?;
    Ok(Frame {
        protocol,
        cluster_id: cluster.to_owned(),
        sender,
        body,
        broadcasts,
    })
}

/// Reads one occurrence of a `Syn` (frame field 10), `SynAck` (11) or
/// `Ack` (12) into `body`.
fn exchange<'a>(
    which: u32,
    buf: &'a [u8],
    body: &mut ExchangeIn<'a>,
    v: &Validator<'_>,
    scan: &mut Scan<'_>,
) -> Result<(), DecodeError> {
    let msg = match which {
        10 => Msg::Syn,
        11 => Msg::SynAck,
        _ => Msg::Ack,
    };
    // Room for as many deltas as the message could hold at twenty bytes
    // each (about the least a peer without keys takes), as for a digest's
    // entries: a join's frame carries a few thousand, and growing the list
    // one push at a time copied it a dozen times into fresh pages.
    if matches!(which, 11 | 12) {
        let room = (buf.len() / 20).min(super::max_deltas_per_frame(v.config));
        if body.deltas.capacity() == 0 {
            // The room this thread kept from an earlier frame (`spare.rs`).
            body.deltas = crate::spare::deltas();
        }
        body.deltas.reserve(room.saturating_sub(body.deltas.len()));
    }
    fields(buf, msg, scan, |scan, field, value| {
        match (which, field) {
            (10, 1) | (11, 1) => body.digest.merge(value.bytes()?, v, scan)?,
            (11, 2) | (12, 1) => {
                let delta = v.delta(DeltaIn::read(value.bytes()?, scan)?)?;
                body.deltas.push(delta);
            }
            (10, 2) | (11, 3) | (12, 2) => body.broadcasts.push(value.bytes()?),
            _ => {}
        }
        Ok(())
    })
}
