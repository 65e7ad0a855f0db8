//! Command line: `leakbench run SCENARIO`, `validate SCENARIO`, `init`,
//! `diff BASE AFTER`, `snapshot PPROF_URL`.
//!
//! Exit codes: 0 pass, 1 leak, 2 error (bad scenario, unreachable target,
//! target died), 3 inconclusive. A leak is a verdict, never an error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::commands::{diff, init, snapshot};
use crate::exit::error_line;
use crate::redact::Redactor;
use crate::report::{Render, html::Html, json::Json, junit::Junit, markdown::Markdown, text::Text};
use crate::run::{self, RunOptions};
use crate::scenario::Scenario;

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
        /// Write report.json, report.html, junit.xml, summary.md, the
        /// baseline, final and diff profiles and the target's log here.
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
    /// Write a commented starter scenario (to stdout, or to a file with -o).
    Init {
        /// The kind of service.
        #[arg(value_enum, default_value = "ws")]
        kind: init::Kind,
        /// Write here instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// What grew between two heap or goroutine profiles (files or loopback
    /// http:// URLs, gzip or not): sites and stacks, absolute and per object.
    Diff {
        /// The earlier profile, e.g. heap-base.pb.gz or http://127.0.0.1:6060/debug/pprof/heap?gc=1
        base: String,
        /// The later profile.
        after: String,
        /// Also write AFTER minus BASE as a profile for `go tool pprof`.
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Rows per table.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// One settled snapshot of a running target: wait until it holds still,
    /// force GCs, then write counters, heap and goroutine profiles and the
    /// goroutine dump.
    Snapshot {
        /// The pprof base URL, e.g. http://127.0.0.1:6060/debug/pprof (loopback only).
        pprof: String,
        /// Folder to write heap.pb.gz, goroutine.pb.gz, goroutine.txt and counters.json to.
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
        /// Longest wait for the target to hold still first; 0s measures at once.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        settle: std::time::Duration,
        /// Also read /proc/PID (descriptors, RSS, threads) of the target.
        #[arg(long)]
        pid: Option<u32>,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    crate::alloc::configure();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
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
            let runtime = runtime()?;
            let outcome = runtime
                .block_on(run::run(&scenario, &options))
                .map_err(|e| anyhow::anyhow!("{}", redactor.redact(&error_line(&e))))?;
            let report = &outcome.report;
            print!("{}", redactor.redact(&Text::detect().render(report)));
            if let Some(dir) = &options.out {
                let formats: [&dyn Render; 4] = [&Json, &Junit, &Markdown, &Html];
                for format in formats {
                    let path = dir.join(format.file_name());
                    std::fs::write(&path, redactor.redact(&format.render(report)).as_bytes())
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                println!("  report: {}", dir.join("report.html").display());
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
            Ok(ExitCode::from(outcome.report.exit_code()))
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
        Command::Init { kind, out, force } => {
            init::execute(kind, out.as_deref(), force)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff {
            base,
            after,
            out,
            top,
        } => {
            runtime()?.block_on(diff::execute(&base, &after, out.as_deref(), top))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Snapshot {
            pprof,
            out,
            settle,
            pid,
        } => {
            runtime()?.block_on(snapshot::execute(&pprof, &out, settle, pid))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
