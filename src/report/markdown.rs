//! summary.md: a Markdown summary for a CI step summary or a pull request.

use std::fmt::Write;

use super::model::{PhaseKind, Verdict, format_per_session, format_value};
use super::text::us;
use super::{Render, Report, course_line, finding, latency_kind, scenario_cycles, suspect_unit};

/// Markdown summary.
pub struct Markdown;

impl Render for Markdown {
    fn file_name(&self) -> &'static str {
        "summary.md"
    }

    fn render(&self, r: &Report) -> String {
        let mut o = String::new();
        let icon = match r.verdict {
            Verdict::Pass => "✅ pass",
            Verdict::Leak => "❌ leak",
            Verdict::Inconclusive => "⚠️ inconclusive",
        };
        let _ = writeln!(o, "## leakbench: {} — {icon}\n", cell(&r.name));
        for reason in &r.reasons {
            let _ = writeln!(o, "- {}", cell(reason));
        }
        let _ = writeln!(
            o,
            "\n`{}` · {} sessions × {} cycles (+{} warm-up) · {:.1} s\n",
            r.url,
            r.sessions,
            scenario_cycles(r),
            r.warmup,
            r.duration_s
        );
        if let Some(remote) = &r.remote {
            let _ = writeln!(o, "Remote hosts allowed: {}\n", cell(&remote.line()));
        }
        if let Some(course) = course_line(r) {
            let _ = writeln!(o, "{}\n", cell(&course));
        }
        let mut head = String::from("| signal | baseline |");
        let mut rule = String::from("|---|---:|");
        for k in 1..=r.cycles {
            let _ = write!(head, " cycle {k} |");
            rule.push_str("---:|");
        }
        head.push_str(" per session | verdict |");
        rule.push_str("---:|---|");
        let _ = writeln!(o, "{head}\n{rule}");
        for s in &r.signals {
            let mut row = format!("| {} | {} |", s.name, format_value(s.baseline, s.unit));
            for v in &s.cycles {
                let _ = write!(row, " {} |", format_value(*v, s.unit));
            }
            let verdict = if s.decides {
                s.verdict.as_str()
            } else {
                "shown only"
            };
            let _ = writeln!(
                row,
                " {} | {verdict} |",
                format_per_session(s.per_session, s.unit)
            );
            o.push_str(&row);
        }
        let findings: Vec<String> = r
            .signals
            .iter()
            .filter(|s| s.decides)
            .map(|s| {
                let (kind, why) = finding(s);
                format!("- **{}**: {kind} — {}", cell(&s.name), cell(why))
            })
            .collect();
        if !findings.is_empty() {
            let _ = writeln!(o, "\n{}", findings.join("\n"));
        }
        if !r.suspects.is_empty() {
            let _ = writeln!(o, "\n### Suspects\n");
            for (i, s) in r.suspects.iter().take(5).enumerate() {
                let unit = suspect_unit(s);
                let state = s
                    .state
                    .as_deref()
                    .map(|st| format!(" [{st}]"))
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "{}. **{}** `{}` +{} ({} per session){state}\n",
                    i + 1,
                    s.kind,
                    s.function,
                    format_value((s.after - s.base) as f64, unit),
                    format_per_session(s.per_session, unit)
                );
                let _ = writeln!(o, "   ```\n   {}\n   ```", s.frames.join("\n   "));
            }
        }
        if !r.phases.is_empty() {
            let kind = latency_kind(r);
            let _ = writeln!(
                o,
                "\n### Cycles\n\n| cycle | ok | failed | settled | {0} p50 | {0} p99 |\n|---|---:|---:|---|---:|---:|",
                kind.label()
            );
            for p in &r.phases {
                let l = &p.load;
                let causes: Vec<String> =
                    l.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let failed = if causes.is_empty() {
                    l.failed.to_string()
                } else {
                    format!("{} ({})", l.failed, causes.join(", "))
                };
                let _ = writeln!(
                    o,
                    "| {} {} | {} | {failed} | {} in {:.1} s | {} | {} |",
                    if p.kind == PhaseKind::Warmup {
                        "warm-up"
                    } else {
                        "cycle"
                    },
                    p.index,
                    l.completed,
                    format!("{:?}", p.settle.ending).to_lowercase(),
                    p.settle.seconds,
                    us(kind.of(l).p50_us),
                    us(kind.of(l).p99_us),
                );
            }
        }
        if r.profiles.contains_key("goroutine_diff") {
            let _ = writeln!(
                o,
                "\nWhat grew, from the output folder: `go tool pprof -top diff-goroutine.pb.gz`, \
                 `go tool pprof -top -sample_index=inuse_space diff-heap.pb.gz`; charts in `report.html`."
            );
        }
        o
    }
}

/// Keeps table cells and list items on one line, and markup as text
/// (GitHub renders inline HTML in step summaries and comments).
fn cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::{bounded_report, leaking_report};

    #[test]
    fn summary_has_verdict_signals_suspects_and_cycles() {
        let md = Markdown.render(&leaking_report());
        assert!(
            md.starts_with("## leakbench: chat &lt;hub&gt; — ❌ leak"),
            "{md}"
        );
        assert!(
            md.contains("| goroutines | 12 | 212 | 412 | 612 | 1012 | 1812 | 1.00 | leak |"),
            "{md}"
        );
        assert!(md.contains("`main.(*client).writePump`"), "{md}");
        assert!(
            md.contains("| cycle 2 | 198 | 2 (timeout 2) | quiet in 0.3 s |"),
            "{md}"
        );
        assert!(md.contains("| cycle 5 | 800 | 0 |"), "{md}");
        assert!(
            md.contains(
                "\nescalated to 1800 sessions in 2 more cycles (session budget of 1800 \
                 reached); waited 27.6 s for the 30 s release horizon\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("\n- **goroutines**: leak — linear over 1800 sessions, 1.00 a session"),
            "{md}"
        );
        assert_eq!(
            md.matches("\n- **").count(),
            3,
            "one finding per deciding signal: {md}"
        );
        assert!(
            md.contains("go tool pprof -top diff-goroutine.pb.gz"),
            "{md}"
        );
    }

    #[test]
    fn bounded_finding_states_its_bound_once() {
        let md = Markdown.render(&bounded_report());
        assert!(
            md.contains("\n- **heap_bytes**: bounded — grew 8.8 KiB a session"),
            "{md}"
        );
        assert!(!md.contains("bounded — bounded"), "{md}");
    }
}
