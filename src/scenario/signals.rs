//! `[[signals]]`: extra series read from the target's Prometheus source,
//! each with a name, a unit, an optional threshold and whether it decides.

use super::raw::FileSignal;
use super::validate::Validator;
use super::{ScenarioError, SignalDef, SignalUnit, Target};

impl Validator<'_> {
    /// `[[signals]]`, each read from the Prometheus source of `target`.
    pub(super) fn signals(
        &self,
        file: Vec<FileSignal>,
        target: &Target,
    ) -> Result<Vec<SignalDef>, ScenarioError> {
        let mut signals = Vec::with_capacity(file.len());
        for (i, sig) in file.into_iter().enumerate() {
            let key = format!("signals[{i}]");
            if target.metrics.is_none() {
                return Err(self.invalid(
                    &key,
                    "reads from the Prometheus source: set target.metrics to its /metrics URL",
                ));
            }
            let selector = crate::prom::Selector::parse(&sig.metric).map_err(|e| {
                self.invalid(
                    &format!("{key}.metric"),
                    format!(
                        "{} (write e.g. 'jvm_memory_used_bytes{{area=\"heap\"}}')",
                        e.message
                    ),
                )
            })?;
            if let Some(t) = sig.threshold {
                if !t.is_finite() || t < 0.0 {
                    return Err(self.invalid(
                        &format!("{key}.threshold"),
                        format!("{t} is not a non-negative number"),
                    ));
                }
            }
            let name = sig.name.unwrap_or_else(|| sig.metric.trim().to_owned());
            signals.push(SignalDef {
                name,
                selector,
                unit: sig.unit.unwrap_or(SignalUnit::Count),
                threshold: sig.threshold,
                decides: sig.decides.unwrap_or(true),
            });
        }
        Ok(signals)
    }
}
