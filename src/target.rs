//! Target lifecycle: start the service under test, notice if it dies, stop it.
//!
//! The child runs in its own process group with its output in a log file.
//! It is stopped with SIGTERM, then SIGKILL after a grace period, on every
//! exit path; if leakbench itself is killed, the kernel sends the child
//! SIGTERM (PR_SET_PDEATHSIG), so no target outlives a run.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::{Child, Command};

use crate::scenario::Target;

/// How long a target gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Heap profile sampling rate given to targets leakbench starts (unless the
/// scenario's env sets GODEBUG memprofilerate): one sample per 4 KiB instead
/// of Go's 512 KiB makes the heap suspects point at small per-session leaks.
/// The verdict never depends on it; it reads exact counters.
pub const LAUNCH_MEMPROFILERATE: u32 = 4096;

/// A target process leakbench started.
pub struct Launched {
    child: Child,
    log: PathBuf,
    /// The process id.
    pub pid: u32,
    exited: Option<ExitStatus>,
}

impl Launched {
    /// Starts `target.command`, output to `log_dir/target.log`.
    pub fn start(target: &Target, log_dir: &Path) -> Result<Launched> {
        let argv = target
            .command
            .as_ref()
            .context("target has no command to start")?;
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let log = log_dir.join("target.log");
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(&target.cwd)
            .envs(&target.env)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .process_group(0);
        let godebug = target
            .env
            .get("GODEBUG")
            .cloned()
            .or_else(|| std::env::var("GODEBUG").ok())
            .unwrap_or_default();
        if !godebug.contains("memprofilerate") {
            let rate = format!("memprofilerate={LAUNCH_MEMPROFILERATE}");
            let value = if godebug.is_empty() {
                rate
            } else {
                format!("{godebug},{rate}")
            };
            cmd.env("GODEBUG", value);
        }
        // SAFETY: prctl is async-signal-safe and touches only this process.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting target `{}`", argv.join(" ")))?;
        let pid = child.id().unwrap_or(0);
        Ok(Launched {
            child,
            log,
            pid,
            exited: None,
        })
    }

    /// The log file of the target's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The exit status, if the target has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Waits up to `within` for the target to exit; its status if it did. A
    /// killed process closes its sockets before its exit can be seen, so a
    /// failed read right after a crash needs this moment to name the cause.
    pub async fn exited_within(&mut self, within: Duration) -> Option<ExitStatus> {
        if self.exited().is_none() {
            if let Ok(Ok(status)) = tokio::time::timeout(within, self.child.wait()).await {
                self.exited = Some(status);
            }
        }
        self.exited
    }

    /// Stops the target: SIGTERM to its process group, SIGKILL after the grace period.
    pub async fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let group = self.pid as i32;
        // SAFETY: signalling our own child's process group.
        unsafe {
            libc::kill(-group, libc::SIGTERM);
        }
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => self.exited = Some(status),
            _ => {
                // SAFETY: as above.
                unsafe {
                    libc::kill(-group, libc::SIGKILL);
                }
                self.exited = self.child.wait().await.ok();
            }
        }
    }

    /// The last `lines` lines of the target's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines).unwrap_or_default()
    }
}

/// The last `lines` lines of a file, reading at most its last 64 KiB.
fn tail(path: &Path, lines: usize) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    Ok(all[all.len().saturating_sub(lines)..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("leakbench-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("log");
        std::fs::write(&f, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail(&f, 2).unwrap(), "c\nd");
        assert_eq!(tail(&f, 10).unwrap(), "a\nb\nc\nd");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
