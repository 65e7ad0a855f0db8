//! Harness for the end-to-end tests: builds the Go targets once, writes a
//! scenario for one target on a free loopback port, runs the real
//! `leakbench run` binary on it and reads back its exit code and report.
//!
//! The targets are started by leakbench itself through the scenario's
//! `command`, so each test exercises the whole path: start, load, settle,
//! probe, verdict, report.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

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
pub const EXIT_PASS: i32 = leakbench::exit::PASS as i32;
/// Exit code of a run that found a leak.
pub const EXIT_LEAK: i32 = leakbench::exit::LEAK as i32;
/// Exit code of a run that could not be carried out.
pub const EXIT_ERROR: i32 = leakbench::exit::ERROR as i32;
/// Exit code of a run whose evidence supports neither answer.
pub const EXIT_INCONCLUSIVE: i32 = leakbench::exit::INCONCLUSIVE as i32;
/// Exit code of an interrupted run.
pub const EXIT_INTERRUPTED: i32 = leakbench::exit::INTERRUPTED as i32;

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

/// One leakbench run at a time within a test process: the machines have
/// two cores, and unbounded parallel runs would load each other's targets
/// and blur the measurements. The guard survives a panicking test (the lock
/// is only about timing).
///
/// This bounds runs under `cargo test`, where a test binary is one process
/// and its binaries run one after another. Under `cargo nextest run` every
/// test is a process of its own, so this mutex serialises nothing across
/// tests; there the bound is nextest's scheduler, set in
/// .config/nextest.toml: at most `test-threads` tests (so leakbench runs) at
/// once, and the tests that measure leakbench itself or hold thousands of
/// sessions reserve every slot (`threads-required = "num-test-threads"`), so
/// they run alone as they do under `cargo test`. No lock is added here on
/// top of that: a test waiting on one would sit in a nextest slot, its wait
/// counted against its slow-timeout. What does cross processes, a port or a
/// folder, is claimed explicitly: see [`free_port`] and
/// tests/report_outputs.rs.
pub fn serial() -> MutexGuard<'static, ()> {
    static RUNS: Mutex<()> = Mutex::new(());
    RUNS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where free ports are picked when the ephemeral range leaves room below
/// it: the lowest port tried.
const PORTS_FROM: u16 = 20_000;

/// A loopback port for a target to listen on: free a moment ago (bound,
/// checked, released) and claimed for the life of this process, so that no
/// other test process hands it out meanwhile.
///
/// Two things would otherwise let parallel test processes (nextest runs
/// each test in its own) collide between this call and the target's bind:
/// another process asking the kernel for port 0 and getting the same port,
/// and another run's client connections (thousands a cycle) taking it as
/// their source port, both drawn from the ephemeral range
/// (/proc/sys/net/ipv4/ip_local_port_range). So ports come from below that
/// range, where the kernel hands out none by itself, and each is claimed
/// with an exclusive `flock` on a file named after it in
/// `$TMPDIR/leakbench-test-ports/`; the kernel drops the lock when the
/// process exits, however it ends, so a claim never goes stale. Within one
/// process a port is never handed out twice either (a second `open` of the
/// same file is a separate lock). When the ephemeral range starts too low
/// to leave room, the kernel's choice (port 0) is claimed the same way.
pub fn free_port() -> u16 {
    static CLAIMS: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("leakbench-test-ports");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let below = ephemeral_start();
    let span = below.saturating_sub(PORTS_FROM);
    // Start somewhere different in each process so that claims rarely meet.
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
    for attempt in 0..u64::from(span.max(1000)) {
        let port = if span >= 1000 {
            PORTS_FROM + ((seed + attempt) % u64::from(span)) as u16
        } else {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            listener.local_addr().expect("local_addr").port()
        };
        let Some(claim) = claim(&dir, port) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            CLAIMS
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(claim);
            return port;
        }
    }
    panic!(
        "no free loopback port between {PORTS_FROM} and {below} (claims in {})",
        dir.display()
    );
}

/// First port of the kernel's ephemeral range (32768 when unreadable).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// An exclusive, non-blocking `flock` on `dir/PORT`, held while the file
/// stays open; `None` when a live process (this one included) holds it.
fn claim(dir: &Path, port: u16) -> Option<std::fs::File> {
    flock(&dir.join(port.to_string()), libc::LOCK_NB)
}

/// An exclusive `flock` on `path` (created if missing), held until the
/// returned file is dropped or the process exits; waits for a holder in
/// another process to let go. For state that test processes share.
pub fn lock_exclusive(path: &Path) -> std::fs::File {
    flock(path, 0).unwrap_or_else(|| {
        panic!(
            "flock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )
    })
}

/// `flock(LOCK_EX | extra)` on `path`; `None` if it failed (with
/// `LOCK_NB`: another open file holds the lock).
fn flock(path: &Path, extra: i32) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    loop {
        // SAFETY: flock(2) on a descriptor this function owns; no memory
        // effects.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | extra) };
        if rc == 0 {
            return Some(file);
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
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

/// `s` as a TOML basic string, quotes included.
pub fn toml_str(s: &str) -> String {
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
    let mut cmd = Command::new(leakbench());
    cmd.arg("run").arg(scenario).arg("--out").arg(out);
    run_command(cmd, out)
}

/// The leakbench binary under test.
pub fn leakbench() -> &'static str {
    env!("CARGO_BIN_EXE_leakbench")
}

/// Runs `cmd` (a `leakbench run ... --out OUT`, perhaps wrapped, e.g. by
/// `ip netns exec`), killing it after [`RUN_DEADLINE`], and reads back its
/// report from `out`.
pub fn run_command(mut cmd: Command, out: &Path) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leakbench");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));

    let status = wait_bounded(&mut child, Instant::now());
    let mut stderr = collect(stderr);
    if status.is_none() {
        writeln!(
            stderr,
            "\n[e2e harness: leakbench killed after {RUN_DEADLINE:?}]"
        )
        .unwrap();
    }
    Outcome {
        scenario: String::new(),
        code: status.and_then(|s| s.code()),
        stdout: collect(stdout),
        stderr,
        report: read_report(out),
    }
}

/// Reads a pipe to its end on a thread.
pub fn drain(mut pipe: impl Read + Send + 'static) -> Receiver<String> {
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
pub fn collect(pipe: Receiver<String>) -> String {
    pipe.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| "[e2e harness: pipe still open 10 s after leakbench exited]".to_owned())
}

// ---- scenarios beyond the Go targets ---------------------------------------

/// The python3 that the metrics tests start, checked to have
/// prometheus_client. It is the first `python3` on PATH, which is the one
/// leakbench finds too (it looks bare program names up on PATH) and the one
/// .ci/install runs `python3 -m pip install` with. Panics with the fix when
/// the module is missing: the end-to-end tests skip nothing.
pub fn python_with_prometheus() -> &'static str {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import prometheus_client"])
            .output()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "python3 cannot import prometheus_client ({}); install it with: \
                 python3 -m pip install prometheus-client (see .ci/install)\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    match checked {
        Ok(()) => "python3",
        Err(why) => panic!("{why}"),
    }
}

/// Panics with the install command unless `program` is on PATH.
pub fn require_program(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "`{program}` is not on PATH; install it with: apt-get install -y {package} (see .ci/install)"
    );
}

/// The report's signal called `name`, or a panic listing the ones it has.
pub fn signal<'a>(run: &'a Outcome, name: &str) -> &'a Value {
    let signals = run
        .report()
        .get("signals")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    signals
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| {
            let names: Vec<&str> = signals
                .iter()
                .filter_map(|s| s.get("name").and_then(Value::as_str))
                .collect();
            panic!(
                "report.json has no signal {name:?} (it has {names:?})\n{}",
                run.context()
            )
        })
}

/// Asserts that signal `name` has this verdict and takes part in the overall
/// verdict (`decides`) or is only shown.
pub fn assert_signal(run: &Outcome, name: &str, verdict: &str, decides: bool) {
    let s = signal(run, name);
    assert_eq!(
        s.get("verdict").and_then(Value::as_str),
        Some(verdict),
        "signal {name}: expected verdict {verdict:?}\n{}",
        run.context()
    );
    assert_eq!(
        s.get("decides").and_then(Value::as_bool),
        Some(decides),
        "signal {name}: expected decides = {decides}\n{}",
        run.context()
    );
}

/// Sessions the measured cycles served, escalation cycles included
/// (report.json's `course.sessions`).
pub fn sessions_served(run: &Outcome) -> f64 {
    run.report()["course"]["sessions"]
        .as_f64()
        .unwrap_or_else(|| panic!("report has no course.sessions\n{}", run.context()))
}

/// Growth of signal `name` from baseline to the last cycle.
pub fn signal_growth(run: &Outcome, name: &str) -> f64 {
    signal(run, name)
        .get("growth")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("signal {name} has no growth\n{}", run.context()))
}

// ---- a run watched while it runs ------------------------------------------

/// A `leakbench run` whose stderr is read line by line as it is written, so a
/// test can act at a point of the run (after `cycle 1/3`, say) without
/// sleeping.
pub struct Live {
    child: std::process::Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stdout: Receiver<String>,
    out: PathBuf,
    started: Instant,
}

impl Live {
    /// Starts `leakbench run SCENARIO --out OUT`.
    pub fn start(scenario: &Path, out: &Path) -> Live {
        let mut cmd = Command::new(leakbench());
        cmd.arg("run").arg(scenario).arg("--out").arg(out);
        Live::spawn(cmd, out)
    }

    /// Starts `cmd`, a `leakbench run ... --out OUT` perhaps wrapped (e.g.
    /// by `ip netns exec`).
    pub fn spawn(mut cmd: Command, out: &Path) -> Live {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start leakbench");
        let stdout = drain(child.stdout.take().expect("stdout"));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
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
            stdout,
            out: out.to_owned(),
            started: Instant::now(),
        }
    }

    /// leakbench's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next stderr line containing `needle` and returns it;
    /// `None` when stderr closed (leakbench exited) or the run's deadline
    /// passed first.
    pub fn wait_for(&mut self, needle: &str) -> Option<String> {
        loop {
            let left = RUN_DEADLINE.checked_sub(self.started.elapsed())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if line.contains(needle) {
                return Some(line);
            }
        }
    }

    /// Like [`Live::wait_for`], but a missing line kills leakbench and fails
    /// the test with what stderr showed.
    pub fn expect(&mut self, needle: &str) -> String {
        match self.wait_for(needle) {
            Some(line) => line,
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "leakbench never printed a line with {needle:?}; stderr:\n{}",
                    self.stderr_so_far()
                );
            }
        }
    }

    /// Everything on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.seen.join("\n")
    }

    /// Waits for leakbench to exit (killing it at the run deadline) and
    /// collects what it did.
    pub fn finish(mut self) -> Outcome {
        let status = wait_bounded(&mut self.child, self.started);
        // The reader thread ends at EOF; bound the wait in case a leftover
        // process inherited the pipe.
        let eof_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = eof_deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.seen.push(
                        "[e2e harness: stderr still open 10 s after leakbench exited]".into(),
                    );
                    break;
                }
            }
        }
        let mut stderr = self.seen.join("\n");
        if status.is_none() {
            write!(
                stderr,
                "\n[e2e harness: leakbench killed after {RUN_DEADLINE:?}]"
            )
            .unwrap();
        }
        Outcome {
            scenario: String::new(),
            code: status.and_then(|s| s.code()),
            stdout: collect(self.stdout),
            stderr,
            report: read_report(&self.out),
        }
    }
}

/// Waits for `child`, killing it once [`RUN_DEADLINE`] has passed since
/// `started`; `None` if it had to be killed.
fn wait_bounded(
    child: &mut std::process::Child,
    started: Instant,
) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("wait for leakbench") {
            return Some(status);
        }
        if started.elapsed() > RUN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Writes what `outcome` holds besides report.json (exit code, stdout,
/// stderr, scenario) to `path`, so that another test process can take the
/// same run back with [`load_outcome`].
pub fn save_outcome(outcome: &Outcome, path: &Path) {
    let saved = serde_json::json!({
        "code": outcome.code,
        "stdout": outcome.stdout,
        "stderr": outcome.stderr,
        "scenario": outcome.scenario,
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, saved.to_string())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("cannot rename {}: {e}", tmp.display()));
}

/// The run saved by [`save_outcome`] at `path`, its report read from `out`
/// again; `None` when nothing was saved there.
pub fn load_outcome(path: &Path, out: &Path) -> Option<Outcome> {
    let text = std::fs::read_to_string(path).ok()?;
    let saved: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}):\n{text}", path.display()));
    let field = |name: &str| saved[name].as_str().unwrap_or_default().to_owned();
    Some(Outcome {
        scenario: field("scenario"),
        code: saved["code"].as_i64().map(|c| c as i32),
        stdout: field("stdout"),
        stderr: field("stderr"),
        report: read_report(out),
    })
}

/// report.json from `out`, parsed.
fn read_report(out: &Path) -> Result<Value, String> {
    let report_path = out.join("report.json");
    std::fs::read_to_string(&report_path)
        .map_err(|e| format!("cannot read {}: {e}", report_path.display()))
        .and_then(|text| {
            serde_json::from_str(&text)
                .map_err(|e| format!("{} is not JSON ({e}):\n{text}", report_path.display()))
        })
}

// ---- processes --------------------------------------------------------------

/// The pid in a progress line `started target `...` (pid N), log ...`.
pub fn started_pid(line: &str) -> Option<i32> {
    let after = &line[line.rfind("(pid ")? + "(pid ".len()..];
    after[..after.find(')')?].trim().parse().ok()
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory effects on this process.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// Processes that are `pid` itself or belong to its process group (a
/// started target leads its own group), as `pid state comm` lines. Empty when
/// nothing of it is left, zombies included.
pub fn remains_of(pid: i32) -> Vec<String> {
    let mut left = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return left;
    };
    for entry in entries.flatten() {
        let Some(other) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parens.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat
            .get(stat.find('(').unwrap_or(0) + 1..close)
            .unwrap_or("");
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let (state, pgrp) = (rest.first().copied().unwrap_or("?"), rest.get(2));
        if other == pid || pgrp.and_then(|g| g.parse::<i32>().ok()) == Some(pid) {
            left.push(format!("{other} {state} {comm}"));
        }
    }
    left
}

/// A target the test started itself (for scenarios where leakbench does
/// not): killed and reaped when dropped, so a failing test leaves nothing.
pub struct Spawned(std::process::Child);

/// Longest wait for a target the test started to say it listens.
const SPAWN_READY: Duration = Duration::from_secs(15);

impl Spawned {
    /// Starts `program args` and returns once a line of its stdout contains
    /// `ready` (the target's "listening" line), or panics after
    /// [`SPAWN_READY`]. The rest of its output is read and dropped.
    pub fn start(program: &Path, args: &[&str], ready: &str) -> Spawned {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("stdout");
        let spawned = Spawned(child);
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The receiver is gone once the target is ready: keep draining.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + SPAWN_READY;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(ready) => return spawned,
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "{} never printed {ready:?} (stdout: {seen:?})",
                    program.display()
                ),
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
