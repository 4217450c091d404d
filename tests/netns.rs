//! Several hosts: `gossip-node` processes, each in a network namespace of
//! its own with its own address on a bridge, through cut links, partitions,
//! packet loss, crashes, restarts, discovery by DNS names that change, by
//! multicast DNS and by a private DHT.
//!
//! Needs root, `ip` (iproute2) and, for partitions and loss, `nft`
//! (nftables; `.ci/run` installs it and sets `GOSSIP_NETNS_REQUIRE_NFT`, so
//! that a missing `nft` fails there). Without root or namespaces every test
//! here prints why it skipped and passes. The bridge lives in a namespace of its own
//! too, so nothing is added to the host's network and no packet leaves the
//! namespaces; everything is deleted when the test ends, failed or not
//! (namespaces left by a killed run are deleted by the next).
//!
//! Every scenario waits, with generous bounds and no fixed sleeps, until
//! *every* node reports what it should (each prints its events as JSON
//! lines), and prints the time that took: `cargo test --test netns --
//! --nocapture` shows the table. `GOSSIP_NETNS_NODES` (default 5) sets the
//! cluster's size, `GOSSIP_NETNS_LOSS_PCT` (default 10) and
//! `GOSSIP_NETNS_LOSS_SECS` (default 15) the loss and its window,
//! `GOSSIP_NETNS_SETTLE_SECS` (default 8) the wait after a partition heals
//! before the loss (deaths in it are reported, not asserted), and
//! `GOSSIP_NETNS_PRESET` (default `lan`) the nodes' preset,
//! `GOSSIP_NETNS_MONITORS` (default 0) their `--monitors` (monitored
//! liveness);
//! `GOSSIP_NETNS_COUNT_FALSE_DEATHS` reports false deaths under loss
//! instead of failing on them (a measurement, not a test);
//! `GOSSIP_NETNS_LOG_DIR` keeps each process's logs (with `RUST_LOG`) there;
//! `scripts/netns-cluster.sh` runs the suite at 20 nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const PORT: u16 = 7946;
const SUBNET: &str = "10.77.0";
/// Bound on every wait: far above what any scenario takes.
const LIMIT: Duration = Duration::from_secs(60);

// ---- the network -----------------------------------------------------------

/// Runs a command, panicking with its stderr if it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) -> String {
    run(Command::new("ip").args(args))
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Why this machine cannot run the suite, if it cannot.
fn unavailable() -> Option<String> {
    if std::env::var_os("GOSSIP_NETNS_SKIP").is_some() {
        return Some("GOSSIP_NETNS_SKIP is set".into());
    }
    let uid = Command::new("id").arg("-u").output();
    match uid {
        Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0" => {}
        _ => return Some("not root (network namespaces need CAP_SYS_ADMIN)".into()),
    }
    let probe = format!("gtprobe{}", std::process::id());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(o) if o.status.success() => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).output();
            None
        }
        Ok(o) => Some(format!(
            "'ip netns add' failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("no 'ip' command (iproute2): {e}")),
    }
}

fn have_nft() -> bool {
    Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Namespaces `gt<pid>h` (the hub, holding the bridge) and `gt<pid>n<i>`
/// (one per host, `eth0` at 10.77.0.<i+1>/24, a veth into the bridge).
struct Net {
    prefix: String,
    hosts: usize,
}

impl Net {
    fn new(hosts: usize) -> Net {
        Net::remove_stale();
        let net = Net {
            prefix: format!("gt{}", std::process::id()),
            hosts,
        };
        let hub = net.hub();
        ip(&["netns", "add", &hub]);
        ip(&["-n", &hub, "link", "set", "lo", "up"]);
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &hub, "link", "set", "br0", "up"]);
        for i in 0..hosts {
            net.add_host(i);
        }
        net
    }

    fn hub(&self) -> String {
        format!("{}h", self.prefix)
    }
    fn ns(&self, i: usize) -> String {
        format!("{}n{i}", self.prefix)
    }
    fn addr(i: usize) -> String {
        format!("{SUBNET}.{}", i + 1)
    }

    fn add_host(&self, i: usize) {
        let (ns, hub) = (self.ns(i), self.hub());
        // Before the namespace exists, so `ip netns exec` bind-mounts it.
        let dir = format!("/etc/netns/{ns}");
        std::fs::create_dir_all(&dir).expect("mkdir /etc/netns/NS");
        std::fs::write(format!("{dir}/hosts"), "127.0.0.1 localhost\n").expect("hosts");
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let port = format!("h{i}");
        ip(&[
            "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &hub,
        ]);
        ip(&["-n", &hub, "link", "set", &port, "master", "br0"]);
        ip(&["-n", &hub, "link", "set", &port, "up"]);
        let cidr = format!("{}/24", Net::addr(i));
        ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
    }

    /// Writes host `i`'s `/etc/hosts` in place (the bind mount follows the
    /// file's inode, so it must not be replaced by a rename).
    fn set_hosts(&self, i: usize, lines: &str) {
        let path = format!("/etc/netns/{}/hosts", self.ns(i));
        std::fs::write(path, format!("127.0.0.1 localhost\n{lines}")).expect("write hosts");
    }

    /// Takes host `i`'s link to the bridge down or up.
    fn link(&self, i: usize, up: bool) {
        let port = format!("h{i}");
        ip(&[
            "-n",
            &self.hub(),
            "link",
            "set",
            &port,
            if up { "up" } else { "down" },
        ]);
    }

    /// Runs an `nft` script in host `i`'s namespace.
    fn nft(&self, i: usize, script: &str) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(i), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write nft script");
        let out = child.wait_with_output().expect("nft");
        assert!(
            out.status.success(),
            "nft in {}: {}\n{script}",
            self.ns(i),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Host `i` drops what `rule` matches on input (an nftables rule).
    fn filter(&self, i: usize, rule: &str) {
        self.nft(
            i,
            &format!(
                "table inet gossiptest {{\n chain input {{\n  type filter hook input priority 0;\n  {rule}\n }}\n}}\n"
            ),
        );
    }

    /// Removes host `i`'s filter.
    fn unfilter(&self, i: usize) {
        self.nft(i, "delete table inet gossiptest\n");
    }

    /// `gossip-node` in host `i`'s namespace.
    fn node(&self, i: usize, args: &[&str]) -> Command {
        self.node_at(i, &Net::addr(i), args)
    }

    /// `gossip-node` in host `i`'s namespace, listening at `addr`.
    fn node_at(&self, i: usize, addr: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        let listen = format!("{addr}:{PORT}");
        cmd.args([
            "netns",
            "exec",
            &self.ns(i),
            env!("CARGO_BIN_EXE_gossip-node"),
        ])
        .args([
            "--id",
            &format!("n{i}"),
            "--listen",
            &listen,
            "--preset",
            &preset(),
            "--monitors",
            &env_usize("GOSSIP_NETNS_MONITORS", 0).to_string(),
        ])
        .args(args);
        cmd
    }

    /// Moves host `i` from address `old` to `new` (a rescheduled pod).
    fn readdress(&self, i: usize, old: &str, new: &str) {
        let ns = self.ns(i);
        ip(&[
            "-n",
            &ns,
            "addr",
            "del",
            &format!("{old}/24"),
            "dev",
            "eth0",
        ]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{new}/24"),
            "dev",
            "eth0",
        ]);
    }

    /// Deletes namespaces of earlier runs whose test process is gone,
    /// killing what still runs in them first (a killed run leaves its
    /// `gossip-node` processes behind).
    fn remove_stale() {
        let list = ip(&["netns", "list"]);
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            let Some(rest) = name
                .strip_prefix("gtprobe")
                .or_else(|| name.strip_prefix("gt"))
            else {
                continue;
            };
            let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if pid_alive(pid) {
                continue;
            }
            if let Ok(o) = Command::new("ip").args(["netns", "pids", name]).output() {
                for p in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", p]).output();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", name]).output();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{name}"));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..self.hosts {
            let ns = self.ns(i);
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.hub()])
            .output();
    }
}

// ---- the nodes ----------------------------------------------------------------

/// What one node has reported so far, from its JSON lines.
#[derive(Default, Debug)]
struct View {
    live: BTreeSet<String>,
    dead: BTreeSet<String>,
    left: BTreeSet<String>,
    restarted: BTreeMap<String, u64>,
    keys: BTreeMap<(String, String), String>,
    seeds: Vec<String>,
    /// Every event seen, for the assertions on what must never happen.
    deaths: Vec<String>,
}

impl View {
    fn apply(&mut self, v: &Value) {
        let peer = v["peer"].as_str().unwrap_or_default().to_string();
        match v["event"].as_str().unwrap_or_default() {
            "peer_joined" | "peer_live" => {
                self.dead.remove(&peer);
                self.left.remove(&peer);
                self.live.insert(peer);
            }
            "peer_restarted" => {
                let generation = v["generation"].as_u64().unwrap_or_default();
                self.restarted.insert(peer.clone(), generation);
            }
            "peer_dead" => {
                self.live.remove(&peer);
                self.deaths.push(peer.clone());
                self.dead.insert(peer);
            }
            "peer_left" => {
                self.live.remove(&peer);
                self.left.insert(peer);
            }
            "peer_removed" => {
                self.live.remove(&peer);
                self.dead.remove(&peer);
                self.left.remove(&peer);
            }
            "key_updated" => {
                let key = v["key"].as_str().unwrap_or_default().to_string();
                let value = v["value"].as_str().unwrap_or_default().to_string();
                self.keys.insert((peer, key), value);
            }
            "seeds" => {
                self.seeds = v["seeds"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            _ => {}
        }
    }
}

/// One `gossip-node` process; its lines arrive with the time they were read.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<(Instant, Value)>,
    view: View,
    generation: u64,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        // `GOSSIP_NETNS_LOG_DIR`: each process's stderr (its logs; set
        // `RUST_LOG` too) appended to a file there, one per process.
        let stderr = match std::env::var_os("GOSSIP_NETNS_LOG_DIR") {
            Some(dir) => {
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = std::path::Path::new(&dir).join(format!("node-{k}.log"));
                Stdio::from(std::fs::File::create(&path).expect("create a node log"))
            }
            None => Stdio::null(),
        };
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn gossip-node");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send((Instant::now(), v)).is_err() {
                        break;
                    }
                }
            }
        });
        Proc {
            child,
            lines: rx,
            view: View::default(),
            generation: 0,
        }
    }

    /// Applies every line read so far; returns the time of the last one.
    fn pump(&mut self) -> Option<Instant> {
        let mut last = None;
        while let Ok((at, v)) = self.lines.try_recv() {
            if v["event"] == "started" {
                self.generation = v["generation"].as_u64().unwrap_or_default();
            }
            self.view.apply(&v);
            last = Some(at);
        }
        last
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the node leaves gracefully; waits for it to exit.
    fn terminate(&mut self) {
        run(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let start = Instant::now();
        while self.child.try_wait().expect("wait").is_none() {
            assert!(start.elapsed() < LIMIT, "node did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How long a scenario's condition took: at the first node and at the last.
struct Took {
    first: Duration,
    all: Duration,
}

/// Polls the nodes `which` until `cond` holds for each, within `LIMIT`;
/// returns when it first held at the first and at the last of them,
/// measured from `since` by the arrival of the line that made it true.
fn wait_all(
    what: &str,
    procs: &mut [Option<Proc>],
    which: &[usize],
    since: Instant,
    cond: impl Fn(usize, &View) -> bool,
) -> Took {
    let mut done: BTreeMap<usize, Duration> = BTreeMap::new();
    loop {
        for &i in which {
            let p = procs[i].as_mut().expect("node running");
            let last = p.pump();
            if !done.contains_key(&i) && cond(i, &p.view) {
                let at = last.unwrap_or_else(Instant::now).max(since);
                done.insert(i, at - since);
            }
        }
        if done.len() == which.len() {
            let first = *done.values().min().expect("nodes");
            let all = *done.values().max().expect("nodes");
            return Took { first, all };
        }
        if since.elapsed() > LIMIT {
            let missing: Vec<String> = which
                .iter()
                .filter(|i| !done.contains_key(i))
                .map(|&i| format!("n{i}: {:?}", procs[i].as_ref().unwrap().view))
                .collect();
            panic!("{what}: not within {LIMIT:?} at\n{}", missing.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn name(i: usize) -> String {
    format!("n{i}")
}

/// Every node in `which` sees exactly the others of `group` live (and
/// nothing else).
fn sees_live(group: &[usize]) -> impl Fn(usize, &View) -> bool + '_ {
    move |i, v| {
        group
            .iter()
            .filter(|&&j| j != i)
            .all(|&j| v.live.contains(&name(j)))
    }
}

struct Report {
    rows: Vec<(String, String)>,
}

impl Report {
    fn add(&mut self, what: &str, t: &Took) {
        let row = format!(
            "{:>7.3} s (first node {:.3} s)",
            t.all.as_secs_f64(),
            t.first.as_secs_f64()
        );
        println!("netns: {what}: {row}");
        self.rows.push((what.to_string(), row));
    }
    fn note(&mut self, what: &str, text: String) {
        println!("netns: {what}: {text}");
        self.rows.push((what.to_string(), text));
    }
    fn print(&self, title: &str) {
        let w = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        println!("\n{title}");
        for (what, row) in &self.rows {
            println!("  {what:<w$} | {row}");
        }
    }
}

/// Deaths the processes `which` report over the next `window`.
fn count_deaths(procs: &mut [Option<Proc>], which: &[usize], window: Duration) -> usize {
    let total = |procs: &mut [Option<Proc>]| -> usize {
        which
            .iter()
            .map(|&i| {
                let p = procs[i].as_mut().expect("a running node");
                p.pump();
                p.view.deaths.len()
            })
            .sum()
    };
    let before = total(procs);
    let start = Instant::now();
    while start.elapsed() < window {
        std::thread::sleep(Duration::from_millis(20));
        total(procs);
    }
    total(procs) - before
}

/// The nodes' `--preset` (`GOSSIP_NETNS_PRESET`, default `lan`: 200 ms
/// rounds). Lost TCP segments come back after retransmission timeouts that
/// start at 200 ms and double, so loss delays frames rather than dropping
/// them: under 30% loss `local` (100 ms rounds) reported 14 to 23 false
/// deaths in 15 s, `lan` 5, `default` (1 s rounds) none; at 20%, `lan` one
/// in one run of three at 5 nodes; at 10%, none.
fn preset() -> String {
    std::env::var("GOSSIP_NETNS_PRESET").unwrap_or_else(|_| "lan".into())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- the scenarios ------------------------------------------------------------

/// The suites share the namespaces' names and the bridge: one at a time,
/// whatever `--test-threads` says.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The cluster's scenarios, on one set of namespaces, in order: formation by
/// a DNS name, a cut link, a 2|3 partition and its heal, packet loss, a
/// SIGKILL and restart, a rolling restart, and a seed whose DNS record moves.
#[test]
fn netns_cluster_scenarios() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = unavailable() {
        println!("netns: SKIPPED, network namespaces cannot be made here: {why}");
        return;
    }
    let n = env_usize("GOSSIP_NETNS_NODES", 5).max(3);
    let loss_secs = env_usize("GOSSIP_NETNS_LOSS_SECS", 15) as u64;
    let loss_pct = env_usize("GOSSIP_NETNS_LOSS_PCT", 10).min(99);
    let nft = have_nft();
    assert!(
        nft || std::env::var_os("GOSSIP_NETNS_REQUIRE_NFT").is_none(),
        "no 'nft' although GOSSIP_NETNS_REQUIRE_NFT is set (.ci/run installs Debian's nftables)"
    );
    // Hosts 0..n run the cluster; host n joins it late, through DNS.
    let net = Net::new(n + 1);
    let all: Vec<usize> = (0..n).collect();
    let members: String = all
        .iter()
        .map(|&i| format!("{} cluster.gossip\n", Net::addr(i)))
        .collect();
    for &i in &all {
        net.set_hosts(i, &members);
    }
    let mut report = Report { rows: Vec::new() };
    let start_at = |i: usize, addr: &str| {
        let role = format!("role=worker-{i}");
        let args = [
            "--cluster",
            "netns",
            "--discover",
            "dns:cluster.gossip",
            "--discover-interval",
            "500",
            "--set",
            &role,
        ];
        Proc::spawn(&mut net.node_at(i, addr, &args))
    };
    let start_node = |i: usize, _: &[&str]| start_at(i, &Net::addr(i));
    let mut procs: Vec<Option<Proc>> = (0..=n).map(|_| None).collect();

    // 1. Formation: no seeds, only the name every member's address is
    // under. Nodes start one after another, each once the one before has
    // found a peer (as a StatefulSet's OrderedReady starts pods): started
    // all at once, 20 nodes formed two clusters (15 and 5) that never
    // merged, since a node contacts seeds only while it knows fewer than
    // `min_live_peers` live peers.
    // GOSSIP_NETNS_TOGETHER=1 starts them all at once instead: groups that
    // formed apart then meet through `seed_rejoin_interval`.
    let together = std::env::var_os("GOSSIP_NETNS_TOGETHER").is_some();
    let t0 = Instant::now();
    for &i in &all {
        procs[i] = Some(start_node(i, &[]));
        if i > 0 && !together {
            wait_all("a first peer", &mut procs, &[i], Instant::now(), |_, v| {
                !v.live.is_empty()
            });
        }
    }
    let formed = |i: usize, v: &View| {
        sees_live(&(0..n).collect::<Vec<_>>())(i, v)
            && (0..n)
                .filter(|&j| j != i)
                .all(|j| v.keys.get(&(name(j), "role".into())) == Some(&format!("worker-{j}")))
    };
    let t = wait_all("formation", &mut procs, &all, t0, formed);
    report.add(
        &format!(
            "formation by DNS, {n} nodes started {}, keys too",
            if together { "at once" } else { "in turn" }
        ),
        &t,
    );

    // 2. A cut link: host 2's link to the bridge goes down, then up.
    let cut = 2;
    let others: Vec<usize> = all.iter().copied().filter(|&i| i != cut).collect();
    let t0 = Instant::now();
    net.link(cut, false);
    let t = wait_all("cut link seen", &mut procs, &others, t0, |_, v| {
        v.dead.contains(&name(cut))
    });
    report.add("cut link: the others report n2 dead", &t);
    let t = wait_all("cut link, the cut side", &mut procs, &[cut], t0, |_, v| {
        others.iter().all(|&j| v.dead.contains(&name(j)))
    });
    report.add("cut link: n2 reports every other dead", &t);
    let t0 = Instant::now();
    net.link(cut, true);
    let everyone = all.clone();
    let t = wait_all("link mended", &mut procs, &all, t0, sees_live(&everyone));
    report.add("link mended: all live again everywhere", &t);

    if nft {
        // 3. A partition: the first n/2 nodes | the others (2|3 at 5), then heal.
        let (left, right): (Vec<usize>, Vec<usize>) = all.iter().partition(|&&i| i < n / 2);
        let set = |side: &[usize]| {
            side.iter()
                .map(|&i| Net::addr(i))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let t0 = Instant::now();
        for &i in &left {
            net.filter(i, &format!("ip saddr {{ {} }} drop", set(&right)));
        }
        for &i in &right {
            net.filter(i, &format!("ip saddr {{ {} }} drop", set(&left)));
        }
        let (l, r) = (left.clone(), right.clone());
        let t = wait_all("partition", &mut procs, &all, t0, move |i, v| {
            let (mine, theirs) = if l.contains(&i) { (&l, &r) } else { (&r, &l) };
            theirs.iter().all(|&j| v.dead.contains(&name(j)))
                && mine
                    .iter()
                    .filter(|&&j| j != i)
                    .all(|&j| v.live.contains(&name(j)))
        });
        report.add(
            &format!(
                "partition {}|{}: both sides see it",
                left.len(),
                right.len()
            ),
            &t,
        );
        let t0 = Instant::now();
        for &i in &all {
            net.unfilter(i);
        }
        let t = wait_all("heal", &mut procs, &all, t0, sees_live(&everyone));
        report.add("partition healed: all live everywhere", &t);
        // The links across the partition come back only when their TCP
        // retransmission timers fire, backed off during the partition to
        // seconds: what dies meanwhile is the partition's aftermath, not
        // the loss's. Counted and reported here (not asserted), and the
        // loss window starts on a cluster that has settled.
        let settle = Duration::from_secs(env_usize("GOSSIP_NETNS_SETTLE_SECS", 8) as u64);
        let deaths = count_deaths(&mut procs, &all, settle);
        report.note(
            "after the heal",
            format!(
                "{deaths} deaths reported in the {} s after all were live (not asserted)",
                settle.as_secs()
            ),
        );
        wait_all(
            "settled",
            &mut procs,
            &all,
            Instant::now(),
            sees_live(&everyone),
        );

        // 4. Packet loss: loss_pct% of packets dropped on input at every host.
        for &i in &all {
            net.filter(i, &format!("numgen random mod 100 < {loss_pct} drop"));
        }
        let deaths = count_deaths(&mut procs, &all, Duration::from_secs(loss_secs));
        for &i in &all {
            net.unfilter(i);
        }
        // A death inside the window (a false one: every node ran) is
        // reported, and every node must be live everywhere again.
        let t = wait_all(
            "after loss",
            &mut procs,
            &all,
            Instant::now(),
            sees_live(&everyone),
        );
        report.note(
            &format!("{loss_pct}% loss for {loss_secs} s"),
            format!(
                "{deaths} false deaths reported (0 expected); all live {:.3} s after",
                t.all.as_secs_f64()
            ),
        );
        if std::env::var_os("GOSSIP_NETNS_COUNT_FALSE_DEATHS").is_none() {
            assert_eq!(deaths, 0, "false deaths under {loss_pct}% loss");
        }
    } else {
        report.note(
            "partition, loss",
            "SKIPPED: no 'nft' (install Debian's nftables; .ci/run does)".into(),
        );
    }

    // 5. SIGKILL and restart.
    let victim = n - 1;
    let others: Vec<usize> = all.iter().copied().filter(|&i| i != victim).collect();
    let old = procs[victim].as_ref().unwrap().generation;
    let t0 = Instant::now();
    procs[victim].as_mut().unwrap().kill();
    procs[victim] = None;
    let t = wait_all("kill", &mut procs, &others, t0, move |_, v| {
        v.dead.contains(&name(victim))
    });
    report.add(&format!("kill -9 n{victim}: reported dead"), &t);
    let t0 = Instant::now();
    procs[victim] = Some(start_node(victim, &[]));
    let t = wait_all("restart", &mut procs, &all, t0, move |i, v| {
        if i == victim {
            sees_live(&(0..n).collect::<Vec<_>>())(i, v)
        } else {
            v.restarted.get(&name(victim)).is_some_and(|g| *g > old)
                && v.live.contains(&name(victim))
        }
    });
    report.add(
        &format!("n{victim} restarted: new generation live everywhere"),
        &t,
    );

    // 6. Rolling restart: each node in turn leaves (SIGTERM) and comes back.
    let mut worst_left = Duration::ZERO;
    let mut worst_back = Duration::ZERO;
    let t_roll = Instant::now();
    for &r in &all {
        let others: Vec<usize> = all.iter().copied().filter(|&i| i != r).collect();
        let old = procs[r].as_ref().unwrap().generation;
        let deaths = |procs: &[Option<Proc>]| -> Vec<usize> {
            others
                .iter()
                .map(|&i| procs[i].as_ref().unwrap().view.deaths.len())
                .collect()
        };
        let deaths_before = deaths(&procs);
        let t0 = Instant::now();
        procs[r].as_mut().unwrap().terminate();
        procs[r] = None;
        let t = wait_all("left", &mut procs, &others, t0, move |_, v| {
            v.left.contains(&name(r))
        });
        worst_left = worst_left.max(t.all);
        let t0 = Instant::now();
        procs[r] = Some(start_node(r, &[]));
        let t = wait_all("back", &mut procs, &all, t0, move |i, v| {
            if i == r {
                sees_live(&(0..n).collect::<Vec<_>>())(i, v)
            } else {
                v.restarted.get(&name(r)).is_some_and(|g| *g > old) && v.live.contains(&name(r))
            }
        });
        worst_back = worst_back.max(t.all);
        let now = deaths(&procs);
        if now != deaths_before {
            // Which observer reported whom, for tracing the flap.
            let newly: Vec<String> = others
                .iter()
                .zip(deaths_before.iter())
                .flat_map(|(&i, &before)| {
                    let v = &procs[i].as_ref().unwrap().view.deaths;
                    v[before.min(v.len())..]
                        .iter()
                        .map(move |p| format!("n{i} reported {p} dead"))
                        .collect::<Vec<_>>()
                })
                .collect();
            panic!(
                "n{r}'s graceful leave and restart made a node report a death: {}",
                newly.join(", ")
            );
        }
    }
    report.note(
        "rolling restart of every node",
        format!(
            "{:.3} s in all; slowest leave seen {:.3} s, slowest rejoin {:.3} s",
            t_roll.elapsed().as_secs_f64(),
            worst_left.as_secs_f64(),
            worst_back.as_secs_f64()
        ),
    );
    // 7. A seed that changes address under its DNS name: n1 is
    // rescheduled (killed, its host readdressed, started at the new
    // address) and the records follow, as a headless service's do. A late
    // node that knows only the name `seed.gossip`, first still at n1's old
    // address, then at its new one, finds the cluster through it.
    let (mv, late) = (1, n);
    let (old_ip, new_ip) = (Net::addr(mv), format!("{SUBNET}.200"));
    let old_gen = procs[mv].as_ref().unwrap().generation;
    let t0 = Instant::now();
    procs[mv].as_mut().unwrap().kill();
    procs[mv] = None;
    net.readdress(mv, &old_ip, &new_ip);
    let members: String = all
        .iter()
        .map(|&i| {
            let a = if i == mv {
                new_ip.clone()
            } else {
                Net::addr(i)
            };
            format!("{a} cluster.gossip\n")
        })
        .collect();
    for &i in &all {
        net.set_hosts(i, &members);
    }
    procs[mv] = Some(start_at(mv, &new_ip));
    let t = wait_all("moved node back", &mut procs, &all, t0, move |i, v| {
        if i == mv {
            sees_live(&(0..n).collect::<Vec<_>>())(i, v)
        } else {
            v.restarted.get(&name(mv)).is_some_and(|g| *g > old_gen) && v.live.contains(&name(mv))
        }
    });
    report.add(
        &format!("n{mv} moved to {new_ip}: live there everywhere"),
        &t,
    );

    net.set_hosts(late, &format!("{old_ip} seed.gossip\n"));
    let role = format!("role=worker-{late}");
    let args = [
        "--cluster",
        "netns",
        "--discover",
        "dns:seed.gossip",
        "--discover-interval",
        "200",
        "--set",
        &role,
    ];
    procs[late] = Some(Proc::spawn(&mut net.node(late, &args)));
    let stale = format!("{old_ip}:{PORT}");
    wait_all(
        "stale record",
        &mut procs,
        &[late],
        Instant::now(),
        |_, v| v.seeds == [stale.clone()],
    );
    assert!(procs[late].as_ref().unwrap().view.live.is_empty());
    let t0 = Instant::now();
    net.set_hosts(late, &format!("{new_ip} seed.gossip\n"));
    let moved = format!("{new_ip}:{PORT}");
    let t = wait_all("seed record moved", &mut procs, &[late], t0, |_, v| {
        v.seeds == [moved.clone()]
    });
    report.add("seed's DNS record moved: the late node uses it", &t);
    let with_late: Vec<usize> = (0..=n).collect();
    let t = wait_all(
        "late joined",
        &mut procs,
        &with_late,
        t0,
        sees_live(&with_late),
    );
    report.add(&format!("...and n{late} is live everywhere"), &t);

    report.print(&format!(
        "netns: times measured ({n} nodes, --preset {}, {loss_pct}% loss)",
        preset()
    ));
}

/// Nodes with no seeds and no DNS name find each other by multicast DNS on
/// the bridge, and by a private DHT made of their own DHT nodes.
#[test]
fn netns_mdns_and_dht_discovery() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = unavailable() {
        println!("netns: SKIPPED, network namespaces cannot be made here: {why}");
        return;
    }
    let n = 3;
    let net = Net::new(n);
    let all: Vec<usize> = (0..n).collect();
    let mut report = Report { rows: Vec::new() };

    let mut procs: Vec<Option<Proc>> = (0..n).map(|_| None).collect();
    let t0 = Instant::now();
    for &i in &all {
        let args = [
            "--cluster",
            "mdns",
            "--discover",
            "mdns",
            "--discover-interval",
            "200",
        ];
        procs[i] = Some(Proc::spawn(&mut net.node(i, &args)));
    }
    let t = wait_all("mdns", &mut procs, &all, t0, |i, v| {
        sees_live(&[0, 1, 2])(i, v) && !v.seeds.is_empty()
    });
    report.add(&format!("mDNS: {n} nodes find each other"), &t);
    for p in procs.iter_mut() {
        if let Some(p) = p.as_mut() {
            p.terminate();
        }
        *p = None;
    }

    let t0 = Instant::now();
    // Every node gets the same two bootstrap nodes (their own DHT nodes,
    // at the gossip port over UDP), itself among them for those two.
    let spec = format!(
        "dht:gossip-netns-test@{}:{PORT},{}:{PORT}",
        Net::addr(0),
        Net::addr(1)
    );
    for &i in &all {
        let args = [
            "--cluster",
            "dht",
            "--discover",
            &spec,
            "--discover-interval",
            "300",
        ];
        procs[i] = Some(Proc::spawn(&mut net.node(i, &args)));
    }
    let t = wait_all("dht", &mut procs, &all, t0, |i, v| {
        sees_live(&[0, 1, 2])(i, v) && !v.seeds.is_empty()
    });
    report.add(&format!("private DHT: {n} nodes find each other"), &t);
    report.print("netns: discovery times measured");
}
