//! [`TcpConfig`]: every timeout and every bound of the TCP transport.

use std::time::Duration;

use gossip_core::ConfigError;

/// Largest frame the 4-byte length prefix can describe that this transport
/// agrees to handle (1 GiB); `max_frame_bytes` must not exceed it.
pub const MAX_FRAME_LIMIT: usize = 1 << 30;

/// How a [`TcpTransport`](crate::TcpTransport) connects, queues, and what it
/// accepts.
///
/// Start from [`TcpConfig::default`] and change the fields you need;
/// [`TcpConfig::validate`] is called by
/// [`TcpTransport::bind_with`](crate::TcpTransport::bind_with).
///
/// ```
/// use std::time::Duration;
/// use gossip_transport_tcp::TcpConfig;
///
/// let mut config = TcpConfig::default();
/// config.max_frame_bytes = 64 * 1024 + 4096;
/// config.idle_timeout = Duration::from_secs(60);
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpConfig {
    /// Largest frame sent or accepted, in bytes (the payload, without the
    /// 4-byte length prefix). `send` refuses a larger frame with
    /// `TransportError::FrameTooLarge`; an incoming length prefix above it
    /// closes that connection before any buffer is allocated for it. Set it to
    /// the node's `Config::max_frame_bytes` (or a little above). An inbound
    /// connection may buffer up to this many bytes, so memory for inbound
    /// traffic is bounded by `max_inbound * max_frame_bytes`.
    /// 1 byte to 1 GiB; default 1 MiB.
    pub max_frame_bytes: usize,
    /// Time allowed to resolve a peer's address and open a connection to it.
    /// Default 1 s.
    pub connect_timeout: Duration,
    /// Time allowed to write one batch of frames to a peer. A write that takes
    /// longer closes the connection and drops the frames of that batch.
    /// Default 1 s.
    pub write_timeout: Duration,
    /// Delay before the first reconnection attempt after a failure to connect
    /// or write. Each further failure doubles it, up to `backoff_max`; every
    /// delay is jittered (between half and all of the nominal value) so that
    /// peers do not reconnect in lockstep. Default 50 ms.
    pub backoff_initial: Duration,
    /// Cap on the reconnection delay. At least `backoff_initial`; default 5 s.
    pub backoff_max: Duration,
    /// Frames queued per peer while they wait for the connection. When the
    /// queue is full the oldest frame is dropped (and counted) to make room:
    /// gossip is best effort and the newest state is the most useful.
    /// At least 1; default 256.
    pub send_queue: usize,
    /// Largest number of inbound connections served at once. A connection
    /// accepted over the cap is closed at once and counted. At least 1;
    /// default 1024.
    pub max_inbound: usize,
    /// An inbound connection that delivers no complete frame for this long is
    /// closed, whether it sends nothing or stops in the middle of a frame.
    /// Default 30 s.
    pub idle_timeout: Duration,
    /// A peer that has been given nothing to send for this long has its
    /// connection closed and its writer task ended; so does a peer that
    /// could not be reached and has been given nothing new for this long (its
    /// queued frames are dropped and counted). The next `send` to it starts
    /// afresh. Keep it below the remote side's `idle_timeout`, so that the
    /// sender, not the receiver, closes an idle connection. Default 15 s.
    pub peer_idle_timeout: Duration,
    /// Received frames buffered for `recv`. When the buffer is full the
    /// connections stop being read, which slows the senders down (their
    /// queues then drop their oldest frames). At least 1; default 1024.
    pub recv_queue: usize,
    /// Largest number of peers with a writer task at once. A `send` to a new
    /// peer beyond it fails (and is counted). At least 1; default 4096.
    pub max_peers: usize,
    /// The address [`local_addr`](gossip_core::Transport::local_addr) reports,
    /// the one other nodes are told to reach this node at. `None` (the
    /// default) reports the bound socket address, which is wrong when binding
    /// to `0.0.0.0` or behind NAT: set it to a reachable `host:port` then.
    pub advertise_addr: Option<String>,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_frame_bytes: 1024 * 1024,
            connect_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            send_queue: 256,
            max_inbound: 1024,
            idle_timeout: Duration::from_secs(30),
            peer_idle_timeout: Duration::from_secs(15),
            recv_queue: 1024,
            max_peers: 4096,
            advertise_addr: None,
        }
    }
}

impl TcpConfig {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(field: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid {
                field,
                reason: reason.into(),
            })
        }
        const DAY: Duration = Duration::from_secs(24 * 3600);
        if !(1..=MAX_FRAME_LIMIT).contains(&self.max_frame_bytes) {
            return bad("max_frame_bytes", "must be 1 byte to 1 GiB");
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("write_timeout", self.write_timeout),
            ("backoff_initial", self.backoff_initial),
            ("backoff_max", self.backoff_max),
            ("idle_timeout", self.idle_timeout),
            ("peer_idle_timeout", self.peer_idle_timeout),
        ] {
            if value < Duration::from_millis(1) || value > DAY {
                return bad(field, "must be 1 ms to 24 h");
            }
        }
        if self.backoff_max < self.backoff_initial {
            return bad("backoff_max", "must be at least backoff_initial");
        }
        for (field, value) in [
            ("send_queue", self.send_queue),
            ("recv_queue", self.recv_queue),
            ("max_peers", self.max_peers),
        ] {
            if !(1..=1 << 24).contains(&value) {
                return bad(field, "must be 1 to 16,777,216");
            }
        }
        if !(1..=1 << 20).contains(&self.max_inbound) {
            return bad("max_inbound", "must be 1 to 1,048,576");
        }
        if let Some(addr) = &self.advertise_addr {
            if let Err(reason) = crate::addr::check(addr) {
                return bad("advertise_addr", reason);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        TcpConfig::default().validate().unwrap();
    }

    type Change = fn(&mut TcpConfig);

    #[test]
    fn out_of_range_fields_are_refused() {
        let cases: Vec<(&str, Change)> = vec![
            ("max_frame_bytes", |c| c.max_frame_bytes = 0),
            ("max_frame_bytes", |c| {
                c.max_frame_bytes = MAX_FRAME_LIMIT + 1
            }),
            ("connect_timeout", |c| c.connect_timeout = Duration::ZERO),
            ("backoff_max", |c| c.backoff_max = Duration::from_millis(10)),
            ("send_queue", |c| c.send_queue = 0),
            ("max_inbound", |c| c.max_inbound = 0),
            ("idle_timeout", |c| c.idle_timeout = Duration::ZERO),
            ("advertise_addr", |c| c.advertise_addr = Some("nope".into())),
        ];
        for (field, change) in cases {
            let mut c = TcpConfig::default();
            change(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected Invalid, got {other:?}"),
            }
        }
    }
}
