//! The scenario file: TOML in, one validated [`Scenario`] out.
//!
//! Everything a run needs is decided here, before any socket opens: defaults
//! live in this module only, and every value is checked so that later stages
//! never see a zero session count or an unsupported scheme.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde::Deserialize;

/// Sessions per cycle when nothing else limits them: more than this needs the
/// load engine's multi-address spreading, which validation checks separately.
const MAX_SESSIONS: u32 = 1_000_000;

/// Default longest wait, per cycle, for the target to return to baseline.
/// Covers Go's common release windows (a few seconds of reconnect grace,
/// 30 s handler timeouts) without making a leaking run crawl.
pub const DEFAULT_SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default bound on one websocket `expect` step or one HTTP request.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Default share of sessions allowed to fail before the load is judged not to
/// have happened as specified (and the verdict becomes inconclusive).
pub const DEFAULT_MAX_FAILURE_RATIO: f64 = 0.01;

/// Default bound on one pprof fetch. Generous because a `debug=2` dump of
/// tens of thousands of goroutines stops the world and is tens of MB;
/// bounded so a target that trickles bytes cannot hang a run.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest duration any key accepts: a day is far beyond any sensible
/// setting, and keeps deadline arithmetic far from overflow.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A scenario that passed validation.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Label shown in reports; the file stem when the file gives none.
    pub name: String,
    /// The scenario file this came from.
    pub path: PathBuf,
    /// What is being tested.
    pub target: Target,
    /// What load is driven against it.
    pub load: Load,
    /// How long to wait for the target to come back.
    pub settle: Settle,
    /// Verdict thresholds (defaults unless the file overrides them).
    pub thresholds: Thresholds,
    /// Extra signals read from the Prometheus source.
    pub signals: Vec<SignalDef>,
    /// What, beyond the always-secret headers, must never be printed.
    pub secrets: Secrets,
}

/// Values to redact from every output (see `crate::redact`).
/// Authorization, Cookie and Proxy-Authorization header values are always
/// secret; these add to them.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// More header names whose `load.headers` values are secret.
    pub headers: Vec<http::HeaderName>,
    /// Query parameter names whose values in `target.url` and `target.pprof`
    /// are secret.
    pub query: Vec<String>,
    /// Values of the environment variables marked secret (`secrets.env`),
    /// read when the scenario was validated; unset variables are skipped.
    pub values: Vec<String>,
}

/// A user-named signal from `/metrics` (`[[signals]]`).
#[derive(Debug, Clone)]
pub struct SignalDef {
    /// Name in reports.
    pub name: String,
    /// Which series to read (matching series are summed).
    pub selector: crate::prom::Selector,
    /// Unit of its values.
    pub unit: SignalUnit,
    /// Growth per cycle below which a change is noise; default by unit.
    pub threshold: Option<f64>,
    /// Whether it takes part in the verdict.
    pub decides: bool,
}

/// Unit of a user-named signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalUnit {
    /// A count of things (handles, sessions, threads).
    Count,
    /// A size in bytes.
    Bytes,
}

/// How to tell that a started target is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// An http URL that must answer with a status below 400.
    Http(Uri),
    /// A TCP port that must accept a connection.
    Tcp(String, u16),
}

/// The service under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL sessions connect to.
    pub url: Uri,
    /// Websocket or HTTP, from the URL scheme.
    pub transport: Transport,
    /// Base URL of net/http/pprof, without a trailing slash; `None` when the
    /// target is read through other sources only.
    pub pprof: Option<Uri>,
    /// Prometheus text exposition URL.
    pub metrics: Option<Uri>,
    /// expvar URL (`/debug/vars`).
    pub expvar: Option<Uri>,
    /// Process to read /proc from when leakbench does not start the target.
    pub pid: Option<u32>,
    /// Readiness check for a started target (default: the sources answer).
    pub ready: Option<Ready>,
    /// Command to start the target with, program resolved; `None` when the
    /// target is already running.
    pub command: Option<Vec<String>>,
    /// Extra environment for a started target.
    pub env: BTreeMap<String, String>,
    /// Working directory for a started target (default: the scenario's folder).
    pub cwd: PathBuf,
    /// Longest wait for a started target to answer on its pprof endpoint.
    pub ready_timeout: Duration,
    /// Bound on each pprof fetch, connection included.
    pub probe_timeout: Duration,
}

/// The wire protocol of a session, from the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ws://` or `wss://`
    WebSocket,
    /// `http://` or `https://`
    Http,
}

/// How a session leaves the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloseMode {
    /// Websocket close frame and wait for the reply, then an orderly FIN.
    Graceful,
    /// TCP reset (SO_LINGER 0) with no close frame: the client vanishes.
    Abrupt,
}

/// One thing a websocket session does after its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this text message.
    Send(String),
    /// Wait (bounded by the step timeout) for a message containing this text.
    Expect(String),
}

/// The load of one cycle, and how many cycles.
#[derive(Debug, Clone)]
pub struct Load {
    /// Sessions opened per cycle.
    pub sessions: u32,
    /// Most sessions open at once.
    pub concurrency: u32,
    /// Unmeasured cycles before the baseline.
    pub warmup: u32,
    /// Measured cycles.
    pub cycles: u32,
    /// How long each session stays open after its steps.
    pub hold: Duration,
    /// How each session leaves.
    pub close: CloseMode,
    /// HTTP only: requests per session, on that session's one connection.
    pub requests: u32,
    /// HTTP only: the request method.
    pub method: String,
    /// Websocket only: what each session does after the handshake.
    pub steps: Vec<Step>,
    /// Extra request headers: on the websocket upgrade, or on every HTTP
    /// request. Values may come from `${VAR}`; Authorization, Cookie and
    /// Proxy-Authorization values are secrets.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Bound on each expect step, request and connection attempt.
    pub step_timeout: Duration,
    /// Share of failed sessions above which the load is judged not to have
    /// happened (verdict inconclusive).
    pub max_failure_ratio: f64,
}

/// Settle policy.
#[derive(Debug, Clone)]
pub struct Settle {
    /// Longest wait, per cycle, for the target to return to baseline.
    pub timeout: Duration,
}

/// Verdict thresholds: growth per measured cycle that counts as real.
///
/// A signal is judged to grow in a cycle when it rises by more than the
/// largest of its absolute floor, its per-session floor times the sessions of
/// a cycle, and a multiple of the idle noise measured at baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Goroutines per cycle that always count as growth.
    pub goroutines: f64,
    /// Heap bytes per cycle below which growth is noise.
    pub heap_bytes: f64,
    /// Heap objects per cycle below which growth is noise.
    pub heap_objects: f64,
    /// Heap bytes per session below which growth is noise.
    pub heap_bytes_per_session: f64,
    /// Open file descriptors per cycle that always count as growth.
    pub fds: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            // Goroutine counts are exact and an idle Go service holds them
            // steady; two per cycle is above timer and probe churn.
            goroutines: 2.0,
            // Live heap after forced GCs moves by tens of KiB between idle
            // measurements (runtime and pprof handler buffers); 64 KiB per
            // cycle sits above that noise and below a 1 KiB/session leak at
            // 100 sessions.
            heap_bytes: 64.0 * 1024.0,
            heap_objects: 256.0,
            // Below a quarter KiB per session nothing is attributable.
            heap_bytes_per_session: 256.0,
            // Descriptors are exact; like goroutines, two per cycle.
            fds: 2.0,
        }
    }
}

/// A scenario that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML did not parse or did not fit the schema.
    #[error("{}:{line}:{column}: {}{message}", path.display(), if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The dotted key at fault, e.g. `load.sesions` (may be empty).
        key: String,
        /// What is wrong, what was expected, and the nearest valid key
        /// for a typo.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key that is wrong, e.g. `load.sessions`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

// ---- the file as written -------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileScenario {
    name: Option<String>,
    target: FileTarget,
    load: FileLoad,
    #[serde(default)]
    settle: FileSettle,
    #[serde(default)]
    thresholds: FileThresholds,
    #[serde(default)]
    signals: Vec<FileSignal>,
    #[serde(default)]
    secrets: FileSecrets,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSecrets {
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    query: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSignal {
    metric: String,
    name: Option<String>,
    unit: Option<SignalUnit>,
    threshold: Option<f64>,
    decides: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTarget {
    url: String,
    pprof: Option<String>,
    command: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    ready_timeout: Option<String>,
    metrics: Option<String>,
    expvar: Option<String>,
    pid: Option<i64>,
    ready: Option<String>,
    probe_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLoad {
    sessions: i64,
    concurrency: Option<i64>,
    warmup: Option<i64>,
    cycles: Option<i64>,
    hold: Option<String>,
    close: Option<CloseMode>,
    requests: Option<i64>,
    method: Option<String>,
    step_timeout: Option<String>,
    max_failure_ratio: Option<f64>,
    #[serde(default)]
    steps: Vec<FileStep>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStep {
    send: Option<String>,
    expect: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettle {
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileThresholds {
    goroutines: Option<f64>,
    heap_bytes: Option<f64>,
    heap_objects: Option<f64>,
    heap_bytes_per_session: Option<f64>,
    fds: Option<f64>,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Validates scenario text; `path` names the file in errors and anchors
    /// relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let file: FileScenario = toml::from_str(text).map_err(|e| {
            let at = crate::suggest::locate(text, e.span(), e.message());
            ScenarioError::Syntax {
                path: path.to_owned(),
                line: at.line,
                column: at.column,
                key: at.key,
                message: at.message,
            }
        })?;
        Validator { path }.scenario(file)
    }
}

struct Validator<'a> {
    path: &'a Path,
}

impl Validator<'_> {
    /// Replaces each `${NAME}` with the environment variable NAME, so that
    /// secrets and ports need not be written in the file.
    fn expand(&self, key: &str, text: &str) -> Result<String, ScenarioError> {
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

    fn invalid(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn scenario(&self, file: FileScenario) -> Result<Scenario, ScenarioError> {
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
        let load = self.load(file.load, target.transport)?;
        let settle = Settle {
            timeout: self.duration(
                "settle.timeout",
                file.settle.timeout,
                DEFAULT_SETTLE_TIMEOUT,
            )?,
        };
        if settle.timeout < Duration::from_millis(100) {
            return Err(self.invalid(
                "settle.timeout",
                "must be at least 100ms; the target needs time to release sessions",
            ));
        }
        let thresholds = self.thresholds(file.thresholds)?;
        let mut signals = Vec::with_capacity(file.signals.len());
        for (i, sig) in file.signals.into_iter().enumerate() {
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

    fn secrets(&self, file: FileSecrets) -> Result<Secrets, ScenarioError> {
        let mut out = Secrets::default();
        for name in &file.headers {
            let header = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                self.invalid(
                    "secrets.headers",
                    format!("`{name}` is not an HTTP header name"),
                )
            })?;
            out.headers.push(header);
        }
        for name in file.query {
            if name.is_empty() || name.contains(['&', '=', '#']) {
                return Err(self.invalid(
                    "secrets.query",
                    format!("`{name}` is not a query parameter name"),
                ));
            }
            out.query.push(name);
        }
        for name in &file.env {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.invalid(
                    "secrets.env",
                    format!("`{name}` is not a variable name; use letters, digits and _"),
                ));
            }
            if let Ok(value) = std::env::var(name) {
                out.values.push(value);
            }
        }
        Ok(out)
    }

    fn target(&self, mut file: FileTarget, dir: &Path) -> Result<Target, ScenarioError> {
        file.url = self.expand("target.url", &file.url)?;
        if let Some(p) = &file.pprof {
            file.pprof = Some(self.expand("target.pprof", p)?);
        }
        if let Some(argv) = &mut file.command {
            for arg in argv.iter_mut() {
                *arg = self.expand("target.command", arg)?;
            }
        }
        for (name, value) in file.env.iter_mut() {
            *value = self.expand(&format!("target.env.{name}"), value)?;
        }
        let url: Uri = file.url.parse().map_err(|e| {
            self.invalid(
                "target.url",
                format!(
                    "`{}` is not a URL ({e}); write e.g. \"ws://127.0.0.1:8080/ws\"",
                    file.url
                ),
            )
        })?;
        let transport = match url.scheme_str() {
            Some("ws") | Some("wss") => Transport::WebSocket,
            Some("http") | Some("https") => Transport::Http,
            Some(other) => {
                return Err(self.invalid(
                    "target.url",
                    format!("unsupported scheme `{other}`; use ws, wss, http or https"),
                ));
            }
            None => {
                return Err(self.invalid(
                    "target.url",
                    format!(
                        "`{}` has no scheme; write e.g. \"ws://127.0.0.1:8080/ws\"",
                        file.url
                    ),
                ));
            }
        };
        if matches!(url.scheme_str(), Some("wss") | Some("https")) {
            return Err(self.invalid(
                "target.url",
                "TLS targets (wss, https) are not supported yet; test the plain listener",
            ));
        }
        let host = url
            .host()
            .ok_or_else(|| self.invalid("target.url", "has no host"))?;
        self.require_loopback("target.url", host)?;
        if url.port_u16() == Some(0) {
            return Err(self.invalid("target.url", "port 0 is not a port to connect to"));
        }
        let authority = url
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let authority = if url.port().is_some() {
            authority
        } else {
            format!("{host}:80")
        };

        let metrics = self.source_url(
            "target.metrics",
            file.metrics.as_deref(),
            "http://127.0.0.1:9100/metrics",
        )?;
        let expvar = self.source_url(
            "target.expvar",
            file.expvar.as_deref(),
            "http://127.0.0.1:8080/debug/vars",
        )?;
        // pprof is assumed at the target's own address only when no other
        // source is named: a metrics-only service has no /debug/pprof.
        let pprof_text = match file.pprof.as_deref() {
            Some("off") => None,
            Some(text) => Some(text.to_owned()),
            None if metrics.is_none() && expvar.is_none() => {
                Some(format!("http://{authority}/debug/pprof"))
            }
            None => None,
        };
        let pprof = match pprof_text {
            Some(text) => self.source_url(
                "target.pprof",
                Some(text.trim_end_matches('/')),
                "http://127.0.0.1:6060/debug/pprof",
            )?,
            None => None,
        };
        let pid = match file.pid {
            None => None,
            Some(p) if p > 0 && p <= i64::from(i32::MAX) => Some(p as u32),
            Some(p) => {
                return Err(self.invalid("target.pid", format!("{p} is not a process id")));
            }
        };
        if let Some(p) = pid {
            if !Path::new(&format!("/proc/{p}")).exists() {
                return Err(self.invalid(
                    "target.pid",
                    format!(
                        "no process {p} is running; start the target first or use target.command"
                    ),
                ));
            }
        }
        let ready = match file.ready.as_deref() {
            None => None,
            Some(text) => Some(self.ready(text)?),
        };

        let cwd = match file.cwd {
            Some(c) if c.is_absolute() => c,
            Some(c) => dir.join(c),
            None => dir.to_path_buf(),
        };
        let command = match file.command {
            None => None,
            Some(argv) if argv.is_empty() || argv[0].trim().is_empty() => {
                return Err(self.invalid(
                    "target.command",
                    "is empty; give the program and its arguments, e.g. [\"./server\", \"-addr\", \"127.0.0.1:8080\"]",
                ));
            }
            Some(mut argv) => {
                argv[0] = self.resolve_program(&argv[0], dir)?;
                Some(argv)
            }
        };
        let ready_timeout = self.duration(
            "target.ready_timeout",
            file.ready_timeout,
            Duration::from_secs(15),
        )?;
        if pprof.is_none()
            && metrics.is_none()
            && expvar.is_none()
            && pid.is_none()
            && command.is_none()
        {
            return Err(self.invalid(
                "target",
                "has no signal source: name pprof, metrics or expvar, or a pid or command for /proc",
            ));
        }
        let probe_timeout = self.duration(
            "target.probe_timeout",
            file.probe_timeout,
            DEFAULT_PROBE_TIMEOUT,
        )?;
        if probe_timeout < Duration::from_millis(100) {
            return Err(self.invalid(
                "target.probe_timeout",
                "must be at least 100ms; a pprof fetch needs time to answer",
            ));
        }
        Ok(Target {
            url,
            transport,
            pprof,
            metrics,
            expvar,
            pid,
            ready,
            command,
            env: file.env,
            cwd,
            ready_timeout,
            probe_timeout,
        })
    }

    /// An optional http URL of a signal source on this machine.
    fn source_url(
        &self,
        key: &str,
        text: Option<&str>,
        example: &str,
    ) -> Result<Option<Uri>, ScenarioError> {
        let Some(text) = text else {
            return Ok(None);
        };
        let text = self.expand(key, text)?;
        let uri: Uri = text.parse().map_err(|e| {
            self.invalid(
                key,
                format!("`{text}` is not a URL ({e}); write e.g. \"{example}\""),
            )
        })?;
        if uri.scheme_str() != Some("http") {
            return Err(self.invalid(key, format!("must be an http:// URL, e.g. \"{example}\"")));
        }
        let host = uri.host().ok_or_else(|| self.invalid(key, "has no host"))?;
        self.require_loopback(key, host)?;
        Ok(Some(uri))
    }

    fn ready(&self, text: &str) -> Result<Ready, ScenarioError> {
        let text = self.expand("target.ready", text)?;
        if let Some(rest) = text.strip_prefix("tcp://") {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
                self.invalid(
                    "target.ready",
                    "write tcp://HOST:PORT, e.g. \"tcp://127.0.0.1:8080\"",
                )
            })?;
            let port: u16 = port
                .parse()
                .map_err(|_| self.invalid("target.ready", format!("`{port}` is not a port")))?;
            self.require_loopback("target.ready", host)?;
            return Ok(Ready::Tcp(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port,
            ));
        }
        match self.source_url("target.ready", Some(&text), "http://127.0.0.1:8080/healthz")? {
            Some(uri) => Ok(Ready::Http(uri)),
            None => unreachable!("source_url returns Some for Some"),
        }
    }

    /// Load only goes to this machine: refuse any other host before a socket opens.
    fn require_loopback(&self, key: &str, host: &str) -> Result<(), ScenarioError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ok = bare.eq_ignore_ascii_case("localhost")
            || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if ok {
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

    fn resolve_program(&self, program: &str, dir: &Path) -> Result<String, ScenarioError> {
        let as_path = Path::new(program);
        if as_path.components().count() > 1 || program.starts_with('.') {
            let full = if as_path.is_absolute() {
                as_path.to_path_buf()
            } else {
                dir.join(as_path.strip_prefix(".").unwrap_or(as_path))
            };
            if !full.is_file() {
                return Err(self.invalid(
                    "target.command",
                    format!(
                        "program `{}` does not exist (relative paths resolve against the scenario's folder); build it first",
                        full.display()
                    ),
                ));
            }
            return Ok(full.to_string_lossy().into_owned());
        }
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        for entry in std::env::split_paths(&path_var) {
            let candidate = entry.join(program);
            if candidate.is_file() {
                return Ok(candidate.to_string_lossy().into_owned());
            }
        }
        Err(self.invalid(
            "target.command",
            format!("program `{program}` is not on PATH; install it or give a path"),
        ))
    }

    fn load(&self, file: FileLoad, transport: Transport) -> Result<Load, ScenarioError> {
        let sessions = self.count("load.sessions", Some(file.sessions), 1, 1, MAX_SESSIONS)?;
        let concurrency =
            self.count("load.concurrency", file.concurrency, sessions, 1, sessions)?;
        let warmup = self.count("load.warmup", file.warmup, 1, 0, 100)?;
        let cycles = self.count("load.cycles", file.cycles, 3, 2, 1000)?;
        let hold = self.duration("load.hold", file.hold, Duration::ZERO)?;
        let step_timeout =
            self.duration("load.step_timeout", file.step_timeout, DEFAULT_STEP_TIMEOUT)?;
        if step_timeout.is_zero() {
            return Err(self.invalid("load.step_timeout", "must be above zero, e.g. \"10s\""));
        }
        let max_failure_ratio = file.max_failure_ratio.unwrap_or(DEFAULT_MAX_FAILURE_RATIO);
        if !(0.0..=1.0).contains(&max_failure_ratio) {
            return Err(self.invalid(
                "load.max_failure_ratio",
                format!("{max_failure_ratio} is not a share between 0.0 and 1.0 (0.01 = 1%)"),
            ));
        }
        let close = file.close.unwrap_or(CloseMode::Graceful);

        let mut steps = Vec::with_capacity(file.steps.len());
        for (i, step) in file.steps.into_iter().enumerate() {
            let key = format!("load.steps[{i}]");
            steps.push(match (step.send, step.expect) {
                (Some(text), None) => Step::Send(self.expand(&key, &text)?),
                (None, Some(text)) => Step::Expect(self.expand(&key, &text)?),
                _ => {
                    return Err(self.invalid(
                        &key,
                        "each step takes exactly one of `send = \"...\"` or `expect = \"...\"`",
                    ));
                }
            });
        }
        let requests = match transport {
            Transport::Http => self.count("load.requests", file.requests, 1, 1, 1_000_000)?,
            Transport::WebSocket => {
                if file.requests.is_some() {
                    return Err(self.invalid(
                        "load.requests",
                        "applies to http(s) targets only; a websocket session uses `[[load.steps]]`",
                    ));
                }
                0
            }
        };
        if transport == Transport::Http && !steps.is_empty() {
            return Err(self.invalid(
                "load.steps",
                "applies to websocket targets only; an http session uses `requests`",
            ));
        }
        let mut headers = Vec::with_capacity(file.headers.len());
        for (name, value) in &file.headers {
            let key = format!("load.headers.{name}");
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| self.invalid(&key, "is not a valid HTTP header name"))?;
            let value = self.expand(&key, value)?;
            let value = http::HeaderValue::from_str(&value).map_err(|_| {
                self.invalid(&key, "value has characters not allowed in an HTTP header")
            })?;
            headers.push((header, value));
        }
        let method = file.method.unwrap_or_else(|| "GET".to_owned());
        if transport == Transport::WebSocket && method != "GET" {
            return Err(self.invalid("load.method", "applies to http(s) targets only"));
        }
        if http::Method::from_bytes(method.as_bytes()).is_err() {
            return Err(self.invalid("load.method", format!("`{method}` is not an HTTP method")));
        }
        Ok(Load {
            sessions,
            concurrency,
            warmup,
            cycles,
            hold,
            close,
            requests,
            method,
            steps,
            headers,
            step_timeout,
            max_failure_ratio,
        })
    }

    fn thresholds(&self, file: FileThresholds) -> Result<Thresholds, ScenarioError> {
        let d = Thresholds::default();
        let pick = |key: &str, v: Option<f64>, default: f64| -> Result<f64, ScenarioError> {
            match v {
                None => Ok(default),
                Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
                Some(v) => Err(self.invalid(key, format!("{v} is not a non-negative number"))),
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
            fds: pick("thresholds.fds", file.fds, d.fds)?,
        })
    }

    fn count(
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

    fn duration(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("/tmp/s.toml"))
    }

    const MINIMAL: &str = r#"
        [target]
        url = "ws://127.0.0.1:8080/ws"
        [load]
        sessions = 200
    "#;

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = parse(MINIMAL).unwrap();
        assert_eq!(s.name, "s");
        assert_eq!(s.target.transport, Transport::WebSocket);
        assert_eq!(
            s.target.pprof.unwrap().to_string(),
            "http://127.0.0.1:8080/debug/pprof"
        );
        assert_eq!(s.load.concurrency, 200);
        assert_eq!(s.load.warmup, 1);
        assert_eq!(s.load.cycles, 3);
        assert_eq!(s.load.close, CloseMode::Graceful);
        assert_eq!(s.settle.timeout, DEFAULT_SETTLE_TIMEOUT);
        assert_eq!(s.thresholds, Thresholds::default());
    }

    #[test]
    fn full_scenario_round_trips() {
        let s = parse(
            r#"
            name = "chat"
            [target]
            url = "ws://localhost:9000/chat?user=a"
            pprof = "http://127.0.0.1:6060/debug/pprof/"
            [load]
            sessions = 10
            concurrency = 5
            warmup = 0
            cycles = 4
            hold = "250ms"
            close = "abrupt"
            [[load.steps]]
            send = "hi"
            [[load.steps]]
            expect = "hi"
            [settle]
            timeout = "5s"
            "#,
        )
        .unwrap();
        assert_eq!(s.name, "chat");
        assert_eq!(
            s.target.pprof.unwrap().to_string(),
            "http://127.0.0.1:6060/debug/pprof"
        );
        assert_eq!(s.load.hold, Duration::from_millis(250));
        assert_eq!(s.load.close, CloseMode::Abrupt);
        assert_eq!(
            s.load.steps,
            vec![Step::Send("hi".into()), Step::Expect("hi".into())]
        );
        assert_eq!(s.settle.timeout, Duration::from_secs(5));
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_key_is_rejected_with_location() {
        let e = err(r#"
            [target]
            url = "ws://127.0.0.1:8080/ws"
            [load]
            sessions = 2
            sesions = 3
        "#);
        assert!(
            e.starts_with("/tmp/s.toml:6:13: load.sesions: unknown key"),
            "{e}"
        );
        assert!(e.contains("did you mean `sessions`?"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        let e =
            err("[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 2\nclose = \"abrubt\"");
        assert!(e.contains(":5:9: load.close:"), "{e}");
        assert!(e.contains("did you mean `abrupt`?"), "{e}");
        let e = err(
            "[target]\nurl = \"ws://127.0.0.1:1/\"\n[setle]\ntimeout = \"1s\"\n[load]\nsessions = 2",
        );
        assert!(e.contains(":3:2: setle: unknown key"), "{e}");
        assert!(e.contains("did you mean `settle`?"), "{e}");
        let e = err("[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nconcurrency = 2");
        assert!(e.contains("load.sessions: is required"), "{e}");
    }

    #[test]
    fn durations_and_ports_are_bounded() {
        let base = |extra: &str| {
            format!("[target]\nurl = \"ws://127.0.0.1:1/\"\n{extra}\n[load]\nsessions = 1\n")
        };
        assert!(err(&base("probe_timeout = \"10ms\"")).contains("target.probe_timeout"));
        assert!(err(&base("ready_timeout = \"100000h\"")).contains("longer than a day"));
        let s = parse(&base("probe_timeout = \"1s\"")).unwrap();
        assert_eq!(s.target.probe_timeout, Duration::from_secs(1));
        assert!(
            err("[target]\nurl = \"ws://127.0.0.1:0/\"\n[load]\nsessions = 1").contains("port 0")
        );
        let e = err(
            "[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 1\n[secrets]\nheaders = [\"a b\"]",
        );
        assert!(e.contains("secrets.headers"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let base = |load: &str| format!("[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\n{load}\n");
        assert!(err(&base("sessions = 0")).contains("load.sessions"));
        assert!(err(&base("sessions = 5\nconcurrency = 6")).contains("load.concurrency"));
        assert!(err(&base("sessions = 5\ncycles = 1")).contains("load.cycles"));
        assert!(err(&base("sessions = 5\nhold = \"-1s\"")).contains("load.hold"));
        assert!(err(&base("sessions = 5\nclose = \"slam\"")).contains("close"));
        assert!(err(&base("sessions = 5\nrequests = 2")).contains("load.requests"));
        assert!(
            err(&base(
                "sessions = 5\n[[load.steps]]\nsend = \"a\"\nexpect = \"b\""
            ))
            .contains("steps[0]")
        );
    }

    #[test]
    fn scheme_and_host_are_checked() {
        assert!(
            err("[target]\nurl = \"ftp://127.0.0.1/\"\n[load]\nsessions = 1")
                .contains("unsupported scheme")
        );
        assert!(
            err("[target]\nurl = \"ws://10.0.0.1:80/\"\n[load]\nsessions = 1").contains("loopback")
        );
        assert!(
            err("[target]\nurl = \"ws://example.com/\"\n[load]\nsessions = 1").contains("loopback")
        );
        assert!(parse("[target]\nurl = \"http://[::1]:8080/x\"\n[load]\nsessions = 1").is_ok());
        assert!(parse("[target]\nurl = \"http://127.0.0.2:8080/x\"\n[load]\nsessions = 1").is_ok());
    }

    #[test]
    fn headers_are_validated_and_expanded() {
        // SAFETY: test-only variable name nothing else reads.
        unsafe { std::env::set_var("LEAKBENCH_TEST_TOKEN", "abc") };
        let s = parse(
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 1\nheaders = { Authorization = \"Bearer ${LEAKBENCH_TEST_TOKEN}\" }",
        )
        .unwrap();
        assert_eq!(s.load.headers.len(), 1);
        assert_eq!(s.load.headers[0].0, http::header::AUTHORIZATION);
        assert_eq!(s.load.headers[0].1, "Bearer abc");
        let e = err(
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 1\nheaders = { \"Bad Name\" = \"x\" }",
        );
        assert!(e.contains("load.headers.Bad Name"), "{e}");
    }

    #[test]
    fn metrics_sources_turn_off_the_assumed_pprof() {
        let s = parse(
            r#"
            [target]
            url = "http://127.0.0.1:3000/visit"
            metrics = "http://127.0.0.1:3000/metrics"
            ready = "tcp://127.0.0.1:3000"
            [load]
            sessions = 5
            [[signals]]
            metric = 'jvm_memory_used_bytes{area="heap"}'
            name = "jvm_heap"
            unit = "bytes"
            decides = false
            [[signals]]
            metric = "nodejs_active_handles_total"
            threshold = 3
            "#,
        )
        .unwrap();
        assert!(s.target.pprof.is_none());
        assert_eq!(s.target.ready, Some(Ready::Tcp("127.0.0.1".into(), 3000)));
        assert_eq!(s.signals.len(), 2);
        assert_eq!(s.signals[0].name, "jvm_heap");
        assert_eq!(s.signals[0].selector.labels["area"], "heap");
        assert_eq!(
            (s.signals[0].unit, s.signals[0].decides),
            (SignalUnit::Bytes, false)
        );
        assert_eq!(s.signals[1].name, "nodejs_active_handles_total");
        assert_eq!(
            (s.signals[1].threshold, s.signals[1].decides),
            (Some(3.0), true)
        );
    }

    #[test]
    fn signal_sources_are_checked() {
        let base = "[target]\nurl = \"http://127.0.0.1:1/\"\n";
        let e = err(&format!(
            "{base}[load]\nsessions = 1\n[[signals]]\nmetric = \"x\""
        ));
        assert!(e.contains("target.metrics"), "{e}");
        let e = err(&format!(
            "{base}metrics = \"http://10.1.1.1/metrics\"\n[load]\nsessions = 1"
        ));
        assert!(e.contains("loopback"), "{e}");
        let e = err(&format!("{base}pprof = \"off\"\n[load]\nsessions = 1"));
        assert!(e.contains("no signal source"), "{e}");
        let e = err(&format!("{base}pid = 2147483000\n[load]\nsessions = 1"));
        assert!(e.contains("no process"), "{e}");
        let e = err(&format!(
            "{base}metrics = \"http://127.0.0.1:1/m\"\n[load]\nsessions = 1\n[[signals]]\nmetric = \"a b\""
        ));
        assert!(e.contains("signals[0].metric"), "{e}");
    }

    #[test]
    fn environment_variables_are_expanded() {
        // SAFETY: test-only variable names nothing else reads.
        unsafe { std::env::set_var("LEAKBENCH_TEST_PORT", "18181") };
        let s = parse(
            "[target]\nurl = \"ws://127.0.0.1:${LEAKBENCH_TEST_PORT}/ws\"\n[load]\nsessions = 1",
        )
        .unwrap();
        assert_eq!(s.target.url.port_u16(), Some(18181));
        let e = err(
            "[target]\nurl = \"ws://127.0.0.1:${LEAKBENCH_NOT_SET_ANYWHERE}/\"\n[load]\nsessions = 1",
        );
        assert!(e.contains("LEAKBENCH_NOT_SET_ANYWHERE is not set"), "{e}");
        let e = err("[target]\nurl = \"ws://127.0.0.1:${OPEN/\"\n[load]\nsessions = 1");
        assert!(e.contains("closing"), "{e}");
    }

    #[test]
    fn missing_program_is_named() {
        let e = err(
            "[target]\nurl = \"ws://127.0.0.1:1/\"\ncommand = [\"./no-such-server\"]\n[load]\nsessions = 1",
        );
        assert!(e.contains("/tmp/no-such-server"), "{e}");
    }
}
