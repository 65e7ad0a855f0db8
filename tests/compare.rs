//! `leakbench compare` on reports of real runs: the chat hub built fixed
//! and leaky as two releases of one scenario, the ring target keeping 2,000
//! and 4,000 closed sessions as two bounds, and reports an older leakbench
//! wrote (tests/fixtures/reports, before report.json had findings).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Case, free_port, go_targets, run_leakbench, serial};

/// One scenario name for both releases: compare refuses two scenarios.
const SCENARIO: &str = "release gate";

/// Runs `case` under [`SCENARIO`]'s name with `--out DIR/NAME`, and returns
/// that folder after checking the run ended with `code`.
fn release(dir: &Path, name: &str, case: &Case, code: i32) -> PathBuf {
    go_targets();
    let _one_at_a_time = serial();
    let toml = case.toml(free_port());
    let (first, rest) = toml.split_once('\n').expect("a scenario with lines");
    assert!(first.starts_with("name = "), "{first}");
    let scenario = dir.join(format!("{name}.toml"));
    std::fs::write(&scenario, format!("name = \"{SCENARIO}\"\n{rest}")).unwrap();
    let out = dir.join(name);
    let run = run_leakbench(&scenario, &out);
    assert_eq!(run.code, Some(code), "{name}\n{}", run.context());
    out
}

/// `leakbench compare ARGS...`: exit code and stdout, stderr.
fn compare(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(common::leakbench());
    cmd.arg("compare");
    for a in args {
        cmd.arg(a);
    }
    let out = cmd.output().expect("run leakbench compare");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The table row of `signal` (the line that starts with its name).
fn row<'a>(table: &'a str, signal: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{signal} ")))
        .unwrap_or_else(|| panic!("no row for {signal} in\n{table}"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name)
}

#[test]
fn a_leak_brought_in_by_a_release_fails_the_comparison_and_its_fix_passes() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = release(
        dir.path(),
        "fixed",
        &Case::ws("chathub").arg("-fixed"),
        common::EXIT_PASS,
    );
    let leaky = release(dir.path(), "leaky", &Case::ws("chathub"), common::EXIT_LEAK);

    let (code, table, err) = compare(&[&fixed, &leaky]);
    assert_eq!(code, Some(1), "{table}{err}");
    assert!(table.contains("AFTER is worse on goroutines"), "{table}");
    let goroutines = row(&table, "goroutines");
    assert!(
        goroutines.contains("back") && goroutines.contains("WORSE: leaks now"),
        "{table}"
    );
    // About one writePump goroutine per session.
    let rate: f64 = goroutines
        .split("leaks now (")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {goroutines}"));
    assert!((0.8..1.2).contains(&rate), "{table}");

    let (code, table, err) = compare(&[&leaky, &fixed]);
    assert_eq!(code, Some(0), "{table}{err}");
    assert!(
        row(&table, "goroutines").contains("no longer leaks"),
        "{table}"
    );

    // A leak that stays the same size is no worse.
    let (code, table, _) = compare(&[&leaky, &leaky.join("report.json")]);
    assert_eq!(code, Some(0), "{table}");
    assert!(
        row(&table, "goroutines").contains("leaks as before (+0%)"),
        "{table}"
    );

    let (code, md, _) = compare(&[&fixed, &leaky, &"--markdown"]);
    assert_eq!(code, Some(1), "{md}");
    assert!(
        md.starts_with("### leakbench compare: ❌ AFTER is worse on goroutines"),
        "{md}"
    );
    assert!(
        md.contains("| signal | before | after | per session | change |"),
        "{md}"
    );
    assert!(md.contains("| goroutines | back | leak | "), "{md}");

    // Reports of leakbench 0.1, before report.json had findings, read the
    // same way: its verdicts stand for the findings.
    let (code, table, err) = compare(&[&fixture("v0.1-fixed.json"), &leaky]);
    assert_eq!(code, Some(1), "{table}{err}");
    assert!(
        row(&table, "goroutines").contains("WORSE: leaks now"),
        "{table}"
    );
    let (code, table, err) = compare(&[&fixture("v0.1-leaky.json"), &fixed]);
    assert_eq!(code, Some(0), "{table}{err}");
    assert!(
        row(&table, "goroutines").contains("no longer leaks"),
        "{table}"
    );
    let (code, table, err) = compare(&[&fixture("v0.1-leaky.json"), &leaky]);
    assert_eq!(code, Some(0), "{table}{err}");
    assert!(
        row(&table, "goroutines").contains("leaks as before"),
        "{table}"
    );
    // anon_bytes came after 0.1: listed, not compared, not an error.
    assert!(
        table.contains("anon_bytes: measured in one run only, not compared"),
        "{table}"
    );

    mismatched_reports_are_errors(dir.path(), &fixed);
}

/// Exit 2 with the fault named, for reports compare cannot pair.
fn mismatched_reports_are_errors(dir: &Path, good: &Path) {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(good.join("report.json")).unwrap()).unwrap();
    let write = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut r = report.clone();
        edit(&mut r);
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string(&r).unwrap()).unwrap();
        path
    };
    let other = write("other.json", &|r| r["name"] = "checkout".into());
    let fewer = write("fewer.json", &|r| {
        let signals = r["signals"].as_array_mut().unwrap();
        signals.retain(|s| s["name"] != "fds");
    });
    let partial = write("partial.json", &|r| r["status"] = "interrupted".into());
    let newer = write("newer.json", &|r| {
        r["schema"] = "leakbench.report/v9".into()
    });
    let notes = dir.join("notes.json");
    std::fs::write(&notes, "{\"name\": \"release gate\"}").unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "<html>").unwrap();
    let empty = tempfile::tempdir().unwrap();

    for (after, says) in [
        (&other, "different scenarios: BEFORE"),
        (&fewer, "only BEFORE has fds"),
        (&partial, "partial report (status `interrupted`)"),
        (&newer, "written by a newer leakbench"),
        (&notes, "is not a leakbench report.json"),
        (&garbage, "is not JSON"),
        (&empty.path().to_path_buf(), "the folder has no report.json"),
        (&dir.join("missing.json"), "AFTER: cannot read"),
    ] {
        let (code, stdout, stderr) = compare(&[&good, after]);
        assert_eq!(code, Some(2), "{}: {stdout}{stderr}", after.display());
        assert!(
            stderr.starts_with("leakbench: error: ") && stderr.contains(says),
            "{}: expected {says:?} in {stderr}",
            after.display()
        );
        assert!(stdout.is_empty(), "{stdout}");
    }
    let (code, _, stderr) = compare(&[&good, &good, &"--tolerance=-5"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("0 or more"), "{stderr}");
}

#[test]
fn a_bound_that_doubled_fails_the_comparison_and_a_halved_one_passes() {
    let dir = tempfile::tempdir().unwrap();
    let small = release(
        dir.path(),
        "keep2000",
        &Case::ws("ring").arg("-keep").arg("2000"),
        common::EXIT_PASS,
    );
    let big = release(
        dir.path(),
        "keep4000",
        &Case::ws("ring").arg("-keep").arg("4000"),
        common::EXIT_PASS,
    );

    let (code, table, err) = compare(&[&small, &big]);
    assert_eq!(code, Some(1), "{table}{err}");
    let heap = row(&table, "heap_bytes");
    assert!(heap.contains("WORSE: bound +"), "{table}");
    assert!(
        row(&table, "heap_objects").contains("WORSE: bound +"),
        "{table}"
    );

    let (code, table, err) = compare(&[&big, &small]);
    assert_eq!(code, Some(0), "{table}{err}");
    assert!(row(&table, "heap_bytes").contains("bound -"), "{table}");

    // The tolerance is the knob: allowing 300% lets a doubled bound pass.
    let (code, table, _) = compare(&[&small, &big, &"--tolerance", &"300"]);
    assert_eq!(code, Some(0), "{table}");
    assert!(table.contains("tolerance 300%"), "{table}");
}
