//! Running the simulator's nodes on several threads.
//!
//! Every frame takes at least the latency to arrive, so the events due
//! within one latency of the earliest pending one are independent across
//! nodes: whatever a node sends in that window arrives after it. A window's
//! events are taken off the queue, grouped by node, and each group is run
//! in time order on one of the threads (a node may queue itself a tick
//! within the window; that runs there too). What the nodes sent, the ticks
//! they set beyond the window, and their events are then put on the queue
//! and the log in node order, with loss, partitions and jitter drawn then:
//! the same seed gives the same run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Instant;

use bytes::Bytes;

use super::{Item, Scheduled, Sim, SimNode};
use crate::Event;

/// One node's part of a window: its index, the node, its events.
type Work<'a> = (usize, &'a mut SimNode, Vec<Scheduled>);

/// What one node did in a window.
struct Out {
    node: usize,
    /// Frames sent: (when, to, frame).
    sent: Vec<(Instant, String, Bytes)>,
    /// The tick it set last beyond the window, if any.
    tick: Option<Instant>,
    events: Vec<(Instant, Event)>,
    delivered: u64,
    dropped: u64,
}

impl Sim {
    /// Runs the events of one window (those due before the earliest
    /// pending one plus the latency, and at most at `until`) over the
    /// threads; false if no event is due by `until`.
    pub(super) fn run_window(&mut self, until: Instant) -> bool {
        let Some(Reverse(top)) = self.queue.peek() else {
            return false;
        };
        if top.at > until {
            return false;
        }
        let end = top.at + self.latency;
        let mut groups: BTreeMap<usize, Vec<Scheduled>> = BTreeMap::new();
        while let Some(Reverse(top)) = self.queue.peek() {
            if top.at >= end || top.at > until {
                break;
            }
            let Reverse(s) = self.queue.pop().expect("peeked");
            let node = match &s.item {
                Item::Tick { node, .. } => *node,
                Item::Deliver { to, .. } => *to,
            };
            groups.entry(node).or_default().push(s);
        }
        let keep_events = self.record_events;
        let threads = self.threads.min(groups.len()).max(1);
        let mut outs: Vec<Out> = Vec::with_capacity(groups.len());
        if threads == 1 {
            for (node, items) in groups {
                let n = &mut self.nodes[node];
                outs.push(run_node(n, node, items, end, until, keep_events));
            }
        } else {
            // The busy nodes with their events, handed out a few at a time
            // to whichever thread is free (one node may hold most of a
            // window's work: a seed that every new node contacts), and
            // their output put back in node order.
            let mut work: Vec<Work<'_>> = Vec::with_capacity(groups.len());
            let mut nodes = self.nodes.iter_mut().enumerate();
            for (node, items) in groups {
                let n = nodes
                    .by_ref()
                    .find_map(|(i, n)| (i == node).then_some(n))
                    .expect("an event's node exists");
                work.push((node, n, items));
            }
            let chunk = work.len().div_ceil(threads * 8).max(1);
            let queue = std::sync::Mutex::new(work.into_iter());
            let run = || {
                let mut done = Vec::new();
                loop {
                    let taken: Vec<Work<'_>> = {
                        let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                        q.by_ref().take(chunk).collect()
                    };
                    if taken.is_empty() {
                        return done;
                    }
                    for (node, n, items) in taken {
                        done.push(run_node(n, node, items, end, until, keep_events));
                    }
                }
            };
            // This thread takes work too; the others get a thread each.
            std::thread::scope(|s| {
                let handles: Vec<_> = (1..threads).map(|_| s.spawn(run)).collect();
                outs.extend(run());
                for h in handles {
                    match h.join() {
                        Ok(o) => outs.extend(o),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
            });
            outs.sort_unstable_by_key(|o| o.node);
        }
        for out in outs {
            self.merge(out);
        }
        true
    }

    /// Puts what one node did in a window on the queue and the log.
    fn merge(&mut self, out: Out) {
        self.stats.frames_delivered += out.delivered;
        self.stats.frames_dropped += out.dropped;
        if let Some(at) = out.tick {
            let incarnation = self.nodes[out.node].incarnation;
            self.push(
                at,
                Item::Tick {
                    node: out.node,
                    incarnation,
                },
            );
        }
        let from = self.nodes[out.node].engine.id().to_string();
        for (at, to, frame) in out.sent {
            self.transmit(out.node, &from, at, &to, frame);
        }
        if self.record_events {
            let node = self.nodes[out.node].engine.id().clone();
            for (at, e) in out.events {
                self.events.push((at - self.start, node.clone(), e));
            }
        }
    }
}

/// Runs one node's events of a window in time order: ticks it sets within
/// the window run too; the last one beyond it is returned.
fn run_node(
    n: &mut SimNode,
    node: usize,
    items: Vec<Scheduled>,
    end: Instant,
    until: Instant,
    keep_events: bool,
) -> Out {
    let mut out = Out {
        node,
        sent: Vec::new(),
        tick: None,
        events: Vec::new(),
        delivered: 0,
        dropped: 0,
    };
    let mut queue: BinaryHeap<Reverse<Scheduled>> = items.into_iter().map(Reverse).collect();
    // Ticks set here sort after the queued events of the same instant, as
    // they would on one thread.
    let mut seq = u64::MAX / 2;
    let mut schedule = |n: &mut SimNode, queue: &mut BinaryHeap<Reverse<Scheduled>>, at| {
        n.tick_at = Some(at);
        if at < end && at <= until {
            seq += 1;
            queue.push(Reverse(Scheduled {
                at,
                seq,
                item: Item::Tick {
                    node,
                    incarnation: n.incarnation,
                },
            }));
            out.tick = None;
        } else {
            out.tick = Some(at);
        }
    };
    // Events no one keeps are not built (`Engine::set_events`).
    n.engine.set_events(keep_events);
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let (mut delivered, mut dropped) = (0, 0);
    while let Some(Reverse(s)) = queue.pop() {
        let now = s.at;
        match s.item {
            Item::Tick { incarnation, .. } => {
                if !n.up || n.incarnation != incarnation || n.tick_at != Some(now) {
                    continue;
                }
                n.engine.handle_tick(now);
                let next = n.engine.poll_timeout();
                if n.engine.has_left() {
                    n.up = false;
                } else {
                    schedule(n, &mut queue, next);
                }
            }
            Item::Deliver { from, frame, .. } => {
                if !n.up {
                    dropped += 1;
                    continue;
                }
                delivered += 1;
                let _ = n.engine.handle_frame(now, &from, &frame);
                let next = n.engine.poll_timeout();
                if next > now && n.tick_at.is_some_and(|at| next < at) {
                    schedule(n, &mut queue, next);
                }
            }
        }
        while let Some(t) = n.engine.poll_transmit() {
            sent.push((now, t.to, t.frame));
        }
        while let Some(e) = n.engine.poll_event() {
            if keep_events {
                events.push((now, e));
            }
        }
    }
    out.sent = sent;
    out.events = events;
    out.delivered = delivered;
    out.dropped = dropped;
    out
}
