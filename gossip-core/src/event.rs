//! What a node tells its user about the cluster.

use bytes::Bytes;

use crate::PeerId;

/// A change in the cluster as seen by one node. Events concern other peers,
/// never the node itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer this node did not know appeared.
    PeerJoined {
        /// The peer.
        peer: PeerId,
        /// The address it advertises.
        addr: String,
    },
    /// A known peer restarted: a new generation replaced the old one, whose
    /// keys are gone. The new incarnation's keys follow as `KeyUpdated`.
    PeerRestarted {
        /// The peer.
        peer: PeerId,
        /// The new generation.
        generation: u64,
    },
    /// A live peer's heartbeats stopped: it is presumed crashed or cut off.
    PeerDead {
        /// The peer.
        peer: PeerId,
    },
    /// A dead (or left) peer is live again.
    PeerLive {
        /// The peer.
        peer: PeerId,
    },
    /// A peer announced that it left the cluster.
    PeerLeft {
        /// The peer.
        peer: PeerId,
    },
    /// A dead or left peer was forgotten after `dead_peer_grace`.
    PeerRemoved {
        /// The peer.
        peer: PeerId,
    },
    /// A peer set a key.
    KeyUpdated {
        /// The owner of the key.
        peer: PeerId,
        /// The key.
        key: String,
        /// The new value.
        value: Bytes,
        /// The owner's version of this value.
        version: u64,
    },
    /// A peer deleted a key.
    KeyDeleted {
        /// The owner of the key.
        peer: PeerId,
        /// The key.
        key: String,
        /// The owner's version of the delete.
        version: u64,
    },
    /// The reader fell behind and this many events were dropped for it.
    Lagged {
        /// Number of events missed.
        missed: u64,
    },
}

impl Event {
    /// The peer the event concerns, if any.
    pub fn peer(&self) -> Option<&PeerId> {
        match self {
            Event::PeerJoined { peer, .. }
            | Event::PeerRestarted { peer, .. }
            | Event::PeerDead { peer }
            | Event::PeerLive { peer }
            | Event::PeerLeft { peer }
            | Event::PeerRemoved { peer }
            | Event::KeyUpdated { peer, .. }
            | Event::KeyDeleted { peer, .. } => Some(peer),
            Event::Lagged { .. } => None,
        }
    }
}

/// An engine's queue of events for [`Engine::poll_event`](crate::Engine::poll_event),
/// which can be turned off ([`Engine::set_events`](crate::Engine::set_events)):
/// then nothing is queued.
#[derive(Debug)]
pub(crate) struct Events {
    queue: std::collections::VecDeque<Event>,
    on: bool,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            queue: std::collections::VecDeque::new(),
            on: true,
        }
    }
}

impl Events {
    /// Queues `e`, unless events are off.
    pub(crate) fn push_back(&mut self, e: Event) {
        if self.on {
            self.queue.push_back(e);
        }
    }

    /// Whether events are queued: a caller whose event costs something to
    /// build (an allocation) asks first.
    pub(crate) fn wanted(&self) -> bool {
        self.on
    }

    /// Turns queueing on or off; off drops what is queued and its room.
    pub(crate) fn set_on(&mut self, on: bool) {
        if on == self.on {
            return;
        }
        self.on = on;
        if !on {
            self.queue = std::collections::VecDeque::new();
        }
    }

    /// The oldest queued event.
    pub(crate) fn pop_front(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    /// The queue itself (to give its room back once drained).
    pub(crate) fn queue_mut(&mut self) -> &mut std::collections::VecDeque<Event> {
        &mut self.queue
    }
}
