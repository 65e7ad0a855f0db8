//! `[settle]` and `[thresholds]`: how long to wait for the target to come
//! back, and how much growth per cycle counts as real.

use std::time::Duration;

use toml::Spanned;

use super::raw::{FileSettle, FileThresholds};
use super::validate::Validator;
use super::{DEFAULT_SETTLE_TIMEOUT, ScenarioError, Settle, Thresholds};

impl Validator<'_> {
    /// `[settle]`: the longest wait per cycle, at least 100ms.
    pub(super) fn settle(&self, file: FileSettle) -> Result<Settle, ScenarioError> {
        let settle = Settle {
            timeout: self.duration(
                "settle.timeout",
                file.timeout.as_ref(),
                DEFAULT_SETTLE_TIMEOUT,
            )?,
        };
        // Only a written timeout can be this short: the default is 30 s.
        if let Some(given) = &file.timeout {
            if settle.timeout < Duration::from_millis(100) {
                return Err(self.invalid(
                    "settle.timeout",
                    given.span(),
                    "must be at least 100ms; the target needs time to release sessions",
                ));
            }
        }
        Ok(settle)
    }

    /// `[thresholds]`: each a non-negative number, or its default.
    pub(super) fn thresholds(&self, file: FileThresholds) -> Result<Thresholds, ScenarioError> {
        let d = Thresholds::default();
        let pick = |key: &str,
                    v: Option<Spanned<f64>>,
                    default: f64|
         -> Result<f64, ScenarioError> {
            let Some(v) = v else {
                return Ok(default);
            };
            match *v.get_ref() {
                x if x.is_finite() && x >= 0.0 => Ok(x),
                x => Err(self.invalid(key, v.span(), format!("{x} is not a non-negative number"))),
            }
        };
        Ok(Thresholds {
            goroutines: pick("thresholds.goroutines", file.goroutines, d.goroutines)?,
            heap_bytes: pick("thresholds.heap_bytes", file.heap_bytes, d.heap_bytes)?,
            heap_objects: pick("thresholds.heap_objects", file.heap_objects, d.heap_objects)?,
            heap_bytes_per_session: pick(
                "thresholds.heap_bytes_per_session",
                file.heap_bytes_per_session,
                d.heap_bytes_per_session,
            )?,
            heap_objects_per_session: pick(
                "thresholds.heap_objects_per_session",
                file.heap_objects_per_session,
                d.heap_objects_per_session,
            )?,
            fds: pick("thresholds.fds", file.fds, d.fds)?,
        })
    }
}
