//! Peer identity.

use std::fmt;
use std::sync::Arc;

/// The name of a peer, unique within a cluster. Cheap to clone.
///
/// Together with a generation (fresh at every start) it identifies one
/// incarnation of a peer; see [`PeerRecord::generation`](crate::PeerRecord::generation).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(Arc<str>);

impl PeerId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared string behind the id.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PeerId {
    fn from(s: &str) -> Self {
        PeerId(Arc::from(s))
    }
}

impl From<String> for PeerId {
    fn from(s: String) -> Self {
        PeerId(Arc::from(s))
    }
}

impl From<Arc<str>> for PeerId {
    /// Shares the string (an interned id costs no allocation per holder).
    fn from(s: Arc<str>) -> Self {
        PeerId(s)
    }
}

impl From<&String> for PeerId {
    fn from(s: &String) -> Self {
        PeerId(Arc::from(s.as_str()))
    }
}

impl std::borrow::Borrow<str> for PeerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for PeerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
