//! junit.xml: one test case per signal and per suspect, so a CI system shows
//! which signal failed and which code holds the growth. Signals that only
//! inform are skipped cases; a run that did not complete is an error case.

use std::fmt::Write;

use super::model::{Status, Verdict, format_per_session, format_value};
use super::{Render, Report, escape, suspect_unit};

/// JUnit XML as read by Jenkins, GitLab and GitHub test reporters.
pub struct Junit;

impl Render for Junit {
    fn file_name(&self) -> &'static str {
        "junit.xml"
    }

    fn render(&self, r: &Report) -> String {
        let mut cases = String::new();
        let (mut tests, mut failures, mut skipped, mut errors) = (0, 0, 0, 0);
        if r.status != Status::Complete {
            // A partial run is an error of the run itself, not of a signal.
            tests += 1;
            errors += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"leakbench.run\" name=\"run\" time=\"{:.3}\">\n      <error type=\"{}\" message=\"{}\"/>\n    </testcase>",
                r.duration_s,
                escape(&format!("{:?}", r.status).to_lowercase()),
                escape(
                    r.reasons
                        .first()
                        .map(String::as_str)
                        .unwrap_or("the run did not complete")
                ),
            );
        }
        for s in &r.signals {
            tests += 1;
            let series: Vec<String> = s.cycles.iter().map(|c| format_value(*c, s.unit)).collect();
            let evidence = format!(
                "baseline {}, after each cycle {}; {} per cycle, {} per session; noise tolerance {} per cycle",
                format_value(s.baseline, s.unit),
                series.join(", "),
                format_value(s.per_cycle, s.unit),
                format_per_session(s.per_session, s.unit),
                format_value(s.threshold, s.unit),
            );
            let body = match (s.decides, s.verdict) {
                (false, _) => {
                    skipped += 1;
                    format!(
                        "\n      <skipped message=\"{}\"/>\n      <system-out>{}</system-out>\n    ",
                        escape(&format!("shown only, does not decide: {}", s.reason)),
                        escape(&evidence)
                    )
                }
                (true, Verdict::Pass) => {
                    format!(
                        "\n      <system-out>{}</system-out>\n    ",
                        escape(&evidence)
                    )
                }
                (true, v) => {
                    failures += 1;
                    format!(
                        "\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    ",
                        v.as_str(),
                        escape(&format!("{}: {}", s.name, s.reason)),
                        escape(&evidence),
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
                let unit = suspect_unit(s);
                let state = s
                    .state
                    .as_deref()
                    .map(|st| format!(" [{st}]"))
                    .unwrap_or_default();
                let message = format!(
                    "{} {} grew {} ({} per cycle, {} per session){state}",
                    s.kind,
                    s.function,
                    format_value((s.after - s.base) as f64, unit),
                    format_value(s.per_cycle.round(), unit),
                    format_per_session(s.per_session, unit)
                );
                let mut text = s.frames.join("\n");
                if let Some(c) = &s.created_by {
                    let _ = write!(text, "\ncreated by {c}");
                }
                if let Some(h) = &s.hint {
                    let _ = write!(text, "\nhint: {h}");
                }
                let _ = write!(
                    cases,
                    "    <testcase classname=\"leakbench.suspect.{}\" name=\"{}\" time=\"0\">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
                    s.kind,
                    escape(&s.function),
                    r.verdict.as_str(),
                    escape(&message),
                    escape(&text),
                );
            }
        }
        // The suite's properties say which remote hosts the run could reach.
        let properties = match &r.remote {
            Some(remote) => format!(
                "    <properties>\n      <property name=\"remote_allowed\" value=\"{}\"/>\n    </properties>\n",
                escape(&remote.line())
            ),
            None => String::new(),
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"leakbench\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\">\n  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\">\n{properties}{cases}  </testsuite>\n</testsuites>\n",
            r.duration_s,
            escape(&r.name),
            r.duration_s
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_run_is_an_error_case() {
        let mut r = crate::report::sample::leaking_report();
        r.status = Status::Interrupted;
        r.reasons
            .insert(0, "interrupted during cycle 2/3".to_owned());
        let xml = Junit.render(&r);
        assert!(
            xml.contains("<testcase classname=\"leakbench.run\""),
            "{xml}"
        );
        assert!(xml.contains("errors=\"1\""), "{xml}");
        assert!(
            xml.contains("message=\"interrupted during cycle 2/3\""),
            "{xml}"
        );
    }

    #[test]
    fn shown_only_signals_are_skipped_and_markup_is_escaped() {
        let xml = Junit.render(&crate::report::sample::leaking_report());
        assert!(xml.contains("skipped=\"1\""), "{xml}");
        assert!(
            xml.contains("<testsuite name=\"chat &lt;hub&gt;\""),
            "{xml}"
        );
        assert!(
            xml.contains("&lt;clients&gt; &amp; sessions &quot;never&quot;"),
            "{xml}"
        );
    }

    #[test]
    fn escape_handles_markup_and_control_characters() {
        assert_eq!(
            escape("main.(*c).f <a & \"b\">\u{1}"),
            "main.(*c).f &lt;a &amp; &quot;b&quot;&gt;"
        );
    }
}
