//! `leakbench compare BEFORE AFTER`: two runs' report.json, signal by
//! signal, release against release.
//!
//! A service with bounded retention cannot gate on "pass"; it gates on "no
//! worse than the last release". Each deciding signal's finding is read
//! back (leak with its rate per session, bounded with its bound, back) and
//! AFTER is worse when it leaks where BEFORE did not, or when the rate of a
//! leak or the bound of a bounded signal grew by more than the tolerance.
//!
//! Reports are read with their own small types, not the report model:
//! compare must read what earlier leakbench versions wrote, and those lack
//! the fields (`finding`, `curve`, `course`) that the model now fills.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::exit;
use crate::signal::{Unit, format_per_session, format_value};

/// Layout prefix of every report.json leakbench writes.
const SCHEMA_PREFIX: &str = "leakbench.report/";
/// The layouts this version reads. `v1` covers every report since 0.1:
/// later ones only added fields.
const READABLE: &[&str] = &["leakbench.report/v1"];

/// `leakbench compare` arguments.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The earlier run: its report.json, or the --out folder holding it.
    pub before: PathBuf,
    /// The later run: its report.json, or the --out folder holding it.
    pub after: PathBuf,
    /// How much a leak's rate per session or a bounded signal's bound may
    /// grow before AFTER counts as worse, in percent of BEFORE's.
    #[arg(long, value_name = "PERCENT", default_value_t = DEFAULT_TOLERANCE, value_parser = tolerance)]
    pub tolerance: f64,
    /// Print the comparison as Markdown (for a pull-request comment)
    /// instead of a terminal table.
    #[arg(long)]
    pub markdown: bool,
}

/// Default `--tolerance`, in percent. Four runs of one build on this
/// machine moved the leaky chat hub's rate per session by 0.2% and the ring
/// target's bound by 4% (heap objects, 3,933 to 4,087; docs/ci.md); a real
/// service's heap is noisier, and a quarter is still a change in the code,
/// not in the run. A bounded signal is judged on its bound, never on its
/// rate while filling, which moved by 70% (1.23 to 2.07 objects a session).
pub const DEFAULT_TOLERANCE: f64 = 25.0;

fn tolerance(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a number of percent (e.g. 25)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("`{s}`: the tolerance is a percentage of 0 or more"));
    }
    Ok(v)
}

/// Reads both reports, prints the comparison and returns exit 1 when AFTER
/// is worse, 0 otherwise. Unreadable or mismatched reports are errors.
pub fn execute(args: &CompareArgs) -> Result<ExitCode> {
    let before = Run::read("BEFORE", &args.before)?;
    let after = Run::read("AFTER", &args.after)?;
    let comparison = compare(&before, &after, args.tolerance / 100.0)?;
    let text = if args.markdown {
        comparison.markdown()
    } else {
        comparison.table()
    };
    print!("{text}");
    Ok(ExitCode::from(if comparison.worse() {
        exit::LEAK
    } else {
        exit::PASS
    }))
}

/// One run's report as compare reads it.
#[derive(Debug, Deserialize)]
struct Run {
    #[serde(skip)]
    path: PathBuf,
    leakbench: String,
    status: String,
    name: String,
    verdict: String,
    signals: Vec<Signal>,
}

/// One signal of a report.
#[derive(Debug, Deserialize)]
struct Signal {
    name: String,
    unit: Unit,
    verdict: String,
    decides: bool,
    /// Growth per session: least squares over the cycles before the
    /// retention-curve model, Theil-Sen over the curve since.
    per_session: f64,
    /// Absent before the retention-curve model.
    #[serde(default)]
    finding: Option<FindingIn>,
}

/// A signal's finding as report.json stores it.
#[derive(Debug, Deserialize)]
struct FindingIn {
    kind: String,
    per_session: f64,
    #[serde(default)]
    bound: Option<f64>,
}

/// What a signal kept, as compare judges it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kept {
    /// Came back.
    Back,
    /// Rose, then held at `bound`.
    Bounded { bound: f64 },
    /// Grew with the sessions (or with time), `per_session` each.
    Leak { per_session: f64 },
    /// The run could not tell.
    Undecided,
}

impl Signal {
    fn kept(&self) -> Kept {
        let leaks = self.verdict == "leak";
        match &self.finding {
            // Reports before the retention-curve model say only pass, leak
            // or inconclusive: a pass then meant "came back".
            None if leaks => Kept::Leak {
                per_session: self.per_session,
            },
            None if self.verdict == "pass" => Kept::Back,
            None => Kept::Undecided,
            Some(f) if leaks || f.kind == "leak" || f.kind == "time" => Kept::Leak {
                per_session: f.per_session,
            },
            Some(f) => match (f.kind.as_str(), f.bound) {
                ("bounded", Some(bound)) => Kept::Bounded { bound },
                ("back", _) => Kept::Back,
                _ => Kept::Undecided,
            },
        }
    }
}

impl Run {
    /// Reads `path` (a report.json or the folder holding one); `role` is
    /// BEFORE or AFTER, for errors.
    fn read(role: &str, path: &Path) -> Result<Run> {
        let file = if path.is_dir() {
            let file = path.join("report.json");
            if !file.is_file() {
                bail!(
                    "{role} {}: the folder has no report.json; pass a report.json or the \
                     --out folder of a `leakbench run`",
                    path.display()
                );
            }
            file
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("{role}: cannot read {}", file.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "{role} {} is not JSON (want a leakbench report.json)",
                file.display()
            )
        })?;
        let schema = value
            .get("schema")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_owned();
        if !schema.starts_with(SCHEMA_PREFIX) {
            bail!(
                "{role} {} is not a leakbench report.json (no `schema: {SCHEMA_PREFIX}...` field)",
                file.display()
            );
        }
        if !READABLE.contains(&schema.as_str()) {
            bail!(
                "{role} {} has layout {schema}, written by a newer leakbench; this one ({}) \
                 reads {}: compare with the newer leakbench",
                file.display(),
                env!("CARGO_PKG_VERSION"),
                READABLE.join(", ")
            );
        }
        let mut run: Run = serde_json::from_value(value).with_context(|| {
            format!(
                "{role} {}: a {schema} report with a field out of place",
                file.display()
            )
        })?;
        if run.status != "complete" {
            bail!(
                "{role} {} is a partial report (status `{}`): its run stopped before a \
                 verdict; compare two complete runs",
                file.display(),
                run.status
            );
        }
        run.path = file;
        Ok(run)
    }
}

/// One signal's row.
#[derive(Debug)]
struct Row {
    name: String,
    unit: Unit,
    decides: bool,
    before: Kept,
    after: Kept,
    /// Rates per session, as the reports give them.
    per_session: (f64, f64),
    change: Change,
}

/// What happened to a signal between the runs.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    /// AFTER is worse, for this reason.
    Worse(String),
    /// AFTER keeps less, for this reason.
    Better(String),
    /// Within the tolerance, or nothing kept in either.
    Same(String),
    /// One side could not tell, or the signal does not decide.
    NotJudged(String),
}

/// The two runs, row by row.
#[derive(Debug)]
struct Comparison {
    before: Summary,
    after: Summary,
    tolerance: f64,
    rows: Vec<Row>,
    /// Signals only one run measured (shown-only ones; deciding ones must match).
    unmatched: Vec<String>,
}

#[derive(Debug)]
struct Summary {
    path: PathBuf,
    leakbench: String,
    verdict: String,
}

impl Comparison {
    fn worse(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.change, Change::Worse(_)))
    }

    fn headline(&self) -> String {
        let worse: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| matches!(r.change, Change::Worse(_)))
            .map(|r| r.name.as_str())
            .collect();
        if worse.is_empty() {
            format!(
                "AFTER is no worse than BEFORE (tolerance {}%)",
                percent(self.tolerance)
            )
        } else {
            format!(
                "AFTER is worse on {} (tolerance {}%)",
                worse.join(", "),
                percent(self.tolerance)
            )
        }
    }

    fn cells(&self) -> Vec<[String; 5]> {
        self.rows
            .iter()
            .map(|r| {
                [
                    if r.decides {
                        r.name.clone()
                    } else {
                        format!("{} (shown)", r.name)
                    },
                    kept(r.before, r.unit),
                    kept(r.after, r.unit),
                    format!(
                        "{} -> {}",
                        format_per_session(r.per_session.0, r.unit),
                        format_per_session(r.per_session.1, r.unit)
                    ),
                    match &r.change {
                        Change::Worse(w) => format!("WORSE: {w}"),
                        Change::Better(w) | Change::Same(w) | Change::NotJudged(w) => w.clone(),
                    },
                ]
            })
            .collect()
    }

    /// The terminal table.
    fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "leakbench compare: {}", self.headline());
        for (role, s) in [("before", &self.before), ("after", &self.after)] {
            let _ = writeln!(
                o,
                "  {role:<6}  {} ({}, leakbench {})",
                s.path.display(),
                s.verdict,
                s.leakbench
            );
        }
        let header = [
            "signal".to_owned(),
            "before".to_owned(),
            "after".to_owned(),
            "per session".to_owned(),
            "change".to_owned(),
        ];
        let cells = self.cells();
        let mut widths = [0usize; 5];
        for row in std::iter::once(&header).chain(&cells) {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        o.push('\n');
        for row in std::iter::once(&header).chain(&cells) {
            let mut line = String::from(" ");
            for (i, (w, c)) in widths.iter().zip(row).enumerate() {
                if i + 1 == row.len() {
                    let _ = write!(line, " {c}");
                } else {
                    let pad = w - c.chars().count();
                    let _ = write!(line, " {c}{}", " ".repeat(pad + 1));
                }
            }
            let _ = writeln!(o, "{}", line.trim_end());
        }
        for name in &self.unmatched {
            let _ = writeln!(o, "  {name}: measured in one run only, not compared");
        }
        o
    }

    /// The Markdown form, for a pull-request comment.
    fn markdown(&self) -> String {
        let mut o = String::new();
        let mark = if self.worse() { "❌" } else { "✅" };
        let _ = writeln!(o, "### leakbench compare: {mark} {}\n", self.headline());
        let _ = writeln!(
            o,
            "Before: `{}` ({}, leakbench {}). After: `{}` ({}, leakbench {}).\n",
            self.before.path.display(),
            self.before.verdict,
            self.before.leakbench,
            self.after.path.display(),
            self.after.verdict,
            self.after.leakbench
        );
        let _ = writeln!(o, "| signal | before | after | per session | change |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for row in self.cells() {
            let row: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            let _ = writeln!(o, "| {} |", row.join(" | "));
        }
        if !self.unmatched.is_empty() {
            let _ = writeln!(
                o,
                "\nMeasured in one run only, not compared: {}.",
                self.unmatched.join(", ")
            );
        }
        o
    }
}

fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p.fract().abs() < 1e-9 {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}

/// A finding for a table cell: `leak`, `bounded 4.0 MiB`, `back`.
fn kept(k: Kept, unit: Unit) -> String {
    match k {
        Kept::Back => "back".to_owned(),
        Kept::Bounded { bound } => format!("bounded {}", format_value(bound, unit)),
        Kept::Leak { .. } => "leak".to_owned(),
        Kept::Undecided => "inconclusive".to_owned(),
    }
}

/// Growth of `after` over `before`, as a fraction of `before`.
fn growth(before: f64, after: f64) -> f64 {
    if before > 0.0 {
        after / before - 1.0
    } else if after > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

fn signed_percent(g: f64) -> String {
    if g.is_infinite() {
        "from none".to_owned()
    } else {
        // Rounded first, so that a fall of a thousandth is "+0%", not "-0%".
        let p = (g * 100.0).round();
        format!("{:+.0}%", if p == 0.0 { 0.0 } else { p })
    }
}

/// Judges one deciding signal.
fn change(before: Kept, after: Kept, unit: Unit, tolerance: f64) -> Change {
    use Kept::{Back, Bounded, Leak, Undecided};
    let per = |v: f64| format!("{}/session", format_per_session(v, unit));
    match (before, after) {
        (_, Undecided) => Change::NotJudged("AFTER could not tell".to_owned()),
        (Leak { per_session: b }, Leak { per_session: a }) => {
            let g = growth(b, a);
            let what = format!("leaks {} ({} -> {})", signed_percent(g), per(b), per(a));
            if g > tolerance {
                Change::Worse(what)
            } else if g < -tolerance {
                Change::Better(what)
            } else {
                Change::Same(format!("leaks as before ({})", signed_percent(g)))
            }
        }
        (_, Leak { per_session }) => Change::Worse(format!("leaks now ({})", per(per_session))),
        (Leak { .. }, _) => Change::Better("no longer leaks".to_owned()),
        (Undecided, _) => Change::NotJudged("BEFORE could not tell".to_owned()),
        (Back, Back) => Change::Same("back in both".to_owned()),
        // What is left is back or bounded on both sides: back keeps nothing.
        (before, after) => {
            let bound = |k: Kept| match k {
                Bounded { bound } => bound,
                _ => 0.0,
            };
            let (b, a) = (bound(before), bound(after));
            let g = growth(b, a);
            let what = if a == 0.0 {
                "back now".to_owned()
            } else if b == 0.0 {
                format!("bounded now, at {} (was back)", format_value(a, unit))
            } else {
                format!(
                    "bound {} ({} -> {})",
                    signed_percent(g),
                    format_value(b, unit),
                    format_value(a, unit)
                )
            };
            if g > tolerance {
                Change::Worse(what)
            } else if g < -tolerance {
                Change::Better(what)
            } else {
                Change::Same(what)
            }
        }
    }
}

/// Pairs the two runs' signals. Different scenarios, or different
/// deciding signals, are not comparable and are errors.
fn compare(before: &Run, after: &Run, tolerance: f64) -> Result<Comparison> {
    if before.name != after.name {
        bail!(
            "different scenarios: BEFORE ({}) ran `{}`, AFTER ({}) ran `{}`; compare two runs \
             of the same scenario",
            before.path.display(),
            before.name,
            after.path.display(),
            after.name
        );
    }
    let deciding = |r: &Run| -> Vec<String> {
        let mut names: Vec<String> = r
            .signals
            .iter()
            .filter(|s| s.decides)
            .map(|s| s.name.clone())
            .collect();
        names.sort();
        names
    };
    let (b_names, a_names) = (deciding(before), deciding(after));
    if b_names != a_names {
        let only = |x: &[String], y: &[String]| -> String {
            let names: Vec<&str> = x
                .iter()
                .filter(|n| !y.contains(n))
                .map(String::as_str)
                .collect();
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        bail!(
            "different signals decide: only BEFORE has {}, only AFTER has {}; the runs \
             read different sources (check target.pprof, target.metrics and [[signals]])",
            only(&b_names, &a_names),
            only(&a_names, &b_names)
        );
    }
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    for b in &before.signals {
        let Some(a) = after.signals.iter().find(|a| a.name == b.name) else {
            unmatched.push(b.name.clone());
            continue;
        };
        if a.unit != b.unit {
            bail!(
                "signal {} is counted in {} in BEFORE and in {} in AFTER: not the same signal",
                b.name,
                b.unit.as_str(),
                a.unit.as_str()
            );
        }
        let (kb, ka) = (b.kept(), a.kept());
        let decides = b.decides && a.decides;
        let change = if decides {
            change(kb, ka, b.unit, tolerance)
        } else {
            Change::NotJudged("shown only".to_owned())
        };
        rows.push(Row {
            name: b.name.clone(),
            unit: b.unit,
            decides,
            before: kb,
            after: ka,
            per_session: (b.per_session, a.per_session),
            change,
        });
    }
    unmatched.extend(
        after
            .signals
            .iter()
            .filter(|a| !before.signals.iter().any(|b| b.name == a.name))
            .map(|a| a.name.clone()),
    );
    let summary = |r: &Run| Summary {
        path: r.path.clone(),
        leakbench: r.leakbench.clone(),
        verdict: r.verdict.clone(),
    };
    Ok(Comparison {
        before: summary(before),
        after: summary(after),
        tolerance,
        rows,
        unmatched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: f64 = 0.25;

    fn leak(per_session: f64) -> Kept {
        Kept::Leak { per_session }
    }

    fn bounded(bound: f64) -> Kept {
        Kept::Bounded { bound }
    }

    fn worse(c: &Change) -> bool {
        matches!(c, Change::Worse(_))
    }

    #[test]
    fn a_new_leak_or_a_faster_one_is_worse() {
        let c = change(Kept::Back, leak(1.0), Unit::Count, TOL);
        assert_eq!(c, Change::Worse("leaks now (1.00/session)".to_owned()));
        assert!(worse(&change(bounded(100.0), leak(1.0), Unit::Count, TOL)));
        assert!(worse(&change(Kept::Undecided, leak(1.0), Unit::Count, TOL)));
        let c = change(leak(1024.0), leak(2048.0), Unit::Bytes, TOL);
        assert_eq!(
            c,
            Change::Worse("leaks +100% (1.0 KiB/session -> 2.0 KiB/session)".to_owned())
        );
        // Within the tolerance either way is the same leak.
        let c = change(leak(1.0), leak(1.2), Unit::Count, TOL);
        assert_eq!(c, Change::Same("leaks as before (+20%)".to_owned()));
        assert!(matches!(
            change(leak(1.0), leak(0.5), Unit::Count, TOL),
            Change::Better(_)
        ));
    }

    #[test]
    fn a_bound_grown_past_the_tolerance_is_worse_and_a_new_one_counts_from_none() {
        let c = change(bounded(4000.0), bounded(8000.0), Unit::Count, TOL);
        assert_eq!(c, Change::Worse("bound +100% (4000 -> 8000)".to_owned()));
        let c = change(bounded(4000.0), bounded(4800.0), Unit::Count, TOL);
        assert_eq!(c, Change::Same("bound +20% (4000 -> 4800)".to_owned()));
        let c = change(Kept::Back, bounded(512.0), Unit::Count, TOL);
        assert_eq!(
            c,
            Change::Worse("bounded now, at 512 (was back)".to_owned())
        );
        assert_eq!(
            change(bounded(512.0), Kept::Back, Unit::Count, TOL),
            Change::Better("back now".to_owned())
        );
        // The tolerance is the knob: at 150% a doubled bound passes.
        assert!(!worse(&change(
            bounded(4000.0),
            bounded(8000.0),
            Unit::Count,
            1.5
        )));
    }

    #[test]
    fn what_either_run_could_not_tell_is_not_judged() {
        for (b, a) in [
            (Kept::Back, Kept::Undecided),
            (leak(1.0), Kept::Undecided),
            (Kept::Undecided, Kept::Back),
            (Kept::Undecided, bounded(10.0)),
        ] {
            assert!(
                matches!(change(b, a, Unit::Count, TOL), Change::NotJudged(_)),
                "{b:?} -> {a:?}"
            );
        }
        assert_eq!(
            change(leak(1.0), Kept::Back, Unit::Count, TOL),
            Change::Better("no longer leaks".to_owned())
        );
    }

    fn signal(json: serde_json::Value) -> Signal {
        serde_json::from_value(json).expect("a signal")
    }

    #[test]
    fn findings_are_read_from_both_layouts() {
        // Before the retention-curve model: no finding, the verdict alone.
        let old = |verdict: &str| {
            signal(serde_json::json!({"name": "goroutines", "unit": "count",
                "verdict": verdict, "decides": true, "per_session": 0.98}))
        };
        assert_eq!(old("leak").kept(), leak(0.98));
        assert_eq!(old("pass").kept(), Kept::Back);
        assert_eq!(old("inconclusive").kept(), Kept::Undecided);
        let new = |verdict: &str, finding: serde_json::Value| {
            signal(serde_json::json!({"name": "heap_bytes", "unit": "bytes",
                "verdict": verdict, "decides": true, "per_session": 1.0, "finding": finding}))
        };
        let f = serde_json::json!({"kind": "bounded", "per_session": 1100.0, "bound": 4.0e6});
        assert_eq!(new("pass", f).kept(), bounded(4.0e6));
        let f = serde_json::json!({"kind": "leak", "per_session": 10240.0});
        assert_eq!(new("leak", f).kept(), leak(10240.0));
        let f = serde_json::json!({"kind": "time", "per_session": 3.0, "per_second": 100.0});
        assert_eq!(new("leak", f).kept(), leak(3.0));
        let f = serde_json::json!({"kind": "undecided", "per_session": 3.0, "budget": "max_time"});
        assert_eq!(new("inconclusive", f).kept(), Kept::Undecided);
        let f = serde_json::json!({"kind": "back", "per_session": 0.0});
        assert_eq!(new("pass", f).kept(), Kept::Back);
    }

    fn run(name: &str, signals: &[(&str, bool)]) -> Run {
        Run {
            path: PathBuf::from(format!("{name}/report.json")),
            leakbench: "0.1.0".to_owned(),
            status: "complete".to_owned(),
            name: name.to_owned(),
            verdict: "pass".to_owned(),
            signals: signals
                .iter()
                .map(|&(n, decides)| {
                    signal(serde_json::json!({"name": n, "unit": "count",
                        "verdict": "pass", "decides": decides, "per_session": 0.0}))
                })
                .collect(),
        }
    }

    #[test]
    fn different_scenarios_or_deciding_signals_are_errors_that_name_them() {
        let a = run("hub", &[("goroutines", true), ("fds", true)]);
        let e = compare(
            &a,
            &run("other", &[("goroutines", true), ("fds", true)]),
            TOL,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("different scenarios") && e.contains("`other`"),
            "{e}"
        );
        let e = compare(
            &a,
            &run("hub", &[("goroutines", true), ("heap_bytes", true)]),
            TOL,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("only BEFORE has fds") && e.contains("only AFTER has heap_bytes"),
            "{e}"
        );
        // A shown-only signal in one run only is listed, not an error.
        let b = run(
            "hub",
            &[("goroutines", true), ("fds", true), ("anon_bytes", false)],
        );
        let c = compare(&a, &b, TOL).unwrap();
        assert_eq!(c.unmatched, vec!["anon_bytes".to_owned()]);
        assert!(!c.worse());
        assert!(c.table().contains("anon_bytes: measured in one run only"));
    }

    #[test]
    fn the_tolerance_flag_takes_percent_and_refuses_nonsense() {
        assert_eq!(tolerance("25"), Ok(25.0));
        assert_eq!(tolerance("12.5%"), Ok(12.5));
        assert!(tolerance("-1").unwrap_err().contains("0 or more"));
        assert!(tolerance("NaN").is_err());
        assert!(tolerance("lots").unwrap_err().contains("not a number"));
        assert_eq!(signed_percent(-0.001), "+0%");
        assert_eq!(signed_percent(0.954), "+95%");
    }
}
