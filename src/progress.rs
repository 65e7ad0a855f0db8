//! Progress of a run on stderr, in one of three modes chosen once at start:
//!
//! - **live** (stderr is a terminal): an indicatif spinner line redrawn in
//!   place with the phase and, while settling, the goroutine count against
//!   baseline; milestones are printed above it and stay in the scrollback;
//! - **plain** (CI logs, pipes, `TERM=dumb`): one timestamped line per
//!   milestone, nothing redrawn, nothing per settle poll;
//! - **quiet** (`--quiet`): nothing; only the final summary is printed.
//!
//! Progress never goes to stdout, which carries the summary.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::redact::Redactor;
use crate::signal::{Unit, format_value, name};
use crate::sources::{Reading, SignalSpec};

/// How often the live line redraws by itself (spinner and elapsed time).
const TICK: Duration = Duration::from_millis(120);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn status line on a terminal.
    Live,
    /// One line per milestone.
    Plain,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// Live on a terminal (unless `TERM=dumb`), plain otherwise, quiet when asked.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal()
            && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

/// The run's progress reporter.
pub struct Progress {
    /// When the run started; every line and timeline point is relative to it.
    pub start: Instant,
    mode: Mode,
    bar: Option<ProgressBar>,
    /// Every line passes through it; report files too.
    pub redactor: Redactor,
}

impl Progress {
    /// A reporter in `mode`, the clock starting at `start`; every line
    /// passes through `redactor`.
    pub fn new(mode: Mode, start: Instant, redactor: Redactor) -> Progress {
        let bar = (mode == Mode::Live).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed:>4}] {prefix:.bold} {wide_msg}")
                    .expect("the template is valid"),
            );
            bar.set_prefix("starting");
            bar.enable_steady_tick(TICK);
            bar
        });
        Progress {
            start,
            mode,
            bar,
            redactor,
        }
    }

    /// The mode in use.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A milestone: kept in the scrollback in live mode, one line in plain mode.
    pub fn line(&self, text: impl AsRef<str>) {
        let line = format!(
            "[{:>6.1}s] {}",
            self.start.elapsed().as_secs_f64(),
            self.redactor.redact(text.as_ref())
        );
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(line),
            (None, Mode::Plain) => eprintln!("{line}"),
            _ => {}
        }
    }

    /// A new phase begins (`warm-up 1/1`, `baseline`, `cycle 2/3`,
    /// `horizon`), doing `what`. Live mode only: plain mode prints its
    /// line when the phase has a result.
    pub fn phase(&self, name: &str, what: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(name.to_owned());
            bar.set_message(self.redactor.redact(&what.into()).into_owned());
        }
    }

    /// A settle poll saw `now`; `baseline` once it exists. Live mode only.
    pub fn settle_poll(&self, polls: u32, now: &Reading, baseline: Option<&Reading>) {
        if let Some(bar) = &self.bar {
            bar.set_message(settle_message(polls, now, baseline));
        }
    }

    /// Removes the live line, before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Signals shown on the live line while settling, when the sources give them.
const SHOWN: [(&str, Unit); 3] = [
    (name::GOROUTINES, Unit::Count),
    (name::HEAP_BYTES, Unit::Bytes),
    (name::FDS, Unit::Count),
];

/// The live line while settling: goroutines, heap and descriptors against baseline.
pub fn settle_message(polls: u32, now: &Reading, baseline: Option<&Reading>) -> String {
    let parts: Vec<String> = SHOWN
        .iter()
        .filter_map(|&(name, unit)| {
            let v = *now.get(name)?;
            Some(match baseline.and_then(|b| b.get(name)) {
                Some(b) => {
                    let d = v - b;
                    let sign = if d > 0.0 { "+" } else { "" };
                    format!(
                        "{name} {} (baseline {}, {sign}{})",
                        format_value(v, unit),
                        format_value(*b, unit),
                        format_value(d, unit)
                    )
                }
                None => format!("{name} {}", format_value(v, unit)),
            })
        })
        .collect();
    let what = if baseline.is_some() {
        "settling"
    } else {
        "holding still?"
    };
    format!("{what} (poll {polls}): {}", parts.join(", "))
}

/// "206 goroutines, heap_bytes 2.20 MiB, ..." for the deciding signals.
pub fn describe(r: &Reading, specs: &[SignalSpec]) -> String {
    specs
        .iter()
        .filter(|x| x.decides)
        .map(|x| {
            format!(
                "{} {}",
                x.name,
                format_value(r.get(&x.name).copied().unwrap_or(0.0), x.unit)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "goroutines 406 (+200), ..." for the deciding signals.
pub fn describe_change(base: &Reading, r: &Reading, specs: &[SignalSpec]) -> String {
    specs
        .iter()
        .filter(|x| x.decides)
        .map(|x| {
            let now = r.get(&x.name).copied().unwrap_or(0.0);
            let delta = now - base.get(&x.name).copied().unwrap_or(0.0);
            let sign = if delta > 0.0 { "+" } else { "" };
            format!(
                "{} {} ({sign}{})",
                x.name,
                format_value(now, x.unit),
                format_value(delta, x.unit)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_deciding_signals_with_their_units() {
        let spec = |name: &str, unit, decides| SignalSpec {
            name: name.to_owned(),
            unit,
            decides,
            floor: 1.0,
            source: crate::signal::SourceKind::Pprof,
        };
        let specs = [
            spec(name::GOROUTINES, Unit::Count, true),
            spec(name::HEAP_BYTES, Unit::Bytes, true),
            spec(name::RSS_BYTES, Unit::Bytes, false),
        ];
        let base: Reading = [
            (name::GOROUTINES.to_owned(), 206.0),
            (name::HEAP_BYTES.to_owned(), 2.0 * 1024.0 * 1024.0),
            (name::RSS_BYTES.to_owned(), 1e7),
        ]
        .into();
        assert_eq!(
            describe(&base, &specs),
            "goroutines 206, heap_bytes 2.00 MiB"
        );
        let mut now = base.clone();
        now.insert(name::GOROUTINES.to_owned(), 406.0);
        now.insert(name::HEAP_BYTES.to_owned(), 1024.0 * 1024.0);
        assert_eq!(
            describe_change(&base, &now, &specs),
            "goroutines 406 (+200), heap_bytes 1.00 MiB (-1.00 MiB)"
        );
    }

    #[test]
    fn quiet_wins_over_any_terminal() {
        assert_eq!(Mode::detect(true), Mode::Quiet);
    }

    #[test]
    fn settle_message_shows_goroutines_against_baseline() {
        let base: Reading = [
            ("goroutines".to_owned(), 12.0),
            ("heap_bytes".to_owned(), 300_000.0),
        ]
        .into();
        let now: Reading = [
            ("goroutines".to_owned(), 212.0),
            ("heap_bytes".to_owned(), 900_000.0),
        ]
        .into();
        let m = settle_message(3, &now, Some(&base));
        assert!(m.contains("goroutines 212 (baseline 12, +200)"), "{m}");
        assert!(m.contains("poll 3"), "{m}");
        let m = settle_message(1, &now, None);
        assert!(m.contains("goroutines 212"), "{m}");
    }

    #[test]
    fn plain_and_quiet_have_no_live_line() {
        let start = Instant::now();
        assert!(
            Progress::new(Mode::Plain, start, Redactor::default())
                .bar
                .is_none()
        );
        assert!(
            Progress::new(Mode::Quiet, start, Redactor::default())
                .bar
                .is_none()
        );
        assert!(
            Progress::new(Mode::Live, start, Redactor::default())
                .bar
                .is_some()
        );
    }
}
