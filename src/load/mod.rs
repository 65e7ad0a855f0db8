//! Load: open a cycle's sessions against the target, run their steps, hold,
//! close them as the scenario says, and report what happened.
//!
//! INTERFACE STUB: replaced by the load engine.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::scenario::{Load, Target};

/// Latency percentiles of one kind of operation in one cycle, in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencySummary {
    /// Operations measured.
    pub count: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Slowest, µs.
    pub max_us: u64,
}

/// What one cycle of load did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CycleLoad {
    /// Sessions started.
    pub started: u64,
    /// Sessions that ran every step and closed as specified.
    pub completed: u64,
    /// Sessions that failed.
    pub failed: u64,
    /// Failed sessions by cause (`refused`, `reset`, `timeout`, `bad_status`,
    /// `expect_missed`, `protocol`, ...).
    pub failures: BTreeMap<String, u64>,
    /// A few distinct failure messages, for the person reading the report.
    pub failure_examples: Vec<String>,
    /// TCP connect time.
    pub connect: LatencySummary,
    /// Websocket handshake, or HTTP time to first response byte.
    pub handshake: LatencySummary,
    /// Websocket send-to-expected-reply round trips.
    pub round_trip: LatencySummary,
    /// HTTP request latency.
    pub request: LatencySummary,
    /// Wall time of the cycle, seconds.
    pub elapsed_s: f64,
}

/// Runs one cycle: `load.sessions` sessions, at most `load.concurrency` at
/// once, each closed as `load.close` says; returns once every session is
/// closed (leakbench holds no connection to the target afterwards).
pub async fn run_cycle(target: &Target, load: &Load) -> CycleLoad {
    let _ = (target, load, Duration::ZERO);
    unimplemented!("load engine")
}
