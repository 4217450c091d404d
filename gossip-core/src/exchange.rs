//! Handling frames: the Syn / SynAck / Ack exchange and applying deltas.

use std::collections::HashSet;

use crate::table::Table;
use std::ops::Bound;
use std::time::{Duration, Instant};

use crate::delta::{self, Candidate, Theirs};
use crate::engine::Engine;
use crate::error::DecodeError;
use crate::stamp::Stamp;
use crate::state::{Entry, Peer};
use crate::stats::Counters;
use crate::wire::{len_msg, Body, Digest, DigestEntry, Frame, PeerDelta, Sender};
use crate::{Event, PeerId, PeerStatus, Versioned};

impl Engine {
    /// Handles one frame that arrived from transport address `from`.
    ///
    /// A frame that is oversized, sealed under no key this node holds, not
    /// authentic, plaintext where sealed frames are required, undecodable,
    /// from another cluster or protocol version, or that breaks a rule or a
    /// limit is dropped whole:
    /// it is counted, logged at debug, returned as the error, and it changes
    /// no state.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        from: &str,
        bytes: &[u8],
    ) -> Result<(), DecodeError> {
        // Size, then the keyring (open a sealed frame, or refuse plaintext).
        let plain = self.open_frame(from, bytes)?;
        let frame = match Frame::decode(&plain, &self.config, self.max_generation(now)) {
            Ok(f) => f,
            Err(e) => {
                Counters::add(self.drop_counter(&e), 1);
                tracing::debug!(node = %self.id, from, len = bytes.len(), error = %e, "frame dropped");
                return Err(e);
            }
        };
        if frame.sender.id == self.id {
            Counters::add(&self.counters.dropped_invalid, 1);
            let e = DecodeError::Invalid(format!(
                "frame claims to come from this node (generation {})",
                frame.sender.generation
            ));
            tracing::debug!(node = %self.id, from, error = %e, "frame dropped");
            return Err(e);
        }
        if self.has_left() {
            return Ok(());
        }
        Counters::add(&self.counters.frames_in, 1);
        self.frames_heard += 1;
        Counters::add(&self.counters.bytes_in, bytes.len() as u64);
        self.last_sender = Some(frame.sender.id.clone());
        let broadcasts = frame.broadcasts;
        match frame.body {
            Body::Syn(digest) => {
                self.on_broadcasts(now, &frame.sender.id, broadcasts);
                match &digest.summary {
                    Some(sum) => self.on_summary_syn(now, &frame.sender, sum),
                    None => self.on_syn(now, &frame.sender, &digest),
                }
                crate::spare::keep_entries(digest.entries);
                return Ok(());
            }
            Body::SynAck(digest, mut deltas) => {
                for d in deltas.drain(..) {
                    self.apply(now, d);
                }
                crate::spare::keep_deltas(deltas);
                self.pay_verdicts(&frame.sender);
                self.on_broadcasts(now, &frame.sender.id, broadcasts);
                if let Some(sum) = &digest.summary {
                    // The answer to this node's summary: the same table on
                    // both sides when it matches (else there is nothing to
                    // take: the sender has started a full exchange).
                    if (sum.hash, sum.peers) == self.summary_hash() {
                        self.take_summary_heartbeats(now, &sum.heartbeats, &sum.not_live);
                    }
                }
                self.on_requests(now, &frame.sender, &digest);
                crate::spare::keep_entries(digest.entries);
            }
            Body::Ack(mut deltas) => {
                for d in deltas.drain(..) {
                    self.apply(now, d);
                }
                crate::spare::keep_deltas(deltas);
                self.pay_verdicts(&frame.sender);
                self.on_broadcasts(now, &frame.sender.id, broadcasts);
            }
            Body::Probe(q) => self.on_probe(now, &frame.sender, q),
            Body::ProbeAck(a) => self.on_probe_ack(now, &frame.sender, a),
        }
        self.compact_table();
        Ok(())
    }

    /// The peer that sent the last frame [`handle_frame`](Engine::handle_frame)
    /// accepted (for per-peer traffic counts: the transport's from-address
    /// does not name the sender).
    pub fn last_sender(&self) -> Option<&PeerId> {
        self.last_sender.as_ref()
    }

    /// A Syn with a summary instead of a digest (the sender had no news).
    /// If the summary matches this node's table, take its heartbeats and
    /// answer with this node's summary: two frames of a few bytes per peer.
    /// If it does not, the tables differ: see `mismatch_reply` (a beat
    /// from a table of another size, while this node is still learning
    /// its cluster, is left to the gossip).
    fn on_summary_syn(&mut self, now: Instant, sender: &Sender, sum: &crate::wire::Summary) {
        if sum.heartbeat != 0 {
            self.on_beat(now, sender, sum.heartbeat);
        }
        // This node's summary, once the beat is taken (it may revive).
        let mine = self.summary_hash();
        let matches = (sum.hash, sum.peers) == mine;
        if sum.heartbeats.is_empty() && matches {
            // A beat or a monitored summary that matches: the tables agree
            // and no heartbeats are relayed, so there is nothing to answer.
            Counters::add(&self.counters.idle_exchanges, 1);
            return;
        }
        if sum.heartbeat != 0 && self.learned_last_round > 1 && sum.peers != mine.1 {
            // A beat from a table of another size while this node is still
            // learning its cluster (more than one new peer last round): in a
            // join nearly every beat differs, and answering each ran a full
            // exchange per beat on top of the `fanout` exchanges a node with
            // news runs anyway. Between tables of the same size beats are
            // answered, and so is every differing beat once the node learns
            // no more (how a neighbour left behind is found). Any news at
            // all (`hot`) as the rule made a joiner under churn, where
            // deaths are news, no faster; chaos seed 572 failed with it
            // until a dead peer could no longer be revived by a bare
            // digest entry.
            Counters::add(&self.counters.beats_deferred, 1);
            return;
        }
        let broadcasts = self.take_broadcasts(&sender.id);
        let budget = self.body_budget() - 6 - crate::wire::broadcasts_len(&broadcasts);
        if matches {
            Counters::add(&self.counters.idle_exchanges, 1);
            self.take_summary_heartbeats(now, &sum.heartbeats, &sum.not_live);
            let reply = self.syn_digest(budget, true, now);
            self.send_with(
                sender.addr.clone(),
                Body::SynAck(reply, Vec::new()),
                broadcasts,
            );
            return;
        }
        Counters::add(&self.counters.summary_mismatches, 1);
        let d = self.mismatch_reply(now, sender, sum, budget);
        self.send_with(sender.addr.clone(), Body::Syn(d), broadcasts);
    }

    /// The answer to a summary that does not match this node's table.
    ///
    /// - With the sender's bucket hashes (it holds the larger table): a
    ///   digest of the buckets that differ, or of everything if nearly all
    ///   do (`TableHash::differing`).
    /// - Else, when this node holds the larger table (the id breaks a tie
    ///   between tables of `reconcile_min_peers` and more): its summary with
    ///   bucket hashes if the table is that large, a plain summary if not
    ///   (the smaller side then sends its whole digest, which finds the
    ///   same differences for less).
    /// - Else (the sender holds the larger table): a summary without
    ///   heartbeats if that table is large enough for buckets, asking for
    ///   them; this node's digest if not.
    fn mismatch_reply(
        &mut self,
        now: Instant,
        sender: &Sender,
        sum: &crate::wire::Summary,
        budget: usize,
    ) -> Digest {
        if !sum.buckets.is_empty() {
            let theirs: Vec<u32> = sum
                .buckets
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .collect();
            let cover = self.table_hash.differing(&theirs);
            if cover.is_some() {
                Counters::add(&self.counters.bucket_digests, 1);
            }
            // No filter here (see `filter_for`): entries of the differing
            // buckets, or of everything if nearly all differ.
            return self.syn_digest_of(budget, false, cover.as_ref(), None, now);
        }
        let min = self.config.reconcile_min_peers;
        let (hash, mine) = self.summary_hash();
        let by_bucket = |peers: u32| min > 0 && peers as usize >= min;
        let larger = mine > sum.peers
            || (mine == sum.peers && by_bucket(mine) && self.id.as_str() > sender.id.as_str());
        if larger && by_bucket(mine) {
            let mut buckets = self
                .table_hash
                .for_summary(self.peers.len(), sum.peers as usize);
            // Within the frame (a smaller count folds from it).
            while buckets.len() > 8 && 4 * buckets.len() + 32 > budget {
                buckets = self.table_hash.folded(buckets.len().trailing_zeros() - 1);
            }
            if buckets.len() >= 8 && 4 * buckets.len() + 32 <= budget {
                let bytes: Vec<u8> = buckets.iter().flat_map(|b| b.to_le_bytes()).collect();
                return Digest {
                    summary: Some(crate::wire::Summary {
                        hash,
                        peers: mine,
                        buckets: bytes::Bytes::from(bytes),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
            }
            // No room even for eight buckets: the whole digest.
            return self.syn_digest(budget, false, now);
        }
        if larger {
            return self.syn_digest(budget, true, now);
        }
        if by_bucket(sum.peers) {
            return Digest {
                summary: Some(crate::wire::Summary {
                    hash,
                    peers: mine,
                    ..Default::default()
                }),
                ..Default::default()
            };
        }
        let filter = self.filter_for(sum.peers);
        self.syn_digest_of(budget, false, None, filter, now)
    }

    /// A Syn: absorb heartbeats, then answer with what the sender lacks and
    /// requests for what this node lacks.
    fn on_syn(&mut self, now: Instant, sender: &Sender, digest: &Digest) {
        // Requests (this node is behind) and newer heartbeats (it is ahead
        // on liveness only: a digest entry is far smaller than a delta).
        // Each list holds the digest position its item came from: the walk
        // below visits the entries in table order, and every list is put
        // back in the digest's order before it is read.
        let mut requests: Vec<(usize, DigestEntry)> = Vec::new();
        let mut fresher: Vec<(usize, DigestEntry)> = Vec::new();
        let mut theirs: Vec<(usize, Option<Theirs>)> = Vec::new();
        // 0 is what a new peer holds; a wrapped count skips it.
        self.syns_seen = self.syns_seen.checked_add(1).unwrap_or(1);
        let mark = self.syns_seen;
        let mut revived = Vec::new();
        let mut missing = Vec::new();
        let monitored = self.monitored();
        let mut verdicts = Vec::new();
        let mut floors = Vec::new();
        let keys: Vec<&PeerId> = digest.entries.iter().map(|e| &e.id).collect();
        let (me, params) = (&self.id, &self.params);
        let stamp = Stamp::of(now);
        // One walk of the table (or a lookup per entry when they are few):
        // take the heartbeat, then compare.
        crate::lookup::visit_mut(&mut self.peers, &keys, |i, held| {
            let e = &digest.entries[i];
            let Some(p) = held else {
                missing.push(i);
                return;
            };
            p.mentioned_in = mark;
            if higher_floor(p, e) {
                floors.push(i);
            }
            if e.id == *me {
                // They are behind on this node itself.
                if e.generation != p.generation
                    || e.max_version < p.max_version
                    || e.heartbeat < p.heartbeat
                {
                    theirs.push((i, Some(e.into())));
                }
                return;
            }
            let relay_live = e.status == PeerStatus::Live;
            let sample = !monitored;
            // Monitored: a peer held dead is not revived by another node's
            // entry, which says nothing of how lately it was heard; the
            // delta asked for instead does (see `apply_delta`).
            let ask = monitored && unvouched_revival(p, e, &sender.id);
            if !ask
                && p.take_heartbeat(stamp, e.generation, e.heartbeat, relay_live, sample, params)
            {
                revived.push(i);
            }
            if monitored && e.status != PeerStatus::Live && p.status == PeerStatus::Live {
                verdicts.push(i);
            }
            if e.generation > p.generation {
                requests.push((i, p.digest_entry(&e.id, now)));
            } else if e.generation < p.generation {
                theirs.push((i, Some(e.into())));
            } else if e.max_version > p.max_version {
                requests.push((i, p.digest_entry(&e.id, now)));
            } else if p.max_version > e.max_version {
                theirs.push((i, Some(e.into())));
            } else if ask {
                requests.push((i, p.digest_entry(&e.id, now)));
            } else if monitored && revives(p, e) {
                // Monitored: a live peer the sender holds dead with an
                // older heartbeat goes as a delta, whose age says how
                // lately this node heard of it.
                theirs.push((i, Some(e.into())));
            } else if p.heartbeat > e.heartbeat
                || (monitored
                    && p.status != PeerStatus::Live
                    && e.status == PeerStatus::Live
                    && p.heartbeat == e.heartbeat)
            {
                // Newer liveness; or, monitored, a death the sender
                // has not heard of (its entry carries the verdict).
                fresher.push((i, p.digest_entry(&e.id, now)));
            }
        });
        drop(keys);
        // The peers this node does not hold, in the digest's order.
        missing.sort_unstable();
        for i in missing {
            let e = &digest.entries[i];
            if e.generation > 0
                && self.refuse_unknown(now, &e.id, e.generation, e.heartbeat, e.status)
            {
                // Monitored: tell the sender it is gone.
                if let Some(v) = self.removed_verdict(e) {
                    fresher.push((i, v));
                }
            } else if e.generation > 0 {
                requests.push((
                    i,
                    DigestEntry {
                        id: e.id.clone(),
                        generation: 0,
                        max_version: 0,
                        heartbeat: 0,
                        gc_floor: 0,
                        status: PeerStatus::Live,
                        status_age_ms: 0,
                    },
                ));
            }
        }
        requests.sort_by_key(|r| r.0);
        fresher.sort_by_key(|r| r.0);
        // A filter stands for the entries of the live peers it holds (see
        // `filter.rs`); the sender names the peers it holds dead or left
        // as entries. Monitored: a peer this node holds dead or left that
        // the filter holds is one the sender holds live, which its entry
        // would have shown; this node's verdict goes back, as `fresher`
        // (the receiver's rule for believing a verdict decides).
        let filter = digest
            .ranged
            .then(|| crate::filter::Filter::read(&digest.filter))
            .flatten();
        if let (Some(f), true) = (filter, monitored) {
            let held = self.peers.iter().filter(|(id, p)| {
                p.status != PeerStatus::Live
                    && p.mentioned_in != mark
                    && **id != sender.id
                    && digest.covers(id.as_str())
                    && f.holds(id, p.generation, p.max_version)
            });
            fresher.extend(held.map(|(id, p)| (usize::MAX, p.digest_entry(id, now))));
        }
        theirs.sort_by_key(|t| t.0);
        revived.sort_unstable();
        verdicts.sort_unstable();
        let theirs: Vec<(PeerId, Option<Theirs>)> = theirs
            .into_iter()
            .map(|(i, t)| (digest.entries[i].id.clone(), t))
            .collect();
        let revived: Vec<PeerId> = revived
            .into_iter()
            .map(|i| digest.entries[i].id.clone())
            .collect();
        let verdicts: Vec<&DigestEntry> =
            verdicts.into_iter().map(|i| &digest.entries[i]).collect();
        let requests = requests.into_iter().map(|r| r.1);
        let fresher = fresher.into_iter().map(|r| r.1);
        for id in revived {
            self.revived(&id);
        }
        for e in verdicts {
            self.take_entry_verdict(now, e);
        }
        // After the revivals and verdicts: each toggles its status's share
        // as the hash holds it.
        self.take_floors(digest, floors);
        // Broadcasts the sender wants take their share first; then requests
        // take at most half the frame, deltas the rest.
        let broadcasts = self.take_broadcasts(&sender.id);
        let budget = self.body_budget() - crate::wire::broadcasts_len(&broadcasts);
        let mut reply = Digest::default();
        let mut used = 0;
        for r in requests.chain(fresher) {
            let cost = len_msg(r.encoded_len());
            if used + cost > budget / 2 {
                break;
            }
            used += cost;
            reply.entries.push(r);
        }
        let left = budget - len_msg(reply.encoded_len()) - 6;
        // Candidates: the peers the digest showed behind, then (a ranged
        // digest) the live peers inside its range it did not mention, taken
        // straight from the table: a new node's digest makes that the whole
        // table, of which a frame carries a fraction.
        let mut candidates = candidates(&self.peers, &theirs);
        if digest.ranged {
            // A peer the filter holds is left out.
            let lower = Bound::Included(digest.range_start.as_str());
            let upper = if digest.range_end.is_empty() {
                Bound::Unbounded
            } else {
                Bound::Excluded(digest.range_end.as_str())
            };
            let unmentioned = self
                .peers
                .range_str(lower, upper)
                .filter(|(id, p)| {
                    // Only live peers are introduced: a peer this node
                    // thinks dead or gone would only be reported as joined,
                    // then dead.
                    // (the id's string compared last: the rest is
                    // in the entry the walk reads anyway)
                    p.status == PeerStatus::Live
                        && p.mentioned_in != mark
                        && **id != sender.id
                        && (digest.cover.is_empty()
                            || crate::table_hash::bitmap_covers_id(&digest.cover, id))
                        && filter.is_none_or(|f| !f.holds(id, p.generation, p.max_version))
                })
                .map(|(id, peer)| Candidate {
                    id,
                    peer,
                    theirs: None,
                });
            candidates.extend(unmentioned);
        }
        // Room for the ages `vouch_for` may raise (monitored).
        let left = left.saturating_sub(self.vouch_slack());
        let mut deltas = deltas_for(&self.config, candidates, left, &mut self.rng, now);
        if self.monitored() {
            self.vouch_for(now, &mut deltas);
        }
        if !reply.entries.is_empty() || !deltas.is_empty() || !broadcasts.is_empty() {
            self.send_with(sender.addr.clone(), Body::SynAck(reply, deltas), broadcasts);
        } else {
            // Nothing to send: the lists' room for the thread's next frame.
            crate::spare::keep_entries(reply.entries);
            crate::spare::keep_deltas(deltas);
        }
    }

    /// The digest of a SynAck: absorb the heartbeats it carries and send the
    /// deltas it asks for (entries behind this node's versions) in an Ack.
    fn on_requests(&mut self, now: Instant, sender: &Sender, digest: &Digest) {
        // One walk of the table (or a lookup per entry when they are few):
        // take each heartbeat and find what the sender lacks; then, in the
        // digest's order, the revivals and (monitored) verdicts.
        let mut theirs = Vec::new();
        let mut revived = Vec::new();
        let mut floors = Vec::new();
        let keys: Vec<&PeerId> = digest.entries.iter().map(|e| &e.id).collect();
        let (me, params, sample) = (&self.id, &self.params, !self.monitored());
        let stamp = Stamp::of(now);
        crate::lookup::visit_mut(&mut self.peers, &keys, |i, held| {
            let e = &digest.entries[i];
            let Some(p) = held else { return };
            if higher_floor(p, e) {
                floors.push(i);
            }
            // Monitored (`sample` false): no revival from another node's
            // entry (see `on_syn`).
            let unvouched = !sample && unvouched_revival(p, e, &sender.id);
            if e.id != *me && !unvouched {
                let relay_live = e.status == PeerStatus::Live;
                if p.take_heartbeat(stamp, e.generation, e.heartbeat, relay_live, sample, params) {
                    revived.push(i);
                }
            }
            let newer = p.generation > e.generation
                || (p.generation == e.generation && p.max_version > e.max_version)
                || (!sample && revives(p, e));
            if newer {
                theirs.push((i, Some(Theirs::from(e))));
            }
        });
        drop(keys);
        revived.sort_unstable();
        if self.monitored() {
            // Each entry's revival, then its verdict, as the digest orders
            // them.
            let mut revived = revived.into_iter().peekable();
            for (i, e) in digest.entries.iter().enumerate() {
                if revived.next_if_eq(&i).is_some() {
                    self.revived(&e.id);
                }
                if e.id != self.id {
                    self.take_entry_verdict(now, e);
                }
            }
        } else {
            for i in revived {
                self.revived(&digest.entries[i].id);
            }
        }
        // After the revivals and verdicts (see `on_syn`).
        self.take_floors(digest, floors);
        theirs.sort_by_key(|t| t.0);
        let theirs: Vec<(PeerId, Option<Theirs>)> = theirs
            .into_iter()
            .map(|(i, t)| (digest.entries[i].id.clone(), t))
            .collect();
        let broadcasts = self.take_broadcasts(&sender.id);
        let budget = self.body_budget() - crate::wire::broadcasts_len(&broadcasts);
        let deltas = self.build_deltas(now, &theirs, budget);
        if !deltas.is_empty() || !broadcasts.is_empty() {
            self.send_with(sender.addr.clone(), Body::Ack(deltas), broadcasts);
        } else {
            // Nothing to send: the list's room for the thread's next frame.
            crate::spare::keep_deltas(deltas);
        }
    }

    fn build_deltas(
        &mut self,
        now: Instant,
        theirs: &[(PeerId, Option<Theirs>)],
        budget: usize,
    ) -> Vec<PeerDelta> {
        // Room for the ages `vouch_for` may raise (monitored).
        let budget = budget.saturating_sub(self.vouch_slack());
        let candidates = candidates(&self.peers, theirs);
        let mut deltas = deltas_for(&self.config, candidates, budget, &mut self.rng, now);
        if self.monitored() {
            self.vouch_for(now, &mut deltas);
        }
        deltas
    }

    /// Gossip about `id`, which this node does not hold: whether it must
    /// not be introduced. It must not when it describes a removed peer no
    /// newer than remembered (a zombie: the memory is refreshed, since some
    /// node still gossips it), or a peer the sender holds dead or left
    /// (`status` not live: remembered as removed from now on).
    fn refuse_unknown(
        &mut self,
        now: Instant,
        id: &PeerId,
        generation: u64,
        heartbeat: u64,
        status: PeerStatus,
    ) -> bool {
        if let Some(r) = self.removed.get_mut(id) {
            if (generation, heartbeat) <= (r.generation, r.heartbeat) {
                r.at = now;
                Counters::add(&self.counters.stale_gossip_ignored, 1);
                return true;
            }
        }
        if status != PeerStatus::Live {
            self.remember_removed(id, generation, heartbeat, status, now);
            return true;
        }
        false
    }

    /// Monitored: a live delta of a peer this node removed (and remembers
    /// no older) was refused. The sender still holds it live and, with no
    /// detector timing it, would go on handing it out as live: to a node
    /// that restarts, or joins, and has no memory of the removal (chaos
    /// seed 275: a peer that left while the sender was cut off, offered as
    /// live to a restarted node 130 s later). The sender holds more peers
    /// than this node, so it never sends the digest that `on_syn` answers
    /// with a verdict; the verdict is owed, and `pay_verdicts` sends it.
    fn owe_verdict(&mut self, d: &PeerDelta) {
        if d.status != PeerStatus::Live || !self.monitored() {
            return;
        }
        let e = DigestEntry {
            id: d.id.clone(),
            generation: d.generation,
            max_version: d.to_version,
            heartbeat: d.heartbeat,
            gc_floor: d.gc_floor,
            status: d.status,
            status_age_ms: 0,
        };
        if let Some(v) = self.removed_verdict(&e) {
            self.owed_verdicts.push(v);
        }
    }

    /// Sends the verdicts `owe_verdict` collected from one frame's deltas
    /// back to its sender, as a Syn whose digest holds only them (its
    /// `on_syn` takes each as a verdict on a peer it holds live).
    fn pay_verdicts(&mut self, sender: &Sender) {
        if self.owed_verdicts.is_empty() {
            return;
        }
        // Within a digest's limits: the rest is owed again when those
        // peers are offered next.
        let mut owed = std::mem::take(&mut self.owed_verdicts);
        owed.truncate(self.config.max_digest_entries);
        let budget = self.body_budget() - 6;
        let mut d = Digest::default();
        let mut used = 0;
        for e in owed {
            let cost = len_msg(e.encoded_len());
            if used + cost > budget {
                break;
            }
            used += cost;
            d.entries.push(e);
        }
        Counters::add(&self.counters.verdicts_sent, d.entries.len() as u64);
        self.send_with(sender.addr.clone(), Body::Syn(d), Vec::new());
    }

    /// A dead peer's heartbeat moved: it is live again.
    pub(crate) fn revived(&mut self, id: &PeerId) {
        // Only a dead peer is revived, and nothing else of it changed.
        let before = self
            .peers
            .get(id)
            .map_or(0, |p| self.table_hash.share_as(id, p, PeerStatus::Dead));
        self.table_changed(id, before);
        tracing::debug!(node = %self.id, peer = %id, "peer live again");
        self.events.push_back(Event::PeerLive { peer: id.clone() });
        self.store_peer(id);
    }

    /// Applies one peer's delta. Deltas that do not connect to what this node
    /// holds are skipped (counted); nothing older ever replaces anything newer.
    ///
    /// A peer this node does not hold is introduced (`PeerJoined`) only if
    /// the sender holds it live: one the sender holds dead or left is only
    /// remembered as removed, as memberlist ignores news of the death of a
    /// node it never knew. A newer generation that is already dead or left
    /// removes the peer. A peer held in the same generation keeps this
    /// node's own judgement of its liveness; only `Left` is taken, from a
    /// complete delta.
    pub(crate) fn apply(&mut self, now: Instant, d: PeerDelta) {
        Counters::add(&self.counters.deltas_received, 1);
        if d.id == self.id {
            return;
        }
        // A delta may change what the table's hash covers: each path
        // toggles the peer's old share out and its new one in where it
        // changes it.
        self.apply_delta(now, d);
        if self.table_hash.outgrown(self.peers.len()) {
            self.rehash_all();
        }
    }

    fn apply_delta(&mut self, now: Instant, d: PeerDelta) {
        let interval = self.expected_interval();
        let gone = d.status != PeerStatus::Live;
        let sample = !self.monitored();
        match self.peers.get_mut(&d.id) {
            None => {
                if self.refuse_unknown(now, &d.id, d.generation, d.heartbeat, d.status) {
                    self.owe_verdict(&d);
                    return;
                }
                if d.from_version != 0 {
                    Counters::add(&self.counters.deltas_skipped, 1);
                    return;
                }
                if self.peers.len() > self.config.max_peers {
                    Counters::add(&self.counters.peers_refused, 1);
                    tracing::debug!(node = %self.id, peer = %d.id, "max_peers reached; peer ignored");
                    return;
                }
                let Some(p) = self.fresh_peer(now, &d, interval) else {
                    return;
                };
                self.table_hash
                    .toggle(&d.id, self.table_hash.share(&d.id, &p));
                // A delta's decoded id is the shared copy
                // (`Validator::id_bytes` interns it): it keys the table, the
                // news queue and the event.
                let id = d.id.clone();
                self.peers.insert(id.clone(), p);
                Counters::add(&self.counters.peers_learned, 1);
                if !self.removed.is_empty() {
                    self.removed.remove(&id);
                }
                self.mark_hot_key(id.clone(), now);
                tracing::debug!(node = %self.id, peer = %id, addr = %d.addr, "peer joined");
                self.store_peer(&id);
                if self.events.wanted() {
                    self.events.push_back(Event::PeerJoined {
                        peer: id,
                        // The event's own copy: the delta's is the shared one.
                        addr: String::clone(&d.addr),
                    });
                }
            }
            Some(p) if d.generation < p.generation => return,
            Some(p) if d.generation > p.generation => {
                if d.from_version != 0 {
                    Counters::add(&self.counters.deltas_skipped, 1);
                    return;
                }
                let was = p.status;
                let id = d.id.clone();
                if gone {
                    // The new incarnation is already gone: so is the old one.
                    if let Some(old) = self.peers.remove(&id) {
                        self.table_hash
                            .toggle(&id, self.table_hash.share(&id, &old));
                    }
                    self.remember_removed(&id, d.generation, d.heartbeat, d.status, now);
                    tracing::debug!(node = %self.id, peer = %id, generation = d.generation, "peer restarted and is gone");
                    if was == PeerStatus::Live {
                        self.events.push_back(match d.status {
                            PeerStatus::Left => Event::PeerLeft { peer: id.clone() },
                            _ => Event::PeerDead { peer: id.clone() },
                        });
                    }
                    self.events
                        .push_back(Event::PeerRemoved { peer: id.clone() });
                    self.store(|s| s.remove_peer(&id));
                    return;
                }
                let Some(fresh) = self.fresh_peer(now, &d, interval) else {
                    return;
                };
                let p = self.peers.get_mut(&id).expect("held");
                let before = self.table_hash.share(&id, p);
                p.clear();
                *p = fresh;
                let after = self.table_hash.share(&id, p);
                self.table_hash.toggle(&id, before ^ after);
                self.mark_hot(&id, now);
                tracing::debug!(node = %self.id, peer = %id, generation = d.generation, "peer restarted");
                self.events.push_back(Event::PeerRestarted {
                    peer: id.clone(),
                    generation: d.generation,
                });
                if was != PeerStatus::Live {
                    self.events.push_back(Event::PeerLive { peer: id.clone() });
                }
                self.store(|s| s.clear_keys(&id).and_then(|_| s.put_peer(self.record(&id))));
            }
            Some(p) => {
                // One lookup for the address and the heartbeat.
                let moved = !d.addr.is_empty() && p.set_shared_addr(&d.addr);
                let relay_live = d.status == PeerStatus::Live;
                // Monitored: a peer held dead is revived only if the sender
                // heard of it lately enough that this node's detector would
                // not find it dead at once (the rule `fresh_peer` applies to
                // an introduction), its clock set to then; older news is
                // not taken at all, nor its heartbeat.
                let heard = if !sample
                    && p.status == PeerStatus::Dead
                    && relay_live
                    && p.generation == d.generation
                    && d.heartbeat > p.heartbeat
                {
                    let heard = heard_lately(now, d.heartbeat_age_ms, interval, &self.params);
                    if heard.is_none() {
                        Counters::add(&self.counters.stale_gossip_ignored, 1);
                        tracing::debug!(node = %self.id, peer = %d.id, age_ms = d.heartbeat_age_ms, "stale news of a dead peer's life ignored");
                    }
                    Some(heard)
                } else {
                    None
                };
                let revived = heard != Some(None)
                    && p.take_heartbeat(
                        Stamp::of(now),
                        d.generation,
                        d.heartbeat,
                        relay_live,
                        sample,
                        &self.params,
                    );
                if let (true, Some(Some(at))) = (revived, heard) {
                    p.detector.reset_clock(at, &self.params);
                }
                if moved {
                    self.store_peer(&d.id);
                }
                if revived {
                    self.revived(&d.id);
                }
                self.take_verdict(
                    now,
                    &d.id,
                    d.generation,
                    d.heartbeat,
                    d.to_version,
                    d.status,
                    d.status_age_ms,
                );
            }
        }
        self.apply_entries(now, d);
    }

    /// A peer (or new incarnation) as a live delta introduces it, its
    /// detector's clock set to when the sender saw its heartbeat arrive; or
    /// `None` if by this node's detector it would already be dead: a relay
    /// that has not yet found a crash does not make a new node believe in it
    /// (counted as `stale_gossip_ignored`).
    fn fresh_peer(&self, now: Instant, d: &PeerDelta, interval: Duration) -> Option<Peer> {
        let mut p = Peer::with_addr(d.generation, d.addr.clone(), now, interval, &self.params);
        p.heartbeat = d.heartbeat;
        let heard = heard_lately(now, d.heartbeat_age_ms, interval, &self.params);
        if let Some(at) = heard {
            p.detector.reset_clock(at, &self.params);
        } else {
            Counters::add(&self.counters.stale_gossip_ignored, 1);
            tracing::debug!(node = %self.id, peer = %d.id, age_ms = d.heartbeat_age_ms, "stale news of a live peer ignored");
            return None;
        }
        Some(p)
    }

    fn apply_entries(&mut self, now: Instant, d: PeerDelta) {
        if d.entries.is_empty() && !d.reset && d.to_version == 0 && d.status != PeerStatus::Left {
            // A peer without keys: no versions to take, nothing to look up.
            return;
        }
        let max_keys = self.config.max_keys_per_peer;
        let id = d.id;
        let mut p = self.peers.get_mut(&id).expect("peer present");
        let before = self.table_hash.share(&id, p);
        // A reset, or a copy from nothing sent to a node whose digest did
        // not show this one (as when two copies race in), over a copy that
        // ends below the sender's floor: that copy may hold keys deleted by
        // a collected tombstone, so it goes.
        let fresh = d.reset || d.from_version == 0;
        if fresh && p.gc_floor < d.gc_floor && p.max_version < d.gc_floor {
            let kept: HashSet<&str> = d
                .entries
                .iter()
                .filter(|e| !e.deleted)
                .map(|e| e.key.as_str())
                .collect();
            let dropped = p.clear();
            p.max_version = 0;
            p.gc_floor = d.gc_floor;
            for (key, e) in dropped {
                if !kept.contains(key.as_str()) && self.events.wanted() {
                    self.events.push_back(Event::KeyDeleted {
                        peer: id.clone(),
                        key,
                        version: e.version,
                    });
                }
            }
            self.store(|s| s.clear_keys(&id));
            p = self.peers.get_mut(&id).expect("peer present");
        }
        if d.from_version > p.max_version {
            Counters::add(&self.counters.deltas_skipped, 1);
            // A reset may have changed its share.
            self.table_hash
                .toggle(&id, before ^ self.table_hash.share(&id, p));
            return;
        }
        // The sender's copy lacks the tombstones at or below its floor, and
        // so does one taken from it: a copy begun from nothing, or one that
        // the sender reset, never held the keys they deleted, but whoever
        // holds an older copy must be reset by it later (see
        // `Candidate::start`). Taken from every delta applied, so holders
        // agree on the floor and their tables' hashes can match.
        p.gc_floor = p.gc_floor.max(d.gc_floor);
        let mut reached = d.to_version;
        let mut writes = Vec::new();
        for kv in d.entries {
            if kv.version <= p.max_version {
                continue;
            }
            let is_new = p.entry(&kv.key).is_none_or(|e| e.deleted);
            if !kv.deleted && is_new && p.live_keys() >= max_keys {
                // Stop here so what is held stays a gap-free prefix.
                Counters::add(&self.counters.keys_refused, 1);
                tracing::debug!(node = %self.id, peer = %id, "max_keys_per_peer reached; rest of delta ignored");
                reached = kv.version - 1;
                break;
            }
            let entry = Entry {
                value: kv.value.clone(),
                version: kv.version,
                deleted: kv.deleted,
            };
            if let Ok(old) = p.put(&kv.key, entry, now) {
                let had_value = old.is_some_and(|o| !o.deleted);
                // (Events off: no copy of the key and value built.)
                if kv.deleted {
                    if had_value && self.events.wanted() {
                        self.events.push_back(Event::KeyDeleted {
                            peer: id.clone(),
                            key: kv.key.clone(),
                            version: kv.version,
                        });
                    }
                } else if self.events.wanted() {
                    self.events.push_back(Event::KeyUpdated {
                        peer: id.clone(),
                        key: kv.key.clone(),
                        value: kv.value.clone(),
                        version: kv.version,
                    });
                }
                writes.push(kv);
            }
        }
        let advanced = reached > p.max_version;
        p.max_version = p.max_version.max(reached);
        let became_left =
            d.status == PeerStatus::Left && reached == d.to_version && p.status != PeerStatus::Left;
        if became_left {
            // Left when the sender says, so every node removes it at about
            // the same time.
            let age = Duration::from_millis(d.status_age_ms).min(self.config.dead_peer_grace);
            p.set_status(PeerStatus::Left, now.checked_sub(age).unwrap_or(now));
        }
        self.table_hash
            .toggle(&id, before ^ self.table_hash.share(&id, p));
        if self.storage.is_some() {
            for kv in writes {
                if kv.deleted {
                    self.store(|s| s.remove_key(&id, &kv.key));
                } else {
                    self.store(|s| {
                        s.put_key(
                            &id,
                            &kv.key,
                            Versioned {
                                value: kv.value,
                                version: kv.version,
                            },
                        )
                    });
                }
            }
        }
        if advanced || became_left {
            self.mark_hot(&id, now);
        }
        if became_left {
            tracing::debug!(node = %self.id, peer = %id, "peer left");
            self.events.push_back(Event::PeerLeft { peer: id.clone() });
            self.store_peer(&id);
        }
    }
}

/// When a peer heard `age_ms` before `now` was heard, if a fresh detector
/// (one sample of `interval`) started then would not find it dead by now:
/// how old news of a peer's life may be and still be taken for it.
pub(crate) fn heard_lately(
    now: Instant,
    age_ms: u64,
    interval: Duration,
    params: &crate::phi::PhiParams,
) -> Option<Instant> {
    let at = now.checked_sub(Duration::from_millis(age_ms))?;
    (crate::phi::Detector::new(at, interval, params).deadline() > now).then_some(at)
}

/// Monitored: whether digest entry `e`, from `sender`, holds live with a
/// higher heartbeat a peer `p` holds dead, and is not the peer's own word.
/// Such an entry says nothing of how lately the sender heard of the peer
/// (it may have held it live, untimed, since the peer died: an island's
/// node after a heal, chaos seed 29 at 60 nodes), so it revives nothing;
/// the receiver asks for the delta, whose age does say.
fn unvouched_revival(p: &Peer, e: &DigestEntry, sender: &PeerId) -> bool {
    p.status == PeerStatus::Dead
        && e.status == PeerStatus::Live
        && e.generation == p.generation
        && e.heartbeat > p.heartbeat
        && e.id != *sender
}

/// Monitored: whether `p`, held live, would revive the peer digest entry
/// `e` holds dead (same generation, an older heartbeat): it is sent as a
/// delta, not an entry (see `unvouched_revival`).
fn revives(p: &Peer, e: &DigestEntry) -> bool {
    p.status == PeerStatus::Live
        && e.status == PeerStatus::Dead
        && e.generation == p.generation
        && p.heartbeat > e.heartbeat
}

/// The held peers among `theirs`, as delta candidates.
fn candidates<'a>(
    peers: &'a Table<Peer>,
    theirs: &[(PeerId, Option<Theirs>)],
) -> Vec<Candidate<'a>> {
    let keys: Vec<&PeerId> = theirs.iter().map(|(id, _)| id).collect();
    crate::lookup::get_many(peers, &keys)
        .into_iter()
        .zip(theirs)
        .filter_map(|(held, (_, t))| {
            held.map(|(id, peer)| Candidate {
                id,
                peer,
                theirs: *t,
            })
        })
        .collect()
}

/// Whether digest entry `e` holds the same state as `p` (generation and
/// versions) under a higher collected floor. Holders collect tombstones on
/// their own clocks, and a tombstone replaced before its grace ran out
/// raises the floor only where it was collected, so floors can differ
/// where nothing else does; they are in the table hash, so such tables
/// never matched. The higher floor is always safe to hold.
fn higher_floor(p: &Peer, e: &DigestEntry) -> bool {
    e.gc_floor > p.gc_floor && e.generation == p.generation && e.max_version == p.max_version
}

impl Engine {
    /// Raises the floors of the entries at `at` in `digest` (found by
    /// [`higher_floor`]) to the digest's, with their hash shares.
    fn take_floors(&mut self, digest: &Digest, at: Vec<usize>) {
        for i in at {
            let e = &digest.entries[i];
            let Some(p) = self.peers.get_mut(&e.id) else {
                continue;
            };
            let before = self.table_hash.share(&e.id, p);
            p.gc_floor = p.gc_floor.max(e.gc_floor);
            self.table_hash
                .toggle(&e.id, before ^ self.table_hash.share(&e.id, p));
        }
    }
}

/// The deltas for `candidates` that fit `budget` (see `delta::build`).
fn deltas_for(
    config: &crate::Config,
    candidates: Vec<Candidate<'_>>,
    budget: usize,
    rng: &mut impl rand::Rng,
    now: Instant,
) -> Vec<PeerDelta> {
    let max_entries = crate::wire::max_delta_entries(config);
    delta::build(candidates, budget, max_entries, rng, now)
}
