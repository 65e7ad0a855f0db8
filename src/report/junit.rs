//! junit.xml: one test case per deciding signal and per suspect, so a CI
//! system shows which signal failed and which code holds the growth.

use std::fmt::Write;

use super::{Render, Report};
use crate::verdict::{Verdict, format_per_session, format_value};

/// JUnit XML as read by Jenkins, GitLab and GitHub test reporters.
pub struct Junit;

impl Render for Junit {
    fn file_name(&self) -> &'static str {
        "junit.xml"
    }

    fn render(&self, r: &Report) -> String {
        let mut cases = String::new();
        let mut failures = 0;
        let mut tests = 0;
        for s in r.signals.iter().filter(|s| s.decides) {
            tests += 1;
            let body = match s.verdict {
                Verdict::Pass => String::new(),
                v => {
                    failures += 1;
                    let series: Vec<String> =
                        s.cycles.iter().map(|c| format_value(*c, s.unit)).collect();
                    format!(
                        "\n      <failure type=\"{}\" message=\"{}\">baseline {}, after each cycle {}; {} per session</failure>\n    ",
                        v.as_str(),
                        escape(&format!("{}: {}", s.name, s.reason)),
                        escape(&format_value(s.baseline, s.unit)),
                        escape(&series.join(", ")),
                        escape(&format_per_session(s.per_session, s.unit)),
                    )
                }
            };
            let _ = writeln!(
                cases,
                "    <testcase classname=\"leakbench.signal\" name=\"{}\" time=\"0\">{body}</testcase>",
                escape(&s.name)
            );
        }
        if r.verdict != Verdict::Pass {
            for s in &r.suspects {
                tests += 1;
                failures += 1;
                let unit = if s.kind == "heap" { "bytes" } else { "count" };
                let state = s
                    .state
                    .as_deref()
                    .map(|st| format!(" [{st}]"))
                    .unwrap_or_default();
                let message = format!(
                    "{} {} grew {} ({} per session){state}",
                    s.kind,
                    s.function,
                    format_value((s.after - s.base) as f64, unit),
                    format_per_session(s.per_session, unit)
                );
                let _ = write!(
                    cases,
                    "    <testcase classname=\"leakbench.suspect.{}\" name=\"{}\" time=\"0\">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
                    s.kind,
                    escape(&s.function),
                    r.verdict.as_str(),
                    escape(&message),
                    escape(&s.frames.join("\n")),
                );
            }
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"leakbench\" tests=\"{tests}\" failures=\"{failures}\" time=\"{:.3}\">\n  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
            r.duration_s,
            escape(&r.name),
            r.duration_s
        )
    }
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 forbids.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_handles_markup_and_control_characters() {
        assert_eq!(
            escape("main.(*c).f <a & \"b\">\u{1}"),
            "main.(*c).f &lt;a &amp; &quot;b&quot;&gt;"
        );
    }
}
