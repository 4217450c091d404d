//! Per-peer traffic, counted by the driver: [`PeerStats`].
//!
//! Incoming frames are counted for the peer that sent them (the engine names
//! it once the frame is accepted), outgoing ones for the address they were
//! sent to; [`Node::peer_stats`](crate::Node::peer_stats) joins the two
//! through the peer's advertised address and adds the transport's
//! connection history with that address.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::intern;
use crate::transport::ConnectionStats;
use crate::PeerId;

/// Traffic with one peer; see [`Node::peer_stats`](crate::Node::peer_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    /// Frames accepted from the peer (whichever connection carried them).
    pub frames_in: u64,
    /// Bytes of those frames, as received (sealed frames with their envelope).
    pub bytes_in: u64,
    /// Frames handed to the transport for the peer's address.
    pub frames_out: u64,
    /// Bytes of those frames.
    pub bytes_out: u64,
    /// Frames to the peer's address the transport refused at once.
    pub send_errors: u64,
    /// When the last frame from the peer was accepted.
    pub last_contact: Option<Instant>,
    /// The transport's connections to the peer's address (zero for a
    /// transport without connections).
    pub connections: ConnectionStats,
}

#[derive(Debug, Default, Clone, Copy)]
struct Incoming {
    frames: u64,
    bytes: u64,
    last: Option<Instant>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Outgoing {
    frames: u64,
    bytes: u64,
    errors: u64,
}

/// The driver's table, shared by the task (writes) and handles (reads).
#[derive(Debug)]
pub(crate) struct PeerTable {
    inner: Mutex<Tables>,
    /// Most addresses with outgoing counts; past it those of addresses no
    /// peer advertises are forgotten.
    max_addrs: usize,
}

#[derive(Debug, Default)]
struct Tables {
    incoming: HashMap<PeerId, Incoming>,
    /// By address, interned process-wide as ids are: a node sends to most of
    /// its peers in time, and an owned key was an allocation per peer.
    outgoing: HashMap<Arc<str>, Outgoing>,
}

impl PeerTable {
    /// A table for a node holding at most `max_peers` peers.
    pub(crate) fn new(max_peers: usize) -> Self {
        PeerTable {
            inner: Mutex::new(Tables::default()),
            max_addrs: max_peers.saturating_add(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn frame_in(&self, from: &PeerId, bytes: usize, now: Instant) {
        let mut t = self.lock();
        let e = match t.incoming.get_mut(from) {
            Some(e) => e,
            None => t.incoming.entry(from.clone()).or_default(),
        };
        e.frames += 1;
        e.bytes += bytes as u64;
        e.last = Some(now);
    }

    /// Counts a frame to `to`; `known` tells which addresses belong to
    /// current peers, asked only when the table is full.
    pub(crate) fn frame_out(
        &self,
        to: &str,
        bytes: usize,
        ok: bool,
        known: impl FnOnce() -> Vec<String>,
    ) {
        let mut t = self.lock();
        if !t.outgoing.contains_key(to) && t.outgoing.len() >= self.max_addrs {
            let keep: std::collections::HashSet<String> = known().into_iter().collect();
            t.outgoing.retain(|a, _| keep.contains(&**a));
        }
        let e = match t.outgoing.get_mut(to) {
            Some(e) => e,
            None => t.outgoing.entry(intern::name(to)).or_default(),
        };
        if ok {
            e.frames += 1;
            e.bytes += bytes as u64;
        } else {
            e.errors += 1;
        }
    }

    /// Drops what is kept about a removed peer.
    pub(crate) fn forget(&self, peer: &PeerId) {
        self.lock().incoming.remove(peer);
    }

    /// The counts for `peer`, reached at `addr` (its advertised address).
    pub(crate) fn get(&self, peer: &PeerId, addr: Option<&str>) -> Option<PeerStats> {
        let t = self.lock();
        let incoming = t.incoming.get(peer).copied();
        let outgoing = addr.and_then(|a| t.outgoing.get(a)).copied();
        if incoming.is_none() && outgoing.is_none() {
            return None;
        }
        let i = incoming.unwrap_or_default();
        let o = outgoing.unwrap_or_default();
        Some(PeerStats {
            frames_in: i.frames,
            bytes_in: i.bytes,
            frames_out: o.frames,
            bytes_out: o.bytes,
            send_errors: o.errors,
            last_contact: i.last,
            connections: ConnectionStats::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_by_sender_out_by_address_and_forgotten_on_removal() {
        let t = PeerTable::new(10);
        let now = Instant::now();
        let a = PeerId::from("a");
        t.frame_in(&a, 100, now);
        t.frame_in(&a, 50, now);
        t.frame_out("mem:a", 70, true, Vec::new);
        t.frame_out("mem:a", 70, false, Vec::new);
        let s = t.get(&a, Some("mem:a")).unwrap();
        assert_eq!((s.frames_in, s.bytes_in), (2, 150));
        assert_eq!((s.frames_out, s.bytes_out, s.send_errors), (1, 70, 1));
        assert_eq!(s.last_contact, Some(now));
        assert!(t.get(&PeerId::from("b"), Some("mem:b")).is_none());
        t.forget(&a);
        let s = t.get(&a, Some("mem:a")).unwrap();
        assert_eq!(
            s.frames_in, 0,
            "incoming forgotten, outgoing kept by address"
        );
    }

    #[test]
    fn addresses_past_the_bound_that_no_peer_advertises_are_forgotten() {
        // max_peers 2: at most 3 addresses before pruning.
        let t = PeerTable::new(2);
        for a in ["s:1", "s:2", "p:1"] {
            t.frame_out(a, 1, true, || unreachable!("not full yet"));
        }
        t.frame_out("p:2", 1, true, || vec!["p:1".into(), "p:2".into()]);
        let id = PeerId::from("x");
        assert!(t.get(&id, Some("s:1")).is_none());
        assert!(t.get(&id, Some("s:2")).is_none());
        assert!(t.get(&id, Some("p:1")).is_some());
        assert!(t.get(&id, Some("p:2")).is_some());
    }
}
