//! Phi accrual failure detection (Hayashibara et al. 2004), Akka's variant.
//!
//! Inter-arrival times of a peer's heartbeats are modelled as a normal
//! distribution with mean `mean + acceptable_pause` and standard deviation
//! `max(std_dev, min_std_dev)`; phi is `-log10(1 - F(elapsed))`, with F
//! approximated by a logistic function (no `erf` needed). A sample is
//! recorded once per heartbeat increase, never per relay that repeats it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Parameters shared by every detector of a node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhiParams {
    pub(crate) window: usize,
    pub(crate) min_std_dev_ms: f64,
    pub(crate) acceptable_pause_ms: f64,
}

/// One peer's heartbeat history.
#[derive(Debug, Clone)]
pub(crate) struct Detector {
    samples: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    last: Instant,
}

impl Detector {
    /// A detector whose window is seeded with one sample of `expected`
    /// (the gossip interval), the last heartbeat being `now`.
    pub(crate) fn new(now: Instant, expected: Duration) -> Detector {
        let ms = expected.as_secs_f64() * 1000.0;
        let mut samples = VecDeque::with_capacity(4);
        samples.push_back(ms);
        Detector {
            samples,
            sum: ms,
            sum_sq: ms * ms,
            last: now,
        }
    }

    /// Records a new heartbeat arriving at `now`.
    pub(crate) fn record(&mut self, now: Instant, p: &PhiParams) {
        let ms = now.saturating_duration_since(self.last).as_secs_f64() * 1000.0;
        self.last = now;
        if self.samples.len() >= p.window {
            if let Some(old) = self.samples.pop_front() {
                self.sum -= old;
                self.sum_sq -= old * old;
            }
        }
        self.samples.push_back(ms);
        self.sum += ms;
        self.sum_sq += ms * ms;
    }

    /// Restarts the clock without a sample (a peer came back after a
    /// silence that says nothing about its normal rhythm).
    pub(crate) fn reset_clock(&mut self, now: Instant) {
        self.last = now;
    }

    /// Phi at `now`.
    pub(crate) fn phi(&self, now: Instant, p: &PhiParams) -> f64 {
        let n = self.samples.len() as f64;
        let mean = self.sum / n;
        let var = (self.sum_sq / n - mean * mean).max(0.0);
        let std_dev = var.sqrt().max(p.min_std_dev_ms);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64() * 1000.0;
        phi(elapsed, mean + p.acceptable_pause_ms, std_dev)
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
        PhiParams {
            window: 100,
            min_std_dev_ms: 50.0,
            acceptable_pause_ms: 0.0,
        }
    }

    #[test]
    fn phi_rises_with_silence() {
        let p = params();
        let t0 = Instant::now();
        let mut d = Detector::new(t0, Duration::from_millis(100));
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
    fn window_is_bounded_and_sums_track_it() {
        let p = PhiParams {
            window: 3,
            ..params()
        };
        let t0 = Instant::now();
        let mut d = Detector::new(t0, Duration::from_millis(100));
        for i in 1..=10 {
            d.record(t0 + Duration::from_millis(10 * i), &p);
        }
        assert_eq!(d.samples.len(), 3);
        assert!((d.sum - 30.0).abs() < 1e-9);
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
