//! The control channel's messages: JSON objects tagged by `type`, one per
//! websocket text frame. The coordinator ships the *validated* target and
//! load, so an agent never reads a scenario file or expands an environment
//! variable of its own.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::share::Share;
use crate::load::{CycleLoad, Latencies};
use crate::scenario::{Load, Target, Tls, Transport};

/// The websocket path agents connect to; the version is in the path so a
/// later protocol can live beside this one.
pub const PATH: &str = "/leakbench/v1/agent";

/// What an agent sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromAgent {
    /// First message after the upgrade.
    Hello {
        /// leakbench version; must equal the coordinator's.
        version: String,
        /// A name for messages: the host name, or the pod's.
        name: String,
        /// The agent index it asks for (`--index` or `JOB_COMPLETION_INDEX`).
        index: Option<u32>,
        /// Its `--source` addresses.
        sources: Vec<IpAddr>,
    },
    /// The job is acceptable and the agent's share of the concurrency fits.
    Ready {
        /// The agent's open-file limit (after raising it to the hard limit).
        open_files: u64,
        /// Sessions that fit at once on the agent.
        fits: u64,
    },
    /// The agent will not run this job (target outside its allow list, or
    /// its share does not fit); it exits after saying so.
    Refused {
        /// Why, for the coordinator's error.
        reason: String,
    },
    /// Cycle `cycle` is armed: target resolved, share preflighted.
    Armed {
        /// The cycle number from `arm`.
        cycle: u32,
    },
    /// Live session counts of the running share, about every 200 ms.
    Progress {
        /// Sessions started so far.
        started: u64,
        /// Sessions completed.
        completed: u64,
        /// Sessions failed.
        failed: u64,
    },
    /// Every session of the share has started (they hold or are closing).
    Holding {
        /// The cycle number.
        cycle: u32,
    },
    /// The share is done: every session closed.
    Closed {
        /// The cycle number.
        cycle: u32,
        /// What the share did (boxed: it dwarfs the other messages).
        report: Box<ShareReport>,
    },
    /// Every session was dropped after an `abort`.
    Aborted,
    /// Something went wrong that is not a session failure (e.g. arming).
    Error {
        /// What, for the coordinator's reason.
        message: String,
    },
}

/// What the coordinator sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromCoordinator {
    /// The agent is in: its index and the job.
    Welcome {
        /// The agent's index, 0-based.
        index: u32,
        /// Agents in the fleet.
        agents: u32,
        /// The validated target and load.
        job: Box<Job>,
        /// The agent's share of `load.concurrency`: the most sessions it
        /// will hold at once during the run, for its preflight.
        concurrency: u32,
    },
    /// The agent cannot join (duplicate index, fleet full, wrong version).
    Rejected {
        /// Why, for the agent's error.
        reason: String,
    },
    /// Resolve the target and preflight this share.
    Arm {
        /// The run's cycle number (1-based, counting every cycle).
        cycle: u32,
        /// The agent's share of the cycle.
        share: Share,
    },
    /// Start the armed share.
    Go {
        /// The cycle number.
        cycle: u32,
    },
    /// Start no more sessions (the time budget ended mid-cycle).
    Stop,
    /// Drop every session now and answer `aborted`.
    Abort {
        /// Why, for the agent's log.
        reason: String,
    },
    /// The run is over; close and exit 0.
    Bye,
}

/// What an agent runs: the parts of the scenario its sessions need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Scenario name, for the agent's log.
    pub name: String,
    /// The target's session URL and TLS settings.
    pub target: JobTarget,
    /// The validated load (sessions and concurrency are replaced per cycle
    /// by the share).
    pub load: Load,
}

/// The session side of [`Target`]: what the load engine reads. Probes,
/// the target's command and its environment stay with the coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobTarget {
    /// The URL sessions connect to.
    pub url: String,
    /// The URL as written when it holds placeholders.
    pub url_template: Option<String>,
    /// Websocket or HTTP.
    pub transport: Transport,
    /// TLS settings; a `ca_file` must exist at the same path on the agent.
    pub tls: Tls,
}

impl JobTarget {
    /// The session side of `target`.
    pub fn of(target: &Target) -> JobTarget {
        JobTarget {
            url: target.url.to_string(),
            url_template: target.url_template.clone(),
            transport: target.transport,
            tls: target.tls.clone(),
        }
    }

    /// A [`Target`] the load engine can run, with no probes.
    pub fn to_target(&self) -> Result<Target, String> {
        let url = self
            .url
            .parse()
            .map_err(|e| format!("the coordinator sent a bad target URL {}: {e}", self.url))?;
        Ok(Target {
            url,
            transport: self.transport,
            pprof: None,
            metrics: None,
            expvar: None,
            pid: None,
            ready: None,
            command: None,
            env: BTreeMap::new(),
            cwd: PathBuf::from("."),
            ready_timeout: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(1),
            url_template: self.url_template.clone(),
            tls: self.tls.clone(),
            // The agent's own consent and pins, set by its caller.
            remote: crate::remote::Policy::loopback_only(),
            pins: crate::remote::Pins::default(),
        })
    }
}

/// One agent's report of its share of a cycle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareReport {
    /// Counts, failure causes with examples, percentiles of the share.
    pub load: CycleLoad,
    /// Connect, handshake, round-trip and request histograms, each in
    /// HdrHistogram's V2 serialization (deflated), base64.
    pub histograms: Vec<String>,
}

impl ShareReport {
    /// The report of a finished share.
    pub fn new(load: CycleLoad, latencies: &Latencies) -> Result<ShareReport, String> {
        Ok(ShareReport {
            load,
            histograms: latencies.encode()?.to_vec(),
        })
    }

    /// The share's load and its decoded histograms.
    pub fn into_parts(self) -> Result<(CycleLoad, Latencies), String> {
        let latencies = Latencies::decode(&self.histograms)?;
        Ok((self.load, latencies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use std::path::Path;

    #[test]
    fn a_job_survives_the_wire() {
        let text = r#"
[target]
url = "ws://127.0.0.1:9/ws?u={{session}}"
[load]
sessions = 10
headers = { Authorization = "Bearer abcdef", X-Team = "t{{session}}" }
steps = [{ send = "hi {{session}}" }, { expect = "hi", timeout = "2s" }, { pause = "10ms" }]
rate = 50
ramp = "1s"
"#;
        let s = Scenario::parse(text, Path::new("/tmp/x.toml")).unwrap();
        let job = Job {
            name: s.name.clone(),
            target: JobTarget::of(&s.target),
            load: s.load.clone(),
        };
        let msg = FromCoordinator::Welcome {
            index: 1,
            agents: 2,
            job: Box::new(job),
            concurrency: 5,
        };
        let json = serde_json::to_string(&msg).unwrap();
        assert!(json.starts_with(r#"{"type":"welcome""#), "{json}");
        let FromCoordinator::Welcome { job, .. } = serde_json::from_str(&json).unwrap() else {
            panic!("not a welcome: {json}");
        };
        assert_eq!(job.load.steps, s.load.steps);
        assert_eq!(job.load.headers, s.load.headers);
        assert_eq!(job.load.rate, s.load.rate);
        assert_eq!(job.load.sessions, 10);
        let target = job.target.to_target().unwrap();
        assert_eq!(target.url, s.target.url);
        assert_eq!(target.url_template, s.target.url_template);
    }

    #[test]
    fn an_unknown_message_is_an_error() {
        assert!(serde_json::from_str::<FromAgent>(r#"{"type":"nope"}"#).is_err());
        let m: FromAgent = serde_json::from_str(r#"{"type":"aborted"}"#).unwrap();
        assert!(matches!(m, FromAgent::Aborted));
    }
}
