//! Reports: the run's result as one serializable [`Report`], rendered by one
//! module per format behind the [`Render`] trait.

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod sample;
mod svg;
pub mod text;

pub use model::{Phase, PhaseKind, Report, SCHEMA, Status, TimelinePoint};

use model::{
    CycleLoad, FindingKind, LatencySummary, SignalVerdict, Stop, Suspect, SuspectKind, Unit,
};

/// Escapes text for XML and HTML attributes and content (junit.xml,
/// report.html, its SVG); drops the control characters XML 1.0 forbids.
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

/// A report format.
pub trait Render {
    /// File name when written to the output folder.
    fn file_name(&self) -> &'static str;
    /// The rendered report.
    fn render(&self, report: &Report) -> String;
}

/// The unit of a suspect's figures: bytes for heap sites, a count for goroutines.
pub fn suspect_unit(s: &Suspect) -> Unit {
    if s.kind == SuspectKind::Heap {
        Unit::Bytes
    } else {
        Unit::Count
    }
}

/// A suspect's stack for reading: at most `max` lines, leaf first, keeping
/// the frame to look at ([`Suspect::function`]) and its caller in view and
/// saying how many frames were left out.
pub fn trimmed_frames(s: &Suspect, max: usize) -> Vec<String> {
    let frames = &s.frames;
    let max = max.max(4);
    if frames.len() <= max {
        return frames.clone();
    }
    let focus = frames.iter().position(|f| *f == s.function).unwrap_or(0);
    let mut out = Vec::with_capacity(max + 2);
    if focus + 2 < max {
        out.extend(frames[..max - 1].iter().cloned());
    } else {
        // Two leaf frames (usually the wait), then a window around the focus.
        out.extend(frames[..2].iter().cloned());
        let from = focus - 1;
        out.push(format!("... {} frames ...", from - 2));
        out.extend(
            frames[from..(from + max - 3).min(frames.len())]
                .iter()
                .cloned(),
        );
    }
    let shown = out.iter().filter(|l| !l.starts_with("... ")).count();
    let hidden_before: usize = out
        .iter()
        .filter_map(|l| l.strip_prefix("... "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    let rest = frames.len() - shown - hidden_before;
    if rest > 0 {
        out.push(format!("... {rest} more frames"));
    }
    out
}

/// A finding's kind as report.json spells it.
pub fn finding_kind(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Back => "back",
        FindingKind::Bounded => "bounded",
        FindingKind::Leak => "leak",
        FindingKind::Time => "time",
        FindingKind::Undecided => "undecided",
    }
}

/// A signal's finding for one line: its kind, and its reason without the
/// kind when the reason already starts with it (`bounded: grew ...`).
pub fn finding(s: &SignalVerdict) -> (&'static str, &str) {
    let kind = finding_kind(s.finding.kind);
    let why = s
        .reason
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(&s.reason);
    (kind, why)
}

/// The measured cycles the scenario asked for: those run, less the
/// escalation cycles.
pub fn scenario_cycles(r: &Report) -> u32 {
    let escalation = r.phases.iter().filter(|p| p.escalation).count();
    r.cycles
        .saturating_sub(u32::try_from(escalation).unwrap_or(u32::MAX))
}

/// One line on how the run went about its verdict, when it escalated or
/// waited for the release horizon: `escalated to 1800 sessions in 2 more
/// cycles (session budget of 1800 reached); waited 27.6 s for the 30 s
/// release horizon`.
pub fn course_line(r: &Report) -> Option<String> {
    let c = &r.course;
    let escalation = r.phases.iter().filter(|p| p.escalation).count();
    let stop = match c.stop {
        Stop::Decided => "every curve decided".to_owned(),
        Stop::Sessions { max } => format!("session budget of {max} reached"),
        Stop::Time { max_s } => format!("time budget of {max_s:.0} s reached"),
        Stop::FdLimit { limit } => format!("the target's open-file limit ({limit}) is near"),
        Stop::Off => "escalation is off".to_owned(),
        Stop::Load => "too many sessions failed".to_owned(),
    };
    let mut parts = Vec::new();
    if escalation > 0 {
        let cycles = if escalation == 1 { "cycle" } else { "cycles" };
        parts.push(format!(
            "escalated to {} sessions in {escalation} more {cycles} ({stop})",
            c.sessions
        ));
    } else if c.horizon_wait_s.is_some() && c.stop != Stop::Decided {
        parts.push(format!("not escalated ({stop})"));
    }
    if let Some(w) = c.horizon_wait_s {
        parts.push(format!(
            "waited {w:.1} s for the {:.0} s release horizon",
            c.horizon_s
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Which latency a report shows per cycle: the first kind any cycle measured,
/// in order of how much it says about the session (round trip, request,
/// handshake, connect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyKind {
    /// Websocket send to expected reply.
    RoundTrip,
    /// HTTP request to the end of its body.
    Request,
    /// Websocket upgrade, or HTTP time to the response head.
    Handshake,
    /// TCP connect.
    Connect,
}

impl LatencyKind {
    /// The name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            LatencyKind::RoundTrip => "round trip",
            LatencyKind::Request => "request",
            LatencyKind::Handshake => "handshake",
            LatencyKind::Connect => "connect",
        }
    }

    /// This kind's percentiles in one cycle.
    pub fn of(self, l: &CycleLoad) -> &LatencySummary {
        match self {
            LatencyKind::RoundTrip => &l.round_trip,
            LatencyKind::Request => &l.request,
            LatencyKind::Handshake => &l.handshake,
            LatencyKind::Connect => &l.connect,
        }
    }
}

/// The latency kind to show for `r`.
pub fn latency_kind(r: &Report) -> LatencyKind {
    [
        LatencyKind::RoundTrip,
        LatencyKind::Request,
        LatencyKind::Handshake,
    ]
    .into_iter()
    .find(|k| r.phases.iter().any(|p| k.of(&p.load).count > 0))
    .unwrap_or(LatencyKind::Connect)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in schema names the layout this build writes.
    #[test]
    fn schema_file_matches_layout_version() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schema/report.v1.schema.json"))
                .expect("schema is JSON");
        assert_eq!(schema["$id"], format!("urn:{SCHEMA}"));
        assert_eq!(schema["properties"]["schema"]["const"], SCHEMA);
        let version = SCHEMA.rsplit('/').next().expect("a version");
        assert_eq!(version, "v1", "rename schema/report.{version}.schema.json");
    }

    #[test]
    fn every_format_says_which_remote_hosts_were_allowed() {
        let mut r = sample::leaking_report();
        let formats: [&dyn Render; 4] = [
            &text::Text::plain(),
            &markdown::Markdown,
            &html::Html,
            &junit::Junit,
        ];
        for f in formats {
            let out = f.render(&r);
            assert!(!out.contains("remote"), "{}: {out}", f.file_name());
        }
        r.remote = Some(model::RemoteAccess {
            allowed: vec!["198.18.0.0/15".to_owned(), "chat.test".to_owned()],
            pinned: [("chat.test".to_owned(), vec!["198.18.0.2".to_owned()])].into(),
        });
        for f in formats {
            let out = f.render(&r);
            assert!(
                out.contains("198.18.0.0/15, chat.test (pinned: chat.test = 198.18.0.2)"),
                "{}: {out}",
                f.file_name()
            );
        }
    }

    #[test]
    fn trimmed_frames_keep_the_focus_in_view() {
        let mut s = sample::leaking_report().suspects.remove(0);
        s.frames = (0..30).map(|i| format!("f{i}")).collect();
        s.function = "f20".to_owned();
        let lines = trimmed_frames(&s, 8);
        assert!(lines.len() <= 9, "{lines:?}");
        assert!(lines.contains(&"f20".to_owned()), "{lines:?}");
        assert!(lines.contains(&"f19".to_owned()), "{lines:?}");
        assert_eq!(lines[2], "... 17 frames ...");
        assert_eq!(lines.last().map(String::as_str), Some("... 6 more frames"));
        s.function = "f3".to_owned();
        let lines = trimmed_frames(&s, 8);
        assert_eq!(lines[..7], s.frames[..7]);
        assert_eq!(lines[7], "... 23 more frames");
        s.frames.truncate(5);
        assert_eq!(trimmed_frames(&s, 8), s.frames);
    }
}
