//! `leakbench agent`: one load agent of a coordinator's fleet.
//!
//! The control channel runs on a current-thread runtime on its own OS
//! thread; the sessions of each share run on the multi-threaded load
//! runtime. Heartbeats and progress are read from shared counters, never
//! from the load's tasks, so a share that keeps every core busy cannot
//! starve them. When the coordinator goes away (connection closed, or
//! silent for [`SILENT_FOR`]), the running share is dropped, which closes
//! every session, and the agent exits 2.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use http::Uri;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use super::coordinator::share_load;
use super::listener::{next_json, send_json};
use super::share::Share;
use super::wire::{FromAgent, FromCoordinator, Job, PATH, ShareReport};
use super::{AgentArgs, SILENT_FOR, agent_allows, read_token};
use crate::load::{self, CycleLoad, Latencies, Live};
use crate::redact::Redactor;
use crate::remote::Policy;
use crate::scenario::Target;

/// How often a running share's counts go to the coordinator.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Pause between attempts to reach a coordinator that is not up yet.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// Bound on the TLS handshake and websocket upgrade once connected.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(15);

/// Bound on the coordinator's answer to `hello`.
const WELCOME_WITHIN: Duration = Duration::from_secs(30);

/// Bound on a share's sessions closing after an `abort` (dropping them is
/// immediate; this only bounds a task stuck outside an await).
const ABORT_WITHIN: Duration = Duration::from_secs(5);

/// Runs an agent until its coordinator ends the run.
pub fn execute(args: AgentArgs) -> Result<ExitCode> {
    let token = read_token(&args.token_file)?;
    // Bad --allow-remote values are an error before anything connects.
    Policy::from_flags(&args.allow_remote)?;
    let mut redactor = Redactor::default();
    redactor.add_token(&token);
    let url = agent_url(&args.coordinator)?;
    let tls = super::tls::ClientTls::from_args(&args)?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the agent's output folder {}", dir.display()))?;
    }
    crate::alloc::configure();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the load runtime")?;
    let load = runtime.handle().clone();
    let control = std::thread::Builder::new()
        .name("leakbench-agent".to_owned())
        .spawn(move || -> Result<ExitCode> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the agent's control runtime")?;
            rt.block_on(run(args, url, token, tls, load))
        })
        .context("starting the agent's control thread")?;
    let result = control
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the agent's control thread panicked")));
    runtime.shutdown_background();
    result.map_err(|e| anyhow::anyhow!("{}", redactor.redact(&crate::exit::error_line(&e))))
}

/// The coordinator URL with the agent path when it gives none.
fn agent_url(text: &str) -> Result<Uri> {
    let uri: Uri = text.parse().map_err(|e| {
        anyhow::anyhow!("--coordinator {text} is not a URL ({e}); write it as ws://HOST:PORT")
    })?;
    match uri.scheme_str() {
        Some("ws") | Some("wss") => {}
        _ => bail!(
            "--coordinator {text} must start with ws:// (or wss:// with TLS), e.g. ws://10.0.0.5:7070"
        ),
    }
    if uri.host().is_none() {
        bail!("--coordinator {text} has no host; write it as ws://HOST:PORT");
    }
    if uri.path() == "/" || uri.path().is_empty() {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let scheme = uri.scheme_str().unwrap_or("ws");
        return Ok(format!("{scheme}://{authority}{PATH}").parse()?);
    }
    Ok(uri)
}

/// The agent index from `--index`, else `JOB_COMPLETION_INDEX` (an Indexed
/// Job's pods each get theirs).
fn wanted_index(args: &AgentArgs) -> Result<Option<u32>> {
    if let Some(i) = args.index {
        return Ok(Some(i));
    }
    match std::env::var("JOB_COMPLETION_INDEX") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| {
            anyhow::anyhow!("JOB_COMPLETION_INDEX={v} is not an agent index (0, 1, 2...)")
        }),
        _ => Ok(None),
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| format!("pid {}", std::process::id()))
}

type Ws = tokio_tungstenite::WebSocketStream<super::tls::ClientStream>;

/// Connects, retrying while the coordinator is not listening yet.
async fn connect(
    url: &Uri,
    token: &str,
    token_file: &Path,
    tls: &Option<super::tls::ClientTls>,
    within: Duration,
) -> Result<Ws> {
    let deadline = Instant::now() + within;
    let host = url.host().unwrap_or_default().trim_matches(['[', ']']);
    let port = url
        .port_u16()
        .unwrap_or(if url.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    loop {
        // Only a coordinator that does not listen yet is worth retrying; a
        // TLS or upgrade failure will not fix itself.
        let tcp = match tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            tokio::net::TcpStream::connect((host, port)),
        )
        .await
        {
            Ok(Ok(tcp)) => Some(tcp),
            Ok(Err(e)) => {
                if Instant::now() + RETRY_EVERY >= deadline {
                    bail!(
                        "cannot reach the coordinator at {url} within {} ({e}); start `leakbench run \
                         --agents N --listen ...` there, or raise --connect-timeout",
                        humantime::format_duration(within)
                    );
                }
                None
            }
            Err(_) => bail!(
                "cannot reach the coordinator at {url} within {}: no answer; check the address and \
                 any firewall between, or raise --connect-timeout",
                humantime::format_duration(within)
            ),
        };
        let Some(tcp) = tcp else {
            tokio::time::sleep(RETRY_EVERY).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let handshake = async {
            let stream = super::tls::connect(tcp, tls, host)
                .await
                .map_err(|e| anyhow::anyhow!(
                    "the TLS handshake with the coordinator at {url} failed ({e}); check --ca (and --cert, --key)"
                ))?;
            let mut request = url.to_string().into_client_request()?;
            let bearer = http::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| anyhow::anyhow!("the token is not a valid header value"))?;
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, bearer);
            match tokio_tungstenite::client_async(request, stream).await {
                Ok((ws, _)) => Ok(ws),
                Err(tungstenite::Error::Http(r)) if r.status() == 401 => bail!(
                    "the coordinator at {url} refused the token in {} (HTTP 401); give this agent the \
                     coordinator's token file",
                    token_file.display()
                ),
                Err(tungstenite::Error::Http(r)) => bail!(
                    "{url} answered the agent's upgrade with HTTP {}; is it a leakbench coordinator?",
                    r.status()
                ),
                Err(e) => bail!(
                    "the websocket upgrade to the coordinator at {url} failed ({e}); with mutual TLS, \
                     check --cert and --key"
                ),
            }
        };
        return match tokio::time::timeout(HANDSHAKE_WITHIN, handshake).await {
            Ok(result) => result,
            Err(_) => bail!(
                "the coordinator at {url} accepted the connection but did not finish the upgrade within {HANDSHAKE_WITHIN:?}"
            ),
        };
    }
}

/// The agent's life: connect, join, run shares until `bye`.
async fn run(
    args: AgentArgs,
    url: Uri,
    token: String,
    tls: Option<super::tls::ClientTls>,
    load_rt: tokio::runtime::Handle,
) -> Result<ExitCode> {
    let index = wanted_index(&args)?;
    let mut ws = connect(&url, &token, &args.token_file, &tls, args.connect_timeout).await?;
    let name = host_name();
    send_json(
        &mut ws,
        &FromAgent::Hello {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            name: name.clone(),
            index,
            sources: args.sources.clone(),
        },
    )
    .await
    .context("sending hello to the coordinator")?;
    let welcome = tokio::time::timeout(WELCOME_WITHIN, next_json::<_, FromCoordinator>(&mut ws))
        .await
        .ok()
        .flatten();
    let (index, agents, job, concurrency) = match welcome {
        Some(FromCoordinator::Welcome {
            index,
            agents,
            job,
            concurrency,
        }) => (index, agents, *job, concurrency),
        Some(FromCoordinator::Rejected { reason }) => {
            bail!("the coordinator at {url} turned this agent away: {reason}")
        }
        _ => bail!("the coordinator at {url} did not welcome this agent within {WELCOME_WITHIN:?}"),
    };
    let me = format!("agent {index} of {agents}");
    let mut job = job;
    if !args.sources.is_empty() {
        job.load.source_addresses = args.sources.clone();
    }
    let target = match prepare(&job, &args, concurrency).await {
        Ok((target, pre)) => {
            send_json(
                &mut ws,
                &FromAgent::Ready {
                    open_files: pre.open_files,
                    fits: pre.fits,
                },
            )
            .await?;
            eprintln!(
                "{me}: joined {url} for `{}` ({} at once fit here, share {concurrency})",
                job.name, pre.fits
            );
            target
        }
        Err(reason) => {
            let _ = send_json(
                &mut ws,
                &FromAgent::Refused {
                    reason: reason.clone(),
                },
            )
            .await;
            let _ = ws.close(None).await;
            bail!("{me} refused the run: {reason}");
        }
    };
    let agent = Agent {
        me,
        index,
        job,
        target: Arc::new(target),
        out: args.out.clone(),
        load_rt,
    };
    agent.serve(ws).await
}

/// Checks the job against this agent: its allow list, and its share of
/// the concurrency against its own limits.
async fn prepare(
    job: &Job,
    args: &AgentArgs,
    concurrency: u32,
) -> Result<(Target, load::Preflight), String> {
    let mut target = job.target.to_target()?;
    target.remote = Policy::from_flags(&args.allow_remote).map_err(|e| e.to_string())?;
    target.pins = agent_allows(&target, &target.remote, job.load.step_timeout).await?;
    let mut l = job.load.clone();
    l.concurrency = concurrency;
    if let Ok(pre) = load::preflight(&target, &l) {
        return Ok((target, pre));
    }
    // What this machine allows, asked with one session so that the answer
    // is the limit itself rather than a refusal in load.concurrency's terms.
    l.concurrency = 1;
    let pre = load::preflight(&target, &l)?;
    Err(format!(
        "its share of load.concurrency is {concurrency} sessions at once, but at most {} fit \
             on this agent (limited by {}); add agents (--agents and one more `leakbench agent`) \
             or raise this agent's limit (ulimit -n, or more --source addresses)",
        pre.fits, pre.limited_by
    ))
}

/// A joined agent.
struct Agent {
    me: String,
    index: u32,
    job: Job,
    target: Arc<Target>,
    out: Option<PathBuf>,
    load_rt: tokio::runtime::Handle,
}

/// The share in progress.
struct Running {
    cycle: u32,
    share: Share,
    live: Arc<Live>,
    task: JoinHandle<(CycleLoad, Latencies)>,
    holding: bool,
}

impl Agent {
    async fn serve(self, mut ws: Ws) -> Result<ExitCode> {
        let mut armed: Option<(u32, Share)> = None;
        let mut running: Option<Running> = None;
        let mut heard = Instant::now();
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            tokio::select! {
                frame = ws.next() => {
                    heard = Instant::now();
                    let msg = match frame {
                        Some(Ok(Message::Text(text))) => match serde_json::from_str::<FromCoordinator>(&text) {
                            Ok(m) => m,
                            Err(e) => {
                                send_json(&mut ws, &FromAgent::Error { message: format!("cannot read a message: {e}") }).await?;
                                continue;
                            }
                        },
                        Some(Ok(Message::Close(_))) | None => {
                            self.drop_share(running.take()).await;
                            bail!("{}: the coordinator closed the connection mid-run; every session was closed", self.me);
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => {
                            self.drop_share(running.take()).await;
                            bail!("{}: the connection to the coordinator failed ({e}); every session was closed", self.me);
                        }
                    };
                    match msg {
                        FromCoordinator::Arm { cycle, share } => {
                            let reply = match self.arm(&share) {
                                Ok(()) => {
                                    armed = Some((cycle, share));
                                    FromAgent::Armed { cycle }
                                }
                                Err(message) => FromAgent::Error { message },
                            };
                            send_json(&mut ws, &reply).await?;
                        }
                        FromCoordinator::Go { cycle } => match armed.take() {
                            Some((c, share)) if c == cycle => {
                                eprintln!(
                                    "{}: cycle {cycle}: opening sessions {}..{}",
                                    self.me, share.first, share.first + u64::from(share.sessions)
                                );
                                running = Some(self.start(cycle, share));
                            }
                            _ => {
                                send_json(&mut ws, &FromAgent::Error { message: format!("go for cycle {cycle}, which was not armed") }).await?;
                            }
                        },
                        FromCoordinator::Stop => {
                            if let Some(r) = &running {
                                r.live.stop.store(true, Ordering::Relaxed);
                            }
                        }
                        FromCoordinator::Abort { reason } => {
                            armed = None;
                            if running.is_some() {
                                eprintln!("{}: aborting: {reason}", self.me);
                            }
                            self.drop_share(running.take()).await;
                            send_json(&mut ws, &FromAgent::Aborted).await?;
                        }
                        FromCoordinator::Bye => {
                            self.drop_share(running.take()).await;
                            let _ = ws.close(None).await;
                            eprintln!("{}: the run is over", self.me);
                            return Ok(ExitCode::SUCCESS);
                        }
                        FromCoordinator::Welcome { .. } | FromCoordinator::Rejected { .. } => {}
                    }
                }
                done = finished(&mut running) => {
                    let r = running.take().expect("finished only resolves with a share running");
                    let (cycle_load, latencies) = match done {
                        Ok(parts) => parts,
                        Err(e) => {
                            send_json(&mut ws, &FromAgent::Error { message: format!("the share's task failed: {e}") }).await?;
                            continue;
                        }
                    };
                    eprintln!(
                        "{}: cycle {}: sessions {}..{}: {} done, {} failed in {:.2} s",
                        self.me, r.cycle, r.share.first, r.share.first + u64::from(r.share.sessions),
                        cycle_load.completed, cycle_load.failed, cycle_load.elapsed_s
                    );
                    self.write_report(r.cycle, &r.share, &cycle_load);
                    let report = match ShareReport::new(cycle_load, &latencies) {
                        Ok(report) => FromAgent::Closed { cycle: r.cycle, report: Box::new(report) },
                        Err(message) => FromAgent::Error { message },
                    };
                    send_json(&mut ws, &report).await?;
                }
                _ = tick.tick() => {
                    if heard.elapsed() > SILENT_FOR {
                        self.drop_share(running.take()).await;
                        bail!(
                            "{}: the coordinator sent nothing for {} s (no ping); every session was closed",
                            self.me, SILENT_FOR.as_secs()
                        );
                    }
                    if let Some(r) = &mut running {
                        let (started, completed, failed) = r.live.counts();
                        send_json(&mut ws, &FromAgent::Progress { started, completed, failed }).await?;
                        let all_started = started >= u64::from(r.share.sessions)
                            || r.live.stop.load(Ordering::Relaxed);
                        if !r.holding && all_started {
                            r.holding = true;
                            // Said to the coordinator first, then to the log.
                            send_json(&mut ws, &FromAgent::Holding { cycle: r.cycle }).await?;
                            eprintln!("{}: cycle {}: {started} session(s) started, holding", self.me, r.cycle);
                        }
                    }
                }
            }
        }
    }

    /// Arming: the target is still one this agent agrees to load, and the
    /// share fits.
    fn arm(&self, share: &Share) -> Result<(), String> {
        if share.sessions == 0 {
            return Ok(());
        }
        let l = share_load(&self.job.load, share);
        load::preflight(&self.target, &l).map(|_| ()).map_err(|e| {
            format!(
                "its share ({} sessions, {} at once) does not fit: {e}",
                share.sessions, share.concurrency
            )
        })
    }

    fn start(&self, cycle: u32, share: Share) -> Running {
        let live = Arc::new(Live::default());
        let target = Arc::clone(&self.target);
        let l = share_load(&self.job.load, &share);
        let task_live = Arc::clone(&live);
        let task = self.load_rt.spawn(async move {
            if l.sessions == 0 {
                let empty = crate::load::Latencies::new(l.step_timeout);
                return (CycleLoad::default(), empty);
            }
            load::run_share(&target, &l, share.first, &task_live).await
        });
        Running {
            cycle,
            share,
            live,
            task,
            holding: false,
        }
    }

    /// Drops a running share: every session's socket is closed.
    async fn drop_share(&self, running: Option<Running>) {
        if let Some(r) = running {
            r.task.abort();
            let _ = tokio::time::timeout(ABORT_WITHIN, r.task).await;
        }
    }

    fn write_report(&self, cycle: u32, share: &Share, l: &CycleLoad) {
        let Some(dir) = &self.out else { return };
        let body = serde_json::json!({
            "agent": self.index,
            "cycle": cycle,
            "share": share,
            "load": l,
        });
        let path = dir.join(format!("cycle-{cycle}.json"));
        if let Err(e) = std::fs::write(&path, format!("{body:#}\n")) {
            eprintln!("{}: cannot write {}: {e}", self.me, path.display());
        }
    }
}

/// Resolves when the running share's task ends; never without one.
async fn finished(
    running: &mut Option<Running>,
) -> Result<(CycleLoad, Latencies), tokio::task::JoinError> {
    match running {
        Some(r) => (&mut r.task).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_urls_get_the_agent_path() {
        assert_eq!(
            agent_url("ws://127.0.0.1:7070").unwrap().to_string(),
            "ws://127.0.0.1:7070/leakbench/v1/agent"
        );
        assert_eq!(
            agent_url("ws://h:1/custom").unwrap().to_string(),
            "ws://h:1/custom"
        );
        assert!(
            agent_url("http://h:1")
                .unwrap_err()
                .to_string()
                .contains("ws://")
        );
    }
}
