//! The scenario file as written: serde types that mirror the TOML key for
//! key, with unknown keys refused (`deny_unknown_fields`). Nothing here is
//! checked beyond its TOML type; the section validators turn these into the
//! public types of the parent module.
//!
//! Every value a validator can reject is a [`Spanned`], so that its error
//! names the line and column it was written at; so are the tables whose
//! errors are about what they lack (`[target]`, `[target.tls]`, a step, a
//! signal).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{CloseMode, HttpConnection, Unit};

/// The whole file: the top-level keys and tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileScenario {
    pub(super) name: Option<String>,
    pub(super) target: Spanned<FileTarget>,
    pub(super) load: FileLoad,
    #[serde(default)]
    pub(super) settle: FileSettle,
    #[serde(default)]
    pub(super) thresholds: FileThresholds,
    #[serde(default)]
    pub(super) verdict: FileVerdict,
    #[serde(default)]
    pub(super) signals: Vec<Spanned<FileSignal>>,
    #[serde(default)]
    pub(super) secrets: FileSecrets,
}

/// `[secrets]`: what, beyond the always-secret headers, is redacted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSecrets {
    #[serde(default)]
    pub(super) headers: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) query: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) env: Vec<Spanned<String>>,
}

/// One `[[signals]]` table: a Prometheus series to watch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSignal {
    pub(super) metric: Spanned<String>,
    pub(super) name: Option<String>,
    pub(super) unit: Option<Unit>,
    pub(super) threshold: Option<Spanned<f64>>,
    pub(super) decides: Option<bool>,
}

/// `[target]`: the service under test and where to read it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTarget {
    pub(super) url: Spanned<String>,
    pub(super) pprof: Option<Spanned<String>>,
    pub(super) command: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, Spanned<String>>,
    pub(super) cwd: Option<PathBuf>,
    pub(super) ready_timeout: Option<Spanned<String>>,
    pub(super) metrics: Option<Spanned<String>>,
    pub(super) expvar: Option<Spanned<String>>,
    pub(super) pid: Option<Spanned<i64>>,
    pub(super) ready: Option<Spanned<String>>,
    pub(super) probe_timeout: Option<Spanned<String>>,
    pub(super) tls: Option<Spanned<FileTls>>,
}

/// `[target.tls]`: how wss and https sessions trust the server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTls {
    pub(super) ca_file: Option<Spanned<PathBuf>>,
    pub(super) insecure: Option<bool>,
    pub(super) server_name: Option<Spanned<String>>,
}

/// `[load]`: sessions, cycles, and what each session does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLoad {
    pub(super) sessions: Spanned<i64>,
    pub(super) concurrency: Option<Spanned<i64>>,
    pub(super) warmup: Option<Spanned<i64>>,
    pub(super) cycles: Option<Spanned<i64>>,
    pub(super) hold: Option<Spanned<String>>,
    pub(super) close: Option<Spanned<CloseMode>>,
    pub(super) requests: Option<Spanned<i64>>,
    pub(super) method: Option<Spanned<String>>,
    pub(super) step_timeout: Option<Spanned<String>>,
    pub(super) max_failure_ratio: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) steps: Vec<Spanned<FileStep>>,
    #[serde(default)]
    pub(super) headers: BTreeMap<Spanned<String>, Spanned<String>>,
    pub(super) body: Option<Spanned<String>>,
    pub(super) body_file: Option<Spanned<PathBuf>>,
    pub(super) expect_status: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(super) connection: Option<Spanned<HttpConnection>>,
    pub(super) subprotocols: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) rate: Option<Spanned<f64>>,
    pub(super) ramp: Option<Spanned<String>>,
    pub(super) source_addresses: Option<Vec<Spanned<String>>>,
    pub(super) abort_failure_ratio: Option<Spanned<f64>>,
}

/// One `[[load.steps]]` table (or a nested `[[load.steps.steps]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileStep {
    pub(super) send: Option<Spanned<String>>,
    pub(super) send_base64: Option<Spanned<String>>,
    pub(super) send_file: Option<Spanned<PathBuf>>,
    pub(super) binary: Option<Spanned<bool>>,
    pub(super) expect: Option<Spanned<String>>,
    pub(super) expect_regex: Option<Spanned<String>>,
    pub(super) ping: Option<Spanned<String>>,
    pub(super) pause: Option<Spanned<String>>,
    pub(super) repeat: Option<Spanned<i64>>,
    pub(super) steps: Option<Vec<Spanned<FileStep>>>,
    pub(super) timeout: Option<Spanned<String>>,
}

/// `[settle]`: how long to wait for the target to come back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSettle {
    pub(super) timeout: Option<Spanned<String>>,
}

/// `[verdict]`: how far a run may escalate before it answers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileVerdict {
    pub(super) escalate: Option<Spanned<bool>>,
    pub(super) max_sessions: Option<Spanned<i64>>,
    pub(super) max_time: Option<Spanned<String>>,
}

/// `[thresholds]`: growth per cycle that counts as real.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileThresholds {
    pub(super) goroutines: Option<Spanned<f64>>,
    pub(super) heap_bytes: Option<Spanned<f64>>,
    pub(super) heap_objects: Option<Spanned<f64>>,
    pub(super) heap_bytes_per_session: Option<Spanned<f64>>,
    pub(super) heap_objects_per_session: Option<Spanned<f64>>,
    pub(super) fds: Option<Spanned<f64>>,
}
