//! The `Storage` trait: the peer table readers see.
//!
//! The engine keeps its own working copy of the cluster state (it must iterate
//! it in a fixed order every round and stay deterministic) and writes every
//! change through to a `Storage`. The node handle answers `get`, `live_peers`
//! and `dead_peers` from the storage directly, without a round trip to the
//! node's task; a persistent storage doubles as a peer book, whose addresses a
//! restarted node contacts alongside its seeds.

use bytes::Bytes;

use crate::id::PeerId;

/// What a node believes about a peer's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerStatus {
    /// Heartbeats arrive as expected.
    Live,
    /// Phi crossed the threshold: the peer is presumed crashed or unreachable.
    Dead,
    /// The peer announced that it left.
    Left,
}

/// One peer's record in the table (its keys are stored separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    /// The peer's id.
    pub id: PeerId,
    /// The incarnation this record describes.
    pub generation: u64,
    /// The address the peer advertises.
    pub addr: String,
    /// Its liveness as seen by this node.
    pub status: PeerStatus,
}

/// A key's value together with the owner's version of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The value.
    pub value: Bytes,
    /// The owner's version counter when the value was set.
    pub version: u64,
}

/// A peer table: records, and each peer's live keys.
///
/// Synchronous and object-safe (`Arc<dyn Storage>`); the node's task writes
/// while any number of handles read concurrently, so implementations use
/// interior mutability. Writes return errors; reads return what the store
/// has. Deleted keys are removed (tombstones live in the engine).
///
/// Contract (checked by `gossip_core::testing::storage`, which every implementation
/// should run): a read after a write
/// on the same thread sees the write; `remove_peer` removes the peer's keys
/// too; `put_peer` leaves the peer's keys alone.
pub trait Storage: Send + Sync + 'static {
    /// Inserts or replaces a peer's record.
    fn put_peer(&self, record: PeerRecord) -> Result<(), StorageError>;
    /// Removes a peer's record and all its keys.
    fn remove_peer(&self, id: &PeerId) -> Result<(), StorageError>;
    /// A peer's record.
    fn peer(&self, id: &PeerId) -> Option<PeerRecord>;
    /// Every record, in no particular order.
    fn peers(&self) -> Vec<PeerRecord>;
    /// Sets a peer's key.
    fn put_key(&self, peer: &PeerId, key: &str, value: Versioned) -> Result<(), StorageError>;
    /// Removes a peer's key.
    fn remove_key(&self, peer: &PeerId, key: &str) -> Result<(), StorageError>;
    /// Removes all of a peer's keys (its record stays).
    fn clear_keys(&self, peer: &PeerId) -> Result<(), StorageError>;
    /// A peer's key.
    fn get(&self, peer: &PeerId, key: &str) -> Option<Versioned>;
    /// All of a peer's keys, sorted by key.
    fn keys(&self, peer: &PeerId) -> Vec<(String, Versioned)>;

    /// The peer book: peers remembered from earlier runs of this node, whose
    /// addresses the node contacts at start alongside its seeds (the
    /// mirror above is rebuilt from gossip at every start; the book is not).
    /// Sorted by id. Default: none, for a store that forgets at exit.
    fn book(&self) -> Vec<PeerRecord> {
        Vec::new()
    }

    /// Ids of peers whose status is `Live`, sorted.
    fn live_peers(&self) -> Vec<PeerId> {
        self.with_status(PeerStatus::Live)
    }
    /// Ids of peers whose status is `Dead`, sorted.
    fn dead_peers(&self) -> Vec<PeerId> {
        self.with_status(PeerStatus::Dead)
    }
    /// Ids of peers with the given status, sorted.
    fn with_status(&self, status: PeerStatus) -> Vec<PeerId> {
        let mut ids: Vec<PeerId> = self
            .peers()
            .into_iter()
            .filter(|r| r.status == status)
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
    }
}

/// A storage backend failed to record a change. The engine's own view did
/// change; readers of the storage may see stale data until the next write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The backend reported a failure, described.
    #[error("storage backend failed: {0}")]
    Backend(String),
}
