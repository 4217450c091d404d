//! `gossip-node` as an agent, as separate processes on loopback: the HTTP
//! admin endpoint through real HTTP requests, `--advertise` with `--bind
//! 0.0.0.0`, the TOML config file, the persistent peer book across a
//! `kill -9` and a restart without seeds, and clear errors for a bad data
//! directory.
//!
//! Every wait reads the processes' JSON lines or polls the endpoint with a
//! bound; there are no fixed sleeps.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

const LIMIT: Duration = Duration::from_secs(60);

struct Agent {
    proc: common::JsonProc,
    started: Value,
}

impl Agent {
    fn spawn(mut cmd: Command) -> Agent {
        let mut proc = common::JsonProc::spawn(&mut cmd);
        let started = proc.wait_for("started", |v| v["event"] == "started");
        Agent { proc, started }
    }

    fn addr(&self) -> String {
        self.started["addr"].as_str().expect("addr").to_string()
    }

    fn http(&self) -> String {
        self.started["http"]
            .as_str()
            .expect("http address")
            .to_string()
    }

    fn wait_for(&mut self, pred: impl FnMut(&Value) -> bool) -> Value {
        self.proc.wait_for("a matching line", pred)
    }

    fn kill(&mut self) {
        self.proc.kill();
    }
}

/// One HTTP/1.1 GET over a fresh loopback connection: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the admin endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

fn get_json(addr: &str, path: &str) -> (u16, Value) {
    let (status, body) = get(addr, path);
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, v)
}

/// Polls `cond` on `path`'s JSON every 50 ms until it holds (bounded).
fn poll_json(addr: &str, path: &str, what: &str, mut cond: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let (status, v) = get_json(addr, path);
        if status == 200 && cond(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {LIMIT:?}: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn member<'a>(members: &'a Value, id: &str) -> Option<&'a Value> {
    members.as_array()?.iter().find(|m| m["id"] == id)
}

fn node(id: &str, cluster: &str, seed: Option<&str>, extra: &[&str]) -> Command {
    let mut cmd = common::gossip_node(id, cluster, seed);
    cmd.args(extra);
    cmd
}

#[test]
fn the_admin_endpoint_serves_members_metrics_and_health() {
    let mut a = Agent::spawn(node(
        "a1",
        "agent-http",
        None,
        &["--http", "127.0.0.1:0", "--set", "role=db"],
    ));
    let seed = a.addr();
    let _b = Agent::spawn(node(
        "b1",
        "agent-http",
        Some(&seed),
        &["--set", "role=web"],
    ));
    a.wait_for(|v| v["event"] == "peer_joined" && v["peer"] == "b1");
    let http = a.http();

    let (status, health) = get_json(&http, "/health");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["id"], "a1");

    let members = poll_json(&http, "/members", "b1's key reaches a1", |m| {
        member(m, "b1").is_some_and(|b| b["keys"]["role"] == "web")
    });
    let a1 = member(&members, "a1").expect("a1 lists itself");
    assert_eq!(a1["this_node"], true);
    assert_eq!(a1["keys"]["role"], "db");
    assert_eq!(a1["addr"], seed);
    let b1 = member(&members, "b1").unwrap();
    assert_eq!(b1["status"], "alive");

    let (status, one) = get_json(&http, "/members/b1");
    assert_eq!(status, 200);
    assert_eq!(one["id"], "b1");
    assert!(one["stats"]["frames_in"].as_u64().unwrap() > 0, "{one}");
    assert!(one["stats"]["frames_out"].as_u64().unwrap() > 0, "{one}");
    assert!(
        one["stats"]["connections"]["connects"].as_u64().unwrap() >= 1,
        "{one}"
    );
    let (status, missing) = get_json(&http, "/members/nobody");
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap().contains("nobody"));
    assert_eq!(get(&http, "/nope").0, 404);

    // Metrics: parsed by a Prometheus text parser that is not ours, and
    // every counter of Stats, TransportStats and TcpStats is there.
    let (status, text) = get(&http, "/metrics");
    assert_eq!(status, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let sample = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    let names = gossip::Stats::default()
        .counters()
        .into_iter()
        .map(|(n, _, _)| format!("gossip_{n}_total"))
        .chain(
            gossip::TransportStats::default()
                .counters()
                .into_iter()
                .map(|(n, _, _)| format!("gossip_transport_{n}_total")),
        )
        .chain(
            gossip::transport::tcp::TcpStats::default()
                .counters()
                .into_iter()
                .map(|(n, _, _)| match n {
                    "inbound_active" | "outbound_active" | "peers" => format!("gossip_tcp_{n}"),
                    _ => format!("gossip_tcp_{n}_total"),
                }),
        );
    for name in names {
        sample(&name);
    }
    // prometheus-client writes OpenMetrics text (what Prometheus asks for
    // first): a counter family `x` has the sample `x_total`, which this
    // classic-format parser reads as untyped; the family's TYPE line says counter.
    match sample("gossip_frames_in_total").value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => {
            assert!(v > 0.0)
        }
        ref other => panic!("gossip_frames_in_total: {other:?}"),
    }
    assert!(
        text.contains("\n# TYPE gossip_frames_in counter\n"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
    match sample("gossip_live_peers").value {
        prometheus_parse::Value::Gauge(v) => assert_eq!(v, 1.0),
        ref other => panic!("gossip_live_peers: {other:?}"),
    }
    let per_peer = sample("gossip_peer_frames_in_total");
    assert_eq!(per_peer.labels.get("peer"), Some("b1"));

    // The member table, as `serf members` prints it.
    let out = Command::new(env!("CARGO_BIN_EXE_gossip-node"))
        .args(["members", "--http", &http])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["Name", "Address", "Status", "Tags"]);
    assert_eq!(rows[1], ["a1", seed.as_str(), "alive", "role=db"]);
    assert_eq!(rows[2][0], "b1");
    assert_eq!(rows[2][2], "alive");
    assert_eq!(rows[2][3], "role=web");

    // Nothing listens there: a clear error, exit code 1.
    let out = Command::new(env!("CARGO_BIN_EXE_gossip-node"))
        .args(["members", "--http", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"));
}

/// A port free on every interface now (the OS picks it; released before use).
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn advertise_is_what_peers_see_when_binding_every_interface() {
    let mut a = Agent::spawn(node("a2", "agent-adv", None, &["--http", "127.0.0.1:0"]));
    let seed = a.addr();
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let advertise = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gossip-node"));
    cmd.args(["--id", "b2", "--cluster", "agent-adv", "--seed", &seed]);
    cmd.args(["--bind", &bind, "--advertise", &advertise]);
    let b = Agent::spawn(cmd);
    assert_eq!(b.started["addr"], advertise.as_str());
    assert_eq!(b.started["bound"], bind.as_str());
    a.wait_for(|v| v["event"] == "peer_joined" && v["peer"] == "b2");
    // a reaches b2 at the advertised address: b2 stays alive in a's view
    // and a holds the advertised address, not 0.0.0.0.
    let members = poll_json(&a.http(), "/members", "b2 alive at a2", |m| {
        member(m, "b2").is_some_and(|b| b["status"] == "alive")
    });
    assert_eq!(member(&members, "b2").unwrap()["addr"], advertise.as_str());
    let one = poll_json(&a.http(), "/members/b2", "a2 connected to b2", |m| {
        m["stats"]["connections"]["connects"].as_u64() >= Some(1)
    });
    assert_eq!(one["stats"]["connections"]["connect_failures"], 0);

    // Without --advertise, binding every interface is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_gossip-node"))
        .args(["--id", "c2", "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--advertise"));
}

#[test]
fn a_config_file_sets_every_option_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("node.toml");
    std::fs::write(
        &file,
        format!(
            "id = \"from-file\"\nbind = \"127.0.0.1:0\"\ncluster = \"agent-config\"\n\
             interval = 100\nhttp = \"127.0.0.1:0\"\ndata-dir = {data:?}\n\
             [set]\nrole = \"db\"\nzone = \"eu\"\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gossip-node"));
    cmd.arg("--config").arg(&file).args(["--set", "zone=us"]);
    let a = Agent::spawn(cmd);
    assert_eq!(a.started["node"], "from-file");
    assert_eq!(a.started["data_dir"], data.display().to_string());
    assert!(data.join("peers.redb").exists());
    let members = poll_json(&a.http(), "/members", "keys from the file", |m| {
        member(m, "from-file").is_some_and(|n| n["keys"]["role"] == "db")
    });
    assert_eq!(member(&members, "from-file").unwrap()["keys"]["zone"], "us");

    std::fs::write(&file, "id = \"x\"\nbindd = \"127.0.0.1:0\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gossip-node"))
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bindd"));
}

#[test]
fn a_node_killed_and_restarted_with_its_data_dir_and_no_seeds_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let mut a = Agent::spawn(node("a3", "agent-book", None, &[]));
    let seed = a.addr();
    let with_book = |seed: Option<&str>| {
        node(
            "b3",
            "agent-book",
            seed,
            &["--data-dir", &data, "--http", "127.0.0.1:0"],
        )
    };
    let mut b = Agent::spawn(with_book(Some(&seed)));
    assert_eq!(b.started["book"], 0);
    b.wait_for(|v| v["event"] == "peer_joined" && v["peer"] == "a3");
    // The writer has committed a3 into the book.
    poll_json(&b.http(), "/health", "a3 in b3's book", |h| {
        h["storage"]["book_entries"].as_u64() >= Some(2) && h["storage"]["pending_peers"] == 0
    });
    b.kill();
    a.wait_for(|v| v["event"] == "peer_dead" && v["peer"] == "b3");

    // No --seed: only the data directory.
    let mut b = Agent::spawn(with_book(None));
    assert_eq!(b.started["book"], 2);
    b.wait_for(|v| v["event"] == "peer_joined" && v["peer"] == "a3");
    a.wait_for(|v| v["event"] == "peer_restarted" && v["peer"] == "b3");
}

fn start_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gossip-node"))
        .args(["--id", "z", "--bind", "127.0.0.1:0"])
        .args(args)
        .output()
        .unwrap();
    // 1 is a clean error; a panic would be 101.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_corrupt_locked_or_misplaced_data_dir_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("peers.redb"), vec![0x42; 8192]).unwrap();
    let err = start_fails(&["--data-dir", data.to_str().unwrap()]);
    assert!(
        err.contains("--data-dir") && err.contains("corrupt"),
        "{err}"
    );

    std::fs::write(data.join("peers.redb"), b"").unwrap();
    let err = start_fails(&["--data-dir", data.to_str().unwrap()]);
    assert!(err.contains("corrupt") && err.contains("empty"), "{err}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = start_fails(&["--data-dir", file.to_str().unwrap()]);
    assert!(err.contains("not a directory"), "{err}");

    let good = dir.path().join("good");
    let good = good.to_str().unwrap();
    let _holder = Agent::spawn(node("y", "agent-lock", None, &["--data-dir", good]));
    let err = start_fails(&["--data-dir", good]);
    assert!(err.contains("open in another process"), "{err}");
}
