//! Topic publish/subscribe on the broadcast channel: signed messages,
//! per-author sequence numbers, subscriptions advertised as keys.
//!
//! - **Identity.** A node signs what it publishes with its ed25519
//!   [`Identity`] (loaded from a key file, like the keyring's, or
//!   generated). The first publish also advertises the public key as the
//!   node's key [`PUBLIC_KEY_KEY`]; a message whose key differs from the one
//!   its claimed author advertises is dropped as forged.
//! - **Signature.** It covers a domain label, the cluster id, the topic, the
//!   author's id, the sequence number and the payload; a message that does
//!   not verify (forged, or any of those altered) is dropped and counted
//!   (`Stats::messages_forged`).
//! - **Sequence numbers.** Each author numbers its messages from its
//!   generation times 2^16 (so a restart, with a larger generation, never
//!   reuses one). A node remembers, per author key, the numbers it has
//!   seen within `Config::broadcast_replay_window` of the highest: a number
//!   seen before, or older than the window, is a replay, dropped and counted
//!   (`Stats::messages_replayed`).
//! - **Once.** Every copy is recognised by its id (a hash of its content) in
//!   the broadcast channel's cache, so a message relayed by several peers is
//!   verified, delivered and relayed once.
//! - **Interest.** Subscribing sets the key `gossip.sub/<topic>` (empty
//!   value); messages are only sent to peers that advertise the topic, so a
//!   node subscribed to nothing carries no topic's traffic (it still relays
//!   what reaches it, say from a peer whose view of it is stale). Each
//!   round, a node holding messages of a topic also pushes them to
//!   `fanout` of the topic's live subscribers that its ordinary gossip did
//!   not reach this round.
//! - A node does not deliver its own messages to itself.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::seq::IteratorRandom;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroize;

use crate::broadcast::{retransmit_limit, Channel, MessageId};
use crate::engine::Engine;
use crate::error::{IdentityError, PubSubError};
use crate::stats::Counters;
use crate::wire::{
    broadcasts_len, len_msg, Body, Broadcast, BroadcastKind, Digest, AUTHOR_KEY_LEN,
};
use crate::{PeerId, PeerStatus};

/// The key prefix that advertises a subscription: `gossip.sub/<topic>`.
pub const SUBSCRIPTION_PREFIX: &str = "gossip.sub/";
/// The key under which a publishing node advertises its ed25519 public key
/// (64 hex digits).
pub const PUBLIC_KEY_KEY: &str = "gossip.pubkey";
/// The first bytes of what a message's signature covers.
const DOMAIN: &[u8] = b"gossip.v1 pubsub message\0";

/// A node's ed25519 signing key. Its `Debug` shows only the public key; the
/// secret is wiped from memory when it is dropped.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &hex(&self.public_key()))
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// An identity from its 32-byte secret seed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Identity, IdentityError> {
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| IdentityError::BadLength { len: bytes.len() })?;
        Ok(Identity {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// An identity from 64 hex digits (surrounding whitespace ignored), the
    /// format of identity key files.
    pub fn from_hex(text: &str) -> Result<Identity, IdentityError> {
        let text = text.trim().as_bytes();
        if text.len() != 64 {
            return Err(IdentityError::BadHex(format!(
                "expected 64 hex digits, got {} characters",
                text.len()
            )));
        }
        let mut seed = [0u8; 32];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            match (hex_digit(pair[0]), hex_digit(pair[1])) {
                (Some(h), Some(l)) => seed[i] = (h << 4) | l,
                _ => {
                    seed.zeroize();
                    return Err(IdentityError::BadHex(format!(
                        "non-hex character near position {}",
                        2 * i + 1
                    )));
                }
            }
        }
        let id = Identity::from_bytes(&seed);
        seed.zeroize();
        id
    }

    /// Reads an identity key file: 64 hex digits. Keep it readable by the
    /// node's user only.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Identity, IdentityError> {
        crate::keyring::read_secret_file(
            path.as_ref(),
            |path, source| IdentityError::Io { path, source },
            Identity::from_hex,
        )
    }

    /// A new identity from the operating system's random generator.
    pub fn generate() -> Result<Identity, IdentityError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| IdentityError::Entropy(e.to_string()))?;
        let id = Identity::from_bytes(&seed);
        seed.zeroize();
        id
    }

    /// The secret seed as 64 lower-case hex digits (the key file format).
    pub fn to_hex(&self) -> String {
        hex(&self.key.to_bytes())
    }

    /// The public key, as messages carry it.
    pub fn public_key(&self) -> [u8; AUTHOR_KEY_LEN] {
        self.key.verifying_key().to_bytes()
    }
}

/// A message delivered to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic.
    pub topic: String,
    /// The author's node id (signed, and checked against the key the author
    /// advertises when this node knows it).
    pub author: PeerId,
    /// The author's ed25519 public key.
    pub author_key: [u8; AUTHOR_KEY_LEN],
    /// The author's sequence number.
    pub seq: u64,
    /// The payload.
    pub payload: Bytes,
}

/// What the signature covers: every field but the key, the signature and
/// a query's remaining hops (which relays change), each length-prefixed.
fn signed_bytes(cluster: &str, m: &Broadcast) -> Vec<u8> {
    let mut b = Vec::with_capacity(DOMAIN.len() + 128 + m.payload.len());
    b.extend_from_slice(DOMAIN);
    let kind: u8 = match m.kind {
        BroadcastKind::Message => 0,
        BroadcastKind::Query => 1,
        BroadcastKind::Reply => 2,
    };
    b.push(kind);
    b.extend_from_slice(&m.seq.to_be_bytes());
    b.extend_from_slice(&m.timeout_ms.to_be_bytes());
    for part in [
        cluster.as_bytes(),
        m.topic.as_bytes(),
        m.author.as_str().as_bytes(),
        m.reply_to.as_bytes(),
        &m.request_id,
        m.filter_key.as_bytes(),
        &m.filter_value,
        &m.payload,
    ] {
        b.extend_from_slice(&(part.len() as u32).to_be_bytes());
        b.extend_from_slice(part);
    }
    b
}

/// A message's id: the first 16 bytes of SHA-256 over everything it
/// carries but a query's remaining hops (so copies that travelled
/// different paths are one message).
pub(crate) fn message_id(cluster: &str, b: &Broadcast) -> MessageId {
    let mut h = Sha256::new();
    h.update(signed_bytes(cluster, b));
    h.update(&b.author_key);
    h.update(&b.signature);
    let d = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id
}

/// Signs a topic message (used by publish, and by tests that forge or
/// replay).
pub fn sign(
    identity: &Identity,
    cluster: &str,
    topic: &str,
    author: &PeerId,
    seq: u64,
    payload: Bytes,
) -> Broadcast {
    sign_broadcast(
        identity,
        cluster,
        Broadcast {
            topic: topic.to_string(),
            author: author.clone(),
            seq,
            payload,
            ..Broadcast::message_defaults()
        },
    )
}

/// Fills in `b`'s key and signature with `identity`'s.
pub fn sign_broadcast(identity: &Identity, cluster: &str, mut b: Broadcast) -> Broadcast {
    b.author_key = Bytes::copy_from_slice(&identity.public_key());
    let sig = identity.key.sign(&signed_bytes(cluster, &b));
    b.signature = Bytes::copy_from_slice(&sig.to_bytes());
    b
}

/// Whether `b`'s signature verifies under its key.
fn verify(cluster: &str, b: &Broadcast) -> bool {
    let Ok(key) = <[u8; 32]>::try_from(&b.author_key[..]) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(&b.signature[..]) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    key.verify_strict(&signed_bytes(cluster, b), &sig).is_ok()
}

/// The sequence numbers seen of one author.
struct Author {
    highest: u64,
    seen: BTreeSet<u64>,
    /// When it was last heard from (a counter, for eviction).
    heard: u64,
}

/// The pub/sub state of one engine.
#[derive(Default)]
pub(crate) struct PubSub {
    pub(crate) channel: Channel,
    identity: Option<Identity>,
    next_seq: u64,
    subscriptions: BTreeSet<String>,
    authors: BTreeMap<[u8; 32], Author>,
    heard: u64,
    messages: VecDeque<Message>,
}

impl PubSub {
    /// Whether `seq` of `key` is new (then it is recorded) or a replay.
    fn fresh(&mut self, key: [u8; 32], seq: u64, window: u64, max_authors: usize) -> bool {
        self.heard += 1;
        if !self.authors.contains_key(&key) && self.authors.len() >= max_authors {
            let oldest = self
                .authors
                .iter()
                .min_by_key(|(_, a)| a.heard)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.authors.remove(&k);
            }
        }
        let a = self.authors.entry(key).or_insert(Author {
            highest: 0,
            seen: BTreeSet::new(),
            heard: 0,
        });
        a.heard = self.heard;
        if a.highest > 0 && seq.saturating_add(window) <= a.highest {
            return false;
        }
        if !a.seen.insert(seq) {
            return false;
        }
        if seq > a.highest {
            a.highest = seq;
            let floor = seq.saturating_sub(window);
            a.seen = a.seen.split_off(&floor.saturating_add(1));
        }
        true
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn subscription_key(topic: &str) -> String {
    format!("{SUBSCRIPTION_PREFIX}{topic}")
}

impl Engine {
    /// Gives the engine the identity it signs its messages with.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.set_identity(identity);
        self
    }

    /// Sets the identity the engine signs its messages with (advertised at
    /// the next publish).
    pub fn set_identity(&mut self, identity: Identity) {
        self.pubsub.identity = Some(identity);
    }

    /// The identity's public key, if the engine has one.
    pub fn public_key(&self) -> Option<[u8; AUTHOR_KEY_LEN]> {
        self.pubsub.identity.as_ref().map(Identity::public_key)
    }

    fn check_topic(&self, topic: &str) -> Result<(), PubSubError> {
        if topic.is_empty() {
            return Err(PubSubError::EmptyTopic);
        }
        let c = &self.config;
        let max = c
            .max_topic_bytes
            .min(c.max_key_bytes.saturating_sub(SUBSCRIPTION_PREFIX.len()));
        if topic.len() > max {
            return Err(PubSubError::TopicTooLong {
                len: topic.len(),
                max,
            });
        }
        Ok(())
    }

    /// Subscribes to `topic`: messages published on it from now on are
    /// delivered through [`Engine::poll_message`], and the subscription is
    /// advertised (the key `gossip.sub/<topic>`) so they are sent here.
    /// Subscribing twice does nothing.
    pub fn subscribe(&mut self, topic: &str, now: Instant) -> Result<(), PubSubError> {
        self.check_topic(topic)?;
        if self.pubsub.subscriptions.contains(topic) {
            return Ok(());
        }
        let max = self.config.max_subscriptions;
        if self.pubsub.subscriptions.len() >= max {
            return Err(PubSubError::TooManySubscriptions { max });
        }
        if self.has_left() {
            return Err(PubSubError::Left);
        }
        self.set(&subscription_key(topic), Bytes::new(), now)?;
        self.pubsub.subscriptions.insert(topic.to_string());
        Ok(())
    }

    /// Stops delivering `topic` and withdraws the advertisement. Returns
    /// whether the engine was subscribed.
    pub fn unsubscribe(&mut self, topic: &str, now: Instant) -> Result<bool, PubSubError> {
        if !self.pubsub.subscriptions.contains(topic) {
            return Ok(false);
        }
        self.delete(&subscription_key(topic), now)?;
        self.pubsub.subscriptions.remove(topic);
        self.pubsub.messages.retain(|m| m.topic != topic);
        Ok(true)
    }

    /// The topics this engine subscribes to, sorted.
    pub fn subscriptions(&self) -> impl Iterator<Item = &str> + '_ {
        self.pubsub.subscriptions.iter().map(String::as_str)
    }

    /// Whether peer `id` advertises a subscription to `topic`.
    pub fn subscribes(&self, id: &PeerId, topic: &str) -> bool {
        self.get(id, &subscription_key(topic)).is_some()
    }

    /// The largest payload this engine can publish on `topic`: what
    /// `max_message_bytes` allows and what fits its frames' broadcast share.
    pub fn max_publish_bytes(&self, topic: &str) -> usize {
        let share = self.broadcast_share();
        let empty = Broadcast {
            topic: topic.to_string(),
            author: self.id.clone(),
            author_key: Bytes::from(vec![0; AUTHOR_KEY_LEN]),
            seq: u64::MAX,
            signature: Bytes::from(vec![0; crate::wire::SIGNATURE_LEN]),
            ..Broadcast::message_defaults()
        };
        // A payload of n adds at most n + 1 + 3 bytes (key, length), and the
        // message's own header at most 1 + 3 more, for n below 2^21.
        let fixed = len_msg(empty.encoded_len()) + 8;
        share
            .saturating_sub(fixed)
            .min(self.config.max_message_bytes)
    }

    /// Publishes `payload` on `topic`, signed by this engine's identity;
    /// returns its sequence number. It goes out with the next rounds to the
    /// topic's subscribers (this node itself excepted), a bounded number of
    /// times.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: Bytes,
        now: Instant,
    ) -> Result<u64, PubSubError> {
        self.check_publish(topic, &payload)?;
        let msg = self.originate(
            Broadcast {
                topic: topic.to_string(),
                payload,
                ..Broadcast::message_defaults()
            },
            now,
        )?;
        let seq = msg.seq;
        self.queue_own(msg);
        Counters::add(&self.counters.messages_published, 1);
        Ok(seq)
    }

    /// Numbers and signs a broadcast this node originates (advertising its
    /// public key first if it has not yet).
    pub(crate) fn originate(
        &mut self,
        mut b: Broadcast,
        now: Instant,
    ) -> Result<Broadcast, PubSubError> {
        let Some(identity) = self.pubsub.identity.clone() else {
            return Err(PubSubError::NoIdentity);
        };
        let public = hex(&identity.public_key());
        if self.get(&self.id.clone(), PUBLIC_KEY_KEY).map(|v| &v[..]) != Some(public.as_bytes()) {
            self.set(PUBLIC_KEY_KEY, Bytes::from(public), now)?;
        }
        let base = self.generation.saturating_mul(1 << 16);
        let seq = self.pubsub.next_seq.max(base).saturating_add(1);
        self.pubsub.next_seq = seq;
        b.author = self.id.clone();
        b.seq = seq;
        let b = sign_broadcast(&identity, &self.config.cluster_id, b);
        let window = self.config.broadcast_replay_window;
        let authors = self.config.max_broadcast_authors;
        self.pubsub
            .fresh(identity.public_key(), seq, window, authors);
        Ok(b)
    }

    /// Remembers and queues a broadcast this node originated.
    pub(crate) fn queue_own(&mut self, msg: Broadcast) {
        let id = message_id(&self.config.cluster_id, &msg);
        let (cache, pending) = (
            self.config.broadcast_cache,
            self.config.max_pending_broadcasts,
        );
        self.pubsub.channel.remember(id, cache);
        if self.pubsub.channel.enqueue(msg, None, pending) {
            Counters::add(&self.counters.messages_queue_dropped, 1);
        }
    }

    /// Whether `payload` may be sent on `topic` now.
    pub(crate) fn check_publish(&self, topic: &str, payload: &Bytes) -> Result<(), PubSubError> {
        self.check_topic(topic)?;
        let max = self.max_publish_bytes(topic);
        if payload.len() > max {
            return Err(PubSubError::MessageTooLarge {
                len: payload.len(),
                max,
            });
        }
        if self.has_left() || self.peers[&self.id].status == PeerStatus::Left {
            return Err(PubSubError::Left);
        }
        Ok(())
    }

    /// The next message delivered to this engine's subscriptions, if any.
    pub fn poll_message(&mut self) -> Option<Message> {
        self.pubsub.messages.pop_front()
    }

    /// Messages waiting to be retransmitted.
    pub fn pending_broadcasts(&self) -> usize {
        self.pubsub.channel.len()
    }

    /// Handles the broadcasts of an accepted frame: each is checked (seen,
    /// signature, advertised key, replay), then delivered if subscribed and
    /// queued for relay. A bad one is dropped and counted; the rest of the
    /// frame stands.
    pub(crate) fn on_broadcasts(&mut self, now: Instant, from: &PeerId, list: Vec<Broadcast>) {
        let cluster = self.config.cluster_id.clone();
        for b in list {
            let id = message_id(&cluster, &b);
            if self.pubsub.channel.seen(&id) {
                Counters::add(&self.counters.messages_duplicate, 1);
                continue;
            }
            if !verify(&cluster, &b) || !self.key_matches(&b) || !self.reply_to_matches(&b) {
                Counters::add(&self.counters.messages_forged, 1);
                tracing::debug!(node = %self.id, author = %b.author, seq = b.seq, "forged message dropped");
                continue;
            }
            let key: [u8; 32] = b.author_key[..].try_into().expect("checked by decode");
            let c = &self.config;
            let (window, authors, cache, pending) = (
                c.broadcast_replay_window,
                c.max_broadcast_authors,
                c.broadcast_cache,
                c.max_pending_broadcasts,
            );
            if !self.pubsub.fresh(key, b.seq, window, authors) {
                Counters::add(&self.counters.messages_replayed, 1);
                tracing::debug!(node = %self.id, author = %b.author, seq = b.seq, "replayed message dropped");
                continue;
            }
            self.pubsub.channel.remember(id, cache);
            Counters::add(&self.counters.messages_accepted, 1);
            match b.kind {
                BroadcastKind::Message => {}
                BroadcastKind::Query => {
                    if let Some(relay) = self.on_query(now, id, b) {
                        if self
                            .pubsub
                            .channel
                            .enqueue(relay, Some(from.clone()), pending)
                        {
                            Counters::add(&self.counters.messages_queue_dropped, 1);
                        }
                    }
                    continue;
                }
                BroadcastKind::Reply => {
                    self.on_reply(now, b);
                    continue;
                }
            }
            if self.pubsub.subscriptions.contains(&b.topic) && b.author != self.id {
                Counters::add(&self.counters.messages_delivered, 1);
                self.pubsub.messages.push_back(Message {
                    topic: b.topic.clone(),
                    author: b.author.clone(),
                    author_key: key,
                    seq: b.seq,
                    payload: b.payload.clone(),
                });
            }
            if self.pubsub.channel.enqueue(b, Some(from.clone()), pending) {
                Counters::add(&self.counters.messages_queue_dropped, 1);
            }
        }
    }

    /// Whether `b`'s key is the one its claimed author advertises (true when
    /// the author advertises none, or is unknown here).
    fn key_matches(&self, b: &Broadcast) -> bool {
        match self.get(&b.author, PUBLIC_KEY_KEY) {
            Some(v) => v[..] == *hex(&b.author_key).as_bytes(),
            None => true,
        }
    }

    /// Whether a query's reply address is its author's, when this node
    /// knows the author: replies must not be aimed at a third party.
    fn reply_to_matches(&self, b: &Broadcast) -> bool {
        b.kind != BroadcastKind::Query
            || self
                .peers
                .get(&b.author)
                .is_none_or(|p| p.addr.is_empty() || *p.addr == *b.reply_to)
    }

    /// Bytes of a frame body broadcasts may take.
    pub(crate) fn broadcast_share(&self) -> usize {
        self.body_budget() * usize::from(self.config.broadcast_frame_percent) / 100
    }

    /// Copies of pending messages for the peer at `to` (those on topics it
    /// subscribes to and not its own), within the broadcast share.
    pub(crate) fn take_broadcasts(&mut self, to: &PeerId) -> Vec<Broadcast> {
        if self.pubsub.channel.is_empty() {
            return Vec::new();
        }
        let Some(peer) = self.peers.get(to) else {
            return Vec::new();
        };
        let wants = |b: &Broadcast| {
            b.author != *to
                && (b.kind == BroadcastKind::Query
                    || peer
                        .entry(&subscription_key(&b.topic))
                        .is_some_and(|e| !e.deleted))
        };
        let limit = retransmit_limit(self.config.broadcast_retransmit_mult, self.live_count() + 1);
        let share = self.broadcast_share();
        let max = self.config.max_broadcasts_per_frame;
        let out = self.pubsub.channel.take(to, wants, share, max, limit);
        if !out.is_empty() {
            Counters::add(&self.counters.broadcasts_sent, out.len() as u64);
            Counters::add(
                &self.counters.broadcast_bytes_sent,
                broadcasts_len(&out) as u64,
            );
        }
        out
    }

    /// The peer whose advertised address is `addr`, if any.
    pub(crate) fn peer_at(&self, addr: &str) -> Option<PeerId> {
        self.peers
            .iter()
            .find(|(id, p)| **id != self.id && *p.addr == *addr)
            .map(|(id, _)| id.clone())
    }

    /// The broadcast part of a round, after the ordinary Syns went to the
    /// peers in `reached`: for each topic with messages pending, up to
    /// `fanout` live subscribers the round did not reach, at random, are
    /// sent a Syn with an empty digest and the messages they want. Then
    /// pending messages age by a round.
    pub(crate) fn broadcast_round(&mut self, reached: &BTreeSet<PeerId>) {
        if self.pubsub.channel.is_empty() {
            return;
        }
        let fanout = self.config.fanout;
        let mut push: BTreeSet<PeerId> = BTreeSet::new();
        for (kind, topic) in self.pubsub.channel.topics() {
            let key = subscription_key(&topic);
            // A query goes to any live peer; a message to the topic's subscribers.
            let query = kind == BroadcastKind::Query;
            let subs = self.peers.iter().filter(|(id, p)| {
                **id != self.id
                    && p.status == PeerStatus::Live
                    && (query || p.entry(&key).is_some_and(|e| !e.deleted))
            });
            let (covered, rest): (Vec<_>, Vec<_>) = subs.partition(|(id, _)| reached.contains(*id));
            let need = fanout.saturating_sub(covered.len());
            let chosen = rest
                .into_iter()
                .map(|(id, _)| id.clone())
                .choose_multiple(&mut self.rng, need);
            push.extend(chosen);
        }
        for id in push {
            let broadcasts = self.take_broadcasts(&id);
            if broadcasts.is_empty() {
                continue;
            }
            let addr = self.peers[&id].addr.to_string();
            self.send_with(addr, Body::Syn(Digest::default()), broadcasts);
        }
        let limit = retransmit_limit(self.config.broadcast_retransmit_mult, self.live_count() + 1);
        self.pubsub.channel.age(limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_window_refuses_reuse_and_old_numbers() {
        let mut p = PubSub::default();
        let k = [7; 32];
        assert!(p.fresh(k, 100, 10, 4));
        assert!(!p.fresh(k, 100, 10, 4), "reused");
        assert!(p.fresh(k, 95, 10, 4), "reordered within the window");
        assert!(p.fresh(k, 120, 10, 4));
        assert!(!p.fresh(k, 110, 10, 4), "older than the window");
        assert!(p.fresh(k, 111, 10, 4));
        assert!(!p.fresh(k, 111, 10, 4));
        // Authors are bounded; the one heard from longest ago goes.
        for i in 0..4u8 {
            assert!(p.fresh([i; 32], 1, 10, 4));
        }
        assert_eq!(p.authors.len(), 4);
        assert!(!p.authors.contains_key(&k));
    }

    #[test]
    fn signatures_cover_every_field() {
        let id = Identity::from_bytes(&[9; 32]).unwrap();
        let m = sign(&id, "c", "t", &PeerId::from("a"), 5, Bytes::from("hi"));
        assert!(verify("c", &m));
        assert!(!verify("other", &m));
        let alter: [fn(&mut Broadcast); 10] = [
            |m| m.topic = "u".into(),
            |m| m.author = PeerId::from("b"),
            |m| m.seq += 1,
            |m| m.payload = Bytes::from("ho"),
            |m| m.author_key = Bytes::copy_from_slice(&[1; 32]),
            |m| m.kind = BroadcastKind::Query,
            |m| m.timeout_ms = 5,
            |m| m.reply_to = "elsewhere".into(),
            |m| m.filter_key = "role".into(),
            |m| m.request_id = Bytes::from(vec![1; 16]),
        ];
        for f in alter {
            let mut x = m.clone();
            f(&mut x);
            assert!(!verify("c", &x));
            assert_ne!(message_id("c", &x), message_id("c", &m));
        }
        // A query's remaining hops change on the way: neither the signature
        // nor the id covers them.
        let mut q = m.clone();
        q.hops = 7;
        assert!(verify("c", &q));
        assert_eq!(message_id("c", &q), message_id("c", &m));
    }

    #[test]
    fn identity_keys_round_trip_through_hex() {
        let id = Identity::generate().unwrap();
        let back = Identity::from_hex(&format!("  {}\n", id.to_hex())).unwrap();
        assert_eq!(back.public_key(), id.public_key());
        assert!(matches!(
            Identity::from_hex("abc"),
            Err(IdentityError::BadHex(_))
        ));
        assert!(matches!(
            Identity::from_hex(&"zz".repeat(32)),
            Err(IdentityError::BadHex(_))
        ));
        assert!(matches!(
            Identity::from_bytes(&[0; 31]),
            Err(IdentityError::BadLength { len: 31 })
        ));
        assert!(!format!("{id:?}").contains(&id.to_hex()));
    }
}
