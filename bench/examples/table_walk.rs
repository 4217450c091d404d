//! Why the peer table is sorted chunks (`gossip-core/src/table.rs`) and
//! not a `BTreeMap`: many tables of many entries, out of cache as the
//! simulator's are, walked, searched and filled both ways. A scratch model
//! of the layout with its own types: an id ordered by its first eight bytes
//! and then its string (24 bytes here, where `PeerId` is 16), a value of
//! `Peer`'s 88 bytes; the engine's table is crate-private.
//!
//! ```text
//! cargo run --release -p gossip-bench --example table_walk -- [tables] [entries]
//! ```
//!
//! Prints nanoseconds an entry for each layout: inserting every entry in
//! one random order across all tables (as a join's deltas arrive), three
//! walks of every table, and two million lookups of random ids in random
//! tables. bench/NOTES.md, "The peer table in chunks", quotes a run of
//! `1000 10000`.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// An id as `PeerId` orders it: the first eight bytes, then the string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Id {
    prefix: u64,
    name: Arc<str>,
}

/// A value of `Peer`'s size.
#[derive(Clone)]
struct Val {
    heartbeat: u64,
    rest: [u64; 10],
}

/// Entries a chunk reaches before it splits (as in `table.rs`).
const CHUNK: usize = 64;

struct Chunk {
    keys: Vec<Id>,
    vals: Vec<Val>,
}

/// The chunked layout: sorted chunks, their first keys beside them.
struct Chunks {
    chunks: Vec<Chunk>,
    firsts: Vec<Id>,
}

impl Chunks {
    fn new() -> Self {
        Chunks {
            chunks: Vec::new(),
            firsts: Vec::new(),
        }
    }

    fn chunk_of(&self, k: &Id) -> usize {
        self.firsts.partition_point(|f| f <= k).saturating_sub(1)
    }

    fn insert(&mut self, k: Id, v: Val) {
        if self.chunks.is_empty() {
            self.firsts.push(k.clone());
            self.chunks.push(Chunk {
                keys: vec![k],
                vals: vec![v],
            });
            return;
        }
        let c = self.chunk_of(&k);
        let chunk = &mut self.chunks[c];
        let Err(at) = chunk.keys.binary_search(&k) else {
            return;
        };
        if at == 0 {
            self.firsts[c] = k.clone();
        }
        chunk.keys.insert(at, k);
        chunk.vals.insert(at, v);
        if chunk.keys.len() == CHUNK {
            let keys: Vec<Id> = chunk.keys.drain(CHUNK / 2..).collect();
            let vals: Vec<Val> = chunk.vals.drain(CHUNK / 2..).collect();
            self.firsts.insert(c + 1, keys[0].clone());
            self.chunks.insert(c + 1, Chunk { keys, vals });
        }
    }

    fn get(&self, k: &Id) -> Option<&Val> {
        let chunk = self.chunks.get(self.chunk_of(k))?;
        chunk.keys.binary_search(k).ok().map(|i| &chunk.vals[i])
    }

    fn iter(&self) -> impl Iterator<Item = (&Id, &Val)> {
        self.chunks.iter().flat_map(|c| c.keys.iter().zip(&c.vals))
    }
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn per(t: Instant, n: usize) -> f64 {
    t.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let tables: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let ids: Vec<Id> = (0..n)
        .map(|i| {
            let s = format!("n{i:05}");
            let mut p = [0u8; 8];
            let len = s.len().min(8);
            p[..len].copy_from_slice(&s.as_bytes()[..len]);
            Id {
                prefix: u64::from_be_bytes(p),
                name: s.into(),
            }
        })
        .collect();
    let mut x = 12345u64;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, (xorshift(&mut x) as usize) % (i + 1));
    }
    let v = Val {
        heartbeat: 1,
        rest: [0; 10],
    };
    let all = n * tables;

    let t = Instant::now();
    let mut trees: Vec<BTreeMap<Id, Val>> = (0..tables).map(|_| BTreeMap::new()).collect();
    for &i in &order {
        for tree in trees.iter_mut() {
            tree.insert(ids[i].clone(), v.clone());
        }
    }
    println!("BTreeMap insert {:6.1} ns an entry", per(t, all));
    let t = Instant::now();
    let mut chunked: Vec<Chunks> = (0..tables).map(|_| Chunks::new()).collect();
    for &i in &order {
        for c in chunked.iter_mut() {
            c.insert(ids[i].clone(), v.clone());
        }
    }
    println!("chunks   insert {:6.1} ns an entry", per(t, all));

    for _ in 0..3 {
        let t = Instant::now();
        let sum: u64 = trees
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| v.heartbeat ^ (k.prefix & 1))
            .sum();
        println!("BTreeMap walk   {:6.1} ns an entry ({sum})", per(t, all));
        let t = Instant::now();
        let sum: u64 = chunked
            .iter()
            .flat_map(|c| c.iter())
            .map(|(k, v)| v.heartbeat ^ (k.prefix & 1))
            .sum();
        println!("chunks   walk   {:6.1} ns an entry ({sum})", per(t, all));
    }

    let lookups = 2_000_000;
    let picks: Vec<(usize, usize)> = (0..lookups)
        .map(|_| {
            let r = xorshift(&mut x);
            ((r as usize) % tables, (r >> 32) as usize % n)
        })
        .collect();
    let t = Instant::now();
    let hits: u64 = picks
        .iter()
        .filter_map(|&(m, i)| trees[m].get(&ids[i]))
        .map(|v| v.heartbeat + v.rest[9])
        .sum();
    println!("BTreeMap get    {:6.1} ns ({hits} found)", per(t, lookups));
    let t = Instant::now();
    let hits: u64 = picks
        .iter()
        .filter_map(|&(m, i)| chunked[m].get(&ids[i]))
        .map(|v| v.heartbeat + v.rest[9])
        .sum();
    println!("chunks   get    {:6.1} ns ({hits} found)", per(t, lookups));
}
