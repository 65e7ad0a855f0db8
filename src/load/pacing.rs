//! Arrival pacing (open model): when session number `n` of a cycle is meant
//! to start, for a rate of `r` sessions per second reached by a linear ramp
//! over `R` seconds.
//!
//! During the ramp the rate at time t is r·t/R, so the sessions started by
//! t number r·t²/(2R); session n starts at t = √(2Rn/r). After the ramp
//! (which starts r·R/2 sessions) they follow every 1/r seconds.

use std::time::Duration;

use crate::scenario::Rate;

/// When session `n` (from 0) should start, from the start of the cycle.
pub fn start_of(rate: Rate, n: u64) -> Duration {
    let r = rate.per_second;
    let ramp = rate.ramp.as_secs_f64();
    let n = n as f64;
    let during_ramp = r * ramp / 2.0;
    let t = if n < during_ramp {
        (2.0 * ramp * n / r).sqrt()
    } else {
        ramp + (n - during_ramp) / r
    };
    Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX)
}

/// When the last of `sessions` sessions should start.
pub fn last_start(rate: Rate, sessions: u32) -> Duration {
    start_of(rate, u64::from(sessions.saturating_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: f64, ramp_s: u64) -> Rate {
        Rate {
            per_second,
            ramp: Duration::from_secs(ramp_s),
        }
    }

    #[test]
    fn constant_rate_spaces_sessions_evenly() {
        let r = rate(100.0, 0);
        assert_eq!(start_of(r, 0), Duration::ZERO);
        assert_eq!(start_of(r, 1), Duration::from_millis(10));
        assert_eq!(start_of(r, 250), Duration::from_millis(2500));
        assert_eq!(last_start(r, 1000), Duration::from_millis(9990));
    }

    #[test]
    fn ramp_starts_slowly_then_joins_the_rate() {
        // 100/s reached over 10 s: 500 sessions during the ramp.
        let r = rate(100.0, 10);
        let s = |n| start_of(r, n).as_secs_f64();
        assert!((s(125) - 5.0).abs() < 1e-9, "{}", s(125));
        assert!((s(500) - 10.0).abs() < 1e-9, "{}", s(500));
        assert!((s(600) - 11.0).abs() < 1e-9, "{}", s(600));
        // Gaps shrink during the ramp.
        assert!(s(2) - s(1) > s(400) - s(399));
    }
}
