//! Reading the target during a run: settles and snapshots through the
//! sources, with a failed read of a started target that has exited reported
//! as its exit.

use anyhow::Result;

use super::{EXIT_SEEN_WITHIN, RunError, Session};
use crate::probe::Snapshot;
use crate::settle::{self, Goal, Settled, Tolerance};
use crate::sources::{Reading, SourceError};

impl Session<'_> {
    /// Settles towards `goal`, each poll on the timeline and the live line.
    pub(super) async fn settle(
        &mut self,
        goal: Goal<'_>,
        tolerance: &Tolerance,
    ) -> Result<Settled> {
        let start = self.progress.start;
        let phase = self.phase_name.clone();
        let timeline = &mut self.timeline;
        let progress = &self.progress;
        let mut polls = 0;
        self.progress.phase(&phase, "settling");
        let result = settle::settle(&mut self.sources, goal, tolerance, |r| {
            polls += 1;
            progress.settle_poll(polls, r, goal.baseline);
            timeline.push(start.elapsed().as_secs_f64(), &phase, r);
        })
        .await;
        self.source_result(result).await
    }

    /// A full measurement with profiles.
    pub(super) async fn snapshot(&mut self) -> Result<(Reading, Option<Snapshot>)> {
        let result = self.sources.snapshot().await;
        self.source_result(result).await
    }

    /// A failed read of a started target that has exited is reported as the exit.
    pub(super) async fn source_result<T>(&mut self, result: Result<T, SourceError>) -> Result<T> {
        let e = match result {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if let Some(t) = self.launched.as_deref_mut() {
            t.exited_within(EXIT_SEEN_WITHIN).await;
        }
        match self.check_alive() {
            Err(died) => Err(died),
            Ok(()) => Err(anyhow::Error::new(e)
                .context(format!("reading the target during {}", self.phase_name))),
        }
    }

    /// An error naming the exit when a started target has exited.
    pub(super) fn check_alive(&mut self) -> Result<()> {
        if let Some(t) = self.launched.as_deref_mut() {
            if let Some(status) = t.exited() {
                return Err(RunError::TargetDied {
                    status: status.to_string(),
                    phase: self.phase_name.clone(),
                    log: t.log_path().display().to_string(),
                    tail: t.log_tail(20),
                }
                .into());
            }
        }
        Ok(())
    }
}
