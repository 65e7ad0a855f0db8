//! Settle: wait for the target to come back after a cycle's sessions closed.
//!
//! Polls the exact counters (one forced GC per poll) with backoff until they
//! are back within tolerance of the baseline, until they have stopped moving
//! for a quiet window (a leaking target must not cost the full timeout every
//! cycle), or until the timeout. Flat is not settled: the caller waits out
//! the full timeout once more before it declares a leak.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::probe::{Counters, Probe, ProbeError};

/// First pause between polls: sessions usually release within milliseconds.
const FIRST_POLL: Duration = Duration::from_millis(50);
/// Longest pause between polls; keeps the forced GCs to about one a second.
const MAX_POLL: Duration = Duration::from_secs(1);
/// Quiet window after a measured cycle: longer than the few-second release
/// windows (reconnect grace, deferred close) that must pass with defaults.
pub const CYCLE_QUIET: Duration = Duration::from_secs(6);
/// Quiet window before the baseline: the target must hold still this long.
pub const BASELINE_QUIET: Duration = Duration::from_millis(1500);

/// Per-signal tolerance: changes within it are noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// Goroutines.
    pub goroutines: f64,
    /// Live heap bytes.
    pub heap_bytes: f64,
    /// Live heap objects.
    pub heap_objects: f64,
    /// Open file descriptors (when the target's pid is known).
    pub fds: f64,
}

/// What ended a settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Every signal was back within tolerance of baseline.
    Baseline,
    /// Nothing moved for the quiet window.
    Quiet,
    /// The timeout ran out.
    Timeout,
}

/// How a settle went.
#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    /// What ended it.
    pub ending: Ending,
    /// How long it took, seconds.
    pub seconds: f64,
    /// Polls made.
    pub polls: u32,
    /// The last counters seen.
    pub last: Counters,
    /// Per signal, the spread (max - min) over the final quiet window:
    /// the target's idle noise when it ended quiet.
    pub noise: Tolerance,
    /// Whether a signal was still falling when the timeout ran out.
    pub still_falling: bool,
}

/// What to wait for.
#[derive(Debug, Clone, Copy)]
pub struct Goal<'a> {
    /// Stop when back within tolerance of this; `None` before a baseline exists.
    pub baseline: Option<&'a Counters>,
    /// Stop when nothing moved this long; `None` to wait for baseline or timeout only.
    pub quiet: Option<Duration>,
    /// The longest wait.
    pub timeout: Duration,
}

/// Signals a settle watches, in the order of [`values`] and [`tolerances`].
const WATCHED: usize = 4;

fn values(c: &Counters) -> [f64; WATCHED] {
    [
        c.goroutines as f64,
        c.heap_bytes as f64,
        c.heap_objects as f64,
        c.process.map_or(0.0, |p| p.fds as f64),
    ]
}

fn tolerances(t: &Tolerance) -> [f64; WATCHED] {
    [t.goroutines, t.heap_bytes, t.heap_objects, t.fds]
}

/// Polls `probe` until `goal` is met; `on_poll` sees every sample (for progress).
pub async fn settle(
    probe: &mut Probe,
    goal: Goal<'_>,
    tolerance: &Tolerance,
    mut on_poll: impl FnMut(&Counters),
) -> Result<Settled, ProbeError> {
    let start = Instant::now();
    let tol = tolerances(tolerance);
    let mut history: Vec<(Instant, [f64; WATCHED])> = Vec::new();
    let mut pause = FIRST_POLL;
    let mut polls = 0;
    loop {
        let counters = probe.sample().await?;
        polls += 1;
        on_poll(&counters);
        let now = Instant::now();
        let v = values(&counters);
        history.push((now, v));
        // Keep only what the quiet window and the falling check can look at.
        let keep = goal.quiet.unwrap_or(CYCLE_QUIET).max(CYCLE_QUIET);
        while history.len() > 2 && now.duration_since(history[1].0) > keep {
            history.remove(0);
        }

        let done = |ending: Ending, still_falling: bool, noise: [f64; WATCHED]| Settled {
            ending,
            seconds: start.elapsed().as_secs_f64(),
            polls,
            last: counters,
            noise: Tolerance {
                goroutines: noise[0],
                heap_bytes: noise[1],
                heap_objects: noise[2],
                fds: noise[3],
            },
            still_falling,
        };

        if let Some(base) = goal.baseline {
            let b = values(base);
            if (0..WATCHED).all(|i| v[i] <= b[i] + tol[i]) {
                return Ok(done(Ending::Baseline, false, [0.0; WATCHED]));
            }
        }
        if let Some(quiet) = goal.quiet {
            if let Some(spread) = quiet_spread(&history, now, quiet) {
                if (0..WATCHED).all(|i| spread[i] <= tol[i]) {
                    return Ok(done(Ending::Quiet, false, spread));
                }
            }
        }
        if now.duration_since(start) >= goal.timeout {
            let still_falling = falling(&history, &tol);
            return Ok(done(Ending::Timeout, still_falling, [0.0; WATCHED]));
        }
        let remaining = goal.timeout.saturating_sub(now.duration_since(start));
        tokio::time::sleep(pause.min(remaining)).await;
        pause = (pause * 3 / 2).min(MAX_POLL);
    }
}

/// The spread of each signal over the last `window`, if the history covers it.
fn quiet_spread(
    history: &[(Instant, [f64; WATCHED])],
    now: Instant,
    window: Duration,
) -> Option<[f64; WATCHED]> {
    let first = history.first()?;
    if now.duration_since(first.0) < window {
        return None;
    }
    let in_window: Vec<&[f64; WATCHED]> = history
        .iter()
        .filter(|(t, _)| now.duration_since(*t) <= window)
        .map(|(_, v)| v)
        .collect();
    if in_window.len() < 3 {
        return None;
    }
    let mut spread = [0.0; WATCHED];
    for (i, s) in spread.iter_mut().enumerate() {
        let max = in_window.iter().map(|v| v[i]).fold(f64::MIN, f64::max);
        let min = in_window.iter().map(|v| v[i]).fold(f64::MAX, f64::min);
        *s = max - min;
    }
    Some(spread)
}

/// Whether any signal fell by more than its tolerance across the kept history.
fn falling(history: &[(Instant, [f64; WATCHED])], tol: &[f64; WATCHED]) -> bool {
    match (history.first(), history.last()) {
        (Some((_, first)), Some((_, last))) => (0..WATCHED).any(|i| first[i] - last[i] > tol[i]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64, v: [f64; WATCHED]) -> (Instant, [f64; WATCHED]) {
        (base + Duration::from_millis(ms), v)
    }

    #[test]
    fn quiet_needs_the_whole_window_and_three_polls() {
        let t0 = Instant::now();
        let h = vec![
            at(t0, 0, [5.0, 100.0, 1.0, 9.0]),
            at(t0, 500, [5.0, 100.0, 1.0, 9.0]),
        ];
        assert!(
            quiet_spread(&h, t0 + Duration::from_millis(500), Duration::from_secs(1)).is_none()
        );
        let h = vec![
            at(t0, 0, [5.0, 100.0, 1.0, 9.0]),
            at(t0, 600, [6.0, 90.0, 1.0, 9.0]),
            at(t0, 1200, [5.0, 120.0, 1.0, 10.0]),
        ];
        let spread = quiet_spread(&h, t0 + Duration::from_millis(1200), Duration::from_secs(2));
        assert_eq!(spread, None, "history shorter than the window");
        let spread = quiet_spread(
            &h,
            t0 + Duration::from_millis(1200),
            Duration::from_millis(1200),
        );
        assert_eq!(spread, Some([1.0, 30.0, 0.0, 1.0]));
    }

    #[test]
    fn falling_compares_first_and_last_against_tolerance() {
        let t0 = Instant::now();
        let tol = [1.0, 10.0, 1.0, 1.0];
        let h = vec![
            at(t0, 0, [50.0, 100.0, 5.0, 9.0]),
            at(t0, 900, [40.0, 100.0, 5.0, 9.0]),
        ];
        assert!(falling(&h, &tol));
        let h = vec![
            at(t0, 0, [50.0, 100.0, 5.0, 9.0]),
            at(t0, 900, [50.0, 95.0, 5.0, 9.0]),
        ];
        assert!(!falling(&h, &tol));
    }
}
