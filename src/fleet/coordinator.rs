//! The coordinator's side of the fleet: the [`Fleet`] handle the protocol
//! drives a cycle through, with its barriers, its fault handling and the
//! merge of the agents' reports.
//!
//! The listener and every connection (see `listener.rs`) run on a
//! current-thread runtime on their own OS thread, so pings go out and pongs
//! are read on time however busy the protocol's runtime is (decoding a
//! large profile, say). The protocol and the connections talk over
//! channels only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::CoordinatorConfig;
use super::listener::{Event, Registry, Shared, accept_loop};
use super::share::{self, Share};
use super::wire::{FromAgent, FromCoordinator, Job};
use crate::load::{self, CycleLoad, Latencies, Live};
use crate::scenario::Load;

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
    pub(super) tx: mpsc::UnboundedSender<FromCoordinator>,
    /// Why it is gone, once it is.
    pub(super) lost: Option<String>,
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

/// The coordinator's fleet of agents.
pub struct Fleet {
    config: CoordinatorConfig,
    /// The address actually bound (the port when --listen gave 0).
    pub local: SocketAddr,
    agents: Vec<Agent>,
    events: mpsc::UnboundedReceiver<Event>,
    ctx: Arc<Shared>,
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
        let ctx = Arc::new(Shared {
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
