//! The cluster keyring: authenticated encryption of every frame.
//!
//! With a [`Keyring`] in [`Config::keyring`](crate::Config::keyring), every
//! frame a node sends is sealed with XChaCha20-Poly1305 under the keyring's
//! primary key, and every frame it receives must open under one of its keys.
//! The seal sits in the engine's frame codec, so it protects every transport
//! alike. The envelope (all integers big-endian):
//!
//! ```text
//! 0       1         2          6              30                  len-16   len
//! +-------+---------+----------+--------------+-------------------+--------+
//! | 0xE7  | version | key id   | nonce        | ciphertext        | tag    |
//! |       |  (1)    | (4 bytes)| (24 bytes)   | (encoded Frame)   | (16)   |
//! +-------+---------+----------+--------------+-------------------+--------+
//! ```
//!
//! - `0xE7` is the tag byte of protobuf field 28 with wire type 7, which does
//!   not exist, so no encoded `Frame` starts with it: a receiver tells sealed
//!   from plaintext frames by the first byte alone.
//! - The key id is derived from the key (the first 4 bytes of the AEAD tag of
//!   an empty message under a fixed label nonce), so every node computes the
//!   same id for the same key and users never manage ids.
//! - The associated data is the first 6 bytes (magic, version, key id) and the
//!   cluster id: a frame cannot be moved to another cluster sharing the key,
//!   nor its header edited, without failing the tag.
//! - The nonce is 24 random bytes (XChaCha20, not ChaCha20's 12): random
//!   96-bit nonces are only safe for about 2^32 frames per key, which a
//!   thousand-node cluster sends in days; 192-bit ones never collide in
//!   practice, so a key can live as long as the cluster.
//!
//! Overhead: [`SEAL_OVERHEAD`] (46) bytes a frame, subtracted from the frame
//! budget so sealed frames still respect `max_frame_bytes`.
//!
//! Nonces come from a ChaCha20 generator owned by the keyring and seeded from
//! the operating system when the keyring is made; clones of a keyring (every
//! engine built from one `Config`) share it, so no two frames sealed under a
//! key ever draw the same nonce. [`Keyring::with_nonce_seed`] makes them
//! reproducible for tests; nonces never influence the engine's decisions, so
//! the simulator is deterministic either way.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroize;

use crate::engine::Engine;
use crate::error::{DecodeError, KeyringError};
use crate::stats::Counters;

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;
/// Bytes a sealed frame adds to the encoded frame: a 30-byte header (magic,
/// version, key id, nonce) and a 16-byte tag.
pub const SEAL_OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// The first byte of every sealed frame.
pub const SEAL_MAGIC: u8 = 0xE7;
/// The envelope version this crate writes and reads.
pub const SEAL_VERSION: u8 = 1;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Magic, version and key id: the authenticated header before the nonce.
const AAD_HEADER_LEN: usize = 6;
const HEADER_LEN: usize = AAD_HEADER_LEN + NONCE_LEN;
/// The fixed nonce under which a key's id is computed (never a frame's: those
/// are random, and 24 bytes long).
const KEY_ID_LABEL: &[u8; NONCE_LEN] = b"gossip.keyring.key-id.v1";
/// Longest cluster id (`Config::validate` enforces it).
const MAX_CLUSTER_ID: usize = 255;

/// The id of a key: 4 bytes derived from the key itself, the same on every
/// node. Shown as 8 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:08x})", self.0)
    }
}

impl std::str::FromStr for KeyId {
    type Err = KeyringError;
    /// Parses the 8 hex digits [`KeyId`]'s `Display` prints.
    fn from_str(s: &str) -> Result<KeyId, KeyringError> {
        let s = s.trim();
        if s.len() != 8 {
            return Err(KeyringError::BadKeyId(s.chars().take(16).collect()));
        }
        u32::from_str_radix(s, 16)
            .map(KeyId)
            .map_err(|_| KeyringError::BadKeyId(s.to_string()))
    }
}

/// A 32-byte cluster key. Its `Debug` shows only its id; the bytes are
/// wiped from memory when it is dropped.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; KEY_LEN],
    id: KeyId,
}

impl Key {
    /// A key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, KeyringError> {
        let bytes: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| KeyringError::BadLength { len: bytes.len() })?;
        let cipher = XChaCha20Poly1305::new(&bytes.into());
        let mut empty = [0u8; 0];
        let id = match cipher.encrypt_in_place_detached(
            XNonce::from_slice(KEY_ID_LABEL),
            b"",
            &mut empty,
        ) {
            Ok(tag) => KeyId(u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]])),
            // Only a message longer than 256 GiB fails to encrypt.
            Err(_) => KeyId(0),
        };
        Ok(Key { bytes, id })
    }

    /// A key from 64 hex digits (upper or lower case, surrounding whitespace
    /// ignored), the format of key files.
    pub fn from_hex(text: &str) -> Result<Key, KeyringError> {
        let text = text.trim().as_bytes();
        if text.len() != 2 * KEY_LEN {
            return Err(KeyringError::BadHex {
                line: 1,
                reason: format!("expected 64 hex digits, got {} characters", text.len()),
            });
        }
        let mut bytes = [0u8; KEY_LEN];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            match (hex_digit(pair[0]), hex_digit(pair[1])) {
                (Some(h), Some(l)) => bytes[i] = (h << 4) | l,
                _ => {
                    bytes.zeroize();
                    return Err(KeyringError::BadHex {
                        line: 1,
                        reason: format!("non-hex character near position {}", 2 * i + 1),
                    });
                }
            }
        }
        let key = Key::from_bytes(&bytes);
        bytes.zeroize();
        key
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Key, KeyringError> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|e| KeyringError::Entropy(e.to_string()))?;
        let key = Key::from_bytes(&bytes);
        bytes.zeroize();
        key
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key as 64 lower-case hex digits, the format of key files. This is
    /// the secret itself: write it only where the key belongs.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(2 * KEY_LEN);
        for b in self.bytes {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.bytes.into())
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl PartialEq for Key {
    /// Compares the key bytes in constant time.
    fn eq(&self, other: &Key) -> bool {
        self.bytes
            .iter()
            .zip(other.bytes.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

/// What a node with a keyring does about unencrypted frames. Without a
/// keyring every frame is plaintext and this has no effect.
///
/// Turning encryption on in a running cluster, with no downtime: give every
/// node the key with `Send`, then switch every node to `Accept`, then to
/// `Refuse` (at runtime with `Node::add_key` and `Node::set_plaintext`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Plaintext {
    /// Seal every frame and drop plaintext ones (`dropped_plaintext`). The
    /// default: an outsider without the key can neither read nor inject.
    #[default]
    Refuse,
    /// Seal every frame, accept plaintext ones too (the second step of
    /// turning encryption on).
    Accept,
    /// Send plaintext, accept both (the first step: nodes that have no key
    /// yet can still read this one).
    Send,
}

/// The keys of a cluster: the primary seals outgoing frames, every key opens
/// incoming ones. Its `Debug` shows key ids only, never key material.
///
/// Rotation without downtime: add the new key on every node, then make it
/// the primary on every node, then remove the old one from every node (at
/// runtime with `Node::add_key`, `Node::set_primary_key`, `Node::remove_key`).
/// At every step each node can open what every other node seals.
#[derive(Clone)]
pub struct Keyring {
    /// Primary first.
    keys: Vec<Key>,
    nonces: Arc<Mutex<ChaCha20Rng>>,
}

impl Keyring {
    /// A keyring holding `primary` only. Its nonce generator is seeded from
    /// the operating system.
    pub fn new(primary: Key) -> Keyring {
        Keyring {
            keys: vec![primary],
            nonces: Arc::new(Mutex::new(os_seeded())),
        }
    }

    /// A keyring of one key given as exactly 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Keyring, KeyringError> {
        Ok(Keyring::new(Key::from_bytes(bytes)?))
    }

    /// A keyring from the text of a key file: one key a line as 64 hex
    /// digits, the first being the primary; blank lines and lines starting
    /// with `#` are ignored. Error messages give line numbers, never key
    /// material.
    pub fn parse(text: &str) -> Result<Keyring, KeyringError> {
        let mut ring: Option<Keyring> = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = Key::from_hex(line).map_err(|e| match e {
                KeyringError::BadHex { reason, .. } => KeyringError::BadHex {
                    line: n + 1,
                    reason,
                },
                other => other,
            })?;
            match ring.as_mut() {
                None => ring = Some(Keyring::new(key)),
                Some(r) => {
                    r.add(key)?;
                }
            }
        }
        ring.ok_or(KeyringError::Empty)
    }

    /// Reads a key file (see [`Keyring::parse`]). Keep it readable by the
    /// node's user only.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Keyring, KeyringError> {
        read_secret_file(
            path.as_ref(),
            |path, source| KeyringError::Io { path, source },
            Keyring::parse,
        )
    }

    /// Installs `key` for opening frames; returns its id. Adding a key
    /// already held does nothing. Two different keys with the same id (a
    /// chance of 2^-32 per pair) are refused.
    pub fn add(&mut self, key: Key) -> Result<KeyId, KeyringError> {
        let id = key.id();
        match self.keys.iter().find(|k| k.id() == id) {
            Some(k) if *k == key => Ok(id),
            Some(_) => Err(KeyringError::IdCollision(id)),
            None => {
                self.keys.push(key);
                Ok(id)
            }
        }
    }

    /// Makes the installed key `id` the one that seals outgoing frames.
    pub fn set_primary(&mut self, id: KeyId) -> Result<(), KeyringError> {
        let at = self
            .keys
            .iter()
            .position(|k| k.id() == id)
            .ok_or(KeyringError::UnknownKey(id))?;
        let key = self.keys.remove(at);
        self.keys.insert(0, key);
        Ok(())
    }

    /// Uninstalls key `id`; frames sealed with it are dropped from then on.
    /// The primary cannot be removed (make another key primary first).
    pub fn remove(&mut self, id: KeyId) -> Result<(), KeyringError> {
        if self.primary() == id {
            return Err(KeyringError::RemovePrimary(id));
        }
        let at = self
            .keys
            .iter()
            .position(|k| k.id() == id)
            .ok_or(KeyringError::UnknownKey(id))?;
        self.keys.remove(at);
        Ok(())
    }

    /// The primary key's id.
    pub fn primary(&self) -> KeyId {
        self.keys[0].id()
    }

    /// The ids of every installed key, the primary first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(Key::id).collect()
    }

    /// Whether key `id` is installed.
    pub fn contains(&self, id: KeyId) -> bool {
        self.keys.iter().any(|k| k.id() == id)
    }

    /// Replaces the nonce generator by one seeded with `seed`, shared by
    /// this keyring's clones from now on, so sealed bytes are reproducible.
    ///
    /// For tests and simulations only: two processes (or two keyrings) given
    /// the same seed and key draw the same nonces, and a nonce used twice
    /// under a key reveals the XOR of the two plaintexts and lets an attacker
    /// forge frames. Production keyrings keep the OS-seeded default.
    pub fn with_nonce_seed(mut self, seed: u64) -> Keyring {
        self.nonces = Arc::new(Mutex::new(ChaCha20Rng::seed_from_u64(seed)));
        self
    }

    /// Whether `bytes` is a sealed frame (by its first byte; no encoded
    /// protobuf `Frame` starts with [`SEAL_MAGIC`]).
    pub fn is_sealed(bytes: &[u8]) -> bool {
        bytes.first() == Some(&SEAL_MAGIC)
    }

    /// The key id in a sealed frame's header, if it has one.
    pub fn key_id_of(bytes: &[u8]) -> Option<KeyId> {
        if !Keyring::is_sealed(bytes) || bytes.len() < AAD_HEADER_LEN {
            return None;
        }
        Some(KeyId(u32::from_be_bytes([
            bytes[2], bytes[3], bytes[4], bytes[5],
        ])))
    }

    /// Seals an encoded frame under the primary key for cluster
    /// `cluster_id` (at most 255 bytes, as `Config::validate` requires): the
    /// result is [`SEAL_OVERHEAD`] bytes longer.
    pub fn seal(&self, cluster_id: &str, frame: &[u8]) -> Bytes {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        {
            let mut rng = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
            rng.fill_bytes(&mut nonce);
        }
        let mut out = Vec::with_capacity(frame.len() + SEAL_OVERHEAD);
        out.push(SEAL_MAGIC);
        out.push(SEAL_VERSION);
        out.extend_from_slice(&key.id().0.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(frame);
        let (aad, len) = associated_data(&out[..AAD_HEADER_LEN], cluster_id);
        let tag = key
            .cipher()
            .encrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &aad[..len],
                &mut out[HEADER_LEN..],
            )
            // Fails only for messages over 256 GiB; frames are at most 64 MiB.
            .unwrap_or_default();
        out.extend_from_slice(&tag);
        Bytes::from(out)
    }

    /// Opens a sealed frame of cluster `cluster_id`: the encoded frame, or
    /// why it was refused (too short: `Malformed`; another envelope version:
    /// `UnknownEnvelope`; a key not installed: `UnknownKey`; a tag that does
    /// not verify: `BadTag`). The caller checks the size limit first.
    pub fn open(&self, cluster_id: &str, sealed: &[u8]) -> Result<Vec<u8>, DecodeError> {
        if !Keyring::is_sealed(sealed) {
            return Err(DecodeError::Malformed("not a sealed frame".into()));
        }
        if sealed.len() < SEAL_OVERHEAD {
            return Err(DecodeError::Malformed(format!(
                "sealed frame of {} bytes is shorter than its {SEAL_OVERHEAD}-byte envelope",
                sealed.len()
            )));
        }
        if sealed[1] != SEAL_VERSION {
            return Err(DecodeError::UnknownEnvelope {
                got: sealed[1],
                ours: SEAL_VERSION,
            });
        }
        let id = Keyring::key_id_of(sealed).unwrap_or(KeyId(0));
        let key = self
            .keys
            .iter()
            .find(|k| k.id() == id)
            .ok_or(DecodeError::UnknownKey { key: id })?;
        let nonce = XNonce::from_slice(&sealed[AAD_HEADER_LEN..HEADER_LEN]);
        let body_end = sealed.len() - TAG_LEN;
        let tag = Tag::from_slice(&sealed[body_end..]);
        let mut plain = sealed[HEADER_LEN..body_end].to_vec();
        let (aad, len) = associated_data(&sealed[..AAD_HEADER_LEN], cluster_id);
        key.cipher()
            .decrypt_in_place_detached(nonce, &aad[..len], &mut plain, tag)
            .map_err(|_| DecodeError::BadTag { key: id })?;
        Ok(plain)
    }
}

/// The header bytes followed by the cluster id, on the stack.
fn associated_data(
    header: &[u8],
    cluster_id: &str,
) -> ([u8; AAD_HEADER_LEN + MAX_CLUSTER_ID], usize) {
    let mut aad = [0u8; AAD_HEADER_LEN + MAX_CLUSTER_ID];
    let cluster = &cluster_id.as_bytes()[..cluster_id.len().min(MAX_CLUSTER_ID)];
    aad[..AAD_HEADER_LEN].copy_from_slice(header);
    aad[AAD_HEADER_LEN..AAD_HEADER_LEN + cluster.len()].copy_from_slice(cluster);
    (aad, AAD_HEADER_LEN + cluster.len())
}

/// A generator seeded from the OS; if the OS has no randomness to give (it
/// practically never fails), from the process's hasher keys, the time and
/// an address, which still differ between processes.
fn os_seeded() -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        use std::hash::{BuildHasher, Hasher};
        let here = &seed as *const _ as usize;
        for (i, chunk) in seed.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_usize(here);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    let rng = ChaCha20Rng::from_seed(seed);
    seed.zeroize();
    rng
}

impl PartialEq for Keyring {
    /// Same primary and same set of keys (the nonce generator is ignored).
    fn eq(&self, other: &Keyring) -> bool {
        self.keys.len() == other.keys.len()
            && self.keys[0] == other.keys[0]
            && self.keys.iter().all(|k| other.keys.contains(k))
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary())
            .field("keys", &self.ids())
            .finish()
    }
}

// ---- the engine's side: opening, sealing, runtime key changes ------------

impl Engine {
    /// Opens an incoming frame (the first step of `handle_frame`): checks its
    /// size, then opens it if sealed, or checks that plaintext is accepted.
    /// Every refusal is counted and logged here.
    pub(crate) fn open_frame<'b>(
        &self,
        from: &str,
        bytes: &'b [u8],
    ) -> Result<Cow<'b, [u8]>, DecodeError> {
        let c = &self.config;
        let opened = if bytes.len() > c.max_frame_bytes {
            Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: c.max_frame_bytes,
            })
        } else if Keyring::is_sealed(bytes) {
            match &c.keyring {
                Some(ring) => ring.open(&c.cluster_id, bytes).map(Cow::Owned),
                None => Err(match Keyring::key_id_of(bytes) {
                    Some(key) => DecodeError::UnknownKey { key },
                    None => DecodeError::Malformed("truncated sealed frame".into()),
                }),
            }
        } else if c.keyring.is_some() && c.plaintext == Plaintext::Refuse {
            Err(DecodeError::PlaintextRefused)
        } else {
            Ok(Cow::Borrowed(bytes))
        };
        if let Err(e) = &opened {
            Counters::add(self.drop_counter(e), 1);
            tracing::debug!(node = %self.id, from, len = bytes.len(), error = %e, "frame dropped");
        }
        opened
    }

    /// The counter a dropped frame is charged to.
    pub(crate) fn drop_counter(&self, e: &DecodeError) -> &std::sync::atomic::AtomicU64 {
        let c = &self.counters;
        match e {
            DecodeError::TooLarge { .. } => &c.dropped_oversize,
            DecodeError::Malformed(_) => &c.dropped_malformed,
            DecodeError::UnknownVersion { .. } | DecodeError::UnknownEnvelope { .. } => {
                &c.dropped_unknown_version
            }
            DecodeError::WrongCluster { .. } => &c.dropped_wrong_cluster,
            DecodeError::BadTag { .. } => &c.dropped_bad_tag,
            DecodeError::UnknownKey { .. } => &c.dropped_unknown_key,
            DecodeError::PlaintextRefused => &c.dropped_plaintext,
            DecodeError::OverLimit { .. } => &c.dropped_over_limit,
            DecodeError::Invalid(_) => &c.dropped_invalid,
        }
    }

    /// Seals an encoded outgoing frame if this node has a keyring (and does
    /// not send plaintext).
    pub(crate) fn seal_frame(&self, frame: Bytes) -> Bytes {
        match &self.config.keyring {
            Some(ring) if self.config.plaintext != Plaintext::Send => {
                ring.seal(&self.config.cluster_id, &frame)
            }
            _ => frame,
        }
    }

    /// Bytes sealing adds to each outgoing frame (0 when sending plaintext).
    pub(crate) fn seal_overhead(&self) -> usize {
        match &self.config.keyring {
            Some(_) if self.config.plaintext != Plaintext::Send => SEAL_OVERHEAD,
            _ => 0,
        }
    }

    /// The keyring in use, if any.
    pub fn keyring(&self) -> Option<&Keyring> {
        self.config.keyring.as_ref()
    }

    /// Installs `key` for opening frames (the first step of a rotation);
    /// returns its id. On a node without a keyring, `key` becomes the
    /// primary of a new one and frames are sealed from now on (unless
    /// `Plaintext::Send`); refused if the seal's overhead leaves no room in
    /// a frame for the largest value (`KeyringError::Config`).
    pub fn add_key(&mut self, key: Key) -> Result<KeyId, KeyringError> {
        match self.config.keyring.as_mut() {
            Some(ring) => ring.add(key),
            None => {
                // The seal's overhead must leave room for the largest value.
                let mut keyed = self.config.clone();
                keyed.keyring = Some(Keyring::new(key));
                keyed.validate()?;
                let id = keyed.keyring.as_ref().map_or(KeyId(0), Keyring::primary);
                self.config = keyed;
                Ok(id)
            }
        }
    }

    /// Seals outgoing frames with the installed key `id` from now on (the
    /// second step of a rotation).
    pub fn set_primary_key(&mut self, id: KeyId) -> Result<(), KeyringError> {
        self.config
            .keyring
            .as_mut()
            .ok_or(KeyringError::UnknownKey(id))?
            .set_primary(id)
    }

    /// Uninstalls key `id` (the last step of a rotation); the primary cannot
    /// be removed.
    pub fn remove_key(&mut self, id: KeyId) -> Result<(), KeyringError> {
        self.config
            .keyring
            .as_mut()
            .ok_or(KeyringError::UnknownKey(id))?
            .remove(id)
    }

    /// Changes what this node does with plaintext frames; see [`Plaintext`].
    pub fn set_plaintext(&mut self, plaintext: Plaintext) {
        self.config.plaintext = plaintext;
    }
}

/// Reads a file of secret text (key files), hands it to `parse`, and wipes
/// the text whatever the outcome; `io` turns a read failure into the
/// caller's error, naming the path.
pub(crate) fn read_secret_file<T, E>(
    path: &Path,
    io: impl FnOnce(String, std::io::Error) -> E,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, E> {
    let mut text = std::fs::read_to_string(path).map_err(|e| io(path.display().to_string(), e))?;
    let out = parse(&text);
    text.zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key::from_bytes(&[n; 32]).unwrap()
    }

    #[test]
    fn key_ids_are_stable_and_distinct() {
        assert_eq!(key(1).id(), key(1).id());
        assert_ne!(key(1).id(), key(2).id());
        // Pinned: the id is part of the wire format.
        let id = key(0).id();
        assert_eq!(id.to_string().len(), 8);
        assert_eq!(id.to_string().parse::<KeyId>().unwrap(), id);
    }

    #[test]
    fn seal_then_open_round_trips_and_binds_the_cluster() {
        let ring = Keyring::new(key(1)).with_nonce_seed(1);
        let sealed = ring.seal("c", b"hello");
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert!(Keyring::is_sealed(&sealed));
        assert_eq!(ring.open("c", &sealed).unwrap(), b"hello");
        assert_eq!(
            ring.open("d", &sealed),
            Err(DecodeError::BadTag { key: key(1).id() })
        );
        // Two seals of the same frame differ (fresh nonces).
        assert_ne!(ring.seal("c", b"hello"), sealed);
    }

    #[test]
    fn every_byte_of_the_envelope_is_authenticated() {
        let ring = Keyring::new(key(1));
        let sealed = ring.seal("c", b"some frame bytes");
        for i in 0..sealed.len() {
            let mut bad = sealed.to_vec();
            bad[i] ^= 0x01;
            assert!(ring.open("c", &bad).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn rotation_steps() {
        let mut ring = Keyring::new(key(1));
        let old = ring.seal("c", b"x");
        assert_eq!(ring.add(key(2)).unwrap(), key(2).id());
        assert_eq!(ring.add(key(2)).unwrap(), key(2).id(), "idempotent");
        ring.set_primary(key(2).id()).unwrap();
        assert_eq!(ring.primary(), key(2).id());
        assert_eq!(ring.ids(), vec![key(2).id(), key(1).id()]);
        assert!(ring.open("c", &old).is_ok(), "old key still opens");
        assert!(matches!(
            ring.remove(key(2).id()),
            Err(KeyringError::RemovePrimary(_))
        ));
        ring.remove(key(1).id()).unwrap();
        assert_eq!(
            ring.open("c", &old),
            Err(DecodeError::UnknownKey { key: key(1).id() })
        );
        assert!(matches!(
            ring.set_primary(key(9).id()),
            Err(KeyringError::UnknownKey(_))
        ));
    }

    #[test]
    fn key_files_parse_and_errors_hide_the_key() {
        let text = format!(
            "# cluster keys\n{}\n\n  {}  \n",
            key(1).to_hex(),
            key(2).to_hex().to_uppercase()
        );
        let ring = Keyring::parse(&text).unwrap();
        assert_eq!(ring.ids(), vec![key(1).id(), key(2).id()]);
        assert!(matches!(
            Keyring::parse("# none\n"),
            Err(KeyringError::Empty)
        ));
        let bad = format!("{}\n{}zz\n", key(1).to_hex(), &key(2).to_hex()[..62]);
        let e = Keyring::parse(&bad).unwrap_err();
        assert!(matches!(e, KeyringError::BadHex { line: 2, .. }), "{e}");
        assert!(!e.to_string().contains(&key(2).to_hex()[..20]));
        assert!(matches!(
            Keyring::from_bytes(&[0; 31]),
            Err(KeyringError::BadLength { len: 31 })
        ));
        let debug = format!("{ring:?} {:?}", key(1));
        assert!(!debug.contains(&key(1).to_hex()[..8]), "{debug}");
        assert!(!debug.contains("1, 1, 1"), "{debug}");
    }

    #[test]
    fn short_or_foreign_envelopes_are_refused() {
        let ring = Keyring::new(key(1));
        let sealed = ring.seal("c", b"frame");
        for len in 0..SEAL_OVERHEAD {
            assert!(ring.open("c", &sealed[..len]).is_err());
        }
        let mut v2 = sealed.to_vec();
        v2[1] = 2;
        assert_eq!(
            ring.open("c", &v2),
            Err(DecodeError::UnknownEnvelope { got: 2, ours: 1 })
        );
        let other = Keyring::new(key(3)).seal("c", b"frame");
        assert_eq!(
            ring.open("c", &other),
            Err(DecodeError::UnknownKey { key: key(3).id() })
        );
    }
}
