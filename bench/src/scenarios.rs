//! The scenarios. Each returns the tables it measured (and data for plots).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use gossip::sim::Sim;
use gossip::Config;

use crate::cluster::{converged, spread, Cluster, Impl, Setup};
use crate::measure::{self, median, ratio, secs, Table};
use crate::{plot, Opts};

/// Fraction of nodes holding a new key against time: (impl, n, points).
pub type Curve = (Impl, usize, Vec<(f64, f64)>);

fn impls(o: &Opts) -> Vec<Impl> {
    if o.chitchat {
        vec![Impl::Ours, Impl::Chitchat]
    } else {
        vec![Impl::Ours]
    }
}

/// Our configuration for a run: the local preset scaled to the interval.
pub fn our_config(o: &Opts) -> Config {
    let mut c = Config::local().with_interval(o.interval);
    if let Some(n) = o.digest_entries {
        c.max_digest_entries = n;
    }
    if let Some(f) = o.fanout {
        c.fanout = f;
        c.idle_fanout = c.idle_fanout.min(f);
    }
    if let Some(f) = o.idle_fanout {
        c.idle_fanout = f;
    }
    if let Some(ms) = o.min_std_ms {
        c.phi_min_std_dev = Duration::from_millis(ms);
    }
    if let Some(k) = o.pause {
        c.phi_acceptable_pause = o.interval * k;
    }
    c
}

fn setup(o: &Opts, n: usize, loss: f64, seed: u64) -> Setup {
    Setup {
        n,
        interval: o.interval,
        loss,
        seed,
        config: our_config(o),
        chitchat_v1: o.chitchat_v1,
    }
}

/// How long to wait for something at size n before calling it not reached.
fn limit(o: &Opts, n: usize) -> Duration {
    Duration::from_secs(if o.quick { 10 } else { 20 + n as u64 / 20 })
}

fn poll_every(n: usize) -> Duration {
    Duration::from_millis(if n >= 500 {
        50
    } else if n >= 100 {
        20
    } else {
        5
    })
}

async fn wait_converged(c: &dyn Cluster, limit: Duration) -> Option<Duration> {
    // A poll of a thousand starved nodes can itself take seconds: the limit
    // bounds the whole wait, not only the time between polls.
    tokio::time::timeout(
        limit + Duration::from_secs(5),
        wait_converged_inner(c, limit),
    )
    .await
    .unwrap_or_else(|_| {
        eprintln!("  not converged: a poll overran the {limit:?} limit");
        None
    })
}

async fn wait_converged_inner(c: &dyn Cluster, limit: Duration) -> Option<Duration> {
    let n = c.len();
    let start = Instant::now();
    loop {
        let counts = c.live_counts().await;
        if converged(&counts, n) {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            eprintln!(
                "  not converged after {limit:?}: live counts seen {:?}",
                spread(&counts)
            );
            return None;
        }
        tokio::time::sleep(poll_every(n)).await;
    }
}

fn f(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64())
}

/// join and propagate, measured on the same clusters.
pub async fn join_propagate(o: &Opts) -> (Vec<Table>, Vec<Curve>) {
    let mut join = Table::new(
        &format!(
            "join: time until every node sees all N live ({} ms interval, median of {})",
            o.interval.as_millis(),
            o.reps
        ),
        &["N", "ours", "chitchat", "ours/chitchat"],
    );
    let mut prop = Table::new(
        &format!(
            "propagate: time until a new key reaches every node ({} ms interval, median of {})",
            o.interval.as_millis(),
            o.reps
        ),
        &["N", "ours", "chitchat", "ours/chitchat"],
    );
    let mut curves = Vec::new();
    for &n in &o.sizes {
        let mut j = [Vec::new(), Vec::new()];
        let mut p = [Vec::new(), Vec::new()];
        // One repetition at 1,000 nodes and above keeps `all` within its time.
        let reps = if n >= 1000 { 1 } else { o.reps };
        for (k, imp) in impls(o).into_iter().enumerate() {
            for rep in 0..reps {
                eprintln!("join/propagate: {} N={n} rep {}", imp.name(), rep + 1);
                let c = imp.start(&setup(o, n, 0.0, rep as u64)).await;
                let joined = wait_converged(c.as_ref(), limit(o, n)).await;
                j[k].push(f(joined));
                let mut curve = Vec::new();
                let took = if joined.is_some() {
                    let value = format!("v{rep}");
                    c.set(n / 2, "news", &value).await;
                    let start = Instant::now();
                    loop {
                        let have = c.count_having(n / 2, "news", &value).await;
                        curve.push((start.elapsed().as_secs_f64(), have as f64 / n as f64));
                        if have == n {
                            break Some(start.elapsed());
                        }
                        if start.elapsed() > limit(o, n) {
                            break None;
                        }
                        tokio::time::sleep(poll_every(n)).await;
                    }
                } else {
                    None
                };
                p[k].push(f(took));
                if rep == 0 {
                    curves.push((imp, n, curve));
                }
                c.stop().await;
            }
        }
        let (jo, jc) = (median(&j[0]), median(&j[1]));
        let (po, pc) = (median(&p[0]), median(&p[1]));
        join.row(vec![n.to_string(), secs(jo), secs(jc), ratio(jo, jc)]);
        prop.row(vec![n.to_string(), secs(po), secs(pc), ratio(po, pc)]);
    }
    for t in [&mut join, &mut prop] {
        t.notes.push("Times run from the moment every node has been started. \"not reached\" means the limit (20 s + N/20 s) passed first.".into());
    }
    (vec![join, prop], curves)
}

/// Steady-state cost: (bytes/node/s, frames/node/s, CPU s/node/s).
async fn steady_one(o: &Opts, imp: Impl, n: usize, window: Duration) -> Option<(f64, f64, f64)> {
    steady_window(o, imp, &setup(o, n, 0.0, 7), window).await
}

/// Starts `imp` as `s` describes, waits for convergence and for the join's
/// deltas to drain, then measures (bytes/node/s, frames/node/s, CPU
/// s/node/s) over `window` with nothing changing; `None` if it never
/// converged.
pub async fn steady_window(
    o: &Opts,
    imp: Impl,
    s: &Setup,
    window: Duration,
) -> Option<(f64, f64, f64)> {
    let n = s.n;
    let c = imp.start(s).await;
    let ok = wait_converged(c.as_ref(), limit(o, n)).await;
    if ok.is_none() {
        c.stop().await;
        return None;
    }
    // Let the join's deltas drain, then measure a window with nothing changing.
    tokio::time::sleep(o.interval * 20).await;
    let (f0, b0) = c.wire();
    let cpu0 = measure::cpu_seconds();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let (f1, b1) = c.wire();
    let cpu1 = measure::cpu_seconds();
    let dt = t0.elapsed().as_secs_f64();
    c.stop().await;
    let per = |x: f64| x / n as f64 / dt;
    Some((
        per((b1 - b0) as f64),
        per((f1 - f0) as f64),
        per(cpu1 - cpu0),
    ))
}

pub async fn steady(o: &Opts) -> (Vec<Table>, Vec<(Impl, usize, f64)>) {
    let n = if o.quick { 10 } else { 50 };
    let window = Duration::from_secs(o.steady_secs);
    let mut t = Table::new(
        &format!(
            "steady: N = {n}, {} s with nothing changing, {} ms interval",
            o.steady_secs,
            o.interval.as_millis()
        ),
        &["", "ours", "chitchat", "ours/chitchat"],
    );
    let mut got = Vec::new();
    for imp in impls(o) {
        eprintln!("steady: {} N={n}", imp.name());
        got.push(steady_one(o, imp, n, window).await);
    }
    let get = |i: usize, k: usize| {
        got.get(i)
            .copied()
            .flatten()
            .map_or(f64::NAN, |x: (f64, f64, f64)| [x.0, x.1, x.2][k])
    };
    let names = ["bytes / node / s", "frames / node / s", "CPU s / node / s"];
    for (k, name) in names.iter().enumerate() {
        let (a, b) = (get(0, k), get(1, k));
        let fmt = |v: f64| {
            if k == 2 {
                format!("{v:.5}")
            } else {
                format!("{v:.0}")
            }
        };
        t.row(vec![name.to_string(), fmt(a), fmt(b), ratio(a, b)]);
    }
    // Bytes per node per second against N, with a shorter window.
    let sweep: Vec<usize> = if o.no_sweep {
        Vec::new()
    } else if o.quick {
        vec![5, 10]
    } else {
        vec![10, 50, 200]
    };
    let win = Duration::from_secs(if o.quick { 1 } else { 5 });
    let mut by_n = Table::new(
        &format!(
            "steady: bytes per node per second against N ({} s windows)",
            win.as_secs()
        ),
        &["N", "ours", "chitchat", "ours/chitchat"],
    );
    let mut points = Vec::new();
    for &m in &sweep {
        let mut row = Vec::new();
        for imp in impls(o) {
            eprintln!("steady sweep: {} N={m}", imp.name());
            let v = steady_one(o, imp, m, win).await.map_or(f64::NAN, |x| x.0);
            points.push((imp, m, v));
            row.push(v);
        }
        let (a, b) = (row[0], row.get(1).copied().unwrap_or(f64::NAN));
        let bytes = |v: f64| {
            if v.is_finite() {
                format!("{v:.0}")
            } else {
                "did not converge".to_string()
            }
        };
        by_n.row(vec![m.to_string(), bytes(a), bytes(b), ratio(a, b)]);
    }
    (vec![t, by_n], points)
}

pub async fn detect(o: &Opts) -> Vec<Table> {
    let n = if o.quick { 10 } else { 50 };
    let mut t = Table::new(
        &format!("detect: N = {n}, time until every other node reports a crashed node dead (median of {})", o.reps),
        &["", "ours", "chitchat", "ours/chitchat"],
    );
    let mut times = [Vec::new(), Vec::new()];
    for (k, imp) in impls(o).into_iter().enumerate() {
        for rep in 0..o.reps {
            eprintln!("detect: {} rep {}", imp.name(), rep + 1);
            let mut c = imp.start(&setup(o, n, 0.0, 100 + rep as u64)).await;
            if wait_converged(c.as_ref(), limit(o, n)).await.is_none() {
                times[k].push(f64::NAN);
                c.stop().await;
                continue;
            }
            tokio::time::sleep(o.interval * 20).await;
            let victim = n - 1;
            c.crash(victim).await;
            let start = Instant::now();
            let took = loop {
                if c.count_reporting_dead(victim).await == n - 1 {
                    break Some(start.elapsed());
                }
                if start.elapsed() > limit(o, n) {
                    eprintln!(
                        "  only {} of {} report it dead",
                        c.count_reporting_dead(victim).await,
                        n - 1
                    );
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            times[k].push(f(took));
            c.stop().await;
        }
    }
    let (a, b) = (median(&times[0]), median(&times[1]));
    t.row(vec![
        "crash detected by all".into(),
        secs(a),
        secs(b),
        ratio(a, b),
    ]);

    let mut fd = Table::new(
        &format!(
            "detect: false deaths at N = {n} over {} s of frame loss (no node crashed)",
            o.loss_secs
        ),
        &["loss", "ours", "chitchat"],
    );
    for loss in [0.0, 0.1, 0.3] {
        let mut row = vec![format!("{:.0}%", loss * 100.0)];
        // Both implementations side by side in the same window (50 nodes
        // each use a fraction of a core): halves the scenario's wall time.
        let one = |imp: Impl| async move {
            eprintln!("false deaths: {} loss {loss}", imp.name());
            let c = imp.start(&setup(o, n, loss, 200)).await;
            let cell = match wait_converged(c.as_ref(), limit(o, n) * 2).await {
                None => "did not converge".to_string(),
                Some(_) => count_flaps(c.as_ref(), Duration::from_secs(o.loss_secs))
                    .await
                    .to_string(),
            };
            c.stop().await;
            cell
        };
        if o.chitchat {
            let (a, b) = tokio::join!(one(Impl::Ours), one(Impl::Chitchat));
            row.extend([a, b]);
        } else {
            row.push(one(Impl::Ours).await);
        }
        fd.row(row);
    }
    fd.notes.push(
        "A false death is one (observer, peer) pair newly reported dead, sampled every 25 ms; both clusters run at the same time in the same process. Loss drops each frame with that probability (chitchat's in-memory transport is wrapped to do the same).".into(),
    );
    vec![t, fd]
}

/// Counts (observer, peer) pairs that newly appear dead while polling.
async fn count_flaps(c: &dyn Cluster, window: Duration) -> usize {
    let start = Instant::now();
    let mut prev: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut flaps = 0;
    while start.elapsed() < window {
        let now: BTreeSet<(usize, usize)> = c
            .dead_lists()
            .await
            .into_iter()
            .flat_map(|(o, d)| d.into_iter().map(move |p| (o, p)))
            .collect();
        flaps += now.difference(&prev).count();
        prev = now;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    flaps
}

/// The round of the `stable` scenario: 1,000 nodes in one process share two
/// cores, so it runs at chitchat's default interval (1 s) unless asked slower.
pub fn stable_interval(o: &Opts) -> Duration {
    if o.quick {
        o.interval
    } else {
        o.interval.max(Duration::from_secs(1))
    }
}

pub async fn stable(o: &Opts) -> Vec<Table> {
    let n = o.stable_n;
    let o = &Opts {
        interval: stable_interval(o),
        ..o.clone()
    };
    let mut t = Table::new(
        &format!(
            "stable: N = {n} of our nodes in one process on 2 cores, {} ms interval",
            o.interval.as_millis()
        ),
        &["", "value"],
    );
    eprintln!("stable: ours N={n}");
    let c = Impl::Ours.start(&setup(o, n, 0.0, 300)).await;
    let joined = wait_converged(c.as_ref(), limit(o, n) * 3).await;
    t.row(vec!["time to converge".into(), secs(f(joined))]);
    if joined.is_some() {
        // Every PeerDead event of every node, not a sampled poll: polling the
        // dead lists of 1,000 nodes every 25 ms cost more CPU than gossip.
        let fmt = |d: &crate::cluster::DeathCounter| {
            let (flaps, lagged) = (d.get(), d.lagged());
            if lagged > 0 {
                format!("{flaps} (and {lagged} events missed by a lagging reader)")
            } else {
                flaps.to_string()
            }
        };
        // Peers learned in the join stay "hot" (in every digest, fanout 3)
        // for 2·log2(N) + 2 rounds after the last change: the window starts
        // once that traffic has drained, and what happens before is shown.
        let rounds = 2 * (usize::BITS - n.leading_zeros()) + 2;
        let settle = if o.quick {
            o.interval
        } else {
            o.interval * rounds
        };
        let deaths = c.count_deaths().expect("our nodes have events");
        tokio::time::sleep(settle).await;
        t.row(vec![
            format!(
                "peers reported dead in the {:.0} s after convergence (join traffic draining)",
                settle.as_secs_f64()
            ),
            fmt(&deaths),
        ]);
        drop(deaths);
        let cpu0 = measure::cpu_seconds();
        let deaths = c.count_deaths().expect("our nodes have events");
        tokio::time::sleep(Duration::from_secs(o.stable_secs)).await;
        let cpu = (measure::cpu_seconds() - cpu0) / o.stable_secs as f64;
        t.row(vec![
            format!("peers reported dead in the next {} s", o.stable_secs),
            fmt(&deaths),
        ]);
        drop(deaths);
        t.row(vec!["process CPU (cores busy)".into(), format!("{cpu:.2}")]);
        t.row(vec![
            "peak memory".into(),
            format!("{:.0} MiB", measure::peak_rss_mib()),
        ]);
    }
    c.stop().await;
    vec![t]
}

pub fn sim(o: &Opts) -> Vec<Table> {
    let mut t = Table::new(
        "sim: the sans-IO engine in the simulator (Config::local, 1 ms latency, no loss), single-threaded",
        &["N", "rounds to converge", "rounds for a key to reach all", "2·log2(N)", "bytes / node / round", "wall time", "peak memory", "node-rounds / s"],
    );
    for &n in &o.sim_sizes {
        // Every node holds every peer: N = 1,000 peaked at 3.7 to 4.4 GiB,
        // about 4 KiB per (node, peer) pair with maps, detector windows and
        // the storage each node writes through to, so 10,000 nodes would need
        // ~380 GiB. The in-run memory guard is checked once a round, too late
        // at that size (the process was killed by the kernel), so refuse up
        // front.
        let need_gib = (n * n) as f64 * 4096.0 / (1u64 << 30) as f64;
        let have_gib = measure::mem_total_gib();
        if need_gib > have_gib * 0.6 {
            eprintln!("sim: N={n} skipped, needs ~{need_gib:.0} GiB");
            t.row(vec![
                n.to_string(),
                format!("not run: needs ~{need_gib:.0} GiB, machine has {have_gib:.0} GiB"),
                "-".into(),
                format!("{:.1}", 2.0 * (n as f64).log2()),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
            continue;
        }
        eprintln!("sim: N={n}");
        measure::reset_peak_rss();
        let wall = Instant::now();
        let mut config = Config::local();
        if let Some(d) = o.digest_entries {
            config.max_digest_entries = d;
        }
        let interval = config.gossip_interval;
        let mut s = Sim::new(42, config);
        s.record_events = false;
        s.add_node("n00000", &[]);
        for i in 1..n {
            s.add_node(&format!("n{i:05}"), &["n00000"]);
        }
        let budget = Duration::from_secs(if o.quick { 30 } else { 110 });
        let mut stopped = None;
        let joined = s.run_until(interval * 200, |s| {
            if wall.elapsed() > budget {
                stopped = Some(format!("stopped: wall time over {budget:?}"));
                return true;
            }
            if measure::rss_mib() > 16.0 * 1024.0 {
                stopped = Some("stopped: memory over 16 GiB".to_string());
                return true;
            }
            s.all_see_all_live()
        });
        let rounds =
            |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() / interval.as_secs_f64());
        let joined_rounds = if stopped.is_some() {
            f64::NAN
        } else {
            rounds(joined)
        };
        let (b0, elapsed0) = (s.stats.bytes_sent, s.elapsed());
        let key_rounds = if stopped.is_none() {
            s.set("n00001", "news", "v");
            rounds(s.run_until(interval * 200, |s| s.all_have("n00001", "news", Some("v"))))
        } else {
            f64::NAN
        };
        let sim_rounds = (s.elapsed() - elapsed0).as_secs_f64() / interval.as_secs_f64();
        let bytes_per = if sim_rounds > 0.0 {
            (s.stats.bytes_sent - b0) as f64 / n as f64 / sim_rounds
        } else {
            f64::NAN
        };
        let total_rounds = s.elapsed().as_secs_f64() / interval.as_secs_f64();
        let w = wall.elapsed().as_secs_f64();
        let fmt = |r: f64| {
            if r.is_finite() {
                format!("{r:.1}")
            } else {
                stopped.clone().unwrap_or("not reached".into())
            }
        };
        t.row(vec![
            n.to_string(),
            fmt(joined_rounds),
            fmt(key_rounds),
            format!("{:.1}", 2.0 * (n as f64).log2()),
            format!("{bytes_per:.0}"),
            format!("{w:.1} s"),
            format!("{:.0} MiB", measure::peak_rss_mib()),
            format!("{:.0}", n as f64 * total_rounds / w),
        ]);
        drop(s);
    }
    t.notes.push("Rounds are gossip intervals of virtual time; every node starts within the first interval, seeded with the first node. Bytes per node per round are measured while the key spreads, after convergence.".into());
    vec![t]
}

pub fn write_report(
    o: &Opts,
    tables: &[Table],
    curves: &[Curve],
    bytes_vs_n: &[(Impl, usize, f64)],
    took: Duration,
) -> std::io::Result<()> {
    let plots = o.out.join("bench/plots");
    std::fs::create_dir_all(&plots)?;
    let n_curve = curves
        .iter()
        .map(|c| c.1)
        .filter(|&n| n <= 200)
        .max()
        .unwrap_or(0);
    let chosen: Vec<&Curve> = curves.iter().filter(|c| c.1 == n_curve).collect();
    plot::propagation(&plots.join("propagation.svg"), &chosen).map_err(std::io::Error::other)?;
    plot::bytes_vs_n(&plots.join("bytes_vs_n.svg"), bytes_vs_n).map_err(std::io::Error::other)?;
    let mut md = String::from("# Benchmarks\n\n");
    let _ = writeln!(
        md,
        "Generated by `cargo run --release -p gossip-bench -- all{}` in {:.0} s. Ours runs on `MemNetwork`, chitchat 0.13 on its `ChannelTransport`, both as real async nodes in one process on a 2-worker tokio runtime, with the same gossip interval ({} ms), phi threshold (8) and seed layout (every node seeded with the first). Medians over repetitions; ratios are ours/chitchat from the same run.\n",
        if o.quick { " --quick" } else { "" },
        took.as_secs_f64(),
        o.interval.as_millis()
    );
    let _ = writeln!(md, "Machine: {}\n", machine());
    for t in tables {
        md.push_str(&t.markdown());
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "## Plots\n\n![fraction of nodes holding a new key against time, N = {n_curve}](bench/plots/propagation.svg)\n\n![bytes per node per second against N](bench/plots/bytes_vs_n.svg)\n"
    );
    if let Ok(notes) = std::fs::read_to_string(o.out.join("bench/NOTES.md")) {
        md.push_str(&notes);
    }
    std::fs::write(o.out.join("BENCHMARKS.md"), md)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cpu}, {cores} cores, {mem:.0} GiB")
}

/// Broadcast latency and cost of topic pub/sub in the simulator, the method
/// of `gossip-core/tests/pubsub.rs` (`figures`): form the cluster, subscribe,
/// wait until every subscription has spread, then publish one message at a
/// time and measure until every subscriber delivered it and every node's
/// broadcast queue drained.
pub fn broadcast(o: &Opts) -> Vec<Table> {
    let config = Config::local();
    let interval = config.gossip_interval;
    let mut t = Table::new(
        &format!(
            "broadcast: pub/sub latency and bytes per message (simulator, Config::local, {} ms rounds, 1 ms latency, no loss)",
            interval.as_millis()
        ),
        &[
            "N",
            "payload",
            "subscribers",
            "rounds to all subscribers",
            "virtual time",
            "copies / node",
            "broadcast bytes / node",
            "frame bytes, publish to queues drained (all nodes)",
            "idle frame bytes, same window",
            "wall time",
        ],
    );
    const ALL: &str = "chat";
    const HALF: &str = "half";
    let id = |i: usize| format!("n{i:05}");
    // Finer than run_until's step (a whole round above 100 nodes).
    let step = interval / 20;
    let dash = |n: usize, why: &str| {
        let mut r = vec![n.to_string(), why.to_string()];
        r.resize(10, "-".into());
        r
    };
    for &n in &o.broadcast_sizes {
        eprintln!("broadcast: N={n}");
        let wall = Instant::now();
        let mut s = Sim::new(n as u64, config.clone());
        s.record_events = false;
        s.add_node(&id(0), &[]);
        for i in 1..n {
            s.add_node(&id(i), &[&id(0)]);
        }
        if s.run_until(interval * 200, |s| s.all_see_all_live())
            .is_none()
        {
            t.row(dash(n, "cluster did not converge"));
            continue;
        }
        // Every node on one topic, every second node on another.
        for i in 0..n {
            s.subscribe(&id(i), ALL);
            if i % 2 == 0 {
                s.subscribe(&id(i), HALF);
            }
        }
        let (key_all, key_half) = (format!("gossip.sub/{ALL}"), format!("gossip.sub/{HALF}"));
        let spread = s.run_until(interval * 200, |s| {
            (0..n).all(|i| {
                s.all_have(&id(i), &key_all, Some(""))
                    && (i % 2 == 1 || s.all_have(&id(i), &key_half, Some("")))
            })
        });
        if spread.is_none() {
            t.row(dash(n, "subscriptions did not spread"));
            continue;
        }
        // Idle traffic (digests, no broadcasts) per virtual second, to set
        // against the frame bytes of each message's window.
        let (b0, v0) = (s.stats.bytes_sent, s.elapsed());
        s.run_for(interval * 3);
        let idle_per_s = (s.stats.bytes_sent - b0) as f64 / (s.elapsed() - v0).as_secs_f64();
        eprintln!(
            "broadcast: N={n} ready after {:.1} s wall",
            wall.elapsed().as_secs_f64()
        );
        let sum = |s: &Sim, f: fn(&gossip::Stats) -> u64| -> u64 {
            (0..n).map(|i| f(&s.engine(&id(i)).stats())).sum()
        };
        let mut runs = Vec::new();
        for topic in [ALL, HALF] {
            for size in [16usize, 1024] {
                runs.push((topic, size));
            }
        }
        for (k, (topic, size)) in runs.into_iter().enumerate() {
            let msg_wall = Instant::now();
            // Authors differ per message; every one of them subscribes to both.
            let a = (n / 2 + 2 * k) % n;
            let author = id(a - a % 2);
            let subscribes = |i: usize| topic == ALL || i % 2 == 0;
            let subscribers = (0..n).filter(|&i| subscribes(i) && id(i) != author).count();
            let copies0 = sum(&s, |st| st.broadcasts_sent);
            let bytes0 = sum(&s, |st| st.broadcast_bytes_sent);
            let before: Vec<u64> = (0..n)
                .map(|i| s.engine(&id(i)).stats().messages_delivered)
                .collect();
            let (f0, v0) = (s.stats.bytes_sent, s.elapsed());
            s.publish(&author, topic, &vec![7; size]);
            let delivered = |s: &Sim| {
                (0..n).all(|i| {
                    !subscribes(i)
                        || id(i) == author
                        || s.engine(&id(i)).stats().messages_delivered > before[i]
                })
            };
            let limit = interval * 600;
            while !delivered(&s) && s.elapsed() - v0 < limit {
                s.run_for(step);
            }
            if !delivered(&s) {
                t.row(dash(n, "not every subscriber delivered"));
                continue;
            }
            let took = s.elapsed() - v0;
            while (0..n).any(|i| s.engine(&id(i)).pending_broadcasts() > 0)
                && s.elapsed() - v0 < limit
            {
                s.run_for(step);
            }
            let window = (s.elapsed() - v0).as_secs_f64();
            let frames = s.stats.bytes_sent - f0;
            let copies = sum(&s, |st| st.broadcasts_sent) - copies0;
            let bytes = sum(&s, |st| st.broadcast_bytes_sent) - bytes0;
            for (i, was) in before.iter().enumerate() {
                let got = s.engine(&id(i)).stats().messages_delivered - was;
                let want = u64::from(subscribes(i) && id(i) != author);
                if got != want {
                    eprintln!("broadcast: N={n} {} delivered {got}, not {want}", id(i));
                }
            }
            t.row(vec![
                n.to_string(),
                format!("{size} B"),
                if topic == ALL {
                    format!("all ({subscribers})")
                } else {
                    format!("half ({subscribers})")
                },
                format!("{:.2}", took.as_secs_f64() / interval.as_secs_f64()),
                format!("{:.0} ms", took.as_secs_f64() * 1000.0),
                format!("{:.1}", copies as f64 / n as f64),
                format!("{:.0}", bytes as f64 / n as f64),
                format!("{frames}"),
                format!("{:.0}", idle_per_s * window),
                format!("{:.1} s", msg_wall.elapsed().as_secs_f64()),
            ]);
        }
        eprintln!(
            "broadcast: N={n} done in {:.1} s wall",
            wall.elapsed().as_secs_f64()
        );
        drop(s);
    }
    t.notes.push(format!(
        "Method of `gossip-core/tests/pubsub.rs` (`figures`): every node seeded with the first; after the cluster converged, every node subscribes to one topic and every second node to another, and the subscriptions spread to all; then one message at a time from a subscriber, each from a different author. Rounds and virtual time: from publish until the last subscriber delivered it, checked every {} ms of virtual time. Copies and broadcast bytes: the broadcast copies sent by all nodes from publish until every node's broadcast queue drained, divided by N (a copy is one message in one frame; bytes are the encoded `Broadcast`: payload, 32-byte key, 64-byte signature, headers). Frame bytes: every frame sent by any node in that same window, digests included; the idle column is the digest traffic of a window that long with nothing published (measured over 3 rounds before the first message), so the difference is what the message added. Wall time: per message; the cluster forming and the subscriptions spreading come before.",
        step.as_millis()
    ));
    vec![t]
}
