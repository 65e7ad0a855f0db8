//! Before anything is measured: wait for the target's readiness check,
//! then for every source to answer, and take the first reading.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::Session;
use crate::probe::{Probe, ProbeError};
use crate::scenario::{Pins, Ready};
use crate::signal::name;
use crate::sources::{Reading, SourceError};

/// First pause between readiness attempts: a started Go target usually
/// listens within tens of milliseconds.
const FIRST_PAUSE: Duration = Duration::from_millis(20);
/// Longest pause between readiness attempts.
const MAX_PAUSE: Duration = Duration::from_millis(250);

impl Session<'_> {
    /// Waits until the target is ready (its `ready` check, then every
    /// source answering) and returns the first reading.
    pub(super) async fn wait_ready(&mut self) -> Result<Reading> {
        let s = self.scenario;
        let deadline = Instant::now() + s.target.ready_timeout;
        let mut pause = FIRST_PAUSE;
        let mut ready_checked = s.target.ready.is_none();
        loop {
            let attempt = if ready_checked {
                self.sources.sample().await.map_err(anyhow::Error::new)
            } else {
                check_ready(
                    s.target.ready.as_ref().expect("checked above"),
                    &s.target.pins,
                )
                .await
                .map(|()| Reading::new())
            };
            match attempt {
                Ok(mut first) if ready_checked => {
                    let leaks = self.sources.add_leaked_goroutines(&mut first).await;
                    self.source_result(leaks).await?;
                    self.progress.line(format!(
                        "target answers: {}{}",
                        self.sources.describe(),
                        first
                            .get(name::GOROUTINES)
                            .map(|g| format!(" ({g} goroutines)"))
                            .unwrap_or_default()
                    ));
                    return Ok(first);
                }
                Ok(_) => {
                    ready_checked = true;
                    continue;
                }
                Err(e) => {
                    self.check_alive()?;
                    let unreachable = e
                        .downcast_ref::<SourceError>()
                        .is_none_or(SourceError::is_unreachable);
                    // A started target, or one with a readiness check, may
                    // need a moment; anything else should already answer.
                    let waits = self.launched.is_some() || s.target.ready.is_some();
                    let retryable = unreachable && waits;
                    if !retryable || Instant::now() >= deadline {
                        let hint = if !waits && unreachable {
                            " (is the target running? set target.command to have leakbench start it)"
                        } else if unreachable {
                            " (the target did not answer within target.ready_timeout)"
                        } else {
                            ""
                        };
                        bail!("{e:#}{hint}");
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}

/// Waits once for the scenario's readiness check, at the addresses pinned
/// for its host.
async fn check_ready(ready: &Ready, pins: &Pins) -> Result<()> {
    match ready {
        Ready::Tcp(host, port) => {
            let connected = match pins.socket_addrs(host, *port) {
                Some(addrs) => tokio::net::TcpStream::connect(&addrs[..]).await,
                None => tokio::net::TcpStream::connect((host.as_str(), *port)).await,
            };
            connected.map(drop).map_err(|e| {
                SourceError::Probe(ProbeError::Connect {
                    url: format!("tcp://{host}:{port}"),
                    reason: e.to_string(),
                })
            })?;
            Ok(())
        }
        Ready::Http(uri) => {
            let mut probe = Probe::new(uri);
            if let Some(ips) = uri.host().and_then(|h| pins.get(h)) {
                probe = probe.pinned(ips.to_vec());
            }
            probe.get("").await.map(drop).map_err(SourceError::from)?;
            Ok(())
        }
    }
}
