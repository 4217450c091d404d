//! Phi accrual failure detection (Hayashibara et al. 2004), Akka's variant.
//!
//! Inter-arrival times of a peer's heartbeats are modelled as a normal
//! distribution with mean `mean + acceptable_pause` and standard deviation
//! `max(std_dev, min_std_dev)`; phi is `-log10(1 - F(elapsed))`, with F
//! approximated by a logistic function (no `erf` needed). A sample is
//! recorded once per heartbeat increase, never per relay that repeats it.
//!
//! Phi grows monotonically with the time since the last heartbeat, so the
//! moment it crosses the threshold is `mean + pause + y* · σ`, where `y*`
//! depends on the threshold alone. The engine computes that deadline once
//! per heartbeat instead of evaluating phi for every peer every round.

use std::time::{Duration, Instant};

use crate::stamp::Stamp;

/// Parameters shared by every detector of a node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhiParams {
    pub(crate) window: usize,
    pub(crate) min_std_dev_ms: f64,
    pub(crate) acceptable_pause_ms: f64,
    /// Standardised distance from the mean at which phi reaches the threshold.
    pub(crate) y_star: f64,
}

impl PhiParams {
    pub(crate) fn new(
        window: usize,
        min_std_dev_ms: f64,
        acceptable_pause_ms: f64,
        threshold: f64,
    ) -> PhiParams {
        PhiParams {
            window,
            min_std_dev_ms,
            acceptable_pause_ms,
            y_star: crossing(threshold),
        }
    }
}

/// Solves `phi(y) = threshold` for the logistic approximation: with
/// `e = 10^-t / (1 - 10^-t)`, `0.070566 y^3 + 1.5976 y = -ln(e)`; Newton's
/// method on a monotone cubic converges in a few steps.
pub(crate) fn crossing(threshold: f64) -> f64 {
    let p = 10f64.powf(-threshold);
    let l = ((1.0 - p) / p).ln();
    let mut y = l / 1.5976;
    for _ in 0..50 {
        let f = 0.070566 * y * y * y + 1.5976 * y - l;
        let d = 3.0 * 0.070566 * y * y + 1.5976;
        let next = y - f / d;
        if (next - y).abs() < 1e-12 {
            return next;
        }
        y = next;
    }
    y
}

/// Heartbeats a detector must have timed before it trusts its estimate.
const WARMUP_SAMPLES: u32 = 2;
/// How much longer a pause a detector accepts while warming up (Akka's
/// default pause is three intervals; ours, one).
const WARMUP_PAUSE_FACTOR: f64 = 3.0;

/// One peer's heartbeat history, in 24 bytes.
///
/// The inter-arrival mean and variance are kept as running estimates, not
/// as a window of samples: exact (Welford's running mean and population
/// variance, the seed sample included) until `window` samples have been
/// seen, then exponentially weighted with weight `1 / window`, which
/// forgets old rhythm at the rate a window of that size would. A node holds
/// one detector per peer, so a window of 100 `f64`s (800 bytes) per peer
/// was most of a node's memory at a few thousand peers.
#[derive(Debug, Clone)]
pub(crate) struct Detector {
    /// Samples in the estimate, the seed included (saturating): until
    /// [`WARMUP_SAMPLES`] heartbeats have been timed, the estimate is mostly
    /// the seed guess, while the first heartbeats of a peer just learned of
    /// still travel the cluster by slower paths than the one that
    /// introduced it, so the acceptable pause is widened.
    samples: u32,
    /// Mean inter-arrival, ms.
    mean: f32,
    /// Variance of the inter-arrival, ms².
    var: f32,
    /// When phi crosses the threshold, in ms after `last`.
    deadline_ms: f32,
    last: Stamp,
}

impl Detector {
    /// A detector seeded with one sample of `expected` (the gossip
    /// interval), the last heartbeat being `now`.
    pub(crate) fn new(now: Instant, expected: Duration, p: &PhiParams) -> Detector {
        let ms = expected.as_secs_f64() * 1000.0;
        let mut d = Detector {
            samples: 1,
            mean: ms as f32,
            var: 0.0,
            deadline_ms: 0.0,
            last: Stamp::of(now),
        };
        d.deadline_ms = d.compute_deadline_ms(p);
        d
    }

    /// Heartbeats timed so far (saturating).
    fn timed(&self) -> u32 {
        self.samples - 1
    }

    fn stats(&self, p: &PhiParams) -> (f64, f64) {
        let pause = if self.timed() < WARMUP_SAMPLES {
            p.acceptable_pause_ms * WARMUP_PAUSE_FACTOR
        } else {
            p.acceptable_pause_ms
        };
        let std_dev = f64::from(self.var).max(0.0).sqrt();
        (f64::from(self.mean) + pause, std_dev.max(p.min_std_dev_ms))
    }

    fn compute_deadline_ms(&self, p: &PhiParams) -> f32 {
        let (mean, std_dev) = self.stats(p);
        (mean + p.y_star * std_dev).clamp(0.0, 1e12) as f32
    }

    /// When the last heartbeat arrived (or the clock was last reset).
    pub(crate) fn last(&self) -> Instant {
        self.last.instant()
    }

    /// [`last`](Detector::last) as a stamp.
    pub(crate) fn last_stamp(&self) -> Stamp {
        self.last
    }

    /// The instant phi crosses the threshold unless a heartbeat comes first.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline_stamp().instant()
    }

    /// [`deadline`](Detector::deadline) as a stamp.
    pub(crate) fn deadline_stamp(&self) -> Stamp {
        self.last.plus_ms(f64::from(self.deadline_ms))
    }

    /// Records a new heartbeat arriving at `now`.
    #[cfg(test)]
    pub(crate) fn record(&mut self, now: Instant, p: &PhiParams) {
        self.record_at(Stamp::of(now), p);
    }

    /// [`record`](Detector::record) at a stamp: a caller that takes many
    /// heartbeats at one instant converts it once (the conversion was a
    /// tenth of an idle round's instructions).
    pub(crate) fn record_at(&mut self, now: Stamp, p: &PhiParams) {
        let x = now.since(self.last).as_secs_f64() * 1000.0;
        self.last = now;
        // Exact running mean and variance over the first `window` samples,
        // then weight 1/window: var' = (1 - a)(var + a·δ²).
        let k = (u64::from(self.samples) + 1).min(p.window.max(1) as u64);
        let a = 1.0 / k as f64;
        let (mean, var) = (f64::from(self.mean), f64::from(self.var));
        let delta = x - mean;
        self.mean = (mean + a * delta) as f32;
        self.var = ((1.0 - a) * (var + a * delta * delta)) as f32;
        self.samples = self.samples.saturating_add(1);
        self.deadline_ms = self.compute_deadline_ms(p);
    }

    /// Restarts the clock without a sample (a peer came back after a
    /// silence that says nothing about its normal rhythm).
    pub(crate) fn reset_clock(&mut self, now: Instant, p: &PhiParams) {
        self.reset_clock_at(Stamp::of(now), p);
    }

    /// [`reset_clock`](Detector::reset_clock) at a stamp.
    pub(crate) fn reset_clock_at(&mut self, now: Stamp, p: &PhiParams) {
        self.last = now;
        self.deadline_ms = self.compute_deadline_ms(p);
    }

    /// Phi at `now`.
    pub(crate) fn phi(&self, now: Instant, p: &PhiParams) -> f64 {
        let (mean, std_dev) = self.stats(p);
        let elapsed = Stamp::of(now).since(self.last).as_secs_f64() * 1000.0;
        phi(elapsed, mean, std_dev)
    }
}

/// Akka's logistic approximation of phi for a normal distribution.
pub(crate) fn phi(elapsed: f64, mean: f64, std_dev: f64) -> f64 {
    let y = (elapsed - mean) / std_dev;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    if elapsed > mean {
        -(e / (1.0 + e)).log10()
    } else {
        -(1.0 - 1.0 / (1.0 + e)).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> PhiParams {
        PhiParams::new(100, 50.0, 0.0, 8.0)
    }

    #[test]
    fn the_deadline_is_where_phi_crosses_the_threshold() {
        for threshold in [1.0, 3.0, 8.0, 12.0, 50.0] {
            let p = PhiParams::new(100, 50.0, 200.0, threshold);
            let t0 = Instant::now();
            let mut d = Detector::new(t0, Duration::from_millis(100), &p);
            for (i, gap) in [90u64, 120, 100, 80, 130, 95].iter().enumerate() {
                d.record(t0 + Duration::from_millis(gap * (i as u64 + 1)), &p);
            }
            let at = d.deadline();
            let before = d.phi(at - Duration::from_millis(1), &p);
            let after = d.phi(at + Duration::from_millis(1), &p);
            assert!(
                before < threshold && after > threshold,
                "threshold {threshold}: {before} .. {after}"
            );
        }
    }

    #[test]
    fn phi_rises_with_silence() {
        let p = params();
        let t0 = Instant::now();
        let mut d = Detector::new(t0, Duration::from_millis(100), &p);
        for i in 1..=20 {
            d.record(t0 + Duration::from_millis(100 * i), &p);
        }
        let last = t0 + Duration::from_millis(2000);
        let at = |ms| d.phi(last + Duration::from_millis(ms), &p);
        assert!(
            at(50) < 1.0,
            "phi soon after a heartbeat is low: {}",
            at(50)
        );
        assert!(at(200) > at(100));
        assert!(
            at(500) > 8.0,
            "phi after 5 missed intervals is high: {}",
            at(500)
        );
    }

    #[test]
    fn the_estimate_is_exact_within_the_window_and_then_follows_a_new_rhythm() {
        let p = PhiParams {
            window: 10,
            ..params()
        };
        let t0 = Instant::now();
        let mut d = Detector::new(t0, Duration::from_millis(100), &p);
        // Seed 100 plus 80, 120, 100: mean 100, population variance 200.
        let mut at = t0;
        for gap in [80u64, 120, 100] {
            at += Duration::from_millis(gap);
            d.record(at, &p);
        }
        assert!((f64::from(d.mean) - 100.0).abs() < 1e-3, "{}", d.mean);
        assert!((f64::from(d.var) - 200.0).abs() < 1e-2, "{}", d.var);
        // Long after the window filled, a new rhythm of 10 ms takes over.
        for _ in 0..200 {
            at += Duration::from_millis(10);
            d.record(at, &p);
        }
        assert!((f64::from(d.mean) - 10.0).abs() < 0.1, "{}", d.mean);
        assert!(f64::from(d.var) < 1.0, "{}", d.var);
        assert_eq!(std::mem::size_of::<Detector>(), 24);
    }

    #[test]
    fn a_new_detector_accepts_a_longer_pause_until_it_has_timed_heartbeats() {
        let p = PhiParams::new(100, 50.0, 100.0, 8.0);
        let t0 = Instant::now();
        let interval = Duration::from_millis(100);
        let mut d = Detector::new(t0, interval, &p);
        let warm = d.deadline() - t0;
        // Seed 100 ms + 3 x 100 ms pause + y* x 50 ms.
        let expected = 100.0 + 300.0 + p.y_star * 50.0;
        assert!(
            (warm.as_secs_f64() * 1000.0 - expected).abs() < 1.0,
            "{warm:?}"
        );
        let mut at = t0;
        for _ in 0..WARMUP_SAMPLES {
            at += interval;
            d.record(at, &p);
        }
        let settled = d.deadline() - at;
        assert!(
            (settled.as_secs_f64() * 1000.0 - (200.0 + p.y_star * 50.0)).abs() < 1.0,
            "{settled:?}"
        );
        assert!(settled < warm);
    }

    #[test]
    fn phi_matches_reference_points() {
        // At the mean, F = 0.5 so phi = log10(2).
        assert!((phi(100.0, 100.0, 10.0) - 2f64.log10()).abs() < 1e-9);
        // Far beyond the mean phi is large, and it is monotone.
        assert!(phi(160.0, 100.0, 10.0) > 8.0);
        assert!(phi(150.0, 100.0, 10.0) < phi(160.0, 100.0, 10.0));
    }
}
