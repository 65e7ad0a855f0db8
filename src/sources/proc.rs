//! The /proc source: Linux's /proc/PID of the target, whenever its pid is
//! known: open descriptors by kind, RSS, threads.
//!
//! Open descriptors are exact and take part in the verdict like goroutines:
//! a socket left in CLOSE_WAIT shows here and nowhere in a heap profile. RSS
//! is shown only: the Go scavenger returns memory slowly.

use super::{Depth, Floors, Pending, Reading, Setup, SignalSpec, Source, done, fill};
use crate::signal::SourceKind;
use crate::signal::Unit::{Bytes, Count};
use crate::signal::name::*;

/// The /proc source of `setup`, if a pid is known.
pub(super) fn open(setup: &Setup<'_>) -> Option<Box<dyn Source>> {
    Some(Box::new(Proc { pid: setup.pid? }))
}

/// /proc/PID of one process.
struct Proc {
    pid: u32,
}

impl Source for Proc {
    fn kind(&self) -> SourceKind {
        SourceKind::Proc
    }

    fn open_file_limit(&self) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/limits", self.pid)).ok()?;
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }

    fn describe(&self) -> Option<String> {
        Some(format!("/proc/{}", self.pid))
    }

    fn signals(&self, f: &Floors) -> Vec<SignalSpec> {
        let proc = |name, unit, decides, floor| {
            SignalSpec::new(name, unit, decides, floor, SourceKind::Proc)
        };
        vec![
            proc(FDS, Count, true, f.fds),
            proc(SOCKETS, Count, false, f.fds),
            proc(PIPES, Count, false, f.fds),
            proc(OTHER_FDS, Count, false, f.fds),
            proc(RSS_BYTES, Bytes, false, f.bytes),
            proc(THREADS, Count, false, f.counts),
        ]
    }

    fn read<'a>(&'a mut self, _depth: Depth, r: &'a mut Reading) -> Pending<'a> {
        // A process that is gone reads as nothing; the caller notices the exit.
        if let Some(p) = read(self.pid) {
            insert_stats(&p, r);
        }
        done()
    }
}

/// The named values of `p`.
fn insert_stats(p: &ProcStats, r: &mut Reading) {
    fill(r, FDS, p.fds as f64);
    fill(r, SOCKETS, p.sockets as f64);
    fill(r, PIPES, p.pipes as f64);
    fill(r, OTHER_FDS, p.other_fds as f64);
    fill(r, RSS_BYTES, p.rss_bytes as f64);
    fill(r, THREADS, p.threads as f64);
}

/// A process's descriptors and memory at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ProcStats {
    /// Open file descriptors of every kind.
    fds: u64,
    /// Of which sockets.
    sockets: u64,
    /// Of which pipes.
    pipes: u64,
    /// Of which regular files and everything else (anon inodes, devices).
    other_fds: u64,
    /// Resident set size, bytes.
    rss_bytes: u64,
    /// OS threads.
    threads: u64,
}

/// Reads /proc/PID; `None` when the process is gone or /proc is unreadable.
fn read(pid: u32) -> Option<ProcStats> {
    let dir = std::path::Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let mut stats = parse_status(&status);
    for entry in std::fs::read_dir(dir.join("fd")).ok()?.flatten() {
        let link = std::fs::read_link(entry.path()).ok();
        let kind = link.as_deref().and_then(|l| l.to_str()).unwrap_or("");
        stats.fds += 1;
        if kind.starts_with("socket:") {
            stats.sockets += 1;
        } else if kind.starts_with("pipe:") {
            stats.pipes += 1;
        } else {
            stats.other_fds += 1;
        }
    }
    Some(stats)
}

/// RSS and thread count from the text of /proc/PID/status.
fn parse_status(text: &str) -> ProcStats {
    let mut stats = ProcStats::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("VmRSS:") => {
                let kib: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                stats.rss_bytes = kib * 1024;
            }
            Some("Threads:") => {
                stats.threads = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            }
            _ => {}
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_parsed() {
        let text = "Name:\tserver\nVmRSS:\t   10240 kB\nThreads:\t7\n";
        let s = parse_status(text);
        assert_eq!(s.rss_bytes, 10240 * 1024);
        assert_eq!(s.threads, 7);
    }

    /// Stats of a `sleep` child whose stdin is `stdin`; it inherits whatever
    /// descriptors the test runner leaks to children, the same for every call.
    fn child_stats(stdin: std::process::Stdio) -> ProcStats {
        use std::process::{Command, Stdio};
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sleep runs");
        // /proc is filled in at exec; poll (bounded) until the child runs sleep.
        let mut stats = None;
        for _ in 0..10_000 {
            let comm =
                std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default();
            if comm.trim() == "sleep" {
                stats = read(child.id());
                break;
            }
            std::thread::yield_now();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        stats.expect("child seen running sleep")
    }

    #[test]
    fn descriptors_are_counted_by_kind() {
        let null = child_stats(std::process::Stdio::null());
        let piped = child_stats(std::process::Stdio::piped());
        assert_eq!(piped.fds, null.fds, "{null:?} vs {piped:?}");
        assert_eq!(piped.pipes, null.pipes + 1, "{null:?} vs {piped:?}");
        assert_eq!(piped.other_fds + 1, null.other_fds, "{null:?} vs {piped:?}");
        assert_eq!(piped.fds, piped.sockets + piped.pipes + piped.other_fds);
        assert!(piped.rss_bytes > 0 && piped.threads == 1, "{piped:?}");
    }

    #[test]
    fn a_gone_process_reads_as_none() {
        assert_eq!(read(u32::MAX - 1), None);
    }

    #[test]
    fn stats_fill_every_declared_signal() {
        let p = ProcStats {
            fds: 5,
            sockets: 2,
            pipes: 1,
            other_fds: 2,
            rss_bytes: 4096,
            threads: 3,
        };
        let mut r = Reading::new();
        insert_stats(&p, &mut r);
        let floors = Floors {
            counts: 2.0,
            fds: 2.0,
            bytes: 65536.0,
            objects: 256.0,
        };
        let mut declared: Vec<String> = Proc { pid: 1 }
            .signals(&floors)
            .into_iter()
            .map(|s| s.name)
            .collect();
        declared.sort();
        assert_eq!(declared, r.keys().cloned().collect::<Vec<_>>());
        assert_eq!((r[FDS], r[RSS_BYTES], r[THREADS]), (5.0, 4096.0, 3.0));
    }
}
