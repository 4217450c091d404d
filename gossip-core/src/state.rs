//! One peer's state as a node holds it: versioned keys, tombstones, liveness.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use std::sync::Arc;

use bytes::Bytes;

use gossip_storage::small_map::SMALL_MAP_MAX;
use gossip_storage::SmallMap;

use crate::intern;
use crate::phi::{Detector, PhiParams};
use crate::stamp::Stamp;
use crate::wire::{DigestEntry, KeyValue};
use crate::{PeerId, PeerStatus};

/// A key's current value or tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) value: Bytes,
    pub(crate) version: u64,
    pub(crate) deleted: bool,
}

/// A peer's keys: only peers that have any hold this (most peers of a
/// large cluster advertise nothing, or little).
///
/// [`SmallMap`]s rather than `BTreeMap`s: sorted vectors while the peer has
/// few keys (a map's first leaf has room for eleven entries, about 1.2 KB for
/// a peer with one key across the two maps, and every node holds one of these
/// per peer), B-trees once it has many (a cluster-wide set is one key per
/// item, and inserting into a sorted vector of thousands, in random name
/// order, would be O(k²)). Key names are interned process-wide while the
/// peer has few (most peers advertise the same few names); the names of a
/// large set are mostly its own, and are not worth the table's lock.
#[derive(Debug, Clone, Default)]
struct Keys {
    /// Entries by key.
    keys: SmallMap<Arc<str>, Entry>,
    /// The key of every entry by version, for building deltas in version
    /// order (one key per version).
    by_version: SmallMap<u64, Arc<str>>,
    /// Tombstones in the order this node learned them: (when, version).
    tombstones: VecDeque<(Stamp, u64)>,
    live: usize,
}

/// Everything a node knows of one peer (or of itself): 88 bytes, the keys
/// behind a pointer only for peers that have any, the id and address shared
/// process-wide (see `intern.rs`), instants as 8-byte stamps.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) generation: u64,
    pub(crate) heartbeat: u64,
    /// Every version up to this one is reflected in `keys` (gap-free prefix).
    pub(crate) max_version: u64,
    /// Tombstones at or below this version have been garbage-collected.
    pub(crate) gc_floor: u64,
    pub(crate) addr: Arc<String>,
    keys: Option<Box<Keys>>,
    pub(crate) detector: Detector,
    status_since: Stamp,
    /// The last Syn (by the engine's count) whose digest named this peer:
    /// marks what a digest mentioned without a set of its ids.
    pub(crate) mentioned_in: u32,
    pub(crate) status: PeerStatus,
}

impl Peer {
    pub(crate) fn new(
        generation: u64,
        addr: &str,
        now: Instant,
        interval: Duration,
        p: &PhiParams,
    ) -> Peer {
        Peer::with_addr(generation, intern::addr(addr), now, interval, p)
    }

    /// [`Peer::new`] with the address already shared.
    pub(crate) fn with_addr(
        generation: u64,
        addr: Arc<String>,
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
            status_since: Stamp::of(now),
            keys: None,
            detector: Detector::new(now, interval, p),
            mentioned_in: 0,
        }
    }

    /// Sets the address (a shared copy) if it differs; returns whether it
    /// did. The same pointer is no change, and no string is read.
    pub(crate) fn set_shared_addr(&mut self, addr: &Arc<String>) -> bool {
        if Arc::ptr_eq(&self.addr, addr) || self.addr == *addr {
            return false;
        }
        self.addr = addr.clone();
        true
    }

    /// Sets the status, as of `since`.
    pub(crate) fn set_status(&mut self, status: PeerStatus, since: Instant) {
        self.set_status_at(status, Stamp::of(since));
    }

    /// [`set_status`](Peer::set_status) at a stamp.
    pub(crate) fn set_status_at(&mut self, status: PeerStatus, since: Stamp) {
        self.status = status;
        self.status_since = since;
    }

    /// Since when the peer has had its status (for a live peer, when it
    /// was learned or last revived).
    pub(crate) fn status_since(&self) -> Stamp {
        self.status_since
    }

    /// How long the peer has had its status.
    pub(crate) fn status_age(&self, now: Instant) -> Duration {
        Stamp::of(now).since(self.status_since)
    }

    /// The entry under `key`, value or tombstone.
    pub(crate) fn entry(&self, key: &str) -> Option<&Entry> {
        self.keys.as_ref()?.keys.get(key)
    }

    /// Every entry, values and tombstones, by key.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> + '_ {
        self.keys
            .iter()
            .flat_map(|k| k.keys.iter().map(|(name, e)| (&**name, e)))
    }

    /// Heartbeat `hb` of `generation` as a ping's answer brings it (from
    /// the peer, or from a watcher that heard it): taken as from a node
    /// that holds the peer live, no detector sample, and the detector's
    /// clock set to `heard`, when the answer says the peer was last heard.
    pub(crate) fn take_answered(
        &mut self,
        now: Instant,
        generation: u64,
        hb: u64,
        heard: Instant,
        params: &PhiParams,
    ) {
        self.take_heartbeat(Stamp::of(now), generation, hb, true, false, params);
        self.detector.reset_clock(heard, params);
    }

    /// Takes heartbeat `hb` of `generation`, arrived at `now`, if it is
    /// newer than the one held: one detector sample per increase.
    /// `relay_live` is whether the node it came through holds the peer
    /// live: a dead peer's higher
    /// heartbeat from a node that holds it dead too is old news (the last
    /// beats before it went silent), taken without reviving it. Returns
    /// whether the peer was dead and is live again. `sample` is whether
    /// the increase is a detector sample: always with relayed liveness; with
    /// monitored liveness only a beat from the peer itself is.
    pub(crate) fn take_heartbeat(
        &mut self,
        now: Stamp,
        generation: u64,
        hb: u64,
        relay_live: bool,
        sample: bool,
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
        if sample {
            self.detector.record_at(now, p);
        }
        if self.status == PeerStatus::Dead {
            self.set_status_at(PeerStatus::Live, now);
            self.detector.reset_clock_at(now, p);
            return true;
        }
        false
    }

    pub(crate) fn live_keys(&self) -> usize {
        self.keys.as_ref().map_or(0, |k| k.live)
    }

    /// Stores `entry` under `key` unless the key already holds a version at
    /// least as new. Returns the replaced entry, or `Err(())` if refused.
    pub(crate) fn put(
        &mut self,
        key: &str,
        entry: Entry,
        now: Instant,
    ) -> Result<Option<Entry>, ()> {
        if let Some(old) = self.entry(key) {
            if old.version >= entry.version {
                return Err(());
            }
        }
        let k = self.keys.get_or_insert_with(Default::default);
        let version = entry.version;
        let deleted = entry.deleted;
        let (name, old) = match k.keys.get_key_value(key) {
            Some((name, _)) => {
                let name = name.clone();
                let old = k.keys.insert(name.clone(), entry);
                (name, old)
            }
            None => {
                let name = if k.keys.len() < SMALL_MAP_MAX {
                    intern::name(key)
                } else {
                    Arc::from(key)
                };
                k.keys.insert(name.clone(), entry);
                (name, None)
            }
        };
        if let Some(old) = &old {
            k.by_version.remove(&old.version);
            if !old.deleted {
                k.live -= 1;
            }
        }
        k.by_version.insert(version, name);
        if deleted {
            k.tombstones.push_back((Stamp::of(now), version));
        } else {
            k.live += 1;
        }
        Ok(old)
    }

    /// Drops every key and tombstone; returns the keys that were live.
    pub(crate) fn clear(&mut self) -> Vec<(String, Entry)> {
        let Some(k) = self.keys.take() else {
            return Vec::new();
        };
        k.keys
            .into_iter()
            .filter(|(_, e)| !e.deleted)
            .map(|(name, e)| (name.to_string(), e))
            .collect()
    }

    /// Entries with a version above `from`, in version order.
    pub(crate) fn entries_after(&self, from: u64) -> impl Iterator<Item = KeyValue> + '_ {
        self.keys.iter().flat_map(move |k| {
            k.by_version
                .range_after(&from)
                .filter_map(move |(version, key)| {
                    let e = k.keys.get(&**key)?;
                    Some(KeyValue {
                        key: key.to_string(),
                        value: e.value.clone(),
                        version: *version,
                        deleted: e.deleted,
                    })
                })
        })
    }

    /// Forgets tombstones older than `grace`, raising the GC floor.
    #[inline]
    pub(crate) fn collect_garbage(&mut self, now: Instant, grace: Duration) {
        // Inlined: most peers hold no keys, and the
        // collector's walk visits every peer every round.
        if self.keys.is_some() {
            self.collect_tombstones(now, grace);
        }
    }

    fn collect_tombstones(&mut self, now: Instant, grace: Duration) {
        let Some(k) = self.keys.as_mut() else {
            return;
        };
        let now = Stamp::of(now);
        while let Some(&(at, version)) = k.tombstones.front() {
            if now.since(at) < grace {
                break;
            }
            k.tombstones.pop_front();
            let Some(name) = k.by_version.get(&version) else {
                continue;
            };
            if k.keys
                .get(&**name)
                .is_some_and(|e| e.deleted && e.version == version)
            {
                let name = name.clone();
                k.keys.remove(&*name);
                k.by_version.remove(&version);
                self.gc_floor = self.gc_floor.max(version);
            }
        }
        if k.keys.is_empty() && k.tombstones.is_empty() {
            self.keys = None;
        }
    }

    /// How long the peer has had its status, in milliseconds (0 while live:
    /// only dead and left are worth their bytes on the wire).
    pub(crate) fn status_age_ms(&self, now: Instant) -> u64 {
        if self.status == PeerStatus::Live {
            0
        } else {
            self.status_age(now).as_millis() as u64
        }
    }

    /// How long ago this node saw the peer's current heartbeat arrive, in
    /// milliseconds (for a node itself: since its last round).
    pub(crate) fn heartbeat_age_ms(&self, now: Instant) -> u64 {
        Stamp::of(now).since(self.detector.last_stamp()).as_millis() as u64
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

    fn peer(now: Instant) -> Peer {
        Peer::new(
            1,
            "a",
            now,
            Duration::from_millis(100),
            &PhiParams::new(100, 50.0, 0.0, 8.0),
        )
    }

    #[test]
    fn older_versions_never_replace_newer() {
        let now = Instant::now();
        let mut p = peer(now);
        p.put("k", entry(5, false), now).unwrap();
        assert!(p.put("k", entry(4, false), now).is_err());
        assert!(p.put("k", entry(5, true), now).is_err());
        assert_eq!(p.entry("k").map(|e| e.version), Some(5));
        assert_eq!(p.entries_after(0).count(), 1);
    }

    #[test]
    fn tombstones_are_collected_after_grace_and_raise_the_floor() {
        let now = Instant::now();
        let grace = Duration::from_secs(10);
        let mut p = peer(now);
        p.put("k", entry(1, false), now).unwrap();
        p.put("k", entry(2, true), now).unwrap();
        assert_eq!(p.live_keys(), 0);
        p.collect_garbage(now + Duration::from_secs(5), grace);
        assert!(p.entry("k").is_some());
        p.collect_garbage(now + grace, grace);
        assert!(p.entry("k").is_none());
        assert!(p.keys.is_none(), "no keys left: nothing allocated");
        assert_eq!(p.gc_floor, 2);
        assert_eq!(p.entries_after(0).count(), 0);
    }

    #[test]
    fn keys_stay_sorted_by_name_and_deltas_by_version() {
        let now = Instant::now();
        let mut p = peer(now);
        p.put("role", entry(1, false), now).unwrap();
        let k = p.keys.as_ref().unwrap();
        match (&k.keys, &k.by_version) {
            (SmallMap::Small(a), SmallMap::Small(b)) => {
                assert_eq!((a.capacity(), b.capacity()), (1, 1))
            }
            _ => panic!("one key is a small map"),
        }
        // Out of version order, as a reset delta or a test may put them.
        p.put("zone", entry(7, false), now).unwrap();
        p.put("addr", entry(4, false), now).unwrap();
        p.put("role", entry(9, true), now).unwrap();
        let names: Vec<&str> = p.entries().map(|(k, _)| k).collect();
        assert_eq!(names, ["addr", "role", "zone"]);
        let after: Vec<(String, u64)> = p.entries_after(4).map(|kv| (kv.key, kv.version)).collect();
        assert_eq!(after, [("zone".into(), 7), ("role".into(), 9)]);
        assert_eq!(p.live_keys(), 2);
        p.collect_garbage(now + Duration::from_secs(60), Duration::from_secs(10));
        assert!(p.entry("role").is_none() && p.entry("zone").is_some());
        assert_eq!(
            p.entries_after(0).map(|kv| kv.version).collect::<Vec<_>>(),
            [4, 7]
        );
        assert_eq!(p.gc_floor, 9);
    }

    /// A set's worth of keys, learned in scrambled name order and with
    /// versions out of order, crosses into the B-tree form and back without
    /// losing order, deltas or tombstones.
    #[test]
    fn a_large_key_set_keeps_order_and_collects_tombstones() {
        let now = Instant::now();
        let mut p = peer(now);
        let n = 2_000u64;
        // 7919 is prime, so i * 7919 mod n visits every name once, scrambled.
        for i in 0..n {
            let j = (i * 7919) % n;
            p.put(&format!("item/{j:05}"), entry(j + 1, false), now)
                .unwrap();
        }
        assert_eq!(p.live_keys(), n as usize);
        let names: Vec<&str> = p.entries().map(|(k, _)| k).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]) && names.len() == n as usize);
        let versions: Vec<u64> = p.entries_after(n - 3).map(|kv| kv.version).collect();
        assert_eq!(versions, [n - 2, n - 1, n]);
        // Delete all but five; after the grace the map is small again.
        for j in 5..n {
            p.put(&format!("item/{j:05}"), entry(n + j, true), now)
                .unwrap();
        }
        assert_eq!(p.live_keys(), 5);
        p.collect_garbage(now + Duration::from_secs(60), Duration::from_secs(10));
        let k = p.keys.as_ref().unwrap();
        assert!(!k.keys.is_large() && !k.by_version.is_large());
        assert_eq!(p.entries().count(), 5);
        assert_eq!(p.gc_floor, 2 * n - 1);
        assert_eq!(
            p.entries_after(0).map(|kv| kv.version).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn a_peer_is_small() {
        assert_eq!(std::mem::size_of::<Peer>(), 88);
    }
}
