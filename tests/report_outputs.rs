//! Every output of a leaking run, checked with the tools that consume it:
//! the real `leakbench run --out DIR` against the leaky chat hub
//! (scenarios/chathub, one writePump goroutine per websocket client), once
//! per test run (see `run`), then
//! - report.json against schema/report.v1.schema.json,
//! - junit.xml through an XML parser,
//! - diff-goroutine.pb.gz and diff-heap.pb.gz through `go tool pprof -top`,
//! - report.html through headless Chromium,
//! - summary.md and the terminal summary read as text.

mod common;
mod report_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{Case, EXIT_LEAK, Outcome};
use leakbench::report::html::{GOROUTINE_COLOUR, HEAP_COLOUR};
use report_support::{
    assert_charts_in_dom, assert_valid_report, count_colour, decode_png, parse_junit,
    render_in_chromium,
};
use serde_json::Value;

/// The leaking function of the chat hub.
const LEAKER: &str = "main.(*client).writePump";

/// Every file a complete run writes to --out.
const FILES: [&str; 12] = [
    "report.json",
    "report.html",
    "junit.xml",
    "summary.md",
    "heap-base.pb.gz",
    "heap-final.pb.gz",
    "goroutine-base.pb.gz",
    "goroutine-final.pb.gz",
    "goroutine-base.txt",
    "goroutine-final.txt",
    "diff-heap.pb.gz",
    "diff-goroutine.pb.gz",
];

struct Run {
    outcome: Outcome,
    out: PathBuf,
}

/// The one leaking run all tests here read (the first test to ask runs it).
///
/// Under `cargo test` the tests of this file share one process, and so the
/// run. Under `cargo nextest run` each test is a process of its own, so the
/// run is shared through a folder instead: target/tmp/report_outputs/KEY,
/// KEY naming this nextest run (`NEXTEST_RUN_ID`) or, outside nextest, this
/// process. The first test to take the folder's lock runs leakbench and
/// saves what it printed beside `out/`; the others wait on the lock (nextest
/// runs them one at a time anyway, in the report-outputs test group of
/// .config/nextest.toml) and read the same run back. Folders of earlier
/// runs are removed.
fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        common::go_targets();
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_outputs");
        std::fs::create_dir_all(&root).expect("create test folder");
        let _shared = common::lock_exclusive(&root.join(".lock"));
        let key = std::env::var("NEXTEST_RUN_ID").map_or_else(
            |_| format!("process-{}", std::process::id()),
            |id| format!("nextest-{id}"),
        );
        for entry in std::fs::read_dir(&root)
            .expect("read test folder")
            .flatten()
        {
            if entry.path().is_dir() && entry.file_name() != key.as_str() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(&key);
        let out = dir.join("out");
        let saved = dir.join("outcome.json");
        let outcome = common::load_outcome(&saved, &out).unwrap_or_else(|| {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create test folder");
            let _one_at_a_time = common::serial();
            // A 10 s settle keeps the final wait before the verdict short; the
            // leak is one goroutine per session, far above any noise.
            let case = Case::ws("chathub").settle("10s");
            let scenario = dir.join("chathub.toml");
            let text = case.toml(common::free_port());
            std::fs::write(&scenario, &text).expect("write scenario");
            let mut outcome = common::run_leakbench(&scenario, &out);
            outcome.scenario = text;
            common::save_outcome(&outcome, &saved);
            outcome
        });
        outcome.assert_verdict(EXIT_LEAK, "leak");
        Run { outcome, out }
    })
}

fn read(name: &str) -> String {
    let path = run().out.join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\n{}",
            path.display(),
            run().outcome.context()
        )
    })
}

#[test]
fn leaking_run_writes_every_output_file() {
    let r = run();
    for name in FILES {
        let path = r.out.join(name);
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{name} missing: {e}\n{}", r.outcome.context()))
            .len();
        assert!(len > 0, "{name} is empty");
    }
    // report.json lists the profiles it wrote, and they are there.
    let profiles = r.outcome.report()["profiles"]
        .as_object()
        .expect("profiles")
        .clone();
    for file in profiles.values().filter_map(Value::as_str) {
        assert!(r.out.join(file).is_file(), "{file} listed but missing");
    }
    // The terminal summary points at the diff profile.
    assert!(
        r.outcome.stdout.contains("go tool pprof -top"),
        "{}",
        r.outcome.stdout
    );
}

#[test]
fn real_report_matches_schema() {
    assert_valid_report(run().outcome.report());
}

#[test]
fn junit_has_a_case_per_signal_and_per_suspect() {
    let report = run().outcome.report();
    let cases = parse_junit(&read("junit.xml"));
    let signals = report["signals"].as_array().expect("signals");
    let suspects = report["suspects"].as_array().expect("suspects");
    let signal_cases: Vec<_> = cases
        .iter()
        .filter(|c| c.classname == "leakbench.signal")
        .collect();
    assert_eq!(signal_cases.len(), signals.len(), "{cases:#?}");
    let suspect_cases = cases
        .iter()
        .filter(|c| c.classname.starts_with("leakbench.suspect."))
        .count();
    assert_eq!(suspect_cases, suspects.len(), "{cases:#?}");

    let goroutines = signal_cases
        .iter()
        .find(|c| c.name == "goroutines")
        .expect("a goroutines case");
    let (message, text) = goroutines.failure.as_ref().expect("goroutines failed");
    assert!(message.starts_with("goroutines: linear over"), "{message}");
    assert!(message.contains("1.00 a session"), "{message}");
    assert!(text.contains("baseline"), "{text}");
    let leaker = cases
        .iter()
        .find(|c| c.name == LEAKER)
        .unwrap_or_else(|| panic!("no case for {LEAKER}: {cases:#?}"));
    let (message, text) = leaker.failure.as_ref().expect("the suspect fails");
    assert!(message.contains("[chan receive]"), "{message}");
    assert!(text.contains(LEAKER), "{text}");
}

/// `go tool pprof -top FILE` as a person would type it.
fn pprof_top(file: &str, extra: &[&str]) -> String {
    let path = run().out.join(file);
    let out = Command::new("go")
        .args(["tool", "pprof", "-top"])
        .args(extra)
        .arg(&path)
        .env("GO111MODULE", "off")
        .output()
        .expect("run go tool pprof (apt-get install -y golang-go)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "go tool pprof -top {} failed ({}):\n{}{}",
        path.display(),
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The `-top` rows (after the `flat flat% ...` header), first column parsed.
fn top_rows(text: &str) -> Vec<(f64, &str)> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let flat = cols.first()?;
            let digits = flat.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            Some((digits.parse().ok()?, *cols.last()?))
        })
        .collect()
}

#[test]
fn go_tool_pprof_opens_the_diff_profiles() {
    let goroutine = pprof_top("diff-goroutine.pb.gz", &[]);
    let rows = top_rows(&goroutine);
    // writePump parks in a channel receive: in -top it is a cumulative
    // frame; with -cum sorting it leads the main package's frames.
    assert!(goroutine.contains(LEAKER), "{goroutine}");
    let by_cum = pprof_top("diff-goroutine.pb.gz", &["-cum"]);
    let first_main = top_rows(&by_cum)
        .into_iter()
        .map(|(_, f)| f)
        .find(|f| f.starts_with("main."));
    assert_eq!(first_main, Some(LEAKER), "{by_cum}");
    assert!(
        rows.iter().all(|(flat, _)| *flat >= 0.0),
        "the goroutine diff only grew:\n{goroutine}"
    );

    let heap = pprof_top("diff-heap.pb.gz", &["-sample_index=inuse_space"]);
    assert!(heap.contains("Type: inuse_space"), "{heap}");
    assert!(
        top_rows(&heap).iter().any(|(flat, _)| *flat > 0.0),
        "no growing heap site in the diff:\n{heap}"
    );
}

#[test]
fn html_report_of_a_real_run_renders_in_chromium() {
    let html = read("report.html");
    assert!(html.contains(LEAKER));
    let page = render_in_chromium(&run().out.join("report.html"));
    assert_charts_in_dom(&page.dom);
    let (_, _, pixels) = decode_png(&page.png);
    assert!(
        count_colour(&pixels, GOROUTINE_COLOUR) > 400,
        "goroutine charts not painted"
    );
    assert!(
        count_colour(&pixels, HEAP_COLOUR) > 400,
        "heap charts not painted"
    );
}

#[test]
fn summaries_name_the_leak() {
    let md = read("summary.md");
    assert!(md.contains("❌ leak"), "{md}");
    assert!(md.contains(LEAKER), "{md}");
    let stdout = &run().outcome.stdout;
    assert!(stdout.starts_with("LEAK  "), "{stdout}");
    assert!(stdout.contains("[chan receive]"), "{stdout}");
    // Not a terminal: no colour codes, and progress went to stderr as lines.
    assert!(!stdout.contains('\x1b'), "{stdout}");
    let stderr = &run().outcome.stderr;
    assert!(!stderr.contains('\x1b'), "{stderr}");
    assert!(stderr.contains("baseline:"), "{stderr}");
    assert!(stderr.contains("cycle 3/3: settled"), "{stderr}");
}
