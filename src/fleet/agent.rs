//! `leakbench agent`: one load agent of a coordinator's fleet.

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::AgentArgs;

/// Runs an agent until its coordinator ends the run.
pub fn execute(args: AgentArgs) -> Result<ExitCode> {
    bail!(
        "leakbench agent is not built yet (coordinator {})",
        args.coordinator
    )
}
