//! Harness for the end-to-end tests: builds the Go targets once, writes a
//! scenario for one target on a free loopback port, runs the real
//! `leakbench run` binary on it and reads back its exit code and report.
//!
//! The targets are started by leakbench itself through the scenario's
//! `command`, so each test exercises the whole path: start, load, settle,
//! probe, verdict, report.

use std::fmt::Write as _;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Exit code of a run that found no leak.
pub const EXIT_PASS: i32 = 0;
/// Exit code of a run that found a leak.
pub const EXIT_LEAK: i32 = 1;
/// Exit code of a run that could not be carried out.
pub const EXIT_ERROR: i32 = 2;

/// Longest a single `leakbench run` may take before the test kills it: four
/// cycles of 200 sessions, each allowed the default 30 s settle, with room
/// to spare on a loaded two-core machine.
const RUN_DEADLINE: Duration = Duration::from_secs(600);

/// How many of the report's suspects must name the leaking function.
pub const TOP_SUSPECTS: usize = 3;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds every Go target once per test process (tests/targets/build.sh is
/// itself idempotent and locked, so parallel test binaries are safe) and
/// returns the folder holding the binaries. Panics with the build's output
/// when Go or a library is missing: the end-to-end tests skip nothing.
pub fn go_targets() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = repo().join("target").join("go");
        let script = repo().join("tests").join("targets").join("build.sh");
        let result = Command::new("sh")
            .arg(&script)
            .arg(&out)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if result.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "{} failed ({}):\n{}{}",
                script.display(),
                result.status,
                String::from_utf8_lossy(&result.stdout),
                String::from_utf8_lossy(&result.stderr)
            ))
        }
    });
    match built {
        Ok(dir) => dir,
        Err(why) => panic!("building the Go targets failed, so no end-to-end test can run:\n{why}"),
    }
}

/// One leakbench run at a time: the machines have two cores, and parallel
/// runs would load each other's targets and blur the measurements. The
/// guard survives a panicking test (the lock is only about timing).
pub fn serial() -> MutexGuard<'static, ()> {
    static RUNS: Mutex<()> = Mutex::new(());
    RUNS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A loopback port that was free a moment ago (bound, read, released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// How a session ends, as the scenario's `load.close` spells it.
#[derive(Debug, Clone, Copy)]
pub enum Close {
    /// Close frame, then an orderly FIN.
    Graceful,
    /// TCP reset, no close frame.
    Abrupt,
}

/// A scenario against one Go target started by leakbench.
#[derive(Debug, Clone)]
pub struct Case {
    /// Binary name under target/go, e.g. `chathub`.
    pub target: &'static str,
    /// Path of the session endpoint, e.g. `/ws` or `/fetch`.
    pub path: &'static str,
    /// True for a websocket endpoint, false for HTTP.
    pub websocket: bool,
    /// Extra target arguments after `-addr`, e.g. `-fixed`.
    pub args: Vec<String>,
    /// Extra target environment.
    pub env: Vec<(String, String)>,
    /// Sessions per cycle.
    pub sessions: u32,
    /// Close mode; `None` leaves the default.
    pub close: Option<Close>,
    /// `settle.timeout`; `None` leaves the default.
    pub settle_timeout: Option<&'static str>,
}

impl Case {
    /// A websocket target at `/ws`; each session sends `hello` and waits for
    /// it to come back.
    pub fn ws(target: &'static str) -> Case {
        Case {
            target,
            path: "/ws",
            websocket: true,
            args: Vec::new(),
            env: Vec::new(),
            sessions: 200,
            close: None,
            settle_timeout: None,
        }
    }

    /// An HTTP target; each session makes one request to `path`.
    pub fn http(target: &'static str, path: &'static str) -> Case {
        Case {
            path,
            websocket: false,
            ..Case::ws(target)
        }
    }

    /// Adds a target argument.
    pub fn arg(mut self, arg: &str) -> Case {
        self.args.push(arg.to_owned());
        self
    }

    /// Adds a target environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Case {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Sets the close mode.
    pub fn close(mut self, close: Close) -> Case {
        self.close = Some(close);
        self
    }

    /// Sets the settle timeout.
    pub fn settle(mut self, timeout: &'static str) -> Case {
        self.settle_timeout = Some(timeout);
        self
    }

    /// The scenario TOML for this case with the target on `port`.
    pub fn toml(&self, port: u16) -> String {
        let program = go_targets().join(self.target);
        let scheme = if self.websocket { "ws" } else { "http" };
        let mut argv = vec![
            toml_str(&program.to_string_lossy()),
            toml_str("-addr"),
            toml_str(&format!("127.0.0.1:{port}")),
        ];
        argv.extend(self.args.iter().map(|a| toml_str(a)));

        let mut t = String::new();
        let label = format!("{} {}", self.target, self.args.join(" "));
        writeln!(t, "name = {}", toml_str(label.trim())).unwrap();
        writeln!(t, "\n[target]").unwrap();
        writeln!(t, "url = \"{scheme}://127.0.0.1:{port}{}\"", self.path).unwrap();
        writeln!(t, "command = [{}]", argv.join(", ")).unwrap();
        if !self.env.is_empty() {
            let pairs: Vec<String> = self
                .env
                .iter()
                .map(|(k, v)| format!("{k} = {}", toml_str(v)))
                .collect();
            writeln!(t, "env = {{ {} }}", pairs.join(", ")).unwrap();
        }
        writeln!(t, "\n[load]").unwrap();
        writeln!(t, "sessions = {}", self.sessions).unwrap();
        if let Some(close) = self.close {
            let mode = match close {
                Close::Graceful => "graceful",
                Close::Abrupt => "abrupt",
            };
            writeln!(t, "close = \"{mode}\"").unwrap();
        }
        if self.websocket {
            writeln!(t, "\n[[load.steps]]\nsend = \"hello\"").unwrap();
            writeln!(t, "\n[[load.steps]]\nexpect = \"hello\"").unwrap();
        } else {
            writeln!(t, "requests = 1").unwrap();
        }
        if let Some(timeout) = self.settle_timeout {
            writeln!(t, "\n[settle]\ntimeout = \"{timeout}\"").unwrap();
        }
        t
    }

    /// Runs leakbench on this case with the target on a fresh free port.
    pub fn run(&self) -> Outcome {
        go_targets();
        let _one_at_a_time = serial();
        let port = free_port();
        run_scenario_text(&self.toml(port))
    }
}

fn toml_str(s: &str) -> String {
    // serde_json's string escaping is valid TOML basic-string escaping for
    // everything a path or flag holds.
    serde_json::to_string(s).expect("string to JSON")
}

/// What one `leakbench run` did.
#[derive(Debug)]
pub struct Outcome {
    /// The scenario that was run.
    pub scenario: String,
    /// Exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    /// leakbench's stdout.
    pub stdout: String,
    /// leakbench's stderr.
    pub stderr: String,
    /// report.json from the output folder, if it was written and parses.
    pub report: Result<Value, String>,
}

impl Outcome {
    /// Everything needed to understand a failure.
    pub fn context(&self) -> String {
        format!(
            "exit code: {:?}\n--- scenario ---\n{}--- stdout ---\n{}\n--- stderr ---\n{}\n--- report.json ---\n{}",
            self.code,
            self.scenario,
            self.stdout,
            self.stderr,
            match &self.report {
                Ok(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
                Err(e) => e.clone(),
            }
        )
    }

    /// The parsed report, or a panic explaining why there is none.
    pub fn report(&self) -> &Value {
        match &self.report {
            Ok(v) => v,
            Err(_) => panic!("no usable report.json\n{}", self.context()),
        }
    }

    /// Asserts the exit code and the report's verdict.
    pub fn assert_verdict(&self, code: i32, verdict: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code} ({verdict})\n{}",
            self.context()
        );
        let got = self.report().get("verdict").and_then(Value::as_str);
        assert_eq!(
            got,
            Some(verdict),
            "expected report.json verdict {verdict:?}\n{}",
            self.context()
        );
    }

    /// Asserts that one of the first [`TOP_SUSPECTS`] suspects has a frame
    /// naming `function` (e.g. `main.watchDeadline`).
    pub fn assert_suspect(&self, function: &str) {
        let suspects = self
            .report()
            .get("suspects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let named = suspects.iter().take(TOP_SUSPECTS).any(|s| {
            s.get("frames")
                .and_then(Value::as_array)
                .is_some_and(|frames| {
                    frames
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|f| frame_is(f, function))
                })
        });
        assert!(
            named,
            "expected `{function}` in the frames of one of the first {TOP_SUSPECTS} suspects \
             (of {})\n{}",
            suspects.len(),
            self.context()
        );
    }
}

/// A frame names `function` if it is the function itself, possibly followed
/// by a location or argument list, or a closure inside it (`.func1`).
fn frame_is(frame: &str, function: &str) -> bool {
    match frame.strip_prefix(function) {
        Some(rest) => {
            rest.is_empty()
                || rest.starts_with(' ')
                || rest.starts_with('(')
                || rest.starts_with('\t')
                || rest.starts_with(".func")
        }
        None => false,
    }
}

/// Writes `scenario` into a fresh folder and runs `leakbench run` on it with
/// `--out` in the same folder.
pub fn run_scenario_text(scenario: &str) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, scenario).expect("write scenario");
    let out = dir.path().join("out");
    let mut outcome = run_leakbench(&path, &out);
    outcome.scenario = scenario.to_owned();
    outcome
}

/// Runs `leakbench run SCENARIO --out OUT`, killing it after
/// [`RUN_DEADLINE`].
pub fn run_leakbench(scenario: &Path, out: &Path) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakbench"))
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leakbench");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for leakbench") {
            break Some(status);
        }
        if started.elapsed() > RUN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = collect(stderr);
    if status.is_none() {
        writeln!(
            stderr,
            "\n[e2e harness: leakbench killed after {RUN_DEADLINE:?}]"
        )
        .unwrap();
    }
    let report_path = out.join("report.json");
    let report = std::fs::read_to_string(&report_path)
        .map_err(|e| format!("cannot read {}: {e}", report_path.display()))
        .and_then(|text| {
            serde_json::from_str(&text)
                .map_err(|e| format!("{} is not JSON ({e}):\n{text}", report_path.display()))
        });
    Outcome {
        scenario: String::new(),
        code: status.and_then(|s| s.code()),
        stdout: collect(stdout),
        stderr,
        report,
    }
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// What a drained pipe held. Bounded: a target that outlives leakbench and
/// inherited its pipe would otherwise keep the test waiting for EOF forever.
fn collect(pipe: Receiver<String>) -> String {
    pipe.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| "[e2e harness: pipe still open 10 s after leakbench exited]".to_owned())
}
