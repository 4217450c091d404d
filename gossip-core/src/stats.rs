//! Counters a node keeps about the frames it handles.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::transport::TransportStats;

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// A snapshot of a node's counters.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $($(#[doc = $doc])* pub $name: u64,)*
            /// The transport's own counters (filled in by the node handle).
            pub transport: TransportStats,
        }

        impl Stats {
            /// Every counter of the engine (not the transport's, which
            /// [`TransportStats::counters`] lists) with its name (the field
            /// name) and its meaning, for exporters.
            pub fn counters(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($name), concat!($($doc),*).trim_start(), self.$name),)*]
            }
        }

        /// Shared atomic counters: the engine writes, handles read.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> Stats {
                Stats {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                    transport: TransportStats::default(),
                }
            }
        }
    };
}

counters! {
    /// Frames accepted and processed.
    frames_in,
    /// Bytes of accepted frames.
    bytes_in,
    /// Frames produced for sending.
    frames_out,
    /// Bytes of produced frames.
    bytes_out,
    /// Frames dropped because they exceeded `max_frame_bytes`.
    dropped_oversize,
    /// Frames dropped because they did not decode.
    dropped_malformed,
    /// Frames dropped because they came from another cluster.
    dropped_wrong_cluster,
    /// Frames dropped because of an unknown protocol version.
    dropped_unknown_version,
    /// Frames dropped because they broke a protocol rule (absurd versions
    /// or generations, unordered deltas, a tombstone with a value).
    dropped_invalid,
    /// Frames dropped because something in them was over a configured limit
    /// (id, key or value length; digest or delta entries), found before
    /// anything was allocated for it.
    dropped_over_limit,
    /// Sealed frames dropped because their tag did not verify (forged,
    /// corrupted, or sealed for another cluster).
    dropped_bad_tag,
    /// Sealed frames dropped because they name a key this node does not
    /// hold (or it has no keyring).
    dropped_unknown_key,
    /// Plaintext frames dropped because this node requires sealed ones.
    dropped_plaintext,
    /// Peer deltas skipped because they did not connect to what this node holds.
    deltas_skipped,
    /// New peers ignored because `max_peers` was reached.
    peers_refused,
    /// Keys ignored because a peer reached `max_keys_per_peer`.
    keys_refused,
    /// Gossip ignored because it described a peer this node removed, in a
    /// state no newer than the one it removed (a zombie kept out), or
    /// introduced a live peer on a heartbeat so old that this node's
    /// detector would find it dead at once.
    stale_gossip_ignored,
    /// Writes the storage backend refused.
    storage_errors,
    /// Gossip rounds run.
    rounds,
    /// Messages this node published.
    messages_published,
    /// Messages delivered to this node's subscriptions (once each).
    messages_delivered,
    /// Messages accepted (verified, new) to relay, delivered or not.
    messages_accepted,
    /// Copies of messages that arrived again (an honest relay's duplicate,
    /// recognised by id in the cache); ignored.
    messages_duplicate,
    /// Messages dropped because their signature did not verify (forged,
    /// or payload, topic, author or sequence number altered) or their key
    /// is not the one their claimed author advertises.
    messages_forged,
    /// Messages dropped because their author's sequence number was already
    /// used, or is older than the replay window.
    messages_replayed,
    /// Pending messages dropped because `max_pending_broadcasts` was reached.
    messages_queue_dropped,
    /// Messages dropped because a local subscriber fell behind
    /// (`Config::event_buffer`).
    messages_lagged,
    /// Copies of messages sent (one per message per frame).
    broadcasts_sent,
    /// Bytes of those copies.
    broadcast_bytes_sent,
    /// Queries this node sent.
    queries_sent,
    /// Queries delivered to this node as requests (filter matched).
    requests_received,
    /// Replies this node sent.
    replies_sent,
    /// Replies delivered to this node's open queries.
    replies_received,
    /// Replies dropped because their query was not open here (timed out,
    /// closed, or never sent by this node).
    replies_dropped,
    /// Idle exchanges answered: a Syn's table summary matched this node's,
    /// so only heartbeats moved.
    idle_exchanges,
    /// Syns whose table summary did not match this node's; each was
    /// answered with a digest, a summary, or bucket hashes the other way
    /// (see `Config::reconcile_min_peers`).
    summary_mismatches,
    /// Digests of only the buckets in which two tables differ, sent in
    /// answer to a larger table's bucket hashes.
    bucket_digests,
    /// Digests that named this node's peers by a Bloom filter instead of
    /// an entry each: answers to a clearly larger table (see
    /// `Config::filter_bits`).
    filter_digests,
    /// Digest entries sent (one per peer a digest names; a summary names
    /// none): what reconciling tables costs beyond the deltas themselves.
    digest_entries_sent,
    /// Peers this node did not hold that a delta added to its table.
    peers_learned,
    /// Peer deltas received (one per peer a frame's deltas describe, this
    /// node included). Those beyond `peers_learned` went to peers already
    /// held: updates, or, while a node joins, copies of what another
    /// partner sent first.
    deltas_received,
    /// Beats sent to ring neighbours (monitored liveness).
    beats_out,
    /// Beats received from ring neighbours (monitored liveness).
    beats_in,
    /// Beats from a table of another size left unanswered because this
    /// node was still learning its cluster (more than one new peer in the
    /// last round; monitored liveness): its gossip partners carry the news.
    beats_deferred,
    /// Deaths this node believed from a watcher's verdict in gossip
    /// (monitored liveness) rather than found by its own detector.
    verdicts_taken,
    /// Dead entries sent back to a node that offered as live a peer this
    /// one had removed (monitored liveness): that node has no detector
    /// timing the peer and would go on handing it out.
    verdicts_sent,
    /// Indirect probes sent: this node found a neighbour silent and asked
    /// the neighbour's other watchers about it before a verdict.
    probes_out,
    /// Indirect probes this node answered.
    probes_in,
    /// Pings this node sent to a peer it does not time, asked about it by
    /// the peer's watchers (SWIM's ping-req; monitored liveness).
    pings_out,
    /// Silent neighbours another watcher had heard recently: no verdict,
    /// the link between the two was at fault (monitored liveness).
    probes_refuted,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
