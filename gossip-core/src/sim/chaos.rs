//! Chaos scenarios on the simulator, with the cluster's promises checked
//! throughout.
//!
//! [`run`] drives a [`Sim`] of a pool of nodes through random crashes,
//! restarts (new generations), partitions and heals, loss bursts, joins,
//! leaves, key writes and deletes, all drawn from one seed, and checks
//! after every gossip interval:
//!
//! - **No zombies.** A peer a node removed reappears in its table only with
//!   a newer generation or heartbeat than the one it removed.
//! - **Live means live.** When a node reports a peer joined or live again,
//!   the heartbeat it holds was produced by that peer no longer than
//!   `fresh_bound` ago (the simulator records when every heartbeat was
//!   made): news of a long-dead peer is never taken for life. The bound is
//!   three times `dead_peer_grace` by default, not one detection time, because
//!   phi accrual adapts: the gaps that partitions and loss bursts leave in
//!   a detector's history widen it, and a node relaying a peer it has not
//!   yet found dead is only as quick as its own detector. With monitored
//!   liveness (`Config::monitors`) heartbeats are not relayed, so the one a
//!   node holds may be old while its peer is alive: there the promise is
//!   that the peer's incarnation made a heartbeat no longer than
//!   `fresh_bound` ago (it is alive, or died that recently).
//! - **Deletes stay deleted.** A node never reports a key updated to a
//!   version at or below one it reported deleted (same peer incarnation).
//! - **Writes spread.** A write by a running node is held, within
//!   `spread_window`, by every node that stayed up and was not cut off from
//!   the writer by a partition at any time in that window.
//! - **One view.** After the last heal, with loss off, every running node
//!   sees every other running node live with the same generation, versions
//!   and keys, and no stopped node as live.
//!
//! A failing run returns a [`Violation`] that names its seed; the same
//! [`Chaos`] with that seed replays it exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Sim;
use crate::{Config, Event, PeerId, PeerStatus};

/// One chaos run: its size, length, seed and the engines' configuration.
#[derive(Debug, Clone)]
pub struct Chaos {
    /// Seed of the run: the actions, the network and every engine.
    pub seed: u64,
    /// Ids in the pool; four fifths start, the rest join later.
    pub nodes: usize,
    /// Virtual time of chaos before the final heal.
    pub duration: Duration,
    /// Mean virtual time between two actions.
    pub mean_gap: Duration,
    /// How long a write may take to reach a connected node: 2 min by
    /// default, a minute of gossip and room for the sides of a healed
    /// partition (or a restarted node's small island) to find each other
    /// through `seed_rejoin_interval`.
    pub spread_window: Duration,
    /// How long the cluster may take to agree after the final heal.
    pub settle_limit: Duration,
    /// The oldest heartbeat a node may take for a sign of life.
    pub fresh_bound: Duration,
    /// Print every action to stderr as it is taken (for replaying a seed).
    pub trace: bool,
    /// The engines' configuration.
    pub config: Config,
}

impl Chaos {
    /// A run of `nodes` ids for `duration`, on 1 s rounds with a 30 s
    /// `dead_peer_grace` (so removals and their memory expire many times an
    /// hour) and a 2 min `tombstone_grace` (so partitions outlast it and
    /// reset deltas are exercised).
    pub fn new(seed: u64, nodes: usize, duration: Duration) -> Chaos {
        let mut config = Config::default().cluster_id("chaos");
        config.dead_peer_grace = Duration::from_secs(30);
        config.tombstone_grace = Duration::from_secs(120);
        Chaos {
            seed,
            nodes,
            duration,
            mean_gap: Duration::from_secs(5),
            spread_window: Duration::from_secs(120),
            settle_limit: Duration::from_secs(600),
            fresh_bound: 3 * config.dead_peer_grace,
            trace: false,
            config,
        }
    }
}

/// A promise the cluster broke, with what is needed to replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The run's seed.
    pub seed: u64,
    /// Virtual time of the check that failed.
    pub at: Duration,
    /// What was wrong.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chaos seed {} failed at {:.1} s: {} (replay: CHAOS_SEED={} cargo test -p gossip-core --test chaos)",
            self.seed,
            self.at.as_secs_f64(),
            self.what,
            self.seed
        )
    }
}

impl std::error::Error for Violation {}

/// What a run did and checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The run's seed.
    pub seed: u64,
    /// Actions taken, by kind.
    pub actions: BTreeMap<&'static str, u64>,
    /// Writes whose spread was checked, and (node, write) pairs verified.
    pub writes_checked: u64,
    /// Pairs of (node, write) found holding the write in time.
    pub deliveries_checked: u64,
    /// "Joined" or "live again" reports checked for fresh news.
    pub live_reports_checked: u64,
    /// The oldest heartbeat a node took for life, in ms.
    pub oldest_live_news_ms: u64,
    /// Removals seen (a peer leaving a node's table).
    pub removals_seen: u64,
    /// Peers that came back after a removal, all with newer state.
    pub returns_seen: u64,
    /// Virtual time from the final heal to one view.
    pub settle: Duration,
    /// Frames the network carried.
    pub frames: u64,
    /// Digests sent with a filter (`Config::filter_bits`) by the nodes
    /// running at the end, since they last started.
    pub filter_digests: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actions: Vec<String> = self
            .actions
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        write!(
            f,
            "seed {}: {}; {} writes checked, held in time by {} nodes in all; {} live reports (oldest news {} ms); \
             {} removals, {} returns; one view {:.1} s after the heal; {} frames, {} filter digests",
            self.seed,
            actions.join(", "),
            self.writes_checked,
            self.deliveries_checked,
            self.live_reports_checked,
            self.oldest_live_news_ms,
            self.removals_seen,
            self.returns_seen,
            self.settle.as_secs_f64(),
            self.frames,
            self.filter_digests
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotJoined,
    Up,
    Down,
    Left,
}

/// A write waiting for its spread check.
struct Write {
    owner: String,
    generation: u64,
    version: u64,
    made: Duration,
    due: Duration,
    epochs: BTreeMap<String, u64>,
}

/// A partition: its two sides, from when to when (`None`: not healed yet).
struct Cut {
    a: BTreeSet<String>,
    b: BTreeSet<String>,
    from: Duration,
    to: Option<Duration>,
}

struct Runner {
    c: Chaos,
    sim: Sim,
    rng: ChaCha8Rng,
    pool: Vec<String>,
    state: BTreeMap<String, State>,
    /// Bumped whenever a node stops, starts or leaves.
    epoch: BTreeMap<String, u64>,
    /// Every partition so far, the current one (if any) last.
    cuts: Vec<Cut>,
    loss_until: Option<Duration>,
    writes: Vec<Write>,
    /// Per (observer, its generation): what it held of each peer at the last
    /// check, and what it held of peers when it removed them.
    seen: BTreeMap<(String, u64), BTreeMap<PeerId, (u64, u64)>>,
    gone: BTreeMap<(String, u64), BTreeMap<PeerId, (u64, u64)>>,
    /// Per (observer, its generation): the highest version reported deleted
    /// of each (peer, key).
    deleted: BTreeMap<(String, u64), BTreeMap<(PeerId, String), u64>>,
    report: Report,
}

/// Runs one chaos scenario; `Err` names the first broken promise.
pub fn run(c: &Chaos) -> Result<Report, Violation> {
    let mut sim = Sim::new(c.seed, c.config.clone());
    sim.record_beats = true;
    let pool: Vec<String> = (0..c.nodes).map(|i| format!("n{i:02}")).collect();
    let mut r = Runner {
        c: c.clone(),
        sim,
        rng: ChaCha8Rng::seed_from_u64(c.seed ^ 0x00c0_ffee_cafe_f00d),
        state: pool
            .iter()
            .map(|id| (id.clone(), State::NotJoined))
            .collect(),
        epoch: pool.iter().map(|id| (id.clone(), 0)).collect(),
        pool,
        cuts: Vec::new(),
        loss_until: None,
        writes: Vec::new(),
        seen: BTreeMap::new(),
        gone: BTreeMap::new(),
        deleted: BTreeMap::new(),
        report: Report {
            seed: c.seed,
            ..Report::default()
        },
    };
    r.go()?;
    r.report.frames = r.sim.stats.frames_sent;
    r.report.filter_digests = r.sim.running().map(|e| e.stats().filter_digests).sum();
    Ok(r.report)
}

impl Runner {
    fn go(&mut self) -> Result<(), Violation> {
        for id in self.pool.clone().iter().take((self.c.nodes * 4 / 5).max(2)) {
            self.join(id);
        }
        let step = self.c.config.gossip_interval;
        let mut next_action = self.gap();
        while self.sim.elapsed() < self.c.duration {
            self.sim.run_for(step);
            self.check()?;
            let now = self.sim.elapsed();
            if self.loss_until.is_some_and(|t| now >= t) {
                self.sim.set_loss(0.0);
                self.loss_until = None;
            }
            if now >= next_action {
                self.act();
                next_action = now + self.gap();
            }
        }
        // The final heal: no partition, no loss, no more actions.
        self.heal();
        self.sim.set_loss(0.0);
        self.loss_until = None;
        let began = self.sim.elapsed();
        while !self.one_view() {
            if self.sim.elapsed() - began > self.c.settle_limit {
                let why = self.why_not_one_view();
                return Err(self.violation(format!(
                    "no single view {:?} after the final heal: {why}",
                    self.c.settle_limit
                )));
            }
            self.sim.run_for(step);
            self.check()?;
        }
        self.report.settle = self.sim.elapsed() - began;
        Ok(())
    }

    fn gap(&mut self) -> Duration {
        let mean = self.c.mean_gap.as_secs_f64();
        Duration::from_secs_f64(self.rng.random_range(0.0..2.0 * mean))
    }

    fn violation(&self, what: String) -> Violation {
        Violation {
            seed: self.c.seed,
            at: self.sim.elapsed(),
            what,
        }
    }

    fn count(&mut self, kind: &'static str, what: &str) {
        *self.report.actions.entry(kind).or_default() += 1;
        if self.c.trace {
            eprintln!(
                "chaos {:>8.1} s: {kind} {what}",
                self.sim.elapsed().as_secs_f64()
            );
        }
    }

    fn with_state(&self, s: State) -> Vec<String> {
        self.state
            .iter()
            .filter(|(_, v)| **v == s)
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn bump(&mut self, id: &str, s: State) {
        self.state.insert(id.to_string(), s);
        *self.epoch.get_mut(id).expect("pool id") += 1;
    }

    fn join(&mut self, id: &str) {
        let seeds: Vec<&str> = self
            .pool
            .iter()
            .filter(|s| s.as_str() != id)
            .map(String::as_str)
            .collect();
        self.sim.add_node(id, &seeds);
        self.bump(id, State::Up);
        // A node that joins during a partition joins one side of it: a node
        // both sides could reach would join them, which no network does.
        let open = self.cuts.last().is_some_and(|c| c.to.is_none());
        if open {
            let to_a = self.rng.random_bool(0.5);
            let c = self.cuts.last_mut().expect("open cut");
            let (mine, theirs) = if to_a {
                (&mut c.a, &c.b)
            } else {
                (&mut c.b, &c.a)
            };
            mine.insert(id.to_string());
            let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
            self.sim.partition(&[id], &theirs);
        }
    }

    /// One random action.
    fn act(&mut self) {
        let up = self.with_state(State::Up);
        let roll = self.rng.random_range(0..100u32);
        match roll {
            0..30 => {
                if let Some(id) = up.choose(&mut self.rng).cloned() {
                    let key = format!("k{}", self.rng.random_range(0..8u32));
                    let value = format!("v{}", self.rng.random::<u32>());
                    self.sim.set(&id, &key, &value);
                    self.count("set", &format!("{id} {key}"));
                    self.track_write(&id);
                }
            }
            30..40 => {
                if let Some(id) = up.choose(&mut self.rng).cloned() {
                    let pid = PeerId::from(id.as_str());
                    let keys = self.sim.engine(&id).keys(&pid);
                    if let Some((key, _)) = keys.choose(&mut self.rng).cloned() {
                        self.sim.delete(&id, &key);
                        self.count("delete", &format!("{id} {key}"));
                        self.track_write(&id);
                    }
                }
            }
            40..50 if up.len() > 3 => {
                let id = up.choose(&mut self.rng).expect("up").clone();
                self.sim.crash(&id);
                self.bump(&id, State::Down);
                self.count("crash", &id);
            }
            50..60 => {
                let mut stopped = self.with_state(State::Down);
                stopped.extend(self.with_state(State::Left));
                if let Some(id) = stopped.choose(&mut self.rng).cloned() {
                    self.sim.restart(&id);
                    self.bump(&id, State::Up);
                    self.count("restart", &id);
                }
            }
            60..65 => {
                if let Some(id) = self.with_state(State::NotJoined).first().cloned() {
                    self.join(&id);
                    self.count("join", &id);
                }
            }
            65..70 if up.len() > 3 => {
                let id = up.choose(&mut self.rng).expect("up").clone();
                self.sim.leave(&id);
                self.bump(&id, State::Left);
                self.count("leave", &id);
            }
            70..80 if !self.partitioned() && up.len() >= 2 => {
                let joined: Vec<String> = self
                    .state
                    .iter()
                    .filter(|(_, s)| **s != State::NotJoined)
                    .map(|(k, _)| k.clone())
                    .collect();
                let n = self.rng.random_range(1..=(up.len() / 2).max(1));
                let side: BTreeSet<String> =
                    up.choose_multiple(&mut self.rng, n).cloned().collect();
                let a: Vec<&str> = side.iter().map(String::as_str).collect();
                let other: BTreeSet<String> =
                    joined.into_iter().filter(|id| !side.contains(id)).collect();
                let b: Vec<&str> = other.iter().map(String::as_str).collect();
                self.sim.partition(&a, &b);
                let what = format!("{a:?} from {b:?}");
                self.cuts.push(Cut {
                    a: side,
                    b: other,
                    from: self.sim.elapsed(),
                    to: None,
                });
                self.count("partition", &what);
            }
            80..90 if self.partitioned() => {
                self.heal();
                self.count("heal", "");
            }
            90..100 if self.loss_until.is_none() => {
                let p = self.rng.random_range(0.1..0.4);
                let secs = self.rng.random_range(5..60u64);
                self.sim.set_loss(p);
                self.loss_until = Some(self.sim.elapsed() + Duration::from_secs(secs));
                self.count("loss burst", &format!("{p:.2} for {secs} s"));
            }
            _ => {}
        }
    }

    fn track_write(&mut self, owner: &str) {
        let e = self.sim.engine(owner);
        let version = e.peer(e.id()).map_or(0, |p| p.max_version);
        self.writes.push(Write {
            owner: owner.to_string(),
            generation: e.generation(),
            version,
            made: self.sim.elapsed(),
            due: self.sim.elapsed() + self.c.spread_window,
            epochs: self.epoch.clone(),
        });
    }

    fn partitioned(&self) -> bool {
        self.cuts.last().is_some_and(|c| c.to.is_none())
    }

    fn heal(&mut self) {
        self.sim.heal();
        let now = self.sim.elapsed();
        if let Some(c) = self.cuts.last_mut() {
            c.to.get_or_insert(now);
        }
    }

    /// Whether a partition cut `x` off from `y` at any time in `[from, to]`.
    fn cut_off(&self, x: &str, y: &str, from: Duration, to: Duration) -> bool {
        self.cuts.iter().rev().any(|c| {
            c.from <= to
                && c.to.is_none_or(|end| end >= from)
                && ((c.a.contains(x) && c.b.contains(y)) || (c.b.contains(x) && c.a.contains(y)))
        })
    }

    /// Every promise but the final one, at the current time.
    fn check(&mut self) -> Result<(), Violation> {
        self.check_events()?;
        self.check_tables()?;
        self.check_writes()
    }

    fn check_events(&mut self) -> Result<(), Violation> {
        let events = std::mem::take(&mut self.sim.events);
        let fresh = self.c.fresh_bound;
        for (at, observer, e) in events {
            let o = observer.to_string();
            if self.state.get(&o) != Some(&State::Up) && self.state.get(&o) != Some(&State::Left) {
                continue;
            }
            let generation = self.sim.engine(&o).generation();
            match &e {
                Event::PeerJoined { peer, .. } | Event::PeerLive { peer } => {
                    let Some(v) = self.sim.engine(&o).peer(peer) else {
                        continue;
                    };
                    if v.status != PeerStatus::Live {
                        continue;
                    }
                    self.report.live_reports_checked += 1;
                    let Some(made) = self.sim.beat_time(peer, v.generation, v.heartbeat) else {
                        return Err(self.violation(format!(
                            "{o} holds heartbeat {} of {peer} (generation {}), which it never produced",
                            v.heartbeat, v.generation
                        )));
                    };
                    // Monitored: how long the incarnation has been silent.
                    let made = if self.c.config.monitors > 0 {
                        self.sim
                            .last_beat_time(peer, v.generation)
                            .map_or(made, |last| last.min(at).max(made))
                    } else {
                        made
                    };
                    let age = at.saturating_sub(made);
                    self.report.oldest_live_news_ms =
                        self.report.oldest_live_news_ms.max(age.as_millis() as u64);
                    if age > fresh {
                        return Err(self.violation(format!(
                            "{o} reported {e:?} at {:.1} s on heartbeat {} made {:.1} s earlier: \
                             news older than {:?} taken for life",
                            at.as_secs_f64(),
                            v.heartbeat,
                            age.as_secs_f64(),
                            fresh
                        )));
                    }
                }
                Event::PeerRestarted { peer, .. } | Event::PeerRemoved { peer } => {
                    let d = self.deleted.entry((o.clone(), generation)).or_default();
                    d.retain(|(p, _), _| p != peer);
                }
                Event::KeyDeleted { peer, key, version } => {
                    let d = self.deleted.entry((o.clone(), generation)).or_default();
                    let v = d.entry((peer.clone(), key.clone())).or_default();
                    *v = (*v).max(*version);
                }
                Event::KeyUpdated {
                    peer, key, version, ..
                } => {
                    let d = self.deleted.entry((o.clone(), generation)).or_default();
                    if let Some(&dv) = d.get(&(peer.clone(), key.clone())) {
                        if *version <= dv {
                            return Err(self.violation(format!(
                                "{o} reported {peer}'s key {key} updated to version {version} \
                                 after reporting it deleted at version {dv}: a deleted key came back"
                            )));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check_tables(&mut self) -> Result<(), Violation> {
        for o in self.with_state(State::Up) {
            let e = self.sim.engine(&o);
            let key = (o.clone(), e.generation());
            let now: BTreeMap<PeerId, (u64, u64)> = e
                .peers()
                .filter(|v| v.id != *e.id())
                .map(|v| (v.id, (v.generation, v.heartbeat)))
                .collect();
            let seen = self.seen.remove(&key).unwrap_or_default();
            let gone = self.gone.entry(key.clone()).or_default();
            for (p, held) in &seen {
                if !now.contains_key(p) {
                    gone.insert(p.clone(), *held);
                    self.report.removals_seen += 1;
                }
            }
            for (p, held) in &now {
                if let Some(was) = gone.remove(p) {
                    if *held <= was {
                        let what = format!(
                            "{o} removed {p} at (generation, heartbeat) {was:?} and holds it again \
                             at {held:?}: a removed peer came back without newer state"
                        );
                        return Err(self.violation(what));
                    }
                    self.report.returns_seen += 1;
                }
            }
            self.seen.insert(key, now);
        }
        Ok(())
    }

    fn check_writes(&mut self) -> Result<(), Violation> {
        let now = self.sim.elapsed();
        let (due, waiting): (Vec<Write>, Vec<Write>) = std::mem::take(&mut self.writes)
            .into_iter()
            .partition(|w| w.due <= now);
        self.writes = waiting;
        for w in due {
            if self.epoch[&w.owner] != w.epochs[&w.owner] {
                continue;
            }
            self.report.writes_checked += 1;
            let owner = PeerId::from(w.owner.as_str());
            for o in self.with_state(State::Up) {
                if o == w.owner
                    || self.epoch[&o] != w.epochs[&o]
                    || self.cut_off(&o, &w.owner, w.made, now)
                {
                    continue;
                }
                let held = self.sim.engine(&o).peer(&owner);
                let ok = held
                    .as_ref()
                    .is_some_and(|v| v.generation == w.generation && v.max_version >= w.version);
                if !ok {
                    let e = self.sim.engine(&o);
                    let what = format!(
                        "{}'s write (generation {}, version {}) did not reach {o} within {:?} \
                         though both stayed up and connected; {o} holds {:?}, sees live peers {:?} (with their live counts), \
                         remembers it as removed at {:?}",
                        w.owner,
                        w.generation,
                        w.version,
                        self.c.spread_window,
                        held.map(|v| (v.generation, v.max_version, v.status)),
                        e.live_peers()
                            .iter()
                            .map(|p| format!("{p}:{}", self.sim.engine(p.as_str()).live_peers().len()))
                            .collect::<Vec<_>>(),
                        e.removed.get(&owner).map(|r| (r.generation, r.heartbeat)),
                    ) + &format!(
                        "; {} of {} nodes are up",
                        self.with_state(State::Up).len(),
                        self.pool.len()
                    );
                    return Err(self.violation(what));
                }
                self.report.deliveries_checked += 1;
            }
        }
        Ok(())
    }

    fn one_view(&self) -> bool {
        self.why_not_one_view().is_empty()
    }

    /// What keeps the running nodes from one view (empty: nothing).
    fn why_not_one_view(&self) -> String {
        let up = self.with_state(State::Up);
        for o in &up {
            let e = self.sim.engine(o);
            for w in &self.pool {
                if w == o {
                    continue;
                }
                let pid = PeerId::from(w.as_str());
                let view = e.peer(&pid);
                if up.contains(w) {
                    let owner = self.sim.engine(w);
                    let own = owner.peer(owner.id()).expect("own entry");
                    let agrees = view.as_ref().is_some_and(|v| {
                        v.status == PeerStatus::Live
                            && v.generation == own.generation
                            && v.max_version == own.max_version
                    }) && e.keys(&pid) == owner.keys(&pid);
                    if !agrees {
                        let (held, owned) = (e.keys(&pid), owner.keys(&pid));
                        let keys = if held == owned {
                            String::new()
                        } else {
                            format!("; keys held {held:?}, its own {owned:?}")
                        };
                        return format!(
                            "{o} holds {w} as {:?}, which is at (generation {}, version {}){keys}",
                            view.map(|v| (v.status, v.generation, v.max_version)),
                            own.generation,
                            own.max_version
                        );
                    }
                } else if view.as_ref().is_some_and(|v| v.status == PeerStatus::Live) {
                    return format!("{o} holds stopped {w} as live");
                }
            }
        }
        String::new()
    }
}
