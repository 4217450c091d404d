//! Seed discovery for gossip nodes: where to find the cluster without a
//! static list of seed addresses.
//!
//! A [`Discover`] answers one question, "at which addresses may members of
//! the cluster be reached now?". [`Discovery::spawn`] asks it periodically
//! and hands every change to the node with [`Node::set_seeds`]; seeds are
//! what a node contacts while it knows fewer than `min_live_peers` live
//! peers, so discovery matters at start, after a partition and when a seed
//! moves, and costs nothing while the cluster is healthy.
//!
//! Three discoverers ship:
//!
//! - [`Dns`]: a name resolved with the system resolver every period; every
//!   A and AAAA record becomes a seed. This is the pattern of a Kubernetes
//!   headless service, whose name resolves to every ready pod.
//! - [`Mdns`]: multicast DNS on the local link; the node announces itself
//!   (service `_gossip._tcp.local.`, its cluster id in a TXT record) and
//!   browses for the others.
//! - [`Dht`]: a topic on the BitTorrent mainline DHT (BEP 5); the node
//!   announces its port under the topic's info hash and looks up the others.
//!
//! Writing another (a cloud API, a service registry) is one `async fn`:
//!
//! ```
//! use gossip_discovery::{Discover, DiscoveryError};
//!
//! struct Fixed(Vec<String>);
//!
//! #[async_trait::async_trait]
//! impl Discover for Fixed {
//!     async fn discover(&self) -> Result<Vec<String>, DiscoveryError> {
//!         Ok(self.0.clone())
//!     }
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod dht;
mod dns;
mod mdns;

use std::net::SocketAddr;
use std::time::Duration;

use gossip_core::{Error, Node};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use dht::Dht;
pub use dns::Dns;
pub use mdns::{Mdns, SERVICE as MDNS_SERVICE};

/// A source of seed addresses.
#[async_trait::async_trait]
pub trait Discover: Send + Sync + 'static {
    /// The addresses (`HOST:PORT`, as the transport dials them) at which
    /// members of the cluster may be reached now. Called once at start and
    /// then every [`Options::interval`]; an error keeps the seeds found
    /// before. The node's own address may be among them.
    async fn discover(&self) -> Result<Vec<String>, DiscoveryError>;
}

#[async_trait::async_trait]
impl Discover for Box<dyn Discover> {
    async fn discover(&self) -> Result<Vec<String>, DiscoveryError> {
        (**self).discover().await
    }
}

/// Why discovery could not be set up, or one lookup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// A `--discover` spec that does not parse.
    #[error("discovery spec {spec:?}: {reason}")]
    Spec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The system resolver failed for a name.
    #[error("resolving {name:?}: {source}")]
    Resolve {
        /// The name looked up.
        name: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The multicast DNS daemon refused a request.
    #[error("multicast DNS: {0}")]
    Mdns(String),
    /// The DHT node could not start, or a lookup could not run.
    #[error("DHT: {0}")]
    Dht(String),
}

/// How often discovery runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The time between two lookups (default 5 s).
    pub interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interval: Duration::from_secs(5),
        }
    }
}

impl Options {
    /// Sets [`Options::interval`].
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
}

/// A running discovery loop for one node; see [`Discovery::spawn`]. The
/// loop stops when this is dropped or when the node stops. It holds a
/// handle to the node, so the node keeps running while this lives (stop
/// it with `leave` or `shutdown`, or drop this first).
#[derive(Debug)]
pub struct Discovery {
    seeds: watch::Receiver<Vec<String>>,
    task: JoinHandle<()>,
}

impl Discovery {
    /// Runs `discover` at once and then every `options.interval` on the
    /// current tokio runtime; whenever the seeds it finds (without the
    /// node's own address, sorted) differ from the last ones, they replace
    /// the node's discovered seeds ([`Node::set_seeds`]; the seeds the node
    /// was built with stay).
    pub fn spawn(node: Node, discover: impl Discover, options: Options) -> Discovery {
        let (tx, rx) = watch::channel(Vec::new());
        let task = tokio::spawn(run(node, discover, options, tx));
        Discovery { seeds: rx, task }
    }

    /// A watch of the seeds last handed to the node.
    pub fn seeds(&self) -> watch::Receiver<Vec<String>> {
        self.seeds.clone()
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    node: Node,
    discover: impl Discover,
    options: Options,
    tx: watch::Sender<Vec<String>>,
) {
    let mut last: Option<Vec<String>> = None;
    loop {
        match discover.discover().await {
            Ok(found) => {
                let seeds = clean(found, node.addr());
                if last.as_ref() != Some(&seeds) {
                    tracing::debug!(?seeds, "discovered seeds");
                    if let Err(Error::Stopped) = node.set_seeds(seeds.clone()) {
                        return;
                    }
                    tx.send_replace(seeds.clone());
                    last = Some(seeds);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "discovery failed; keeping the seeds found before")
            }
        }
        tokio::time::sleep(options.interval).await;
    }
}

/// `found`, sorted, without repeats, empties or `own`.
fn clean(mut found: Vec<String>, own: &str) -> Vec<String> {
    found.retain(|s| !s.is_empty() && s != own);
    found.sort();
    found.dedup();
    found
}

/// What a node tells a discoverer about itself.
#[derive(Debug, Clone)]
pub struct Local {
    /// The node's id (the mDNS instance name).
    pub id: String,
    /// The cluster id (a TXT record in mDNS; other clusters are ignored).
    pub cluster: String,
    /// The address the node advertises (its port is the default port of
    /// DNS seeds and the DHT node's UDP port).
    pub addr: SocketAddr,
}

/// Builds a discoverer from a spec, as `gossip-node --discover` takes it:
///
/// - `dns:NAME` or `dns:NAME:PORT`: [`Dns`]; the port defaults to the
///   node's own.
/// - `mdns`: [`Mdns`], announcing `local`.
/// - `dht:TOPIC` or `dht:TOPIC@HOST:PORT,HOST:PORT`: [`Dht`] on the
///   public mainline DHT, or on a private one reached through the given
///   bootstrap nodes (UDP; give every node the same list, its own address
///   may be in it); `dht:TOPIC@` starts a first node with no bootstrap,
///   which fills its table only from the others' requests (it stayed alone
///   in 1 of 8 runs of the namespace test). The DHT node's UDP port is the
///   node's (TCP) port.
pub fn from_spec(spec: &str, local: &Local) -> Result<Box<dyn Discover>, DiscoveryError> {
    let bad = |reason: &str| DiscoveryError::Spec {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        "dns" => {
            let (name, port) = match rest.split_once(':') {
                None => (rest, local.addr.port()),
                Some((name, port)) => (
                    name,
                    port.parse()
                        .map_err(|_| bad("expected dns:NAME or dns:NAME:PORT"))?,
                ),
            };
            if name.is_empty() || name.contains(':') {
                return Err(bad("expected dns:NAME or dns:NAME:PORT"));
            }
            Ok(Box::new(Dns::new(name, port)))
        }
        "mdns" if rest.is_empty() => Ok(Box::new(Mdns::new(local)?)),
        "mdns" => Err(bad("mdns takes no argument")),
        "dht" => {
            let (topic, bootstrap) = match rest.split_once('@') {
                None => (rest, None),
                Some((topic, "")) => (topic, Some(Vec::new())),
                Some((topic, list)) => {
                    let nodes: Vec<String> = list.split(',').map(str::to_string).collect();
                    if nodes.iter().any(|n| n.is_empty()) {
                        return Err(bad("expected dht:TOPIC@HOST:PORT[,HOST:PORT...]"));
                    }
                    (topic, Some(nodes))
                }
            };
            if topic.is_empty() {
                return Err(bad("expected dht:TOPIC"));
            }
            let mut builder = Dht::builder(topic).port(local.addr.port());
            if let SocketAddr::V4(a) = local.addr {
                builder = builder.bind(*a.ip());
            }
            if let Some(nodes) = bootstrap {
                builder = builder.bootstrap(nodes);
            }
            Ok(Box::new(builder.start()?))
        }
        _ => Err(bad(
            "expected dns:NAME[:PORT], mdns or dht:TOPIC[@BOOTSTRAP]",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Local {
        Local {
            id: "n1".into(),
            cluster: "c".into(),
            addr: "127.0.0.1:7946".parse().unwrap(),
        }
    }

    #[test]
    fn clean_sorts_dedups_and_drops_own_address() {
        let got = clean(
            vec![
                "b:1".into(),
                "".into(),
                "a:1".into(),
                "b:1".into(),
                "me:1".into(),
            ],
            "me:1",
        );
        assert_eq!(got, ["a:1", "b:1"]);
    }

    #[test]
    fn bad_specs_are_errors_not_panics() {
        for spec in [
            "",
            "dns",
            "dns:",
            "dns:name:notaport",
            "dns:name:99999",
            "dns:a:b:1",
            "mdns:x",
            "dht:",
            "dht:t@a:1,",
            "ftp:x",
        ] {
            match from_spec(spec, &local()) {
                Err(DiscoveryError::Spec { .. }) => {}
                other => panic!("{spec:?}: {:?}", other.map(|_| "a discoverer")),
            }
        }
    }

    #[tokio::test]
    async fn dns_spec_takes_the_nodes_port_by_default() {
        let d = from_spec("dns:localhost", &local()).unwrap();
        let got = d.discover().await.unwrap();
        assert!(got.iter().any(|a| a == "127.0.0.1:7946"), "{got:?}");
        let d = from_spec("dns:localhost:9000", &local()).unwrap();
        let got = d.discover().await.unwrap();
        assert!(got.iter().any(|a| a == "127.0.0.1:9000"), "{got:?}");
    }
}
