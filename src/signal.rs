//! The vocabulary every stage shares: what a signal is called, what unit its
//! values are in, and which source read it.
//!
//! Sources produce readings under these names, settle and the verdict judge
//! them, suspects and reports look them up. Names stay strings in a
//! [`Reading`](crate::sources::Reading) because user-named `[[signals]]`
//! join the standard ones; the standard names are the constants in [`name`].

use serde::Serialize;

/// The standard signal names, as they appear in report.json.
pub mod name {
    /// Live goroutines (pprof, else `go_goroutines`).
    pub const GOROUTINES: &str = "goroutines";
    /// Goroutines Go's `goroutineleak` profile proved leaked.
    pub const LEAKED_GOROUTINES: &str = "leaked_goroutines";
    /// Live heap bytes after forced GCs (pprof), or HeapAlloc without a GC.
    pub const HEAP_BYTES: &str = "heap_bytes";
    /// Live heap objects.
    pub const HEAP_OBJECTS: &str = "heap_objects";
    /// Open file descriptors.
    pub const FDS: &str = "fds";
    /// Goroutine stacks in use, bytes.
    pub const STACK_BYTES: &str = "stack_bytes";
    /// Heap spans in use, bytes.
    pub const HEAP_INUSE: &str = "heap_inuse";
    /// Memory obtained from the OS by the Go runtime, bytes.
    pub const SYS_BYTES: &str = "sys_bytes";
    /// Open sockets among the descriptors.
    pub const SOCKETS: &str = "sockets";
    /// Open pipes among the descriptors.
    pub const PIPES: &str = "pipes";
    /// Descriptors that are neither sockets nor pipes.
    pub const OTHER_FDS: &str = "other_fds";
    /// Resident set size, bytes.
    pub const RSS_BYTES: &str = "rss_bytes";
    /// OS threads.
    pub const THREADS: &str = "threads";
    /// Resident anonymous memory (no file behind it), bytes, from
    /// /proc/PID/smaps_rollup.
    pub const ANON_BYTES: &str = "anon_bytes";
}

/// The unit of a signal's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// A count of things (goroutines, descriptors, objects).
    Count,
    /// A size in bytes.
    Bytes,
}

impl Unit {
    /// The name used in report.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Bytes => "bytes",
        }
    }
}

/// Where a signal was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Go's net/http/pprof endpoints (forced GCs possible).
    Pprof,
    /// A Prometheus text exposition.
    Metrics,
    /// Go's expvar `/debug/vars`.
    Expvar,
    /// The target's `/proc/PID`.
    Proc,
}

impl SourceKind {
    /// The name used in report.json and progress lines.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Pprof => "pprof",
            SourceKind::Metrics => "metrics",
            SourceKind::Expvar => "expvar",
            SourceKind::Proc => "proc",
        }
    }
}

/// Human form of a value: bytes in KiB/MiB/GiB, counts as integers.
pub fn format_value(v: f64, unit: Unit) -> String {
    if unit == Unit::Bytes {
        let a = v.abs();
        let sign = if v < 0.0 { "-" } else { "" };
        if a >= 1024.0 * 1024.0 * 1024.0 {
            format!("{sign}{:.2} GiB", a / (1024.0 * 1024.0 * 1024.0))
        } else if a >= 1024.0 * 1024.0 {
            format!("{sign}{:.2} MiB", a / (1024.0 * 1024.0))
        } else if a >= 1024.0 {
            format!("{sign}{:.1} KiB", a / 1024.0)
        } else {
            format!("{sign}{a:.0} B")
        }
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// [`format_value`] with a `+` in front of growth.
pub fn signed(v: f64, unit: Unit) -> String {
    let s = format_value(v, unit);
    if v > 0.0 { format!("+{s}") } else { s }
}

/// Per-session figures are small: show counts with two decimals.
pub fn format_per_session(v: f64, unit: Unit) -> String {
    if unit == Unit::Bytes {
        format_value(v, unit)
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_formatted_for_people() {
        assert_eq!(format_value(1536.0, Unit::Bytes), "1.5 KiB");
        assert_eq!(format_value(3.0 * 1024.0 * 1024.0, Unit::Bytes), "3.00 MiB");
        assert_eq!(format_value(-512.0, Unit::Bytes), "-512 B");
        assert_eq!(format_value(600.0, Unit::Count), "600");
        assert_eq!(signed(600.0, Unit::Count), "+600");
        assert_eq!(format_per_session(0.5, Unit::Count), "0.50");
    }

    /// The JSON spelling is the one report.json v1 readers know.
    #[test]
    fn serialized_names_are_the_v1_strings() {
        for (u, s) in [(Unit::Count, "count"), (Unit::Bytes, "bytes")] {
            assert_eq!(serde_json::to_value(u).unwrap(), s);
            assert_eq!(u.as_str(), s);
        }
        for (k, s) in [
            (SourceKind::Pprof, "pprof"),
            (SourceKind::Metrics, "metrics"),
            (SourceKind::Expvar, "expvar"),
            (SourceKind::Proc, "proc"),
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), s);
            assert_eq!(k.as_str(), s);
        }
    }
}
