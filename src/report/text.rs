//! The terminal summary: verdict first, then each signal, then the suspects.

use std::fmt::Write;

use super::{Render, Report};
use crate::run::Status;
use crate::verdict::{Verdict, format_per_session, format_value};

/// Frames shown per suspect before the rest are elided.
const FRAMES_SHOWN: usize = 8;
/// Suspects shown in the terminal (report.json keeps them all).
const SUSPECTS_SHOWN: usize = 5;

/// Plain-text summary for a terminal or a CI log.
pub struct Text;

impl Render for Text {
    fn file_name(&self) -> &'static str {
        "summary.txt"
    }

    fn render(&self, r: &Report) -> String {
        let mut o = String::new();
        let banner = match (r.status, r.verdict) {
            (Status::Error, _) => "ERROR",
            (Status::Interrupted, _) => "INTERRUPTED",
            (_, Verdict::Pass) => "PASS",
            (_, Verdict::Leak) => "LEAK",
            (_, Verdict::Inconclusive) => "INCONCLUSIVE",
        };
        let first = r.reasons.first().map(String::as_str).unwrap_or("");
        let _ = writeln!(o, "{banner}  {}: {first}", r.name);
        for reason in r.reasons.iter().skip(1) {
            let _ = writeln!(o, "      {reason}");
        }
        let _ = writeln!(
            o,
            "  {} · {} sessions × {} cycles (+{} warm-up) · {:.1} s",
            r.url, r.sessions, r.cycles, r.warmup, r.duration_s
        );

        let _ = writeln!(o);
        let mut header = format!("  {:<14}{:>12}", "signal", "baseline");
        for k in 1..=r.cycles {
            let _ = write!(header, "{:>12}", format!("cycle {k}"));
        }
        let _ = write!(header, "{:>14}  verdict", "per session");
        let _ = writeln!(o, "{header}");
        for s in &r.signals {
            let mut row = format!("  {:<14}{:>12}", s.name, format_value(s.baseline, s.unit));
            for v in &s.cycles {
                let _ = write!(row, "{:>12}", format_value(*v, s.unit));
            }
            let verdict = if s.decides {
                s.verdict.as_str().to_owned()
            } else {
                "(shown only)".to_owned()
            };
            let _ = write!(
                row,
                "{:>14}  {verdict}",
                format_per_session(s.per_session, s.unit)
            );
            let _ = writeln!(o, "{row}");
        }
        for s in r
            .signals
            .iter()
            .filter(|s| s.decides && s.verdict != Verdict::Pass)
        {
            let _ = writeln!(o, "  {}: {}", s.name, s.reason);
        }

        if !r.suspects.is_empty() {
            let _ = writeln!(o, "\n  suspects (most significant first)");
            for (i, s) in r.suspects.iter().take(SUSPECTS_SHOWN).enumerate() {
                let unit = if s.kind == "heap" { "bytes" } else { "count" };
                let growth = format_value((s.after - s.base) as f64, unit);
                let state = s
                    .state
                    .as_deref()
                    .map(|st| format!(" [{st}]"))
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "  {}. {:<9} +{growth} ({}/cycle, {}/session){state}  {}",
                    i + 1,
                    s.kind,
                    format_value(s.per_cycle.round(), unit),
                    format_per_session(s.per_session, unit),
                    s.function
                );
                for f in s.frames.iter().take(FRAMES_SHOWN) {
                    let _ = writeln!(o, "        {f}");
                }
                if s.frames.len() > FRAMES_SHOWN {
                    let _ = writeln!(
                        o,
                        "        ... {} more frames",
                        s.frames.len() - FRAMES_SHOWN
                    );
                }
                if let Some(c) = &s.created_by {
                    let _ = writeln!(o, "        created by {c}");
                }
                if let Some(h) = &s.hint {
                    let _ = writeln!(o, "        hint: {h}");
                }
            }
            if r.suspects.len() > SUSPECTS_SHOWN {
                let _ = writeln!(
                    o,
                    "  ... {} more in report.json",
                    r.suspects.len() - SUSPECTS_SHOWN
                );
            }
        }

        let _ = writeln!(o, "\n  cycles");
        for p in &r.phases {
            let l = &p.load;
            let lat = if l.round_trip.count > 0 {
                format!(
                    "round trip p50 {} p99 {}",
                    us(l.round_trip.p50_us),
                    us(l.round_trip.p99_us)
                )
            } else if l.request.count > 0 {
                format!(
                    "request p50 {} p99 {}",
                    us(l.request.p50_us),
                    us(l.request.p99_us)
                )
            } else {
                format!(
                    "connect p50 {} p99 {}",
                    us(l.connect.p50_us),
                    us(l.connect.p99_us)
                )
            };
            let failures = if l.failed == 0 {
                String::new()
            } else {
                let causes: Vec<String> =
                    l.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!(" ({})", causes.join(", "))
            };
            let _ = writeln!(
                o,
                "  {:<8}{:>2}  {} ok, {} failed{failures} in {:.2} s; {lat}; settled ({:?}) in {:.1} s",
                p.kind,
                p.index,
                l.completed,
                l.failed,
                l.elapsed_s,
                p.settle.ending,
                p.settle.seconds
            );
        }
        if !r.profiles.is_empty() {
            let _ = writeln!(
                o,
                "\n  profiles: {}",
                r.profiles.values().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        o
    }
}

fn us(v: u64) -> String {
    if v >= 1_000_000 {
        format!("{:.2}s", v as f64 / 1e6)
    } else if v >= 1000 {
        format!("{:.1}ms", v as f64 / 1000.0)
    } else {
        format!("{v}µs")
    }
}
