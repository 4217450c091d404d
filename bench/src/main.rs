//! `gossip-bench`: this project's gossip engine against chitchat 0.13, side by
//! side in one process, and the sans-IO engine alone in the simulator.
//!
//! ```text
//! cargo run --release -p gossip-bench -- <join|propagate|steady|detect|sweep|stable|sim|broadcast|set|encryption|storage|all> [flags]
//! ```
//!
//! Every scenario prints markdown tables with medians over repetitions and the
//! ratios ours/chitchat V0 and ours/chitchat V1. `all` runs everything and writes BENCHMARKS.md and SVG
//! plots. Numbers are measured, never asserted: the smoke test only checks
//! that the program runs.
#![allow(missing_docs, unreachable_pub)]

mod cluster;
mod encryption;
mod measure;
mod plot;
mod scenarios;
mod set;
mod storage;

use std::path::PathBuf;
use std::time::Duration;

use cluster::Impl;
use measure::Table;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HELP: &str = "\
gossip-bench: measure this gossip engine against chitchat 0.13 (its V0 and
V1 wire formats).

USAGE:
    cargo run --release -p gossip-bench -- SCENARIO [FLAGS]

SCENARIOS:
    join        time until every node sees all N live (N = --sizes)
    propagate   after join, time until a new key reaches every node
    steady      bytes, frames and CPU per node per second with nothing changing
                (N = 50; N = 200 at 200 ms rounds; bytes against N)
    detect      time until all report a crashed node dead; false deaths under loss
    sweep       N = 50, for each gossip interval (--sweep-intervals): steady
                bytes per node per second and crash detection time, every
                implementation; plot in bench/plots/sweep.svg (with `all`)
    stable      N = 1,000 of our nodes at 200 ms rounds: convergence, then
                flaps over the 60 s from convergence, peak memory
    sim         the sans-IO engine in the simulator at N = 1,000 and 10,000,
                each size in a child process with its own memory and wall budget
    set         a cluster-wide set of --set-items items (default 10,000) advertised
                by one node, in the simulator at N = 50 and 200 (--sizes): rounds,
                bytes and wall time until every node holds it
    broadcast   pub/sub in the simulator at N = 50 and 1,000 (--sizes): rounds
                until all subscribers have a message, copies and bytes per message
    encryption  steady cost with and without a keyring; seal + open per frame
    storage     rounds and CPU per node with RedbStorage against MemoryStorage
                at N = 50 under key churn (not part of `all`)
    all         everything but storage; writes BENCHMARKS.md and plots

FLAGS:
    --sizes 10,50,200,1000   cluster sizes for join/propagate (default), and for
                             broadcast when given (its default: 50,1000)
    --reps N                 repetitions per measurement (default 3)
    --interval MS            gossip interval of every implementation (default 50)
    --steady-secs S          steady-state window at N = 50 (default 30)
    --loss-secs S            false-death window per loss rate (default 60)
    --quick                  tiny sizes and short windows (the test suite's smoke run)
    --out DIR                where `all` writes BENCHMARKS.md and plots (default: .)
    --chitchat v0,v1         which chitchat wire formats to measure (default: both)
    --no-chitchat            measure ours only
    --chitchat-v1            chitchat V1 only (the same as --chitchat v1)
    --no-sweep               steady: skip the bytes-against-N table (not the
                             `sweep` scenario)
    --sweep-intervals MS,..  intervals of `sweep` (default 50,100,200,500,1000,2000)
    --set-items N            items of `set` (default 10,000)
    --nodes 1000,10000       cluster sizes for sim (default; alias --sim-sizes)
    --sim-wall-secs S        sim: wall-time budget per size (default 1200: N = 10,000
                             converged in 854 s at 13cf081)
    --sim-mem-gib G          sim: kill a size's child process above this resident
                             memory (default: 0.75 x MemTotal, or 90% of the
                             memory available at start if that is less)
    --sim-threads T          sim: threads each size runs its nodes on
                             (Sim::set_threads; default: the cores present)
    --digest-entries N       our max_digest_entries (experiments)
    --fanout N               our fanout (experiments)
    --idle-fanout N          our idle_fanout (experiments)
    --pause K                our phi acceptable pause, in intervals (experiments)
    --min-std-ms MS          our phi minimum standard deviation (experiments)
    --monitors N             the monitored configuration's Config::monitors
                             (default 1: a ring neighbour on either side)
    --no-monitored           steady, detect and sweep: leave out our monitored
                             configuration (ours, monitored)
    --reconcile-min-peers N  our Config::reconcile_min_peers (0: no reconciling
                             by bucket; experiments)
    --filter-bits N          our Config::filter_bits (0: no filter from the
                             smaller table; experiments)
    --no-idle-summary        our idle_summary off: digests on every exchange
                             (experiments)
    --event-buffer N         our Config::event_buffer (stable's default: 1024; the
                             library's: 4096, about 400 KB a node once its events are read)
    --inbox-bytes B          our memory network's per-inbox byte limit (default:
                             gossip_transport_mem::INBOX_BYTES, 4 MiB)
    -h, --help               this text

ENVIRONMENT:
    BENCH_TRACE_DEATHS=1     stable: print every PeerDead event (peer, observer, time)
";

#[derive(Debug, Clone)]
pub struct Opts {
    pub sizes: Vec<usize>,
    pub reps: usize,
    pub interval: Duration,
    pub steady_secs: u64,
    pub loss_secs: u64,
    pub quick: bool,
    pub out: PathBuf,
    /// The chitchat wire formats measured beside ours (empty: ours only).
    pub chitchat: Vec<Impl>,
    pub sim_sizes: Vec<usize>,
    /// Wall-time budget of each sim size.
    pub sim_wall_secs: u64,
    /// Resident-memory limit of each sim child process (None: the default).
    pub sim_mem_gib: Option<f64>,
    /// Threads of each sim child (`Sim::set_threads`).
    pub sim_threads: usize,
    /// Gossip intervals of the `sweep` scenario.
    pub sweep_intervals: Vec<Duration>,
    /// Cluster sizes for `broadcast`: `--sizes` when given, else 50 and 1,000.
    pub broadcast_sizes: Vec<usize>,
    /// Cluster sizes for `set`: `--sizes` when given, else 50 and 200.
    pub set_sizes: Vec<usize>,
    /// Items of `set`.
    pub set_items: usize,
    pub stable_n: usize,
    pub stable_secs: u64,
    /// Overrides of our configuration, for experiments.
    pub digest_entries: Option<usize>,
    pub fanout: Option<usize>,
    pub pause: Option<u32>,
    pub idle_fanout: Option<usize>,
    pub min_std_ms: Option<u64>,
    /// Our `Config::event_buffer` (`stable` defaults to 1,024).
    pub event_buffer: Option<usize>,
    /// Skip the bytes-against-N sweep of `steady`.
    pub no_sweep: bool,
    /// Our `Config::idle_summary` turned off (digests on every exchange).
    pub no_idle_summary: bool,
    /// Our `Config::reconcile_min_peers` (None: the default).
    pub reconcile_min_peers: Option<usize>,
    /// Our `Config::filter_bits` (None: the default).
    pub filter_bits: Option<usize>,
    /// Our memory network's per-inbox byte limit (None: its default).
    pub inbox_bytes: Option<u64>,
    /// Whether steady, detect and sweep also measure our monitored
    /// configuration, and its `Config::monitors`.
    pub monitored: bool,
    pub monitors: usize,
}

fn parse() -> Result<(String, Opts), lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let mut scenario = None;
    let mut o = Opts {
        sizes: vec![10, 50, 200, 1000],
        reps: 3,
        interval: Duration::from_millis(50),
        steady_secs: 30,
        loss_secs: 60,
        quick: false,
        out: PathBuf::from("."),
        chitchat: vec![Impl::ChitchatV0, Impl::ChitchatV1],
        sim_sizes: vec![1000, 10_000],
        sim_wall_secs: 1200,
        sim_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        sim_mem_gib: None,
        sweep_intervals: [50, 100, 200, 500, 1000, 2000]
            .map(Duration::from_millis)
            .to_vec(),
        broadcast_sizes: vec![50, 1000],
        set_sizes: vec![50, 200],
        set_items: 10_000,
        stable_n: 1000,
        stable_secs: 60,
        digest_entries: None,
        fanout: None,
        pause: None,
        idle_fanout: None,
        min_std_ms: None,
        event_buffer: None,
        no_sweep: false,
        no_idle_summary: false,
        reconcile_min_peers: None,
        filter_bits: None,
        inbox_bytes: None,
        monitored: true,
        monitors: cluster::MONITORS,
    };
    let mut sizes_set = false;
    let mut sweep_set = false;
    let mut sim_set = false;
    let list = |flag: &str, v: &str| -> Result<Vec<u64>, lexopt::Error> {
        v.split(',')
            .map(|x| {
                x.trim()
                    .parse::<u64>()
                    .map_err(|e| format!("--{flag} {v:?}: {e}").into())
            })
            .collect()
    };
    while let Some(arg) = p.next()? {
        match arg {
            Long("sizes") => {
                let v = p.value()?.string()?;
                o.sizes = v
                    .split(',')
                    .map(|x| {
                        x.trim()
                            .parse::<usize>()
                            .map_err(|e| format!("--sizes {v:?}: {e}"))
                    })
                    .collect::<Result<_, _>>()?;
                sizes_set = true;
            }
            Long("reps") => o.reps = p.value()?.parse()?,
            Long("interval") => o.interval = Duration::from_millis(p.value()?.parse()?),
            Long("steady-secs") => o.steady_secs = p.value()?.parse()?,
            Long("loss-secs") => o.loss_secs = p.value()?.parse()?,
            Long("quick") => o.quick = true,
            Long("out") => o.out = PathBuf::from(p.value()?.string()?),
            Long("no-chitchat") => o.chitchat.clear(),
            Long("chitchat-v1") => o.chitchat = vec![Impl::ChitchatV1],
            Long("chitchat") => {
                let v = p.value()?.string()?;
                o.chitchat = Vec::new();
                for x in v.split(',') {
                    let imp = match x.trim().to_ascii_lowercase().as_str() {
                        "v0" => Impl::ChitchatV0,
                        "v1" => Impl::ChitchatV1,
                        "" | "none" => continue,
                        other => {
                            return Err(
                                format!("--chitchat {v:?}: {other:?} is not v0 or v1").into()
                            )
                        }
                    };
                    if !o.chitchat.contains(&imp) {
                        o.chitchat.push(imp);
                    }
                }
            }
            Long("digest-entries") => o.digest_entries = Some(p.value()?.parse()?),
            Long("fanout") => o.fanout = Some(p.value()?.parse()?),
            Long("no-sweep") => o.no_sweep = true,
            Long("no-idle-summary") => o.no_idle_summary = true,
            Long("reconcile-min-peers") => o.reconcile_min_peers = Some(p.value()?.parse()?),
            Long("filter-bits") => o.filter_bits = Some(p.value()?.parse()?),
            Long("no-monitored") => o.monitored = false,
            Long("monitors") => o.monitors = p.value()?.parse()?,
            Long("idle-fanout") => o.idle_fanout = Some(p.value()?.parse()?),
            Long("pause") => o.pause = Some(p.value()?.parse()?),
            Long("sim-sizes") | Long("nodes") => {
                let v = p.value()?.string()?;
                o.sim_sizes = list("nodes", &v)?.into_iter().map(|n| n as usize).collect();
                sim_set = true;
            }
            Long("sim-wall-secs") => o.sim_wall_secs = p.value()?.parse()?,
            Long("sim-threads") => o.sim_threads = p.value()?.parse::<usize>()?.max(1),
            Long("sim-mem-gib") => o.sim_mem_gib = Some(p.value()?.parse()?),
            Long("sweep-intervals") => {
                let v = p.value()?.string()?;
                o.sweep_intervals = list("sweep-intervals", &v)?
                    .into_iter()
                    .map(Duration::from_millis)
                    .collect();
                sweep_set = true;
            }
            Long("min-std-ms") => o.min_std_ms = Some(p.value()?.parse()?),
            Long("event-buffer") => o.event_buffer = Some(p.value()?.parse()?),
            Long("set-items") => o.set_items = p.value()?.parse()?,
            Long("inbox-bytes") => o.inbox_bytes = Some(p.value()?.parse()?),
            Short('h') | Long("help") => {
                print!("{HELP}");
                std::process::exit(0);
            }
            Value(v) if scenario.is_none() => scenario = Some(v.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    if o.quick {
        if !sizes_set {
            o.sizes = vec![5, 10];
        }
        o.reps = 1;
        o.steady_secs = 1;
        o.loss_secs = 2;
        if !sim_set {
            o.sim_sizes = vec![50, 100];
        }
        o.sim_wall_secs = o.sim_wall_secs.min(60);
        if !sweep_set {
            o.sweep_intervals = vec![Duration::from_millis(50), Duration::from_millis(200)];
        }
        if !sizes_set {
            o.broadcast_sizes = vec![10, 30];
            o.set_sizes = vec![10];
        }
        o.set_items = o.set_items.min(500);
        o.stable_n = 20;
        o.stable_secs = 2;
    }
    if sizes_set {
        o.broadcast_sizes = o.sizes.clone();
        o.set_sizes = o.sizes.clone();
    }
    if o.reps == 0 || o.sizes.iter().chain(&o.sim_sizes).any(|&n| n < 2) {
        return Err("--reps must be positive and every size at least 2".into());
    }
    if o.sweep_intervals.iter().any(|d| d.is_zero()) || o.interval.is_zero() {
        return Err("every interval must be at least 1 ms".into());
    }
    Ok((scenario.ok_or("a scenario is required")?, o))
}

fn main() {
    let (scenario, opts) = match parse() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("gossip-bench: {e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tables: Vec<Table> = match scenario.as_str() {
        "join" | "propagate" => rt.block_on(scenarios::join_propagate(&opts)).0,
        "steady" => rt.block_on(scenarios::steady(&opts)).0,
        "detect" => rt.block_on(scenarios::detect(&opts)),
        "stable" => rt.block_on(scenarios::stable(&opts)),
        "sweep" => rt.block_on(scenarios::sweep(&opts)).0,
        "sim" => scenarios::sim(&opts),
        // One size of `sim` in a child process (what `sim` runs; hidden).
        "sim-child" => {
            scenarios::sim_child(&opts);
            return;
        }
        "broadcast" => scenarios::broadcast(&opts),
        "set" => set::set_spread(&opts),
        "encryption" => rt.block_on(encryption::encryption(&opts)),
        "storage" => rt.block_on(storage::storage(&opts)),
        "all" => {
            let started = std::time::Instant::now();
            let (mut t, curves) = rt.block_on(scenarios::join_propagate(&opts));
            let (steady, bytes_vs_n) = rt.block_on(scenarios::steady(&opts));
            t.extend(steady);
            t.extend(rt.block_on(scenarios::detect(&opts)));
            let (sweep, sweep_points) = rt.block_on(scenarios::sweep(&opts));
            t.extend(sweep);
            t.extend(rt.block_on(scenarios::stable(&opts)));
            t.extend(scenarios::sim(&opts));
            t.extend(scenarios::broadcast(&opts));
            t.extend(set::set_spread(&opts));
            t.extend(rt.block_on(encryption::encryption(&opts)));
            let took = started.elapsed();
            if let Err(e) =
                scenarios::write_report(&opts, &t, &curves, &bytes_vs_n, &sweep_points, took)
            {
                eprintln!("gossip-bench: writing the report failed: {e}");
                std::process::exit(1);
            }
            t
        }
        other => {
            eprintln!("gossip-bench: unknown scenario {other:?}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    if scenario != "all" {
        for t in &tables {
            println!("{}", t.markdown());
        }
    }
}
