//! The validator and what every section shares: the error it builds,
//! `${VAR}` expansion, placeholders, the loopback rule, counts, durations
//! and payload files; and the walk over the file's sections in order.

use std::path::Path;
use std::time::Duration;

use super::raw::FileScenario;
use super::{
    MAX_DURATION, MAX_PAYLOAD_FILE, PLACEHOLDERS, Scenario, ScenarioError, is_loopback_host,
};

/// Turns the file as written into a [`Scenario`], or the first error.
pub(super) struct Validator<'a> {
    /// The scenario file, named in every error.
    pub(super) path: &'a Path,
}

impl Validator<'_> {
    /// Replaces each `${NAME}` with the environment variable NAME, so that
    /// secrets and ports need not be written in the file.
    pub(super) fn expand(&self, key: &str, text: &str) -> Result<String, ScenarioError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| {
                self.invalid(key, "has `${` without a closing `}`; write ${NAME}")
            })?;
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.invalid(
                    key,
                    format!("`${{{name}}}` is not a variable name; use letters, digits and _"),
                ));
            }
            let value = std::env::var(name).map_err(|_| {
                self.invalid(
                    key,
                    format!("environment variable {name} is not set (used as ${{{name}}})"),
                )
            })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    pub(super) fn invalid(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// Validates the whole file, section by section in file order: target,
    /// load, settle, thresholds, signals, secrets.
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
        let load = self.load(file.load, target.transport, &dir)?;
        let settle = self.settle(file.settle)?;
        let thresholds = self.thresholds(file.thresholds)?;
        let signals = self.signals(file.signals, &target)?;
        let secrets = self.secrets(file.secrets)?;
        Ok(Scenario {
            name,
            path: self.path.to_owned(),
            target,
            load,
            settle,
            thresholds,
            signals,
            secrets,
        })
    }

    /// Every `{{` opens one of [`PLACEHOLDERS`].
    pub(super) fn check_placeholders(&self, key: &str, text: &str) -> Result<(), ScenarioError> {
        let mut rest = text;
        while let Some(at) = rest.find("{{") {
            let tail = &rest[at..];
            match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
                Some(p) => rest = &tail[p.len()..],
                None => {
                    let shown: String = tail.chars().take(20).collect();
                    return Err(self.invalid(
                        key,
                        format!(
                            "unknown placeholder at `{shown}`; use {{{{session}}}} (the session's number) or {{{{token}}}} (a random token per session)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Load only goes to this machine: refuse any other host before a socket opens.
    pub(super) fn require_loopback(&self, key: &str, host: &str) -> Result<(), ScenarioError> {
        if is_loopback_host(host) {
            Ok(())
        } else {
            Err(self.invalid(
                key,
                format!(
                    "host `{host}` is not a loopback address; leakbench only drives load at \
                     127.0.0.0/8, ::1 or localhost"
                ),
            ))
        }
    }

    /// A file the scenario names, relative to its folder, at most
    /// [`MAX_PAYLOAD_FILE`] bytes.
    pub(super) fn read_file(
        &self,
        key: &str,
        path: &Path,
        dir: &Path,
    ) -> Result<Vec<u8>, ScenarioError> {
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            dir.join(path)
        };
        let len = std::fs::metadata(&full)
            .map_err(|e| self.invalid(key, format!("cannot read `{}`: {e}", full.display())))?
            .len();
        if len > MAX_PAYLOAD_FILE {
            return Err(self.invalid(
                key,
                format!(
                    "`{}` is {len} bytes; payload files are at most {MAX_PAYLOAD_FILE}",
                    full.display()
                ),
            ));
        }
        std::fs::read(&full)
            .map_err(|e| self.invalid(key, format!("cannot read `{}`: {e}", full.display())))
    }

    pub(super) fn count(
        &self,
        key: &str,
        value: Option<i64>,
        default: u32,
        min: u32,
        max: u32,
    ) -> Result<u32, ScenarioError> {
        let v = value.unwrap_or(i64::from(default));
        if v < i64::from(min) || v > i64::from(max) {
            return Err(self.invalid(
                key,
                format!("{v} is out of range; use a whole number from {min} to {max}"),
            ));
        }
        Ok(v as u32)
    }

    pub(super) fn duration(
        &self,
        key: &str,
        value: Option<String>,
        default: Duration,
    ) -> Result<Duration, ScenarioError> {
        match value {
            None => Ok(default),
            Some(text) => {
                let d = humantime::parse_duration(text.trim()).map_err(|e| {
                    self.invalid(
                        key,
                        format!(
                            "`{text}` is not a duration ({e}); write e.g. \"500ms\", \"5s\" or \"2m\""
                        ),
                    )
                })?;
                if d > MAX_DURATION {
                    return Err(self.invalid(key, format!("`{text}` is longer than a day")));
                }
                Ok(d)
            }
        }
    }
}
