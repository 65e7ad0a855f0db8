//! Command line: `leakbench run SCENARIO`, `agent`, `kube SCENARIO`,
//! `validate SCENARIO`, `compare BEFORE AFTER`, `init`, `diff BASE AFTER`,
//! `snapshot PPROF_URL`, `completions SHELL`, `man`.
//!
//! Exit codes: 0 pass, 1 leak, 2 error (bad scenario, unreachable target,
//! target died), 3 inconclusive. A leak is a verdict, never an error.
//! `run --bisect` speaks `git bisect run`'s codes instead (see
//! [`exit::bisect`](crate::exit::bisect)).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::commands::{compare, diff, docs, init, kube, run, runtime, snapshot, validate};

/// Leak verdicts under load: open sessions against a service, close them,
/// let it settle, and judge whether goroutines and memory came back.
#[derive(Debug, Parser)]
#[command(name = "leakbench", version, about, long_about = None)]
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
        /// Let the run drive load and probes at this non-loopback host, IP
        /// address or CIDR (repeatable). Only the command line can allow it.
        #[arg(long = "allow-remote", value_name = "HOST|CIDR")]
        allow_remote: Vec<String>,
        /// Exit as `git bisect run` reads it: 0 pass, 1 leak, 125 (skip this
        /// commit) for inconclusive or an error, with the reason on stderr.
        #[arg(long)]
        bisect: bool,
        #[command(flatten)]
        fleet: crate::fleet::CoordinatorArgs,
    },
    /// Run a coordinator's share of the load: connect to `leakbench run
    /// --agents N`, receive each cycle's share, run it and report back.
    Agent(crate::fleet::AgentArgs),
    /// Print Kubernetes manifests (an Indexed Job of agents, the coordinator,
    /// its Service and the token Secret) for `kubectl apply -f -`.
    Kube(crate::commands::kube::KubeArgs),
    /// Check a scenario and print what would run, without connecting.
    Validate {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Accept this non-loopback host, IP address or CIDR, as `run
        /// --allow-remote` would (repeatable); nothing is resolved.
        #[arg(long = "allow-remote", value_name = "HOST|CIDR")]
        allow_remote: Vec<String>,
    },
    /// Compare two runs' report.json (files or --out folders), signal by
    /// signal: exit 1 when AFTER leaks where BEFORE did not, or retains more
    /// per session or a bigger bound than the tolerance allows.
    Compare(compare::CompareArgs),
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
    /// Print a shell completion script for leakbench (e.g. `leakbench
    /// completions bash > /etc/bash_completion.d/leakbench`).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Print leakbench's man page (roff), or write one page per subcommand
    /// into a folder with --out.
    Man {
        /// Write leakbench.1 and leakbench-SUBCOMMAND.1 here instead.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Whether the raw arguments ask for `run --bisect`, for errors met before
/// (or while) the command line is parsed: those must be skips too.
pub fn wants_bisect(args: &[std::ffi::OsString]) -> bool {
    args.get(1).is_some_and(|a| a == "run") && args.iter().any(|a| a == "--bisect")
}

/// Runs the parsed command and returns the process exit code.
pub fn execute(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            scenario,
            out,
            quiet,
            allow_remote,
            bisect,
            fleet,
        } => run::execute(scenario, out, quiet, allow_remote, bisect, fleet),
        Command::Agent(args) => crate::fleet::agent::execute(args),
        Command::Kube(args) => kube::execute(&args),
        Command::Validate {
            scenario,
            allow_remote,
        } => {
            validate::execute(&scenario, &allow_remote)?;
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
        Command::Compare(args) => compare::execute(&args),
        Command::Completions { shell } => {
            docs::completions(<Cli as clap::CommandFactory>::command(), shell)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out } => {
            docs::man(<Cli as clap::CommandFactory>::command(), out.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
