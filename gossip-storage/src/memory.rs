//! [`MemoryStorage`]: the default [`Storage`](crate::Storage), a concurrent in-memory table.

use std::sync::Arc;

use crate::{PeerId, PeerRecord, PeerStatus, SmallMap, Storage, StorageError, Versioned};
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

/// An in-memory, concurrent peer table; the default [`Storage`].
///
/// Cheap to clone: clones share the same table. Nothing survives the process.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    /// Entries boxed: at 1,000 peers the hash table holds 2,048 slots
    /// (it grows at 7/8 full), so an 80-byte entry inline cost about twice
    /// its size; a pointer per slot costs 8.
    peers: Arc<DashMap<PeerId, Box<PeerEntry>>>,
}

/// What the table holds for one peer: its record, if any, and its keys.
///
/// The keys are a [`SmallMap`]: a vector sorted by name while the peer has
/// few (a `BTreeMap`'s first leaf has room for eleven entries, about 700
/// bytes for a peer with one key, and a node holds an entry for every peer),
/// a B-tree once it has many (a cluster-wide set is one key per item).
#[derive(Debug, Default)]
struct PeerEntry {
    record: Option<PeerRecord>,
    keys: SmallMap<Box<str>, Versioned>,
}

impl PeerEntry {
    fn is_empty(&self) -> bool {
        self.record.is_none() && self.keys.is_empty()
    }
}

impl MemoryStorage {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `f` to the peer's entry if there is one, then drops the entry
    /// if it holds neither a record nor keys.
    fn update_existing(&self, id: &PeerId, f: impl FnOnce(&mut PeerEntry)) {
        if let Entry::Occupied(mut slot) = self.peers.entry(id.clone()) {
            f(slot.get_mut());
            if slot.get().is_empty() {
                slot.remove();
            }
        }
    }
}

impl Storage for MemoryStorage {
    fn put_peer(&self, record: PeerRecord) -> Result<(), StorageError> {
        let id = record.id.clone();
        self.peers.entry(id).or_default().record = Some(record);
        Ok(())
    }

    fn remove_peer(&self, id: &PeerId) -> Result<(), StorageError> {
        self.peers.remove(id);
        Ok(())
    }

    fn peer(&self, id: &PeerId) -> Option<PeerRecord> {
        self.peers.get(id)?.record.clone()
    }

    fn peers(&self) -> Vec<PeerRecord> {
        self.peers.iter().filter_map(|e| e.record.clone()).collect()
    }

    fn put_key(&self, peer: &PeerId, key: &str, value: Versioned) -> Result<(), StorageError> {
        let mut e = self.peers.entry(peer.clone()).or_default();
        match e.keys.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                e.keys.insert(key.into(), value);
            }
        }
        Ok(())
    }

    fn remove_key(&self, peer: &PeerId, key: &str) -> Result<(), StorageError> {
        self.update_existing(peer, |e| {
            e.keys.remove(key);
        });
        Ok(())
    }

    fn clear_keys(&self, peer: &PeerId) -> Result<(), StorageError> {
        self.update_existing(peer, |e| e.keys = SmallMap::new());
        Ok(())
    }

    fn get(&self, peer: &PeerId, key: &str) -> Option<Versioned> {
        self.peers.get(peer)?.keys.get(key).cloned()
    }

    fn keys(&self, peer: &PeerId) -> Vec<(String, Versioned)> {
        self.peers.get(peer).map_or_else(Vec::new, |e| {
            e.keys
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        })
    }

    fn with_status(&self, status: PeerStatus) -> Vec<PeerId> {
        let mut ids: Vec<PeerId> = self
            .peers
            .iter()
            .filter_map(|e| {
                e.record
                    .as_ref()
                    .filter(|r| r.status == status)
                    .map(|r| r.id.clone())
            })
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn record(id: &str) -> PeerRecord {
        PeerRecord {
            id: id.into(),
            generation: 1,
            addr: format!("{id}:7946"),
            status: PeerStatus::Live,
        }
    }

    fn value(v: &'static str) -> Versioned {
        Versioned {
            value: Bytes::from_static(v.as_bytes()),
            version: 1,
        }
    }

    #[test]
    fn clones_share_the_table() {
        let a = MemoryStorage::new();
        let b = a.clone();
        a.put_peer(record("x")).unwrap();
        assert_eq!(b.peer(&"x".into()), Some(record("x")));
        b.remove_peer(&"x".into()).unwrap();
        assert!(a.peers().is_empty());
    }

    #[test]
    fn emptied_entries_are_dropped() {
        let s = MemoryStorage::new();
        let id = PeerId::from("x");
        s.put_key(&id, "k", value("v")).unwrap();
        s.remove_key(&id, "k").unwrap();
        assert!(s.peers.is_empty());

        s.put_key(&id, "k", value("v")).unwrap();
        s.clear_keys(&id).unwrap();
        assert!(s.peers.is_empty());

        s.put_peer(record("x")).unwrap();
        s.put_key(&id, "k", value("v")).unwrap();
        s.clear_keys(&id).unwrap();
        assert_eq!(s.peers.len(), 1, "the record keeps the entry");
    }

    #[test]
    fn keys_only_peers_are_not_listed() {
        let s = MemoryStorage::new();
        s.put_key(&"x".into(), "k", value("v")).unwrap();
        assert!(s.peers().is_empty());
        assert!(s.live_peers().is_empty());
    }
}
