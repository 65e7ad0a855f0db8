//! `[[load.steps]]`: what a websocket session does after its handshake,
//! one action per step, with `repeat` blocks nested a bounded depth.

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::raw::FileStep;
use super::validate::Validator;
use super::{MAX_STEP_NESTING, Matcher, ScenarioError, Step};

impl Validator<'_> {
    /// Websocket steps at `key`, nested blocks at most [`MAX_STEP_NESTING`] deep.
    pub(super) fn steps(
        &self,
        key: &str,
        file: Vec<Spanned<FileStep>>,
        dir: &Path,
        depth: usize,
    ) -> Result<Vec<Step>, ScenarioError> {
        let mut steps = Vec::with_capacity(file.len());
        for (i, step) in file.into_iter().enumerate() {
            steps.push(self.step(&format!("{key}[{i}]"), step, dir, depth)?);
        }
        Ok(steps)
    }

    /// One step at `key`, `depth` repeat blocks deep; errors about the
    /// step as a whole point at its table.
    pub(super) fn step(
        &self,
        key: &str,
        f: Spanned<FileStep>,
        dir: &Path,
        depth: usize,
    ) -> Result<Step, ScenarioError> {
        let table = f.span();
        let f = f.into_inner();
        let actions = [
            f.send.is_some(),
            f.send_base64.is_some(),
            f.send_file.is_some(),
            f.expect.is_some(),
            f.expect_regex.is_some(),
            f.ping.is_some(),
            f.pause.is_some(),
            f.repeat.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            return Err(self.invalid(
                key,
                table,
                "each step takes exactly one of `send`, `send_base64`, `send_file`, `expect`, \
                 `expect_regex`, `ping`, `pause` or `repeat` (with `steps`)",
            ));
        }
        let timeout = match &f.timeout {
            None => None,
            Some(t) if f.pause.is_some() || f.repeat.is_some() => {
                return Err(self.invalid(
                    &format!("{key}.timeout"),
                    t.span(),
                    "applies to send, expect and ping steps only",
                ));
            }
            Some(t) => {
                let d = self.duration(&format!("{key}.timeout"), Some(t), Duration::ZERO)?;
                if d.is_zero() {
                    return Err(self.invalid(
                        &format!("{key}.timeout"),
                        t.span(),
                        "must be above zero",
                    ));
                }
                Some(d)
            }
        };
        if let (Some(binary), None) = (&f.binary, &f.send_file) {
            return Err(self.invalid(
                &format!("{key}.binary"),
                binary.span(),
                "applies to `send_file` only (`send` is text, `send_base64` is binary)",
            ));
        }
        if f.steps.is_some() && f.repeat.is_none() {
            // The block's first table, or this step's when the block is empty.
            let at = f
                .steps
                .iter()
                .flatten()
                .next()
                .map_or(table.clone(), Spanned::span);
            return Err(self.invalid(
                &format!("{key}.steps"),
                at,
                "needs `repeat = N` in the same step",
            ));
        }
        if let Some(text) = f.send {
            let at = text.span();
            let text = self.expand(key, text.get_ref(), at.clone())?;
            self.check_placeholders(key, &text, at)?;
            return Ok(Step::Send { text, timeout });
        }
        if let Some(b64) = f.send_base64 {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.get_ref().trim())
                .map_err(|e| {
                    self.invalid(
                        &format!("{key}.send_base64"),
                        b64.span(),
                        format!("is not base64: {e}"),
                    )
                })?;
            return Ok(Step::SendBinary { bytes, timeout });
        }
        if let Some(path) = f.send_file {
            let bytes = self.read_file(&format!("{key}.send_file"), &path, dir)?;
            if f.binary.map(Spanned::into_inner).unwrap_or(true) {
                return Ok(Step::SendBinary { bytes, timeout });
            }
            let text = String::from_utf8(bytes).map_err(|_| {
                self.invalid(
                    &format!("{key}.send_file"),
                    path.span(),
                    "is not UTF-8 text; drop `binary = false` to send it as a binary message",
                )
            })?;
            return Ok(Step::Send { text, timeout });
        }
        if let Some(text) = f.expect {
            let at = text.span();
            let text = self.expand(key, text.get_ref(), at.clone())?;
            self.check_placeholders(key, &text, at)?;
            return Ok(Step::Expect {
                matcher: Matcher::Contains(text),
                timeout,
            });
        }
        if let Some(pattern) = f.expect_regex {
            regex::Regex::new(pattern.get_ref()).map_err(|e| {
                self.invalid(
                    &format!("{key}.expect_regex"),
                    pattern.span(),
                    format!("is not a regular expression: {e}"),
                )
            })?;
            return Ok(Step::Expect {
                matcher: Matcher::Regex(pattern.into_inner()),
                timeout,
            });
        }
        if let Some(payload) = f.ping {
            if payload.get_ref().len() > 125 {
                return Err(self.invalid(
                    &format!("{key}.ping"),
                    payload.span(),
                    "a ping payload is at most 125 bytes",
                ));
            }
            return Ok(Step::Ping {
                payload: payload.into_inner().into_bytes(),
                timeout,
            });
        }
        if let Some(pause) = &f.pause {
            return Ok(Step::Pause(self.duration(
                &format!("{key}.pause"),
                Some(pause),
                Duration::ZERO,
            )?));
        }
        let times = self.count(&format!("{key}.repeat"), f.repeat.as_ref(), 1, 1, 1_000_000)?;
        if depth >= MAX_STEP_NESTING {
            return Err(self.invalid(
                key,
                table,
                format!("repeat blocks nest at most {MAX_STEP_NESTING} deep"),
            ));
        }
        let inner = f.steps.unwrap_or_default();
        if inner.is_empty() {
            return Err(self.invalid(
                &format!("{key}.steps"),
                table,
                "a repeat needs its block: add [[load.steps.steps]] tables after it",
            ));
        }
        let steps = self.steps(&format!("{key}.steps"), inner, dir, depth + 1)?;
        Ok(Step::Repeat { times, steps })
    }
}
