//! Load agents on hosts of their own: each agent, the coordinator and the
//! target run in network namespaces of their own (tests/netns), so the
//! control channel and the load cross veth links as between machines.
//!
//! - three agents drive 15,000 sessions at once (5,000 each) against the
//!   leaky and the fixed chat hub, and the verdicts and top suspects equal
//!   a single leakbench process's on the same target;
//! - the coordinator's merged latency histograms equal the sum of the
//!   agents' own;
//! - an agent killed with SIGKILL while holding, or cut off by taking its
//!   link down, ends the run inconclusive (exit 3), never pass or leak, and
//!   the target returns to its baseline afterwards.
//!
//! Needs root for `ip netns`; prints why and skips otherwise.

mod common;
mod netns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{
    EXIT_ERROR, EXIT_INCONCLUSIVE, EXIT_LEAK, EXIT_PASS, Live, Outcome, go_targets, leakbench,
};
use netns::{Host, Net};
use serde_json::Value;

/// The chat hub's port inside its namespace.
const HUB_PORT: u16 = 8080;
/// The coordinator's control port inside its namespace.
const CONTROL_PORT: u16 = 7070;
/// Agents in every fleet here.
const AGENTS: usize = 3;
/// The longest any process of a test may take to start listening.
const START_WITHIN: Duration = Duration::from_secs(20);

/// Four hosts on one bridge: the coordinator, the target, three agents.
struct Fleet {
    net: Net,
    coordinator: Host,
    target: Host,
    agents: Vec<Host>,
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Fleet {
    fn new(tag: &str) -> Option<Fleet> {
        let mut net = Net::new(tag)?;
        let coordinator = net.host("coord", 2);
        let target = net.host("target", 10);
        let agents = (0..AGENTS)
            .map(|i| net.host(&format!("agent{i}"), 20 + i as u8))
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "fleet-test-token-5b1c\n").expect("token");
        Some(Fleet {
            net,
            coordinator,
            target,
            agents,
            dir,
            children: Vec::new(),
        })
    }

    fn token(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    fn hub_url(&self) -> String {
        format!("{}:{HUB_PORT}", self.target.addr)
    }

    /// Starts the chat hub (leaky, or fixed) in the target's namespace.
    fn start_hub(&mut self, fixed: bool) {
        let mut cmd = self.target.command(go_targets().join("chathub"));
        cmd.args(["-addr", &self.hub_url()]);
        if fixed {
            cmd.arg("-fixed");
        }
        let log = std::fs::File::create(self.dir.path().join("hub.log")).expect("hub log");
        let child = cmd
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the hub in its namespace");
        self.children.push(child);
        assert!(
            self.target.wait_tcp(HUB_PORT, START_WITHIN),
            "the hub did not listen"
        );
    }

    /// Writes `body` (a scenario's [load] and later tables) under a
    /// [target] for the hub, and returns its path.
    fn scenario(&self, name: &str, body: &str) -> PathBuf {
        let hub = self.hub_url();
        let text = format!(
            "name = \"{name}\"\n[target]\nurl = \"ws://{hub}/ws\"\npprof = \"http://{hub}/debug/pprof\"\n{body}"
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("scenario");
        path
    }

    /// `leakbench run SCENARIO` as the fleet's coordinator.
    fn coordinator_command(&self, scenario: &Path, out: &Path) -> Command {
        let mut cmd = self.coordinator.command(leakbench());
        cmd.arg("run")
            .arg(scenario)
            .arg("--out")
            .arg(out)
            .args(["--allow-remote", &self.target.addr.to_string()])
            .args(["--agents", &AGENTS.to_string()])
            .args([
                "--listen",
                &format!("{}:{CONTROL_PORT}", self.coordinator.addr),
            ])
            .arg("--token-file")
            .arg(self.token());
        cmd
    }

    /// `leakbench agent` number `i`, in its own namespace, writing its
    /// share reports to agentI/; started once the coordinator listens.
    fn start_agent(&self, i: usize) -> Live {
        let host = &self.agents[i];
        let out = self.dir.path().join(format!("agent{i}"));
        let mut cmd = host.command(leakbench());
        cmd.arg("agent")
            .args([
                "--coordinator",
                &format!("ws://{}:{CONTROL_PORT}", self.coordinator.addr),
            ])
            .arg("--token-file")
            .arg(self.token())
            .args(["--allow-remote", &self.target.addr.to_string()])
            .args(["--index", &i.to_string()])
            .arg("--out")
            .arg(&out);
        Live::spawn(cmd, &out)
    }

    /// The coordinator, once it listens for agents, and the agents.
    fn start_fleet(&self, scenario: &Path) -> (Live, Vec<Live>) {
        let out = self.dir.path().join("out");
        let mut coordinator = Live::spawn(self.coordinator_command(scenario, &out), &out);
        coordinator.expect("waiting up to");
        assert!(
            self.coordinator.wait_tcp(CONTROL_PORT, START_WITHIN),
            "the coordinator did not listen"
        );
        let agents = (0..AGENTS).map(|i| self.start_agent(i)).collect();
        (coordinator, agents)
    }

    /// Agent `i`'s report of its share of cycle `cycle` (counting warm-ups).
    fn share(&self, i: usize, cycle: usize) -> Value {
        let path = self.dir.path().join(format!("agent{i}/cycle-{cycle}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).expect("share report parses")
    }

    /// The hub's goroutine count, read from the coordinator's host.
    fn hub_goroutines(&self) -> u64 {
        let url = format!("http://{}/debug/pprof/goroutine?debug=1", self.hub_url());
        let out = self
            .coordinator
            .command("python3")
            .args([
                "-c",
                "import sys,urllib.request\n\
                 print(urllib.request.urlopen(sys.argv[1], timeout=5).readline().decode())",
                &url,
            ])
            .output()
            .expect("python3 in the coordinator's namespace");
        let line = String::from_utf8_lossy(&out.stdout);
        line.trim()
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no goroutine total in {line:?} from {url}"))
    }

    /// Waits (polling every 200 ms, at most `within`) for the hub to hold
    /// no more goroutines than `idle` plus a few; the last count seen.
    fn hub_back_to(&self, idle: u64, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let now = self.hub_goroutines();
            if now <= idle + 3 || Instant::now() >= deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The scale test's scenario (tests/scale.rs): 15,000 websocket sessions
/// open at once, held 3 s, closed with a close handshake. Default verdict
/// settings.
const FIFTEEN_THOUSAND: &str = "[load]\nsessions = 15000\nconcurrency = 15000\nwarmup = 1\n\
    cycles = 2\nhold = \"3s\"\nstep_timeout = \"30s\"\nclose = \"graceful\"\n\
    [settle]\ntimeout = \"20s\"\n";

/// Every measured cycle ran all of its sessions, and its merged counts and
/// slowest connect are the agents' own, added.
fn assert_merged_from_the_agents(fleet: &Fleet, run: &Outcome) {
    let phases = run.report()["phases"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(phases.len() >= 3, "{}", run.context());
    for (k, phase) in phases.iter().enumerate() {
        let parts: Vec<Value> = (0..AGENTS).map(|i| fleet.share(i, k + 1)).collect();
        for metric in ["connect", "handshake"] {
            let sum: u64 = parts
                .iter()
                .map(|p| p["load"][metric]["count"].as_u64().unwrap_or(0))
                .sum();
            assert_eq!(
                phase["load"][metric]["count"].as_u64(),
                Some(sum),
                "phase {k}: {metric} count is not the agents' sum"
            );
        }
        let max = parts
            .iter()
            .map(|p| p["load"]["connect"]["max_us"].as_u64().unwrap_or(0))
            .max();
        assert_eq!(
            phase["load"]["connect"]["max_us"].as_u64(),
            max,
            "phase {k}"
        );
        if phase["kind"] == "cycle" {
            assert_eq!(
                phase["load"]["completed"],
                phase["sessions"],
                "phase {k}: not every session ran\n{}",
                run.context()
            );
        }
    }
}

/// Runs the 15,000-session scenario on the hub through three agents, then
/// from one leakbench process on the coordinator's host against a fresh
/// hub; returns both outcomes, the fleet's first.
fn fleet_and_single(tag: &str, fixed: bool) -> Option<(Outcome, Outcome)> {
    let _alone = common::serial();
    go_targets();
    let mut fleet = Fleet::new(tag)?;
    let name = if fixed { "fixed" } else { "leaky" };
    let scenario = fleet.scenario(&format!("chathub-{name}-15k"), FIFTEEN_THOUSAND);

    fleet.start_hub(fixed);
    let (coordinator, agents) = fleet.start_fleet(&scenario);
    let run = coordinator.finish();
    for (i, agent) in agents.into_iter().enumerate() {
        let ended = agent.finish();
        assert_eq!(ended.code, Some(0), "agent {i}:\n{}", ended.stderr);
    }
    assert_merged_from_the_agents(&fleet, &run);
    eprintln!("fleet of {AGENTS}: {}", summary(&run));

    // A fresh hub: the leaky one still holds what the fleet's run left.
    for mut child in fleet.children.drain(..) {
        let _ = child.kill();
        let _ = child.wait();
    }
    fleet.start_hub(fixed);
    let out = fleet.dir.path().join("single");
    let mut cmd = fleet.coordinator.command(leakbench());
    cmd.arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .args(["--allow-remote", &fleet.target.addr.to_string()]);
    let single = common::run_command(cmd, &out);
    eprintln!("one process: {}", summary(&single));
    Some((run, single))
}

fn summary(run: &Outcome) -> String {
    let r = run.report();
    format!(
        "exit {:?}, {} over {} sessions in {:.1} s",
        run.code,
        r["verdict"],
        r["course"]["sessions"],
        r["duration_s"].as_f64().unwrap_or(0.0)
    )
}

/// The functions named by the first suspects' frames.
fn top_frames(run: &Outcome) -> Vec<String> {
    run.report()["suspects"]
        .as_array()
        .into_iter()
        .flatten()
        .take(common::TOP_SUSPECTS)
        .flat_map(|s| s["frames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| {
            f.as_str()
                .map(|f| f.split(' ').next().unwrap_or(f).to_owned())
        })
        .collect()
}

#[test]
fn three_agents_on_their_own_hosts_find_the_leak_one_process_finds() {
    let Some((fleet, single)) = fleet_and_single("f15l", false) else {
        return;
    };
    fleet.assert_verdict(EXIT_LEAK, "leak");
    single.assert_verdict(EXIT_LEAK, "leak");
    fleet.assert_suspect("main.(*client).writePump");
    single.assert_suspect("main.(*client).writePump");
    assert_eq!(
        fleet.report()["suspects"][0]["frames"][0],
        single.report()["suspects"][0]["frames"][0],
        "top suspects differ: fleet {:?}, one process {:?}",
        top_frames(&fleet),
        top_frames(&single)
    );
}

#[test]
fn three_agents_on_their_own_hosts_pass_the_fixed_hub_as_one_process_does() {
    let Some((fleet, single)) = fleet_and_single("f15p", true) else {
        return;
    };
    fleet.assert_verdict(EXIT_PASS, "pass");
    single.assert_verdict(EXIT_PASS, "pass");
}

/// Sessions held long enough to lose an agent while they are open.
const HOLDING: &str = "[load]\nsessions = 300\nwarmup = 1\ncycles = 2\nhold = \"20s\"\n\
    [[load.steps]]\nsend = \"hello\"\n[[load.steps]]\nexpect = \"hello\"\n\
    [settle]\ntimeout = \"10s\"\n";

/// Starts a fleet on the fixed hub, waits until agent 1 holds its share of
/// the first measured cycle, does `fault` to it, and checks the run ends
/// inconclusive within `within` of the fault, with `why` in its first reason,
/// and that the hub comes back to its idle goroutines afterwards.
fn lose_agent_while_holding(tag: &str, why: &str, fault: impl FnOnce(&Fleet, &Live)) {
    let _alone = common::serial();
    go_targets();
    let Some(mut fleet) = Fleet::new(tag) else {
        return;
    };
    let scenario = fleet.scenario("holding", HOLDING);
    fleet.start_hub(true);
    let idle = fleet.hub_goroutines();
    let (coordinator, mut agents) = fleet.start_fleet(&scenario);
    // Cycle 1 is the warm-up; cycle 2 the first measured one.
    agents[1].expect("cycle 2: 100 session(s) started, holding");
    let at = Instant::now();
    fault(&fleet, &agents[1]);
    let run = coordinator.finish();
    let took = at.elapsed();
    run.assert_verdict(EXIT_INCONCLUSIVE, "inconclusive");
    let first = run.report()["reasons"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        first.contains("agent 1") && first.contains(why) && first.contains("holding"),
        "{first}\n{}",
        run.context()
    );
    // The heartbeat's 5 s, the abort, one settle (at most 5 s) and goodbye.
    assert!(
        took < Duration::from_secs(30),
        "took {took:?}\n{}",
        run.context()
    );
    fleet.net.restore(&fleet.agents[1]);
    for (i, agent) in agents.into_iter().enumerate() {
        let ended = agent.finish();
        if i == 1 {
            assert_ne!(
                ended.code,
                Some(0),
                "the lost agent ended as if all was well"
            );
        } else {
            assert_eq!(ended.code, Some(0), "agent {i}:\n{}", ended.stderr);
        }
    }
    // Every session of the lost agent is closed by its kernel once its
    // host is reachable again: the hub comes back.
    let now = fleet.hub_back_to(idle, Duration::from_secs(90));
    assert!(
        now <= idle + 3,
        "the hub holds {now} goroutines, {idle} before the run"
    );
}

#[test]
fn an_agent_killed_while_holding_ends_inconclusive_and_the_target_recovers() {
    lose_agent_while_holding("fkill", "was lost", |_, agent| {
        common::send_signal(agent.pid() as i32, libc::SIGKILL);
    });
}

#[test]
fn an_agent_cut_off_mid_cycle_ends_inconclusive_and_the_target_recovers() {
    lose_agent_while_holding("fcut", "no answer to pings", |fleet, _| {
        fleet.net.cut(&fleet.agents[1]);
    });
}

#[test]
fn an_agent_refuses_a_target_outside_its_own_consent() {
    let _alone = common::serial();
    go_targets();
    let Some(mut fleet) = Fleet::new("frefu") else {
        return;
    };
    let scenario = fleet.scenario("holding", HOLDING);
    fleet.start_hub(true);
    let out = fleet.dir.path().join("out");
    let mut coordinator = Live::spawn(fleet.coordinator_command(&scenario, &out), &out);
    coordinator.expect("waiting up to");
    assert!(fleet.coordinator.wait_tcp(CONTROL_PORT, START_WITHIN));
    let mut agents: Vec<Live> = (0..AGENTS - 1).map(|i| fleet.start_agent(i)).collect();
    // The last agent allows only another block.
    let host = &fleet.agents[AGENTS - 1];
    let agent_out = fleet.dir.path().join("refusing");
    let mut cmd = host.command(leakbench());
    cmd.arg("agent")
        .args([
            "--coordinator",
            &format!("ws://{}:{CONTROL_PORT}", fleet.coordinator.addr),
        ])
        .arg("--token-file")
        .arg(fleet.token())
        .args(["--allow-remote", "198.19.0.0/16"])
        .args(["--index", &(AGENTS - 1).to_string()]);
    agents.push(Live::spawn(cmd, &agent_out));
    let run = coordinator.finish();
    assert_eq!(run.code, Some(EXIT_ERROR), "{}", run.context());
    assert!(
        run.stderr.contains(&fleet.target.addr.to_string()) && run.stderr.contains("consent"),
        "{}",
        run.context()
    );
    let refused = agents.pop().expect("the refusing agent").finish();
    assert_eq!(refused.code, Some(EXIT_ERROR), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--allow-remote"),
        "{}",
        refused.stderr
    );
}
