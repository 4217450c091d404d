//! DNS seeds: a name re-resolved with the system resolver.

use crate::{Discover, DiscoveryError};

/// Seeds from a DNS name: every A and AAAA record the system resolver
/// returns for it (with `/etc/hosts` and the search domains as configured),
/// at a fixed port. Resolved anew on every call, so a record that changes
/// moves the seed. A Kubernetes headless service resolves to every ready
/// pod of its StatefulSet, which is what `deploy/` relies on.
#[derive(Debug, Clone)]
pub struct Dns {
    name: String,
    port: u16,
}

impl Dns {
    /// Seeds at `port` of every address `name` resolves to.
    pub fn new(name: impl Into<String>, port: u16) -> Dns {
        Dns {
            name: name.into(),
            port,
        }
    }
}

#[async_trait::async_trait]
impl Discover for Dns {
    async fn discover(&self) -> Result<Vec<String>, DiscoveryError> {
        let addrs = tokio::net::lookup_host((self.name.as_str(), self.port))
            .await
            .map_err(|source| DiscoveryError::Resolve {
                name: self.name.clone(),
                source,
            })?;
        let mut seeds: Vec<String> = addrs.map(|a| a.to_string()).collect();
        seeds.sort();
        seeds.dedup();
        Ok(seeds)
    }
}
