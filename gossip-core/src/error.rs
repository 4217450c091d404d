//! Error types, one per boundary. Every variant says whether state changed.

use std::time::Duration;

/// Why an incoming frame was dropped. In every case the frame changed no state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is larger than `Config::max_frame_bytes`; it was not parsed.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes; dropped, no state changed")]
    TooLarge {
        /// Length of the frame.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The bytes are not a valid protobuf `Frame` (garbage or truncated).
    #[error("undecodable frame: {0}; dropped, no state changed")]
    Malformed(String),
    /// The frame speaks a protocol version this node does not.
    #[error("unknown protocol version {got} (this node speaks {ours}); dropped, no state changed")]
    UnknownVersion {
        /// Version in the frame.
        got: u32,
        /// Version this node speaks.
        ours: u32,
    },
    /// The frame belongs to another cluster.
    #[error("frame from cluster {got:?}, this node is in {ours:?}; dropped, no state changed")]
    WrongCluster {
        /// Cluster id in the frame.
        got: String,
        /// This node's cluster id.
        ours: String,
    },
    /// The frame decodes but breaks a protocol rule or a configured limit
    /// (absurd version or generation, unordered entries, oversized key...).
    #[error("invalid frame: {0}; dropped, no state changed")]
    Invalid(String),
}

/// A configuration value is out of its safe range. Nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field has a value outside its documented range.
    #[error("config field `{field}`: {reason}; nothing was started")]
    Invalid {
        /// Name of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A transport failed. Gossip is best effort: the engine's state is never
/// changed by a transport error, and the frame concerned is lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The address could not be parsed or resolved.
    #[error("bad address {addr:?}: {reason}")]
    BadAddress {
        /// The address as given.
        addr: String,
        /// Why it is bad.
        reason: String,
    },
    /// The address is already bound by another transport.
    #[error("address {0:?} is already in use")]
    AddrInUse(String),
    /// The frame is larger than the transport accepts.
    #[error("frame of {len} bytes exceeds the transport limit of {max} bytes")]
    FrameTooLarge {
        /// Length of the frame.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The transport was closed; no more frames can be sent or received.
    #[error("transport closed")]
    Closed,
    /// An operation did not complete in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// An I/O error from the operating system.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other failure, described.
    #[error("{0}")]
    Other(String),
}

/// A key or value handed to [`crate::Engine::set`] or the node handle was refused.
/// No state changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is empty.
    #[error("empty key; nothing set")]
    Empty,
    /// The key is longer than `Config::max_key_bytes`.
    #[error("key of {len} bytes exceeds max_key_bytes {max}; nothing set")]
    KeyTooLong {
        /// Key length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The value is larger than `Config::max_value_bytes`.
    #[error("value of {len} bytes exceeds max_value_bytes {max}; nothing set")]
    ValueTooLarge {
        /// Value length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The peer already holds `Config::max_keys_per_peer` keys.
    #[error("already {max} keys (max_keys_per_peer); nothing set")]
    TooManyKeys {
        /// Limit.
        max: usize,
    },
    /// The node has left the cluster; its state is final.
    #[error("the node has left; nothing set")]
    Left,
}

/// The top-level error of the node API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; nothing was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A key or value was refused; nothing was set.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The node builder lacks a required part.
    #[error("node builder: {0}; nothing was started")]
    Builder(&'static str),
    /// The node has stopped; the call had no effect.
    #[error("the node has stopped")]
    Stopped,
}
