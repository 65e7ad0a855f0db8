//! The harness itself does not leak: 30 measured cycles against a clean Go
//! target leave leakbench's own RSS and open descriptors where they were
//! after the first few. Both are read from /proc/<leakbench pid>/ when its
//! progress line says a cycle's sessions are all done (every session closed,
//! the settle about to start), so the two readings are taken at the same
//! point of the protocol.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Measured cycles; `LEAKBENCH_SOAK_CYCLES` runs a longer soak by hand.
fn cycles() -> u32 {
    std::env::var("LEAKBENCH_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > EARLY + 1)
        .unwrap_or(30)
}
const SESSIONS: u32 = 50;
/// The early reading: after a few cycles, once allocator arenas, the
/// runtime's worker threads and the report's per-cycle vectors have their
/// working size.
const EARLY: u32 = 5;

/// RSS growth allowed between the readings. The report keeps a few hundred
/// bytes per cycle (phase and timeline entries); anything per session or
/// per message would show as megabytes over 24 cycles of 50 sessions.
const RSS_SLACK: u64 = 4 << 20;
/// Descriptor growth allowed: none but a probe reconnect in flight.
const FD_SLACK: usize = 2;

/// Longest wait for one progress line.
const LINE_DEADLINE: Duration = Duration::from_secs(120);

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .count()
}

#[test]
fn leakbench_memory_and_fds_stay_flat_over_many_cycles() {
    let _one_at_a_time = common::serial();
    let (cycles, late) = (cycles(), cycles() - 1);
    let port = common::free_port();
    let program = common::go_targets().join("careless");
    let scenario = format!(
        "[target]\nurl = \"http://127.0.0.1:{port}/hello\"\n\
         command = [{:?}, \"-addr\", \"127.0.0.1:{port}\"]\n\
         [load]\nsessions = {SESSIONS}\nwarmup = 1\ncycles = {cycles}\n\
         [settle]\ntimeout = \"5s\"\n",
        program.to_string_lossy()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, &scenario).expect("write scenario");
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakbench"))
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("out"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leakbench");
    let pid = child.id();
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut seen = Vec::new();
    let mut readings = Vec::new();
    for k in [EARLY, (EARLY + late) / 2, late] {
        let marker = format!("cycle {k}/{cycles}: {SESSIONS} sessions done");
        loop {
            let Ok(line) = lines.recv_timeout(LINE_DEADLINE) else {
                let _ = child.kill();
                panic!("no line {marker:?}\n{}", seen.join("\n"));
            };
            let hit = line.contains(&marker);
            seen.push(line);
            if hit {
                readings.push((rss_bytes(pid), fds(pid)));
                break;
            }
        }
    }
    while let Ok(line) = lines.recv_timeout(LINE_DEADLINE) {
        seen.push(line);
    }
    let status = child.wait().expect("wait");
    let context = seen.join("\n");
    assert_eq!(status.code(), Some(0), "a clean target passes\n{context}");

    println!("leakbench (RSS, fds) at cycles {EARLY}, middle, {late}: {readings:?}");
    let (early, last) = (readings[0], readings[2]);
    assert!(
        last.0 <= early.0 + RSS_SLACK,
        "leakbench's RSS grew from {} KiB to {} KiB between cycles {EARLY} and {late}\n{context}",
        early.0 / 1024,
        last.0 / 1024
    );
    assert!(
        last.1 <= early.1 + FD_SLACK,
        "leakbench's descriptors grew from {} to {} between cycles {EARLY} and {late}\n{context}",
        early.1,
        last.1
    );
}
