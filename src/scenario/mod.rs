//! The scenario file: TOML in, one validated [`Scenario`] out.
//!
//! Everything a run needs is decided here, before any socket opens: defaults
//! live in this module only, and every value is checked so that later stages
//! never see a zero session count or an unsupported scheme.
//!
//! This file holds the validated types, the defaults and the entry points.
//! `raw.rs` mirrors the TOML as written; `validate.rs` holds the validator,
//! the checks every section shares and the walk over the sections; each
//! section is checked in a file of its own (`target.rs`, `load.rs`,
//! `steps.rs`, `settle_thresholds.rs`, `verdict.rs`, `signals.rs`,
//! `secrets.rs`); and
//! [`suggest`] locates toml's errors and suggests the nearest valid key.
//! Every error names the file, line and column.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde::Deserialize;

mod headers_serde;
mod load;
mod raw;
mod secrets;
mod settle_thresholds;
mod signals;
mod steps;
pub mod suggest;
mod target;
#[cfg(test)]
mod tests;
mod validate;
mod verdict;

pub use crate::remote::{Pins, Policy};
pub use crate::signal::Unit;
use raw::FileScenario;
use validate::Validator;

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

/// Default share of a running cycle's started sessions that, once failed,
/// stops the load at once (the run then ends inconclusive): by then the
/// target is not serving the load the scenario describes, and a struggling
/// service, a remote one above all, must not be hammered further. Half
/// leaves room for a target that sheds some load and recovers.
pub const DEFAULT_ABORT_FAILURE_RATIO: f64 = 0.5;

/// Started sessions a cycle needs before `abort_failure_ratio` can stop it:
/// a few early failures (a reset while the listener's backlog fills) must
/// not end a run that would have gone on fine.
pub const ABORT_MIN_STARTED: u64 = 20;

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
    /// How far a run may escalate before it answers.
    pub verdict: Escalation,
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
    pub unit: Unit,
    /// Growth per cycle below which a change is noise; default by unit.
    pub threshold: Option<f64>,
    /// Whether it takes part in the verdict.
    pub decides: bool,
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
    /// The non-loopback hosts the command line allowed (`--allow-remote`);
    /// loopback only by default, and never set from the file.
    pub remote: Policy,
    /// The addresses each host name was resolved to at run start
    /// ([`Scenario::pin`]); sessions and probes connect to these only.
    /// Empty until then.
    pub pins: Pins,
}

/// TLS settings for wss and https targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Body {
    /// Inline text, with placeholders.
    Text(String),
    /// A file's bytes, sent as they are.
    Bytes(Vec<u8>),
}

/// Arrival pacing (open model).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rate {
    /// Sessions started per second once ramped up.
    pub per_second: f64,
    /// Linear ramp from zero to `per_second` over this long.
    pub ramp: Duration,
}

/// The load of one cycle, and how many cycles. Serialized only to ship a
/// validated load to fleet agents (`crate::fleet`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    #[serde(with = "headers_serde")]
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Bound on each expect step, request and connection attempt.
    pub step_timeout: Duration,
    /// Share of failed sessions above which the load is judged not to have
    /// happened (verdict inconclusive).
    pub max_failure_ratio: f64,
    /// Share of a running cycle's started sessions that, once failed (and
    /// at least [`ABORT_MIN_STARTED`] started), stops the load mid-cycle
    /// and ends the run inconclusive. At least `max_failure_ratio`; 1.0
    /// never stops.
    pub abort_failure_ratio: f64,
}

/// Settle policy.
#[derive(Debug, Clone)]
pub struct Settle {
    /// Longest wait, per cycle, for the target to return to baseline.
    pub timeout: Duration,
}

/// `[verdict]`: the escalation's budgets. When the scenario's cycles show
/// growth, the run adds cycles of doubling size (at the same concurrency)
/// until every growing signal's curve is decided or a budget runs out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Escalation {
    /// Whether to escalate at all (`verdict.escalate`, default true).
    pub escalate: bool,
    /// Most sessions the measured cycles may serve in all
    /// (`verdict.max_sessions`, default [`default_max_sessions`]).
    pub max_sessions: u64,
    /// Longest escalation, load and settles, not counting the horizon wait
    /// (`verdict.max_time`, default [`DEFAULT_MAX_TIME`]).
    pub max_time: Duration,
}

/// The escalation's default time budget: the default release horizon, so
/// that escalation runs while the first measured sessions age past it.
pub const DEFAULT_MAX_TIME: Duration = Duration::from_secs(30);

/// The default session budget grows with the cycle's sessions and stops at
/// this many: about ten seconds of websocket sessions on this project's
/// 2-core machine (measured 4,000 to 6,000 a second against nats-server and
/// sessionmap). A descriptor leak stops earlier, at the target's own limit.
pub const MAX_DEFAULT_SESSIONS: u64 = 40_000;

/// The default session budget: 100 cycles' worth, at most
/// [`MAX_DEFAULT_SESSIONS`]. With doubling cycles the curve's latest half
/// then spans at least a third of it, so a bound reached within the first
/// ~65 cycles' worth of sessions (nats-server's 10,000 closed connections at
/// 300 sessions a cycle) shows as flat before the budget runs out.
pub fn default_max_sessions(load: &Load) -> u64 {
    (100 * u64::from(load.sessions))
        .min(MAX_DEFAULT_SESSIONS)
        .max(u64::from(load.cycles) * u64::from(load.sessions))
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
            // Objects after forced GCs: an idle Go target's count moves by a
            // few between polls (the probe's own handler allocations; 1 to 20
            // measured on deferred, sessionmap and nats-server). Noise above
            // this floor comes from the target's own readings.
            heap_objects: 32.0,
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
    /// A value is out of range or inconsistent with another. Located like
    /// a syntax error: at the value's first character, or at the table
    /// whose keys are wrong together or missing.
    #[error("{}:{line}:{column}: {key}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The dotted key that is wrong, e.g. `load.sessions`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// Whether `host` (as in a URL, IPv6 in brackets or not) is on this machine
/// by its spelling: `localhost`, 127.0.0.0/8 or ::1.
pub use crate::remote::is_loopback_host;

impl Scenario {
    /// Reads and validates a scenario file whose hosts must all be on this
    /// machine (every command but `run --allow-remote`).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::load_with(path, &Policy::loopback_only())
    }

    /// Reads and validates a scenario file; its hosts may be those `policy`
    /// (the command line's `--allow-remote`) allows.
    pub fn load_with(path: &Path, policy: &Policy) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse_with(&text, path, policy)
    }

    /// Validates scenario text with loopback hosts only; `path` names the
    /// file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::parse_with(text, path, &Policy::loopback_only())
    }

    /// Validates scenario text, allowing the hosts `policy` allows.
    pub fn parse_with(text: &str, path: &Path, policy: &Policy) -> Result<Scenario, ScenarioError> {
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
        Validator { path, text, policy }.scenario(file)
    }

    /// Every host the run talks to (target URL, pprof, metrics, expvar,
    /// ready), each once, as written: what [`crate::remote::resolve`] pins.
    pub fn hosts(&self) -> Vec<String> {
        let t = &self.target;
        let mut hosts: Vec<String> = Vec::new();
        let uris = [
            Some(&t.url),
            t.pprof.as_ref(),
            t.metrics.as_ref(),
            t.expvar.as_ref(),
        ];
        let ready = match &t.ready {
            Some(Ready::Http(u)) => u.host().map(str::to_owned),
            Some(Ready::Tcp(h, _)) => Some(h.clone()),
            None => None,
        };
        let all = uris
            .into_iter()
            .flatten()
            .filter_map(|u| u.host().map(str::to_owned))
            .chain(ready);
        for host in all {
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        hosts
    }

    /// Resolves every host once and pins the addresses for the run (see
    /// [`crate::remote`]); each must pass the policy the scenario was
    /// validated with. Call once at run start, before any connection.
    pub async fn pin(&mut self) -> Result<(), crate::remote::Refused> {
        let hosts = self.hosts();
        let pins =
            crate::remote::resolve(&self.target.remote, hosts, self.load.step_timeout).await?;
        self.target.pins = pins;
        Ok(())
    }
}
