//! The same cluster operations on both implementations: ours on the memory
//! transport, chitchat on its in-memory `ChannelTransport` (wrapped to drop
//! frames at a given rate, which it cannot do by itself).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chitchat::transport::{
    ChannelTransport, RecvOutcome, SendOutcome, Socket, Transport as CcTransport,
};
use chitchat::{
    spawn_chitchat, ChitchatConfig, ChitchatEnvelope, ChitchatHandle, ChitchatId,
    FailureDetectorConfig,
};
use gossip::transport::mem::MemNetwork;
use gossip::{Config, Event, Node, PeerId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How a cluster under test is set up.
#[derive(Debug, Clone)]
pub struct Setup {
    pub n: usize,
    pub interval: Duration,
    pub loss: f64,
    pub seed: u64,
    /// Our engine's configuration (ignored by chitchat).
    pub config: Config,
    /// Our memory network's per-inbox byte limit (None: its default).
    pub inbox_bytes: Option<u64>,
    /// `Config::monitors` of our monitored configuration.
    pub monitors: usize,
}

/// Operations both implementations offer, observed from outside.
#[async_trait(?Send)]
pub trait Cluster {
    /// Number of nodes started.
    fn len(&self) -> usize;
    /// For each running node, how many other nodes it sees live.
    async fn live_counts(&self) -> Vec<usize>;
    /// Sets a key on node `i`.
    async fn set(&self, i: usize, key: &str, value: &str);
    /// How many running nodes hold `value` for node `owner`'s `key`.
    async fn count_having(&self, owner: usize, key: &str, value: &str) -> usize;
    /// Stops node `i` without a word.
    async fn crash(&mut self, i: usize);
    /// How many running nodes report node `i` dead.
    async fn count_reporting_dead(&self, i: usize) -> usize;
    /// For each running node (by index), the indices of the nodes it reports dead.
    async fn dead_lists(&self) -> Vec<(usize, Vec<usize>)>;
    /// Counts `PeerDead` events from now on, if the implementation has them.
    fn count_deaths(&self) -> Option<DeathCounter> {
        None
    }
    /// Total (frames, bytes) sent on the wire so far.
    fn wire(&self) -> (u64, u64);
    /// The most bytes that waited in receive queues at once, and the frames
    /// dropped so far (all causes), if the transport tells.
    fn queued_peak(&self) -> Option<(u64, u64)> {
        None
    }
    /// Stops everything.
    async fn stop(self: Box<Self>);
}

// ---- ours -------------------------------------------------------------------

pub struct Ours {
    net: MemNetwork,
    nodes: Vec<Option<Node>>,
}

fn name(i: usize) -> String {
    format!("node-{i:05}")
}

fn index(name: &str) -> usize {
    name.trim_start_matches("node-")
        .parse()
        .unwrap_or(usize::MAX)
}

impl Ours {
    pub async fn start(s: &Setup) -> Ours {
        let net = MemNetwork::new(s.seed);
        net.set_loss(s.loss);
        if let Some(b) = s.inbox_bytes {
            net.set_inbox_bytes(b);
        }
        let mut nodes = Vec::with_capacity(s.n);
        for i in 0..s.n {
            let config = s.config.clone().rng_seed(s.seed ^ i as u64);
            let node = Node::builder(name(i))
                .config(config)
                .seeds([format!("mem:{}", name(0))])
                .transport(net.bind(&format!("mem:{}", name(i))))
                .start()
                .await
                .expect("our node starts");
            node.set("role", format!("role-{}", i % 4)).expect("set");
            nodes.push(Some(node));
        }
        Ours { net, nodes }
    }
}

#[async_trait(?Send)]
impl Cluster for Ours {
    fn len(&self) -> usize {
        self.nodes.len()
    }
    async fn live_counts(&self) -> Vec<usize> {
        // The membership watch is the cheap read an embedder would use;
        // listing the storage of 1,000 nodes every poll cost a core.
        self.nodes
            .iter()
            .flatten()
            .map(|n| n.membership().borrow().len())
            .collect()
    }
    async fn set(&self, i: usize, key: &str, value: &str) {
        if let Some(n) = &self.nodes[i] {
            n.set(key.to_string(), value.to_string()).expect("set");
        }
    }
    async fn count_having(&self, owner: usize, key: &str, value: &str) -> usize {
        let owner = PeerId::from(name(owner));
        self.nodes
            .iter()
            .flatten()
            .filter(|n| n.get(&owner, key).as_deref() == Some(value.as_bytes()))
            .count()
    }
    async fn crash(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.shutdown().await.expect("shutdown");
        }
    }
    async fn count_reporting_dead(&self, i: usize) -> usize {
        let id = PeerId::from(name(i));
        self.nodes
            .iter()
            .flatten()
            .filter(|n| n.dead_peers().contains(&id))
            .count()
    }
    async fn dead_lists(&self) -> Vec<(usize, Vec<usize>)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
            .map(|(i, n)| {
                (
                    i,
                    n.dead_peers().iter().map(|p| index(p.as_str())).collect(),
                )
            })
            .collect()
    }
    fn count_deaths(&self) -> Option<DeathCounter> {
        let count = Arc::new(AtomicUsize::new(0));
        let lagged = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        let t0 = std::time::Instant::now();
        for n in self.nodes.iter().flatten() {
            let mut events = n.events();
            let me = n.id().clone();
            let (count, lagged) = (count.clone(), lagged.clone());
            tasks.push(tokio::spawn(async move {
                while let Some(e) = events.recv().await {
                    match e {
                        Event::PeerDead { peer } => {
                            count.fetch_add(1, Ordering::Relaxed);
                            if std::env::var_os("BENCH_TRACE_DEATHS").is_some() {
                                eprintln!("  dead: {peer} seen by {me} after {:?}", t0.elapsed());
                            }
                        }
                        // Missed events might have been deaths: reported
                        // beside the count rather than guessed.
                        Event::Lagged { missed } => {
                            lagged.fetch_add(missed as usize, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            }));
        }
        Some(DeathCounter {
            count,
            lagged,
            tasks,
        })
    }
    fn wire(&self) -> (u64, u64) {
        let s = self.net.stats();
        (s.frames_sent, s.bytes_sent)
    }
    fn queued_peak(&self) -> Option<(u64, u64)> {
        let s = self.net.stats();
        Some((s.bytes_queued_peak, s.frames_dropped))
    }
    async fn stop(self: Box<Self>) {
        // All at once: one by one, a loaded 1,000-node cluster takes minutes.
        let mut set = tokio::task::JoinSet::new();
        for n in self.nodes.into_iter().flatten() {
            set.spawn(async move { n.shutdown().await.map(drop).unwrap_or(()) });
        }
        while set.join_next().await.is_some() {}
    }
}

// ---- chitchat -----------------------------------------------------------------

/// chitchat's in-memory transport with seeded frame loss.
#[derive(Clone)]
struct Lossy {
    inner: ChannelTransport,
    loss: f64,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

struct LossySocket {
    inner: Box<dyn Socket>,
    loss: f64,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

#[async_trait]
impl CcTransport for Lossy {
    async fn open(&self, addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let inner = self.inner.open(addr).await?;
        Ok(Box::new(LossySocket {
            inner,
            loss: self.loss,
            rng: self.rng.clone(),
        }))
    }
}

#[async_trait]
impl Socket for LossySocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.inner.local_addr()
    }
    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let drop = self.loss > 0.0 && self.rng.lock().expect("rng").random_bool(self.loss);
        if drop {
            return Ok(SendOutcome { num_bytes_sent: 0 });
        }
        self.inner.send(to, envelope).await
    }
    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        self.inner.recv().await
    }
}

pub struct Chit {
    transport: Lossy,
    handles: Vec<Option<ChitchatHandle>>,
    ids: Vec<ChitchatId>,
}

fn cc_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16))
}

impl Chit {
    /// `v1`: chitchat's compressed-digest wire format instead of its default V0.
    pub async fn start(s: &Setup, v1: bool) -> Chit {
        let transport = Lossy {
            inner: ChannelTransport::default(),
            loss: s.loss,
            rng: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(s.seed))),
        };
        let mut handles = Vec::with_capacity(s.n);
        let mut ids = Vec::with_capacity(s.n);
        for i in 0..s.n {
            let id = ChitchatId::new(name(i), 0, cc_addr(i));
            let config = ChitchatConfig {
                chitchat_id: id.clone(),
                cluster_id: "bench".to_string(),
                gossip_interval: s.interval,
                listen_addr: cc_addr(i),
                seed_nodes: vec![cc_addr(0).to_string()],
                failure_detector_config: FailureDetectorConfig {
                    phi_threshold: s.config.phi_threshold,
                    // Start from the true interval, as our detector does.
                    initial_interval: s.interval,
                    dead_node_grace_period: Duration::from_secs(3600),
                    ..FailureDetectorConfig::default()
                },
                marked_for_deletion_grace_period: Duration::from_secs(3600),
                catchup_callback: None,
                extra_liveness_predicate: None,
                protocol_version: if v1 {
                    chitchat::ProtocolVersion::V1
                } else {
                    chitchat::ProtocolVersion::V0
                },
            };
            let kv = vec![("role".to_string(), format!("role-{}", i % 4))];
            let h = spawn_chitchat(config, kv, &transport)
                .await
                .expect("chitchat starts");
            handles.push(Some(h));
            ids.push(id);
        }
        Chit {
            transport,
            handles,
            ids,
        }
    }
}

#[async_trait(?Send)]
impl Cluster for Chit {
    fn len(&self) -> usize {
        self.handles.len()
    }
    async fn live_counts(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for h in self.handles.iter().flatten() {
            let me = h.chitchat_id().clone();
            let n = h
                .with_chitchat(|c| c.live_nodes().filter(|id| **id != me).count())
                .await;
            out.push(n);
        }
        out
    }
    async fn set(&self, i: usize, key: &str, value: &str) {
        if let Some(h) = &self.handles[i] {
            h.with_chitchat(|c| c.self_node_state().set(key, value))
                .await;
        }
    }
    async fn count_having(&self, owner: usize, key: &str, value: &str) -> usize {
        let owner = &self.ids[owner];
        let mut count = 0;
        for h in self.handles.iter().flatten() {
            let has = h
                .with_chitchat(|c| c.node_state(owner).and_then(|s| s.get(key)) == Some(value))
                .await;
            count += usize::from(has);
        }
        count
    }
    async fn crash(&mut self, i: usize) {
        if let Some(h) = self.handles[i].take() {
            let _ = h.shutdown().await;
        }
    }
    async fn count_reporting_dead(&self, i: usize) -> usize {
        let id = &self.ids[i];
        let mut count = 0;
        for h in self.handles.iter().flatten() {
            let dead = h.with_chitchat(|c| c.dead_nodes().any(|d| d == id)).await;
            count += usize::from(dead);
        }
        count
    }
    async fn dead_lists(&self) -> Vec<(usize, Vec<usize>)> {
        let mut out = Vec::new();
        for (i, h) in self.handles.iter().enumerate() {
            if let Some(h) = h {
                let dead = h
                    .with_chitchat(|c| c.dead_nodes().map(|d| index(&d.node_id)).collect())
                    .await;
                out.push((i, dead));
            }
        }
        out
    }
    fn wire(&self) -> (u64, u64) {
        let s = self.transport.inner.statistics();
        (s.num_messages_total, s.num_bytes_total)
    }
    async fn stop(self: Box<Self>) {
        let mut set = tokio::task::JoinSet::new();
        for h in self.handles.into_iter().flatten() {
            set.spawn(async move { h.shutdown().await.map(drop).unwrap_or(()) });
        }
        while set.join_next().await.is_some() {}
    }
}

/// A running count of peer-dead events over every node.
pub struct DeathCounter {
    count: Arc<AtomicUsize>,
    lagged: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl DeathCounter {
    /// Deaths reported so far.
    pub fn get(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
    /// Events missed because a reader fell behind (should be zero).
    pub fn lagged(&self) -> usize {
        self.lagged.load(Ordering::Relaxed)
    }
}

impl Drop for DeathCounter {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Which implementation: ours, or chitchat 0.13 with one of its two wire
/// formats (V0, its compatibility default, sends whole digests; V1
/// compresses each digest with zstd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    Ours,
    /// Ours with monitored liveness (`Config::monitors`, the setup's value
    /// or [`MONITORS`]).
    OursMonitored,
    ChitchatV0,
    ChitchatV1,
}

impl Impl {
    pub const ALL: [Impl; 4] = [
        Impl::Ours,
        Impl::OursMonitored,
        Impl::ChitchatV0,
        Impl::ChitchatV1,
    ];
    /// Whether this is one of our configurations (not chitchat).
    pub fn is_ours(self) -> bool {
        matches!(self, Impl::Ours | Impl::OursMonitored)
    }
    pub fn name(self) -> &'static str {
        match self {
            Impl::Ours => "ours",
            Impl::OursMonitored => "ours, monitored",
            Impl::ChitchatV0 => "chitchat V0",
            Impl::ChitchatV1 => "chitchat V1",
        }
    }
    /// The short name of a ratio column: `ours/V0`.
    pub fn short(self) -> &'static str {
        match self {
            Impl::Ours => "ours",
            Impl::OursMonitored => "mon",
            Impl::ChitchatV0 => "V0",
            Impl::ChitchatV1 => "V1",
        }
    }
    pub async fn start(self, s: &Setup) -> Box<dyn Cluster> {
        match self {
            Impl::Ours => Box::new(Ours::start(s).await),
            Impl::OursMonitored => {
                let mut s = s.clone();
                s.config.monitors = s.monitors.max(1);
                Box::new(Ours::start(&s).await)
            }
            Impl::ChitchatV0 => Box::new(Chit::start(s, false).await),
            Impl::ChitchatV1 => Box::new(Chit::start(s, true).await),
        }
    }
}

/// The ring neighbours on either side that watch a node in our monitored
/// configuration, unless `--monitors` says otherwise.
pub const MONITORS: usize = 1;

/// Nodes that see every other node live, out of `n`.
pub fn converged(counts: &[usize], n: usize) -> bool {
    counts.len() == n && counts.iter().all(|&c| c == n - 1)
}

/// Distinct count values, for diagnostics.
pub fn spread(counts: &[usize]) -> BTreeSet<usize> {
    counts.iter().copied().collect()
}
