//! Compact instants for per-peer state.
//!
//! A `std::time::Instant` is 16 bytes; a node holds several per peer, and a
//! simulator holds N² peers. A [`Stamp`] is 8: nanoseconds from a
//! process-wide epoch (the first instant ever stamped), signed so that an
//! instant before the epoch (a time computed backwards from a heartbeat's
//! reported age) still converts exactly. The range is ±292 years.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// An instant as nanoseconds from the process's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Stamp(i64);

impl Stamp {
    /// The latest stamp there is.
    pub(crate) const MAX: Stamp = Stamp(i64::MAX);

    /// The stamp of `at`.
    pub(crate) fn of(at: Instant) -> Stamp {
        let e = epoch();
        match at.checked_duration_since(e) {
            Some(d) => Stamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            None => Stamp(-i64::try_from((e - at).as_nanos()).unwrap_or(i64::MAX)),
        }
    }

    /// The instant this stamp stands for.
    pub(crate) fn instant(self) -> Instant {
        let e = epoch();
        if self.0 >= 0 {
            e + Duration::from_nanos(self.0 as u64)
        } else {
            e.checked_sub(Duration::from_nanos(self.0.unsigned_abs()))
                .unwrap_or(e)
        }
    }

    /// The stamp `ms` milliseconds later (fractions kept to the nanosecond).
    pub(crate) fn plus_ms(self, ms: f64) -> Stamp {
        Stamp(self.0.saturating_add((ms * 1e6) as i64))
    }

    /// Time from `earlier` to this stamp, zero if `earlier` is later.
    pub(crate) fn since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_order_like_instants() {
        let now = Instant::now();
        let before = now - Duration::from_millis(1500);
        let after = now + Duration::from_secs(3600);
        for at in [now, before, after] {
            assert_eq!(Stamp::of(at).instant(), at);
        }
        assert!(Stamp::of(before) < Stamp::of(now) && Stamp::of(now) < Stamp::of(after));
        assert_eq!(
            Stamp::of(now).since(Stamp::of(before)),
            Duration::from_millis(1500)
        );
        assert_eq!(Stamp::of(before).since(Stamp::of(now)), Duration::ZERO);
        assert_eq!(
            Stamp::of(now).plus_ms(2.5).instant(),
            now + Duration::from_micros(2500)
        );
    }
}
