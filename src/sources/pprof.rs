//! The pprof source: Go's net/http/pprof, read through one [`Probe`].
//!
//! It owns the exact counters (goroutines and MemStats read right after
//! forced GCs), the heap profile sampling rate, and the profiles a snapshot
//! keeps for attribution. It is the only source that can force a GC, so
//! its heap figures are the only ones that decide. The goroutineleak
//! profile rides on the same probe; its signal is in [`super::goroutineleak`].

use super::{Depth, Floors, Pending, Reading, Setup, SignalSpec, Source, goroutineleak};
use crate::probe::{Counters, Probe, Snapshot};
use crate::signal::SourceKind;
use crate::signal::Unit::{Bytes, Count};
use crate::signal::name::*;

/// The pprof source of `setup`, if it names a pprof URL.
pub(super) fn open(setup: &Setup<'_>) -> Option<Box<dyn Source>> {
    let probe = setup.probe(setup.pprof?);
    Some(Box::new(Pprof {
        probe,
        profiles: None,
    }))
}

/// A target's net/http/pprof endpoint.
struct Pprof {
    probe: Probe,
    /// What the last [`Depth::Snapshot`] read kept.
    profiles: Option<Snapshot>,
}

/// The named values of one pprof measurement.
fn insert_counters(c: &Counters, r: &mut Reading) {
    r.insert(GOROUTINES.into(), c.goroutines as f64);
    r.insert(HEAP_BYTES.into(), c.heap_bytes as f64);
    r.insert(HEAP_OBJECTS.into(), c.heap_objects as f64);
    r.insert(STACK_BYTES.into(), c.stack_bytes as f64);
    r.insert(HEAP_INUSE.into(), c.heap_inuse as f64);
    r.insert(SYS_BYTES.into(), c.sys_bytes as f64);
    goroutineleak::insert(c.leaked_goroutines, r);
}

/// What pprof gives: every heap figure comes after forced GCs, so the live
/// heap decides.
fn signals(f: &Floors) -> Vec<SignalSpec> {
    let pprof =
        |name, unit, decides, floor| SignalSpec::new(name, unit, decides, floor, SourceKind::Pprof);
    vec![
        pprof(GOROUTINES, Count, true, f.counts),
        goroutineleak::spec(),
        pprof(HEAP_BYTES, Bytes, true, f.bytes),
        pprof(HEAP_OBJECTS, Count, true, f.objects),
        pprof(STACK_BYTES, Bytes, false, f.bytes),
        pprof(HEAP_INUSE, Bytes, false, f.bytes),
        pprof(SYS_BYTES, Bytes, false, f.bytes),
    ]
}

impl Source for Pprof {
    fn kind(&self) -> SourceKind {
        SourceKind::Pprof
    }

    fn describe(&self) -> Option<String> {
        let leaks = goroutineleak::describe_suffix(self.probe.serves_leak_profile());
        Some(format!("pprof {}{leaks}", self.probe.base()))
    }

    fn signals(&self, floors: &Floors) -> Vec<SignalSpec> {
        signals(floors)
    }

    fn read<'a>(&'a mut self, depth: Depth, r: &'a mut Reading) -> Pending<'a> {
        Box::pin(async move {
            let counters = match depth {
                Depth::Sample => self.probe.sample().await?,
                Depth::Measure => self.probe.measure().await?,
                Depth::Snapshot => {
                    let s = self.probe.snapshot().await?;
                    let counters = s.counters;
                    self.profiles = Some(s);
                    counters
                }
            };
            insert_counters(&counters, r);
            Ok(())
        })
    }

    fn read_extras<'a>(&'a mut self, r: &'a mut Reading) -> Pending<'a> {
        Box::pin(goroutineleak::add(&mut self.probe, r))
    }

    fn can_force_gc(&self) -> bool {
        true
    }

    fn heap_profile_rate(&self) -> Option<u64> {
        self.probe.heap_profile_rate()
    }

    fn take_profiles(&mut self) -> Option<Snapshot> {
        self.profiles.take()
    }

    fn close(&mut self) {
        self.probe.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_fill_every_pprof_name() {
        let c = Counters {
            goroutines: 7,
            heap_bytes: 1024,
            heap_objects: 9,
            heap_inuse: 2048,
            stack_bytes: 512,
            sys_bytes: 4096,
            leaked_goroutines: Some(2),
        };
        let mut r = Reading::new();
        insert_counters(&c, &mut r);
        let floors = Floors {
            counts: 2.0,
            fds: 2.0,
            bytes: 65536.0,
            objects: 256.0,
        };
        // Every declared signal is in the reading, and nothing else.
        let declared: Vec<String> = signals(&floors).into_iter().map(|s| s.name).collect();
        let read: Vec<String> = r.keys().cloned().collect();
        let mut sorted = declared.clone();
        sorted.sort();
        assert_eq!(sorted, read);
        assert_eq!(r[GOROUTINES], 7.0);
        assert_eq!(r[HEAP_INUSE], 2048.0);
        assert_eq!(r[LEAKED_GOROUTINES], 2.0);
    }

    #[test]
    fn the_live_heap_decides_only_here() {
        let floors = Floors {
            counts: 2.0,
            fds: 3.0,
            bytes: 65536.0,
            objects: 256.0,
        };
        let deciding: Vec<(String, f64)> = signals(&floors)
            .into_iter()
            .filter(|s| s.decides)
            .map(|s| (s.name, s.floor))
            .collect();
        assert_eq!(
            deciding,
            [
                (GOROUTINES.to_owned(), 2.0),
                (LEAKED_GOROUTINES.to_owned(), 1.0),
                (HEAP_BYTES.to_owned(), 65536.0),
                (HEAP_OBJECTS.to_owned(), 256.0),
            ]
        );
    }

    #[test]
    fn a_leak_total_of_none_adds_nothing() {
        let mut r = Reading::new();
        insert_counters(&Counters::default(), &mut r);
        assert!(!r.contains_key(LEAKED_GOROUTINES), "{r:?}");
    }
}
