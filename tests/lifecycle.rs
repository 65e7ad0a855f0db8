//! End-to-end tests of the target's lifecycle and its process signals: a
//! target that dies mid-run, a run interrupted with Ctrl-C, a target whose
//! only leak is file descriptors, and the environment and working directory
//! a started target gets. One more finds the fd leak of a target it did not
//! start, through `target.pid`.
//!
//! All of them run the real `leakbench run` on tests/targets/fdleak, which
//! leaks one socket per request (or none with `-fixed`) and prints its
//! address, working directory and, with `-env NAME`, that variable at start.

mod common;

use std::path::Path;

use common::{Case, EXIT_ERROR, EXIT_LEAK, EXIT_PASS, Live};
use serde_json::Value;

/// Exit code of a run stopped by SIGINT, as shells report death by SIGINT.
const EXIT_INTERRUPTED: i32 = leakbench::exit::INTERRUPTED as i32;

/// fdleak, clean, on `/open`: a target that passes unless something else
/// goes wrong.
fn clean_fdleak() -> Case {
    Case::http("fdleak", "/open").arg("-fixed")
}

/// Starts leakbench on `case` in `dir` and returns the run together with the
/// pid of the target it started, read from its `started target ... (pid N)`
/// progress line.
fn start_live(case: &Case, dir: &Path) -> (Live, i32) {
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, case.toml(common::free_port())).expect("write scenario");
    let mut live = Live::start(&scenario, &dir.join("out"));
    let line = live.expect("started target");
    let pid = common::started_pid(&line)
        .unwrap_or_else(|| panic!("no `(pid N)` in the progress line: {line}"));
    (live, pid)
}

fn status(run: &common::Outcome) -> Option<&str> {
    run.report().get("status").and_then(Value::as_str)
}

#[test]
fn killed_target_is_an_error_with_its_log_tail_and_no_orphan() {
    common::go_targets();
    let _one_at_a_time = common::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut live, pid) = start_live(&clean_fdleak(), dir.path());

    // The first measured cycle's load is done: the target is in use, with
    // the baseline taken and a report to write.
    live.expect("cycle 1/3");
    common::send_signal(pid, libc::SIGKILL);
    let run = live.finish();

    assert_eq!(run.code, Some(EXIT_ERROR), "{}", run.context());
    assert!(
        run.stderr.contains("the target exited"),
        "stderr must say the target exited\n{}",
        run.context()
    );
    assert!(
        run.stderr.contains("signal: 9") || run.stderr.contains("SIGKILL"),
        "stderr must say how the target ended (killed by signal 9)\n{}",
        run.context()
    );
    // The tail of target.log: fdleak's start line.
    assert!(
        run.stderr.contains("fdleak on 127.0.0.1:"),
        "stderr must show the last lines of the target's log\n{}",
        run.context()
    );
    assert_eq!(status(&run), Some("error"), "{}", run.context());
    let left = common::remains_of(pid);
    assert!(
        left.is_empty(),
        "the killed target (pid {pid}) or a process of its group is still there: {left:?}"
    );
}

#[test]
fn interrupted_run_stops_its_target() {
    common::go_targets();
    let _one_at_a_time = common::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut live, pid) = start_live(&clean_fdleak(), dir.path());

    live.expect("cycle 1/3");
    common::send_signal(live.pid() as i32, libc::SIGINT);
    let run = live.finish();

    assert_eq!(run.code, Some(EXIT_INTERRUPTED), "{}", run.context());
    assert_eq!(status(&run), Some("interrupted"), "{}", run.context());
    let left = common::remains_of(pid);
    assert!(
        left.is_empty(),
        "leakbench was interrupted but its target (pid {pid}) is still there: {left:?}\n{}",
        run.context()
    );
}

#[test]
fn fd_leak_without_heap_growth_is_a_leak_on_fds() {
    let run = Case::http("fdleak", "/open").run();
    run.assert_verdict(EXIT_LEAK, "leak");
    common::assert_signal(&run, "fds", "leak", true);
    common::assert_signal(&run, "goroutines", "pass", true);
    // The leaked sockets cost the Go heap almost nothing (poll descriptors,
    // allocated in blocks: 14 B a session measured over 17,600 sessions), so
    // the descriptors, not the heap, carry the verdict.
    let heap = common::signal(&run, "heap_bytes");
    assert_ne!(heap["verdict"], "leak", "{}", run.context());
    let per_session = common::signal_growth(&run, "heap_bytes") / common::sessions_served(&run);
    assert!(
        per_session < 64.0,
        "heap grew {per_session} B a session served\n{}",
        run.context()
    );
    // One socket per session served, and /proc says what kind they are.
    let sessions = common::sessions_served(&run);
    let fds = common::signal_growth(&run, "fds");
    assert!(
        (sessions..sessions + 10.0).contains(&fds),
        "fds grew by {fds}, expected about {sessions}\n{}",
        run.context()
    );
    let sockets = common::signal_growth(&run, "sockets");
    assert!(
        (sessions..sessions + 10.0).contains(&sockets),
        "sockets grew by {sockets}, expected about {sessions}\n{}",
        run.context()
    );
}

#[test]
fn fd_leak_of_a_target_named_by_pid_is_a_leak_on_fds() {
    // leakbench does not start this one: `pid` tells it whose /proc to read.
    let bin = common::go_targets().join("fdleak");
    let _one_at_a_time = common::serial();
    let port = common::free_port();
    let target =
        common::Spawned::start(&bin, &["-addr", &format!("127.0.0.1:{port}")], "fdleak on");
    let scenario = format!(
        "name = \"fdleak by pid\"\n\n[target]\nurl = \"http://127.0.0.1:{port}/open\"\n\
         pid = {}\n\n[load]\nsessions = 200\nrequests = 1\n",
        target.pid()
    );
    let run = common::run_scenario_text(&scenario);
    run.assert_verdict(EXIT_LEAK, "leak");
    common::assert_signal(&run, "fds", "leak", true);
    common::assert_signal(&run, "goroutines", "pass", true);
    // Still running: leakbench stops only what it started.
    assert!(
        Path::new(&format!("/proc/{}", target.pid())).exists(),
        "leakbench must leave a target it did not start running\n{}",
        run.context()
    );
}

#[test]
fn fd_leak_fixed_passes() {
    let run = clean_fdleak().run();
    run.assert_verdict(EXIT_PASS, "pass");
    common::assert_signal(&run, "fds", "pass", true);
}

#[test]
fn started_target_gets_env_and_cwd() {
    common::go_targets();
    let _one_at_a_time = common::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let workdir = dir.path().join("workdir");
    std::fs::create_dir(&workdir).expect("mkdir workdir");

    let mut case = clean_fdleak()
        .arg("-env")
        .arg("LEAKBENCH_E2E_GREETING")
        .env("LEAKBENCH_E2E_GREETING", "hello from the scenario");
    case.sessions = 20;
    // cwd is relative: it is taken against the scenario's folder.
    let text =
        case.toml(common::free_port())
            .replacen("[target]\n", "[target]\ncwd = \"workdir\"\n", 1);
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(&scenario, &text).expect("write scenario");
    let out = dir.path().join("out");
    let mut run = common::run_leakbench(&scenario, &out);
    run.scenario = text;
    run.assert_verdict(EXIT_PASS, "pass");

    let log_path = out.join("target.log");
    let log = std::fs::read_to_string(&log_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}\n{}", log_path.display(), run.context()));
    assert!(
        log.contains("env LEAKBENCH_E2E_GREETING=hello from the scenario"),
        "the target did not get the scenario's env; target.log:\n{log}"
    );
    let workdir = workdir.canonicalize().expect("canonical workdir");
    assert!(
        log.contains(&format!("cwd {}\n", workdir.display())),
        "the target did not run in {}; target.log:\n{log}",
        workdir.display()
    );
}
