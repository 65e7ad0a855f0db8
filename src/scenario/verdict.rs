//! `[verdict]`: the escalation's switch and budgets.

use super::raw::FileVerdict;
use super::validate::Validator;
use super::{DEFAULT_MAX_TIME, Escalation, Load, ScenarioError, default_max_sessions};

/// The largest session budget a file may ask for.
const MAX_BUDGET: u32 = 10_000_000;

impl Validator<'_> {
    /// `[verdict]`: `escalate`, `max_sessions` (at least the scenario's own
    /// cycles' sessions) and `max_time` (at least one second).
    pub(super) fn verdict(
        &self,
        file: FileVerdict,
        load: &Load,
    ) -> Result<Escalation, ScenarioError> {
        let own = u64::from(load.cycles) * u64::from(load.sessions);
        let max_sessions = match &file.max_sessions {
            None => default_max_sessions(load),
            Some(given) => {
                let v = self.count("verdict.max_sessions", Some(given), 0, 1, MAX_BUDGET)?;
                if u64::from(v) < own {
                    return Err(self.invalid(
                        "verdict.max_sessions",
                        given.span(),
                        format!(
                            "{v} is fewer than the measured cycles serve on their own \
                             ({} cycles of {} = {own}); give at least {own}, or set \
                             verdict.escalate = false",
                            load.cycles, load.sessions
                        ),
                    ));
                }
                u64::from(v)
            }
        };
        let max_time =
            self.duration("verdict.max_time", file.max_time.as_ref(), DEFAULT_MAX_TIME)?;
        if let Some(given) = &file.max_time {
            if max_time < std::time::Duration::from_secs(1) {
                return Err(self.invalid(
                    "verdict.max_time",
                    given.span(),
                    "must be at least 1s; escalation cycles need time to run",
                ));
            }
        }
        Ok(Escalation {
            escalate: file.escalate.is_none_or(|b| *b.get_ref()),
            max_sessions,
            max_time,
        })
    }
}
