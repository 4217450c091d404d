//! `gossip-node`: one gossip node over TCP, run as an agent: it prints its
//! events as JSON lines, keeps a peer book with `--data-dir`, and serves an
//! HTTP admin endpoint with `--http`.
//!
//! ```text
//! gossip-node --id n1 --bind 127.0.0.1:9991 --set role=db --http 127.0.0.1:8080
//! gossip-node --id n2 --bind 0.0.0.0:9992 --advertise 10.0.0.2:9992 --seed 10.0.0.1:9991
//! gossip-node --config /etc/gossip/node.toml
//! gossip-node members --http 127.0.0.1:8080
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
//! the node started), `node`, and `event`; the first, `started`, gives the
//! advertised address, the HTTP address and the data directory. SIGINT or
//! SIGTERM makes the node leave the cluster gracefully; SIGKILL is a crash.
//! Logs go to stderr (`RUST_LOG=debug` for more).

mod admin;
mod members;
mod options;
mod services;

use std::sync::Arc;

use gossip::discovery::{Discover, Discovery, Local};
use gossip::storage::RedbStorage;
use gossip::transport::tcp::{TcpConfig, TcpTransport};
use gossip::{Event, Key, Node, Storage};
use serde_json::{json, Value};

use options::{Command, Options, Settings, HELP};

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
    let usage = |e: String| -> ! {
        eprintln!("gossip-node: {e}\n\n{HELP}");
        std::process::exit(2);
    };
    let command = Options::from_args(std::env::args_os().skip(1)).unwrap_or_else(|e| usage(e));
    let result = match command {
        Command::Help => {
            print!("{HELP}");
            Ok(())
        }
        Command::GenKey => Key::generate()
            .map(|k| println!("{}", k.to_hex()))
            .map_err(|e| e.to_string()),
        Command::Members { http } => members::get_json(&http, "/members")
            .await
            .and_then(|v| members::table(&v))
            .map(|t| print!("{t}")),
        Command::Run(options) => {
            let settings = (*options)
                .with_file()
                .and_then(Options::settings)
                .unwrap_or_else(|e| usage(e));
            run(settings).await
        }
    };
    if let Err(e) = result {
        eprintln!("gossip-node: {e}");
        std::process::exit(1);
    }
}

async fn run(s: Settings) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    // The book first: a corrupt or locked one stops the agent before it
    // binds anything.
    let storage = match &s.data_dir {
        Some(dir) => {
            Some(RedbStorage::open(dir).map_err(|e| format!("--data-dir {}: {e}", dir.display()))?)
        }
        None => None,
    };
    let mut tcp = TcpConfig::default();
    tcp.max_frame_bytes = s.config.max_frame_bytes;
    tcp.advertise_addr = s.advertise.clone();
    let transport = Arc::new(
        TcpTransport::bind_with(&s.bind, tcp)
            .await
            .map_err(|e| format!("--bind {}: {e}", s.bind))?,
    );
    let http = match &s.http {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("--http {addr}: {e}"))?,
        ),
        None => None,
    };
    // The discoverer before the node starts, so a bad spec starts nothing.
    let discover = match &s.discover {
        Some((spec, every)) => Some((discoverer(spec, &s, &transport.local_addr())?, *every)),
        None => None,
    };
    let mut builder = Node::builder(s.id.as_str())
        .config(s.config)
        .seeds(s.seeds)
        .transport(transport.clone());
    if let Some(st) = &storage {
        builder = builder.storage(st.clone());
    }
    if let Some(identity) = s.identity.clone() {
        builder = builder.identity(identity);
    }
    // Subscribed before the start: the first round's joins are printed even
    // when the node's task runs them before this one reads.
    let mut events = builder.events();
    let node = builder.start().await.map_err(|e| e.to_string())?;
    let discovery = discover.map(|(d, every)| {
        let options = gossip::discovery::Options::default().interval(every);
        Discovery::spawn(node.clone(), d, options)
    });
    let mut seeds = discovery.as_ref().map(Discovery::seeds);
    for (k, v) in &s.sets {
        node.set(k.as_str(), v.clone())
            .map_err(|e| format!("--set {k}: {e}"))?;
    }
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut http_addr = None;
    let server = match http {
        Some(listener) => {
            http_addr = Some(
                listener
                    .local_addr()
                    .map_err(|e| e.to_string())?
                    .to_string(),
            );
            let app = admin::router(admin::Admin {
                node: node.clone(),
                tcp: transport.clone(),
                storage: storage.clone(),
            });
            Some(tokio::spawn(async move {
                let shutdown = async {
                    let _ = http_stopped.await;
                };
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }))
        }
        None => None,
    };
    let id = s.id.clone();
    let print: services::Print = Arc::new(move |mut v: Value| {
        v["ts_ms"] = json!(started.elapsed().as_millis() as u64);
        v["node"] = json!(id);
        println!("{v}");
    });
    let keys: Vec<String> = node
        .config()
        .keyring
        .as_ref()
        .map(|k| k.ids().iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    print(json!({
        "event": "started", "addr": node.addr(), "bound": transport.bound_addr().to_string(),
        "generation": node.generation(), "keys": keys, "http": http_addr,
        "data_dir": s.data_dir.as_ref().map(|d| d.display().to_string()),
        "book": storage.as_ref().map(|st| st.book().len()),
    }));
    services::start(&node, &s.services, print.clone()).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
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
    node.leave().await.map_err(|e| e.to_string())?;
    let _ = stop_http.send(());
    if let Some(server) = server {
        if let Ok(Err(e)) = server.await {
            tracing::warn!(error = %e, "http admin endpoint failed");
        }
    }
    drop(node);
    if let Some(st) = storage {
        st.flush().map_err(|e| format!("--data-dir: {e}"))?;
    }
    print(json!({"event": "stopped"}));
    Ok(())
}

/// The `--discover` discoverer for a node advertising `addr`.
fn discoverer(spec: &str, s: &Settings, addr: &str) -> Result<Box<dyn Discover>, String> {
    let local = Local {
        id: s.id.clone(),
        cluster: s.config.cluster_id.clone(),
        addr: addr
            .parse()
            .map_err(|e| format!("--discover {spec}: the node's address {addr:?}: {e}"))?,
    };
    gossip::discovery::from_spec(spec, &local).map_err(|e| format!("--discover: {e}"))
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
