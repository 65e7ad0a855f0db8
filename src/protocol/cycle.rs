//! One cycle of load, driven from the protocol: the probe's connections
//! closed first, live session counts while it runs, the load stopped (and
//! the run aborted, inconclusive) once too many of its sessions fail, and
//! an error (not a verdict) when no session reached the target. The
//! sessions run here or, with `--agents N`, on the fleet's load agents; a
//! fleet agent's fault ends the run inconclusive after one settle.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::escalate::CYCLE_SETTLE_CAP;
use super::{RunError, Session};
use crate::fleet::Fleet;
use crate::fleet::coordinator::Fault;
use crate::load::{self, CycleLoad};
use crate::scenario::{ABORT_MIN_STARTED, Load, Target};
use crate::settle::Goal;

/// A stop time that never comes (Instant + Duration::MAX would overflow).
const FAR: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the live line redraws session counts during a cycle.
const LIVE_REFRESH: Duration = Duration::from_millis(200);

/// How often a running cycle's failure ratio is checked against
/// `load.abort_failure_ratio`: often enough that a failing target sees a
/// few dozen milliseconds of load after the ratio passed, not a whole cycle.
const ABORT_WATCH: Duration = Duration::from_millis(20);

/// Whether `failed` of `started` sessions passes `ratio`, once at least
/// [`ABORT_MIN_STARTED`] started. A ratio of 1.0 never trips.
pub(super) fn abort_tripped(started: u64, failed: u64, ratio: f64) -> bool {
    started >= ABORT_MIN_STARTED && failed as f64 > ratio * started as f64
}

impl Session<'_> {
    /// One cycle of `sessions` sessions (the scenario's load otherwise, at
    /// its concurrency): every session opened, run and closed, with live
    /// counts on the progress line.
    pub(super) async fn cycle(&mut self, sessions: u32) -> Result<CycleLoad> {
        self.cycle_until(sessions, None).await
    }

    /// [`Session::cycle`], starting no session after `stop_at` (a cycle
    /// cut short serves fewer sessions; the curve counts those it served).
    pub(super) async fn cycle_until(
        &mut self,
        sessions: u32,
        stop_at: Option<tokio::time::Instant>,
    ) -> Result<CycleLoad> {
        self.check_alive()?;
        // The probe's connection is idle during load; close it so a target
        // with a short idle timeout does not count a dying probe connection.
        self.sources.close();
        let live = Arc::new(load::Live::default());
        let mut spec = self.scenario.load.clone();
        spec.sessions = sessions;
        spec.concurrency = spec.concurrency.min(sessions);
        let abort_ratio = self.scenario.load.abort_failure_ratio;
        // (started, failed) when the failure ratio stopped the load.
        let mut tripped: Option<(u64, u64)> = None;
        // A block, so the running cycle's borrow of the fleet ends with it.
        let outcome = {
            let running = Driver::of(&mut self.fleet).run(&self.scenario.target, &spec, &live);
            tokio::pin!(running);
            let mut tick = tokio::time::interval(LIVE_REFRESH);
            let mut watch = tokio::time::interval(ABORT_WATCH);
            let stop_at = stop_at.unwrap_or_else(|| tokio::time::Instant::now() + FAR);
            let stopping = tokio::time::sleep_until(stop_at);
            tokio::pin!(stopping);
            loop {
                tokio::select! {
                    l = &mut running => break l,
                    _ = &mut stopping, if !live.stop.load(std::sync::atomic::Ordering::Relaxed) => {
                        live.stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    _ = watch.tick(), if tripped.is_none() => {
                        let (started, _, failed) = live.counts();
                        if abort_tripped(started, failed, abort_ratio) {
                            live.stop.store(true, std::sync::atomic::Ordering::Relaxed);
                            tripped = Some((started, failed));
                        }
                    }
                    _ = tick.tick() => {
                        let (started, completed, failed) = live.counts();
                        let open = started.saturating_sub(completed + failed);
                        self.progress.phase(
                            &self.phase_name,
                            format!("{started}/{sessions} sessions started, {open} open, {completed} done, {failed} failed"),
                        );
                    }
                }
            }
        };
        let l = match outcome {
            Ok(l) => l,
            Err(fault) => return Err(self.fleet_fault(fault).await),
        };
        self.check_alive()?;
        let failures = if l.failed > 0 {
            let causes: Vec<String> = l.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!(", {} failed ({})", l.failed, causes.join(", "))
        } else {
            String::new()
        };
        self.progress.line(format!(
            "{}: {} sessions done in {:.2} s{failures}",
            self.phase_name, l.completed, l.elapsed_s
        ));
        if l.completed == 0 {
            // Nothing reached the target: that is an error to fix, not a verdict.
            bail!(no_session_error(&self.scenario.target.url.to_string(), &l));
        }
        // A cycle may end before a check saw its ratio pass (failures on
        // loopback come fast): it counts the same, and no further cycle runs.
        let tripped = tripped.or_else(|| {
            abort_tripped(l.started, l.failed, abort_ratio).then_some((l.started, l.failed))
        });
        if let Some((started, failed)) = tripped {
            return Err(RunError::Aborted {
                reason: abort_reason(&self.phase_name, started, failed, abort_ratio, &l),
            }
            .into());
        }
        Ok(l)
    }

    /// An agent failed mid-cycle: every agent drops its sessions, the
    /// target gets one settle to come back, and the run ends inconclusive
    /// (an error before the baseline: nothing was measured yet).
    async fn fleet_fault(&mut self, fault: Fault) -> anyhow::Error {
        let what = fault.describe(&self.phase_name);
        self.progress.line(format!("{what}: aborting every agent"));
        if let Some(fleet) = self.fleet.as_mut() {
            fleet.abort(&what).await;
        }
        let Some(base) = self.baseline.clone() else {
            return anyhow::anyhow!(
                "{what}; a run needs every agent from the first cycle to the last: start it again"
            );
        };
        self.phase_name = format!("{} (aborted)", self.phase_name);
        let goal = Goal {
            baseline: Some(&base),
            quiet: None,
            steady: true,
            timeout: self.scenario.settle.timeout.min(CYCLE_SETTLE_CAP),
        };
        let tolerance = self.tolerance.clone().unwrap_or_default();
        if let Err(e) = self.settle(goal, &tolerance).await {
            self.progress
                .line(format!("the settle after the abort failed: {e:#}"));
        }
        RunError::Aborted {
            reason: format!(
                "{what}: the run cannot tell sessions it left half-open from a leak, and never \
                 goes on with fewer agents (that changes the sessions per cycle); run it again"
            ),
        }
        .into()
    }
}

/// Where a cycle's sessions run: here, or on the fleet's agents.
enum Driver<'a> {
    /// This process opens every session.
    Local,
    /// The load agents each open their share.
    Fleet(&'a mut Fleet),
}

impl<'a> Driver<'a> {
    fn of(fleet: &'a mut Option<Fleet>) -> Driver<'a> {
        match fleet {
            Some(f) => Driver::Fleet(f),
            None => Driver::Local,
        }
    }

    /// Runs one cycle of `spec` (the cycle's sessions and concurrency),
    /// counting into `live`; a fleet cycle may end in an agent's fault.
    async fn run(
        self,
        target: &Target,
        spec: &Load,
        live: &Arc<load::Live>,
    ) -> Result<CycleLoad, Fault> {
        match self {
            Driver::Local => Ok(load::run_cycle_observed(target, spec, live).await),
            Driver::Fleet(fleet) => fleet.cycle(spec, live).await,
        }
    }
}

/// Why the failure ratio stopped the load: the ratio, then the causes of
/// the whole cycle's failures and an example.
fn abort_reason(phase: &str, started: u64, failed: u64, ratio: f64, l: &CycleLoad) -> String {
    let causes: Vec<String> = l.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let example = l
        .failure_examples
        .first()
        .map(|e| format!("; e.g. {e}"))
        .unwrap_or_default();
    format!(
        "the run was stopped during {phase}: {failed} of {started} started sessions had failed \
         ({:.0}%, above load.abort_failure_ratio {ratio}); the cycle ended with {} failed ({}){example}",
        100.0 * failed as f64 / started.max(1) as f64,
        l.failed,
        causes.join(", ")
    )
}

fn no_session_error(url: &str, l: &CycleLoad) -> String {
    let example = l.failure_examples.first().cloned().unwrap_or_default();
    let causes: Vec<String> = l.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(
        "no session to {url} succeeded ({}): {example}",
        causes.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_abort_trips_past_its_ratio_once_enough_started() {
        assert!(!abort_tripped(19, 19, 0.5), "too few started");
        assert!(abort_tripped(20, 11, 0.5));
        assert!(!abort_tripped(20, 10, 0.5), "exactly half is not past it");
        assert!(!abort_tripped(1000, 1000, 1.0), "1.0 never trips");
        assert!(abort_tripped(1000, 11, 0.01));
    }

    #[test]
    fn the_abort_reason_names_the_ratio_and_the_causes() {
        let mut l = CycleLoad {
            failed: 180,
            ..CycleLoad::default()
        };
        l.failures.insert("refused".to_owned(), 180);
        l.failure_examples
            .push("refused at connect: Connection refused".to_owned());
        let r = abort_reason("cycle 2/3", 40, 30, 0.5, &l);
        assert!(
            r.starts_with("the run was stopped during cycle 2/3: 30 of 40"),
            "{r}"
        );
        assert!(r.contains("75%, above load.abort_failure_ratio 0.5"), "{r}");
        assert!(r.contains("180 failed (refused 180)"), "{r}");
        assert!(r.contains("e.g. refused at connect"), "{r}");
    }
}
