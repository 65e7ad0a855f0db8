//! Load agents and their coordinator: `leakbench run --agents N` spreads each
//! cycle's sessions over N `leakbench agent` processes, and alone probes,
//! settles, judges and reports.
//!
//! - [`wire`]: the control channel's JSON messages;
//! - [`share`]: how a cycle splits over the agents;
//! - [`coordinator`]: the barriers, the faults and the merge;
//! - `listener`: the coordinator's websocket listener and connections;
//! - [`agent`]: the `leakbench agent` process;
//! - [`tls`]: optional mutual TLS for the control channel.
//!
//! docs/fleet.md explains the protocol, the faults and the security model.

pub mod agent;
pub mod coordinator;
mod listener;
pub mod share;
pub mod tls;
pub mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};

pub use coordinator::Fleet;

/// Default wait for every agent to connect: long enough for pods to be
/// scheduled and pull a cached image, short enough that a missing agent is
/// an error within a minute.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How often each side pings the other on the control channel.
pub const PING_EVERY: Duration = Duration::from_secs(1);

/// Silence after which a peer counts as gone: five missed pings, far above
/// a loaded machine's scheduling hiccups (the control channel runs on a
/// thread of its own), far below a settle.
pub const SILENT_FOR: Duration = Duration::from_secs(5);

/// Shortest token accepted: shorter ones are guessable, and the redactor
/// must be able to search for it.
const MIN_TOKEN_LEN: usize = 16;

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
    /// Longest wait for all N agents to connect (e.g. 60s, 2m).
    #[arg(long = "agent-timeout", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub agent_timeout: Option<Duration>,
    /// PEM certificate chain the coordinator presents (wss://); needs --tls-key.
    #[arg(long = "tls-cert", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long = "tls-key", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA that agents' client certificates must chain to (mutual TLS);
    /// needs --tls-cert.
    #[arg(long = "client-ca", value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
}

/// `leakbench agent` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The coordinator's URL, e.g. ws://10.0.0.5:7070 (wss:// with TLS).
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
    /// This agent's index in the fleet (default: env JOB_COMPLETION_INDEX,
    /// else the coordinator assigns one in connection order).
    #[arg(long, value_name = "I")]
    pub index: Option<u32>,
    /// Write each cycle's share report here as cycle-N.json.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Longest wait for the coordinator to accept the connection (it may
    /// start after the agents); refused connections are retried until then.
    #[arg(long = "connect-timeout", value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "60s")]
    pub connect_timeout: Duration,
    /// PEM CA to check the coordinator's certificate against (wss://).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS; needs --key.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// A validated coordinator configuration (from [`CoordinatorArgs`]).
#[derive(Clone)]
pub struct CoordinatorConfig {
    /// Agents to wait for.
    pub agents: u32,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The token file, for messages.
    pub token_file: PathBuf,
    /// The bearer token itself (never printed).
    pub token: String,
    /// Longest wait for the agents.
    pub agent_timeout: Duration,
    /// TLS for the control channel, if any.
    pub tls: Option<tls::ServerTls>,
}

impl std::fmt::Debug for CoordinatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorConfig")
            .field("agents", &self.agents)
            .field("listen", &self.listen)
            .field("token_file", &self.token_file)
            .field("token", &crate::redact::MASK)
            .field("agent_timeout", &self.agent_timeout)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl CoordinatorArgs {
    /// Whether any coordinator flag was given.
    fn any(&self) -> bool {
        self.agents.is_some()
            || self.listen.is_some()
            || self.token_file.is_some()
            || self.agent_timeout.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.client_ca.is_some()
    }

    /// The validated configuration; `None` for a local run. Errors name the
    /// flag that is missing or wrong and how to fix it.
    pub fn config(&self) -> Result<Option<CoordinatorConfig>> {
        if !self.any() {
            return Ok(None);
        }
        let Some(agents) = self.agents else {
            bail!(
                "--listen, --token-file and --agent-timeout only apply to a coordinator: add --agents N"
            );
        };
        if agents == 0 {
            bail!(
                "--agents 0: a fleet needs at least one agent; leave --agents out to run the load here"
            );
        }
        let Some(listen) = self.listen else {
            bail!(
                "--agents {agents} needs --listen ADDR, the address agents connect to (e.g. --listen 0.0.0.0:7070)"
            );
        };
        let Some(token_file) = self.token_file.clone() else {
            bail!(
                "--agents {agents} needs --token-file FILE, the bearer token agents must present \
                 (e.g. `head -c 24 /dev/urandom | base64 > token` and give agents the same file)"
            );
        };
        let token = read_token(&token_file)?;
        let tls = tls::ServerTls::from_args(self)?;
        Ok(Some(CoordinatorConfig {
            agents,
            listen,
            token_file,
            token,
            agent_timeout: self.agent_timeout.unwrap_or(DEFAULT_AGENT_TIMEOUT),
            tls,
        }))
    }
}

/// Reads a bearer token: the file's text, trimmed. A missing, empty, short
/// or unprintable token is an error naming the file.
pub fn read_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the token file {}: {e}; write a shared secret there \
             (e.g. `head -c 24 /dev/urandom | base64 > {0}`) and give the coordinator and every agent the same file",
            path.display()
        )
    })?;
    let token = text.trim();
    if token.is_empty() {
        bail!(
            "the token file {} is empty; write a shared secret there (e.g. `head -c 24 /dev/urandom | base64 > {0}`)",
            path.display()
        );
    }
    if token.len() < MIN_TOKEN_LEN {
        bail!(
            "the token in {} is {} characters; use at least {MIN_TOKEN_LEN} (e.g. `head -c 24 /dev/urandom | base64 > {0}`)",
            path.display(),
            token.len()
        );
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        bail!(
            "the token in {} holds spaces or non-ASCII characters; use printable ASCII only (base64 is fine)",
            path.display()
        );
    }
    Ok(token.to_owned())
}

/// Compares a presented token with the expected one in time that does not
/// depend on where they differ.
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // ct_eq on slices of different lengths is false without comparing bytes;
    // the length of the token is not a secret worth hiding.
    presented.ct_eq(expected).into()
}

/// Whether this agent agrees to load `target`, by its own `--allow-remote`
/// consent (`policy`), whatever the coordinator allowed: loopback always,
/// any other host only if the agent's flags cover it and every address its
/// name resolves to here. Returns the pins the agent's sessions connect to.
/// The one place the agent's policy is decided.
pub async fn agent_allows(
    target: &crate::scenario::Target,
    policy: &crate::remote::Policy,
    timeout: Duration,
) -> Result<crate::remote::Pins, String> {
    let host = target.url.host().unwrap_or_default();
    let refused = |why: crate::remote::Refused| format!("this agent's own consent: {why}");
    policy.check_host(host).map_err(refused)?;
    crate::remote::resolve(policy, [host], timeout)
        .await
        .map_err(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!token_matches(b"0123456789abcdeX", b"0123456789abcdef"));
        assert!(!token_matches(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!token_matches(b"", b"0123456789abcdef"));
    }

    #[test]
    fn token_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = read_token(&missing).unwrap_err().to_string();
        assert!(
            e.contains("cannot read the token file") && e.contains("nope"),
            "{e}"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n \n").unwrap();
        let e = read_token(&empty).unwrap_err().to_string();
        assert!(e.contains("is empty"), "{e}");
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        assert!(
            read_token(&short)
                .unwrap_err()
                .to_string()
                .contains("at least 16")
        );
        let good = dir.path().join("good");
        std::fs::write(&good, "  c2VjcmV0LXRva2VuLTEyMzQ1\n").unwrap();
        assert_eq!(read_token(&good).unwrap(), "c2VjcmV0LXRva2VuLTEyMzQ1");
    }

    #[test]
    fn coordinator_flags_need_each_other() {
        let args = CoordinatorArgs {
            agents: Some(2),
            ..Default::default()
        };
        assert!(args.config().unwrap_err().to_string().contains("--listen"));
        let args = CoordinatorArgs {
            listen: Some("127.0.0.1:1".parse().unwrap()),
            ..Default::default()
        };
        assert!(
            args.config()
                .unwrap_err()
                .to_string()
                .contains("add --agents")
        );
        assert!(CoordinatorArgs::default().config().unwrap().is_none());
    }

    #[tokio::test]
    async fn agents_load_what_their_own_flags_allow() {
        let target = |url: &str| {
            let mut s = crate::scenario::Scenario::parse(
                "[target]\nurl = \"ws://127.0.0.1:1/ws\"\n[load]\nsessions = 1\n",
                std::path::Path::new("s.toml"),
            )
            .unwrap();
            s.target.url = url.parse().unwrap();
            s.target
        };
        let none = crate::remote::Policy::loopback_only();
        let wait = Duration::from_secs(1);
        assert!(
            agent_allows(&target("ws://127.0.0.1:8080/ws"), &none, wait)
                .await
                .is_ok()
        );
        let e = agent_allows(&target("ws://198.18.0.2:8080/ws"), &none, wait)
            .await
            .unwrap_err();
        assert!(e.contains("--allow-remote 198.18.0.2"), "{e}");
        let mine = crate::remote::Policy::from_flags(&["198.18.0.0/24"]).unwrap();
        assert!(
            agent_allows(&target("ws://198.18.0.2:8080/ws"), &mine, wait)
                .await
                .is_ok()
        );
        let e = agent_allows(&target("ws://198.18.1.2:8080/ws"), &mine, wait)
            .await
            .unwrap_err();
        assert!(e.contains("198.18.1.2"), "{e}");
        let e = agent_allows(&target("ws://169.254.169.254/ws"), &mine, wait)
            .await
            .unwrap_err();
        assert!(e.contains("169.254.169.254"), "{e}");
    }
}
