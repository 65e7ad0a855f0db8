//! Command line: `leakbench run SCENARIO`, `leakbench validate SCENARIO`.
//!
//! Exit codes: 0 pass, 1 leak, 2 error (bad scenario, unreachable target,
//! target died), 3 inconclusive. A leak is a verdict, never an error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::redact::Redactor;
use crate::report::{Render, json::Json, junit::Junit, markdown::Markdown, text::Text};
use crate::run::{self, RunOptions};
use crate::scenario::Scenario;

/// Exit code for an error (bad input, unreachable target, target died).
pub const EXIT_ERROR: u8 = 2;

/// An error and its causes on one line, each cause said once: typed errors
/// here already quote their source in their own message, which `{:#}`
/// would repeat.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(text.trim()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text.trim());
    }
    line
}

/// Leak verdicts under load: open sessions against a service, close them,
/// let it settle, and judge whether goroutines and memory came back.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario and give a verdict (exit 0 pass, 1 leak, 2 error, 3 inconclusive).
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Write report.json, the profiles and the target's log here.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print only the verdict summary, no progress lines.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Check a scenario and print what would run, without connecting.
    Validate {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
}

/// Runs the parsed command and returns the process exit code.
pub fn execute(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            scenario,
            out,
            quiet,
        } => {
            let scenario = Scenario::load(&scenario)?;
            // Everything printed or written below goes through this.
            let redactor = Redactor::from_scenario(&scenario);
            let options = RunOptions { out, quiet };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let outcome = runtime
                .block_on(run::run(&scenario, &options))
                .map_err(|e| anyhow::anyhow!("{}", redactor.redact(&error_line(&e))))?;
            let report = &outcome.report;
            print!("{}", redactor.redact(&Text.render(report)));
            if let Some(dir) = &options.out {
                let formats: [&dyn Render; 3] = [&Json, &Junit, &Markdown];
                for format in formats {
                    let path = dir.join(format.file_name());
                    std::fs::write(&path, redactor.redact(&format.render(report)).as_bytes())
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                if report.profiles.contains_key("heap_diff") {
                    println!(
                        "  what grew: go tool pprof -top {0}/diff-heap.pb.gz   (or -base {0}/heap-base.pb.gz {0}/heap-final.pb.gz)",
                        dir.display()
                    );
                }
            }
            if let Some(e) = &outcome.error {
                eprintln!("leakbench: error: {}", redactor.redact(&error_line(e)));
            }
            // The runtime may hold a blocked stdin reader or a signal task; do
            // not wait for them.
            runtime.shutdown_background();
            Ok(ExitCode::from(outcome.exit_code()))
        }
        Command::Validate { scenario } => {
            let s = Scenario::load(&scenario)?;
            let redactor = Redactor::from_scenario(&s);
            println!("{}: valid", scenario.display());
            let target = format!("  target   {} ({:?})", s.target.url, s.target.transport);
            println!("{}", redactor.redact(&target));
            let sources: Vec<String> = [
                s.target.pprof.as_ref().map(|u| format!("pprof {u}")),
                s.target.metrics.as_ref().map(|u| format!("metrics {u}")),
                s.target.expvar.as_ref().map(|u| format!("expvar {u}")),
                s.target.pid.map(|p| format!("/proc/{p}")),
                s.target
                    .command
                    .as_ref()
                    .map(|_| "/proc of the started target".to_owned()),
            ]
            .into_iter()
            .flatten()
            .collect();
            println!(
                "{}",
                redactor.redact(&format!("  sources  {}", sources.join(", ")))
            );
            for sig in &s.signals {
                println!(
                    "  signal   {} from {:?}{}",
                    sig.name,
                    sig.selector.name,
                    if sig.decides { "" } else { " (shown only)" }
                );
            }
            if let Some(cmd) = &s.target.command {
                println!("  command  {}", redactor.redact(&cmd.join(" ")));
            }
            println!(
                "  load     {} sessions per cycle, {} at once, {} warm-up + {} measured cycles, close {:?}",
                s.load.sessions, s.load.concurrency, s.load.warmup, s.load.cycles, s.load.close
            );
            println!("  settle   up to {:?} per cycle", s.settle.timeout);
            Ok(ExitCode::SUCCESS)
        }
    }
}
