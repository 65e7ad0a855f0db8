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

use std::collections::BTreeMap;

use serde::Serialize;

use crate::exit;
use crate::load::CycleLoad;
use crate::settle::Tolerance;
use crate::signal::{SourceKind, Unit, format_per_session, format_value, name, signed};
use crate::sources::{Reading, SignalSpec};

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

/// Heap profiles sampled more coarsely than this (bytes between samples)
/// are said to be coarse in the report: a 1 KiB-per-session leak over a few
/// hundred sessions gets only a sample or two at Go's default 512 KiB.
pub const COARSE_HEAP_SAMPLING: u64 = 64 * 1024;

/// Tolerance is at least this many times the idle spread seen before the
/// baseline, so a noisy target's own jitter never reads as growth.
pub const NOISE_FACTOR: f64 = 2.0;

/// Per-cycle floors of the deciding signals: what settle watches before a
/// baseline's idle noise is known.
pub fn floors(specs: &[SignalSpec]) -> Tolerance {
    specs
        .iter()
        .filter(|x| x.decides)
        .map(|x| (x.name.clone(), x.floor))
        .collect()
}

/// The tolerance per cycle: each floor, or [`NOISE_FACTOR`] times the idle
/// noise seen before the baseline when that is larger.
pub fn tolerance(floors: &Tolerance, idle_noise: &Tolerance) -> Tolerance {
    floors
        .iter()
        .map(|(name, floor)| {
            let noise = idle_noise.get(name).copied().unwrap_or(0.0);
            (name.clone(), floor.max(NOISE_FACTOR * noise))
        })
        .collect()
}

/// Judges every signal of a run from its baseline and measured readings
/// (a signal missing from a reading counts as zero).
pub fn judge_all(
    specs: &[SignalSpec],
    sessions: u32,
    baseline: &Reading,
    measured: &[Reading],
    tol: &Tolerance,
    still_falling: bool,
) -> Vec<SignalVerdict> {
    let get = |r: &Reading, name: &str| r.get(name).copied().unwrap_or(0.0);
    specs
        .iter()
        .map(|spec| {
            let series = Series {
                name: spec.name.clone(),
                unit: spec.unit,
                source: spec.source,
                decides: spec.decides,
                baseline: get(baseline, &spec.name),
                cycles: measured.iter().map(|r| get(r, &spec.name)).collect(),
                threshold: tol.get(&spec.name).copied().unwrap_or(spec.floor),
                still_changing: still_falling,
            };
            judge(&series, sessions)
        })
        .collect()
}

/// Why the load did not happen as specified, if it did not. `loads` holds
/// every cycle's load, each marked true when it was measured: the share of
/// failed sessions counts measured cycles, the causes named count all.
pub fn load_problem(loads: &[(bool, &CycleLoad)], max_ratio: f64) -> Option<String> {
    let (started, failed) = loads
        .iter()
        .filter(|(measured, _)| *measured)
        .fold((0u64, 0u64), |(s, f), (_, l)| (s + l.started, f + l.failed));
    if started == 0 {
        return Some("no session was started".to_owned());
    }
    let ratio = failed as f64 / started as f64;
    if ratio > max_ratio {
        let mut causes: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, l) in loads {
            for (k, v) in &l.failures {
                *causes.entry(k).or_default() += v;
            }
        }
        let causes: Vec<String> = causes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        return Some(format!(
            "the load did not happen as specified: {failed} of {started} sessions failed ({:.1}%, above {:.1}%: {})",
            ratio * 100.0,
            max_ratio * 100.0,
            causes.join(", ")
        ));
    }
    None
}

/// What is known about a run when its verdict is drawn.
#[derive(Debug, Default)]
pub struct RunEvidence<'a> {
    /// Every signal's verdict.
    pub signals: &'a [SignalVerdict],
    /// Whether every cycle ran (not interrupted, no error).
    pub complete: bool,
    /// Why the run stopped early: "interrupted during cycle 2/3", or the
    /// error's line.
    pub stopped: Option<String>,
    /// [`load_problem`]'s finding.
    pub load_problem: Option<String>,
    /// What the protocol noticed on the way (a late release).
    pub notes: Vec<String>,
    /// Heap figures were read without a forced GC (no pprof source).
    pub heap_without_gc: bool,
    /// The target's heap profile sampling rate, bytes, when known.
    pub heap_profile_rate: Option<u64>,
    /// Whether leakbench started the target (it then set
    /// GODEBUG=memprofilerate, which an old Go ignores).
    pub started_target: bool,
}

/// The overall verdict and its reasons, most important first.
pub fn conclude(e: RunEvidence<'_>) -> (Verdict, Vec<String>) {
    let verdict = if e.complete {
        overall(e.signals, e.load_problem.as_deref())
    } else {
        Verdict::Inconclusive
    };
    let mut reasons = e.notes;
    if let Some(stopped) = e.stopped {
        reasons.insert(0, stopped);
    }
    if e.complete {
        if let Some(f) = &e.load_problem {
            reasons.insert(0, f.clone());
        }
        for sig in e.signals {
            if sig.decides && sig.verdict == verdict && verdict != Verdict::Pass {
                reasons.push(format!("{} {}", sig.name, sig.reason));
            }
        }
        if verdict == Verdict::Pass {
            reasons.insert(0, "no signal grew from cycle to cycle".to_owned());
        }
    }
    if e.heap_without_gc {
        reasons.push(
            "heap figures come without a forced GC (no pprof source), so they include \
             garbage: shown, not judged"
                .to_owned(),
        );
    }
    let heap_flagged = e
        .signals
        .iter()
        .any(|x| x.name == name::HEAP_BYTES && x.decides && x.verdict != Verdict::Pass);
    if let Some(rate) = e.heap_profile_rate {
        if heap_flagged && rate > COARSE_HEAP_SAMPLING {
            let why = if e.started_target {
                "it ignored GODEBUG=memprofilerate, as Go before 1.20 does (golang/go#55100), \
                 or sets runtime.MemProfileRate itself"
            } else {
                "start it with GODEBUG=memprofilerate=4096 (Go 1.20 or later) for finer ones"
            };
            reasons.push(format!(
                "the target samples its heap profile once per {}: heap suspects for small \
                 leaks may be missing or coarse ({why}); the verdict reads exact counters",
                format_value(rate as f64, Unit::Bytes)
            ));
        }
    }
    (verdict, reasons)
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

    fn spec(name: &str, unit: Unit, decides: bool, floor: f64) -> SignalSpec {
        SignalSpec {
            name: name.to_owned(),
            unit,
            decides,
            floor,
            source: SourceKind::Pprof,
        }
    }

    fn reading(pairs: &[(&str, f64)]) -> Reading {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    fn load(started: u64, failed: u64, causes: &[(&str, u64)]) -> CycleLoad {
        CycleLoad {
            started,
            completed: started - failed,
            failed,
            failures: causes.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..CycleLoad::default()
        }
    }

    #[test]
    fn floors_watch_only_the_deciding_signals() {
        let specs = [
            spec(name::GOROUTINES, Unit::Count, true, 2.0),
            spec(name::STACK_BYTES, Unit::Bytes, false, 65_536.0),
        ];
        let f = floors(&specs);
        assert_eq!(f.len(), 1);
        assert_eq!(f[name::GOROUTINES], 2.0);
    }

    #[test]
    fn tolerance_is_the_floor_or_twice_the_idle_noise() {
        let floors = reading(&[(name::GOROUTINES, 2.0), (name::HEAP_BYTES, 65_536.0)]);
        let noise = reading(&[(name::HEAP_BYTES, 50_000.0)]);
        let t = tolerance(&floors, &noise);
        assert_eq!(t[name::GOROUTINES], 2.0, "no noise seen: the floor");
        assert_eq!(
            t[name::HEAP_BYTES],
            100_000.0,
            "noise above half the floor wins"
        );
    }

    #[test]
    fn judge_all_reads_each_signal_and_counts_a_missing_one_as_zero() {
        let specs = [
            spec(name::GOROUTINES, Unit::Count, true, 2.0),
            spec(name::FDS, Unit::Count, true, 2.0),
        ];
        let base = reading(&[(name::GOROUTINES, 10.0), (name::FDS, 9.0)]);
        let measured: Vec<Reading> = (1..=3)
            .map(|k| reading(&[(name::GOROUTINES, 10.0 + 200.0 * f64::from(k))]))
            .collect();
        let tol = reading(&[(name::GOROUTINES, 2.0)]);
        let v = judge_all(&specs, 200, &base, &measured, &tol, false);
        assert_eq!(v[0].verdict, Verdict::Leak);
        assert!(
            (v[0].per_session - 1.0).abs() < 1e-9,
            "{}",
            v[0].per_session
        );
        // fds absent from every measured reading: 0 after a baseline of 9.
        assert_eq!(v[1].cycles, vec![0.0, 0.0, 0.0]);
        assert_eq!(
            v[1].threshold, 2.0,
            "the spec's floor when tolerance has none"
        );
    }

    #[test]
    fn load_problem_counts_measured_cycles_and_names_every_cause() {
        let warm = load(100, 100, &[("refused", 100)]);
        let ok = load(200, 1, &[("reset", 1)]);
        assert_eq!(
            load_problem(&[(false, &warm), (true, &ok), (true, &ok)], 0.01),
            None,
            "1 of 200 per cycle is within 1%; the warm-up does not count"
        );
        let bad = load(200, 10, &[("timeout", 10)]);
        let why = load_problem(&[(false, &warm), (true, &bad)], 0.01).expect("5% failed");
        assert!(
            why.contains("10 of 200 sessions failed (5.0%, above 1.0%"),
            "{why}"
        );
        assert!(why.contains("refused 100, timeout 10"), "{why}");
        assert_eq!(
            load_problem(&[(false, &warm)], 0.01).as_deref(),
            Some("no session was started")
        );
    }

    fn leaking(name: &str) -> SignalVerdict {
        let mut s = series(100.0, &[300.0, 500.0, 700.0], 2.0);
        s.name = name.to_owned();
        judge(&s, 200)
    }

    #[test]
    fn conclude_puts_the_load_problem_first_and_names_the_leaking_signals() {
        let signals = [leaking(name::GOROUTINES)];
        let (v, reasons) = conclude(RunEvidence {
            signals: &signals,
            complete: true,
            ..RunEvidence::default()
        });
        assert_eq!(v, Verdict::Leak);
        assert!(
            reasons[0].starts_with("goroutines +600 over 3 cycles"),
            "{reasons:?}"
        );
        let (v, reasons) = conclude(RunEvidence {
            signals: &signals,
            complete: true,
            load_problem: Some("the load did not happen as specified".to_owned()),
            notes: vec!["released late".to_owned()],
            ..RunEvidence::default()
        });
        assert_eq!(v, Verdict::Inconclusive);
        assert_eq!(
            reasons,
            ["the load did not happen as specified", "released late"]
        );
    }

    #[test]
    fn conclude_says_why_a_partial_run_stopped_and_what_heap_figures_mean() {
        let signals = [leaking(name::HEAP_BYTES)];
        let (v, reasons) = conclude(RunEvidence {
            signals: &signals,
            complete: false,
            stopped: Some("interrupted during cycle 2/3".to_owned()),
            heap_without_gc: true,
            heap_profile_rate: Some(512 * 1024),
            started_target: false,
            ..RunEvidence::default()
        });
        assert_eq!(v, Verdict::Inconclusive);
        assert_eq!(reasons[0], "interrupted during cycle 2/3");
        assert!(
            reasons[1].starts_with("heap figures come without a forced GC"),
            "{reasons:?}"
        );
        assert!(reasons[2].contains("once per 512.0 KiB"), "{reasons:?}");
        assert!(
            reasons[2].contains("start it with GODEBUG=memprofilerate=4096"),
            "{reasons:?}"
        );
        let (v, reasons) = conclude(RunEvidence {
            signals: &[],
            complete: true,
            heap_profile_rate: Some(4096),
            ..RunEvidence::default()
        });
        assert_eq!(v, Verdict::Inconclusive, "no deciding signal at all");
        assert!(reasons.is_empty(), "{reasons:?}");
    }

    #[test]
    fn conclude_on_a_pass_says_so_first() {
        let signals = [judge(&series(100.0, &[101.0, 100.0, 101.0], 2.0), 200)];
        let (v, reasons) = conclude(RunEvidence {
            signals: &signals,
            complete: true,
            ..RunEvidence::default()
        });
        assert_eq!(v, Verdict::Pass);
        assert_eq!(reasons, ["no signal grew from cycle to cycle"]);
    }
}
