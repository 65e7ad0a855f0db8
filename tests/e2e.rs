//! End-to-end tests: the real `leakbench run` against the real Go targets in
//! tests/targets/ and scenarios/, started by leakbench from the scenario's
//! `command`.
//!
//! Each leaky target must give exit code 1, verdict "leak" and name its
//! leaking function among the first suspects; each fixed twin and each trap
//! (LEAKS.md, "things that look like leaks") must give exit code 0 and
//! verdict "pass". The Go targets are built once per test process by
//! tests/targets/build.sh; without Go the tests fail and say why.
//!
//! Runs are serialised (see `common::serial`), so the whole file takes
//! minutes, not seconds.

mod common;

use common::{Case, Close, EXIT_ERROR, EXIT_LEAK, EXIT_PASS};

// ---- the example service: scenarios/chathub -------------------------------

#[test]
fn chathub_leaks_writepump_goroutines() {
    let run = Case::ws("chathub").run();
    run.assert_verdict(EXIT_LEAK, "leak");
    run.assert_suspect("main.(*client).writePump");
}

#[test]
fn chathub_fixed_passes() {
    Case::ws("chathub")
        .arg("-fixed")
        .run()
        .assert_verdict(EXIT_PASS, "pass");
}

#[test]
fn shipped_scenarios_are_valid() {
    // The shipped scenarios name ../target/go/chathub, which validation
    // requires to exist.
    common::go_targets();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for (file, fixed) in [("chat-hub.toml", false), ("chat-hub-fixed.toml", true)] {
        let path = dir.join(file);
        let s = leakbench::scenario::Scenario::load(&path)
            .unwrap_or_else(|e| panic!("{} is not valid: {e}", path.display()));
        assert_eq!(s.load.sessions, 200, "{file}");
        let argv = s.target.command.expect("scenario starts its service");
        assert!(argv[0].ends_with("target/go/chathub"), "{file}: {argv:?}");
        assert_eq!(
            argv.iter().any(|a| a == "-fixed"),
            fixed,
            "{file}: {argv:?}"
        );
    }
}

#[test]
fn generated_scenarios_are_valid() {
    // Every shape of scenario the cases below write must pass leakbench's
    // own validation, or a run would fail as an error instead of a verdict.
    let cases = [
        Case::ws("abruptonly").arg("-fixed").close(Close::Abrupt),
        Case::ws("deferred").arg("-delay").arg("12s").settle("20s"),
        Case::http("smallleak", "/visit"),
    ];
    for case in cases {
        let text = case.toml(common::free_port());
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e-scenario.toml");
        if let Err(e) = leakbench::scenario::Scenario::parse(&text, &path) {
            panic!("generated scenario is not valid: {e}\n{text}");
        }
    }
}

// ---- heap leaks without goroutines ----------------------------------------

#[test]
fn sessionmap_leaks_sessions_from_registry() {
    let run = Case::ws("sessionmap").run();
    run.assert_verdict(EXIT_LEAK, "leak");
    run.assert_suspect("main.newSession");
}

#[test]
fn sessionmap_fixed_passes() {
    Case::ws("sessionmap")
        .arg("-fixed")
        .run()
        .assert_verdict(EXIT_PASS, "pass");
}

#[test]
fn smallleak_leaks_audit_records() {
    // About 1 KiB per request is 200 KiB per cycle: under one heap-profile
    // sample per cycle at Go's default 512 KiB sampling rate. leakbench
    // starts targets with memprofilerate=4096, which is what lets it name
    // recordVisit with default settings; the verdict reads exact counters.
    let run = Case::http("smallleak", "/visit").run();
    run.assert_verdict(EXIT_LEAK, "leak");
    run.assert_suspect("main.recordVisit");
}

#[test]
fn quarterleak_one_small_object_every_fourth_session_leaks() {
    // One 64-byte note every fourth visit: about 50 objects and 3 KiB per
    // 200-session cycle, under the old per-cycle floors. The retention
    // curve sees it rise a quarter of an object a session all the way
    // through escalation, and the fine heap sampling names the site.
    let run = Case::http("quarterleak", "/visit").run();
    run.assert_verdict(EXIT_LEAK, "leak");
    let objects = common::signal(&run, "heap_objects");
    assert_eq!(objects["finding"]["kind"], "leak", "{}", run.context());
    let rate = objects["finding"]["per_session"].as_f64().unwrap_or(0.0);
    assert!(
        (0.15..0.5).contains(&rate),
        "a quarter of an object a session, {rate} measured\n{}",
        run.context()
    );
    run.assert_suspect("main.rememberEveryFourth");
}

// ---- goroutine leaks ------------------------------------------------------

#[test]
fn respbody_leaks_persistconn_goroutines() {
    let run = Case::http("respbody", "/fetch").run();
    run.assert_verdict(EXIT_LEAK, "leak");
    run.assert_suspect("net/http.(*persistConn).readLoop");
}

#[test]
fn respbody_fixed_passes() {
    Case::http("respbody", "/fetch")
        .arg("-fixed")
        .run()
        .assert_verdict(EXIT_PASS, "pass");
}

#[test]
fn ctxleak_leaks_watchdeadline_goroutines() {
    let run = Case::http("ctxleak", "/work").run();
    run.assert_verdict(EXIT_LEAK, "leak");
    run.assert_suspect("main.watchDeadline");
}

#[test]
fn ctxleak_fixed_passes() {
    Case::http("ctxleak", "/work")
        .arg("-fixed")
        .run()
        .assert_verdict(EXIT_PASS, "pass");
}

// ---- a leak only an abrupt close reveals ----------------------------------

#[test]
fn abruptonly_graceful_close_passes() {
    Case::ws("abruptonly")
        .close(Close::Graceful)
        .run()
        .assert_verdict(EXIT_PASS, "pass");
}

#[test]
fn abruptonly_abrupt_close_leaks_keepalive() {
    let run = Case::ws("abruptonly").close(Close::Abrupt).run();
    run.assert_verdict(EXIT_LEAK, "leak");
    run.assert_suspect("main.(*session).keepalive");
}

#[test]
fn abruptonly_fixed_abrupt_close_passes() {
    Case::ws("abruptonly")
        .arg("-fixed")
        .close(Close::Abrupt)
        .run()
        .assert_verdict(EXIT_PASS, "pass");
}

// ---- traps: growth that is not a leak -------------------------------------

#[test]
fn bounded_cache_passes() {
    Case::ws("cache").run().assert_verdict(EXIT_PASS, "pass");
}

#[test]
fn ring_of_recent_sessions_passes_and_states_its_bound() {
    // The last 4,000 closed sessions, about 1 KiB each: a straight line
    // over the default three cycles (800 sessions with the warm-up), a
    // bound once escalation has served well past 4,000.
    let run = Case::ws("ring").run();
    run.assert_verdict(EXIT_PASS, "pass");
    let heap = common::signal(&run, "heap_bytes");
    assert_eq!(heap["finding"]["kind"], "bounded", "{}", run.context());
    let bound = heap["finding"]["bound"].as_f64().unwrap_or(0.0);
    assert!(
        (2.0e6..8.0e6).contains(&bound),
        "4,000 records of about 1 KiB, {bound} B measured\n{}",
        run.context()
    );
    let reasons = run.report()["reasons"].to_string();
    assert!(reasons.contains("retains at most"), "{}", run.context());
    run.assert_suspect("main.rememberClosed");
}

#[test]
fn sync_pool_passes() {
    Case::http("pool", "/render")
        .run()
        .assert_verdict(EXIT_PASS, "pass");
}

#[test]
fn sync_pool_passes_with_gc_off() {
    // GOGC=off: the target never collects on its own, so every byte of
    // garbage from the load stays until leakbench forces its GCs.
    Case::http("pool", "/render")
        .env("GOGC", "off")
        .run()
        .assert_verdict(EXIT_PASS, "pass");
}

#[test]
fn deferred_release_passes() {
    Case::ws("deferred").run().assert_verdict(EXIT_PASS, "pass");
}

#[test]
fn deferred_release_12s_window_within_20s_settle_passes() {
    Case::ws("deferred")
        .arg("-delay")
        .arg("12s")
        .settle("20s")
        .run()
        .assert_verdict(EXIT_PASS, "pass");
}

// ---- errors ---------------------------------------------------------------

#[test]
fn unreachable_target_is_an_error_naming_the_url() {
    let _one_at_a_time = common::serial();
    // Nothing listens here and the scenario has no command to start anything.
    let port = common::free_port();
    let scenario = format!(
        "[target]\nurl = \"http://127.0.0.1:{port}/nothing-here\"\n\n[load]\nsessions = 5\nrequests = 1\n"
    );
    let run = common::run_scenario_text(&scenario);
    assert_eq!(
        run.code,
        Some(EXIT_ERROR),
        "expected exit code 2 for an unreachable target\n{}",
        run.context()
    );
    let url = format!("127.0.0.1:{port}");
    assert!(
        run.stderr.contains(&url),
        "expected stderr to name {url}\n{}",
        run.context()
    );
}
