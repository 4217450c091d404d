//! Choosing whom to gossip with each round.
//!
//! `fanout` random live peers; a dead peer with probability
//! dead / (live + 1), so a healed partition is noticed; and a seed when fewer
//! than `min_live_peers` are live (always when none are), so a node that lost
//! everyone, or never had anyone, finds its way back.
//!
//! The picks are drawn as ranks among the live and the dead peers in table
//! order ([`pick`]), so the engine finds their addresses in one walk of its
//! table that stops at the last one, instead of listing every peer's address
//! each round (at ten thousand peers, three lists of that size a node a
//! round). [`targets`] draws the same picks from lists.

use rand::seq::{index, SliceRandom};
use rand::Rng;

/// A round's picks, as ranks in table order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Picks {
    /// Ranks among the live peers, in the order drawn.
    pub(crate) live: Vec<usize>,
    /// A rank among the dead peers, if one is tried this round.
    pub(crate) dead: Option<usize>,
}

/// Draws a round's picks among `live` and `dead` peers: `fanout` distinct
/// live ones in random order (as `choose_multiple` draws them), then a dead
/// one with probability dead / (live + 1).
pub(crate) fn pick<R: Rng>(rng: &mut R, live: usize, dead: usize, fanout: usize) -> Picks {
    let live_picks = index::sample(rng, live, fanout.min(live)).into_vec();
    let mut dead_pick = None;
    if dead > 0 {
        let p = dead as f64 / (live as f64 + 1.0);
        if rng.random_bool(p.min(1.0)) {
            dead_pick = Some(rng.random_range(..dead));
        }
    }
    Picks {
        live: live_picks,
        dead: dead_pick,
    }
}

/// The target addresses of `picks` (their addresses `chosen`, live ones in
/// the order drawn, then the dead one): a seed is added when fewer than
/// `min_live` peers are live (`live`) or none are, never `own_addr`;
/// empty addresses are dropped, and repeats next to each other.
pub(crate) fn finish<R: Rng>(
    rng: &mut R,
    chosen: Vec<String>,
    live: usize,
    seeds: &[String],
    min_live: usize,
    own_addr: &str,
) -> Vec<String> {
    let mut out = chosen;
    if live < min_live || live == 0 {
        let mut candidates: Vec<&String> = seeds
            .iter()
            .filter(|s| s.as_str() != own_addr && !out.contains(s))
            .collect();
        candidates.shuffle(rng);
        if let Some(s) = candidates.first() {
            out.push(s.to_string());
        }
    }
    out.retain(|a| !a.is_empty());
    out.dedup();
    out
}

/// Picks target addresses. `live` and `dead` are peer addresses in a fixed
/// order; `seeds` may include `own_addr`, which is never picked.
#[cfg(test)]
pub(crate) fn targets<R: Rng>(
    rng: &mut R,
    live: &[&str],
    dead: &[&str],
    seeds: &[String],
    fanout: usize,
    min_live: usize,
    own_addr: &str,
) -> Vec<String> {
    let picks = pick(rng, live.len(), dead.len(), fanout);
    let mut chosen: Vec<String> = picks.live.iter().map(|&i| live[i].to_string()).collect();
    chosen.extend(picks.dead.map(|i| dead[i].to_string()));
    finish(rng, chosen, live.len(), seeds, min_live, own_addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn picks_fanout_live_peers_and_a_seed_when_lonely() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let live = ["a", "b", "c", "d", "e"];
        let seeds = vec!["s".to_string(), "me".to_string()];
        let t = targets(&mut rng, &live, &[], &seeds, 3, 2, "me");
        assert_eq!(t.len(), 3);
        assert!(!t.contains(&"s".to_string()));
        let t = targets(&mut rng, &[], &[], &seeds, 3, 2, "me");
        assert_eq!(t, vec!["s".to_string()]);
    }

    /// The picks by rank are the picks `choose_multiple` and `choose` make
    /// from the lists themselves, draw for draw: the engine's choices (and
    /// every seeded test's run) are what they were when it listed every
    /// address each round.
    #[test]
    fn picks_by_rank_draw_as_the_slice_methods_do() {
        use rand::seq::IndexedRandom;
        let addrs: Vec<String> = (0..40).map(|i| format!("a{i}")).collect();
        for seed in 0..300u64 {
            let live_n = (seed % 23) as usize;
            let dead_n = (seed % 7) as usize;
            let fanout = 1 + (seed % 4) as usize;
            let live: Vec<&str> = addrs[..live_n].iter().map(String::as_str).collect();
            let dead: Vec<&str> = addrs[live_n..live_n + dead_n]
                .iter()
                .map(String::as_str)
                .collect();
            let mut a = ChaCha8Rng::seed_from_u64(seed);
            let mut b = ChaCha8Rng::seed_from_u64(seed);
            let got = targets(&mut a, &live, &dead, &[], fanout, 0, "me");
            let mut want: Vec<String> = live
                .choose_multiple(&mut b, fanout.min(live.len()))
                .map(|s| s.to_string())
                .collect();
            if !dead.is_empty() {
                let p = dead.len() as f64 / (live.len() as f64 + 1.0);
                if b.random_bool(p.min(1.0)) {
                    want.extend(dead.choose(&mut b).map(|s| s.to_string()));
                }
            }
            assert_eq!(got, want, "seed {seed}");
            assert_eq!(a.random::<u64>(), b.random::<u64>(), "seed {seed}: draws");
        }
    }

    #[test]
    fn dead_peers_are_tried_in_proportion() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let live = ["a", "b", "c"];
        let dead = ["x"];
        let hits = (0..4000)
            .filter(|_| targets(&mut rng, &live, &dead, &[], 3, 0, "me").contains(&"x".to_string()))
            .count();
        // p = 1 / 4
        assert!(
            (800..1200).contains(&hits),
            "dead peer picked {hits} times in 4000"
        );
    }
}
