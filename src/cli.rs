//! Command-line interface (in progress).

use std::process::ExitCode;

/// Exit code for an error (bad input, unreachable target).
pub const EXIT_ERROR: u8 = 2;

/// leakbench command line.
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli {}

/// Runs the parsed command.
pub fn execute(_cli: Cli) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
