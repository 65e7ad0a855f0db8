//! `leakbench kube SCENARIO`: the Kubernetes manifests that run a scenario
//! with load agents placed by an Indexed Job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

/// `leakbench kube` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Load agent pods.
    #[arg(long, value_name = "N")]
    pub agents: u32,
    /// The leakbench container image.
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// Namespace of every object.
    #[arg(long, value_name = "NS", default_value = "default")]
    pub namespace: String,
}

/// Prints the manifests.
pub fn execute(args: &KubeArgs) -> Result<ExitCode> {
    bail!(
        "leakbench kube is not built yet ({})",
        args.scenario.display()
    )
}
