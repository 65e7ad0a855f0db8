//! The coordinator's side of the fleet: a websocket listener on a thread of
//! its own, one task per agent connection, and the [`Fleet`] handle the
//! protocol drives a cycle through.
//!
//! The listener and every connection run on a current-thread runtime on
//! their own OS thread, so pings go out and pongs are read on time however
//! busy the protocol's runtime is (decoding a large profile, say). The
//! protocol and the connections talk over channels only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    self, Message,
    handshake::server::{ErrorResponse, Request, Response},
};

use super::share::{self, Share};
use super::wire::{FromAgent, FromCoordinator, Job, PATH};
use super::{CoordinatorConfig, PING_EVERY, SILENT_FOR, token_matches};
use crate::load::{self, CycleLoad, Latencies, Live};
use crate::scenario::Load;

/// Bound on an agent's websocket upgrade and its `hello`.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

/// Bound on an agent's answer to `welcome` (it runs its preflight).
const READY_WITHIN: Duration = Duration::from_secs(30);

/// Bound on every agent answering `arm` (a name lookup and a preflight).
const ARM_WITHIN: Duration = Duration::from_secs(30);

/// Slack past the slowest share's own cycle bound before an agent that has
/// not closed its share counts as timed out.
const CLOSE_SLACK: Duration = Duration::from_secs(30);

/// Bound on every agent confirming an `abort`.
const ABORT_WITHIN: Duration = Duration::from_secs(10);

/// Bound on agents closing their connections after `bye`.
const BYE_WITHIN: Duration = Duration::from_secs(3);

/// How often the protocol side folds agents' progress into the live counts.
const FOLD_EVERY: Duration = Duration::from_millis(100);

/// What a connection tells the protocol.
enum Event {
    /// An agent is in and ready.
    Joined(Agent),
    /// An agent refused the job; the run cannot go on.
    Refused { who: String, reason: String },
    /// A message from agent `index`.
    Msg(u32, FromAgent),
    /// Agent `index`'s connection is gone.
    Lost(u32, String),
    /// Something worth a progress line (a refused connection).
    Note(String),
}

/// One connected agent, as the protocol sees it.
pub struct Agent {
    /// Its index in the fleet.
    pub index: u32,
    /// Its name (host or pod).
    pub name: String,
    /// Its address as the coordinator sees it.
    pub peer: SocketAddr,
    /// Its open-file limit.
    pub open_files: u64,
    /// Sessions that fit on it at once.
    pub fits: u64,
    tx: mpsc::UnboundedSender<FromCoordinator>,
    /// Why it is gone, once it is.
    lost: Option<String>,
}

impl Agent {
    /// `agent 2 (pod-x, 198.18.0.4:51234)`.
    pub fn describe(&self) -> String {
        format!("agent {} ({}, {})", self.index, self.name, self.peer)
    }

    fn send(&self, msg: FromCoordinator) {
        // A closed channel means the connection is gone; its Lost event
        // says so.
        let _ = self.tx.send(msg);
    }
}

/// Where an agent was in a cycle, for fault messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Arming,
    Armed,
    Opening,
    Holding,
    Closed,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Idle => "between cycles",
            Phase::Arming => "arming",
            Phase::Armed => "armed",
            Phase::Opening => "opening its sessions",
            Phase::Holding => "holding",
            Phase::Closed => "after closing",
        }
    }
}

/// An agent that failed a cycle: lost, timed out or erroring.
#[derive(Debug, Clone)]
pub struct Fault {
    /// `agent 2 (name, addr)`.
    pub agent: String,
    /// Where it was: `holding`, `arming`...
    pub phase: &'static str,
    /// What happened: `was lost (connection closed)`, `timed out`, ...
    pub what: String,
}

impl Fault {
    /// `agent 2 (...) was lost while holding in cycle 3/4: ...`.
    pub fn describe(&self, cycle: &str) -> String {
        format!(
            "{} {} while {} in {cycle}",
            self.agent, self.what, self.phase
        )
    }
}

/// Which agent indices are taken, shared by the connection tasks.
struct Registry {
    agents: u32,
    taken: Vec<bool>,
    /// Set once all agents joined: later connections are turned away.
    complete: bool,
}

impl Registry {
    fn claim(&mut self, asked: Option<u32>) -> Result<u32, String> {
        if self.complete {
            return Err(format!(
                "the coordinator already has its {} agents; this run needs no more",
                self.agents
            ));
        }
        match asked {
            Some(i) if i >= self.agents => Err(format!(
                "index {i} is out of range: this run has {} agents (indices 0 to {})",
                self.agents,
                self.agents - 1
            )),
            Some(i) if self.taken[i as usize] => Err(format!(
                "index {i} is taken by another agent; give each agent its own --index"
            )),
            Some(i) => {
                self.taken[i as usize] = true;
                Ok(i)
            }
            None => match self.taken.iter().position(|t| !t) {
                Some(i) => {
                    self.taken[i] = true;
                    Ok(i as u32)
                }
                None => Err(format!(
                    "all {} agent indices are taken; this run needs no more agents",
                    self.agents
                )),
            },
        }
    }

    fn release(&mut self, index: u32) {
        if !self.complete {
            self.taken[index as usize] = false;
        }
    }
}

/// What every connection task needs.
struct Context_ {
    token: String,
    job: Job,
    agents: u32,
    /// The scenario's concurrency, for each agent's preflight share.
    concurrency: u32,
    registry: Mutex<Registry>,
    events: mpsc::UnboundedSender<Event>,
}

/// The coordinator's fleet of agents.
pub struct Fleet {
    config: CoordinatorConfig,
    /// The address actually bound (the port when --listen gave 0).
    pub local: SocketAddr,
    agents: Vec<Agent>,
    events: mpsc::UnboundedReceiver<Event>,
    ctx: Arc<Context_>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Cycles armed so far (every cycle, warm-up and escalation included).
    cycles: u32,
    /// A cycle is running on the agents (so an interrupted run aborts it).
    busy: bool,
}

impl Fleet {
    /// Binds the listener and starts accepting agents (on a thread of its
    /// own) for `job`; [`Fleet::gather`] waits for them.
    pub fn listen(config: CoordinatorConfig, job: Job) -> Result<Fleet> {
        if job.load.concurrency < config.agents {
            bail!(
                "load.concurrency {} cannot be split over {} agents (each needs at least one session at once); \
                 raise load.concurrency to {} or lower --agents",
                job.load.concurrency,
                config.agents,
                config.agents
            );
        }
        let listener = std::net::TcpListener::bind(config.listen).with_context(|| {
            format!(
                "cannot listen on {} for agents (--listen); pick a free address and port",
                config.listen
            )
        })?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let ctx = Arc::new(Context_ {
            token: config.token.clone(),
            concurrency: job.load.concurrency,
            job,
            agents: config.agents,
            registry: Mutex::new(Registry {
                agents: config.agents,
                taken: vec![false; config.agents as usize],
                complete: false,
            }),
            events: events_tx,
        });
        let (shutdown, stop) = oneshot::channel();
        let thread_ctx = Arc::clone(&ctx);
        let tls = config.tls.clone();
        std::thread::Builder::new()
            .name("leakbench-fleet".to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = thread_ctx.events.send(Event::Note(format!(
                            "cannot start the fleet's runtime: {e}"
                        )));
                        return;
                    }
                };
                rt.block_on(accept_loop(listener, thread_ctx, tls, stop));
            })
            .context("starting the fleet's control thread")?;
        Ok(Fleet {
            config,
            local,
            agents: Vec::new(),
            events,
            ctx,
            shutdown: Some(shutdown),
            cycles: 0,
            busy: false,
        })
    }

    /// The agents, by index (after [`Fleet::gather`]).
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// Waits for every agent to join, within the agent timeout. `say`
    /// receives a line per agent joined and per connection turned away.
    pub async fn gather(&mut self, mut say: impl FnMut(String)) -> Result<()> {
        let n = self.config.agents;
        let timeout = self.config.agent_timeout;
        let deadline = Instant::now() + timeout;
        let mut joined: BTreeMap<u32, Agent> = BTreeMap::new();
        while (joined.len() as u32) < n {
            let event = match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => e,
                Ok(None) => bail!("the fleet's control thread stopped"),
                Err(_) => bail!(self.too_few(&joined, timeout)),
            };
            match event {
                Event::Joined(a) => {
                    say(format!(
                        "{} joined: {} session(s) fit at once (ulimit -n {})",
                        a.describe(),
                        a.fits,
                        a.open_files
                    ));
                    joined.insert(a.index, a);
                }
                Event::Refused { who, reason } => bail!("{who} refused the run: {reason}"),
                Event::Lost(i, why) => {
                    if let Some(a) = joined.remove(&i) {
                        say(format!(
                            "{} left before the run began ({why}); waiting for another",
                            a.describe()
                        ));
                    }
                }
                Event::Note(line) => say(line),
                Event::Msg(..) => {}
            }
        }
        self.ctx
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .complete = true;
        self.agents = joined.into_values().collect();
        Ok(())
    }

    fn too_few(&self, joined: &BTreeMap<u32, Agent>, timeout: Duration) -> String {
        let n = self.config.agents;
        let who = if joined.is_empty() {
            "none".to_owned()
        } else {
            joined
                .values()
                .map(Agent::describe)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let host = if self.local.ip().is_unspecified() {
            format!("<this host>:{}", self.local.port())
        } else {
            self.local.to_string()
        };
        let scheme = if self.config.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!(
            "{} of {n} agents connected within {} ({who}); start the others with \
             `leakbench agent --coordinator {scheme}://{host} --token-file {}`, or raise --agent-timeout",
            joined.len(),
            humantime::format_duration(timeout),
            self.config.token_file.display()
        )
    }

    /// Runs one cycle of `load` (its sessions and concurrency are the
    /// cycle's) on the agents: arm every agent, start them together, wait
    /// until every share is closed, and merge their reports. Live counts
    /// go to `live`; setting `live.stop` tells the agents to start no more
    /// sessions. Any agent lost, timed out or erroring is a [`Fault`]; the
    /// caller then aborts the fleet.
    pub async fn cycle(&mut self, load: &Load, live: &Live) -> Result<CycleLoad, Fault> {
        self.cycles += 1;
        let cycle = self.cycles;
        let n = self.agents.len();
        let shares = share::shares(load.sessions, load.concurrency, load.rate, n as u32);
        let mut phase = vec![Phase::Idle; n];
        self.drain(&mut phase)?;
        self.busy = true;
        for (a, share) in self.agents.iter().zip(&shares) {
            a.send(FromCoordinator::Arm {
                cycle,
                share: *share,
            });
        }
        phase.fill(Phase::Arming);
        // Barrier 1: every agent armed.
        let deadline = Instant::now() + ARM_WITHIN;
        while phase.contains(&Phase::Arming) {
            match self.next_event(deadline, &phase).await? {
                (i, FromAgent::Armed { cycle: c }) if c == cycle => phase[i] = Phase::Armed,
                (i, FromAgent::Error { message }) => return Err(self.fault(i, &phase, message)),
                _ => {}
            }
        }
        let start = Instant::now();
        for a in &self.agents {
            a.send(FromCoordinator::Go { cycle });
        }
        phase.fill(Phase::Opening);
        // Barriers 2 and 3: every share holding, every share closed.
        let bound = shares
            .iter()
            .map(|s| load::cycle_bound(&share_load(load, s)))
            .max()
            .unwrap_or_default()
            .saturating_add(CLOSE_SLACK);
        let deadline = start + bound;
        let mut counts = vec![(0u64, 0u64, 0u64); n];
        let mut parts: Vec<Option<(CycleLoad, Latencies)>> = vec![None; n];
        let mut stop_sent = false;
        let mut fold = tokio::time::interval(FOLD_EVERY);
        while parts.iter().any(Option::is_none) {
            let event = tokio::select! {
                e = self.next_event(deadline, &phase) => e?,
                _ = fold.tick() => {
                    fold_counts(live, &counts);
                    if !stop_sent && live.stop.load(std::sync::atomic::Ordering::Relaxed) {
                        stop_sent = true;
                        for a in &self.agents {
                            a.send(FromCoordinator::Stop);
                        }
                    }
                    continue;
                }
            };
            match event {
                (
                    i,
                    FromAgent::Progress {
                        started,
                        completed,
                        failed,
                    },
                ) => counts[i] = (started, completed, failed),
                (i, FromAgent::Holding { cycle: c }) if c == cycle => phase[i] = Phase::Holding,
                (i, FromAgent::Closed { cycle: c, report }) if c == cycle => {
                    let part = report
                        .into_parts()
                        .map_err(|e| self.fault(i, &phase, format!("sent a bad report: {e}")))?;
                    counts[i] = (part.0.started, part.0.completed, part.0.failed);
                    parts[i] = Some(part);
                    phase[i] = Phase::Closed;
                }
                (i, FromAgent::Error { message }) => return Err(self.fault(i, &phase, message)),
                _ => {}
            }
        }
        fold_counts(live, &counts);
        self.busy = false;
        let parts: Vec<(CycleLoad, Latencies)> = parts.into_iter().flatten().collect();
        Ok(load::stats::merge_parts(
            &parts,
            load.step_timeout,
            start.elapsed(),
        ))
    }

    /// Faults for agents already gone (between cycles), before arming.
    fn drain(&mut self, phase: &mut [Phase]) -> Result<(), Fault> {
        while let Ok(event) = self.events.try_recv() {
            if let Event::Lost(i, why) = event {
                if let Some(a) = self.agents.iter_mut().find(|a| a.index == i) {
                    a.lost = Some(why);
                }
            }
        }
        if let Some(i) = self.agents.iter().position(|a| a.lost.is_some()) {
            let why = self.agents[i].lost.clone().unwrap_or_default();
            return Err(Fault {
                agent: self.agents[i].describe(),
                phase: phase[i].name(),
                what: format!("was lost ({why})"),
            });
        }
        Ok(())
    }

    /// The next message of an agent of this fleet, or a fault: an agent
    /// lost, or `deadline` passed (the slowest agent timed out).
    async fn next_event(
        &mut self,
        deadline: Instant,
        phase: &[Phase],
    ) -> Result<(usize, FromAgent), Fault> {
        loop {
            let event = match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => e,
                Ok(None) => {
                    return Err(Fault {
                        agent: "every agent".to_owned(),
                        phase: "in a cycle",
                        what: "was lost (the fleet's control thread stopped)".to_owned(),
                    });
                }
                Err(_) => {
                    // The first agent still behind is the one that timed out.
                    let i = phase
                        .iter()
                        .position(|p| matches!(p, Phase::Arming | Phase::Opening | Phase::Holding))
                        .unwrap_or(0);
                    return Err(self.fault(i, phase, "timed out".to_owned()));
                }
            };
            match event {
                Event::Msg(index, msg) => {
                    if let Some(i) = self.position(index) {
                        return Ok((i, msg));
                    }
                }
                Event::Lost(index, why) => {
                    if let Some(i) = self.position(index) {
                        self.agents[i].lost = Some(why.clone());
                        return Err(self.fault(i, phase, format!("was lost ({why})")));
                    }
                }
                Event::Note(_) | Event::Joined(_) | Event::Refused { .. } => {}
            }
        }
    }

    fn position(&self, index: u32) -> Option<usize> {
        self.agents.iter().position(|a| a.index == index)
    }

    fn fault(&self, i: usize, phase: &[Phase], what: String) -> Fault {
        let what = if what.starts_with("was ")
            || what.starts_with("timed ")
            || what.starts_with("sent ")
        {
            what
        } else {
            format!("failed ({what})")
        };
        Fault {
            agent: self.agents[i].describe(),
            phase: phase.get(i).copied().unwrap_or(Phase::Idle).name(),
            what,
        }
    }

    /// Tells every agent still connected to drop its sessions, and waits
    /// (bounded) until each says it has or is gone.
    pub async fn abort(&mut self, reason: &str) {
        self.busy = false;
        let mut waiting: Vec<u32> = Vec::new();
        for a in &self.agents {
            if a.lost.is_none() {
                a.send(FromCoordinator::Abort {
                    reason: reason.to_owned(),
                });
                waiting.push(a.index);
            }
        }
        let deadline = Instant::now() + ABORT_WITHIN;
        while !waiting.is_empty() {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Event::Msg(i, FromAgent::Aborted))) => waiting.retain(|w| *w != i),
                Ok(Some(Event::Lost(i, why))) => {
                    waiting.retain(|w| *w != i);
                    if let Some(a) = self.agents.iter_mut().find(|a| a.index == i) {
                        a.lost = Some(why);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }

    /// Ends the run: aborts a cycle still running (an interrupted run),
    /// says `bye` to every agent and waits briefly for them to hang up.
    pub async fn finish(mut self) {
        if self.busy {
            self.abort("the coordinator stopped").await;
        }
        let mut open: Vec<u32> = Vec::new();
        for a in &self.agents {
            if a.lost.is_none() {
                a.send(FromCoordinator::Bye);
                open.push(a.index);
            }
        }
        let deadline = Instant::now() + BYE_WITHIN;
        while !open.is_empty() {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Event::Lost(i, _))) => open.retain(|o| *o != i),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }
}

/// The load one share runs: the cycle's, with the share's sessions,
/// concurrency and rate.
pub fn share_load(load: &Load, share: &Share) -> Load {
    let mut l = load.clone();
    l.sessions = share.sessions;
    l.concurrency = share.concurrency;
    l.rate = share.rate;
    l
}

fn fold_counts(live: &Live, counts: &[(u64, u64, u64)]) {
    use std::sync::atomic::Ordering::Relaxed;
    let (s, c, f) = counts
        .iter()
        .fold((0, 0, 0), |(s, c, f), x| (s + x.0, c + x.1, f + x.2));
    live.started.store(s, Relaxed);
    live.completed.store(c, Relaxed);
    live.failed.store(f, Relaxed);
}

async fn accept_loop(
    listener: std::net::TcpListener,
    ctx: Arc<Context_>,
    tls: Option<super::tls::ServerTls>,
    mut stop: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = ctx
                .events
                .send(Event::Note(format!("cannot accept agents: {e}")));
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let ctx = Arc::clone(&ctx);
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            Some(tls) => match tls.accept(stream).await {
                                Ok(stream) => serve(stream, peer, ctx).await,
                                Err(e) => {
                                    let _ = ctx.events.send(Event::Note(format!(
                                        "turned away a connection from {peer}: TLS handshake failed ({e})"
                                    )));
                                }
                            },
                            None => serve(stream, peer, ctx).await,
                        }
                    });
                }
                // EMFILE and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Checks the upgrade request: the agent path and the bearer token.
#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn check_request(
    req: &Request,
    response: Response,
    token: &str,
) -> Result<Response, ErrorResponse> {
    let reject = |status: u16, text: &str| {
        let mut r = ErrorResponse::new(Some(text.to_owned()));
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::FORBIDDEN);
        r
    };
    if req.uri().path() != PATH {
        return Err(reject(404, "not a leakbench agent endpoint"));
    }
    let presented = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if !token_matches(presented, token.as_bytes()) {
        return Err(reject(401, "wrong or missing bearer token"));
    }
    Ok(response)
}

/// One agent connection, from upgrade to close.
async fn serve<S>(stream: S, peer: SocketAddr, ctx: Arc<Context_>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let note = |line: String| {
        let _ = ctx.events.send(Event::Note(line));
    };
    let token = ctx.token.clone();
    // tungstenite's callback signature fixes the error type.
    #[allow(clippy::result_large_err)]
    let upgrade = tokio_tungstenite::accept_hdr_async(stream, move |req: &Request, resp| {
        check_request(req, resp, &token)
    });
    let mut ws = match tokio::time::timeout(HELLO_WITHIN, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(tungstenite::Error::Http(r))) if r.status() == 401 => {
            return note(format!(
                "turned away a connection from {peer}: wrong or missing bearer token"
            ));
        }
        Ok(Err(e)) => return note(format!("turned away a connection from {peer}: {e}")),
        Err(_) => {
            return note(format!(
                "turned away a connection from {peer}: no upgrade within {HELLO_WITHIN:?}"
            ));
        }
    };
    let (name, asked) = match tokio::time::timeout(HELLO_WITHIN, next_json(&mut ws)).await {
        Ok(Some(FromAgent::Hello {
            version,
            name,
            index,
            ..
        })) => {
            if version != env!("CARGO_PKG_VERSION") {
                let reason = format!(
                    "the agent is leakbench {version}, the coordinator {}; run the same version on both",
                    env!("CARGO_PKG_VERSION")
                );
                note(format!("turned away {name} ({peer}): {reason}"));
                let _ = send_json(&mut ws, &FromCoordinator::Rejected { reason }).await;
                return;
            }
            (name, index)
        }
        _ => return note(format!("turned away a connection from {peer}: no hello")),
    };
    let claimed = ctx
        .registry
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .claim(asked);
    let index = match claimed {
        Ok(i) => i,
        Err(reason) => {
            note(format!("turned away {name} ({peer}): {reason}"));
            let _ = send_json(&mut ws, &FromCoordinator::Rejected { reason }).await;
            let _ = ws.close(None).await;
            return;
        }
    };
    let release = || {
        ctx.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(index);
    };
    let concurrency = share::split(ctx.concurrency, ctx.agents)[index as usize];
    let welcome = FromCoordinator::Welcome {
        index,
        agents: ctx.agents,
        job: Box::new(ctx.job.clone()),
        concurrency,
    };
    if send_json(&mut ws, &welcome).await.is_err() {
        release();
        return;
    }
    let who = format!("agent {index} ({name}, {peer})");
    let (open_files, fits) = match tokio::time::timeout(READY_WITHIN, next_json(&mut ws)).await {
        Ok(Some(FromAgent::Ready { open_files, fits })) => (open_files, fits),
        Ok(Some(FromAgent::Refused { reason })) => {
            release();
            let _ = ctx.events.send(Event::Refused { who, reason });
            return;
        }
        _ => {
            release();
            return note(format!(
                "{who} did not answer the welcome; it was turned away"
            ));
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let agent = Agent {
        index,
        name,
        peer,
        open_files,
        fits,
        tx,
        lost: None,
    };
    if ctx.events.send(Event::Joined(agent)).is_err() {
        return;
    }
    let why = relay(&mut ws, &mut rx, index, &ctx.events).await;
    release();
    let _ = ctx.events.send(Event::Lost(index, why));
}

/// Relays messages both ways and pings, until the connection ends; returns
/// why it ended.
async fn relay<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    rx: &mut mpsc::UnboundedReceiver<FromCoordinator>,
    index: u32,
    events: &mpsc::UnboundedSender<Event>,
) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(msg) => {
                    let bye = matches!(msg, FromCoordinator::Bye);
                    if let Err(e) = send_json(ws, &msg).await {
                        return format!("sending failed: {e}");
                    }
                    if bye {
                        let _ = tokio::time::timeout(BYE_WITHIN, ws.close(None)).await;
                        return "the run ended".to_owned();
                    }
                }
                None => {
                    let _ = ws.close(None).await;
                    return "the coordinator hung up".to_owned();
                }
            },
            frame = ws.next() => {
                heard = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<FromAgent>(&text) {
                        Ok(msg) => {
                            let _ = events.send(Event::Msg(index, msg));
                        }
                        Err(e) => {
                            let _ = events.send(Event::Msg(index, FromAgent::Error {
                                message: format!("sent a message the coordinator cannot read: {e}"),
                            }));
                        }
                    },
                    Some(Ok(Message::Close(_))) | None => return "connection closed".to_owned(),
                    Some(Ok(_)) => {}
                    Some(Err(tungstenite::Error::Protocol(
                        tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    ))) => return "connection reset".to_owned(),
                    Some(Err(e)) => return format!("connection failed: {e}"),
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_FOR {
                    return format!(
                        "no answer to pings for {} s",
                        SILENT_FOR.as_secs()
                    );
                }
                if let Err(e) = ws.send(Message::Ping(Vec::new().into())).await {
                    return format!("sending a ping failed: {e}");
                }
            }
        }
    }
}

/// Sends one message as a JSON text frame.
pub(super) async fn send_json<S, M>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    msg: &M,
) -> Result<(), tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    M: serde::Serialize,
{
    let text = serde_json::to_string(msg).unwrap_or_default();
    ws.send(Message::Text(text.into())).await
}

/// The next JSON text message, skipping control frames; `None` when the
/// connection ends or sends something unreadable.
pub(super) async fn next_json<S, M>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Option<M>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    M: serde::de::DeserializeOwned,
{
    loop {
        match ws.next().await? {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_claimed_once() {
        let mut r = Registry {
            agents: 3,
            taken: vec![false; 3],
            complete: false,
        };
        assert_eq!(r.claim(Some(1)), Ok(1));
        assert!(r.claim(Some(1)).unwrap_err().contains("taken"));
        assert!(r.claim(Some(3)).unwrap_err().contains("out of range"));
        assert_eq!(r.claim(None), Ok(0));
        assert_eq!(r.claim(None), Ok(2));
        assert!(r.claim(None).is_err());
        r.release(2);
        assert_eq!(r.claim(None), Ok(2));
        r.complete = true;
        r.release(2);
        assert!(r.claim(None).unwrap_err().contains("already has"));
    }
}
