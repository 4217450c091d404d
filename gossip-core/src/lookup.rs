//! Looking up many ids in the peer table at once.
//!
//! A digest names up to a few thousand peers, and each is looked up in the
//! receiver's table. A search per id reads the table's chunk index and then
//! a chunk (`table.rs`), each cold in cache when the process holds
//! thousands of tables (the simulator at scale). When the ids are a large part of the
//! table, one walk of the table in order beside the ids sorted costs less:
//! each step of the walk is one comparison of neighbouring entries (a
//! [`PeerId`] compares by the eight-byte prefix it carries, the strings read
//! only on ties, and equal interned ids by pointer). Below an eighth of
//! the table, or for a few ids, a search per id is cheaper and is what
//! these functions do.

use std::ops::Bound;

use crate::table::Table;
use crate::PeerId;

/// Walk the table when the ids are at least this share of it (1 in 8).
const WALK_FRACTION: usize = 8;
/// Fewer ids than this are always searched for one by one.
const WALK_MIN_IDS: usize = 64;

/// Whether `ids` ids are looked up by one walk of a table of `held`.
fn walks(held: usize, ids: usize) -> bool {
    ids >= WALK_MIN_IDS && ids * WALK_FRACTION >= held
}

/// The positions of `keys` in id order, equal ids in their given order.
fn in_order(keys: &[&PeerId]) -> Vec<u32> {
    let mut order: Vec<(&PeerId, u32)> = keys.iter().zip(0..).map(|(k, i)| (*k, i)).collect();
    order.sort_unstable();
    order.into_iter().map(|(_, i)| i).collect()
}

/// Calls `f` once for each of `keys`, with its position in `keys` and the
/// table's value under it if there is one: in id order when the keys are
/// many (see the module's doc), else in the keys' own order. A key given
/// twice is visited twice, in its given order, with the same value.
pub(crate) fn visit_mut<V>(
    table: &mut Table<V>,
    keys: &[&PeerId],
    mut f: impl FnMut(usize, Option<&mut V>),
) {
    if !walks(table.len(), keys.len()) {
        for (i, k) in keys.iter().enumerate() {
            f(i, table.get_mut(k));
        }
        return;
    }
    let order = in_order(keys);
    let first = keys[order[0] as usize];
    let mut it = table.range_mut((Bound::Included(first), Bound::Unbounded));
    let mut cur = it.next();
    for i in order {
        let k = keys[i as usize];
        while cur.as_ref().is_some_and(|(id, _)| *id < k) {
            cur = it.next();
        }
        let held = match &mut cur {
            Some((id, v)) if *id == k => Some(&mut **v),
            _ => None,
        };
        f(i as usize, held);
    }
}

/// The table's entry under each of `keys` (`None` where there is none), in
/// the keys' order: [`visit_mut`]'s walk, read only.
pub(crate) fn get_many<'a, V>(
    table: &'a Table<V>,
    keys: &[&PeerId],
) -> Vec<Option<(&'a PeerId, &'a V)>> {
    if !walks(table.len(), keys.len()) {
        return keys.iter().map(|k| table.get_key_value(k)).collect();
    }
    let mut out = vec![None; keys.len()];
    let order = in_order(keys);
    let first = keys[order[0] as usize];
    let mut it = table.range((Bound::Included(first), Bound::Unbounded));
    let mut cur = it.next();
    for i in order {
        let k = keys[i as usize];
        while cur.is_some_and(|(id, _)| id < k) {
            cur = it.next();
        }
        out[i as usize] = cur.filter(|(id, _)| *id == k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand::{Rng, SeedableRng};

    /// Ids that share long prefixes, differ only past eight bytes, are
    /// prefixes of each other, or hold zero bytes: the orders a prefix
    /// alone would get wrong.
    fn id(rng: &mut impl Rng) -> String {
        let stems = [
            "",
            "a",
            "ab",
            "node-000",
            "node-0001",
            "10.0.0.1:79",
            "x\0",
            "x",
        ];
        let mut s = stems[rng.random_range(0..stems.len())].to_string();
        for _ in 0..rng.random_range(0..3) {
            s.push(['\0', '0', '1', 'z'][rng.random_range(0..4)]);
        }
        s
    }

    #[test]
    fn walk_and_search_agree_with_a_search_per_key() {
        for seed in 0..200u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut table: Table<u32> = Table::new();
            for v in 0..rng.random_range(0..300) {
                table.insert(PeerId::from(id(&mut rng).as_str()), v);
            }
            // Ids of their own, not the table's: compared by string.
            let owned: Vec<PeerId> = (0..rng.random_range(0..400))
                .map(|_| PeerId::from(id(&mut rng)))
                .collect();
            let keys: Vec<&PeerId> = owned.iter().collect();
            let want: Vec<Option<u32>> = keys.iter().map(|k| table.get(k).copied()).collect();
            let got: Vec<Option<u32>> = get_many(&table, &keys)
                .into_iter()
                .map(|e| {
                    e.map(|(k, v)| {
                        assert_eq!(k, keys[keys.iter().position(|x| *x == k).unwrap()]);
                        *v
                    })
                })
                .collect();
            assert_eq!(got, want, "get_many, seed {seed}");
            let mut seen = vec![None; keys.len()];
            let mut visits = 0;
            visit_mut(&mut table, &keys, |i, v| {
                visits += 1;
                seen[i] = v.map(|v| {
                    *v += 1_000_000;
                    *v - 1_000_000
                });
            });
            assert_eq!(visits, keys.len(), "seed {seed}");
            // A key given twice saw the first visit's change the second time.
            for (i, k) in keys.iter().enumerate() {
                let first = keys.iter().position(|x| x == k).unwrap();
                let times = keys[..i].iter().filter(|x| *x == k).count() as u32;
                assert_eq!(
                    seen[i],
                    want[first].map(|v| v + times * 1_000_000),
                    "visit_mut, seed {seed}, key {k:?}"
                );
            }
        }
    }
}
