//! A single-threaded simulator: many engines, virtual time, a seeded network.
//!
//! Frames between engines travel through one event queue ordered by
//! delivery time; each node's gossip timer is an entry in the same queue.
//! Loss, latency, partitions, crashes and restarts are decided by one seeded
//! generator, so a run is reproducible bit for bit from its seed. A node's
//! address is its id.
//!
//! ```
//! use std::time::Duration;
//! use gossip_core::{sim::Sim, Config};
//!
//! let mut sim = Sim::new(7, Config::local());
//! sim.add_node("a", &[]);
//! for id in ["b", "c"] {
//!     sim.add_node(id, &["a"]);
//! }
//! let took = sim.run_until(Duration::from_secs(10), |s| s.all_see_all_live());
//! assert!(took.is_some());
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Config, Engine, Event, PeerId, PeerStatus, Storage};

pub mod chaos;
mod parallel;

/// Makes each simulated node's storage from its id.
type StorageFactory = Box<dyn FnMut(&str) -> Arc<dyn Storage>>;

/// Generations handed out start here (a start time in ms, as a driver would).
const GENERATION_BASE: u64 = 1_700_000_000_000;

enum Item {
    Tick {
        node: usize,
        incarnation: u64,
    },
    Deliver {
        to: usize,
        from: String,
        frame: Bytes,
    },
}

struct Scheduled {
    at: Instant,
    seq: u64,
    item: Item,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// One simulated node.
pub struct SimNode {
    /// Its engine (replaced on restart).
    pub engine: Engine,
    /// Whether it is running.
    pub up: bool,
    seeds: Vec<String>,
    incarnation: u64,
    /// When its live tick is due: a tick at any other time is stale (a
    /// frame moved the engine's timer earlier, and a new tick was queued).
    tick_at: Option<Instant>,
}

/// Traffic the simulated network carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Frames sent by engines.
    pub frames_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Frames delivered to a running engine.
    pub frames_delivered: u64,
    /// Frames lost (loss, partition, or a node that is down).
    pub frames_dropped: u64,
    /// The largest frame sent.
    pub max_frame: u64,
}

/// A cluster of engines in virtual time.
pub struct Sim {
    config: Config,
    start: Instant,
    now: Instant,
    seq: u64,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: Vec<SimNode>,
    index: BTreeMap<String, usize>,
    loss: f64,
    latency: Duration,
    jitter: Duration,
    cuts: Vec<(BTreeSet<usize>, BTreeSet<usize>)>,
    storage: Option<StorageFactory>,
    /// Every event every node emitted: (time since start, node, event).
    pub events: Vec<(Duration, PeerId, Event)>,
    /// Whether to keep events in `events` (large clusters may not want to).
    pub record_events: bool,
    /// Network counters.
    pub stats: SimStats,
    /// When each incarnation produced each of its heartbeats, if
    /// `record_beats` is set: `beats[&(id, generation)][h - 1]` is the time
    /// since start of heartbeat `h`. The chaos runner uses it to tell how
    /// old the news is when a node reports a peer live.
    beats: BTreeMap<(PeerId, u64), Vec<Duration>>,
    record_beats: bool,
    /// Threads `run_for` spreads the nodes over (see `sim/parallel.rs`).
    threads: usize,
}

impl Sim {
    /// An empty cluster whose nodes use `config` (its `rng_seed` is replaced
    /// by one derived from `seed` for each node).
    pub fn new(seed: u64, config: Config) -> Sim {
        let start = Instant::now();
        Sim {
            config,
            start,
            now: start,
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            nodes: Vec::new(),
            index: BTreeMap::new(),
            loss: 0.0,
            latency: Duration::from_millis(1),
            jitter: Duration::ZERO,
            cuts: Vec::new(),
            storage: None,
            events: Vec::new(),
            record_events: true,
            stats: SimStats::default(),
            beats: BTreeMap::new(),
            record_beats: false,
            threads: 1,
        }
    }

    /// Runs the nodes on `threads` threads (1, the default: one thread).
    ///
    /// Frames take at least the latency to arrive, so whatever nodes do
    /// within one latency of the earliest pending event cannot affect each
    /// other: each such window is run with the nodes split over the
    /// threads, and what they sent is then queued in node order. The run is
    /// as deterministic as on one thread, but not the same run: frames that
    /// arrive at the same instant may be taken in another order, and loss
    /// and jitter are drawn in another order. Heartbeat recording
    /// (`record_beats`) and a zero latency keep the run on one thread.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Gives every node added from now on a storage made by `make(id)`.
    pub fn with_storage(mut self, make: impl FnMut(&str) -> Arc<dyn Storage> + 'static) -> Sim {
        self.storage = Some(Box::new(make));
        self
    }

    /// Virtual time since the simulation started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The simulated clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Probability that a frame is lost.
    pub fn set_loss(&mut self, p: f64) {
        self.loss = p.clamp(0.0, 1.0);
    }

    /// One-way delay of every frame, plus a uniform random `jitter`.
    pub fn set_latency(&mut self, latency: Duration, jitter: Duration) {
        self.latency = latency;
        self.jitter = jitter;
    }

    /// Drops frames between the two groups, both ways.
    pub fn partition(&mut self, a: &[&str], b: &[&str]) {
        let set = |ids: &[&str]| {
            ids.iter()
                .map(|id| self.index[*id])
                .collect::<BTreeSet<_>>()
        };
        let cut = (set(a), set(b));
        self.cuts.push(cut);
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.cuts.clear();
    }

    /// Adds and starts a node with the given seed ids; its first round is
    /// at a random point within one gossip interval.
    pub fn add_node(&mut self, id: &str, seeds: &[&str]) {
        let idx = self.nodes.len();
        self.index.insert(id.to_string(), idx);
        let seeds: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
        let engine = self.make_engine(id, idx, 0, &seeds);
        self.nodes.push(SimNode {
            engine,
            up: true,
            seeds,
            incarnation: 0,
            tick_at: None,
        });
        self.schedule_first_tick(idx);
    }

    fn make_engine(&mut self, id: &str, idx: usize, incarnation: u64, seeds: &[String]) -> Engine {
        let mut config = self.config.clone();
        config.rng_seed = Some(self.rng.random());
        let generation = GENERATION_BASE + self.elapsed().as_millis() as u64 + incarnation;
        let mut e = Engine::new(
            config,
            PeerId::from(id),
            id.to_string(),
            generation,
            self.now,
        )
        .expect("simulation config is valid")
        .with_seeds(seeds.iter().cloned());
        if let Some(make) = self.storage.as_mut() {
            e = e.with_storage(make(id));
        }
        let _ = idx;
        if self.record_beats {
            // An engine starts at heartbeat 1.
            let at = self.elapsed();
            self.beats.insert((e.id().clone(), generation), vec![at]);
        }
        e
    }

    /// When node `id` in `generation` produced heartbeat `heartbeat` (time
    /// since start), if beats are recorded and it did.
    pub fn beat_time(&self, id: &PeerId, generation: u64, heartbeat: u64) -> Option<Duration> {
        let i = usize::try_from(heartbeat.checked_sub(1)?).ok()?;
        self.beats.get(&(id.clone(), generation))?.get(i).copied()
    }

    /// When node `id` in `generation` produced its latest heartbeat so far
    /// (time since start), if beats are recorded.
    pub fn last_beat_time(&self, id: &PeerId, generation: u64) -> Option<Duration> {
        self.beats.get(&(id.clone(), generation))?.last().copied()
    }

    /// Ids of every node ever added, running or not.
    pub fn ids(&self) -> Vec<String> {
        self.index.keys().cloned().collect()
    }

    fn schedule_first_tick(&mut self, idx: usize) {
        let interval = self.config.gossip_interval.as_nanos() as u64;
        let offset = Duration::from_nanos(self.rng.random_range(0..interval.max(1)));
        self.schedule_tick(idx, self.now + offset);
    }

    /// Queues node `idx`'s tick at `at`, the one live tick it has.
    fn schedule_tick(&mut self, idx: usize, at: Instant) {
        let incarnation = self.nodes[idx].incarnation;
        self.nodes[idx].tick_at = Some(at);
        self.push(
            at,
            Item::Tick {
                node: idx,
                incarnation,
            },
        );
    }

    /// Stops a node without a word to anyone (its in-flight frames are lost).
    pub fn crash(&mut self, id: &str) {
        let idx = self.index[id];
        self.nodes[idx].up = false;
        self.nodes[idx].incarnation += 1;
    }

    /// Starts a crashed node again with a new generation and empty state.
    pub fn restart(&mut self, id: &str) {
        let idx = self.index[id];
        let inc = self.nodes[idx].incarnation + 1;
        let seeds = self.nodes[idx].seeds.clone();
        let engine = self.make_engine(id, idx, inc, &seeds);
        let n = &mut self.nodes[idx];
        n.engine = engine;
        n.up = true;
        n.incarnation = inc;
        self.schedule_first_tick(idx);
    }

    /// Makes a node leave gracefully; it stops after its leave rounds.
    pub fn leave(&mut self, id: &str) {
        let idx = self.index[id];
        let now = self.now;
        self.nodes[idx].engine.leave(now);
        self.schedule_tick(idx, now);
    }

    /// Sets a key on a node.
    pub fn set(&mut self, id: &str, key: &str, value: &str) {
        let idx = self.index[id];
        let now = self.now;
        self.nodes[idx]
            .engine
            .set(key, Bytes::copy_from_slice(value.as_bytes()), now)
            .expect("valid key");
        self.drain(idx);
    }

    /// Deletes a key on a node.
    pub fn delete(&mut self, id: &str, key: &str) {
        let idx = self.index[id];
        let now = self.now;
        self.nodes[idx]
            .engine
            .delete(key, now)
            .expect("node has not left");
        self.drain(idx);
    }

    /// Subscribes a node to `topic` (see [`Engine::subscribe`]).
    pub fn subscribe(&mut self, id: &str, topic: &str) {
        let idx = self.index[id];
        let now = self.now;
        self.nodes[idx]
            .engine
            .subscribe(topic, now)
            .expect("valid topic");
        self.drain(idx);
    }

    /// Publishes on `topic` from a node, giving it an identity first if it
    /// has none (derived from the simulation's generator: for tests only);
    /// returns the message's sequence number.
    pub fn publish(&mut self, id: &str, topic: &str, payload: &[u8]) -> u64 {
        let idx = self.index[id];
        let now = self.now;
        if self.nodes[idx].engine.public_key().is_none() {
            let seed: [u8; 32] = self.rng.random();
            let identity = crate::Identity::from_bytes(&seed).expect("32 bytes");
            self.nodes[idx].engine.set_identity(identity);
        }
        let seq = self.nodes[idx]
            .engine
            .publish(topic, Bytes::copy_from_slice(payload), now)
            .expect("publishable");
        self.drain(idx);
        seq
    }

    /// A node by id.
    pub fn node(&self, id: &str) -> &SimNode {
        &self.nodes[self.index[id]]
    }

    /// A node's engine by id.
    pub fn engine(&self, id: &str) -> &Engine {
        &self.node(id).engine
    }

    /// A node's engine by id, mutably (to feed it frames directly).
    pub fn engine_mut(&mut self, id: &str) -> &mut Engine {
        let idx = self.index[id];
        &mut self.nodes[idx].engine
    }

    /// The running nodes' engines, in the order they were added.
    pub fn running(&self) -> impl Iterator<Item = &Engine> + '_ {
        self.nodes.iter().filter(|n| n.up).map(|n| &n.engine)
    }

    /// Ids of the running nodes.
    pub fn up_ids(&self) -> Vec<String> {
        self.index
            .iter()
            .filter(|(_, &i)| self.nodes[i].up)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Whether every running node sees every other running node live.
    pub fn all_see_all_live(&self) -> bool {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up)
            .collect();
        // A node holding fewer peers than there are running nodes cannot
        // see them all: cheap to rule out before looking up N² pairs.
        if up
            .iter()
            .any(|&i| self.nodes[i].engine.peers.len() < up.len())
        {
            return false;
        }
        up.iter().all(|&i| {
            let e = &self.nodes[i].engine;
            up.iter().all(|&j| {
                let other = &self.nodes[j].engine;
                i == j
                    || e.peers.get(other.id()).is_some_and(|p| {
                        p.status == PeerStatus::Live && p.generation == other.generation()
                    })
            })
        })
    }

    /// Whether every running node holds `value` for `owner`'s `key`
    /// (`None`: holds no value).
    pub fn all_have(&self, owner: &str, key: &str, value: Option<&str>) -> bool {
        let owner = PeerId::from(owner);
        self.nodes
            .iter()
            .filter(|n| n.up)
            .all(|n| n.engine.get(&owner, key).map(|v| &v[..]) == value.map(str::as_bytes))
    }

    /// Whether every running node other than `id` reports it with `status`.
    pub fn all_report(&self, id: &str, status: PeerStatus) -> bool {
        let pid = PeerId::from(id);
        self.nodes
            .iter()
            .filter(|n| n.up && *n.engine.id() != pid)
            .all(|n| n.engine.peer(&pid).is_some_and(|p| p.status == status))
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        if self.threads > 1 && !self.record_beats && !self.latency.is_zero() {
            self.run_windows(until);
            self.now = until;
            return;
        }
        while let Some(Reverse(top)) = self.queue.peek() {
            if top.at > until {
                break;
            }
            let Reverse(s) = self.queue.pop().expect("peeked");
            self.now = s.at;
            self.step(s.item);
        }
        self.now = until;
    }

    /// Runs until `done` holds or `limit` of virtual time passes; returns the
    /// time it took. `done` is checked every tenth of a gossip interval, or
    /// every interval above 100 nodes (where a check of all pairs is costly).
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let began = self.now;
        let step = if self.nodes.len() > 100 {
            self.config.gossip_interval
        } else {
            self.config.gossip_interval / 10
        };
        loop {
            if done(self) {
                return Some(self.now - began);
            }
            if self.now - began >= limit {
                return None;
            }
            self.run_for(step);
        }
    }

    fn push(&mut self, at: Instant, item: Item) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            item,
        }));
    }

    fn step(&mut self, item: Item) {
        let node = match &item {
            Item::Tick { node, .. } => *node,
            Item::Deliver { to, .. } => *to,
        };
        // Events no one keeps are not built (`Engine::set_events`).
        self.nodes[node].engine.set_events(self.record_events);
        match item {
            Item::Tick { node, incarnation } => {
                let n = &mut self.nodes[node];
                if !n.up || n.incarnation != incarnation || n.tick_at != Some(self.now) {
                    return;
                }
                n.engine.handle_tick(self.now);
                if self.record_beats {
                    let own = n.engine.id().clone();
                    let generation = n.engine.generation();
                    let hb = n.engine.peer(&own).map_or(0, |p| p.heartbeat);
                    let at = self.now - self.start;
                    if let Some(b) = self.beats.get_mut(&(own, generation)) {
                        while (b.len() as u64) < hb {
                            b.push(at);
                        }
                    }
                }
                let n = &mut self.nodes[node];
                let next = n.engine.poll_timeout();
                if n.engine.has_left() {
                    n.up = false;
                } else {
                    self.schedule_tick(node, next);
                }
                self.drain(node);
            }
            Item::Deliver { to, from, frame } => {
                if !self.nodes[to].up {
                    self.stats.frames_dropped += 1;
                    return;
                }
                self.stats.frames_delivered += 1;
                let now = self.now;
                let _ = self.nodes[to].engine.handle_frame(now, &from, &frame);
                // A frame may have set a timer (a ping for other watchers)
                // due before the queued tick.
                let next = self.nodes[to].engine.poll_timeout();
                if next > now && self.nodes[to].tick_at.is_some_and(|at| next < at) {
                    self.schedule_tick(to, next);
                }
                self.drain(to);
            }
        }
    }

    /// Puts a frame node `idx` (address `from`) sent at `at` to address
    /// `to` on the network: counted, then dropped (an unknown address, loss,
    /// a partition) or queued for delivery after the latency and a draw of
    /// jitter.
    fn transmit(&mut self, idx: usize, from: &str, at: Instant, to: &str, frame: Bytes) {
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += frame.len() as u64;
        self.stats.max_frame = self.stats.max_frame.max(frame.len() as u64);
        let Some(&to) = self.index.get(to) else {
            self.stats.frames_dropped += 1;
            return;
        };
        let lost = self.loss > 0.0 && self.rng.random_bool(self.loss);
        let cut = self.cuts.iter().any(|(a, b)| {
            (a.contains(&idx) && b.contains(&to)) || (b.contains(&idx) && a.contains(&to))
        });
        if lost || cut {
            self.stats.frames_dropped += 1;
            return;
        }
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.rng.random_range(0..self.jitter.as_nanos() as u64))
        };
        self.push(
            at + self.latency + jitter,
            Item::Deliver {
                to,
                from: from.to_string(),
                frame,
            },
        );
    }

    /// Moves a node's outgoing frames onto the network and its events into the log.
    fn drain(&mut self, idx: usize) {
        let from = self.nodes[idx].engine.id().to_string();
        while let Some(t) = self.nodes[idx].engine.poll_transmit() {
            let now = self.now;
            self.transmit(idx, &from, now, &t.to, t.frame);
        }
        let elapsed = self.elapsed();
        let node = self.nodes[idx].engine.id().clone();
        while let Some(e) = self.nodes[idx].engine.poll_event() {
            if self.record_events {
                self.events.push((elapsed, node.clone(), e));
            }
        }
    }

    /// Events emitted by `observer` about `peer`.
    pub fn events_about(&self, observer: &str, peer: &str) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|(_, o, e)| {
                o.as_str() == observer && e.peer().is_some_and(|p| p.as_str() == peer)
            })
            .map(|(_, _, e)| e)
            .collect()
    }
}
