//! Monitored liveness (`Config::monitors` above 0): Akka cluster's design
//! under Scuttlebutt's state.
//!
//! With relayed liveness (the default) every node times every peer from the
//! heartbeats that every exchange relays, so a round's traffic and work grow
//! with the cluster. Here the live peers a node holds form a ring in id
//! order, and each node watches its `monitors` neighbours on either side:
//!
//! - **Beats.** Every round a node sends each neighbour a *beat*: a Syn
//!   whose digest is the table's summary (hash and size, no heartbeat bytes)
//!   with the node's own heartbeat. The receiver takes the heartbeat, and
//!   if it watches the sender, a direct sample for its detector of it (a
//!   beat from one it does not watch is no sample: its gap would run from
//!   whenever the clock last ran); if the summaries match,
//!   nothing is answered, and if they differ it answers with its full
//!   digest, as for any mismatched summary, so a neighbour that missed news
//!   pulls it (unless the tables' sizes differ while the receiver is still
//!   learning its cluster: a join's gossip carries that). A round with nothing new costs `2 * monitors` small frames a
//!   node, whatever the cluster's size.
//! - **Verdicts.** Only a node's watchers time it (with phi accrual over the
//!   beats, as before), and a death they find travels with the state: a
//!   digest entry or delta that holds the peer dead with a heartbeat no
//!   older than the receiver's is believed (`take_verdict`), made news, and
//!   so spreads with `fanout` partners a round. A node that holds the peer
//!   dead and hears it live with no newer heartbeat answers with its entry,
//!   so the verdict reaches the stale side of an exchange too. A peer held
//!   dead is revived by its own word (a beat, its own digest entry) or by
//!   a live delta whose age a fresh detector accepts, never
//!   by another node's bare entry, which carries no age (see `contest` for
//!   the node that holds such a peer live).
//! - **Indirect probe.** A watcher whose neighbour's deadline passes does
//!   not give its verdict at once: it asks [`PROBE_HELPERS`] peers about it
//!   (a `Probe` frame; SWIM's ping-req). The neighbour's other watchers
//!   come first and answer from their own beats; when there are fewer than
//!   that (one monitor a side leaves one), the next peers out in the ring
//!   make up the number: they do not time the neighbour, so they ping it
//!   (a `Probe` to the neighbour itself, answered with its heartbeat) and
//!   pass its answer on, or deny if none came within half a round
//!   ([`PING_WAIT`] at most). An
//!   answer with a beat the asker did not have, more recent than the
//!   asker's last, refutes the silence: the asker takes its heartbeat and
//!   restarts its clock, and the link between the two was at fault. The
//!   verdict comes once every helper has denied (a ping's wait after the
//!   deadline, then spread at once) or after two waits of up to
//!   [`PROBE_ROUNDS`] rounds each ([`PROBE_WAIT`]): a wait that ends with
//!   an answer missing is asked again, other helpers first.
//! - **Views that differ.** A node beats the neighbours of its own view.
//!   One it stops counting as a neighbour keeps getting beats for a while
//!   ([`LINGER_ROUNDS`]), so a watcher that has not yet learned of the node that
//!   came between them does not find the node silent; and a neighbour that
//!   has not been heard from directly since it became one (it may not count
//!   this node as its neighbour yet) is asked about at its deadline like any
//!   other: the helpers ping it, and it answers them.
//!
//! Relayed liveness asks before a verdict too (`suspect`, from
//! `check_liveness`): every node times every peer there, so the helpers (the
//! silent peer's nearest live peers in the ring) answer at once from what
//! they hold, the heartbeat and how long since it came, without pinging
//! it; a newer heartbeat heard more recently than the asker's is taken with
//! the asker's clock set to when the helper heard it. A lost run of the
//! relays that carry one peer's heartbeat to one node then costs a few
//! small frames instead of a false death, and a crash costs one round trip
//! before the verdict. At most [`MAX_SUSPECTS`] peers are asked about at a
//! time, in either mode; a silence beyond them waits its turn, and gets its
//! verdict without asking once it lasts twice what the detector allows.
//!
//! Heartbeats that arrive through relays still move the held heartbeat (it
//! orders verdicts and revivals) but are not detector samples: a detector
//! times a peer's beats only. The ring is in id order, so with ids that
//! follow failure domains (a rack's nodes named alike) a neighbour is
//! likelier to fail with the node it watches; a partition is then found a
//! few neighbours at a time, as each side's ring closes over the dead.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::stamp::Stamp;
use crate::stats::Counters;
use crate::wire::{Body, Digest, Probe, Sender};
use crate::{Event, PeerId, PeerStatus};

/// Rounds a former neighbour keeps getting beats. A node drops a
/// neighbour when it learns of a peer between them, which the neighbour
/// may not know yet: the neighbour's summary then differs, so each of these
/// beats makes it answer with its digest and pull the newcomer (one
/// exchange, three frames). Six beats leave about 4e-4 odds at 10% loss
/// that none of those exchanges completes before the neighbour's detector
/// (about five rounds of silence, twice that without local evidence)
/// would find the node silent; it usually hears of the newcomer by gossip
/// first anyway.
pub(crate) const LINGER_ROUNDS: u32 = 6;

/// The most other watchers a silent neighbour is asked about before a
/// verdict (memberlist's `IndirectChecks` is also 3).
pub(crate) const PROBE_HELPERS: usize = 3;

/// The most rounds a watcher waits for the answers to its indirect probes
/// before its verdict stands anyway (the helpers gone too, or their
/// answers lost); see [`PROBE_WAIT`]. When the peer is dead and its helpers
/// live, their answers settle it within a round trip.
pub(crate) const PROBE_ROUNDS: u32 = 3;

/// The wait for those answers when rounds are long: at least a round, and
/// no longer than this if a round is shorter; 600 ms covers a lost TCP
/// segment's first two retransmissions (200 ms minimum RTO, then 400 ms),
/// which is three LAN rounds. Helpers that are dead too (neighbours that
/// crashed together) never answer, so the wait is added to their
/// detection: with 1 s rounds three rounds made it 10.1 s instead of 7.1.
/// A wait that ends with an answer missing is asked again, the silent
/// helpers last (`Engine::suspect`): in a crash they are passed over, but
/// across a partition the second asking's far helpers do not answer
/// either, and each step of the wave waits twice (`partition_wave`: 5.47
/// to 6.83 s at 50 ms rounds, 89.2 to 97.9 s at 1 s; bench/NOTES.md).
pub(crate) const PROBE_WAIT: Duration = Duration::from_millis(600);

/// How long a helper that pinged a silent peer for other watchers waits
/// for its answer before it denies: half a round, at most this. A live
/// peer on a LAN answers within a millisecond or two; a dead one never
/// does, and every helper's denial is what lets the verdict come before
/// the asker's own wait runs out.
pub(crate) const PING_WAIT: Duration = Duration::from_millis(100);

/// The most peers a node asks about at once (suspects under indirect
/// probe); a silence beyond it waits its turn, and gets its verdict without
/// asking once it lasts twice what the detector allows (the bound local
/// health waits to). It used to get its verdict at once, which at 50% loss
/// gave nearly every false death (`loss_deaths 50 0.5 30 10`: 189 at
/// 43c66e4, 21 at d060b93; bench/NOTES.md).
/// Many silences at once are a crash of many, a partition, or
/// this node's own trouble (local health's case), not a lost relay; asking
/// about each, every round, is what made 1,000 nodes joining on 2 cores
/// (`gossip-bench stable`) converge in 42 s instead of 12, with 244 MiB of
/// frames queued.
pub(crate) const MAX_SUSPECTS: usize = 8;

/// The most bytes `Engine::vouch_for` may add to one delta: a heartbeat
/// age's varint grows from one byte to at most ten.
pub(crate) const AGE_SLACK: usize = 9;

/// The most peers a node contests at once (`Engine::contest`): pings each
/// round to peers it holds live that others hold dead with an older
/// heartbeat.
pub(crate) const MAX_CONTESTS: usize = 8;

/// The most peers a node pings on other watchers' behalf at once; a
/// question beyond it is answered at once from what the node holds.
pub(crate) const MAX_RELAYS: usize = 16;

/// The most askers one such ping answers (a peer has `2 * monitors`
/// watchers; this bounds what a node keeps for questions it was sent).
pub(crate) const MAX_RELAY_ASKERS: usize = 8;

/// What a node keeps for monitored liveness: its neighbours and the former
/// ones it still beats. A few entries, whatever the cluster's size.
#[derive(Debug, Default)]
pub(crate) struct Monitor {
    /// The ring neighbours this node watches (and beats).
    watching: BTreeMap<PeerId, Watch>,
    /// Former neighbours still sent beats until the given time.
    lingering: BTreeMap<PeerId, Instant>,
    /// Neighbours found silent whose other watchers were asked about them.
    suspects: BTreeMap<PeerId, Suspect>,
    /// Peers this node pinged for other watchers (it does not time them):
    /// the answer is passed on, or a denial when the wait is over.
    relays: BTreeMap<PeerId, Relay>,
    /// The start of the last round at which this node was whole: every
    /// neighbour it watches had beaten it since becoming one and was within
    /// its deadline, none was under probe, and no wave of deaths was
    /// running (see `Engine::vouch`). Its live peers were live as far as it
    /// could tell then: a crash among them would have come as a verdict
    /// within a detection time, unless a partition cut it off, which its
    /// own neighbours or the wave's deaths show. Deltas report a live peer
    /// held since then as heard no earlier (`Engine::vouch_for`).
    vouched: Option<Instant>,
    /// The last two peers this node took for dead (its own verdicts and
    /// those it believed), with when: deaths of two peers that follow each
    /// other within `Engine::wave_window` are a wave, and no node vouches
    /// while one runs. The same peer twice (a flapping peer, a verdict taken
    /// again after a revival) only moves the time.
    deaths: [Option<(PeerId, Instant)>; 2],
    /// Peers held live that a verdict with an older heartbeat called dead,
    /// pinged every round until they answer or the deadline given passes
    /// (see `Engine::contest`).
    contests: BTreeMap<PeerId, Instant>,
    /// The round at which `Engine::check_contests` last ran: a round that
    /// comes later than one interval after it finds this node stalled, and
    /// moves the contests' deadlines by the delay.
    contests_checked: Option<Instant>,
    /// Until when this node does not vouch: a contest was refused for want
    /// of room (all [`MAX_CONTESTS`] taken), so a peer it holds live may be
    /// one a verdict called dead that it has not timed (see `contest`).
    contests_refused_until: Option<Instant>,
}

/// A ping sent on other watchers' behalf (SWIM's ping-req).
#[derive(Debug)]
struct Relay {
    /// The generation asked about.
    generation: u64,
    /// The askers' addresses.
    askers: Vec<String>,
    /// When the askers get a denial if the peer has not answered.
    until: Instant,
}

/// A silent neighbour under indirect probe.
#[derive(Debug, Clone)]
struct Suspect {
    /// Helpers asked that have not answered yet: a denial counts once per
    /// helper asked, and not at all from a node that was not asked.
    waiting: Vec<PeerId>,
    /// Helpers that answered without having heard it lately.
    denied: usize,
    /// When the verdict stands without the missing answers.
    until: Instant,
    /// Whether this is the second asking (the first wait ended with an
    /// answer missing).
    again: bool,
}

/// One watched neighbour.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// Whether a beat has come from it since it became a neighbour.
    heard: bool,
    /// When the last beat came (its detector's clock may have been
    /// restarted since, by a refuted probe).
    last_beat: Option<Instant>,
    /// The peer's detector clock before this node started timing it: what
    /// the node had heard of it until then. The clock restarts when a
    /// neighbour is taken on, so until its first beat this is the age a
    /// delta reports (an island's new neighbour across the cut must not
    /// look freshly heard).
    before: Instant,
    /// When it became a neighbour (its clock restarted then).
    since: Instant,
}

impl Monitor {
    /// When the last beat of watched neighbour `id` came, if one has since
    /// it became a neighbour (its detector's clock may have been restarted
    /// since, by a refuted probe).
    fn last_beat(&self, id: &PeerId) -> Option<Instant> {
        self.watching.get(id).and_then(|w| w.last_beat)
    }

    /// Whether this node watches `id` now.
    pub(crate) fn watches(&self, id: &PeerId) -> bool {
        self.watching.contains_key(id)
    }
}

impl Engine {
    /// Whether liveness is monitored (`Config::monitors` above 0).
    pub(crate) fn monitored(&self) -> bool {
        self.config.monitors > 0
    }

    /// The peers this node watches now, sorted (empty with relayed liveness).
    pub fn watched_peers(&self) -> Vec<PeerId> {
        self.monitor.watching.keys().cloned().collect()
    }

    /// The live peers next to this node in the id ring: up to `monitors`
    /// on either side, fewer when the cluster is small.
    fn ring_neighbours(&self) -> Vec<PeerId> {
        let mut out = self.ring_around(&self.id, self.config.monitors);
        out.sort();
        out.dedup();
        out
    }

    /// The live peers next to `center` in the id ring as this node holds
    /// it, `k` on either side (fewer when the ring is small), nearest first,
    /// alternating sides; `center` itself excluded, duplicates possible
    /// when the ring is short.
    fn ring_around(&self, center: &PeerId, k: usize) -> Vec<PeerId> {
        use std::ops::Bound::{Excluded, Unbounded};
        let live = |(id, p): &(&PeerId, &crate::state::Peer)| {
            p.status == PeerStatus::Live && *id != center
        };
        // The peers after `center`, and those before it.
        let above = || self.peers.range((Excluded(center), Unbounded));
        let below = || self.peers.range(..center);
        let mut after = above().chain(below()).filter(live).take(k);
        let mut before = below().rev().chain(above().rev()).filter(live).take(k);
        let mut out = Vec::with_capacity(2 * k);
        loop {
            let (a, b) = (after.next(), before.next());
            if a.is_none() && b.is_none() {
                return out;
            }
            out.extend(a.into_iter().chain(b).map(|(id, _)| id.clone()));
        }
    }

    /// Brings the watched set up to date with the ring at the start of a
    /// round: a new neighbour's detector clock starts now; a former one
    /// lingers (keeps getting beats) for [`LINGER_ROUNDS`].
    pub(crate) fn update_neighbours(&mut self, now: Instant) {
        let neighbours = self.ring_neighbours();
        let linger = self.config.gossip_interval * LINGER_ROUNDS;
        let old = std::mem::take(&mut self.monitor.watching);
        for (id, w) in old.iter().filter(|(id, _)| !neighbours.contains(id)) {
            self.monitor.lingering.insert(id.clone(), now + linger);
            // Never heard while watched: its clock goes back to what this
            // node had heard of it before, unless news came since. Left
            // at the restart, it would date the node's deltas of the peer
            // (their age) from then: an island's node whose wave made a
            // crashed peer its neighbour for a round, then a heal took it
            // back, handed it on as heard a second before (chaos seed 29
            // at 60 nodes).
            if !w.heard {
                if let Some(p) = self.peers.get_mut(id) {
                    if p.detector.last_stamp() == Stamp::of(w.since) {
                        p.detector.reset_clock(w.before, &self.params);
                    }
                }
            }
        }
        for id in neighbours {
            let watch = match old.get(&id) {
                Some(w) => *w,
                None => {
                    let mut before = now;
                    if let Some(p) = self.peers.get_mut(&id) {
                        before = p.detector.last();
                        p.detector.reset_clock(now, &self.params);
                    }
                    Watch {
                        heard: false,
                        last_beat: None,
                        before,
                        since: now,
                    }
                }
            };
            self.monitor.lingering.remove(&id);
            self.monitor.watching.insert(id, watch);
        }
        let peers = &self.peers;
        self.monitor.lingering.retain(|id, until| {
            *until > now && peers.get(id).is_some_and(|p| p.status == PeerStatus::Live)
        });
        let watching = &self.monitor.watching;
        self.monitor.suspects.retain(|id, _| {
            watching.contains_key(id) && peers.get(id).is_some_and(|p| p.status == PeerStatus::Live)
        });
    }

    /// At the start of a round, after `update_neighbours`: whether this
    /// node is whole (see `Monitor::vouched`), and if so, that it vouches
    /// for its live peers as of now. A neighbour not heard from since it
    /// became one leaves the node unvouched: a node cut off from the rest
    /// (an island) finds the far side dead one new neighbour at a time, and
    /// each of those is unheard until found dead.
    pub(crate) fn vouch(&mut self, now: Instant) {
        // A wave runs while the last death is within the window and came
        // within the window of the one before it.
        let window = self.wave_window(now);
        let wave = match &self.monitor.deaths {
            [Some((_, before)), Some((_, last))] => {
                now.saturating_duration_since(*last) <= window
                    && last.saturating_duration_since(*before) <= window
            }
            _ => false,
        };
        let refused = self
            .monitor
            .contests_refused_until
            .is_some_and(|until| now <= until);
        let whole = !wave
            && !refused
            && self.monitor.suspects.is_empty()
            && self.monitor.watching.iter().all(|(id, w)| {
                self.peers.get(id).is_none_or(|p| {
                    p.status != PeerStatus::Live || (w.heard && now <= p.detector.deadline())
                })
            });
        if whole {
            self.monitor.vouched = Some(now);
        }
    }

    /// A death taken (found here or believed from a verdict), for `vouch`.
    pub(crate) fn note_death(&mut self, now: Instant, id: &PeerId) {
        if !self.monitored() {
            return;
        }
        let deaths = &mut self.monitor.deaths;
        match &mut deaths[1] {
            Some((last, at)) if last == id => *at = now,
            _ => *deaths = [deaths[1].take(), Some((id.clone(), now))],
        }
    }

    /// How long a wave of verdicts takes between two deaths, four times
    /// over (loss bursts stretch a step: twice was too little at 60 nodes,
    /// chaos seed 50): the side of a partition finds the other dead one new neighbour at a
    /// time, each timed from when it became one (a fresh detector's
    /// deadline) and asked about before the verdict (`probe_wait`, twice
    /// when the far helpers do not answer: then the four times are about
    /// three, and the 60-node chaos sweep, seeds 1 to 100, passes). While
    /// deaths come closer than this, the nodes of a partition's side that
    /// are not at the cut (whose own neighbours are fine) do not vouch for
    /// the far side they still hold live: chaos seed 572, where a node
    /// whose neighbours were all reachable vouched for a peer that had
    /// crashed on the other side of the cut 96 s before.
    fn wave_window(&self, now: Instant) -> Duration {
        // The interval a new neighbour's detector starts from.
        let interval = self.expected_interval();
        let fresh = crate::phi::Detector::new(now, interval, &self.params)
            .deadline()
            .saturating_duration_since(now);
        4 * (fresh + self.probe_wait())
    }

    /// How long ago this node last vouched for its live peers (see
    /// `Monitor::vouched`), in milliseconds; `u64::MAX` if it never has.
    pub(crate) fn vouched_age_ms(&self, now: Instant) -> u64 {
        self.monitor
            .vouched
            .map_or(u64::MAX, |at| silence_ms(now, at))
    }

    /// The heartbeat ages of live deltas, monitored: for a peer held since
    /// the last round this node was whole (see `Monitor::vouched`), no
    /// older than that round; for a neighbour not heard from since it
    /// became one, what the node had heard of it before (its clock
    /// restarted then). A peer learned since keeps the age it came with.
    ///
    /// An age may grow here beyond what `delta::build` sized it at (an
    /// unheard neighbour's), by at most `AGE_SLACK` bytes a delta: the
    /// callers keep `vouch_slack` bytes of the frame for it.
    pub(crate) fn vouch_for(&self, now: Instant, deltas: &mut [crate::wire::PeerDelta]) {
        let vouched = self.monitor.vouched.map(Stamp::of);
        let vouched_ms = self.vouched_age_ms(now);
        for d in deltas.iter_mut().filter(|d| d.status == PeerStatus::Live) {
            if let Some(w) = self.monitor.watching.get(&d.id).filter(|w| !w.heard) {
                d.heartbeat_age_ms = silence_ms(now, w.before);
            }
            // Not for a peer whose life is contested (`contest`): until
            // the answers come, nobody may be timing it.
            let held_then = vouched
                .is_some_and(|v| self.peers.get(&d.id).is_some_and(|p| p.status_since() <= v))
                && !self.contested(&d.id);
            if held_then {
                d.heartbeat_age_ms = d.heartbeat_age_ms.min(vouched_ms);
            }
        }
    }

    /// The bytes of a frame kept back for `vouch_for` (monitored only):
    /// `AGE_SLACK` for each neighbour, the deltas whose ages it may raise.
    pub(crate) fn vouch_slack(&self) -> usize {
        if self.monitored() {
            AGE_SLACK * self.monitor.watching.len()
        } else {
            0
        }
    }

    /// Sends this round's beats: the summary and this node's heartbeat to
    /// every neighbour and lingering former neighbour.
    pub(crate) fn send_beats(&mut self) {
        let heartbeat = self.peers[&self.id].heartbeat;
        let to: Vec<String> = self
            .monitor
            .watching
            .keys()
            .chain(self.monitor.lingering.keys())
            .filter_map(|id| self.peers.get(id))
            .map(|p| p.addr.to_string())
            .collect();
        if to.is_empty() {
            return;
        }
        let mut summary = self.summary();
        summary.heartbeat = heartbeat;
        for addr in to {
            let d = Digest {
                summary: Some(summary.clone()),
                ..Digest::default()
            };
            Counters::add(&self.counters.beats_out, 1);
            self.send_with(addr, Body::Syn(d), Vec::new());
        }
    }

    /// A beat from `sender` with its heartbeat `hb`: a direct sample for
    /// the detector (a dead peer that beats again is live); from a
    /// contested peer, the contest's end as its answer would be
    /// (`end_contest`).
    pub(crate) fn on_beat(&mut self, now: Instant, sender: &Sender, hb: u64) {
        Counters::add(&self.counters.beats_in, 1);
        // Only a watched neighbour's beats are samples: its clock started
        // when it became one. A beat from a node this one does not time (it
        // counts this node as its neighbour, or lingers) may come after
        // minutes without one, and as a sample that gap widened the
        // detector for good: a watcher that had been beaten so took 300 s
        // to find a crash (chaos seed 17, monitored).
        let watched = match self.monitor.watching.get_mut(&sender.id) {
            Some(w) => {
                w.heard = true;
                w.last_beat = Some(now);
                true
            }
            None => false,
        };
        self.monitor.suspects.remove(&sender.id);
        let answered =
            self.contested(&sender.id) && self.end_contest(now, &sender.id, sender.generation);
        let Some(p) = self.peers.get_mut(&sender.id) else {
            return;
        };
        let revived = p.take_heartbeat(
            Stamp::of(now),
            sender.generation,
            hb,
            true,
            watched,
            &self.params,
        );
        if answered {
            // A contest ended by the peer's beat: heard now, as by its
            // answer to a ping (`on_contest_ack`). A contested peer is not
            // watched, so the beat was no sample and the clock had stayed
            // where it was.
            p.detector.reset_clock(now, &self.params);
        }
        if revived {
            self.revived(&sender.id);
        }
    }

    /// A watched neighbour `id` (with relayed liveness: any peer) is
    /// overdue and would be declared dead: SWIM's indirect probe, on
    /// monitored liveness's terms (relayed: the helpers answer from their
    /// tables, see the module's doc). The first time,
    /// ask up to [`PROBE_HELPERS`] of its other watchers (its ring
    /// neighbours as this node holds the ring) when they last heard it, and
    /// wait; the verdict comes when every helper has answered that it has
    /// not heard the peer lately either, or after `probe_wait` twice (the
    /// second asking goes to other helpers where there are some). With [`MAX_SUSPECTS`]
    /// asked about already, the verdict waits until `patience`.
    /// Returns whether the verdict stands now (no helper to ask, the wait
    /// is over, or the patience). A loss-ridden or stalled link between this node and the
    /// peer then costs some small frames instead of a false death.
    pub(crate) fn suspect(&mut self, now: Instant, id: &PeerId, patience: Instant) -> bool {
        let mut again = false;
        // The helpers that did not answer the first asking.
        let mut skip: Vec<PeerId> = Vec::new();
        let stamp = Stamp::of(now);
        if let Some(s) = self.monitor.suspects.get(id) {
            // A helper gone silent itself since it was asked (a suspect;
            // relayed, past its own deadline) will not answer: neighbours
            // that crashed together. The others' denials suffice
            // (`crash_detect 50 10 50 0 3`: 0.490 s waiting for it at
            // c5c0ad6, 0.395 s since; bench/NOTES.md).
            let waiting: Vec<PeerId> = s
                .waiting
                .iter()
                .filter(|h| !self.is_silent(h, stamp))
                .cloned()
                .collect();
            let s = self.monitor.suspects.get_mut(id).expect("read above");
            s.waiting = waiting;
            if s.waiting.is_empty() && s.denied > 0 {
                return true;
            }
            if now < s.until {
                return false;
            }
            // An answer missing at the end of the wait: this node's own
            // links may be losing frames as surely as the peer (and its
            // helpers) may be gone, and a denial that came says only that
            // one helper's ping was not answered. Ask once more before the
            // verdict, other helpers where there are some: helpers that
            // crashed with the peer are passed over (their live neighbours
            // deny within a round trip), and a live peer behind a lossy
            // link gets new paths. Only when the first wait brought not one
            // answer used to be asked again (at 50% loss it removed about
            // two in three relayed false deaths in a scratch build without
            // it); with a denial or two and the rest lost, the verdict
            // stood, and monitored liveness at 30% loss and 1 s rounds
            // (`loss_deaths 50 0.3 120 100 1000 1`) took 422 false deaths
            // over the 100 seeds, 0 since (bench/NOTES.md).
            if s.again {
                return true;
            }
            let s = self.monitor.suspects.remove(id).expect("read above");
            skip = s.waiting;
            again = true;
        } else if self.monitor.suspects.len() >= MAX_SUSPECTS {
            // Its turn to be asked waits; the verdict without asking comes
            // only once the silence is past `patience` (twice what the
            // detector allows, as local health's bound).
            return now > patience;
        }
        let Some(p) = self.peers.get(id) else {
            return true;
        };
        // Its other watchers first (nearest in the ring), then, when
        // there are fewer than PROBE_HELPERS, the next peers out: they do
        // not time it, so they ping it (more paths to it than one other
        // watcher's link). Not one that is silent itself: in a crash of
        // many the nearest in the ring went with the peer and would never
        // answer.
        let mut helpers = self.ring_around(id, self.config.monitors + 2 * PROBE_HELPERS);
        helpers.retain(|h| *h != self.id && !self.is_silent(h, stamp));
        let mut seen = std::collections::BTreeSet::new();
        helpers.retain(|h| seen.insert(h.clone()));
        // Asking again: those that did not answer last, after the others.
        helpers.sort_by_key(|h| skip.contains(h));
        helpers.truncate(PROBE_HELPERS);
        if helpers.is_empty() {
            return true;
        }
        let probe = Probe {
            target: id.clone(),
            generation: p.generation,
            heartbeat: p.heartbeat,
            silence_ms: silence_ms(now, self.monitor.last_beat(id).unwrap_or(p.detector.last())),
            timed: false,
        };
        let addrs: Vec<String> = helpers
            .iter()
            .filter_map(|h| self.peers.get(h))
            .map(|h| h.addr.to_string())
            .collect();
        tracing::debug!(node = %self.id, peer = %id, helpers = addrs.len(), "neighbour silent: asking its other watchers");
        Counters::add(&self.counters.probes_out, addrs.len() as u64);
        self.monitor.suspects.insert(
            id.clone(),
            Suspect {
                waiting: helpers,
                denied: 0,
                until: now + self.probe_wait(),
                again,
            },
        );
        for addr in addrs {
            self.send_with(addr, Body::Probe(probe.clone()), Vec::new());
        }
        false
    }

    /// Whether peer `h` is silent as far as this node knows: a suspect or,
    /// relayed (where every peer is timed), past its detector's deadline.
    fn is_silent(&self, h: &PeerId, stamp: Stamp) -> bool {
        self.monitor.suspects.contains_key(h)
            || (!self.monitored()
                && self
                    .peers
                    .get(h)
                    .is_some_and(|p| stamp > p.detector.deadline_stamp()))
    }

    /// When the first of the current suspects' waits for their helpers
    /// ends, if any.
    pub(crate) fn first_suspect_wait(&self) -> Option<Instant> {
        self.monitor.suspects.values().map(|s| s.until).min()
    }

    /// With relayed liveness, forgets the suspects not in `overdue` (sorted,
    /// as the table walk found them): their heartbeat came round before the
    /// helpers answered.
    pub(crate) fn forget_suspects_except(&mut self, overdue: &[(PeerId, Instant)]) {
        if !self.monitor.suspects.is_empty() {
            self.monitor
                .suspects
                .retain(|id, _| overdue.binary_search_by(|(o, _)| o.cmp(id)).is_ok());
        }
    }

    /// How long a watcher waits for its helpers' answers: up to
    /// [`PROBE_ROUNDS`] rounds, at least one, [`PROBE_WAIT`] in between.
    fn probe_wait(&self) -> Duration {
        let round = self.config.gossip_interval;
        (round * PROBE_ROUNDS).min(round.max(PROBE_WAIT))
    }

    /// Answers another watcher's question about `q.target` with this
    /// node's heartbeat of it and, if it times the peer itself, how long
    /// since its last beat. A node that does not time the peer pings it
    /// instead (SWIM's ping-req) and passes its answer on, or this denial
    /// if none came within half a round ([`PING_WAIT`] at most). A question about this node itself
    /// is such a ping: the answer is its own heartbeat.
    pub(crate) fn on_probe(&mut self, now: Instant, sender: &Sender, q: Probe) {
        Counters::add(&self.counters.probes_in, 1);
        if q.target == self.id {
            let me = &self.peers[&self.id];
            let answer = Probe {
                target: q.target,
                generation: me.generation,
                heartbeat: me.heartbeat,
                silence_ms: 0,
                timed: true,
            };
            self.send_with(sender.addr.clone(), Body::ProbeAck(answer), Vec::new());
            return;
        }
        let answer = self.probe_answer(now, &q.target, q.generation);
        let target = self
            .peers
            .get(&q.target)
            .filter(|p| p.generation == q.generation && p.status == PeerStatus::Live);
        if let (false, Some(p)) = (answer.timed, target) {
            let relays = &mut self.monitor.relays;
            if let Some(r) = relays.get_mut(&q.target) {
                // Already pinged for another asker: this one hears too.
                if r.generation == q.generation && r.askers.len() < MAX_RELAY_ASKERS {
                    if !r.askers.contains(&sender.addr) {
                        r.askers.push(sender.addr.clone());
                    }
                    return;
                }
            } else if relays.len() < MAX_RELAYS {
                let ping = Probe {
                    target: q.target.clone(),
                    generation: q.generation,
                    heartbeat: p.heartbeat,
                    silence_ms: 0,
                    timed: false,
                };
                let addr = p.addr.to_string();
                let until = now + (self.config.gossip_interval / 2).min(PING_WAIT);
                relays.insert(
                    q.target,
                    Relay {
                        generation: q.generation,
                        askers: vec![sender.addr.clone()],
                        until,
                    },
                );
                Counters::add(&self.counters.pings_out, 1);
                self.send_with(addr, Body::Probe(ping), Vec::new());
                return;
            }
        }
        self.send_with(sender.addr.clone(), Body::ProbeAck(answer), Vec::new());
    }

    /// What this node can say of `target` (of `generation`) from what it
    /// holds: its heartbeat and, if it times the peer, the silence since.
    fn probe_answer(&self, now: Instant, target: &PeerId, generation: u64) -> Probe {
        let held = self
            .peers
            .get(target)
            .filter(|p| p.generation == generation);
        // Relayed, every node times every peer from the heartbeats that
        // come round: its answer is when its held heartbeat came.
        let last_beat = if self.monitored() {
            self.monitor.last_beat(target)
        } else {
            held.map(|p| p.detector.last())
        }
        .filter(|_| held.is_some_and(|p| p.status == PeerStatus::Live));
        Probe {
            target: target.clone(),
            generation,
            heartbeat: held.map_or(0, |p| p.heartbeat),
            silence_ms: last_beat.map_or(0, |t| silence_ms(now, t)),
            timed: last_beat.is_some(),
        }
    }

    /// The pings sent for other watchers that the peer has not answered by
    /// now, their wait over: each asker gets this node's own answer (a
    /// denial).
    pub(crate) fn expire_relays(&mut self, now: Instant) {
        let due: Vec<PeerId> = self
            .monitor
            .relays
            .iter()
            .filter(|(_, r)| r.until <= now)
            .map(|(target, _)| target.clone())
            .collect();
        for target in due {
            if let Some(r) = self.monitor.relays.remove(&target) {
                let answer = self.probe_answer(now, &target, r.generation);
                self.answer_askers(r.askers, &answer);
            }
        }
    }

    /// Sends `answer` to every asker of a ping.
    fn answer_askers(&mut self, askers: Vec<String>, answer: &Probe) {
        for addr in askers {
            self.send_with(addr, Body::ProbeAck(answer.clone()), Vec::new());
        }
    }

    /// When the next ping for other watchers runs out of time, if any.
    pub(crate) fn next_relay_deadline(&self) -> Option<Instant> {
        self.monitor.relays.values().map(|r| r.until).min()
    }

    /// A pinged peer's own answer (it is `sender`): passed on to the
    /// watchers that asked, as the answer of one that heard it just now.
    fn on_ping_ack(&mut self, sender: &Sender, a: &Probe) -> bool {
        if sender.id != a.target {
            return false;
        }
        let Some(r) = self.monitor.relays.remove(&a.target) else {
            return false;
        };
        let answer = Probe {
            silence_ms: 0,
            timed: true,
            ..a.clone()
        };
        self.answer_askers(r.askers, &answer);
        true
    }

    /// Another watcher's answer about a silent neighbour: it had a beat
    /// this node did not (a newer heartbeat), more recently than this
    /// node's last, so the peer lives and the link between the two is at
    /// fault (take the heartbeat, restart the clock without a sample); or
    /// it did not, and when every helper has said so the verdict stands.
    /// A dead peer's watchers end up holding the same last heartbeat, so
    /// none of them is refuted more than once for it.
    pub(crate) fn on_probe_ack(&mut self, now: Instant, sender: &Sender, a: Probe) {
        if self.on_ping_ack(sender, &a) {
            return;
        }
        let last = self.monitor.last_beat(&a.target);
        let monitored = self.monitored();
        if monitored && self.on_contest_ack(now, sender, &a) {
            return;
        }
        let Some(s) = self.monitor.suspects.get_mut(&a.target) else {
            return;
        };
        let Some(p) = self.peers.get_mut(&a.target) else {
            self.monitor.suspects.remove(&a.target);
            return;
        };
        if p.status != PeerStatus::Live || p.generation != a.generation {
            self.monitor.suspects.remove(&a.target);
            return;
        }
        // Relayed, its heartbeat may have come round since it was suspected
        // (the helpers then deny only that they hold a newer one): it is
        // silent no longer.
        if !monitored && now <= p.detector.deadline() {
            self.monitor.suspects.remove(&a.target);
            return;
        }
        let silence = silence_ms(now, last.unwrap_or(p.detector.last()));
        // Relayed, the helper's heartbeat must also be recent: heard within
        // half the silence this node's detector allows. A crashed peer's
        // last heartbeat, which a node a round or two behind lacks, is no
        // sign of life and would only put its verdict off.
        let recent = monitored || {
            let allowed = p
                .detector
                .deadline()
                .saturating_duration_since(p.detector.last());
            Duration::from_millis(a.silence_ms) < allowed / 2
        };
        if a.timed && a.heartbeat > p.heartbeat && a.silence_ms < silence && recent {
            // Monitored, the clock restarts now (the beats of this link
            // were lost); relayed, when the helper had the heartbeat, as if
            // it had come round here then.
            let heard = if monitored {
                now
            } else {
                now.checked_sub(Duration::from_millis(a.silence_ms))
                    .unwrap_or(now)
            };
            p.take_answered(now, a.generation, a.heartbeat, heard, &self.params);
            self.monitor.suspects.remove(&a.target);
            Counters::add(&self.counters.probes_refuted, 1);
            tracing::debug!(node = %self.id, peer = %a.target, "silent neighbour heard by another watcher: no verdict");
            return;
        }
        let Some(at) = s.waiting.iter().position(|h| *h == sender.id) else {
            return;
        };
        s.waiting.swap_remove(at);
        s.denied += 1;
        if s.waiting.is_empty() {
            self.monitor.suspects.remove(&a.target);
            self.declare_dead(now, &a.target);
            // Reached between rounds: spread it now, as the round that
            // found it would have, rather than a round later (monitored: a
            // relayed death is this node's own and not news).
            if monitored {
                self.push_news(now);
            }
        }
    }

    /// Sends the table's summary to `fanout` live peers at random, between
    /// rounds: each whose table differs (it lacks this node's news) answers
    /// with its digest, and the news moves in the exchange that follows.
    fn push_news(&mut self, now: Instant) {
        use rand::seq::IteratorRandom;
        let me = &self.id;
        let to: Vec<String> = self
            .peers
            .iter()
            .filter(|(id, p)| p.status == PeerStatus::Live && *id != me)
            .map(|(_, p)| p.addr.to_string())
            .choose_multiple(&mut self.rng, self.config.fanout);
        for addr in to {
            let budget = self.body_budget() - 6;
            let d = self.syn_digest(budget, self.config.idle_summary, now);
            self.send_with(addr, Body::Syn(d), Vec::new());
        }
    }

    /// The watched neighbours whose deadline has passed, with the deadline,
    /// the last beat and whether one came since the neighbour became one
    /// (the caller applies local health to those). A neighbour not heard
    /// from since it became one used to get twice the patience; it is now
    /// asked about at its deadline, and its helpers' pings are what a live
    /// one that does not beat this node yet answers. Three neighbours
    /// crashed together at 1 s rounds (`crash_detect 50 10 1000 1 3`) were
    /// found by all in 22.9 s (median) with the doubled patience, 16.0 s
    /// without.
    pub(crate) fn overdue_neighbours(&self, now: Instant) -> Vec<(PeerId, Instant, Instant, bool)> {
        let mut out = Vec::new();
        for (id, w) in &self.monitor.watching {
            let Some(p) = self.peers.get(id) else {
                continue;
            };
            if p.status != PeerStatus::Live {
                continue;
            }
            let (deadline, last) = (p.detector.deadline(), p.detector.last());
            if now > deadline {
                out.push((id.clone(), deadline, last, w.heard));
            }
        }
        out
    }

    /// Gossip that holds peer `id` (of `generation`, versions up to
    /// `max_version`) `status` with heartbeat `hb`, for `age_ms`: with
    /// monitored liveness, a death held with a heartbeat no older than this
    /// node's is believed (a watcher found it), made news, and so passed
    /// on; so is a leave, once this node holds every version the sender
    /// does (a leave is taken from complete state only, as from deltas).
    /// Returns whether it was.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn take_verdict(
        &mut self,
        now: Instant,
        id: &PeerId,
        generation: u64,
        hb: u64,
        max_version: u64,
        status: PeerStatus,
        age_ms: u64,
    ) -> bool {
        if !self.monitored() || status == PeerStatus::Live || *id == self.id {
            return false;
        }
        let Some(p) = self.peers.get_mut(id) else {
            return false;
        };
        if p.generation != generation || p.status != PeerStatus::Live || hb < p.heartbeat {
            let older = p.generation == generation && p.status == PeerStatus::Live;
            if older && status == PeerStatus::Dead {
                self.contest(now, id);
            }
            return false;
        }
        if status == PeerStatus::Left && p.max_version < max_version {
            return false;
        }
        let age = Duration::from_millis(age_ms).min(self.config.dead_peer_grace);
        let before = self.table_hash.share(id, p);
        p.set_status(status, now.checked_sub(age).unwrap_or(now));
        self.table_changed(id, before);
        Counters::add(&self.counters.verdicts_taken, 1);
        if status == PeerStatus::Dead {
            self.note_death(now, id);
        }
        tracing::debug!(node = %self.id, peer = %id, ?status, "a verdict believed");
        self.events.push_back(match status {
            PeerStatus::Left => Event::PeerLeft { peer: id.clone() },
            _ => Event::PeerDead { peer: id.clone() },
        });
        self.store_peer(id);
        self.mark_hot(id, now);
        true
    }

    /// Monitored: a verdict on live peer `id` came with an older heartbeat
    /// than this node holds, so it is not believed; but unless this node
    /// times the peer, nothing it holds says the peer lives now. The higher
    /// heartbeat may be old news: a node of an island held a peer that
    /// crashed there, untimed, with its last beats, while its watchers
    /// across the cut had found it dead before them (chaos seed 29 at 60
    /// nodes: after the heal the island's nodes held it live for good and,
    /// once whole, vouched for it). So this node times the peer itself for
    /// a fresh detector's deadline, pinging it every round (a `Probe` whose
    /// target is the peer, which answers with its heartbeat), and does not
    /// vouch for it meanwhile (`vouch_for`). An answer (or a beat) ends the
    /// contest with the peer heard now; one from a newer generation (the
    /// peer restarted) is this node's verdict on the incarnation held (see
    /// `end_contest`); none by the deadline (moved by any
    /// stall of this node's rounds, see `check_contests`), and this
    /// node gives its own verdict, with the heartbeat it holds, which the
    /// other holders believe. A deadline's worth of pings, not one round
    /// trip: one lost answer must not kill a live peer, whose death every
    /// node that holds it live would then contest again. At most
    /// [`MAX_CONTESTS`] at a time; a later verdict contests again.
    pub(crate) fn contest(&mut self, now: Instant, id: &PeerId) {
        let m = &self.monitor;
        if m.watches(id) || m.contests.contains_key(id) {
            return;
        }
        let interval = self.expected_interval();
        let until = crate::phi::Detector::new(now, interval, &self.params).deadline();
        if m.contests.len() >= MAX_CONTESTS {
            // No room: vouch for nothing until a contest's deadline has
            // passed since (the verdict comes again while it is not taken,
            // and finds room then).
            self.monitor.vouched = None;
            self.monitor.contests_refused_until = Some(until);
            return;
        }
        tracing::debug!(node = %self.id, peer = %id, "an older verdict on a peer held live: pinging it");
        self.monitor.contests.insert(id.clone(), until);
        self.ping_contested(id);
    }

    /// Pings contested peer `id` (see `contest`).
    fn ping_contested(&mut self, id: &PeerId) {
        let Some(p) = self.peers.get(id) else {
            return;
        };
        let ping = Probe {
            target: id.clone(),
            generation: p.generation,
            heartbeat: p.heartbeat,
            silence_ms: 0,
            timed: false,
        };
        let addr = p.addr.to_string();
        if addr.is_empty() {
            return;
        }
        Counters::add(&self.counters.pings_out, 1);
        self.send_with(addr, Body::Probe(ping), Vec::new());
    }

    /// Once a round (monitored): each contested peer (`contest`) still held
    /// live is pinged again, or, its deadline passed, found dead.
    ///
    /// A deadline counts only the time this node ran its rounds on
    /// schedule: a round that comes late (the node stalled: a paused
    /// process, a starved thread) moves every deadline by the delay, since
    /// no ping went out meanwhile and a silence is evidence only while the
    /// node was asking. Without it a stall past the deadlines gave up to
    /// [`MAX_CONTESTS`] verdicts on the first round after it. (The
    /// detector's verdicts have local health for this: a neighbour's beats
    /// come whether or not this node runs, and wait in its queue.)
    pub(crate) fn check_contests(&mut self, now: Instant) {
        let late = self
            .monitor
            .contests_checked
            .replace(now)
            .map_or(Duration::ZERO, |last| {
                now.saturating_duration_since(last)
                    .saturating_sub(self.config.gossip_interval)
            });
        if self.monitor.contests.is_empty() {
            return;
        }
        if !late.is_zero() {
            for until in self.monitor.contests.values_mut() {
                *until += late;
            }
        }
        // A peer no longer held live, or become a neighbour (timed by this
        // node's detector from then, with the probe before a verdict), is
        // contested no more.
        let peers = &self.peers;
        let watching = &self.monitor.watching;
        self.monitor.contests.retain(|id, _| {
            !watching.contains_key(id)
                && peers.get(id).is_some_and(|p| p.status == PeerStatus::Live)
        });
        let (mut due, mut live) = (Vec::new(), Vec::new());
        for (id, until) in &self.monitor.contests {
            if *until <= now {
                due.push(id.clone());
            } else {
                live.push(id.clone());
            }
        }
        for id in due {
            self.monitor.contests.remove(&id);
            self.declare_dead(now, &id);
        }
        for id in live {
            self.ping_contested(&id);
        }
    }

    /// A contested peer's own answer to this node's ping (see `contest`):
    /// it lives, heard now. Returns whether `a` was one.
    fn on_contest_ack(&mut self, now: Instant, sender: &Sender, a: &Probe) -> bool {
        if sender.id != a.target || !self.contested(&a.target) {
            return false;
        }
        if self.end_contest(now, &a.target, a.generation) {
            if let Some(p) = self.peers.get_mut(&a.target) {
                p.take_answered(now, a.generation, a.heartbeat, now, &self.params);
            }
        }
        true
    }

    /// Contested peer `id` was heard from itself (an answer, a beat) in
    /// `generation`: the contest ends, unless that generation is older
    /// than the one held (a frame of an earlier incarnation says nothing
    /// of this one). A newer one means the peer restarted: the incarnation
    /// held is gone, and this node gives its verdict on it now, with the
    /// heartbeat it holds (the other holders believe it, or contest it and
    /// hear the same); the new incarnation replaces it when its delta
    /// comes, as a restart does. Ended on that answer, the old one stayed
    /// live, untimed and vouched for until the new one spread. Returns
    /// whether the peer is held live in `generation` (its word is taken).
    fn end_contest(&mut self, now: Instant, id: &PeerId, generation: u64) -> bool {
        let held = self
            .peers
            .get(id)
            .filter(|p| p.status == PeerStatus::Live)
            .map(|p| p.generation);
        if held.is_some_and(|g| generation < g) {
            return false;
        }
        self.monitor.contests.remove(id);
        self.monitor.suspects.remove(id);
        match held {
            Some(g) if g < generation => {
                tracing::debug!(node = %self.id, peer = %id, generation, "a contested peer answered from a new generation: the old one is dead");
                self.declare_dead(now, id);
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Whether `id`'s life is contested (see `contest`).
    pub(crate) fn contested(&self, id: &PeerId) -> bool {
        self.monitor.contests.contains_key(id)
    }

    /// [`take_verdict`](Engine::take_verdict) for what a digest entry says.
    pub(crate) fn take_entry_verdict(
        &mut self,
        now: Instant,
        e: &crate::wire::DigestEntry,
    ) -> bool {
        self.take_verdict(
            now,
            &e.id,
            e.generation,
            e.heartbeat,
            e.max_version,
            e.status,
            e.status_age_ms,
        )
    }

    /// With monitored liveness, the answer to gossip that holds live a peer
    /// this node removed (and remembers, in a generation and heartbeat no
    /// older): an entry saying how it went (dead or left), so the node that
    /// still holds it learns it is gone instead of handing it on as live.
    /// `None` otherwise.
    pub(crate) fn removed_verdict(
        &self,
        e: &crate::wire::DigestEntry,
    ) -> Option<crate::wire::DigestEntry> {
        if !self.monitored() || e.status != PeerStatus::Live {
            return None;
        }
        let r = self.removed.get(&e.id)?;
        if r.generation != e.generation || r.heartbeat < e.heartbeat {
            return None;
        }
        Some(crate::wire::DigestEntry {
            id: e.id.clone(),
            generation: r.generation,
            max_version: e.max_version,
            heartbeat: r.heartbeat,
            gc_floor: e.gc_floor,
            status: r.status,
            status_age_ms: 0,
        })
    }

    /// With monitored liveness, whether `id` is timed by this node's own
    /// detector (a neighbour); with relayed liveness every peer is.
    pub(crate) fn times(&self, id: &PeerId) -> bool {
        !self.monitored() || self.monitor.watches(id)
    }
}

/// Milliseconds from `last` to `now` (0 if `last` is later).
fn silence_ms(now: Instant, last: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(last).as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Peer;
    use crate::Config;

    /// Node `a` on `config`, started at `start`.
    fn node_a(config: Config, start: Instant) -> Engine {
        Engine::new(config, PeerId::from("a"), "a".into(), 1, start).unwrap()
    }

    /// Whether `e` vouches at `at` (its last vouch forgotten first).
    fn vouches(e: &mut Engine, at: Instant) -> bool {
        e.monitor.vouched = None;
        e.vouch(at);
        e.monitor.vouched == Some(at)
    }

    /// Node `a` (relayed liveness) holding `b`, `c`, `d`, `e` heard just
    /// now and `t` silent for 10 s, with `t` under indirect probe.
    fn suspecting_t() -> (Engine, Instant, PeerId) {
        let start = Instant::now();
        let config = Config::local();
        let mut e = node_a(config, start);
        let now = start + Duration::from_secs(10);
        for id in ["b", "c", "d", "e", "t"] {
            let heard = if id == "t" { start } else { now };
            let p = Peer::new(1, id, heard, e.config.gossip_interval, &e.params);
            e.peers.insert(PeerId::from(id), p);
        }
        e.rehash_all();
        let t = PeerId::from("t");
        assert!(!e.suspect(now, &t, now + Duration::from_secs(1)));
        (e, now, t)
    }

    /// The wave window is four steps of a partition's wave (the figures
    /// ARCHITECTURE.md quotes: 42 s at the default 1 s rounds, 3.8 s with
    /// `Config::local`), and a node stops vouching on the second death of a
    /// different peer within it, not on one death, nor on one peer twice.
    #[test]
    fn deaths_of_two_peers_within_the_wave_window_stop_vouching() {
        let start = Instant::now();
        let window = |config: Config| {
            let e = node_a(config.monitors(1), start);
            e.wave_window(start).as_secs_f64()
        };
        let (default, local) = (window(Config::default()), window(Config::local()));
        assert!((42.0..43.0).contains(&default), "{default}");
        assert!((3.8..3.9).contains(&local), "{local}");

        let mut e = node_a(Config::local().monitors(1), start);
        let step = Duration::from_secs(1);
        let (b, c) = (PeerId::from("b"), PeerId::from("c"));
        assert!(vouches(&mut e, start), "a node with nothing wrong vouches");
        e.note_death(start, &b);
        assert!(vouches(&mut e, start + step), "one death is no wave");
        e.note_death(start + step, &b);
        assert!(
            vouches(&mut e, start + 2 * step),
            "one peer twice is no wave"
        );
        e.note_death(start + 2 * step, &c);
        assert!(
            !vouches(&mut e, start + 3 * step),
            "two peers dying make a wave"
        );
        // The wave ends a window after its last death.
        assert!(vouches(&mut e, start + 2 * step + Duration::from_secs(4)));
    }

    /// A contest refused for want of room stops vouching until a fresh
    /// detector's deadline has passed: the refused peer may be one a
    /// verdict called dead, held live here untimed.
    #[test]
    fn a_contest_refused_for_room_stops_vouching_for_a_deadline() {
        let start = Instant::now();
        let mut e = node_a(Config::local().monitors(1), start);
        for i in 0..MAX_CONTESTS {
            e.contest(start, &PeerId::from(format!("p{i}")));
        }
        assert!(vouches(&mut e, start), "contests with room keep vouching");
        e.contest(start, &PeerId::from("q"));
        assert!(!e.contested(&PeerId::from("q")));
        assert!(!vouches(&mut e, start), "a refused contest stops vouching");
        let until = e.monitor.contests_refused_until.expect("refused");
        assert!(until > start);
        assert!(!vouches(&mut e, until));
        assert!(vouches(&mut e, until + Duration::from_millis(1)));
    }

    /// Node `a` (monitored, one neighbour a side) holding `b` to `e` live,
    /// heard at `start`, after its first round: it watches `b` and `e`,
    /// and `c` and `d` are held live untimed.
    fn ring_of_five(start: Instant) -> Engine {
        let mut e = node_a(Config::local().monitors(1), start);
        for id in ["b", "c", "d", "e"] {
            let p = Peer::new(1, id, start, e.config.gossip_interval, &e.params);
            e.peers.insert(PeerId::from(id), p);
        }
        e.rehash_all();
        e.handle_tick(start);
        assert_eq!(e.watched_peers(), ["b".into(), "e".into()]);
        e
    }

    /// `from` (generation `generation`), as a frame's sender.
    fn sender(from: &str, generation: u64) -> Sender {
        Sender {
            id: PeerId::from(from),
            generation,
            addr: from.to_string(),
        }
    }

    /// A round of `e` at `now`, its neighbours `b` and `e` having beaten it
    /// just before with heartbeat `hb`; the frames it sends are dropped.
    fn round(e: &mut Engine, now: Instant, hb: u64) {
        for id in ["b", "e"] {
            e.on_beat(now, &sender(id, 1), hb);
        }
        e.handle_tick(now);
        while e.poll_transmit().is_some() {}
    }

    /// A contest's deadline counts only the time this node ran its rounds:
    /// one that stalled past it (a paused process, a starved thread) had
    /// pinged no one meanwhile, and its first round must not give the
    /// verdict; the contest goes on for what was left of its deadline.
    #[test]
    fn a_stall_of_this_node_does_not_count_toward_a_contests_deadline() {
        let start = Instant::now();
        let step = Config::local().gossip_interval;
        let c = PeerId::from("c");
        // On schedule: no answer by the deadline, and the verdict.
        let mut e = ring_of_five(start);
        e.contest(start, &c);
        let until = e.monitor.contests[&c];
        let (mut now, mut hb) = (start, 1);
        while now <= until {
            assert_eq!(status(&e, &c), PeerStatus::Live);
            now += step;
            hb += 1;
            round(&mut e, now, hb);
        }
        assert_eq!(
            status(&e, &c),
            PeerStatus::Dead,
            "no answer by the deadline"
        );
        // The same contest, but this node stalls for 30 s after it began.
        let mut e = ring_of_five(start);
        e.contest(start, &c);
        let left = e.monitor.contests[&c] - start - step;
        let resumed = start + Duration::from_secs(30);
        round(&mut e, resumed, 2);
        assert_eq!(
            status(&e, &c),
            PeerStatus::Live,
            "a verdict on the first round after a stall"
        );
        assert!(e.contested(&c));
        // Pinged every round again, and found dead once what was left of
        // the deadline has passed on schedule.
        let (mut now, mut hb) = (resumed, 2);
        while status(&e, &c) == PeerStatus::Live {
            now += step;
            hb += 1;
            round(&mut e, now, hb);
            assert!(now <= resumed + left + step, "no verdict after the stall");
        }
        assert!(now > resumed + left, "the verdict came early");
    }

    /// A contested peer that answers from a new generation has restarted:
    /// the incarnation held is gone, and must not stay live, untimed and
    /// vouched for until the new one spreads. Its answer, or its beat, is
    /// this node's verdict on the old one; one from the generation held
    /// ends the contest with the peer live.
    #[test]
    fn a_contested_peers_answer_from_a_new_generation_ends_the_old_one() {
        let start = Instant::now();
        let c = PeerId::from("c");
        let now = start + Duration::from_millis(50);
        let answer = |generation| Probe {
            target: c.clone(),
            generation,
            heartbeat: 3,
            silence_ms: 0,
            timed: true,
        };
        let mut ends = Vec::new();
        for generation in [1, 2] {
            let mut e = ring_of_five(start);
            e.contest(start, &c);
            e.on_probe_ack(now, &sender("c", generation), answer(generation));
            ends.push(("answer", generation, e));
            let mut e = ring_of_five(start);
            e.contest(start, &c);
            e.on_beat(now, &sender("c", generation), 3);
            ends.push(("beat", generation, e));
        }
        for (path, generation, mut e) in ends {
            assert!(!e.contested(&c), "{path} of generation {generation}");
            let p = &e.peers[&c];
            let held = (p.generation, p.status);
            if generation == 1 {
                assert_eq!(held, (1, PeerStatus::Live), "{path}");
                assert_eq!(p.heartbeat, 3, "{path}");
                continue;
            }
            assert_ne!(
                held,
                (1, PeerStatus::Live),
                "{path} of generation 2: the old incarnation still held live"
            );
            let dead = std::iter::from_fn(|| e.poll_event())
                .any(|ev| matches!(ev, Event::PeerDead { peer } if peer == c));
            assert!(dead, "{path}: no verdict on the old incarnation");
        }
    }

    /// A contest ended by the peer's own beat leaves it as one ended by its
    /// answer to a ping: heard now, its clock restarted (a contested peer
    /// is never one this node watches, so the beat is no sample, and the
    /// clock stayed where it was: deltas then aged the peer from before
    /// the contest).
    #[test]
    fn a_contested_peers_beat_restarts_its_clock_as_its_answer_does() {
        let start = Instant::now();
        let c = PeerId::from("c");
        let now = start + Duration::from_secs(2);
        let mut by_answer = ring_of_five(start);
        by_answer.contest(now, &c);
        let answer = Probe {
            target: c.clone(),
            generation: 1,
            heartbeat: 3,
            silence_ms: 0,
            timed: true,
        };
        by_answer.on_probe_ack(now, &sender("c", 1), answer);
        let mut by_beat = ring_of_five(start);
        by_beat.contest(now, &c);
        by_beat.on_beat(now, &sender("c", 1), 3);
        for (path, e) in [("answer", &by_answer), ("beat", &by_beat)] {
            assert!(!e.contested(&c), "{path}");
            let p = &e.peers[&c];
            assert_eq!((p.status, p.heartbeat), (PeerStatus::Live, 3), "{path}");
            assert_eq!(p.detector.last_stamp(), Stamp::of(now), "{path}: the clock");
        }
    }

    /// A beat from a peer this node does not watch is no sample: its gap
    /// runs from whenever the clock last ran (here, 200 s), and taken as
    /// one it set the deadline minutes out once the peer became a
    /// neighbour (chaos seed 17, monitored: a crash found after 275 s).
    #[test]
    fn a_beat_from_a_peer_not_watched_is_no_sample() {
        let start = Instant::now();
        let config = Config::local().monitors(1);
        let mut e = node_a(config, start);
        for id in ["b", "c", "d", "e"] {
            let p = Peer::new(1, id, start, e.config.gossip_interval, &e.params);
            e.peers.insert(PeerId::from(id), p);
        }
        e.rehash_all();
        e.update_neighbours(start);
        let c = PeerId::from("c");
        assert_eq!(e.watched_peers(), ["b".into(), "e".into()]);
        // c counts this node as its neighbour (its view differs) and beats it.
        let now = start + Duration::from_secs(200);
        let sender = Sender {
            id: c.clone(),
            generation: 1,
            addr: "c".into(),
        };
        e.on_beat(now, &sender, 5);
        assert_eq!(e.peers[&c].heartbeat, 5, "the beat's heartbeat is taken");
        // b dies; c becomes a neighbour, its clock started now.
        e.declare_dead(now, &PeerId::from("b"));
        e.update_neighbours(now);
        assert!(e.watched_peers().contains(&c));
        let allowed = e.peers[&c].detector.deadline() - now;
        assert!(
            allowed < Duration::from_secs(10),
            "c's deadline is {allowed:?} away"
        );
    }

    fn denial(e: &mut Engine, now: Instant, from: &str, t: &PeerId) {
        let sender = Sender {
            id: PeerId::from(from),
            generation: 1,
            addr: from.to_string(),
        };
        let ack = Probe {
            target: t.clone(),
            generation: 1,
            heartbeat: 0,
            silence_ms: 10_000,
            timed: true,
        };
        e.on_probe_ack(now, &sender, ack);
    }

    fn status(e: &Engine, t: &PeerId) -> PeerStatus {
        e.peers[t].status
    }

    #[test]
    fn a_verdict_takes_one_denial_from_each_helper_asked() {
        let (mut e, now, t) = suspecting_t();
        let waiting = e.monitor.suspects[&t].waiting.clone();
        assert_eq!(waiting.len(), PROBE_HELPERS, "{waiting:?}");
        // A node not asked, and one helper three times over: no verdict.
        let unasked = ["b", "c", "d", "e"]
            .into_iter()
            .find(|h| !waiting.iter().any(|w| w.as_str() == *h))
            .expect("four peers, three helpers");
        denial(&mut e, now, unasked, &t);
        for _ in 0..3 {
            denial(&mut e, now, waiting[0].as_str(), &t);
        }
        assert_eq!(status(&e, &t), PeerStatus::Live);
        // The other two helpers deny too: the verdict.
        denial(&mut e, now, waiting[1].as_str(), &t);
        assert_eq!(status(&e, &t), PeerStatus::Live);
        denial(&mut e, now, waiting[2].as_str(), &t);
        assert_eq!(status(&e, &t), PeerStatus::Dead);
    }

    /// A wait that ends with a denial in and an answer missing asks again,
    /// other helpers first, before the verdict: at 30% loss a helper's
    /// ping is lost about half the time and the answers of the others a
    /// quarter, and taking the verdict then made nearly all of monitored
    /// liveness's false deaths at 1 s rounds. The second wait's end is the
    /// verdict.
    #[test]
    fn a_wait_that_ends_with_an_answer_missing_asks_other_helpers_again() {
        let (mut e, now, t) = suspecting_t();
        let first = e.monitor.suspects[&t].waiting.clone();
        denial(&mut e, now, first[0].as_str(), &t);
        let end = e.monitor.suspects[&t].until;
        let patience = end + Duration::from_secs(60);
        assert!(!e.suspect(end, &t, patience), "asked again, no verdict");
        let second = e.monitor.suspects[&t].waiting.clone();
        // Four peers besides `t`: the one not asked first and the one that
        // answered, then one of the two that did not.
        assert_eq!(second.len(), PROBE_HELPERS, "{second:?}");
        let unasked = second.iter().filter(|h| !first.contains(h)).count();
        assert_eq!(unasked, 1, "the helper not asked first: {second:?}");
        assert!(second.contains(&first[0]), "{second:?}");
        let silent = second.iter().filter(|h| first[1..].contains(h)).count();
        assert_eq!(silent, 1, "one of those that did not answer: {second:?}");
        assert_eq!(status(&e, &t), PeerStatus::Live);
        let end = e.monitor.suspects[&t].until;
        assert!(end > now);
        assert!(e.suspect(end, &t, patience), "the second wait's end");
    }

    #[test]
    fn a_suspect_whose_heartbeat_came_round_since_is_not_judged() {
        let (mut e, now, t) = suspecting_t();
        let waiting = e.monitor.suspects[&t].waiting.clone();
        let later = now + Duration::from_millis(5);
        let params = e.params;
        let p = e.peers.get_mut(&t).unwrap();
        p.take_heartbeat(Stamp::of(later), 1, 1, true, true, &params);
        for h in &waiting {
            denial(&mut e, later, h.as_str(), &t);
        }
        assert_eq!(status(&e, &t), PeerStatus::Live);
        assert!(!e.monitor.suspects.contains_key(&t));
    }
}
