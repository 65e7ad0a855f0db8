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

mod raw;
pub mod suggest;

use raw::{FileLoad, FileScenario, FileSecrets, FileStep, FileTarget, FileThresholds, FileTls};

/// Sessions per cycle when nothing else limits them: more than this needs the
/// load engine's multi-address spreading, which validation checks separately.
const MAX_SESSIONS: u32 = 1_000_000;

/// Deepest nesting of `repeat` blocks: enough for any script a person
/// writes, and a bound on recursion.
const MAX_STEP_NESTING: usize = 4;

/// Largest message or body file: payloads are held in memory once and
/// shared by every session.
const MAX_PAYLOAD_FILE: u64 = 16 * 1024 * 1024;

/// Replaces every placeholder with `value` (used to check a URL's shape).
pub fn fill_placeholders(text: &str, value: &str) -> String {
    PLACEHOLDERS
        .iter()
        .fold(text.to_owned(), |t, p| t.replace(p, value))
}

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

/// Values to redact from every output (see the redact module).
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
    /// The URL as written when its path or query holds per-session
    /// placeholders (`{{session}}`, `{{token}}`); `url` then shows them as `0`.
    pub url_template: Option<String>,
    /// How wss and https sessions check the server (unused for ws and http).
    pub tls: Tls,
}

/// TLS settings for wss and https targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// PEM file of the CA (or the self-signed certificate) to trust. No
    /// system roots are loaded, so a TLS target needs this or `insecure`.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate, for self-signed test targets. Must be written
    /// explicitly as `insecure = true`.
    pub insecure: bool,
    /// Name the certificate must carry (default: the URL's host).
    pub server_name: Option<String>,
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
    /// A silent peer: after its steps the session neither reads nor writes
    /// (no pong, no close frame) but keeps the socket open until `hold`
    /// ends, then closes it without any goodbye.
    Silent,
}

/// Per-session placeholders allowed in messages, headers, bodies and the
/// URL's path and query.
pub const PLACEHOLDERS: [&str; 2] = ["{{session}}", "{{token}}"];

/// One thing a websocket session does after its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send a text message; placeholders are filled per session.
    Send {
        /// The text, with placeholders.
        text: String,
        /// Bound on this send (default `load.step_timeout`).
        timeout: Option<Duration>,
    },
    /// Send a binary message (from base64 or a file), byte for byte.
    SendBinary {
        /// The payload.
        bytes: Vec<u8>,
        /// Bound on this send (default `load.step_timeout`).
        timeout: Option<Duration>,
    },
    /// Wait for a text or binary message that matches, skipping others.
    Expect {
        /// What the message must hold.
        matcher: Matcher,
        /// Bound on the wait (default `load.step_timeout`).
        timeout: Option<Duration>,
    },
    /// Send a ping with this payload and wait for its pong.
    Ping {
        /// The ping's payload (at most 125 bytes).
        payload: Vec<u8>,
        /// Bound on the wait for the pong (default `load.step_timeout`).
        timeout: Option<Duration>,
    },
    /// Do nothing for this long (pings from the server are not answered
    /// meanwhile; they are answered at the next read).
    Pause(Duration),
    /// Run `steps` this many times in a row.
    Repeat {
        /// How many times.
        times: u32,
        /// The block.
        steps: Vec<Step>,
    },
}

/// What an `expect` step waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// The message contains this text (placeholders filled per session).
    Contains(String),
    /// The message (as UTF-8, lossy) matches this regular expression
    /// (checked at validation).
    Regex(String),
}

/// How an HTTP session uses connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpConnection {
    /// All of a session's requests on its one keep-alive connection.
    KeepAlive,
    /// A new connection per request, each closed as `close` says.
    PerRequest,
}

/// The HTTP side of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLoad {
    /// Requests per session.
    pub requests: u32,
    /// The request method.
    pub method: String,
    /// Request body (placeholders filled per session when given inline).
    pub body: Option<Body>,
    /// Statuses that count as success; empty means any status below 400.
    pub expect_status: Vec<u16>,
    /// One connection per session, or one per request.
    pub connection: HttpConnection,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Inline text, with placeholders.
    Text(String),
    /// A file's bytes, sent as they are.
    Bytes(Vec<u8>),
}

/// Arrival pacing (open model).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sessions started per second once ramped up.
    pub per_second: f64,
    /// Linear ramp from zero to `per_second` over this long.
    pub ramp: Duration,
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
    /// HTTP only: requests per session, on that session's one connection
    /// (or one connection each with `connection = "per_request"`).
    pub requests: u32,
    /// HTTP only: the request method.
    pub method: String,
    /// HTTP only: request body, accepted statuses and connection use.
    pub http: HttpLoad,
    /// Websocket only: what each session does after the handshake.
    pub steps: Vec<Step>,
    /// Websocket only: subprotocols offered in the upgrade, in order.
    pub subprotocols: Vec<String>,
    /// Arrival rate (open model); `None`: start sessions as fast as
    /// `concurrency` allows (closed model).
    pub rate: Option<Rate>,
    /// Loopback source addresses to spread connections over; empty: chosen
    /// by the load engine (several 127.0.0.x when one cannot hold them all).
    pub source_addresses: Vec<IpAddr>,
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
    /// Heap objects per session below which growth is noise.
    pub heap_objects_per_session: f64,
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
            // A big heap's object count moves with timing after load: the
            // per-connection records in a bounded ring (nats-server keeps
            // 10,000) differ by a fraction of an object each. A quarter of
            // an object per session sits above the drift measured there (up
            // to 0.1 per session) and far below a leak of one per session.
            heap_objects_per_session: 0.25,
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

/// Whether `host` (as in a URL, IPv6 in brackets or not) is on this machine:
/// `localhost`, 127.0.0.0/8 or ::1. The only hosts leakbench talks to.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
            let at = suggest::locate(text, e.span(), e.message());
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
        let load = self.load(file.load, target.transport, &dir)?;
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
        // Placeholders may fill the path and query per session; the URL is
        // checked with them standing in as `0`.
        let url_template = file.url.contains("{{").then(|| file.url.clone());
        if let Some(template) = &url_template {
            self.check_placeholders("target.url", template)?;
            let path_start = template
                .find("://")
                .and_then(|i| template[i + 3..].find('/').map(|j| i + 3 + j))
                .unwrap_or(template.len());
            if template[..path_start].contains("{{") {
                return Err(self.invalid(
                    "target.url",
                    "placeholders may only appear in the path and query, not in the host or port",
                ));
            }
            file.url = fill_placeholders(template, "0");
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
        let secure = matches!(url.scheme_str(), Some("wss") | Some("https"));
        let tls = self.tls(file.tls, secure, dir)?;
        if secure && file.pprof.is_none() {
            return Err(self.invalid(
                "target.pprof",
                "a wss/https target needs its plain-http pprof URL given, e.g. \"http://127.0.0.1:6060/debug/pprof\"",
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
        } else if secure {
            format!("{host}:443")
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
            url_template,
            tls,
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

    fn tls(&self, file: Option<FileTls>, secure: bool, dir: &Path) -> Result<Tls, ScenarioError> {
        let Some(file) = file else {
            if secure {
                return Err(self.invalid(
                    "target.tls",
                    "a wss/https target needs `[target.tls]` with `ca_file = \"ca.pem\"`, or \
                     `insecure = true` for a self-signed test server",
                ));
            }
            return Ok(Tls::default());
        };
        if !secure {
            return Err(self.invalid(
                "target.tls",
                "applies to wss and https targets only; the URL is plain ws/http",
            ));
        }
        let insecure = file.insecure.unwrap_or(false);
        let ca_file = file
            .ca_file
            .map(|p| if p.is_absolute() { p } else { dir.join(p) });
        match (&ca_file, insecure) {
            (Some(_), true) => {
                return Err(self.invalid(
                    "target.tls",
                    "give either `ca_file` or `insecure = true`, not both",
                ));
            }
            (None, false) => {
                return Err(self.invalid(
                    "target.tls",
                    "give `ca_file = \"ca.pem\"` (PEM, relative to the scenario), or \
                     `insecure = true` to accept any certificate",
                ));
            }
            (Some(path), false) if !path.is_file() => {
                return Err(self.invalid(
                    "target.tls.ca_file",
                    format!("`{}` does not exist", path.display()),
                ));
            }
            _ => {}
        }
        if let Some(name) = &file.server_name {
            if rustls_pki_types::ServerName::try_from(name.as_str()).is_err() {
                return Err(self.invalid(
                    "target.tls.server_name",
                    format!("`{name}` is not a DNS name or IP address"),
                ));
            }
        }
        Ok(Tls {
            ca_file,
            insecure,
            server_name: file.server_name,
        })
    }

    /// Every `{{` opens one of [`PLACEHOLDERS`].
    fn check_placeholders(&self, key: &str, text: &str) -> Result<(), ScenarioError> {
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
    fn require_loopback(&self, key: &str, host: &str) -> Result<(), ScenarioError> {
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

    fn load(
        &self,
        file: FileLoad,
        transport: Transport,
        dir: &Path,
    ) -> Result<Load, ScenarioError> {
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
        if close == CloseMode::Silent && hold.is_zero() {
            return Err(self.invalid(
                "load.close",
                "\"silent\" keeps the socket open, unattended, for `hold`; give a hold, e.g. hold = \"5s\"",
            ));
        }

        let steps = self.steps("load.steps", file.steps, dir, 0)?;
        let only = |key: &str, what: &str, given: bool| -> Result<(), ScenarioError> {
            if given {
                Err(self.invalid(key, format!("applies to {what} targets only")))
            } else {
                Ok(())
            }
        };
        let ws = transport == Transport::WebSocket;
        only("load.requests", "http(s)", ws && file.requests.is_some())?;
        only("load.body", "http(s)", ws && file.body.is_some())?;
        only("load.body_file", "http(s)", ws && file.body_file.is_some())?;
        only(
            "load.expect_status",
            "http(s)",
            ws && file.expect_status.is_some(),
        )?;
        only(
            "load.connection",
            "http(s)",
            ws && file.connection.is_some(),
        )?;
        only("load.steps", "websocket", !ws && !steps.is_empty())?;
        only(
            "load.subprotocols",
            "websocket",
            !ws && file.subprotocols.is_some(),
        )?;
        let requests = if ws {
            0
        } else {
            self.count("load.requests", file.requests, 1, 1, 1_000_000)?
        };
        let mut headers = Vec::with_capacity(file.headers.len());
        for (name, value) in &file.headers {
            let key = format!("load.headers.{name}");
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| self.invalid(&key, "is not a valid HTTP header name"))?;
            let value = self.expand(&key, value)?;
            self.check_placeholders(&key, &value)?;
            let value = http::HeaderValue::from_str(&value).map_err(|_| {
                self.invalid(&key, "value has characters not allowed in an HTTP header")
            })?;
            headers.push((header, value));
        }
        let method = file.method.unwrap_or_else(|| "GET".to_owned());
        if ws && method != "GET" {
            return Err(self.invalid("load.method", "applies to http(s) targets only"));
        }
        if http::Method::from_bytes(method.as_bytes()).is_err() {
            return Err(self.invalid("load.method", format!("`{method}` is not an HTTP method")));
        }
        let body = match (file.body, file.body_file) {
            (Some(_), Some(_)) => {
                return Err(self.invalid("load.body", "give `body` or `body_file`, not both"));
            }
            (Some(text), None) => {
                let text = self.expand("load.body", &text)?;
                self.check_placeholders("load.body", &text)?;
                Some(Body::Text(text))
            }
            (None, Some(path)) => {
                Some(Body::Bytes(self.read_file("load.body_file", &path, dir)?))
            }
            (None, None) => None,
        };
        let mut expect_status = Vec::new();
        for code in file.expect_status.unwrap_or_default() {
            if !(100..=599).contains(&code) {
                return Err(self.invalid(
                    "load.expect_status",
                    format!(
                        "{code} is not an HTTP status; use codes from 100 to 599, e.g. [200, 204]"
                    ),
                ));
            }
            expect_status.push(code as u16);
        }
        let http = HttpLoad {
            requests,
            method: method.clone(),
            body,
            expect_status,
            connection: file.connection.unwrap_or(HttpConnection::KeepAlive),
        };
        let mut subprotocols = Vec::new();
        for name in file.subprotocols.unwrap_or_default() {
            let token_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if !token_ok {
                return Err(self.invalid(
                    "load.subprotocols",
                    format!("`{name}` is not a subprotocol name (an HTTP token, e.g. \"chat.v1\")"),
                ));
            }
            subprotocols.push(name);
        }
        let rate = match file.rate {
            None => {
                if file.ramp.is_some() {
                    return Err(self.invalid("load.ramp", "needs `rate` (sessions per second)"));
                }
                None
            }
            Some(r) if r.is_finite() && r > 0.0 && r <= 1_000_000.0 => Some(Rate {
                per_second: r,
                ramp: self.duration("load.ramp", file.ramp, Duration::ZERO)?,
            }),
            Some(r) => {
                return Err(self.invalid(
                    "load.rate",
                    format!("{r} is not a rate; give sessions per second above 0, e.g. 500"),
                ));
            }
        };
        let mut source_addresses = Vec::new();
        for text in file.source_addresses.unwrap_or_default() {
            let ip: IpAddr = text.parse().map_err(|_| {
                self.invalid(
                    "load.source_addresses",
                    format!(
                        "`{text}` is not an IP address; write e.g. [\"127.0.0.2\", \"127.0.0.3\"]"
                    ),
                )
            })?;
            if !ip.is_loopback() {
                return Err(self.invalid(
                    "load.source_addresses",
                    format!("`{ip}` is not a loopback address; load stays on 127.0.0.0/8 or ::1"),
                ));
            }
            if source_addresses.contains(&ip) {
                return Err(
                    self.invalid("load.source_addresses", format!("`{ip}` is listed twice"))
                );
            }
            source_addresses.push(ip);
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
            http,
            steps,
            subprotocols,
            rate,
            source_addresses,
            headers,
            step_timeout,
            max_failure_ratio,
        })
    }

    /// Websocket steps at `key`, nested blocks at most [`MAX_STEP_NESTING`] deep.
    fn steps(
        &self,
        key: &str,
        file: Vec<FileStep>,
        dir: &Path,
        depth: usize,
    ) -> Result<Vec<Step>, ScenarioError> {
        let mut steps = Vec::with_capacity(file.len());
        for (i, step) in file.into_iter().enumerate() {
            steps.push(self.step(&format!("{key}[{i}]"), step, dir, depth)?);
        }
        Ok(steps)
    }

    fn step(
        &self,
        key: &str,
        f: FileStep,
        dir: &Path,
        depth: usize,
    ) -> Result<Step, ScenarioError> {
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
                "each step takes exactly one of `send`, `send_base64`, `send_file`, `expect`, \
                 `expect_regex`, `ping`, `pause` or `repeat` (with `steps`)",
            ));
        }
        let timeout = match f.timeout {
            None => None,
            Some(_) if f.pause.is_some() || f.repeat.is_some() => {
                return Err(self.invalid(
                    &format!("{key}.timeout"),
                    "applies to send, expect and ping steps only",
                ));
            }
            Some(t) => {
                let d = self.duration(&format!("{key}.timeout"), Some(t), Duration::ZERO)?;
                if d.is_zero() {
                    return Err(self.invalid(&format!("{key}.timeout"), "must be above zero"));
                }
                Some(d)
            }
        };
        if f.binary.is_some() && f.send_file.is_none() {
            return Err(self.invalid(
                &format!("{key}.binary"),
                "applies to `send_file` only (`send` is text, `send_base64` is binary)",
            ));
        }
        if f.steps.is_some() && f.repeat.is_none() {
            return Err(self.invalid(
                &format!("{key}.steps"),
                "needs `repeat = N` in the same step",
            ));
        }
        if let Some(text) = f.send {
            let text = self.expand(key, &text)?;
            self.check_placeholders(key, &text)?;
            return Ok(Step::Send { text, timeout });
        }
        if let Some(b64) = f.send_base64 {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| {
                    self.invalid(&format!("{key}.send_base64"), format!("is not base64: {e}"))
                })?;
            return Ok(Step::SendBinary { bytes, timeout });
        }
        if let Some(path) = f.send_file {
            let bytes = self.read_file(&format!("{key}.send_file"), &path, dir)?;
            if f.binary.unwrap_or(true) {
                return Ok(Step::SendBinary { bytes, timeout });
            }
            let text = String::from_utf8(bytes).map_err(|_| {
                self.invalid(
                    &format!("{key}.send_file"),
                    "is not UTF-8 text; drop `binary = false` to send it as a binary message",
                )
            })?;
            return Ok(Step::Send { text, timeout });
        }
        if let Some(text) = f.expect {
            let text = self.expand(key, &text)?;
            self.check_placeholders(key, &text)?;
            return Ok(Step::Expect {
                matcher: Matcher::Contains(text),
                timeout,
            });
        }
        if let Some(pattern) = f.expect_regex {
            regex::Regex::new(&pattern).map_err(|e| {
                self.invalid(
                    &format!("{key}.expect_regex"),
                    format!("is not a regular expression: {e}"),
                )
            })?;
            return Ok(Step::Expect {
                matcher: Matcher::Regex(pattern),
                timeout,
            });
        }
        if let Some(payload) = f.ping {
            if payload.len() > 125 {
                return Err(self.invalid(
                    &format!("{key}.ping"),
                    "a ping payload is at most 125 bytes",
                ));
            }
            return Ok(Step::Ping {
                payload: payload.into_bytes(),
                timeout,
            });
        }
        if let Some(pause) = f.pause {
            return Ok(Step::Pause(self.duration(
                &format!("{key}.pause"),
                Some(pause),
                Duration::ZERO,
            )?));
        }
        let times = self.count(&format!("{key}.repeat"), f.repeat, 1, 1, 1_000_000)?;
        if depth >= MAX_STEP_NESTING {
            return Err(self.invalid(
                key,
                format!("repeat blocks nest at most {MAX_STEP_NESTING} deep"),
            ));
        }
        let inner = f.steps.unwrap_or_default();
        if inner.is_empty() {
            return Err(self.invalid(
                &format!("{key}.steps"),
                "a repeat needs its block: add [[load.steps.steps]] tables after it",
            ));
        }
        let steps = self.steps(&format!("{key}.steps"), inner, dir, depth + 1)?;
        Ok(Step::Repeat { times, steps })
    }

    /// A file the scenario names, relative to its folder, at most
    /// [`MAX_PAYLOAD_FILE`] bytes.
    fn read_file(&self, key: &str, path: &Path, dir: &Path) -> Result<Vec<u8>, ScenarioError> {
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
            heap_objects_per_session: pick(
                "thresholds.heap_objects_per_session",
                file.heap_objects_per_session,
                d.heap_objects_per_session,
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
            vec![
                Step::Send {
                    text: "hi".into(),
                    timeout: None
                },
                Step::Expect {
                    matcher: Matcher::Contains("hi".into()),
                    timeout: None
                }
            ]
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
    fn thresholds_default_and_can_be_set() {
        let base = |t: &str| {
            format!(
                "[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 1\n[thresholds]\n{t}"
            )
        };
        let s = parse(&base("")).unwrap();
        assert_eq!(s.thresholds, Thresholds::default());
        let s = parse(&base("heap_objects_per_session = 1.5\nheap_objects = 10")).unwrap();
        assert_eq!(s.thresholds.heap_objects_per_session, 1.5);
        assert_eq!(s.thresholds.heap_objects, 10.0);
        let e = err(&base("heap_objects_per_session = -1"));
        assert!(e.contains("thresholds.heap_objects_per_session"), "{e}");
        assert!(e.contains("not a non-negative number"), "{e}");
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
    fn new_load_keys_are_validated_with_their_key_named() {
        let ws = |load: &str| {
            format!("[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 5\n{load}\n")
        };
        let web = |load: &str| {
            format!("[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 5\n{load}\n")
        };
        let cases = [
            (ws("close = \"silent\""), "load.close"),
            (
                ws("[[load.steps]]\nexpect_regex = \"(\""),
                "load.steps[0].expect_regex",
            ),
            (
                ws("[[load.steps]]\nsend_base64 = \"!!\""),
                "load.steps[0].send_base64",
            ),
            (
                ws("[[load.steps]]\nsend = \"{{who}}\""),
                "unknown placeholder",
            ),
            (ws("[[load.steps]]\nrepeat = 2"), "load.steps[0].steps"),
            (
                ws("[[load.steps]]\npause = \"1s\"\ntimeout = \"1s\""),
                "load.steps[0].timeout",
            ),
            (
                ws("[[load.steps]]\nsend = \"a\"\nbinary = true"),
                "load.steps[0].binary",
            ),
            (
                ws("[[load.steps]]\nsend_file = \"nope.bin\""),
                "load.steps[0].send_file",
            ),
            (ws("body = \"x\""), "load.body"),
            (ws("subprotocols = [\"a b\"]"), "load.subprotocols"),
            (web("expect_status = [99]"), "load.expect_status"),
            (web("connection = \"sometimes\""), "connection"),
            (web("subprotocols = [\"x\"]"), "load.subprotocols"),
            (web("rate = 0"), "load.rate"),
            (web("ramp = \"1s\""), "load.ramp"),
            (
                web("source_addresses = [\"10.0.0.1\"]"),
                "load.source_addresses",
            ),
            (
                web("source_addresses = [\"nope\"]"),
                "load.source_addresses",
            ),
            (web("[[load.steps]]\nsend = \"a\""), "load.steps"),
        ];
        for (text, want) in cases {
            let e = err(&text);
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn scripts_and_http_options_parse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.bin"), [1u8, 2, 3]).unwrap();
        let text = r#"
            [target]
            url = "ws://127.0.0.1:1/ws?u={{session}}"
            [load]
            sessions = 4
            rate = 100
            ramp = "2s"
            subprotocols = ["v1"]
            [[load.steps]]
            send_file = "m.bin"
            [[load.steps]]
            repeat = 2
            [[load.steps.steps]]
            ping = "x"
            timeout = "1s"
        "#;
        let s = Scenario::parse(text, &dir.path().join("s.toml")).unwrap();
        assert_eq!(s.target.url.to_string(), "ws://127.0.0.1:1/ws?u=0");
        assert_eq!(
            s.target.url_template.as_deref(),
            Some("ws://127.0.0.1:1/ws?u={{session}}")
        );
        assert_eq!(
            s.load.steps,
            vec![
                Step::SendBinary {
                    bytes: vec![1, 2, 3],
                    timeout: None
                },
                Step::Repeat {
                    times: 2,
                    steps: vec![Step::Ping {
                        payload: b"x".to_vec(),
                        timeout: Some(Duration::from_secs(1))
                    }]
                }
            ]
        );
        assert_eq!(
            s.load.rate,
            Some(Rate {
                per_second: 100.0,
                ramp: Duration::from_secs(2)
            })
        );
        let s = parse(
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 1\nmethod = \"PUT\"\nbody = \"b\"\n\
             connection = \"per_request\"\nexpect_status = [200, 204]",
        )
        .unwrap();
        assert_eq!(s.load.http.connection, HttpConnection::PerRequest);
        assert_eq!(s.load.http.expect_status, vec![200, 204]);
        assert_eq!(s.load.http.body, Some(Body::Text("b".into())));
    }

    #[test]
    fn tls_targets_need_an_explicit_trust_choice() {
        let base = |tls: &str| {
            format!(
                "[target]\nurl = \"wss://127.0.0.1:1/\"\npprof = \"http://127.0.0.1:2/debug/pprof\"\n{tls}\n[load]\nsessions = 1"
            )
        };
        assert!(err(&base("")).contains("target.tls"));
        assert!(err(&base("[target.tls]")).contains("ca_file"));
        assert!(err(&base("[target.tls]\nca_file = \"/nope.pem\"")).contains("does not exist"));
        let s = parse(&base("[target.tls]\ninsecure = true")).unwrap();
        assert!(s.target.tls.insecure);
        assert!(
            err("[target]\nurl = \"https://127.0.0.1:1/\"\n[target.tls]\ninsecure = true\n[load]\nsessions = 1")
                .contains("target.pprof")
        );
        assert!(
            err("[target]\nurl = \"http://127.0.0.1:1/\"\n[target.tls]\ninsecure = true\n[load]\nsessions = 1")
                .contains("wss and https")
        );
    }

    #[test]
    fn missing_program_is_named() {
        let e = err(
            "[target]\nurl = \"ws://127.0.0.1:1/\"\ncommand = [\"./no-such-server\"]\n[load]\nsessions = 1",
        );
        assert!(e.contains("/tmp/no-such-server"), "{e}");
    }
}
