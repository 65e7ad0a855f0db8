//! Suspects: which code holds what grew, from baseline and final profiles.
//!
//! Goroutines come from `goroutine?debug=2` dumps, grouped by stack and wait
//! state, so each suspect says what its goroutines wait on. Heap suspects come
//! from the `inuse_space` of the heap profiles; those are sampled, so they
//! point at the cause while the exact counters decide the verdict.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::pprof::{self, Goroutine, Profile};
use crate::probe::Snapshot;
use crate::settle::Tolerance;
use crate::signal::name;
use crate::verdict::{FindingKind, SignalVerdict, Verdict};

/// How many suspects of each kind a report keeps.
const MAX_SUSPECTS_PER_KIND: usize = 10;

/// What a suspect's stack holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SuspectKind {
    /// Goroutines whose stack and wait state grew in number.
    Goroutine,
    /// Goroutines Go's `goroutineleak` profile proved leaked.
    #[serde(rename = "goroutineleak")]
    GoroutineLeak,
    /// A heap allocation site whose in-use bytes grew.
    Heap,
}

impl SuspectKind {
    /// The name used in report.json and the reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SuspectKind::Goroutine => "goroutine",
            SuspectKind::GoroutineLeak => "goroutineleak",
            SuspectKind::Heap => "heap",
        }
    }
}

impl std::fmt::Display for SuspectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Code that holds what grew.
#[derive(Debug, Clone, Serialize)]
pub struct Suspect {
    /// Goroutines, proven leaked goroutines, or a heap site.
    pub kind: SuspectKind,
    /// The function to look at: the first frame from the leaf in package
    /// main, else outside Go's standard library.
    pub function: String,
    /// Function names, leaf first.
    pub frames: Vec<String>,
    /// Goroutines only: the wait state, e.g. `chan receive`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Goroutines only: the function that started them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Value at baseline (goroutines, or in-use bytes for heap).
    pub base: i64,
    /// Value at the end.
    pub after: i64,
    /// Growth per measured cycle (goroutines, or bytes).
    pub per_cycle: f64,
    /// Growth per session.
    pub per_session: f64,
    /// What this stack usually means, for stacks with a known signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Stacks whose meaning is well known.
fn hint(frames: &[String]) -> Option<String> {
    let has = |f: &str| frames.iter().any(|x| x == f);
    if has("net/http.(*persistConn).readLoop") || has("net/http.(*persistConn).writeLoop") {
        return Some(
            "outbound HTTP client connections pile up: an http.Response.Body is not closed \
             (defer resp.Body.Close() and read it to the end)"
                .to_owned(),
        );
    }
    None
}

/// Goroutine stacks whose counts grew from `base` to `after`.
pub fn goroutines(
    base: &[Goroutine],
    after: &[Goroutine],
    cycles: u32,
    sessions: u32,
) -> Vec<Suspect> {
    type Key<'a> = (&'a [String], &'a str);
    let mut counts: BTreeMap<Key, (i64, i64, Option<&str>)> = BTreeMap::new();
    for g in base {
        counts.entry((&g.stack, &g.state)).or_insert((0, 0, None)).0 += 1;
    }
    for g in after {
        let e = counts.entry((&g.stack, &g.state)).or_insert((0, 0, None));
        e.1 += 1;
        e.2 = e.2.or(g.created_by.as_deref());
    }
    let mut grown: Vec<Suspect> = counts
        .into_iter()
        .filter(|(_, (b, a, _))| a > b)
        .map(|((stack, state), (b, a, created_by))| Suspect {
            kind: SuspectKind::Goroutine,
            function: pprof::focus_frame(stack).to_owned(),
            frames: stack.to_vec(),
            state: Some(state.to_owned()),
            created_by: created_by.map(str::to_owned),
            base: b,
            after: a,
            per_cycle: (a - b) as f64 / f64::from(cycles.max(1)),
            per_session: (a - b) as f64 / (f64::from(cycles.max(1)) * f64::from(sessions.max(1))),
            hint: hint(stack),
        })
        .collect();
    grown.sort_by(|x, y| {
        (y.after - y.base)
            .cmp(&(x.after - x.base))
            .then_with(|| x.frames.cmp(&y.frames))
    });
    grown.truncate(MAX_SUSPECTS_PER_KIND);
    grown
}

/// Stacks of goroutines the runtime proved leaked (`goroutineleak`
/// profiles), whose counts grew from `base` to `after`. No false positives:
/// each one is blocked on a channel or lock nothing running can reach.
pub fn leaked(base: &Profile, after: &Profile, cycles: u32, sessions: u32) -> Vec<Suspect> {
    let proven = |_: &[String]| Some(PROVEN_LEAK.to_owned());
    grown_sites(
        SuspectKind::GoroutineLeak,
        proven,
        base,
        after,
        0,
        cycles,
        sessions,
    )
}

/// The hint on every `goroutineleak` suspect.
const PROVEN_LEAK: &str = "proven leaked by the runtime (goroutineleak profile): blocked on a \
                           channel or lock that no running goroutine can reach, so it can \
                           never run again";

/// Allocation sites whose in-use bytes grew from `base` to `after`.
pub fn heap(base: &Profile, after: &Profile, cycles: u32, sessions: u32) -> Vec<Suspect> {
    let Some(index) = after.value_index("inuse_space") else {
        return Vec::new();
    };
    if base.value_index("inuse_space") != Some(index) {
        return Vec::new();
    }
    grown_sites(
        SuspectKind::Heap,
        hint,
        base,
        after,
        index,
        cycles,
        sessions,
    )
}

/// Suspects of `kind` from the stacks whose value at `index` grew between
/// two profiles, largest growth first, each with `hint_for` its stack.
fn grown_sites(
    kind: SuspectKind,
    hint_for: impl Fn(&[String]) -> Option<String>,
    base: &Profile,
    after: &Profile,
    index: usize,
    cycles: u32,
    sessions: u32,
) -> Vec<Suspect> {
    pprof::grown_stacks(base, after, index)
        .into_iter()
        .take(MAX_SUSPECTS_PER_KIND)
        .map(|g| {
            let delta = (g.after - g.base) as f64;
            Suspect {
                kind,
                function: pprof::focus_frame(&g.stack).to_owned(),
                hint: hint_for(&g.stack),
                frames: g.stack,
                state: None,
                created_by: None,
                base: g.base,
                after: g.after,
                per_cycle: delta / f64::from(cycles.max(1)),
                per_session: delta / (f64::from(cycles.max(1)) * f64::from(sessions.max(1))),
            }
        })
        .collect()
}

/// Suspects, the kinds whose signals did not pass first.
///
/// A suspect must hold a share worth reading: goroutine stacks at least the
/// goroutine tolerance, heap sites at least a quarter of the heap tolerance
/// and 1% of the heap's growth (the probe's own connection and sampling
/// noise stay out).
pub fn attribute(
    base: &Snapshot,
    last: &Snapshot,
    signals: &[SignalVerdict],
    tolerance: &Tolerance,
    cycles: u32,
    sessions: u32,
) -> Vec<Suspect> {
    // A bounded signal passes, but the code that holds the bound is named.
    let failing = |signal: &str| {
        signals.iter().any(|s| {
            s.name == signal
                && s.decides
                && (s.verdict != Verdict::Pass || s.finding.kind == FindingKind::Bounded)
        })
    };
    let goroutines_grew = failing(name::GOROUTINES);
    let heap_grew = failing(name::HEAP_BYTES) || failing(name::HEAP_OBJECTS);
    let mut out = Vec::new();
    // Proven leaks come first, whatever else grew.
    if failing(name::LEAKED_GOROUTINES) || goroutines_grew {
        if let (Some(b), Some(a)) = (&base.goroutine_leaks, &last.goroutine_leaks) {
            out.extend(leaked(&b.profile, &a.profile, cycles, sessions));
        }
    }
    let g = match (
        pprof::parse_goroutines(&base.goroutine_dump),
        pprof::parse_goroutines(&last.goroutine_dump),
    ) {
        (Ok(b), Ok(a)) if goroutines_grew => goroutines(&b, &a, cycles, sessions),
        _ => Vec::new(),
    };
    let h = if heap_grew || goroutines_grew {
        heap(&base.heap, &last.heap, cycles, sessions)
    } else {
        Vec::new()
    };
    let growth = |s: &Suspect| (s.after - s.base) as f64;
    let min_goroutines = tolerance
        .get(name::GOROUTINES)
        .copied()
        .unwrap_or(1.0)
        .max(1.0);
    let g = g.into_iter().filter(|s| growth(s) >= min_goroutines);
    let heap_growth = signals
        .iter()
        .find(|s| s.name == name::HEAP_BYTES)
        .map_or(0.0, |s| s.growth);
    let heap_tolerance = tolerance.get(name::HEAP_BYTES).copied().unwrap_or(0.0);
    let min_heap = (heap_tolerance / 4.0).max(0.01 * heap_growth);
    let h = h.into_iter().filter(|s| growth(s) >= min_heap);
    if heap_grew && !goroutines_grew {
        out.extend(h);
        out.extend(g);
    } else {
        out.extend(g);
        out.extend(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(heap: &[u8], dump: &str) -> Snapshot {
        Snapshot {
            at: std::time::Instant::now(),
            counters: crate::probe::Counters::default(),
            heap_profile: bytes::Bytes::new(),
            heap: pprof::decode(heap).expect("a captured heap profile"),
            goroutine_profile: bytes::Bytes::new(),
            goroutine_dump: dump.to_owned(),
            goroutine_leaks: None,
        }
    }

    fn verdict(name: &str, v: Verdict, growth: f64) -> SignalVerdict {
        SignalVerdict {
            name: name.to_owned(),
            unit: crate::signal::Unit::Count,
            source: crate::signal::SourceKind::Pprof,
            verdict: v,
            decides: true,
            baseline: 0.0,
            cycles: vec![growth],
            growth,
            per_cycle: growth,
            per_session: growth / 200.0,
            threshold: 2.0,
            reason: String::new(),
            curve: Vec::new(),
            finding: crate::verdict::Finding::default(),
        }
    }

    /// The captured leaker: 200 goroutines in main.leakyWorker and 64 KiB
    /// each through main.retain.
    #[test]
    fn attribute_names_goroutines_first_when_they_grew() {
        use crate::pprof::fixtures::*;
        // The dump's first goroutine alone stands for the baseline's.
        let first = GOROUTINE_DEBUG2.split("\n\n").next().expect("a goroutine");
        let base = snapshot(HEAP_BASE, first);
        let last = snapshot(HEAP_AFTER, GOROUTINE_DEBUG2);
        let tol: Tolerance = [(name::GOROUTINES.to_owned(), 2.0)].into();
        let signals = [
            verdict(name::GOROUTINES, Verdict::Leak, 200.0),
            verdict(name::HEAP_BYTES, Verdict::Leak, 12e6),
        ];
        let s = attribute(&base, &last, &signals, &tol, 1, 200);
        assert_eq!(s[0].kind, SuspectKind::Goroutine);
        assert!(s[0].function.contains("leakyWorker"), "{:?}", s[0]);
        assert!(
            s.iter()
                .any(|x| x.kind == SuspectKind::Heap && x.function.contains("retain")),
            "{s:?}"
        );
    }

    #[test]
    fn attribute_puts_heap_sites_first_when_only_the_heap_grew() {
        use crate::pprof::fixtures::*;
        let base = snapshot(HEAP_BASE, "");
        let last = snapshot(HEAP_AFTER, GOROUTINE_DEBUG2);
        let tol: Tolerance = [(name::HEAP_BYTES.to_owned(), 65_536.0)].into();
        let signals = [
            verdict(name::GOROUTINES, Verdict::Pass, 0.0),
            verdict(name::HEAP_BYTES, Verdict::Leak, 12e6),
        ];
        let s = attribute(&base, &last, &signals, &tol, 1, 200);
        assert_eq!(s[0].kind, SuspectKind::Heap, "{s:?}");
        assert!(s[0].function.contains("retain"), "{:?}", s[0]);
        assert!(
            s.iter().all(|x| x.kind == SuspectKind::Heap),
            "goroutines passed: no goroutine suspects"
        );
        let passing = [verdict(name::HEAP_BYTES, Verdict::Pass, 0.0)];
        assert!(attribute(&base, &last, &passing, &tol, 1, 200).is_empty());
    }

    fn g(id: u64, state: &str, stack: &[&str]) -> Goroutine {
        Goroutine {
            id,
            state: state.to_owned(),
            stack: stack.iter().map(|s| s.to_string()).collect(),
            created_by: Some("main.serve".to_owned()),
        }
    }

    #[test]
    fn grown_goroutine_stacks_come_first_with_rates() {
        let idle = g(
            1,
            "IO wait",
            &["runtime.gopark", "net.(*conn).Read", "main.main"],
        );
        let leaked = |id| {
            g(
                id,
                "chan receive",
                &[
                    "runtime.gopark",
                    "runtime.chanrecv",
                    "main.(*client).writePump",
                ],
            )
        };
        let base = vec![idle.clone()];
        let mut after = vec![idle];
        after.extend((10..610).map(leaked));
        let s = goroutines(&base, &after, 3, 200);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].function, "main.(*client).writePump");
        assert_eq!(s[0].state.as_deref(), Some("chan receive"));
        assert_eq!((s[0].base, s[0].after), (0, 600));
        assert!((s[0].per_cycle - 200.0).abs() < 1e-9);
        assert!((s[0].per_session - 1.0).abs() < 1e-9);
    }

    #[test]
    fn proven_leaks_name_the_stranded_function() {
        let after = pprof::decode(pprof::fixtures::GOROUTINE_LEAK).unwrap();
        let s = leaked(&Profile::default(), &after, 2, 25);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, SuspectKind::GoroutineLeak);
        assert_eq!(s[0].function, "main.handleLookup.func1");
        assert_eq!((s[0].base, s[0].after), (0, 50));
        assert!((s[0].per_session - 1.0).abs() < 1e-9);
        assert!(s[0].hint.as_deref().unwrap().contains("proven leaked"));
    }

    #[test]
    fn unclosed_response_bodies_get_a_hint() {
        let rl = |id| {
            g(
                id,
                "select",
                &[
                    "runtime.gopark",
                    "runtime.selectgo",
                    "net/http.(*persistConn).readLoop",
                ],
            )
        };
        let s = goroutines(&[], &[rl(1), rl(2)], 2, 1);
        assert!(s[0].hint.as_deref().unwrap().contains("Body"));
    }
}
