//! What the cluster keyring costs: the same steady cluster with and without
//! a keyring (bytes, frames and CPU per node per second), and the seal and
//! open of one frame alone.

use std::time::{Duration, Instant};

use gossip::{Key, Keyring};

use crate::cluster::{Impl, Setup};
use crate::measure::{median, Table};
use crate::scenarios::{our_config, steady_window};
use crate::Opts;

/// (bytes/node/s, frames/node/s, CPU s/node/s), or `None` if the cluster
/// did not converge.
async fn steady(o: &Opts, n: usize, keyed: bool, seed: u64, window: Duration) -> Option<[f64; 3]> {
    let mut config = our_config(o);
    if keyed {
        config.keyring = Some(Keyring::new(Key::from_bytes(&[7; 32]).expect("32 bytes")));
    }
    let setup = Setup {
        monitors: o.monitors,
        n,
        interval: o.interval,
        loss: 0.0,
        seed,
        config,
        inbox_bytes: o.inbox_bytes,
    };
    steady_window(o, Impl::Ours, &setup, window)
        .await
        .map(|(b, f, c)| [b, f, c])
}

/// Microseconds to seal and open one frame of `len` bytes.
fn seal_open_micros(len: usize) -> f64 {
    let ring = Keyring::new(Key::from_bytes(&[7; 32]).expect("32 bytes"));
    let frame = vec![0x5a_u8; len];
    let mut runs = 0u32;
    let t0 = Instant::now();
    while runs < 50 || t0.elapsed() < Duration::from_millis(300) {
        let sealed = ring.seal("bench", &frame);
        let opened = ring.open("bench", &sealed).expect("opens");
        std::hint::black_box(opened);
        runs += 1;
    }
    t0.elapsed().as_secs_f64() * 1e6 / f64::from(runs)
}

pub async fn encryption(o: &Opts) -> Vec<Table> {
    let n = if o.quick { 10 } else { 50 };
    // A third of the headline steady window: the ratio, not the absolute
    // figure, is what this table is for.
    let window = Duration::from_secs(o.steady_secs.div_ceil(3));
    let mut got: [Vec<[f64; 3]>; 2] = [Vec::new(), Vec::new()];
    // Alternate plaintext and keyed runs so drift hits both alike.
    for rep in 0..o.reps {
        for (k, keyed) in [false, true].into_iter().enumerate() {
            eprintln!("encryption: N={n} keyed={keyed} rep {}", rep + 1);
            if let Some(x) = steady(o, n, keyed, 7 + rep as u64, window).await {
                got[k].push(x);
            }
        }
    }
    let med = |k: usize, i: usize| median(&got[k].iter().map(|x| x[i]).collect::<Vec<_>>());
    let mut t = Table::new(
        &format!(
            "encryption: N = {n}, {} s with nothing changing, {} ms interval, with and without a keyring",
            o.steady_secs,
            o.interval.as_millis()
        ),
        &["", "plaintext", "keyring", "keyring/plaintext"],
    );
    let rel = |a: f64, b: f64| format!("{:.3}", b / a);
    for (i, name) in ["bytes / node / s", "frames / node / s", "CPU s / node / s"]
        .iter()
        .enumerate()
    {
        let (a, b) = (med(0, i), med(1, i));
        let fmt = |v: f64| {
            if i == 2 {
                format!("{v:.5}")
            } else {
                format!("{v:.0}")
            }
        };
        t.row(vec![name.to_string(), fmt(a), fmt(b), rel(a, b)]);
    }
    let (a, b) = (med(0, 0) / med(0, 1), med(1, 0) / med(1, 1));
    t.row(vec![
        "bytes / frame".into(),
        format!("{a:.1}"),
        format!("{b:.1}"),
        rel(a, b),
    ]);
    t.notes.push(format!(
        "Medians over {} runs of each, alternated. The keyring seals every frame with XChaCha20-Poly1305: {} bytes more per frame (header, 24-byte nonce, tag). CPU is the whole process's (every node, the memory transport and the runtime) divided by N.",
        o.reps,
        gossip::keyring::SEAL_OVERHEAD
    ));
    let mut micro = Table::new(
        "encryption: seal + open of one frame (one core)",
        &["frame bytes", "µs", "MB/s"],
    );
    for len in [200, 1024, 16 * 1024, 64 * 1024] {
        let us = seal_open_micros(len);
        micro.row(vec![
            len.to_string(),
            format!("{us:.2}"),
            format!("{:.0}", len as f64 / us),
        ]);
    }
    vec![t, micro]
}
