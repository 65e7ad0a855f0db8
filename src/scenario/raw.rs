//! The scenario file as written: serde types that mirror the TOML key for
//! key, with unknown keys refused (`deny_unknown_fields`). Nothing here is
//! checked beyond its TOML type; the section validators turn these into the
//! public types of the parent module.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{CloseMode, HttpConnection, SignalUnit};

/// The whole file: the top-level keys and tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileScenario {
    pub(super) name: Option<String>,
    pub(super) target: FileTarget,
    pub(super) load: FileLoad,
    #[serde(default)]
    pub(super) settle: FileSettle,
    #[serde(default)]
    pub(super) thresholds: FileThresholds,
    #[serde(default)]
    pub(super) signals: Vec<FileSignal>,
    #[serde(default)]
    pub(super) secrets: FileSecrets,
}

/// `[secrets]`: what, beyond the always-secret headers, is redacted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSecrets {
    #[serde(default)]
    pub(super) headers: Vec<String>,
    #[serde(default)]
    pub(super) query: Vec<String>,
    #[serde(default)]
    pub(super) env: Vec<String>,
}

/// One `[[signals]]` table: a Prometheus series to watch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSignal {
    pub(super) metric: String,
    pub(super) name: Option<String>,
    pub(super) unit: Option<SignalUnit>,
    pub(super) threshold: Option<f64>,
    pub(super) decides: Option<bool>,
}

/// `[target]`: the service under test and where to read it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTarget {
    pub(super) url: String,
    pub(super) pprof: Option<String>,
    pub(super) command: Option<Vec<String>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    pub(super) cwd: Option<PathBuf>,
    pub(super) ready_timeout: Option<String>,
    pub(super) metrics: Option<String>,
    pub(super) expvar: Option<String>,
    pub(super) pid: Option<i64>,
    pub(super) ready: Option<String>,
    pub(super) probe_timeout: Option<String>,
    pub(super) tls: Option<FileTls>,
}

/// `[target.tls]`: how wss and https sessions trust the server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTls {
    pub(super) ca_file: Option<PathBuf>,
    pub(super) insecure: Option<bool>,
    pub(super) server_name: Option<String>,
}

/// `[load]`: sessions, cycles, and what each session does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLoad {
    pub(super) sessions: i64,
    pub(super) concurrency: Option<i64>,
    pub(super) warmup: Option<i64>,
    pub(super) cycles: Option<i64>,
    pub(super) hold: Option<String>,
    pub(super) close: Option<CloseMode>,
    pub(super) requests: Option<i64>,
    pub(super) method: Option<String>,
    pub(super) step_timeout: Option<String>,
    pub(super) max_failure_ratio: Option<f64>,
    #[serde(default)]
    pub(super) steps: Vec<FileStep>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    pub(super) body: Option<String>,
    pub(super) body_file: Option<PathBuf>,
    pub(super) expect_status: Option<Vec<i64>>,
    pub(super) connection: Option<HttpConnection>,
    pub(super) subprotocols: Option<Vec<String>>,
    pub(super) rate: Option<f64>,
    pub(super) ramp: Option<String>,
    pub(super) source_addresses: Option<Vec<String>>,
}

/// One `[[load.steps]]` table (or a nested `[[load.steps.steps]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileStep {
    pub(super) send: Option<String>,
    pub(super) send_base64: Option<String>,
    pub(super) send_file: Option<PathBuf>,
    pub(super) binary: Option<bool>,
    pub(super) expect: Option<String>,
    pub(super) expect_regex: Option<String>,
    pub(super) ping: Option<String>,
    pub(super) pause: Option<String>,
    pub(super) repeat: Option<i64>,
    pub(super) steps: Option<Vec<FileStep>>,
    pub(super) timeout: Option<String>,
}

/// `[settle]`: how long to wait for the target to come back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSettle {
    pub(super) timeout: Option<String>,
}

/// `[thresholds]`: growth per cycle that counts as real.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileThresholds {
    pub(super) goroutines: Option<f64>,
    pub(super) heap_bytes: Option<f64>,
    pub(super) heap_objects: Option<f64>,
    pub(super) heap_bytes_per_session: Option<f64>,
    pub(super) heap_objects_per_session: Option<f64>,
    pub(super) fds: Option<f64>,
}
