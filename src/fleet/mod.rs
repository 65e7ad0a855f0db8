//! Load agents and their coordinator: `leakbench run --agents N` spreads each
//! cycle's sessions over N `leakbench agent` processes, and alone probes,
//! settles, judges and reports.

pub mod agent;

use std::net::SocketAddr;
use std::path::PathBuf;

/// `leakbench run` flags that make it a coordinator of load agents.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CoordinatorArgs {
    /// Spread each cycle's sessions over this many `leakbench agent`
    /// processes instead of running them here; needs --listen and --token-file.
    #[arg(long, value_name = "N")]
    pub agents: Option<u32>,
    /// Address the agents connect to, e.g. 0.0.0.0:7070.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// File holding the bearer token agents must present.
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `leakbench agent` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The coordinator's URL, e.g. ws://10.0.0.5:7070.
    #[arg(long, value_name = "URL")]
    pub coordinator: String,
    /// File holding the bearer token the coordinator expects.
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: PathBuf,
    /// Local source addresses to open sessions from (repeatable).
    #[arg(long = "source", value_name = "ADDR")]
    pub sources: Vec<std::net::IpAddr>,
    /// Non-loopback hosts or CIDRs this agent agrees to load (repeatable).
    #[arg(long = "allow-remote", value_name = "HOST|CIDR")]
    pub allow_remote: Vec<String>,
}
