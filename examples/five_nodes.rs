//! Five gossip nodes in one process, over TCP on 127.0.0.1, playing a script
//! you can watch: the cluster forms, node-3 crashes, node-3 restarts, a key
//! changes on node-1, node-5 leaves. Every step is timed and summarised.
//!
//! ```text
//! cargo run --release --example five_nodes
//! cargo run --release --example five_nodes -- --port-base 12000 --forever
//! ```
//!
//! On a terminal it redraws, every 200 ms, a table of what each node sees of
//! every other node (status, heartbeat, phi, generation, keys); otherwise it
//! prints timestamped lines. It exits with 1 if a port is taken or a step
//! does not happen within its (generous) limit.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use gossip::transport::tcp::{TcpConfig, TcpTransport};
use gossip::{Config, Event, Keyring, Node, PeerId, PeerStatus, PeerView, TransportError};
use tokio::sync::mpsc;
use tokio::time::{sleep, Instant};

const HELP: &str = "\
five_nodes: five gossip nodes over TCP on 127.0.0.1, with a scripted crash,
restart, key change and graceful leave, each timed.

USAGE:
    cargo run --release --example five_nodes -- [OPTIONS]

OPTIONS:
    --port-base N     the nodes listen on ports N+1..N+5 (default: 9990)
    --interval MS     gossip interval in milliseconds (default: 100, Config::local)
    --duration SECS   how long each step's result stays on screen before the
                      next step starts (default: 1; fractions allowed)
    --forever         after the script, keep the cluster and the live table
                      running until Ctrl-C
    --key-file PATH   encrypt the cluster with this keyring (one key a line,
                      64 hex digits; `gossip-node --gen-key` makes one)
    -h, --help        print this help
";

const N: usize = 5;
/// Keys each node advertises: role, http, shards, load.
const KEYS: usize = 4;
const POLL: Duration = Duration::from_millis(10);
const REDRAW: Duration = Duration::from_millis(200);
const LOG_LINES: usize = 8;

struct Args {
    port_base: u16,
    interval: Duration,
    hold: Duration,
    forever: bool,
    keyring: Option<Keyring>,
}

fn parse() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        port_base: 9990,
        interval: Duration::from_millis(100),
        hold: Duration::from_secs(1),
        forever: false,
        keyring: None,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port-base") => args.port_base = p.value()?.parse()?,
            Long("interval") => args.interval = Duration::from_millis(p.value()?.parse()?),
            Long("duration") => {
                let secs: f64 = p.value()?.parse()?;
                if !(0.0..=3600.0).contains(&secs) {
                    return Err("--duration: expected 0 to 3600 seconds".into());
                }
                args.hold = Duration::from_secs_f64(secs);
            }
            Long("forever") => args.forever = true,
            Long("key-file") => {
                let path = p.value()?.string()?;
                let ring = Keyring::from_file(&path).map_err(|e| format!("--key-file: {e}"))?;
                args.keyring = Some(ring);
            }
            Short('h') | Long("help") => {
                print!("{HELP}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if args.port_base > u16::MAX - N as u16 {
        return Err(format!("--port-base: at most {}", u16::MAX - N as u16).into());
    }
    if args.interval.is_zero() || args.interval > Duration::from_secs(60) {
        return Err("--interval: expected 1 to 60000 ms".into());
    }
    Ok(args)
}

fn name(i: usize) -> String {
    format!("node-{}", i + 1)
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// One node's view of one peer, as a fixed-width table cell.
fn cell(v: Option<&PeerView>, tty: bool) -> String {
    let Some(v) = v else {
        return format!("{:<21}", "  -");
    };
    let (status, color) = match v.status {
        PeerStatus::Live => ("live", "32"),
        PeerStatus::Dead => ("dead", "31"),
        PeerStatus::Left => ("left", "33"),
    };
    let phi = match v.phi {
        p if p < 99.95 => format!("{:.1}", p.abs()), // abs: no "-0.0"
        _ => "99+".to_string(),
    };
    let (hb, gen, keys) = (v.heartbeat, v.generation % 10_000, v.keys);
    let status = match tty {
        true => format!("\x1b[{color}m{status}\x1b[0m"),
        false => status.to_string(),
    };
    format!("{status} {hb:>4} {phi:>4} {gen:04} {keys}")
}

/// A condition for [`Demo::measure`]: when node `obs` first received an
/// event matching `pred` at or after `t0`.
fn on_event(
    t0: Instant,
    pred: impl Fn(&Event) -> bool,
) -> impl Fn(&Demo, usize) -> Option<Instant> {
    move |d, obs| {
        d.seen
            .iter()
            .find(|(i, at, e)| *i == obs && *at >= t0 && pred(e))
            .map(|s| s.1)
    }
}

/// Whether `n` sees the four others live, with all their keys.
fn sees_all(n: &Node) -> bool {
    let live = n.live_peers();
    live.len() == N - 1 && live.iter().all(|p| n.keys(p).len() >= KEYS)
}

fn is(peer: &PeerId, i: usize) -> bool {
    peer.as_str() == name(i)
}

struct Demo {
    args: Args,
    tty: bool,
    start: Instant,
    config: Config,
    nodes: Vec<Option<Node>>,
    /// Why a node is not running ("crashed", "left").
    gone: Vec<&'static str>,
    tx: mpsc::UnboundedSender<(usize, Instant, Event)>,
    rx: mpsc::UnboundedReceiver<(usize, Instant, Event)>,
    /// Every event of every node: (observer, when it was received, event).
    seen: Vec<(usize, Instant, Event)>,
    phase: String,
    results: Vec<String>,
    log: VecDeque<String>,
    log_keys: bool,
    last_draw: Option<Instant>,
    summary: Vec<(&'static str, String, String)>,
}

impl Demo {
    fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.args.port_base + 1 + i as u16)
    }

    fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node is running")
    }

    fn stamp(&self, at: Instant) -> String {
        let t = at.saturating_duration_since(self.start);
        format!("[{:>7.3}s]", t.as_secs_f64())
    }

    /// A result line: printed at once, or kept on screen under the table.
    fn say(&mut self, line: String) {
        match self.tty {
            true => self.results.push(line),
            false => println!("{} {line}", self.stamp(Instant::now())),
        }
    }

    fn set_phase(&mut self, phase: &str) {
        if !self.tty {
            println!("{} == {phase}", self.stamp(Instant::now()));
        }
        self.phase = phase.to_string();
    }

    fn fail(&self, msg: &str) -> ! {
        eprintln!("five_nodes: FAILED: {msg}");
        std::process::exit(1);
    }

    /// Listens on node `i`'s port, or exits with a clear message.
    async fn bind(&self, i: usize) -> TcpTransport {
        let mut tcp = TcpConfig::default();
        tcp.max_frame_bytes = self.config.max_frame_bytes;
        match TcpTransport::bind_with(&self.addr(i), tcp).await {
            Ok(t) => t,
            Err(TransportError::AddrInUse(_)) => {
                let port = self.args.port_base + 1 + i as u16;
                eprintln!("five_nodes: port {port} is in use: pass --port-base to use other ports");
                std::process::exit(1);
            }
            Err(e) => self.fail(&format!("cannot listen on {}: {e}", self.addr(i))),
        }
    }

    /// Starts node `i` seeded with node-1, forwards its events, sets its keys.
    async fn start_node(&mut self, i: usize, transport: TcpTransport) {
        let node = Node::builder(name(i))
            .config(self.config.clone())
            .seeds([self.addr(0)]);
        let node = node.transport(transport);
        let (mut events, tx) = (node.events(), self.tx.clone());
        let node = (node.start().await)
            .unwrap_or_else(|e| self.fail(&format!("{} did not start: {e}", name(i))));
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if tx.send((i, Instant::now(), e)).is_err() {
                    break;
                }
            }
        });
        let role = ["db", "cache", "web", "web", "queue"][i];
        let keys = [
            ("role", role.to_string()),
            ("http", format!("http://127.0.0.1:{}", 8081 + i)),
            ("shards", format!("{},{}", i, i + N)),
            ("load", format!("0.{}0", i + 1)),
        ];
        for (k, v) in keys {
            if let Err(e) = node.set(k, v) {
                self.fail(&format!("set {k}: {e}"));
            }
        }
        self.nodes[i] = Some(node);
        self.gone[i] = "";
    }

    fn describe(&self, i: usize, e: &Event) -> Option<String> {
        let me = name(i);
        Some(match e {
            Event::PeerJoined { peer, addr } => format!("{me} sees {peer} join ({addr})"),
            Event::PeerRestarted { peer, generation } => {
                format!("{me} sees {peer} restart (generation {generation})")
            }
            Event::PeerDead { peer } => format!("{me} sees {peer} dead"),
            Event::PeerLive { peer } => format!("{me} sees {peer} live"),
            Event::PeerLeft { peer } => format!("{me} sees {peer} leave"),
            Event::PeerRemoved { peer } => format!("{me} forgets {peer}"),
            Event::KeyUpdated {
                peer, key, value, ..
            } if self.log_keys => {
                format!("{me} sees {peer} {key}={}", String::from_utf8_lossy(value))
            }
            Event::Lagged { missed } => format!("{me} missed {missed} events"),
            _ => return None,
        })
    }

    /// Collects the nodes' events and, on a terminal, redraws the screen.
    async fn pump(&mut self) {
        while let Ok((i, at, e)) = self.rx.try_recv() {
            if let Some(line) = self.describe(i, &e) {
                let line = format!("{} {line}", self.stamp(at));
                if !self.tty {
                    println!("{line}");
                } else if self.log.len() == LOG_LINES {
                    self.log.pop_front();
                }
                self.log.push_back(line);
            }
            self.seen.push((i, at, e));
        }
        if !self.tty || self.last_draw.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let (first, last) = (self.args.port_base + 1, self.args.port_base + N as u16);
        let ms = self.config.gossip_interval.as_millis();
        let t = self.start.elapsed().as_secs_f64();
        let mut s =
            format!("five_nodes: 127.0.0.1:{first}-{last}, gossip every {ms} ms, t = {t:.1} s\n");
        s += &format!("{}\n\n{}\nresults:\n", self.phase, self.table().await);
        for r in &self.results {
            s += &format!("  {r}\n");
        }
        s += "\nevents:\n";
        for l in &self.log {
            s += &format!("  {l}\n");
        }
        // Home, each line cleared to its end, then the rest of the screen.
        print!("\x1b[H{}\x1b[J", s.replace('\n', "\x1b[K\n"));
        let _ = std::io::stdout().flush();
    }

    /// Rows: nodes; columns: what that node sees of each node.
    async fn table(&self) -> String {
        let mut s = format!("{:<8}", "sees:");
        for j in 0..N {
            s += &format!("{:<22}", name(j));
        }
        s = s.trim_end().to_string() + "\n";
        for (i, node) in self.nodes.iter().enumerate() {
            let mut row = format!("{:<8}", name(i));
            match node {
                Some(n) => {
                    let views = n.peer_views().await.unwrap_or_default();
                    for j in 0..N {
                        let v = views.iter().find(|v| is(&v.id, j));
                        row += &(cell(v, self.tty) + " ");
                    }
                }
                None => row += &format!("({}: not running)", self.gone[i]),
            }
            s += row.trim_end();
            s += "\n";
        }
        s + "cell: status heartbeat phi generation(last 4 digits) keys\n"
    }

    /// Pumps events (and redraws) until `until`.
    async fn wait_until(&mut self, until: Instant) {
        while Instant::now() < until {
            self.pump().await;
            sleep(POLL).await;
        }
    }

    /// Polls until `done` gives a time for every observer (exiting with a
    /// failure after a generous limit), reports each one's time since `t0`,
    /// then keeps the screen for `--duration` (printing the table when not on
    /// a terminal). Returns the times.
    async fn measure(
        &mut self,
        step: &'static str,
        what: &str,
        t0: Instant,
        observers: &[usize],
        done: impl Fn(&Demo, usize) -> Option<Instant>,
    ) -> Vec<Duration> {
        let limit = Duration::from_secs(10).max(self.config.gossip_interval * 60);
        let mut times = vec![None; observers.len()];
        while times.iter().any(Option::is_none) {
            self.pump().await;
            for (t, &i) in times.iter_mut().zip(observers) {
                *t = t.or_else(|| done(self, i).map(|at| at.saturating_duration_since(t0)));
            }
            if t0.elapsed() > limit {
                let late = observers.iter().zip(&times).filter(|(_, t)| t.is_none());
                let late: Vec<String> = late.map(|(&i, _)| name(i)).collect();
                let late = late.join(", ");
                self.fail(&format!("{what}: not by {late} after {}", secs(limit)));
            }
            sleep(POLL).await;
        }
        sleep(POLL).await; // let the last events in before the result line
        self.pump().await;
        let times: Vec<Duration> = times.into_iter().flatten().collect();
        let each = observers.iter().zip(&times);
        let each: Vec<String> = each
            .map(|(&i, t)| format!("{} {}", name(i), secs(*t)))
            .collect();
        let (first, last) = (times.iter().min().unwrap(), times.iter().max().unwrap());
        self.say(format!("{what}: {}", secs(*last)));
        self.say(format!("    {}", each.join(", ")));
        let time = format!("{} (first {})", secs(*last), secs(*first));
        self.summary.push((step, what.to_string(), time));
        self.wait_until(Instant::now() + self.args.hold).await;
        if !self.tty {
            print!("{}", self.table().await);
        }
        times
    }

    async fn script(&mut self) {
        let all: Vec<usize> = (0..N).collect();

        self.set_phase("step 1/5: five nodes start, seeded with node-1; the cluster forms");
        let t0 = Instant::now();
        let mut transports = Vec::new();
        for i in 0..N {
            transports.push(self.bind(i).await); // all ports first: fail before starting
        }
        for (i, t) in transports.into_iter().enumerate() {
            self.start_node(i, t).await;
        }
        let what = "every node sees the 4 others live with all keys";
        let formed = |d: &Demo, i| sees_all(d.node(i)).then(Instant::now);
        self.measure("1 form", what, t0, &all, formed).await;

        self.set_phase(
            "step 2/5: node-3 crashes (shutdown, no goodbye); peers must report it dead",
        );
        let old = self.nodes[2].take().expect("node-3 runs");
        let old_gen = old.generation();
        let t0 = Instant::now();
        if let Err(e) = old.shutdown().await {
            self.fail(&format!("node-3 shutdown: {e}"));
        }
        self.gone[2] = "crashed";
        let dead = on_event(t0, |e| matches!(e, Event::PeerDead { peer } if is(peer, 2)));
        let what = "node-3 reported dead (PeerDead)";
        let crash = self.measure("2 crash", what, t0, &[0, 1, 3, 4], dead).await;

        self.set_phase("step 3/5: node-3 restarts on the same port, with a new generation");
        let t0 = Instant::now();
        let transport = self.bind(2).await;
        self.start_node(2, transport).await;
        let gen = self.node(2).generation();
        self.say(format!("node-3 restarted: generation {old_gen} -> {gen}"));
        let back = |d: &Demo, i| {
            let n = d.node(i); // node-3's record in `peers` has the new generation
            let new = n
                .peers()
                .iter()
                .any(|r| is(&r.id, 2) && r.generation == gen);
            (new && sees_all(n)).then(Instant::now)
        };
        let what = format!(
            "node-3 (gen ..{:04}) live everywhere, keys too",
            gen % 10_000
        );
        self.measure("3 restart", &what, t0, &all, back).await;

        self.set_phase("step 4/5: node-1 sets load=0.95; watch it spread (KeyUpdated)");
        self.log_keys = true;
        let t0 = Instant::now();
        if let Err(e) = self.node(0).set("load", "0.95") {
            self.fail(&format!("set load: {e}"));
        }
        let updated = on_event(t0, |e| {
            matches!(e, Event::KeyUpdated { peer, key, value, .. }
                if is(peer, 0) && key == "load" && &value[..] == b"0.95")
        });
        let what = "node-1's load=0.95 received (KeyUpdated)";
        self.measure("4 key", what, t0, &[1, 2, 3, 4], updated)
            .await;
        self.log_keys = false;

        self.set_phase("step 5/5: node-5 leaves gracefully; peers must report it left, never dead");
        let leaver = self.nodes[4].take().expect("node-5 runs");
        self.gone[4] = "left";
        let t0 = Instant::now();
        let leaving = tokio::spawn(async move { leaver.leave().await });
        let left = on_event(t0, |e| matches!(e, Event::PeerLeft { peer } if is(peer, 4)));
        let what = "node-5 reported left (PeerLeft)";
        self.measure("5 leave", what, t0, &[0, 1, 2, 3], left).await;
        match leaving.await {
            Ok(Ok(())) => {}
            other => self.fail(&format!("node-5 leave: {other:?}")),
        }
        // Watch for twice the time node-3's crash took to be noticed.
        self.wait_until(t0 + *crash.iter().max().unwrap() * 2).await;
        let dead = on_event(t0, |e| matches!(e, Event::PeerDead { peer } if is(peer, 4)));
        if let Some(i) = (0..4).find(|&i| dead(self, i).is_some()) {
            self.fail(&format!("node-5 left, yet {} reported it dead", name(i)));
        }
        let t = secs(t0.elapsed());
        self.say(format!(
            "no node reported node-5 dead in the {t} after it left"
        ));
    }
}

#[tokio::main]
async fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("five_nodes: {e}\n\n{HELP}");
        std::process::exit(2);
    });
    let mut config = Config::local();
    config.gossip_interval = args.interval;
    config.keyring = args.keyring.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    let tty = std::io::stdout().is_terminal();
    let mut demo = Demo {
        args,
        tty,
        start: Instant::now(),
        config,
        nodes: vec![None; N],
        gone: vec![""; N],
        tx,
        rx,
        seen: Vec::new(),
        phase: String::new(),
        results: Vec::new(),
        log: VecDeque::new(),
        log_keys: false,
        last_draw: None,
        summary: Vec::new(),
    };
    if tty {
        print!("\x1b[2J"); // clear the screen once; redraws then go home and overwrite
    }
    demo.script().await;
    if demo.args.forever {
        demo.set_phase("script done; the cluster keeps running: Ctrl-C to stop");
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = sleep(POLL) => demo.pump().await,
            }
        }
    }
    if tty {
        demo.set_phase("done: every step happened in time");
        demo.last_draw = None; // a final frame
        demo.pump().await;
    }

    println!("\nsummary (time from the action until the last node saw it; the first in brackets):");
    println!("{:<9} | {:<52} | time", "step", "what");
    println!("{:-<9}-+-{:-<52}-+-{:-<24}", "", "", "");
    for (step, what, time) in &demo.summary {
        println!("{step:<9} | {what:<52} | {time}");
    }
    for node in demo.nodes.iter().flatten() {
        let _ = node.shutdown().await;
    }
    println!("all nodes stopped after {}", secs(demo.start.elapsed()));
}
