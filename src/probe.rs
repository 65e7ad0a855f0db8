//! Probe: read the target's net/http/pprof endpoint (and, through [`Probe::get`],
//! any other http source: on loopback, or on a host the command line allowed,
//! at the addresses pinned for it at run start).
//!
//! One persistent HTTP/1.1 connection carries every probe, so the target
//! always sees exactly one probe goroutine (`net/http.(*conn).serve`) at
//! baseline and after: probing the same way each time keeps the probe itself
//! out of the growth. If the target closes it (idle timeouts), the next probe
//! reconnects.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::pprof::{self, DecodeError, MemStats};

/// Longest a single probe may take, connection included, unless the
/// scenario says otherwise (`target.probe_timeout`).
const FETCH_TIMEOUT: Duration = crate::scenario::DEFAULT_PROBE_TIMEOUT;

/// Largest probe response accepted (Go truncates debug=2 dumps at 64 MiB).
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// Forced GCs before counters are read: sync.Pool contents survive the first
/// (victim cache) and die in the second; the third gives finalizers that ran
/// after the second a chance to have their objects collected.
const MEASURE_GCS: usize = 3;

/// A probe that failed: every variant names the URL and says what to check.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// TCP connect or HTTP handshake failed.
    #[error("cannot reach {url}: {reason}")]
    Connect {
        /// The URL probed.
        url: String,
        /// Why.
        reason: String,
    },
    /// No complete answer within the fetch timeout.
    #[error("{url} did not answer within {secs} s (target.probe_timeout)")]
    Timeout {
        /// The URL probed.
        url: String,
        /// The limit, seconds.
        secs: f64,
    },
    /// A redirect: never followed, since its Location could name any host,
    /// one nobody allowed included.
    #[error(
        "{url} answered {status}, a redirect to {location}; redirects are not followed: set the \
         scenario's URL to where the endpoint is served"
    )]
    Redirect {
        /// The URL probed.
        url: String,
        /// The status code.
        status: StatusCode,
        /// The Location header, as sent (`(none)` when missing).
        location: String,
    },
    /// A non-200 answer.
    #[error("{url} answered {status}: {hint}")]
    Status {
        /// The URL probed.
        url: String,
        /// The status code.
        status: StatusCode,
        /// What it probably means.
        hint: String,
    },
    /// The body could not be read.
    #[error("reading {url}: {reason}")]
    Body {
        /// The URL probed.
        url: String,
        /// Why.
        reason: String,
    },
    /// The answer is not what that endpoint serves.
    #[error("{url}: {source}")]
    Decode {
        /// The URL probed.
        url: String,
        /// What is wrong with it.
        source: DecodeError,
    },
}

/// The exact counters of one measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counters {
    /// Goroutines (system goroutines excluded, the probe's own included).
    pub goroutines: u64,
    /// Live heap bytes right after a forced GC (MemStats.HeapAlloc).
    pub heap_bytes: u64,
    /// Live heap objects right after a forced GC (MemStats.HeapObjects).
    pub heap_objects: u64,
    /// Bytes in in-use heap spans (MemStats.HeapInuse).
    pub heap_inuse: u64,
    /// Goroutine stack bytes (MemStats.StackInuse).
    pub stack_bytes: u64,
    /// Bytes obtained from the OS (MemStats.Sys).
    pub sys_bytes: u64,
    /// Goroutines the runtime proved leaked (the `goroutineleak` profile's
    /// total); `None` when the target does not serve that profile.
    pub leaked_goroutines: Option<u64>,
}

/// The `goroutineleak` profile (Go 1.26 with
/// GOEXPERIMENT=goroutineleakprofile, Go 1.27 and later): goroutines blocked
/// on a channel or lock that no running goroutine can reach, so they can
/// never run again. No false positives; blind to goroutines parked in I/O.
#[derive(Debug, Clone)]
pub struct LeakProfile {
    /// As served (gzip protobuf).
    pub raw: Bytes,
    /// The same profile decoded.
    pub profile: pprof::Profile,
    /// Leaked goroutines in it.
    pub total: u64,
}

/// A full measurement: counters plus the raw profiles for attribution.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When it was taken.
    pub at: Instant,
    /// The exact counters.
    pub counters: Counters,
    /// `heap?gc=1` as served (gzip protobuf).
    pub heap_profile: Bytes,
    /// The same profile decoded (it was checked when fetched).
    pub heap: pprof::Profile,
    /// `goroutine` as served (gzip protobuf).
    pub goroutine_profile: Bytes,
    /// `goroutine?debug=2`, the full dump with wait states.
    pub goroutine_dump: String,
    /// `goroutineleak`, when the target serves it.
    pub goroutine_leaks: Option<LeakProfile>,
}

/// A client of one target's pprof endpoint.
pub struct Probe {
    base: Uri,
    authority: String,
    /// The addresses to connect to, pinned at run start; `None`: the base
    /// URL's host as written (loopback-only commands).
    pinned: Option<Vec<std::net::IpAddr>>,
    sender: Option<SendRequest<Empty<Bytes>>>,
    connection: Option<JoinHandle<()>>,
    timeout: Duration,
    heap_rate: Option<u64>,
    /// Whether the target serves `goroutineleak`; `None` until asked.
    serves_leak_profile: Option<bool>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(task) = self.connection.take() {
            task.abort();
        }
    }
}

impl Probe {
    /// A probe of the pprof base URL, e.g. `http://127.0.0.1:6060/debug/pprof`.
    /// Nothing is connected until the first request.
    pub fn new(base: &Uri) -> Probe {
        // Host header and request target never carry URL userinfo.
        let authority = base
            .authority()
            .map(|a| a.as_str().rsplit('@').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        Probe {
            base: base.clone(),
            authority,
            pinned: None,
            sender: None,
            connection: None,
            timeout: FETCH_TIMEOUT,
            heap_rate: None,
            serves_leak_profile: None,
        }
    }

    /// The target's heap profile sampling rate (runtime.MemProfileRate,
    /// bytes), as last read from a `heap?debug=1` header.
    pub fn heap_profile_rate(&self) -> Option<u64> {
        self.heap_rate
    }

    /// Whether the target serves the `goroutineleak` profile; `None` until a
    /// measurement asked.
    pub fn serves_leak_profile(&self) -> Option<bool> {
        self.serves_leak_profile
    }

    /// Connects to these addresses (in order, the first that accepts)
    /// instead of resolving the base URL's host; the Host header keeps the
    /// host as written.
    pub fn pinned(mut self, addrs: Vec<std::net::IpAddr>) -> Probe {
        self.pinned = Some(addrs);
        self
    }

    /// Bounds each fetch, connection included, by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Probe {
        self.timeout = timeout;
        self
    }

    /// The base URL.
    pub fn base(&self) -> &Uri {
        &self.base
    }

    /// Fetches `<base>/<path_and_query>`, e.g. `goroutine?debug=1`; an
    /// empty `path_and_query` fetches the base URL itself (e.g. `/metrics`).
    pub async fn get(&mut self, path_and_query: &str) -> Result<Bytes, ProbeError> {
        let url = if path_and_query.is_empty() {
            self.base.to_string()
        } else {
            format!("{}/{}", self.base, path_and_query)
        };
        match tokio::time::timeout(self.timeout, self.get_inner(&url)).await {
            Ok(result) => result,
            Err(_) => {
                self.disconnect();
                Err(ProbeError::Timeout {
                    url,
                    secs: self.timeout.as_secs_f64(),
                })
            }
        }
    }

    async fn get_inner(&mut self, url: &str) -> Result<Bytes, ProbeError> {
        // A kept-alive connection may have been closed by the target since the
        // last probe; one retry on a fresh connection covers that.
        let reused = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        match self.request(url).await {
            Err(ProbeError::Connect { .. }) if reused => {
                self.disconnect();
                self.request(url).await
            }
            other => other,
        }
    }

    async fn request(&mut self, url: &str) -> Result<Bytes, ProbeError> {
        // Origin form: everything from the first `/` after the authority.
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_else(|| "/".to_owned());
        let authority = self.authority.clone();
        let sender = self.connect(url).await?;
        let request = Request::get(path)
            .header(header::HOST, authority)
            .header(
                header::USER_AGENT,
                concat!("leakbench/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| ProbeError::Connect {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.disconnect();
                return Err(ProbeError::Connect {
                    url: url.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                self.disconnect();
                let reason = if e.is::<http_body_util::LengthLimitError>() {
                    format!(
                        "the response is larger than {} MiB; is this a pprof endpoint?",
                        MAX_RESPONSE_BYTES >> 20
                    )
                } else {
                    e.to_string()
                };
                ProbeError::Body {
                    url: url.to_owned(),
                    reason,
                }
            })?
            .to_bytes();
        if status.is_redirection() {
            return Err(ProbeError::Redirect {
                url: url.to_owned(),
                status,
                location: location.unwrap_or_else(|| "(none)".to_owned()),
            });
        }
        if status != StatusCode::OK {
            return Err(ProbeError::Status {
                url: url.to_owned(),
                status,
                hint: status_hint(status, &body),
            });
        }
        Ok(body)
    }

    async fn connect(&mut self, url: &str) -> Result<&mut SendRequest<Empty<Bytes>>, ProbeError> {
        let usable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.disconnect();
            let fail = |reason: String| ProbeError::Connect {
                url: url.to_owned(),
                reason,
            };
            let host = self.base.host().unwrap_or("127.0.0.1");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = self.base.port_u16().unwrap_or(80);
            let stream = match &self.pinned {
                None => TcpStream::connect((host, port)).await,
                Some(ips) => connect_first(ips, port).await,
            }
            .map_err(|e| fail(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| fail(e.to_string()))?;
            self.connection = Some(tokio::spawn(async move {
                let _ = connection.await;
            }));
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("connected above"))
    }

    fn disconnect(&mut self) {
        self.sender = None;
        if let Some(task) = self.connection.take() {
            task.abort();
        }
    }

    /// Closes the probe connection (it reopens on the next probe).
    pub fn close(&mut self) {
        self.disconnect();
    }

    /// The goroutine count, from `goroutine?debug=1`.
    pub async fn goroutines(&mut self) -> Result<u64, ProbeError> {
        let body = self.get("goroutine?debug=1").await?;
        let url = format!("{}/goroutine?debug=1", self.base);
        pprof::goroutine_total(&String::from_utf8_lossy(&body))
            .map_err(|source| ProbeError::Decode { url, source })
    }

    /// Runs one GC in the target and reads MemStats (`heap?debug=1&gc=1`).
    pub async fn memstats_after_gc(&mut self) -> Result<MemStats, ProbeError> {
        let body = self.get("heap?debug=1&gc=1").await?;
        let url = format!("{}/heap?debug=1&gc=1", self.base);
        let text = String::from_utf8_lossy(&body);
        self.heap_rate = heap_profile_rate(&text).or(self.heap_rate);
        pprof::parse_memstats(&text).map_err(|source| ProbeError::Decode { url, source })
    }

    /// A cheap sample for settling: one forced GC, MemStats and the goroutine count.
    pub async fn sample(&mut self) -> Result<Counters, ProbeError> {
        // The goroutine count first: it is the cheapest answer, so an
        // unreachable or wrong endpoint shows on the simplest request.
        let goroutines = self.goroutines().await?;
        let mem = self.memstats_after_gc().await?;
        Ok(counters(goroutines, &mem))
    }

    /// The measurement protocol: several forced GCs, then the exact counters.
    pub async fn measure(&mut self) -> Result<Counters, ProbeError> {
        Ok(self.measure_with_leaks().await?.0)
    }

    async fn measure_with_leaks(&mut self) -> Result<(Counters, Option<LeakProfile>), ProbeError> {
        for _ in 1..MEASURE_GCS {
            self.get("heap?gc=1").await?;
        }
        let mut counters = self.sample().await?;
        let leaks = self.goroutine_leaks().await?;
        counters.leaked_goroutines = leaks.as_ref().map(|l| l.total);
        Ok((counters, leaks))
    }

    /// The `goroutineleak` profile, or `None` when the target does not serve
    /// it (net/http/pprof answers 404 before Go 1.26 or with the experiment
    /// off; any other refusal counts the same, as the profile is extra
    /// evidence); asked once per target. Fetching it runs the leak-finding
    /// GC, so its total is fresh.
    pub async fn goroutine_leaks(&mut self) -> Result<Option<LeakProfile>, ProbeError> {
        if self.serves_leak_profile == Some(false) {
            return Ok(None);
        }
        let raw = match self.get("goroutineleak").await {
            Ok(raw) => raw,
            // Once served, a refusal is an error like any failed probe.
            Err(ProbeError::Status { .. }) if self.serves_leak_profile.is_none() => {
                self.serves_leak_profile = Some(false);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let profile = self.check_profile("goroutineleak", &raw)?;
        self.serves_leak_profile = Some(true);
        let total = pprof::sample_total(&profile, 0);
        Ok(Some(LeakProfile {
            raw,
            profile,
            total,
        }))
    }

    /// [`Probe::measure`] plus heap and goroutine profiles for attribution.
    pub async fn snapshot(&mut self) -> Result<Snapshot, ProbeError> {
        let (counters, goroutine_leaks) = self.measure_with_leaks().await?;
        let heap_profile = self.get("heap?gc=1").await?;
        let heap = self.check_profile("heap?gc=1", &heap_profile)?;
        let goroutine_profile = self.get("goroutine").await?;
        self.check_profile("goroutine", &goroutine_profile)?;
        let dump = self.get("goroutine?debug=2").await?;
        let goroutine_dump = String::from_utf8_lossy(&dump).into_owned();
        Ok(Snapshot {
            at: Instant::now(),
            counters,
            heap_profile,
            heap,
            goroutine_profile,
            goroutine_dump,
            goroutine_leaks,
        })
    }
}

impl Probe {
    /// A profile that does not decode is an error now, naming its URL,
    /// rather than a silent lack of suspects later.
    fn check_profile(
        &self,
        path_and_query: &str,
        bytes: &[u8],
    ) -> Result<pprof::Profile, ProbeError> {
        pprof::decode(bytes).map_err(|source| ProbeError::Decode {
            url: format!("{}/{path_and_query}", self.base),
            source,
        })
    }
}

/// A connection to the first of `ips` (at `port`) that accepts, trying
/// them in order as a resolver's answer is tried; the last error otherwise.
async fn connect_first(ips: &[std::net::IpAddr], port: u16) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address pinned");
    for ip in ips {
        match TcpStream::connect((*ip, port)).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// runtime.MemProfileRate from the first line of `heap?debug=1`, which reads
/// `heap profile: A: B [C: D] @ heap/<2*MemProfileRate>`.
fn heap_profile_rate(text: &str) -> Option<u64> {
    let first = text.lines().next()?;
    let twice: u64 = first.rsplit_once("@ heap/")?.1.trim().parse().ok()?;
    Some(twice / 2)
}

fn counters(goroutines: u64, mem: &MemStats) -> Counters {
    Counters {
        goroutines,
        heap_bytes: mem.heap_alloc,
        heap_objects: mem.heap_objects,
        heap_inuse: mem.heap_inuse,
        stack_bytes: mem.stack_inuse,
        sys_bytes: mem.sys,
        leaked_goroutines: None,
    }
}

/// What a non-200 answer from a pprof URL usually means.
fn status_hint(status: StatusCode, body: &[u8]) -> String {
    let snippet: String = String::from_utf8_lossy(&body[..body.len().min(120)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match status {
        StatusCode::NOT_FOUND => format!(
            "no net/http/pprof here; import _ \"net/http/pprof\" in the target (it registers on \
             http.DefaultServeMux) or set target.pprof to where it is served (body: {})",
            snippet.trim()
        ),
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => format!(
            "access refused; the endpoint may check the Host header or need credentials (body: {})",
            snippet.trim()
        ),
        _ => format!("unexpected status (body: {})", snippet.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_profile_rate_comes_from_the_header() {
        assert_eq!(
            heap_profile_rate("heap profile: 1: 896 [1: 897] @ heap/1048576\n"),
            Some(524_288)
        );
        assert_eq!(
            heap_profile_rate("heap profile: 12: 17360 [12: 17361] @ heap/8192"),
            Some(4096)
        );
        assert_eq!(heap_profile_rate("<html>"), None);
    }

    #[test]
    fn not_found_hint_says_how_to_enable_pprof() {
        let hint = status_hint(StatusCode::NOT_FOUND, b"404 page not found\n");
        assert!(hint.contains("net/http/pprof"), "{hint}");
        assert!(hint.contains("404 page not found"), "{hint}");
    }

    #[test]
    fn forbidden_hint_mentions_host_check() {
        let hint = status_hint(StatusCode::FORBIDDEN, b"");
        assert!(hint.contains("Host"), "{hint}");
    }
}
