//! Settle: wait for the target to come back after a cycle's sessions closed.
//!
//! Polls the exact counters (one forced GC per poll) with backoff until they
//! are back within tolerance of the baseline, until they have stopped moving
//! (over a quiet window before the baseline; between two polls after a
//! cycle), or until the timeout. Stopped is not released: the retention
//! curve and the release horizon decide that, not one settle.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sources::{Reading, SourceError, Sources};

/// First pause between polls: sessions usually release within milliseconds.
const FIRST_POLL: Duration = Duration::from_millis(50);
/// Longest pause between polls; keeps the forced GCs to about one a second.
const MAX_POLL: Duration = Duration::from_secs(1);
/// Steady needs two polls at least this far apart: sessions' goroutines
/// exit within milliseconds of their close on loopback, and a drain still
/// under way moves the counters between polls this far apart.
const STEADY_GAP: Duration = Duration::from_millis(100);
/// History kept for the falling check when no quiet window is asked for.
const FALLING_WINDOW: Duration = Duration::from_secs(6);
/// Quiet window before the baseline: the target must hold still this long.
pub const BASELINE_QUIET: Duration = Duration::from_millis(1000);

/// Per-signal tolerance by signal name: changes within it are noise. The
/// signals a settle watches are the keys.
pub type Tolerance = BTreeMap<String, f64>;

/// What ended a settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Every signal was back within tolerance of baseline.
    Baseline,
    /// Nothing moved: for the quiet window, or between two polls when the
    /// goal asked for steady.
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
    /// The last reading seen.
    pub last: Reading,
    /// Per watched signal, the spread (max - min) over the final quiet
    /// window, or between the two polls that ended a steady settle: the
    /// target's own noise when it ended quiet.
    pub noise: Tolerance,
    /// Whether a signal was still falling when the timeout ran out.
    pub still_falling: bool,
}

/// What to wait for.
#[derive(Debug, Clone, Copy)]
pub struct Goal<'a> {
    /// Stop when back within tolerance of this; `None` before a baseline exists.
    pub baseline: Option<&'a Reading>,
    /// Stop when nothing moved this long; `None` to wait for baseline or timeout only.
    pub quiet: Option<Duration>,
    /// Stop when two polls, [`STEADY_GAP`] or more apart, agree within
    /// tolerance on every watched signal.
    pub steady: bool,
    /// The longest wait.
    pub timeout: Duration,
}

/// The watched values of a reading, in the tolerance's key order; a signal
/// missing from a reading counts as zero.
fn values(r: &Reading, tol: &Tolerance) -> Vec<f64> {
    tol.keys()
        .map(|k| r.get(k).copied().unwrap_or(0.0))
        .collect()
}

/// Polls `sources` until `goal` is met; `on_poll` sees every reading.
pub async fn settle(
    sources: &mut Sources,
    goal: Goal<'_>,
    tolerance: &Tolerance,
    mut on_poll: impl FnMut(&Reading),
) -> Result<Settled, SourceError> {
    let start = Instant::now();
    let tol: Vec<f64> = tolerance.values().copied().collect();
    let n = tol.len();
    let mut history: Vec<(Instant, Vec<f64>)> = Vec::new();
    let mut pause = FIRST_POLL;
    let mut polls = 0;
    loop {
        let reading = sources.sample().await?;
        polls += 1;
        on_poll(&reading);
        let now = Instant::now();
        let v = values(&reading, tolerance);
        history.push((now, v.clone()));
        // Keep only what the quiet window and the falling check can look at.
        let keep = goal.quiet.unwrap_or(FALLING_WINDOW).max(FALLING_WINDOW);
        while history.len() > 2 && now.duration_since(history[1].0) > keep {
            history.remove(0);
        }

        let done = |ending: Ending, still_falling: bool, noise: Vec<f64>| Settled {
            ending,
            seconds: start.elapsed().as_secs_f64(),
            polls,
            last: reading.clone(),
            noise: tolerance
                .keys()
                .cloned()
                .zip(noise.into_iter().chain(std::iter::repeat(0.0)))
                .collect(),
            still_falling,
        };

        if let Some(base) = goal.baseline {
            let b = values(base, tolerance);
            if (0..n).all(|i| v[i] <= b[i] + tol[i]) {
                return Ok(done(Ending::Baseline, false, Vec::new()));
            }
        }
        if let Some(quiet) = goal.quiet {
            if let Some(spread) = quiet_spread(&history, now, quiet) {
                if (0..n).all(|i| spread[i] <= tol[i]) {
                    return Ok(done(Ending::Quiet, false, spread));
                }
            }
        }
        if goal.steady && history.len() >= 2 {
            let (t0, prev) = &history[history.len() - 2];
            if now.duration_since(*t0) >= STEADY_GAP {
                let moved: Vec<f64> = (0..n).map(|i| (v[i] - prev[i]).abs()).collect();
                if (0..n).all(|i| moved[i] <= tol[i]) {
                    return Ok(done(Ending::Quiet, false, moved));
                }
            }
        }
        if now.duration_since(start) >= goal.timeout {
            let still_falling = falling(&history, &tol);
            return Ok(done(Ending::Timeout, still_falling, Vec::new()));
        }
        let remaining = goal.timeout.saturating_sub(now.duration_since(start));
        tokio::time::sleep(pause.min(remaining)).await;
        pause = (pause * 3 / 2).min(MAX_POLL);
    }
}

/// The spread of each signal over the last `window`, if the history covers it.
fn quiet_spread(
    history: &[(Instant, Vec<f64>)],
    now: Instant,
    window: Duration,
) -> Option<Vec<f64>> {
    let first = history.first()?;
    if now.duration_since(first.0) < window {
        return None;
    }
    let in_window: Vec<&Vec<f64>> = history
        .iter()
        .filter(|(t, _)| now.duration_since(*t) <= window)
        .map(|(_, v)| v)
        .collect();
    if in_window.len() < 3 {
        return None;
    }
    let n = in_window[0].len();
    Some(
        (0..n)
            .map(|i| {
                let max = in_window.iter().map(|v| v[i]).fold(f64::MIN, f64::max);
                let min = in_window.iter().map(|v| v[i]).fold(f64::MAX, f64::min);
                max - min
            })
            .collect(),
    )
}

/// Whether any signal fell by more than its tolerance across the kept history.
fn falling(history: &[(Instant, Vec<f64>)], tol: &[f64]) -> bool {
    match (history.first(), history.last()) {
        (Some((_, first)), Some((_, last))) => (0..tol.len()).any(|i| first[i] - last[i] > tol[i]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64, v: &[f64]) -> (Instant, Vec<f64>) {
        (base + Duration::from_millis(ms), v.to_vec())
    }

    #[test]
    fn quiet_needs_the_whole_window_and_three_polls() {
        let t0 = Instant::now();
        let h = vec![at(t0, 0, &[5.0, 100.0]), at(t0, 500, &[5.0, 100.0])];
        let now = t0 + Duration::from_millis(500);
        assert!(quiet_spread(&h, now, Duration::from_secs(1)).is_none());
        let h = vec![
            at(t0, 0, &[5.0, 100.0]),
            at(t0, 600, &[6.0, 90.0]),
            at(t0, 1200, &[5.0, 120.0]),
        ];
        let now = t0 + Duration::from_millis(1200);
        assert_eq!(quiet_spread(&h, now, Duration::from_secs(2)), None);
        assert_eq!(
            quiet_spread(&h, now, Duration::from_millis(1200)),
            Some(vec![1.0, 30.0])
        );
    }

    #[test]
    fn falling_compares_first_and_last_against_tolerance() {
        let t0 = Instant::now();
        let tol = [1.0, 10.0];
        let h = vec![at(t0, 0, &[50.0, 100.0]), at(t0, 900, &[40.0, 100.0])];
        assert!(falling(&h, &tol));
        let h = vec![at(t0, 0, &[50.0, 100.0]), at(t0, 900, &[50.0, 95.0])];
        assert!(!falling(&h, &tol));
    }

    #[test]
    fn missing_signals_read_as_zero_in_tolerance_order() {
        let tol: Tolerance = [("b".to_owned(), 1.0), ("a".to_owned(), 2.0)].into();
        let r: Reading = [("a".to_owned(), 7.0), ("z".to_owned(), 9.0)].into();
        assert_eq!(values(&r, &tol), vec![7.0, 0.0]);
    }
}
