//! `[[signals]]`: extra series read from the target's Prometheus source,
//! each with a name, a unit, an optional threshold and whether it decides.

use toml::Spanned;

use super::raw::FileSignal;
use super::validate::Validator;
use super::{ScenarioError, SignalDef, Target, Unit};

impl Validator<'_> {
    /// `[[signals]]`, each read from the Prometheus source of `target`.
    pub(super) fn signals(
        &self,
        file: Vec<Spanned<FileSignal>>,
        target: &Target,
    ) -> Result<Vec<SignalDef>, ScenarioError> {
        let mut signals = Vec::with_capacity(file.len());
        for (i, sig) in file.into_iter().enumerate() {
            let key = format!("signals[{i}]");
            let table = sig.span();
            let sig = sig.into_inner();
            if target.metrics.is_none() {
                return Err(self.invalid(
                    &key,
                    table,
                    "reads from the Prometheus source: set target.metrics to its /metrics URL",
                ));
            }
            let selector = crate::prom::Selector::parse(sig.metric.get_ref()).map_err(|e| {
                self.invalid(
                    &format!("{key}.metric"),
                    sig.metric.span(),
                    format!(
                        "{} (write e.g. 'jvm_memory_used_bytes{{area=\"heap\"}}')",
                        e.message
                    ),
                )
            })?;
            if let Some(t) = &sig.threshold {
                let v = *t.get_ref();
                if !v.is_finite() || v < 0.0 {
                    return Err(self.invalid(
                        &format!("{key}.threshold"),
                        t.span(),
                        format!("{v} is not a non-negative number"),
                    ));
                }
            }
            let metric = sig.metric.into_inner();
            let name = sig.name.unwrap_or_else(|| metric.trim().to_owned());
            signals.push(SignalDef {
                name,
                selector,
                unit: sig.unit.unwrap_or(Unit::Count),
                threshold: sig.threshold.map(Spanned::into_inner),
                decides: sig.decides.unwrap_or(true),
            });
        }
        Ok(signals)
    }
}
