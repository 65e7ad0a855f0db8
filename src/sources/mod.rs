//! Signal sources: pprof, Prometheus `/metrics`, expvar `/debug/vars` and
//! /proc, read together into one [`Reading`] of named values.
//!
//! Which signals decide the verdict follows from how exact they are: counts
//! (goroutines, open descriptors, user-named gauges) always; the live heap
//! only when pprof lets leakbench force GCs first. Heap figures from metrics
//! or expvar include garbage, so they are shown and the report says why.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::probe::{Counters, Probe, ProbeError, Snapshot};
use crate::procfs;
use crate::prom::{self, Selector};
use crate::scenario::{Scenario, SignalDef, SignalUnit};
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

/// The sources of one run.
pub struct Sources {
    pprof: Option<Probe>,
    metrics: Option<Probe>,
    expvar: Option<Probe>,
    pid: Option<u32>,
    custom: Vec<(SignalDef, Selector)>,
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

fn pprof_reading(c: &Counters, r: &mut Reading) {
    r.insert(GOROUTINES.into(), c.goroutines as f64);
    r.insert(HEAP_BYTES.into(), c.heap_bytes as f64);
    r.insert(HEAP_OBJECTS.into(), c.heap_objects as f64);
    r.insert(STACK_BYTES.into(), c.stack_bytes as f64);
    r.insert(HEAP_INUSE.into(), c.heap_inuse as f64);
    r.insert(SYS_BYTES.into(), c.sys_bytes as f64);
    if let Some(n) = c.leaked_goroutines {
        r.insert(LEAKED_GOROUTINES.into(), n as f64);
    }
}

impl Sources {
    /// The sources a scenario names; `pid` is the started target's, or the
    /// scenario's `target.pid`.
    pub fn new(scenario: &Scenario, pid: Option<u32>) -> Sources {
        let t = &scenario.target;
        let custom = scenario
            .signals
            .iter()
            .map(|d| (d.clone(), d.selector.clone()))
            .collect();
        let probe = |u: &http::Uri| Probe::new(u).with_timeout(t.probe_timeout);
        Sources {
            pprof: t.pprof.as_ref().map(probe),
            metrics: t.metrics.as_ref().map(probe),
            expvar: t.expvar.as_ref().map(probe),
            pid: pid.or(t.pid),
            custom,
        }
    }

    /// pprof at `base` alone, plus /proc of `pid` (for `leakbench snapshot`).
    pub fn pprof_only(base: &http::Uri, pid: Option<u32>) -> Sources {
        Sources {
            pprof: Some(Probe::new(base)),
            metrics: None,
            expvar: None,
            pid,
            custom: Vec::new(),
        }
    }

    /// The target's heap profile sampling rate, once pprof was read.
    pub fn heap_profile_rate(&self) -> Option<u64> {
        self.pprof.as_ref()?.heap_profile_rate()
    }

    /// Whether the heap can be measured after forced GCs.
    pub fn can_force_gc(&self) -> bool {
        self.pprof.is_some()
    }

    /// One line naming the sources, for progress and reports.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.pprof {
            let leaks = if p.serves_leak_profile() == Some(true) {
                " (with goroutineleak)"
            } else {
                ""
            };
            parts.push(format!("pprof {}{leaks}", p.base()));
        }
        if let Some(p) = &self.metrics {
            parts.push(format!("metrics {}", p.base()));
        }
        if let Some(p) = &self.expvar {
            parts.push(format!("expvar {}", p.base()));
        }
        if let Some(pid) = self.pid {
            parts.push(format!("/proc/{pid}"));
        }
        parts.join(", ")
    }

    /// Closes every connection (they reopen on the next read).
    pub fn close(&mut self) {
        for p in [&mut self.pprof, &mut self.metrics, &mut self.expvar]
            .into_iter()
            .flatten()
        {
            p.close();
        }
    }

    /// A cheap reading for settling: one forced GC through pprof if any.
    pub async fn sample(&mut self) -> Result<Reading, SourceError> {
        let mut r = Reading::new();
        if let Some(p) = self.pprof.as_mut() {
            pprof_reading(&p.sample().await?, &mut r);
        }
        self.read_others(&mut r).await?;
        Ok(r)
    }

    /// Adds the `goroutineleak` profile's total to `r` when pprof serves
    /// it (finding out whether it does, once).
    pub async fn add_leaked_goroutines(&mut self, r: &mut Reading) -> Result<(), SourceError> {
        if let Some(p) = self.pprof.as_mut() {
            if let Some(leaks) = p.goroutine_leaks().await? {
                r.insert(LEAKED_GOROUTINES.into(), leaks.total as f64);
            }
        }
        Ok(())
    }

    /// The measurement protocol: several forced GCs through pprof, then all
    /// sources.
    pub async fn measure(&mut self) -> Result<Reading, SourceError> {
        let mut r = Reading::new();
        if let Some(p) = self.pprof.as_mut() {
            pprof_reading(&p.measure().await?, &mut r);
        }
        self.read_others(&mut r).await?;
        Ok(r)
    }

    /// [`Sources::measure`] plus the pprof profiles, when pprof is a source.
    pub async fn snapshot(&mut self) -> Result<(Reading, Option<Snapshot>), SourceError> {
        let mut r = Reading::new();
        let snap = match self.pprof.as_mut() {
            Some(p) => {
                let s = p.snapshot().await?;
                pprof_reading(&s.counters, &mut r);
                Some(s)
            }
            None => None,
        };
        self.read_others(&mut r).await?;
        Ok((r, snap))
    }

    async fn read_others(&mut self, r: &mut Reading) -> Result<(), SourceError> {
        if let Some(pid) = self.pid {
            if let Some(p) = procfs::read(pid) {
                r.insert(FDS.into(), p.fds as f64);
                r.insert(SOCKETS.into(), p.sockets as f64);
                r.insert(PIPES.into(), p.pipes as f64);
                r.insert(OTHER_FDS.into(), p.other_fds as f64);
                r.insert(RSS_BYTES.into(), p.rss_bytes as f64);
                r.insert(THREADS.into(), p.threads as f64);
            }
        }
        if let Some(p) = self.metrics.as_mut() {
            let body = p.get("").await?;
            let url = p.base().to_string();
            let text = String::from_utf8_lossy(&body);
            let series = prom::parse(&text).map_err(|e| SourceError::Content {
                url: url.clone(),
                message: format!("not a Prometheus text exposition ({e})"),
            })?;
            // Standard names fill what better sources did not.
            let standard = [
                ("go_goroutines", GOROUTINES),
                ("process_open_fds", FDS),
                ("go_memstats_heap_alloc_bytes", HEAP_BYTES),
                ("go_memstats_heap_objects", HEAP_OBJECTS),
                ("go_memstats_stack_inuse_bytes", STACK_BYTES),
                ("process_resident_memory_bytes", RSS_BYTES),
            ];
            for (metric, name) in standard {
                if r.contains_key(name) {
                    continue;
                }
                let selector = Selector {
                    name: metric.to_owned(),
                    labels: BTreeMap::new(),
                };
                if let Some(v) = selector.value(&series) {
                    r.insert(name.to_owned(), v);
                }
            }
            for (def, selector) in &self.custom {
                // A gauge created lazily is absent until first used: zero.
                r.insert(def.name.clone(), selector.value(&series).unwrap_or(0.0));
            }
        }
        if let Some(p) = self.expvar.as_mut() {
            let body = p.get("").await?;
            let url = p.base().to_string();
            let json: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| SourceError::Content {
                    url: url.clone(),
                    message: format!(
                        "not expvar JSON ({e}); is `import _ \"expvar\"` in the target?"
                    ),
                })?;
            let mem = json.get("memstats").ok_or_else(|| SourceError::Content {
                url,
                message: "has no `memstats`: the target does not import expvar's runtime stats"
                    .into(),
            })?;
            for (field, name) in [
                ("HeapAlloc", HEAP_BYTES),
                ("HeapObjects", HEAP_OBJECTS),
                ("StackInuse", STACK_BYTES),
                ("HeapInuse", HEAP_INUSE),
                ("Sys", SYS_BYTES),
            ] {
                if !r.contains_key(name) {
                    if let Some(v) = mem.get(field).and_then(serde_json::Value::as_f64) {
                        r.insert(name.to_owned(), v);
                    }
                }
            }
        }
        Ok(())
    }

    /// The signals of this run, given the first reading (which shows what
    /// the sources actually serve) and the scenario's floors.
    pub fn specs(&self, first: &Reading, scenario: &Scenario) -> Vec<SignalSpec> {
        let t = &scenario.thresholds;
        let sessions = f64::from(scenario.load.sessions);
        let heap_floor = t.heap_bytes.max(t.heap_bytes_per_session * sessions);
        let objects_floor = t.heap_objects.max(t.heap_objects_per_session * sessions);
        let gc = self.can_force_gc();
        let heap_source = if gc {
            SourceKind::Pprof
        } else if self.metrics.is_some() && first.contains_key(HEAP_BYTES) {
            SourceKind::Metrics
        } else {
            SourceKind::Expvar
        };
        let count_source = if gc {
            SourceKind::Pprof
        } else {
            SourceKind::Metrics
        };
        let fd_source = if self.pid.is_some() {
            SourceKind::Proc
        } else {
            SourceKind::Metrics
        };
        use SourceKind::{Pprof, Proc};
        use Unit::{Bytes, Count};
        let standard: [(&str, Unit, bool, f64, SourceKind); 13] = [
            (GOROUTINES, Count, true, t.goroutines, count_source),
            // Proven leaks: one more every cycle is a leak.
            (LEAKED_GOROUTINES, Count, true, 1.0, Pprof),
            (HEAP_BYTES, Bytes, gc, heap_floor, heap_source),
            (HEAP_OBJECTS, Count, gc, objects_floor, heap_source),
            (FDS, Count, true, t.fds, fd_source),
            (STACK_BYTES, Bytes, false, heap_floor, heap_source),
            (HEAP_INUSE, Bytes, false, heap_floor, heap_source),
            (SYS_BYTES, Bytes, false, heap_floor, heap_source),
            (SOCKETS, Count, false, t.fds, Proc),
            (PIPES, Count, false, t.fds, Proc),
            (OTHER_FDS, Count, false, t.fds, Proc),
            (RSS_BYTES, Bytes, false, heap_floor, fd_source),
            (THREADS, Count, false, t.goroutines, Proc),
        ];
        let mut specs: Vec<SignalSpec> = standard
            .iter()
            .filter(|(name, ..)| first.contains_key(*name))
            .map(|&(name, unit, decides, floor, source)| SignalSpec {
                name: name.to_owned(),
                unit,
                decides,
                floor,
                source,
            })
            .collect();
        for (def, _) in &self.custom {
            let unit = match def.unit {
                SignalUnit::Count => Unit::Count,
                SignalUnit::Bytes => Unit::Bytes,
            };
            let floor = def.threshold.unwrap_or(match def.unit {
                SignalUnit::Count => t.goroutines,
                SignalUnit::Bytes => heap_floor,
            });
            specs.push(SignalSpec {
                name: def.name.clone(),
                unit,
                decides: def.decides,
                floor,
                source: SourceKind::Metrics,
            });
        }
        // Deciding signals first, in a stable order.
        specs.sort_by_key(|s| !s.decides);
        specs
    }
}
