//! The validator and what every section shares: the error it builds (with
//! the line and column of the value at fault), `${VAR}` expansion,
//! placeholders, the loopback rule, counts, durations and payload files; and
//! the walk over the file's sections in order.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::FileScenario;
use super::{
    MAX_DURATION, MAX_PAYLOAD_FILE, PLACEHOLDERS, Policy, Scenario, ScenarioError, suggest,
};

/// Turns the file as written into a [`Scenario`], or the first error.
pub(super) struct Validator<'a> {
    /// The scenario file, named in every error.
    pub(super) path: &'a Path,
    /// Its text, against which the spans of values become line and column.
    pub(super) text: &'a str,
    /// The hosts the command line allows besides loopback.
    pub(super) policy: &'a Policy,
}

impl Validator<'_> {
    /// Replaces each `${NAME}` with the environment variable NAME, so that
    /// secrets and ports need not be written in the file. `at` is where
    /// `text` was written.
    pub(super) fn expand(
        &self,
        key: &str,
        text: &str,
        at: Range<usize>,
    ) -> Result<String, ScenarioError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| {
                self.invalid(
                    key,
                    at.clone(),
                    "has `${` without a closing `}`; write ${NAME}",
                )
            })?;
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.invalid(
                    key,
                    at,
                    format!("`${{{name}}}` is not a variable name; use letters, digits and _"),
                ));
            }
            let value = std::env::var(name).map_err(|_| {
                self.invalid(
                    key,
                    at.clone(),
                    format!("environment variable {name} is not set (used as ${{{name}}})"),
                )
            })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The error for the value at `key`, written at byte range `at` of the
    /// file: its line and column are those of the value's first character.
    pub(super) fn invalid(
        &self,
        key: &str,
        at: Range<usize>,
        message: impl Into<String>,
    ) -> ScenarioError {
        let (line, column, _) = suggest::position(self.text, at.start.min(self.text.len()));
        ScenarioError::Invalid {
            path: self.path.to_owned(),
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// Validates the whole file, section by section in file order: target,
    /// load, settle, thresholds, verdict, signals, secrets.
    pub(super) fn scenario(&self, file: FileScenario) -> Result<Scenario, ScenarioError> {
        // Absolute, so that a started target's program and working
        // directory mean the same thing whatever its cwd.
        let parent = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        let name = file.name.unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".to_owned())
        });
        let target = self.target(file.target, &dir)?;
        let remote = !super::is_loopback_host(target.url.host().unwrap_or_default());
        let load = self.load(file.load, target.transport, remote, &dir)?;
        let settle = self.settle(file.settle)?;
        let thresholds = self.thresholds(file.thresholds)?;
        let verdict = self.verdict(file.verdict, &load)?;
        let signals = self.signals(file.signals, &target)?;
        let secrets = self.secrets(file.secrets)?;
        Ok(Scenario {
            name,
            path: self.path.to_owned(),
            target,
            load,
            settle,
            thresholds,
            verdict,
            signals,
            secrets,
        })
    }

    /// Every `{{` opens one of [`PLACEHOLDERS`].
    pub(super) fn check_placeholders(
        &self,
        key: &str,
        text: &str,
        at: Range<usize>,
    ) -> Result<(), ScenarioError> {
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let tail = &rest[open..];
            match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
                Some(p) => rest = &tail[p.len()..],
                None => {
                    let shown: String = tail.chars().take(20).collect();
                    return Err(self.invalid(
                        key,
                        at,
                        format!(
                            "unknown placeholder at `{shown}`; use {{{{session}}}} (the session's number) or {{{{token}}}} (a random token per session)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Load and probes go to this machine, or to a host the command line
    /// allowed (`--allow-remote`): refuse any other before a socket opens.
    pub(super) fn require_allowed(
        &self,
        key: &str,
        host: &str,
        at: Range<usize>,
    ) -> Result<(), ScenarioError> {
        self.policy
            .check_host(host)
            .map_err(|refused| self.invalid(key, at, refused.0))
    }

    /// A file the scenario names, relative to its folder, at most
    /// [`MAX_PAYLOAD_FILE`] bytes.
    pub(super) fn read_file(
        &self,
        key: &str,
        path: &Spanned<PathBuf>,
        dir: &Path,
    ) -> Result<Vec<u8>, ScenarioError> {
        let at = path.span();
        let path = path.get_ref();
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            dir.join(path)
        };
        let cannot_read = |e: std::io::Error| {
            self.invalid(
                key,
                at.clone(),
                format!("cannot read `{}`: {e}", full.display()),
            )
        };
        let len = std::fs::metadata(&full).map_err(cannot_read)?.len();
        if len > MAX_PAYLOAD_FILE {
            return Err(self.invalid(
                key,
                at.clone(),
                format!(
                    "`{}` is {len} bytes; payload files are at most {MAX_PAYLOAD_FILE}",
                    full.display()
                ),
            ));
        }
        std::fs::read(&full).map_err(cannot_read)
    }

    /// A whole number from `min` to `max`, or `default` when not given
    /// (every caller's default is in its range).
    pub(super) fn count(
        &self,
        key: &str,
        value: Option<&Spanned<i64>>,
        default: u32,
        min: u32,
        max: u32,
    ) -> Result<u32, ScenarioError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let v = *value.get_ref();
        if v < i64::from(min) || v > i64::from(max) {
            return Err(self.invalid(
                key,
                value.span(),
                format!("{v} is out of range; use a whole number from {min} to {max}"),
            ));
        }
        Ok(v as u32)
    }

    /// A duration of at most a day, or `default` when not given.
    pub(super) fn duration(
        &self,
        key: &str,
        value: Option<&Spanned<String>>,
        default: Duration,
    ) -> Result<Duration, ScenarioError> {
        match value {
            None => Ok(default),
            Some(given) => {
                let text = given.get_ref();
                let d = humantime::parse_duration(text.trim()).map_err(|e| {
                    self.invalid(
                        key,
                        given.span(),
                        format!(
                            "`{text}` is not a duration ({e}); write e.g. \"500ms\", \"5s\" or \"2m\""
                        ),
                    )
                })?;
                if d > MAX_DURATION {
                    return Err(self.invalid(
                        key,
                        given.span(),
                        format!("`{text}` is longer than a day"),
                    ));
                }
                Ok(d)
            }
        }
    }
}
