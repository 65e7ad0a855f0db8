//! pprof: decode Go profiles and Go's text dumps into plain snapshots with
//! resolved function names, and diff them.
//!
//! - [`decode`] turns a `debug=0` profile (gzip-wrapped or raw profile.proto)
//!   into a [`Profile`] whose samples carry function-name stacks.
//! - [`grown_stacks`] and [`diff_profile`] compare two profiles of one type.
//! - [`focus_frame`] picks the frame in a stack a person should read first.
//! - [`goroutine_total`], [`parse_goroutines`] and [`parse_memstats`] read the
//!   `debug=1` / `debug=2` text endpoints.
//!
//! Everything here is pure: bytes or text in, values or a [`DecodeError`]
//! out. Inputs come from the network and are treated as hostile: nothing
//! panics on them and every size is capped (see [`MAX_DECOMPRESSED_BYTES`]).

mod decode;
mod diff;
#[cfg(test)]
pub(crate) mod fixtures;
mod focus;
#[cfg(test)]
mod fuzz;
pub mod proto;
mod text;

pub use decode::{
    MAX_DECOMPRESSED_BYTES, MAX_FUNCTIONS, MAX_LOCATIONS, MAX_RESOLVED_BYTES, MAX_SAMPLES,
    MAX_STACK_DEPTH, decode,
};
pub use diff::{diff_profile, encode_gz, grown_stacks};
pub use focus::{focus_frame, is_std_frame, package_of};
pub use text::{goroutine_total, parse_goroutines, parse_memstats};

/// A decoded profile with every id resolved to names.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// (type, unit) per value, e.g. ("inuse_space", "bytes").
    pub sample_types: Vec<(String, String)>,
    /// Samples with their stacks resolved.
    pub samples: Vec<Sample>,
    /// (type, unit) of [`Profile::period`], e.g. ("space", "bytes"); `None`
    /// if the profile does not say.
    pub period_type: Option<(String, String)>,
    /// Sampling period in units of `period_type` (heap: MemProfileRate bytes;
    /// goroutine: 1).
    pub period: i64,
    /// Capture time, nanoseconds since the Unix epoch (0 if unset).
    pub time_nanos: i64,
    /// Span the profile covers, in nanoseconds (0 if unset).
    pub duration_nanos: i64,
    /// The sample type tools show by default, if the profile names one.
    pub default_sample_type: Option<String>,
}

/// Sum of value `index` over every sample (a goroutine profile's total);
/// negative values count as 0.
pub fn sample_total(p: &Profile, index: usize) -> u64 {
    p.samples
        .iter()
        .map(|s| u64::try_from(s.values.get(index).copied().unwrap_or(0)).unwrap_or(0))
        .fold(0, u64::saturating_add)
}

/// One sample: a stack and its values.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Function names, leaf first (inlined frames expanded).
    pub stack: Vec<String>,
    /// One value per sample type.
    pub values: Vec<i64>,
    /// String labels (key, value), e.g. pprof labels set by the target with
    /// `pprof.Do`. Numeric labels (heap's `bytes`) are not kept.
    pub labels: Vec<(String, String)>,
}

/// Growth of one stack between two profiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Growth {
    /// Function names, leaf first.
    pub stack: Vec<String>,
    /// Value in the base profile.
    pub base: i64,
    /// Value in the later profile.
    pub after: i64,
}

/// A goroutine from a `debug=2` dump.
#[derive(Debug, Clone, PartialEq)]
pub struct Goroutine {
    /// Goroutine id (never reused by the runtime).
    pub id: u64,
    /// Wait reason or status, e.g. "chan receive", "IO wait", "select".
    pub state: String,
    /// Function names, leaf first.
    pub stack: Vec<String>,
    /// The function that started it, if printed.
    pub created_by: Option<String>,
}

/// The exact runtime counters of `heap?debug=1`'s MemStats block. All sizes
/// are bytes; see Go's `runtime.MemStats` for each field's meaning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemStats {
    /// Live heap bytes (exact right after a GC). Same as `HeapAlloc`.
    pub heap_alloc: u64,
    /// Live heap objects.
    pub heap_objects: u64,
    /// Bytes in in-use spans.
    pub heap_inuse: u64,
    /// Goroutine stack bytes in use.
    pub stack_inuse: u64,
    /// Bytes obtained from the OS.
    pub sys: u64,
    /// Completed GC cycles.
    pub num_gc: u64,
    /// Cumulative bytes allocated for heap objects (never decreases).
    pub total_alloc: u64,
    /// Cumulative count of heap objects allocated.
    pub mallocs: u64,
    /// Cumulative count of heap objects freed.
    pub frees: u64,
    /// Heap bytes obtained from the OS.
    pub heap_sys: u64,
    /// Bytes in idle (unused) spans.
    pub heap_idle: u64,
    /// Idle bytes returned to the OS.
    pub heap_released: u64,
    /// Stack bytes obtained from the OS.
    pub stack_sys: u64,
    /// Heap size target of the next GC cycle.
    pub next_gc: u64,
    /// End of the last GC, nanoseconds since the Unix epoch (0: never).
    pub last_gc_nanos: u64,
    /// GC cycles forced by the application (`runtime.GC`, `heap?gc=1`).
    pub num_forced_gc: u64,
    /// Fraction of CPU time used by the GC since the program started.
    pub gc_cpu_fraction: f64,
    /// Peak resident set size (not current RSS); `None` on Go versions that
    /// do not print it.
    pub max_rss: Option<u64>,
}

/// Profile decoding and text parsing errors. Each message says what was
/// wrong with the input and, where there is one, the likely cause.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Anything wrong with the input that no other variant names.
    #[error("{0}")]
    Invalid(String),
    /// The body was empty.
    #[error("response is empty: expected a {expected}")]
    Empty {
        /// What the caller asked for, e.g. "profile".
        expected: &'static str,
    },
    /// The body is neither gzip nor profile.proto, e.g. an HTML page.
    #[error(
        "response is not a profile: it starts with '{start}' - is this the pprof endpoint (debug=0)?"
    )]
    NotProfile {
        /// The first characters of the body, made printable.
        start: String,
    },
    /// The gzip stream could not be inflated.
    #[error("profile gzip data is corrupt or truncated ({0}) - was the download cut short?")]
    CorruptGzip(#[source] std::io::Error),
    /// Decompressed or raw size over [`MAX_DECOMPRESSED_BYTES`], or resolved
    /// stacks over [`MAX_RESOLVED_BYTES`].
    #[error("profile is too large: {what} exceeds {limit} bytes (gzip bomb or runaway profile?)")]
    TooLarge {
        /// Which size hit the cap.
        what: &'static str,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The bytes are not a valid profile.proto message.
    #[error("profile is not valid profile.proto: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// More entries of one table than a sane profile holds.
    #[error("profile has {count} {what}, more than the limit of {limit}")]
    TooMany {
        /// Which table, e.g. "samples".
        what: &'static str,
        /// How many it holds.
        count: usize,
        /// The cap.
        limit: usize,
    },
    /// Ids or string indexes that point nowhere, duplicated ids, and the like.
    #[error("profile is inconsistent: {0}")]
    Inconsistent(String),
    /// Two profiles that cannot be compared (different sample or period types).
    #[error("profiles cannot be diffed: {0}")]
    Mismatch(String),
    /// A text endpoint returned something other than the expected dump.
    #[error("response is not {expected}: it starts with '{start}'{hint}")]
    NotText {
        /// What was expected, e.g. "a goroutine profile (goroutine?debug=1)".
        expected: &'static str,
        /// The first characters of the body, made printable.
        start: String,
        /// A suggestion, starting with " - ", or empty.
        hint: &'static str,
    },
    /// A line of a text dump that could not be read.
    #[error("{what}, line {line}: {message}")]
    Malformed {
        /// Which dump, e.g. "heap?debug=1 MemStats".
        what: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

impl Profile {
    /// Index of the sample type named `ty`.
    pub fn value_index(&self, ty: &str) -> Option<usize> {
        self.sample_types.iter().position(|(t, _)| t == ty)
    }
}

/// The first `max` characters of `bytes`, lossily decoded, with control
/// characters shown as `?`, for error messages about unexpected bodies.
fn printable_start(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max * 4)])
        .chars()
        .take(max)
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect::<String>()
        .trim_end()
        .to_owned()
}
