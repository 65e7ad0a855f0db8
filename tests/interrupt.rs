//! Interrupting a run at each phase: exit code 130, a partial report.json
//! marked `"status": "interrupted"` naming the phase, and no target left
//! running. Every signal is sent when leakbench's own progress line says the
//! phase has begun (stderr is read line by line); nothing waits on a timer.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const EXIT_INTERRUPTED: i32 = leakbench::exit::INTERRUPTED as i32;

/// Longest wait for any one progress line or for the exit: a phase takes
/// seconds; this only keeps a broken run from hanging the suite.
const LINE_DEADLINE: Duration = Duration::from_secs(120);

/// A `leakbench run` in progress, its stderr read line by line.
pub struct Live {
    child: Child,
    lines: Receiver<String>,
    /// Every stderr line so far.
    pub seen: Vec<String>,
    /// The folder given as --out.
    pub out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Live {
    /// Starts `leakbench run` on `scenario` with `--out`.
    pub fn start(scenario: &str) -> Live {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scenario.toml");
        std::fs::write(&path, scenario).expect("write scenario");
        let out = dir.path().join("out");
        let mut child = Command::new(env!("CARGO_BIN_EXE_leakbench"))
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start leakbench");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            lines,
            seen: Vec::new(),
            out,
            _dir: dir,
        }
    }

    /// leakbench's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads stderr until a line contains `text`; returns that line.
    pub fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + LINE_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no stderr line containing {text:?} (leakbench exited or hung)\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// The pid from the `started target ... (pid N)` line.
    pub fn target_pid(&mut self) -> u32 {
        let line = self.wait_for("started target");
        let pid = line
            .split("(pid ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.parse().ok());
        pid.unwrap_or_else(|| panic!("no pid in {line:?}"))
    }

    /// Sends `signal` to leakbench.
    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling the child we started, by its pid.
        let rc = unsafe { libc::kill(self.pid() as i32, signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Waits for the exit (reading the rest of stderr), killing leakbench
    /// at the deadline; the exit code and how long it took.
    pub fn finish(&mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        loop {
            match self.lines.recv_timeout(LINE_DEADLINE) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    self.seen
                        .push("[test: leakbench killed at the deadline]".into());
                    break;
                }
            }
        }
        // stderr is closed: leakbench has exited or is about to.
        let status = self.child.wait().expect("wait for leakbench");
        (status.code(), started.elapsed())
    }

    /// report.json from --out.
    pub fn report(&self) -> Value {
        let path = self.out.join("report.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}\n{}",
                path.display(),
                self.seen.join("\n")
            )
        });
        serde_json::from_str(&text).expect("report.json is JSON")
    }

    /// Everything needed to understand a failure.
    pub fn context(&self) -> String {
        self.seen.join("\n")
    }
}

/// True if process `pid` has exited (or never existed) within `within`.
/// Waits on a pidfd, which becomes readable when the process exits, so the
/// answer comes the moment it dies, with no polling.
pub fn exits_within(pid: u32, within: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return true; // ESRCH: no such process
    }
    let fd = fd as libc::c_int;
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, then closing the fd we opened.
    let ready = unsafe { libc::poll(&mut pfd, 1, within.as_millis() as libc::c_int) };
    unsafe { libc::close(fd) };
    ready == 1
}

/// How long a target may take to die after leakbench has exited: it was
/// signalled before the exit; this only absorbs scheduling.
const TARGET_GONE: Duration = Duration::from_secs(5);

fn assert_gone(target: u32, run: &Live) {
    assert!(
        exits_within(target, TARGET_GONE),
        "target pid {target} still runs after leakbench exited\n{}",
        run.context()
    );
}

fn go_target(name: &str) -> PathBuf {
    common::go_targets().join(name)
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.to_string_lossy())
}

/// The leaky chat hub: sessions hold 1 s so each load phase lasts that
/// long, escalation cycles of 40 and 80 sessions at a concurrency of 20
/// last 2 s and 4 s, and with `verdict` set to `escalate = false` the
/// horizon wait runs its full 10 s: every phase lasts long enough to be hit.
fn chathub_scenario(verdict: &str) -> String {
    let port = common::free_port();
    format!(
        "[target]\nurl = \"ws://127.0.0.1:{port}/ws\"\ncommand = [{}, \"-addr\", \"127.0.0.1:{port}\"]\n\
         [load]\nsessions = 20\nwarmup = 1\ncycles = 2\nhold = \"1s\"\n\
         [[load.steps]]\nsend = \"hello\"\n[[load.steps]]\nexpect = \"hello\"\n\
         [settle]\ntimeout = \"10s\"\n[verdict]\n{verdict}\n",
        toml_path(&go_target("chathub"))
    )
}

/// Runs the leaky chat hub, sends `signal` once the line containing `after`
/// appears, and checks the interrupted ending.
fn interrupt_after(after: &str, signal: i32, phase: &str) {
    interrupt_scenario_after(&chathub_scenario(""), after, signal, phase);
}

/// As [`interrupt_after`], on `scenario`.
fn interrupt_scenario_after(scenario: &str, after: &str, signal: i32, phase: &str) {
    let _one_at_a_time = common::serial();
    let mut run = Live::start(scenario);
    let target = run.target_pid();
    run.wait_for(after);
    run.signal(signal);
    let (code, _) = run.finish();
    assert_eq!(code, Some(EXIT_INTERRUPTED), "{}", run.context());
    assert!(
        run.seen.iter().any(|l| l.contains("stopping")),
        "{}",
        run.context()
    );
    let report = run.report();
    assert_eq!(report["status"], "interrupted", "{report:#}");
    let reason = report["reasons"][0].as_str().unwrap_or_default();
    assert_eq!(
        reason,
        format!("interrupted during {phase}"),
        "{report:#}\n{}",
        run.context()
    );
    assert_gone(target, &run);
    assert!(!run.context().contains("panicked"), "{}", run.context());
}

#[test]
fn sigint_during_warmup() {
    interrupt_after("answers:", libc::SIGINT, "warm-up 1/1");
}

#[test]
fn sigint_during_baseline() {
    interrupt_after("warm-up 1/1: 20 sessions done", libc::SIGINT, "baseline");
}

#[test]
fn sigint_during_cycle() {
    interrupt_after("baseline:", libc::SIGINT, "cycle 1/2");
}

#[test]
fn sigint_during_settle() {
    interrupt_after("cycle 1/2: 20 sessions done", libc::SIGINT, "cycle 1/2");
}

#[test]
fn sigint_during_escalation() {
    interrupt_after("escalating", libc::SIGINT, "escalation 1 (40 sessions)");
}

#[test]
fn sigint_during_horizon_wait() {
    interrupt_scenario_after(
        &chathub_scenario("escalate = false"),
        "waiting with no load",
        libc::SIGINT,
        "horizon",
    );
}

#[test]
fn sigterm_during_cycle() {
    interrupt_after("baseline:", libc::SIGTERM, "cycle 1/2");
}

/// A target that ignores SIGTERM: leakbench's stop must fall back to
/// SIGKILL after its grace period.
fn stubborn_scenario() -> String {
    let port = common::free_port();
    format!(
        "[target]\nurl = \"http://127.0.0.1:{port}/\"\n\
         command = [{}, \"-addr\", \"127.0.0.1:{port}\", \"-ignore-term\"]\n\
         [load]\nsessions = 5\nwarmup = 1\ncycles = 2\nhold = \"1s\"\n",
        toml_path(&go_target("careless"))
    )
}

#[test]
fn sigint_stops_a_target_that_ignores_sigterm() {
    let _one_at_a_time = common::serial();
    let mut run = Live::start(&stubborn_scenario());
    let target = run.target_pid();
    run.wait_for("answers:");
    run.signal(libc::SIGINT);
    let (code, _) = run.finish();
    assert_eq!(code, Some(EXIT_INTERRUPTED), "{}", run.context());
    assert_eq!(run.report()["status"], "interrupted");
    assert_gone(target, &run);
}

#[test]
fn second_sigint_exits_at_once_and_kills_the_target() {
    let _one_at_a_time = common::serial();
    let mut run = Live::start(&stubborn_scenario());
    let target = run.target_pid();
    run.wait_for("answers:");
    run.signal(libc::SIGINT);
    // The first one stops the run and then waits up to 5 s for the
    // SIGTERM-ignoring target; the second must not wait for that.
    run.wait_for("press Ctrl-C again");
    run.signal(libc::SIGINT);
    let (code, took) = run.finish();
    assert_eq!(code, Some(EXIT_INTERRUPTED), "{}", run.context());
    assert!(
        run.seen
            .iter()
            .any(|l| l.contains("interrupted twice, exiting now")),
        "{}",
        run.context()
    );
    assert!(
        took < Duration::from_secs(4),
        "took {took:?}, longer than an immediate exit\n{}",
        run.context()
    );
    assert_gone(target, &run);
}
