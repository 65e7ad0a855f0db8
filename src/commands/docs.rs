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
    // As clap_mangen's own generate_to does: built, so that subcommands
    // know their full names (leakbench-run), and without the help command.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = out else {
        return write_stdout(&page(&cmd)?);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let subcommands = cmd.get_subcommands().filter(|s| !s.is_hide_set());
    for c in std::iter::once(&cmd).chain(subcommands) {
        let name = clap_mangen::Man::new(c.clone()).get_filename();
        let path = dir.join(&name);
        std::fs::write(&path, page(c)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One man page: clap_mangen's sections, with EXIT STATUS before VERSION,
/// since the exit codes are most of what a CI gate needs to know.
fn page(cmd: &Command) -> Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut page)?;
    }
    let mut exit = roff::Roff::new();
    exit.control("SH", ["EXIT STATUS"]);
    for (i, line) in exit_status(cmd.get_name()).iter().enumerate() {
        if i > 0 {
            exit.control("br", [] as [&str; 0]);
        }
        exit.text([roff::roman(*line)]);
    }
    exit.to_writer(&mut page)?;
    // clap_mangen's version section unwraps the version, which only the
    // top command carries.
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    Ok(page)
}

/// The exit codes of the command named `name` (a subcommand's display name
/// is leakbench-NAME, its name NAME).
fn exit_status(name: &str) -> &'static [&'static str] {
    match name {
        "leakbench" | "run" => &[
            "0: pass, no deciding signal kept growing with the sessions.",
            "1: leak.",
            "2: error: bad input, an unreachable or dead target, an unreadable profile.",
            "3: inconclusive: the evidence supports neither a pass nor a leak.",
            "130: interrupted (SIGINT or SIGTERM); the partial report is still written.",
            "With run --bisect, as git bisect run reads them: 0 pass, 1 leak, 125 \
             (skip this commit) for inconclusive or an error, 130 interrupted.",
        ],
        "compare" => &[
            "0: AFTER is no worse than BEFORE.",
            "1: AFTER is worse: a new leak, a faster one, or a bigger bound, past --tolerance.",
            "2: a report is unreadable, partial or newer, or the two are of different \
             scenarios or deciding signals.",
        ],
        _ => &[
            "0: success.",
            "2: error (the message says what and how to fix it).",
        ],
    }
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
