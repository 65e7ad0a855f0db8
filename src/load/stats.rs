//! Aggregation: latency histograms, session counts and bounded failure
//! examples. Each shard of the cycle fills its own [`Stats`]; the cycle merges
//! them once at the end and turns the result into a [`CycleLoad`].

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::failure::{Cause, Failure};
use super::{CycleLoad, LatencySummary};

/// Distinct failure messages kept per cycle: enough to show what went wrong,
/// few enough that a cycle of a million failing sessions costs nothing.
pub(crate) const MAX_FAILURE_EXAMPLES: usize = 5;

/// Significant digits of every latency histogram (0.1 % resolution).
const SIGNIFICANT_DIGITS: u8 = 3;

/// One kind of timed operation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Metric {
    /// TCP connect.
    Connect,
    /// Websocket upgrade, or HTTP time to the response head.
    Handshake,
    /// Websocket send to expected reply.
    RoundTrip,
    /// HTTP request to the end of its body.
    Request,
}

const METRICS: usize = 4;

/// Counts and latencies of a group of sessions.
#[derive(Debug)]
pub(crate) struct Stats {
    started: u64,
    completed: u64,
    failures: [u64; Cause::ALL.len()],
    examples: Vec<String>,
    latency: [Histogram<u64>; METRICS],
}

impl Stats {
    /// Empty stats whose histograms hold values up to `longest` (every timed
    /// operation is bounded by the step timeout, so nothing longer is seen;
    /// anything longer is clamped rather than lost).
    pub(crate) fn new(longest: Duration) -> Stats {
        let high = u64::try_from(longest.as_micros())
            .unwrap_or(u64::MAX)
            .max(2_000);
        let histogram = || {
            Histogram::new_with_bounds(1, high, SIGNIFICANT_DIGITS)
                .expect("bounds 1..high with high >= 2000 are valid")
        };
        Stats {
            started: 0,
            completed: 0,
            failures: [0; Cause::ALL.len()],
            examples: Vec::new(),
            latency: [histogram(), histogram(), histogram(), histogram()],
        }
    }

    pub(crate) fn started(&mut self) {
        self.started += 1;
    }

    pub(crate) fn completed(&mut self) {
        self.completed += 1;
    }

    pub(crate) fn record(&mut self, metric: Metric, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency[metric as usize].saturating_record(us);
    }

    /// Counts `sessions` failed sessions under `failure`'s cause; its message
    /// is formatted only while there is room for another example.
    pub(crate) fn failed(&mut self, failure: &Failure, sessions: u64) {
        self.failures[failure.cause.index()] += sessions;
        if self.examples.len() < MAX_FAILURE_EXAMPLES {
            self.add_example(failure.to_string());
        }
    }

    /// Sessions started but neither completed nor failed.
    pub(crate) fn open(&self) -> u64 {
        self.started - self.completed - self.failures.iter().sum::<u64>()
    }

    fn add_example(&mut self, message: String) {
        if self.examples.len() < MAX_FAILURE_EXAMPLES && !self.examples.contains(&message) {
            self.examples.push(message);
        }
    }

    /// Adds another group's counts and latencies to this one.
    pub(crate) fn merge(&mut self, other: Stats) {
        self.started += other.started;
        self.completed += other.completed;
        for (mine, theirs) in self.failures.iter_mut().zip(other.failures) {
            *mine += theirs;
        }
        for example in other.examples {
            self.add_example(example);
        }
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            // Same bounds on both sides, so adding cannot fail; a clamp is
            // still better than a panic in a report path.
            if mine.add(theirs).is_err() {
                for v in theirs.iter_recorded() {
                    mine.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                }
            }
        }
    }

    /// The cycle's report, given its wall time.
    pub(crate) fn into_cycle(self, elapsed: Duration) -> CycleLoad {
        let failed = self.failures.iter().sum();
        let failures = Cause::ALL
            .iter()
            .filter(|c| self.failures[c.index()] > 0)
            .map(|c| (c.name().to_owned(), self.failures[c.index()]))
            .collect();
        let [connect, handshake, round_trip, request] = self.latency.each_ref().map(summary);
        CycleLoad {
            started: self.started,
            completed: self.completed,
            failed,
            failures,
            failure_examples: self.examples,
            connect,
            handshake,
            round_trip,
            request,
            elapsed_s: elapsed.as_secs_f64(),
        }
    }
}

fn summary(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        count: h.len(),
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
    }
}

/// A shard's [`Stats`], shared by the sessions that shard runs concurrently.
///
/// Only the shard's own task touches it, so the lock is never contended; it
/// is never held across an await.
#[derive(Debug)]
pub(crate) struct Recorder(Mutex<Stats>);

impl Recorder {
    pub(crate) fn new(stats: Stats) -> Recorder {
        Recorder(Mutex::new(stats))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Stats) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn record(&self, metric: Metric, took: Duration) {
        self.with(|s| s.record(metric, took));
    }

    pub(crate) fn into_inner(self) -> Stats {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::failure::{Detail, Stage};

    fn refused(n: u16) -> Failure {
        Failure::new(
            Cause::Refused,
            Stage::Connect,
            Detail::Io(std::io::Error::other(format!("attempt {n}"))),
        )
    }

    #[test]
    fn examples_are_distinct_and_bounded() {
        let mut s = Stats::new(Duration::from_secs(1));
        for n in 0..1000 {
            s.started();
            s.failed(&refused(n % 3), 1);
        }
        assert_eq!(s.examples.len(), 3);
        for n in 0..1000 {
            s.started();
            s.failed(&refused(n), 1);
        }
        assert_eq!(s.examples.len(), MAX_FAILURE_EXAMPLES);
        let cycle = s.into_cycle(Duration::from_millis(1500));
        assert_eq!(cycle.failed, 2000);
        assert_eq!(cycle.failures.get("refused"), Some(&2000));
        assert_eq!(cycle.elapsed_s, 1.5);
    }

    #[test]
    fn merge_adds_counts_and_latencies() {
        let mut a = Stats::new(Duration::from_secs(10));
        let mut b = Stats::new(Duration::from_secs(10));
        for ms in 1..=100 {
            a.started();
            a.completed();
            a.record(Metric::Connect, Duration::from_millis(ms));
        }
        b.started();
        b.failed(&refused(0), 1);
        b.record(Metric::Connect, Duration::from_secs(60));
        a.merge(b);
        assert_eq!(a.open(), 0);
        let cycle = a.into_cycle(Duration::ZERO);
        assert_eq!(
            (cycle.started, cycle.completed, cycle.failed),
            (101, 100, 1)
        );
        assert_eq!(cycle.connect.count, 101);
        // The 51st of 101 values; 3 significant digits: within 0.1 %.
        assert!(
            (51_000..=51_051).contains(&cycle.connect.p50_us),
            "{:?}",
            cycle.connect
        );
        // Clamped to the histogram's bound, not lost.
        assert!(cycle.connect.max_us >= 9_990_000, "{:?}", cycle.connect);
        assert_eq!(cycle.round_trip.count, 0);
        assert_eq!(cycle.failure_examples.len(), 1);
    }
}
