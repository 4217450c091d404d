//! `gossip-node`: one gossip node over TCP, printing its events as JSON lines.
//!
//! ```text
//! gossip-node --id n1 --listen 127.0.0.1:9991 --set role=db
//! gossip-node --id n2 --listen 127.0.0.1:9992 --seed 127.0.0.1:9991
//! ```
//!
//! With `--discover` the node finds its seeds by DNS (`dns:NAME[:PORT]`,
//! every address the name resolves to, re-resolved periodically), multicast
//! DNS (`mdns`) or a DHT topic (`dht:TOPIC[@BOOTSTRAP,...]`); each change of
//! seeds is printed as a `seeds` event.
//!
//! With `--key-file` every frame is sealed with the file's first key and
//! must open under one of its keys (`--gen-key` prints a new key).
//!
//! Each line on stdout is one JSON object with `ts_ms` (milliseconds since
//! the node started), `node`, and `event`. SIGINT or SIGTERM makes the node
//! leave the cluster gracefully; SIGKILL is a crash. Logs go to stderr
//! (`RUST_LOG=debug` for more).

use std::time::Duration;

use gossip::discovery::{Discovery, DiscoveryError, Local, Options};
use gossip::transport::tcp::{TcpConfig, TcpTransport};
use gossip::{Config, Event, Key, Keyring, Node, Plaintext};
use serde_json::{json, Value};

const HELP: &str = "\
gossip-node: run one gossip node over TCP and print its events as JSON lines.

USAGE:
    gossip-node --id ID --listen HOST:PORT [OPTIONS]

OPTIONS:
    --id ID               this node's id, unique in the cluster (required)
    --listen HOST:PORT    address to listen on and advertise (required; port 0 picks one)
    --seed HOST:PORT      a seed peer's address; repeatable
    --discover SPEC       find seeds: dns:NAME[:PORT] (every A/AAAA record; port
                          default: this node's), mdns (the local link), or
                          dht:TOPIC[@HOST:PORT,...] (mainline DHT on this
                          node's port, UDP; private bootstrap nodes, or none
                          after a bare @ for the first one; else the public DHT)
    --discover-interval MS  time between two discovery lookups (default 5000)
    --set KEY=VALUE       a key this node advertises; repeatable
    --cluster NAME        cluster id (default: \"default\")
    --preset NAME         local | lan | default (default: local)
    --interval MS         gossip interval in milliseconds (overrides the preset)
    --key-file PATH       cluster keyring: one key a line, 64 hex digits, the first
                          seals; every frame is encrypted and authenticated, and
                          frames without a key in the file are dropped
    --plaintext MODE      with --key-file: refuse | accept | send (default: refuse)
    --gen-key             print a new random key (64 hex digits) and exit
    -h, --help            print this help
";

struct Args {
    id: String,
    listen: String,
    seeds: Vec<String>,
    discover: Option<(String, u64)>,
    sets: Vec<(String, String)>,
    config: Config,
}

fn parse() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let (mut id, mut listen, mut seeds, mut sets) = (None, None, Vec::new(), Vec::new());
    let (mut cluster, mut preset, mut interval) = (None, "local".to_string(), None);
    let (mut key_file, mut plaintext) = (None, None);
    let (mut discover, mut discover_ms) = (None, 5000);
    while let Some(arg) = p.next()? {
        match arg {
            Long("id") => id = Some(p.value()?.string()?),
            Long("listen") => listen = Some(p.value()?.string()?),
            Long("seed") => seeds.push(p.value()?.string()?),
            Long("discover") => discover = Some(p.value()?.string()?),
            Long("discover-interval") => discover_ms = p.value()?.parse::<u64>()?,
            Long("set") => {
                let kv = p.value()?.string()?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("--set {kv:?}: expected KEY=VALUE"))?;
                sets.push((k.to_string(), v.to_string()));
            }
            Long("cluster") => cluster = Some(p.value()?.string()?),
            Long("preset") => preset = p.value()?.string()?,
            Long("interval") => interval = Some(p.value()?.parse::<u64>()?),
            Long("key-file") => key_file = Some(p.value()?.string()?),
            Long("plaintext") => plaintext = Some(p.value()?.string()?),
            Long("gen-key") => {
                let key = Key::generate().map_err(|e| e.to_string())?;
                println!("{}", key.to_hex());
                std::process::exit(0);
            }
            Short('h') | Long("help") => {
                print!("{HELP}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    let mut config = match preset.as_str() {
        "local" => Config::local(),
        "lan" => Config::lan(),
        "default" => Config::default(),
        other => return Err(format!("--preset {other:?}: expected local, lan or default").into()),
    };
    if let Some(c) = cluster {
        config.cluster_id = c;
    }
    if let Some(ms) = interval {
        config.gossip_interval = Duration::from_millis(ms);
    }
    if let Some(path) = key_file {
        let ring = Keyring::from_file(&path).map_err(|e| format!("--key-file: {e}"))?;
        config.keyring = Some(ring);
    }
    config.plaintext = match plaintext.as_deref() {
        None | Some("refuse") => Plaintext::Refuse,
        Some("accept") => Plaintext::Accept,
        Some("send") => Plaintext::Send,
        Some(other) => {
            return Err(format!("--plaintext {other:?}: expected refuse, accept or send").into())
        }
    };
    Ok(Args {
        id: id.ok_or("--id is required")?,
        listen: listen.ok_or("--listen is required")?,
        seeds,
        discover: discover.map(|d| (d, discover_ms.max(1))),
        sets,
        config,
    })
}

/// An event as a JSON object.
pub fn event_json(e: &Event) -> Value {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match e {
        Event::PeerJoined { peer, addr } => {
            json!({"event": "peer_joined", "peer": peer.as_str(), "addr": addr})
        }
        Event::PeerRestarted { peer, generation } => {
            json!({"event": "peer_restarted", "peer": peer.as_str(), "generation": generation})
        }
        Event::PeerDead { peer } => json!({"event": "peer_dead", "peer": peer.as_str()}),
        Event::PeerLive { peer } => json!({"event": "peer_live", "peer": peer.as_str()}),
        Event::PeerLeft { peer } => json!({"event": "peer_left", "peer": peer.as_str()}),
        Event::PeerRemoved { peer } => json!({"event": "peer_removed", "peer": peer.as_str()}),
        Event::KeyUpdated {
            peer,
            key,
            value,
            version,
        } => json!({
            "event": "key_updated", "peer": peer.as_str(), "key": key, "value": text(value), "version": version
        }),
        Event::KeyDeleted { peer, key, version } => {
            json!({"event": "key_deleted", "peer": peer.as_str(), "key": key, "version": version})
        }
        Event::Lagged { missed } => json!({"event": "lagged", "missed": missed}),
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gossip-node: {e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("gossip-node: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), gossip::Error> {
    let started = tokio::time::Instant::now();
    let mut tcp = TcpConfig::default();
    tcp.max_frame_bytes = args.config.max_frame_bytes;
    let transport = TcpTransport::bind_with(&args.listen, tcp).await?;
    let node = Node::builder(args.id.as_str())
        .config(args.config)
        .seeds(args.seeds)
        .transport(transport)
        .start()
        .await?;
    let discovery = match start_discovery(args.discover.as_ref(), &args.id, &node) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gossip-node: --discover: {e}");
            std::process::exit(2);
        }
    };
    let mut seeds = discovery.as_ref().map(Discovery::seeds);
    let mut events = node.events();
    for (k, v) in &args.sets {
        node.set(k.as_str(), v.clone())?;
    }
    let print = |mut v: Value| {
        v["ts_ms"] = json!(started.elapsed().as_millis() as u64);
        v["node"] = json!(args.id);
        println!("{v}");
    };
    let keys: Vec<String> = node
        .config()
        .keyring
        .as_ref()
        .map(|k| k.ids().iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    print(json!({
        "event": "started", "addr": node.addr(), "generation": node.generation(), "keys": keys
    }));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| gossip::Error::Transport(e.into()))?;
    loop {
        tokio::select! {
            e = events.recv() => match e {
                Some(e) => print(event_json(&e)),
                None => break,
            },
            Some(s) = seeds_changed(&mut seeds) => print(json!({"event": "seeds", "seeds": s})),
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    drop(discovery);
    node.leave().await?;
    print(json!({"event": "stopped"}));
    Ok(())
}

/// Starts the `--discover` loop, if asked for.
fn start_discovery(
    discover: Option<&(String, u64)>,
    id: &str,
    node: &Node,
) -> Result<Option<Discovery>, DiscoveryError> {
    let Some((spec, ms)) = discover else {
        return Ok(None);
    };
    let local = Local {
        id: id.to_string(),
        cluster: node.config().cluster_id.clone(),
        addr: node.addr().parse().map_err(|e| DiscoveryError::Spec {
            spec: spec.clone(),
            reason: format!("the node's address {:?}: {e}", node.addr()),
        })?,
    };
    let discover = gossip::discovery::from_spec(spec, &local)?;
    let options = Options::default().interval(Duration::from_millis(*ms));
    Ok(Some(Discovery::spawn(node.clone(), discover, options)))
}

/// The seeds after their next change; never, without discovery.
async fn seeds_changed(
    w: &mut Option<tokio::sync::watch::Receiver<Vec<String>>>,
) -> Option<Vec<String>> {
    match w {
        Some(w) => match w.changed().await {
            Ok(()) => Some(w.borrow_and_update().clone()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}
