//! `leakbench run --bisect` under `git bisect run`, for real: a scratch git
//! repository holds five commits of a small Go service (tests/bisect/history),
//! the third of which brings in a per-session leak, and git, driving a build
//! step and leakbench at each commit it picks, must name that third commit.
//!
//! The other tests check the skip side of the mapping on real runs: a target
//! that exits at once, a command line leakbench cannot use, a missing
//! scenario and a service whose refused requests leave the verdict
//! inconclusive all exit 125, with a line on stderr saying why, so that git
//! skips the commit instead of calling it bad.

mod common;

use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{collect, drain, free_port, go_targets, leakbench, serial, toml_str};

/// `git bisect run`'s "cannot test this commit".
const EXIT_SKIP: i32 = 125;

/// The line `run --bisect` starts its reason with when it skips.
const SKIP_LINE: &str = "leakbench: bisect: skipping this commit";

/// Longest the whole bisection may take before the test ends it. Git tests
/// two or three commits here; a leaking run takes about 30 s at default
/// settings (its escalation and the 30 s release horizon), a passing one a
/// few seconds, and a Go build a few more: 8 minutes leaves room for a loaded
/// two-core machine while staying inside nextest's 11-minute bound.
const BISECT_DEADLINE: Duration = Duration::from_secs(8 * 60);

/// Longest a single quick `leakbench run --bisect` below may take.
const RUN_DEADLINE: Duration = Duration::from_secs(3 * 60);

/// What each commit of the scratch history changes, in order; commit N's
/// tree is tests/bisect/history/N plus scenario.toml and .gitignore.
const HISTORY: [&str; 5] = [
    "sessiond: hand out numbered sessions on GET /session",
    "Add GET /healthz for the load balancer",
    "Keep each session's record for GET /session/info",
    "Log the listen address at start",
    "Move the handlers onto a server type in server.go",
];

/// The commit (1-based) whose change retains a record per session.
const LEAKING_COMMIT: usize = 3;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    repo_root().join("tests").join("bisect")
}

/// The Go toolchain tests/targets/build.sh uses: `$GO`, else Go 1.23 from
/// bookworm-backports when installed, else `go` on PATH.
fn go() -> String {
    if let Some(go) = std::env::var_os("GO").filter(|g| !g.is_empty()) {
        return go.to_string_lossy().into_owned();
    }
    let backports = Path::new("/usr/lib/go-1.23/bin/go");
    if backports.is_file() {
        return backports.display().to_string();
    }
    "go".to_owned()
}

// ---- a scratch repository -------------------------------------------------

/// A git repository in a temporary folder, isolated from this machine's git
/// configuration (no system file, HOME and XDG_CONFIG_HOME inside the
/// folder), with a fixed author.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).expect("create home");
        std::fs::create_dir_all(dir.path().join("repo")).expect("create repo");
        let scratch = Scratch { dir };
        scratch.git(&["init", "--quiet", "--initial-branch=main"]);
        scratch
    }

    /// The work tree.
    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// `program` in the work tree with the isolated git environment, not
    /// yet run: git itself, or a shell that runs git.
    fn command(&self, program: &str) -> Command {
        let home = self.dir.path().join("home");
        let mut cmd = Command::new(program);
        cmd.current_dir(self.repo())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("GIT_AUTHOR_NAME", "Bisect Test")
            .env("GIT_AUTHOR_EMAIL", "bisect@example.invalid")
            .env("GIT_COMMITTER_NAME", "Bisect Test")
            .env("GIT_COMMITTER_EMAIL", "bisect@example.invalid")
            .env("GIT_TERMINAL_PROMPT", "0")
            // Set when the tests run from a git hook; they would point git
            // at this checkout instead of the scratch one.
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE");
        cmd
    }

    /// Runs `git ARGS` in the work tree and returns its stdout, panicking
    /// with its output if it fails.
    fn git(&self, args: &[&str]) -> String {
        let mut cmd = self.command("git");
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Replaces the Go sources with those of `history/N` and commits them
    /// (with the scenario and .gitignore on the first commit); returns the
    /// new commit's sha.
    fn commit_step(&self, n: usize, message: &str) -> String {
        let repo = self.repo();
        for entry in std::fs::read_dir(&repo).expect("read repo") {
            let path = entry.expect("repo entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.ends_with(".go") || name == "go.mod" {
                std::fs::remove_file(&path).expect("remove source");
            }
        }
        let step = fixtures().join("history").join(n.to_string());
        for entry in std::fs::read_dir(&step).expect("read history step") {
            let path = entry.expect("step entry").path();
            std::fs::copy(&path, repo.join(path.file_name().expect("file name")))
                .unwrap_or_else(|e| panic!("cannot copy {}: {e}", path.display()));
        }
        if n == 1 {
            std::fs::copy(fixtures().join("scenario.toml"), repo.join("scenario.toml"))
                .expect("copy scenario");
            // The build step's binary is not part of the history.
            std::fs::write(repo.join(".gitignore"), "/svc\n").expect("write .gitignore");
        }
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }
}

/// Ends the bisection however the test leaves, so the work tree is back on
/// main (the folder is deleted anyway; this keeps the sequence honest).
struct BisectReset<'a>(&'a Scratch);

impl Drop for BisectReset<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .command("git")
            .args(["bisect", "reset", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ---- bounded processes ----------------------------------------------------

/// What a bounded command did.
struct Ran {
    /// `None` when it was ended at its deadline.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    fn context(&self) -> String {
        format!(
            "status: {:?} after {:.1?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.took, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` in a process group of its own and waits for it; past
/// `deadline` the group gets SIGINT (leakbench then stops its target and
/// exits, which ends a bisection too) and, 15 s later, SIGKILL.
fn run_bounded(mut cmd: Command, deadline: Duration) -> Ran {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start command");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let group = child.id() as i32;
    let mut interrupted_at = None;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break interrupted_at.is_none().then_some(status);
        }
        match interrupted_at {
            None if started.elapsed() > deadline => {
                // SAFETY: kill(2) on the group this function started.
                unsafe { libc::kill(-group, libc::SIGINT) };
                interrupted_at = Some(Instant::now());
            }
            Some(at) if at.elapsed() > Duration::from_secs(15) => {
                // SAFETY: as above.
                unsafe { libc::kill(-group, libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
            _ => {}
        }
        thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = collect(stderr);
    if status.is_none() {
        write!(stderr, "\n[bisect test: ended after {deadline:?}]").unwrap();
    }
    Ran {
        status,
        stdout: collect(stdout),
        stderr,
        took: started.elapsed(),
    }
}

// ---- the bisection --------------------------------------------------------

/// What `git bisect run` runs at each commit: build the service (a commit
/// that does not build cannot be tested: 125), note the commit, then let
/// leakbench's exit code be the answer.
const BISECT_STEP: &str = r#""$GO" build -o svc . || exit 125
git rev-parse HEAD >> "$LEAKBENCH_RUNS"
exec "$LEAKBENCH" run scenario.toml --bisect"#;

#[test]
fn git_bisect_run_names_the_commit_that_brought_the_leak_in() {
    let _one_at_a_time = serial();
    let scratch = Scratch::new();
    let commits: Vec<String> = HISTORY
        .iter()
        .enumerate()
        .map(|(i, message)| scratch.commit_step(i + 1, message))
        .collect();
    let first = &commits[0];
    let last = &commits[commits.len() - 1];
    let leaking = &commits[LEAKING_COMMIT - 1];

    scratch.git(&["bisect", "start", last, first]);
    let _reset = BisectReset(&scratch);

    let runs = scratch.dir.path().join("leakbench-runs");
    let gopath = scratch.dir.path().join("gopath");
    // Without --out leakbench keeps the target's log in $TMPDIR/leakbench-PID
    // for the developer to read; here it goes with the scratch folder.
    let tmp = scratch.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("create tmp");
    // One transcript, in order: git's lines and leakbench's, both streams.
    let mut cmd = scratch.command("sh");
    cmd.args([
        "-c",
        r#"exec 2>&1; exec git bisect run sh -c "$BISECT_STEP""#,
    ])
    .env("BISECT_STEP", BISECT_STEP)
    .env("LEAKBENCH", leakbench())
    .env("LEAKBENCH_RUNS", &runs)
    .env("PORT", free_port().to_string())
    .env("TMPDIR", &tmp)
    .env("GO", go())
    // No module proxy on these machines, and the service needs none.
    .env("GOTOOLCHAIN", "local")
    .env("GOFLAGS", "")
    .env("GOPROXY", "off")
    .env("GO111MODULE", "on")
    .env("GOENV", "off")
    .env("GOPATH", &gopath)
    // Shared with tests/targets/build.sh, so the standard library is
    // compiled once.
    .env("GOCACHE", repo_root().join("target").join("go-cache"));
    let ran = run_bounded(cmd, BISECT_DEADLINE);

    let tested: Vec<String> = std::fs::read_to_string(&runs)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let log = scratch.git(&["bisect", "log"]);
    let names: String = commits
        .iter()
        .enumerate()
        .map(|(i, sha)| format!("commit {} {sha} {}\n", i + 1, HISTORY[i]))
        .collect();
    let context = format!(
        "{}\n--- commits ---\n{names}--- leakbench ran at ---\n{}\n--- git bisect log ---\n{log}",
        ran.context(),
        tested.join("\n")
    );
    // For `cargo nextest run --no-capture`: what the bisection cost.
    eprintln!(
        "bisect took {:.1?}, {} leakbench run(s); git: {}",
        ran.took,
        tested.len(),
        ran.stdout
            .lines()
            .find(|l| l.ends_with("is the first bad commit"))
            .unwrap_or("(no first bad commit)")
    );

    assert_eq!(ran.code(), Some(0), "git bisect run failed\n{context}");
    assert!(
        ran.stdout
            .contains(&format!("{leaking} is the first bad commit")),
        "git did not name commit {LEAKING_COMMIT} ({leaking}) as the first bad commit\n{context}"
    );
    let bad = scratch.git(&["rev-parse", "refs/bisect/bad"]);
    assert_eq!(bad.trim(), leaking, "refs/bisect/bad\n{context}");
    // Every commit git asked about got the right answer, none a skip: the
    // ones before the leak are good, the ones from it on bad.
    for line in log.lines() {
        let Some((mark, sha)) = line
            .strip_prefix("git bisect ")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        let Some(n) = commits.iter().position(|c| c == sha).map(|i| i + 1) else {
            continue;
        };
        let expected = if n < LEAKING_COMMIT { "good" } else { "bad" };
        assert_eq!(
            mark, expected,
            "git marked commit {n} {mark}, expected {expected}\n{context}"
        );
    }
    assert!(
        !tested.is_empty() && tested.iter().all(|sha| commits.contains(sha)),
        "leakbench should have run at commits of the history\n{context}"
    );
}

// ---- the skip side of the mapping -----------------------------------------

/// `leakbench run ARGS` in `dir`, bounded by [`RUN_DEADLINE`]. `dir` is
/// its TMPDIR too, so that the target's log (kept in
/// `$TMPDIR/leakbench-PID` when there is no --out) goes with it.
fn leakbench_in(dir: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new(leakbench());
    cmd.current_dir(dir).env("TMPDIR", dir).args(args);
    run_bounded(cmd, RUN_DEADLINE)
}

/// Asserts a skip: exit 125 and a stderr line starting with [`SKIP_LINE`]
/// that contains `reason`.
fn assert_skipped(ran: &Ran, reason: &str) {
    assert_eq!(
        ran.code(),
        Some(EXIT_SKIP),
        "expected a skip\n{}",
        ran.context()
    );
    let line = ran
        .stderr
        .lines()
        .find(|l| l.starts_with(SKIP_LINE))
        .unwrap_or_else(|| panic!("no line starting {SKIP_LINE:?}\n{}", ran.context()));
    assert!(
        line.contains(reason),
        "the skip line should say {reason:?}: {line}\n{}",
        ran.context()
    );
}

/// Writes `scenario` into a fresh folder.
fn scenario_dir(scenario: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("scenario.toml"), scenario).expect("write scenario");
    dir
}

#[test]
fn a_target_that_exits_at_once_is_skipped_not_bad() {
    // A commit whose service does not start (here: it is handed a flag it
    // does not know, as after a rename) says nothing about the leak.
    let _one_at_a_time = serial();
    let port = free_port();
    let program = go_targets().join("smallleak");
    let dir = scenario_dir(&format!(
        "[target]\nurl = \"http://127.0.0.1:{port}/visit\"\n\
         command = [{}, \"-listen\", \"127.0.0.1:{port}\"]\n[load]\nsessions = 200\n",
        toml_str(&program.to_string_lossy())
    ));
    let plain = leakbench_in(dir.path(), &["run", "scenario.toml"]);
    assert_eq!(
        plain.code(),
        Some(common::EXIT_ERROR),
        "without --bisect this is an error\n{}",
        plain.context()
    );
    let ran = leakbench_in(dir.path(), &["run", "scenario.toml", "--bisect"]);
    assert_skipped(&ran, "the run failed");
    assert!(
        ran.stderr.contains("leakbench: error:"),
        "the error itself is shown too\n{}",
        ran.context()
    );
}

#[test]
fn a_command_line_leakbench_cannot_use_is_skipped_not_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = leakbench_in(
        dir.path(),
        &["run", "scenario.toml", "--bisect", "--no-such-flag"],
    );
    assert_skipped(&ran, "bad arguments");
    assert!(
        ran.stderr.contains("--no-such-flag"),
        "clap's message names the flag\n{}",
        ran.context()
    );
}

#[test]
fn a_missing_scenario_is_skipped_not_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = leakbench_in(dir.path(), &["run", "no-such-scenario.toml", "--bisect"]);
    assert_skipped(&ran, "the run failed");
    assert!(
        ran.stderr.contains("no-such-scenario.toml"),
        "the error names the file\n{}",
        ran.context()
    );
}

#[test]
fn an_inconclusive_run_is_skipped_not_bad() {
    // A commit whose service refuses one request in twenty: more failed
    // sessions than the default 1 % allowed, so the evidence says nothing
    // either way.
    let _one_at_a_time = serial();
    let port = free_port();
    let program = go_targets().join("benchsrv");
    let dir = scenario_dir(&format!(
        "[target]\nurl = \"http://127.0.0.1:{port}/hello\"\n\
         command = [{}, \"-addr\", \"127.0.0.1:{port}\", \"-reject-percent\", \"5\"]\n\
         [load]\nsessions = 200\n",
        toml_str(&program.to_string_lossy())
    ));
    let ran = leakbench_in(dir.path(), &["run", "scenario.toml", "--bisect"]);
    assert_skipped(&ran, "the verdict is inconclusive");
    assert_skipped(&ran, "sessions failed");
}
