//! Building the deltas a peer lacks, within a byte budget.
//!
//! Each peer's delta is a gap-free prefix: every entry with a version in
//! `(from, to]`, in version order, so a delta cut short by the budget never
//! leaves a hole. Peers the receiver does not know come first, then the most
//! out of date; ties are broken at random so no peer starves.

use std::time::Instant;

use rand::Rng;

use crate::state::Peer;
use crate::wire::{len_msg, DigestEntry, PeerDelta};
use crate::PeerId;

/// What the receiver holds of a peer, as its digest said (`None`: nothing).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Theirs {
    pub(crate) generation: u64,
    pub(crate) max_version: u64,
    pub(crate) gc_floor: u64,
}

impl From<&DigestEntry> for Theirs {
    fn from(e: &DigestEntry) -> Self {
        Theirs {
            generation: e.generation,
            max_version: e.max_version,
            gc_floor: e.gc_floor,
        }
    }
}

/// A peer whose state the receiver may lack.
pub(crate) struct Candidate<'a> {
    pub(crate) id: &'a PeerId,
    pub(crate) peer: &'a Peer,
    pub(crate) theirs: Option<Theirs>,
}

impl Candidate<'_> {
    /// Where the receiver's copy ends, and whether it must reset first.
    fn start(&self) -> (u64, bool) {
        match self.theirs {
            Some(t) if t.generation == self.peer.generation => {
                let floor = self.peer.gc_floor;
                if t.gc_floor < floor && t.max_version < floor {
                    (0, true)
                } else {
                    (t.max_version, false)
                }
            }
            _ => (0, false),
        }
    }

    /// About the least its delta can cost: id and address with their field
    /// headers.
    fn least_len(&self) -> usize {
        let addr = match self.peer.addr.len() {
            0 => 0,
            n => n + 2,
        };
        len_msg(self.id.as_str().len() + 2 + addr)
    }

    /// Sort key: unknown first, then most versions behind.
    fn rank(&self) -> (bool, std::cmp::Reverse<u64>) {
        let known = matches!(self.theirs, Some(t) if t.generation == self.peer.generation);
        let (from, _) = self.start();
        (
            known,
            std::cmp::Reverse(self.peer.max_version.saturating_sub(from)),
        )
    }
}

/// Fills at most `budget` bytes (counting each delta's field header) with
/// deltas for `candidates`, most needed first, each with at most
/// `max_entries` entries.
pub(crate) fn build<R: Rng>(
    mut candidates: Vec<Candidate<'_>>,
    budget: usize,
    max_entries: usize,
    rng: &mut R,
    now: Instant,
) -> Vec<PeerDelta> {
    if candidates.is_empty() {
        // No list at all: the thread's kept room stays kept (`spare.rs`).
        return Vec::new();
    }
    let mut keyed: Vec<_> = candidates
        .drain(..)
        .map(|c| ((c.rank(), rng.random::<u64>()), c))
        .collect();
    // A frame holds a fraction of a large table's peers (a new node's first
    // exchange offers it the whole table): order first only as many as
    // would fit if each cost what the cheapest of a sample does, and the
    // rest only if those leave room. The order is the same as sorting all.
    let least = keyed
        .iter()
        .take(64)
        .map(|(_, c)| c.least_len())
        .min()
        .unwrap_or(1)
        .max(1);
    let head = (budget / least + 1).min(keyed.len());
    if head < keyed.len() {
        keyed.select_nth_unstable_by_key(head, |k| k.0);
    }
    // The room this thread kept from an earlier frame (`spare.rs`).
    let mut out = crate::spare::deltas();
    out.reserve(head);
    let mut left = budget;
    let (first, rest) = keyed.split_at_mut(head);
    for part in [first, rest] {
        if left < 32 {
            break;
        }
        part.sort_unstable_by_key(|k| k.0);
        for (_, c) in part.iter() {
            if left < 32 {
                break;
            }
            if let Some((d, len)) = one(c, left, max_entries, now) {
                left -= len;
                out.push(d);
            }
        }
    }
    out
}

/// The largest delta for one candidate that fits in `budget` bytes and
/// `max_entries` entries, with its size as a field (header included), or
/// `None` if nothing useful fits.
fn one(
    c: &Candidate<'_>,
    budget: usize,
    max_entries: usize,
    now: Instant,
) -> Option<(PeerDelta, usize)> {
    let p = c.peer;
    let (from, reset) = c.start();
    let from = from.min(p.max_version);
    let mut d = PeerDelta {
        id: c.id.clone(),
        generation: p.generation,
        addr: p.addr.clone(),
        heartbeat: p.heartbeat,
        from_version: from,
        to_version: p.max_version,
        gc_floor: p.gc_floor,
        reset,
        // Sent on cut deltas too, so an unknown peer that is dead or left
        // is never introduced as live; `Left` is honoured on complete ones.
        status: p.status,
        status_age_ms: p.status_age_ms(now),
        heartbeat_age_ms: p.heartbeat_age_ms(now),
        entries: Vec::new(),
    };
    // Upper bound of the frame cost while entries are added: the header as if
    // complete, and a 5-byte length prefix.
    let mut size = d.header_len();
    let mut complete = true;
    for kv in p.entries_after(from) {
        let cost = len_msg(kv.encoded_len());
        if 1 + 5 + size + cost > budget || d.entries.len() == max_entries {
            complete = false;
            break;
        }
        size += cost;
        d.entries.push(kv);
    }
    if !complete {
        match d.entries.last() {
            Some(last) => d.to_version = last.version,
            // Not one entry fits: an empty reset or range would only mislead.
            None if reset || from < p.max_version => return None,
            None => {}
        }
    }
    let len = len_msg(d.encoded_len());
    (len <= budget).then_some((d, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Entry;
    use bytes::Bytes;
    use rand::SeedableRng;
    use std::time::{Duration, Instant};

    fn peer_with(n: u64, value_len: usize) -> Peer {
        let now = Instant::now();
        let mut p = Peer::new(
            3,
            "addr",
            now,
            Duration::from_millis(100),
            &crate::phi::PhiParams::new(100, 50.0, 0.0, 8.0),
        );
        for v in 1..=n {
            let e = Entry {
                value: Bytes::from(vec![b'v'; value_len]),
                version: v,
                deleted: false,
            };
            p.put(&format!("key-{v}"), e, now).unwrap();
            p.max_version = v;
        }
        p
    }

    #[test]
    fn a_cut_delta_is_a_prefix_within_budget() {
        let p = peer_with(100, 100);
        let id = PeerId::from("p");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let c = vec![Candidate {
            id: &id,
            peer: &p,
            theirs: None,
        }];
        let ds = build(c, 2000, 1000, &mut rng, Instant::now());
        assert_eq!(ds.len(), 1);
        let d = &ds[0];
        let size: usize = ds.iter().map(|d| len_msg(d.encoded_len())).sum();
        assert!(size <= 2000);
        assert!(d.entries.len() > 5 && d.entries.len() < 100);
        assert_eq!(d.to_version, d.entries.last().unwrap().version);
        for (i, e) in d.entries.iter().enumerate() {
            assert_eq!(e.version, i as u64 + 1);
        }
    }

    #[test]
    fn unknown_peers_come_first_then_most_behind() {
        let a = peer_with(10, 10);
        let b = peer_with(10, 10);
        let c = peer_with(10, 10);
        let (ia, ib, ic) = (PeerId::from("a"), PeerId::from("b"), PeerId::from("c"));
        let t = |max| {
            Some(Theirs {
                generation: 3,
                max_version: max,
                gc_floor: 0,
            })
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let cands = vec![
            Candidate {
                id: &ia,
                peer: &a,
                theirs: t(8),
            },
            Candidate {
                id: &ib,
                peer: &b,
                theirs: None,
            },
            Candidate {
                id: &ic,
                peer: &c,
                theirs: t(2),
            },
        ];
        let ds = build(cands, 10_000, 1000, &mut rng, Instant::now());
        let order: Vec<&str> = ds.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(order, ["b", "c", "a"]);
        assert_eq!(ds[2].from_version, 8);
        assert_eq!(ds[2].entries.len(), 2);
    }
}
