//! `leakbench completions SHELL` and `leakbench man`: shell completion
//! scripts and man pages, generated from the same clap definitions that
//! parse the command line, so they can never list a flag that is not there.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Command;
use clap_complete::Shell;

/// Writes the completion script for `shell` to stdout.
pub fn completions(mut cmd: Command, shell: Shell) -> Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "leakbench", &mut out);
    write_stdout(&out)
}

/// Writes leakbench's man page to stdout, or, given `out`, one page per
/// command and subcommand (leakbench.1, leakbench-run.1, ...) into it.
pub fn man(cmd: Command, out: Option<&Path>) -> Result<()> {
    let Some(dir) = out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .context("rendering the man page")?;
        return write_stdout(&page);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    Ok(())
}

/// Stdout closed early (`leakbench man | head`) is not an error worth a
/// message; anything else is.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}
