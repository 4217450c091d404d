//! A topic on the BitTorrent mainline DHT (BEP 5).

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mainline::Id;

use crate::{Discover, DiscoveryError};

/// How long an announcement is trusted before it is made again (DHT nodes
/// forget announced peers after some time; BitTorrent clients re-announce
/// every 15 to 30 minutes).
const REANNOUNCE: Duration = Duration::from_secs(10 * 60);

/// Seeds from a topic on the mainline DHT, like solyd-swarm's: the topic's
/// SHA-1 is an info hash; the node announces its gossip port under it and
/// looks up the peers announced there. IPv4 only (BEP 5's compact peers).
///
/// The DHT node runs on a thread of its own (the `mainline` crate); lookups
/// run on tokio's blocking pool. A node started with bootstrap addresses
/// (a private DHT) runs in server mode so that the others can store their
/// announcements at it.
pub struct Dht {
    dht: mainline::Dht,
    info_hash: Id,
    port: u16,
    announced: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Dht {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dht")
            .field("info_hash", &self.info_hash)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Dht`]; see [`Dht::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct DhtBuilder {
    topic: String,
    port: Option<u16>,
    announce_port: Option<u16>,
    bind: Option<Ipv4Addr>,
    bootstrap: Option<Vec<String>>,
}

impl DhtBuilder {
    /// The UDP port of the DHT node, and (unless
    /// [`announce_port`](DhtBuilder::announce_port) says otherwise) the
    /// port announced. Default: any free port, announcing the same.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// The gossip port to announce under the topic (default: the UDP port).
    pub fn announce_port(mut self, port: u16) -> Self {
        self.announce_port = Some(port);
        self
    }
    /// The IPv4 address the DHT node binds (default: all).
    pub fn bind(mut self, addr: Ipv4Addr) -> Self {
        self.bind = Some(addr);
        self
    }
    /// Bootstrap nodes (`HOST:PORT`, UDP) of a private DHT instead of the
    /// public network's; an empty list makes this the first node.
    pub fn bootstrap<I, S>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.bootstrap = Some(nodes.into_iter().map(Into::into).collect());
        self
    }

    /// Starts the DHT node.
    pub fn start(self) -> Result<Dht, DiscoveryError> {
        let mut b = mainline::Dht::builder();
        if let Some(p) = self.port {
            b.port(p);
        }
        if let Some(a) = self.bind {
            b.bind_address(a);
        }
        if let Some(nodes) = &self.bootstrap {
            if nodes.is_empty() {
                b.no_bootstrap();
            } else {
                b.bootstrap(nodes);
            }
            b.server_mode();
            // On a private network the bound address is the one the others
            // see: derive the node id (BEP 42) from it at once. Left to the
            // responses, the id changes after the first ones arrive and the
            // routing table is reset, which leaves a private DHT's first
            // node (no bootstrap to ask again) with an empty table for good.
            if let Some(a) = self.bind.filter(|a| !a.is_unspecified()) {
                b.public_ip(a);
            }
        }
        let dht = b
            .build()
            .map_err(|e| DiscoveryError::Dht(format!("cannot start the DHT node: {e}")))?;
        let port = match self.announce_port.or(self.port) {
            Some(p) => p,
            None => dht.info().local_addr().port(),
        };
        Ok(Dht {
            dht,
            info_hash: topic_hash(&self.topic),
            port,
            announced: Mutex::new(None),
        })
    }
}

/// The info hash of a topic: its SHA-1.
fn topic_hash(topic: &str) -> Id {
    let digest = sha1_smol::Sha1::from(topic.as_bytes()).digest().bytes();
    Id::from_bytes(digest).expect("a SHA-1 digest is 20 bytes")
}

impl Dht {
    /// Configures a DHT discoverer for `topic`.
    pub fn builder(topic: impl Into<String>) -> DhtBuilder {
        DhtBuilder {
            topic: topic.into(),
            port: None,
            announce_port: None,
            bind: None,
            bootstrap: None,
        }
    }

    /// The DHT node's own address (`HOST:PORT`, UDP), to bootstrap others from.
    pub fn local_addr(&self) -> String {
        self.dht.info().local_addr().to_string()
    }
}

#[async_trait::async_trait]
impl Discover for Dht {
    async fn discover(&self) -> Result<Vec<String>, DiscoveryError> {
        // Announce again after REANNOUNCE, and on every lookup while the
        // topic shows no peer at all (not even this one): an announcement
        // made before the routing table had any node reached no one.
        let due = self
            .announced
            .lock()
            .expect("dht lock")
            .is_none_or(|at| at.elapsed() >= REANNOUNCE);
        let (dht, hash, port) = (self.dht.clone(), self.info_hash, self.port);
        let (announced, peers) = tokio::task::spawn_blocking(move || {
            let announced = due && dht.announce_peer(hash, Some(port)).is_ok();
            let mut peers: Vec<String> = dht
                .get_peers(hash)
                .flatten()
                .map(|a| a.to_string())
                .collect();
            peers.sort();
            peers.dedup();
            (announced, peers)
        })
        .await
        .map_err(|e| DiscoveryError::Dht(format!("lookup task failed: {e}")))?;
        let mut last = self.announced.lock().expect("dht lock");
        if peers.is_empty() {
            *last = None;
        } else if announced {
            *last = Some(Instant::now());
        }
        Ok(peers)
    }
}

#[cfg(test)]
mod tests {
    use super::topic_hash;

    #[test]
    fn topic_hash_is_the_sha1_of_the_topic() {
        // SHA-1("abc"), FIPS 180-2 appendix A.
        assert_eq!(
            topic_hash("abc").to_string().to_lowercase(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
