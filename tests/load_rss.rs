//! The harness does not grow: over a 50-cycle run against a clean target,
//! leakbench's own resident memory over the last cycles is within a small
//! margin of what it was over cycles 6 to 15. Synchronised on leakbench's progress lines on
//! stderr ("cycle 10/50: ... sessions done"), never on sleeps.
//!
//! `cargo test --release --test load_rss` (under a minute; at most about
//! two, when every settle runs to its 2 s timeout).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, go_targets, serial};

const CYCLES: u32 = 50;
/// First cycle of the early window: the harness is warm by then (allocator
/// arenas, histograms, pools).
const EARLY: u32 = 6;
/// Cycles per window. RSS moves by a MiB or two between neighbouring cycles
/// (allocator arenas of the two worker threads hand pages back and take
/// them again), so each window is judged by its median, not one sample.
const WINDOW: u32 = 10;
/// Longest the run may take before the test gives up.
const DEADLINE: Duration = Duration::from_secs(900);
/// Growth allowed between the early and the late window: the report's own
/// data (a few KiB a cycle) and allocator noise, not a per-session cost (100
/// bytes kept per session would add 1.4 MiB between the windows, 1 KiB per
/// session 14 MiB). Measured: 8.1 to 8.9 MiB, up 0.7 MiB.
const MARGIN_KIB: u64 = 1024;

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
             [load]\nsessions = 400\nwarmup = 1\ncycles = {CYCLES}\n\
             [[load.steps]]\nsend = \"hi {{{{session}}}}\"\n[[load.steps]]\nexpect = \"hi\"\n\
             [settle]\ntimeout = \"2s\"\n",
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
    // RSS right after each measured cycle's load, by cycle number.
    let mut after = vec![None; CYCLES as usize + 1];
    // Bounded by the child's output: it ends when leakbench exits.
    for line in lines.map_while(Result::ok) {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("the run took longer than {DEADLINE:?}");
        }
        let Some(k) = line
            .split("] cycle ")
            .nth(1)
            .filter(|rest| rest.contains("sessions done"))
            .and_then(|rest| rest.split('/').next()?.parse::<usize>().ok())
        else {
            continue;
        };
        if k <= CYCLES as usize {
            after[k] = Some(rss_kib(pid));
        }
    }
    let status = child.wait().unwrap();
    let window = |from: u32| -> u64 {
        let mut v: Vec<u64> = (from..from + WINDOW)
            .map(|k| after[k as usize].unwrap_or_else(|| panic!("no progress line for cycle {k}")))
            .collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (early, late) = (window(EARLY), window(CYCLES + 1 - WINDOW));
    eprintln!("leakbench RSS per cycle (KiB): {after:?}");
    eprintln!(
        "leakbench RSS median: {early} KiB over cycles {EARLY}..{}, {late} KiB over the last {WINDOW}",
        EARLY + WINDOW - 1
    );
    assert!(status.code() == Some(0), "run failed: {status:?}");
    assert!(
        late <= early + MARGIN_KIB,
        "leakbench grew from {early} KiB to {late} KiB (medians) over {} cycles",
        CYCLES - WINDOW - EARLY + 1
    );
}
