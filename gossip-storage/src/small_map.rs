//! [`SmallMap`]: an ordered map that is a sorted vector while small and a
//! B-tree once large.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Above this many entries a [`SmallMap`] becomes a B-tree.
pub const SMALL_MAP_MAX: usize = 32;

/// Below this many entries a large [`SmallMap`] goes back to a vector (half
/// of [`SMALL_MAP_MAX`], so a map at the edge does not convert on every
/// insert and remove).
const SMALL_MAP_MIN: usize = SMALL_MAP_MAX / 2;

/// An ordered map for the many small maps of a peer table: a sorted vector
/// up to [`SMALL_MAP_MAX`] entries, a [`BTreeMap`] above.
///
/// A node holds one map per peer, and most peers advertise one or two keys:
/// a `BTreeMap`'s first leaf has room for eleven entries (about 700 bytes for
/// one key), a vector holds exactly what it needs, and the first entry takes
/// one slot (not the four of a vector's first growth). But inserting into a
/// sorted vector moves every entry after the new one, so a peer with
/// thousands of keys learned in random name order (a cluster-wide set holds
/// one key per item) would cost O(k²); past the threshold every operation is
/// O(log k). The map is 24 bytes either way (the tree is boxed).
///
/// ```
/// use gossip_storage::SmallMap;
///
/// let mut m = SmallMap::new();
/// for i in (0..100u32).rev() {
///     m.insert(i, i * 2);
/// }
/// assert_eq!(m.len(), 100);
/// assert_eq!(m.get(&7), Some(&14));
/// assert_eq!(m.range_after(&97).map(|(k, _)| *k).collect::<Vec<_>>(), [98, 99]);
/// ```
#[derive(Debug, Clone)]
pub enum SmallMap<K, V> {
    /// Entries sorted by key.
    Small(Vec<(K, V)>),
    /// More than [`SMALL_MAP_MAX`] entries.
    Large(Box<BTreeMap<K, V>>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Small(Vec::new())
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    /// An empty map (no allocation).
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        match self {
            SmallMap::Small(v) => v.len(),
            SmallMap::Large(m) => m.len(),
        }
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the map is the B-tree form.
    pub fn is_large(&self) -> bool {
        matches!(self, SmallMap::Large(_))
    }

    fn find<Q>(v: &[(K, V)], key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        v.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get_key_value(key).map(|(_, v)| v)
    }

    /// The stored key and the value under `key`.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self {
            SmallMap::Small(v) => Self::find(v, key).ok().map(|i| (&v[i].0, &v[i].1)),
            SmallMap::Large(m) => m.get_key_value(key),
        }
    }

    /// The value under `key`, mutable.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self {
            SmallMap::Small(v) => Self::find(v, key).ok().map(|i| &mut v[i].1),
            SmallMap::Large(m) => m.get_mut(key),
        }
    }

    /// Stores `value` under `key`; returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self {
            SmallMap::Small(v) => match Self::find(v, &key) {
                Ok(i) => return Some(std::mem::replace(&mut v[i].1, value)),
                Err(i) if v.len() < SMALL_MAP_MAX => {
                    if v.capacity() == 0 {
                        v.reserve_exact(1);
                    }
                    v.insert(i, (key, value));
                    return None;
                }
                Err(_) => {
                    let mut m: BTreeMap<K, V> = std::mem::take(v).into_iter().collect();
                    m.insert(key, value);
                    *self = SmallMap::Large(Box::new(m));
                }
            },
            SmallMap::Large(m) => return m.insert(key, value),
        }
        None
    }

    /// Removes the entry under `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self {
            SmallMap::Small(v) => {
                let i = Self::find(v, key).ok()?;
                let (_, value) = v.remove(i);
                if v.is_empty() {
                    // Give the allocation back: most maps that empty stay so.
                    *v = Vec::new();
                }
                Some(value)
            }
            SmallMap::Large(m) => {
                let value = m.remove(key)?;
                self.shrink();
                Some(value)
            }
        }
    }

    /// Goes back to the vector form if a large map fell below
    /// `SMALL_MAP_MIN` entries.
    fn shrink(&mut self) {
        if let SmallMap::Large(m) = self {
            if m.len() < SMALL_MAP_MIN {
                *self = SmallMap::Small(std::mem::take(&mut **m).into_iter().collect());
            }
        }
    }

    /// Entries in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        match self {
            SmallMap::Small(v) => Iter::Small(v.iter()),
            SmallMap::Large(m) => Iter::Large(m.range::<K, _>(..)),
        }
    }

    /// Entries with a key above `from`, in key order.
    pub fn range_after(&self, from: &K) -> Iter<'_, K, V> {
        match self {
            SmallMap::Small(v) => {
                let start = v.partition_point(|(k, _)| k <= from);
                Iter::Small(v[start..].iter())
            }
            SmallMap::Large(m) => Iter::Large(m.range((Bound::Excluded(from), Bound::Unbounded))),
        }
    }

    /// Keeps only the entries `f` accepts.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        match self {
            SmallMap::Small(v) => v.retain_mut(|(k, v)| f(k, v)),
            SmallMap::Large(m) => {
                m.retain(|k, v| f(k, v));
                self.shrink();
            }
        }
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = SmallMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl<K, V> IntoIterator for SmallMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        match self {
            SmallMap::Small(v) => IntoIter::Small(v.into_iter()),
            SmallMap::Large(m) => IntoIter::Large(m.into_iter()),
        }
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

/// A [`SmallMap`]'s entries by reference, in key order.
#[derive(Debug, Clone)]
pub enum Iter<'a, K, V> {
    /// Over the vector form.
    Small(std::slice::Iter<'a, (K, V)>),
    /// Over the B-tree form.
    Large(std::collections::btree_map::Range<'a, K, V>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(i) => i.next().map(|(k, v)| (k, v)),
            Iter::Large(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Small(i) => i.size_hint(),
            Iter::Large(i) => i.size_hint(),
        }
    }
}

/// A [`SmallMap`]'s entries by value, in key order.
#[derive(Debug)]
pub enum IntoIter<K, V> {
    /// Over the vector form.
    Small(std::vec::IntoIter<(K, V)>),
    /// Over the B-tree form.
    Large(std::collections::btree_map::IntoIter<K, V>),
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        match self {
            IntoIter::Small(i) => i.next(),
            IntoIter::Large(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            IntoIter::Small(i) => i.size_hint(),
            IntoIter::Large(i) => i.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn small_maps_hold_what_they_need_and_large_ones_are_trees() {
        let mut m = SmallMap::new();
        m.insert(1u32, ());
        match &m {
            SmallMap::Small(v) => assert_eq!(v.capacity(), 1),
            SmallMap::Large(_) => panic!("one entry is small"),
        }
        for i in 0..SMALL_MAP_MAX as u32 {
            m.insert(i, ());
        }
        assert!(!m.is_large(), "{SMALL_MAP_MAX} entries is still small");
        m.insert(u32::MAX, ());
        assert!(m.is_large());
        for i in 0..SMALL_MAP_MAX as u32 - SMALL_MAP_MIN as u32 + 2 {
            m.remove(&i);
        }
        assert!(!m.is_large(), "{} entries is small again", m.len());
        assert_eq!(std::mem::size_of::<SmallMap<u64, u64>>(), 24);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u32),
        Remove(u16),
        RetainEven,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0..200u16, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            4 => (0..200u16).prop_map(Op::Remove),
            1 => Just(Op::RetainEven),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 200,
            failure_persistence: None,
            rng_seed: proptest::test_runner::RngSeed::Fixed(13),
            ..ProptestConfig::default()
        })]

        /// Whatever the operations, the map agrees with a `BTreeMap`.
        #[test]
        fn behaves_as_a_btree_map(ops in proptest::collection::vec(op(), 0..400), from in 0..200u16) {
            let mut ours = SmallMap::new();
            let mut theirs = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(ours.insert(k, v), theirs.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(ours.remove(&k), theirs.remove(&k)),
                    Op::RetainEven => {
                        ours.retain(|k, _| k % 2 == 0);
                        theirs.retain(|k, _| k % 2 == 0);
                    }
                }
                prop_assert_eq!(ours.len(), theirs.len());
                if ours.len() > SMALL_MAP_MAX {
                    prop_assert!(ours.is_large());
                }
                if ours.len() < SMALL_MAP_MIN {
                    prop_assert!(!ours.is_large());
                }
            }
            prop_assert!(ours.iter().eq(theirs.iter()));
            prop_assert!(ours.range_after(&from).eq(theirs.range(from + 1..)));
            for k in 0..200u16 {
                prop_assert_eq!(ours.get(&k), theirs.get(&k));
            }
            prop_assert!(ours.into_iter().eq(theirs.into_iter()));
        }
    }
}
