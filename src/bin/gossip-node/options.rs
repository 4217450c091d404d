//! The agent's options: one struct that the flags and the TOML config file
//! both fill. Every flag is a key of the same name in the file (`--seed` and
//! `--set` are the list `seed` and the table `set`); flags win over the file,
//! and lists from both are joined.
//!
//! Adding an option: a field here, an arm in [`Options::from_args`], a line
//! in [`Options::merge`] and in the help text; the file accepts it at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gossip::{Config, Identity, Keyring, Plaintext, QueryOptions};

use crate::services::Services;
use serde::Deserialize;

pub(crate) const HELP: &str = "\
gossip-node: run one gossip node over TCP as an agent: events as JSON lines
on stdout, an optional persistent peer book and HTTP admin endpoint.

USAGE:
    gossip-node --id ID --bind HOST:PORT [OPTIONS]
    gossip-node --config FILE [OPTIONS]
    gossip-node members --http HOST:PORT
    gossip-node --gen-key

OPTIONS (each is also a key of the same name in the --config file):
    --id ID               this node's id, unique in the cluster (required)
    --bind HOST:PORT      address to listen on (required; port 0 picks one;
                          --listen is the same flag)
    --advertise HOST:PORT address peers reach this node at (default: the bound
                          address; required when binding 0.0.0.0 or [::])
    --seed HOST:PORT      a seed peer's address; repeatable (file: seed = [..])
    --discover SPEC       find seeds: dns:NAME[:PORT] (every A/AAAA record; port
                          default: this node's), mdns (the local link), or
                          dht:TOPIC[@HOST:PORT,...] (mainline DHT on this
                          node's port, UDP; private bootstrap nodes, or none
                          after a bare @ for the first one; else the public DHT)
    --discover-interval MS  time between two discovery lookups (default 5000)
    --set KEY=VALUE       a key this node advertises; repeatable (file: [set])
    --cluster NAME        cluster id (default: \"default\")
    --preset NAME         local | lan | default (default: local)
    --interval MS         gossip interval in milliseconds (overrides the preset)
    --monitors N          monitored liveness: N ring neighbours on either side
                          time each node, which beats them every round
                          (default 0: every node times every peer)
    --key-file PATH       cluster keyring: one key a line, 64 hex digits, the first
                          seals; every frame is encrypted and authenticated, and
                          frames without a key in the file are dropped
    --plaintext MODE      with --key-file: refuse | accept | send (default: refuse)
    --data-dir DIR        keep the peer book in DIR (created if missing): a
                          restarted node contacts the peers it knew, seeds or not
    --http HOST:PORT      serve /members, /members/{id}, /metrics, /health
                          (default: off; port 0 picks one)
    --identity-file PATH  the node's ed25519 identity for signing messages (64 hex
                          digits; default: a new one each start)
    --subscribe TOPIC     print the messages published on TOPIC; repeatable
    --publish TOPIC=MSG   publish MSG on TOPIC once a peer is live; repeatable
    --query NAME=PAYLOAD  ask the cluster once a peer is live, print the replies;
                          repeatable
    --query-hops N        how far a query travels (default 4)
    --query-timeout MS    how long replies are taken (default 5000)
    --respond NAME=REPLY  answer queries named NAME with REPLY; repeatable
                          (file: [respond])
    --item SET=ITEM       advertise ITEM in the cluster-wide set SET and print
                          the set's changes; repeatable
    --config FILE         read options from a TOML file; flags override it
    --gen-key             print a new random key (64 hex digits) and exit
    -h, --help            print this help

SUBCOMMANDS:
    members --http HOST:PORT   print the member table of the agent serving HOST:PORT
";

/// Every option of the agent, as given (unset fields are `None` or empty).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Options {
    pub(crate) id: Option<String>,
    #[serde(alias = "listen")]
    pub(crate) bind: Option<String>,
    pub(crate) advertise: Option<String>,
    pub(crate) seed: Vec<String>,
    pub(crate) discover: Option<String>,
    /// Milliseconds.
    pub(crate) discover_interval: Option<u64>,
    pub(crate) set: BTreeMap<String, String>,
    pub(crate) cluster: Option<String>,
    pub(crate) preset: Option<String>,
    /// Milliseconds.
    pub(crate) interval: Option<u64>,
    pub(crate) monitors: Option<usize>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) plaintext: Option<String>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) http: Option<String>,
    pub(crate) identity_file: Option<PathBuf>,
    pub(crate) subscribe: Vec<String>,
    pub(crate) publish: Vec<String>,
    pub(crate) query: Vec<String>,
    pub(crate) query_hops: Option<u32>,
    /// Milliseconds.
    pub(crate) query_timeout: Option<u64>,
    pub(crate) respond: BTreeMap<String, String>,
    pub(crate) item: Vec<String>,
    /// Only from the command line.
    #[serde(skip)]
    pub(crate) config: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Command {
    Run(Box<Options>),
    Members { http: String },
    GenKey,
    Help,
}

/// The options, checked and turned into what the agent runs with.
pub(crate) struct Settings {
    pub(crate) id: String,
    pub(crate) bind: String,
    pub(crate) advertise: Option<String>,
    pub(crate) seeds: Vec<String>,
    /// `--discover` and the time between two lookups.
    pub(crate) discover: Option<(String, Duration)>,
    pub(crate) sets: BTreeMap<String, String>,
    pub(crate) config: Config,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) http: Option<String>,
    pub(crate) identity: Option<Identity>,
    pub(crate) services: Services,
}

impl Options {
    /// Parses the command line (without the program name).
    pub(crate) fn from_args(
        args: impl IntoIterator<Item = std::ffi::OsString>,
    ) -> Result<Command, String> {
        use lexopt::prelude::*;
        let mut args = args.into_iter().peekable();
        if args.peek().is_some_and(|a| a == "members") {
            args.next();
            return parse_members(lexopt::Parser::from_args(args));
        }
        let mut p = lexopt::Parser::from_args(args);
        let mut o = Options::default();
        let err = |e: lexopt::Error| e.to_string();
        while let Some(arg) = p.next().map_err(err)? {
            match arg {
                Long("id") => o.id = Some(value(&mut p)?),
                Long("bind") | Long("listen") => o.bind = Some(value(&mut p)?),
                Long("advertise") => o.advertise = Some(value(&mut p)?),
                Long("seed") => o.seed.push(value(&mut p)?),
                Long("discover") => o.discover = Some(value(&mut p)?),
                Long("discover-interval") => {
                    let v = value(&mut p)?;
                    o.discover_interval = Some(
                        v.parse()
                            .map_err(|e| format!("--discover-interval {v:?}: {e}"))?,
                    );
                }
                Long("set") => {
                    let kv = value(&mut p)?;
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| format!("--set {kv:?}: expected KEY=VALUE"))?;
                    o.set.insert(k.to_string(), v.to_string());
                }
                Long("cluster") => o.cluster = Some(value(&mut p)?),
                Long("preset") => o.preset = Some(value(&mut p)?),
                Long("interval") => {
                    let v = value(&mut p)?;
                    o.interval = Some(v.parse().map_err(|e| format!("--interval {v:?}: {e}"))?);
                }
                Long("monitors") => {
                    let v = value(&mut p)?;
                    o.monitors = Some(v.parse().map_err(|e| format!("--monitors {v:?}: {e}"))?);
                }
                Long("key-file") => o.key_file = Some(value(&mut p)?.into()),
                Long("plaintext") => o.plaintext = Some(value(&mut p)?),
                Long("data-dir") => o.data_dir = Some(value(&mut p)?.into()),
                Long("http") => o.http = Some(value(&mut p)?),
                Long("identity-file") => o.identity_file = Some(value(&mut p)?.into()),
                Long("subscribe") => o.subscribe.push(value(&mut p)?),
                Long("publish") => o.publish.push(value(&mut p)?),
                Long("query") => o.query.push(value(&mut p)?),
                Long("query-hops") => {
                    let v = value(&mut p)?;
                    o.query_hops = Some(v.parse().map_err(|e| format!("--query-hops {v:?}: {e}"))?);
                }
                Long("query-timeout") => {
                    let v = value(&mut p)?;
                    o.query_timeout = Some(
                        v.parse()
                            .map_err(|e| format!("--query-timeout {v:?}: {e}"))?,
                    );
                }
                Long("respond") => {
                    let (k, v) = pair("--respond", &value(&mut p)?)?;
                    o.respond.insert(k, v);
                }
                Long("item") => o.item.push(value(&mut p)?),
                Long("config") => o.config = Some(value(&mut p)?.into()),
                Long("gen-key") => return Ok(Command::GenKey),
                Short('h') | Long("help") => return Ok(Command::Help),
                _ => return Err(arg.unexpected().to_string()),
            }
        }
        Ok(Command::Run(Box::new(o)))
    }

    /// Reads a TOML config file.
    pub(crate) fn from_file(path: &Path) -> Result<Options, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("--config {}: {e}", path.display()))
    }

    /// `self` with every option set in `over` taking precedence; the seed
    /// lists are joined and the key tables merged.
    pub(crate) fn merge(mut self, over: Options) -> Options {
        fn pick<T>(base: &mut Option<T>, over: Option<T>) {
            if over.is_some() {
                *base = over;
            }
        }
        pick(&mut self.id, over.id);
        pick(&mut self.bind, over.bind);
        pick(&mut self.advertise, over.advertise);
        for s in over.seed {
            if !self.seed.contains(&s) {
                self.seed.push(s);
            }
        }
        pick(&mut self.discover, over.discover);
        pick(&mut self.discover_interval, over.discover_interval);
        self.set.extend(over.set);
        pick(&mut self.cluster, over.cluster);
        pick(&mut self.preset, over.preset);
        pick(&mut self.interval, over.interval);
        pick(&mut self.monitors, over.monitors);
        pick(&mut self.key_file, over.key_file);
        pick(&mut self.plaintext, over.plaintext);
        pick(&mut self.data_dir, over.data_dir);
        pick(&mut self.http, over.http);
        pick(&mut self.identity_file, over.identity_file);
        for (list, more) in [
            (&mut self.subscribe, over.subscribe),
            (&mut self.publish, over.publish),
            (&mut self.query, over.query),
            (&mut self.item, over.item),
        ] {
            for x in more {
                if !list.contains(&x) {
                    list.push(x);
                }
            }
        }
        pick(&mut self.query_hops, over.query_hops);
        pick(&mut self.query_timeout, over.query_timeout);
        self.respond.extend(over.respond);
        pick(&mut self.config, over.config);
        self
    }

    /// The file's options (if `--config` was given) under the flags.
    pub(crate) fn with_file(self) -> Result<Options, String> {
        match &self.config {
            Some(path) => Ok(Options::from_file(path)?.merge(self)),
            None => Ok(self),
        }
    }

    /// Checks the options and builds the node's configuration.
    pub(crate) fn settings(self) -> Result<Settings, String> {
        let mut config = match self.preset.as_deref().unwrap_or("local") {
            "local" => Config::local(),
            "lan" => Config::lan(),
            "default" => Config::default(),
            other => {
                return Err(format!(
                    "--preset {other:?}: expected local, lan or default"
                ))
            }
        };
        if let Some(c) = self.cluster {
            config.cluster_id = c;
        }
        if let Some(ms) = self.interval {
            config.gossip_interval = Duration::from_millis(ms);
        }
        if let Some(n) = self.monitors {
            config.monitors = n;
        }
        if let Some(path) = &self.key_file {
            let ring = Keyring::from_file(path).map_err(|e| format!("--key-file: {e}"))?;
            config.keyring = Some(ring);
        }
        config.plaintext = match self.plaintext.as_deref() {
            None | Some("refuse") => Plaintext::Refuse,
            Some("accept") => Plaintext::Accept,
            Some("send") => Plaintext::Send,
            Some(other) => {
                return Err(format!(
                    "--plaintext {other:?}: expected refuse, accept or send"
                ))
            }
        };
        config
            .validate()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        let bind = self.bind.ok_or("--bind is required")?;
        if self.advertise.is_none() && binds_every_interface(&bind) {
            return Err(format!(
                "--bind {bind}: an address on every interface cannot be advertised; \
                 give --advertise HOST:PORT (the address peers reach this node at)"
            ));
        }
        if let Some(a) = &self.advertise {
            check_host_port("--advertise", a)?;
        }
        if let Some(h) = &self.http {
            check_host_port("--http", h)?;
        }
        let identity = match &self.identity_file {
            Some(path) => {
                Some(Identity::from_file(path).map_err(|e| format!("--identity-file: {e}"))?)
            }
            None => None,
        };
        let pairs = |flag: &str, list: &[String]| -> Result<Vec<(String, String)>, String> {
            list.iter().map(|kv| pair(flag, kv)).collect()
        };
        let mut query_options = QueryOptions::default();
        if let Some(h) = self.query_hops {
            query_options.hops = h;
        }
        if let Some(ms) = self.query_timeout {
            query_options.timeout = Duration::from_millis(ms);
        }
        let services = Services {
            subscribe: self.subscribe,
            publish: pairs("--publish", &self.publish)?,
            query: pairs("--query", &self.query)?,
            query_options,
            respond: self.respond,
            items: pairs("--item", &self.item)?,
        };
        Ok(Settings {
            identity,
            services,
            id: self.id.ok_or("--id is required")?,
            bind,
            advertise: self.advertise,
            seeds: self.seed,
            discover: self.discover.map(|d| {
                let ms = self.discover_interval.unwrap_or(5000).max(1);
                (d, Duration::from_millis(ms))
            }),
            sets: self.set,
            config,
            data_dir: self.data_dir,
            http: self.http,
        })
    }
}

/// `KEY=VALUE` split at the first `=`.
fn pair(flag: &str, kv: &str) -> Result<(String, String), String> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| format!("{flag} {kv:?}: expected NAME=VALUE"))?;
    if k.is_empty() {
        return Err(format!("{flag} {kv:?}: the name is empty"));
    }
    Ok((k.to_string(), v.to_string()))
}

fn value(p: &mut lexopt::Parser) -> Result<String, String> {
    use lexopt::ValueExt;
    p.value()
        .map_err(|e| e.to_string())?
        .string()
        .map_err(|e| e.to_string())
}

fn parse_members(mut p: lexopt::Parser) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut http = None;
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("http") => http = Some(value(&mut p)?),
            Short('h') | Long("help") => return Ok(Command::Help),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    let http = http.ok_or("members: --http HOST:PORT is required")?;
    check_host_port("--http", &http)?;
    Ok(Command::Members { http })
}

/// `0.0.0.0:P` or `[::]:P`: listening everywhere, no address to give peers.
fn binds_every_interface(bind: &str) -> bool {
    bind.parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_unspecified())
}

fn check_host_port(flag: &str, addr: &str) -> Result<(), String> {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!("{flag} {addr:?}: expected HOST:PORT"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<std::ffi::OsString> {
        a.iter().map(Into::into).collect()
    }

    fn run(a: &[&str]) -> Options {
        match Options::from_args(args(a)).unwrap() {
            Command::Run(o) => *o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_flag_has_a_file_key_of_the_same_name() {
        let file: Options = toml::from_str(
            r#"
            id = "n1"
            bind = "0.0.0.0:7946"
            advertise = "10.0.0.1:7946"
            seed = ["10.0.0.2:7946"]
            cluster = "prod"
            preset = "lan"
            interval = 250
            monitors = 1
            key-file = "/etc/gossip/keys"
            plaintext = "accept"
            data-dir = "/var/lib/gossip"
            http = "127.0.0.1:8080"
            [set]
            role = "db"
            "#,
        )
        .unwrap();
        let flags = run(&[
            "--id",
            "n1",
            "--bind",
            "0.0.0.0:7946",
            "--advertise",
            "10.0.0.1:7946",
            "--seed",
            "10.0.0.2:7946",
            "--cluster",
            "prod",
            "--preset",
            "lan",
            "--interval",
            "250",
            "--monitors",
            "1",
            "--key-file",
            "/etc/gossip/keys",
            "--plaintext",
            "accept",
            "--data-dir",
            "/var/lib/gossip",
            "--http",
            "127.0.0.1:8080",
            "--set",
            "role=db",
        ]);
        assert_eq!(file, flags);
    }

    #[test]
    fn flags_override_the_file_and_lists_join() {
        let file: Options = toml::from_str(
            "id = \"a\"\nseed = [\"s1:1\"]\ninterval = 100\n[set]\nrole = \"db\"\nzone = \"eu\"\n",
        )
        .unwrap();
        let flags = run(&["--id", "b", "--seed", "s2:2", "--set", "role=web"]);
        let o = file.merge(flags);
        assert_eq!(o.id.as_deref(), Some("b"));
        assert_eq!(o.interval, Some(100));
        assert_eq!(o.seed, vec!["s1:1", "s2:2"]);
        assert_eq!(o.set["role"], "web");
        assert_eq!(o.set["zone"], "eu");
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors() {
        assert!(toml::from_str::<Options>("bnid = \"x\"").is_err());
        assert!(toml::from_str::<Options>("interval = \"fast\"").is_err());
        assert!(Options::from_args(args(&["--interval", "fast"])).is_err());
        assert!(Options::from_args(args(&["--nope"])).is_err());
    }

    #[test]
    fn binding_every_interface_needs_an_advertised_address() {
        let e = run(&["--id", "a", "--bind", "0.0.0.0:7946"])
            .settings()
            .err()
            .unwrap();
        assert!(e.contains("--advertise"), "{e}");
        let s = run(&[
            "--id",
            "a",
            "--bind",
            "0.0.0.0:7946",
            "--advertise",
            "10.0.0.1:7946",
        ])
        .settings()
        .ok()
        .unwrap();
        assert_eq!(s.advertise.as_deref(), Some("10.0.0.1:7946"));
        assert!(run(&["--id", "a", "--bind", "[::]:1"]).settings().is_err());
        assert!(run(&["--id", "a", "--bind", "127.0.0.1:0"])
            .settings()
            .is_ok());
        assert!(run(&["--id", "a", "--bind", "1:1", "--advertise", "nope"])
            .settings()
            .is_err());
    }

    #[test]
    fn members_takes_the_http_address() {
        match Options::from_args(args(&["members", "--http", "127.0.0.1:1"])).unwrap() {
            Command::Members { http } => assert_eq!(http, "127.0.0.1:1"),
            other => panic!("{other:?}"),
        }
        assert!(Options::from_args(args(&["members"])).is_err());
    }
}
