//! Cluster membership over Scuttlebutt gossip.
//!
//! Embed a [`Node`] in each process of a clustered service: it learns which
//! peers are alive (phi-accrual failure detection) and what each advertises
//! (versioned keys: role, load, address, shards), with no central server.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), gossip::Error> {
//! use gossip::{Config, Node, PeerId};
//! use gossip::transport::mem::MemNetwork;
//!
//! let net = MemNetwork::new(42);
//! let a = Node::builder("a")
//!     .config(Config::local())
//!     .transport(net.bind("mem:a"))
//!     .start()
//!     .await?;
//! let b = Node::builder("b")
//!     .config(Config::local())
//!     .seeds(["mem:a"])
//!     .transport(net.bind("mem:b"))
//!     .start()
//!     .await?;
//! a.set("role", "db")?;
//! while b.get(&PeerId::from("a"), "role").is_none() {
//!     tokio::time::sleep(std::time::Duration::from_millis(100)).await;
//! }
//! assert_eq!(b.live_peers(), vec![PeerId::from("a")]);
//! a.shutdown().await?;
//! b.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The engine underneath is sans-IO ([`Engine`]); [`sim`] runs thousands of
//! engines in virtual time. Transports are pluggable ([`Transport`]): an
//! in-process one for tests ([`transport::mem`]) and TCP ([`transport::tcp`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use bytes::Bytes;
pub use gossip_core::*;

/// Peer tables: the [`Storage`] trait, [`MemoryStorage`](storage::MemoryStorage) and the
/// persistent [`RedbStorage`](storage::RedbStorage).
pub mod storage {
    pub use gossip_storage::*;
}

/// Transports: the [`Transport`](crate::Transport) trait and the shipped implementations.
pub mod transport {
    pub use gossip_core::{Transport, TransportError, TransportStats};

    /// The in-process network, with seeded loss, latency and partitions.
    pub mod mem {
        pub use gossip_transport_mem::*;
    }

    /// TCP: length-prefixed frames over reused connections.
    pub mod tcp {
        pub use gossip_transport_tcp::*;
    }
}

/// Seed discovery: the [`Discover`](discovery::Discover) trait, DNS names,
/// multicast DNS and a DHT topic, and the loop that hands what they find to
/// a node ([`Node::set_seeds`]).
pub mod discovery {
    pub use gossip_discovery::*;
}
