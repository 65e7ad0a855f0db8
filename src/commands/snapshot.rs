//! `leakbench snapshot PPROF_URL -o DIR`: one settled measurement of a
//! running target, for manual before/after work: wait until the target
//! holds still, then the measurement protocol of a run ([`Probe::snapshot`]:
//! forced GCs, exact counters, heap and goroutine profiles, the
//! `goroutine?debug=2` dump). Two snapshots make a `leakbench diff`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::settle::{self, BASELINE_QUIET, Goal, Tolerance};
use crate::signal::{Unit, format_value, name};
use crate::sources::{Reading, Sources};

/// Files a snapshot writes, in the order listed to the user.
pub const FILES: [&str; 4] = [
    "heap.pb.gz",
    "goroutine.pb.gz",
    "goroutine.txt",
    "counters.json",
];

/// What counters.json holds.
#[derive(Debug, Serialize)]
struct Record<'a> {
    /// The pprof base URL.
    pprof: &'a str,
    /// When the measurement ended, seconds since the Unix epoch.
    taken_at_unix_s: u64,
    /// How the wait for a still target ended (`quiet` or `timeout`), if one ran.
    settled: Option<String>,
    /// The exact counters after forced GCs (and /proc with `--pid`), by name.
    counters: Reading,
    /// leakbench's version.
    leakbench: &'static str,
}

/// Takes the snapshot and writes [`FILES`] into `dir`; `settle_for` is the
/// longest wait for the target to hold still (zero: measure at once).
pub async fn execute(url: &str, dir: &Path, settle_for: Duration, pid: Option<u32>) -> Result<()> {
    let base = super::loopback_http(url.trim_end_matches('/'))?;
    let mut sources = Sources::pprof_only(&base, pid);
    let settled = if settle_for.is_zero() {
        None
    } else {
        // Still means no exact counter moved beyond one unit for the quiet window.
        let mut still: Tolerance = [
            (name::GOROUTINES.to_owned(), 1.0),
            (name::HEAP_BYTES.to_owned(), 64.0 * 1024.0),
            (name::HEAP_OBJECTS.to_owned(), 256.0),
        ]
        .into();
        if pid.is_some() {
            still.insert(name::FDS.to_owned(), 1.0);
        }
        let goal = Goal {
            baseline: None,
            quiet: Some(BASELINE_QUIET),
            steady: false,
            timeout: settle_for,
        };
        let s = settle::settle(&mut sources, goal, &still, |_| {}).await?;
        Some(format!("{:?}", s.ending).to_lowercase())
    };
    let (counters, snap) = sources.snapshot().await?;
    sources.close();
    let snap = snap.expect("pprof is the source");

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let record = Record {
        pprof: url,
        taken_at_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        settled,
        counters,
        leakbench: env!("CARGO_PKG_VERSION"),
    };
    let mut json = serde_json::to_string_pretty(&record).expect("counters serialize");
    json.push('\n');
    let contents: [&[u8]; 4] = [
        &snap.heap_profile,
        &snap.goroutine_profile,
        snap.goroutine_dump.as_bytes(),
        json.as_bytes(),
    ];
    for (name, bytes) in FILES.iter().zip(contents) {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let c = &snap.counters;
    let fds = record
        .counters
        .get(name::FDS)
        .map(|f| format!(", {f} open fds"))
        .unwrap_or_default();
    println!(
        "{url}: {} goroutines, heap {} in {} objects, stacks {}{fds} (after forced GCs{})",
        c.goroutines,
        format_value(c.heap_bytes as f64, Unit::Bytes),
        c.heap_objects,
        format_value(c.stack_bytes as f64, Unit::Bytes),
        record
            .settled
            .as_deref()
            .map(|s| format!(", settled: {s}"))
            .unwrap_or_default()
    );
    println!("  wrote {}: {}", dir.display(), FILES.join(", "));
    println!(
        "  compare with a later one: leakbench diff {0}/goroutine.pb.gz LATER/goroutine.pb.gz",
        dir.display()
    );
    Ok(())
}
