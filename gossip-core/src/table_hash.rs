//! The table's hash, whole and by bucket, kept up to date as peers change.
//!
//! Two nodes compare their tables before they swap digests (the idle
//! exchange, see `exchange.rs`): the whole table's hash is the XOR over its
//! peers of a hash of each one's id, generation, max_version, gc_floor and
//! status (with relayed liveness, only whether it left: each node judges
//! deaths for itself, and a summary names the peers it holds dead). XOR makes it incremental: a peer's change toggles its old share
//! out and its new one in, so the hash costs nothing per exchange however
//! large the table (it used to be recomputed, O(N), after every change, and
//! a join changes the table with every frame).
//!
//! The same shares are also XORed into buckets, chosen by a hash of the
//! peer's id alone: when two large tables differ in a few peers, the larger
//! side sends its bucket hashes, and the smaller answers with a digest of
//! only the buckets that differ (a digest of every peer, at ten thousand
//! peers, is some 150 KB, to find the one peer that carries news). This is
//! the sorted-range hashing of set reconciliation, cut by hash instead of by
//! id range so that both sides agree on the cuts without exchanging them.
//! Buckets fold: bucket `i` of `2^k` is the XOR of the buckets `j` of `2^f`
//! (`f > k`) with `j mod 2^k = i`, so two tables of different sizes compare
//! at the smaller's count.

use crate::state::Peer;
use crate::{PeerId, PeerStatus};

/// Most bucket bits a node keeps or a frame may carry: 65,536 buckets.
pub(crate) const MAX_BUCKET_BITS: u32 = 16;

/// Peers per bucket a summary carries when the two tables are about the
/// same size: about eight, half a byte per peer, since a digest of one
/// bucket is about 100 bytes and few buckets differ.
const SENT_PEERS_PER_BUCKET_BITS: u32 = 3;

/// A summary carries every bucket kept once the two tables' sizes differ by
/// at least one peer in this many (`2^6`): a table that lacks that many
/// peers differs in that many buckets at least, and a digest of eight-peer
/// buckets would name about eight held peers for each one lacked.
const FINE_AT_DIFFERENCE_BITS: u32 = 6;

/// The whole table's hash and its buckets.
#[derive(Debug, Clone, Default)]
pub(crate) struct TableHash {
    total: u64,
    bits: u32,
    buckets: Vec<u32>,
    /// Liveness is relayed: whether a peer is dead is then each node's own
    /// judgement, not state the nodes reconcile, and a dead peer is hashed
    /// as a live one (left stays distinct: a peer announces it). With
    /// monitored liveness a death is a verdict every node adopts, and is
    /// hashed as such.
    relayed: bool,
}

impl TableHash {
    /// An empty table's hash; `relayed`: see the field.
    pub(crate) fn new(relayed: bool) -> TableHash {
        TableHash {
            relayed,
            ..TableHash::default()
        }
    }

    /// `p`'s share of this table's hash.
    pub(crate) fn share(&self, id: &PeerId, p: &Peer) -> u64 {
        self.share_as(id, p, p.status)
    }

    /// [`TableHash::share`] as it was while `p` had `status`, its other
    /// fields unchanged.
    pub(crate) fn share_as(&self, id: &PeerId, p: &Peer, status: PeerStatus) -> u64 {
        let status = match status {
            PeerStatus::Dead if self.relayed => PeerStatus::Live,
            s => s,
        };
        peer_hash_as(id, p, status)
    }

    /// Toggles `delta` (a peer's old share XOR its new one; or its share,
    /// as it enters or leaves the table) into the hash and `id`'s bucket.
    pub(crate) fn toggle(&mut self, id: &PeerId, delta: u64) {
        if delta == 0 {
            return;
        }
        self.total ^= delta;
        let b = bucket_of(id, self.bits);
        self.buckets[b] ^= fold32(delta);
    }

    /// Whether a table of `peers` peers has outgrown the buckets.
    pub(crate) fn outgrown(&self, peers: usize) -> bool {
        bits_for(peers) > self.bits
    }

    /// Recomputes every share and bucket, with `2^bits` buckets.
    pub(crate) fn rebuild(&mut self, peers: &crate::table::Table<Peer>, bits: u32) {
        self.bits = bits.min(MAX_BUCKET_BITS);
        self.buckets = vec![0; 1 << self.bits];
        self.total = 0;
        for (id, p) in peers.iter() {
            let share = self.share(id, p);
            self.total ^= share;
            let b = bucket_of(id, self.bits);
            self.buckets[b] ^= fold32(share);
        }
    }

    /// The whole table's hash.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The buckets folded to `2^bits` (at most the held count).
    pub(crate) fn folded(&self, bits: u32) -> Vec<u32> {
        let bits = bits.min(self.bits);
        let mask = (1usize << bits) - 1;
        let mut out = vec![0u32; 1 << bits];
        for (i, b) in self.buckets.iter().enumerate() {
            out[i & mask] ^= *b;
        }
        out
    }

    /// The buckets a summary of this table (of `peers` peers) carries to a
    /// table of `theirs`: about eight peers a bucket when the two are about
    /// the same size (news: a few peers differ), and every bucket kept,
    /// about one peer each, when they differ by at least one peer in 64 (a
    /// join: the smaller table lacks many, and answers with a digest of the
    /// differing buckets, which then hold few of its peers beside the gaps).
    pub(crate) fn for_summary(&self, peers: usize, theirs: usize) -> Vec<u32> {
        let coarse = log2(peers).saturating_sub(SENT_PEERS_PER_BUCKET_BITS);
        let fine = peers.abs_diff(theirs) << FINE_AT_DIFFERENCE_BITS >= peers;
        self.folded(if fine { self.bits } else { coarse })
    }

    /// Compares `theirs` (a power-of-two count of bucket hashes) with this
    /// table's at the smaller of the two counts: the differing buckets as a
    /// bitmap (see [`Cover`]), or `None` when more than seven eighths
    /// differ. A digest of the differing buckets names about that share of
    /// the table, plus a bitmap of a bit a bucket, so until nearly every
    /// bucket differs it costs less than a whole one, or, where both are
    /// cut by the frame, reaches further through the table. (At one half, as
    /// before, `sim_scale 6000 8` sent 36.8 M digest entries in all
    /// against 31.9 M at seven eighths, and 31.9 M at fifteen sixteenths:
    /// tables early in a join differ in between; bench/NOTES.md.)
    pub(crate) fn differing(&self, theirs: &[u32]) -> Option<Cover> {
        let their_bits = theirs.len().trailing_zeros();
        let bits = their_bits.min(self.bits);
        if bits < 3 {
            return None;
        }
        let mine = self.folded(bits);
        let mask = (1usize << bits) - 1;
        let mut their_folded = vec![0u32; 1 << bits];
        for (i, b) in theirs.iter().enumerate() {
            their_folded[i & mask] ^= *b;
        }
        let mut bitmap = vec![0u8; (1 << bits) / 8];
        let mut differ = 0;
        for (i, (a, b)) in mine.iter().zip(&their_folded).enumerate() {
            if a != b {
                bitmap[i / 8] |= 1 << (i % 8);
                differ += 1;
            }
        }
        if differ * 8 > mine.len() * 7 {
            return None;
        }
        Some(Cover { bits, bitmap })
    }
}

/// A set of buckets, `2^bits` of them (`bits` at least 3), as a bitmap of
/// `2^bits / 8` bytes: bucket `i` is bit `i % 8` of byte `i / 8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cover {
    pub(crate) bits: u32,
    pub(crate) bitmap: Vec<u8>,
}

impl Cover {
    /// About how many of `peers` peers lie in the covered buckets.
    pub(crate) fn share_of(&self, peers: usize) -> usize {
        let set: usize = self.bitmap.iter().map(|b| b.count_ones() as usize).sum();
        let all = (self.bitmap.len() * 8).max(1);
        peers * set / all
    }
}

/// Whether `id` lies in one of the buckets set in `bitmap` (whose length,
/// a power of two, gives the bucket count).
pub(crate) fn bitmap_covers(bitmap: &[u8], id: &str) -> bool {
    let bits = (bitmap.len() * 8).trailing_zeros();
    let b = bucket_of_str(id, bits);
    bitmap[b / 8] & (1 << (b % 8)) != 0
}

/// [`bitmap_covers`] for an interned id: its stored hash instead of a hash
/// of its bytes (a cover's digest tests every peer of the table).
pub(crate) fn bitmap_covers_id(bitmap: &[u8], id: &PeerId) -> bool {
    let bits = (bitmap.len() * 8).trailing_zeros();
    let b = bucket_of(id, bits);
    bitmap[b / 8] & (1 << (b % 8)) != 0
}

/// The bucket bits a table of `peers` peers keeps: about one peer a
/// bucket (two to four bytes per peer), so that a summary can name the few
/// peers a smaller table lacks without a digest entry for each of those it
/// holds (see [`TableHash::for_summary`]).
pub(crate) fn bits_for(peers: usize) -> u32 {
    log2(peers).min(MAX_BUCKET_BITS)
}

/// The floor of `log2(n)` (0 for 0).
fn log2(n: usize) -> u32 {
    usize::BITS - 1 - n.max(1).leading_zeros()
}

fn fold32(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

fn bucket_of(id: &PeerId, bits: u32) -> usize {
    bucket_of_hash(id.stable_hash(), bits)
}

fn bucket_of_str(id: &str, bits: u32) -> usize {
    bucket_of_hash(fnv1a(id.as_bytes()), bits)
}

/// The bucket among `2^bits` of the id whose FNV-1a hash is `fnv`: the low
/// bits of a mix of it, the same on every node.
fn bucket_of_hash(fnv: u64, bits: u32) -> usize {
    let h = mix(fnv ^ 0x5851_f42d_4c95_7f2d);
    (h & ((1u64 << bits) - 1)) as usize
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One peer's share of the table's hash with monitored liveness (the
/// status as held; [`TableHash::share`] is what the engine uses).
#[cfg(test)]
pub(crate) fn peer_hash(id: &PeerId, p: &Peer) -> u64 {
    peer_hash_as(id, p, p.status)
}

/// One peer's share of the table's hash as if it had `status`: its id,
/// generation, max_version, gc_floor and status, mixed (FNV-1a over the
/// id, then a splitmix64 finaliser per field), the same on every node and
/// platform. Shares are not kept per peer (8 bytes in every node for every
/// peer); each change toggles out the share computed from what the fields
/// were.
pub(crate) fn peer_hash_as(id: &PeerId, p: &Peer, status: PeerStatus) -> u64 {
    let status = match status {
        PeerStatus::Live => 0,
        PeerStatus::Dead => 1,
        PeerStatus::Left => 2,
    };
    let mut h = id.stable_hash();
    for v in [p.generation, p.max_version, p.gc_floor, status] {
        h = mix(h ^ v).wrapping_add(0x9e37_79b9_7f4a_7c15);
    }
    h
}

pub(crate) use gossip_storage::fnv1a;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Table;
    use std::time::{Duration, Instant};

    fn table(n: usize) -> Table<Peer> {
        let now = Instant::now();
        let p = crate::phi::PhiParams::new(100, 50.0, 0.0, 8.0);
        (0..n)
            .map(|i| {
                let id = PeerId::from(format!("peer-{i:05}"));
                let peer = Peer::new(7, "addr", now, Duration::from_millis(100), &p);
                (id, peer)
            })
            .collect()
    }

    fn fresh(peers: &mut Table<Peer>) -> TableHash {
        let mut t = TableHash::default();
        t.rebuild(peers, bits_for(peers.len()));
        t
    }

    /// Changes `id` by `f`, toggling its old share out and its new one in.
    fn change(t: &mut TableHash, peers: &mut Table<Peer>, id: &PeerId, f: impl FnOnce(&mut Peer)) {
        let p = peers.get_mut(id).unwrap();
        let before = peer_hash(id, p);
        f(p);
        t.toggle(id, before ^ peer_hash(id, p));
    }

    #[test]
    fn incremental_updates_match_a_rebuild() {
        let mut peers = table(300);
        let mut t = fresh(&mut peers);
        let id = PeerId::from("peer-00042");
        change(&mut t, &mut peers, &id, |p| p.max_version = 9);
        change(&mut t, &mut peers, &id, |p| p.status = PeerStatus::Dead);
        let gone = PeerId::from("peer-00007");
        t.toggle(&gone, peer_hash(&gone, &peers[&gone]));
        peers.remove(&gone);
        let rebuilt = fresh(&mut peers);
        assert_eq!(t.total(), rebuilt.total());
        assert_eq!(t.folded(5), rebuilt.folded(5));
    }

    #[test]
    fn relayed_hashes_a_death_as_live_and_a_leave_as_itself() {
        let peers = table(3);
        let (id, p) = peers.iter().next().unwrap();
        let relayed = TableHash::new(true);
        let monitored = TableHash::new(false);
        let live = relayed.share_as(id, p, PeerStatus::Live);
        assert_eq!(relayed.share_as(id, p, PeerStatus::Dead), live);
        assert_ne!(relayed.share_as(id, p, PeerStatus::Left), live);
        assert_eq!(monitored.share_as(id, p, PeerStatus::Live), live);
        assert_ne!(monitored.share_as(id, p, PeerStatus::Dead), live);
    }

    #[test]
    fn growth_past_a_power_of_two_adds_buckets() {
        let mut peers = table(100);
        let mut t = fresh(&mut peers);
        // About one peer a bucket: 2^6 for 100.
        assert_eq!(t.bits, 6);
        let more = table(300);
        for (id, p) in more.iter() {
            if !peers.contains_key(id) {
                t.toggle(id, peer_hash(id, p));
                peers.insert(id.clone(), p.clone());
            }
        }
        assert!(t.outgrown(peers.len()));
        assert_eq!(t.total(), fresh(&mut peers).total());
        let bits = bits_for(peers.len());
        t.rebuild(&peers, bits);
        assert_eq!(t.bits, 8);
        assert_eq!(t.total(), fresh(&mut peers).total());
    }

    #[test]
    fn differing_buckets_name_exactly_the_changed_peers() {
        let mut a = table(1000);
        let mut b = a.clone();
        let ta = fresh(&mut a);
        let id = PeerId::from("peer-00500");
        b.get_mut(&id).unwrap().max_version = 3;
        let tb = fresh(&mut b);
        // Tables of the same size: about eight peers a bucket go.
        let sent = tb.for_summary(1000, 1000);
        assert_eq!(sent.len(), 1 << 6);
        let cover = ta.differing(&sent).expect("one bucket differs");
        assert_eq!(cover.bits, 6);
        let set: usize = cover.bitmap.iter().map(|b| b.count_ones() as usize).sum();
        assert_eq!(set, 1);
        assert!(bitmap_covers(&cover.bitmap, "peer-00500"));
        // A smaller table's count: compared at it.
        let small = ta.folded(4);
        let c = tb.differing(&small).expect("folded to 16 buckets");
        assert_eq!(c.bits, 4);
        assert!(bitmap_covers(&c.bitmap, "peer-00500"));
        // Everything different: no cover.
        let mut other = table(1000);
        for (_, p) in other.iter_mut() {
            p.generation = 8;
        }
        let to = fresh(&mut other);
        assert!(ta.differing(&to.for_summary(1000, 1000)).is_none());
    }

    /// Up to seven eighths of the buckets differing, the differing ones
    /// are named; beyond, nothing is (the whole digest goes).
    #[test]
    fn buckets_are_named_until_seven_eighths_differ() {
        let mut a = table(1000);
        let ta = fresh(&mut a);
        let mine = ta.folded(6);
        let flipped = |k: usize| -> Vec<u32> {
            mine.iter()
                .enumerate()
                .map(|(i, b)| if i < k { !*b } else { *b })
                .collect()
        };
        let cover = ta.differing(&flipped(48)).expect("three quarters differ");
        let set: usize = cover.bitmap.iter().map(|b| b.count_ones() as usize).sum();
        assert_eq!(set, 48);
        assert!(ta.differing(&flipped(56)).is_some(), "seven eighths");
        assert!(
            ta.differing(&flipped(57)).is_none(),
            "more than seven eighths"
        );
    }

    /// A table that lacks a tenth of a larger one's peers (a join) is sent
    /// every bucket the larger keeps, and the buckets that differ then
    /// hold few of the peers it has: its digest of them is a fraction of
    /// a whole one, where eight-peer buckets would nearly all differ.
    #[test]
    fn a_much_smaller_table_is_sent_the_fine_buckets() {
        let mut large = table(4000);
        let mut small: Table<Peer> = large
            .iter()
            .filter(|(id, _)| fnv1a(id.as_str().as_bytes()) % 10 != 0)
            .map(|(id, p)| (id.clone(), p.clone()))
            .collect();
        let lacked = large.len() - small.len();
        assert!((300..500).contains(&lacked), "{lacked}");
        let tl = fresh(&mut large);
        let ts = fresh(&mut small);
        let sent = tl.for_summary(large.len(), small.len());
        assert_eq!(sent.len(), 1 << bits_for(4000));
        let cover = ts.differing(&sent).expect("a tenth differs");
        assert_eq!(cover.bits, bits_for(small.len()).min(bits_for(4000)));
        // Every peer lacked is in a differing bucket.
        for id in large.keys().filter(|id| !small.contains_key(id)) {
            assert!(bitmap_covers(&cover.bitmap, id.as_str()), "{id}");
        }
        let held_covered = small
            .keys()
            .filter(|id| bitmap_covers(&cover.bitmap, id.as_str()))
            .count();
        assert!(
            held_covered < small.len() / 4,
            "{held_covered} of {}",
            small.len()
        );
        // At eight peers a bucket (the same-size count) the digest would
        // name most of the table.
        let coarse = ts.differing(&tl.for_summary(large.len(), large.len()));
        let held_coarse = coarse.map_or(small.len(), |c| {
            small
                .keys()
                .filter(|id| bitmap_covers(&c.bitmap, id.as_str()))
                .count()
        });
        assert!(held_coarse > small.len() / 2, "{held_coarse}");
    }
}
