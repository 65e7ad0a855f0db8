//! Reports: the run's result as one serializable [`Report`], rendered by one
//! module per format behind the [`Render`] trait.

pub mod json;
pub mod junit;
pub mod markdown;
pub mod text;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::load::CycleLoad;
use crate::run::Status;
use crate::settle::{Settled, Tolerance};
use crate::sources::Reading;
use crate::suspects::Suspect;
use crate::verdict::{SignalVerdict, Verdict};

/// Version of report.json's layout; bumped on any incompatible change.
pub const SCHEMA: &str = "leakbench.report/v1";

/// Everything a run found, as written to report.json.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Layout version, [`SCHEMA`].
    pub schema: &'static str,
    /// leakbench's version.
    pub leakbench: &'static str,
    /// `complete`, or `interrupted` / `error` for a partial report.
    pub status: Status,
    /// Scenario name.
    pub name: String,
    /// Scenario file.
    pub scenario: String,
    /// The URL sessions went to.
    pub url: String,
    /// The pprof base URL probed (empty when pprof is not a source).
    pub pprof: String,
    /// Every signal source read, in one line.
    pub sources: String,
    /// The overall verdict.
    pub verdict: Verdict,
    /// Why, one sentence per reason, most important first.
    pub reasons: Vec<String>,
    /// Sessions per cycle.
    pub sessions: u32,
    /// Unmeasured warm-up cycles run.
    pub warmup: u32,
    /// Measured cycles run.
    pub cycles: u32,
    /// One entry per signal, deciding ones first.
    pub signals: Vec<SignalVerdict>,
    /// Code holding what grew, most significant first.
    pub suspects: Vec<Suspect>,
    /// Per deciding signal, the tolerance used by settle and verdict (growth
    /// per cycle below this is noise), in the signal's unit.
    pub tolerance: Tolerance,
    /// Every cycle, warm-up included, in order.
    pub phases: Vec<Phase>,
    /// Counters sampled through the run, for charts.
    pub timeline: Vec<TimelinePoint>,
    /// Profiles written next to report.json: role -> file name.
    pub profiles: BTreeMap<String, String>,
    /// Wall time of the whole run, seconds.
    pub duration_s: f64,
}

/// One cycle of load and what followed it.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// `warmup` or `cycle`.
    pub kind: &'static str,
    /// 1-based index within its kind.
    pub index: u32,
    /// What the load did.
    pub load: CycleLoad,
    /// How the target settled afterwards.
    pub settle: Settled,
    /// Signals measured after settling (after forced GCs where pprof is a
    /// source), by name; absent for warm-ups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<Reading>,
}

/// A sample of the target's counters during the run.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Seconds since the run started.
    pub t_s: f64,
    /// What leakbench was doing: `warmup`, `baseline`, `cycle N`, `final`.
    pub phase: String,
    /// Every signal read at that moment, by name (e.g. `goroutines`,
    /// `heap_bytes` after one forced GC, `fds`).
    pub values: Reading,
}

/// A report format.
pub trait Render {
    /// File name when written to the output folder.
    fn file_name(&self) -> &'static str;
    /// The rendered report.
    fn render(&self, report: &Report) -> String;
}
