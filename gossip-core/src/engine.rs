//! The sans-IO engine: one node's protocol state machine.
//!
//! Call order (the same under tokio and in the simulator):
//!
//! 1. `handle_frame(now, from, bytes)` for every frame that arrives;
//! 2. `handle_tick(now)` whenever `poll_timeout()` is reached;
//! 3. `set` / `delete` / `leave` as the user asks;
//! 4. after each of those, drain `poll_transmit()` and `poll_event()`.
//!
//! The engine never reads a clock and draws randomness only from its own
//! seeded generator, so the same seed and inputs give the same run.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::error::{ConfigError, KeyError};
use crate::intern;
use crate::phi::PhiParams;
use crate::stamp::Stamp;
use crate::state::{Entry, Peer};
use crate::stats::{Counters, Stats};
use crate::table::Table;
use crate::table_hash::fnv1a;
use crate::wire::{len_msg, Body, Frame, Sender, PROTOCOL_VERSION};
use crate::{
    digest, select, Event, PeerId, PeerRecord, PeerStatus, Storage, StorageError, Versioned,
};

/// A frame to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination address.
    pub to: String,
    /// Encoded frame, at most `Config::max_frame_bytes` long.
    pub frame: Bytes,
}

/// A read-only view of one peer as this node sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerView {
    /// The peer.
    pub id: PeerId,
    /// Its incarnation.
    pub generation: u64,
    /// Its advertised address.
    pub addr: String,
    /// Live, dead or left.
    pub status: PeerStatus,
    /// Highest heartbeat seen.
    pub heartbeat: u64,
    /// Highest version held.
    pub max_version: u64,
    /// Phi at the last liveness check (0 for this node itself).
    pub phi: f64,
    /// Number of live keys.
    pub keys: usize,
}

/// A peer that was removed, remembered so that stale gossip about it
/// (from nodes that have not removed it yet) does not bring it back. The
/// memory lasts `dead_peer_grace` after the last gossip that mentioned it:
/// as long as some node still gossips the peer, it is kept out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Removed {
    pub(crate) generation: u64,
    pub(crate) heartbeat: u64,
    pub(crate) at: Instant,
    /// How it went: dead or left (what a monitored node answers a live
    /// report of it with, `removed_verdict`).
    pub(crate) status: PeerStatus,
}

/// The Scuttlebutt state machine of one node.
pub struct Engine {
    pub(crate) id: PeerId,
    pub(crate) generation: u64,
    pub(crate) config: Config,
    pub(crate) params: PhiParams,
    /// Every peer this node holds, itself included, sorted by id (see
    /// `table.rs`).
    pub(crate) peers: Table<Peer>,
    pub(crate) removed: BTreeMap<PeerId, Removed>,
    seeds: Vec<String>,
    pub(crate) rng: ChaCha8Rng,
    start: Instant,
    next_tick: Instant,
    /// The time of the last round: phi in views is computed at it.
    last_round: Instant,
    /// When the next round also gossips with a seed that is not live.
    next_rejoin: Instant,
    /// When each seed was last tried by a rejoin: the next rejoin takes a
    /// seed never tried, or the one tried longest ago.
    rejoin_tried: BTreeMap<String, Instant>,
    digest_cursor: Option<PeerId>,
    /// Where the next digest of differing buckets too large for a frame
    /// starts: past the last such one's cut (`digest::build`).
    cover_cursor: Option<PeerId>,
    /// Syns handled so far (wrapping), to mark the peers a digest named.
    pub(crate) syns_seen: u32,
    /// Peers whose state changed recently, newest last, with the time they
    /// stop being news; they ride in every digest until then.
    pub(crate) hot: VecDeque<(Stamp, PeerId)>,
    leaving: Option<u32>,
    transmits: VecDeque<Transmit>,
    pub(crate) events: crate::event::Events,
    pub(crate) storage: Option<Arc<dyn Storage>>,
    pub(crate) counters: Arc<Counters>,
    /// The sender of the last frame `handle_frame` accepted.
    pub(crate) last_sender: Option<PeerId>,
    /// Monitored: dead entries owed to the sender of the frame being
    /// handled, for live deltas of peers this node removed (see
    /// `Engine::owe_verdict`).
    pub(crate) owed_verdicts: Vec<crate::wire::DigestEntry>,
    /// The broadcast channel and topic pub/sub (see `pubsub.rs`).
    pub(crate) pubsub: crate::pubsub::PubSub,
    /// Open queries and requests (see `query.rs`).
    pub(crate) queries: crate::query::Queries,
    /// The table's hash, whole and by bucket, for the idle exchange and
    /// reconciliation (see `table_hash.rs`).
    pub(crate) table_hash: crate::table_hash::TableHash,
    /// Frames accepted so far, and its value at each recent round: how much
    /// this node has heard since a peer's last heartbeat (local health,
    /// see `check_liveness`).
    pub(crate) frames_heard: u64,
    heard_log: VecDeque<(Instant, u64)>,
    /// `Stats::peers_learned` at the last round's start, and how many new
    /// peers the round before it brought: a node still learning its
    /// cluster (a join) leaves beats from tables of another size to the
    /// gossip (monitored; see `on_summary_syn`).
    learned_at_round: u64,
    pub(crate) learned_last_round: u64,
    /// The earliest moment a timed peer's silence can pass its detector's
    /// deadline (or a suspect's wait end), as the last liveness check found
    /// it: a check runs then, between rounds if need be, rather than at the
    /// next round (a verdict would otherwise wait up to a round).
    next_check: Option<Instant>,
    /// Monitored liveness: the ring neighbours watched (see `monitor.rs`).
    pub(crate) monitor: crate::monitor::Monitor,
    /// The table's size at its last packing (`compact_table`).
    compacted_at: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("id", &self.id)
            .field("generation", &self.generation)
            .field("peers", &self.peers.len())
            .field("next_tick", &self.next_tick)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A new node `id`, reachable at `addr`, in incarnation `generation`
    /// (positive, and larger than any earlier incarnation's: start time in
    /// milliseconds is the usual choice). Its first round is due at `now`.
    pub fn new(
        config: Config,
        id: PeerId,
        addr: String,
        generation: u64,
        now: Instant,
    ) -> Result<Engine, ConfigError> {
        config.validate()?;
        if generation == 0 {
            return Err(ConfigError::Invalid {
                field: "generation",
                reason: "must be positive".into(),
            });
        }
        if id.as_str().is_empty()
            || id.as_str().len() > config.max_id_bytes
            || addr.len() > config.max_id_bytes
        {
            return Err(ConfigError::Invalid {
                field: "max_id_bytes",
                reason: format!("id and address must be 1 to {} bytes", config.max_id_bytes),
            });
        }
        let seed = config.rng_seed.unwrap_or(generation)
            ^ fnv1a(id.as_str().as_bytes())
            ^ generation.rotate_left(17);
        let params = PhiParams::new(
            config.phi_window,
            config.phi_min_std_dev.as_secs_f64() * 1000.0,
            config.phi_acceptable_pause.as_secs_f64() * 1000.0,
            config.phi_threshold,
        );
        let mut me = Peer::new(generation, &addr, now, config.gossip_interval, &params);
        me.heartbeat = 1;
        let mut peers = Table::new();
        let id = intern::id(&id);
        peers.insert(id.clone(), me);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // The first rejoin at a random point of the interval, so nodes
        // started together do not all reach out in the same round.
        let rejoin = config.seed_rejoin_interval;
        let next_rejoin = now + rejoin.mul_f64(rng.random_range(0.0..1.0));
        let mut engine = Engine {
            id,
            generation,
            params,
            peers,
            removed: BTreeMap::new(),
            seeds: Vec::new(),
            rng,
            start: now,
            next_tick: now,
            last_round: now,
            next_rejoin,
            rejoin_tried: BTreeMap::new(),
            digest_cursor: None,
            cover_cursor: None,
            syns_seen: 0,
            hot: VecDeque::new(),
            leaving: None,
            transmits: VecDeque::new(),
            events: Default::default(),
            storage: None,
            counters: Arc::new(Counters::default()),
            last_sender: None,
            owed_verdicts: Vec::new(),
            pubsub: Default::default(),
            queries: Default::default(),
            table_hash: crate::table_hash::TableHash::new(config.monitors == 0),
            frames_heard: 0,
            learned_at_round: 0,
            learned_last_round: 0,
            heard_log: VecDeque::new(),
            next_check: None,
            monitor: Default::default(),
            compacted_at: 0,
            config,
        };
        engine.rehash_all();
        Ok(engine)
    }

    /// Adds seed addresses, contacted while fewer than `min_live_peers` are live.
    pub fn with_seeds<I, S>(mut self, seeds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for s in seeds {
            let s = s.into();
            if !s.is_empty() && !self.seeds.contains(&s) {
                self.seeds.push(s);
            }
        }
        self
    }

    /// Replaces the seed addresses (a discoverer found new ones), skipping
    /// empty and repeated ones; the next round that wants a seed picks
    /// from these.
    pub fn set_seeds<I, S>(&mut self, seeds: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.seeds.clear();
        for s in seeds {
            let s = s.into();
            if !s.is_empty() && !self.seeds.contains(&s) {
                self.seeds.push(s);
            }
        }
    }

    /// The seed addresses, in the order given.
    pub fn seeds(&self) -> &[String] {
        &self.seeds
    }

    /// Writes the peer table through to `storage`. Addresses of peers the
    /// storage remembers from an earlier run become extra seeds; their stale
    /// records are dropped so the storage mirrors this engine's view.
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        let mut book: Vec<PeerRecord> = storage.peers();
        book.sort_by(|a, b| a.id.cmp(&b.id));
        for r in book {
            if r.id != self.id && r.status != PeerStatus::Left {
                self = self.with_seeds([r.addr.clone()]);
            }
            if let Err(e) = storage.remove_peer(&r.id) {
                tracing::debug!(error = %e, "storage refused a removal");
                Counters::add(&self.counters.storage_errors, 1);
            }
        }
        self.storage = Some(storage);
        let own = self.record(&self.id.clone());
        self.store(|s| s.put_peer(own));
        self
    }

    // ---- queries ---------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> &PeerId {
        &self.id
    }
    /// This node's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// This node's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Counters of frames handled and dropped.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
    pub(crate) fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }
    /// What this node knows of `id` (itself included).
    pub fn peer(&self, id: &PeerId) -> Option<PeerView> {
        self.peers.get(id).map(|p| self.view(id, p))
    }
    /// Every peer this node knows, itself included, sorted by id.
    pub fn peers(&self) -> impl Iterator<Item = PeerView> + '_ {
        self.peers.iter().map(|(id, p)| self.view(id, p))
    }
    fn view(&self, id: &PeerId, p: &Peer) -> PeerView {
        PeerView {
            id: id.clone(),
            generation: p.generation,
            addr: p.addr.to_string(),
            status: p.status,
            heartbeat: p.heartbeat,
            max_version: p.max_version,
            phi: if *id == self.id || p.status == PeerStatus::Left || !self.times(id) {
                0.0
            } else {
                p.detector.phi(self.last_round, &self.params)
            },
            keys: p.live_keys(),
        }
    }
    /// Other peers with the given status, sorted.
    pub fn peers_with(&self, status: PeerStatus) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(id, p)| **id != self.id && p.status == status)
            .map(|(id, _)| id.clone())
            .collect()
    }
    /// How many other peers this node holds, whatever their status (live,
    /// dead, or left and not yet removed), in constant time: at least
    /// [`live_count`](Engine::live_count), which walks the table.
    pub fn known_count(&self) -> usize {
        self.peers.len() - 1
    }
    /// How many other peers are currently live (no allocation).
    pub fn live_count(&self) -> usize {
        self.peers
            .iter()
            .filter(|(id, p)| p.status == PeerStatus::Live && !is_table_key(id, &self.id))
            .count()
    }
    /// Other peers currently live, sorted.
    pub fn live_peers(&self) -> Vec<PeerId> {
        self.peers_with(PeerStatus::Live)
    }
    /// Other peers currently dead, sorted.
    pub fn dead_peers(&self) -> Vec<PeerId> {
        self.peers_with(PeerStatus::Dead)
    }
    /// The value of `key` at peer `id` (or this node), if set.
    pub fn get(&self, id: &PeerId, key: &str) -> Option<&Bytes> {
        self.peers
            .get(id)?
            .entry(key)
            .filter(|e| !e.deleted)
            .map(|e| &e.value)
    }
    /// The live keys of peer `id`, sorted.
    pub fn keys(&self, id: &PeerId) -> Vec<(String, Bytes)> {
        self.peers.get(id).map_or_else(Vec::new, |p| {
            p.entries()
                .filter(|(_, e)| !e.deleted)
                .map(|(k, e)| (k.to_string(), e.value.clone()))
                .collect()
        })
    }
    /// How many live keys peer `id` (or this node) has.
    pub(crate) fn live_key_count(&self, id: &PeerId) -> usize {
        self.peers.get(id).map_or(0, Peer::live_keys)
    }
    /// The record of every peer this node knows, itself included, sorted
    /// by id (what a storage written through to holds).
    pub(crate) fn records(&self) -> Vec<PeerRecord> {
        self.peers.iter().map(|(id, p)| record(id, p)).collect()
    }
    /// The address peer `id` advertises.
    pub(crate) fn addr_of(&self, id: &PeerId) -> Option<String> {
        self.peers.get(id).map(|p| p.addr.to_string())
    }
    /// The addresses of every peer this node knows.
    pub(crate) fn addrs(&self) -> Vec<String> {
        self.peers.values().map(|p| p.addr.to_string()).collect()
    }
    /// Whether a `leave` has finished its announcement rounds.
    pub fn has_left(&self) -> bool {
        self.leaving == Some(0)
    }

    // ---- outputs ---------------------------------------------------------

    /// The next frame to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        if t.is_none() {
            release_burst(&mut self.transmits);
        }
        t
    }
    /// Whether the engine queues [`Event`]s for [`Engine::poll_event`]
    /// (on unless turned off). An embedding that never reads them turns
    /// them off: a node that learns a cluster of ten thousand then builds
    /// no event for each peer, only to have it dropped (the simulator does
    /// so when it keeps no events, `Sim::record_events`). Turning them off
    /// drops the events queued, and [`Engine::poll_event`] returns `None`
    /// until they are turned on again.
    pub fn set_events(&mut self, on: bool) {
        self.events.set_on(on);
    }

    /// The next event for the user, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if e.is_none() {
            release_burst(self.events.queue_mut());
        }
        e
    }
    /// When `handle_tick` should be called next: the next round, or
    /// sooner when a ping sent for other watchers runs out of time first
    /// (monitored liveness).
    pub fn poll_timeout(&self) -> Instant {
        [self.next_relay_deadline(), self.next_check]
            .into_iter()
            .flatten()
            .fold(self.next_tick, Instant::min)
    }

    // ---- user commands ---------------------------------------------------

    /// Sets one of this node's keys; returns the new version.
    pub fn set(&mut self, key: &str, value: Bytes, now: Instant) -> Result<u64, KeyError> {
        let c = &self.config;
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > c.max_key_bytes {
            return Err(KeyError::KeyTooLong {
                len: key.len(),
                max: c.max_key_bytes,
            });
        }
        if value.len() > c.max_value_bytes {
            return Err(KeyError::ValueTooLarge {
                len: value.len(),
                max: c.max_value_bytes,
            });
        }
        if self.leaving.is_some() {
            return Err(KeyError::Left);
        }
        let max_keys = c.max_keys_per_peer;
        let me = self.peers.get_mut(&self.id).expect("own entry");
        let is_new = me.entry(key).is_none_or(|e| e.deleted);
        if is_new && me.live_keys() >= max_keys {
            return Err(KeyError::TooManyKeys { max: max_keys });
        }
        let before = self.table_hash.share(&self.id, me);
        me.max_version += 1;
        let version = me.max_version;
        let _ = me.put(
            key,
            Entry {
                value: value.clone(),
                version,
                deleted: false,
            },
            now,
        );
        let id = self.id.clone();
        self.store(|s| s.put_key(&id, key, Versioned { value, version }));
        self.table_changed(&id, before);
        self.mark_hot(&id, now);
        Ok(version)
    }

    /// Deletes one of this node's keys; returns the tombstone's version, or
    /// `None` if the key was not set.
    pub fn delete(&mut self, key: &str, now: Instant) -> Result<Option<u64>, KeyError> {
        if self.leaving.is_some() {
            return Err(KeyError::Left);
        }
        let me = self.peers.get_mut(&self.id).expect("own entry");
        if me.entry(key).is_none_or(|e| e.deleted) {
            return Ok(None);
        }
        let before = self.table_hash.share(&self.id, me);
        me.max_version += 1;
        let version = me.max_version;
        let _ = me.put(
            key,
            Entry {
                value: Bytes::new(),
                version,
                deleted: true,
            },
            now,
        );
        let id = self.id.clone();
        self.store(|s| s.remove_key(&id, key));
        self.table_changed(&id, before);
        self.mark_hot(&id, now);
        Ok(Some(version))
    }

    /// Announces that this node leaves the cluster. It keeps gossiping for
    /// `leave_rounds` rounds (to every live peer, up to 32 a round) so that all
    /// learn it left; [`Engine::has_left`] turns true after them.
    pub fn leave(&mut self, now: Instant) {
        if self.leaving.is_some() {
            return;
        }
        self.leaving = Some(self.config.leave_rounds.max(1));
        let me = self.peers.get_mut(&self.id).expect("own entry");
        let before = self.table_hash.share(&self.id, me);
        me.max_version += 1;
        me.status = PeerStatus::Left;
        let own = self.record(&self.id.clone());
        self.store(|s| s.put_peer(own));
        self.next_tick = now;
        self.table_changed(&self.id.clone(), before);
        self.mark_hot(&self.id.clone(), now);
    }

    // ---- the round ---------------------------------------------------------

    /// Runs a gossip round if one is due at `now`: bump the heartbeat, check
    /// liveness, collect garbage, and start exchanges with chosen peers.
    /// Between rounds it only sends the denials of pings that have run out
    /// of time (see [`poll_timeout`](Engine::poll_timeout)).
    pub fn handle_tick(&mut self, now: Instant) {
        if now < self.next_tick {
            // Between rounds only the pings for other watchers and the
            // detectors' deadlines have timers.
            self.expire_relays(now);
            if self.next_check.is_some_and(|t| t <= now) {
                // Spent either way: a node that has left judges no one,
                // and its timer must not stay in the past.
                self.next_check = None;
                if !self.has_left() {
                    self.check_liveness(now);
                }
            }
            return;
        }
        self.next_tick = now + self.config.gossip_interval;
        self.last_round = now;
        if self.has_left() {
            self.next_check = None;
            return;
        }
        Counters::add(&self.counters.rounds, 1);
        let learned = self
            .counters
            .peers_learned
            .load(std::sync::atomic::Ordering::Relaxed);
        self.learned_last_round = learned.wrapping_sub(self.learned_at_round);
        self.learned_at_round = learned;
        let me = self.peers.get_mut(&self.id).expect("own entry");
        me.heartbeat += 1;
        // Its own heartbeat's age, as deltas report it, counts from here.
        me.detector.reset_clock(now, &self.params);
        if self.monitored() {
            self.update_neighbours(now);
            self.vouch(now);
        }
        // Pings for other watchers not answered by now (a relayed node asked
        // by a monitored one may hold some too).
        self.expire_relays(now);
        self.heard_log.push_back((now, self.frames_heard));
        while self.heard_log.len() > HEARD_LOG_ROUNDS {
            self.heard_log.pop_front();
        }
        self.check_liveness(now);
        // Live and dead peers (not this node, not left), counted in the
        // collector's walk; the picks are ranks among them, found in a
        // second walk.
        let (live, dead) = self.collect_garbage(now);
        self.expire_queries(now);

        let own_addr = self.peers[&self.id].addr.to_string();
        // News (a hot peer) goes to `fanout` peers a round; with nothing new
        // only heartbeats move, and `idle_fanout` partners suffice.
        let stamp = Stamp::of(now);
        while self.hot.front().is_some_and(|(until, _)| *until <= stamp) {
            self.hot.pop_front();
        }
        // The join's burst of news gone cold: give its room back.
        if self.hot.len() < self.hot.capacity() / 4 {
            self.hot.shrink_to(2 * self.hot.len() + QUEUE_KEPT);
        }
        let fanout = match self.leaving {
            Some(_) => self.config.fanout.max(live.min(32)),
            // Monitored, a round with nothing new sends only beats.
            None if self.hot.is_empty() && self.monitored() => 0,
            None if self.hot.is_empty() => self.config.idle_fanout.min(self.config.fanout),
            None => self.config.fanout,
        };
        let picks = select::pick(&mut self.rng, live, dead, fanout);
        let chosen = self.addresses_at(&picks);
        let mut targets = select::finish(
            &mut self.rng,
            chosen,
            live,
            &self.seeds,
            self.config.min_live_peers,
            &own_addr,
        );
        let rejoin = self.config.seed_rejoin_interval;
        if !rejoin.is_zero() && now >= self.next_rejoin {
            self.next_rejoin = now + rejoin;
            let others: Vec<&String> = self
                .seeds
                .iter()
                .filter(|s| **s != own_addr && !self.live_at(s) && !targets.contains(s))
                .collect();
            // Least recently tried first (never tried before all), at
            // random among equals: the silent seeds are gone through in
            // turn rather than drawn again and again.
            let oldest = others.iter().map(|s| self.rejoin_tried.get(*s)).min();
            let pick: Vec<&String> = others
                .iter()
                .filter(|s| Some(self.rejoin_tried.get(**s)) == oldest)
                .copied()
                .collect();
            if let Some(s) = pick.choose(&mut self.rng) {
                let s = (*s).clone();
                self.rejoin_tried.insert(s.clone(), now);
                targets.push(s);
            }
        }
        // The live peers chosen (the first picks) get a summary first, news
        // or not: a partner whose table matches swaps heartbeats (the idle
        // exchange), one whose table differs answers with its digest and a
        // full exchange runs the other way. While news spreads, the pairs
        // that already share it then stay idle instead of swapping whole
        // digests for the rest of the news's hot rounds.
        let idle_picks = if self.leaving.is_none() && self.config.idle_summary {
            fanout.min(live)
        } else {
            0
        };
        let mut reached = std::collections::BTreeSet::new();
        // One summary for all the round's idle picks: nothing changes the
        // table between them, and each is a walk of it.
        let mut summary = None;
        for (i, to) in targets.into_iter().enumerate() {
            // Pending broadcasts the target wants take their share first
            // (none pending: no lookup, nothing changes).
            let peer = if self.pubsub.channel.is_empty() {
                None
            } else {
                self.peer_at(&to)
            };
            let broadcasts = match peer {
                Some(peer) => {
                    let b = self.take_broadcasts(&peer);
                    reached.insert(peer);
                    b
                }
                None => Vec::new(),
            };
            let budget = self.body_budget() - 6 - crate::wire::broadcasts_len(&broadcasts);
            let d = if i < idle_picks {
                self.idle_syn_digest(budget, &mut summary, now)
            } else {
                self.syn_digest(budget, false, now)
            };
            self.send_with(to, Body::Syn(d), broadcasts);
        }
        self.broadcast_round(&reached);
        if self.monitored() && self.leaving.is_none() {
            self.send_beats();
        }
        if let Some(n) = self.leaving.as_mut() {
            *n -= 1;
        }
    }

    /// The addresses of a round's picks (`select::pick`: ranks among the
    /// live and the dead peers other than this node, in table order), live
    /// ones in the order drawn, then the dead one; one walk of the table,
    /// which stops at the last pick.
    fn addresses_at(&self, picks: &select::Picks) -> Vec<String> {
        let mut wanted: Vec<(usize, usize)> = picks
            .live
            .iter()
            .enumerate()
            .map(|(at, &rank)| (rank, at))
            .collect();
        wanted.sort_unstable();
        let mut live_addrs: Vec<&str> = vec![""; picks.live.len()];
        let mut dead_addr = None;
        let (mut live, mut dead, mut next) = (0usize, 0usize, 0usize);
        for (id, p) in self.peers.iter() {
            if next == wanted.len() && picks.dead.is_none_or(|_| dead_addr.is_some()) {
                break;
            }
            match target_kind(id, p, &self.id) {
                Some(PeerStatus::Live) => {
                    if let Some(&(rank, at)) = wanted.get(next) {
                        if rank == live {
                            live_addrs[at] = p.addr.as_str();
                            next += 1;
                        }
                    }
                    live += 1;
                }
                Some(_) => {
                    if picks.dead == Some(dead) {
                        dead_addr = Some(p.addr.as_str());
                    }
                    dead += 1;
                }
                None => {}
            }
        }
        live_addrs
            .into_iter()
            .chain(dead_addr)
            .map(str::to_string)
            .collect()
    }

    /// Whether a live peer other than this node has address `addr` (a walk
    /// of the table; for the seed rejoin, once in a while).
    fn live_at(&self, addr: &str) -> bool {
        self.peers.iter().any(|(id, p)| {
            p.status == PeerStatus::Live && !is_table_key(id, &self.id) && p.addr.as_str() == addr
        })
    }

    /// Reports dead the live peers whose detector's deadline has passed.
    ///
    /// A silence is evidence against a peer only if this node was hearing
    /// from the cluster meanwhile: when it has accepted fewer than
    /// `liveness_evidence_frames` frames since the peer's last heartbeat
    /// arrived (its own links are losing frames, or it was stalled), the
    /// verdict waits, at most until the silence is twice what the detector
    /// allows. This is Lifeguard's local health awareness (memberlist
    /// scales its timeouts by the node's own missed acks) in a form that
    /// needs no per-peer state: a log of the frame count at each round.
    ///
    /// A peer past its deadline is then asked about first (the indirect
    /// probe, `monitor.rs` `suspect`): with relayed liveness a few of its
    /// ring neighbours answer with the heartbeat they hold of it and when it
    /// came; a newer one heard more recently than this node's refutes the
    /// silence, and the verdict comes when every helper has denied or the
    /// wait is over.
    ///
    /// It runs every round, and between rounds at the earliest deadline the
    /// last run found ([`poll_timeout`](Engine::poll_timeout)), so a verdict
    /// is not held to the round's tick.
    fn check_liveness(&mut self, now: Instant) {
        let need = u64::from(self.config.liveness_evidence_frames);
        let log = &self.heard_log;
        let heard = self.frames_heard;
        let heard_since = |at: Instant| -> u64 {
            let i = log.partition_point(|(t, _)| *t < at);
            if i == 0 {
                // Older than the log: many rounds ago.
                return u64::MAX;
            }
            heard - log.get(i).map_or(heard, |(_, n)| *n)
        };
        let mut died = Vec::new();
        let mut silent = Vec::new();
        // Relayed: the earliest deadline still ahead.
        let mut first = Stamp::MAX;
        if self.monitored() {
            // Only the ring neighbours are timed here; others' deaths come
            // from their watchers' verdicts.
            for (id, deadline, last, heard) in self.overdue_neighbours(now) {
                // A neighbour not heard from yet is asked about at once
                // (its helpers ping it); local health adds no wait (an
                // island's wave would slow).
                let patience = deadline + deadline.saturating_duration_since(last);
                if heard && heard_since(last) < need && now <= patience {
                    continue;
                }
                silent.push((id, patience));
            }
            // Peers held live that others called dead (`contest`).
            self.check_contests(now);
        } else {
            let stamp = Stamp::of(now);
            // A run (a chunk of the table) at a time (see `Table::runs`).
            for (ids, run) in self.peers.runs() {
                for (id, p) in ids.iter().zip(run) {
                    if p.status != PeerStatus::Live || is_table_key(id, &self.id) {
                        continue;
                    }
                    let deadline = p.detector.deadline_stamp();
                    if stamp <= deadline {
                        first = first.min(deadline);
                        continue;
                    }
                    let (deadline, last) = (deadline.instant(), p.detector.last());
                    let patience = deadline + deadline.saturating_duration_since(last);
                    if heard_since(last) < need && now <= patience {
                        continue;
                    }
                    silent.push((id.clone(), patience));
                }
            }
            // A suspect heard from since (its heartbeat came round) is
            // one no longer.
            self.forget_suspects_except(&silent);
        }
        // A silent peer's helpers are asked first (indirect probe); the
        // verdict waits for their answers.
        for (id, patience) in silent {
            if self.suspect(now, &id, patience) {
                died.push(id);
            }
        }
        for id in died {
            self.declare_dead(now, &id);
        }
        // Relayed: the next check when a suspect's wait ends or a silence
        // passes its deadline (strictly after it: a check at the deadline
        // itself finds nothing), unless the next round's tick comes first.
        // Monitored liveness keeps to the rounds (a scratch build that
        // checked it between them too had 45 false deaths at 30% loss
        // against 0; bench/NOTES.md).
        self.next_check = if self.monitored() {
            None
        } else {
            let deadline = (first < Stamp::MAX).then(|| first.instant() + Duration::from_millis(1));
            deadline
                .into_iter()
                .chain(self.first_suspect_wait())
                .filter(|t| *t > now && *t < self.next_tick)
                .min()
        };
    }

    /// This node's own verdict: peer `id` is dead as of `now`. With
    /// monitored liveness the verdict is news the others believe.
    pub(crate) fn declare_dead(&mut self, now: Instant, id: &PeerId) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        let before = self.table_hash.share(id, p);
        p.set_status(PeerStatus::Dead, now);
        self.table_changed(id, before);
        tracing::debug!(node = %self.id, peer = %id, "peer dead");
        if self.monitored() {
            self.mark_hot(id, now);
            self.note_death(now, id);
        }
        self.events.push_back(Event::PeerDead { peer: id.clone() });
        self.store_peer(id);
    }

    /// The heartbeat inter-arrival to expect of a peer before any is
    /// observed: one gossip interval while digests cover every peer, longer
    /// when they carry slices and a peer's entry comes round less often
    /// (about 2·fanout digests of `max_digest_entries` reach a node a round).
    pub(crate) fn expected_interval(&self) -> std::time::Duration {
        let c = &self.config;
        let per_round = (2 * c.fanout * c.max_digest_entries) as f64;
        let rounds = (self.peers.len() as f64 / per_round).max(1.0);
        c.gossip_interval.mul_f64(rounds)
    }

    /// Packs the peer table once it has grown by a quarter, or shrunk by
    /// half, since the last packing. Inserts spread over its keys (a join's
    /// deltas) leave its chunks about half to two thirds full; packed, each
    /// is seven eighths full (`Table::compact`), which at 104 bytes an entry
    /// saves some 30 to 60 bytes per peer held. Removals (the dead cleared
    /// after a mass crash) leave chunks as little as a quarter full, since a
    /// chunk merges only below that. Amortized O(1) per insert or removal
    /// (about five entries moved per peer learned), one table at a time.
    pub(crate) fn compact_table(&mut self) {
        let n = self.peers.len();
        let shrunk = n < self.compacted_at / 2;
        if shrunk {
            self.compacted_at = n;
        }
        if n < COMPACT_MIN_PEERS || (!shrunk && n * 4 < self.compacted_at * 5) {
            return;
        }
        self.peers.compact();
        self.compacted_at = n;
    }

    /// Marks `id` as news: it rides in every digest for about twice the
    /// rounds an epidemic needs to reach every known peer.
    pub(crate) fn mark_hot(&mut self, id: &PeerId, now: Instant) {
        // The table's own copy of the id (a decoded one would keep its
        // allocation alive while the peer is news).
        let id = self
            .peers
            .get_key_value(id)
            .map_or_else(|| id.clone(), |(k, _)| k.clone());
        self.mark_hot_key(id, now);
    }

    /// [`Engine::mark_hot`] with the table's own copy of the id in hand.
    pub(crate) fn mark_hot_key(&mut self, id: PeerId, now: Instant) {
        let rounds = 2 * (usize::BITS - self.peers.len().leading_zeros()) + 2;
        let until = Stamp::of(now + self.config.gossip_interval * rounds);
        // A digest takes at most `max_digest_entries / 2` entries from the
        // queue, newest first (`digest::build`), so older ones beyond that
        // (and some room for repeats) are never read; at a join's end every
        // peer is news, and a queue of all of them cost 24 bytes and more
        // per peer.
        let cap = self.config.max_digest_entries / 2 + QUEUE_KEPT;
        let len = self.hot.len();
        if len == self.hot.capacity() && len >= HOT_EXACT_FROM {
            // A join's burst: doubling, but never past the bound (and the
            // one pushed over it): a queue doubled past it held up to
            // twice the room it can use, in every node at once.
            self.hot
                .reserve_exact((2 * len).min(cap + 1).saturating_sub(len).max(1));
        }
        self.hot.push_back((until, id));
        while self.hot.len() > cap {
            self.hot.pop_front();
        }
    }

    /// Removes peers dead or left for `dead_peer_grace` and tombstones
    /// older than `tombstone_grace`.
    ///
    /// Returns the live and dead peers it kept (not this node, not left):
    /// the round's picks are drawn from them, and one walk of the table a
    /// round is what an idle round of a large table costs.
    fn collect_garbage(&mut self, now: Instant) -> (usize, usize) {
        let grace = self.config.dead_peer_grace;
        let tomb = self.config.tombstone_grace;
        // One pass: peers gone long enough, and tombstones old enough.
        let mut gone: Vec<PeerId> = Vec::new();
        let mut floors_moved = false;
        let (mut live, mut dead) = (0usize, 0usize);
        // A run (a chunk of the table) at a time (see `Table::runs`).
        for (ids, run) in self.peers.runs_mut() {
            for (id, p) in ids.iter().zip(run.iter_mut()) {
                if p.status != PeerStatus::Live
                    && p.status_age(now) >= grace
                    && !is_table_key(id, &self.id)
                {
                    gone.push(id.clone());
                    continue;
                }
                match target_kind(id, p, &self.id) {
                    Some(PeerStatus::Live) => live += 1,
                    Some(_) => dead += 1,
                    None => {}
                }
                let floor = p.gc_floor;
                p.collect_garbage(now, tomb);
                floors_moved |= p.gc_floor != floor;
            }
        }
        for id in gone {
            if let Some(p) = self.peers.remove(&id) {
                self.table_hash.toggle(&id, self.table_hash.share(&id, &p));
                self.remember_removed(&id, p.generation, p.heartbeat, p.status, now);
                self.events
                    .push_back(Event::PeerRemoved { peer: id.clone() });
                self.store(|s| s.remove_peer(&id));
            }
        }
        self.removed
            .retain(|_, r| now.saturating_duration_since(r.at) < grace);
        if floors_moved {
            self.rehash_all();
        }
        (live, dead)
    }

    // ---- the idle exchange's summary ---------------------------------------

    /// Call after a change to peer `id`'s generation, max_version,
    /// gc_floor or status, with its share of the table's hash from before
    /// the change (`peer_hash`, taken then): toggles the old share out and
    /// the new one in.
    pub(crate) fn table_changed(&mut self, id: &PeerId, before: u64) {
        if self.table_hash.outgrown(self.peers.len()) {
            self.rehash_all();
        } else {
            let after = self
                .peers
                .get(id)
                .map_or(0, |p| self.table_hash.share(id, p));
            self.table_hash.toggle(id, before ^ after);
        }
    }

    /// Recomputes every peer's share of the table's hash (after changes
    /// to many peers at once).
    pub(crate) fn rehash_all(&mut self) {
        let bits = crate::table_hash::bits_for(self.peers.len());
        self.table_hash.rebuild(&self.peers, bits);
    }

    /// The table's hash and size.
    pub(crate) fn summary_hash(&mut self) -> (u64, u32) {
        let c = (self.table_hash.total(), self.peers.len() as u32);
        debug_assert_eq!(c, self.compute_summary_hash(), "table hash is stale");
        c
    }

    fn compute_summary_hash(&self) -> (u64, u32) {
        let hash = self
            .peers
            .iter()
            .fold(0u64, |h, (id, p)| h ^ self.table_hash.share(id, p));
        (hash, self.peers.len() as u32)
    }

    /// This node's summary: the table's hash and size, and the low 8 bits
    /// of every heartbeat it holds, in id order.
    pub(crate) fn summary(&mut self) -> crate::wire::Summary {
        let (hash, peers) = self.summary_hash();
        // Monitored liveness relays no heartbeats. Relayed, the peers this
        // node holds dead or left are named (not in the hash: see
        // `TableHash::share`).
        let mut heartbeats = Vec::new();
        let mut not_live = Vec::new();
        if !self.monitored() {
            heartbeats.reserve_exact(self.peers.len());
            // A run (a chunk of the table) at a time: the heartbeats in
            // one pass, the rare peer not live in another over the same,
            // now cached, run.
            for (_, run) in self.peers.runs() {
                let at = heartbeats.len();
                heartbeats.extend(run.iter().map(|p| p.heartbeat as u8));
                for (i, p) in run.iter().enumerate() {
                    if p.status != PeerStatus::Live {
                        not_live.push((at + i) as u32);
                    }
                }
            }
        }
        crate::wire::Summary {
            hash,
            peers,
            heartbeats: Bytes::from(heartbeats),
            heartbeat: 0,
            buckets: Bytes::new(),
            not_live,
        }
    }

    /// Takes the heartbeats of a summary whose hash and size match this
    /// node's: the two tables hold the same peers, in the same order, with
    /// the same versions (and, monitored, the same statuses). Each byte is
    /// read as the heartbeat nearest this node's own with those low 8 bits,
    /// from 64 behind to 191 ahead of it (`SUMMARY_BEHIND`), and taken if
    /// higher: liveness moves, nothing else can change. `not_live` names
    /// the positions the sender holds dead or left: elsewhere it holds the
    /// peer live, and a newer heartbeat revives a peer this node holds
    /// dead, as a digest entry's would.
    pub(crate) fn take_summary_heartbeats(
        &mut self,
        now: Instant,
        heartbeats: &[u8],
        not_live: &[u32],
    ) {
        let params = self.params;
        let interval = self.config.gossip_interval;
        let stamp = Stamp::of(now);
        // Where the sender's next not-live position is in `not_live`.
        let mut next_not_live = 0;
        let mut revived = Vec::new();
        let own = &self.id;
        // A run (a chunk of the table) at a time, against its share of the
        // bytes: most peers' byte matches in a quiet table, and the loop
        // over them is a read and a compare.
        let mut at = 0;
        for (ids, run) in self.peers.runs_mut() {
            // (As long as the table: the summaries matched, and the frame's
            // check held the bytes to the peer count.)
            let end = (at + run.len()).min(heartbeats.len());
            let lows = &heartbeats[at.min(end)..end];
            let first = at;
            at += run.len();
            for (j, (p, &low)) in run.iter_mut().zip(lows).enumerate() {
                let held = p.heartbeat;
                if held as u8 == low || is_table_key(&ids[j], own) {
                    continue;
                }
                let i = (first + j) as u32;
                while not_live.get(next_not_live).is_some_and(|&x| x < i) {
                    next_not_live += 1;
                }
                let sender_live = not_live.get(next_not_live) != Some(&i);
                let Some(hb) = summary_heartbeat(held, low) else {
                    continue;
                };
                if hb <= held {
                    continue;
                }
                // No more rounds ahead than could have passed since the held
                // heartbeat arrived (twice, plus slack for clock rates): a
                // replayed old frame's byte, read as far ahead, is refused.
                // Four ahead always passes, and is the common case: the
                // detector's clock is read only beyond it.
                if hb > held + SUMMARY_SLACK {
                    let since = stamp.since(p.detector.last_stamp());
                    let rounds = since.as_secs_f64() / interval.as_secs_f64().max(1e-6);
                    if hb > held + 2 * rounds as u64 + SUMMARY_SLACK {
                        continue;
                    }
                }
                if p.take_heartbeat(stamp, p.generation, hb, sender_live, true, &params) {
                    revived.push(ids[j].clone());
                }
            }
        }
        for id in revived {
            self.revived(&id);
        }
    }

    /// [`syn_digest`](Engine::syn_digest) with `idle` for one of a
    /// round's picks: the summary made for an earlier pick of the round,
    /// if there is one (`summary`), else one made now and kept there.
    fn idle_syn_digest(
        &mut self,
        budget: usize,
        summary: &mut Option<crate::wire::Summary>,
        now: Instant,
    ) -> crate::wire::Digest {
        if let Some(s) = summary.as_ref().filter(|s| summary_fits(s, budget)) {
            return crate::wire::Digest {
                summary: Some(s.clone()),
                ..Default::default()
            };
        }
        let d = self.syn_digest(budget, true, now);
        if summary.is_none() {
            summary.clone_from(&d.summary);
        }
        d
    }

    /// The digest of a Syn to `to` (or of one sent back after a summary
    /// that did not match): a summary when nothing is news and `idle` is
    /// asked for, else a digest slice.
    pub(crate) fn syn_digest(
        &mut self,
        budget: usize,
        idle: bool,
        now: Instant,
    ) -> crate::wire::Digest {
        self.syn_digest_of(budget, idle, None, None, now)
    }

    /// A filter's bits a peer and salt when this node answers a plain
    /// summary of `theirs` peers (see `filter.rs`): when the filter is on
    /// (`Config::filter_bits`), this table holds `filter_min_peers` or
    /// more, the other holds more by one in 64 at least (this side is
    /// likely the one that lacks), and this node learned more than one new
    /// peer in the last round (it is joining, or news of joins is
    /// spreading). A node that stays smaller while it learns nothing (it
    /// refused the dead peers the others still hold, say) sends entries:
    /// a filter carries no heartbeats back to it, and with relayed
    /// liveness its detectors would starve.
    ///
    /// Not with monitored liveness: a filter does not show the larger side
    /// the peers it removed that the smaller still holds live, which
    /// entries answer with a verdict (`refuse_unknown`); with filters on
    /// every mismatch, chaos seed 25 (`CHAOS_FILTER_MIN=8`) took stale news
    /// for life.
    ///
    /// Not in answer to bucket hashes (`mismatch_reply`): with filters
    /// there too, the simulator at N = 10,000 peaked at 18.52 GiB against
    /// 16.12 without any and 15.76 with filters for plain summaries only,
    /// for about the same wall time (bench/NOTES.md, "The smaller table's
    /// filter"); why was not found.
    pub(crate) fn filter_for(&mut self, theirs: u32) -> Option<(usize, u64)> {
        let (bits, min) = (self.config.filter_bits, self.config.filter_min_peers);
        let mine = self.peers.len();
        if bits == 0
            || self.monitored()
            || mine < min
            || (theirs as usize) < mine + (mine / 64).max(1)
            || self.learned_last_round <= 1
        {
            return None;
        }
        Some((bits, self.rng.random()))
    }

    /// [`Engine::syn_digest`], of the peers in `cover`'s buckets only when
    /// it is given (and then never a summary), as a filter when one is
    /// given (`filter_for`, never with a cover) and fits
    /// (`digest::build_filtered`).
    pub(crate) fn syn_digest_of(
        &mut self,
        budget: usize,
        idle: bool,
        cover: Option<&crate::table_hash::Cover>,
        filter: Option<(usize, u64)>,
        now: Instant,
    ) -> crate::wire::Digest {
        if idle && crate::wire::Summary::len_for(self.peers.len()) + 8 <= budget {
            let summary = self.summary();
            // Unless the peers held dead or left are too many to name.
            if summary_fits(&summary, budget) {
                return crate::wire::Digest {
                    summary: Some(summary),
                    ..Default::default()
                };
            }
        }
        let limits = digest::Limits {
            budget,
            max_entries: self.config.max_digest_entries,
            max_id_bytes: self.config.max_id_bytes,
        };
        let filtered = filter
            .and_then(|f| digest::build_filtered(&self.peers, &self.id, &self.hot, f, limits, now));
        let d = filtered.unwrap_or_else(|| {
            let cursor = if cover.is_some() {
                &mut self.cover_cursor
            } else {
                &mut self.digest_cursor
            };
            digest::build(&self.peers, &self.id, &self.hot, cursor, cover, limits, now)
        });
        Counters::add(&self.counters.digest_entries_sent, d.entries.len() as u64);
        if !d.filter.is_empty() {
            Counters::add(&self.counters.filter_digests, 1);
        }
        d
    }

    /// Remembers that `id` is gone (`status`, dead or left) in (at least)
    /// this generation and heartbeat, from `now` on. At most `max_peers`
    /// peers are remembered; the one remembered longest ago makes room.
    pub(crate) fn remember_removed(
        &mut self,
        id: &PeerId,
        generation: u64,
        heartbeat: u64,
        status: PeerStatus,
        now: Instant,
    ) {
        let status = if status == PeerStatus::Left {
            PeerStatus::Left
        } else {
            PeerStatus::Dead
        };
        let r = self.removed.entry(intern::id(id)).or_insert(Removed {
            generation,
            heartbeat,
            at: now,
            status,
        });
        if (generation, heartbeat) > (r.generation, r.heartbeat) {
            r.generation = generation;
            r.heartbeat = heartbeat;
            r.status = status;
        }
        r.at = now;
        if self.removed.len() > self.config.max_peers {
            let oldest = self
                .removed
                .iter()
                .min_by_key(|(_, r)| r.at)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.removed.remove(&oldest);
            }
        }
    }

    // ---- helpers shared with the exchange --------------------------------

    /// Bytes available for a frame's body message.
    pub(crate) fn body_budget(&self) -> usize {
        let me = &self.peers[&self.id];
        let sender = Sender {
            id: self.id.clone(),
            generation: self.generation,
            addr: me.addr.to_string(),
        };
        let max = self.config.max_frame_bytes - self.seal_overhead();
        max - (Frame::envelope_len(PROTOCOL_VERSION, &self.config.cluster_id, &sender, max)
            - len_msg(max)
            + 1
            + 5)
    }

    /// Sends `body` to `to`, with `broadcasts` riding on it.
    pub(crate) fn send_with(
        &mut self,
        to: String,
        body: Body,
        broadcasts: Vec<crate::wire::Broadcast>,
    ) {
        let me = &self.peers[&self.id];
        let frame = Frame {
            protocol: PROTOCOL_VERSION,
            cluster_id: self.config.cluster_id.clone(),
            sender: Sender {
                id: self.id.clone(),
                generation: self.generation,
                addr: me.addr.to_string(),
            },
            body,
            broadcasts,
        };
        let bytes = self.seal_frame(frame.encode());
        // The lists' room for this thread's next frame (`spare.rs`).
        match frame.body {
            Body::Syn(d) => crate::spare::keep_entries(d.entries),
            Body::SynAck(d, deltas) => {
                crate::spare::keep_entries(d.entries);
                crate::spare::keep_deltas(deltas);
            }
            Body::Ack(deltas) => crate::spare::keep_deltas(deltas),
            Body::Probe(_) | Body::ProbeAck(_) => {}
        }
        if bytes.len() > self.config.max_frame_bytes {
            // The budget arithmetic is exact, so this is a bug; never send it.
            debug_assert!(false, "frame of {} bytes over budget", bytes.len());
            tracing::error!(len = bytes.len(), "internal: frame over budget not sent");
            return;
        }
        Counters::add(&self.counters.frames_out, 1);
        Counters::add(&self.counters.bytes_out, bytes.len() as u64);
        self.transmits.push_back(Transmit { to, frame: bytes });
    }

    pub(crate) fn record(&self, id: &PeerId) -> PeerRecord {
        record(id, &self.peers[id])
    }

    /// Writes `id`'s record through to the storage, if there is one (the
    /// record, an allocation, is made only then).
    pub(crate) fn store_peer(&self, id: &PeerId) {
        self.store(|s| s.put_peer(self.record(id)));
    }

    pub(crate) fn store(&self, f: impl FnOnce(&dyn Storage) -> Result<(), StorageError>) {
        if let Some(s) = &self.storage {
            if let Err(e) = f(s.as_ref()) {
                tracing::debug!(node = %self.id, error = %e, "storage write failed");
                Counters::add(&self.counters.storage_errors, 1);
            }
        }
    }

    /// The largest generation believable at `now`: generations are start
    /// times in milliseconds, so this node's own, plus the time since it
    /// started, plus the configured skew.
    pub(crate) fn max_generation(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        self.generation
            .saturating_add(elapsed.as_millis() as u64)
            .saturating_add(self.config.max_generation_skew.as_millis() as u64)
    }
}

/// Rounds of frame counts kept for `check_liveness`'s local health.
const HEARD_LOG_ROUNDS: usize = 256;

/// How far behind the heartbeat this node holds a summary's 8-bit value
/// may be read (the rest of the 256 values are ahead). A partner whose
/// table matches holds every peer with the same status, so it cannot lag
/// by that many rounds on a live peer: its detector (whose samples are
/// capped) would have found the peer dead first, and then the statuses, so
/// the hashes, would differ.
const SUMMARY_BEHIND: u64 = 64;

/// The storage's record of peer `id`.
fn record(id: &PeerId, p: &Peer) -> PeerRecord {
    PeerRecord {
        id: id.clone(),
        generation: p.generation,
        addr: p.addr.to_string(),
        status: p.status,
    }
}

/// What a round's targets count `p` as (`select::pick`'s ranks): `Live`,
/// `Dead`, or `None` for this node itself and a peer that left.
fn target_kind(id: &PeerId, p: &Peer, own: &PeerId) -> Option<PeerStatus> {
    match p.status {
        _ if is_table_key(id, own) => None,
        PeerStatus::Left => None,
        s => Some(s),
    }
}

/// Whether `key`, a key of the engine's peer table, is the engine's own
/// id: the table's own entry is keyed by the same allocation as
/// `Engine::id` (both interned in `Engine::new`), so a pointer comparison
/// says it, where a string comparison per peer per round showed in profiles.
/// The shared pointers themselves are compared (`PeerId::ptr_eq`), not the
/// strings' addresses, which are read from behind them: one load less per
/// peer in every walk of the table.
fn is_table_key(key: &PeerId, own: &PeerId) -> bool {
    key.ptr_eq(own)
}

/// Tables smaller than this are never packed (`compact_table`).
const COMPACT_MIN_PEERS: usize = 64;

/// Room kept in an output queue once it is drained: a join's delta queues
/// an event per peer it introduces, and a queue that kept that burst's
/// capacity would cost every node some 90 bytes per peer for good.
const QUEUE_KEPT: usize = 32;

/// From this length a full hot queue's doubling stops at its bound
/// (`Engine::mark_hot_key`); below it, `VecDeque`'s own growth.
const HOT_EXACT_FROM: usize = 256;

/// Gives back a drained queue's room beyond [`QUEUE_KEPT`].
fn release_burst<T>(q: &mut VecDeque<T>) {
    if q.capacity() > 4 * QUEUE_KEPT {
        q.shrink_to(QUEUE_KEPT);
    }
}

/// How far ahead of the held heartbeat a summary's byte is always
/// plausible (beyond it, no more than twice the rounds since the held one
/// arrived).
const SUMMARY_SLACK: u64 = 4;

/// Whether a Syn of `budget` bytes has room for `summary` (a table of its
/// size at most, and the peers it names not live).
fn summary_fits(summary: &crate::wire::Summary, budget: usize) -> bool {
    crate::wire::Summary::len_for(summary.peers as usize) + 8 <= budget
        && summary.encoded_len() + 8 <= budget
}

/// The heartbeat a summary's low byte `low` stands for, given the one held.
fn summary_heartbeat(held: u64, low: u8) -> Option<u64> {
    let base = held & !0xff;
    let mut hb = base | u64::from(low);
    if hb + SUMMARY_BEHIND < held {
        hb += 256;
    } else if hb >= held + (256 - SUMMARY_BEHIND) {
        hb = hb.checked_sub(256)?;
    }
    Some(hb)
}

#[cfg(test)]
mod tests {
    use super::summary_heartbeat;
    use super::Engine;
    use crate::{Config, Event, PeerId};
    use std::time::{Duration, Instant};

    #[test]
    fn events_turned_off_are_not_queued_and_change_nothing_else() {
        // The same join with the simulator's events kept (engines' events
        // on) and not (off): the same frames.
        let join = |record: bool| {
            let config = Config::local();
            let interval = config.gossip_interval;
            let mut s = crate::sim::Sim::new(3, config);
            s.record_events = record;
            s.add_node("n0", &[]);
            for id in ["n1", "n2", "n3"] {
                s.add_node(id, &["n0"]);
            }
            s.run_for(interval * 10);
            assert!(s.all_see_all_live());
            s
        };
        let on = join(true);
        let mut off = join(false);
        assert_eq!(on.stats.bytes_sent, off.stats.bytes_sent);
        assert!(on
            .events
            .iter()
            .any(|(_, _, e)| matches!(e, Event::PeerJoined { .. })));
        // Off, an engine queues nothing; on again, it queues.
        let e = off.engine_mut("n1");
        e.set_events(false);
        let start = Instant::now();
        e.declare_dead(start, &PeerId::from("n2"));
        assert_eq!(e.poll_event(), None);
        e.set_events(true);
        e.declare_dead(start, &PeerId::from("n3"));
        assert!(matches!(e.poll_event(), Some(Event::PeerDead { .. })));
    }

    #[test]
    fn a_liveness_timer_between_rounds_is_spent_even_after_leaving() {
        let start = Instant::now();
        let config = Config::local();
        let mut e = Engine::new(config, PeerId::from("a"), "a".into(), 1, start).unwrap();
        e.handle_tick(start);
        let ms = Duration::from_millis;
        for left in [false, true] {
            let now = e.next_tick - ms(90);
            e.next_check = Some(now + ms(10));
            if left {
                e.leaving = Some(0);
            }
            e.handle_tick(now + ms(20));
            assert!(
                e.poll_timeout() > now + ms(20),
                "left {left}: the timer stayed in the past"
            );
        }
    }

    /// Two copies of a peer race in: an old one (key `k` live, from before
    /// a delete whose tombstone was since collected) and then a copy from
    /// nothing, not a reset, whose sender collected it (floor 2). The old
    /// copy ends below that floor, so it is dropped, not topped up: `k`
    /// must go, and the floor is the sender's.
    #[test]
    fn a_copy_from_nothing_over_an_older_one_below_its_floor_replaces_it() {
        use crate::wire::{KeyValue, PeerDelta};
        use crate::PeerStatus;
        let start = Instant::now();
        let mut e = Engine::new(Config::local(), PeerId::from("r"), "r".into(), 1, start).unwrap();
        let x = PeerId::from("x");
        let delta = |to: u64, floor: u64, keys: &[(&str, u64)]| PeerDelta {
            id: x.clone(),
            generation: 7,
            addr: std::sync::Arc::new("x".to_string()),
            heartbeat: 3,
            from_version: 0,
            to_version: to,
            gc_floor: floor,
            reset: false,
            status: PeerStatus::Live,
            status_age_ms: 0,
            heartbeat_age_ms: 0,
            entries: keys
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.to_string(),
                    value: bytes::Bytes::from_static(b"v"),
                    version: *v,
                    deleted: false,
                })
                .collect(),
        };
        e.apply(start, delta(1, 0, &[("k", 1)]));
        assert!(e.get(&x, "k").is_some(), "the old copy holds k");
        e.apply(start, delta(3, 2, &[("k2", 3)]));
        assert_eq!(e.get(&x, "k"), None, "k was deleted at version 2");
        assert!(e.get(&x, "k2").is_some());
        let p = &e.peers[&x];
        assert_eq!((p.max_version, p.gc_floor), (3, 2));
    }

    /// The addresses found for each rank are those the lists of live and
    /// dead peers (not this node, not left) held at that rank, in the
    /// order the picks were drawn.
    #[test]
    fn picks_by_rank_find_the_addresses_the_lists_held() {
        use crate::select::Picks;
        use crate::state::Peer;
        use crate::PeerStatus;
        let start = Instant::now();
        let config = Config::local();
        let mut e = Engine::new(config, PeerId::from("m"), "addr-m".into(), 1, start).unwrap();
        for i in 0..30 {
            let id = format!("p{i:02}");
            let mut p = Peer::new(
                1,
                &format!("addr-{id}"),
                start,
                e.config.gossip_interval,
                &e.params,
            );
            match i % 5 {
                1 => p.set_status(PeerStatus::Dead, start),
                3 => p.set_status(PeerStatus::Left, start),
                _ => {}
            }
            e.peers.insert(PeerId::from(id), p);
        }
        let listed = |status| -> Vec<String> {
            e.peers
                .iter()
                .filter(|(id, p)| id.as_str() != "m" && p.status == status)
                .map(|(_, p)| p.addr.to_string())
                .collect()
        };
        let (live, dead) = (listed(PeerStatus::Live), listed(PeerStatus::Dead));
        assert_eq!(
            (live.len(), dead.len()),
            (18, 6),
            "this node is live and not counted"
        );
        for (ranks, dead_rank) in [
            (vec![17, 0, 9], Some(5)),
            (vec![3], None),
            (vec![], Some(0)),
            (vec![16, 17], Some(2)),
        ] {
            let picks = Picks {
                live: ranks.clone(),
                dead: dead_rank,
            };
            let mut want: Vec<String> = ranks.iter().map(|&r| live[r].clone()).collect();
            want.extend(dead_rank.map(|r| dead[r].clone()));
            assert_eq!(e.addresses_at(&picks), want, "{ranks:?} {dead_rank:?}");
        }
        assert!(e.live_at("addr-p00") && !e.live_at("addr-p01") && !e.live_at("addr-m"));
    }

    #[test]
    fn a_summary_byte_is_read_near_the_held_heartbeat() {
        // Ahead by up to 191, behind by up to 64, across the byte's wrap.
        for held in [0u64, 1, 63, 64, 200, 255, 256, 1_000, 65_535, 1 << 40] {
            for d in -64i64..192 {
                let truth = held as i64 + d;
                if truth < 0 {
                    continue;
                }
                let got = summary_heartbeat(held, truth as u8);
                assert_eq!(got, Some(truth as u64), "held {held}, truth {truth}");
            }
        }
    }
}
