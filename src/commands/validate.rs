//! `leakbench validate SCENARIO`: check a scenario and print what would run,
//! without connecting to anything.

use std::path::Path;

use anyhow::Result;

use crate::redact::Redactor;
use crate::remote::Policy;
use crate::scenario::Scenario;

/// Validates the scenario at `path`, with the remote hosts `allow_remote`
/// allows, and prints its plan.
pub fn execute(path: &Path, allow_remote: &[String]) -> Result<()> {
    let policy = Policy::from_flags(allow_remote)?;
    let s = Scenario::load_with(path, &policy)?;
    let redactor = Redactor::from_scenario(&s);
    println!("{}: valid", path.display());
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
    Ok(())
}
