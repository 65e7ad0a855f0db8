//! Signal sources: pprof, Prometheus `/metrics`, expvar `/debug/vars` and
//! /proc, read together into one [`Reading`] of named values.
//!
//! Each source is one file behind the [`Source`] trait: it declares the
//! signals it can give, reads them, and says what it adds to a report. This
//! file owns the registry ([`REGISTRY`], one line per source) and
//! [`Sources`], the sources of one run, which reads them in registry order.
//! That order is the precedence: a source fills only the names that the
//! sources before it did not give, and the best source that can give a
//! signal labels it.
//!
//! Which signals decide the verdict follows from how exact they are: counts
//! (goroutines, open descriptors, user-named gauges) always; the live heap
//! only when pprof lets leakbench force GCs first. Heap figures from metrics
//! or expvar include garbage, so they are shown and the report says why.

mod goroutineleak;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::probe::{Probe, ProbeError, Snapshot};
use crate::scenario::Scenario;
use crate::signal::name::*;
use crate::signal::{SourceKind, Unit};

/// Named values read at one moment, e.g. `goroutines`, `heap_bytes`, `fds`.
pub type Reading = BTreeMap<String, f64>;

/// What is known about one signal of a run.
#[derive(Debug, Clone, Serialize)]
pub struct SignalSpec {
    /// Name in reports.
    pub name: String,
    /// Unit of its values.
    pub unit: Unit,
    /// Whether it takes part in the verdict.
    pub decides: bool,
    /// Growth per cycle below which a change is noise (before idle noise).
    pub floor: f64,
    /// Where it is read.
    pub source: SourceKind,
}

impl SignalSpec {
    /// A signal named `name` that `source` reads.
    pub fn new(name: &str, unit: Unit, decides: bool, floor: f64, source: SourceKind) -> Self {
        SignalSpec {
            name: name.to_owned(),
            unit,
            decides,
            floor,
            source,
        }
    }
}

/// A source that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The HTTP side failed.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The answer is not what the source serves.
    #[error("{url}: {message}")]
    Content {
        /// The URL read.
        url: String,
        /// What is wrong.
        message: String,
    },
}

impl SourceError {
    /// True when nothing answered at all (worth retrying while a target starts).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SourceError::Probe(ProbeError::Connect { .. }))
    }
}

/// How much a read does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// A cheap reading, for every settle poll (pprof: one forced GC).
    Sample,
    /// The measurement protocol (pprof: several forced GCs, then the exact
    /// counters and the goroutineleak total).
    Measure,
    /// A measurement that also keeps the source's profiles, for
    /// [`Source::take_profiles`].
    Snapshot,
}

/// A read in progress; it fills the [`Reading`] it was given.
pub type Pending<'a> = Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send + 'a>>;

/// A read that is already over, for sources that read files synchronously.
pub fn done<'a>() -> Pending<'a> {
    Box::pin(std::future::ready(Ok(())))
}

/// Inserts `name` unless a better source already gave it: standard names
/// fill what better sources did not.
pub fn fill(r: &mut Reading, name: &str, value: f64) {
    if !r.contains_key(name) {
        r.insert(name.to_owned(), value);
    }
}

/// The scenario's growth floors, by kind of signal, for sources to give
/// their signals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floors {
    /// Counts of goroutine-like things (`thresholds.goroutines`).
    pub counts: f64,
    /// Open descriptors (`thresholds.fds`).
    pub fds: f64,
    /// Bytes: `thresholds.heap_bytes`, or per session times sessions if larger.
    pub bytes: f64,
    /// Heap objects: `thresholds.heap_objects`, or per session times sessions.
    pub objects: f64,
}

impl Floors {
    /// The floors of `scenario`.
    pub fn of(scenario: &Scenario) -> Floors {
        let t = &scenario.thresholds;
        let sessions = f64::from(scenario.load.sessions);
        Floors {
            counts: t.goroutines,
            fds: t.fds,
            bytes: t.heap_bytes.max(t.heap_bytes_per_session * sessions),
            objects: t.heap_objects.max(t.heap_objects_per_session * sessions),
        }
    }
}

/// What sources are made from.
pub struct Setup<'a> {
    /// The scenario; `None` for `leakbench snapshot`, which names pprof alone.
    pub scenario: Option<&'a Scenario>,
    /// pprof's base URL: the scenario's `target.pprof` or snapshot's argument.
    pub pprof: Option<&'a http::Uri>,
    /// The target's pid: the started target's or `target.pid`.
    pub pid: Option<u32>,
}

impl Setup<'_> {
    /// A probe of `url`, bounded by the scenario's `target.probe_timeout`
    /// (the default without a scenario), connecting to the addresses pinned
    /// for its host.
    pub fn probe(&self, url: &http::Uri) -> Probe {
        let probe = Probe::new(url);
        let Some(s) = self.scenario else {
            return probe;
        };
        // A host resolved at run start is reached at its pinned addresses.
        let pinned = url.host().and_then(|h| s.target.pins.get(h));
        let probe = match pinned {
            Some(ips) => probe.pinned(ips.to_vec()),
            None => probe,
        };
        probe.with_timeout(s.target.probe_timeout)
    }
}

/// One signal source.
///
/// The read methods return boxed futures so that the sources of a run can
/// sit in one list of trait objects (`async fn` in a trait is not
/// object-safe). `Send + Sync` keeps [`Sources`] both, as it was with
/// fixed fields.
pub trait Source: Send + Sync {
    /// Where its signals are read.
    fn kind(&self) -> SourceKind;

    /// Its part of the one-line description of the sources, e.g.
    /// `metrics http://127.0.0.1:9090/metrics`; `None` when another
    /// source's part already names it.
    fn describe(&self) -> Option<String>;

    /// The standard signals it can give, with unit, whether they decide and
    /// their floors. A signal that a source earlier in [`REGISTRY`] also
    /// declares is that source's; one the first reading lacks is left out.
    fn signals(&self, floors: &Floors) -> Vec<SignalSpec>;

    /// User-named signals (`[[signals]]`): each is its own row, after the
    /// standard ones, whatever other sources give.
    fn user_signals(&self, _floors: &Floors) -> Vec<SignalSpec> {
        Vec::new()
    }

    /// Reads its signals into `r`, filling (see [`fill`]) what sources
    /// earlier in [`REGISTRY`] did not give.
    fn read<'a>(&'a mut self, depth: Depth, r: &'a mut Reading) -> Pending<'a>;

    /// Adds to the first reading what a sample leaves out but the run must
    /// know of from the start (pprof: the goroutineleak total, finding out
    /// once whether the target serves it).
    fn read_extras<'a>(&'a mut self, _r: &'a mut Reading) -> Pending<'a> {
        done()
    }

    /// Whether it can force a GC before the heap is read.
    fn can_force_gc(&self) -> bool {
        false
    }

    /// The target's heap profile sampling rate, when this source knows it.
    fn heap_profile_rate(&self) -> Option<u64> {
        None
    }

    /// The target's open-file limit, when this source knows it.
    fn open_file_limit(&self) -> Option<u64> {
        None
    }

    /// The profiles the last [`Depth::Snapshot`] read kept, for attribution.
    fn take_profiles(&mut self) -> Option<Snapshot> {
        None
    }

    /// Closes its connections (they reopen on the next read).
    fn close(&mut self) {}
}

/// Makes a source from the setup; `None` when the setup names none.
pub type Open = fn(&Setup<'_>) -> Option<Box<dyn Source>>;

/// Declares each source's module and lists its `open` in [`REGISTRY`].
macro_rules! registry {
    ($($source:ident),+ $(,)?) => {
        $(mod $source;)+

        /// Every source, in read and precedence order: pprof's exact
        /// counters first, then /proc, then metrics and expvar filling what
        /// is left, then the smaps_rollup example. A new source is its own
        /// file plus one line in the `registry!` list.
        pub const REGISTRY: &[Open] = &[$($source::open),+];
    };
}

registry! {
    pprof,
    proc,
    metrics,
    expvar,
    smaps,
}

/// Report order of the standard signals (deciding ones are moved first
/// afterwards); signals not listed follow in registry order.
const ORDER: [&str; 13] = [
    GOROUTINES,
    LEAKED_GOROUTINES,
    HEAP_BYTES,
    HEAP_OBJECTS,
    FDS,
    STACK_BYTES,
    HEAP_INUSE,
    SYS_BYTES,
    SOCKETS,
    PIPES,
    OTHER_FDS,
    RSS_BYTES,
    THREADS,
];

/// The sources of one run.
pub struct Sources {
    list: Vec<Box<dyn Source>>,
}

impl Sources {
    /// The sources a scenario names; `pid` is the started target's, or the
    /// scenario's `target.pid`.
    pub fn new(scenario: &Scenario, pid: Option<u32>) -> Sources {
        Sources::open(&Setup {
            scenario: Some(scenario),
            pprof: scenario.target.pprof.as_ref(),
            pid: pid.or(scenario.target.pid),
        })
    }

    /// pprof at `base` alone, plus /proc of `pid` (for `leakbench snapshot`).
    pub fn pprof_only(base: &http::Uri, pid: Option<u32>) -> Sources {
        Sources::open(&Setup {
            scenario: None,
            pprof: Some(base),
            pid,
        })
    }

    /// Every registered source that `setup` names, in registry order.
    pub fn open(setup: &Setup<'_>) -> Sources {
        Sources {
            list: REGISTRY.iter().filter_map(|open| open(setup)).collect(),
        }
    }

    /// The target's heap profile sampling rate, once pprof was read.
    pub fn heap_profile_rate(&self) -> Option<u64> {
        self.list.iter().find_map(|s| s.heap_profile_rate())
    }

    /// The target's open-file limit: from /proc/PID/limits, else from the
    /// metrics page's `process_max_fds` as last read.
    pub fn open_file_limit(&self) -> Option<u64> {
        self.list.iter().find_map(|s| s.open_file_limit())
    }

    /// Whether the heap can be measured after forced GCs.
    pub fn can_force_gc(&self) -> bool {
        self.list.iter().any(|s| s.can_force_gc())
    }

    /// One line naming the sources, for progress and reports: the endpoints
    /// first, then the process's own files.
    pub fn describe(&self) -> String {
        let mut parts: Vec<(bool, String)> = self
            .list
            .iter()
            .filter_map(|s| Some((s.kind() == SourceKind::Proc, s.describe()?)))
            .collect();
        parts.sort_by_key(|(proc, _)| *proc);
        let parts: Vec<String> = parts.into_iter().map(|(_, p)| p).collect();
        parts.join(", ")
    }

    /// Closes every connection (they reopen on the next read).
    pub fn close(&mut self) {
        for s in &mut self.list {
            s.close();
        }
    }

    async fn read(&mut self, depth: Depth) -> Result<Reading, SourceError> {
        let mut r = Reading::new();
        for s in &mut self.list {
            s.read(depth, &mut r).await?;
        }
        Ok(r)
    }

    /// A cheap reading for settling: one forced GC through pprof if any.
    pub async fn sample(&mut self) -> Result<Reading, SourceError> {
        self.read(Depth::Sample).await
    }

    /// Adds the `goroutineleak` profile's total to `r` when pprof serves
    /// it (finding out whether it does, once).
    pub async fn add_leaked_goroutines(&mut self, r: &mut Reading) -> Result<(), SourceError> {
        for s in &mut self.list {
            s.read_extras(r).await?;
        }
        Ok(())
    }

    /// The measurement protocol: several forced GCs through pprof, then all
    /// sources.
    pub async fn measure(&mut self) -> Result<Reading, SourceError> {
        self.read(Depth::Measure).await
    }

    /// [`Sources::measure`] plus the pprof profiles, when pprof is a source.
    pub async fn snapshot(&mut self) -> Result<(Reading, Option<Snapshot>), SourceError> {
        let read = self.read(Depth::Snapshot).await;
        // Taken even after a failed read, so no source keeps stale profiles.
        let mut profiles = None;
        for s in &mut self.list {
            if let Some(p) = s.take_profiles() {
                profiles.get_or_insert(p);
            }
        }
        Ok((read?, profiles))
    }

    /// The signals of this run, given the first reading (which shows what
    /// the sources actually serve) and the scenario's floors.
    pub fn specs(&self, first: &Reading, scenario: &Scenario) -> Vec<SignalSpec> {
        let floors = Floors::of(scenario);
        let mut specs: Vec<SignalSpec> = Vec::new();
        for source in &self.list {
            for spec in source.signals(&floors) {
                // The best source that can give a signal labels it.
                if first.contains_key(&spec.name) && !specs.iter().any(|s| s.name == spec.name) {
                    specs.push(spec);
                }
            }
        }
        // Stable: signals not in ORDER keep registry order after it.
        specs.sort_by_key(|s| {
            ORDER
                .iter()
                .position(|n| *n == s.name)
                .unwrap_or(ORDER.len())
        });
        for source in &self.list {
            specs.extend(source.user_signals(&floors));
        }
        // Deciding signals first, in a stable order.
        specs.sort_by_key(|s| !s.decides);
        specs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(target: &str, signals: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:3000/visit\"\n{target}\
             [load]\nsessions = 100\n{signals}"
        );
        Scenario::parse(&text, std::path::Path::new("t.toml")).unwrap()
    }

    fn first(names: &[&str]) -> Reading {
        names.iter().map(|n| ((*n).to_owned(), 1.0)).collect()
    }

    /// name, source, decides: what a report's signal rows show.
    fn rows(specs: &[SignalSpec]) -> Vec<(String, &'static str, bool)> {
        specs
            .iter()
            .map(|s| (s.name.clone(), s.source.as_str(), s.decides))
            .collect()
    }

    fn row(name: &str, source: &'static str, decides: bool) -> (String, &'static str, bool) {
        (name.to_owned(), source, decides)
    }

    #[test]
    fn pprof_and_proc_give_the_exact_signals_in_report_order() {
        let s = scenario("pprof = \"http://127.0.0.1:3000/debug/pprof\"\n", "");
        let sources = Sources::new(&s, Some(1));
        assert!(sources.can_force_gc());
        assert_eq!(sources.heap_profile_rate(), None);
        assert_eq!(
            sources.describe(),
            "pprof http://127.0.0.1:3000/debug/pprof, /proc/1"
        );
        let read = [
            GOROUTINES,
            HEAP_BYTES,
            HEAP_OBJECTS,
            STACK_BYTES,
            HEAP_INUSE,
            SYS_BYTES,
            FDS,
            SOCKETS,
            PIPES,
            OTHER_FDS,
            RSS_BYTES,
            THREADS,
        ];
        assert_eq!(
            rows(&sources.specs(&first(&read), &s)),
            [
                row(GOROUTINES, "pprof", true),
                row(HEAP_BYTES, "pprof", true),
                row(HEAP_OBJECTS, "pprof", true),
                row(FDS, "proc", true),
                row(STACK_BYTES, "pprof", false),
                row(HEAP_INUSE, "pprof", false),
                row(SYS_BYTES, "pprof", false),
                row(SOCKETS, "proc", false),
                row(PIPES, "proc", false),
                row(OTHER_FDS, "proc", false),
                row(RSS_BYTES, "proc", false),
                row(THREADS, "proc", false),
            ]
        );
        // The floors are the scenario's, per session where that is larger.
        let specs = sources.specs(&first(&[HEAP_BYTES, LEAKED_GOROUTINES]), &s);
        let floors: Vec<f64> = specs.iter().map(|x| x.floor).collect();
        let t = &s.thresholds;
        assert_eq!(
            floors,
            [1.0, t.heap_bytes.max(t.heap_bytes_per_session * 100.0)],
            "{specs:?}"
        );
        assert_eq!(specs[0].name, LEAKED_GOROUTINES);
    }

    #[test]
    fn without_pprof_metrics_fill_in_and_user_signals_follow() {
        let s = scenario(
            "metrics = \"http://127.0.0.1:3000/metrics\"\n",
            "[[signals]]\nmetric = \"app_sessions\"\nname = \"sessions\"\n\
             [[signals]]\nmetric = \"app_bytes\"\nunit = \"bytes\"\ndecides = false\n",
        );
        let sources = Sources::new(&s, Some(1));
        assert!(!sources.can_force_gc());
        assert_eq!(
            sources.describe(),
            "metrics http://127.0.0.1:3000/metrics, /proc/1"
        );
        let read = [
            GOROUTINES,
            FDS,
            HEAP_BYTES,
            RSS_BYTES,
            THREADS,
            "sessions",
            "app_bytes",
        ];
        assert_eq!(
            rows(&sources.specs(&first(&read), &s)),
            [
                row(GOROUTINES, "metrics", true),
                row(FDS, "proc", true),
                row("sessions", "metrics", true),
                row(HEAP_BYTES, "metrics", false),
                row(RSS_BYTES, "proc", false),
                row(THREADS, "proc", false),
                row("app_bytes", "metrics", false),
            ]
        );
        // Without a pid, descriptors and RSS can only be the target's own.
        let sources = Sources::new(&s, None);
        let specs = sources.specs(&first(&[FDS, RSS_BYTES]), &s);
        assert_eq!(specs[0].source, SourceKind::Metrics);
        assert_eq!(
            specs.iter().find(|x| x.name == RSS_BYTES).unwrap().source,
            SourceKind::Metrics
        );
    }

    #[test]
    fn metrics_outrank_expvar_for_the_whole_heap_group() {
        let s = scenario(
            "metrics = \"http://127.0.0.1:3000/metrics\"\n\
             expvar = \"http://127.0.0.1:3000/debug/vars\"\n",
            "",
        );
        let sources = Sources::new(&s, None);
        assert_eq!(
            sources.describe(),
            "metrics http://127.0.0.1:3000/metrics, expvar http://127.0.0.1:3000/debug/vars"
        );
        let specs = sources.specs(&first(&[GOROUTINES, HEAP_BYTES, HEAP_INUSE]), &s);
        assert_eq!(
            rows(&specs),
            [
                row(GOROUTINES, "metrics", true),
                row(HEAP_BYTES, "metrics", false),
                row(HEAP_INUSE, "metrics", false),
            ]
        );
        let s = scenario("expvar = \"http://127.0.0.1:3000/debug/vars\"\n", "");
        let specs = Sources::new(&s, Some(1)).specs(&first(&[HEAP_BYTES, FDS]), &s);
        assert_eq!(
            rows(&specs),
            [row(FDS, "proc", true), row(HEAP_BYTES, "expvar", false)]
        );
    }

    #[test]
    fn signals_outside_the_report_order_follow_the_standard_ones() {
        let s = scenario(
            "metrics = \"http://127.0.0.1:3000/metrics\"\n",
            "[[signals]]\nmetric = \"app_bytes\"\nunit = \"bytes\"\ndecides = false\n",
        );
        let read = [ANON_BYTES, "app_bytes", THREADS, FDS];
        assert_eq!(
            rows(&Sources::new(&s, Some(1)).specs(&first(&read), &s)),
            [
                row(FDS, "proc", true),
                row(THREADS, "proc", false),
                row(ANON_BYTES, "proc", false),
                row("app_bytes", "metrics", false),
            ]
        );
        // No pid, no /proc: anon_bytes is not offered even if a name matches.
        let specs = Sources::new(&s, None).specs(&first(&read), &s);
        assert!(specs.iter().all(|x| x.name != ANON_BYTES), "{specs:?}");
    }

    #[test]
    fn snapshot_sources_are_pprof_and_the_pid() {
        let base: http::Uri = "http://127.0.0.1:6060/debug/pprof".parse().unwrap();
        assert_eq!(
            Sources::pprof_only(&base, Some(7)).describe(),
            "pprof http://127.0.0.1:6060/debug/pprof, /proc/7"
        );
        assert_eq!(
            Sources::pprof_only(&base, None).describe(),
            "pprof http://127.0.0.1:6060/debug/pprof"
        );
    }

    #[test]
    fn sources_can_be_held_across_awaits_anywhere() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<Sources>();
    }

    #[test]
    fn fill_keeps_what_a_better_source_gave() {
        let mut r = Reading::new();
        fill(&mut r, FDS, 3.0);
        fill(&mut r, FDS, 4.0);
        assert_eq!(r[FDS], 3.0);
    }
}
