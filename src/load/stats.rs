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
            add_histogram(mine, theirs);
        }
    }

    /// The cycle's report, given its wall time.
    pub(crate) fn into_cycle(self, elapsed: Duration) -> CycleLoad {
        self.into_parts(elapsed).0
    }

    /// The cycle's report and the histograms it summarises (a fleet agent
    /// sends both; the coordinator adds the histograms of every agent).
    pub(crate) fn into_parts(self, elapsed: Duration) -> (CycleLoad, Latencies) {
        let failed = self.failures.iter().sum();
        let failures = Cause::ALL
            .iter()
            .filter(|c| self.failures[c.index()] > 0)
            .map(|c| (c.name().to_owned(), self.failures[c.index()]))
            .collect();
        let latencies = Latencies(self.latency);
        let [connect, handshake, round_trip, request] = latencies.summaries();
        let cycle = CycleLoad {
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
        };
        (cycle, latencies)
    }
}

/// The four latency histograms of a cycle (connect, handshake, round trip,
/// request), kept apart from [`CycleLoad`] so that a local run's phases do
/// not each hold a megabyte of counts. A fleet agent ships them in
/// HdrHistogram's V2 serialization; adding histograms (not averaging
/// percentiles) keeps the fleet's percentiles exact.
#[derive(Debug, Clone)]
pub struct Latencies([Histogram<u64>; METRICS]);

impl Latencies {
    /// Empty histograms with the bounds [`Stats::new`] gives for `longest`.
    pub fn new(longest: Duration) -> Latencies {
        Latencies(Stats::new(longest).latency)
    }

    /// Each histogram in HdrHistogram's V2 serialization (deflated), base64.
    pub fn encode(&self) -> Result<[String; METRICS], String> {
        use base64::Engine as _;
        use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
        let mut out: [String; METRICS] = Default::default();
        let mut serializer = V2DeflateSerializer::new();
        for (slot, h) in out.iter_mut().zip(&self.0) {
            let mut bytes = Vec::new();
            serializer
                .serialize(h, &mut bytes)
                .map_err(|e| format!("serializing a latency histogram: {e:?}"))?;
            *slot = base64::engine::general_purpose::STANDARD.encode(bytes);
        }
        Ok(out)
    }

    /// The inverse of [`Latencies::encode`].
    pub fn decode(encoded: &[String]) -> Result<Latencies, String> {
        use base64::Engine as _;
        use hdrhistogram::serialization::Deserializer;
        if encoded.len() != METRICS {
            return Err(format!(
                "{} latency histograms where {METRICS} were expected",
                encoded.len()
            ));
        }
        let mut deserializer = Deserializer::new();
        let mut hists = Vec::with_capacity(METRICS);
        for text in encoded {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("a latency histogram is not base64: {e}"))?;
            let h: Histogram<u64> = deserializer
                .deserialize(&mut bytes.as_slice())
                .map_err(|e| format!("a latency histogram does not decode: {e:?}"))?;
            hists.push(h);
        }
        let hists: [Histogram<u64>; METRICS] = hists
            .try_into()
            .map_err(|_| "latency histogram count changed".to_owned())?;
        Ok(Latencies(hists))
    }

    /// Adds another set's counts to these (a value beyond these bounds is
    /// clamped to the highest, not lost).
    pub fn add(&mut self, other: &Latencies) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            add_histogram(mine, theirs);
        }
    }

    /// Percentiles of connect, handshake, round trip and request, in that order.
    pub fn summaries(&self) -> [LatencySummary; METRICS] {
        self.0.each_ref().map(summary)
    }

    /// Operations counted by each histogram, in the order of [`Latencies::summaries`].
    pub fn counts(&self) -> [u64; METRICS] {
        self.0.each_ref().map(|h| h.len())
    }
}

/// One fleet cycle's load from each agent's part: counts and failure causes
/// summed, failure examples kept distinct and bounded, and percentiles read
/// from the sum of the agents' histograms (exact for the fleet, as if one
/// process had recorded every operation). `longest` bounds the histograms
/// as in [`Stats::new`]; `elapsed` is the fleet cycle's wall time.
pub fn merge_parts(
    parts: &[(CycleLoad, Latencies)],
    longest: Duration,
    elapsed: Duration,
) -> CycleLoad {
    let mut latencies = Latencies::new(longest);
    let mut total = CycleLoad::default();
    for (part, lat) in parts {
        latencies.add(lat);
        total.started += part.started;
        total.completed += part.completed;
        total.failed += part.failed;
        for (cause, n) in &part.failures {
            *total.failures.entry(cause.clone()).or_default() += n;
        }
        for example in &part.failure_examples {
            if total.failure_examples.len() < MAX_FAILURE_EXAMPLES
                && !total.failure_examples.contains(example)
            {
                total.failure_examples.push(example.clone());
            }
        }
    }
    [
        total.connect,
        total.handshake,
        total.round_trip,
        total.request,
    ] = latencies.summaries();
    total.elapsed_s = elapsed.as_secs_f64();
    total
}

/// `mine += theirs`, clamping values beyond `mine`'s bounds.
fn add_histogram(mine: &mut Histogram<u64>, theirs: &Histogram<u64>) {
    // Same bounds on both sides (the usual case), so adding cannot fail; a
    // clamp is still better than a panic in a report path.
    if mine.add(theirs).is_err() {
        for v in theirs.iter_recorded() {
            mine.saturating_record_n(v.value_iterated_to(), v.count_at_value());
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

    /// Records `values` (ms) as connect times into fresh stats of one session each.
    fn part(values: &[u64]) -> Stats {
        let mut s = Stats::new(Duration::from_secs(10));
        for &ms in values {
            s.started();
            s.completed();
            s.record(Metric::Connect, Duration::from_micros(ms * 997));
            s.record(Metric::Handshake, Duration::from_micros(ms * 13));
        }
        s
    }

    #[test]
    fn fleet_parts_merge_to_the_histogram_of_every_value() {
        let values: Vec<u64> = (1..=3000).map(|v| (v * 7919) % 5003 + 1).collect();
        let chunks: Vec<&[u64]> = values.chunks(1100).collect();
        // Through the wire form, as agents send them.
        let parts: Vec<(CycleLoad, Latencies)> = chunks
            .iter()
            .map(|c| {
                let (cycle, lat) = part(c).into_parts(Duration::from_secs(1));
                (cycle, Latencies::decode(&lat.encode().unwrap()).unwrap())
            })
            .collect();
        let merged = merge_parts(&parts, Duration::from_secs(10), Duration::from_secs(2));
        let whole = part(&values).into_cycle(Duration::from_secs(2));
        assert_eq!(merged.started, 3000);
        assert_eq!(merged.completed, 3000);
        for (m, w) in [
            (&merged.connect, &whole.connect),
            (&merged.handshake, &whole.handshake),
        ] {
            assert_eq!(
                (m.count, m.p50_us, m.p90_us, m.p99_us, m.p999_us, m.max_us),
                (w.count, w.p50_us, w.p90_us, w.p99_us, w.p999_us, w.max_us)
            );
        }
        let sum: u64 = parts.iter().map(|(c, _)| c.connect.count).sum();
        assert_eq!(merged.connect.count, sum);
        assert_eq!(merged.round_trip.count, 0);
    }

    #[test]
    fn fleet_parts_merge_failures_bounded() {
        let mut parts = Vec::new();
        for k in 0..4u16 {
            let mut s = Stats::new(Duration::from_secs(1));
            for n in 0..3 {
                s.started();
                s.failed(&refused(k * 2 + n), 1);
            }
            parts.push(s.into_parts(Duration::ZERO));
        }
        let merged = merge_parts(&parts, Duration::from_secs(1), Duration::ZERO);
        assert_eq!(merged.failed, 12);
        assert_eq!(merged.failures.get("refused"), Some(&12));
        assert_eq!(merged.failure_examples.len(), MAX_FAILURE_EXAMPLES);
    }

    #[test]
    fn latencies_refuse_bad_wire_text() {
        assert!(Latencies::decode(&["x".to_owned()]).is_err());
        let four = vec!["not base64!".to_owned(); 4];
        assert!(Latencies::decode(&four).unwrap_err().contains("base64"));
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
