//! Node configuration: every timing and every bound in one documented struct.

use std::time::Duration;

use crate::error::ConfigError;
use crate::keyring::{Keyring, Plaintext, SEAL_OVERHEAD};

/// How a node gossips, detects failures, and what it accepts.
///
/// Start from a preset ([`Config::default`] for WAN-ish clusters with a 1 s
/// round, [`Config::lan`] for a data centre, [`Config::local`] for tests and
/// the demo on one machine) and change what you need; [`Config::validate`] is
/// called when a node starts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Name of the cluster. Frames carrying another cluster id are dropped, so
    /// two clusters can share a network without mixing. 1 to 255 bytes.
    pub cluster_id: String,
    /// Time between gossip rounds. Each round the node bumps its heartbeat and
    /// starts an exchange with `fanout` peers. Shorter converges faster and
    /// costs more bandwidth. 1 ms to 1 h.
    pub gossip_interval: Duration,
    /// Live peers contacted per round. 3 (memberlist's default) spreads news
    /// to N nodes in about log(N) rounds. 1 to 64.
    pub fanout: usize,
    /// Live peers contacted per round while nothing has changed recently
    /// (no peer joined, restarted, left or wrote a key): only heartbeats
    /// move then, and fewer exchanges carry them for a fraction of the
    /// bytes. News switches back to `fanout` at once. 1 to `fanout`.
    pub idle_fanout: usize,
    /// Send live partners a summary of the table first (a hash, and one
    /// byte of heartbeat per peer) instead of a digest entry per peer, news
    /// or not: a partner whose table matches swaps heartbeats, one whose
    /// table differs answers with a full digest. On by default; off gives
    /// the digest on every exchange (for comparison).
    pub idle_summary: bool,
    /// Tables of at least this many peers reconcile by bucket first: when
    /// two summaries differ, the larger table sends its hash split into
    /// buckets (about one per eight peers when the two tables are about the
    /// same size, one or two per peer when the smaller lacks many), and the
    /// smaller answers with a digest of the buckets that differ only (see ARCHITECTURE.md,
    /// "Reconciling by bucket"), instead of a digest of every peer. 0 turns
    /// it off; smaller tables always send the whole digest.
    ///
    /// With relayed liveness (`monitors` 0) a mismatched exchange's digest
    /// also carries heartbeats, which a digest of a few buckets does not:
    /// the default, 4,096, is about where a whole table no longer fits one
    /// 64 KiB frame's digest anyway. At 256, 1,000 real nodes at 200 ms
    /// rounds once reported 3 and 4 peers dead in the minute after
    /// converging, 0 and 0 since one node's false death no longer makes its
    /// summaries differ; the simulator at 10,000 nodes was slower at 256.
    /// With monitored liveness, where no heartbeats are relayed, 256 is a
    /// good value.
    pub reconcile_min_peers: usize,
    /// Bits a peer of the Bloom filter a node sends in place of a digest
    /// entry for each of its live peers when it answers a clearly larger
    /// table (more peers by one in 64 or more) while it is learning (more
    /// than one new peer in the last round), with relayed liveness only
    /// (see `filter.rs` and ARCHITECTURE.md, "The smaller table's
    /// filter"): the larger side tests each of its peers against the
    /// filter in one walk and sends those the filter lacks, where it would
    /// otherwise have decoded and looked up an entry for each peer the two
    /// share. At 10, about one peer in 120 tests as held wrongly and is
    /// found in a later exchange. 0 turns it off; 4 to 16 otherwise.
    pub filter_bits: usize,
    /// Fewest peers a table holds before it answers a larger one with a
    /// filter (`filter_bits`). A filter leaves out the heartbeats and the
    /// peers the larger side lacks, which entries would carry; below this
    /// the entries cost little anyway. 1 to 10,000,000.
    pub filter_min_peers: usize,
    /// Monitored liveness (Akka cluster's design) when above 0: the live
    /// nodes form a ring in id order, and each node sends a beat (its
    /// summary and heartbeat, one small frame) every round to its
    /// `monitors` neighbours on either side, which time it with phi
    /// accrual; only they judge it, and a death they find travels with the
    /// state (a dead status with a heartbeat no older than the receiver's
    /// is believed). Heartbeats are then not relayed, so a round with
    /// nothing new costs `2 * monitors` beats per node whatever the
    /// cluster's size, and news still spreads with `fanout` partners a
    /// round. A watcher that finds a neighbour silent first asks the
    /// neighbour's other watchers (an indirect probe) and gives no verdict
    /// if one of them heard it lately, so a cut link makes no false death
    /// and lost or delayed beats far fewer (not none: see ARCHITECTURE.md).
    /// Experimental: keep `dead_peer_grace` well
    /// above the time the side of a partition takes to find the other side
    /// dead, which it does a few neighbours at a time (see ARCHITECTURE.md,
    /// "Monitored liveness"). 0 (the default): every
    /// node times every peer from relayed heartbeats. 0 to 8; needs
    /// `idle_summary`.
    pub monitors: usize,
    /// Frames this node must have accepted since a peer's last heartbeat
    /// before it believes that peer's detector: fewer means its own links
    /// are failing, and the verdict waits (at most until the silence is
    /// twice what the detector allows). 0 turns the check off. 0 to 1,000.
    pub liveness_evidence_frames: u32,
    /// Phi above which a peer is reported dead. 8 means a false positive
    /// chance of about 1e-8 per check under the fitted distribution. 1 to 100.
    pub phi_threshold: f64,
    /// Heartbeat inter-arrival samples kept per peer. 2 to 100,000.
    pub phi_window: usize,
    /// Floor on the standard deviation of inter-arrival times, so a very
    /// regular peer is not declared dead after one late heartbeat.
    pub phi_min_std_dev: Duration,
    /// Extra time added to the mean inter-arrival before phi starts rising:
    /// the pause (GC, a slow relay, lost frames) a peer may take without
    /// being suspected.
    pub phi_acceptable_pause: Duration,
    /// Below this many live peers a seed is contacted every round as well.
    pub min_live_peers: usize,
    /// Every this long a node also gossips with one random seed that is not
    /// one of its live peers, however many live peers it has: the two sides
    /// of a partition that outlasted `dead_peer_grace` have forgotten each
    /// other, and this is how they meet again (serf's reconnect interval,
    /// 30 s, plays the same part). Seeds are tried in turn, least recently
    /// tried first. Zero turns it off. At most 24 h.
    pub seed_rejoin_interval: Duration,
    /// Largest frame sent or accepted, in bytes; larger incoming frames are
    /// dropped before parsing. Deltas and digests are cut to fit. 1 KiB to 64 MiB.
    pub max_frame_bytes: usize,
    /// A dead or left peer is removed (and `PeerRemoved` emitted) after this.
    pub dead_peer_grace: Duration,
    /// A deleted key's tombstone is kept this long so every peer learns of the
    /// delete; after that it is garbage-collected. Must exceed the time a
    /// partition can last for a delete to reach the far side incrementally
    /// (after that the far side is sent a full reset, which is still correct).
    pub tombstone_grace: Duration,
    /// Seed for the engine's random choices. `Some` makes a run reproducible
    /// from its inputs; `None` draws a seed from the OS at start.
    pub rng_seed: Option<u64>,
    /// Rounds a leaving node keeps gossiping so every peer learns it left.
    pub leave_rounds: u32,
    /// Largest number of peers tracked; news of more is dropped and counted.
    pub max_peers: usize,
    /// Largest number of live keys per peer.
    pub max_keys_per_peer: usize,
    /// Largest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes. Must fit in one frame with room to spare.
    pub max_value_bytes: usize,
    /// Largest peer id and address, in bytes.
    pub max_id_bytes: usize,
    /// Versions and heartbeats above this are absurd: frames carrying them
    /// are dropped. 2^48 allows a million updates a second for eight years.
    pub max_version: u64,
    /// A generation may be at most this far ahead of this node's own clock
    /// (generations are start times in milliseconds); further is absurd.
    pub max_generation_skew: Duration,
    /// Most entries in one digest. A Syn carries the node's own entry, the
    /// peers whose state changed recently, and a rotating slice of the rest,
    /// up to this many; larger slices refresh heartbeats faster and cost
    /// bytes in every round. Incoming digests with more entries are dropped.
    /// 4 to 100,000.
    pub max_digest_entries: usize,
    /// Events buffered for slow readers of `Node::events`; a reader that falls
    /// further behind is told how many it missed. The buffer (about 100
    /// bytes a slot) is allocated in full when the first reader subscribes.
    pub event_buffer: usize,
    /// Incoming queries buffered for slow readers of `Node::requests`; a
    /// reader that falls further behind misses the oldest. Every slot is
    /// allocated when the first reader subscribes (as `event_buffer`'s are),
    /// so this is sized for queries, which are rare, not for the events of a
    /// join.
    /// At least 1.
    pub request_buffer: usize,
    /// The cluster keyring. `Some`: every frame is sealed with its primary
    /// key (XChaCha20-Poly1305) and must open under one of its keys; frames
    /// that do not are dropped and counted. `None` (the default): frames
    /// travel in plaintext, and sealed frames are dropped.
    pub keyring: Option<Keyring>,
    /// What a node with a keyring does about plaintext frames: refuse them
    /// (the default), accept them, or also send them (the steps of turning
    /// encryption on in a running cluster). No effect without a keyring.
    pub plaintext: Plaintext,
    /// The broadcast channel's retransmit multiplier: a node sends each
    /// message it holds to at most `mult * ceil(log10(N + 1))` peers, N the
    /// nodes it knows live (memberlist's `RetransmitMult`, default 4 there
    /// too). 1 to 64.
    pub broadcast_retransmit_mult: u32,
    /// Share of each frame's body, in percent, that broadcasts may take; the
    /// rest stays for digests and deltas. Frames with no broadcast pending
    /// are unchanged. 1 to 50.
    pub broadcast_frame_percent: u8,
    /// Most broadcasts waiting to be retransmitted; when full, the one sent
    /// most often makes room (counted in `Stats::messages_queue_dropped`).
    /// 1 to 1,000,000.
    pub max_pending_broadcasts: usize,
    /// Message ids remembered to deliver and relay each message once; the
    /// oldest is forgotten first. Past it, the per-author window
    /// (`broadcast_replay_window`) still refuses replays. 16 to 10,000,000.
    pub broadcast_cache: usize,
    /// Sequence numbers remembered per author: a message whose sequence
    /// number is this far or further behind the author's highest, or one
    /// already delivered, is a replay, dropped and counted. Also the most
    /// reordering tolerated between one author's messages. 1 to 65,536.
    pub broadcast_replay_window: u64,
    /// Authors whose sequence numbers are remembered; the one heard from
    /// longest ago is forgotten first. With `broadcast_replay_window`, this
    /// bounds the replay state (at most their product of numbers; 256 ×
    /// 1,024 by default). 1 to 1,000,000.
    pub max_broadcast_authors: usize,
    /// Most broadcasts one incoming frame may carry (checked on the raw
    /// bytes); a frame with more is dropped. 1 to 10,000.
    pub max_broadcasts_per_frame: usize,
    /// Largest topic name, in bytes. The subscription is advertised as the
    /// key `gossip.sub/<topic>`, so a topic is also held to
    /// `max_key_bytes - 11`. 1 to 4096.
    pub max_topic_bytes: usize,
    /// Largest message payload accepted, in bytes (checked on the raw
    /// bytes). A publisher is also held to what fits its frames' broadcast
    /// share ([`crate::Engine::max_publish_bytes`]). 1 byte to 64 MiB.
    pub max_message_bytes: usize,
    /// Most topics a node subscribes to (each is one of its keys, so
    /// `max_keys_per_peer` bounds them too). 1 to 1,000,000.
    pub max_subscriptions: usize,
    /// Largest hop limit a query may carry; incoming queries with more are
    /// dropped. 1 to 255.
    pub max_query_hops: u32,
    /// Longest timeout a query may carry. 1 ms to 1 h.
    pub max_query_timeout: Duration,
    /// Most queries this node waits for replies to, and most requests it
    /// may still answer; past it the oldest is closed. 1 to 1,000,000.
    pub max_open_queries: usize,
}

impl Default for Config {
    /// A 1 s round for clusters spread over slow or lossy links: a crash is
    /// reported in about 6 s.
    fn default() -> Self {
        Config {
            cluster_id: "default".to_string(),
            gossip_interval: Duration::from_secs(1),
            fanout: 3,
            idle_fanout: 2,
            idle_summary: true,
            reconcile_min_peers: 4096,
            filter_bits: 10,
            filter_min_peers: 256,
            monitors: 0,
            liveness_evidence_frames: 6,
            phi_threshold: 8.0,
            phi_window: 100,
            phi_min_std_dev: Duration::from_millis(500),
            phi_acceptable_pause: Duration::from_secs(2),
            min_live_peers: 2,
            seed_rejoin_interval: Duration::from_secs(15),
            max_frame_bytes: 64 * 1024,
            dead_peer_grace: Duration::from_secs(3600),
            tombstone_grace: Duration::from_secs(3600),
            rng_seed: None,
            leave_rounds: 3,
            max_peers: 100_000,
            max_keys_per_peer: 10_000,
            max_key_bytes: 256,
            max_value_bytes: 16 * 1024,
            max_id_bytes: 256,
            max_version: 1 << 48,
            max_generation_skew: Duration::from_secs(24 * 3600),
            max_digest_entries: 10_000,
            event_buffer: 4096,
            request_buffer: 256,
            keyring: None,
            plaintext: Plaintext::Refuse,
            broadcast_retransmit_mult: 4,
            broadcast_frame_percent: 25,
            max_pending_broadcasts: 1024,
            broadcast_cache: 8192,
            broadcast_replay_window: 256,
            max_broadcast_authors: 1024,
            max_broadcasts_per_frame: 256,
            max_topic_bytes: 128,
            max_message_bytes: 8 * 1024,
            max_subscriptions: 64,
            max_query_hops: 16,
            max_query_timeout: Duration::from_secs(60),
            max_open_queries: 1024,
        }
    }
}

impl Config {
    /// A data-centre cluster: 200 ms rounds (memberlist's LAN gossip
    /// interval); a crash is reported in about 1.5 s.
    pub fn lan() -> Self {
        Config {
            gossip_interval: Duration::from_millis(200),
            phi_min_std_dev: Duration::from_millis(100),
            phi_acceptable_pause: Duration::from_millis(400),
            dead_peer_grace: Duration::from_secs(600),
            tombstone_grace: Duration::from_secs(600),
            ..Config::default()
        }
    }

    /// Nodes on one machine, tests and the demo: 100 ms rounds, a crash is
    /// reported in under a second, dead peers are removed after 30 s.
    pub fn local() -> Self {
        Config {
            gossip_interval: Duration::from_millis(100),
            phi_min_std_dev: Duration::from_millis(50),
            phi_acceptable_pause: Duration::from_millis(100),
            dead_peer_grace: Duration::from_secs(30),
            tombstone_grace: Duration::from_secs(30),
            ..Config::default()
        }
    }

    /// Sets `gossip_interval` and scales the failure detector with it as
    /// [`Config::local`] does (minimum standard deviation half an interval,
    /// acceptable pause one interval): a crash is then reported in about
    /// eight intervals.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.gossip_interval = interval;
        self.phi_min_std_dev = interval / 2;
        self.phi_acceptable_pause = interval;
        self
    }

    /// Sets `cluster_id`.
    pub fn cluster_id(mut self, id: impl Into<String>) -> Self {
        self.cluster_id = id.into();
        self
    }

    /// Sets `idle_summary`.
    pub fn idle_summary(mut self, on: bool) -> Self {
        self.idle_summary = on;
        self
    }

    /// Sets `monitors`: monitored liveness with that many ring neighbours
    /// on each side watching each node (0: relayed heartbeats).
    pub fn monitors(mut self, n: usize) -> Self {
        self.monitors = n;
        self
    }

    /// Sets `rng_seed`.
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = Some(seed);
        self
    }

    /// Sets `keyring`: frames are sealed, and plaintext ones refused unless
    /// `plaintext` says otherwise.
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(field: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid {
                field,
                reason: reason.into(),
            })
        }
        if self.cluster_id.is_empty() || self.cluster_id.len() > 255 {
            return bad("cluster_id", "must be 1 to 255 bytes");
        }
        if self.gossip_interval < Duration::from_millis(1)
            || self.gossip_interval > Duration::from_secs(3600)
        {
            return bad("gossip_interval", "must be 1 ms to 1 h");
        }
        if !(1..=64).contains(&self.fanout) {
            return bad("fanout", "must be 1 to 64");
        }
        if self.liveness_evidence_frames > 1000 {
            return bad("liveness_evidence_frames", "must be 0 to 1000");
        }
        if !(1..=self.fanout).contains(&self.idle_fanout) {
            return bad("idle_fanout", "must be 1 to fanout");
        }
        if self.filter_bits != 0 && !(crate::filter::MIN_BITS..=16).contains(&self.filter_bits) {
            return bad("filter_bits", "must be 0, or 4 to 16");
        }
        if !(1..=10_000_000).contains(&self.filter_min_peers) {
            return bad("filter_min_peers", "must be 1 to 10,000,000");
        }
        if self.monitors > 8 {
            return bad("monitors", "must be 0 to 8");
        }
        if self.monitors > 0 && !self.idle_summary {
            return bad("monitors", "monitored liveness needs idle_summary");
        }
        if !(1.0..=100.0).contains(&self.phi_threshold) {
            return bad("phi_threshold", "must be 1 to 100");
        }
        if !(2..=100_000).contains(&self.phi_window) {
            return bad("phi_window", "must be 2 to 100,000");
        }
        if self.phi_min_std_dev.is_zero() {
            return bad("phi_min_std_dev", "must be positive");
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_frame_bytes) {
            return bad("max_frame_bytes", "must be 1 KiB to 64 MiB");
        }
        if self.max_peers == 0 {
            return bad("max_peers", "must be at least 1");
        }
        if self.max_keys_per_peer == 0 {
            return bad("max_keys_per_peer", "must be at least 1");
        }
        if self.max_key_bytes == 0 || self.max_id_bytes == 0 {
            return bad("max_key_bytes", "key and id limits must be at least 1");
        }
        if self.max_id_bytes > 4096 {
            return bad("max_id_bytes", "must be at most 4096");
        }
        // One entry, with its peer header and the frame header, must fit in a frame.
        let worst_entry = self.max_key_bytes + self.max_value_bytes + 64;
        let seal = if self.keyring.is_some() {
            SEAL_OVERHEAD
        } else {
            0
        };
        let worst_header = 3 * self.max_id_bytes + self.cluster_id.len() + 128 + seal;
        if worst_entry + worst_header > self.max_frame_bytes {
            return bad(
                "max_value_bytes",
                format!(
                    "a {} byte value with a {} byte key does not fit a {} byte frame",
                    self.max_value_bytes, self.max_key_bytes, self.max_frame_bytes
                ),
            );
        }
        if self.max_version == 0 {
            return bad("max_version", "must be positive");
        }
        if !(4..=100_000).contains(&self.max_digest_entries) {
            return bad("max_digest_entries", "must be 4 to 100,000");
        }
        if self.seed_rejoin_interval > Duration::from_secs(24 * 3600) {
            return bad("seed_rejoin_interval", "must be at most 24 h");
        }
        if self.event_buffer == 0 {
            return bad("event_buffer", "must be at least 1");
        }
        if self.request_buffer == 0 {
            return bad("request_buffer", "must be at least 1");
        }
        if !(1..=64).contains(&self.broadcast_retransmit_mult) {
            return bad("broadcast_retransmit_mult", "must be 1 to 64");
        }
        if !(1..=50).contains(&self.broadcast_frame_percent) {
            return bad("broadcast_frame_percent", "must be 1 to 50");
        }
        if !(1..=1_000_000).contains(&self.max_pending_broadcasts) {
            return bad("max_pending_broadcasts", "must be 1 to 1,000,000");
        }
        if !(16..=10_000_000).contains(&self.broadcast_cache) {
            return bad("broadcast_cache", "must be 16 to 10,000,000");
        }
        if !(1..=65_536).contains(&self.broadcast_replay_window) {
            return bad("broadcast_replay_window", "must be 1 to 65,536");
        }
        if !(1..=1_000_000).contains(&self.max_broadcast_authors) {
            return bad("max_broadcast_authors", "must be 1 to 1,000,000");
        }
        if !(1..=10_000).contains(&self.max_broadcasts_per_frame) {
            return bad("max_broadcasts_per_frame", "must be 1 to 10,000");
        }
        // The next three are also held to other limits when used (the
        // subscription key, the frame's share, the keys per peer), so that
        // every configuration valid before pub/sub existed stays valid.
        if !(1..=4096).contains(&self.max_topic_bytes) {
            return bad("max_topic_bytes", "must be 1 to 4096");
        }
        if !(1..=64 * 1024 * 1024).contains(&self.max_message_bytes) {
            return bad("max_message_bytes", "must be 1 byte to 64 MiB");
        }
        if !(1..=1_000_000).contains(&self.max_subscriptions) {
            return bad("max_subscriptions", "must be 1 to 1,000,000");
        }
        if !(1..=255).contains(&self.max_query_hops) {
            return bad("max_query_hops", "must be 1 to 255");
        }
        if self.max_query_timeout < Duration::from_millis(1)
            || self.max_query_timeout > Duration::from_secs(3600)
        {
            return bad("max_query_timeout", "must be 1 ms to 1 h");
        }
        if !(1..=1_000_000).contains(&self.max_open_queries) {
            return bad("max_open_queries", "must be 1 to 1,000,000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        Config::default().validate().unwrap();
        Config::lan().validate().unwrap();
        Config::local().validate().unwrap();
    }

    #[test]
    fn out_of_range_fields_are_refused() {
        let mut c = Config::local();
        c.fanout = 0;
        assert!(c.validate().is_err());
        let mut c = Config::local();
        c.max_frame_bytes = 2048;
        c.max_value_bytes = 4096;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "max_value_bytes",
                ..
            })
        ));
        let c = Config::local().cluster_id("");
        assert!(c.validate().is_err());
        for (field, change) in [
            (
                "broadcast_retransmit_mult",
                (|c: &mut Config| c.broadcast_retransmit_mult = 0) as fn(&mut Config),
            ),
            ("broadcast_frame_percent", |c| {
                c.broadcast_frame_percent = 51
            }),
            ("max_pending_broadcasts", |c| c.max_pending_broadcasts = 0),
            ("broadcast_cache", |c| c.broadcast_cache = 15),
            ("broadcast_replay_window", |c| c.broadcast_replay_window = 0),
            ("max_broadcast_authors", |c| c.max_broadcast_authors = 0),
            ("max_broadcasts_per_frame", |c| {
                c.max_broadcasts_per_frame = 0
            }),
            ("max_topic_bytes", |c| c.max_topic_bytes = 4097),
            ("max_message_bytes", |c| c.max_message_bytes = 0),
            ("max_subscriptions", |c| c.max_subscriptions = 0),
            ("max_query_hops", |c| c.max_query_hops = 256),
            ("max_query_timeout", |c| {
                c.max_query_timeout = Duration::ZERO
            }),
            ("max_open_queries", |c| c.max_open_queries = 0),
        ] {
            let mut c = Config::local();
            change(&mut c);
            assert!(
                matches!(c.validate(), Err(ConfigError::Invalid { field: f, .. }) if f == field),
                "{field}: {:?}",
                c.validate()
            );
        }
    }
}
