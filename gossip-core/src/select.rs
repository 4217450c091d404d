//! Choosing whom to gossip with each round.
//!
//! `fanout` random live peers; a dead peer with probability
//! dead / (live + 1), so a healed partition is noticed; and a seed when fewer
//! than `min_live_peers` are live (always when none are), so a node that lost
//! everyone, or never had anyone, finds its way back.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

/// Picks target addresses. `live` and `dead` are peer addresses in a fixed
/// order; `seeds` may include `own_addr`, which is never picked.
pub(crate) fn targets<R: Rng>(
    rng: &mut R,
    live: &[&str],
    dead: &[&str],
    seeds: &[String],
    fanout: usize,
    min_live: usize,
    own_addr: &str,
) -> Vec<String> {
    let mut out: Vec<String> = live
        .choose_multiple(rng, fanout.min(live.len()))
        .map(|a| a.to_string())
        .collect();
    if !dead.is_empty() {
        let p = dead.len() as f64 / (live.len() as f64 + 1.0);
        if rng.random_bool(p.min(1.0)) {
            if let Some(a) = dead.choose(rng) {
                out.push(a.to_string());
            }
        }
    }
    if live.len() < min_live || live.is_empty() {
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
