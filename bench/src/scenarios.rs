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

/// Ours, then the chitchat wire formats asked for (both by default).
fn impls(o: &Opts) -> Vec<Impl> {
    let mut v = vec![Impl::Ours];
    v.extend(o.chitchat.iter().copied());
    v
}

/// Ours, our monitored configuration (unless `--no-monitored`), then the
/// chitchat wire formats asked for: steady, detect and sweep.
fn impls_monitored(o: &Opts) -> Vec<Impl> {
    let mut v = vec![Impl::Ours];
    if o.monitored {
        v.push(Impl::OursMonitored);
    }
    v.extend(o.chitchat.iter().copied());
    v
}

/// The (ours, theirs) pairs of a table's ratio columns: each of our
/// configurations against each chitchat format.
fn ratio_pairs(imps: &[Impl]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    for (a, _) in imps.iter().enumerate().filter(|(_, i)| i.is_ours()) {
        for (b, _) in imps.iter().enumerate().filter(|(_, i)| !i.is_ours()) {
            v.push((a, b));
        }
    }
    v
}

/// A header: `first`, one column per implementation, then each of ours
/// over each chitchat format (`ours/V0`, `mon/V1`, ...).
fn impl_header(first: &str, imps: &[Impl]) -> Vec<String> {
    let mut h = vec![first.to_string()];
    h.extend(imps.iter().map(|i| i.name().to_string()));
    h.extend(
        ratio_pairs(imps)
            .into_iter()
            .map(|(a, b)| format!("{}/{}", imps[a].short(), imps[b].short())),
    );
    h
}

/// A row matching [`impl_header`]: `vals[k]` belongs to `imps[k]`.
fn impl_row(
    label: String,
    imps: &[Impl],
    vals: &[f64],
    fmt: impl Fn(f64) -> String,
) -> Vec<String> {
    let mut r = vec![label];
    r.extend(vals.iter().map(|&v| fmt(v)));
    let at = |k: usize| vals.get(k).copied().unwrap_or(f64::NAN);
    r.extend(
        ratio_pairs(imps)
            .into_iter()
            .map(|(a, b)| ratio(at(a), at(b))),
    );
    r
}

/// The value of implementation `imp` in a row measured over `imps`.
fn value_of(imps: &[Impl], vals: &[f64], imp: Impl) -> f64 {
    imps.iter()
        .position(|&i| i == imp)
        .and_then(|k| vals.get(k).copied())
        .unwrap_or(f64::NAN)
}

/// "met" / "not met" for ours/theirs against a bound on the ratio.
fn target(ours: f64, theirs: f64, max_ratio: f64) -> String {
    let v = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.4}")
        }
    };
    if ours.is_finite() && theirs.is_finite() && theirs > 0.0 {
        let r = ours / theirs;
        format!(
            "{} (ours {}, theirs {}, ours/theirs {r:.3}, target at most {max_ratio:.2})",
            if r <= max_ratio { "met" } else { "not met" },
            v(ours),
            v(theirs)
        )
    } else {
        "not measured".to_string()
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
    if let Some(b) = o.event_buffer {
        c.event_buffer = b;
    }
    if o.no_idle_summary {
        c.idle_summary = false;
    }
    if let Some(m) = o.reconcile_min_peers {
        c.reconcile_min_peers = m;
    }
    if let Some(b) = o.filter_bits {
        c.filter_bits = b;
    }
    c
}

fn setup(o: &Opts, n: usize, loss: f64, seed: u64) -> Setup {
    Setup {
        monitors: o.monitors,
        n,
        interval: o.interval,
        loss,
        seed,
        config: our_config(o),
        inbox_bytes: o.inbox_bytes,
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
    let imps = impls(o);
    let mut join = Table::with_header(
        &format!(
            "join: time until every node sees all N live ({} ms interval, median of {})",
            o.interval.as_millis(),
            o.reps
        ),
        impl_header("N", &imps),
    );
    let mut prop = Table::with_header(
        &format!(
            "propagate: time until a new key reaches every node ({} ms interval, median of {})",
            o.interval.as_millis(),
            o.reps
        ),
        impl_header("N", &imps),
    );
    let mut curves = Vec::new();
    for &n in &o.sizes {
        let mut j = vec![Vec::new(); imps.len()];
        let mut p = vec![Vec::new(); imps.len()];
        // One repetition at 1,000 nodes and above keeps `all` within its time.
        let reps = if n >= 1000 { 1 } else { o.reps };
        for (k, &imp) in imps.iter().enumerate() {
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
        let jm: Vec<f64> = j.iter().map(|v| median(v)).collect();
        let pm: Vec<f64> = p.iter().map(|v| median(v)).collect();
        join.row(impl_row(n.to_string(), &imps, &jm, secs));
        prop.row(impl_row(n.to_string(), &imps, &pm, secs));
    }
    for t in [&mut join, &mut prop] {
        t.notes.push("Times run from the moment every node has been started. \"not reached\" means the limit (20 s + N/20 s) passed first. Every implementation asked for runs here (ours, chitchat V0 and V1 by default; `--chitchat v0` or `--chitchat v1` picks one), one after another.".into());
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
    // Let the join's deltas drain, then measure a window with nothing
    // changing (a few rounds in the smoke run: its figures mean nothing).
    tokio::time::sleep(o.interval * if o.quick { 4 } else { 20 }).await;
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

/// A table of (bytes, frames, CPU) per node per second for every
/// implementation of `imps` at size `n`, over `window`; also returns the
/// bytes of each implementation.
async fn steady_table(o: &Opts, imps: &[Impl], n: usize, window: Duration) -> (Table, Vec<f64>) {
    let mut t = Table::with_header(
        &format!(
            "steady: N = {n}, {} s with nothing changing, {} ms interval",
            window.as_secs(),
            o.interval.as_millis()
        ),
        impl_header("", imps),
    );
    let mut got = Vec::new();
    for &imp in imps {
        eprintln!(
            "steady: {} N={n} at {} ms",
            imp.name(),
            o.interval.as_millis()
        );
        got.push(steady_one(o, imp, n, window).await);
    }
    let col = |k: usize| -> Vec<f64> {
        got.iter()
            .map(|x| x.map_or(f64::NAN, |x: (f64, f64, f64)| [x.0, x.1, x.2][k]))
            .collect()
    };
    let names = ["bytes / node / s", "frames / node / s", "CPU s / node / s"];
    for (k, name) in names.iter().enumerate() {
        let fmt = |v: f64| {
            if !v.is_finite() {
                "did not converge".to_string()
            } else if k == 2 {
                format!("{v:.5}")
            } else {
                format!("{v:.0}")
            }
        };
        t.row(impl_row(name.to_string(), imps, &col(k), fmt));
    }
    let bytes = col(0);
    for &ours in imps.iter().filter(|i| i.is_ours()) {
        t.notes.push(format!(
            "Issue 13's target, {} at most half of chitchat V1's bytes at N = {n}: {}.",
            ours.name(),
            target(
                value_of(imps, &bytes, ours),
                value_of(imps, &bytes, Impl::ChitchatV1),
                0.5
            )
        ));
    }
    t.notes
        .push("CPU is the whole process's, divided by N.".to_string());
    (t, bytes)
}

pub async fn steady(o: &Opts) -> (Vec<Table>, Vec<(Impl, usize, f64)>) {
    let imps = impls_monitored(o);
    let n = if o.quick { 10 } else { 50 };
    let (t, _) = steady_table(o, &imps, n, Duration::from_secs(o.steady_secs)).await;
    // Issue 13 measures N = 200 at 200 ms rounds (chitchat is CPU-bound at
    // 200 nodes and 50 ms).
    let o200 = &Opts {
        interval: Duration::from_millis(200),
        ..o.clone()
    };
    let n200 = if o.quick { 20 } else { 200 };
    let win200 = Duration::from_secs(if o.quick { 1 } else { 10 });
    let (t200, bytes200) = steady_table(o200, &imps, n200, win200).await;
    // Bytes per node per second against N, with a shorter window.
    let sweep: Vec<usize> = if o.no_sweep {
        Vec::new()
    } else if o.quick {
        vec![5, 10]
    } else {
        vec![10, 50, 200]
    };
    let win = Duration::from_secs(if o.quick { 1 } else { 5 });
    let mut by_n = Table::with_header(
        &format!(
            "steady: bytes per node per second against N ({} s windows, {} ms interval)",
            win.as_secs(),
            o.interval.as_millis()
        ),
        impl_header("N", &imps),
    );
    let mut points = Vec::new();
    for &m in &sweep {
        let mut row = Vec::new();
        for &imp in &imps {
            eprintln!("steady against N: {} N={m}", imp.name());
            let v = steady_one(o, imp, m, win).await.map_or(f64::NAN, |x| x.0);
            points.push((imp, m, v));
            row.push(v);
        }
        let bytes = |v: f64| {
            if v.is_finite() {
                format!("{v:.0}")
            } else {
                "did not converge".to_string()
            }
        };
        by_n.row(impl_row(m.to_string(), &imps, &row, bytes));
    }
    if !sweep.is_empty() {
        // The 200 ms row is the table above's (not in the plot: another interval).
        by_n.row(impl_row(
            format!("{n200} (200 ms interval, {} s window)", win200.as_secs()),
            &imps,
            &bytes200,
            |v: f64| {
                if v.is_finite() {
                    format!("{v:.0}")
                } else {
                    "did not converge".to_string()
                }
            },
        ));
        by_n.notes.push("Issue 13's target: ours at most half of chitchat V1's bytes (ours/V1 at most 0.50) at N = 50 and N = 200; its N = 200 figure is at 200 ms rounds (the table above).".into());
    }
    let mut tables = vec![t, t200];
    if !sweep.is_empty() {
        tables.push(by_n);
    }
    (tables, points)
}

/// Crashes node `victim` of `c` and returns the seconds until `others`
/// running nodes report it dead, or NaN if that takes longer than `limit`.
async fn time_to_detect(c: &mut dyn Cluster, victim: usize, others: usize, limit: Duration) -> f64 {
    c.crash(victim).await;
    let start = Instant::now();
    loop {
        if c.count_reporting_dead(victim).await >= others {
            return start.elapsed().as_secs_f64();
        }
        if start.elapsed() > limit {
            eprintln!(
                "  only {} of {others} report it dead after {limit:?}",
                c.count_reporting_dead(victim).await,
            );
            return f64::NAN;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn detect(o: &Opts) -> Vec<Table> {
    let imps = impls_monitored(o);
    let n = if o.quick { 10 } else { 50 };
    let mut t = Table::with_header(
        &format!("detect: N = {n}, time until every other node reports a crashed node dead ({} ms interval, median of {})", o.interval.as_millis(), o.reps),
        impl_header("", &imps),
    );
    let mut times = vec![Vec::new(); imps.len()];
    for (k, &imp) in imps.iter().enumerate() {
        for rep in 0..o.reps {
            eprintln!("detect: {} rep {}", imp.name(), rep + 1);
            let mut c = imp.start(&setup(o, n, 0.0, 100 + rep as u64)).await;
            if wait_converged(c.as_ref(), limit(o, n)).await.is_none() {
                times[k].push(f64::NAN);
                c.stop().await;
                continue;
            }
            tokio::time::sleep(o.interval * 20).await;
            let took = time_to_detect(c.as_mut(), n - 1, n - 1, limit(o, n)).await;
            eprintln!("detect: {} rep {}: {took:.3} s", imp.name(), rep + 1);
            times[k].push(took);
            c.stop().await;
        }
    }
    let med: Vec<f64> = times.iter().map(|v| median(v)).collect();
    t.row(impl_row("crash detected by all".into(), &imps, &med, secs));
    for &ours in imps.iter().filter(|i| i.is_ours()) {
        for imp in [Impl::ChitchatV0, Impl::ChitchatV1] {
            if imps.contains(&imp) {
                t.notes.push(format!(
                    "Issue 13's target, {} detecting no slower than {} at the same interval: {}.",
                    ours.name(),
                    imp.name(),
                    target(value_of(&imps, &med, ours), value_of(&imps, &med, imp), 1.0)
                ));
            }
        }
    }

    let mut fd = Table::new(
        &format!(
            "detect: false deaths at N = {n} over {} s of frame loss (no node crashed)",
            o.loss_secs
        ),
        &[],
    );
    fd.header = std::iter::once("loss")
        .chain(imps.iter().map(|i| i.name()))
        .map(String::from)
        .collect();
    for loss in [0.0, 0.1, 0.3] {
        let mut row = vec![format!("{:.0}%", loss * 100.0)];
        // One implementation after another, each with the machine to
        // itself: run at once, 150 nodes at 50 ms starve the 2 cores and
        // every implementation reports deaths that are the scheduler's,
        // not the loss's (a 20 s window at once: ours 365 / 1079 / 21,
        // chitchat V0 42 / 452 / 0, V1 37 / 452 / 1 at 0 / 10 / 30% loss).
        let mut cells = Vec::new();
        for &imp in &imps {
            eprintln!("false deaths: {} loss {loss}", imp.name());
            let c = imp.start(&setup(o, n, loss, 200)).await;
            cells.push(match wait_converged(c.as_ref(), limit(o, n) * 2).await {
                None => "did not converge".to_string(),
                Some(_) => count_flaps(c.as_ref(), Duration::from_secs(o.loss_secs))
                    .await
                    .to_string(),
            });
            c.stop().await;
        }
        row.extend(cells);
        fd.row(row);
    }
    fd.notes.push(
        "A false death is one (observer, peer) pair newly reported dead, sampled every 25 ms. The clusters run one after another, each with the machine to itself (run at once, 150 nodes at 50 ms starve 2 cores and every implementation reports the scheduler's stalls as deaths). Loss drops each frame with that probability (chitchat's in-memory transport is wrapped to do the same).".to_string(),
    );
    vec![t, fd]
}

/// Runs the futures concurrently on this task and returns their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (k, f) in set.iter_mut().enumerate() {
            if out[k].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[k] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.expect("ready")).collect()
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

/// One point of the interval sweep: (implementation, interval, steady
/// bytes per node per second, median crash detection time in s).
pub type SweepPoint = (Impl, Duration, f64, f64);

/// memberlist's figures quoted in issue 13 (not measured here: no Go
/// toolchain): (label, bytes per node per second, detection s).
pub const MEMBERLIST_QUOTED: [(&str, f64, f64); 2] = [
    (
        "memberlist (quoted, not measured): LAN defaults, 1 s probes",
        140.0,
        8.7,
    ),
    (
        "memberlist (quoted, not measured): 250 ms probes",
        570.0,
        1.9,
    ),
];

/// Rounds a join's news stays hot in our digests: 2·log2(N) + 2.
fn hot_rounds(n: usize) -> u32 {
    2 * (usize::BITS - n.leading_zeros()) + 2
}

/// Steady bytes and crash detection time against the gossip interval, every
/// implementation, N = 50.
/// The cluster size of `sweep`.
pub fn sweep_n(o: &Opts) -> usize {
    if o.quick {
        10
    } else {
        50
    }
}

pub async fn sweep(o: &Opts) -> (Vec<Table>, Vec<SweepPoint>) {
    let imps = impls_monitored(o);
    let n = sweep_n(o);
    let reps = o.reps.min(n / 4).max(1);
    let mut header = vec!["interval".to_string()];
    for i in &imps {
        header.push(format!("{} bytes / node / s", i.name()));
        header.push(format!("{} detection", i.name()));
    }
    let mut t = Table::with_header(
        &format!("sweep: N = {n}, steady bytes per node per second and time until every other node reports a crashed node dead, against the gossip interval (detection: median of {reps})"),
        header,
    );
    let started = Instant::now();
    let mut points = Vec::new();
    for &iv in &o.sweep_intervals {
        let oi = &Opts {
            interval: iv,
            ..o.clone()
        };
        let mut row = vec![format!("{} ms", iv.as_millis())];
        // At long intervals the clusters are idle most of the time: every
        // implementation runs at once, which keeps the sweep within minutes.
        // At short ones each runs alone, so none takes CPU from another.
        let results: Vec<(f64, f64)> = if iv >= CONCURRENT_FROM {
            futures_join_all(imps.iter().map(|&imp| sweep_one(oi, imp, n, reps))).await
        } else {
            let mut v = Vec::new();
            for &imp in &imps {
                v.push(sweep_one(oi, imp, n, reps).await);
            }
            v
        };
        for (&imp, &(b, d)) in imps.iter().zip(&results) {
            eprintln!(
                "sweep: {} at {} ms: {b:.0} B/node/s, detected in {d:.3} s ({:.0} s into the sweep)",
                imp.name(),
                iv.as_millis(),
                started.elapsed().as_secs_f64()
            );
            row.push(if b.is_finite() {
                format!("{b:.0}")
            } else {
                "did not converge".into()
            });
            row.push(secs(d));
            points.push((imp, iv, b, d));
        }
        t.row(row);
    }
    t.notes.push(format!(
        "Each implementation at each interval: one cluster of {n}, seeded with the first node; once converged, {} rounds for the join's news to drain, then bytes over max(5 s, 10 rounds) with nothing changing, then {reps} nodes crash at once (N-1, N-2, ...), each timed from its crash until every node still running reports it dead; the detection column is the median of those. From {} ms on the implementations' clusters run at the same time (each is idle most of a round), below that one after another. Our configuration is `Config::local` scaled to the interval (`with_interval`), chitchat's is its default with the interval and the same phi threshold (8), as in the other scenarios.",
        hot_rounds(n),
        CONCURRENT_FROM.as_millis()
    ));
    let (bml, dml) = (MEMBERLIST_QUOTED[0].1, MEMBERLIST_QUOTED[0].2);
    for &ours in imps.iter().filter(|i| i.is_ours()) {
        t.notes.push(format!(
            "{} against memberlist's LAN defaults ({bml:.0} B/s per node at {dml} s detection, quoted): {}.",
            ours.name(),
            against_memberlist(&points, ours, bml, dml)
        ));
    }
    t.notes.push(format!(
        "Not measured here (no Go toolchain on this machine), quoted in issue 13 for comparison, and drawn apart in the plot: {}.",
        MEMBERLIST_QUOTED
            .iter()
            .map(|(l, b, d)| format!("{l}: about {b:.0} B/s per node, crashes detected in about {d} s"))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    (vec![t], points)
}

/// Whether our sweep curve is at or below `bytes` B/s at `detect_s` s of
/// detection: our bytes interpolated (log-log, between the two measured
/// points around that detection time) at `detect_s`; a measured point that
/// detects at least as fast for at most `bytes` also counts as met.
pub fn against_memberlist(points: &[SweepPoint], imp: Impl, bytes: f64, detect_s: f64) -> String {
    let mut ours: Vec<(f64, f64, u128)> = points
        .iter()
        .filter(|p| p.0 == imp && p.2.is_finite() && p.3.is_finite() && p.2 > 0.0 && p.3 > 0.0)
        .map(|p| (p.3, p.2, p.1.as_millis()))
        .collect();
    if ours.is_empty() {
        return "not measured (no point of ours)".into();
    }
    ours.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pts = ours
        .iter()
        .map(|p| format!("{} ms: {:.0} B/s at {:.2} s", p.2, p.1, p.0))
        .collect::<Vec<_>>()
        .join(", ");
    let bracket = ours
        .windows(2)
        .find(|w| w[0].0 <= detect_s && detect_s <= w[1].0);
    if let Some(w) = bracket {
        let (a, b) = (w[0], w[1]);
        let t = if b.0 > a.0 {
            (detect_s.ln() - a.0.ln()) / (b.0.ln() - a.0.ln())
        } else {
            0.0
        };
        let at = (a.1.ln() + t * (b.1.ln() - a.1.ln())).exp();
        return format!(
            "{} (ours interpolated at {detect_s} s: {at:.0} B/s, between {} ms and {} ms; target at most {bytes:.0} B/s)",
            if at <= bytes { "met" } else { "not met" },
            a.2,
            b.2
        );
    }
    if let Some(p) = ours.iter().find(|p| p.0 <= detect_s && p.1 <= bytes) {
        return format!(
            "met (our {} ms point detects in {:.2} s, faster than {detect_s} s, for {:.0} B/s, at most {bytes:.0}; no point of ours as slow as {detect_s} s to interpolate; ours: {pts})",
            p.2, p.0, p.1
        );
    }
    format!(
        "not met (no point of ours detects in {detect_s} s or later to interpolate, and none faster costs at most {bytes:.0} B/s; ours: {pts})"
    )
}

/// From this interval on, `sweep` runs every implementation's cluster at once.
const CONCURRENT_FROM: Duration = Duration::from_millis(500);

/// One implementation at one interval (`o.interval`): (steady bytes per node
/// per second, median detection seconds over `reps` crashes).
async fn sweep_one(o: &Opts, imp: Impl, n: usize, reps: usize) -> (f64, f64) {
    let iv = o.interval;
    // Long intervals need more time to join and to detect; bounded either way.
    let wait = limit(o, n).max(iv * 40);
    eprintln!("sweep: {} at {} ms, N={n}", imp.name(), iv.as_millis());
    let mut c = imp.start(&setup(o, n, 0.0, 400)).await;
    if wait_converged(c.as_ref(), wait).await.is_none() {
        c.stop().await;
        return (f64::NAN, f64::NAN);
    }
    tokio::time::sleep(if o.quick { iv } else { iv * hot_rounds(n) }).await;
    let window = if o.quick {
        Duration::from_secs(1).max(iv * 3)
    } else {
        Duration::from_secs(5).max(iv * 10)
    };
    let (_, b0) = c.wire();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let (_, b1) = c.wire();
    let bytes = (b1 - b0) as f64 / n as f64 / t0.elapsed().as_secs_f64();
    // `reps` nodes crash at once; each is timed from its own crash until
    // every node still running reports it dead.
    let victims: Vec<usize> = (0..reps).map(|r| n - 1 - r).collect();
    let mut crashed_at = Vec::new();
    for &v in &victims {
        c.crash(v).await;
        crashed_at.push(Instant::now());
    }
    let others = n - reps;
    let mut times = vec![f64::NAN; reps];
    let poll = (iv / 50).max(Duration::from_millis(5));
    while times.iter().any(|t| t.is_nan()) && crashed_at[0].elapsed() < wait {
        for (k, &v) in victims.iter().enumerate() {
            if times[k].is_nan() && c.count_reporting_dead(v).await >= others {
                times[k] = crashed_at[k].elapsed().as_secs_f64();
            }
        }
        tokio::time::sleep(poll).await;
    }
    if times.iter().any(|t| t.is_nan()) {
        eprintln!(
            "  sweep: {} at {} ms: not every crash detected by all within {wait:?}",
            imp.name(),
            iv.as_millis()
        );
    }
    c.stop().await;
    (bytes, median(&times))
}

/// The round of the `stable` scenario: issue 13's target is 1,000 nodes at
/// a 200 ms round; a longer `--interval` is used as given.
pub fn stable_interval(o: &Opts) -> Duration {
    if o.quick {
        o.interval
    } else {
        o.interval.max(Duration::from_millis(200))
    }
}

pub async fn stable(o: &Opts) -> Vec<Table> {
    let n = o.stable_n;
    // A thousand nodes in one process: each node's event buffer is
    // allocated in full when its events are first read (about 100 bytes a
    // slot; `stable` reads every node's), so the
    // library's default of 4096 alone would be about 400 MB here.
    let o = &Opts {
        interval: stable_interval(o),
        event_buffer: o.event_buffer.or(Some(1024)),
        ..o.clone()
    };
    let mut t = Table::new(
        &format!(
            "stable: N = {n} of our nodes in one process on 2 cores, {} ms interval, event_buffer {}",
            o.interval.as_millis(),
            o.event_buffer.unwrap_or(4096)
        ),
        &["", "value"],
    );
    eprintln!("stable: ours N={n} at {} ms", o.interval.as_millis());
    // This scenario's own peak, not the earlier scenarios' of `all`.
    measure::reset_peak_rss();
    let c = Impl::Ours.start(&setup(o, n, 0.0, 300)).await;
    let joined = wait_converged(c.as_ref(), limit(o, n) * 3).await;
    t.row(vec!["time to converge".into(), secs(f(joined))]);
    if joined.is_some() {
        // Every PeerDead event of every node, not a sampled poll: polling the
        // dead lists of 1,000 nodes every 25 ms cost more CPU than gossip.
        let deaths = c.count_deaths().expect("our nodes have events");
        let fmt = |flaps: usize, lagged: usize| {
            if lagged > 0 {
                format!("{flaps} (and {lagged} events missed by a lagging reader)")
            } else {
                flaps.to_string()
            }
        };
        let cpu0 = measure::cpu_seconds();
        let from = Instant::now();
        // Peers learned in the join stay "hot" (in every digest, fanout 3)
        // for 2·log2(N) + 2 rounds after the last change: what happens in
        // them is shown apart, inside the whole window.
        let settle = if o.quick {
            o.interval
        } else {
            o.interval * hot_rounds(n)
        };
        let window = Duration::from_secs(o.stable_secs).max(settle);
        tokio::time::sleep(settle).await;
        let (early, early_lagged) = (deaths.get(), deaths.lagged());
        tokio::time::sleep(window.saturating_sub(from.elapsed())).await;
        let (all, lagged) = (deaths.get(), deaths.lagged());
        let cpu = (measure::cpu_seconds() - cpu0) / from.elapsed().as_secs_f64();
        drop(deaths);
        t.row(vec![
            format!(
                "**peers reported dead in the {} s from convergence** (target: 0)",
                window.as_secs()
            ),
            format!("**{}**", fmt(all, lagged)),
        ]);
        t.row(vec![
            format!(
                "of which in the first {} rounds ({:.1} s, join traffic draining)",
                settle.as_nanos() / o.interval.as_nanos().max(1),
                settle.as_secs_f64()
            ),
            fmt(early, early_lagged),
        ]);
        t.row(vec![
            format!(
                "of which in the {:.1} s after those",
                (window - settle).as_secs_f64()
            ),
            fmt(all - early, lagged - early_lagged),
        ]);
        t.row(vec![
            format!(
                "target: no peer reported dead in the {} s from convergence",
                window.as_secs()
            ),
            if all == 0 && lagged == 0 {
                "met".to_string()
            } else {
                format!("not met ({all} reported dead, {lagged} events missed)")
            },
        ]);
        t.row(vec!["process CPU (cores busy)".into(), format!("{cpu:.2}")]);
    }
    let peak = measure::peak_rss_mib();
    if let Some((queued, dropped)) = c.queued_peak() {
        t.row(vec![
            "most bytes waiting in the memory network's inboxes at once; frames dropped (all causes)".into(),
            format!("{:.0} MiB; {dropped}", queued as f64 / (1 << 20) as f64),
        ]);
    }
    t.row(vec![
        "resident memory at the end (after the window)".into(),
        format!("{:.0} MiB", measure::rss_mib()),
    ]);
    t.row(vec![
        "peak memory (target: under 1 GiB)".into(),
        format!(
            "{peak:.0} MiB ({})",
            if peak <= 0.0 {
                "not measured: VmHWM unreadable".to_string()
            } else if peak < 1024.0 {
                "met".to_string()
            } else {
                format!("not met: {peak:.0} MiB over 1,024")
            }
        ),
    ]);
    c.stop().await;
    t.notes.push("A flap is one `PeerDead` event at any node (every event of every node is counted, from the moment convergence was seen). Peak memory is the process's resident peak (VmHWM) from the start of this scenario, all nodes, the runtime and the bench included.".into());
    vec![t]
}

/// The result line a `sim-child` prints on stdout, `key=value` pairs with
/// `stopped=` last (its value may hold spaces).
const SIM_RESULT: &str = "SIM-RESULT";
/// How long past its wall budget a `sim-child` may run (it stops itself at
/// the budget, between steps) before the parent kills it.
const SIM_KILL_GRACE_SECS: u64 = 15;
/// The progress lines a `sim-child` prints on stderr.
const SIM_PROGRESS: &str = "SIM-PROGRESS";

/// One size of `sim`, run in this process (the child `sim` starts):
/// prints progress lines on stderr and one result line on stdout.
pub fn sim_child(o: &Opts) {
    let n = o.sim_sizes.first().copied().unwrap_or(1000);
    let wall = Instant::now();
    let budget = Duration::from_secs(o.sim_wall_secs);
    let mut config = Config::local();
    if let Some(d) = o.digest_entries {
        config.max_digest_entries = d;
    }
    if let Some(m) = o.reconcile_min_peers {
        config.reconcile_min_peers = m;
    }
    if let Some(b) = o.filter_bits {
        config.filter_bits = b;
    }
    let interval = config.gossip_interval;
    let ids: Vec<String> = (0..n).map(|i| format!("n{i:05}")).collect();
    let mut s = Sim::new(42, config);
    s.record_events = false;
    s.set_threads(o.sim_threads);
    s.add_node(&ids[0], &[]);
    for id in &ids[1..] {
        s.add_node(id, &[&ids[0]]);
    }
    let all_pairs = (n * (n - 1)) as u64;
    // Live (node, peer) pairs: the convergence test (nodes start once, so a
    // peer seen live is seen in its only generation). `live_count` walks a
    // node's table, which at N = 10,000 reads 10^8 entries on one thread
    // after every step (about 7% of the wall time at N = 5,000, by
    // `perf`): the pairs held (`known_count`, constant time) bound it from
    // above, and it is counted only once every pair is held.
    let live = |s: &Sim| -> u64 { s.running().map(|e| e.live_count() as u64).sum() };
    let pairs = |s: &Sim| -> u64 {
        let held: u64 = s.running().map(|e| e.known_count() as u64).sum();
        if held < all_pairs {
            return held;
        }
        live(s)
    };
    let rounds_of = |d: Duration| d.as_secs_f64() / interval.as_secs_f64();
    // Steps of a tenth of a round, the pairs counted after every step; a
    // progress line every round (every step above 2,000 nodes, where one
    // step of the join can take minutes).
    let step = interval / 10;
    let progress_every = if n > 2000 { 1 } else { 10 };
    let mut stopped: Option<String> = None;
    let mut known;
    let mut joined = None;
    let mut k = 0usize;
    let start = s.elapsed();
    loop {
        known = pairs(&s);
        if known == all_pairs {
            joined = Some(s.elapsed() - start);
            break;
        }
        if k % progress_every == 0 {
            eprintln!(
                "{SIM_PROGRESS} n={n} round={:.1} pairs={known} of={all_pairs} rss_kib={:.0} wall={:.1}",
                rounds_of(s.elapsed() - start),
                measure::rss_mib() * 1024.0,
                wall.elapsed().as_secs_f64()
            );
        }
        if wall.elapsed() > budget {
            stopped = Some(format!(
                "wall time over {} s at round {:.1}",
                budget.as_secs(),
                rounds_of(s.elapsed() - start)
            ));
            break;
        }
        if s.elapsed() - start >= interval * 200 {
            break;
        }
        s.run_for(step);
        k += 1;
    }
    if joined.is_none() {
        // What was reached: pairs live, not held.
        known = live(&s);
        if stopped.is_none() {
            stopped = Some("not converged in 200 rounds".into());
        }
    }
    let (b0, elapsed0) = (s.stats.bytes_sent, s.elapsed());
    let mut key_rounds = f64::NAN;
    if stopped.is_none() {
        s.set(&ids[1], "news", "v");
        while s.elapsed() - elapsed0 < interval * 200 {
            if s.all_have(&ids[1], "news", Some("v")) {
                key_rounds = rounds_of(s.elapsed() - elapsed0);
                break;
            }
            if wall.elapsed() > budget {
                stopped = Some(format!(
                    "wall time over {} s while the key spread",
                    budget.as_secs()
                ));
                break;
            }
            s.run_for(step);
        }
    }
    let spread_rounds = rounds_of(s.elapsed() - elapsed0);
    let bytes_per = if spread_rounds > 0.0 {
        (s.stats.bytes_sent - b0) as f64 / n as f64 / spread_rounds
    } else {
        f64::NAN
    };
    println!(
        "{SIM_RESULT} n={n} joined={} key={key_rounds} bytes_per={bytes_per} wall={} peak_kib={} rounds={} pairs={known} of={all_pairs} stopped={}",
        joined.map_or(f64::NAN, rounds_of),
        wall.elapsed().as_secs_f64(),
        measure::peak_rss_kib(),
        rounds_of(s.elapsed()),
        stopped.unwrap_or_else(|| "-".into())
    );
}

/// `key=value` fields of a child's line; `stopped` takes the rest of the line.
fn fields(line: &str) -> std::collections::HashMap<String, String> {
    let mut m = std::collections::HashMap::new();
    let (head, stopped) = match line.split_once(" stopped=") {
        Some((h, s)) => (h, Some(s)),
        None => (line, None),
    };
    for kv in head.split_whitespace() {
        if let Some((k, v)) = kv.split_once('=') {
            m.insert(k.to_string(), v.to_string());
        }
    }
    if let Some(s) = stopped {
        m.insert("stopped".into(), s.trim().to_string());
    }
    m
}

/// The sans-IO engine in the simulator, each size in a child process of
/// its own (this program, `sim-child`): its peak memory is its own, and a
/// size that outgrows the machine is stopped (killed above the memory limit)
/// without taking the benchmark with it.
pub fn sim(o: &Opts) -> Vec<Table> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};

    let total = measure::mem_total_gib();
    let available = measure::mem_available_gib();
    let limit_gib = o
        .sim_mem_gib
        .unwrap_or_else(|| (0.75 * total).min(0.9 * available));
    let limit_kib = (limit_gib * 1024.0 * 1024.0) as u64;
    let mut t = Table::new(
        &format!("sim: the sans-IO engine in the simulator (Config::local, 100 ms rounds, 1 ms latency, no loss), nodes on {} thread(s) (`--sim-threads`), one child process per size", o.sim_threads),
        &[
            "N",
            "rounds to converge",
            "rounds for a key to reach all",
            "2·log2(N)",
            "bytes / node / round",
            "wall time",
            "peak memory",
            "peak memory / (node, peer) pair",
            "node-rounds / s",
            "targets: rounds within 2·log2(N), under 2 min, at most 200 B / pair",
        ],
    );
    // Issue 13's three targets for one size, from what that size measured.
    // `live` is the fraction of (node, peer) pairs live at the end: 1 when
    // the size converged; a stopped size is judged on what it reached.
    let targets = |n: usize, rounds: f64, wall: f64, peak_kib: f64, live: f64| {
        let bound = 2.0 * (n as f64).log2();
        let all = (n * (n - 1)) as f64;
        let per_pair = peak_kib * 1024.0 / all;
        let yes = |ok: bool| if ok { "met" } else { "not met" };
        let converged = rounds.is_finite();
        let r = if converged {
            format!("{} ({rounds:.1} ≤ {bound:.1})", yes(rounds <= bound))
        } else {
            "not met (did not converge)".to_string()
        };
        let w = if converged {
            format!("{} ({wall:.0} s)", yes(wall < 120.0))
        } else {
            format!("not met (not converged after {wall:.0} s)")
        };
        let m = if per_pair <= 0.0 {
            "memory not measured".to_string()
        } else if converged {
            format!("{} ({per_pair:.0} B)", yes(per_pair <= 200.0))
        } else if live > 0.0 {
            format!(
                "not judged: stopped with {:.1}% of pairs live, {:.0} B per live pair so far",
                100.0 * live,
                per_pair / live
            )
        } else {
            "not judged: stopped before any pair was live".to_string()
        };
        format!("{r}; {w}; {m}")
    };
    // The running binary itself, even if a rebuild has replaced the file
    // since it started (`current_exe` would then name a deleted path).
    let proc_exe = std::path::PathBuf::from("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe
    } else {
        std::env::current_exe().expect("the benchmark's own path")
    };
    for &n in &o.sim_sizes {
        eprintln!(
            "sim: N={n} in a child process (memory limit {limit_gib:.1} GiB, wall budget {} s)",
            o.sim_wall_secs
        );
        let mut cmd = Command::new(&exe);
        cmd.args(["sim-child", "--nodes", &n.to_string()])
            .args(["--sim-wall-secs", &o.sim_wall_secs.to_string()])
            .args(["--sim-threads", &o.sim_threads.to_string()]);
        // mimalloc returns freed pages at once rather than after its
        // default delay: the peak then counts what the run holds, not
        // what the allocator kept (with two threads, a heap each, the
        // delay added 7% at N = 1,000). The caller's setting wins.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            cmd.env("MIMALLOC_PURGE_DELAY", "0");
        }
        if let Some(d) = o.digest_entries {
            cmd.args(["--digest-entries", &d.to_string()]);
        }
        if let Some(m) = o.reconcile_min_peers {
            cmd.args(["--reconcile-min-peers", &m.to_string()]);
        }
        if let Some(b) = o.filter_bits {
            cmd.args(["--filter-bits", &b.to_string()]);
        }
        let started = Instant::now();
        let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sim: N={n}: cannot start a child: {e}");
                let mut r = vec![n.to_string(), format!("not run: {e}")];
                r.resize(10, "-".into());
                t.row(r);
                continue;
            }
        };
        let pid = child.id();
        // The child's last progress line, read (and echoed) as it comes.
        let last: Arc<Mutex<Option<String>>> = Arc::default();
        let err = child.stderr.take().expect("piped");
        let err_thread = {
            let last = last.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    if line.starts_with(SIM_PROGRESS) {
                        let f = fields(&line);
                        let get = |k: &str| {
                            f.get(k)
                                .and_then(|v| v.parse::<f64>().ok())
                                .unwrap_or(f64::NAN)
                        };
                        eprintln!(
                            "  sim N={}: round {:.1}, pairs held {:.0} of {:.0} ({:.1}%; live once all are held), RSS {:.2} GiB, wall {:.0} s",
                            f.get("n").map_or("?", |s| s.as_str()),
                            get("round"),
                            get("pairs"),
                            get("of"),
                            100.0 * get("pairs") / get("of"),
                            get("rss_kib") / 1024.0 / 1024.0,
                            get("wall")
                        );
                        *last.lock().expect("progress") = Some(line);
                    } else {
                        eprintln!("  sim child: {line}");
                    }
                }
            })
        };
        let out = child.stdout.take().expect("piped");
        let out_thread = std::thread::spawn(move || {
            std::io::BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .find(|l| l.starts_with(SIM_RESULT))
        });
        // The child stops itself at its wall budget, checked between steps;
        // a step that never ends is killed a minute later.
        let hard = Duration::from_secs(o.sim_wall_secs + SIM_KILL_GRACE_SECS);
        let mut peak_seen = 0u64;
        let mut killed: Option<String> = None;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("sim: N={n}: waiting for the child: {e}");
                    break None;
                }
            }
            let rss = measure::rss_kib_of(pid).unwrap_or(0);
            // VmHWM when readable (the kernel's own peak), else the polled maximum.
            peak_seen = peak_seen
                .max(rss)
                .max(measure::hwm_kib_of(pid).unwrap_or(0));
            let over_mem = rss > limit_kib;
            let over_time = started.elapsed() > hard;
            if over_mem || over_time {
                let round = last
                    .lock()
                    .expect("progress")
                    .as_deref()
                    .map(fields)
                    .and_then(|f| f.get("round").cloned())
                    .unwrap_or_else(|| "?".into());
                killed = Some(if over_mem {
                    format!("stopped: memory over {limit_gib:.1} GiB at round {round}")
                } else {
                    format!(
                        "stopped: killed after {} s at round {round}",
                        hard.as_secs()
                    )
                });
                let _ = child.kill();
                break child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let result = out_thread.join().ok().flatten();
        let _ = err_thread.join();
        let wall = started.elapsed().as_secs_f64();
        let two_log = format!("{:.1}", 2.0 * (n as f64).log2());
        let pairs_all = (n * (n - 1)) as f64;
        let per_pair = |kib: f64| format!("{:.0} B", kib * 1024.0 / pairs_all);
        let mib = |kib: f64| {
            if kib >= 1024.0 * 1024.0 {
                format!("{:.2} GiB", kib / 1024.0 / 1024.0)
            } else {
                format!("{:.0} MiB", kib / 1024.0)
            }
        };
        let wall_cell = |w: f64, converged: bool| {
            if converged {
                format!(
                    "{w:.1} s ({} 2 min)",
                    if w < 120.0 { "under" } else { "over" }
                )
            } else {
                format!("{w:.1} s (stopped)")
            }
        };
        match (result.map(|l| fields(&l)), killed) {
            (Some(f), None) => {
                let num = |k: &str| {
                    f.get(k)
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(f64::NAN)
                };
                let stopped = f.get("stopped").filter(|s| *s != "-").cloned();
                let cell = |r: f64| {
                    if r.is_finite() {
                        format!("{r:.1}")
                    } else {
                        match &stopped {
                            Some(s) => format!(
                                "stopped: {s} ({:.1}% of pairs live)",
                                100.0 * num("pairs") / num("of")
                            ),
                            None => "not reached".into(),
                        }
                    }
                };
                let peak = num("peak_kib");
                let bytes = num("bytes_per");
                t.row(vec![
                    n.to_string(),
                    cell(num("joined")),
                    if num("joined").is_finite() {
                        cell(num("key"))
                    } else {
                        "-".into()
                    },
                    two_log,
                    if bytes.is_finite() {
                        format!("{bytes:.0}")
                    } else {
                        "-".into()
                    },
                    wall_cell(num("wall"), num("joined").is_finite()),
                    mib(peak),
                    per_pair(peak),
                    format!("{:.0}", n as f64 * num("rounds") / num("wall")),
                    targets(
                        n,
                        num("joined"),
                        num("wall"),
                        peak,
                        num("pairs") / num("of"),
                    ),
                ]);
            }
            (result, killed) => {
                let why = killed.unwrap_or_else(|| {
                    format!(
                        "child failed ({}) without a result",
                        status.map_or("?".to_string(), |s| s.to_string())
                    )
                });
                let _ = result;
                let progress = last.lock().expect("progress").as_deref().map(fields);
                let (round, frac, rss) = progress.map_or((f64::NAN, f64::NAN, f64::NAN), |f| {
                    let g = |k: &str| {
                        f.get(k)
                            .and_then(|v| v.parse::<f64>().ok())
                            .unwrap_or(f64::NAN)
                    };
                    (g("round"), g("pairs") / g("of"), g("rss_kib"))
                });
                eprintln!("sim: N={n}: {why}");
                let peak = peak_seen as f64;
                t.row(vec![
                    n.to_string(),
                    format!(
                        "{why} ({:.1}% of pairs live at the last count)",
                        100.0 * frac
                    ),
                    "-".into(),
                    two_log,
                    "-".into(),
                    wall_cell(wall, false),
                    format!("over {}", mib(peak)),
                    if frac > 0.0 && rss.is_finite() {
                        format!(
                            "{} so far ({:.0} B per live pair at the last count)",
                            per_pair(peak),
                            rss * 1024.0 / (frac * pairs_all)
                        )
                    } else {
                        format!("{} so far", per_pair(peak))
                    },
                    if round.is_finite() {
                        format!("{:.0}", n as f64 * round / wall)
                    } else {
                        "-".into()
                    },
                    targets(n, f64::NAN, wall, peak, frac),
                ]);
            }
        }
    }
    t.notes.push(format!("Rounds are gossip intervals of virtual time; every node starts within the first interval, seeded with the first node, and convergence is every node seeing every other live (checked after every step of a tenth of a round). Bytes per node per round are measured while the key spreads, after convergence. Each size runs in a child process (`gossip-bench sim-child --nodes N`): peak memory is the child's VmHWM (the child runs with `MIMALLOC_PURGE_DELAY=0` unless that is set: freed pages go back at once), and the parent kills the child when its resident memory passes {limit_gib:.1} GiB (`--sim-mem-gib`; the default is 0.75 x MemTotal, or 90% of the memory available at the start if that is less; this machine has {total:.1} GiB) or when it runs {SIM_KILL_GRACE_SECS} s past its wall budget of {} s (`--sim-wall-secs`; the child stops itself at the budget between steps of a tenth of a round and reports what it reached). Issue 13's targets: N = 10,000 converging within 2·log2(N) rounds in under 2 minutes, at most 200 B of peak memory per (node, peer) pair.", o.sim_wall_secs));
    vec![t]
}

pub fn write_report(
    o: &Opts,
    tables: &[Table],
    curves: &[Curve],
    bytes_vs_n: &[(Impl, usize, f64)],
    sweep: &[SweepPoint],
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
    plot::sweep(&plots.join("sweep.svg"), sweep, sweep_n(o)).map_err(std::io::Error::other)?;
    let mut md = String::from("# Benchmarks\n\n");
    let _ = writeln!(
        md,
        "Generated by `cargo run --release -p gossip-bench -- all{}` in {:.0} s. Ours runs on `MemNetwork`, chitchat 0.13 on its `ChannelTransport`, both as real async nodes in one process on a 2-worker tokio runtime, with the same gossip interval ({} ms), phi threshold (8) and seed layout (every node seeded with the first). Medians over repetitions; ratios are ours/chitchat V0 and ours/chitchat V1 from the same run (V0 is chitchat's compatibility default and sends whole digests, V1 compresses each digest with zstd). `steady`, `detect` and `sweep` also measure \"ours, monitored\": the same configuration with monitored liveness (`Config::monitors` {}: each node timed by its ring neighbours only, deaths spread as verdicts), whose ratios are the `mon/` columns.\n",
        if o.quick { " --quick" } else { "" },
        took.as_secs_f64(),
        o.interval.as_millis(),
        o.monitors
    );
    let _ = writeln!(md, "Machine: {}\n", machine());
    for t in tables {
        md.push_str(&t.markdown());
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "## Plots\n\n![fraction of nodes holding a new key against time, N = {n_curve}](bench/plots/propagation.svg)\n\n![bytes per node per second against N](bench/plots/bytes_vs_n.svg)\n\n![steady bytes per node per second against crash detection time, by gossip interval, N = {}; memberlist's points are quoted, not measured](bench/plots/sweep.svg)\n",
        sweep_n(o)
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
