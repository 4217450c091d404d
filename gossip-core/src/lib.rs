//! A Scuttlebutt gossip engine for cluster membership.
//!
//! The engine ([`Engine`]) is sans-IO: it never reads a clock, opens a socket
//! or draws from the OS random generator. Time comes in as an argument, frames
//! come in through `handle_frame` and go out through `poll_transmit`, events
//! through `poll_event`. The async driver ([`Node`]) runs one engine per tokio
//! task over any [`Transport`], optionally writing the peer table through to a
//! [`Storage`] (a persistent peer book).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod broadcast;
mod config;
mod delta;
mod digest;
mod driver;
mod engine;
mod error;
mod event;
mod exchange;
mod filter;
mod intern;
pub mod keyring;
mod lookup;
mod monitor;
mod peer_stats;
mod phi;
pub mod pubsub;
pub mod query;
mod select;
pub mod set;
pub mod sim;
mod spare;
mod stamp;
mod state;
mod stats;
mod table;
mod table_hash;
mod transport;
pub mod wire;

#[cfg(feature = "testing")]
pub mod testing;

pub use config::Config;
pub use driver::{Events, IncomingRequest, Node, NodeBuilder, Replies, Requests, Subscription};
pub use engine::{Engine, PeerView, Transmit};
pub use error::{
    ConfigError, DecodeError, Error, IdentityError, KeyError, KeyringError, PubSubError,
    TransportError,
};
pub use event::Event;
pub use gossip_storage::{
    MemoryStorage, PeerId, PeerRecord, PeerStatus, Storage, StorageError, Versioned,
};
pub use keyring::{Key, KeyId, Keyring, Plaintext};
pub use peer_stats::PeerStats;
pub use pubsub::{Identity, Message};
pub use query::{QueryEvent, QueryOptions, Request};
pub use stats::Stats;
pub use transport::{ConnectionStats, Transport, TransportStats};
