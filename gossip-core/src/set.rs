//! A cluster-wide set (dat-gossip's `advertise` / `delete` / `list`), on the
//! existing keys: each node advertises an item as its key
//! `gossip.set/<item in hex>` (empty value), withdraws it by deleting the
//! key, and the set is the sorted union of what this node and every peer it
//! holds live advertise.
//!
//! Keys, not the broadcast channel, because a set is state: it must
//! converge after partitions, restarts and withdrawals, and versioned keys
//! with tombstones do exactly that (a broadcast that a partitioned node
//! missed is gone). A withdrawn item leaves the set once no live peer
//! advertises it; a dead peer's items leave with it.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::time::Instant;

use bytes::Bytes;

use crate::engine::Engine;
use crate::error::KeyError;
use crate::PeerStatus;

/// The key prefix of a set item: `gossip.set/<item in lower-case hex>`.
pub const SET_PREFIX: &str = "gossip.set/";

/// The key that advertises `item`.
pub fn item_key(item: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(SET_PREFIX.len() + 2 * item.len());
    s.push_str(SET_PREFIX);
    for b in item {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// The item a key advertises, if it is a well-formed set key.
pub fn key_item(key: &str) -> Option<Bytes> {
    let hex = key.strip_prefix(SET_PREFIX)?.as_bytes();
    if hex.is_empty() || hex.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    hex.chunks_exact(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .map(Bytes::from)
}

/// The largest item advertisable under `max_key_bytes`.
pub fn max_item_bytes(max_key_bytes: usize) -> usize {
    max_key_bytes.saturating_sub(SET_PREFIX.len()) / 2
}

impl Engine {
    /// Advertises `item` in the cluster-wide set; returns whether it was
    /// new. Items are at most `(max_key_bytes - 11) / 2` bytes (122 by
    /// default) and each is one of this node's keys.
    pub fn advertise(&mut self, item: &[u8], now: Instant) -> Result<bool, KeyError> {
        if item.is_empty() {
            return Err(KeyError::Empty);
        }
        let key = item_key(item);
        if self.get(&self.id.clone(), &key).is_some() {
            return Ok(false);
        }
        self.set(&key, Bytes::new(), now)?;
        Ok(true)
    }

    /// Withdraws `item` from what this node advertises; returns whether it
    /// did advertise it. The item stays in the set while another live peer
    /// advertises it.
    pub fn withdraw(&mut self, item: &[u8], now: Instant) -> Result<bool, KeyError> {
        if item.is_empty() {
            return Ok(false);
        }
        Ok(self.delete(&item_key(item), now)?.is_some())
    }

    /// The cluster-wide set: every item this node or a live peer it holds
    /// advertises, sorted, each once.
    pub fn list(&self) -> Vec<Bytes> {
        let mut items = BTreeSet::new();
        for (id, p) in &self.peers {
            if *id != self.id && p.status != PeerStatus::Live {
                continue;
            }
            let range = (Bound::Included(SET_PREFIX), Bound::Unbounded);
            for (k, e) in p.keys.range::<str, _>(range) {
                if !k.starts_with(SET_PREFIX) {
                    break;
                }
                if !e.deleted {
                    if let Some(item) = key_item(k) {
                        items.insert(item);
                    }
                }
            }
        }
        items.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_keys_and_bad_keys_are_none() {
        for item in [&b"x"[..], b"\x00\xff", &[7; 122]] {
            assert_eq!(key_item(&item_key(item)).as_deref(), Some(item));
        }
        for bad in [
            "gossip.set/",
            "gossip.set/a",
            "gossip.set/zz",
            "gossip.set/AB",
            "other",
        ] {
            assert_eq!(key_item(bad), None, "{bad}");
        }
        assert_eq!(item_key(b"\x01\xab"), "gossip.set/01ab");
        assert_eq!(max_item_bytes(256), 122);
    }
}
