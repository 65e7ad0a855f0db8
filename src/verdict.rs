//! Verdict: series of exact counters in, a verdict per signal and overall out.
//!
//! Pure and small on purpose: no I/O, so every rule is unit-tested here.
//!
//! A signal is measured at baseline and after each measured cycle, each time
//! after the target settled and after forced GCs. A *leak* is growth that
//! goes on cycle after cycle: every one of the last cycles added more than
//! half a threshold, and the total is above a whole one (and above any fall
//! seen between cycles, which shows the target's noise after load). A cache
//! that fills and then holds, or state released late, leaves a flat or
//! falling tail, or wobbles below an earlier high, and passes. Growth that is
//! neither steady nor flat is *inconclusive*, said as such rather than
//! guessed.

use serde::Serialize;

use crate::exit;
use crate::signal::{SourceKind, Unit, format_per_session, format_value, signed};

/// The three outcomes, ordered by how much they demand attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Everything came back.
    Pass,
    /// The evidence does not support either answer.
    Inconclusive,
    /// Something grows with every cycle of load.
    Leak,
}

impl Verdict {
    /// The process exit code for this verdict (errors are 2).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => exit::PASS,
            Verdict::Leak => exit::LEAK,
            Verdict::Inconclusive => exit::INCONCLUSIVE,
        }
    }

    /// Lower-case name, as in report.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Leak => "leak",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One signal's measurements, ready to judge.
#[derive(Debug, Clone)]
pub struct Series {
    /// Signal name, e.g. `goroutines`.
    pub name: String,
    /// Unit of the values.
    pub unit: Unit,
    /// Where it was read.
    pub source: SourceKind,
    /// Whether this signal takes part in the overall verdict (exact counters
    /// do; lagging ones such as RSS are shown only).
    pub decides: bool,
    /// Value at baseline.
    pub baseline: f64,
    /// Value after each measured cycle.
    pub cycles: Vec<f64>,
    /// Growth per cycle below which a change is noise.
    pub threshold: f64,
    /// Set when the last settle ran out while this signal was still falling.
    pub still_changing: bool,
}

/// The verdict on one signal, with the figures behind it.
#[derive(Debug, Clone, Serialize)]
pub struct SignalVerdict {
    /// Signal name.
    pub name: String,
    /// Unit of every value below.
    pub unit: Unit,
    /// Where it was read.
    pub source: SourceKind,
    /// This signal's verdict.
    pub verdict: Verdict,
    /// Whether it takes part in the overall verdict.
    pub decides: bool,
    /// Value at baseline.
    pub baseline: f64,
    /// Value after each measured cycle.
    pub cycles: Vec<f64>,
    /// Last value minus baseline.
    pub growth: f64,
    /// Least-squares growth per cycle over baseline and cycles.
    pub per_cycle: f64,
    /// `per_cycle` divided by sessions per cycle.
    pub per_session: f64,
    /// Growth per cycle that counts as real for this signal.
    pub threshold: f64,
    /// One sentence on why.
    pub reason: String,
}

/// Fewest measured cycles a leak verdict rests on. Growth over the first
/// cycle after warm-up can be a fill still completing (goroutine descriptors
/// and pooled buffers kept at a new high-water mark), so the growth judged
/// must go on past it: at least two cycles after the first.
pub const MIN_CYCLES_FOR_LEAK: usize = 3;

/// Judges one signal; `sessions` is the number of sessions per cycle.
pub fn judge(series: &Series, sessions: u32) -> SignalVerdict {
    let Series {
        ref name,
        unit,
        source,
        decides,
        baseline,
        ref cycles,
        threshold,
        still_changing,
    } = *series;
    let k = cycles.len();
    let last = cycles.last().copied().unwrap_or(baseline);
    let growth = last - baseline;
    let per_cycle = slope(baseline, cycles);
    let per_session = per_cycle / f64::from(sessions.max(1));

    let mut points = Vec::with_capacity(k + 1);
    points.push(baseline);
    points.extend_from_slice(cycles);
    let deltas: Vec<f64> = points.windows(2).map(|w| w[1] - w[0]).collect();
    // The tail is the most recent half of the cycles, at least two: growth
    // confined to the first cycles is a fill, not a leak.
    let tail_len = k.div_ceil(2).max(2).min(k);
    let tail = &deltas[k - tail_len..];

    // Half a threshold per cycle, sustained over the tail and adding up to
    // more than a whole one, is growth; exact counters make that safe.
    let back = growth <= threshold;
    let steady_over = |thr: f64| k >= 2 && tail.iter().all(|d| *d > thr / 2.0) && growth > thr;
    // A leak only adds, so a fall between two settled measurements is noise
    // the target makes after load (heap objects wobble with timing; idle
    // noise at baseline does not show it). Growth no bigger than such a fall
    // is not evidence of a leak: it is judged against the larger of the two.
    let fall = deltas.iter().fold(0.0_f64, |m, d| m.max(-d));
    let steady = steady_over(threshold);
    let noisy = steady && !steady_over(threshold.max(fall));
    let flat_tail =
        tail.iter().all(|d| *d <= threshold / 2.0) || plateau(&points, tail_len, threshold);

    let fmt = |v: f64| format_value(v, unit);
    let (verdict, reason) = if back {
        (
            Verdict::Pass,
            format!(
                "back within {} of baseline ({} over {k} cycles)",
                fmt(threshold),
                signed(growth, unit)
            ),
        )
    } else if noisy {
        (
            Verdict::Inconclusive,
            format!(
                "{} over {k} cycles, but it also fell by {} between cycles: growth within the noise after load; run more cycles",
                signed(growth, unit),
                fmt(fall)
            ),
        )
    } else if steady && k < MIN_CYCLES_FOR_LEAK {
        (
            Verdict::Inconclusive,
            format!(
                "{} over {k} cycles, but a fill still completing after warm-up (the runtime keeping a new high-water mark) looks the same over so few; run more cycles",
                signed(growth, unit)
            ),
        )
    } else if steady && still_changing {
        (
            Verdict::Inconclusive,
            format!(
                "{} over {k} cycles, but still falling when settle timed out; raise settle.timeout",
                signed(growth, unit)
            ),
        )
    } else if steady {
        (
            Verdict::Leak,
            format!(
                "{} over {k} cycles, {} per cycle, {} per session",
                signed(growth, unit),
                fmt(per_cycle),
                format_per_session(per_session, unit)
            ),
        )
    } else if flat_tail {
        (
            Verdict::Pass,
            format!(
                "rose {} then held flat for the last {tail_len} cycles (bounded, e.g. a cache filling)",
                fmt(growth)
            ),
        )
    } else {
        (
            Verdict::Inconclusive,
            format!(
                "irregular growth ({} over {k} cycles, per-cycle changes {}); run more cycles",
                signed(growth, unit),
                deltas
                    .iter()
                    .map(|d| signed(*d, unit))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    SignalVerdict {
        name: name.clone(),
        unit,
        source,
        verdict,
        decides,
        baseline,
        cycles: cycles.clone(),
        growth,
        per_cycle,
        per_session,
        threshold,
        reason,
    }
}

/// A noisy plateau: over the last `tail_len` cycles the series went up and
/// down by more than half a threshold, yet never rose above the highest
/// earlier value by more than that and ended no higher than it began. A heap
/// whose high-water allocations (goroutine descriptors, pool buffers) wobble
/// with timing does this; a leak sets a new high every cycle.
fn plateau(points: &[f64], tail_len: usize, threshold: f64) -> bool {
    let start = points.len() - 1 - tail_len;
    let earlier_high = points[..=start].iter().copied().fold(f64::MIN, f64::max);
    let tail = &points[start + 1..];
    let no_new_high = tail.iter().all(|v| *v <= earlier_high + threshold / 2.0);
    let net = points[points.len() - 1] - points[start];
    no_new_high && net <= threshold / 2.0
}

/// Combines signal verdicts: any deciding leak is a leak; otherwise any
/// deciding inconclusive signal is inconclusive. `load_problem` (the load did
/// not happen as specified) makes the whole run inconclusive, whatever the
/// signals say, because the growth cannot be tied to the load that ran.
pub fn overall(signals: &[SignalVerdict], load_problem: Option<&str>) -> Verdict {
    if load_problem.is_some() {
        return Verdict::Inconclusive;
    }
    signals
        .iter()
        .filter(|s| s.decides)
        .map(|s| s.verdict)
        .max()
        .unwrap_or(Verdict::Inconclusive)
}

/// Least-squares slope of baseline followed by the cycles, per cycle.
fn slope(baseline: f64, cycles: &[f64]) -> f64 {
    let n = cycles.len() + 1;
    if n < 2 {
        return 0.0;
    }
    let ys = std::iter::once(baseline).chain(cycles.iter().copied());
    let mean_x = (n - 1) as f64 / 2.0;
    let mean_y = (baseline + cycles.iter().sum::<f64>()) / n as f64;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in ys.enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    num / den
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::name;

    fn series(baseline: f64, cycles: &[f64], threshold: f64) -> Series {
        Series {
            name: name::GOROUTINES.to_owned(),
            unit: Unit::Count,
            source: SourceKind::Pprof,
            decides: true,
            baseline,
            cycles: cycles.to_vec(),
            threshold,
            still_changing: false,
        }
    }

    fn verdict_of(baseline: f64, cycles: &[f64], threshold: f64) -> Verdict {
        judge(&series(baseline, cycles, threshold), 200).verdict
    }

    #[test]
    fn steady_growth_is_a_leak_with_per_session_rate() {
        let v = judge(&series(10.0, &[210.0, 410.0, 610.0], 2.0), 200);
        assert_eq!(v.verdict, Verdict::Leak);
        assert!((v.per_cycle - 200.0).abs() < 1e-9);
        assert!((v.per_session - 1.0).abs() < 1e-9);
        assert!(v.reason.starts_with("+600 over 3 cycles"), "{}", v.reason);
    }

    #[test]
    fn two_cycles_of_growth_are_not_yet_a_leak() {
        // benchsrv in CI: heap objects still filling after one warm-up cycle.
        let v = judge(&series(819.0, &[957.0, 1087.0], 256.0), 200);
        assert_eq!(v.verdict, Verdict::Inconclusive);
        assert!(v.reason.contains("run more cycles"), "{}", v.reason);
        // More cycles show the fill was over.
        assert_eq!(
            verdict_of(819.0, &[957.0, 1087.0, 1080.0, 1085.0, 1079.0], 256.0),
            Verdict::Pass
        );
        // A leak keeps growing through the third.
        assert_eq!(verdict_of(10.0, &[210.0, 410.0, 610.0], 2.0), Verdict::Leak);
    }

    #[test]
    fn small_steady_leak_just_above_threshold_is_caught() {
        // 3 goroutines per cycle against a threshold of 2.
        assert_eq!(verdict_of(10.0, &[13.0, 16.0, 19.0], 2.0), Verdict::Leak);
    }

    #[test]
    fn noise_around_baseline_passes() {
        assert_eq!(verdict_of(10.0, &[11.0, 9.0, 12.0], 2.0), Verdict::Pass);
        assert_eq!(verdict_of(10.0, &[13.0, 9.0, 11.0], 2.0), Verdict::Pass);
        assert_eq!(verdict_of(10.0, &[10.0, 10.0, 10.0], 2.0), Verdict::Pass);
    }

    #[test]
    fn cache_that_fills_once_passes() {
        let v = judge(&series(1000.0, &[5000.0, 5010.0, 5005.0], 100.0), 200);
        assert_eq!(v.verdict, Verdict::Pass);
        assert!(v.reason.contains("held flat"), "{}", v.reason);
    }

    #[test]
    fn late_release_falling_back_passes() {
        assert_eq!(verdict_of(10.0, &[210.0, 410.0, 10.0], 2.0), Verdict::Pass);
    }

    #[test]
    fn growth_only_in_last_cycle_is_inconclusive() {
        assert_eq!(
            verdict_of(10.0, &[10.0, 10.0, 300.0], 2.0),
            Verdict::Inconclusive
        );
    }

    #[test]
    fn steady_growth_of_half_a_threshold_is_a_leak() {
        // One goroutine per 100 sessions at 200 sessions a cycle.
        assert_eq!(verdict_of(10.0, &[12.0, 14.0, 16.0], 2.0), Verdict::Leak);
        // Below half a threshold per cycle is under the detection floor.
        assert_eq!(verdict_of(10.0, &[11.0, 12.0, 13.0], 2.0), Verdict::Pass);
    }

    #[test]
    fn leak_still_falling_at_timeout_is_inconclusive() {
        let mut s = series(10.0, &[210.0, 410.0, 610.0], 2.0);
        s.still_changing = true;
        assert_eq!(judge(&s, 200).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn longer_runs_judge_the_recent_half() {
        // Filled over the first three of six cycles, flat after.
        assert_eq!(
            verdict_of(0.0, &[100.0, 200.0, 300.0, 300.0, 301.0, 299.0], 10.0),
            Verdict::Pass
        );
        assert_eq!(
            verdict_of(0.0, &[0.0, 0.0, 0.0, 100.0, 200.0, 300.0], 10.0),
            Verdict::Leak
        );
    }

    #[test]
    fn noisy_plateau_passes_but_a_new_high_does_not() {
        // respbody -fixed in CI: goroutine descriptors kept by the runtime
        // rise to a high-water mark, then heap objects wobble below it.
        let cycles = [2337.0, 2537.0, 2704.0, 2683.0, 2436.0, 2655.0];
        assert_eq!(verdict_of(2059.0, &cycles, 256.0), Verdict::Pass);
        // The same wobble ending above the earlier high is not a plateau.
        let cycles = [2337.0, 2537.0, 2704.0, 2683.0, 2436.0, 2900.0];
        assert_eq!(verdict_of(2059.0, &cycles, 256.0), Verdict::Inconclusive);
        // Nor is a dip followed by a climb back to the high.
        assert_ne!(
            verdict_of(0.0, &[600.0, 100.0, 300.0, 600.0], 256.0),
            Verdict::Pass
        );
        // A leak under noise keeps setting new highs and never passes.
        let noisy_leak = [300.0, 450.0, 800.0, 900.0, 1250.0, 1400.0];
        assert_ne!(verdict_of(0.0, &noisy_leak, 256.0), Verdict::Pass);
    }

    #[test]
    fn growth_no_bigger_than_a_fall_between_cycles_is_not_a_leak() {
        // nats-server in CI: heap objects after 2,000 sessions a cycle.
        let v = judge(&series(51783.0, &[51523.0, 51667.0, 52040.0], 256.0), 2000);
        assert_eq!(v.verdict, Verdict::Inconclusive);
        assert!(v.reason.contains("fell by 260"), "{}", v.reason);
        // A steady leak with one release along the way is still a leak.
        let sawtooth = [210.0, 410.0, 310.0, 510.0, 710.0, 910.0];
        assert_eq!(verdict_of(10.0, &sawtooth, 2.0), Verdict::Leak);
    }

    #[test]
    fn overall_takes_the_worst_deciding_signal() {
        let leak = judge(&series(0.0, &[100.0, 200.0, 300.0], 2.0), 100);
        let pass = judge(&series(0.0, &[0.0, 0.0, 0.0], 2.0), 100);
        let mut shown_only = leak.clone();
        shown_only.decides = false;
        assert_eq!(overall(&[pass.clone(), leak.clone()], None), Verdict::Leak);
        assert_eq!(overall(&[pass.clone(), shown_only], None), Verdict::Pass);
        assert_eq!(
            overall(&[pass, leak], Some("3% of sessions failed")),
            Verdict::Inconclusive
        );
        assert_eq!(overall(&[], None), Verdict::Inconclusive);
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Verdict::Pass.exit_code(), 0);
        assert_eq!(Verdict::Leak.exit_code(), 1);
        assert_eq!(Verdict::Inconclusive.exit_code(), 3);
    }
}
