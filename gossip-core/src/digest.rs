//! Building the digest an exchange starts with.
//!
//! A digest that lists every known peer would grow with the cluster and
//! overflow the frame budget at a few thousand peers. So a Syn digest covers
//! a contiguous range of the sorted peer ids, as many as fit, starting where
//! the previous one stopped: successive rounds rotate through every peer.
//! Because the range is stated in the digest, the receiver can tell which
//! peers the sender does not know (absent but inside the range).
//!
//! Before the slice come the peers whose state changed recently ("hot"), so
//! that news travels in every exchange like a rumour instead of waiting for
//! its turn in the rotation; they lie outside the stated range and only
//! inform. A cap on entries (`max_digest_entries`) keeps steady-state
//! digests small: heartbeats then refresh through the rotation.

use std::collections::{HashSet, VecDeque};

use crate::table::Table;
use std::ops::Bound;
use std::time::Instant;

use bytes::Bytes;

use crate::state::Peer;
use crate::table_hash::{bitmap_covers_id, Cover};
use crate::wire::{len_msg, Digest};
use crate::PeerId;

/// The most hot peers a digest with a filter names as entries: its sender
/// is behind, and the larger table it answers holds most of its news.
pub(crate) const FILTER_HOT: usize = 32;

/// The bounds one digest is built to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Encoded bytes of the digest message body.
    pub(crate) budget: usize,
    /// Entries (`max_digest_entries`).
    pub(crate) max_entries: usize,
    /// Longest id, to leave room for a range end (`max_id_bytes`).
    pub(crate) max_id_bytes: usize,
}

/// Builds a digest within `limits`: the node's own entry, the hot peers
/// (newest first), then a ranged slice starting at `cursor`, moving the
/// cursor past it. Entries state each peer's status and its age at `now`.
///
/// With a `cover` (the buckets in which two tables differ, see
/// `table_hash.rs`), the slice holds only the peers in those buckets and no
/// hot peers; `cursor` is then the covered digests' own (the caller's
/// `Engine::cover_cursor`). A cover expected to fit the frame (its share of
/// the buckets times the table, at the own entry's size) starts at the
/// first id and leaves the cursor alone; one expected not to (a join's
/// differences outgrow a frame) starts at the cursor and moves it past
/// its cut, so such covers go on through the table from one to the next,
/// whatever smaller ones come between, instead of naming the same first
/// ids every time.
pub(crate) fn build(
    peers: &Table<Peer>,
    me: &PeerId,
    hot: &VecDeque<(crate::stamp::Stamp, PeerId)>,
    cursor: &mut Option<PeerId>,
    cover: Option<&Cover>,
    limits: Limits,
    now: Instant,
) -> Digest {
    let Limits {
        budget,
        max_entries,
        max_id_bytes,
    } = limits;
    let own = peers.get(me).map(|p| p.digest_entry(me, now));
    let start = match cover {
        Some(c) => {
            let each = own.as_ref().map_or(16, |e| len_msg(e.encoded_len()));
            let expected = c.share_of(peers.len());
            let fits = expected < max_entries && expected * each + expected * each / 8 < budget;
            if fits {
                // Cut anyway (a misjudged size), it still moves the cursor.
                None
            } else {
                cursor.take()
            }
        }
        None => cursor.take(),
    };
    let mut digest = Digest {
        ranged: true,
        range_start: start.as_ref().map(|s| s.to_string()).unwrap_or_default(),
        range_end: String::new(),
        // The room this thread kept from an earlier frame (`spare.rs`).
        entries: crate::spare::entries(),
        summary: None,
        cover: cover.map_or_else(Bytes::new, |c| Bytes::from(c.bitmap.clone())),
        filter: Bytes::new(),
    };
    // Room for a range end that is not known yet.
    let mut used = digest.header_len() + 3 + max_id_bytes;
    if let Some(e) = own {
        used += len_msg(e.encoded_len());
        digest.entries.push(e);
    }
    // Hot peers take at most half the entries, so the rotation never stalls.
    // (foldhash: SipHash was a tenth of this function at a join's scale)
    let mut extra: HashSet<&PeerId, foldhash::fast::RandomState> = HashSet::default();
    // A cover names the differences already: no news need ride along.
    let hot = if cover.is_some() {
        &VecDeque::new()
    } else {
        hot
    };
    for (_, id) in hot.iter().rev() {
        if digest.entries.len() >= max_entries / 2 {
            break;
        }
        let Some(peer) = peers.get(id) else { continue };
        if id == me || !extra.insert(id) {
            continue;
        }
        let e = peer.digest_entry(id, now);
        let cost = len_msg(e.encoded_len());
        if used + cost > budget / 2 {
            break;
        }
        used += cost;
        digest.entries.push(e);
    }
    let lower = match &start {
        Some(s) => Bound::Included(s.clone()),
        None => Bound::Unbounded,
    };
    for (id, peer) in peers.range((lower, Bound::Unbounded)) {
        if id == me || (!extra.is_empty() && extra.contains(id)) {
            continue;
        }
        if cover.is_some_and(|c| !bitmap_covers_id(&c.bitmap, id)) {
            continue;
        }
        let e = peer.digest_entry(id, now);
        let cost = len_msg(e.encoded_len());
        if used + cost > budget || digest.entries.len() >= max_entries {
            digest.range_end = id.to_string();
            *cursor = Some(id.clone());
            return digest;
        }
        used += cost;
        digest.entries.push(e);
    }
    digest
}

/// A digest of the whole table with the live peers as a Bloom filter
/// (`bits` a peer, `salt`; see `filter.rs`): the own entry, at most
/// [`FILTER_HOT`] hot peers, and every peer held dead or left as entries
/// (their status is news the filter cannot carry: a verdict the other side
/// may lack), within half the budget; the live rest in the filter, in the
/// room left at [`crate::filter::MIN_BITS`] bits a peer or more. `None`
/// when that does not fit (the caller sends entries). The rotation's
/// cursor is not touched.
pub(crate) fn build_filtered(
    peers: &Table<Peer>,
    me: &PeerId,
    hot: &VecDeque<(crate::stamp::Stamp, PeerId)>,
    (bits, salt): (usize, u64),
    limits: Limits,
    now: Instant,
) -> Option<Digest> {
    let Limits {
        budget,
        max_entries,
        ..
    } = limits;
    let mut digest = Digest {
        ranged: true,
        ..Digest::default()
    };
    // The filter's field header (tag and a length of up to five bytes).
    let mut used = digest.header_len() + 6 + crate::filter::HEADER;
    let mut push = |digest: &mut Digest, e: crate::wire::DigestEntry| {
        let cost = len_msg(e.encoded_len());
        if used + cost > budget / 2 || digest.entries.len() >= max_entries {
            return false;
        }
        used += cost;
        digest.entries.push(e);
        true
    };
    if let Some(own) = peers.get(me) {
        if !push(&mut digest, own.digest_entry(me, now)) {
            return None;
        }
    }
    let mut extra: HashSet<&PeerId, foldhash::fast::RandomState> = HashSet::default();
    for (_, id) in hot.iter().rev() {
        if extra.len() >= FILTER_HOT {
            break;
        }
        let Some(peer) = peers.get(id) else { continue };
        if id == me || peer.status != crate::PeerStatus::Live || !extra.insert(id) {
            continue;
        }
        if !push(&mut digest, peer.digest_entry(id, now)) {
            break;
        }
    }
    let mut keys: Vec<(u64, u64)> = Vec::new();
    for (id, p) in peers.iter() {
        if id == me || (!extra.is_empty() && extra.contains(id)) {
            continue;
        }
        if p.status != crate::PeerStatus::Live {
            if !push(&mut digest, p.digest_entry(id, now)) {
                return None;
            }
            continue;
        }
        keys.push(crate::filter::key(id, salt, p.generation, p.max_version));
    }
    let room = budget.saturating_sub(used);
    if keys.is_empty() || room * 8 < keys.len() * crate::filter::MIN_BITS {
        return (keys.is_empty()).then_some(digest);
    }
    let bytes = (keys.len() * bits).div_ceil(8).min(room);
    digest.filter = Bytes::from(crate::filter::build(&keys, bytes, salt));
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn table(n: usize) -> Table<Peer> {
        let now = Instant::now();
        (0..n)
            .map(|i| {
                let id = PeerId::from(format!("peer-{i:05}"));
                (
                    id,
                    Peer::new(
                        7,
                        &format!("addr-{i}"),
                        now,
                        Duration::from_millis(100),
                        &crate::phi::PhiParams::new(100, 50.0, 0.0, 8.0),
                    ),
                )
            })
            .collect()
    }

    fn limits(budget: usize, max_entries: usize, max_id_bytes: usize) -> Limits {
        Limits {
            budget,
            max_entries,
            max_id_bytes,
        }
    }

    /// A digest of at most 2 KiB of `peers` from `cursor`, within `cover`.
    fn two_kib(
        peers: &Table<Peer>,
        me: &PeerId,
        cursor: &mut Option<PeerId>,
        cover: Option<&Cover>,
    ) -> Digest {
        build(
            peers,
            me,
            &VecDeque::new(),
            cursor,
            cover,
            limits(2048, 10_000, 64),
            Instant::now(),
        )
    }

    #[test]
    fn a_small_table_fits_in_one_unbounded_digest() {
        let peers = table(10);
        let me = PeerId::from("peer-00003");
        let mut cursor = None;
        let d = build(
            &peers,
            &me,
            &VecDeque::new(),
            &mut cursor,
            None,
            limits(4096, 100, 64),
            Instant::now(),
        );
        assert_eq!(d.entries.len(), 10);
        assert!(d.range_start.is_empty() && d.range_end.is_empty());
        assert!(cursor.is_none());
        assert!(d.encoded_len() <= 4096);
    }

    #[test]
    fn slices_rotate_until_every_peer_is_covered() {
        let peers = table(1000);
        let me = PeerId::from("peer-00500");
        let mut cursor = None;
        let mut seen = std::collections::BTreeSet::new();
        let mut rounds = 0;
        loop {
            let d = two_kib(&peers, &me, &mut cursor, None);
            assert!(
                d.encoded_len() <= 2048,
                "digest of {} bytes",
                d.encoded_len()
            );
            assert_eq!(d.entries[0].id, me, "own entry first");
            for e in &d.entries[1..] {
                assert!(d.covers(e.id.as_str()), "{} outside its range", e.id);
                seen.insert(e.id.clone());
            }
            rounds += 1;
            if cursor.is_none() {
                break;
            }
        }
        assert!(rounds > 5, "999 entries of ~16 bytes cannot fit 2 KiB");
        assert_eq!(seen.len(), 999);
    }

    /// A cover larger than a frame goes on from its cut, digest after
    /// digest, until it has named every covered peer; then the next starts
    /// at the first id again.
    #[test]
    fn a_cover_cut_short_goes_on_from_its_cut() {
        let peers = table(1000);
        let me = PeerId::from("peer-00500");
        // Every other bucket of 64.
        let cover = Cover {
            bits: 6,
            bitmap: vec![0b0101_0101; 8],
        };
        let covered: std::collections::BTreeSet<PeerId> = peers
            .keys()
            .filter(|id| **id != me && bitmap_covers_id(&cover.bitmap, id))
            .cloned()
            .collect();
        assert!((300..700).contains(&covered.len()), "{}", covered.len());
        let mut cursor = None;
        let mut seen = std::collections::BTreeSet::new();
        let mut starts = Vec::new();
        loop {
            let d = two_kib(&peers, &me, &mut cursor, Some(&cover));
            assert!(d.encoded_len() <= 2048);
            starts.push(d.range_start.clone());
            for e in &d.entries[1..] {
                assert!(covered.contains(&e.id), "{} not covered", e.id);
                assert!(d.covers(e.id.as_str()), "{} outside its range", e.id);
                seen.insert(e.id.clone());
            }
            if cursor.is_none() {
                break;
            }
            assert!(starts.len() < 100, "the cover never ends");
        }
        assert!(starts.len() > 2, "{} digests", starts.len());
        assert!(starts[0].is_empty(), "the first starts at the first id");
        assert!(starts.windows(2).all(|w| w[0] < w[1]), "each goes on");
        assert_eq!(seen, covered, "every covered peer named");

        // Between two large covers a small one (one bucket of 64, about 16
        // peers) starts at the first id and names all of its peers, and
        // the large one then goes on past its last cut.
        let small = Cover {
            bits: 6,
            bitmap: vec![0b0000_0001, 0, 0, 0, 0, 0, 0, 0],
        };
        let next = |c: &Cover, cursor: &mut Option<PeerId>| two_kib(&peers, &me, cursor, Some(c));
        let first = next(&cover, &mut cursor);
        let cut = cursor.clone().expect("a large cover is cut");
        let d = next(&small, &mut cursor);
        assert!(d.range_start.is_empty() && d.range_end.is_empty());
        let in_small = peers
            .keys()
            .filter(|id| **id != me && bitmap_covers_id(&small.bitmap, id))
            .count();
        assert_eq!(d.entries.len() - 1, in_small, "the small cover whole");
        assert_eq!(cursor.as_ref(), Some(&cut), "the large one's cut kept");
        let again = next(&cover, &mut cursor);
        assert_eq!(again.range_start, first.range_end, "goes on past the cut");
    }
}
