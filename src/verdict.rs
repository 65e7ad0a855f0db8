//! Verdict: retention curves in, a verdict per signal and overall out.
//!
//! Pure: no I/O, so every rule is unit-tested here.
//!
//! Each signal is read at baseline and after each measured cycle, after the
//! target settled and after forced GCs: a retention curve of value against
//! sessions served (see [`crate::curve`]). A curve back within its noise
//! band passes; one that rose and then held flat while the sessions at
//! least doubled is *bounded* and passes with its bound stated. A curve
//! still rising in proportion to the sessions is a *leak* once it has done
//! so over the whole session budget (or, when the time budget ran out, over
//! [`MIN_RANGE_CYCLES`] cycles' worth) and its state outlived the release
//! horizon with no load. State released within the horizon is back. What
//! none of these describe is *inconclusive*, with the budget that ran out.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::curve::{self, Point, Shape, Slope};
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

/// Why a curve stopped gaining sessions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stop {
    /// Every deciding signal's shape was decided.
    Decided,
    /// `verdict.max_sessions` was reached.
    Sessions {
        /// The budget, measured sessions.
        max: u64,
    },
    /// `verdict.max_time` ran out first.
    Time {
        /// The budget, seconds.
        max_s: f64,
    },
    /// The target's open-file limit would have been reached by the next cycle.
    FdLimit {
        /// The target's soft limit.
        limit: u64,
    },
    /// `verdict.escalate = false`: the scenario's cycles only.
    Off,
    /// More sessions failed than `load.max_failure_ratio` allows: the run
    /// is inconclusive whatever the curves say, so no more load is added.
    Load,
}

impl Stop {
    /// Whether a curve still rising at this stop has risen over every
    /// session the run was allowed: a retention that large counts as a leak.
    fn spent_the_sessions(self) -> bool {
        matches!(
            self,
            Stop::Sessions { .. } | Stop::FdLimit { .. } | Stop::Off
        )
    }

    /// What ran out, and the key that gives more.
    fn budget(self) -> Option<String> {
        match self {
            Stop::Decided => None,
            Stop::Sessions { max } => Some(format!(
                "the session budget ran out at {max} sessions; raise verdict.max_sessions"
            )),
            Stop::Time { max_s } => Some(format!(
                "the time budget ran out after {max_s:.0} s (verdict.max_time, and escalation \
                 ends at the release horizon, or after 10 s); raise verdict.max_time or settle.timeout"
            )),
            Stop::FdLimit { limit } => Some(format!(
                "the target's open-file limit ({limit}) would have been reached"
            )),
            Stop::Off => Some("escalation is off (verdict.escalate = false)".to_owned()),
            Stop::Load => Some("the load did not happen as specified".to_owned()),
        }
    }
}

/// What a signal did while the earliest measured sessions aged past the
/// release horizon, with no load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Horizon {
    /// The release horizon, seconds (`settle.timeout`).
    pub horizon_s: f64,
    /// Value when the last cycle had settled.
    pub before: f64,
    /// Value at the end of the wait.
    pub after: f64,
    /// Seconds waited with no load.
    pub waited_s: f64,
    /// Age of the first measured cycle's sessions at the end, seconds.
    pub oldest_age_s: f64,
    /// Age of the last cycle's sessions at the end, seconds.
    pub youngest_age_s: f64,
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
    /// The retention curve: the baseline (at zero sessions), then the value
    /// after each measured cycle.
    pub points: Vec<Point>,
    /// The noise band: a change within it is noise.
    pub band: f64,
    /// Why the curve stopped gaining sessions.
    pub stop: Stop,
    /// The wait past the release horizon, when one ran.
    pub horizon: Option<Horizon>,
    /// What the Go runtime keeps of goroutines that have exited, in this
    /// signal's unit: zero but for heap signals of a run whose goroutines
    /// rose (see [`runtime_keeps`]).
    pub runtime_keeps: f64,
}

/// What a signal's curve showed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    /// No retention: back within the noise band.
    Back,
    /// Rose, then held flat while sessions kept coming.
    Bounded,
    /// Rose in proportion to the sessions served, and held past the horizon.
    Leak,
    /// Grew with time while no session was open.
    Time,
    /// The evidence did not separate these within the budget.
    #[default]
    Undecided,
}

/// The finding on one signal's retention curve.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Finding {
    /// Which shape.
    pub kind: FindingKind,
    /// Growth per session (Theil-Sen over the curve; while rising, for bounded).
    pub per_session: f64,
    /// Lower end of the 95% interval of `per_session`.
    pub per_session_low: f64,
    /// Upper end of the 95% interval of `per_session`.
    pub per_session_high: f64,
    /// Measured sessions the curve spans.
    pub sessions: u64,
    /// Bounded: what it retains above baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
    /// Bounded: sessions by which it had reached the bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filled_by: Option<u64>,
    /// Time: growth per second with no session open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    /// Undecided: which budget ran out and the key that gives more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// Seconds the earliest measured sessions had been closed when it was
    /// decided (the horizon check), when one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aged_s: Option<f64>,
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
    /// Value after each measured cycle (escalation cycles included; their
    /// sizes are in `curve`).
    pub cycles: Vec<f64>,
    /// Last value minus baseline.
    pub growth: f64,
    /// `per_session` times the scenario's sessions per cycle.
    pub per_cycle: f64,
    /// Growth per session, Theil-Sen over the retention curve.
    pub per_session: f64,
    /// The noise band: growth within it is noise.
    pub threshold: f64,
    /// One sentence on why.
    pub reason: String,
    /// The retention curve: value against sessions served since baseline.
    pub curve: Vec<Point>,
    /// What the curve showed.
    pub finding: Finding,
}

/// A curve still rising when the time budget ran out is a leak if it rose
/// in proportion over at least this many of the scenario's cycles' worth of
/// sessions: a target slowed down by its own leak (a hub that broadcasts to
/// every leaked client) cannot serve the whole session budget in time.
pub const MIN_RANGE_CYCLES: u64 = 16;

/// Once every session is past the horizon, a signal that kept no more than
/// this share of its rise released it. Measured: deferred `-delay 12s`
/// fell from +415.7 MiB to +6.9 MiB (1.7%), and its heap objects from
/// +180,000 to +18,600 (10.3%); deferred (3 s) under a CPU hog kept more
/// than a tenth of its objects. What stays is what the Go runtime keeps at
/// its high-water mark (goroutine descriptors, which it never frees; see
/// also [`runtime_keeps`]). A real leak kept beside a late release four
/// times its size is missed.
const RELEASED_REMAINDER: f64 = 0.25;

/// The Go runtime never frees a goroutine's descriptor (its `g`): exited
/// goroutines are kept for reuse, so the heap keeps about one object and a
/// few hundred bytes for every goroutine of the highest count ever reached.
/// Measured on deferred `-delay 12s`, whose 20,000 held goroutines left
/// 18,600 objects and 3.5 MiB once every session was released.
const RUNTIME_OBJECTS_PER_GOROUTINE: f64 = 1.0;
const RUNTIME_BYTES_PER_GOROUTINE: f64 = 512.0;

/// What the runtime keeps of `name`'s value after goroutines rose by
/// `goroutine_peak` above the baseline and exited again.
pub fn runtime_keeps(name: &str, goroutine_peak: f64) -> f64 {
    let peak = goroutine_peak.max(0.0);
    match name {
        name::HEAP_OBJECTS => RUNTIME_OBJECTS_PER_GOROUTINE * peak,
        name::HEAP_BYTES | name::HEAP_INUSE => RUNTIME_BYTES_PER_GOROUTINE * peak,
        _ => 0.0,
    }
}

/// During the horizon wait a signal that grows by more than this share of
/// its growth under load (and more than its band) follows time.
const TIME_SHARE: f64 = 0.25;

/// A bounded pass: the finding records what the curve retains (and the
/// rate it filled at, when one is known); the reason says "bounded: ".
fn bounded(
    finding: &mut Finding,
    bound: f64,
    per_session: Option<f64>,
    why: String,
) -> (Verdict, String) {
    finding.kind = FindingKind::Bounded;
    finding.bound = Some(bound);
    if let Some(r) = per_session {
        finding.per_session = r;
    }
    (Verdict::Pass, format!("bounded: {why}"))
}

/// Judges one signal's retention curve; `sessions` is the scenario's
/// sessions per cycle (for `per_cycle`).
pub fn judge(series: &Series, sessions: u32) -> SignalVerdict {
    let Series {
        ref name,
        unit,
        source,
        decides,
        ref points,
        band,
        stop,
        horizon,
        runtime_keeps,
    } = *series;
    let base = points.first().map_or(0.0, |p| p.value);
    let last = points.last().copied().unwrap_or(Point {
        sessions: 0,
        t_s: 0.0,
        value: base,
    });
    let growth = last.value - base;
    let n = last.sessions;
    let slope = curve::slope(points).unwrap_or(Slope {
        rate: 0.0,
        low: 0.0,
        high: 0.0,
    });
    let fmt = |v: f64| format_value(v, unit);
    let rate = |v: f64| format_per_session(v, unit);
    let interval = format!("95%: {} to {}", rate(slope.low), rate(slope.high));
    let mut finding = Finding {
        kind: FindingKind::Undecided,
        per_session: slope.rate,
        per_session_low: slope.low,
        per_session_high: slope.high,
        sessions: n,
        bound: None,
        filled_by: None,
        per_second: None,
        budget: None,
        aged_s: horizon.map(|h| h.oldest_age_s),
    };
    let shape = curve::shape(points, band);
    let undecided = |what: String, finding: &mut Finding| {
        finding.kind = FindingKind::Undecided;
        let budget = stop.budget();
        finding.budget = budget.clone();
        let reason = match budget {
            Some(b) => format!("{what}; {b}"),
            None => what,
        };
        (Verdict::Inconclusive, reason)
    };
    let (verdict, reason) = match shape {
        Shape::Back { peak } => {
            finding.kind = FindingKind::Back;
            if peak > band {
                (
                    Verdict::Pass,
                    format!(
                        "back: rose by up to {} over {n} sessions, then came back within {} of baseline",
                        fmt(peak),
                        fmt(band)
                    ),
                )
            } else {
                (
                    Verdict::Pass,
                    format!(
                        "back within {} of baseline ({} over {n} sessions)",
                        fmt(band),
                        signed(growth, unit)
                    ),
                )
            }
        }
        Shape::Bounded {
            bound,
            rate: r,
            filled_by,
        } => {
            finding.filled_by = Some(filled_by);
            bounded(
                &mut finding,
                bound,
                Some(r),
                format!(
                    "grew {} a session over the first ~{filled_by} sessions, then flat to {n}; retains at most {}",
                    rate(r),
                    fmt(bound)
                ),
            )
        }
        Shape::Unclear if matches!(stop, Stop::Sessions { .. }) => {
            // Flat over the latest half of every session allowed:
            // any rate still hidden there is below what the run
            // can see.
            let limit = band / (n as f64 / 2.0).max(1.0);
            bounded(
                &mut finding,
                growth,
                None,
                format!(
                    "rose {} over {n} sessions, none of it over the latest half (under {} a session, the most this run can see)",
                    signed(growth, unit),
                    rate(limit)
                ),
            )
        }
        Shape::Bending { early, late }
            if shape.drifting() && matches!(stop, Stop::Sessions { .. }) =>
        {
            bounded(
                &mut finding,
                growth,
                Some(early),
                format!(
                    "grew {} a session, then bent flat to a drift of {} a session (under {:.0}% of that) over the latest half of {n} sessions; retains about {}",
                    rate(early),
                    rate(late),
                    curve::DRIFT_SHARE * 100.0,
                    fmt(growth)
                ),
            )
        }
        rising => match horizon {
            None => undecided(
                format!(
                    "{} over {n} sessions and not yet past the release horizon",
                    signed(growth, unit)
                ),
                &mut finding,
            ),
            Some(h) if h.after - base <= band => {
                finding.kind = FindingKind::Back;
                (
                    Verdict::Pass,
                    format!(
                        "back: rose by {} over {n} sessions, then was released late (back within {} of baseline {:.0} s after the first of them closed)",
                        fmt(h.before - base),
                        fmt(band),
                        h.oldest_age_s
                    ),
                )
            }
            Some(h)
                if h.youngest_age_s >= h.horizon_s
                    && h.after - base
                        <= (RELEASED_REMAINDER * (h.before - base)).max(runtime_keeps + band) =>
            {
                finding.kind = FindingKind::Back;
                (
                    Verdict::Pass,
                    format!(
                        "back: rose by {} over {n} sessions and fell to {} once every session was {:.0} s closed (released within the horizon; what stays is a small share, such as the goroutine descriptors the Go runtime keeps at their high-water mark)",
                        fmt(h.before - base),
                        signed(h.after - base, unit),
                        h.horizon_s
                    ),
                )
            }
            Some(h) if h.after - h.before > band.max(TIME_SHARE * (h.before - base)) => {
                finding.kind = FindingKind::Time;
                let per_s = (h.after - h.before) / h.waited_s.max(1e-3);
                finding.per_second = Some(per_s);
                (
                    Verdict::Inconclusive,
                    format!(
                        "grew {} in {:.0} s with no session open ({} a second): it follows time, not sessions",
                        signed(h.after - h.before, unit),
                        h.waited_s,
                        fmt(per_s)
                    ),
                )
            }
            Some(h) => {
                let held = h.after >= h.before - band;
                let all_aged = h.youngest_age_s >= h.horizon_s;
                let enough = stop.spent_the_sessions()
                    || (matches!(stop, Stop::Time { .. })
                        && n >= MIN_RANGE_CYCLES * u64::from(sessions));
                match rising {
                    Shape::Rising { .. } if (held || all_aged) && enough => {
                        finding.kind = FindingKind::Leak;
                        (
                            Verdict::Leak,
                            format!(
                                "linear over {n} sessions, {} a session ({interval}), {} in all, still held {:.0} s after the first of them closed",
                                rate(slope.rate),
                                signed(growth, unit),
                                h.oldest_age_s
                            ),
                        )
                    }
                    Shape::Rising { .. } if held || all_aged => undecided(
                        format!(
                            "linear over {n} sessions, {} a session ({interval}), but over fewer sessions than the budget allows, so a bounded store could still fill",
                            rate(slope.rate)
                        ),
                        &mut finding,
                    ),
                    Shape::Rising { .. } => undecided(
                        format!(
                            "{} over {n} sessions; {} of it was released in the {:.0} s after load, and the rest not yet past the horizon; raise settle.timeout if the target releases later",
                            signed(growth, unit),
                            fmt(h.before - h.after),
                            h.waited_s
                        ),
                        &mut finding,
                    ),
                    Shape::Bending { early, late } => undecided(
                        format!(
                            "still rising over {n} sessions, but slowing ({} a session earlier, {} lately)",
                            rate(early),
                            rate(late)
                        ),
                        &mut finding,
                    ),
                    _ => undecided(
                        format!(
                            "{} over {n} sessions, flat lately but too little to tell a bound from noise",
                            signed(growth, unit)
                        ),
                        &mut finding,
                    ),
                }
            }
        },
    };
    SignalVerdict {
        name: name.clone(),
        unit,
        source,
        verdict,
        decides,
        baseline: base,
        cycles: points.iter().skip(1).map(|p| p.value).collect(),
        growth,
        per_cycle: finding.per_session * f64::from(sessions),
        per_session: finding.per_session,
        threshold: band,
        reason,
        curve: points.clone(),
        finding,
    }
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

/// Share of a signal's rise that one fall may count as noise. Wobble after
/// load is a small share (nats-server's heap objects: about 500 of 46,000;
/// respbody's heap: 18 KiB of 138 KiB); a release takes back most of it.
const FALL_SHARE: f64 = 0.25;

/// The noise bands: each floor, or [`NOISE_FACTOR`] times the largest
/// noise the target showed, whichever is larger. The target's noise is its
/// idle spread before the baseline, the change between the two polls that
/// ended each settle, and every fall between consecutive settled readings
/// (a leak only adds, so a fall is the target's own wobble after load, up
/// to [`FALL_SHARE`] of the rise).
pub fn bands(
    floors: &Tolerance,
    idle: &Tolerance,
    repeats: &[Tolerance],
    readings: &[&Reading],
) -> Tolerance {
    let get = |r: &Reading, name: &str| r.get(name).copied().unwrap_or(0.0);
    floors
        .iter()
        .map(|(name, floor)| {
            let mut noise = idle.get(name).copied().unwrap_or(0.0);
            for r in repeats {
                noise = noise.max(r.get(name).copied().unwrap_or(0.0));
            }
            // A fall that takes back a large share of the rise is a release,
            // not wobble: it counts only up to FALL_SHARE of the rise.
            let base = readings.first().map_or(0.0, |r| get(r, name));
            let rise = readings
                .iter()
                .map(|r| get(r, name) - base)
                .fold(0.0, f64::max);
            for w in readings.windows(2) {
                let fall = get(w[0], name) - get(w[1], name);
                noise = noise.max(fall.min(FALL_SHARE * rise));
            }
            (name.clone(), floor.max(NOISE_FACTOR * noise))
        })
        .collect()
}

/// Where the measured readings of a run sit on the retention curves: the
/// sessions each cycle served, when each closed, and the noise seen by the
/// settle that followed it.
#[derive(Debug, Clone, Default)]
pub struct Curves {
    /// Seconds into the run of the baseline snapshot.
    start_s: f64,
    /// Per measured cycle: cumulative sessions, close time (seconds into
    /// the run), the settle's repeat-poll spread.
    cycles: Vec<(u64, f64, Tolerance)>,
}

impl Curves {
    /// The curves start at the baseline, `t_s` seconds into the run.
    pub fn start(&mut self, t_s: f64) {
        self.start_s = t_s;
        self.cycles.clear();
    }

    /// One more measured cycle of `sessions` sessions, closed at `t_s`.
    pub fn push(&mut self, sessions: u64, t_s: f64, repeat: &Tolerance) {
        let n = self.served() + sessions;
        self.cycles.push((n, t_s, repeat.clone()));
    }

    /// Sessions served since the baseline.
    pub fn served(&self) -> u64 {
        self.cycles.last().map_or(0, |c| c.0)
    }

    /// When the first measured cycle closed (the baseline's time before any).
    pub fn first_close_s(&self) -> f64 {
        self.cycles.first().map_or(self.start_s, |c| c.1)
    }

    /// When the last measured cycle closed.
    pub fn last_close_s(&self) -> f64 {
        self.cycles.last().map_or(self.start_s, |c| c.1)
    }

    /// The repeat-poll spreads of every settle.
    pub fn repeats(&self) -> Vec<Tolerance> {
        self.cycles.iter().map(|c| c.2.clone()).collect()
    }

    /// One signal's curve: the baseline, then one point per reading (a
    /// missing signal counts as zero).
    pub fn points(&self, name: &str, base: &Reading, readings: &[Reading]) -> Vec<Point> {
        let get = |r: &Reading| r.get(name).copied().unwrap_or(0.0);
        std::iter::once(Point {
            sessions: 0,
            t_s: self.start_s,
            value: get(base),
        })
        .chain(self.cycles.iter().zip(readings).map(|(c, r)| Point {
            sessions: c.0,
            t_s: c.1,
            value: get(r),
        }))
        .collect()
    }
}

/// The horizon wait, for every signal at once.
#[derive(Debug, Clone, Copy)]
pub struct HorizonEvidence<'a> {
    /// The release horizon, seconds.
    pub horizon_s: f64,
    /// Readings when the last cycle had settled, and after the wait.
    pub before: &'a Reading,
    /// The reading after the wait.
    pub after: &'a Reading,
    /// Seconds waited.
    pub waited_s: f64,
    /// Age of the first measured cycle's sessions at the end, seconds.
    pub oldest_age_s: f64,
    /// Age of the last cycle's sessions at the end, seconds.
    pub youngest_age_s: f64,
}

/// Everything a run measured, for [`judge_all`].
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    /// The baseline reading.
    pub baseline: &'a Reading,
    /// One reading per measured cycle.
    pub readings: &'a [Reading],
    /// Where those readings sit on the curves.
    pub curves: &'a Curves,
    /// Noise bands by signal.
    pub bands: &'a Tolerance,
    /// Why the curves stopped gaining sessions.
    pub stop: Stop,
    /// The horizon wait, when one ran.
    pub horizon: Option<HorizonEvidence<'a>>,
}

/// How a run went about its verdict, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Course {
    /// Why the curves stopped gaining sessions.
    pub stop: Stop,
    /// Sessions the measured cycles served, escalation included.
    pub sessions: u64,
    /// The session budget (`verdict.max_sessions`).
    pub max_sessions: u64,
    /// The escalation's time budget, seconds (`verdict.max_time`).
    pub max_time_s: f64,
    /// The release horizon, seconds (`settle.timeout`).
    pub horizon_s: f64,
    /// Seconds spent waiting past the last cycle for the horizon, when
    /// a curve still rose after escalation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizon_wait_s: Option<f64>,
}

/// Judges every signal of a run.
pub fn judge_all(specs: &[SignalSpec], sessions: u32, m: &Measured<'_>) -> Vec<SignalVerdict> {
    let get = |r: &Reading, name: &str| r.get(name).copied().unwrap_or(0.0);
    // Goroutines that rose and exited again leave their descriptors behind.
    let goroutine_peak = match m.horizon {
        Some(h)
            if get(h.after, name::GOROUTINES) - get(m.baseline, name::GOROUTINES)
                <= m.bands.get(name::GOROUTINES).copied().unwrap_or(0.0) =>
        {
            m.readings
                .iter()
                .map(|r| get(r, name::GOROUTINES) - get(m.baseline, name::GOROUTINES))
                .fold(0.0, f64::max)
        }
        _ => 0.0,
    };
    specs
        .iter()
        .map(|spec| {
            let series = Series {
                runtime_keeps: runtime_keeps(&spec.name, goroutine_peak),
                name: spec.name.clone(),
                unit: spec.unit,
                source: spec.source,
                decides: spec.decides,
                points: m.curves.points(&spec.name, m.baseline, m.readings),
                band: m.bands.get(&spec.name).copied().unwrap_or(spec.floor),
                stop: m.stop,
                horizon: m.horizon.map(|h| Horizon {
                    horizon_s: h.horizon_s,
                    before: get(h.before, &spec.name),
                    after: get(h.after, &spec.name),
                    waited_s: h.waited_s,
                    oldest_age_s: h.oldest_age_s,
                    youngest_age_s: h.youngest_age_s,
                }),
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
        // The causes of the failures counted, then the warm-up's apart:
        // one sum of both beside the measured share reads as a miscount.
        let causes = |measured: bool| -> String {
            let mut causes: BTreeMap<&str, u64> = BTreeMap::new();
            for (_, l) in loads.iter().filter(|(m, _)| *m == measured) {
                for (k, v) in &l.failures {
                    *causes.entry(k).or_default() += v;
                }
            }
            let causes: Vec<String> = causes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            causes.join(", ")
        };
        let warmup = causes(false);
        let warmup = if warmup.is_empty() {
            String::new()
        } else {
            format!("; in the warm-up: {warmup}")
        };
        return Some(format!(
            "the load did not happen as specified: {failed} of {started} sessions failed ({:.1}%, above {:.1}%: {}{warmup})",
            ratio * 100.0,
            max_ratio * 100.0,
            causes(true)
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
            reasons.insert(
                0,
                "no signal kept growing with the sessions served".to_owned(),
            );
            // Bounded retention and late releases are findings a pass states.
            for sig in e.signals {
                let told =
                    sig.finding.kind == FindingKind::Bounded || sig.reason.starts_with("back: ");
                if sig.decides && told {
                    reasons.push(format!("{} {}", sig.name, sig.reason));
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::name;

    /// A series of cycles of 200 sessions (doubling after the third), with
    /// these values (the first is the baseline), at `stop`, held through a
    /// horizon wait unless `after` says where it ended.
    fn series(values: &[f64], band: f64, stop: Stop, after: Option<f64>) -> Series {
        let mut n = 0;
        let points = values
            .iter()
            .enumerate()
            .map(|(k, v)| {
                if k > 0 {
                    n += if k <= 3 { 200 } else { 200 << (k - 3) };
                }
                Point {
                    sessions: n,
                    t_s: k as f64,
                    value: *v,
                }
            })
            .collect();
        let last = values[values.len() - 1];
        Series {
            name: name::GOROUTINES.to_owned(),
            unit: Unit::Count,
            source: SourceKind::Pprof,
            decides: true,
            points,
            band,
            stop,
            horizon: Some(Horizon {
                horizon_s: 30.0,
                before: last,
                after: after.unwrap_or(last),
                waited_s: 25.0,
                oldest_age_s: 30.0,
                youngest_age_s: 26.0,
            }),
            runtime_keeps: 0.0,
        }
    }

    /// A goroutine a session over `cycles` measured cycles.
    fn leak_values(cycles: usize) -> Vec<f64> {
        let mut v = vec![10.0];
        let mut n = 0.0;
        for k in 1..=cycles {
            n += if k <= 3 {
                200.0
            } else {
                f64::from(200 << (k - 3))
            };
            v.push(10.0 + n);
        }
        v
    }

    const BUDGET: Stop = Stop::Sessions { max: 13_000 };

    #[test]
    fn linear_over_the_budget_and_held_past_the_horizon_is_a_leak() {
        let v = judge(&series(&leak_values(8), 2.0, BUDGET, None), 200);
        assert_eq!(v.verdict, Verdict::Leak, "{}", v.reason);
        assert_eq!(v.finding.kind, FindingKind::Leak);
        assert!((v.per_session - 1.0).abs() < 1e-9);
        assert!((v.per_cycle - 200.0).abs() < 1e-9);
        assert!(
            v.reason
                .starts_with("linear over 13000 sessions, 1.00 a session"),
            "{}",
            v.reason
        );
        assert_eq!(v.curve.len(), 9);
    }

    #[test]
    fn a_leak_released_within_the_horizon_is_back() {
        let v = judge(&series(&leak_values(8), 2.0, BUDGET, Some(11.0)), 200);
        assert_eq!(v.verdict, Verdict::Pass);
        assert_eq!(v.finding.kind, FindingKind::Back);
        assert!(v.reason.contains("released late"), "{}", v.reason);
    }

    #[test]
    fn a_large_late_release_leaving_a_small_share_is_back() {
        let mut s = series(&leak_values(8), 2.0, BUDGET, Some(200.0));
        // Not every session past the horizon yet: undecided.
        assert_eq!(judge(&s, 200).verdict, Verdict::Inconclusive);
        s.horizon.as_mut().unwrap().youngest_age_s = 31.0;
        let v = judge(&s, 200);
        assert_eq!(v.verdict, Verdict::Pass, "{}", v.reason);
        assert!(
            v.reason.contains("released within the horizon"),
            "{}",
            v.reason
        );
        // A third of it kept is retained for good.
        let mut s = series(&leak_values(8), 2.0, BUDGET, Some(4_000.0));
        s.horizon.as_mut().unwrap().youngest_age_s = 31.0;
        assert_eq!(judge(&s, 200).verdict, Verdict::Leak);
    }

    #[test]
    fn goroutine_descriptors_left_by_a_late_release_are_not_a_leak() {
        // deferred -delay 12s, settle.timeout 20s: 20,000 goroutines held,
        // all exited by the end; heap objects fell from +180,000 to +18,600.
        let specs = [
            spec(name::GOROUTINES, Unit::Count, true, 2.0),
            spec(name::HEAP_OBJECTS, Unit::Count, true, 32.0),
        ];
        let base = reading(&[(name::GOROUTINES, 205.0), (name::HEAP_OBJECTS, 2437.0)]);
        let mut curves = Curves::default();
        curves.start(1.9);
        let mut readings = Vec::new();
        let mut n = 0.0;
        for (k, size) in [200u64, 200, 200, 400, 800, 1600, 3200, 6400, 7000]
            .iter()
            .enumerate()
        {
            curves.push(*size, 2.0 + k as f64, &Tolerance::new());
            n += *size as f64;
            readings.push(reading(&[
                (name::GOROUTINES, 205.0 + n),
                (name::HEAP_OBJECTS, 2437.0 + 9.0 * n),
            ]));
        }
        let after = reading(&[(name::GOROUTINES, 5.0), (name::HEAP_OBJECTS, 21_046.0)]);
        let bands = reading(&[(name::GOROUTINES, 2.0), (name::HEAP_OBJECTS, 50.0)]);
        let horizon = |after| HorizonEvidence {
            horizon_s: 20.0,
            before: &readings[8],
            after,
            waited_s: 19.0,
            oldest_age_s: 27.0,
            youngest_age_s: 20.1,
        };
        let m = Measured {
            baseline: &base,
            readings: &readings,
            curves: &curves,
            bands: &bands,
            stop: Stop::Sessions { max: 20_000 },
            horizon: Some(horizon(&after)),
        };
        let v = judge_all(&specs, 200, &m);
        assert_eq!(v[0].verdict, Verdict::Pass, "{}", v[0].reason);
        assert_eq!(v[1].verdict, Verdict::Pass, "{}", v[1].reason);
        // The same remainder with goroutines still held is no longer
        // explained by exited goroutines: it is retained for good.
        let held = reading(&[(name::GOROUTINES, 20_205.0), (name::HEAP_OBJECTS, 60_000.0)]);
        let v = judge_all(
            &specs,
            200,
            &Measured {
                horizon: Some(horizon(&held)),
                ..m
            },
        );
        assert_eq!(v[1].verdict, Verdict::Leak, "{}", v[1].reason);
    }

    #[test]
    fn growth_while_idle_follows_time() {
        let v = judge(&series(&leak_values(8), 2.0, BUDGET, Some(20_000.0)), 200);
        assert_eq!(v.verdict, Verdict::Inconclusive);
        assert_eq!(v.finding.kind, FindingKind::Time);
        assert!(v.finding.per_second.unwrap() > 0.0);
    }

    #[test]
    fn a_time_budget_decides_a_leak_only_over_a_wide_range() {
        let time = Stop::Time { max_s: 30.0 };
        // 3,400 sessions = 17 cycles' worth: wide enough.
        let v = judge(&series(&leak_values(6), 2.0, time, None), 200);
        assert_eq!(v.verdict, Verdict::Leak, "{}", v.reason);
        // 1,000 sessions: a ring of a few thousand looks the same.
        let v = judge(&series(&leak_values(4), 2.0, time, None), 200);
        assert_eq!(v.verdict, Verdict::Inconclusive);
        assert!(v.reason.contains("raise verdict.max_time"), "{}", v.reason);
        assert!(v.finding.budget.is_some());
    }

    #[test]
    fn escalation_off_judges_the_scenario_cycles() {
        let v = judge(&series(&leak_values(3), 2.0, Stop::Off, None), 200);
        assert_eq!(v.verdict, Verdict::Leak, "{}", v.reason);
    }

    #[test]
    fn a_fill_then_flat_is_bounded_with_its_bound() {
        let v = judge(
            &series(
                &[1000.0, 5000.0, 5010.0, 5005.0],
                100.0,
                Stop::Decided,
                None,
            ),
            200,
        );
        assert_eq!(v.verdict, Verdict::Pass);
        assert_eq!(v.finding.kind, FindingKind::Bounded);
        assert_eq!(v.finding.bound, Some(4007.5));
        assert!(
            v.reason.starts_with("bounded: grew 20.00 a session"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn noise_around_baseline_passes() {
        for values in [[10.0, 11.0, 9.0, 12.0], [10.0, 13.0, 9.0, 11.0], [10.0; 4]] {
            let v = judge(&series(&values, 2.0, Stop::Decided, None), 200);
            assert_eq!(v.verdict, Verdict::Pass, "{values:?}: {}", v.reason);
        }
    }

    #[test]
    fn bending_at_the_budget_is_inconclusive_and_names_the_key() {
        let v = [0.0, 200.0, 400.0, 600.0, 1000.0, 1800.0, 2000.0];
        let v = judge(&series(&v, 2.0, BUDGET, None), 200);
        assert_eq!(v.verdict, Verdict::Inconclusive, "{}", v.reason);
        assert!(v.reason.contains("slowing"), "{}", v.reason);
        assert!(v.reason.contains("verdict.max_sessions"), "{}", v.reason);
    }

    #[test]
    fn a_drift_after_the_bend_passes_at_the_budget_but_not_before() {
        // nats-server's heap objects, 300 sessions a cycle: the ring full at
        // 9,900 sessions, then +364 and +189 over 20,100 more (band 75).
        let values = [
            5108.0, 6429.0, 7736.0, 9124.0, 11896.0, 17252.0, 28078.0, 48585.0, 48949.0, 49138.0,
        ];
        let mut n = 0;
        let points: Vec<Point> = values
            .iter()
            .zip([0u64, 300, 300, 300, 600, 1200, 2400, 4800, 9600, 10500])
            .map(|(v, s)| {
                n += s;
                Point {
                    sessions: n,
                    t_s: 0.0,
                    value: *v,
                }
            })
            .collect();
        let mut s = series(&values, 75.0, Stop::Sessions { max: 30_000 }, None);
        s.points = points;
        s.horizon = None;
        let v = judge(&s, 300);
        assert_eq!(v.verdict, Verdict::Pass, "{}", v.reason);
        assert_eq!(v.finding.kind, FindingKind::Bounded);
        assert!(v.reason.contains("drift"), "{}", v.reason);
        s.stop = Stop::Time { max_s: 30.0 };
        assert_eq!(judge(&s, 300).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn flat_lately_over_the_whole_budget_passes_with_the_detection_limit() {
        // chathub -fixed: heap_bytes +80 KiB in the first cycle (runtime
        // high-water marks), then a few KiB a doubling.
        let v = [
            276.0, 356.0, 370.0, 370.0, 374.0, 387.0, 392.0, 392.0, 411.0,
        ];
        let v: Vec<f64> = v.iter().map(|k| k * 1024.0).collect();
        let mut s = series(&v, 160.0 * 1024.0, BUDGET, None);
        s.horizon = None;
        let v = judge(&s, 200);
        assert_eq!(v.verdict, Verdict::Pass, "{}", v.reason);
    }

    #[test]
    fn not_yet_past_the_horizon_is_inconclusive() {
        let mut s = series(&leak_values(8), 2.0, BUDGET, None);
        s.horizon = None;
        assert_eq!(judge(&s, 200).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn overall_takes_the_worst_deciding_signal() {
        let leak = judge(&series(&leak_values(8), 2.0, BUDGET, None), 100);
        let pass = judge(&series(&[0.0; 4], 2.0, Stop::Decided, None), 100);
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
    fn bands_count_wobble_and_cap_a_release() {
        let floors = reading(&[(name::HEAP_OBJECTS, 32.0), (name::GOROUTINES, 2.0)]);
        let idle = reading(&[(name::HEAP_OBJECTS, 5.0)]);
        let repeats = [reading(&[(name::HEAP_OBJECTS, 20.0)])];
        // nats-server's objects once its ring is full: a 500-object wobble.
        let objects = [2726.0, 32_644.0, 48_721.0, 48_221.0, 48_805.0];
        // deferred's goroutines: 6,200 held, then all released.
        let goroutines = [5.0, 405.0, 6_205.0, 5.0, 5.0];
        let readings: Vec<Reading> = objects
            .iter()
            .zip(goroutines)
            .map(|(o, g)| reading(&[(name::HEAP_OBJECTS, *o), (name::GOROUTINES, g)]))
            .collect();
        let refs: Vec<&Reading> = readings.iter().collect();
        let b = bands(&floors, &idle, &repeats, &refs);
        assert_eq!(b[name::HEAP_OBJECTS], 1000.0, "twice the wobble");
        assert_eq!(
            b[name::GOROUTINES],
            2.0 * 0.25 * 6_200.0,
            "a release is capped"
        );
        let b = bands(&floors, &idle, &repeats, &refs[..1]);
        assert_eq!(b[name::HEAP_OBJECTS], 40.0, "twice the repeat-poll spread");
        assert_eq!(b[name::GOROUTINES], 2.0, "the floor");
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
        let mut curves = Curves::default();
        curves.start(1.0);
        for k in 1..=3 {
            curves.push(200, 1.0 + f64::from(k), &Tolerance::new());
        }
        let v = judge_all(
            &specs,
            200,
            &Measured {
                baseline: &base,
                readings: &measured,
                curves: &curves,
                bands: &tol,
                stop: Stop::Off,
                horizon: Some(HorizonEvidence {
                    horizon_s: 30.0,
                    before: &measured[2],
                    after: &measured[2],
                    waited_s: 28.0,
                    oldest_age_s: 30.0,
                    youngest_age_s: 29.0,
                }),
            },
        );
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
        assert!(
            why.contains("above 1.0%: timeout 10; in the warm-up: refused 100)"),
            "{why}"
        );
        assert_eq!(
            load_problem(&[(false, &warm)], 0.01).as_deref(),
            Some("no session was started")
        );
    }

    fn leaking(name: &str) -> SignalVerdict {
        let mut s = series(&leak_values(8), 2.0, BUDGET, None);
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
            reasons[0].starts_with("goroutines linear over 13000 sessions"),
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
        let flat = [100.0, 101.0, 100.0, 101.0];
        let filled = [1000.0, 5000.0, 5010.0, 5005.0];
        let mut bounded = judge(&series(&filled, 100.0, Stop::Decided, None), 200);
        bounded.name = name::HEAP_OBJECTS.to_owned();
        let signals = [
            judge(&series(&flat, 2.0, Stop::Decided, None), 200),
            bounded,
        ];
        let (v, reasons) = conclude(RunEvidence {
            signals: &signals,
            complete: true,
            ..RunEvidence::default()
        });
        assert_eq!(v, Verdict::Pass);
        assert_eq!(
            reasons[0],
            "no signal kept growing with the sessions served"
        );
        assert!(
            reasons[1].starts_with("heap_objects bounded: grew"),
            "the bound is stated: {reasons:?}"
        );
        assert_eq!(reasons.len(), 2);
    }
}
