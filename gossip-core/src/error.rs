//! Error types, one per boundary. Every variant says whether state changed.

use std::time::Duration;

use crate::keyring::KeyId;

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
    /// The frame decodes but breaks a protocol rule (absurd version or
    /// generation, unordered entries, a tombstone with a value...).
    #[error("invalid frame: {0}; dropped, no state changed")]
    Invalid(String),
    /// The frame holds more of something than a configured limit allows
    /// (an id, key or value too long; too many digest or delta entries).
    /// Counts and lengths are checked on the raw bytes, before anything is
    /// allocated for them.
    #[error("{what} of {got} over the limit of {max} ({limit}); dropped, no state changed")]
    OverLimit {
        /// What is over the limit.
        what: &'static str,
        /// Its size or count.
        got: usize,
        /// The limit.
        max: usize,
        /// The `Config` field that sets the limit.
        limit: &'static str,
    },
    /// A sealed frame's tag did not verify under the key its header names:
    /// forged, corrupted, or sealed for another cluster.
    #[error("sealed frame does not verify under key {key}; dropped, no state changed")]
    BadTag {
        /// The key id in the frame's header.
        key: KeyId,
    },
    /// A sealed frame names a key this node does not hold (or the node has
    /// no keyring).
    #[error("sealed frame under unknown key {key}; dropped, no state changed")]
    UnknownKey {
        /// The key id in the frame's header.
        key: KeyId,
    },
    /// A plaintext frame reached a node that refuses them
    /// (`Config::plaintext` is `Plaintext::Refuse` and it has a keyring).
    #[error(
        "plaintext frame refused (this node requires sealed frames); dropped, no state changed"
    )]
    PlaintextRefused,
    /// A sealed frame with an envelope version this node does not speak.
    #[error("unknown envelope version {got} (this node speaks {ours}); dropped, no state changed")]
    UnknownEnvelope {
        /// Version in the frame.
        got: u8,
        /// Version this node speaks.
        ours: u8,
    },
}

/// A key or keyring was refused, or a key file could not be read. No keyring
/// changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// A key is not 32 bytes long.
    #[error("a key is 32 bytes, got {len}; no keyring changed")]
    BadLength {
        /// Length given.
        len: usize,
    },
    /// A line of a key file is not 64 hex digits (the key itself is never
    /// echoed).
    #[error("key file line {line}: {reason}; no keyring changed")]
    BadHex {
        /// Line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A key file holds no key.
    #[error("no key found (one key a line, 64 hex digits); no keyring changed")]
    Empty,
    /// A key file could not be read.
    #[error("cannot read key file {path}: {source}; no keyring changed")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No installed key has this id.
    #[error("no key {0} in the keyring; no keyring changed")]
    UnknownKey(KeyId),
    /// The primary key cannot be removed; make another key primary first.
    #[error("key {0} is the primary and cannot be removed; no keyring changed")]
    RemovePrimary(KeyId),
    /// A different key with the same id is already installed.
    #[error("another key with id {0} is installed; no keyring changed")]
    IdCollision(KeyId),
    /// A key id is not 8 hex digits.
    #[error("bad key id {0:?}: expected 8 hex digits")]
    BadKeyId(String),
    /// With the seal's overhead, the configuration would no longer be valid
    /// (the largest value would not fit in a frame).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The operating system gave no randomness to generate a key.
    #[error("no randomness from the operating system: {0}")]
    Entropy(String),
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
    /// A key or keyring was refused; no keyring changed.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// A publish or subscription was refused; nothing was sent.
    #[error(transparent)]
    PubSub(#[from] PubSubError),
    /// The identity key could not be loaded or generated.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The node builder lacks a required part.
    #[error("node builder: {0}; nothing was started")]
    Builder(&'static str),
    /// The node has stopped; the call had no effect.
    #[error("the node has stopped")]
    Stopped,
}

/// A publish, subscribe or unsubscribe was refused. No state changed and
/// nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PubSubError {
    /// The topic is empty.
    #[error("empty topic; nothing done")]
    EmptyTopic,
    /// The topic is longer than `Config::max_topic_bytes`.
    #[error("topic of {len} bytes exceeds max_topic_bytes {max}; nothing done")]
    TopicTooLong {
        /// Topic length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The payload is larger than `Config::max_message_bytes`, or than what
    /// fits this node's frames' broadcast share.
    #[error("message of {len} bytes exceeds the largest publishable, {max}; nothing sent")]
    MessageTooLarge {
        /// Payload length.
        len: usize,
        /// The largest payload that can be published on this topic.
        max: usize,
    },
    /// The node already subscribes to `Config::max_subscriptions` topics.
    #[error("already {max} subscriptions (max_subscriptions); nothing done")]
    TooManySubscriptions {
        /// Limit.
        max: usize,
    },
    /// The engine has no identity key to sign with.
    #[error("no identity key to sign with; nothing sent")]
    NoIdentity,
    /// The node has left the cluster.
    #[error("the node has left; nothing done")]
    Left,
    /// A query's hop limit is 0 or over `Config::max_query_hops`, or its
    /// timeout is zero or over `Config::max_query_timeout`.
    #[error("query hop limit {hops} or timeout {timeout_ms} ms out of range; nothing sent")]
    BadQuery {
        /// The hop limit asked for.
        hops: u32,
        /// The timeout asked for, in milliseconds.
        timeout_ms: u64,
    },
    /// The request to reply to is unknown here, or its timeout passed.
    #[error("no open request with this id (unknown or timed out); nothing sent")]
    UnknownRequest,
    /// The subscription could not be advertised.
    #[error("subscription key refused: {0}")]
    Key(#[from] KeyError),
}

/// An identity (ed25519 signing) key could not be read, parsed or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The key is not 32 bytes long.
    #[error("an identity key is 32 bytes, got {len}")]
    BadLength {
        /// Length given.
        len: usize,
    },
    /// The key file does not hold 64 hex digits (the key is never echoed).
    #[error("identity key file: {0}")]
    BadHex(String),
    /// The key file could not be read.
    #[error("cannot read identity key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The operating system's random generator failed.
    #[error("no entropy for a new identity key: {0}")]
    Entropy(String),
}
