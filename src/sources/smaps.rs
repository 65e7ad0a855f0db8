//! The smaps source: the target's anonymous memory from Linux's
//! `/proc/PID/smaps_rollup` (Linux 4.14 and later), whenever its pid is
//! known.
//!
//! `Anonymous:` is resident memory with no file behind it (heap, stacks,
//! runtime arenas): RSS without the mapped binary and files. It is shown
//! only, like RSS, as the Go scavenger returns memory slowly. A kernel
//! without the file, or one leakbench may not read, gives no value.

use super::{Depth, Floors, Pending, Reading, Setup, SignalSpec, Source, done, fill};
use crate::signal::name::ANON_BYTES;
use crate::signal::{SourceKind, Unit};

/// The smaps source of `setup`, if a pid is known.
pub(super) fn open(setup: &Setup<'_>) -> Option<Box<dyn Source>> {
    Some(Box::new(Smaps { pid: setup.pid? }))
}

/// /proc/PID/smaps_rollup of one process.
struct Smaps {
    pid: u32,
}

/// Anonymous bytes of `pid`; `None` when the file is missing or garbled.
fn read(pid: u32) -> Option<u64> {
    parse(&std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?)
}

/// The `Anonymous:` field of smaps_rollup text, kB converted to bytes.
fn parse(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Anonymous:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let kib: u64 = parts.next()?.parse().ok()?;
    (parts.next() == Some("kB")).then(|| kib * 1024)
}

impl Source for Smaps {
    fn kind(&self) -> SourceKind {
        SourceKind::Proc
    }

    /// The sources line names `/proc/PID` once, for the proc source.
    fn describe(&self) -> Option<String> {
        None
    }

    fn signals(&self, f: &Floors) -> Vec<SignalSpec> {
        vec![SignalSpec::new(
            ANON_BYTES,
            Unit::Bytes,
            false,
            f.bytes,
            SourceKind::Proc,
        )]
    }

    fn read<'a>(&'a mut self, _depth: Depth, r: &'a mut Reading) -> Pending<'a> {
        if let Some(bytes) = read(self.pid) {
            fill(r, ANON_BYTES, bytes as f64);
        }
        done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cat /proc/self/smaps_rollup` on a Linux 6 machine.
    const CAPTURED: &str = "\
562e92b65000-7ffc63887000 ---p 00000000 00:00 0                          [rollup]
Rss:                1636 kB
Pss:                 306 kB
Pss_Dirty:           112 kB
Pss_Anon:            112 kB
Pss_File:            194 kB
Pss_Shmem:             0 kB
Shared_Clean:       1484 kB
Shared_Dirty:          0 kB
Private_Clean:        40 kB
Private_Dirty:       112 kB
Referenced:         1636 kB
Anonymous:           112 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
";

    #[test]
    fn anonymous_kilobytes_become_bytes() {
        assert_eq!(parse(CAPTURED), Some(112 * 1024));
        // AnonHugePages and Pss_Anon are other fields.
        assert_eq!(parse("AnonHugePages: 2048 kB\nAnonymous: 0 kB\n"), Some(0));
    }

    #[test]
    fn garbled_or_missing_text_gives_nothing() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("Rss: 1636 kB\nAnonHugePages: 0 kB\n"), None);
        assert_eq!(parse("Anonymous: lots kB\n"), None);
        assert_eq!(parse("Anonymous: 112\n"), None);
        assert_eq!(parse("Anonymous: 112 MB\n"), None);
        assert_eq!(parse("<html>Anonymous</html>"), None);
        assert_eq!(read(u32::MAX - 1), None, "no such process");
    }

    #[tokio::test]
    async fn the_signal_is_shown_only() {
        let floors = Floors {
            counts: 2.0,
            fds: 2.0,
            bytes: 65536.0,
            objects: 256.0,
        };
        let specs = Smaps { pid: 1 }.signals(&floors);
        assert_eq!(specs.len(), 1);
        let s = &specs[0];
        assert_eq!((s.name.as_str(), s.unit, s.decides), (ANON_BYTES, Unit::Bytes, false));
        assert_eq!((s.floor, s.source), (65536.0, SourceKind::Proc));
        let mut r = Reading::new();
        let mut own = Smaps {
            pid: std::process::id(),
        };
        own.read(Depth::Sample, &mut r).await.unwrap();
        // A kernel before 4.14 has no smaps_rollup: nothing to check there.
        if std::path::Path::new("/proc/self/smaps_rollup").exists() {
            assert!(r[ANON_BYTES] > 0.0, "{r:?}");
        }
    }
}
