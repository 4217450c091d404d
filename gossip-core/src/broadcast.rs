//! The epidemic broadcast channel: messages piggybacked on gossip frames,
//! each retransmitted a bounded number of times, recognised by id.
//!
//! It is memberlist's transmit-limited queue with a seen-cache in front:
//!
//! - a node holds each message it accepted (its own or relayed) in a queue,
//!   and attaches it to frames bound for peers that want it, fewest
//!   transmissions first, within a share of each frame
//!   (`Config::broadcast_frame_percent`);
//! - after `retransmit_mult * ceil(log10(N + 1))` copies (N: nodes known
//!   live), or as many rounds, the node drops it: with every holder sending
//!   that many, the epidemic reaches all of N with high probability;
//! - ids of messages seen are remembered (`Config::broadcast_cache`) so a
//!   copy relayed by several peers is handled once.
//!
//! The channel knows nothing of topics or signatures; [`crate::pubsub`]
//! decides what is accepted and who wants what. Queries with replies and a
//! cluster-wide set can ride on the same queue with their own message kinds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::wire::{len_msg, Broadcast, BroadcastKind};
use crate::PeerId;

/// A message id: a hash of everything the message carries (so a copy with
/// an altered payload or signature is another message, and fails
/// verification rather than hiding behind the genuine one's id).
pub(crate) type MessageId = [u8; 16];

/// The retransmit limit for a cluster of `n` nodes: `mult * ceil(log10(n + 1))`
/// (memberlist's `retransmitLimit`), at least `mult`.
pub(crate) fn retransmit_limit(mult: u32, n: usize) -> u32 {
    // ceil(log10(n + 1)) is the number of decimal digits of n (n >= 1).
    let mut digits = 0u32;
    let mut v = n;
    while v > 0 {
        digits += 1;
        v /= 10;
    }
    mult.saturating_mul(digits.max(1))
}

struct Pending {
    msg: Broadcast,
    /// Copies sent so far.
    transmits: u32,
    /// Rounds the message has been offered.
    rounds: u32,
    /// Peers known to hold it: the one it came from and those sent a copy
    /// (at most `limit + 1`); none is sent it again.
    holders: BTreeSet<PeerId>,
}

/// The queue of messages to retransmit and the cache of ids seen.
#[derive(Default)]
pub(crate) struct Channel {
    /// Pending messages by insertion order (deterministic iteration).
    pending: BTreeMap<u64, Pending>,
    next: u64,
    seen: BTreeSet<MessageId>,
    seen_order: VecDeque<MessageId>,
}

impl Channel {
    /// Whether the message `id` was seen (and is still remembered).
    pub(crate) fn seen(&self, id: &MessageId) -> bool {
        self.seen.contains(id)
    }

    /// Remembers `id`, forgetting the oldest beyond `cap`.
    pub(crate) fn remember(&mut self, id: MessageId, cap: usize) {
        if self.seen.insert(id) {
            self.seen_order.push_back(id);
        }
        while self.seen_order.len() > cap {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    /// Queues `msg` for retransmission. With `max` already pending, the one
    /// sent most often (the oldest among equals) is dropped first; returns
    /// whether one was.
    pub(crate) fn enqueue(&mut self, msg: Broadcast, from: Option<PeerId>, max: usize) -> bool {
        let mut dropped = false;
        while self.pending.len() >= max {
            let worst = self
                .pending
                .iter()
                .max_by(|a, b| a.1.transmits.cmp(&b.1.transmits).then(b.0.cmp(a.0)))
                .map(|(k, _)| *k);
            match worst {
                Some(k) => {
                    self.pending.remove(&k);
                    dropped = true;
                }
                None => break,
            }
        }
        self.pending.insert(
            self.next,
            Pending {
                msg,
                transmits: 0,
                rounds: 0,
                holders: from.into_iter().collect(),
            },
        );
        self.next += 1;
        dropped
    }

    /// Whether nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Number of messages pending.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// The kinds and topics of pending messages, sorted, each once.
    pub(crate) fn topics(&self) -> BTreeSet<(BroadcastKind, String)> {
        self.pending
            .values()
            .filter(|p| p.msg.kind != BroadcastKind::Reply)
            .map(|p| (p.msg.kind, p.msg.topic.clone()))
            .collect()
    }

    /// Takes copies for peer `to` of the pending messages `wants` accepts
    /// and `to` is not known to hold, fewest
    /// transmissions first (oldest among equals), up to `budget` encoded
    /// bytes and `max_count` messages; counts them as transmitted and drops
    /// those that reached `limit`.
    pub(crate) fn take(
        &mut self,
        to: &PeerId,
        mut wants: impl FnMut(&Broadcast) -> bool,
        budget: usize,
        max_count: usize,
        limit: u32,
    ) -> Vec<Broadcast> {
        if self.pending.is_empty() || budget == 0 {
            return Vec::new();
        }
        let mut order: Vec<(u32, u64)> = self
            .pending
            .iter()
            .filter(|(_, p)| !p.holders.contains(to) && wants(&p.msg))
            .map(|(k, p)| (p.transmits, *k))
            .collect();
        order.sort_unstable();
        let mut out = Vec::new();
        let mut used = 0;
        for (_, k) in order {
            if out.len() >= max_count {
                break;
            }
            let p = self.pending.get_mut(&k).expect("pending");
            let cost = len_msg(p.msg.encoded_len());
            if used + cost > budget {
                continue;
            }
            used += cost;
            p.transmits += 1;
            p.holders.insert(to.clone());
            out.push(p.msg.clone());
            if p.transmits >= limit {
                self.pending.remove(&k);
            }
        }
        out
    }

    /// One round passed: messages offered for `limit` rounds are dropped
    /// (no peer wanted them often enough; their spread is others' job now).
    pub(crate) fn age(&mut self, limit: u32) {
        self.pending.retain(|_, p| {
            p.rounds += 1;
            p.rounds < limit
        });
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn msg(topic: &str, seq: u64) -> Broadcast {
        Broadcast {
            topic: topic.into(),
            author: PeerId::from("a"),
            author_key: Bytes::from(vec![1; 32]),
            seq,
            payload: Bytes::from(vec![2; 10]),
            signature: Bytes::from(vec![3; 64]),
            ..Broadcast::message_defaults()
        }
    }

    fn p() -> PeerId {
        PeerId::from(format!(
            "p{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    #[test]
    fn a_peer_is_never_sent_what_it_holds() {
        let mut c = Channel::default();
        let (a, b) = (PeerId::from("a"), PeerId::from("b"));
        c.enqueue(msg("t", 1), Some(a.clone()), 10);
        assert!(c.take(&a, |_| true, 1000, 10, 9).is_empty(), "came from a");
        assert_eq!(c.take(&b, |_| true, 1000, 10, 9).len(), 1);
        assert!(
            c.take(&b, |_| true, 1000, 10, 9).is_empty(),
            "b was sent it"
        );
        assert_eq!(c.take(&p(), |_| true, 1000, 10, 9).len(), 1);
    }

    #[test]
    fn the_limit_scales_with_log10_of_the_cluster() {
        assert_eq!(retransmit_limit(4, 0), 4);
        assert_eq!(retransmit_limit(4, 1), 4);
        assert_eq!(retransmit_limit(4, 9), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
        assert_eq!(retransmit_limit(4, 99), 8);
        assert_eq!(retransmit_limit(4, 100), 12);
        assert_eq!(retransmit_limit(3, 1000), 12);
    }

    #[test]
    fn messages_go_out_fewest_first_and_at_most_limit_times() {
        let mut c = Channel::default();
        c.enqueue(msg("t", 1), None, 10);
        c.enqueue(msg("t", 2), None, 10);
        let one = len_msg(msg("t", 1).encoded_len());
        // Room for one: the oldest goes first, then the other.
        assert_eq!(c.take(&p(), |_| true, one, 10, 2)[0].seq, 1);
        assert_eq!(c.take(&p(), |_| true, one, 10, 2)[0].seq, 2);
        // Both at one transmission; the second copy of each ends it.
        assert_eq!(c.take(&p(), |_| true, 10 * one, 10, 2).len(), 2);
        assert!(c.is_empty());
    }

    #[test]
    fn the_budget_the_count_and_the_filter_hold() {
        let mut c = Channel::default();
        for s in 1..=5 {
            c.enqueue(msg(if s % 2 == 0 { "even" } else { "odd" }, s), None, 10);
        }
        let one = len_msg(msg("odd", 1).encoded_len());
        assert_eq!(c.take(&p(), |_| true, 2 * one + one / 2, 10, 9).len(), 2);
        assert_eq!(c.take(&p(), |_| true, 100 * one, 1, 9).len(), 1);
        let odd = c.take(&p(), |m| m.topic == "odd", 100 * one, 10, 9);
        assert_eq!(odd.iter().map(|m| m.seq).collect::<Vec<_>>(), [5, 1, 3]);
        assert!(c.take(&p(), |_| true, 0, 10, 9).is_empty());
    }

    #[test]
    fn a_full_queue_drops_the_most_sent_and_the_cache_is_bounded() {
        let mut c = Channel::default();
        c.enqueue(msg("t", 1), None, 2);
        c.enqueue(msg("t", 2), None, 2);
        let one = len_msg(msg("t", 1).encoded_len());
        c.take(&p(), |m| m.seq == 2, one, 1, 9);
        assert!(c.enqueue(msg("t", 3), None, 2));
        assert_eq!(c.len(), 2);
        let left: Vec<u64> = c
            .take(&p(), |_| true, 9 * one, 9, 9)
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(left, [1, 3]);
        for i in 0..20u8 {
            c.remember([i; 16], 16);
        }
        assert!(!c.seen(&[0; 16]) && !c.seen(&[3; 16]) && c.seen(&[4; 16]));
        c.age(1);
        assert!(c.is_empty());
    }
}
