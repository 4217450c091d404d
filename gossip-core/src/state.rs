//! One peer's state as a node holds it: versioned keys, tombstones, liveness.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::phi::{Detector, PhiParams};
use crate::wire::{DigestEntry, KeyValue};
use crate::{PeerId, PeerStatus};

/// A key's current value or tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) value: Bytes,
    pub(crate) version: u64,
    pub(crate) deleted: bool,
}

/// Everything a node knows of one peer (or of itself).
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) generation: u64,
    pub(crate) addr: String,
    pub(crate) heartbeat: u64,
    /// Every version up to this one is reflected in `keys` (gap-free prefix).
    pub(crate) max_version: u64,
    /// Tombstones at or below this version have been garbage-collected.
    pub(crate) gc_floor: u64,
    pub(crate) status: PeerStatus,
    pub(crate) status_since: Instant,
    pub(crate) keys: BTreeMap<String, Entry>,
    /// Current entries by version, for building deltas in version order.
    by_version: BTreeMap<u64, String>,
    /// Tombstones in the order this node learned them: (when, version).
    tombstones: VecDeque<(Instant, u64)>,
    live_keys: usize,
    pub(crate) detector: Detector,
    /// When this node last learned something new of the peer (a version, a
    /// generation, that it left): such peers ride in every digest for a
    /// while so the news spreads as fast as a rumour.
    pub(crate) changed_at: Instant,
    /// The last Syn (by the engine's count) whose digest named this peer:
    /// marks what a digest mentioned without a set of its ids.
    pub(crate) mentioned_in: u32,
}

impl Peer {
    pub(crate) fn new(
        generation: u64,
        addr: String,
        now: Instant,
        interval: Duration,
        p: &PhiParams,
    ) -> Peer {
        Peer {
            generation,
            addr,
            heartbeat: 0,
            max_version: 0,
            gc_floor: 0,
            status: PeerStatus::Live,
            status_since: now,
            keys: BTreeMap::new(),
            by_version: BTreeMap::new(),
            tombstones: VecDeque::new(),
            live_keys: 0,
            detector: Detector::new(now, interval, p),
            changed_at: now,
            mentioned_in: 0,
        }
    }

    /// Takes heartbeat `hb` of `generation` if it is newer than the one
    /// held: one detector sample per increase. `relay_live` is whether the
    /// node it came through holds the peer live: a dead peer's higher
    /// heartbeat from a node that holds it dead too is old news (the last
    /// beats before it went silent), taken without reviving it. Returns
    /// whether the peer was dead and is live again.
    pub(crate) fn take_heartbeat(
        &mut self,
        now: Instant,
        generation: u64,
        hb: u64,
        relay_live: bool,
        p: &PhiParams,
    ) -> bool {
        if self.generation != generation || hb <= self.heartbeat {
            return false;
        }
        if self.status == PeerStatus::Dead && !relay_live {
            self.heartbeat = hb;
            return false;
        }
        self.heartbeat = hb;
        self.detector.record(now, p);
        if self.status == PeerStatus::Dead {
            self.status = PeerStatus::Live;
            self.status_since = now;
            self.detector.reset_clock(now, p);
            return true;
        }
        false
    }

    pub(crate) fn live_keys(&self) -> usize {
        self.live_keys
    }

    /// Stores `entry` under `key` unless the key already holds a version at
    /// least as new. Returns the replaced entry, or `Err(())` if refused.
    pub(crate) fn put(
        &mut self,
        key: &str,
        entry: Entry,
        now: Instant,
    ) -> Result<Option<Entry>, ()> {
        if let Some(old) = self.keys.get(key) {
            if old.version >= entry.version {
                return Err(());
            }
        }
        let version = entry.version;
        let deleted = entry.deleted;
        let old = self.keys.insert(key.to_string(), entry);
        if let Some(old) = &old {
            self.by_version.remove(&old.version);
            if !old.deleted {
                self.live_keys -= 1;
            }
        }
        self.by_version.insert(version, key.to_string());
        if deleted {
            self.tombstones.push_back((now, version));
        } else {
            self.live_keys += 1;
        }
        Ok(old)
    }

    /// Drops every key and tombstone; returns the keys that were live.
    pub(crate) fn clear(&mut self) -> Vec<(String, Entry)> {
        let keys = std::mem::take(&mut self.keys);
        self.by_version.clear();
        self.tombstones.clear();
        self.live_keys = 0;
        keys.into_iter().filter(|(_, e)| !e.deleted).collect()
    }

    /// Entries with a version above `from`, in version order.
    pub(crate) fn entries_after(&self, from: u64) -> impl Iterator<Item = KeyValue> + '_ {
        self.by_version.range(from + 1..).map(|(&version, key)| {
            let e = &self.keys[key];
            KeyValue {
                key: key.clone(),
                value: e.value.clone(),
                version,
                deleted: e.deleted,
            }
        })
    }

    /// Forgets tombstones older than `grace`, raising the GC floor.
    pub(crate) fn collect_garbage(&mut self, now: Instant, grace: Duration) {
        while let Some(&(at, version)) = self.tombstones.front() {
            if now.saturating_duration_since(at) < grace {
                break;
            }
            self.tombstones.pop_front();
            if let Some(key) = self.by_version.get(&version) {
                if self
                    .keys
                    .get(key)
                    .is_some_and(|e| e.deleted && e.version == version)
                {
                    self.keys.remove(key);
                    self.by_version.remove(&version);
                    self.gc_floor = self.gc_floor.max(version);
                }
            }
        }
    }

    /// How long the peer has had its status, in milliseconds (0 while live:
    /// only dead and left are worth their bytes on the wire).
    pub(crate) fn status_age_ms(&self, now: Instant) -> u64 {
        if self.status == PeerStatus::Live {
            0
        } else {
            now.saturating_duration_since(self.status_since).as_millis() as u64
        }
    }

    /// How long ago this node saw the peer's current heartbeat arrive, in
    /// milliseconds (for a node itself: since its last round).
    pub(crate) fn heartbeat_age_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.detector.last())
            .as_millis() as u64
    }

    pub(crate) fn digest_entry(&self, id: &PeerId, now: Instant) -> DigestEntry {
        DigestEntry {
            id: id.clone(),
            generation: self.generation,
            max_version: self.max_version,
            heartbeat: self.heartbeat,
            gc_floor: self.gc_floor,
            status: self.status,
            status_age_ms: self.status_age_ms(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: u64, deleted: bool) -> Entry {
        Entry {
            value: if deleted {
                Bytes::new()
            } else {
                Bytes::from("x")
            },
            version: v,
            deleted,
        }
    }

    #[test]
    fn older_versions_never_replace_newer() {
        let now = Instant::now();
        let mut p = Peer::new(
            1,
            "a".into(),
            now,
            Duration::from_millis(100),
            &PhiParams::new(100, 50.0, 0.0, 8.0),
        );
        p.put("k", entry(5, false), now).unwrap();
        assert!(p.put("k", entry(4, false), now).is_err());
        assert!(p.put("k", entry(5, true), now).is_err());
        assert_eq!(p.keys["k"].version, 5);
        assert_eq!(p.entries_after(0).count(), 1);
    }

    #[test]
    fn tombstones_are_collected_after_grace_and_raise_the_floor() {
        let now = Instant::now();
        let grace = Duration::from_secs(10);
        let mut p = Peer::new(
            1,
            "a".into(),
            now,
            Duration::from_millis(100),
            &PhiParams::new(100, 50.0, 0.0, 8.0),
        );
        p.put("k", entry(1, false), now).unwrap();
        p.put("k", entry(2, true), now).unwrap();
        assert_eq!(p.live_keys(), 0);
        p.collect_garbage(now + Duration::from_secs(5), grace);
        assert!(p.keys.contains_key("k"));
        p.collect_garbage(now + grace, grace);
        assert!(!p.keys.contains_key("k"));
        assert_eq!(p.gc_floor, 2);
        assert_eq!(p.entries_after(0).count(), 0);
    }
}
