//! The measurement protocol of `leakbench run`, and nothing else: it runs
//! the phases and hands what they measured to the stages that judge,
//! attribute and report.
//!
//! warm-up cycles -> settle quiet -> baseline snapshot -> measured cycles,
//! each followed by a short settle and a measurement (a point of each
//! signal's retention curve) -> while a curve is undecided, escalation
//! cycles of doubling size within the session and time budgets -> while a
//! curve still rises, a wait until the first measured sessions are older
//! than the release horizon -> final snapshot -> verdict and suspects.

mod cycle;
mod escalate;
mod read;
mod ready;
mod signals;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::exit;
use crate::load::{self, CycleLoad};
use crate::output::{self, Profiles};
use crate::progress::{self, Mode, Progress};
use crate::redact::Redactor;
use crate::report::model::{RemoteAccess, Timeline};
use crate::report::{Phase, PhaseKind, Report, SCHEMA, Status};
use crate::scenario::Scenario;
use crate::settle::{BASELINE_QUIET, Goal, Tolerance};
use crate::signal::{format_value, name};
use crate::sources::{Reading, SignalSpec, Sources};
use crate::suspects;
use crate::target::Launched;
use crate::verdict::{self, Course, Curves, RunEvidence, SignalVerdict, Stop};
use signals::Signals;

/// How long a started target gets to show its exit after a failed read
/// (its sockets close before the exit is visible).
const EXIT_SEEN_WITHIN: Duration = Duration::from_millis(500);

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Folder for report.json, profiles and the target's log.
    pub out: Option<PathBuf>,
    /// No progress lines.
    pub quiet: bool,
    /// Run each cycle's sessions on load agents (`--agents N`) instead of here.
    pub fleet: Option<crate::fleet::CoordinatorConfig>,
}

/// A run that stopped for a reason that is not a verdict.
///
/// Every variant but [`RunError::Aborted`] is an error (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run was stopped on purpose because what it measured could no
    /// longer be trusted (the load failing mid-cycle past
    /// `load.abort_failure_ratio`, a load agent lost): not an error of the
    /// setup, and no verdict either. Returned from anywhere in the protocol,
    /// [`run`] ends the report complete and **inconclusive** (exit 3) with
    /// `reason` as its first reason. The caller stops the load (and waits
    /// for whatever settle it wants) before returning it.
    #[error("{reason}")]
    Aborted {
        /// Why, for a person: what tripped, with numbers and causes.
        reason: String,
    },
    /// The target we started exited.
    #[error("the target exited ({status}) during {phase}; last lines of its log ({log}):\n{tail}")]
    TargetDied {
        /// Exit status.
        status: String,
        /// What leakbench was doing.
        phase: String,
        /// Log file.
        log: String,
        /// Last lines of it.
        tail: String,
    },
}

impl RunError {
    /// The reason of an [`RunError::Aborted`] error, if `e` is one.
    fn aborted(e: &anyhow::Error) -> Option<&str> {
        match e.downcast_ref::<RunError>() {
            Some(RunError::Aborted { reason }) => Some(reason),
            _ => None,
        }
    }
}

/// What a run produced: always a report, plus the error that cut it short.
pub struct Outcome {
    /// The report, partial unless `status` is complete; its
    /// [`Report::exit_code`] is the process's.
    pub report: Report,
    /// The error that ended the run early, if any.
    pub error: Option<anyhow::Error>,
}

/// Runs a scenario to its verdict. `Err` only when nothing could start (the
/// output folder or the target's process); later failures and interruptions
/// come back as an [`Outcome`] with a partial report.
pub async fn run(scenario: &Scenario, options: &RunOptions) -> Result<Outcome> {
    let start = Instant::now();
    // Names are resolved once, here, and the run connects to these
    // addresses only (see crate::remote): a refused one is an error before
    // any connection.
    let mut pinned = scenario.clone();
    pinned.pin().await.map_err(anyhow::Error::msg)?;
    let scenario = &pinned;
    let mut redactor = Redactor::from_scenario(scenario);
    if let Some(fleet) = &options.fleet {
        redactor.add_token(&fleet.token);
    }
    let progress = Progress::new(Mode::detect(options.quiet), start, redactor);
    let mut signals = Signals::new();
    if let Some(out) = &options.out {
        std::fs::create_dir_all(out)
            .with_context(|| format!("creating output folder {}", out.display()))?;
    }
    if let Some(remote) = remote_access(scenario) {
        progress.line(format!(
            "remote hosts allowed (--allow-remote): {}",
            remote.line()
        ));
    }
    let fleet = match &options.fleet {
        // The agents preflight their own shares when they join.
        Some(config) => Some(gather_fleet(scenario, config, &progress).await?),
        None => {
            // Before the target starts (it inherits the raised descriptor
            // limit) and before any load: does the concurrency fit here?
            let pre =
                load::preflight(&scenario.target, &scenario.load).map_err(anyhow::Error::msg)?;
            progress.line(format!(
                "preflight: up to {} sessions fit at once (limited by {}), {} source address(es)",
                pre.fits,
                pre.limited_by,
                pre.sources.len().max(1)
            ));
            None
        }
    };
    let mut launched = match &scenario.target.command {
        Some(argv) => {
            let log_dir = options.out.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("leakbench-{}", std::process::id()))
            });
            let t = Launched::start(&scenario.target, &log_dir)?;
            progress.line(format!(
                "started target `{}` (pid {}), log {}",
                argv.join(" "),
                t.pid,
                t.log_path().display()
            ));
            Some(t)
        }
        None => None,
    };
    let pid = launched.as_ref().map(|t| t.pid);
    let mut session = Session {
        scenario,
        progress,
        launched: launched.as_mut(),
        sources: Sources::new(scenario, pid),
        timeline: Timeline::default(),
        phase_name: "start".to_owned(),
        phases: Vec::new(),
        specs: Vec::new(),
        baseline: None,
        tolerance: None,
        idle_noise: Tolerance::new(),
        measured: Vec::new(),
        curves: Curves::default(),
        stop: Stop::Decided,
        horizon: None,
        profiles: Profiles::default(),
        signals: Vec::new(),
        notes: Vec::new(),
        aborted: None,
        fleet,
    };
    let (status, error) = tokio::select! {
        result = session.drive() => match result {
            Ok(()) => (Status::Complete, None),
            Err(e) => {
                match RunError::aborted(&e).map(str::to_owned) {
                    Some(reason) => {
                        session.progress.line(format!("stopped: {reason}"));
                        session.aborted = Some(reason);
                        (Status::Complete, None)
                    }
                    None => (Status::Error, Some(e)),
                }
            }
        },
        signal = signals.first() => {
            session.progress.line(format!("{signal}: stopping (press Ctrl-C again to exit at once)"));
            if let Some(mut second) = signals.interrupt.take() {
                tokio::spawn(async move {
                    if second.recv().await.is_some() {
                        eprintln!("leakbench: interrupted twice, exiting now");
                        if let Some(pid) = pid {
                            // No target outlives us, even one that ignores
                            // the SIGTERM that PR_SET_PDEATHSIG would send.
                            // SAFETY: signalling our own child's process group.
                            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                        }
                        std::process::exit(i32::from(crate::exit::INTERRUPTED));
                    }
                });
            }
            (Status::Interrupted, None)
        }
    };
    // Whatever happened, no connection of ours stays open and the target stops.
    session.sources.close();
    if let Some(fleet) = session.fleet.take() {
        fleet.finish().await;
    }
    let mut report = session.finish(status, error.as_ref());
    if let Some(out) = &options.out {
        let progress = &session.progress;
        let written = output::write_profiles(
            out,
            &session.profiles,
            &progress.redactor,
            &mut report,
            |line| progress.line(line),
        );
        if let Err(e) = written {
            progress.line(format!("could not write profiles: {e:#}"));
        }
    }
    drop(session);
    if let Some(t) = launched.as_mut() {
        t.stop().await;
        // The target may have logged a header or token it was sent.
        let _ = Redactor::from_scenario(scenario).redact_file(t.log_path());
    }
    report.duration_s = start.elapsed().as_secs_f64();
    Ok(Outcome { report, error })
}

/// The report's record of the consent and the pins; `None` for a
/// loopback-only run.
fn remote_access(scenario: &Scenario) -> Option<RemoteAccess> {
    let t = &scenario.target;
    if t.remote.is_loopback_only() {
        return None;
    }
    Some(RemoteAccess {
        allowed: t.remote.allowed().to_vec(),
        pinned: t
            .pins
            .iter()
            .map(|(host, ips)| {
                let ips = ips.iter().map(ToString::to_string).collect();
                (host.to_owned(), ips)
            })
            .collect(),
    })
}

/// Starts the fleet's listener and waits for every agent (exit 2 when they
/// do not all come within the timeout).
async fn gather_fleet(
    scenario: &Scenario,
    config: &crate::fleet::CoordinatorConfig,
    progress: &Progress,
) -> Result<crate::fleet::Fleet> {
    let job = crate::fleet::wire::Job {
        name: scenario.name.clone(),
        target: crate::fleet::wire::JobTarget::of(&scenario.target),
        load: scenario.load.clone(),
    };
    let mut fleet = crate::fleet::Fleet::listen(config.clone(), job)?;
    progress.line(format!(
        "fleet: waiting up to {} for {} agent(s) on {}",
        humantime::format_duration(config.agent_timeout),
        config.agents,
        fleet.local
    ));
    fleet
        .gather(|line| progress.line(format!("fleet: {line}")))
        .await?;
    Ok(fleet)
}

/// One run in progress: what it was given and what it measured so far.
struct Session<'a> {
    scenario: &'a Scenario,
    progress: Progress,
    launched: Option<&'a mut Launched>,
    sources: Sources,
    timeline: Timeline,
    phase_name: String,
    phases: Vec<Phase>,
    specs: Vec<SignalSpec>,
    baseline: Option<Reading>,
    /// The noise bands, from the floors and the target's own readings.
    tolerance: Option<Tolerance>,
    /// Spread of each signal while idle before the baseline.
    idle_noise: Tolerance,
    measured: Vec<Reading>,
    /// Where each measured reading sits on the retention curves.
    curves: Curves,
    /// Why the curves stopped gaining sessions.
    stop: Stop,
    /// The wait past the release horizon, when one ran.
    horizon: Option<escalate::HorizonWait>,
    profiles: Profiles,
    signals: Vec<SignalVerdict>,
    /// What the protocol noticed on the way, for the report's reasons.
    notes: Vec<String>,
    /// Why the run was stopped on purpose ([`RunError::Aborted`]).
    aborted: Option<String>,
    /// The load agents running each cycle's sessions, when there are any.
    fleet: Option<crate::fleet::Fleet>,
}

impl Session<'_> {
    async fn drive(&mut self) -> Result<()> {
        let s = self.scenario;
        let load = &s.load;
        let first = self.wait_ready().await?;
        self.specs = self.sources.specs(&first, s);
        if !self.specs.iter().any(|x| x.decides) {
            bail!(
                "the sources ({}) give no exact signal to judge: name pprof, a pid or command for /proc, \
                 or metrics with go_goroutines, process_open_fds or a [[signals]] entry",
                self.sources.describe()
            );
        }
        let floors = verdict::floors(&self.specs);

        // Each warm-up but the last settles on its own; the last one's
        // settle is the baseline's quiet wait, which also measures idle noise.
        let mut last_warmup = None;
        for i in 1..=load.warmup {
            self.phase_name = format!("warm-up {i}/{}", load.warmup);
            self.progress.phase(
                &self.phase_name,
                format!("{} sessions (unmeasured)", load.sessions),
            );
            let l = self.cycle(load.sessions).await?;
            if i == load.warmup {
                last_warmup = Some(l);
                break;
            }
            let goal = Goal {
                baseline: None,
                quiet: Some(BASELINE_QUIET),
                steady: false,
                timeout: s.settle.timeout,
            };
            let settled = self.settle(goal, &floors).await?;
            self.phases.push(Phase {
                kind: PhaseKind::Warmup,
                index: i,
                sessions: load.sessions,
                escalation: false,
                load: l,
                settle: settled,
                measured: None,
            });
        }

        self.phase_name = "baseline".to_owned();
        self.progress
            .phase(&self.phase_name, "waiting for the target to hold still");
        let goal = Goal {
            baseline: None,
            quiet: Some(BASELINE_QUIET),
            steady: false,
            timeout: s.settle.timeout,
        };
        let idle = self.settle(goal, &floors).await?;
        if let Some(l) = last_warmup {
            self.phases.push(Phase {
                kind: PhaseKind::Warmup,
                index: load.warmup,
                sessions: load.sessions,
                escalation: false,
                load: l,
                settle: idle.clone(),
                measured: None,
            });
        }
        self.idle_noise = idle.noise.clone();
        let tolerance = verdict::tolerance(&floors, &idle.noise);
        self.tolerance = Some(tolerance.clone());
        let (base, profiles) = self.snapshot().await?;
        self.progress.line(format!(
            "baseline: {} (noise band: {})",
            progress::describe(&base, &self.specs),
            self.specs
                .iter()
                .filter(|x| x.decides)
                .map(|x| format!("{} {}", x.name, format_value(tolerance[&x.name], x.unit)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        self.baseline = Some(base.clone());
        self.profiles.base = profiles;
        self.curves
            .start(self.progress.start.elapsed().as_secs_f64());

        for k in 1..=load.cycles {
            let name = format!("cycle {k}/{}", load.cycles);
            self.measured_cycle(k, name, load.sessions, None).await?;
        }
        self.escalate(&base).await?;
        self.wait_horizon(&base).await?;

        // The profiles that attribute: taken last, after any horizon wait,
        // whose final reading they are. Without a wait the curves were
        // decided on the last cycle's reading and keep it: a re-read moments
        // later must not reopen them.
        let (reading, profiles) = self.snapshot().await?;
        self.profiles.last = profiles;
        if let Some(h) = &mut self.horizon {
            h.after = reading;
        }
        self.signals = self.judge();
        self.check_alive()?;
        Ok(())
    }

    /// One measured cycle of `sessions` sessions (an escalation cycle when
    /// it has a `stop_at`, after which it starts no session): load, a short settle
    /// towards the baseline, a measurement (with profiles when `profiles`,
    /// kept as the latest for attribution), and a point on every curve.
    async fn measured_cycle(
        &mut self,
        k: u32,
        name: String,
        sessions: u32,
        stop_at: Option<tokio::time::Instant>,
    ) -> Result<()> {
        let s = self.scenario;
        let escalation = stop_at.is_some();
        self.phase_name = name;
        self.progress
            .phase(&self.phase_name, format!("{sessions} sessions"));
        let l = self.cycle_until(sessions, stop_at).await?;
        let closed = self.progress.start.elapsed().as_secs_f64();
        let base = self.baseline.clone().unwrap_or_default();
        let tolerance = self.tolerance.clone().unwrap_or_default();
        let goal = Goal {
            baseline: Some(&base),
            quiet: None,
            steady: true,
            timeout: s.settle.timeout.min(escalate::CYCLE_SETTLE_CAP),
        };
        let settled = self.settle(goal, &tolerance).await?;
        let measured = self.sources.measure().await;
        let reading = self.source_result(measured).await?;
        // A deciding signal the baseline had and this reading lacks (a
        // metrics page that stopped exporting it, as one of a target out of
        // descriptors does) cannot be read as zero: that would be "back".
        let missing = self
            .specs
            .iter()
            .find(|x| x.decides && base.contains_key(&x.name) && !reading.contains_key(&x.name));
        if let Some(spec) = missing {
            return Err(RunError::Aborted {
                reason: format!(
                    "{} was missing from the target's reading after {} ({} stopped reporting \
                     it; a target out of descriptors or memory may): its curve cannot go on",
                    spec.name,
                    self.phase_name,
                    self.sources.describe()
                ),
            }
            .into());
        }
        self.progress.line(format!(
            "{}: settled ({:?}) in {:.1} s: {}",
            self.phase_name,
            settled.ending,
            settled.seconds,
            progress::describe_change(&base, &reading, &self.specs),
        ));
        self.curves
            .push(l.completed + l.failed, closed, &settled.noise);
        self.measured.push(reading.clone());
        self.phases.push(Phase {
            kind: PhaseKind::Cycle,
            index: k,
            sessions,
            escalation,
            load: l,
            settle: settled,
            measured: Some(reading),
        });
        self.tolerance = Some(self.bands());
        Ok(())
    }

    /// The noise bands from the floors and every reading so far: idle
    /// spread, the two polls that ended each settle, falls between cycles.
    fn bands(&self) -> Tolerance {
        let base = self.baseline.clone().unwrap_or_default();
        let mut readings = vec![&base];
        readings.extend(self.measured.iter());
        verdict::bands(
            &verdict::floors(&self.specs),
            &self.idle_noise,
            &self.curves.repeats(),
            &readings,
        )
    }

    /// Judges every signal on what was measured so far.
    fn judge(&self) -> Vec<SignalVerdict> {
        let base = self.baseline.clone().unwrap_or_default();
        let tolerance = self.tolerance.clone().unwrap_or_default();
        verdict::judge_all(
            &self.specs,
            self.scenario.load.sessions,
            &verdict::Measured {
                baseline: &base,
                readings: &self.measured,
                curves: &self.curves,
                bands: &tolerance,
                stop: self.stop,
                horizon: self.horizon.as_ref().map(|h| h.evidence()),
            },
        )
    }

    /// The report of what was measured so far.
    fn finish(&mut self, status: Status, error: Option<&anyhow::Error>) -> Report {
        let s = self.scenario;
        let load = &s.load;
        // An aborted run is over (its report is complete) but has no verdict.
        let complete = status == Status::Complete && self.aborted.is_none();
        if !complete && self.signals.is_empty() && !self.measured.is_empty() {
            self.signals = self.judge();
        }
        let loads: Vec<(bool, &CycleLoad)> = self
            .phases
            .iter()
            .map(|p| (p.kind == PhaseKind::Cycle, &p.load))
            .collect();
        let stopped = match (status, error) {
            (Status::Interrupted, _) => Some(format!("interrupted during {}", self.phase_name)),
            (Status::Error, Some(e)) => Some(exit::error_line(e)),
            _ => self.aborted.clone(),
        };
        let (verdict, reasons) = verdict::conclude(RunEvidence {
            signals: &self.signals,
            complete,
            stopped,
            load_problem: verdict::load_problem(&loads, load.max_failure_ratio),
            notes: std::mem::take(&mut self.notes),
            heap_without_gc: !self.sources.can_force_gc()
                && self.specs.iter().any(|x| x.name == name::HEAP_BYTES),
            heap_profile_rate: self.sources.heap_profile_rate(),
            started_target: self.launched.is_some(),
        });
        let tolerance = self
            .tolerance
            .clone()
            .unwrap_or_else(|| verdict::floors(&self.specs));
        // Escalation cycles count; a run cut short before any shows those planned.
        let cycles_run = match self.measured.len() as u32 {
            0 => load.cycles,
            n => n,
        };
        // Suspects' per-cycle figures are per scenario cycle of sessions.
        let served = self.curves.served();
        let cycles_served = (served as f64 / f64::from(load.sessions.max(1))).round() as u32;
        let suspects = match (&self.profiles.base, &self.profiles.last) {
            (Some(b), Some(l)) if complete => suspects::attribute(
                b,
                l,
                &self.signals,
                &tolerance,
                cycles_served.max(1),
                load.sessions,
            ),
            _ => Vec::new(),
        };
        Report {
            schema: SCHEMA,
            leakbench: env!("CARGO_PKG_VERSION"),
            status,
            name: s.name.clone(),
            scenario: s.path.display().to_string(),
            scenario_text: std::fs::read_to_string(&s.path).ok(),
            url: s.target.url.to_string(),
            pprof: s
                .target
                .pprof
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_default(),
            sources: self.sources.describe(),
            remote: remote_access(s),
            verdict,
            reasons,
            sessions: load.sessions,
            warmup: load.warmup,
            cycles: cycles_run,
            course: Course {
                stop: self.stop,
                sessions: served,
                max_sessions: s.verdict.max_sessions,
                max_time_s: s.verdict.max_time.as_secs_f64(),
                horizon_s: s.settle.timeout.as_secs_f64(),
                horizon_wait_s: self.horizon.as_ref().map(|h| h.waited_s),
            },
            signals: self.signals.clone(),
            suspects,
            tolerance,
            phases: std::mem::take(&mut self.phases),
            timeline: std::mem::take(&mut self.timeline).points(),
            profiles: BTreeMap::new(),
            duration_s: 0.0,
        }
    }
}
