//! The async driver: one tokio task per node owns the engine; users hold a
//! cheap, cloneable [`Node`] handle.
//!
//! The task selects over the transport's incoming frames, the handle's
//! commands and the engine's timer, then drains the engine's queues: frames
//! to the transport, events to a broadcast channel, live membership to a
//! watch channel. The engine sits behind a mutex the task takes for each
//! step (a frame, a command, a tick, draining its queues; never across an
//! await), so reads (`get`, `live_peers`) lock it briefly and read the
//! engine's own table, without a round trip to the task and without a second
//! copy of the table. A [`Storage`] given to the builder is written through
//! to (a persistent peer book, outside readers); without one none is kept.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tracing::Instrument;

use crate::error::{Error, KeyError, KeyringError, PubSubError, TransportError};
use crate::keyring::{Key, KeyId, Keyring, Plaintext};
use crate::peer_stats::PeerTable;
use crate::pubsub::{Identity, Message};
use crate::query::{QueryEvent, QueryOptions, Request};
use crate::stats::Counters;
use crate::{
    Config, Engine, Event, PeerId, PeerRecord, PeerStats, PeerStatus, PeerView, Stats, Storage,
    Transport,
};

/// Builds and starts a [`Node`]; see [`Node::builder`].
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct NodeBuilder {
    id: PeerId,
    config: Config,
    seeds: Vec<String>,
    transport: Option<Arc<dyn Transport>>,
    storage: Option<Arc<dyn Storage>>,
    generation: Option<u64>,
    identity: Option<Identity>,
    /// The node's event channel, made here so that [`NodeBuilder::events`]
    /// can subscribe before the first round.
    events: LazyBroadcast<Event>,
}

impl NodeBuilder {
    /// The ed25519 identity the node signs what it publishes with (default:
    /// a new one from the OS generator; load a kept one with
    /// [`Identity::from_file`]).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }
    /// The configuration (default: [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        // The ring is sized when first subscribed to: by `events` before
        // `start`, or by `Node::events` after.
        self.events.capacity = config.event_buffer;
        self.config = config;
        self
    }
    /// A stream of the node's events from its start on: the joins the
    /// first gossip round brings included, which a [`Node::events`] stream
    /// taken after [`start`](NodeBuilder::start) may miss (the node's task
    /// runs at once, possibly on another thread). Call it after
    /// [`config`](NodeBuilder::config), which sets `event_buffer`.
    ///
    /// ```no_run
    /// # async fn run(t: impl gossip_core::Transport) -> Result<(), gossip_core::Error> {
    /// let builder = gossip_core::Node::builder("a").transport(t).seeds(["10.0.0.1:7946"]);
    /// let mut events = builder.events();
    /// let node = builder.start().await?;
    /// while let Some(event) = events.recv().await {
    ///     println!("{event:?}");
    /// }
    /// # drop(node);
    /// # Ok(())
    /// # }
    /// ```
    pub fn events(&self) -> Events {
        Events {
            inner: BroadcastStream::new(self.events.subscribe()),
        }
    }
    /// Addresses of seed peers, contacted at start and whenever fewer than
    /// `min_live_peers` are live. The node's own address may be among them.
    pub fn seeds<I, S>(mut self, seeds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.seeds.extend(seeds.into_iter().map(Into::into));
        self
    }
    /// The transport (required). Its `local_addr` is advertised to peers.
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }
    /// A peer table the engine writes every change through to (default:
    /// none; the handles read the engine's own table either way). Use it to
    /// keep the table outside the node, such as a
    /// [`MemoryStorage`](crate::MemoryStorage) other code reads. A
    /// persistent one's [`book`](Storage::book) is contacted at start
    /// like the seeds (except this node and peers that left), so a node
    /// restarted with its storage and no seeds rejoins.
    pub fn storage(mut self, storage: impl Storage) -> Self {
        self.storage = Some(Arc::new(storage));
        self
    }
    /// Overrides the generation (default: the start time in milliseconds,
    /// made unique within the process). It must exceed every earlier
    /// incarnation's, or peers keep the old state.
    pub fn generation(mut self, generation: u64) -> Self {
        self.generation = Some(generation);
        self
    }

    /// Validates the configuration and starts the node's task on the current
    /// tokio runtime. The first gossip round runs at once.
    pub async fn start(self) -> Result<Node, Error> {
        let transport = self
            .transport
            .ok_or(Error::Builder("a transport is required"))?;
        let mut config = self.config;
        config.validate()?;
        if config.rng_seed.is_none() {
            config.rng_seed = Some(RandomState::new().hash_one(fresh_generation()));
        }
        let generation = self.generation.unwrap_or_else(fresh_generation);
        let addr = transport.local_addr();
        let book: Vec<String> = self.storage.as_ref().map_or_else(Vec::new, |s| {
            s.book()
                .into_iter()
                .filter(|r| r.id != self.id && r.status != PeerStatus::Left && r.addr != addr)
                .map(|r| r.addr)
                .collect()
        });
        let identity = match self.identity {
            Some(i) => i,
            None => Identity::generate()?,
        };
        let now = tokio::time::Instant::now().into_std();
        let mut engine = Engine::new(
            config.clone(),
            self.id.clone(),
            addr.clone(),
            generation,
            now,
        )?
        .with_seeds(self.seeds)
        .with_seeds(book)
        .with_identity(identity);
        if let Some(storage) = self.storage {
            engine = engine.with_storage(storage);
        }
        let counters = engine.counters();
        let base_seeds = engine.seeds().to_vec();
        let engine = Arc::new(Mutex::new(engine));
        let peer_stats = Arc::new(PeerTable::new(config.max_peers));
        let topics: Topics = Arc::default();
        let requests_tx = LazyBroadcast::new(config.request_buffer);
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let events_tx = self.events;
        let (members_tx, members_rx) = watch::channel(Vec::new());
        let span = tracing::info_span!("node", node = %self.id);
        let task = Task {
            base_seeds,
            engine: engine.clone(),
            transport: transport.clone(),
            cmds: cmd_rx,
            events: events_tx.clone(),
            members: members_tx,
            peer_stats: peer_stats.clone(),
            topics: topics.clone(),
            requests: requests_tx.clone(),
            replies: std::collections::BTreeMap::new(),
        };
        let handle = tokio::spawn(task.run().instrument(span));
        Ok(Node {
            inner: Arc::new(Inner {
                id: self.id,
                generation,
                addr,
                config,
                engine,
                transport,
                counters,
                peer_stats,
                cmds: cmd_tx,
                events: events_tx,
                members: members_rx,
                leaving: AtomicBool::new(false),
                task: Mutex::new(Some(handle)),
                topics,
                requests: requests_tx,
            }),
        })
    }
}

/// A handle to a running node. Cheap to clone; the node stops when
/// [`leave`](Node::leave) or [`shutdown`](Node::shutdown) is called, or when
/// every handle is dropped.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    id: PeerId,
    generation: u64,
    addr: String,
    config: Config,
    /// Shared with the node's task, which locks it for each step.
    engine: Arc<Mutex<Engine>>,
    transport: Arc<dyn Transport>,
    counters: Arc<Counters>,
    peer_stats: Arc<PeerTable>,
    cmds: mpsc::UnboundedSender<Command>,
    events: LazyBroadcast<Event>,
    members: watch::Receiver<Vec<PeerId>>,
    leaving: AtomicBool,
    task: Mutex<Option<JoinHandle<()>>>,
    topics: Topics,
    requests: LazyBroadcast<Request>,
}

/// The local subscribers of each topic the node subscribes to.
type Topics = Arc<Mutex<std::collections::BTreeMap<String, broadcast::Sender<Message>>>>;

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.id)
            .field("generation", &self.inner.generation)
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

enum Command {
    Set(String, Bytes),
    Delete(String),
    Peers(oneshot::Sender<Vec<PeerView>>),
    Keys(
        KeyCommand,
        oneshot::Sender<Result<Vec<KeyId>, KeyringError>>,
    ),
    Seeds(Vec<String>),
    Leave(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
    Subscribe(String, oneshot::Sender<Result<(), PubSubError>>),
    Unsubscribe(String),
    Publish(String, Bytes, oneshot::Sender<Result<u64, PubSubError>>),
    Query(
        String,
        Bytes,
        QueryOptions,
        mpsc::UnboundedSender<(PeerId, Bytes)>,
        oneshot::Sender<Result<[u8; 16], PubSubError>>,
    ),
    Reply([u8; 16], Bytes, oneshot::Sender<Result<(), PubSubError>>),
}

/// A keyring change, carried out by the node's task.
enum KeyCommand {
    Add(Key),
    SetPrimary(KeyId),
    Remove(KeyId),
    Plaintext(Plaintext),
    List,
}

impl Node {
    /// Starts building a node with the given id (unique in the cluster).
    pub fn builder(id: impl Into<PeerId>) -> NodeBuilder {
        NodeBuilder {
            id: id.into(),
            config: Config::default(),
            seeds: Vec::new(),
            transport: None,
            storage: None,
            generation: None,
            identity: None,
            events: LazyBroadcast::new(Config::default().event_buffer),
        }
    }

    /// This node's id.
    pub fn id(&self) -> &PeerId {
        &self.inner.id
    }
    /// This incarnation's generation.
    pub fn generation(&self) -> u64 {
        self.inner.generation
    }
    /// The address this node advertises.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }
    /// The configuration the node runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Sets one of this node's keys (gossipmonger's `update`). Applied by
    /// the node's task in call order; visible to [`get`](Node::get) once
    /// applied, and to peers within a few rounds.
    pub fn set(&self, key: impl Into<String>, value: impl Into<Bytes>) -> Result<(), Error> {
        let (key, value) = (key.into(), value.into());
        self.check_key(&key)?;
        let c = &self.inner.config;
        if value.len() > c.max_value_bytes {
            return Err(KeyError::ValueTooLarge {
                len: value.len(),
                max: c.max_value_bytes,
            }
            .into());
        }
        let full = {
            let e = self.engine();
            let own = &self.inner.id;
            e.get(own, &key).is_none() && e.live_key_count(own) >= c.max_keys_per_peer
        };
        if full {
            return Err(KeyError::TooManyKeys {
                max: c.max_keys_per_peer,
            }
            .into());
        }
        self.command(Command::Set(key, value))
    }

    /// Deletes one of this node's keys; peers see `KeyDeleted`.
    pub fn delete(&self, key: impl Into<String>) -> Result<(), Error> {
        let key = key.into();
        self.check_key(&key)?;
        self.command(Command::Delete(key))
    }

    fn check_key(&self, key: &str) -> Result<(), Error> {
        let max = self.inner.config.max_key_bytes;
        if key.is_empty() {
            return Err(KeyError::Empty.into());
        }
        if key.len() > max {
            return Err(KeyError::KeyTooLong {
                len: key.len(),
                max,
            }
            .into());
        }
        if self.inner.leaving.load(Ordering::Relaxed) {
            return Err(KeyError::Left.into());
        }
        Ok(())
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        lock(&self.inner.engine)
    }

    fn command(&self, c: Command) -> Result<(), Error> {
        self.inner.cmds.send(c).map_err(|_| Error::Stopped)
    }

    /// The value of `key` at `peer` (or at this node), if set.
    pub fn get(&self, peer: &PeerId, key: &str) -> Option<Bytes> {
        self.engine().get(peer, key).cloned()
    }
    /// Every live key of `peer`, sorted.
    pub fn keys(&self, peer: &PeerId) -> Vec<(String, Bytes)> {
        self.engine().keys(peer)
    }
    /// Other peers currently live, sorted.
    pub fn live_peers(&self) -> Vec<PeerId> {
        self.engine().live_peers()
    }
    /// Other peers currently dead, sorted.
    pub fn dead_peers(&self) -> Vec<PeerId> {
        self.engine().dead_peers()
    }
    /// Records of every known peer (this node included), sorted by id.
    pub fn peers(&self) -> Vec<PeerRecord> {
        self.engine().records()
    }
    /// The engine's full view of every peer (heartbeat, phi, versions),
    /// fetched from the node's task.
    pub async fn peer_views(&self) -> Result<Vec<PeerView>, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Peers(tx))?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Installs `key` for opening frames (step 1 of a rotation, on every
    /// node); returns its id. A node without a keyring makes `key` its
    /// primary and seals from then on (unless `Plaintext::Send`).
    pub async fn add_key(&self, key: Key) -> Result<KeyId, Error> {
        let id = key.id();
        self.keyring_command(KeyCommand::Add(key)).await?;
        Ok(id)
    }

    /// Seals outgoing frames with the installed key `id` (step 2 of a
    /// rotation, once every node holds the key).
    pub async fn set_primary_key(&self, id: KeyId) -> Result<(), Error> {
        self.keyring_command(KeyCommand::SetPrimary(id))
            .await
            .map(drop)
    }

    /// Uninstalls key `id` (step 3 of a rotation, once every node seals
    /// with the new key); the primary cannot be removed.
    pub async fn remove_key(&self, id: KeyId) -> Result<(), Error> {
        self.keyring_command(KeyCommand::Remove(id)).await.map(drop)
    }

    /// Changes what the node does about plaintext frames; see [`Plaintext`].
    pub async fn set_plaintext(&self, plaintext: Plaintext) -> Result<(), Error> {
        self.keyring_command(KeyCommand::Plaintext(plaintext))
            .await
            .map(drop)
    }

    /// The ids of the keys the node holds now, the primary first (empty
    /// without a keyring). [`Node::config`] shows the keyring it started with.
    pub async fn key_ids(&self) -> Result<Vec<KeyId>, Error> {
        self.keyring_command(KeyCommand::List).await
    }

    async fn keyring_command(&self, c: KeyCommand) -> Result<Vec<KeyId>, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Keys(c, tx))?;
        Ok(rx.await.map_err(|_| Error::Stopped)??)
    }

    /// A stream of events from now on (for every event since the start,
    /// take [`NodeBuilder::events`] before starting). A reader that falls more than
    /// `Config::event_buffer` events behind receives [`Event::Lagged`] with
    /// the number it missed, then continues.
    pub fn events(&self) -> Events {
        Events {
            inner: BroadcastStream::new(self.inner.events.subscribe()),
        }
    }

    /// Subscribes to `topic`: the stream yields every message published on
    /// it from now on by another node, once. The subscription is advertised
    /// to the cluster while at least one stream of the topic is alive; drop
    /// every one to unsubscribe.
    pub async fn subscribe(&self, topic: impl Into<String>) -> Result<Subscription, Error> {
        let topic = topic.into();
        let (rx, new) = {
            let mut topics = self.inner.topics.lock().expect("topics lock");
            match topics.get(&topic) {
                Some(tx) => (tx.subscribe(), false),
                None => {
                    let (tx, rx) = broadcast::channel(self.inner.config.event_buffer);
                    topics.insert(topic.clone(), tx);
                    (rx, true)
                }
            }
        };
        let sub = Subscription {
            topic: topic.clone(),
            inner: BroadcastStream::new(rx),
            topics: self.inner.topics.clone(),
            cmds: self.inner.cmds.downgrade(),
            counters: self.inner.counters.clone(),
        };
        if new {
            let (tx, rx) = oneshot::channel();
            self.command(Command::Subscribe(topic, tx))?;
            // On refusal, dropping `sub` withdraws the topic again.
            rx.await.map_err(|_| Error::Stopped)??;
        }
        Ok(sub)
    }

    /// Publishes `payload` on `topic`, signed with the node's identity;
    /// returns its sequence number. It reaches the topic's subscribers
    /// within a few rounds (not this node's own subscriptions).
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> Result<u64, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Publish(topic.into(), payload.into(), tx))?;
        Ok(rx.await.map_err(|_| Error::Stopped)??)
    }

    /// Sends a query (serf's query, peernet's announce) to live peers up to
    /// `options.hops` hops away; the stream yields each reply `(responder,
    /// payload)` and ends at the timeout.
    pub async fn query(
        &self,
        name: impl Into<String>,
        payload: impl Into<Bytes>,
        options: QueryOptions,
    ) -> Result<Replies, Error> {
        let (tx, rx) = oneshot::channel();
        let (replies_tx, replies_rx) = mpsc::unbounded_channel();
        self.command(Command::Query(
            name.into(),
            payload.into(),
            options,
            replies_tx,
            tx,
        ))?;
        let id = rx.await.map_err(|_| Error::Stopped)??;
        Ok(Replies {
            id,
            inner: replies_rx,
        })
    }

    /// Queries from other nodes that passed their filter here, from now on;
    /// answer each with [`IncomingRequest::reply`]. A reader more than
    /// `Config::request_buffer` behind misses the oldest.
    pub fn requests(&self) -> Requests {
        Requests {
            inner: BroadcastStream::new(self.inner.requests.subscribe()),
            cmds: self.inner.cmds.downgrade(),
        }
    }

    /// The set of live peers, updated as it changes.
    pub fn membership(&self) -> watch::Receiver<Vec<PeerId>> {
        self.inner.members.clone()
    }

    /// The node's counters, with its transport's.
    pub fn stats(&self) -> Stats {
        let mut s = self.inner.counters.snapshot();
        s.transport = self.inner.transport.stats();
        s
    }

    /// Traffic with `peer`: frames and bytes from it and to its address,
    /// last contact, and the transport's connection successes and failures
    /// with its address. `None` if nothing was exchanged with it (or it was
    /// removed).
    pub fn peer_stats(&self, peer: &PeerId) -> Option<PeerStats> {
        let addr = self.engine().addr_of(peer);
        let mut s = self.inner.peer_stats.get(peer, addr.as_deref())?;
        if let Some(c) = addr
            .as_deref()
            .and_then(|a| self.inner.transport.connection_stats(a))
        {
            s.connections = c;
        }
        Some(s)
    }

    /// Replaces the seeds found at runtime (a discoverer found new ones,
    /// or a seed moved); the builder's seeds and those the storage
    /// remembered are kept. Applied by the node's task; seeds are contacted
    /// while fewer than `min_live_peers` peers are live.
    pub fn set_seeds<I, S>(&self, seeds: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command(Command::Seeds(seeds.into_iter().map(Into::into).collect()))
    }

    /// Tells the cluster this node leaves (peers report `PeerLeft`, never
    /// `PeerDead`), gossips for `Config::leave_rounds` rounds, then stops.
    pub async fn leave(&self) -> Result<(), Error> {
        self.inner.leaving.store(true, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.command(Command::Leave(tx))?;
        let _ = rx.await;
        self.join().await
    }

    /// Stops at once without telling anyone: peers will see a crash.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        if self.command(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        self.join().await
    }

    async fn join(&self) -> Result<(), Error> {
        let handle = self.inner.task.lock().expect("task lock").take();
        if let Some(h) = handle {
            h.await.map_err(|e| {
                Error::Transport(TransportError::Other(format!("node task failed: {e}")))
            })?;
        }
        Ok(())
    }
}

/// A stream of a node's [`Event`]s; see [`Node::events`].
pub struct Events {
    inner: BroadcastStream<Event>,
}

impl Events {
    /// The next event; `None` once the node has stopped and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *self), cx)).await
    }
}

impl futures_core::Stream for Events {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|item| {
            item.map(|r| match r {
                Ok(e) => e,
                Err(BroadcastStreamRecvError::Lagged(missed)) => Event::Lagged { missed },
            })
        })
    }
}

/// The messages of one topic; see [`Node::subscribe`]. A reader that falls
/// more than `Config::event_buffer` messages behind misses the oldest
/// (counted in `Stats::messages_lagged`). The stream ends when the node stops.
pub struct Subscription {
    topic: String,
    inner: BroadcastStream<Message>,
    topics: Topics,
    cmds: mpsc::WeakUnboundedSender<Command>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The next message; `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<Message> {
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *self), cx)).await
    }
}

impl futures_core::Stream for Subscription {
    type Item = Message;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                    Counters::add(&self.counters.messages_lagged, n);
                }
                Poll::Ready(Some(Ok(m))) => return Poll::Ready(Some(m)),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut topics = self.topics.lock().expect("topics lock");
        // This stream's own receiver is still alive: it is the last one.
        let last = topics
            .get(&self.topic)
            .is_some_and(|tx| tx.receiver_count() <= 1);
        if last {
            topics.remove(&self.topic);
            if let Some(cmds) = self.cmds.upgrade() {
                let _ = cmds.send(Command::Unsubscribe(self.topic.clone()));
            }
        }
    }
}

/// The replies to one query; see [`Node::query`]. Ends at the timeout.
#[derive(Debug)]
pub struct Replies {
    id: [u8; 16],
    inner: mpsc::UnboundedReceiver<(PeerId, Bytes)>,
}

impl Replies {
    /// The query's id.
    pub fn id(&self) -> [u8; 16] {
        self.id
    }
    /// The next reply; `None` once the query timed out (or the node stopped).
    pub async fn recv(&mut self) -> Option<(PeerId, Bytes)> {
        self.inner.recv().await
    }
}

impl futures_core::Stream for Replies {
    type Item = (PeerId, Bytes);
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_recv(cx)
    }
}

/// Incoming queries; see [`Node::requests`]. Ends once the node has stopped
/// and its last handle is dropped.
pub struct Requests {
    inner: BroadcastStream<Request>,
    cmds: mpsc::WeakUnboundedSender<Command>,
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests").finish_non_exhaustive()
    }
}

impl Requests {
    /// The next request; `None` once the node has stopped and its last
    /// handle is dropped.
    pub async fn recv(&mut self) -> Option<IncomingRequest> {
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *self), cx)).await
    }
}

impl futures_core::Stream for Requests {
    type Item = IncomingRequest;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<IncomingRequest>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(request))) => {
                    return Poll::Ready(Some(IncomingRequest {
                        request,
                        cmds: self.cmds.clone(),
                    }))
                }
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(_)))) => continue,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A query that reached this node, with the means to answer it.
pub struct IncomingRequest {
    /// The query.
    pub request: Request,
    cmds: mpsc::WeakUnboundedSender<Command>,
}

impl std::fmt::Debug for IncomingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingRequest")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl IncomingRequest {
    /// Answers the query, straight to its originator (before its timeout).
    pub async fn reply(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
        let cmds = self.cmds.upgrade().ok_or(Error::Stopped)?;
        let (tx, rx) = oneshot::channel();
        cmds.send(Command::Reply(self.request.id, payload.into(), tx))
            .map_err(|_| Error::Stopped)?;
        Ok(rx.await.map_err(|_| Error::Stopped)??)
    }
}

/// The most queued frames read ahead of one tick.
const BACKLOG_PER_TICK: usize = 256;

struct Task {
    engine: Arc<Mutex<Engine>>,
    /// The builder's seeds and those the storage remembered, which
    /// `Node::set_seeds` keeps.
    base_seeds: Vec<String>,
    transport: Arc<dyn Transport>,
    cmds: mpsc::UnboundedReceiver<Command>,
    events: LazyBroadcast<Event>,
    members: watch::Sender<Vec<PeerId>>,
    peer_stats: Arc<PeerTable>,
    topics: Topics,
    requests: LazyBroadcast<Request>,
    /// The reply streams of open queries.
    replies: std::collections::BTreeMap<[u8; 16], mpsc::UnboundedSender<(PeerId, Bytes)>>,
}

/// Locks the engine. A panic while it was held (a bug, logged by the
/// runtime) leaves it usable rather than wedging every handle.
fn lock(engine: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl Task {
    async fn run(mut self) {
        tracing::debug!(generation = lock(&self.engine).generation(), "node started");
        let mut done: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            let deadline = tokio::time::Instant::from_std(lock(&self.engine).poll_timeout());
            tokio::select! {
                cmd = self.cmds.recv() => match cmd {
                    Some(Command::Set(k, v)) => {
                        if let Err(e) = lock(&self.engine).set(&k, v, now()) {
                            tracing::debug!(key = %k, error = %e, "set refused");
                        }
                    }
                    Some(Command::Delete(k)) => {
                        let _ = lock(&self.engine).delete(&k, now());
                    }
                    Some(Command::Peers(tx)) => {
                        let _ = tx.send(lock(&self.engine).peers().collect());
                    }
                    Some(Command::Keys(c, tx)) => {
                        let _ = tx.send(self.keyring_command(c));
                    }
                    Some(Command::Seeds(found)) => {
                        tracing::debug!(seeds = ?found, "seeds found");
                        let all = self.base_seeds.iter().cloned().chain(found);
                        lock(&self.engine).set_seeds(all);
                    }
                    Some(Command::Leave(tx)) => {
                        lock(&self.engine).leave(now());
                        done.push(tx);
                    }
                    Some(Command::Shutdown(tx)) => {
                        done.push(tx);
                        break;
                    }
                    Some(Command::Subscribe(topic, tx)) => {
                        let _ = tx.send(lock(&self.engine).subscribe(&topic, now()));
                    }
                    Some(Command::Unsubscribe(topic)) => {
                        if let Err(e) = lock(&self.engine).unsubscribe(&topic, now()) {
                            tracing::debug!(topic, error = %e, "unsubscribe refused");
                        }
                    }
                    Some(Command::Publish(topic, payload, tx)) => {
                        let _ = tx.send(lock(&self.engine).publish(&topic, payload, now()));
                    }
                    Some(Command::Query(name, payload, options, replies, tx)) => {
                        let r = lock(&self.engine).query(&name, payload, &options, now());
                        if let Ok(id) = r {
                            self.replies.insert(id, replies);
                        }
                        let _ = tx.send(r);
                    }
                    Some(Command::Reply(id, payload, tx)) => {
                        let _ = tx.send(lock(&self.engine).reply(id, payload, now()));
                    }
                    None => break,
                },
                r = self.transport.recv() => match r {
                    Ok((from, frame)) => self.handle_frame(&from, &frame),
                    Err(TransportError::Closed) => {
                        tracing::debug!("transport closed; node stops");
                        break;
                    }
                    Err(e) => tracing::debug!(error = %e, "transport receive failed"),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if !self.drain_backlog().await {
                        break;
                    }
                    lock(&self.engine).handle_tick(now());
                }
            }
            self.flush().await;
            if lock(&self.engine).has_left() {
                break;
            }
        }
        let _ = self.transport.close().await;
        // Subscription streams end.
        self.topics.lock().expect("topics lock").clear();
        tracing::debug!("node stopped");
        for tx in done {
            let _ = tx.send(());
        }
    }

    /// Reads the frames that already arrived before a tick judges liveness:
    /// after the node itself stalled (a pause, a starved thread), the
    /// heartbeats that show peers alive may be waiting in the queue, and a
    /// tick that ran first would report those peers dead. Bounded, so a
    /// flood cannot hold the tick off. Returns false once the transport closed.
    async fn drain_backlog(&mut self) -> bool {
        for _ in 0..BACKLOG_PER_TICK {
            // `timeout` polls the receive once before looking at the clock:
            // a zero timeout takes exactly what is already queued.
            match tokio::time::timeout(Duration::ZERO, self.transport.recv()).await {
                Ok(Ok((from, frame))) => self.handle_frame(&from, &frame),
                Ok(Err(TransportError::Closed)) => return false,
                Ok(Err(e)) => tracing::debug!(error = %e, "transport receive failed"),
                Err(_) => break,
            }
        }
        self.flush().await;
        true
    }

    /// Hands a frame to the engine and counts it for its sender.
    fn handle_frame(&mut self, from: &str, frame: &[u8]) {
        let at = now();
        let sender = {
            let mut e = lock(&self.engine);
            // Taken, so a frame the engine ignored (after leaving) is not
            // counted for the previous sender.
            e.last_sender = None;
            let ok = e.handle_frame(at, from, frame).is_ok();
            e.last_sender.take().filter(|_| ok)
        };
        if let Some(sender) = sender {
            self.peer_stats.frame_in(&sender, frame.len(), at);
        }
    }

    fn keyring_command(&mut self, c: KeyCommand) -> Result<Vec<KeyId>, KeyringError> {
        let mut e = lock(&self.engine);
        match c {
            KeyCommand::Add(key) => e.add_key(key).map(drop),
            KeyCommand::SetPrimary(id) => e.set_primary_key(id),
            KeyCommand::Remove(id) => e.remove_key(id),
            KeyCommand::Plaintext(p) => {
                e.set_plaintext(p);
                Ok(())
            }
            KeyCommand::List => Ok(()),
        }?;
        tracing::debug!(keys = ?e.keyring(), plaintext = ?e.config().plaintext, "keyring changed");
        Ok(e.keyring().map(Keyring::ids).unwrap_or_default())
    }

    async fn flush(&mut self) {
        loop {
            // One frame at a time: the lock is not held across the send.
            let Some(t) = lock(&self.engine).poll_transmit() else {
                break;
            };
            let len = t.frame.len();
            let sent = self.transport.send(&t.to, t.frame).await;
            if let Err(e) = &sent {
                tracing::debug!(to = %t.to, error = %e, "send failed");
            }
            let engine = &self.engine;
            self.peer_stats
                .frame_out(&t.to, len, sent.is_ok(), || lock(engine).addrs());
        }
        let mut engine = lock(&self.engine);
        while let Some(m) = engine.poll_message() {
            let topics = self.topics.lock().expect("topics lock");
            if let Some(tx) = topics.get(&m.topic) {
                let _ = tx.send(m);
            }
        }
        while let Some(r) = engine.poll_request() {
            self.requests.send(r);
        }
        while let Some(e) = engine.poll_query_event() {
            match e {
                QueryEvent::Reply {
                    query,
                    from,
                    payload,
                } => {
                    if let Some(tx) = self.replies.get(&query) {
                        let _ = tx.send((from, payload));
                    }
                }
                QueryEvent::Closed { query } => {
                    self.replies.remove(&query);
                }
            }
        }
        let mut changed = false;
        while let Some(e) = engine.poll_event() {
            changed |= !matches!(e, Event::KeyUpdated { .. } | Event::KeyDeleted { .. });
            if let Event::PeerRemoved { peer } = &e {
                self.peer_stats.forget(peer);
            }
            self.events.send(e);
        }
        let live = changed.then(|| engine.live_peers());
        // Released before the watch is written: a handle may hold the
        // watch's read guard (`membership().borrow()`) while it reads the
        // node, which takes this lock.
        drop(engine);
        if let Some(live) = live {
            self.members.send_if_modified(|m| {
                let differs = *m != live;
                if differs {
                    *m = live;
                }
                differs
            });
        }
    }
}

/// A broadcast channel whose ring is made at the first subscription.
///
/// tokio allocates a channel's ring in full (`event_buffer` slots of about
/// 100 bytes for events, `request_buffer` for queries); with no receiver a
/// send is dropped anyway, so a node nobody listens to needs no ring. The
/// sender lives as long as the last clone, as a plain `Sender` would.
struct LazyBroadcast<T> {
    tx: Arc<OnceLock<broadcast::Sender<T>>>,
    capacity: usize,
}

impl<T> Clone for LazyBroadcast<T> {
    fn clone(&self) -> Self {
        LazyBroadcast {
            tx: self.tx.clone(),
            capacity: self.capacity,
        }
    }
}

impl<T: Clone> LazyBroadcast<T> {
    fn new(capacity: usize) -> Self {
        LazyBroadcast {
            tx: Arc::default(),
            capacity,
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<T> {
        // `Config::validate` refuses a zero buffer, but a builder's stream
        // is taken before `start` validates.
        self.tx
            .get_or_init(|| broadcast::channel(self.capacity.max(1)).0)
            .subscribe()
    }

    /// Sends to the receivers there are; without any, drops `v`.
    fn send(&self, v: T) {
        if let Some(tx) = self.tx.get() {
            let _ = tx.send(v);
        }
    }
}

/// A generation for a new incarnation: the wall clock in milliseconds, and
/// strictly larger than any generation handed out before in this process.
fn fresh_generation() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = wall.max(prev + 1);
        match LAST.compare_exchange(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}
