//! Scale, end to end, on the machine this runs on (two cores, 20,000 open
//! files per process): 15,000 websocket sessions open at once against the
//! example chat hub, started by the real `leakbench` binary. The fixed hub
//! must pass; the leaky one (a writePump goroutine per departed client)
//! must be reported as a leak.
//!
//! Run in release mode: `cargo test --release --test scale`. Each run takes
//! a minute or two; runs are serialised.

mod common;

use common::{EXIT_LEAK, EXIT_PASS, free_port, go_targets, run_scenario_text, serial};

/// Sessions per cycle, all open at once. leakbench and the hub each hold
/// one descriptor per session, each under its own 20,000 limit.
const SESSIONS: u32 = 15_000;

fn scenario(fixed: bool) -> String {
    let port = free_port();
    let program = go_targets().join("chathub");
    let flag = if fixed { ", \"-fixed\"" } else { "" };
    // No messages: the hub broadcasts every message to every client, which
    // at 15,000 clients is 225 million sends, a different benchmark. Each
    // session connects, stays for the hold (so all 15,000 overlap), and
    // leaves with a close handshake.
    format!(
        "name = \"chathub at 15k\"\n[target]\nurl = \"ws://127.0.0.1:{port}/ws\"\n\
         command = [\"{}\", \"-addr\", \"127.0.0.1:{port}\"{flag}]\n\
         [load]\nsessions = {SESSIONS}\nconcurrency = {SESSIONS}\nwarmup = 1\ncycles = 2\n\
         hold = \"3s\"\nstep_timeout = \"30s\"\nclose = \"graceful\"\n\
         [settle]\ntimeout = \"20s\"\n",
        program.display()
    )
}

/// Every session of every measured cycle ran (the load happened as
/// specified), over `count` of the scenario's cycles plus any escalation.
fn assert_all_sessions_ran(out: &common::Outcome, count: usize) {
    let phases = out.report()["phases"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let cycles: Vec<_> = phases.iter().filter(|p| p["kind"] == "cycle").collect();
    let own = cycles.iter().filter(|p| p["escalation"] == false).count();
    assert_eq!(own, count, "{}", out.context());
    for p in cycles {
        assert_eq!(p["load"]["completed"], p["sessions"], "{}", out.context());
        if p["escalation"] == false {
            assert_eq!(p["sessions"], SESSIONS, "{}", out.context());
        }
        eprintln!(
            "cycle: {} sessions in {:.1} s, connect p99 {} us, handshake p99 {} us",
            p["load"]["completed"],
            p["load"]["elapsed_s"].as_f64().unwrap_or(0.0),
            p["load"]["connect"]["p99_us"],
            p["load"]["handshake"]["p99_us"]
        );
    }
}

#[test]
fn fifteen_thousand_sessions_against_the_fixed_hub_pass() {
    let _one = serial();
    let start = std::time::Instant::now();
    let out = run_scenario_text(&scenario(true));
    eprintln!("fixed hub: {:.1} s", start.elapsed().as_secs_f64());
    out.assert_verdict(EXIT_PASS, "pass");
    assert_all_sessions_ran(&out, 2);
}

#[test]
fn fifteen_thousand_sessions_against_the_leaky_hub_report_a_leak() {
    let _one = serial();
    let start = std::time::Instant::now();
    let out = run_scenario_text(&scenario(false));
    eprintln!("leaky hub: {:.1} s", start.elapsed().as_secs_f64());
    out.assert_verdict(EXIT_LEAK, "leak");
    // Growth over the two cycles earns escalation (up to the 40,000-session
    // budget) before the verdict.
    assert_all_sessions_ran(&out, 2);
    out.assert_suspect("main.(*client).writePump");
}
