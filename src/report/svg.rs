//! Line charts as inline SVG for report.html: axes with round ticks, one
//! polyline per series, optional markers, reference lines and shaded x
//! ranges (the run's phases). No script, no external resource; every text
//! is escaped.

use std::fmt::Write;

pub use super::escape as esc;
use super::model::{self, format_value};

/// Plot area margins inside the SVG: left (tick labels), right, top (legend), bottom (x labels).
const MARGIN: (f64, f64, f64, f64) = (78.0, 16.0, 34.0, 42.0);

/// Colours for bands, alternating, so neighbouring phases stay apart.
const BAND_FILLS: [&str; 2] = ["#dfe8f5", "#f2eadb"];

/// One line of a chart.
pub struct Line {
    /// Legend name.
    pub name: String,
    /// (x, y) points, in data units, in x order.
    pub points: Vec<(f64, f64)>,
    /// Stroke colour.
    pub color: &'static str,
    /// Draw a dot on each point.
    pub markers: bool,
}

/// A shaded x range with a label (a phase of the run).
pub struct Band {
    /// Start, data units.
    pub x0: f64,
    /// End, data units.
    pub x1: f64,
    /// Label printed at the top of the range.
    pub label: String,
}

/// A horizontal reference line (baseline).
pub struct Reference {
    /// Value, data units.
    pub y: f64,
    /// Label next to the line.
    pub label: String,
}

/// How y values print.
#[derive(Clone, Copy)]
pub enum Axis {
    /// Plain numbers.
    Count,
    /// Bytes, in KiB/MiB/GiB.
    Bytes,
    /// Microseconds, as µs/ms/s.
    Micros,
}

impl Axis {
    /// The axis for values in a signal's unit.
    pub fn of(unit: model::Unit) -> Axis {
        match unit {
            model::Unit::Count => Axis::Count,
            model::Unit::Bytes => Axis::Bytes,
        }
    }

    fn format(self, v: f64) -> String {
        match self {
            Axis::Count => format_value(v, model::Unit::Count),
            Axis::Bytes => format_value(v, model::Unit::Bytes),
            Axis::Micros if v < 0.5 => "0".to_owned(),
            Axis::Micros => super::text::us(v.round() as u64),
        }
    }
}

impl Axis {
    /// About five round ticks over `lo..=hi`; bytes are round in KiB or MiB.
    fn ticks(self, lo: f64, hi: f64) -> Vec<f64> {
        let scale = match self {
            Axis::Bytes if hi >= 1024.0 * 1024.0 => 1024.0 * 1024.0,
            Axis::Bytes if hi >= 1024.0 => 1024.0,
            _ => 1.0,
        };
        ticks(lo / scale, hi / scale, 5)
            .into_iter()
            .map(|t| t * scale)
            .collect()
    }
}

/// A chart to draw.
pub struct Chart {
    /// Element id (also what tests look for).
    pub id: String,
    /// Accessible title.
    pub title: String,
    /// Width and height of the viewBox.
    pub size: (f64, f64),
    /// y unit.
    pub unit: Axis,
    /// Series.
    pub lines: Vec<Line>,
    /// Shaded ranges drawn under everything.
    pub bands: Vec<Band>,
    /// Reference lines.
    pub references: Vec<Reference>,
    /// Labels for x positions (categories); `None` prints numeric ticks with `x_suffix`.
    pub x_labels: Option<Vec<(f64, String)>>,
    /// Appended to numeric x ticks, e.g. " s".
    pub x_suffix: &'static str,
}

/// Round tick values covering `lo..=hi`, about `n` of them.
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    let mut out = Vec::new();
    let mut v = first;
    while v <= hi + step * 1e-9 {
        // Snap -0.0 and float dust to the grid.
        out.push((v / step).round() * step + 0.0);
        v += step;
    }
    out
}

impl Chart {
    /// The chart as an `<svg>` element.
    pub fn render(&self) -> String {
        let (w, h) = self.size;
        let (ml, mr, mt, mb) = MARGIN;
        let (pw, ph) = (w - ml - mr, h - mt - mb);

        let xs = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(self.bands.iter().flat_map(|b| [b.x0, b.x1]))
            .chain(self.x_labels.iter().flatten().map(|l| l.0));
        let (x_lo, x_hi) = bounds(xs);
        let ys = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .chain(self.references.iter().map(|r| r.y));
        let (_, y_top) = bounds(ys);
        // Counters and latencies are never negative: start the axis at 0 so
        // growth reads as a height.
        let y_lo = 0.0;
        let y_ticks = self.unit.ticks(y_lo, y_top.max(1.0) * 1.08);
        let y_hi = y_ticks.last().copied().unwrap_or(1.0).max(y_top).max(1.0);
        let x_span = if x_hi > x_lo { x_hi - x_lo } else { 1.0 };
        // Categorical charts get half a slot of air on each side.
        let pad = if self.x_labels.is_some() { 0.5 } else { 0.0 };
        let sx = |x: f64| ml + (x - x_lo + pad) / (x_span + 2.0 * pad) * pw;
        let sy = |y: f64| mt + ph - (y - y_lo) / (y_hi - y_lo) * ph;

        let mut o = String::new();
        let _ = write!(
            o,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"{}\" viewBox=\"0 0 {w} {h}\" \
             role=\"img\" aria-label=\"{}\"><title>{}</title>",
            esc(&self.id),
            esc(&self.title),
            esc(&self.title)
        );
        for (i, b) in self.bands.iter().enumerate() {
            let (x0, x1) = (sx(b.x0), sx(b.x1));
            let _ = write!(
                o,
                "<rect class=\"band\" x=\"{x0:.1}\" y=\"{mt}\" width=\"{:.1}\" height=\"{ph}\" fill=\"{}\"/>",
                (x1 - x0).max(0.5),
                BAND_FILLS[i % BAND_FILLS.len()]
            );
            // Only where the label fits (about 6 units per character at size 10).
            if x1 - x0 > 6.0 * b.label.chars().count() as f64 + 6.0 {
                let _ = write!(
                    o,
                    "<text class=\"band-label\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#555\">{}</text>",
                    x0 + 3.0,
                    mt + 11.0,
                    esc(&b.label)
                );
            }
        }
        // Axes and grid.
        for t in &y_ticks {
            let y = sy(*t);
            let _ = write!(
                o,
                "<line x1=\"{ml}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#333\">{}</text>",
                ml + pw,
                ml - 6.0,
                y + 4.0,
                esc(&self.unit.format(*t))
            );
        }
        let x_ticks: Vec<(f64, String)> = match &self.x_labels {
            Some(labels) => labels.clone(),
            None => ticks(x_lo, x_hi, 8)
                .into_iter()
                .map(|t| {
                    (
                        t,
                        format!("{}{}", format_value(t, model::Unit::Count), self.x_suffix),
                    )
                })
                .collect(),
        };
        for (x, label) in &x_ticks {
            let px = sx(*x);
            let _ = write!(
                o,
                "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>\
                 <text x=\"{px:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
                mt + ph,
                mt + ph + 4.0,
                mt + ph + 17.0,
                esc(label)
            );
        }
        let _ = write!(
            o,
            "<rect x=\"{ml}\" y=\"{mt}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>"
        );
        for (i, r) in self.references.iter().enumerate() {
            let y = sy(r.y);
            // Labels alternate right and left so close lines stay readable.
            let (lx, anchor) = if i % 2 == 0 {
                (ml + pw - 4.0, "end")
            } else {
                (ml + 4.0, "start")
            };
            let _ = write!(
                o,
                "<line class=\"reference\" x1=\"{ml}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" \
                 stroke=\"#444\" stroke-dasharray=\"5 4\"/>\
                 <text x=\"{lx:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"{anchor}\" fill=\"#444\">{}</text>",
                ml + pw,
                y - 4.0,
                esc(&r.label)
            );
        }
        for l in &self.lines {
            let pts: Vec<String> = l
                .points
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                .collect();
            let _ = write!(
                o,
                "<polyline class=\"series\" data-series=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" \
                 stroke-width=\"2\" stroke-linejoin=\"round\"/>",
                esc(&l.name),
                pts.join(" "),
                l.color
            );
            if l.markers {
                for (x, y) in &l.points {
                    let _ = write!(
                        o,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"><title>{}: {}</title></circle>",
                        sx(*x),
                        sy(*y),
                        l.color,
                        esc(&l.name),
                        esc(&self.unit.format(*y))
                    );
                }
            }
        }
        // Legend along the top.
        let mut lx = ml;
        for l in &self.lines {
            let _ = write!(
                o,
                "<rect x=\"{lx:.1}\" y=\"10\" width=\"12\" height=\"12\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"20\" font-size=\"12\" fill=\"#222\">{}</text>",
                l.color,
                lx + 16.0,
                esc(&l.name)
            );
            lx += 28.0 + 7.0 * l.name.chars().count() as f64;
        }
        o.push_str("</svg>");
        o
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc: Option<(f64, f64)>, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
        .unwrap_or((0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 650.0, 5), vec![0.0, 200.0, 400.0, 600.0]);
        assert_eq!(ticks(5.0, 5.0, 5), vec![5.0]);
        assert_eq!(ticks(0.0, f64::NAN, 5), vec![0.0]);
    }

    #[test]
    fn byte_ticks_are_round_in_binary_units() {
        let t = Axis::Bytes.ticks(0.0, 6.0 * 1024.0 * 1024.0);
        let mib = 1024.0 * 1024.0;
        assert!(t.len() >= 3, "{t:?}");
        assert!(t.iter().all(|v| v % mib == 0.0), "{t:?}");
    }

    #[test]
    fn chart_has_series_bands_and_escaped_text() {
        let c = Chart {
            id: "c".into(),
            title: "a <b> & c".into(),
            size: (600.0, 200.0),
            unit: Axis::Count,
            lines: vec![Line {
                name: "g<1>".into(),
                points: vec![(0.0, 1.0), (1.0, 5.0)],
                color: "#c00",
                markers: true,
            }],
            bands: vec![Band {
                x0: 0.0,
                x1: 0.5,
                label: "cycle 1/3".into(),
            }],
            references: vec![Reference {
                y: 1.0,
                label: "baseline".into(),
            }],
            x_labels: None,
            x_suffix: " s",
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("class=\"band\"").count(), 1);
        assert!(svg.contains("a &lt;b&gt; &amp; c"), "{svg}");
        assert!(svg.contains("g&lt;1&gt;"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(!svg.contains("NaN"), "{svg}");
    }
}
