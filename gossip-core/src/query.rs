//! Queries with replies (serf's query, peernet's announce) on the
//! broadcast channel.
//!
//! A query is a signed broadcast of kind `Query` with a hop limit, a
//! timeout, the originator's address and an optional filter on peers' keys.
//! It spreads like a topic message but to any live peer; a node that
//! accepts it (new id, good signature, fresh sequence number) hands it to
//! its user as a [`Request`] if the filter matches its own keys, and
//! forwards it with one hop less if any are left. Forwarding thus stops at
//! the hop limit and at nodes that have seen the query's id (the id leaves
//! the hop count out, so copies that came different ways are one query).
//! A reply is a signed broadcast of kind `Reply` naming the query's id, sent
//! straight to the originator's address, which delivers it while the query
//! is open and drops it (counted) after the timeout.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::broadcast::MessageId;
use crate::engine::Engine;
use crate::error::PubSubError;
use crate::stats::Counters;
use crate::wire::{Body, Broadcast, BroadcastKind};
use crate::PeerId;

/// How a query travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOptions {
    /// Hops it may travel from the originator (1: only the peers the
    /// originator sends it to). 1 to `Config::max_query_hops`.
    pub hops: u32,
    /// How long replies are accepted. Up to `Config::max_query_timeout`.
    pub timeout: Duration,
    /// Only nodes whose key holds this value answer (`None`: every node).
    pub filter: Option<(String, Bytes)>,
}

impl Default for QueryOptions {
    /// 4 hops, 5 s, no filter.
    fn default() -> Self {
        QueryOptions {
            hops: 4,
            timeout: Duration::from_secs(5),
            filter: None,
        }
    }
}

/// A query that reached this node; answer it with [`Engine::reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The query's id, to reply with.
    pub id: [u8; 16],
    /// The query's name.
    pub name: String,
    /// The originator.
    pub from: PeerId,
    /// The payload.
    pub payload: Bytes,
    /// Hops it had left when it arrived (the originator's limit, minus the
    /// relays it went through).
    pub hops_left: u32,
}

/// What an open query produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryEvent {
    /// A reply.
    Reply {
        /// The query it answers.
        query: [u8; 16],
        /// Who answered.
        from: PeerId,
        /// The answer.
        payload: Bytes,
    },
    /// The query's timeout passed: no more replies.
    Closed {
        /// The query.
        query: [u8; 16],
    },
}

struct Open {
    name: String,
    reply_to: String,
    until: Instant,
}

/// The query state of one engine.
#[derive(Default)]
pub(crate) struct Queries {
    /// Queries this node sent, until their timeout.
    mine: BTreeMap<MessageId, Instant>,
    /// Requests this node may still answer.
    open: BTreeMap<MessageId, Open>,
    requests: VecDeque<Request>,
    events: VecDeque<QueryEvent>,
}

impl Engine {
    /// Sends a query: `name` (like a topic) and `payload`, spread to live
    /// peers up to `options.hops` hops away; returns its id. Replies come
    /// through [`Engine::poll_query_event`] until the timeout, then a
    /// `Closed` event.
    pub fn query(
        &mut self,
        name: &str,
        payload: Bytes,
        options: &QueryOptions,
        now: Instant,
    ) -> Result<[u8; 16], PubSubError> {
        let c = &self.config;
        let timeout_ms = options.timeout.as_millis().min(u128::from(u64::MAX)) as u64;
        if options.hops == 0
            || options.hops > c.max_query_hops
            || timeout_ms == 0
            || options.timeout > c.max_query_timeout
        {
            return Err(PubSubError::BadQuery {
                hops: options.hops,
                timeout_ms,
            });
        }
        let (filter_key, filter_value) = options.filter.clone().unwrap_or_default();
        if filter_key.len() > c.max_key_bytes || filter_value.len() > c.max_value_bytes {
            return Err(PubSubError::BadQuery {
                hops: options.hops,
                timeout_ms,
            });
        }
        self.check_publish(name, &payload)?;
        let q = self.originate(
            Broadcast {
                topic: name.to_string(),
                payload,
                kind: BroadcastKind::Query,
                hops: options.hops,
                timeout_ms,
                reply_to: self.peers[&self.id].addr.to_string(),
                filter_key,
                filter_value,
                ..Broadcast::message_defaults()
            },
            now,
        )?;
        let id = crate::pubsub::message_id(&self.config.cluster_id, &q);
        let max = self.config.max_open_queries;
        if self.queries.mine.len() >= max {
            let oldest = self
                .queries
                .mine
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.queries.mine.remove(&k);
                self.queries
                    .events
                    .push_back(QueryEvent::Closed { query: k });
            }
        }
        self.queries.mine.insert(id, now + options.timeout);
        self.queue_own(q);
        Counters::add(&self.counters.queries_sent, 1);
        Ok(id)
    }

    /// Answers request `id` with `payload`, straight to its originator.
    pub fn reply(&mut self, id: [u8; 16], payload: Bytes, now: Instant) -> Result<(), PubSubError> {
        let Some(open) = self.queries.open.get(&id) else {
            return Err(PubSubError::UnknownRequest);
        };
        if now >= open.until {
            self.queries.open.remove(&id);
            return Err(PubSubError::UnknownRequest);
        }
        let (name, to) = (open.name.clone(), open.reply_to.clone());
        self.check_publish(&name, &payload)?;
        let r = self.originate(
            Broadcast {
                topic: name,
                payload,
                kind: BroadcastKind::Reply,
                request_id: Bytes::copy_from_slice(&id),
                ..Broadcast::message_defaults()
            },
            now,
        )?;
        Counters::add(&self.counters.replies_sent, 1);
        Counters::add(&self.counters.broadcasts_sent, 1);
        self.send_with(to, Body::Ack(Vec::new()), vec![r]);
        Ok(())
    }

    /// The next query that reached this node and passed its filter.
    pub fn poll_request(&mut self) -> Option<Request> {
        self.queries.requests.pop_front()
    }

    /// The next reply to, or closing of, a query this node sent.
    pub fn poll_query_event(&mut self) -> Option<QueryEvent> {
        self.queries.events.pop_front()
    }

    /// An accepted query: delivered as a request if its filter matches,
    /// returned for relaying (one hop less) if hops are left.
    pub(crate) fn on_query(
        &mut self,
        now: Instant,
        id: MessageId,
        mut q: Broadcast,
    ) -> Option<Broadcast> {
        let matches = q.filter_key.is_empty()
            || self.get(&self.id.clone(), &q.filter_key).map(|v| &v[..])
                == Some(&q.filter_value[..]);
        if matches && q.author != self.id {
            let max = self.config.max_open_queries;
            if self.queries.open.len() >= max {
                let oldest = self
                    .queries
                    .open
                    .iter()
                    .min_by_key(|(_, o)| o.until)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.queries.open.remove(&k);
                }
            }
            self.queries.open.insert(
                id,
                Open {
                    name: q.topic.clone(),
                    reply_to: q.reply_to.clone(),
                    until: now + Duration::from_millis(q.timeout_ms),
                },
            );
            Counters::add(&self.counters.requests_received, 1);
            self.queries.requests.push_back(Request {
                id,
                name: q.topic.clone(),
                from: q.author.clone(),
                payload: q.payload.clone(),
                hops_left: q.hops,
            });
        }
        if q.hops > 1 {
            q.hops -= 1;
            Some(q)
        } else {
            None
        }
    }

    /// An accepted reply: delivered if it answers an open query of this node.
    pub(crate) fn on_reply(&mut self, now: Instant, r: Broadcast) {
        let Ok(query) = <[u8; 16]>::try_from(&r.request_id[..]) else {
            return;
        };
        match self.queries.mine.get(&query) {
            Some(until) if now < *until => {
                Counters::add(&self.counters.replies_received, 1);
                self.queries.events.push_back(QueryEvent::Reply {
                    query,
                    from: r.author,
                    payload: r.payload,
                });
            }
            _ => Counters::add(&self.counters.replies_dropped, 1),
        }
    }

    /// Closes the queries and requests whose timeout passed.
    pub(crate) fn expire_queries(&mut self, now: Instant) {
        let done: Vec<MessageId> = self
            .queries
            .mine
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in done {
            self.queries.mine.remove(&k);
            self.queries
                .events
                .push_back(QueryEvent::Closed { query: k });
        }
        self.queries.open.retain(|_, o| o.until > now);
    }
}
