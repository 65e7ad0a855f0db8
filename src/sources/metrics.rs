//! The metrics source: a Prometheus text exposition (`target.metrics`),
//! for targets that are not Go or serve no pprof.
//!
//! It owns the standard metric names that fill what better sources did not
//! (`go_goroutines`, `process_open_fds`, ...) and the user-named
//! `[[signals]]`, each read through its selector. Heap figures from here
//! include garbage (no GC can be forced), so they are shown only.

use std::collections::BTreeMap;

use super::{Depth, Floors, Pending, Reading, Setup, SignalSpec, Source, SourceError};
use crate::probe::Probe;
use crate::prom::{self, Selector, Series};
use crate::scenario::SignalDef;
use crate::signal::SourceKind;
use crate::signal::Unit::{self, Bytes, Count};
use crate::signal::name::*;

/// Standard metric names and the signals they fill.
const STANDARD: [(&str, &str); 6] = [
    ("go_goroutines", GOROUTINES),
    ("process_open_fds", FDS),
    ("go_memstats_heap_alloc_bytes", HEAP_BYTES),
    ("go_memstats_heap_objects", HEAP_OBJECTS),
    ("go_memstats_stack_inuse_bytes", STACK_BYTES),
    ("process_resident_memory_bytes", RSS_BYTES),
];

/// The metrics source of `setup`, if the scenario names a metrics URL.
pub(super) fn open(setup: &Setup<'_>) -> Option<Box<dyn Source>> {
    let scenario = setup.scenario?;
    let url = scenario.target.metrics.as_ref()?;
    Some(Box::new(Metrics {
        probe: setup.probe(url),
        custom: scenario.signals.clone(),
        max_fds: None,
    }))
}

/// A target's `/metrics` page and the user signals read from it.
struct Metrics {
    probe: Probe,
    custom: Vec<SignalDef>,
    /// `process_max_fds` as last read: the target's open-file limit.
    max_fds: Option<u64>,
}

/// Fills `r` from the series of one page: standard names where no better
/// source gave them, then every user signal.
fn insert_series(series: &[Series], custom: &[SignalDef], r: &mut Reading) {
    // Standard names fill what better sources did not.
    for (metric, name) in STANDARD {
        if r.contains_key(name) {
            continue;
        }
        let selector = Selector {
            name: metric.to_owned(),
            labels: BTreeMap::new(),
        };
        if let Some(v) = selector.value(series) {
            r.insert(name.to_owned(), v);
        }
    }
    for def in custom {
        // A gauge created lazily is absent until first used: zero.
        r.insert(def.name.clone(), def.selector.value(series).unwrap_or(0.0));
    }
}

/// The target's open-file limit from the standard `process_max_fds`, so
/// that escalation stops short of it for a target whose /proc is not read.
fn max_fds(series: &[Series]) -> Option<u64> {
    let limit = Selector {
        name: "process_max_fds".to_owned(),
        labels: BTreeMap::new(),
    };
    limit.value(series).filter(|v| *v >= 1.0).map(|v| v as u64)
}

/// A user signal's spec: its unit, its threshold or the unit's floor.
fn user_spec(def: &SignalDef, f: &Floors) -> SignalSpec {
    let unit = def.unit;
    let floor = def.threshold.unwrap_or(match unit {
        Unit::Count => f.counts,
        Unit::Bytes => f.bytes,
    });
    SignalSpec::new(&def.name, unit, def.decides, floor, SourceKind::Metrics)
}

impl Source for Metrics {
    fn kind(&self) -> SourceKind {
        SourceKind::Metrics
    }

    fn open_file_limit(&self) -> Option<u64> {
        self.max_fds
    }

    fn describe(&self) -> Option<String> {
        Some(format!("metrics {}", self.probe.base()))
    }

    fn signals(&self, f: &Floors) -> Vec<SignalSpec> {
        let metrics = |name, unit, decides, floor| {
            SignalSpec::new(name, unit, decides, floor, SourceKind::Metrics)
        };
        vec![
            metrics(GOROUTINES, Count, true, f.counts),
            metrics(FDS, Count, true, f.fds),
            metrics(HEAP_BYTES, Bytes, false, f.bytes),
            metrics(HEAP_OBJECTS, Count, false, f.objects),
            metrics(STACK_BYTES, Bytes, false, f.bytes),
            // Never read here: with expvar beside metrics and no pprof, the
            // whole heap group has always been labelled metrics.
            metrics(HEAP_INUSE, Bytes, false, f.bytes),
            metrics(SYS_BYTES, Bytes, false, f.bytes),
            metrics(RSS_BYTES, Bytes, false, f.bytes),
        ]
    }

    fn user_signals(&self, f: &Floors) -> Vec<SignalSpec> {
        self.custom.iter().map(|def| user_spec(def, f)).collect()
    }

    fn read<'a>(&'a mut self, _depth: Depth, r: &'a mut Reading) -> Pending<'a> {
        Box::pin(async move {
            let body = self.probe.get("").await?;
            let url = self.probe.base().to_string();
            let text = String::from_utf8_lossy(&body);
            let series = prom::parse(&text).map_err(|e| SourceError::Content {
                url,
                message: format!("not a Prometheus text exposition ({e})"),
            })?;
            insert_series(&series, &self.custom, r);
            self.max_fds = max_fds(&series).or(self.max_fds);
            Ok(())
        })
    }

    fn close(&mut self) {
        self.probe.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_comes_from_process_max_fds() {
        let page = prom::parse("process_open_fds 40\nprocess_max_fds 20000.0\n").unwrap();
        assert_eq!(max_fds(&page), Some(20_000));
        let none = prom::parse("process_open_fds 40\n").unwrap();
        assert_eq!(max_fds(&none), None);
    }

    const PAGE: &str = "# TYPE go_goroutines gauge\ngo_goroutines 12\nprocess_open_fds 40\n\
                        go_memstats_heap_alloc_bytes 1e6\napp_sessions{kind=\"ws\"} 3\n\
                        app_sessions{kind=\"http\"} 4\n";

    fn def(name: &str, selector: &str, unit: Unit, threshold: Option<f64>) -> SignalDef {
        SignalDef {
            name: name.to_owned(),
            selector: Selector::parse(selector).unwrap(),
            unit,
            threshold,
            decides: true,
        }
    }

    #[test]
    fn standard_names_fill_only_what_better_sources_did_not() {
        let series = prom::parse(PAGE).unwrap();
        let mut r = Reading::from([(FDS.to_owned(), 9.0)]);
        insert_series(&series, &[], &mut r);
        assert_eq!(r[FDS], 9.0, "/proc's count wins");
        assert_eq!(r[GOROUTINES], 12.0);
        assert_eq!(r[HEAP_BYTES], 1e6);
        assert!(!r.contains_key(RSS_BYTES), "{r:?}");
    }

    #[test]
    fn user_signals_sum_their_series_and_read_zero_when_absent() {
        let series = prom::parse(PAGE).unwrap();
        let custom = [
            def("sessions", "app_sessions", Unit::Count, None),
            def("ws", "app_sessions{kind=\"ws\"}", Unit::Count, None),
            def("lazy", "app_not_yet", Unit::Bytes, None),
        ];
        let mut r = Reading::new();
        insert_series(&series, &custom, &mut r);
        assert_eq!((r["sessions"], r["ws"], r["lazy"]), (7.0, 3.0, 0.0));
    }

    #[test]
    fn user_floors_are_the_threshold_or_the_unit_floor() {
        let f = Floors {
            counts: 2.0,
            fds: 3.0,
            bytes: 65536.0,
            objects: 256.0,
        };
        let count = user_spec(&def("a", "m", Unit::Count, None), &f);
        let bytes = user_spec(&def("b", "m", Unit::Bytes, None), &f);
        let set = user_spec(&def("c", "m", Unit::Bytes, Some(5.0)), &f);
        assert_eq!((count.unit, count.floor), (Unit::Count, 2.0));
        assert_eq!((bytes.unit, bytes.floor), (Unit::Bytes, 65536.0));
        assert_eq!(set.floor, 5.0);
        assert_eq!(set.source, SourceKind::Metrics);
    }
}
