//! Load: open a cycle's sessions against the target, run their steps, hold,
//! close them as the scenario says, and report what happened.
//!
//! The layers, each in its own file:
//! - this file schedules a cycle: sessions are spread over a few shard tasks,
//!   each running its share of the concurrency and filling its own
//!   [`stats::Stats`]; the shards' stats are merged once at the end;
//! - [`session`] is the one session loop, generic over a transport and
//!   driven by a close mode's [`session::Ending`];
//! - `ws` and `http` are the transports;
//! - [`failure`] classifies what went wrong, [`stats`] aggregates.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::scenario::{HttpConnection, Load, Rate, Step, Target, Transport as Wire};

pub mod failure;
mod http;
pub mod limits;
mod net;
pub mod pacing;
mod session;
pub(crate) mod stats;
mod template;
mod ws;

pub use limits::{Preflight, preflight, raise_open_file_limit};
pub(crate) use net::Stream;
pub use stats::Latencies;

#[cfg(test)]
mod tests;

use failure::{Cause, Detail, Failure, Stage};
use session::{Session, SessionPlan, Transport};
use stats::{Recorder, Stats};
use template::Vars;

/// Shard tasks per available core. Each shard keeps its own histograms (a few
/// hundred KiB), so one per session slot would cost gigabytes at tens of
/// thousands of sessions; a few per core keep both cores busy and let a slow
/// shard's neighbours carry on.
const SHARDS_PER_CORE: usize = 4;

/// Latency percentiles of one kind of operation in one cycle, in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Operations measured.
    pub count: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Slowest, µs.
    pub max_us: u64,
}

/// What one cycle of load did (also a fleet agent's report of its share).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CycleLoad {
    /// Sessions started.
    pub started: u64,
    /// Sessions that ran every step and closed as specified.
    pub completed: u64,
    /// Sessions that failed.
    pub failed: u64,
    /// Failed sessions by cause, each session counted once: `refused`,
    /// `reset`, `timeout`, `handshake`, `bad_status`, `expect_missed`,
    /// `closed`, `protocol`, `io` (see [`failure::Cause`]); causes with no
    /// failures are left out.
    pub failures: BTreeMap<String, u64>,
    /// A few distinct failure messages (at most 5), for the person reading
    /// the report, e.g. `handshake at handshake: upgrade rejected with HTTP 403 Forbidden`.
    pub failure_examples: Vec<String>,
    /// TCP connect time, plus the TLS handshake for wss/https. With a
    /// `rate`, a session's first connect is timed from its intended start,
    /// so starts delayed by the concurrency limit show here.
    pub connect: LatencySummary,
    /// Websocket handshake (one per session), or HTTP time from sending a
    /// request to its response head (one per request).
    pub handshake: LatencySummary,
    /// Websocket send-to-expected-reply round trips.
    pub round_trip: LatencySummary,
    /// HTTP request latency, from sending to the end of the body (with a
    /// `rate`, a session's first request is timed from its intended start).
    pub request: LatencySummary,
    /// Wall time of the cycle, seconds.
    pub elapsed_s: f64,
}

/// Runs one cycle: `load.sessions` sessions, at most `load.concurrency` at
/// once (started as fast as that allows, or at `load.rate`), each closed as
/// `load.close` says; returns once every session is closed (leakbench holds
/// no connection to the target afterwards).
///
/// Every network wait is bounded by `load.step_timeout` (or a step's own
/// timeout), and the cycle as a whole by [`cycle_bound`]: sessions still
/// open then are dropped (their sockets closed) and counted as `timeout`.
pub async fn run_cycle(target: &Target, load: &Load) -> CycleLoad {
    run_cycle_observed(target, load, &Arc::new(Live::default())).await
}

/// Sessions of the running cycle, for a live display: bumped as sessions
/// start, complete and fail, read by whoever holds the other `Arc`.
#[derive(Debug, Default)]
pub struct Live {
    /// Sessions started so far.
    pub started: AtomicU64,
    /// Sessions that ran every step and closed as specified.
    pub completed: AtomicU64,
    /// Sessions that failed.
    pub failed: AtomicU64,
    /// Set to start no more sessions: those already running finish, and the
    /// cycle ends with fewer sessions than planned (the escalation's time
    /// budget ending mid-cycle).
    pub stop: std::sync::atomic::AtomicBool,
}

impl Live {
    /// (started, completed, failed) now.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.started.load(Ordering::Relaxed),
            self.completed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// [`run_cycle`], counting sessions into `live` as they go.
pub async fn run_cycle_observed(target: &Target, load: &Load, live: &Arc<Live>) -> CycleLoad {
    let start = Instant::now();
    let stats = run_stats(target, load, 0, live).await;
    let cycle = stats.into_cycle(start.elapsed());
    crate::alloc::give_back();
    cycle
}

/// One load agent's share of a fleet's cycle: [`run_cycle_observed`] with
/// sessions numbered from `first` (so `{{session}}` stays unique across the
/// fleet), returning the latency histograms too, for the coordinator to add
/// to the other agents'.
pub async fn run_share(
    target: &Target,
    load: &Load,
    first: u64,
    live: &Arc<Live>,
) -> (CycleLoad, stats::Latencies) {
    let start = Instant::now();
    let stats = run_stats(target, load, first, live).await;
    let parts = stats.into_parts(start.elapsed());
    crate::alloc::give_back();
    parts
}

async fn run_stats(target: &Target, load: &Load, first: u64, live: &Arc<Live>) -> Stats {
    match prepare(target, load).await {
        Ok(plan) => match target.transport {
            Wire::WebSocket => match ws::Ws::new(target, load) {
                Ok(ws) => run_shards(ws, plan, load, first, live).await,
                Err(message) => all_failed(load, Stage::Handshake, message),
            },
            Wire::Http => match http::Http::new(target, load) {
                Ok(http) => run_shards(http, plan, load, first, live).await,
                Err(message) => all_failed(load, Stage::Handshake, message),
            },
        },
        Err(message) => all_failed(load, Stage::Connect, message),
    }
}

/// The address sessions connect to (pinned at run start, or resolved once
/// per cycle for an unpinned `localhost`); picks source addresses and sets
/// up TLS with the host as written.
async fn prepare(target: &Target, load: &Load) -> Result<SessionPlan, String> {
    // Idempotent: the open-file soft limit goes to the hard limit even when
    // the caller did not run `preflight`.
    let _ = limits::raise_open_file_limit();
    let host = target.url.host().ok_or("the URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let secure = matches!(target.url.scheme_str(), Some("wss") | Some("https"));
    let port = target
        .url
        .port_u16()
        .unwrap_or(if secure { 443 } else { 80 });
    // A name pinned at run start connects where it was pinned, whatever
    // the resolver says now (see crate::remote). An address needs no lookup
    // (a lookup runs on tokio's blocking pool, which may start a thread per
    // cycle); unpinned, only `localhost` still resolves.
    let pinned = target
        .pins
        .socket_addrs(host, port)
        .and_then(|a| a.first().copied());
    let addr: SocketAddr = match pinned {
        Some(addr) => addr,
        None if !host.eq_ignore_ascii_case("localhost") => {
            return Err(format!(
                "{host} was not resolved and pinned at run start; name it with an address"
            ));
        }
        None => tokio::time::timeout(load.step_timeout, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| format!("resolving {host} took longer than {:?}", load.step_timeout))?
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))?,
    };
    let sources = limits::plan_sources(Some(addr.ip()), load, limits::ports_per_source());
    let tls = if secure {
        Some(net::TlsClient::new(&target.tls, host)?)
    } else {
        None
    };
    Ok(SessionPlan {
        addr,
        sources,
        tls,
        step_timeout: load.step_timeout,
        hold: load.hold,
        ending: load.close.into(),
    })
}

/// Every session of the cycle failed before one could start.
fn all_failed(load: &Load, stage: Stage, message: String) -> Stats {
    let mut stats = Stats::new(load.step_timeout);
    let failure = Failure::new(Cause::Io, stage, Detail::Io(std::io::Error::other(message)));
    for _ in 0..load.sessions {
        stats.started();
    }
    stats.failed(&failure, u64::from(load.sessions));
    stats
}

/// Longest one pass of the steps may take: each send, expect and ping at its
/// bound, each pause, blocks times their repeats.
fn script_bound(steps: &[Step], default: Duration) -> Duration {
    steps.iter().fold(Duration::ZERO, |total, step| {
        let one = match step {
            Step::Send { timeout, .. }
            | Step::SendBinary { timeout, .. }
            | Step::Expect { timeout, .. }
            | Step::Ping { timeout, .. } => timeout.unwrap_or(default),
            Step::Pause(d) => *d,
            Step::Repeat { times, steps } => script_bound(steps, default).saturating_mul(*times),
        };
        total.saturating_add(one)
    })
}

/// Longest a cycle may take: every session's network waits at their bound,
/// plus its hold, times the waves of sessions the concurrency allows (or the
/// time the arrival rate needs to start them all, whichever is longer), plus
/// one step timeout of slack. Reaching it means something is not bounded as
/// it should be; it is a backstop, not a policy.
pub fn cycle_bound(load: &Load) -> Duration {
    // connect + TLS/handshake + close handshake + FIN wait, per connection.
    let per_connection = load.step_timeout.saturating_mul(4);
    let connections = match load.http.connection {
        HttpConnection::PerRequest => load.requests.max(1),
        HttpConnection::KeepAlive => 1,
    };
    let session = per_connection
        .saturating_mul(connections)
        .saturating_add(script_bound(&load.steps, load.step_timeout))
        .saturating_add(load.step_timeout.saturating_mul(load.requests))
        .saturating_add(load.hold);
    let waves = u64::from(load.sessions).div_ceil(u64::from(load.concurrency.max(1)));
    let closed = session.saturating_mul(u32::try_from(waves).unwrap_or(u32::MAX));
    let open = match load.rate {
        Some(rate) => pacing::last_start(rate, load.sessions).saturating_add(session),
        None => Duration::ZERO,
    };
    closed.max(open).saturating_add(load.step_timeout)
}

/// What the shards of one cycle share.
struct Cycle<T> {
    transport: T,
    plan: SessionPlan,
    sessions: u64,
    /// The number of this cycle's first session (non-zero for a fleet
    /// agent's share); `next` counts from zero regardless, for pacing.
    first: u64,
    next: AtomicU64,
    /// When the cycle started (the origin of intended start times).
    start: Instant,
    rate: Option<Rate>,
    deadline: Instant,
    live: Arc<Live>,
}

/// The outcome of asking for the next session.
enum Claim {
    /// Run this session, which was meant to start at this time (if paced).
    Run(u64, Option<Instant>),
    /// The next session is not due before this time.
    NotBefore(Instant),
    /// Every session has been claimed.
    Done,
}

impl<T> Cycle<T> {
    /// Claims the next session to run if it is due at `now`.
    fn claim(&self, now: Instant) -> Claim {
        if self.live.stop.load(Ordering::Relaxed) {
            return Claim::Done;
        }
        let mut wait = None;
        let claimed = self
            .next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                if n >= self.sessions {
                    return None;
                }
                if let Some(rate) = self.rate {
                    let due = self.start + pacing::start_of(rate, n);
                    if due > now {
                        wait = Some(due);
                        return None;
                    }
                }
                Some(n + 1)
            });
        match (claimed, wait) {
            (Ok(n), _) => Claim::Run(
                n,
                self.rate.map(|rate| self.start + pacing::start_of(rate, n)),
            ),
            (Err(_), Some(due)) => Claim::NotBefore(due),
            (Err(_), None) => Claim::Done,
        }
    }
}

async fn run_shards<T: Transport>(
    transport: T,
    plan: SessionPlan,
    load: &Load,
    first: u64,
    live: &Arc<Live>,
) -> Stats {
    let concurrency = load.concurrency.max(1) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = concurrency.min(cores * SHARDS_PER_CORE);
    // Far enough never to matter is still finite: Instant + Duration::MAX panics.
    let bound = cycle_bound(load).min(Duration::from_secs(7 * 24 * 3600));
    let start = Instant::now();
    let cycle = Arc::new(Cycle {
        transport,
        plan,
        sessions: u64::from(load.sessions),
        first,
        next: AtomicU64::new(0),
        start,
        rate: load.rate,
        deadline: start + bound,
        live: Arc::clone(live),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for shard in 0..shards {
        // Spread the slots: the first `concurrency % shards` get one more.
        let slots = concurrency / shards + usize::from(shard < concurrency % shards);
        tasks.spawn(run_shard(Arc::clone(&cycle), slots, load.step_timeout));
    }
    let mut total = Stats::new(load.step_timeout);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(stats) => total.merge(stats),
            // A panicking session is a bug; the sessions it ran are lost.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    total
}

/// One shard: keeps up to `slots` sessions running, claiming new ones as
/// others end (and, with a rate, as they fall due), until none are left or
/// the cycle's deadline passes.
async fn run_shard<T: Transport>(cycle: Arc<Cycle<T>>, slots: usize, longest: Duration) -> Stats {
    let rec = Recorder::new(Stats::new(longest));
    let work = async {
        let mut running = FuturesUnordered::new();
        loop {
            let mut due = None;
            while running.len() < slots {
                match cycle.claim(Instant::now()) {
                    Claim::Run(n, intended) => {
                        let session = Session {
                            vars: Vars::new(cycle.first + n),
                            intended,
                        };
                        let (cycle, rec) = (&cycle, &rec);
                        running.push(async move {
                            rec.with(Stats::started);
                            cycle.live.started.fetch_add(1, Ordering::Relaxed);
                            match session::run(&cycle.transport, &cycle.plan, &session, rec).await {
                                Ok(()) => {
                                    rec.with(Stats::completed);
                                    cycle.live.completed.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(failure) => {
                                    rec.with(|s| s.failed(&failure, 1));
                                    cycle.live.failed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        });
                    }
                    Claim::NotBefore(at) => {
                        due = Some(at);
                        break;
                    }
                    Claim::Done => break,
                }
            }
            match due {
                None => {
                    if running.next().await.is_none() {
                        break;
                    }
                }
                // Wake for whichever comes first: a session ending, or the
                // next one falling due.
                Some(at) => {
                    tokio::select! {
                        _ = running.next(), if !running.is_empty() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
            }
        }
    };
    let finished = tokio::time::timeout_at(cycle.deadline, work).await.is_ok();
    // The `work` future is gone here: every socket it held is closed.
    let mut stats = rec.into_inner();
    if !finished {
        let open = stats.open();
        if open > 0 {
            let failure = Failure::new(
                Cause::Timeout,
                Stage::Deadline,
                Detail::Note("session still open when the cycle's time bound passed"),
            );
            stats.failed(&failure, open);
        }
    }
    stats
}
