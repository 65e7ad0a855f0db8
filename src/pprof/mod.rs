//! pprof: decode profiles and Go's text dumps into plain snapshots, and diff them.
//!
//! INTERFACE STUB: replaced by the pprof module.

/// A decoded profile with every id resolved to names.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// (type, unit) per value, e.g. ("inuse_space", "bytes").
    pub sample_types: Vec<(String, String)>,
    /// Samples with their stacks resolved.
    pub samples: Vec<Sample>,
}

/// One sample: a stack and its values.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Function names, leaf first (inlined frames expanded).
    pub stack: Vec<String>,
    /// One value per sample type.
    pub values: Vec<i64>,
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

/// The exact runtime counters of `heap?debug=1`'s MemStats block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemStats {
    /// Live heap bytes (exact right after a GC).
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
}

/// Profile decoding and text parsing errors.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Anything wrong with the input.
    #[error("{0}")]
    Invalid(String),
}

/// Decodes a profile, gzip-wrapped or not.
pub fn decode(bytes: &[u8]) -> Result<Profile, DecodeError> {
    let _ = bytes;
    unimplemented!()
}

impl Profile {
    /// Index of the sample type named `ty`.
    pub fn value_index(&self, ty: &str) -> Option<usize> {
        self.sample_types.iter().position(|(t, _)| t == ty)
    }
}

/// Stacks whose value at `index` grew from `base` to `after`, largest growth first.
pub fn grown_stacks(base: &Profile, after: &Profile, index: usize) -> Vec<Growth> {
    let _ = (base, after, index);
    unimplemented!()
}

/// The frame a person should look at: the first frame, from the leaf, outside
/// Go's standard library (package `main` preferred); the leaf if none.
pub fn focus_frame(stack: &[String]) -> &str {
    stack.first().map(String::as_str).unwrap_or("")
}

/// The total from the first line of `goroutine?debug=1`.
pub fn goroutine_total(text: &str) -> Result<u64, DecodeError> {
    let _ = text;
    unimplemented!()
}

/// Parses `goroutine?debug=2`.
pub fn parse_goroutines(text: &str) -> Result<Vec<Goroutine>, DecodeError> {
    let _ = text;
    unimplemented!()
}

/// Parses the MemStats block of `heap?debug=1`.
pub fn parse_memstats(text: &str) -> Result<MemStats, DecodeError> {
    let _ = text;
    unimplemented!()
}
