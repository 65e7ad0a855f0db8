//! summary.md: a Markdown summary for a CI step summary or a pull request.

use std::fmt::Write;

use super::{Render, Report};
use crate::verdict::{Verdict, format_per_session, format_value};

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
            r.url, r.sessions, r.cycles, r.warmup, r.duration_s
        );
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
        if !r.suspects.is_empty() {
            let _ = writeln!(o, "\n### Suspects\n");
            for (i, s) in r.suspects.iter().take(5).enumerate() {
                let unit = if s.kind == "heap" { "bytes" } else { "count" };
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
        o
    }
}

/// Keeps table cells and list items on one line.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
