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
//!
//! The threads last a whole [`Sim::run_for`], and a node runs on the same
//! one in every window of it (its index modulo the threads), so within a
//! call a node's memory is allocated and freed by one thread. With a
//! thread spawned for every window and nodes handed to whichever thread
//! was free, two threads zeroed two to three times the pages one did
//! (bench/NOTES.md, "The simulator's threads"). A panic in any thread
//! puts the nodes back in the simulator before it goes on up.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;

use super::{Item, Scheduled, Sim, SimNode};
use crate::{Event, PeerId};

/// One node's part of a window: its index, the node, its events.
type Work<'a> = (usize, &'a mut SimNode, Vec<Scheduled>);

/// What a worker is handed for a window: its nodes' parts, the window's
/// end, `until`, whether to keep events.
type Go<'a> = (Vec<Work<'a>>, Instant, Instant, bool);

/// What a thread did with its nodes in a window, or the panic it caught.
type Done<'a> = std::thread::Result<Vec<(Out, &'a mut SimNode)>>;

/// What one node did in a window.
struct Out {
    node: usize,
    /// The node's id, as the frames it sent name their sender.
    from: PeerId,
    /// Its incarnation, for the tick it set beyond the window.
    incarnation: u64,
    /// Frames sent: (when, to, frame).
    sent: Vec<(Instant, String, Bytes)>,
    /// The tick it set last beyond the window, if any.
    tick: Option<Instant>,
    events: Vec<(Instant, Event)>,
    delivered: u64,
    dropped: u64,
}

impl Sim {
    /// Runs every window due by `until` over the threads: one worker per
    /// thread beyond this one, which runs its share too, for the whole
    /// call. The nodes are out of `self.nodes` meanwhile: each is lent to
    /// its thread for a window and given back. A panic in a node's step is
    /// caught where it happens, the nodes are put back, and it goes on up
    /// from here.
    pub(super) fn run_windows(&mut self, until: Instant) {
        let threads = self.threads;
        let mut nodes = std::mem::take(&mut self.nodes);
        let (done_tx, done_rx) = mpsc::channel::<Done<'_>>();
        let panicked = std::thread::scope(|s| {
            let mut slots: Vec<Option<&mut SimNode>> = nodes.iter_mut().map(Some).collect();
            let mut go = Vec::new();
            for _ in 1..threads {
                let (tx, rx) = mpsc::channel::<Go<'_>>();
                let done = done_tx.clone();
                s.spawn(move || {
                    for (work, end, until, keep) in rx {
                        if done.send(run_caught(work, end, until, keep)).is_err() {
                            return;
                        }
                    }
                });
                go.push(tx);
            }
            drop(done_tx);
            while let Some((end, groups)) = self.take_window(until) {
                let keep = self.record_events;
                let mut work: Vec<Vec<Work<'_>>> = (0..threads).map(|_| Vec::new()).collect();
                for (node, items) in groups {
                    let n = slots[node]
                        .take()
                        .expect("every node is back after a window");
                    work[node % threads].push((node, n, items));
                }
                let mut work = work.into_iter();
                let mut mine = work.next().unwrap_or_default();
                let mut asked = 0;
                for (tx, w) in go.iter().zip(work) {
                    if w.is_empty() {
                        continue;
                    }
                    match tx.send((w, end, until, keep)) {
                        Ok(()) => asked += 1,
                        // A worker that is gone: its nodes run here.
                        Err(mpsc::SendError((w, ..))) => mine.extend(w),
                    }
                }
                let mut outs = match run_caught(mine, end, until, keep) {
                    Ok(outs) => outs,
                    Err(panic) => return Some(panic),
                };
                for _ in 0..asked {
                    match done_rx.recv() {
                        Ok(Ok(done)) => outs.extend(done),
                        Ok(Err(panic)) => return Some(panic),
                        Err(_) => return Some(Box::new("a simulator worker ended")),
                    }
                }
                outs.sort_unstable_by_key(|(o, _)| o.node);
                for (out, n) in outs {
                    slots[out.node] = Some(n);
                    self.merge(out);
                }
            }
            None
        });
        // What still names the nodes goes before they go back.
        drop(done_rx);
        self.nodes = nodes;
        if let Some(panic) = panicked {
            std::panic::resume_unwind(panic);
        }
    }

    /// Takes the events of the next window off the queue, grouped by node:
    /// those due before the earliest pending one plus the latency, and at
    /// most at `until`, with the window's end; `None` if no event is due
    /// by `until`.
    fn take_window(
        &mut self,
        until: Instant,
    ) -> Option<(Instant, BTreeMap<usize, Vec<Scheduled>>)> {
        let Reverse(top) = self.queue.peek()?;
        if top.at > until {
            return None;
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
        Some((end, groups))
    }

    /// Puts what one node did in a window on the queue and the log.
    fn merge(&mut self, out: Out) {
        self.stats.frames_delivered += out.delivered;
        self.stats.frames_dropped += out.dropped;
        if let Some(at) = out.tick {
            self.push(
                at,
                Item::Tick {
                    node: out.node,
                    incarnation: out.incarnation,
                },
            );
        }
        for (at, to, frame) in out.sent {
            self.transmit(out.node, out.from.as_str(), at, &to, frame);
        }
        if self.record_events {
            for (at, e) in out.events {
                self.events.push((at - self.start, out.from.clone(), e));
            }
        }
    }
}

/// [`run_all`], with a panic caught and returned instead of ending the
/// thread (the caller puts the nodes back first).
fn run_caught<'a>(work: Vec<Work<'a>>, end: Instant, until: Instant, keep: bool) -> Done<'a> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_all(work, end, until, keep)
    }))
}

/// Runs each node's part of a window; gives each back with what it did.
fn run_all(
    work: Vec<Work<'_>>,
    end: Instant,
    until: Instant,
    keep: bool,
) -> Vec<(Out, &mut SimNode)> {
    work.into_iter()
        .map(|(node, n, items)| (run_node(n, node, items, end, until, keep), n))
        .collect()
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
        from: n.engine.id().clone(),
        incarnation: n.incarnation,
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
