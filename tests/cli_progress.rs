//! Progress of `leakbench run` as people and CI see it: redrawn in place on
//! a terminal (a real pseudo-terminal from util-linux's `script`), one line
//! per phase in a pipe, nothing with `--quiet`. A short passing run of the
//! fixed ctxleak target each time.

mod common;

use std::process::{Command, Stdio};

use common::{Case, EXIT_PASS};

/// A quick scenario: 20 HTTP sessions held open 600 ms (long enough for the
/// live line to show them open), one warm-up and two cycles, against a
/// target that releases everything.
fn scenario(dir: &std::path::Path) -> std::path::PathBuf {
    let mut case = Case::http("ctxleak", "/work").arg("-fixed").settle("5s");
    case.sessions = 20;
    let text = case
        .toml(common::free_port())
        .replace("[load]\n", "[load]\ncycles = 2\nhold = \"600ms\"\n");
    let path = dir.join("quick.toml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

#[test]
fn progress_redraws_on_a_terminal() {
    common::go_targets();
    let _one_at_a_time = common::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = scenario(dir.path());
    let command = format!("{} run {}", env!("CARGO_BIN_EXE_leakbench"), path.display());
    // `script` gives leakbench a pseudo-terminal for stdin, stdout and
    // stderr, and copies everything written to it to our stdout.
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("run script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(EXIT_PASS), "{text}");
    // The live line is redrawn (cursor movement / line clearing) and shows
    // the settle polls against baseline; milestones stay as lines.
    assert!(
        text.contains("\x1b["),
        "no terminal control sequence:\n{text}"
    );
    assert!(
        text.contains("settling (poll"),
        "no live settle line:\n{text}"
    );
    assert!(
        text.contains("(baseline "),
        "no baseline in the live line:\n{text}"
    );
    assert!(text.contains("cycle 2/2: settled"), "{text}");
    // While a cycle runs, the live line counts its sessions.
    assert!(
        text.contains("20/20 sessions started, 20 open"),
        "no live session counts:\n{text}"
    );
    // The summary is coloured on a terminal.
    assert!(text.contains("\x1b[1;32mPASS\x1b[0m"), "{text}");
}

#[test]
fn quiet_prints_only_the_summary_and_pipes_get_plain_lines() {
    common::go_targets();
    let _one_at_a_time = common::serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = scenario(dir.path());
    let quiet = Command::new(env!("CARGO_BIN_EXE_leakbench"))
        .arg("run")
        .arg(&path)
        .arg("--quiet")
        .stdin(Stdio::null())
        .output()
        .expect("run leakbench");
    let stdout = String::from_utf8_lossy(&quiet.stdout);
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert_eq!(quiet.status.code(), Some(EXIT_PASS), "{stdout}{stderr}");
    assert!(stdout.starts_with("PASS  "), "{stdout}");
    assert!(stderr.is_empty(), "--quiet printed progress:\n{stderr}");

    let plain = Command::new(env!("CARGO_BIN_EXE_leakbench"))
        .arg("run")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run leakbench");
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(plain.status.code(), Some(EXIT_PASS), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "escape codes in a pipe:\n{stderr}"
    );
    assert!(
        !stderr.contains("settling (poll"),
        "per-poll lines in a pipe:\n{stderr}"
    );
    // One line per phase: warm-up, baseline and each cycle's load and settle.
    for expected in [
        "warm-up 1/1: ",
        "baseline: ",
        "cycle 1/2: settled",
        "cycle 2/2: settled",
    ] {
        assert_eq!(
            stderr.lines().filter(|l| l.contains(expected)).count(),
            1,
            "expected one `{expected}` line:\n{stderr}"
        );
    }
}
