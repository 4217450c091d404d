//! Multicast DNS: announce this node on the local link, browse for the others.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};

use crate::{Discover, DiscoveryError, Local};

/// The DNS-SD service type gossip nodes announce.
pub const SERVICE: &str = "_gossip._tcp.local.";

/// Seeds from multicast DNS (RFC 6762 / 6763) on the local link: the node
/// registers itself as an instance of [`SERVICE`] named by its id, with its
/// cluster id in a TXT record, and browses for the other instances of the
/// same cluster. The mDNS daemon runs on a thread of its own; dropping the
/// discoverer sends goodbye packets and stops it.
pub struct Mdns {
    daemon: ServiceDaemon,
    fullname: String,
    found: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
}

impl std::fmt::Debug for Mdns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mdns")
            .field("fullname", &self.fullname)
            .finish_non_exhaustive()
    }
}

fn err(e: mdns_sd::Error) -> DiscoveryError {
    DiscoveryError::Mdns(e.to_string())
}

impl Mdns {
    /// Announces `local` and starts browsing. A node bound to an
    /// unspecified address (`0.0.0.0`) announces every address of the host.
    pub fn new(local: &Local) -> Result<Mdns, DiscoveryError> {
        let daemon = ServiceDaemon::new().map_err(err)?;
        let host = format!("{}.local.", hostname_label(&local.id));
        let props = [("cluster", local.cluster.as_str())];
        let ip = local.addr.ip();
        let info = if ip.is_unspecified() {
            ServiceInfo::new(SERVICE, &local.id, &host, "", local.addr.port(), &props[..])
                .map(ServiceInfo::enable_addr_auto)
        } else {
            ServiceInfo::new(SERVICE, &local.id, &host, ip, local.addr.port(), &props[..])
        }
        .map_err(err)?;
        let fullname = info.get_fullname().to_string();
        daemon.register(info).map_err(err)?;
        let events = daemon.browse(SERVICE).map_err(err)?;
        let found = Arc::new(Mutex::new(BTreeMap::new()));
        let (map, own, cluster) = (found.clone(), fullname.clone(), local.cluster.clone());
        // The receiver ends when the daemon shuts down, and so does the thread.
        std::thread::Builder::new()
            .name("gossip-mdns".into())
            .spawn(move || {
                while let Ok(event) = events.recv() {
                    match event {
                        ServiceEvent::ServiceResolved(info) => {
                            if info.get_fullname() == own
                                || info.get_property_val_str("cluster") != Some(cluster.as_str())
                            {
                                continue;
                            }
                            let port = info.get_port();
                            let addrs: Vec<String> = info
                                .get_addresses()
                                .iter()
                                .map(|ip| SocketAddr::new(*ip, port).to_string())
                                .collect();
                            tracing::debug!(instance = info.get_fullname(), ?addrs, "mDNS found");
                            map.lock()
                                .expect("mdns map")
                                .insert(info.get_fullname().to_string(), addrs);
                        }
                        ServiceEvent::ServiceRemoved(_, fullname) => {
                            map.lock().expect("mdns map").remove(&fullname);
                        }
                        _ => {}
                    }
                }
            })
            .map_err(|e| DiscoveryError::Mdns(format!("cannot start the browse thread: {e}")))?;
        Ok(Mdns {
            daemon,
            fullname,
            found,
        })
    }
}

/// `id` as one DNS label: letters, digits and hyphens, at most 63 bytes.
fn hostname_label(id: &str) -> String {
    let mut label: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    if label.is_empty() {
        label.push_str("gossip");
    }
    label
}

#[async_trait::async_trait]
impl Discover for Mdns {
    async fn discover(&self) -> Result<Vec<String>, DiscoveryError> {
        let map = self.found.lock().expect("mdns map");
        Ok(map.values().flatten().cloned().collect())
    }
}

impl Drop for Mdns {
    fn drop(&mut self) {
        // Wait (briefly) for the goodbye packets before stopping the daemon.
        if let Ok(status) = self.daemon.unregister(&self.fullname) {
            let _ = status.recv_timeout(std::time::Duration::from_millis(500));
        }
        let _ = self.daemon.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::hostname_label;

    #[test]
    fn ids_become_one_dns_label() {
        assert_eq!(hostname_label("node_1.a"), "node-1-a");
        assert_eq!(hostname_label(""), "gossip");
        assert_eq!(hostname_label(&"x".repeat(100)).len(), 63);
    }
}
