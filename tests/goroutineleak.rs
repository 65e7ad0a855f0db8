//! Go's `goroutineleak` profile as a signal: against tests/targets/fanout,
//! built with Go 1.26 and GOEXPERIMENT=goroutineleakprofile, whose hedged
//! lookups strand the slower replica's goroutine on an unbuffered channel
//! nothing else holds. The runtime proves those goroutines leaked; leakbench
//! reads the profile at baseline and at every measurement, judges its total
//! like any exact counter, and names the stranded function first.
//!
//! Needs Go 1.26 at /usr/lib/go-1.26/bin/go (`.ci/install` installs it).

mod common;
mod report_support;

use common::{Case, EXIT_LEAK, EXIT_PASS, go_targets};
use report_support::assert_valid_report;
use serde_json::Value;

/// The fanout binary, or a panic saying how to get it built.
fn require_fanout() {
    let bin = go_targets().join("fanout");
    assert!(
        bin.exists(),
        "{} was not built: tests/targets/build.sh needs Go 1.26 at /usr/lib/go-1.26/bin/go \
         for GOEXPERIMENT=goroutineleakprofile; run .ci/install (as root) to install it",
        bin.display()
    );
}

#[test]
fn stranded_senders_are_a_proven_leak_named_first() {
    require_fanout();
    let run = Case::http("fanout", "/lookup?key=k{{session}}").run();
    run.assert_verdict(EXIT_LEAK, "leak");
    common::assert_signal(&run, "leaked_goroutines", "leak", true);
    // One stranded sender per request: 200 sessions of one request a cycle.
    let per_cycle = common::signal(&run, "leaked_goroutines")
        .get("per_cycle")
        .and_then(Value::as_f64)
        .unwrap_or_default();
    assert!(
        (190.0..=210.0).contains(&per_cycle),
        "leaked_goroutines grew {per_cycle} per cycle, expected about 200\n{}",
        run.context()
    );
    let report = run.report();
    assert_valid_report(report);
    let first = &report["suspects"][0];
    assert_eq!(
        first["kind"].as_str(),
        Some("goroutineleak"),
        "{}",
        run.context()
    );
    assert_eq!(
        first["function"].as_str(),
        Some("main.handleLookup.func1"),
        "{}",
        run.context()
    );
    for role in ["goroutineleak_base", "goroutineleak_final"] {
        assert!(
            report["profiles"].get(role).is_some(),
            "no {role} profile listed\n{}",
            run.context()
        );
    }
    assert!(
        report["sources"]
            .as_str()
            .is_some_and(|s| s.contains("goroutineleak")),
        "{}",
        run.context()
    );
}

#[test]
fn buffered_answers_leave_no_proven_leak() {
    require_fanout();
    let run = Case::http("fanout", "/lookup?key=k{{session}}")
        .arg("-fixed")
        .run();
    run.assert_verdict(EXIT_PASS, "pass");
    common::assert_signal(&run, "leaked_goroutines", "pass", true);
    assert_eq!(common::signal_growth(&run, "leaked_goroutines"), 0.0);
}
