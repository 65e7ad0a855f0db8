//! Escalation and the release horizon: the two phases that follow the
//! scenario's measured cycles while a retention curve is undecided.
//!
//! Escalation adds cycles, each twice the size of the one before at the
//! scenario's concurrency, until every deciding signal's curve is back or
//! bounded, or a budget (`verdict.max_sessions`, `verdict.max_time`, the
//! target's open-file limit) runs out. The horizon wait then lets the first
//! measured sessions age past `settle.timeout` with no load: state released
//! within the horizon shows as a fall, state still held is held for good.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::Session;
use crate::curve::{self, Shape};
use crate::load::CycleLoad;
use crate::report::PhaseKind;
use crate::settle::{Goal, Tolerance};
use crate::signal::name;
use crate::sources::Reading;
use crate::verdict::{self, HorizonEvidence, Stop};

/// Longest settle after a measured cycle. Counters that still move after
/// this are read as they are: one late point bends the curve a little, and
/// the horizon wait, not one settle, decides what is released.
pub(super) const CYCLE_SETTLE_CAP: Duration = Duration::from_secs(5);

/// Escalation time a short horizon still leaves: a 5 s `settle.timeout`
/// left 4 s, 121 sessions at a 600 ms hold, too few to bound a 43-object
/// creep of a clean target's heap. Never more than `verdict.max_time`.
const MIN_ESCALATION: Duration = Duration::from_secs(10);

/// The next cycle may bring a target's descriptors to at most this share of
/// its open-file limit: past it the target fails sessions, and the load,
/// not the leak, would end the run.
const FD_LIMIT_SHARE: f64 = 0.9;

/// The horizon wait's record.
pub(super) struct HorizonWait {
    /// Value of every signal when the last cycle had settled.
    pub(super) before: Reading,
    /// Value at the end of the wait (the final snapshot).
    pub(super) after: Reading,
    /// Seconds waited.
    pub(super) waited_s: f64,
    /// When the wait ended, seconds since the run started.
    pub(super) ended_s: f64,
    /// The horizon, seconds.
    pub(super) horizon_s: f64,
    /// When the first and the last measured cycles closed, seconds since
    /// the run started.
    pub(super) first_close_s: f64,
    pub(super) last_close_s: f64,
}

impl HorizonWait {
    pub(super) fn evidence(&self) -> HorizonEvidence<'_> {
        HorizonEvidence {
            horizon_s: self.horizon_s,
            before: &self.before,
            after: &self.after,
            waited_s: self.waited_s,
            oldest_age_s: self.ended_s - self.first_close_s,
            youngest_age_s: self.ended_s - self.last_close_s,
        }
    }
}

impl Session<'_> {
    /// Each deciding signal's shape now.
    fn shapes(&self) -> Vec<(String, Shape)> {
        let base = self.baseline.clone().unwrap_or_default();
        let bands = self.tolerance.clone().unwrap_or_default();
        self.specs
            .iter()
            .filter(|x| x.decides)
            .map(|x| {
                let points = self.curves.points(&x.name, &base, &self.measured);
                let band = bands.get(&x.name).copied().unwrap_or(x.floor);
                (x.name.clone(), curve::shape(&points, band))
            })
            .collect()
    }

    /// Escalation cycles while a deciding curve is undecided.
    pub(super) async fn escalate(&mut self, base: &Reading) -> Result<()> {
        let s = self.scenario;
        let budget = s.verdict;
        let started = Instant::now();
        // Escalation runs while the first measured sessions age: it ends by
        // the release horizon too, so a leak is decided soon after it.
        let aged = self.progress.start.elapsed().as_secs_f64() - self.curves.first_close_s();
        let to_horizon = (s.settle.timeout.as_secs_f64() - aged).max(MIN_ESCALATION.as_secs_f64());
        let max_time = budget.max_time.min(Duration::from_secs_f64(to_horizon));
        let mut size = s.load.sessions;
        let mut k = s.load.cycles;
        let mut n = 0;
        self.stop = loop {
            let open: Vec<String> = self
                .shapes()
                .into_iter()
                .filter(|(_, sh)| !sh.decided())
                .map(|(name, _)| name)
                .collect();
            if open.is_empty() {
                break Stop::Decided;
            }
            if !budget.escalate {
                break Stop::Off;
            }
            let loads: Vec<(bool, &CycleLoad)> = self
                .phases
                .iter()
                .map(|p| (p.kind == PhaseKind::Cycle, &p.load))
                .collect();
            if verdict::load_problem(&loads, s.load.max_failure_ratio).is_some() {
                break Stop::Load;
            }
            let served = self.curves.served();
            if served >= budget.max_sessions {
                break Stop::Sessions {
                    max: budget.max_sessions,
                };
            }
            if started.elapsed() >= max_time {
                break Stop::Time {
                    max_s: max_time.as_secs_f64(),
                };
            }
            let mut next = u64::from(size) * 2;
            next = next.min(budget.max_sessions - served);
            if let Some((limit, room)) = self.fd_room(base, &open) {
                if room < next {
                    if room < u64::from(s.load.sessions) {
                        break Stop::FdLimit { limit };
                    }
                    next = room;
                }
            }
            let left = max_time.saturating_sub(started.elapsed());
            let fits = self.fits_in(left);
            if fits < next {
                if fits < u64::from(s.load.sessions) {
                    break Stop::Time {
                        max_s: max_time.as_secs_f64(),
                    };
                }
                next = fits;
            }
            size = u32::try_from(next).unwrap_or(u32::MAX);
            k += 1;
            n += 1;
            if n == 1 {
                self.progress.line(format!(
                    "growth seen in {}: escalating, cycles of doubling size at the same \
                     concurrency (up to {} sessions or {:.0} s)",
                    open.join(", "),
                    budget.max_sessions,
                    max_time.as_secs_f64()
                ));
            }
            let name = format!("escalation {n} ({size} sessions)");
            let stop_at = tokio::time::Instant::from_std(started + max_time);
            self.measured_cycle(k, name, size, Some(stop_at)).await?;
        };
        if n > 0 {
            self.progress.line(format!(
                "escalation ended after {n} cycle(s), {} sessions measured: {}",
                self.curves.served(),
                match self.stop {
                    Stop::Decided => "every curve decided".to_owned(),
                    Stop::Sessions { .. } => "session budget reached".to_owned(),
                    Stop::Time { .. } => "time budget reached".to_owned(),
                    Stop::FdLimit { limit } =>
                        format!("the target's open-file limit ({limit}) is near"),
                    Stop::Off => "escalation off".to_owned(),
                    Stop::Load => "too many sessions failed".to_owned(),
                }
            ));
        }
        Ok(())
    }

    /// How many sessions one more cycle can serve within `left`, from the
    /// speed of the last measured cycles. A target that slows down as it
    /// leaks (each cycle slower per session than the one before) is
    /// expected to slow down by as much again.
    fn fits_in(&self, left: Duration) -> u64 {
        let rates: Vec<f64> = self
            .phases
            .iter()
            .filter(|p| p.kind == PhaseKind::Cycle && p.load.elapsed_s > 0.0)
            .map(|p| p.load.started as f64 / (p.load.elapsed_s + p.settle.seconds))
            .collect();
        let Some(&last) = rates.last() else {
            return u64::MAX;
        };
        let slowdown = match rates.len() {
            0 | 1 => 1.0,
            n => (last / rates[n - 2]).clamp(0.1, 1.0),
        };
        (left.as_secs_f64() * last * slowdown) as u64
    }

    /// How many more sessions fit before a growing descriptor count
    /// reaches [`FD_LIMIT_SHARE`] of the target's open-file limit, with the
    /// limit (from /proc/PID/limits, or a metrics page's `process_max_fds`);
    /// `None` when descriptors are not among `open` or the limit is unknown.
    fn fd_room(&self, base: &Reading, open: &[String]) -> Option<(u64, u64)> {
        if !open.iter().any(|n| n == name::FDS) {
            return None;
        }
        let limit = self.sources.open_file_limit()?;
        let points = self.curves.points(name::FDS, base, &self.measured);
        let rate = curve::slope(&points)?.rate;
        let now = points.last()?.value;
        let concurrency = f64::from(self.scenario.load.concurrency);
        let left = FD_LIMIT_SHARE * limit as f64 - now - concurrency;
        if rate <= 0.0 {
            return None;
        }
        Some((limit, (left.max(0.0) / rate) as u64))
    }

    /// While a deciding curve still rises (or is undecided), waits with no
    /// load until the first measured sessions are older than the horizon;
    /// past it, until the last ones are too if something fell meanwhile.
    /// Stops early when every watched signal is back within its band.
    pub(super) async fn wait_horizon(&mut self, base: &Reading) -> Result<()> {
        // A curve flat, or drifting, over the latest half of the whole
        // session budget is judged as it is; every other undecided one waits.
        let spent = matches!(self.stop, Stop::Sessions { .. });
        let shapes: Vec<(String, Shape)> = self
            .shapes()
            .into_iter()
            .filter(|(_, sh)| {
                !(sh.decided() || (spent && (*sh == Shape::Unclear || sh.drifting())))
            })
            .collect();
        let watched: Vec<String> = shapes.iter().map(|(name, _)| name.clone()).collect();
        if watched.is_empty() {
            return Ok(());
        }
        let horizon = self.scenario.settle.timeout.as_secs_f64();
        let first_close_s = self.curves.first_close_s();
        let last_close_s = self.curves.last_close_s();
        let before = self.measured.last().cloned().unwrap_or_default();
        let bands: Tolerance = self
            .tolerance
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| watched.contains(k))
            .collect();
        let start = Instant::now();
        self.phase_name = "horizon".to_owned();
        let now_s = || self.progress.start.elapsed().as_secs_f64();
        let until = first_close_s + horizon;
        self.progress.line(format!(
            "{} still rising: waiting with no load until the first measured sessions have \
             been closed {horizon:.0} s (settle.timeout, the release horizon), {:.0} s from now",
            watched.join(", "),
            (until - now_s()).max(0.0)
        ));
        self.progress
            .phase(&self.phase_name, "waiting for a release within the horizon");
        let mut last = self.horizon_settle(base, &bands, until).await?;
        let fell = bands.iter().any(|(k, band)| {
            before.get(k).copied().unwrap_or(0.0) - last.get(k).copied().unwrap_or(0.0) > *band
        });
        let back = bands.iter().all(|(k, band)| {
            last.get(k).copied().unwrap_or(0.0) - base.get(k).copied().unwrap_or(0.0) <= *band
        });
        // A rising curve that held through the horizon is a leak whatever
        // the others do: waiting longer would not change the verdict.
        let value = |r: &Reading, k: &str| r.get(k).copied().unwrap_or(0.0);
        let held = shapes.iter().any(|(k, sh)| {
            let band = bands.get(k).copied().unwrap_or(0.0);
            matches!(sh, Shape::Rising { .. })
                && value(&last, k) >= value(&before, k) - band
                && value(&last, k) - value(base, k) > band
        });
        if fell && !back && !held {
            let until = last_close_s + horizon;
            self.progress.line(format!(
                "part was released within the horizon: waiting until the last cycle's \
                 sessions have been closed {horizon:.0} s too"
            ));
            last = self.horizon_settle(base, &bands, until).await?;
        }
        self.horizon = Some(HorizonWait {
            before,
            after: last,
            waited_s: start.elapsed().as_secs_f64(),
            ended_s: self.progress.start.elapsed().as_secs_f64(),
            horizon_s: horizon,
            first_close_s,
            last_close_s,
        });
        Ok(())
    }

    /// Polls (a forced GC each) until `until` seconds into the run or until
    /// every signal of `bands` is back; the last reading.
    async fn horizon_settle(
        &mut self,
        base: &Reading,
        bands: &Tolerance,
        until: f64,
    ) -> Result<Reading> {
        let left = until - self.progress.start.elapsed().as_secs_f64();
        let goal = Goal {
            baseline: Some(base),
            quiet: None,
            steady: false,
            timeout: Duration::from_secs_f64(left.max(0.0)),
        };
        let settled = self.settle(goal, bands).await?;
        Ok(settled.last)
    }
}
