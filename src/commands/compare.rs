//! `leakbench compare BEFORE AFTER`: two runs' report.json, signal by
//! signal, release against release.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

/// `leakbench compare` arguments.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The earlier run: its report.json, or the --out folder holding it.
    pub before: PathBuf,
    /// The later run: its report.json, or the --out folder holding it.
    pub after: PathBuf,
    /// How much a bound or a per-session retention may grow before AFTER
    /// counts as worse, in percent of BEFORE's.
    #[arg(long, value_name = "PERCENT", default_value_t = 25.0)]
    pub tolerance: f64,
    /// Print the comparison as Markdown (for a pull-request comment)
    /// instead of a terminal table.
    #[arg(long)]
    pub markdown: bool,
}

/// Compares the two reports and prints the table; exit 1 when AFTER is
/// worse, 0 otherwise.
pub fn execute(args: &CompareArgs) -> Result<ExitCode> {
    bail!(
        "compare {} {}: not built yet",
        args.before.display(),
        args.after.display()
    )
}
