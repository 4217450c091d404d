//! Counters of the TCP transport: [`TcpStats`] and the atomics behind it.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use gossip_core::TransportStats;

/// A snapshot of the TCP transport's counters, from
/// [`TcpTransport::tcp_stats`](crate::TcpTransport::tcp_stats).
///
/// Every field counts since the transport was bound, except the three
/// gauges `inbound_active`, `outbound_active` and `peers`.
/// [`frames_dropped`](TcpStats::frames_dropped) is the sum of the `dropped_*`
/// fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpStats {
    /// Frames written to a peer's socket.
    pub frames_sent: u64,
    /// Payload bytes of those frames (without length prefixes).
    pub bytes_sent: u64,
    /// Frames returned by `recv`.
    pub frames_received: u64,
    /// Payload bytes of those frames.
    pub bytes_received: u64,
    /// Every frame dropped, for whatever reason: the sum of the `dropped_*`
    /// fields.
    pub frames_dropped: u64,
    /// Oldest frames dropped from a peer's full send queue.
    pub dropped_queue_full: u64,
    /// Frames `send` refused because they exceed `max_frame_bytes`.
    pub dropped_send_too_large: u64,
    /// Frames `send` refused because `max_peers` peers already have a writer.
    pub dropped_too_many_peers: u64,
    /// Frames lost in a write that failed or timed out (their connection was
    /// closed).
    pub dropped_write_failed: u64,
    /// Frames still queued for a peer that stayed unreachable and was given
    /// nothing new for `peer_idle_timeout`, or that were queued at `close`.
    pub dropped_undeliverable: u64,
    /// Incoming frames whose length prefix exceeds `max_frame_bytes`; each
    /// closed its connection before anything was allocated for it.
    pub dropped_oversized_frame: u64,
    /// Incoming frames cut short: the connection ended, failed or timed out
    /// in the middle of a frame.
    pub dropped_truncated_frame: u64,
    /// Inbound connections accepted (within `max_inbound`).
    pub inbound_accepted: u64,
    /// Inbound connections closed at once because `max_inbound` were open.
    pub inbound_refused: u64,
    /// Inbound connections closed for delivering no complete frame for
    /// `idle_timeout`.
    pub inbound_idle_timeout: u64,
    /// Inbound connections ended by a read error (reset by the peer, ...).
    pub inbound_read_errors: u64,
    /// Errors of the accept loop (out of file descriptors, ...).
    pub accept_errors: u64,
    /// Outbound connections established.
    pub outbound_connected: u64,
    /// Outbound connection attempts that failed (resolution, refusal, timeout).
    pub outbound_connect_failed: u64,
    /// Outbound connections closed by the remote side while idle.
    pub outbound_remote_closed: u64,
    /// Connections opened: `inbound_accepted + outbound_connected`.
    pub connections_opened: u64,
    /// Connections closed, either way, once opened.
    pub connections_closed: u64,
    /// Gauge: inbound connections open now.
    pub inbound_active: u64,
    /// Gauge: outbound connections open now.
    pub outbound_active: u64,
    /// Gauge: peers with a writer task now.
    pub peers: u64,
}

impl TcpStats {
    /// Every counter and gauge with its name (the field name) and meaning,
    /// for exporters.
    pub fn counters(&self) -> [(&'static str, &'static str, u64); 25] {
        [
            ("frames_sent", "Frames written to a peer's socket.", self.frames_sent),
            ("bytes_sent", "Payload bytes of those frames (without length prefixes).", self.bytes_sent),
            ("frames_received", "Frames returned by recv.", self.frames_received),
            ("bytes_received", "Payload bytes of those frames.", self.bytes_received),
            ("frames_dropped", "Every frame dropped, for whatever reason: the sum of the dropped_* fields.", self.frames_dropped),
            ("dropped_queue_full", "Oldest frames dropped from a peer's full send queue.", self.dropped_queue_full),
            ("dropped_send_too_large", "Frames send refused because they exceed max_frame_bytes.", self.dropped_send_too_large),
            ("dropped_too_many_peers", "Frames send refused because max_peers peers already have a writer.", self.dropped_too_many_peers),
            ("dropped_write_failed", "Frames lost in a write that failed or timed out (their connection was closed).", self.dropped_write_failed),
            ("dropped_undeliverable", "Frames still queued for a peer that stayed unreachable and was given nothing new for peer_idle_timeout, or that were queued at close.", self.dropped_undeliverable),
            ("dropped_oversized_frame", "Incoming frames whose length prefix exceeds max_frame_bytes; each closed its connection before anything was allocated for it.", self.dropped_oversized_frame),
            ("dropped_truncated_frame", "Incoming frames cut short: the connection ended, failed or timed out in the middle of a frame.", self.dropped_truncated_frame),
            ("inbound_accepted", "Inbound connections accepted (within max_inbound).", self.inbound_accepted),
            ("inbound_refused", "Inbound connections closed at once because max_inbound were open.", self.inbound_refused),
            ("inbound_idle_timeout", "Inbound connections closed for delivering no complete frame for idle_timeout.", self.inbound_idle_timeout),
            ("inbound_read_errors", "Inbound connections ended by a read error (reset by the peer, ...).", self.inbound_read_errors),
            ("accept_errors", "Errors of the accept loop (out of file descriptors, ...).", self.accept_errors),
            ("outbound_connected", "Outbound connections established.", self.outbound_connected),
            ("outbound_connect_failed", "Outbound connection attempts that failed (resolution, refusal, timeout).", self.outbound_connect_failed),
            ("outbound_remote_closed", "Outbound connections closed by the remote side while idle.", self.outbound_remote_closed),
            ("connections_opened", "Connections opened: inbound_accepted + outbound_connected.", self.connections_opened),
            ("connections_closed", "Connections closed, either way, once opened.", self.connections_closed),
            ("inbound_active", "Gauge: inbound connections open now.", self.inbound_active),
            ("outbound_active", "Gauge: outbound connections open now.", self.outbound_active),
            ("peers", "Gauge: peers with a writer task now.", self.peers),
        ]
    }
}

impl From<TcpStats> for TransportStats {
    fn from(s: TcpStats) -> Self {
        let mut t = TransportStats::default();
        t.frames_sent = s.frames_sent;
        t.bytes_sent = s.bytes_sent;
        t.frames_received = s.frames_received;
        t.bytes_received = s.bytes_received;
        t.frames_dropped = s.frames_dropped;
        t.connections_opened = s.connections_opened;
        t.connections_failed = s.outbound_connect_failed;
        t.connections_closed = s.connections_closed;
        t
    }
}

/// The live counters, shared by every task of one transport.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) frames_received: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_send_too_large: AtomicU64,
    pub(crate) dropped_too_many_peers: AtomicU64,
    pub(crate) dropped_write_failed: AtomicU64,
    pub(crate) dropped_undeliverable: AtomicU64,
    pub(crate) dropped_oversized_frame: AtomicU64,
    pub(crate) dropped_truncated_frame: AtomicU64,
    pub(crate) inbound_accepted: AtomicU64,
    pub(crate) inbound_refused: AtomicU64,
    pub(crate) inbound_idle_timeout: AtomicU64,
    pub(crate) inbound_read_errors: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    pub(crate) outbound_connected: AtomicU64,
    pub(crate) outbound_connect_failed: AtomicU64,
    pub(crate) outbound_remote_closed: AtomicU64,
    pub(crate) inbound_closed: AtomicU64,
    pub(crate) outbound_closed: AtomicU64,
    pub(crate) peers: AtomicU64,
}

// Counters are SeqCst (as cheap as Relaxed for an increment on x86) so that
// a reader seeing one event's last counter also sees its earlier ones: a
// connection's reason counter is bumped before its `inbound_closed`, a
// batch's bytes before its frames.

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, SeqCst);
}

/// Adds one to a counter.
pub(crate) fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, SeqCst);
}

impl Counters {
    /// A snapshot; fields read one after the other may be a few events apart.
    pub(crate) fn snapshot(&self) -> TcpStats {
        let get = |c: &AtomicU64| c.load(SeqCst);
        let inbound_accepted = get(&self.inbound_accepted);
        let outbound_connected = get(&self.outbound_connected);
        let inbound_closed = get(&self.inbound_closed);
        let outbound_closed = get(&self.outbound_closed);
        let mut s = TcpStats {
            frames_sent: get(&self.frames_sent),
            bytes_sent: get(&self.bytes_sent),
            frames_received: get(&self.frames_received),
            bytes_received: get(&self.bytes_received),
            frames_dropped: 0,
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_send_too_large: get(&self.dropped_send_too_large),
            dropped_too_many_peers: get(&self.dropped_too_many_peers),
            dropped_write_failed: get(&self.dropped_write_failed),
            dropped_undeliverable: get(&self.dropped_undeliverable),
            dropped_oversized_frame: get(&self.dropped_oversized_frame),
            dropped_truncated_frame: get(&self.dropped_truncated_frame),
            inbound_accepted,
            inbound_refused: get(&self.inbound_refused),
            inbound_idle_timeout: get(&self.inbound_idle_timeout),
            inbound_read_errors: get(&self.inbound_read_errors),
            accept_errors: get(&self.accept_errors),
            outbound_connected,
            outbound_connect_failed: get(&self.outbound_connect_failed),
            outbound_remote_closed: get(&self.outbound_remote_closed),
            connections_opened: inbound_accepted + outbound_connected,
            connections_closed: inbound_closed + outbound_closed,
            inbound_active: inbound_accepted.saturating_sub(inbound_closed),
            outbound_active: outbound_connected.saturating_sub(outbound_closed),
            peers: get(&self.peers),
        };
        s.frames_dropped = s.dropped_queue_full
            + s.dropped_send_too_large
            + s.dropped_too_many_peers
            + s.dropped_write_failed
            + s.dropped_undeliverable
            + s.dropped_oversized_frame
            + s.dropped_truncated_frame;
        s
    }
}
