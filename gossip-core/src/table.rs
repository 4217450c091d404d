//! The peer table: a map from peer id to what a node holds of it, sorted
//! by id, laid out for walks.
//!
//! Every round a node walks its whole table several times (its tick's
//! liveness check, each summary it builds or takes, digests), and at scale
//! those walks wait on memory: the simulator holds thousands of tables of
//! thousands of peers. A `BTreeMap` keeps about eight entries a leaf, each
//! leaf found through its parent, so a walk stalls once a leaf and the
//! hardware's prefetcher never gets going. This table keeps the entries in
//! sorted chunks of fewer than [`CHUNK`], keys and values in two vectors each,
//! and the chunks in one vector: a walk reads long runs of contiguous
//! memory, and the next chunk's address is known before the current one is
//! done. A lookup is a binary search over the chunks' first keys (a short
//! vector of their own) and then within one chunk.
//!
//! A chunk that fills splits in two; one that falls below a quarter merges
//! with a neighbour that has room. [`Table::compact`] packs every chunk to
//! seven eighths, in place (what a table that grew by random inserts,
//! about 70% full, gives back), leaving each room for a few inserts before
//! it splits.
//!
//! The order is `PeerId`'s, which is the ids' strings' order, so every walk
//! visits what a `BTreeMap` would, in the same order.

use std::cmp::Ordering;
use std::ops::{Bound, Index, RangeBounds};

use crate::PeerId;

/// A chunk that reaches this many entries splits in two: a chunk holds
/// fewer at rest.
const CHUNK: usize = 64;
/// A chunk below this many entries merges with a neighbour that has room.
const MERGE_BELOW: usize = CHUNK / 4;
/// What [`Table::compact`] fills each chunk to (and what a merge may reach).
const PACKED: usize = CHUNK - CHUNK / 8;

#[derive(Debug, Clone)]
struct Chunk<V> {
    keys: Vec<PeerId>,
    vals: Vec<V>,
}

impl<V> Chunk<V> {
    fn with_capacity(n: usize) -> Self {
        Chunk {
            keys: Vec::with_capacity(n),
            vals: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    /// Room for one more entry, growing by doubling up to [`CHUNK`] (a
    /// chunk never holds more, so never has room for more).
    fn reserve_one(&mut self) {
        let len = self.keys.len();
        if len == self.keys.capacity() {
            let want = (2 * len).clamp(4, CHUNK);
            self.keys.reserve_exact(want - len);
        }
        if len == self.vals.capacity() {
            let want = (2 * len).clamp(4, CHUNK);
            self.vals.reserve_exact(want - len);
        }
    }
}

/// A position: a chunk and an offset within it (the offset is below the
/// chunk's length, or the position is `(chunks.len(), 0)`, the end).
type Pos = (usize, usize);

/// A sorted map from [`PeerId`] to `V` (see the module's doc).
#[derive(Debug, Clone)]
pub(crate) struct Table<V> {
    /// Never empty ones; in key order, each chunk's keys sorted.
    chunks: Vec<Chunk<V>>,
    /// `firsts[i]` is `chunks[i].keys[0]`.
    firsts: Vec<PeerId>,
    len: usize,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table::new()
    }
}

impl<V> Table<V> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Table {
            chunks: Vec::new(),
            firsts: Vec::new(),
            len: 0,
        }
    }

    /// How many entries it holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Where a key that `cmp` orders (`cmp(k)` is `k` against the sought
    /// key) is, or would go: its chunk, and `Ok` with its offset if held,
    /// `Err` with the offset it would take if not. The chunk is the last
    /// whose first key is not above the sought one (the first chunk if
    /// none is); `None` for an empty table.
    fn seek(&self, cmp: impl Fn(&PeerId) -> Ordering) -> Option<(usize, Result<usize, usize>)> {
        if self.chunks.is_empty() {
            return None;
        }
        let after = self.firsts.partition_point(|f| cmp(f) != Ordering::Greater);
        let c = after.saturating_sub(1);
        Some((c, self.chunks[c].keys.binary_search_by(&cmp)))
    }

    /// [`seek`](Table::seek) by a key's own order.
    fn find(&self, key: &PeerId) -> Option<(usize, usize)> {
        match self.seek(|k| k.cmp(key)) {
            Some((c, Ok(i))) => Some((c, i)),
            _ => None,
        }
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &PeerId) -> Option<&V> {
        self.find(key).map(|(c, i)| &self.chunks[c].vals[i])
    }

    /// The value under `key`, mutably.
    pub(crate) fn get_mut(&mut self, key: &PeerId) -> Option<&mut V> {
        self.find(key).map(|(c, i)| &mut self.chunks[c].vals[i])
    }

    /// The table's own key under `key`, and its value.
    pub(crate) fn get_key_value(&self, key: &PeerId) -> Option<(&PeerId, &V)> {
        self.find(key)
            .map(|(c, i)| (&self.chunks[c].keys[i], &self.chunks[c].vals[i]))
    }

    /// Whether `key` is held.
    #[cfg(test)]
    pub(crate) fn contains_key(&self, key: &PeerId) -> bool {
        self.find(key).is_some()
    }

    /// Puts `value` under `key`; returns the value it replaced (the key
    /// held stays, as a `BTreeMap` keeps its own).
    pub(crate) fn insert(&mut self, key: PeerId, value: V) -> Option<V> {
        let Some((c, at)) = self.seek(|k| k.cmp(&key)) else {
            let mut chunk = Chunk::with_capacity(4);
            self.firsts.push(key.clone());
            chunk.keys.push(key);
            chunk.vals.push(value);
            self.chunks.push(chunk);
            self.len = 1;
            return None;
        };
        let i = match at {
            Ok(i) => return Some(std::mem::replace(&mut self.chunks[c].vals[i], value)),
            Err(i) => i,
        };
        let chunk = &mut self.chunks[c];
        chunk.reserve_one();
        if i == 0 {
            // Only the first chunk takes a key below its first.
            self.firsts[c] = key.clone();
        }
        chunk.keys.insert(i, key);
        chunk.vals.insert(i, value);
        self.len += 1;
        if chunk.len() == CHUNK {
            let mut right = Chunk::with_capacity(CHUNK);
            right.keys.extend(chunk.keys.drain(CHUNK / 2..));
            right.vals.extend(chunk.vals.drain(CHUNK / 2..));
            self.firsts.insert(c + 1, right.keys[0].clone());
            self.chunks.insert(c + 1, right);
        }
        None
    }

    /// Takes the entry under `key` out; returns its value.
    pub(crate) fn remove(&mut self, key: &PeerId) -> Option<V> {
        let (c, i) = self.find(key)?;
        let chunk = &mut self.chunks[c];
        chunk.keys.remove(i);
        let value = chunk.vals.remove(i);
        self.len -= 1;
        if chunk.keys.is_empty() {
            self.chunks.remove(c);
            self.firsts.remove(c);
            return Some(value);
        }
        if i == 0 {
            self.firsts[c] = chunk.keys[0].clone();
        }
        if chunk.len() < MERGE_BELOW {
            self.merge_around(c);
        }
        Some(value)
    }

    /// Merges a small chunk `c` into its neighbour, or its next neighbour
    /// into it, where the two fit in [`PACKED`].
    fn merge_around(&mut self, c: usize) {
        let len = self.chunks[c].len();
        if c + 1 < self.chunks.len() && len + self.chunks[c + 1].len() <= PACKED {
            self.absorb_next(c);
        } else if c > 0 && len + self.chunks[c - 1].len() <= PACKED {
            self.absorb_next(c - 1);
        }
    }

    /// Moves chunk `c + 1`'s entries to the end of chunk `c`.
    fn absorb_next(&mut self, c: usize) {
        let next = self.chunks.remove(c + 1);
        self.firsts.remove(c + 1);
        let chunk = &mut self.chunks[c];
        let want = chunk.len() + next.len();
        chunk.keys.reserve_exact(want - chunk.keys.len());
        chunk.vals.reserve_exact(want - chunk.vals.len());
        chunk.keys.extend(next.keys);
        chunk.vals.extend(next.vals);
    }

    /// Packs the entries into the chunks from the first on, [`PACKED`] to
    /// a chunk (one that holds more keeps them), and frees the chunks left
    /// empty: what a table that grew by inserts (its chunks about 70% full)
    /// gives back. In place: entries move within the chunks' own
    /// allocations (a chunk is only grown if it has room for fewer than
    /// [`PACKED`]), so the packing allocates next to nothing, where a
    /// rebuild would take fresh memory the size of the table and free the
    /// old.
    pub(crate) fn compact(&mut self) {
        let mut w = 0;
        for r in 1..self.chunks.len() {
            loop {
                let (left, right) = self.chunks.split_at_mut(r);
                let (dst, src) = (&mut left[w], &mut right[0]);
                let take = PACKED.saturating_sub(dst.len()).min(src.len());
                if take > 0 {
                    let want = dst.len() + take;
                    dst.keys.reserve_exact(want - dst.keys.len());
                    dst.vals.reserve_exact(want - dst.vals.len());
                    dst.keys.extend(src.keys.drain(..take));
                    dst.vals.extend(src.vals.drain(..take));
                }
                if src.keys.is_empty() {
                    break;
                }
                // `dst` is full: the next chunk takes the rest, and may
                // be this one (its entries now start at its front).
                w += 1;
                if w == r {
                    break;
                }
            }
        }
        self.chunks.retain(|c| !c.keys.is_empty());
        self.firsts.clear();
        self.firsts
            .extend(self.chunks.iter().map(|c| c.keys[0].clone()));
        self.chunks.shrink_to_fit();
        self.firsts.shrink_to_fit();
    }

    /// Every entry in key order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&PeerId, &V)> + '_ {
        self.chunks.iter().flat_map(|c| c.keys.iter().zip(&c.vals))
    }

    /// Every entry in key order, the values mutably.
    #[cfg(test)]
    pub(crate) fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&PeerId, &mut V)> + '_ {
        self.chunks
            .iter_mut()
            .flat_map(|c| c.keys.iter().zip(c.vals.iter_mut()))
    }

    /// Every value in key order.
    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.chunks.iter().flat_map(|c| c.vals.iter())
    }

    /// Every entry in key order, a chunk's keys and values at a time: for
    /// walks whose body is a few instructions, the per-entry step of
    /// [`iter`](Table::iter) (a `flat_map` over the chunks) costs as much.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (&[PeerId], &[V])> + '_ {
        self.chunks
            .iter()
            .map(|c| (c.keys.as_slice(), c.vals.as_slice()))
    }

    /// Every entry in key order, a chunk's keys and values at a time, the
    /// values mutably (see [`runs`](Table::runs)).
    pub(crate) fn runs_mut(&mut self) -> impl Iterator<Item = (&[PeerId], &mut [V])> + '_ {
        self.chunks
            .iter_mut()
            .map(|c| (c.keys.as_slice(), c.vals.as_mut_slice()))
    }

    /// Every key in order.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl DoubleEndedIterator<Item = &PeerId> + '_ {
        self.chunks.iter().flat_map(|c| c.keys.iter())
    }

    /// The first position whose key `cmp` does not put below the sought
    /// one (`strict`: above it).
    fn lower(&self, cmp: impl Fn(&PeerId) -> Ordering, strict: bool) -> Pos {
        let Some((c, at)) = self.seek(&cmp) else {
            return (0, 0);
        };
        let i = match at {
            Ok(i) if strict => i + 1,
            Ok(i) | Err(i) => i,
        };
        if i == self.chunks[c].len() {
            (c + 1, 0)
        } else {
            (c, i)
        }
    }

    /// The positions `[from, to)` that bounds ordered by `cmp` take in.
    fn bounds<T: ?Sized>(
        &self,
        start: Bound<&T>,
        end: Bound<&T>,
        cmp: impl Fn(&PeerId, &T) -> Ordering,
    ) -> (Pos, Pos) {
        let from = match start {
            Bound::Unbounded => (0, 0),
            Bound::Included(s) => self.lower(|k| cmp(k, s), false),
            Bound::Excluded(s) => self.lower(|k| cmp(k, s), true),
        };
        let to = match end {
            Bound::Unbounded => (self.chunks.len(), 0),
            Bound::Included(e) => self.lower(|k| cmp(k, e), true),
            Bound::Excluded(e) => self.lower(|k| cmp(k, e), false),
        };
        // Bounds the wrong way round hold nothing.
        (from, to.max(from))
    }

    /// The entries in `[from, to)`, in key order.
    fn span(&self, from: Pos, to: Pos) -> impl DoubleEndedIterator<Item = (&PeerId, &V)> + '_ {
        let end = if to.1 == 0 { to.0 } else { to.0 + 1 };
        let chunks = &self.chunks[from.0.min(end)..end];
        let last = chunks.len().wrapping_sub(1);
        chunks.iter().enumerate().flat_map(move |(n, c)| {
            let lo = if n == 0 { from.1 } else { 0 };
            let hi = if n == last && to.1 != 0 {
                to.1
            } else {
                c.len()
            };
            c.keys[lo..hi].iter().zip(&c.vals[lo..hi])
        })
    }

    /// [`span`](Table::span), the values mutably.
    fn span_mut(
        &mut self,
        from: Pos,
        to: Pos,
    ) -> impl DoubleEndedIterator<Item = (&PeerId, &mut V)> + '_ {
        let end = if to.1 == 0 { to.0 } else { to.0 + 1 };
        let chunks = &mut self.chunks[from.0.min(end)..end];
        let last = chunks.len().wrapping_sub(1);
        chunks.iter_mut().enumerate().flat_map(move |(n, c)| {
            let lo = if n == 0 { from.1 } else { 0 };
            let hi = if n == last && to.1 != 0 {
                to.1
            } else {
                c.len()
            };
            c.keys[lo..hi].iter().zip(c.vals[lo..hi].iter_mut())
        })
    }

    /// The entries whose keys are in `range`, in key order.
    pub(crate) fn range<R: RangeBounds<PeerId>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = (&PeerId, &V)> + '_ {
        let (from, to) = self.bounds(range.start_bound(), range.end_bound(), |k, b| k.cmp(b));
        self.span(from, to)
    }

    /// [`range`](Table::range), the values mutably.
    pub(crate) fn range_mut<R: RangeBounds<PeerId>>(
        &mut self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = (&PeerId, &mut V)> + '_ {
        let (from, to) = self.bounds(range.start_bound(), range.end_bound(), |k, b| k.cmp(b));
        self.span_mut(from, to)
    }

    /// The entries whose ids' strings are within the bounds, in key order.
    pub(crate) fn range_str(
        &self,
        start: Bound<&str>,
        end: Bound<&str>,
    ) -> impl DoubleEndedIterator<Item = (&PeerId, &V)> + '_ {
        let (from, to) = self.bounds(start, end, |k, b| k.as_str().cmp(b));
        self.span(from, to)
    }
}

impl<V> Index<&PeerId> for Table<V> {
    type Output = V;

    fn index(&self, key: &PeerId) -> &V {
        self.get(key).expect("no entry found for key")
    }
}

impl<V> FromIterator<(PeerId, V)> for Table<V> {
    /// A table of the pairs; of equal keys the last pair's value stays,
    /// under the first pair's key (a `BTreeMap` keeps the last key too).
    fn from_iter<I: IntoIterator<Item = (PeerId, V)>>(iter: I) -> Self {
        let mut t = Table::new();
        for (k, v) in iter {
            t.insert(k, v);
        }
        t.compact();
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng};

    fn id(rng: &mut impl Rng) -> PeerId {
        // Ids that share long prefixes or differ only past eight bytes.
        let stems = ["", "n", "node-000", "node-0001", "x\0"];
        let mut s = stems[rng.random_range(0..stems.len())].to_string();
        for _ in 0..rng.random_range(0..4) {
            s.push(['\0', '0', '1', '7', 'z'][rng.random_range(0..5)]);
        }
        PeerId::from(s.as_str())
    }

    fn bound(rng: &mut impl Rng) -> Bound<PeerId> {
        match rng.random_range(0..3) {
            0 => Bound::Unbounded,
            1 => Bound::Included(id(rng)),
            _ => Bound::Excluded(id(rng)),
        }
    }

    fn as_ref(b: &Bound<PeerId>) -> Bound<&PeerId> {
        match b {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(k) => Bound::Included(k),
            Bound::Excluded(k) => Bound::Excluded(k),
        }
    }

    fn as_str(b: &Bound<PeerId>) -> Bound<&str> {
        match b {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(k) => Bound::Included(k.as_str()),
            Bound::Excluded(k) => Bound::Excluded(k.as_str()),
        }
    }

    /// Every operation against a `BTreeMap` doing the same, over tables
    /// that grow past many chunks and shrink back, with compactions.
    #[test]
    fn does_what_a_btree_map_does() {
        for seed in 0..60u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut t: Table<u32> = Table::new();
            let mut m: BTreeMap<PeerId, u32> = BTreeMap::new();
            let grow = rng.random_range(1..400);
            for step in 0..3_000u32 {
                let k = id(&mut rng);
                match rng.random_range(0..10) {
                    0..=4 if step < grow * 4 || rng.random_bool(0.5) => {
                        assert_eq!(t.insert(k.clone(), step), m.insert(k, step), "seed {seed}");
                    }
                    0..=5 => assert_eq!(t.remove(&k), m.remove(&k), "seed {seed}"),
                    6 => {
                        assert_eq!(t.get(&k), m.get(&k), "seed {seed}");
                        assert_eq!(t.contains_key(&k), m.contains_key(&k), "seed {seed}");
                        if let Some(v) = t.get_mut(&k) {
                            *v += 1;
                            *m.get_mut(&k).expect("held") += 1;
                        }
                    }
                    7 => {
                        let (a, b) = (bound(&mut rng), bound(&mut rng));
                        let valid = match (&a, &b) {
                            (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y))
                            | (Bound::Included(x), Bound::Excluded(y)) => x <= y,
                            (Bound::Excluded(x), Bound::Excluded(y)) => x < y,
                            _ => true,
                        };
                        if valid {
                            let want: Vec<_> =
                                m.range::<PeerId, _>((as_ref(&a), as_ref(&b))).collect();
                            let got: Vec<_> = t.range((as_ref(&a), as_ref(&b))).collect();
                            assert_eq!(got, want, "seed {seed}");
                            let back: Vec<_> = t.range((as_ref(&a), as_ref(&b))).rev().collect();
                            let want_back: Vec<_> = want.into_iter().rev().collect();
                            assert_eq!(back, want_back, "seed {seed}");
                            let strs: Vec<_> = t.range_str(as_str(&a), as_str(&b)).collect();
                            let want: Vec<_> =
                                m.range::<PeerId, _>((as_ref(&a), as_ref(&b))).collect();
                            assert_eq!(strs, want, "seed {seed}");
                            for (_, v) in t.range_mut((as_ref(&a), as_ref(&b))) {
                                *v ^= 1;
                            }
                            for (_, v) in m.range_mut::<PeerId, _>((as_ref(&a), as_ref(&b))) {
                                *v ^= 1;
                            }
                        } else {
                            assert_eq!(t.range((as_ref(&a), as_ref(&b))).count(), 0);
                        }
                    }
                    8 if rng.random_bool(0.05) => t.compact(),
                    _ => {
                        for (_, v) in t.iter_mut().filter(|(k, _)| k.as_str().len() % 2 == 0) {
                            *v = v.wrapping_mul(3);
                        }
                        for (_, v) in m.iter_mut().filter(|(k, _)| k.as_str().len() % 2 == 0) {
                            *v = v.wrapping_mul(3);
                        }
                    }
                }
                assert_eq!(t.len(), m.len(), "seed {seed}");
            }
            assert!(t.iter().eq(m.iter()), "seed {seed}");
            assert!(t.iter().rev().eq(m.iter().rev()), "seed {seed}");
            assert!(t.values().eq(m.values()), "seed {seed}");
            assert!(t.keys().eq(m.keys()), "seed {seed}");
            // The runs, joined, are the entries in order.
            let runs = t.runs().flat_map(|(k, v)| k.iter().zip(v));
            assert!(runs.eq(m.iter()), "seed {seed}");
            for (k, v) in t.runs_mut().flat_map(|(k, v)| k.iter().zip(v)) {
                if k.as_str().len() % 3 == 0 {
                    *v = v.wrapping_add(5);
                }
            }
            for (k, v) in m.iter_mut() {
                if k.as_str().len() % 3 == 0 {
                    *v = v.wrapping_add(5);
                }
            }
            assert!(t.iter().eq(m.iter()), "seed {seed}");
            // Every chunk within its bounds, and the firsts in step.
            for (c, f) in t.chunks.iter().zip(&t.firsts) {
                assert!(!c.keys.is_empty() && c.len() < CHUNK && c.keys.capacity() <= CHUNK);
                assert_eq!(&c.keys[0], f);
            }
            assert_eq!(t.chunks.len(), t.firsts.len());
        }
    }

    #[test]
    fn a_compacted_table_is_packed_and_equal() {
        let mut t: Table<u64> = (0..1_000u64)
            .rev()
            .map(|i| (PeerId::from(format!("p{i:04}").as_str()), i))
            .collect();
        assert_eq!(t.len(), 1_000);
        assert!(t.chunks.len() <= 1_000 / PACKED + 1);
        assert!(t.chunks[..t.chunks.len() - 1]
            .iter()
            .all(|c| c.len() == PACKED));
        assert!(t.iter().map(|(_, v)| *v).eq(0..1_000));
        t.insert(PeerId::from("p0500a"), 7);
        assert_eq!(t.get(&PeerId::from("p0500a")), Some(&7));
        assert_eq!(t[&PeerId::from("p0999")], 999);
        assert!(t.range(..PeerId::from("p0002")).map(|(_, v)| *v).eq(0..2));
        // Most entries removed, then packed: as few chunks as a table of
        // what is left.
        for i in (0..1_000u64).filter(|i| i % 4 != 0) {
            t.remove(&PeerId::from(format!("p{i:04}").as_str()));
        }
        t.compact();
        assert_eq!(t.len(), 251);
        assert!(t.chunks.len() <= 251 / PACKED + 1);
        // "p0500a" (7) sorts right after "p0500".
        let want = (0..=500)
            .step_by(4)
            .chain([7])
            .chain((504..1_000).step_by(4));
        assert!(t.values().copied().eq(want));
    }
}
