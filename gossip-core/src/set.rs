//! A set of items the whole cluster shares (dat-gossip's service).
//!
//! Each node advertises items of a named set; [`ClusterSet::list`] is the
//! sorted union of what every peer this node knows advertises, itself
//! included; [`ClusterSet::changes`] tells when it changes. It rides on the
//! nodes' own gossiped keys: an item is the key `gossip.set/NAME/HEX` (the item's
//! bytes in lowercase hex) with an empty value, so an advertisement spreads
//! like any key, a withdrawal is a delete (a tombstone that every node
//! applies, so a withdrawn item never comes back), and a peer's items leave
//! the union when the peer is removed (`dead_peer_grace` after it died or
//! left) or restarts without them.
//!
//! dat-gossip's vocabulary: `advertise(data)` is [`ClusterSet::advertise`],
//! `delete(data)` is [`ClusterSet::withdraw`], `list()` is
//! [`ClusterSet::list`], the `changed` event is [`SetChanges::recv`]. Its
//! `broadcast()` has no counterpart: gossip sends what peers lack on its own.
//! Unlike dat-gossip's grow-only set, an item is in the union only while a
//! known peer advertises it.
//!
//! ```no_run
//! # async fn f(node: gossip_core::Node) -> Result<(), gossip_core::set::SetError> {
//! use gossip_core::set::ClusterSet;
//! let archives = ClusterSet::new(node, "archives")?;
//! archives.advertise(b"dat://1234")?;
//! let mut changes = archives.changes();
//! while let Some(change) = changes.recv().await {
//!     println!("added {:?}, now {} items", change.added, change.list.len());
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::{Error, Event, Events, Node};

/// Why a set operation was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// The set's name is empty or holds a `/`.
    #[error("set name {0:?} must be non-empty and hold no '/'")]
    BadName(String),
    /// The item is empty.
    #[error("an item must not be empty")]
    EmptyItem,
    /// The item does not fit in a key (`max_key_bytes` holds the prefix and
    /// the item in hex, two characters a byte).
    #[error("item of {len} bytes too large for this set (at most {max} bytes)")]
    ItemTooLarge {
        /// The item's length.
        len: usize,
        /// The largest item this set takes.
        max: usize,
    },
    /// The node refused the key (it left, stopped, or holds too many keys).
    #[error(transparent)]
    Node(#[from] Error),
}

/// One named set shared by the cluster, seen from one node.
#[derive(Clone)]
pub struct ClusterSet {
    node: Node,
    prefix: String,
}

impl std::fmt::Debug for ClusterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSet")
            .field("node", self.node.id())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl ClusterSet {
    /// The set `name` on `node`. Every node that uses the same name shares
    /// the set.
    pub fn new(node: Node, name: &str) -> Result<ClusterSet, SetError> {
        if name.is_empty() || name.contains('/') {
            return Err(SetError::BadName(name.to_string()));
        }
        Ok(ClusterSet {
            node,
            prefix: format!("gossip.set/{name}/"),
        })
    }

    /// The largest item this set takes, in bytes.
    pub fn max_item_bytes(&self) -> usize {
        self.node
            .config()
            .max_key_bytes
            .saturating_sub(self.prefix.len())
            / 2
    }

    fn key(&self, item: &[u8]) -> Result<String, SetError> {
        if item.is_empty() {
            return Err(SetError::EmptyItem);
        }
        let max = self.max_item_bytes();
        if item.len() > max {
            return Err(SetError::ItemTooLarge {
                len: item.len(),
                max,
            });
        }
        let mut key = String::with_capacity(self.prefix.len() + 2 * item.len());
        key.push_str(&self.prefix);
        for b in item {
            key.push(char::from(HEX[usize::from(b >> 4)]));
            key.push(char::from(HEX[usize::from(b & 15)]));
        }
        Ok(key)
    }

    fn item(&self, key: &str) -> Option<Bytes> {
        let hex = key.strip_prefix(&self.prefix)?.as_bytes();
        if hex.is_empty() || hex.len() % 2 != 0 {
            return None;
        }
        let digit = |c: u8| HEX.iter().position(|&h| h == c);
        hex.chunks(2)
            .map(|pair| Some((digit(pair[0])? << 4 | digit(pair[1])?) as u8))
            .collect::<Option<Vec<u8>>>()
            .map(Bytes::from)
    }

    /// Advertises `item` from this node (a no-op if it already does).
    pub fn advertise(&self, item: impl AsRef<[u8]>) -> Result<(), SetError> {
        let key = self.key(item.as_ref())?;
        if self.node.get(self.node.id(), &key).is_none() {
            self.node.set(key, Bytes::new())?;
        }
        Ok(())
    }

    /// Stops advertising `item` from this node. It stays in the union while
    /// another peer advertises it.
    pub fn withdraw(&self, item: impl AsRef<[u8]>) -> Result<(), SetError> {
        let key = self.key(item.as_ref())?;
        self.node.delete(key)?;
        Ok(())
    }

    /// What this node itself advertises, sorted.
    pub fn local(&self) -> Vec<Bytes> {
        self.items_of(self.node.id())
    }

    fn items_of(&self, peer: &crate::PeerId) -> Vec<Bytes> {
        self.node
            .keys(peer)
            .into_iter()
            .filter_map(|(k, _)| self.item(&k))
            .collect()
    }

    /// The sorted union of what every known peer (this node included)
    /// advertises.
    pub fn list(&self) -> Vec<Bytes> {
        let mut all = BTreeSet::new();
        for r in self.node.peers() {
            all.extend(self.items_of(&r.id));
        }
        all.into_iter().collect()
    }

    /// A stream of the changes to [`list`](ClusterSet::list) from now on,
    /// as gossip from peers brings them. This node's own `advertise` and
    /// `withdraw` are applied by its task in call order and show in `list`
    /// once applied, and in the next change reported.
    pub fn changes(&self) -> SetChanges {
        SetChanges {
            events: self.node.events(),
            last: self.list(),
            set: self.clone(),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// One change of a set's union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetChange {
    /// Items that joined the union, sorted.
    pub added: Vec<Bytes>,
    /// Items that left it, sorted.
    pub removed: Vec<Bytes>,
    /// The union after the change (dat-gossip's `changed` list).
    pub list: Vec<Bytes>,
}

/// Changes of a [`ClusterSet`]; see [`ClusterSet::changes`].
pub struct SetChanges {
    events: Events,
    last: Vec<Bytes>,
    set: ClusterSet,
}

impl std::fmt::Debug for SetChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetChanges")
            .field("set", &self.set)
            .field("items", &self.last.len())
            .finish_non_exhaustive()
    }
}

impl SetChanges {
    /// The union as of the last change reported (or as of when the stream
    /// was made): what the next change is counted from.
    pub fn list(&self) -> &[Bytes] {
        &self.last
    }

    /// The next change of the union; `None` once the node has stopped.
    /// Changes that land together (one delta, a removed peer) come as one.
    pub async fn recv(&mut self) -> Option<SetChange> {
        loop {
            let e = self.events.recv().await?;
            let relevant = match &e {
                Event::KeyUpdated { key, .. } | Event::KeyDeleted { key, .. } => {
                    key.starts_with(&self.set.prefix)
                }
                Event::PeerRemoved { .. } | Event::PeerRestarted { .. } | Event::Lagged { .. } => {
                    true
                }
                _ => false,
            };
            if !relevant {
                continue;
            }
            let now = self.set.list();
            if now == self.last {
                continue;
            }
            let old: BTreeSet<&Bytes> = self.last.iter().collect();
            let new: BTreeSet<&Bytes> = now.iter().collect();
            let change = SetChange {
                added: new.difference(&old).map(|b| (*b).clone()).collect(),
                removed: old.difference(&new).map(|b| (*b).clone()).collect(),
                list: now.clone(),
            };
            self.last = now;
            return Some(change);
        }
    }
}
