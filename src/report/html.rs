//! report.html: one self-contained page for the person fixing the leak.
//!
//! Verdict and reasons, the signals table, inline SVG charts (each deciding
//! signal's retention curve against the sessions served, goroutines and
//! heap per cycle against baseline, the timeline of samples taken through
//! the run with its phases shaded, latency percentiles per cycle), the
//! suspects with their full stacks, the profiles with the commands to open
//! them, and the scenario that ran. No script, no font, no request to
//! anywhere: it opens from a CI artifact as it is. Every text is escaped.

use std::fmt::Write;

use super::model::{
    FindingKind, PhaseKind, Point, Verdict, format_per_session, format_value, name,
};
use super::svg::{Axis, Band, Chart, Line, Reference, esc};
use super::{Render, Report, course_line, finding, latency_kind, scenario_cycles, suspect_unit};

/// Chart size (viewBox units; the page scales it to its width).
const CHART: (f64, f64) = (900.0, 260.0);

/// Colour of goroutine series (used for nothing else on the page, so a
/// screenshot test can find the charts by it).
pub const GOROUTINE_COLOUR: &str = "#1f5fbf";
/// Colour of heap series (likewise used for nothing else).
pub const HEAP_COLOUR: &str = "#b03a2e";
/// Colour of the retention curves of other signals.
const CURVE_COLOUR: &str = "#2a7f62";
/// Colour of the fitted line on a retention chart.
const FIT_COLOUR: &str = "#7f7f7f";

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;padding:0 18px 40px;color:#1d1d1d}
h1{font-size:22px;margin:18px 0 6px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:14px;margin:14px 0 4px}
.verdict{padding:10px 16px;border-radius:6px;margin-top:16px}
.verdict.leak{background:#fbe3e0;border-left:6px solid #d9534f}
.verdict.pass{background:#e2f4e4;border-left:6px solid #2e8b3a}
.verdict.inconclusive{background:#fbf1d6;border-left:6px solid #c8931d}
.meta{color:#555}
table{border-collapse:collapse;margin:6px 0}div.wide{overflow-x:auto}td.why{text-align:left;min-width:28em}th,td{padding:3px 10px;text-align:right;border-bottom:1px solid #eee}
th:first-child,td:first-child{text-align:left}th{background:#f5f5f5}
td.leak{color:#c9302c;font-weight:600}td.inconclusive{color:#a06d00;font-weight:600}td.pass{color:#2e8b3a}
svg.chart{width:100%;height:auto;display:block;margin:8px 0 14px;background:#fff}
pre{background:#f6f6f6;padding:8px 10px;overflow-x:auto;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;white-space:pre}
code{font:12px ui-monospace,Menlo,Consolas,monospace}
.focus{background:#fff2a8}
";

/// The HTML report.
pub struct Html;

impl Render for Html {
    fn file_name(&self) -> &'static str {
        "report.html"
    }

    fn render(&self, r: &Report) -> String {
        let mut o = String::with_capacity(64 * 1024);
        let verdict = r.verdict.as_str();
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>leakbench: {} — {verdict}</title><style>{STYLE}</style></head><body>\n",
            esc(&r.name)
        );
        header(&mut o, r);
        signals(&mut o, r);
        per_cycle(&mut o, r);
        retention(&mut o, r);
        timeline(&mut o, r);
        latency(&mut o, r);
        suspects(&mut o, r);
        profiles(&mut o, r);
        scenario(&mut o, r);
        o.push_str("</body></html>\n");
        o
    }
}

fn header(o: &mut String, r: &Report) {
    let _ = write!(
        o,
        "<header class=\"verdict {v}\" id=\"verdict\"><h1>{V} · {}</h1><ul>",
        esc(&r.name),
        v = r.verdict.as_str(),
        V = r.verdict.as_str().to_uppercase(),
    );
    for reason in &r.reasons {
        let _ = write!(o, "<li>{}</li>", esc(reason));
    }
    o.push_str("</ul>");
    if let Some(course) = course_line(r) {
        let _ = write!(o, "<p id=\"course\">{}</p>", esc(&course));
    }
    if let Some(remote) = &r.remote {
        let _ = write!(
            o,
            "<p id=\"remote\">remote hosts allowed: <code>{}</code></p>",
            esc(&remote.line())
        );
    }
    let _ = writeln!(
        o,
        "<p class=\"meta\"><code>{}</code> · {} sessions × {} cycles (+{} warm-up) · {:.1} s · \
         run {} · pprof <code>{}</code> · leakbench {}</p></header>",
        esc(&r.url),
        r.sessions,
        scenario_cycles(r),
        r.warmup,
        r.duration_s,
        esc(&format!("{:?}", r.status).to_lowercase()),
        esc(&r.pprof),
        esc(r.leakbench)
    );
}

fn signals(o: &mut String, r: &Report) {
    if r.signals.is_empty() {
        return;
    }
    o.push_str(
        "<section id=\"signals\"><h2>Signals</h2><div class=\"wide\"><table><tr><th>signal</th><th>baseline</th>",
    );
    for k in 1..=r.cycles {
        let _ = write!(o, "<th>cycle {k}</th>");
    }
    o.push_str("<th>per cycle</th><th>per session</th><th>verdict</th><th>why</th></tr>");
    for s in &r.signals {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td>",
            esc(&s.name),
            esc(&format_value(s.baseline, s.unit))
        );
        for v in &s.cycles {
            let _ = write!(o, "<td>{}</td>", esc(&format_value(*v, s.unit)));
        }
        let (class, verdict) = if s.decides {
            (s.verdict.as_str(), s.verdict.as_str())
        } else {
            ("", "shown only")
        };
        let _ = write!(
            o,
            "<td>{}</td><td>{}</td><td class=\"{class}\">{verdict}</td><td class=\"why\">{}</td></tr>",
            esc(&format_value(s.per_cycle, s.unit)),
            esc(&format_per_session(s.per_session, s.unit)),
            esc(&s.reason)
        );
    }
    o.push_str("</table></div></section>\n");
}

/// Per deciding signal, its retention curve: the value after each measured
/// cycle against the sessions served since the baseline, with the
/// Theil-Sen line of a leak or an undecided curve and the bound of a
/// bounded one.
fn retention(o: &mut String, r: &Report) {
    let deciding: Vec<_> = r.signals.iter().filter(|s| s.decides).collect();
    if deciding.is_empty() {
        return;
    }
    o.push_str(
        "<section id=\"retention\"><h2>Retention curves</h2><p class=\"meta\">Each deciding \
         signal after each measured cycle (settled, after forced GCs), escalation cycles \
         included, against the sessions served since the baseline. Dashed: the baseline, the \
         noise band above it and, for bounded retention, the bound.</p>",
    );
    for s in deciding {
        let (kind, _) = finding(s);
        let f = &s.finding;
        let colour = match s.name.as_str() {
            name::GOROUTINES => GOROUTINE_COLOUR,
            name::HEAP_BYTES => HEAP_COLOUR,
            _ => CURVE_COLOUR,
        };
        // The fit first, so that the measured points are drawn over it.
        let mut lines = Vec::new();
        if matches!(f.kind, FindingKind::Leak | FindingKind::Undecided) {
            if let Some(points) = fitted(&s.curve, f.per_session) {
                lines.push(Line {
                    name: format!(
                        "Theil-Sen fit, {} a session",
                        format_per_session(f.per_session, s.unit)
                    ),
                    points,
                    color: FIT_COLOUR,
                    markers: false,
                });
            }
        }
        lines.push(Line {
            name: s.name.clone(),
            points: s
                .curve
                .iter()
                .map(|p| (p.sessions as f64, p.value))
                .collect(),
            color: colour,
            markers: true,
        });
        let mut references = vec![
            Reference {
                y: s.baseline,
                label: "baseline".to_owned(),
            },
            Reference {
                y: s.baseline + s.threshold,
                label: format!("noise band ({})", format_value(s.threshold, s.unit)),
            },
        ];
        if let (FindingKind::Bounded, Some(bound)) = (f.kind, f.bound) {
            references.push(Reference {
                y: s.baseline + bound,
                label: format!("bound: baseline + {}", format_value(bound, s.unit)),
            });
        }
        let title = format!("{}: {kind}", s.name);
        let chart = Chart {
            id: format!("chart-retention-{}", id_part(&s.name)),
            title: format!("{title}, against the sessions served"),
            size: CHART,
            unit: Axis::of(s.unit),
            lines,
            bands: Vec::new(),
            references,
            x_labels: None,
            x_suffix: "",
        };
        let _ = write!(
            o,
            "<h3>{}</h3><p>{}</p>{}",
            esc(&title),
            esc(&s.reason),
            chart.render()
        );
    }
    o.push_str("</section>\n");
}

/// The Theil-Sen line of slope `rate` over a curve's sessions, through the
/// median of the points' intercepts; `None` for fewer than two points.
fn fitted(curve: &[Point], rate: f64) -> Option<Vec<(f64, f64)>> {
    let (first, last) = (curve.first()?, curve.last()?);
    if curve.len() < 2 || !rate.is_finite() {
        return None;
    }
    let mut intercepts: Vec<f64> = curve
        .iter()
        .map(|p| p.value - rate * p.sessions as f64)
        .collect();
    intercepts.sort_by(f64::total_cmp);
    let m = intercepts.len();
    let b = if m % 2 == 1 {
        intercepts[m / 2]
    } else {
        (intercepts[m / 2 - 1] + intercepts[m / 2]) / 2.0
    };
    let at = |p: &Point| (p.sessions as f64, b + rate * p.sessions as f64);
    Some(vec![at(first), at(last)])
}

/// A signal name as part of an element id: letters, digits, `_` and `-`.
fn id_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Goroutines and heap after each cycle against baseline.
fn per_cycle(o: &mut String, r: &Report) {
    o.push_str("<section id=\"per-cycle\"><h2>Goroutines and heap per cycle</h2>");
    let mut drawn = 0;
    for (name, unit, colour, id, title) in [
        (
            name::GOROUTINES,
            Axis::Count,
            GOROUTINE_COLOUR,
            "chart-cycles-goroutines",
            "Goroutines after each cycle (settled, after forced GCs) against baseline",
        ),
        (
            name::HEAP_BYTES,
            Axis::Bytes,
            HEAP_COLOUR,
            "chart-cycles-heap",
            "Live heap after each cycle (settled, after forced GCs) against baseline",
        ),
    ] {
        let Some(s) = r.signals.iter().find(|s| s.name == name) else {
            continue;
        };
        let mut points = vec![(0.0, s.baseline)];
        points.extend(
            s.cycles
                .iter()
                .enumerate()
                .map(|(k, v)| ((k + 1) as f64, *v)),
        );
        let mut labels = vec![(0.0, "baseline".to_owned())];
        labels.extend((1..=s.cycles.len()).map(|k| (k as f64, format!("cycle {k}"))));
        let chart = Chart {
            id: id.to_owned(),
            title: title.to_owned(),
            size: CHART,
            unit,
            lines: vec![Line {
                name: name.to_owned(),
                points,
                color: colour,
                markers: true,
            }],
            bands: Vec::new(),
            references: vec![
                Reference {
                    y: s.baseline,
                    label: "baseline".to_owned(),
                },
                Reference {
                    y: s.baseline + s.threshold,
                    label: format!(
                        "baseline + noise band ({})",
                        format_value(s.threshold, s.unit)
                    ),
                },
            ],
            x_labels: Some(labels),
            x_suffix: "",
        };
        let _ = write!(o, "<h3>{}</h3>{}", esc(title), chart.render());
        drawn += 1;
    }
    if drawn == 0 {
        o.push_str("<p>No cycle was measured.</p>");
    }
    o.push_str("</section>\n");
}

/// Phases as shaded ranges: each runs from the previous phase's last sample
/// to its own last sample, so a cycle's range covers its load and its settle.
fn phase_bands(r: &Report) -> Vec<Band> {
    let mut bands: Vec<Band> = Vec::new();
    let mut start = 0.0;
    for p in &r.timeline {
        match bands.last_mut() {
            Some(b) if b.label == p.phase => b.x1 = p.t_s,
            _ => {
                if let Some(b) = bands.last() {
                    start = b.x1;
                }
                bands.push(Band {
                    x0: start,
                    x1: p.t_s,
                    label: p.phase.clone(),
                });
            }
        }
    }
    bands
}

/// The target's goroutines and heap as sampled by every settle poll.
fn timeline(o: &mut String, r: &Report) {
    o.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
    if r.timeline.is_empty() {
        o.push_str("<p>No samples were taken.</p></section>\n");
        return;
    }
    o.push_str(
        "<p class=\"meta\">Every settle poll (one forced GC each), seconds since the start; \
         shaded: the phase each sample belongs to (load runs at the start of each cycle's range).</p>",
    );
    let base = |name: &str| {
        r.signals
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.baseline)
    };
    for (name, unit, colour, id, title, key) in [
        (
            name::GOROUTINES,
            Axis::Count,
            GOROUTINE_COLOUR,
            "chart-timeline-goroutines",
            "Goroutines through the run",
            name::GOROUTINES,
        ),
        (
            name::HEAP_BYTES,
            Axis::Bytes,
            HEAP_COLOUR,
            "chart-timeline-heap",
            "Live heap through the run",
            name::HEAP_BYTES,
        ),
    ] {
        let chart = Chart {
            id: id.to_owned(),
            title: title.to_owned(),
            size: CHART,
            unit,
            lines: vec![Line {
                name: name.to_owned(),
                points: r
                    .timeline
                    .iter()
                    .filter_map(|p| p.values.get(key).map(|v| (p.t_s, *v)))
                    .collect(),
                color: colour,
                markers: r.timeline.len() <= 120,
            }],
            bands: phase_bands(r),
            references: base(name)
                .map(|y| Reference {
                    y,
                    label: "baseline".to_owned(),
                })
                .into_iter()
                .collect(),
            x_labels: None,
            x_suffix: " s",
        };
        let _ = write!(o, "<h3>{}</h3>{}", esc(title), chart.render());
    }
    o.push_str("</section>\n");
}

/// Latency percentiles per cycle, and the load table.
fn latency(o: &mut String, r: &Report) {
    if r.phases.is_empty() {
        return;
    }
    let kind = latency_kind(r);
    let _ = write!(
        o,
        "<section id=\"latency\"><h2>Load and latency per cycle ({})</h2>",
        kind.label()
    );
    let labels: Vec<(f64, String)> = r
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| (i as f64, phase_label(p.kind, p.index)))
        .collect();
    let series = |name: &str, colour, get: fn(&crate::load::LatencySummary) -> u64| Line {
        name: name.to_owned(),
        points: r
            .phases
            .iter()
            .enumerate()
            .map(|(i, p)| (i as f64, get(kind.of(&p.load)) as f64))
            .collect(),
        color: colour,
        markers: true,
    };
    let chart = Chart {
        id: "chart-latency".to_owned(),
        title: format!("{} latency percentiles per cycle", kind.label()),
        size: CHART,
        unit: Axis::Micros,
        lines: vec![
            series("p50", "#2e8b3a", |l| l.p50_us),
            series("p90", "#6a4fb3", |l| l.p90_us),
            series("p99", "#d07a12", |l| l.p99_us),
            series("max", "#888888", |l| l.max_us),
        ],
        bands: Vec::new(),
        references: Vec::new(),
        x_labels: Some(labels),
        x_suffix: "",
    };
    o.push_str(&chart.render());
    o.push_str(
        "<table><tr><th>cycle</th><th>started</th><th>ok</th><th>failed</th><th>failures by cause</th>\
         <th>load s</th><th>settled</th><th>settle s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>",
    );
    for p in &r.phases {
        let l = &p.load;
        let lat = kind.of(l);
        let causes: Vec<String> = l.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{:.1}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&phase_label(p.kind, p.index)),
            l.started,
            l.completed,
            l.failed,
            esc(&causes.join(", ")),
            l.elapsed_s,
            esc(&format!("{:?}", p.settle.ending).to_lowercase()),
            p.settle.seconds,
            esc(&super::text::us(lat.p50_us)),
            esc(&super::text::us(lat.p90_us)),
            esc(&super::text::us(lat.p99_us)),
            esc(&super::text::us(lat.p999_us)),
            esc(&super::text::us(lat.max_us)),
        );
    }
    o.push_str("</table>");
    let examples: Vec<&String> = r
        .phases
        .iter()
        .flat_map(|p| &p.load.failure_examples)
        .collect();
    if !examples.is_empty() {
        o.push_str("<h3>Failure examples</h3><ul>");
        for e in examples {
            let _ = write!(o, "<li><code>{}</code></li>", esc(e));
        }
        o.push_str("</ul>");
    }
    o.push_str("</section>\n");
}

fn phase_label(kind: PhaseKind, index: u32) -> String {
    if kind == PhaseKind::Warmup {
        format!("warm-up {index}")
    } else {
        format!("cycle {index}")
    }
}

fn suspects(o: &mut String, r: &Report) {
    o.push_str("<section id=\"suspects\"><h2>Suspects</h2>");
    if r.suspects.is_empty() {
        let why = if r.verdict == Verdict::Pass {
            "None: nothing grew."
        } else {
            "None above noise."
        };
        let _ = writeln!(o, "<p>{why}</p></section>");
        return;
    }
    for (i, s) in r.suspects.iter().enumerate() {
        let unit = suspect_unit(s);
        let _ = write!(
            o,
            "<article class=\"suspect\"><h3>{}. {} +{} ({} per cycle, {} per session){} — <code>{}</code></h3>",
            i + 1,
            esc(s.kind.as_str()),
            esc(&format_value((s.after - s.base) as f64, unit)),
            esc(&format_value(s.per_cycle.round(), unit)),
            esc(&format_per_session(s.per_session, unit)),
            s.state
                .as_deref()
                .map(|st| format!(" [{}]", esc(st)))
                .unwrap_or_default(),
            esc(&s.function)
        );
        if let Some(h) = &s.hint {
            let _ = write!(o, "<p>hint: {}</p>", esc(h));
        }
        o.push_str("<pre class=\"stack\">");
        for f in &s.frames {
            if *f == s.function {
                let _ = writeln!(o, "<span class=\"focus\">{}</span>", esc(f));
            } else {
                let _ = writeln!(o, "{}", esc(f));
            }
        }
        if let Some(c) = &s.created_by {
            let _ = writeln!(o, "created by {}", esc(c));
        }
        o.push_str("</pre></article>");
    }
    o.push_str("</section>\n");
}

fn profiles(o: &mut String, r: &Report) {
    if r.profiles.is_empty() {
        return;
    }
    o.push_str("<section id=\"profiles\"><h2>Profiles</h2><ul>");
    for (role, file) in &r.profiles {
        let _ = write!(
            o,
            "<li>{}: <a href=\"{f}\"><code>{f}</code></a></li>",
            esc(role),
            f = esc(file)
        );
    }
    o.push_str("</ul>");
    if r.profiles.contains_key("heap_diff") || r.profiles.contains_key("goroutine_diff") {
        o.push_str(
            "<p>What grew, in the tools you know (from this folder):</p><pre>go tool pprof -top diff-goroutine.pb.gz\n\
             go tool pprof -top -sample_index=inuse_space diff-heap.pb.gz\n\
             go tool pprof -http=127.0.0.1:0 -base heap-base.pb.gz heap-final.pb.gz</pre>",
        );
    }
    o.push_str("</section>\n");
}

fn scenario(o: &mut String, r: &Report) {
    let _ = write!(
        o,
        "<section id=\"scenario\"><h2>Scenario</h2><p><code>{}</code></p>",
        esc(&r.scenario)
    );
    match &r.scenario_text {
        Some(text) => {
            let _ = write!(o, "<pre>{}</pre>", esc(text));
        }
        None => o.push_str("<p>(its text could not be read back)</p>"),
    }
    o.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::{bounded_report, leaking_report};

    #[test]
    fn page_has_every_chart_and_section() {
        let html = Html.render(&leaking_report());
        for id in [
            "chart-cycles-goroutines",
            "chart-cycles-heap",
            "chart-timeline-goroutines",
            "chart-timeline-heap",
            "chart-latency",
            "chart-retention-goroutines",
            "signals",
            "retention",
            "course",
            "suspects",
            "scenario",
            "profiles",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "no #{id}");
        }
        // Eight phases in the timeline: warm-up, baseline, three cycles,
        // two escalation cycles, the horizon wait.
        assert_eq!(
            html.matches("class=\"band\"").count(),
            2 * 8,
            "a band per phase in each timeline chart"
        );
        assert!(html.contains("main.(*client).writePump"));
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let html = Html.render(&leaking_report());
        assert!(
            !html.contains("<script"),
            "the scenario's text must be escaped"
        );
        assert!(html.contains("&lt;/pre&gt;&lt;script&gt;"));
        assert!(html.contains("chat &lt;hub&gt;"));
        assert!(html.contains("a=1&amp;b=2"));
        assert!(!html.contains("src="), "no external resource");
        assert!(!html.contains("@import") && !html.contains("url("));
        // The only URLs are the SVG namespace and the report's own loopback values.
        for (i, _) in html.match_indices("://") {
            let host = &html[i + 3..];
            assert!(
                host.starts_with("www.w3.org/2000/svg") || host.starts_with("127.0.0.1"),
                "unexpected URL before {}",
                host.chars().take(40).collect::<String>()
            );
        }
    }

    #[test]
    fn phases_become_contiguous_bands() {
        let bands = phase_bands(&leaking_report());
        let labels: Vec<&str> = bands.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "warm-up 1/1",
                "baseline",
                "cycle 1/3",
                "cycle 2/3",
                "cycle 3/3",
                "escalation 1 (400 sessions)",
                "escalation 2 (800 sessions)",
                "horizon"
            ]
        );
        for w in bands.windows(2) {
            assert_eq!(w[0].x1, w[1].x0);
        }
    }

    /// The element of `html` with id `id`, up to the end of its `<svg>`.
    fn chart<'a>(html: &'a str, id: &str) -> &'a str {
        let at = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id}"));
        &html[at..at + html[at..].find("</svg>").expect("svg end")]
    }

    /// The value of attribute `name` in the first element of `svg` that
    /// starts with `tag`.
    fn attr<'a>(svg: &'a str, tag: &str, name: &str) -> &'a str {
        let el = &svg[svg.find(tag).unwrap_or_else(|| panic!("no {tag}"))..];
        let at = el.find(&format!(" {name}=\"")).expect("attribute") + name.len() + 3;
        &el[at..at + el[at..].find('"').expect("closing quote")]
    }

    #[test]
    fn retention_chart_per_deciding_signal_with_its_fit() {
        let mut r = leaking_report();
        r.signals[0].reason = "rose <fast> & \"far\"".to_owned();
        let html = Html.render(&r);
        let deciding: Vec<_> = r.signals.iter().filter(|s| s.decides).collect();
        assert_eq!(deciding.len(), 3, "the sample decides on three signals");
        assert_eq!(
            html.matches("id=\"chart-retention-").count(),
            deciding.len(),
            "one retention chart per deciding signal"
        );
        for s in &deciding {
            let svg = chart(&html, &format!("chart-retention-{}", s.name));
            // A marker per point: the baseline and five measured cycles.
            assert_eq!(svg.matches("<circle").count(), 6, "{}", s.name);
            // A leak: the measured points and the fitted line, no bound.
            assert!(svg.contains("data-series=\"Theil-Sen fit"), "{svg}");
            assert!(!svg.contains("bound:"), "{svg}");
        }
        assert!(!html.contains("chart-retention-stack_bytes"), "shown only");
        assert!(
            html.contains(
                "<h3>goroutines: leak</h3><p>rose &lt;fast&gt; &amp; &quot;far&quot;</p>"
            )
        );
        assert!(!html.contains("<fast>"));
        // The x axis is sessions served: its last tick is past 1,500.
        assert!(chart(&html, "chart-retention-goroutines").contains(">1500</text>"));
    }

    #[test]
    fn bounded_finding_draws_its_bound() {
        let r = bounded_report();
        let heap = r
            .signals
            .iter()
            .find(|s| s.name == name::HEAP_BYTES)
            .expect("heap_bytes");
        assert_eq!(heap.finding.kind, FindingKind::Bounded, "{}", heap.reason);
        let html = Html.render(&r);
        let svg = chart(&html, "chart-retention-heap_bytes");
        assert!(html.contains("<h3>heap_bytes: bounded</h3>"), "{html}");
        // Baseline, noise band and bound; no fit for a bounded curve.
        assert_eq!(svg.matches("class=\"reference\"").count(), 3, "{svg}");
        assert!(svg.contains(">bound: baseline + 3.43 MiB</text>"), "{svg}");
        assert!(!svg.contains("Theil-Sen"), "{svg}");
        // The bound line runs through the flat points: its height is the
        // last point's.
        let bound_line = &svg[svg.find("bound: baseline").expect("label")..];
        let bound_line = &svg[svg[..svg.len() - bound_line.len()]
            .rfind("<line class=\"reference\"")
            .expect("the bound's line")..];
        let last_point = &svg[svg.rfind("<circle").expect("a marker")..];
        assert_eq!(
            attr(bound_line, "<line", "y1"),
            attr(last_point, "<circle", "cy")
        );
        // The leaking goroutines keep their fit.
        assert!(chart(&html, "chart-retention-goroutines").contains("Theil-Sen fit"));
    }

    #[test]
    fn fitted_line_goes_through_the_median_intercept() {
        let curve: Vec<Point> = [(0, 10.0), (200, 215.0), (400, 410.0), (600, 610.0)]
            .into_iter()
            .map(|(sessions, value)| Point {
                sessions,
                t_s: 0.0,
                value,
            })
            .collect();
        // One wobbly point does not move it off the other three.
        assert_eq!(fitted(&curve, 1.0), Some(vec![(0.0, 10.0), (600.0, 610.0)]));
        assert_eq!(fitted(&curve[..1], 1.0), None);
        assert_eq!(fitted(&curve, f64::NAN), None);
    }
}
