//! Everything `leakbench run --out DIR` writes, in one place: the baseline
//! and final profiles, their diffs, and the rendered reports. Every text
//! file passes through the scenario's redactor; the target's own log is
//! written (and redacted) by the target module, which owns it.

use std::path::Path;

use anyhow::{Context, Result};

use crate::pprof;
use crate::probe::Snapshot;
use crate::redact::Redactor;
use crate::report::{Render, Report, html::Html, json::Json, junit::Junit, markdown::Markdown};

/// The profiles a run keeps for `--out`: the baseline's and the last
/// measurement's, when pprof is a source.
#[derive(Debug, Default)]
pub struct Profiles {
    /// Taken with the baseline.
    pub base: Option<Snapshot>,
    /// Taken at the end of the run (after the last cycle, or the horizon wait).
    pub last: Option<Snapshot>,
}

/// Writes the profiles into `dir` and lists each in `report.profiles` by
/// role. A diff that cannot be made is said through `note` and skipped.
pub fn write_profiles(
    dir: &Path,
    profiles: &Profiles,
    redactor: &Redactor,
    report: &mut Report,
    note: impl Fn(String),
) -> Result<()> {
    for (when, snapshot) in [("base", &profiles.base), ("final", &profiles.last)] {
        let Some(p) = snapshot else {
            continue;
        };
        let mut files: Vec<(String, String, &[u8])> = vec![
            (
                format!("heap_{when}"),
                format!("heap-{when}.pb.gz"),
                &p.heap_profile,
            ),
            (
                format!("goroutine_{when}"),
                format!("goroutine-{when}.pb.gz"),
                &p.goroutine_profile,
            ),
            (
                format!("goroutine_{when}_dump"),
                format!("goroutine-{when}.txt"),
                p.goroutine_dump.as_bytes(),
            ),
        ];
        if let Some(leaks) = &p.goroutine_leaks {
            files.push((
                format!("goroutineleak_{when}"),
                format!("goroutineleak-{when}.pb.gz"),
                &leaks.raw,
            ));
        }
        for (role, name, bytes) in files {
            // The dump is text, and may quote a secret the target was sent.
            let bytes = if name.ends_with(".txt") {
                redactor.redact_bytes(bytes)
            } else {
                bytes.into()
            };
            write(dir, &name, &bytes)?;
            report.profiles.insert(role, name);
        }
    }
    // Final minus baseline as profiles of their own, so that
    // `go tool pprof -top diff-heap.pb.gz` shows what grew.
    if let (Some(b), Some(l)) = (&profiles.base, &profiles.last) {
        let diffs = [
            (
                "heap_diff",
                "diff-heap.pb.gz",
                &b.heap_profile,
                &l.heap_profile,
            ),
            (
                "goroutine_diff",
                "diff-goroutine.pb.gz",
                &b.goroutine_profile,
                &l.goroutine_profile,
            ),
        ];
        for (role, name, base, last) in diffs {
            match pprof::diff_profile(base, last) {
                Ok(bytes) => {
                    write(dir, name, &bytes)?;
                    report.profiles.insert(role.to_owned(), name.to_owned());
                }
                Err(e) => note(format!("no {name}: {e}")),
            }
        }
    }
    Ok(())
}

/// Writes report.json, junit.xml, summary.md and report.html into `dir`.
pub fn write_reports(dir: &Path, report: &Report, redactor: &Redactor) -> Result<()> {
    let formats: [&dyn Render; 4] = [&Json, &Junit, &Markdown, &Html];
    for format in formats {
        write(
            dir,
            format.file_name(),
            redactor.redact(&format.render(report)).as_bytes(),
        )?;
    }
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}
