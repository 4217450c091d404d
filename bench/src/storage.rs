//! What the persistent peer book costs the round: N of our nodes on the
//! memory transport, each writing through to `MemoryStorage` or to its own
//! `RedbStorage` (with and without fsync), while every node keeps changing
//! a key so that every node's storage takes a steady stream of writes.
//! Variants alternate within one run, so drift hits them alike.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gossip::storage::{RedbConfig, RedbStorage};
use gossip::transport::mem::MemNetwork;
use gossip::Node;

use crate::measure::{self, median, Table};
use crate::scenarios::our_config;
use crate::Opts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    /// `RedbConfig` defaults but for these two.
    Redb {
        fsync: bool,
        coalesce: bool,
    },
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Memory => "MemoryStorage",
            Backend::Redb {
                fsync: true,
                coalesce: true,
            } => "RedbStorage (default)",
            Backend::Redb {
                fsync: false,
                coalesce: true,
            } => "RedbStorage (no fsync)",
            Backend::Redb {
                fsync: true,
                coalesce: false,
            } => "RedbStorage (commit_delay 0)",
            Backend::Redb {
                fsync: false,
                coalesce: false,
            } => "RedbStorage (no fsync, commit_delay 0)",
        }
    }
}

const BACKENDS: [Backend; 4] = [
    Backend::Memory,
    Backend::Redb {
        fsync: true,
        coalesce: true,
    },
    Backend::Redb {
        fsync: false,
        coalesce: true,
    },
    Backend::Redb {
        fsync: true,
        coalesce: false,
    },
];

/// One window's figures, per node per second.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    rounds: f64,
    cpu: f64,
    frames_in: f64,
    commits: f64,
    written: f64,
    storage_errors: f64,
}

fn name(i: usize) -> String {
    format!("node-{i:05}")
}

/// A fresh directory for one node's book.
fn data_dir(run: &str, i: usize) -> PathBuf {
    std::env::temp_dir()
        .join(format!("gossip-bench-storage-{}-{run}", std::process::id()))
        .join(name(i))
}

async fn window(o: &Opts, n: usize, backend: Backend, seed: u64, secs: u64) -> Option<Figures> {
    let net = MemNetwork::new(seed);
    let run = format!("{seed}-{}", backend.name().replace([' ', '(', ')'], ""));
    let mut nodes = Vec::with_capacity(n);
    let mut stores = Vec::new();
    for i in 0..n {
        let mut b = Node::builder(name(i))
            .config(our_config(o).rng_seed(seed ^ i as u64))
            .seeds([format!("mem:{}", name(0))])
            .transport(net.bind(&format!("mem:{}", name(i))));
        if let Backend::Redb { fsync, coalesce } = backend {
            let mut c = RedbConfig::default();
            c.fsync = fsync;
            if !coalesce {
                c.commit_delay = Duration::ZERO;
            }
            let s = RedbStorage::open_with(data_dir(&run, i), c).expect("open the book");
            stores.push(s.clone());
            b = b.storage(s);
        }
        let node = b.start().await.expect("node starts");
        node.set("load", "0").expect("set");
        nodes.push(node);
    }
    let limit = Duration::from_secs(if o.quick { 10 } else { 20 + n as u64 / 20 });
    let t0 = Instant::now();
    while !nodes.iter().all(|x| x.membership().borrow().len() == n - 1) {
        if t0.elapsed() > limit {
            for x in nodes {
                let _ = x.shutdown().await;
            }
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(o.interval * 20).await;

    // Every node changes its key once per `churn`, staggered.
    let churn = o.interval * 5;
    let writers: Vec<Node> = nodes.clone();
    let churner = tokio::spawn(async move {
        let step = churn / writers.len() as u32;
        let mut tick = tokio::time::interval(step.max(Duration::from_micros(100)));
        let mut k = 0u64;
        loop {
            tick.tick().await;
            let node = &writers[(k % writers.len() as u64) as usize];
            if node.set("load", k.to_string()).is_err() {
                return;
            }
            k += 1;
        }
    });
    let sum = |f: &dyn Fn(&Node) -> u64| nodes.iter().map(f).sum::<u64>();
    let writer_sum = |f: &dyn Fn(&RedbStorage) -> u64| stores.iter().map(f).sum::<u64>();
    let r0 = sum(&|x| x.stats().rounds);
    let v0 = sum(&|x| x.stats().frames_in);
    let c0 = writer_sum(&|s| s.writer_stats().commits);
    let w0 = writer_sum(&|s| s.writer_stats().peers_written);
    let e0 = sum(&|x| x.stats().storage_errors);
    let cpu0 = measure::cpu_seconds();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let dt = t0.elapsed().as_secs_f64();
    let cpu1 = measure::cpu_seconds();
    let per = |x: u64| x as f64 / n as f64 / dt;
    let f = Figures {
        rounds: per(sum(&|x| x.stats().rounds) - r0),
        cpu: (cpu1 - cpu0) / n as f64 / dt,
        frames_in: per(sum(&|x| x.stats().frames_in) - v0),
        commits: per(writer_sum(&|s| s.writer_stats().commits) - c0),
        written: per(writer_sum(&|s| s.writer_stats().peers_written) - w0),
        storage_errors: (sum(&|x| x.stats().storage_errors) - e0) as f64,
    };
    churner.abort();
    for x in nodes {
        let _ = x.shutdown().await;
    }
    drop(stores);
    let _ = std::fs::remove_dir_all(data_dir(&run, 0).parent().expect("run dir"));
    Some(f)
}

pub async fn storage(o: &Opts) -> Vec<Table> {
    let n = if o.quick { 10 } else { 50 };
    let secs = o.steady_secs.div_ceil(3);
    let mut got: Vec<Vec<Figures>> = vec![Vec::new(); BACKENDS.len()];
    let mut failed = [0usize; BACKENDS.len()];
    for rep in 0..o.reps {
        for (k, b) in BACKENDS.into_iter().enumerate() {
            eprintln!("storage: N={n} {} rep {}", b.name(), rep + 1);
            match window(o, n, b, 11 + rep as u64, secs).await {
                Some(f) => got[k].push(f),
                None => failed[k] += 1,
            }
        }
    }
    let ideal = 1.0 / o.interval.as_secs_f64();
    let mut t = Table::new(
        &format!(
            "storage: N = {n}, {} ms interval, every node changes a key every {} ms; \
             {secs} s windows, median of {} runs per backend",
            o.interval.as_millis(),
            (o.interval * 5).as_millis(),
            o.reps
        ),
        &[
            "",
            BACKENDS[0].name(),
            BACKENDS[1].name(),
            BACKENDS[2].name(),
            BACKENDS[3].name(),
            "default / memory",
        ],
    );
    type Pick = fn(&Figures) -> f64;
    let rows: [(&str, Pick, usize); 6] = [
        ("rounds / node / s", |f| f.rounds, 2),
        ("CPU s / node / s", |f| f.cpu, 5),
        ("frames in / node / s", |f| f.frames_in, 0),
        ("storage commits / node / s", |f| f.commits, 1),
        ("peers written / node / s", |f| f.written, 1),
        ("storage errors (total)", |f| f.storage_errors, 0),
    ];
    for (label, pick, digits) in rows {
        let med: Vec<f64> = got
            .iter()
            .map(|v| median(&v.iter().map(pick).collect::<Vec<_>>()))
            .collect();
        let cell = |v: f64| {
            if v.is_finite() {
                format!("{v:.digits$}")
            } else {
                "-".to_string()
            }
        };
        t.row(vec![
            label.to_string(),
            cell(med[0]),
            cell(med[1]),
            cell(med[2]),
            cell(med[3]),
            measure::ratio(med[1], med[0]),
        ]);
    }
    t.notes.push(format!(
        "A round every {} ms is {ideal:.1} rounds per node per second. CPU is the \
         whole process (engine, driver, transport and the writer threads) divided by N. \
         Runs that did not converge: {failed:?}.",
        o.interval.as_millis()
    ));
    vec![t]
}
