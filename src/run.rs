//! The measurement protocol of `leakbench run`.
//!
//! warm-up cycles -> settle quiet -> baseline snapshot -> measured cycles,
//! each followed by a settle and a measurement -> one more full settle wait
//! before any leak is declared -> final snapshot -> verdict and suspects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::load::{self, CycleLoad};
use crate::pprof;
use crate::probe::{Probe, Snapshot};
use crate::progress::{Mode, Progress};
use crate::redact::Redactor;
use crate::report::{Phase, PhaseKind, Report, SCHEMA, Status, TimelinePoint};
use crate::scenario::Ready;
use crate::scenario::Scenario;
use crate::settle::{self, BASELINE_QUIET, CYCLE_QUIET, Ending, Goal, Settled, Tolerance};
use crate::signal::{Unit, format_value, name};
use crate::sources::{Reading, SignalSpec, SourceError, Sources};
use crate::suspects::{self, Suspect};
use crate::target::Launched;
use crate::verdict::{self, Series, SignalVerdict, Verdict};

/// Heap profiles sampled more coarsely than this (bytes between samples)
/// are said to be coarse in the report: a 1 KiB-per-session leak over a few
/// hundred sessions gets only a sample or two at Go's default 512 KiB.
const COARSE_HEAP_SAMPLING: u64 = 64 * 1024;

/// Extra measured cycles, at most, when a deciding signal's growth is
/// irregular after the scenario's cycles: runtime-owned structures that
/// creep up to a bound (dead goroutines kept for reuse, pool sizes) look
/// irregular over three cycles and flat over six.
const EXTRA_CYCLES: u32 = 3;

/// How long a started target gets to show its exit after a failed read
/// (its sockets close before the exit is visible).
const EXIT_SEEN_WITHIN: std::time::Duration = std::time::Duration::from_millis(500);

/// How often the live line redraws session counts during a cycle.
const LIVE_REFRESH: std::time::Duration = std::time::Duration::from_millis(200);

/// Tolerance is at least this many times the idle spread seen before the
/// baseline, so a noisy target's own jitter never reads as growth.
const NOISE_FACTOR: f64 = 2.0;

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Folder for report.json, profiles and the target's log.
    pub out: Option<PathBuf>,
    /// No progress lines.
    pub quiet: bool,
}

/// A run that stopped for a reason that is not a verdict (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
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

/// What a run produced: always a report, plus the error that cut it short.
pub struct Outcome {
    /// The report, partial unless `status` is complete.
    pub report: Report,
    /// The error that ended the run early, if any.
    pub error: Option<anyhow::Error>,
}

/// Runs a scenario to its verdict. `Err` only when nothing could start (the
/// output folder or the target's process); later failures and interruptions
/// come back as an [`Outcome`] with a partial report.
pub async fn run(scenario: &Scenario, options: &RunOptions) -> Result<Outcome> {
    let start = Instant::now();
    let progress = Progress::new(
        Mode::detect(options.quiet),
        start,
        Redactor::from_scenario(scenario),
    );
    let mut signals = Signals::new();
    if let Some(out) = &options.out {
        std::fs::create_dir_all(out)
            .with_context(|| format!("creating output folder {}", out.display()))?;
    }
    // Before the target starts (it inherits the raised descriptor limit) and
    // before any load: does the concurrency fit this machine at all?
    let pre = load::preflight(&scenario.target, &scenario.load).map_err(anyhow::Error::msg)?;
    progress.line(format!(
        "preflight: up to {} sessions fit at once (limited by {}), {} source address(es)",
        pre.fits,
        pre.limited_by,
        pre.sources.len().max(1)
    ));
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
        options,
        progress,
        launched: launched.as_mut(),
        sources: Sources::new(scenario, pid),
        timeline: Timeline::default(),
        phase_name: "start".to_owned(),
        phases: Vec::new(),
        specs: Vec::new(),
        baseline: None,
        base_profiles: None,
        tolerance: None,
        measured: Vec::new(),
        last_profiles: None,
        signals: Vec::new(),
        reasons: Vec::new(),
    };
    let (status, error) = tokio::select! {
        result = session.drive() => match result {
            Ok(()) => (Status::Complete, None),
            Err(e) => (Status::Error, Some(e)),
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
    let mut report = session.report(status, error.as_ref());
    if let Err(e) = session.write_profiles(&mut report) {
        session
            .progress
            .line(format!("could not write profiles: {e:#}"));
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

/// SIGINT and SIGTERM listeners, registered when created: from then on a
/// signal is never lost, and never kills leakbench with its default action.
struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Resolves on the first SIGINT or SIGTERM, naming it.
    async fn first(&mut self) -> &'static str {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.interrupt) => "interrupted (SIGINT)",
            _ = recv(&mut self.terminate) => "terminated (SIGTERM)",
        }
    }
}

/// The settle polls of the run, for the report's timeline, kept compact:
/// a long run takes several polls a cycle, and a map of a dozen named
/// values per poll would make leakbench's own memory grow with the run.
#[derive(Debug, Default)]
struct Timeline {
    /// Signal names, each stored once; values refer to them by index.
    names: Vec<String>,
    /// Phase names, each stored once.
    phases: Vec<String>,
    polls: Vec<Poll>,
}

/// One settle poll: seconds since the start, the phase's index, and
/// (signal name index, value) pairs.
#[derive(Debug)]
struct Poll(f64, u32, Box<[(u32, f64)]>);

impl Timeline {
    fn push(&mut self, t_s: f64, phase: &str, reading: &Reading) {
        let phase = intern(&mut self.phases, phase);
        let values = reading
            .iter()
            .map(|(name, v)| (intern(&mut self.names, name), *v))
            .collect();
        self.polls.push(Poll(t_s, phase, values));
    }

    /// The polls as the report lists them.
    fn points(self) -> Vec<TimelinePoint> {
        self.polls
            .into_iter()
            .map(|Poll(t_s, phase, values)| TimelinePoint {
                t_s,
                phase: self.phases[phase as usize].clone(),
                values: values
                    .iter()
                    .map(|&(name, v)| (self.names[name as usize].clone(), v))
                    .collect(),
            })
            .collect()
    }
}

/// The index of `name` in `names`, added if new. A run has a few dozen
/// signals and at most one phase name per cycle.
fn intern(names: &mut Vec<String>, name: &str) -> u32 {
    let i = names.iter().position(|n| n == name).unwrap_or_else(|| {
        names.push(name.to_owned());
        names.len() - 1
    });
    u32::try_from(i).expect("fewer than 2^32 names")
}

struct Session<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
    progress: Progress,
    launched: Option<&'a mut Launched>,
    sources: Sources,
    timeline: Timeline,
    phase_name: String,
    phases: Vec<Phase>,
    specs: Vec<SignalSpec>,
    baseline: Option<Reading>,
    base_profiles: Option<Snapshot>,
    tolerance: Option<Tolerance>,
    measured: Vec<Reading>,
    last_profiles: Option<Snapshot>,
    signals: Vec<SignalVerdict>,
    reasons: Vec<String>,
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
        let floors = floors(&self.specs);

        // Each warm-up but the last settles on its own; the last one's
        // settle is the baseline's quiet wait, which also measures idle noise.
        let mut last_warmup = None;
        for i in 1..=load.warmup {
            self.phase_name = format!("warm-up {i}/{}", load.warmup);
            self.progress.phase(
                &self.phase_name,
                format!("{} sessions (unmeasured)", load.sessions),
            );
            let l = self.cycle().await?;
            if i == load.warmup {
                last_warmup = Some(l);
                break;
            }
            let goal = Goal {
                baseline: None,
                quiet: Some(BASELINE_QUIET),
                timeout: s.settle.timeout,
            };
            let settled = self.settle(goal, &floors).await?;
            self.phases.push(Phase {
                kind: PhaseKind::Warmup,
                index: i,
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
            timeout: s.settle.timeout,
        };
        let idle = self.settle(goal, &floors).await?;
        if let Some(l) = last_warmup {
            self.phases.push(Phase {
                kind: PhaseKind::Warmup,
                index: load.warmup,
                load: l,
                settle: idle.clone(),
                measured: None,
            });
        }
        let tolerance: Tolerance = floors
            .iter()
            .map(|(name, floor)| {
                let noise = idle.noise.get(name).copied().unwrap_or(0.0);
                (name.clone(), floor.max(NOISE_FACTOR * noise))
            })
            .collect();
        self.tolerance = Some(tolerance.clone());
        let (base, profiles) = self.snapshot().await?;
        self.progress.line(format!(
            "baseline: {} (noise tolerance per cycle: {})",
            describe(&base, &self.specs),
            self.specs
                .iter()
                .filter(|x| x.decides)
                .map(|x| format!("{} {}", x.name, format_value(tolerance[&x.name], x.unit)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        self.baseline = Some(base.clone());
        self.base_profiles = profiles;

        for k in 1..=load.cycles {
            let name = format!("cycle {k}/{}", load.cycles);
            self.measured_cycle(k, name, &base, &tolerance, k == load.cycles)
                .await?;
        }
        self.signals = judge_all(&self.specs, s, &base, &self.measured, &tolerance, false);

        // Growth that is neither steady nor flat is what more cycles settle:
        // run a few before answering inconclusive.
        let mut extra = 0;
        while extra < EXTRA_CYCLES
            && self
                .signals
                .iter()
                .any(|v| v.decides && v.verdict == Verdict::Inconclusive)
        {
            extra += 1;
            let k = load.cycles + extra;
            let name = format!("extra cycle {extra}/{EXTRA_CYCLES} (growth not yet decided)");
            self.measured_cycle(k, name, &base, &tolerance, true)
                .await?;
            self.signals = judge_all(&self.specs, s, &base, &self.measured, &tolerance, false);
        }

        let last_ending = self.phases.last().map(|p| p.settle.ending);
        let suspicious = self
            .signals
            .iter()
            .any(|v| v.decides && v.verdict != Verdict::Pass);
        if suspicious && last_ending != Some(Ending::Baseline) {
            // Flat is not settled: a resume window or idle timeout keeps state
            // for a while and then frees it. Wait the full timeout once more,
            // stopping only if the target gets back to baseline.
            self.phase_name = "final settle".to_owned();
            self.progress
                .phase(&self.phase_name, "waiting for a late release");
            self.progress.line(format!(
                "growth seen; waiting up to {:.0} s for a late release before judging",
                s.settle.timeout.as_secs_f64()
            ));
            let goal = Goal {
                baseline: Some(&base),
                quiet: None,
                timeout: s.settle.timeout,
            };
            let settled = self.settle(goal, &tolerance).await?;
            let (reading, profiles) = self.snapshot().await?;
            if let Some(last) = self.measured.last_mut() {
                *last = reading.clone();
            }
            if let Some(p) = self.phases.last_mut() {
                p.measured = Some(reading);
                p.settle = settled.clone();
            }
            self.last_profiles = profiles;
            self.signals = judge_all(
                &self.specs,
                s,
                &base,
                &self.measured,
                &tolerance,
                settled.still_falling,
            );
            if settled.ending == Ending::Baseline {
                self.reasons.push(format!(
                    "the target released its state late, {:.1} s into the final wait",
                    settled.seconds
                ));
            }
        }
        self.check_alive()?;
        Ok(())
    }

    /// One measured cycle: load, settle towards the baseline, measure (with
    /// profiles when `profiles`, kept as the latest for attribution).
    async fn measured_cycle(
        &mut self,
        k: u32,
        name: String,
        base: &Reading,
        tolerance: &Tolerance,
        profiles: bool,
    ) -> Result<()> {
        let s = self.scenario;
        self.phase_name = name;
        self.progress
            .phase(&self.phase_name, format!("{} sessions", s.load.sessions));
        let l = self.cycle().await?;
        let goal = Goal {
            baseline: Some(base),
            quiet: Some(CYCLE_QUIET),
            timeout: s.settle.timeout,
        };
        let settled = self.settle(goal, tolerance).await?;
        let reading = if profiles {
            let (r, profiles) = self.snapshot().await?;
            self.last_profiles = profiles;
            r
        } else {
            let measured = self.sources.measure().await;
            self.source_result(measured).await?
        };
        self.progress.line(format!(
            "{}: settled ({:?}) in {:.1} s: {}",
            self.phase_name,
            settled.ending,
            settled.seconds,
            describe_change(base, &reading, &self.specs),
        ));
        self.measured.push(reading.clone());
        self.phases.push(Phase {
            kind: PhaseKind::Cycle,
            index: k,
            load: l,
            settle: settled,
            measured: Some(reading),
        });
        Ok(())
    }

    /// The report of what was measured so far.
    fn report(&mut self, status: Status, error: Option<&anyhow::Error>) -> Report {
        let s = self.scenario;
        let load = &s.load;
        let mut reasons = std::mem::take(&mut self.reasons);
        let failure = load_problem(&self.phases, load.max_failure_ratio);
        let verdict = if status == Status::Complete {
            verdict::overall(&self.signals, failure.as_deref())
        } else {
            Verdict::Inconclusive
        };
        match (status, error) {
            (Status::Interrupted, _) => {
                reasons.insert(0, format!("interrupted during {}", self.phase_name));
            }
            (Status::Error, Some(e)) => reasons.insert(0, crate::exit::error_line(e)),
            _ => {}
        }
        if status == Status::Complete {
            if let Some(f) = &failure {
                reasons.insert(0, f.clone());
            }
            for sig in &self.signals {
                if sig.decides && sig.verdict == verdict && verdict != Verdict::Pass {
                    reasons.push(format!("{} {}", sig.name, sig.reason));
                }
            }
            if verdict == Verdict::Pass {
                reasons.insert(0, "no signal grew from cycle to cycle".to_owned());
            }
        }
        if status != Status::Complete && self.signals.is_empty() {
            if let (Some(base), Some(tol)) = (&self.baseline, &self.tolerance) {
                if !self.measured.is_empty() {
                    self.signals = judge_all(&self.specs, s, base, &self.measured, tol, false);
                }
            }
        }
        if !self.sources.can_force_gc() && self.specs.iter().any(|x| x.name == "heap_bytes") {
            reasons.push(
                "heap figures come without a forced GC (no pprof source), so they include \
                 garbage: shown, not judged"
                    .to_owned(),
            );
        }
        let heap_flagged = self
            .signals
            .iter()
            .any(|x| x.name == "heap_bytes" && x.decides && x.verdict != Verdict::Pass);
        if let Some(rate) = self.sources.heap_profile_rate() {
            if heap_flagged && rate > COARSE_HEAP_SAMPLING {
                let why = if self.launched.is_some() {
                    "it ignored GODEBUG=memprofilerate, as Go before 1.20 does (golang/go#55100), \
                     or sets runtime.MemProfileRate itself"
                } else {
                    "start it with GODEBUG=memprofilerate=4096 (Go 1.20 or later) for finer ones"
                };
                reasons.push(format!(
                    "the target samples its heap profile once per {}: heap suspects for small \
                     leaks may be missing or coarse ({why}); the verdict reads exact counters",
                    format_value(rate as f64, Unit::Bytes)
                ));
            }
        }
        let tolerance = self
            .tolerance
            .clone()
            .unwrap_or_else(|| floors(&self.specs));
        // Extra cycles count; a run cut short before any shows those planned.
        let cycles_run = match self.measured.len() as u32 {
            0 => load.cycles,
            n => n,
        };
        let suspects = match (&self.base_profiles, &self.last_profiles) {
            (Some(b), Some(l)) if status == Status::Complete => {
                attribute(b, l, &self.signals, &tolerance, cycles_run, load.sessions)
            }
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
            verdict,
            reasons,
            sessions: load.sessions,
            warmup: load.warmup,
            cycles: cycles_run,
            signals: self.signals.clone(),
            suspects,
            tolerance,
            phases: std::mem::take(&mut self.phases),
            timeline: std::mem::take(&mut self.timeline).points(),
            profiles: BTreeMap::new(),
            duration_s: 0.0,
        }
    }

    /// Waits until the target is ready (its `ready` check, then every
    /// source answering) and returns the first reading.
    async fn wait_ready(&mut self) -> Result<Reading> {
        let s = self.scenario;
        let deadline = Instant::now() + s.target.ready_timeout;
        let mut pause = std::time::Duration::from_millis(20);
        let mut ready_checked = s.target.ready.is_none();
        loop {
            let attempt = if ready_checked {
                self.sources.sample().await.map_err(anyhow::Error::new)
            } else {
                check_ready(s.target.ready.as_ref().expect("checked above"))
                    .await
                    .map(|()| Reading::new())
            };
            match attempt {
                Ok(mut first) if ready_checked => {
                    let leaks = self.sources.add_leaked_goroutines(&mut first).await;
                    self.source_result(leaks).await?;
                    self.progress.line(format!(
                        "target answers: {}{}",
                        self.sources.describe(),
                        first
                            .get("goroutines")
                            .map(|g| format!(" ({g} goroutines)"))
                            .unwrap_or_default()
                    ));
                    return Ok(first);
                }
                Ok(_) => {
                    ready_checked = true;
                    continue;
                }
                Err(e) => {
                    self.check_alive()?;
                    let unreachable = e
                        .downcast_ref::<SourceError>()
                        .is_none_or(SourceError::is_unreachable);
                    // A started target, or one with a readiness check, may
                    // need a moment; anything else should already answer.
                    let waits = self.launched.is_some() || s.target.ready.is_some();
                    let retryable = unreachable && waits;
                    if !retryable || Instant::now() >= deadline {
                        let hint = if !waits && unreachable {
                            " (is the target running? set target.command to have leakbench start it)"
                        } else if unreachable {
                            " (the target did not answer within target.ready_timeout)"
                        } else {
                            ""
                        };
                        bail!("{e:#}{hint}");
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(250));
        }
    }

    async fn cycle(&mut self) -> Result<CycleLoad> {
        self.check_alive()?;
        // The probe's connection is idle during load; close it so a target
        // with a short idle timeout does not count a dying probe connection.
        self.sources.close();
        let live = std::sync::Arc::new(load::Live::default());
        let sessions = self.scenario.load.sessions;
        let running = load::run_cycle_observed(&self.scenario.target, &self.scenario.load, &live);
        tokio::pin!(running);
        let mut tick = tokio::time::interval(LIVE_REFRESH);
        let l = loop {
            tokio::select! {
                l = &mut running => break l,
                _ = tick.tick() => {
                    let (started, completed, failed) = live.counts();
                    let open = started.saturating_sub(completed + failed);
                    self.progress.phase(
                        &self.phase_name,
                        format!("{started}/{sessions} sessions started, {open} open, {completed} done, {failed} failed"),
                    );
                }
            }
        };
        self.check_alive()?;
        let failures = if l.failed > 0 {
            let causes: Vec<String> = l.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!(", {} failed ({})", l.failed, causes.join(", "))
        } else {
            String::new()
        };
        self.progress.line(format!(
            "{}: {} sessions done in {:.2} s{failures}",
            self.phase_name, l.completed, l.elapsed_s
        ));
        if l.completed == 0 {
            // Nothing reached the target: that is an error to fix, not a verdict.
            bail!(no_session_error(&self.scenario.target.url.to_string(), &l));
        }
        Ok(l)
    }

    async fn settle(&mut self, goal: Goal<'_>, tolerance: &Tolerance) -> Result<Settled> {
        let start = self.progress.start;
        let phase = self.phase_name.clone();
        let timeline = &mut self.timeline;
        let progress = &self.progress;
        let mut polls = 0;
        self.progress.phase(&phase, "settling");
        let result = settle::settle(&mut self.sources, goal, tolerance, |r| {
            polls += 1;
            progress.settle_poll(polls, r, goal.baseline);
            timeline.push(start.elapsed().as_secs_f64(), &phase, r);
        })
        .await;
        self.source_result(result).await
    }

    async fn snapshot(&mut self) -> Result<(Reading, Option<Snapshot>)> {
        let result = self.sources.snapshot().await;
        self.source_result(result).await
    }

    /// A failed read of a started target that has exited is reported as the exit.
    async fn source_result<T>(&mut self, result: Result<T, SourceError>) -> Result<T> {
        let e = match result {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if let Some(t) = self.launched.as_deref_mut() {
            t.exited_within(EXIT_SEEN_WITHIN).await;
        }
        match self.check_alive() {
            Err(died) => Err(died),
            Ok(()) => Err(anyhow::Error::new(e)
                .context(format!("reading the target during {}", self.phase_name))),
        }
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(t) = self.launched.as_deref_mut() {
            if let Some(status) = t.exited() {
                return Err(RunError::TargetDied {
                    status: status.to_string(),
                    phase: self.phase_name.clone(),
                    log: t.log_path().display().to_string(),
                    tail: t.log_tail(20),
                }
                .into());
            }
        }
        Ok(())
    }

    /// Writes the baseline and last profiles next to report.json.
    fn write_profiles(&self, report: &mut Report) -> Result<()> {
        let Some(out) = &self.options.out else {
            return Ok(());
        };
        let mut files: Vec<(&str, &str, &[u8])> = Vec::new();
        if let Some(b) = &self.base_profiles {
            files.push(("heap_base", "heap-base.pb.gz", &b.heap_profile));
            files.push((
                "goroutine_base",
                "goroutine-base.pb.gz",
                &b.goroutine_profile,
            ));
            files.push((
                "goroutine_base_dump",
                "goroutine-base.txt",
                b.goroutine_dump.as_bytes(),
            ));
            if let Some(leaks) = &b.goroutine_leaks {
                files.push(("goroutineleak_base", "goroutineleak-base.pb.gz", &leaks.raw));
            }
        }
        if let Some(l) = &self.last_profiles {
            files.push(("heap_final", "heap-final.pb.gz", &l.heap_profile));
            files.push((
                "goroutine_final",
                "goroutine-final.pb.gz",
                &l.goroutine_profile,
            ));
            files.push((
                "goroutine_final_dump",
                "goroutine-final.txt",
                l.goroutine_dump.as_bytes(),
            ));
            if let Some(leaks) = &l.goroutine_leaks {
                files.push((
                    "goroutineleak_final",
                    "goroutineleak-final.pb.gz",
                    &leaks.raw,
                ));
            }
        }
        for (role, name, bytes) in files {
            let bytes = if name.ends_with(".txt") {
                self.progress.redactor.redact_bytes(bytes)
            } else {
                bytes.into()
            };
            write(out, name, &bytes)?;
            report.profiles.insert(role.to_owned(), name.to_owned());
        }
        // Final minus baseline as profiles of their own, so that
        // `go tool pprof -top diff-heap.pb.gz` shows what grew.
        if let (Some(b), Some(l)) = (&self.base_profiles, &self.last_profiles) {
            let diffs = [
                (
                    "heap_diff",
                    "diff-heap.pb.gz",
                    &b.heap_profile,
                    &l.heap_profile,
                ),
                (
                    "goroutine_diff",
                    "diff-goroutine.pb.gz",
                    &b.goroutine_profile,
                    &l.goroutine_profile,
                ),
            ];
            for (role, name, base, last) in diffs {
                match pprof::diff_profile(base, last) {
                    Ok(bytes) => {
                        write(out, name, &bytes)?;
                        report.profiles.insert(role.to_owned(), name.to_owned());
                    }
                    Err(e) => self.progress.line(format!("no {name}: {e}")),
                }
            }
        }
        Ok(())
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Per-cycle floors of the deciding signals: what settle watches.
fn floors(specs: &[SignalSpec]) -> Tolerance {
    specs
        .iter()
        .filter(|x| x.decides)
        .map(|x| (x.name.clone(), x.floor))
        .collect()
}

fn judge_all(
    specs: &[SignalSpec],
    s: &Scenario,
    baseline: &Reading,
    measured: &[Reading],
    tol: &Tolerance,
    still_falling: bool,
) -> Vec<SignalVerdict> {
    let get = |r: &Reading, name: &str| r.get(name).copied().unwrap_or(0.0);
    specs
        .iter()
        .map(|spec| {
            let series = Series {
                name: spec.name.clone(),
                unit: spec.unit,
                source: spec.source,
                decides: spec.decides,
                baseline: get(baseline, &spec.name),
                cycles: measured.iter().map(|r| get(r, &spec.name)).collect(),
                threshold: tol.get(&spec.name).copied().unwrap_or(spec.floor),
                still_changing: still_falling,
            };
            verdict::judge(&series, s.load.sessions)
        })
        .collect()
}

/// "206 goroutines, heap_bytes 2.20 MiB, ..." for the deciding signals.
fn describe(r: &Reading, specs: &[SignalSpec]) -> String {
    specs
        .iter()
        .filter(|x| x.decides)
        .map(|x| {
            format!(
                "{} {}",
                x.name,
                format_value(r.get(&x.name).copied().unwrap_or(0.0), x.unit)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "goroutines 406 (+200), ..." for the deciding signals.
fn describe_change(base: &Reading, r: &Reading, specs: &[SignalSpec]) -> String {
    specs
        .iter()
        .filter(|x| x.decides)
        .map(|x| {
            let now = r.get(&x.name).copied().unwrap_or(0.0);
            let delta = now - base.get(&x.name).copied().unwrap_or(0.0);
            let sign = if delta > 0.0 { "+" } else { "" };
            format!(
                "{} {} ({sign}{})",
                x.name,
                format_value(now, x.unit),
                format_value(delta, x.unit)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits once for the scenario's readiness check.
async fn check_ready(ready: &Ready) -> Result<()> {
    match ready {
        Ready::Tcp(host, port) => {
            tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map(drop)
                .map_err(|e| {
                    SourceError::Probe(crate::probe::ProbeError::Connect {
                        url: format!("tcp://{host}:{port}"),
                        reason: e.to_string(),
                    })
                })?;
            Ok(())
        }
        Ready::Http(uri) => {
            let mut probe = Probe::new(uri);
            probe.get("").await.map(drop).map_err(SourceError::from)?;
            Ok(())
        }
    }
}

/// Suspects, the kinds whose signals did not pass first.
///
/// A suspect must hold a share worth reading: goroutine stacks at least the
/// goroutine tolerance, heap sites at least a quarter of the heap tolerance
/// and 1% of the heap's growth (the probe's own connection and sampling
/// noise stay out).
fn attribute(
    base: &Snapshot,
    last: &Snapshot,
    signals: &[SignalVerdict],
    tolerance: &Tolerance,
    cycles: u32,
    sessions: u32,
) -> Vec<Suspect> {
    let failing = |name: &str| {
        signals
            .iter()
            .any(|s| s.name == name && s.decides && s.verdict != Verdict::Pass)
    };
    let goroutines_grew = failing("goroutines");
    let heap_grew = failing("heap_bytes") || failing("heap_objects");
    let mut out = Vec::new();
    // Proven leaks come first, whatever else grew.
    if failing(name::LEAKED_GOROUTINES) || goroutines_grew {
        if let (Some(b), Some(a)) = (&base.goroutine_leaks, &last.goroutine_leaks) {
            out.extend(suspects::leaked(&b.profile, &a.profile, cycles, sessions));
        }
    }
    let g = match (
        pprof::parse_goroutines(&base.goroutine_dump),
        pprof::parse_goroutines(&last.goroutine_dump),
    ) {
        (Ok(b), Ok(a)) if goroutines_grew => suspects::goroutines(&b, &a, cycles, sessions),
        _ => Vec::new(),
    };
    let h = if heap_grew || goroutines_grew {
        suspects::heap(&base.heap, &last.heap, cycles, sessions)
    } else {
        Vec::new()
    };
    let growth = |s: &Suspect| (s.after - s.base) as f64;
    let min_goroutines = tolerance.get("goroutines").copied().unwrap_or(1.0).max(1.0);
    let g = g.into_iter().filter(|s| growth(s) >= min_goroutines);
    let heap_growth = signals
        .iter()
        .find(|s| s.name == "heap_bytes")
        .map_or(0.0, |s| s.growth);
    let heap_tolerance = tolerance.get("heap_bytes").copied().unwrap_or(0.0);
    let min_heap = (heap_tolerance / 4.0).max(0.01 * heap_growth);
    let h = h.into_iter().filter(|s| growth(s) >= min_heap);
    if heap_grew && !goroutines_grew {
        out.extend(h);
        out.extend(g);
    } else {
        out.extend(g);
        out.extend(h);
    }
    out
}

/// Why the load did not happen as specified, if it did not.
fn load_problem(phases: &[Phase], max_ratio: f64) -> Option<String> {
    let (started, failed) = phases
        .iter()
        .filter(|p| p.kind == PhaseKind::Cycle)
        .fold((0u64, 0u64), |(s, f), p| {
            (s + p.load.started, f + p.load.failed)
        });
    if started == 0 {
        return Some("no session was started".to_owned());
    }
    let ratio = failed as f64 / started as f64;
    if ratio > max_ratio {
        let mut causes: BTreeMap<&str, u64> = BTreeMap::new();
        for p in phases {
            for (k, v) in &p.load.failures {
                *causes.entry(k).or_default() += v;
            }
        }
        let causes: Vec<String> = causes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        return Some(format!(
            "the load did not happen as specified: {failed} of {started} sessions failed ({:.1}%, above {:.1}%: {})",
            ratio * 100.0,
            max_ratio * 100.0,
            causes.join(", ")
        ));
    }
    None
}

fn no_session_error(url: &str, l: &CycleLoad) -> String {
    let example = l.failure_examples.first().cloned().unwrap_or_default();
    let causes: Vec<String> = l.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(
        "no session to {url} succeeded ({}): {example}",
        causes.join(", ")
    )
}
