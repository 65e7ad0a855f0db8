//! The terminal summary: verdict banner, one row per signal, the suspects
//! with trimmed stacks, then one row per cycle (sessions, failures, settle,
//! latency percentiles) and the failures by cause.
//!
//! Colour only when asked for ([`Text::detect`]: stdout is a terminal and
//! `NO_COLOR` is unset); the layout is the same either way, so CI logs and
//! tests see exactly what a terminal shows, minus the escape codes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::io::IsTerminal;

use super::model::{PhaseKind, Status, Verdict, format_per_session, format_value};
use super::{
    Render, Report, course_line, finding, latency_kind, scenario_cycles, suspect_unit,
    trimmed_frames,
};

/// Frames shown per suspect before the rest are elided.
pub const FRAMES_SHOWN: usize = 8;
/// Suspects shown in the terminal (report.json keeps them all).
const SUSPECTS_SHOWN: usize = 5;

const RED: &str = "1;31";
const GREEN: &str = "1;32";
const YELLOW: &str = "1;33";
const BOLD: &str = "1";
const DIM: &str = "2";

/// Plain-text summary for a terminal or a CI log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Text {
    /// Use ANSI colours.
    pub color: bool,
}

impl Text {
    /// No colour: for files, pipes and tests.
    pub fn plain() -> Text {
        Text { color: false }
    }

    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty
    /// (see no-color.org).
    pub fn detect() -> Text {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Text {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn verdict_colour(v: Verdict) -> &'static str {
        match v {
            Verdict::Pass => GREEN,
            Verdict::Leak => RED,
            Verdict::Inconclusive => YELLOW,
        }
    }
}

impl Render for Text {
    fn file_name(&self) -> &'static str {
        "summary.txt"
    }

    fn render(&self, r: &Report) -> String {
        let mut o = String::new();
        let banner = match r.status {
            Status::Error => "ERROR".to_owned(),
            Status::Interrupted => "INTERRUPTED".to_owned(),
            Status::Complete => r.verdict.as_str().to_uppercase(),
        };
        let first = r.reasons.first().map(String::as_str).unwrap_or("");
        let _ = writeln!(
            o,
            "{}  {}: {first}",
            self.paint(&banner, Self::verdict_colour(r.verdict)),
            r.name
        );
        for reason in r.reasons.iter().skip(1) {
            let _ = writeln!(o, "      {reason}");
        }
        let _ = writeln!(
            o,
            "  {} · {} sessions × {} cycles (+{} warm-up) · {:.1} s",
            r.url,
            r.sessions,
            scenario_cycles(r),
            r.warmup,
            r.duration_s
        );
        if let Some(remote) = &r.remote {
            let _ = writeln!(o, "  remote hosts allowed: {}", remote.line());
        }
        if let Some(course) = course_line(r) {
            let _ = writeln!(o, "  {course}");
        }
        self.signals(&mut o, r);
        self.suspects(&mut o, r);
        self.cycles(&mut o, r);
        if !r.profiles.is_empty() {
            let _ = writeln!(
                o,
                "\n  {} {}",
                self.paint("profiles:", DIM),
                r.profiles.values().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        o
    }
}

impl Text {
    fn signals(&self, o: &mut String, r: &Report) {
        if r.signals.is_empty() {
            return;
        }
        let _ = writeln!(o);
        // Names longer than the column (user signals, leaked_goroutines)
        // widen it, keeping a space before the baseline.
        let w = r
            .signals
            .iter()
            .map(|s| s.name.chars().count() + 1)
            .max()
            .unwrap_or(0)
            .max(14);
        let mut header = format!("  {:<w$}{:>12}", "signal", "baseline");
        for k in 1..=r.cycles {
            let _ = write!(header, "{:>12}", format!("cycle {k}"));
        }
        let _ = write!(header, "{:>14}  verdict", "per session");
        let _ = writeln!(o, "{}", self.paint(&header, BOLD));
        for s in &r.signals {
            let mut row = format!("  {:<w$}{:>12}", s.name, format_value(s.baseline, s.unit));
            for v in &s.cycles {
                let _ = write!(row, "{:>12}", format_value(*v, s.unit));
            }
            let verdict = if s.decides {
                self.paint(s.verdict.as_str(), Self::verdict_colour(s.verdict))
            } else {
                self.paint("(shown only)", DIM)
            };
            let _ = write!(
                row,
                "{:>14}  {verdict}",
                format_per_session(s.per_session, s.unit)
            );
            let _ = writeln!(o, "{row}");
        }
        // One line per deciding signal's finding, coloured by its verdict.
        for s in r.signals.iter().filter(|s| s.decides) {
            let (kind, why) = finding(s);
            let _ = writeln!(
                o,
                "  {}: {} — {why}",
                s.name,
                self.paint(kind, Self::verdict_colour(s.verdict))
            );
        }
    }

    fn suspects(&self, o: &mut String, r: &Report) {
        if r.suspects.is_empty() {
            return;
        }
        let _ = writeln!(
            o,
            "\n  {}",
            self.paint("suspects (most significant first)", BOLD)
        );
        for (i, s) in r.suspects.iter().take(SUSPECTS_SHOWN).enumerate() {
            let unit = suspect_unit(s);
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
                self.paint(&s.function, BOLD)
            );
            for line in trimmed_frames(s, FRAMES_SHOWN) {
                let _ = writeln!(o, "        {line}");
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

    fn cycles(&self, o: &mut String, r: &Report) {
        if r.phases.is_empty() {
            return;
        }
        let kind = latency_kind(r);
        let _ = writeln!(o);
        let header = format!(
            "  {:<11}{:>8}{:>8}{:>9}  {:<16}{:>9}{:>9}{:>9}{:>9}",
            "cycle", "ok", "failed", "load", "settled", "p50", "p90", "p99", "max"
        );
        let _ = writeln!(
            o,
            "{}  {}",
            self.paint(&header, BOLD),
            self.paint(&format!("({} latency)", kind.label()), DIM)
        );
        let mut causes: BTreeMap<&str, u64> = BTreeMap::new();
        for p in &r.phases {
            let l = &p.load;
            let lat = kind.of(l);
            let name = if p.kind == PhaseKind::Warmup {
                format!("warm-up {}", p.index)
            } else {
                format!("cycle {}", p.index)
            };
            let settled = format!("{:?} {:.1} s", p.settle.ending, p.settle.seconds).to_lowercase();
            let failed = format!("{:>8}", l.failed);
            let failed = if l.failed > 0 {
                self.paint(&failed, YELLOW)
            } else {
                failed
            };
            let _ = writeln!(
                o,
                "  {name:<11}{:>8}{failed}{:>9}  {settled:<16}{:>9}{:>9}{:>9}{:>9}",
                l.completed,
                format!("{:.2} s", l.elapsed_s),
                us(lat.p50_us),
                us(lat.p90_us),
                us(lat.p99_us),
                us(lat.max_us),
            );
            for (cause, n) in &l.failures {
                *causes.entry(cause).or_default() += n;
            }
        }
        if !causes.is_empty() {
            let list: Vec<String> = causes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                o,
                "  {} {}",
                self.paint("failures by cause:", YELLOW),
                list.join(", ")
            );
            let examples: Vec<&String> = r
                .phases
                .iter()
                .flat_map(|p| &p.load.failure_examples)
                .take(3)
                .collect();
            for e in examples {
                let _ = writeln!(o, "    e.g. {e}");
            }
        }
    }
}

/// Microseconds as a short duration; `-` for none.
pub fn us(v: u64) -> String {
    if v == 0 {
        "-".to_owned()
    } else if v >= 1_000_000 {
        format!("{:.2}s", v as f64 / 1e6)
    } else if v >= 1000 {
        format!("{:.1}ms", v as f64 / 1000.0)
    } else {
        format!("{v}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::{bounded_report, leaking_report};

    #[test]
    fn plain_summary_has_banner_signals_suspects_and_cycles() {
        let text = Text::plain().render(&leaking_report());
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.starts_with("LEAK  chat <hub>: goroutines"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("goroutines") && l.ends_with("leak")),
            "{text}"
        );
        assert!(text.contains("main.(*client).writePump"), "{text}");
        assert!(text.contains("[chan receive]"), "{text}");
        assert!(text.contains("(round trip latency)"), "{text}");
        assert!(text.contains("failures by cause: timeout 2"), "{text}");
        let cycle2 = text
            .lines()
            .find(|l| l.trim_start().starts_with("cycle 2"))
            .expect("a row for cycle 2");
        assert!(cycle2.contains("quiet 0.3 s"), "{cycle2}");
        assert!(cycle2.contains("1.2ms"), "{cycle2}");
        assert!(
            text.contains(
                "\n  escalated to 1800 sessions in 2 more cycles (session budget of 1800 \
                 reached); waited 27.6 s for the 30 s release horizon\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("· 200 sessions × 3 cycles (+1 warm-up) ·"),
            "{text}"
        );
    }

    #[test]
    fn one_line_per_deciding_signal_finding() {
        let text = Text::plain().render(&bounded_report());
        let findings: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains(": ") && l.contains(" — "))
            .collect();
        assert_eq!(
            findings.len(),
            3,
            "goroutines, heap_bytes, heap_objects: {text}"
        );
        assert!(
            findings[0]
                .starts_with("  goroutines: leak — linear over 1800 sessions, 1.00 a session"),
            "{text}"
        );
        // The kind is said once, not again from the reason.
        assert!(
            findings[1].starts_with("  heap_bytes: bounded — grew 8.8 KiB a session"),
            "{text}"
        );
        assert!(findings[1].ends_with("retains at most 3.43 MiB"), "{text}");
        assert!(findings[2].starts_with("  heap_objects: leak — "), "{text}");
        assert!(
            !text.contains("stack_bytes:"),
            "shown-only signals have no finding"
        );
    }

    #[test]
    fn no_course_line_without_escalation_or_horizon_wait() {
        let mut r = leaking_report();
        for p in &mut r.phases {
            p.escalation = false;
        }
        r.course.horizon_wait_s = None;
        let text = Text::plain().render(&r);
        assert!(
            !text.contains("escalated") && !text.contains("horizon"),
            "{text}"
        );
        r.course.horizon_wait_s = Some(3.0);
        let text = Text::plain().render(&r);
        assert!(
            text.contains("\n  not escalated (session budget of 1800 reached); waited 3.0 s for the 30 s release horizon\n"),
            "{text}"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let r = leaking_report();
        let coloured = Text { color: true }.render(&r);
        assert!(coloured.starts_with("\x1b[1;31mLEAK\x1b[0m"), "{coloured}");
        // Same text once the escapes are gone.
        let stripped = coloured
            .split('\x1b')
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part
                } else {
                    part.split_once('m').map_or(part, |(_, rest)| rest)
                }
            })
            .collect::<String>();
        assert_eq!(stripped, Text::plain().render(&r));
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(us(0), "-");
        assert_eq!(us(850), "850µs");
        assert_eq!(us(1_250), "1.2ms");
        assert_eq!(us(2_500_000), "2.50s");
    }
}
