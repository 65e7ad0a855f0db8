//! `leakbench init [ws|http]`: a commented starter scenario that
//! `leakbench validate` accepts as written, every optional key shown with
//! its default so the file documents itself.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Which kind of service the starter scenario drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Websocket sessions with send/expect steps.
    Ws,
    /// HTTP sessions: requests on one connection each.
    Http,
}

const HEAD: &str = r#"# leakbench scenario: `leakbench validate FILE` checks it, `leakbench run FILE` runs it.
# Exit codes of a run: 0 pass, 1 leak, 2 error, 3 inconclusive.
name = "my service"

[target]
# Where sessions go (loopback only: 127.0.0.0/8, ::1, localhost).
"#;

const TARGET_REST: &str = r#"# net/http/pprof of the service (import _ "net/http/pprof").
# Default: http://<host:port of url>/debug/pprof
# pprof = "http://127.0.0.1:6060/debug/pprof"
# Have leakbench start and stop the service (relative paths resolve against
# this file's folder); leave it out when the service is already running.
# command = ["./server", "-addr", "127.0.0.1:8080"]
# env = { GOGC = "100" }
# ready_timeout = "15s"

[load]
sessions = 100          # sessions opened per cycle
# concurrency = 100     # most sessions open at once (default: sessions)
# warmup = 1            # unmeasured cycles before the baseline
# cycles = 3            # measured cycles (at least 2)
# hold = "0s"           # how long each session stays open after its steps
# close = "graceful"    # or "abrupt" (TCP reset, no close frame)
# step_timeout = "10s"  # bound on each connect, step, request and close
# max_failure_ratio = 0.01
# headers = { Authorization = "Bearer ${MY_TOKEN}" }  # ${VAR} from the environment
"#;

const WS_LOAD: &str = r#"
# Websocket steps, in order: send a message, or wait for one containing a text.
[[load.steps]]
send = "hello"

[[load.steps]]
expect = "hello"
"#;

const HTTP_LOAD: &str = r#"# requests = 1          # requests per session on its one connection
# method = "GET"
"#;

const TAIL: &str = r#"
[settle]
# timeout = "30s"       # longest wait per cycle for the service to come back

[thresholds]            # growth per cycle below which a change is noise
# goroutines = 2
# heap_bytes = 65536
# heap_objects = 256
# heap_bytes_per_session = 256
# heap_objects_per_session = 0.25
"#;

/// The starter scenario text for `kind`.
pub fn template(kind: Kind) -> String {
    let (url, load) = match kind {
        Kind::Ws => ("url = \"ws://127.0.0.1:8080/ws\"\n", WS_LOAD),
        Kind::Http => ("url = \"http://127.0.0.1:8080/\"\n", HTTP_LOAD),
    };
    format!("{HEAD}{url}{TARGET_REST}{load}{TAIL}")
}

/// Writes the template to `out`, or to stdout when `None`; never overwrites
/// a file unless `force`.
pub fn execute(kind: Kind, out: Option<&Path>, force: bool) -> Result<()> {
    let text = template(kind);
    match out {
        None => {
            std::io::stdout()
                .write_all(text.as_bytes())
                .context("writing to stdout")?;
        }
        Some(path) => {
            if path.exists() && !force {
                bail!("{} exists; pass --force to overwrite it", path.display());
            }
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {0}; edit target.url, then: leakbench validate {0}",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Scenario, Transport};

    #[test]
    fn both_templates_validate_as_written() {
        for (kind, transport) in [
            (Kind::Ws, Transport::WebSocket),
            (Kind::Http, Transport::Http),
        ] {
            let text = template(kind);
            let s = Scenario::parse(&text, Path::new("starter.toml"))
                .unwrap_or_else(|e| panic!("{kind:?} template invalid: {e}\n{text}"));
            assert_eq!(s.target.transport, transport);
            assert_eq!(s.load.sessions, 100);
            assert!(s.target.command.is_none());
        }
    }
}
