//! Peer identity.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The name of a peer, unique within a cluster. Cheap to clone.
///
/// Together with a generation (fresh at every start) it identifies one
/// incarnation of a peer; see [`PeerRecord::generation`](crate::PeerRecord::generation).
///
/// Ordered, compared and hashed as its string. It carries the string's
/// first eight bytes beside the pointer, so that most comparisons (a
/// search of a peer table passes a dozen ids or more) are one
/// integer comparison rather than a read of two strings elsewhere in
/// memory.
#[derive(Clone)]
pub struct PeerId {
    /// The first eight bytes of the id, zero-padded, big-endian: ordered
    /// as the strings are, ties broken by the whole strings.
    prefix: u64,
    /// A thin pointer (8 bytes where `Arc<str>` is 16): every node holds
    /// one per peer, and the prefix answers most comparisons without it.
    id: Arc<Shared>,
}

/// What the clones of one id share: the string and its stable hash.
#[derive(Debug)]
struct Shared {
    hash: u64,
    id: Box<str>,
}

/// FNV-1a over `bytes`: a hash that is the same in every process and on
/// every platform.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The first eight bytes of `s`, zero-padded, as a big-endian integer.
fn prefix(s: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

impl PeerId {
    fn new(id: Box<str>) -> Self {
        PeerId {
            prefix: prefix(&id),
            id: Arc::new(Shared {
                hash: fnv1a(id.as_bytes()),
                id,
            }),
        }
    }

    /// [`fnv1a`] of the id's bytes, computed once for all its clones: a
    /// stable hash to place the peer by (the same on every node).
    #[inline]
    pub fn stable_hash(&self) -> u64 {
        self.id.hash
    }

    /// Whether the two share one string (an interned id).
    #[inline]
    pub fn ptr_eq(&self, other: &PeerId) -> bool {
        Arc::ptr_eq(&self.id, &other.id)
    }

    /// The id as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.id.id
    }
}

impl PartialEq for PeerId {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.prefix == other.prefix
            && (Arc::ptr_eq(&self.id, &other.id) || self.id.id == other.id.id)
    }
}

impl Eq for PeerId {}

impl Ord for PeerId {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        // A tie of prefixes is read from the strings; the prefixes are
        // the strings' first bytes, so the order is the strings' order.
        self.prefix.cmp(&other.prefix).then_with(|| {
            if Arc::ptr_eq(&self.id, &other.id) {
                Ordering::Equal
            } else {
                self.id.id.cmp(&other.id.id)
            }
        })
    }
}

impl PartialOrd for PeerId {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for PeerId {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As the string hashes: `Borrow<str>` lookups in hash maps agree.
        self.id.id.hash(state)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.id.id, f)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id.id)
    }
}

impl From<&str> for PeerId {
    fn from(s: &str) -> Self {
        PeerId::new(Box::from(s))
    }
}

impl From<String> for PeerId {
    fn from(s: String) -> Self {
        PeerId::new(Box::from(s))
    }
}

impl From<Box<str>> for PeerId {
    fn from(s: Box<str>) -> Self {
        PeerId::new(s)
    }
}

impl From<&String> for PeerId {
    fn from(s: &String) -> Self {
        PeerId::new(Box::from(s.as_str()))
    }
}

impl std::borrow::Borrow<str> for PeerId {
    #[inline]
    fn borrow(&self) -> &str {
        &self.id.id
    }
}

impl AsRef<str> for PeerId {
    #[inline]
    fn as_ref(&self) -> &str {
        &self.id.id
    }
}

impl PeerId {
    /// A reference to the shared string that does not keep it alive: what
    /// a process-wide table of interned ids holds.
    pub fn downgrade(&self) -> WeakPeerId {
        WeakPeerId {
            prefix: self.prefix,
            id: Arc::downgrade(&self.id),
        }
    }
}

/// A [`PeerId`] that does not keep its string alive (see
/// [`PeerId::downgrade`]).
#[derive(Clone, Debug)]
pub struct WeakPeerId {
    prefix: u64,
    id: std::sync::Weak<Shared>,
}

impl WeakPeerId {
    /// The id, if some [`PeerId`] still holds its string.
    pub fn upgrade(&self) -> Option<PeerId> {
        Some(PeerId {
            prefix: self.prefix,
            id: self.id.upgrade()?,
        })
    }

    /// Whether some [`PeerId`] still holds its string.
    pub fn is_held(&self) -> bool {
        self.id.strong_count() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash<T: Hash + ?Sized>(t: &T) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    /// Short strings, shared prefixes, NULs and multi-byte characters:
    /// where a prefix of eight bytes ties or pads with zeros.
    fn id() -> impl Strategy<Value = String> {
        proptest::string::string_regex("(n0|ab|\u{0}|é){0,6}[a\u{0}z]{0,3}").expect("regex")
    }

    proptest! {
        #[test]
        fn ordered_compared_and_hashed_as_its_string(a in id(), b in id()) {
            let (x, y) = (PeerId::from(a.as_str()), PeerId::from(b.as_str()));
            prop_assert_eq!(x.cmp(&y), a.cmp(&b), "{:?} against {:?}", a, b);
            prop_assert_eq!(x == y, a == b);
            prop_assert_eq!(hash(&x), hash(a.as_str()));
            prop_assert_eq!(x.stable_hash(), fnv1a(a.as_bytes()));
            prop_assert_eq!(x.as_str(), a.as_str());
        }
    }

    #[test]
    fn a_weak_id_upgrades_while_held() {
        let a = PeerId::from("peer-a");
        let w = a.downgrade();
        let b = w.upgrade().expect("held");
        assert!(a.ptr_eq(&b));
        assert!(!a.ptr_eq(&PeerId::from("peer-a")), "another copy");
        drop((a, b));
        assert!(!w.is_held());
        assert!(w.upgrade().is_none());
    }
}
