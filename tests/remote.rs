//! Remote targets, end to end with the real binary.
//!
//! Across a network: the leaky and the fixed chat hub (scenarios/chathub)
//! run in one network namespace, leakbench in another, on a private bridge
//! in 198.18.0.0/24 with no default route (tests/netns). With
//! `--allow-remote` the verdicts and the top suspect are those of the local
//! runs in tests/e2e.rs; without it, or when a name resolves outside what
//! was allowed, the run is an error (exit 2) that names the flag. These
//! tests need root for the namespaces and say so when skipped.
//!
//! On loopback: a target that starts refusing sessions mid-run has its load
//! stopped, and the run ends inconclusive (exit 3) with the ratio and the
//! causes first.

mod common;
mod netns;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{
    EXIT_ERROR, EXIT_INCONCLUSIVE, EXIT_LEAK, EXIT_PASS, Outcome, free_port, go_targets,
    run_command, run_scenario_text, serial,
};

/// Where the hub listens inside its namespace (its own network stack, so
/// no port is shared with anything else on this machine).
const HUB_PORT: u16 = 8080;

/// Longest wait for the hub to listen after it starts.
const HUB_READY: Duration = Duration::from_secs(15);

/// A chat hub running inside a namespace; killed and reaped when dropped
/// (the namespace's own drop kills whatever is left in it too).
struct Hub(Child);

impl Hub {
    /// Starts the hub (`-fixed` when `fixed`) on `host`'s address and waits
    /// until it listens.
    fn start(host: &netns::Host, fixed: bool) -> Hub {
        let mut cmd = host.command(go_targets().join("chathub"));
        cmd.args(["-addr", &format!("{}:{HUB_PORT}", host.addr)]);
        if fixed {
            cmd.arg("-fixed");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chathub in its namespace");
        let hub = Hub(child);
        assert!(
            host.wait_tcp(HUB_PORT, HUB_READY),
            "chathub did not listen on {}:{HUB_PORT} within {HUB_READY:?}",
            host.addr
        );
        hub
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The e2e chat hub scenario (tests/common `Case::ws("chathub")`: 200
/// sessions, each sends `hello` and waits for it back, defaults otherwise),
/// aimed at `host` with no command: a remote target is started by whoever
/// runs it.
fn hub_scenario(host: &str) -> String {
    format!(
        "name = \"chathub remote\"\n\n[target]\nurl = \"ws://{host}:{HUB_PORT}/ws\"\n\
         pprof = \"http://{host}:{HUB_PORT}/debug/pprof\"\n\n[load]\nsessions = 200\n\n\
         [[load.steps]]\nsend = \"hello\"\n\n[[load.steps]]\nexpect = \"hello\"\n"
    )
}

/// Runs `leakbench run SCENARIO --out OUT ARGS...` inside `from`.
fn run_in(from: &netns::Host, scenario: &str, args: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, scenario).expect("write scenario");
    let out = dir.path().join("out");
    let mut cmd = from.command(env!("CARGO_BIN_EXE_leakbench"));
    cmd.arg("run").arg(&path).arg("--out").arg(&out).args(args);
    let mut outcome = run_command(cmd, &out);
    outcome.scenario = scenario.to_owned();
    outcome
}

/// The one stderr line of an error run, checked to be an error.
fn assert_error_line(run: &Outcome, says: &str) {
    assert_eq!(run.code, Some(EXIT_ERROR), "{}", run.context());
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("leakbench: error: "))
        .unwrap_or_else(|| panic!("no error line\n{}", run.context()));
    assert!(line.contains(says), "expected {says:?}\n{}", run.context());
    assert!(!run.stdout.contains("LEAK") && !run.stdout.contains("PASS"));
}

fn assert_remote_in_report(run: &Outcome, allowed: &str) {
    let remote = &run.report()["remote"];
    assert_eq!(remote["allowed"][0], allowed, "{}", run.context());
    assert!(
        run.stdout
            .contains(&format!("remote hosts allowed: {allowed}")),
        "the summary names the allowed hosts\n{}",
        run.context()
    );
}

#[test]
fn remote_leaky_hub_by_name_leaks_with_its_writepump() {
    let Some(mut net) = netns::Net::new("rleak") else {
        return;
    };
    go_targets();
    let _one = serial();
    let hub_host = net.host("hub", 2);
    let bench = net.host("bench", 3);
    // The name resolves, in leakbench's namespace only, to the hub.
    bench.hosts_file(&format!(
        "127.0.0.1 localhost\n{} chat.test\n",
        hub_host.addr
    ));
    let _hub = Hub::start(&hub_host, false);
    let allowed = hub_host.addr.to_string();
    let run = run_in(
        &bench,
        &hub_scenario("chat.test"),
        &["--allow-remote", &allowed],
    );
    run.assert_verdict(EXIT_LEAK, "leak");
    run.assert_suspect("main.(*client).writePump");
    assert_remote_in_report(&run, &allowed);
    // The name was pinned once, to the address the hosts file gave it.
    assert_eq!(
        run.report()["remote"]["pinned"]["chat.test"][0],
        allowed,
        "{}",
        run.context()
    );
    assert!(
        run.stderr
            .contains(&format!("pinned: chat.test = {allowed}")),
        "the banner names the pin\n{}",
        run.context()
    );
}

#[test]
fn remote_fixed_hub_passes() {
    let Some(mut net) = netns::Net::new("rpass") else {
        return;
    };
    go_targets();
    let _one = serial();
    let hub_host = net.host("hub", 2);
    let bench = net.host("bench", 3);
    let _hub = Hub::start(&hub_host, true);
    let allowed = hub_host.addr.to_string();
    let run = run_in(
        &bench,
        &hub_scenario(&allowed),
        &["--allow-remote", &allowed],
    );
    run.assert_verdict(EXIT_PASS, "pass");
    assert_remote_in_report(&run, &allowed);
}

#[test]
fn remote_hosts_need_the_flag_and_names_must_resolve_inside_it() {
    let Some(mut net) = netns::Net::new("rflag") else {
        return;
    };
    go_targets();
    let hub_host = net.host("hub", 2);
    let bench = net.host("bench", 3);
    bench.hosts_file(&format!(
        "127.0.0.1 localhost\n{} chat.test\n198.18.0.9 elsewhere.test\n",
        hub_host.addr
    ));
    let _hub = Hub::start(&hub_host, false);
    let addr = hub_host.addr.to_string();

    // No flag: exit 2, and the flag to add.
    let run = run_in(&bench, &hub_scenario(&addr), &[]);
    assert_error_line(
        &run,
        &format!(
            "target.url: host `{addr}` is not a loopback address; to drive load and probes at \
             it, add `--allow-remote {addr}` to the command line"
        ),
    );
    assert!(run.report.is_err(), "nothing ran, so no report");

    // A name whose address is outside the allowed set: refused at run
    // start, before any connection.
    let run = run_in(
        &bench,
        &hub_scenario("elsewhere.test"),
        &["--allow-remote", &addr],
    );
    assert_error_line(
        &run,
        &format!(
            "host `elsewhere.test` resolves to 198.18.0.9, which is not a loopback address and \
             not in the allowed set (--allow-remote {addr}); to drive load and probes at it, add \
             `--allow-remote 198.18.0.9`"
        ),
    );

    // A name is not allowed by allowing another name.
    let run = run_in(
        &bench,
        &hub_scenario("chat.test"),
        &["--allow-remote", "elsewhere.test"],
    );
    assert_error_line(
        &run,
        "target.url: host `chat.test` is not a loopback address",
    );
}

/// benchsrv with `flags` (e.g. refusing a share of websocket upgrades), with
/// `load` added to `[load]`.
fn benchsrv_scenario(flags: &[&str], load: &str) -> String {
    let port = free_port();
    let flags: String = flags.iter().map(|f| format!(", \"{f}\"")).collect();
    format!(
        "[target]\nurl = \"ws://127.0.0.1:{port}/ws\"\ncommand = [\"{}\", \"-addr\", \
         \"127.0.0.1:{port}\"{flags}]\n[load]\n{load}\n\
         [[load.steps]]\nsend = \"hi\"\n[[load.steps]]\nexpect = \"hi\"\n[settle]\ntimeout = \"10s\"\n",
        go_targets().join("benchsrv").display()
    )
}

#[test]
fn a_target_that_starts_failing_has_its_load_stopped_and_the_run_is_inconclusive() {
    let _one = serial();
    // The warm-up's 400 sessions and the first 50 of cycle 1 are served,
    // then every upgrade is refused: the failed share passes a half once
    // about 100 of the cycle's 400 have started (a second's worth at 400 a
    // second), and the rest are never started.
    let out = run_scenario_text(&benchsrv_scenario(
        &["-fail-after", "450"],
        "sessions = 400\nconcurrency = 20\nrate = 400",
    ));
    assert_eq!(out.code, Some(EXIT_INCONCLUSIVE), "{}", out.context());
    let report = out.report();
    assert_eq!(report["status"], "complete", "{}", out.context());
    assert_eq!(report["verdict"], "inconclusive", "{}", out.context());
    let first = report["reasons"][0].as_str().unwrap_or_default();
    assert!(
        first.starts_with("the run was stopped during cycle 1/3: "),
        "{}",
        out.context()
    );
    assert!(
        first.contains("above load.abort_failure_ratio 0.5") && first.contains("handshake"),
        "{}",
        out.context()
    );
    // `N of M started sessions`: stopped well before the cycle's 400.
    let started: u64 = first
        .split(" of ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no started count in {first:?}"));
    assert!(
        (100..300).contains(&started),
        "started {started}\n{}",
        out.context()
    );
    assert!(
        out.stderr
            .contains("stopped: the run was stopped during cycle 1/3"),
        "{}",
        out.context()
    );
    assert!(report["suspects"].as_array().is_some_and(Vec::is_empty));
}

#[test]
fn failures_below_the_abort_ratio_do_not_stop_the_load() {
    let _one = serial();
    // A tenth refused: past max_failure_ratio (inconclusive at the end),
    // but not past the abort, so every cycle runs all its sessions.
    let out = run_scenario_text(&benchsrv_scenario(
        &["-reject-percent", "10"],
        "sessions = 100\ncycles = 2",
    ));
    assert_eq!(out.code, Some(EXIT_INCONCLUSIVE), "{}", out.context());
    let report = out.report();
    let first = report["reasons"][0].as_str().unwrap_or_default();
    assert!(!first.contains("abort_failure_ratio"), "{}", out.context());
    let phases = report["phases"].as_array().cloned().unwrap_or_default();
    assert_eq!(phases.len(), 3, "{}", out.context());
    for p in &phases {
        assert_eq!(p["load"]["started"], 100, "{}", out.context());
    }
}
