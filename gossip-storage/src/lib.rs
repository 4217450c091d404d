//! Storage implementations for the gossip engine.
//!
//! [`MemoryStorage`] is the in-memory [`Storage`]: a concurrent peer
//! table on [`DashMap`]. It keeps the trait's contract: a read after a write
//! on the same thread sees the write, `put_peer` leaves the peer's keys alone,
//! `remove_peer` removes the record and its keys, and a peer's keys may be set
//! before or after its record. Writes never fail. Clones share one table, so a
//! node and its handles can each hold one.
//!
//! ```
//! use bytes::Bytes;
//! use gossip_storage::{MemoryStorage, PeerId, PeerRecord, PeerStatus, Storage, Versioned};
//!
//! let storage = MemoryStorage::new();
//! let id = PeerId::from("a");
//! storage.put_peer(PeerRecord {
//!     id: id.clone(),
//!     generation: 1,
//!     addr: "10.0.0.1:7946".into(),
//!     status: PeerStatus::Live,
//! })?;
//! storage.put_key(&id, "role", Versioned { value: Bytes::from("db"), version: 1 })?;
//!
//! assert_eq!(storage.live_peers(), vec![id.clone()]);
//! assert_eq!(storage.get(&id, "role").unwrap().value, "db");
//!
//! storage.remove_peer(&id)?;
//! assert!(storage.peer(&id).is_none() && storage.keys(&id).is_empty());
//! # Ok::<(), gossip_storage::StorageError>(())
//! ```
//!
//! [`RedbStorage`] is the persistent one: the same table plus a peer book
//! that outlives restarts, in one redb file, written by a background thread
//! in batches so the engine never waits for the disk. See its docs.
//!
//! The [`Storage`] trait and the types of the peer table live here so that
//! the engine (`gossip-core`, which re-exports them) can default to
//! [`MemoryStorage`] without a dependency cycle.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod id;
mod memory;
mod redb_storage;
pub mod small_map;
mod table;

pub use id::{fnv1a, PeerId, WeakPeerId};
pub use memory::MemoryStorage;
pub use redb_storage::{OpenError, RedbConfig, RedbStorage, WriterStats, DB_FILE, SCHEMA_VERSION};
pub use small_map::SmallMap;
pub use table::{PeerRecord, PeerStatus, Storage, StorageError, Versioned};
