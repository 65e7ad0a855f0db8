//! The harness does not grow: over a 50-cycle run against a clean target,
//! leakbench's own resident memory at cycle 50 is within a small margin of
//! what it was at cycle 10. Synchronised on leakbench's progress lines on
//! stderr ("cycle 10/50: ... sessions done"), never on sleeps.
//!
//! `cargo test --release --test load_rss` (about two minutes).

#[allow(dead_code)]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, go_targets, serial};

const CYCLES: u32 = 50;
/// Cycle at which the harness is warm (allocator arenas, histograms, pools).
const EARLY: u32 = 10;
/// Longest the run may take before the test gives up.
const DEADLINE: Duration = Duration::from_secs(900);
/// Growth allowed between the early and the late sample: allocator noise,
/// not a per-cycle cost (a 1 KiB-per-session leak would add 4 MiB here).
const MARGIN_KIB: u64 = 1536;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn leakbench_rss_stays_flat_over_fifty_cycles() {
    let _one = serial();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.toml");
    std::fs::write(
        &path,
        format!(
            "[target]\nurl = \"ws://127.0.0.1:{port}/ws\"\n\
             command = [\"{}\", \"-addr\", \"127.0.0.1:{port}\"]\n\
             [load]\nsessions = 100\nwarmup = 1\ncycles = {CYCLES}\n\
             [[load.steps]]\nsend = \"hi {{{{session}}}}\"\n[[load.steps]]\nexpect = \"hi\"\n\
             [settle]\ntimeout = \"5s\"\n",
            go_targets().join("benchsrv").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakbench"))
        .arg("run")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let start = Instant::now();
    let (mut early, mut late) = (None, None);
    let early_mark = format!("cycle {EARLY}/{CYCLES}: ");
    let late_mark = format!("cycle {CYCLES}/{CYCLES}: ");
    // Bounded by the child's output: it ends when leakbench exits.
    for line in lines.map_while(Result::ok) {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("the run took longer than {DEADLINE:?}");
        }
        if early.is_none() && line.contains(&early_mark) && line.contains("sessions done") {
            early = Some(rss_kib(pid));
        }
        if late.is_none() && line.contains(&late_mark) && line.contains("sessions done") {
            late = Some(rss_kib(pid));
        }
    }
    let status = child.wait().unwrap();
    let (early, late) = (early.expect("saw cycle 10"), late.expect("saw cycle 50"));
    eprintln!("leakbench RSS: {early} KiB at cycle {EARLY}, {late} KiB at cycle {CYCLES}");
    assert!(status.code() == Some(0), "run failed: {status:?}");
    assert!(
        late <= early + MARGIN_KIB,
        "leakbench grew from {early} KiB to {late} KiB over {} cycles",
        CYCLES - EARLY
    );
}
