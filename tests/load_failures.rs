//! The inconclusive-on-failed-load rule, end to end: the real `leakbench`
//! binary against tests/targets/benchsrv, a clean service that refuses a
//! fixed share of upgrades or requests (`-reject-percent`). More failed
//! sessions than `max_failure_ratio` must make the verdict inconclusive
//! (exit 3) with a reason naming the share and the cause; fewer must not.

mod common;

use common::{EXIT_PASS, free_port, go_targets, run_scenario_text, serial};

/// Exit code of an inconclusive run.
const EXIT_INCONCLUSIVE: i32 = leakbench::exit::INCONCLUSIVE as i32;

/// A benchsrv scenario refusing `percent` % of sessions; `load` is added to
/// the `[load]` table.
fn scenario(percent: u32, websocket: bool, load: &str) -> String {
    let port = free_port();
    let program = go_targets().join("benchsrv");
    let (url, steps) = if websocket {
        (
            format!("ws://127.0.0.1:{port}/ws"),
            "[[load.steps]]\nsend = \"hi\"\n[[load.steps]]\nexpect = \"hi\"\n",
        )
    } else {
        (format!("http://127.0.0.1:{port}/hello"), "")
    };
    format!(
        "[target]\nurl = \"{url}\"\ncommand = [\"{}\", \"-addr\", \"127.0.0.1:{port}\", \
         \"-reject-percent\", \"{percent}\"]\n[load]\nsessions = 200\ncycles = 2\n{load}\n{steps}\
         [settle]\ntimeout = \"10s\"\n",
        program.display()
    )
}

#[test]
fn refused_upgrades_above_the_limit_make_the_run_inconclusive() {
    let _one = serial();
    let out = run_scenario_text(&scenario(5, true, ""));
    assert_eq!(out.code, Some(EXIT_INCONCLUSIVE), "{}", out.context());
    let report = out.report();
    assert_eq!(report["verdict"], "inconclusive", "{}", out.context());
    let reasons = report["reasons"].to_string();
    // 10 of every 200 sessions, in each of the two measured cycles.
    assert!(
        reasons.contains("20 of 400 sessions failed (5.0%, above 1.0%"),
        "{}",
        out.context()
    );
    assert!(reasons.contains("handshake"), "{}", out.context());
    // The counts per cause are in the report, per cycle.
    let cycle = &report["phases"][1]["load"];
    assert_eq!(cycle["failures"]["handshake"], 10, "{}", out.context());
    assert!(
        cycle["failure_examples"][0]
            .as_str()
            .unwrap()
            .contains("503"),
        "{}",
        out.context()
    );
}

#[test]
fn refused_requests_above_the_limit_make_the_run_inconclusive() {
    let _one = serial();
    let out = run_scenario_text(&scenario(3, false, "requests = 1"));
    assert_eq!(out.code, Some(EXIT_INCONCLUSIVE), "{}", out.context());
    let reasons = out.report()["reasons"].to_string();
    assert!(
        reasons.contains("12 of 400 sessions failed"),
        "{}",
        out.context()
    );
    assert!(reasons.contains("bad_status"), "{}", out.context());
}

#[test]
fn failures_within_the_allowed_share_still_give_a_verdict() {
    let _one = serial();
    let out = run_scenario_text(&scenario(5, true, "max_failure_ratio = 0.1"));
    assert_eq!(out.code, Some(EXIT_PASS), "{}", out.context());
    assert_eq!(out.report()["verdict"], "pass", "{}", out.context());
}
