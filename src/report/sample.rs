//! A fixed, realistic [`Report`] of a leaking websocket run, built without a
//! network: what the renderers' tests and the schema tests check against.
//!
//! Its text fields carry markup (`<hub>`, `&`, quotes) on purpose, so every
//! format's escaping is exercised.

use std::collections::BTreeMap;

use super::model::*;
use crate::verdict;

const SESSIONS: u32 = 200;

fn counters(goroutines: u64, heap_bytes: u64) -> Reading {
    [
        ("goroutines", goroutines as f64),
        ("heap_bytes", heap_bytes as f64),
        ("heap_objects", (heap_bytes / 64) as f64),
        ("heap_inuse", (heap_bytes + 400_000) as f64),
        ("stack_bytes", (goroutines * 8192) as f64),
        ("sys_bytes", 12_000_000.0),
        ("fds", 8.0),
        ("sockets", 4.0),
        ("rss_bytes", 14_000_000.0),
        ("threads", 7.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn tolerance(goroutines: f64, heap_bytes: f64, heap_objects: f64, fds: f64) -> Tolerance {
    [
        ("goroutines", goroutines),
        ("heap_bytes", heap_bytes),
        ("heap_objects", heap_objects),
        ("fds", fds),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn latency(count: u64, p50_us: u64) -> LatencySummary {
    LatencySummary {
        count,
        p50_us,
        p90_us: p50_us * 2,
        p99_us: p50_us * 4,
        p999_us: p50_us * 5,
        max_us: p50_us * 6,
    }
}

/// The load of one cycle of `sessions` sessions.
fn load(sessions: u32, p50_us: u64, failed: u64) -> CycleLoad {
    let sessions = u64::from(sessions);
    let mut failures = BTreeMap::new();
    let mut failure_examples = Vec::new();
    if failed > 0 {
        failures.insert("timeout".to_owned(), failed);
        failure_examples
            .push("timeout at expect: no message containing \"hello\" within 10s".into());
    }
    CycleLoad {
        started: sessions,
        completed: sessions - failed,
        failed,
        failures,
        failure_examples,
        connect: latency(sessions, 90),
        handshake: latency(sessions, 300),
        round_trip: latency(sessions, p50_us),
        request: LatencySummary::default(),
        elapsed_s: 0.42,
    }
}

fn settled(ending: Ending, seconds: f64, last: Reading) -> Settled {
    Settled {
        ending,
        seconds,
        polls: 9,
        last,
        noise: tolerance(0.0, 1024.0, 3.0, 0.0),
        still_falling: false,
    }
}

/// Sessions of each measured cycle: the scenario's three, then two
/// escalation cycles of doubling size.
const SIZES: [u32; 5] = [SESSIONS, SESSIONS, SESSIONS, 2 * SESSIONS, 4 * SESSIONS];

/// A complete report of a run that leaked one goroutine and about 9 KiB of
/// heap per session over three cycles and two escalation cycles (1,800
/// sessions), with two timed-out sessions, judged after the horizon wait.
pub fn leaking_report() -> Report {
    let base = counters(12, 400_000);
    let mut served = 0u64;
    let cycles: Vec<Reading> = SIZES
        .iter()
        .map(|s| {
            served += u64::from(*s);
            counters(12 + served, 400_000 + 9_000 * served)
        })
        .collect();
    let tolerance = tolerance(2.0, 65_536.0, 256.0, 2.0);
    let repeat = self::tolerance(0.0, 1024.0, 3.0, 0.0);
    let mut curves = verdict::Curves::default();
    curves.start(2.1);
    for (k, s) in SIZES.iter().enumerate() {
        curves.push(u64::from(*s), 2.4 + 0.5 * k as f64, &repeat);
    }
    let last = cycles[cycles.len() - 1].clone();
    let measured = verdict::Measured {
        baseline: &base,
        readings: &cycles,
        curves: &curves,
        bands: &tolerance,
        stop: verdict::Stop::Sessions { max: 1_800 },
        horizon: Some(verdict::HorizonEvidence {
            horizon_s: 30.0,
            before: &last,
            after: &last,
            waited_s: 27.6,
            oldest_age_s: 30.0,
            youngest_age_s: 28.0,
        }),
    };
    let specs: Vec<crate::sources::SignalSpec> = [
        (name::GOROUTINES, Unit::Count, true, 2.0),
        (name::HEAP_BYTES, Unit::Bytes, true, 65_536.0),
        (name::HEAP_OBJECTS, Unit::Count, true, 256.0),
        (name::STACK_BYTES, Unit::Bytes, false, 65_536.0),
    ]
    .into_iter()
    .map(|(n, unit, decides, floor)| {
        crate::sources::SignalSpec::new(n, unit, decides, floor, SourceKind::Pprof)
    })
    .collect();
    let signals = verdict::judge_all(&specs, SESSIONS, &measured);

    let mut phases = vec![Phase {
        kind: PhaseKind::Warmup,
        index: 1,
        sessions: SESSIONS,
        escalation: false,
        load: load(SESSIONS, 800, 0),
        settle: settled(Ending::Quiet, 1.6, base.clone()),
        measured: None,
    }];
    for (k, c) in cycles.iter().enumerate() {
        phases.push(Phase {
            kind: PhaseKind::Cycle,
            index: k as u32 + 1,
            sessions: SIZES[k],
            escalation: k >= 3,
            load: load(SIZES[k], 1000 + 250 * k as u64, if k == 1 { 2 } else { 0 }),
            settle: settled(Ending::Quiet, 0.2 + 0.1 * k as f64, c.clone()),
            measured: Some(c.clone()),
        });
    }

    let mut timeline = Vec::new();
    let mut t = 0.5;
    let mut point = |phase: &str, goroutines: f64, heap_bytes: f64| {
        timeline.push(TimelinePoint {
            t_s: t,
            phase: phase.to_owned(),
            values: [
                ("goroutines".to_owned(), goroutines),
                ("heap_bytes".to_owned(), heap_bytes),
            ]
            .into(),
        });
        t += 0.7;
    };
    point("warm-up 1/1", 212.0, 2_300_000.0);
    point("baseline", 12.0, 420_000.0);
    point("baseline", 12.0, 400_000.0);
    for (k, c) in cycles.iter().enumerate() {
        let name = if k < 3 {
            format!("cycle {}/3", k + 1)
        } else {
            format!("escalation {} ({} sessions)", k - 2, SIZES[k])
        };
        let (g, h) = (c["goroutines"], c["heap_bytes"]);
        point(&name, g + 200.0, h + 900_000.0);
        point(&name, g, h + 100_000.0);
        point(&name, g, h);
    }
    point("horizon", 1812.0, 16_600_000.0);

    let frames: Vec<String> = [
        "runtime.gopark",
        "runtime.chanrecv",
        "runtime.chanrecv2",
        "main.(*client).writePump",
        "main.serveWs.func1",
    ]
    .map(String::from)
    .to_vec();
    let suspects = vec![
        Suspect {
            kind: SuspectKind::Goroutine,
            function: "main.(*client).writePump".to_owned(),
            frames,
            state: Some("chan receive".to_owned()),
            created_by: Some("main.serveWs".to_owned()),
            base: 0,
            after: 1800,
            per_cycle: 200.0,
            per_session: 1.0,
            hint: None,
        },
        Suspect {
            kind: SuspectKind::Heap,
            function: "main.newClient".to_owned(),
            frames: vec!["main.newClient".to_owned(), "main.serveWs".to_owned()],
            state: None,
            created_by: None,
            base: 0,
            after: 16_200_000,
            per_cycle: 1_800_000.0,
            per_session: 9_000.0,
            hint: Some("a map of <clients> & sessions \"never\" pruned".to_owned()),
        },
    ];

    let profiles = [
        ("heap_base", "heap-base.pb.gz"),
        ("heap_final", "heap-final.pb.gz"),
        ("heap_diff", "diff-heap.pb.gz"),
        ("goroutine_diff", "diff-goroutine.pb.gz"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    Report {
        schema: SCHEMA,
        leakbench: env!("CARGO_PKG_VERSION"),
        status: Status::Complete,
        name: "chat <hub>".to_owned(),
        scenario: "scenarios/chat-hub.toml".to_owned(),
        scenario_text: Some(
            "name = \"chat <hub>\"\n[target]\nurl = \"ws://127.0.0.1:18080/ws?a=1&b=2\"\n\
             [load]\nsessions = 200\n</pre><script>alert(1)</script>\n"
                .to_owned(),
        ),
        url: "ws://127.0.0.1:18080/ws?a=1&b=2".to_owned(),
        pprof: "http://127.0.0.1:18080/debug/pprof".to_owned(),
        sources: "pprof http://127.0.0.1:18080/debug/pprof, /proc/4242".to_owned(),
        remote: None,
        verdict: Verdict::Leak,
        reasons: signals
            .iter()
            .filter(|s| s.decides && s.verdict == Verdict::Leak)
            .map(|s| format!("{} {}", s.name, s.reason))
            .collect(),
        sessions: SESSIONS,
        warmup: 1,
        cycles: SIZES.len() as u32,
        course: verdict::Course {
            stop: verdict::Stop::Sessions { max: 1_800 },
            sessions: 1_800,
            max_sessions: 1_800,
            max_time_s: 60.0,
            horizon_s: 30.0,
            horizon_wait_s: Some(27.6),
        },
        signals,
        suspects,
        tolerance,
        phases,
        timeline,
        profiles,
        duration_s: 41.3,
    }
}

/// [`leaking_report`] with its heap filled by the first 400 sessions and
/// flat after them: a bounded heap_bytes finding beside the goroutine leak.
pub fn bounded_report() -> Report {
    let mut r = leaking_report();
    let heap = r
        .signals
        .iter_mut()
        .find(|s| s.name == name::HEAP_BYTES)
        .expect("the sample judges heap_bytes");
    let points = heap
        .curve
        .iter()
        .map(|p| Point {
            value: heap.baseline + 9_000.0 * p.sessions.min(400) as f64,
            ..*p
        })
        .collect();
    let series = verdict::Series {
        name: heap.name.clone(),
        unit: heap.unit,
        source: heap.source,
        decides: heap.decides,
        points,
        band: heap.threshold,
        stop: verdict::Stop::Decided,
        horizon: None,
        runtime_keeps: 0.0,
    };
    *heap = verdict::judge(&series, r.sessions);
    r.reasons = r
        .signals
        .iter()
        .filter(|s| s.decides && s.verdict == Verdict::Leak)
        .map(|s| format!("{} {}", s.name, s.reason))
        .collect();
    r
}
