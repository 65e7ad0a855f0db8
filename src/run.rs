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
use crate::probe::{Counters, Probe, ProbeError, Snapshot};
use crate::report::{Phase, Report, SCHEMA, TimelinePoint};
use crate::scenario::Scenario;
use crate::settle::{self, BASELINE_QUIET, CYCLE_QUIET, Ending, Goal, Settled, Tolerance};
use crate::suspects::{self, Suspect};
use crate::target::Launched;
use crate::verdict::{self, Series, SignalVerdict, Verdict, format_value};

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

struct Progress {
    quiet: bool,
    start: Instant,
}

impl Progress {
    fn line(&self, text: impl AsRef<str>) {
        if !self.quiet {
            eprintln!(
                "[{:>6.1}s] {}",
                self.start.elapsed().as_secs_f64(),
                text.as_ref()
            );
        }
    }
}

/// Runs a scenario to its verdict.
pub async fn run(scenario: &Scenario, options: &RunOptions) -> Result<Report> {
    let start = Instant::now();
    let progress = Progress {
        quiet: options.quiet,
        start,
    };
    if let Some(out) = &options.out {
        std::fs::create_dir_all(out)
            .with_context(|| format!("creating output folder {}", out.display()))?;
    }
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
        probe: Probe::new(&scenario.target.pprof).with_pid(pid),
        timeline: Vec::new(),
        phase_name: "start".to_owned(),
    };
    let result = session.drive().await;
    session.probe.close();
    drop(session);
    if let Some(t) = launched.as_mut() {
        t.stop().await;
    }
    let mut report = result?;
    report.duration_s = start.elapsed().as_secs_f64();
    Ok(report)
}

struct Session<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
    progress: Progress,
    launched: Option<&'a mut Launched>,
    probe: Probe,
    timeline: Vec<TimelinePoint>,
    phase_name: String,
}

impl Session<'_> {
    async fn drive(&mut self) -> Result<Report> {
        let s = self.scenario;
        let load = &s.load;
        self.wait_ready().await?;

        let floors = floors(s);
        let mut phases = Vec::new();
        for i in 1..=load.warmup {
            self.phase_name = format!("warm-up {i}/{}", load.warmup);
            let l = self.cycle().await?;
            if l.completed == 0 {
                bail!(no_session_error(&s.target.url.to_string(), &l));
            }
            let settled = self
                .settle(
                    Goal {
                        baseline: None,
                        quiet: Some(BASELINE_QUIET),
                        timeout: s.settle.timeout,
                    },
                    &floors,
                )
                .await?;
            phases.push(Phase {
                kind: "warmup",
                index: i,
                load: l,
                settle: settled,
                measured: None,
            });
        }

        self.phase_name = "baseline".to_owned();
        let idle = self
            .settle(
                Goal {
                    baseline: None,
                    quiet: Some(BASELINE_QUIET),
                    timeout: s.settle.timeout,
                },
                &floors,
            )
            .await?;
        let tolerance = Tolerance {
            goroutines: floors.goroutines.max(NOISE_FACTOR * idle.noise.goroutines),
            heap_bytes: floors.heap_bytes.max(NOISE_FACTOR * idle.noise.heap_bytes),
            heap_objects: floors
                .heap_objects
                .max(NOISE_FACTOR * idle.noise.heap_objects),
            fds: floors.fds.max(NOISE_FACTOR * idle.noise.fds),
        };
        let baseline = self.snapshot().await?;
        self.progress.line(format!(
            "baseline: {} goroutines, heap {} in {} objects (tolerance per cycle: {} goroutines, {}, {} objects)",
            baseline.counters.goroutines,
            format_value(baseline.counters.heap_bytes as f64, "bytes"),
            baseline.counters.heap_objects,
            tolerance.goroutines,
            format_value(tolerance.heap_bytes, "bytes"),
            tolerance.heap_objects
        ));

        let mut measured: Vec<Counters> = Vec::new();
        let mut final_snapshot: Option<Snapshot> = None;
        for k in 1..=load.cycles {
            self.phase_name = format!("cycle {k}/{}", load.cycles);
            let l = self.cycle().await?;
            if l.completed == 0 {
                bail!(no_session_error(&s.target.url.to_string(), &l));
            }
            let goal = Goal {
                baseline: Some(&baseline.counters),
                quiet: Some(CYCLE_QUIET),
                timeout: s.settle.timeout,
            };
            let settled = self.settle(goal, &tolerance).await?;
            let counters = if k == load.cycles {
                let snap = self.snapshot().await?;
                let c = snap.counters;
                final_snapshot = Some(snap);
                c
            } else {
                self.probe
                    .measure()
                    .await
                    .map_err(|e| self.probe_error(e))?
            };
            self.progress.line(format!(
                "{}: settled ({:?}) in {:.1} s: {} goroutines ({:+}), heap {} ({})",
                self.phase_name,
                settled.ending,
                settled.seconds,
                counters.goroutines,
                counters.goroutines as i64 - baseline.counters.goroutines as i64,
                format_value(counters.heap_bytes as f64, "bytes"),
                signed_bytes(counters.heap_bytes as f64 - baseline.counters.heap_bytes as f64),
            ));
            measured.push(counters);
            phases.push(Phase {
                kind: "cycle",
                index: k,
                load: l,
                settle: settled,
                measured: Some(counters),
            });
        }

        let failure = load_problem(&phases, load.max_failure_ratio);
        let mut signals = judge_all(s, &baseline.counters, &measured, &tolerance, false);
        let mut reasons = Vec::new();
        let last_ending = phases.last().map(|p| p.settle.ending);
        let suspicious = signals
            .iter()
            .any(|v| v.decides && v.verdict != Verdict::Pass);
        if suspicious && last_ending != Some(Ending::Baseline) {
            // Flat is not settled: a resume window or idle timeout keeps state
            // for a while and then frees it. Wait the full timeout once more,
            // stopping only if the target gets back to baseline.
            self.phase_name = "final settle".to_owned();
            self.progress.line(format!(
                "growth seen; waiting up to {:.0} s for a late release before judging",
                s.settle.timeout.as_secs_f64()
            ));
            let goal = Goal {
                baseline: Some(&baseline.counters),
                quiet: None,
                timeout: s.settle.timeout,
            };
            let settled = self.settle(goal, &tolerance).await?;
            let snap = self.snapshot().await?;
            if let Some(last) = measured.last_mut() {
                *last = snap.counters;
            }
            if let Some(p) = phases.last_mut() {
                p.measured = Some(snap.counters);
                p.settle = settled.clone();
            }
            final_snapshot = Some(snap);
            signals = judge_all(
                s,
                &baseline.counters,
                &measured,
                &tolerance,
                settled.still_falling,
            );
            if settled.ending == Ending::Baseline {
                reasons.push(format!(
                    "the target released its state late, {:.1} s into the final wait",
                    settled.seconds
                ));
            }
        }
        let final_snapshot = final_snapshot.context("no measured cycle")?;
        self.check_alive()?;

        let verdict = verdict::overall(&signals, failure.as_deref());
        if let Some(f) = &failure {
            reasons.insert(0, f.clone());
        }
        for sig in signals
            .iter()
            .filter(|v| v.decides && v.verdict == verdict && verdict != Verdict::Pass)
        {
            reasons.push(format!("{} {}", sig.name, sig.reason));
        }
        if verdict == Verdict::Pass {
            reasons.insert(
                0,
                "goroutines and heap came back to baseline after every cycle".to_owned(),
            );
        }

        let suspects = attribute(
            &baseline,
            &final_snapshot,
            &signals,
            load.cycles,
            load.sessions,
        );
        let profiles = self.write_profiles(&baseline, &final_snapshot)?;
        Ok(Report {
            schema: SCHEMA,
            leakbench: env!("CARGO_PKG_VERSION"),
            name: s.name.clone(),
            scenario: s.path.display().to_string(),
            url: s.target.url.to_string(),
            pprof: s.target.pprof.to_string(),
            verdict,
            reasons,
            sessions: load.sessions,
            warmup: load.warmup,
            cycles: load.cycles,
            signals,
            suspects,
            tolerance,
            phases,
            timeline: std::mem::take(&mut self.timeline),
            profiles,
            duration_s: 0.0,
        })
    }

    /// Waits until the pprof endpoint answers (a started target needs a moment).
    async fn wait_ready(&mut self) -> Result<()> {
        let s = self.scenario;
        let deadline = Instant::now() + s.target.ready_timeout;
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            match self.probe.goroutines().await {
                Ok(n) => {
                    self.progress.line(format!(
                        "pprof at {} answers: {n} goroutines",
                        s.target.pprof
                    ));
                    return Ok(());
                }
                Err(e) => {
                    self.check_alive()?;
                    let retryable =
                        matches!(e, ProbeError::Connect { .. }) && self.launched.is_some();
                    if !retryable || Instant::now() >= deadline {
                        let hint = if self.launched.is_none() {
                            " (is the target running? set target.command to have leakbench start it)"
                        } else {
                            ""
                        };
                        bail!("{e}{hint}");
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
        self.probe.close();
        let l = load::run_cycle(&self.scenario.target, &self.scenario.load).await;
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
        Ok(l)
    }

    async fn settle(&mut self, goal: Goal<'_>, tolerance: &Tolerance) -> Result<Settled> {
        let start = self.progress.start;
        let phase = self.phase_name.clone();
        let timeline = &mut self.timeline;
        let result = settle::settle(&mut self.probe, goal, tolerance, |c| {
            timeline.push(TimelinePoint {
                t_s: start.elapsed().as_secs_f64(),
                phase: phase.clone(),
                goroutines: c.goroutines,
                heap_bytes: c.heap_bytes,
            });
        })
        .await;
        result.map_err(|e| self.probe_error(e))
    }

    async fn snapshot(&mut self) -> Result<Snapshot> {
        match self.probe.snapshot().await {
            Ok(s) => Ok(s),
            Err(e) => Err(self.probe_error(e)),
        }
    }

    /// A failed probe of a started target that has exited is reported as the exit.
    fn probe_error(&mut self, e: ProbeError) -> anyhow::Error {
        match self.check_alive() {
            Err(died) => died,
            Ok(()) => anyhow::Error::new(e)
                .context(format!("probing the target during {}", self.phase_name)),
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

    fn write_profiles(&self, base: &Snapshot, last: &Snapshot) -> Result<BTreeMap<String, String>> {
        let mut written = BTreeMap::new();
        let Some(out) = &self.options.out else {
            return Ok(written);
        };
        let files: [(&str, &str, &[u8]); 6] = [
            ("heap_base", "heap-base.pb.gz", &base.heap_profile),
            ("heap_final", "heap-final.pb.gz", &last.heap_profile),
            (
                "goroutine_base",
                "goroutine-base.pb.gz",
                &base.goroutine_profile,
            ),
            (
                "goroutine_final",
                "goroutine-final.pb.gz",
                &last.goroutine_profile,
            ),
            (
                "goroutine_base_dump",
                "goroutine-base.txt",
                base.goroutine_dump.as_bytes(),
            ),
            (
                "goroutine_final_dump",
                "goroutine-final.txt",
                last.goroutine_dump.as_bytes(),
            ),
        ];
        for (role, name, bytes) in files {
            write(out, name, bytes)?;
            written.insert(role.to_owned(), name.to_owned());
        }
        Ok(written)
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Per-cycle floors from the scenario's thresholds.
fn floors(s: &Scenario) -> Tolerance {
    let t = &s.thresholds;
    Tolerance {
        goroutines: t.goroutines,
        heap_bytes: t
            .heap_bytes
            .max(t.heap_bytes_per_session * f64::from(s.load.sessions)),
        heap_objects: t.heap_objects,
        fds: t.fds,
    }
}

fn judge_all(
    s: &Scenario,
    baseline: &Counters,
    measured: &[Counters],
    tol: &Tolerance,
    still_falling: bool,
) -> Vec<SignalVerdict> {
    let series = |name, unit, decides, threshold: f64, get: fn(&Counters) -> u64| Series {
        name,
        unit,
        decides,
        baseline: get(baseline) as f64,
        cycles: measured.iter().map(|c| get(c) as f64).collect(),
        threshold,
        still_changing: still_falling,
    };
    let mut all = vec![
        series("goroutines", "count", true, tol.goroutines, |c| {
            c.goroutines
        }),
        series("heap_bytes", "bytes", true, tol.heap_bytes, |c| {
            c.heap_bytes
        }),
        series("heap_objects", "count", true, tol.heap_objects, |c| {
            c.heap_objects
        }),
        // Stacks follow goroutines; in-use spans and OS memory lag the live
        // heap (fragmentation, the scavenger): shown, never deciding.
        series("stack_bytes", "bytes", false, tol.heap_bytes, |c| {
            c.stack_bytes
        }),
        series("heap_inuse", "bytes", false, tol.heap_bytes, |c| {
            c.heap_inuse
        }),
        series("sys_bytes", "bytes", false, tol.heap_bytes, |c| c.sys_bytes),
    ];
    if baseline.process.is_some() && measured.iter().all(|c| c.process.is_some()) {
        // Descriptors are exact (a socket left in CLOSE_WAIT shows only here);
        // RSS lags the heap and threads are the runtime's business: shown only.
        all.insert(
            3,
            series("fds", "count", true, tol.fds, |c| {
                c.process.map_or(0, |p| p.fds)
            }),
        );
        all.push(series("sockets", "count", false, tol.fds, |c| {
            c.process.map_or(0, |p| p.sockets)
        }));
        all.push(series("rss_bytes", "bytes", false, tol.heap_bytes, |c| {
            c.process.map_or(0, |p| p.rss_bytes)
        }));
        all.push(series("threads", "count", false, tol.goroutines, |c| {
            c.process.map_or(0, |p| p.threads)
        }));
    }
    all.iter()
        .map(|x| verdict::judge(x, s.load.sessions))
        .collect()
}

/// Suspects, the kinds whose signals did not pass first.
fn attribute(
    base: &Snapshot,
    last: &Snapshot,
    signals: &[SignalVerdict],
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
    let g = match (
        pprof::parse_goroutines(&base.goroutine_dump),
        pprof::parse_goroutines(&last.goroutine_dump),
    ) {
        (Ok(b), Ok(a)) if goroutines_grew => suspects::goroutines(&b, &a, cycles, sessions),
        _ => Vec::new(),
    };
    let h = match (
        pprof::decode(&base.heap_profile),
        pprof::decode(&last.heap_profile),
    ) {
        (Ok(b), Ok(a)) if heap_grew || goroutines_grew => suspects::heap(&b, &a, cycles, sessions),
        _ => Vec::new(),
    };
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
        .filter(|p| p.kind == "cycle")
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

fn signed_bytes(v: f64) -> String {
    let s = format_value(v, "bytes");
    if v > 0.0 { format!("+{s}") } else { s }
}
