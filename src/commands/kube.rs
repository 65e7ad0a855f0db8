//! `leakbench kube SCENARIO`: the Kubernetes manifests that run a scenario
//! with load agents placed by an Indexed Job.
//!
//! The command checks everything it can before printing: the scenario is
//! validated here (a bad one is exit 2 with its file:line:col error, not a
//! failed pod), the target must be reachable from other pods (no loopback,
//! no `command`, no `pid`), every remote host needs the operator's
//! `--allow-remote`, and the payload files must fit a ConfigMap. What it
//! prints is built by [`manifests`]; nothing is sent to a cluster.

mod manifests;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use toml::Spanned;

use crate::remote::Policy;
use crate::scenario::{Scenario, fill_placeholders, is_loopback_host};
pub use manifests::{ConfigFile, Plan};

/// Most agent pods: beyond this the coordinator's barriers (one round trip
/// to every agent per phase) and its one listening socket are the limit,
/// not the target.
pub const MAX_AGENTS: u32 = 1000;

/// Longest `--name`: object names get `-coordinator` appended, and a Job's
/// name ends up, with a pod suffix, in labels of at most 63 characters.
const MAX_NAME: usize = 40;

/// A ConfigMap holds at most 1 MiB in all; leave room for its metadata.
const MAX_CONFIG_BYTES: usize = 1000 * 1024;

/// `leakbench kube` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// The scenario file (TOML). Its target must be reachable from other
    /// pods, e.g. ws://chat.NAMESPACE.svc:8080/ws.
    pub scenario: PathBuf,
    /// Load agent pods (1 to 1000).
    #[arg(long, value_name = "N")]
    pub agents: u32,
    /// The leakbench container image (built from the Dockerfile).
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// Namespace of every object.
    #[arg(long, value_name = "NS", default_value = "default")]
    pub namespace: String,
    /// Prefix of every object's name (a DNS label of at most 40 characters).
    #[arg(long, value_name = "NAME", default_value = "leakbench")]
    pub name: String,
    /// The coordinator's control port.
    #[arg(long, value_name = "PORT", default_value_t = 7070)]
    pub port: u16,
    /// activeDeadlineSeconds of both Jobs: the whole run, the keep window
    /// included, must end within it.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// How long the finished coordinator pod keeps its results for
    /// `kubectl cp` (ended early by touching /results/.fetched).
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    pub keep: Duration,
    /// How long the coordinator waits for all agents to connect (its
    /// `--agent-timeout`): agent pods on fresh nodes pull the image first.
    #[arg(long = "agent-timeout", value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub agent_timeout: Duration,
    /// Write the results to this existing PersistentVolumeClaim instead of
    /// the pod's own emptyDir.
    #[arg(long = "results-claim", value_name = "PVC")]
    pub results_claim: Option<String>,
    /// Put this file's token (trimmed) in the Secret instead of a fresh
    /// random one.
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// A non-loopback host or CIDR the coordinator and the agents may load
    /// (repeatable): every remote host the scenario names needs it.
    #[arg(long = "allow-remote", value_name = "HOST|CIDR")]
    pub allow_remote: Vec<String>,
}

/// Prints the manifests.
pub fn execute(args: &KubeArgs) -> Result<ExitCode> {
    let plan = plan(args)?;
    let yaml = plan.yaml()?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(yaml.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the manifests to stdout")?;
    if args.token_file.is_none() {
        eprintln!(
            "leakbench: a new random token is in Secret {}-token (only there); \
             read it back with kubectl -n {} get secret {}-token -o jsonpath='{{.data.token}}' | base64 -d",
            plan.name, plan.namespace, plan.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks the flags and the scenario and gathers what the manifests need.
pub fn plan(args: &KubeArgs) -> Result<Plan> {
    if !(1..=MAX_AGENTS).contains(&args.agents) {
        bail!(
            "--agents {}: give between 1 and {MAX_AGENTS} agent pods",
            args.agents
        );
    }
    if args.image.trim().is_empty() || args.image.chars().any(char::is_whitespace) {
        bail!(
            "--image `{}` is not an image reference; give the one you pushed, e.g. \
             --image registry.example.com/leakbench:0.1.0",
            args.image
        );
    }
    dns_label("--name", &args.name, MAX_NAME)?;
    dns_label("--namespace", &args.namespace, 63)?;
    if let Some(claim) = &args.results_claim {
        dns_label("--results-claim", claim, 253)?;
    }
    if args.port == 0 {
        bail!("--port 0 is not a port agents can dial; give e.g. --port 7070");
    }
    if args.deadline.as_secs() == 0 {
        bail!("--deadline must be at least 1s, e.g. --deadline 1h");
    }
    if args.agent_timeout.as_secs() == 0 || args.agent_timeout >= args.deadline {
        bail!(
            "--agent-timeout {} must be at least 1s and shorter than --deadline {}",
            humantime::format_duration(args.agent_timeout),
            humantime::format_duration(args.deadline)
        );
    }
    if args.keep >= args.deadline {
        bail!(
            "--keep {} is not shorter than --deadline {}: Kubernetes would kill the \
             coordinator before the run; lengthen --deadline or shorten --keep",
            humantime::format_duration(args.keep),
            humantime::format_duration(args.deadline)
        );
    }
    let token = match &args.token_file {
        // The agents' own check, so that kube never embeds a token they refuse.
        Some(path) => crate::fleet::read_token(path)
            .with_context(|| format!("--token-file {}", path.display()))?,
        None => random_token()?,
    };
    let policy = Policy::from_flags(&args.allow_remote).map_err(anyhow::Error::msg)?;
    let cluster = ClusterScenario::load(&args.scenario, &policy)?;
    Ok(Plan {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        agents: args.agents,
        port: args.port,
        deadline: args.deadline,
        keep: args.keep,
        agent_timeout: args.agent_timeout,
        token,
        scenario: cluster.file_name,
        files: cluster.files,
        env: cluster.env,
        allow_remote: args.allow_remote.clone(),
        results_claim: args.results_claim.clone(),
    })
}

/// Kubernetes names: lowercase letters, digits and `-`, starting and ending
/// with a letter or digit.
fn dns_label(flag: &str, value: &str, max: usize) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if !ok {
        bail!(
            "{flag} `{value}` is not a Kubernetes name: use at most {max} lowercase letters, \
             digits and `-`, starting and ending with a letter or digit"
        );
    }
    Ok(())
}

/// 256 bits from the operating system, as hex: long enough that guessing
/// is hopeless, and safe in a header and a file.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("reading random bytes for the token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A scenario checked for a run inside a cluster, and what travels with it.
#[derive(Debug)]
struct ClusterScenario {
    /// The scenario's file name: the pod's copy keeps it, so the report's
    /// default name is the same.
    file_name: String,
    /// The scenario and its payload files, for the ConfigMap.
    files: Vec<ConfigFile>,
    /// Variables it expands, with their values here.
    env: Vec<(String, String)>,
}

/// The parts of a scenario this command looks at, as written (unknown
/// keys are the validator's business, not this one's).
#[derive(Debug, Deserialize)]
struct Outline {
    target: OutlineTarget,
    #[serde(default)]
    load: OutlineLoad,
}

#[derive(Debug, Deserialize)]
struct OutlineTarget {
    url: Spanned<String>,
    pprof: Option<Spanned<String>>,
    metrics: Option<Spanned<String>>,
    expvar: Option<Spanned<String>>,
    ready: Option<Spanned<String>>,
    command: Option<toml::Value>,
    pid: Option<toml::Value>,
    tls: Option<OutlineTls>,
}

#[derive(Debug, Deserialize)]
struct OutlineTls {
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct OutlineLoad {
    body_file: Option<PathBuf>,
    #[serde(default)]
    steps: Vec<OutlineStep>,
}

#[derive(Debug, Deserialize)]
struct OutlineStep {
    send_file: Option<PathBuf>,
    #[serde(default)]
    steps: Vec<OutlineStep>,
}

impl OutlineStep {
    fn files<'a>(&'a self, out: &mut Vec<&'a Path>) {
        out.extend(self.send_file.as_deref());
        for s in &self.steps {
            s.files(out);
        }
    }
}

impl ClusterScenario {
    fn load(path: &Path, policy: &Policy) -> Result<ClusterScenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .with_context(|| format!("{}: not a scenario file name", path.display()))?;
        // A file that does not even have the outline's shape gets the
        // validator's own error, which names the line and the key.
        let outline: Outline = match toml::from_str(&text) {
            Ok(o) => o,
            Err(_) => {
                Scenario::parse(&text, path)?;
                bail!("{}: not a scenario", path.display());
            }
        };
        if outline.target.command.is_some() {
            bail!(
                "{}: target.command starts the target inside the coordinator's pod, where the \
                 agents cannot reach it; run the target in the cluster, remove target.command \
                 and point target.url at its Service",
                path.display()
            );
        }
        if outline.target.pid.is_some() {
            bail!(
                "{}: target.pid reads /proc of a process on this machine, not in the cluster; \
                 remove it and use target.pprof or target.metrics",
                path.display()
            );
        }

        // Payload files travel in the ConfigMap that is the scenario's
        // folder in the pod: only paths below that folder exist there.
        let mut named: Vec<&Path> = Vec::new();
        named.extend(outline.load.body_file.as_deref());
        for s in &outline.load.steps {
            s.files(&mut named);
        }
        if let Some(tls) = &outline.target.tls {
            named.extend(tls.ca_file.as_deref());
        }
        for rel in &named {
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                bail!(
                    "{}: `{}` is outside the scenario's folder; the pod gets the scenario's \
                     folder only, so name payload files by a path below it (e.g. payloads/x.bin)",
                    path.display(),
                    rel.display()
                );
            }
        }

        // The URLs as the run will see them, host by host.
        let mut urls: Vec<(&str, &Spanned<String>)> = vec![("target.url", &outline.target.url)];
        for (key, value) in [
            ("target.pprof", &outline.target.pprof),
            ("target.metrics", &outline.target.metrics),
            ("target.expvar", &outline.target.expvar),
            ("target.ready", &outline.target.ready),
        ] {
            if let Some(v) = value.as_ref().filter(|v| v.get_ref() != "off") {
                urls.push((key, v));
            }
        }
        refuse_loopback(path, &urls)?;
        // The same check as the coordinator's: every host is allowed by the
        // flags (names are resolved and pinned by the coordinator, in the
        // cluster, before any load).
        Scenario::parse_with(&text, path, policy)?;

        let files = config_files(path, &file_name, &text, &named)?;
        Ok(ClusterScenario {
            file_name,
            files,
            env: variables(&text),
        })
    }
}

/// Refuses loopback hosts: in a cluster each pod has its own loopback, so
/// neither the agents nor the coordinator could reach the target there.
fn refuse_loopback(path: &Path, urls: &[(&str, &Spanned<String>)]) -> Result<()> {
    for (key, value) in urls {
        let written = fill_placeholders(value.get_ref(), "0");
        let Some(host) = url_host(&written) else {
            continue; // the validator names what is wrong with it
        };
        if is_loopback_host(&host) {
            bail!(
                "{}: {key} `{}` is a loopback address; in a cluster each pod has its own \
                 loopback, so the agents and the coordinator cannot reach it. Point {key} at \
                 the target's Service, e.g. ws://chat.NAMESPACE.svc:8080/ws",
                path.display(),
                value.get_ref()
            );
        }
    }
    Ok(())
}

/// The scenario and the payload files it names (checked to lie below its
/// folder), as ConfigMap entries that fit one ConfigMap.
fn config_files(
    path: &Path,
    file_name: &str,
    text: &str,
    named: &[&Path],
) -> Result<Vec<ConfigFile>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files = vec![ConfigFile {
        key: config_key(0, file_name),
        path: file_name.to_owned(),
        bytes: text.as_bytes().to_vec(),
    }];
    let mut seen = BTreeSet::new();
    for rel in named {
        // `./a.bin` and `a.bin` are one file in the pod.
        let below: String = rel
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if !seen.insert(below.clone()) {
            continue;
        }
        let bytes = std::fs::read(dir.join(rel))
            .with_context(|| format!("reading {} (named in {})", rel.display(), path.display()))?;
        files.push(ConfigFile {
            key: config_key(files.len(), &below),
            path: below,
            bytes,
        });
    }
    let total: usize = files.iter().map(|f| f.bytes.len()).sum();
    if total > MAX_CONFIG_BYTES {
        let biggest = files
            .iter()
            .max_by_key(|f| f.bytes.len())
            .map(|f| f.path.as_str())
            .unwrap_or_default();
        bail!(
            "{}: the scenario and its payload files are {total} bytes, more than a ConfigMap \
             holds ({MAX_CONFIG_BYTES}); the largest is {biggest}. Make it smaller: the pod \
             gets the scenario's folder through this one ConfigMap",
            path.display()
        );
    }
    Ok(files)
}

/// The host of a URL as written (IPv6 in brackets), or `None` when it is
/// not a URL with a host (the validator says why).
fn url_host(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    uri.host().map(str::to_owned)
}

/// A ConfigMap key for the `n`th file: its name with anything a key cannot
/// hold replaced, numbered so two files of one name do not collide.
fn config_key(n: usize, name: &str) -> String {
    let base = Path::new(name)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n == 0 {
        clean
    } else {
        format!("f{n}-{clean}")
    }
}

/// The `${NAME}` variables the scenario expands that are set here, with
/// their values: the coordinator pod needs the same environment to
/// validate the scenario the same way.
fn variables(text: &str) -> Vec<(String, String)> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    names.insert(name.to_owned());
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
        .into_iter()
        .filter_map(|n| std::env::var(&n).ok().map(|v| (n, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kubernetes_rules() {
        assert!(dns_label("--name", "leakbench-1", 40).is_ok());
        for bad in ["", "Leak", "-a", "a-", "a_b", &"a".repeat(41)] {
            let e = dns_label("--name", bad, 40).unwrap_err().to_string();
            assert!(e.contains("--name") && e.contains("lowercase"), "{e}");
        }
    }

    #[test]
    fn tokens_are_random_hex() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn variables_are_found_once_and_only_when_set() {
        // PATH is set wherever tests run.
        let found = variables("a = \"${PATH}\"\nb = \"${PATH}${LEAKBENCH_UNSET_X}\"\nc = \"${\"");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "PATH");
    }

    #[test]
    fn every_remote_host_needs_consent_and_loopback_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        let load = |text: &str, flags: &[&str]| {
            std::fs::write(&path, text).unwrap();
            let policy = Policy::from_flags(flags).unwrap();
            ClusterScenario::load(&path, &policy).map_err(|e| format!("{e:#}"))
        };
        let remote = "[target]\nurl = \"ws://chat.perf.svc:8080/ws?room={{session}}\"\n\
                      pprof = \"http://[2001:db8::5]:6060/debug/pprof\"\n[load]\nsessions = 1\n";
        let e = load(remote, &[]).unwrap_err();
        assert!(e.contains("`--allow-remote chat.perf.svc`"), "{e}");
        let e = load(remote, &["chat.perf.svc"]).unwrap_err();
        assert!(e.contains("2001:db8::5"), "{e}");
        load(remote, &["chat.perf.svc", "2001:db8::5"]).unwrap();
        // A block leaves names to the coordinator's resolution.
        load(remote, &["2001:db8::/32"]).unwrap();

        let local = "[target]\nurl = \"ws://localhost:8080/ws\"\n[load]\nsessions = 1\n";
        let e = load(local, &[]).unwrap_err();
        assert!(
            e.contains("target.url") && e.contains("own loopback"),
            "{e}"
        );
    }

    #[test]
    fn config_keys_are_valid_and_distinct() {
        assert_eq!(config_key(0, "chat.toml"), "chat.toml");
        assert_eq!(config_key(2, "payloads/big file.bin"), "f2-big_file.bin");
    }
}
