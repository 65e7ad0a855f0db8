//! One cycle of load, driven from the protocol: the probe's connections
//! closed first, live session counts while it runs, and an error (not a
//! verdict) when no session reached the target.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::Session;
use crate::load::{self, CycleLoad};

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
        let running = load::run_cycle_observed(&self.scenario.target, &spec, &live);
        tokio::pin!(running);
        let mut tick = tokio::time::interval(LIVE_REFRESH);
        let stop_at = stop_at.unwrap_or_else(|| tokio::time::Instant::now() + FAR);
        let stopping = tokio::time::sleep_until(stop_at);
        tokio::pin!(stopping);
        let l = loop {
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
}

fn no_session_error(url: &str, l: &CycleLoad) -> String {
    let example = l.failure_examples.first().cloned().unwrap_or_default();
    let causes: Vec<String> = l.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(
        "no session to {url} succeeded ({}): {example}",
        causes.join(", ")
    )
}
