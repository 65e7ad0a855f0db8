//! The report model: everything a run found, as the renderers read it and
//! as report.json stores it.
//!
//! Renderers import this module only, never the protocol that filled it.
//! The finding types come from the stage that produces them (the verdict,
//! suspects, load, settle) and are re-exported here so that a renderer
//! needs one import.

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::curve::Point;
pub use crate::load::{CycleLoad, LatencySummary};
pub use crate::settle::{Ending, Settled, Tolerance};
pub use crate::signal::{SourceKind, Unit, format_per_session, format_value, name, signed};
pub use crate::sources::Reading;
pub use crate::suspects::{Suspect, SuspectKind};
pub use crate::verdict::{Course, Finding, FindingKind, SignalVerdict, Stop, Verdict};

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
    /// The scenario file's text as it was when the run ended (absent if it
    /// could not be read back), so a report says exactly what ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario_text: Option<String>,
    /// The URL sessions went to.
    pub url: String,
    /// The pprof base URL probed (empty when pprof is not a source).
    pub pprof: String,
    /// Every signal source read, in one line.
    pub sources: String,
    /// The non-loopback hosts the command line allowed (`--allow-remote`)
    /// and where names were pinned; absent for a loopback-only run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteAccess>,
    /// The overall verdict.
    pub verdict: Verdict,
    /// Why, one sentence per reason, most important first.
    pub reasons: Vec<String>,
    /// Sessions per cycle.
    pub sessions: u32,
    /// Unmeasured warm-up cycles run.
    pub warmup: u32,
    /// Measured cycles run, escalation cycles included.
    pub cycles: u32,
    /// How the run went about its verdict: escalation and horizon wait.
    pub course: Course,
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

/// What a run was allowed to reach beyond this machine.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoteAccess {
    /// The `--allow-remote` values, as given: addresses, CIDR blocks and
    /// host names.
    pub allowed: Vec<String>,
    /// Each host name of the scenario and the addresses it was resolved to
    /// once at run start, which every connection of the run used.
    pub pinned: BTreeMap<String, Vec<String>>,
}

impl RemoteAccess {
    /// One line for a report's header: `198.18.0.2, chat.test (chat.test =
    /// 198.18.0.2)`.
    pub fn line(&self) -> String {
        let pinned: Vec<String> = self
            .pinned
            .iter()
            .map(|(host, ips)| format!("{host} = {}", ips.join(" ")))
            .collect();
        if pinned.is_empty() {
            self.allowed.join(", ")
        } else {
            format!(
                "{} (pinned: {})",
                self.allowed.join(", "),
                pinned.join(", ")
            )
        }
    }
}

/// One cycle of load and what followed it.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// A warm-up or a measured cycle.
    pub kind: PhaseKind,
    /// 1-based index within its kind.
    pub index: u32,
    /// Sessions this cycle ran.
    pub sessions: u32,
    /// Whether it was an escalation cycle (added because a curve was
    /// undecided after the scenario's cycles).
    pub escalation: bool,
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

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every cycle ran and a verdict was reached.
    Complete,
    /// Stopped by SIGINT or SIGTERM; the report holds what was measured.
    Interrupted,
    /// Stopped by an error (target died, probe failed); partial report.
    Error,
}

/// Which kind of cycle a [`Phase`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseKind {
    /// An unmeasured cycle before the baseline.
    Warmup,
    /// A measured cycle.
    Cycle,
}

impl Report {
    /// The process exit code for this report: the verdict's for a complete
    /// run, [`exit::INTERRUPTED`](crate::exit::INTERRUPTED) or
    /// [`exit::ERROR`](crate::exit::ERROR) for a partial one.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            Status::Complete => self.verdict.exit_code(),
            Status::Interrupted => crate::exit::INTERRUPTED,
            Status::Error => crate::exit::ERROR,
        }
    }
}

/// The settle polls of the run, for the report's timeline, kept compact:
/// a long run takes several polls a cycle, and a map of a dozen named
/// values per poll would make leakbench's own memory grow with the run.
#[derive(Debug, Default)]
pub struct Timeline {
    /// Signal names, each stored once; values refer to them by index.
    names: Vec<String>,
    /// Phase names, each stored once.
    phases: Vec<String>,
    polls: Vec<Poll>,
}

/// One settle poll: seconds since the start, the phase's index, and
/// (signal name index, value) pairs.
#[derive(Debug)]
struct Poll(f64, u32, Box<[(u32, f64)]>);

impl Timeline {
    /// Records one poll at `t_s` seconds into the run.
    pub fn push(&mut self, t_s: f64, phase: &str, reading: &Reading) {
        let phase = intern(&mut self.phases, phase);
        let values = reading
            .iter()
            .map(|(name, v)| (intern(&mut self.names, name), *v))
            .collect();
        self.polls.push(Poll(t_s, phase, values));
    }

    /// The polls as the report lists them.
    pub fn points(self) -> Vec<TimelinePoint> {
        self.polls
            .into_iter()
            .map(|Poll(t_s, phase, values)| TimelinePoint {
                t_s,
                phase: self.phases[phase as usize].clone(),
                values: values
                    .iter()
                    .map(|&(name, v)| (self.names[name as usize].clone(), v))
                    .collect(),
            })
            .collect()
    }
}

/// The index of `name` in `names`, added if new. A run has a few dozen
/// signals and at most one phase name per cycle.
fn intern(names: &mut Vec<String>, name: &str) -> u32 {
    let i = names.iter().position(|n| n == name).unwrap_or_else(|| {
        names.push(name.to_owned());
        names.len() - 1
    });
    u32::try_from(i).expect("fewer than 2^32 names")
}
