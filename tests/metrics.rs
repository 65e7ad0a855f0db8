//! End-to-end tests of the signal sources beyond pprof: a Python service
//! judged through its Prometheus `/metrics` alone, and a Go service that
//! serves expvar but not pprof.
//!
//! tests/targets/pymetrics/server.py (needs prometheus_client, see
//! .ci/install) leaks one session record and one socket per `/visit`, or
//! none with `--fixed`; its /metrics has `process_open_fds` and the gauges
//! `app_tracked_sessions` and `app_session_bytes{kind=...}`.
//! tests/targets/expvaronly is a clean Go service with /debug/vars only:
//! through expvar no GC can be forced, so its heap figures can only be shown.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{EXIT_LEAK, EXIT_PASS, Outcome, toml_str};
use serde_json::Value;

/// Exit code of an inconclusive run.
const EXIT_INCONCLUSIVE: i32 = leakbench::exit::INCONCLUSIVE as i32;

/// Sessions per cycle, one request each.
const SESSIONS: u32 = 200;

/// The scenario for pymetrics on `port`, judged through /metrics only.
fn pymetrics_scenario(port: u16, fixed: bool) -> String {
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/targets/pymetrics/server.py");
    let mut argv = vec![
        toml_str(common::python_with_prometheus()),
        toml_str(&server.to_string_lossy()),
        toml_str("--port"),
        toml_str(&port.to_string()),
    ];
    if fixed {
        argv.push(toml_str("--fixed"));
    }
    let mut t = String::new();
    let name = if fixed {
        "pymetrics fixed"
    } else {
        "pymetrics"
    };
    writeln!(t, "name = {}", toml_str(name)).unwrap();
    writeln!(t, "\n[target]").unwrap();
    writeln!(t, "url = \"http://127.0.0.1:{port}/visit\"").unwrap();
    writeln!(t, "command = [{}]", argv.join(", ")).unwrap();
    writeln!(t, "metrics = \"http://127.0.0.1:{port}/metrics\"").unwrap();
    writeln!(t, "ready = \"http://127.0.0.1:{port}/healthz\"").unwrap();
    writeln!(t, "\n[load]\nsessions = {SESSIONS}\nrequests = 1").unwrap();
    // The service's own bookkeeping, deciding.
    writeln!(
        t,
        "\n[[signals]]\nmetric = 'app_tracked_sessions'\nname = \"tracked_sessions\"\nthreshold = 2"
    )
    .unwrap();
    // One series picked out by a label matcher, and the same metric summed
    // over its labels: shown only.
    writeln!(
        t,
        "\n[[signals]]\nmetric = 'app_session_bytes{{kind=\"notes\"}}'\nname = \"notes_bytes\"\n\
         unit = \"bytes\"\ndecides = false"
    )
    .unwrap();
    writeln!(
        t,
        "\n[[signals]]\nmetric = 'app_session_bytes'\nname = \"session_bytes\"\n\
         unit = \"bytes\"\ndecides = false"
    )
    .unwrap();
    // A counter grows with every request whether or not anything leaks:
    // shown, and must not decide.
    writeln!(
        t,
        "\n[[signals]]\nmetric = 'app_visits_total'\nname = \"visits\"\ndecides = false"
    )
    .unwrap();
    t
}

fn run_pymetrics(fixed: bool) -> Outcome {
    common::python_with_prometheus();
    let _one_at_a_time = common::serial();
    common::run_scenario_text(&pymetrics_scenario(common::free_port(), fixed))
}

/// The report's reasons and every signal's reason, as one lower-case text.
fn explanations(run: &Outcome) -> String {
    let report = run.report();
    let mut text = String::new();
    let reasons = report.get("reasons").and_then(Value::as_array);
    for r in reasons.into_iter().flatten().filter_map(Value::as_str) {
        writeln!(text, "{r}").unwrap();
    }
    let signals = report.get("signals").and_then(Value::as_array);
    for s in signals.into_iter().flatten() {
        if let Some(r) = s.get("reason").and_then(Value::as_str) {
            writeln!(text, "{r}").unwrap();
        }
    }
    text.to_lowercase()
}

#[test]
fn generated_metrics_scenarios_are_valid() {
    // Fails with "unknown field" until the scenario knows metrics, ready and
    // [[signals]]; then it guards the shape the runs below depend on.
    for fixed in [false, true] {
        let text = pymetrics_scenario(common::free_port(), fixed);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("metrics-scenario.toml");
        if let Err(e) = leakbench::scenario::Scenario::parse(&text, &path) {
            panic!("generated scenario is not valid: {e}\n{text}");
        }
    }
}

#[test]
fn pymetrics_leaks_sessions_and_fds_through_metrics_alone() {
    let run = run_pymetrics(false);
    run.assert_verdict(EXIT_LEAK, "leak");
    common::assert_signal(&run, "tracked_sessions", "leak", true);
    common::assert_signal(&run, "fds", "leak", true);
    // Exact counters: one record and one socket per session served.
    let sessions = common::sessions_served(&run);
    assert_eq!(
        common::signal_growth(&run, "tracked_sessions"),
        sessions,
        "{}",
        run.context()
    );
    let fds = common::signal_growth(&run, "fds");
    assert!(
        (sessions..sessions + 10.0).contains(&fds),
        "fds grew by {fds}, expected about {sessions}\n{}",
        run.context()
    );
    // The label matcher picks one series; without one, series are summed.
    let notes = common::signal(&run, "notes_bytes");
    assert_eq!(notes.get("unit").and_then(Value::as_str), Some("bytes"));
    assert_eq!(
        common::signal_growth(&run, "notes_bytes"),
        512.0 * sessions,
        "{}",
        run.context()
    );
    assert_eq!(
        common::signal_growth(&run, "session_bytes"),
        (512.0 + 64.0) * sessions,
        "{}",
        run.context()
    );
    // No pprof: nothing was asked for it.
    assert!(
        !run.stderr.contains("/debug/pprof"),
        "a metrics-only scenario must not probe pprof\n{}",
        run.context()
    );
}

#[test]
fn pymetrics_not_started_by_leakbench_leaks_on_process_open_fds() {
    // Without `command` or `pid` there is no /proc to read: `fds` can only
    // come from the target's own process_open_fds.
    let python = Path::new(common::python_with_prometheus());
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/targets/pymetrics/server.py");
    let _one_at_a_time = common::serial();
    let port = common::free_port();
    let _target = common::Spawned::start(
        python,
        &[&server.to_string_lossy(), "--port", &port.to_string()],
        "pymetrics (leaky) on",
    );
    let scenario = format!(
        "name = \"pymetrics, not started\"\n\n[target]\nurl = \"http://127.0.0.1:{port}/visit\"\n\
         metrics = \"http://127.0.0.1:{port}/metrics\"\nready = \"http://127.0.0.1:{port}/healthz\"\n\n\
         [load]\nsessions = {SESSIONS}\nrequests = 1\n"
    );
    let run = common::run_scenario_text(&scenario);
    run.assert_verdict(EXIT_LEAK, "leak");
    common::assert_signal(&run, "fds", "leak", true);
    let fds = common::signal_growth(&run, "fds");
    let sessions = common::sessions_served(&run);
    assert!(
        (sessions..sessions + 10.0).contains(&fds),
        "fds grew by {fds}, expected about {sessions}\n{}",
        run.context()
    );
    let signals = run.report().get("signals").and_then(Value::as_array);
    let from_proc = signals
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .find(|n| ["sockets", "threads"].contains(n));
    assert_eq!(
        from_proc,
        None,
        "no /proc signal without a started target or pid\n{}",
        run.context()
    );
}

#[test]
fn pymetrics_fixed_passes() {
    let run = run_pymetrics(true);
    run.assert_verdict(EXIT_PASS, "pass");
    common::assert_signal(&run, "tracked_sessions", "pass", true);
    common::assert_signal(&run, "fds", "pass", true);
    // A counter that grows every cycle is shown, and a signal that does not
    // decide leaves the verdict alone.
    let visits = common::signal(&run, "visits");
    assert_eq!(visits.get("decides").and_then(Value::as_bool), Some(false));
    assert_eq!(
        common::signal_growth(&run, "visits"),
        3.0 * f64::from(SESSIONS),
        "{}",
        run.context()
    );
}

#[test]
fn expvar_only_target_shows_heap_and_does_not_call_garbage_a_leak() {
    common::go_targets();
    let _one_at_a_time = common::serial();
    let port = common::free_port();
    let program = common::go_targets().join("expvaronly");
    let scenario = format!(
        "name = \"expvaronly\"\n\n[target]\nurl = \"http://127.0.0.1:{port}/visit\"\n\
         command = [{}, \"-addr\", \"127.0.0.1:{port}\"]\n\
         expvar = \"http://127.0.0.1:{port}/debug/vars\"\n\n\
         [load]\nsessions = {SESSIONS}\nrequests = 1\n",
        toml_str(&program.to_string_lossy())
    );
    let run = common::run_scenario_text(&scenario);
    // Pass on the exact counters /proc gives (fds), or an honest
    // inconclusive; never a leak from the load's uncollected garbage.
    assert!(
        matches!(run.code, Some(EXIT_PASS) | Some(EXIT_INCONCLUSIVE)),
        "expected pass or inconclusive\n{}",
        run.context()
    );
    let verdict = run.report().get("verdict").and_then(Value::as_str);
    assert_ne!(verdict, Some("leak"), "{}", run.context());
    // Heap figures from expvar are shown, not judged.
    common::assert_signal(&run, "fds", "pass", true);
    let heap = common::signal(&run, "heap_bytes");
    assert_eq!(
        heap.get("decides").and_then(Value::as_bool),
        Some(false),
        "expvar heap cannot be collected first, so it must not decide\n{}",
        run.context()
    );
    // And the report says why.
    let why = explanations(&run);
    assert!(
        why.contains("gc") || why.contains("garbage"),
        "the report must say that no GC could be forced through expvar\n{}",
        run.context()
    );
    assert!(
        !run.stderr.contains("/debug/pprof"),
        "an expvar-only scenario must not probe pprof\n{}",
        run.context()
    );
}
