//! One cycle of load, driven from the protocol: the probe's connections
//! closed first, live session counts while it runs, and an error (not a
//! verdict) when no session reached the target. The sessions run here or,
//! with `--agents N`, on the fleet's load agents; a fleet agent's fault
//! ends the run inconclusive after one settle.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::escalate::CYCLE_SETTLE_CAP;
use super::{RunError, Session};
use crate::fleet::Fleet;
use crate::fleet::coordinator::Fault;
use crate::load::{self, CycleLoad};
use crate::scenario::{Load, Target};
use crate::settle::Goal;

/// A stop time that never comes (Instant + Duration::MAX would overflow).
const FAR: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the live line redraws session counts during a cycle.
const LIVE_REFRESH: Duration = Duration::from_millis(200);

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
        // A block, so the running cycle's borrow of the fleet ends with it.
        let outcome = {
            let running = Driver::of(&mut self.fleet).run(&self.scenario.target, &spec, &live);
            tokio::pin!(running);
            let mut tick = tokio::time::interval(LIVE_REFRESH);
            let stop_at = stop_at.unwrap_or_else(|| tokio::time::Instant::now() + FAR);
            let stopping = tokio::time::sleep_until(stop_at);
            tokio::pin!(stopping);
            loop {
                tokio::select! {
                    l = &mut running => break l,
                    _ = &mut stopping, if !live.stop.load(std::sync::atomic::Ordering::Relaxed) => {
                        live.stop.store(true, std::sync::atomic::Ordering::Relaxed);
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

fn no_session_error(url: &str, l: &CycleLoad) -> String {
    let example = l.failure_examples.first().cloned().unwrap_or_default();
    let causes: Vec<String> = l.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(
        "no session to {url} succeeded ({}): {example}",
        causes.join(", ")
    )
}
