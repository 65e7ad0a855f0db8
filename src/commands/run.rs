//! `leakbench run SCENARIO`: validate the scenario, run the protocol, print
//! the summary and write the reports. The exit code is the report's, or
//! with `--bisect` git bisect's reading of it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::exit::{bisect, error_line};
use crate::fleet::CoordinatorArgs;
use crate::output;
use crate::protocol::{self, RunOptions};
use crate::redact::Redactor;
use crate::remote::Policy;
use crate::report::{Render, text::Text};
use crate::scenario::Scenario;

/// Runs the scenario at `path`; `out` receives every report file. With
/// `bisect`, the outcome, errors before the run included, is given in
/// `git bisect run`'s codes.
pub fn execute(
    path: PathBuf,
    out: Option<PathBuf>,
    quiet: bool,
    allow_remote: Vec<String>,
    bisect: bool,
    fleet: CoordinatorArgs,
) -> Result<ExitCode> {
    let ran = run(path, out, quiet, allow_remote, fleet);
    if !bisect {
        return ran.map(|(code, _)| ExitCode::from(code));
    }
    let (code, why) = ran.unwrap_or_else(|e| {
        let why = error_line(&e);
        eprintln!("leakbench: error: {why}");
        (crate::exit::ERROR, why)
    });
    let (code, skipped) = bisect::code(code, &why);
    if let Some(line) = skipped {
        eprintln!("{line}");
    }
    Ok(ExitCode::from(code))
}

/// The run itself: its exit code, and why (the error that cut it short, or
/// the report's first reason).
fn run(
    path: PathBuf,
    out: Option<PathBuf>,
    quiet: bool,
    allow_remote: Vec<String>,
    fleet: CoordinatorArgs,
) -> Result<(u8, String)> {
    let fleet = fleet.config()?;
    // The only place remote hosts can be allowed: the scenario is checked
    // against this consent, and the run pins what its names resolve to.
    let policy = Policy::from_flags(&allow_remote)?;
    let scenario = Scenario::load_with(&path, &policy)?;
    // Everything printed or written below goes through this.
    let mut redactor = Redactor::from_scenario(&scenario);
    if let Some(f) = &fleet {
        redactor.add_token(&f.token);
    }
    let options = RunOptions { out, quiet, fleet };
    let runtime = super::runtime()?;
    let outcome = runtime
        .block_on(protocol::run(&scenario, &options))
        .map_err(|e| anyhow::anyhow!("{}", redactor.redact(&error_line(&e))))?;
    let report = &outcome.report;
    print!("{}", redactor.redact(&Text::detect().render(report)));
    if let Some(dir) = &options.out {
        output::write_reports(dir, report, &redactor)?;
        println!("  report: {}", dir.join("report.html").display());
        if report.profiles.contains_key("heap_diff") {
            println!(
                "  what grew: go tool pprof -top {0}/diff-heap.pb.gz   (or -base {0}/heap-base.pb.gz {0}/heap-final.pb.gz)",
                dir.display()
            );
        }
    }
    let error = outcome
        .error
        .as_ref()
        .map(|e| redactor.redact(&error_line(e)).into_owned());
    if let Some(e) = &error {
        eprintln!("leakbench: error: {e}");
    }
    // The runtime may hold a blocked stdin reader or a signal task; do not
    // wait for them.
    runtime.shutdown_background();
    let why = error
        .or_else(|| {
            report
                .reasons
                .first()
                .map(|r| redactor.redact(r).into_owned())
        })
        .unwrap_or_default();
    Ok((report.exit_code(), why))
}
