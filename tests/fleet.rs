//! Load agents on loopback: `leakbench run --agents N` with N real
//! `leakbench agent` processes against the Go chat hubs. The fleet finds the
//! leak and its suspect, passes the fixed hub, merges the agents'
//! histograms exactly, ends inconclusive when an agent dies mid-cycle, and
//! refuses bad input with exit 2. Every wait polls a process's own output
//! or exit with a deadline; nothing sleeps in place of a condition.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use common::{Case, EXIT_ERROR, EXIT_INCONCLUSIVE, EXIT_LEAK, EXIT_PASS};
use serde_json::Value;

/// Longest wait for any one line or exit: a fleet run of the chat hub takes
/// well under a minute; this only keeps a broken run from hanging.
const DEADLINE: Duration = Duration::from_secs(240);

/// A leakbench process whose stderr is read line by line.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    what: String,
}

impl Proc {
    fn start(what: &str, args: &[&std::ffi::OsStr]) -> Proc {
        Proc::start_program(what, env!("CARGO_BIN_EXE_leakbench"), args)
    }

    fn start_program(what: &str, program: &str, args: &[&std::ffi::OsStr]) -> Proc {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start leakbench");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            seen: Vec::new(),
            what: what.to_owned(),
        }
    }

    /// Reads stderr until a line contains `text`.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("{} never printed {text:?}:\n{}", self.what, self.text()),
            }
        }
    }

    /// Waits (bounded) for the exit; returns the code and all of stderr.
    fn finish(&mut self, within: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} did not exit within {within:?}:\n{}",
                    self.what,
                    self.text()
                );
            }
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stderr closed: the exit is imminent.
                    if let Ok(status) = self.child.wait() {
                        break status;
                    }
                }
            }
        };
        // The reader thread ends at EOF; take what it still holds.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status.code(), self.text())
    }

    fn text(&self) -> String {
        self.seen.join("\n")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A coordinator and its agents in one temporary folder.
struct Run {
    dir: tempfile::TempDir,
    token: PathBuf,
    listen: String,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "fleet-test-token-0123456789\n").expect("token");
        Run {
            listen: format!("127.0.0.1:{}", common::free_port()),
            dir,
            token,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `leakbench run SCENARIO --agents N ...` on `scenario`, out in `out/`.
    fn coordinator(&self, scenario: &str, agents: u32, extra: &[&str]) -> Proc {
        let path = self.path("scenario.toml");
        std::fs::write(&path, scenario).expect("scenario");
        let n = agents.to_string();
        let mut args: Vec<&std::ffi::OsStr> =
            vec!["run".as_ref(), path.as_os_str(), "--out".as_ref()];
        let out = self.path("out");
        args.push(out.as_os_str());
        args.extend(["--agents".as_ref(), n.as_ref() as &std::ffi::OsStr]);
        args.extend([
            "--listen".as_ref(),
            self.listen.as_ref() as &std::ffi::OsStr,
        ]);
        args.extend(["--token-file".as_ref(), self.token.as_os_str()]);
        args.extend(extra.iter().map(|a| a.as_ref() as &std::ffi::OsStr));
        Proc::start("the coordinator", &args)
    }

    /// `leakbench agent` against this run's coordinator, reports in `agent-I/`.
    fn agent(&self, i: u32, token: &Path) -> Proc {
        self.agent_with(i, token, "ws", &[])
    }

    /// [`Run::agent`] with a URL scheme and extra flags.
    fn agent_with(&self, i: u32, token: &Path, scheme: &str, extra: &[&str]) -> Proc {
        let url = format!("{scheme}://{}", self.listen);
        let out = self.path(&format!("agent-{i}"));
        let index = i.to_string();
        let args: Vec<&std::ffi::OsStr> = vec![
            "agent".as_ref(),
            "--coordinator".as_ref(),
            url.as_ref(),
            "--token-file".as_ref(),
            token.as_os_str(),
            "--index".as_ref(),
            index.as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            "--connect-timeout".as_ref(),
            "20s".as_ref(),
        ];
        let args: Vec<&std::ffi::OsStr> = args
            .into_iter()
            .chain(extra.iter().map(|a| a.as_ref()))
            .collect();
        Proc::start(&format!("agent {i}"), &args)
    }

    fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.path("out/report.json")).expect("report.json");
        serde_json::from_str(&text).expect("report.json parses")
    }

    /// Agent `i`'s report of cycle `cycle`.
    fn share(&self, i: u32, cycle: usize) -> Value {
        let path = self.path(&format!("agent-{i}/cycle-{cycle}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).expect("share report parses")
    }
}

/// Runs `case` on `agents` agents to its end; returns the run, the
/// coordinator's exit code and stderr.
fn fleet_run(case: &Case, agents: u32) -> (Run, Option<i32>, String) {
    common::go_targets();
    let _one_at_a_time = common::serial();
    let run = Run::new();
    let mut coordinator = run.coordinator(&case.toml(common::free_port()), agents, &[]);
    coordinator.wait_for("waiting up to");
    let mut fleet: Vec<Proc> = (0..agents).map(|i| run.agent(i, &run.token)).collect();
    let (code, stderr) = coordinator.finish(DEADLINE);
    for (i, a) in fleet.iter_mut().enumerate() {
        let (agent_code, agent_err) = a.finish(Duration::from_secs(20));
        assert_eq!(
            agent_code,
            Some(0),
            "agent {i} did not end cleanly:\n{agent_err}"
        );
    }
    (run, code, stderr)
}

fn verdict(report: &Value) -> &str {
    report["verdict"].as_str().unwrap_or_default()
}

fn has_suspect(report: &Value, function: &str) -> bool {
    report["suspects"]
        .as_array()
        .into_iter()
        .flatten()
        .take(common::TOP_SUSPECTS)
        .any(|s| {
            s["frames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|f| f.starts_with(function))
        })
}

#[test]
fn two_agents_find_the_chathub_leak_and_merge_histograms_exactly() {
    let (run, code, stderr) = fleet_run(&Case::ws("chathub"), 2);
    let report = run.report();
    assert_eq!(code, Some(EXIT_LEAK), "{stderr}");
    assert_eq!(verdict(&report), "leak", "{stderr}");
    assert!(
        has_suspect(&report, "main.(*client).writePump"),
        "writePump is not a top suspect: {:#}",
        report["suspects"]
    );
    // Each phase's merged counts are the sum of the agents' shares, and the
    // shares' session blocks tile the cycle.
    let phases = report["phases"].as_array().expect("phases");
    assert!(phases.len() >= 3, "{stderr}");
    for (k, phase) in phases.iter().enumerate() {
        let parts = [run.share(0, k + 1), run.share(1, k + 1)];
        for metric in ["connect", "handshake", "round_trip"] {
            let sum: u64 = parts
                .iter()
                .map(|p| p["load"][metric]["count"].as_u64().unwrap())
                .sum();
            assert_eq!(
                phase["load"][metric]["count"].as_u64(),
                Some(sum),
                "phase {k} {metric}"
            );
        }
        let started: u64 = parts
            .iter()
            .map(|p| p["load"]["started"].as_u64().unwrap())
            .sum();
        assert_eq!(
            phase["load"]["started"].as_u64(),
            Some(started),
            "phase {k}"
        );
        // A cycle the time budget cut short started fewer than planned.
        assert!(phase["sessions"].as_u64().unwrap() >= started, "phase {k}");
        assert_eq!(parts[0]["share"]["first"].as_u64(), Some(0));
        assert_eq!(
            parts[1]["share"]["first"].as_u64(),
            parts[0]["share"]["sessions"].as_u64(),
            "agent 1's block starts where agent 0's ends"
        );
        // The fleet's slowest connect is the slower agent's.
        let max = parts
            .iter()
            .map(|p| p["load"]["connect"]["max_us"].as_u64().unwrap())
            .max();
        assert_eq!(
            phase["load"]["connect"]["max_us"].as_u64(),
            max,
            "phase {k}"
        );
    }
}

#[test]
fn two_agents_pass_the_fixed_chathub() {
    let (run, code, stderr) = fleet_run(&Case::ws("chathub").arg("-fixed"), 2);
    assert_eq!(code, Some(EXIT_PASS), "{stderr}");
    assert_eq!(verdict(&run.report()), "pass", "{stderr}");
}

/// The leaky hub with sessions that hold long enough to kill an agent while
/// they are open.
fn holding_scenario(hold: &str, sessions: u32) -> String {
    let port = common::free_port();
    format!(
        "[target]\nurl = \"ws://127.0.0.1:{port}/ws\"\ncommand = [{}, \"-addr\", \"127.0.0.1:{port}\"]\n\
         [load]\nsessions = {sessions}\nwarmup = 1\ncycles = 2\nhold = \"{hold}\"\n\
         [[load.steps]]\nsend = \"hello\"\n[[load.steps]]\nexpect = \"hello\"\n\
         [settle]\ntimeout = \"10s\"\n",
        common::toml_str(&common::go_targets().join("chathub").to_string_lossy())
    )
}

#[test]
fn an_agent_killed_while_holding_ends_inconclusive() {
    common::go_targets();
    let _one_at_a_time = common::serial();
    let run = Run::new();
    let mut coordinator = run.coordinator(&holding_scenario("20s", 40), 2, &[]);
    coordinator.wait_for("waiting up to");
    let mut a0 = run.agent(0, &run.token);
    let mut a1 = run.agent(1, &run.token);
    // Cycle 1 is the warm-up; cycle 2 is the first measured one.
    a1.wait_for("cycle 2: 20 session(s) started, holding");
    let killed = Instant::now();
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(a1.pid() as i32, libc::SIGKILL) };
    let (code, stderr) = coordinator.finish(Duration::from_secs(60));
    assert_eq!(code, Some(EXIT_INCONCLUSIVE), "{stderr}");
    // Abort, one settle (capped at 5 s) and goodbye: far below the hold.
    assert!(killed.elapsed() < Duration::from_secs(15), "{stderr}");
    let report = run.report();
    assert_eq!(report["status"].as_str(), Some("complete"));
    assert_eq!(verdict(&report), "inconclusive");
    let first = report["reasons"][0].as_str().unwrap_or_default();
    assert!(
        first.contains("agent 1") && first.contains("was lost") && first.contains("holding"),
        "{first}"
    );
    assert!(first.contains("cycle 1/2"), "{first}");
    // The surviving agent dropped its sessions and was let go.
    let (code0, err0) = a0.finish(Duration::from_secs(20));
    assert!(err0.contains("aborting"), "{err0}");
    assert_eq!(code0, Some(0), "{err0}");
}

#[test]
fn an_agent_goes_when_its_coordinator_dies() {
    common::go_targets();
    let _one_at_a_time = common::serial();
    let run = Run::new();
    let mut coordinator = run.coordinator(&holding_scenario("20s", 20), 1, &[]);
    coordinator.wait_for("waiting up to");
    let mut agent = run.agent(0, &run.token);
    agent.wait_for("cycle 1: 20 session(s) started, holding");
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(coordinator.pid() as i32, libc::SIGKILL) };
    let (code, stderr) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, Some(EXIT_ERROR), "{stderr}");
    assert!(stderr.contains("every session was closed"), "{stderr}");
}

#[test]
fn a_wrong_token_is_refused_and_too_few_agents_is_an_error() {
    common::go_targets();
    let run = Run::new();
    let started = Instant::now();
    let mut coordinator = run.coordinator(
        &Case::ws("chathub").toml(common::free_port()),
        2,
        &["--agent-timeout", "4s"],
    );
    coordinator.wait_for("waiting up to");
    let wrong = run.path("wrong-token");
    std::fs::write(&wrong, "not-the-fleet-token-at-all").unwrap();
    let mut intruder = run.agent(0, &wrong);
    let (code, stderr) = intruder.finish(Duration::from_secs(20));
    assert_eq!(code, Some(EXIT_ERROR), "{stderr}");
    assert!(
        stderr.contains("refused the token in") && stderr.contains("wrong-token"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-fleet-token-at-all"), "{stderr}");
    let mut one = run.agent(0, &run.token);
    one.wait_for("joined");
    let (code, stderr) = coordinator.finish(Duration::from_secs(30));
    assert_eq!(code, Some(EXIT_ERROR), "{stderr}");
    assert!(
        stderr.contains("1 of 2 agents connected within 4s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("leakbench agent --coordinator ws://"),
        "{stderr}"
    );
    assert!(stderr.contains("wrong or missing bearer token"), "{stderr}");
    assert!(!stderr.contains("fleet-test-token"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // Its coordinator gone, the agent exits non-zero.
    let (code, stderr) = one.finish(Duration::from_secs(20));
    assert_eq!(code, Some(EXIT_ERROR), "{stderr}");
}

#[test]
fn a_missing_token_file_is_an_error_naming_it() {
    common::go_targets();
    let run = Run::new();
    let missing = run.path("no-such-token");
    let scenario = run.path("s.toml");
    std::fs::write(&scenario, Case::ws("chathub").toml(common::free_port())).unwrap();
    let mut coordinator = Proc::start(
        "the coordinator",
        &[
            "run".as_ref(),
            scenario.as_os_str(),
            "--agents".as_ref(),
            "2".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--token-file".as_ref(),
            missing.as_os_str(),
        ],
    );
    let (code, stderr) = coordinator.finish(Duration::from_secs(20));
    assert_eq!(code, Some(EXIT_ERROR), "{stderr}");
    assert!(
        stderr.contains("cannot read the token file") && stderr.contains("no-such-token"),
        "{stderr}"
    );
    let mut agent = run.agent(0, &missing);
    let (code, stderr) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, Some(EXIT_ERROR), "{stderr}");
    assert!(stderr.contains("cannot read the token file"), "{stderr}");
}

/// A CA, a coordinator certificate for 127.0.0.1 and an agent client
/// certificate, as PEM files in `dir`: (ca, cert, key, client cert, client key).
fn test_pki(dir: &Path) -> [PathBuf; 5] {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["agent".to_owned()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    let files = [
        ("ca.pem", ca.pem()),
        ("server.pem", server.pem()),
        ("server.key", server_key.serialize_pem()),
        ("client.pem", client.pem()),
        ("client.key", client_key.serialize_pem()),
    ];
    files.map(|(name, text)| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    })
}

#[test]
fn mutual_tls_admits_a_certified_agent_only() {
    common::go_targets();
    let _one_at_a_time = common::serial();
    let run = Run::new();
    let [ca, cert, key, client_cert, client_key] = test_pki(run.dir.path());
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    let (ca, cert, key, client_cert, client_key) =
        (s(&ca), s(&cert), s(&key), s(&client_cert), s(&client_key));
    let mut coordinator = run.coordinator(
        &Case::ws("chathub").arg("-fixed").toml(common::free_port()),
        1,
        &["--tls-cert", &cert, "--tls-key", &key, "--client-ca", &ca],
    );
    coordinator.wait_for("waiting up to");
    // No client certificate: turned away at the handshake, at once.
    let mut anonymous = run.agent_with(0, &run.token, "wss", &["--ca", &ca]);
    let (code, stderr) = anonymous.finish(Duration::from_secs(20));
    assert_eq!(code, Some(EXIT_ERROR), "{stderr}");
    assert!(stderr.contains("check --cert and --key"), "{stderr}");
    // A plain ws:// agent cannot speak to a wss:// coordinator either.
    let mut plain = run.agent(0, &run.token);
    let (code, stderr) = plain.finish(Duration::from_secs(20));
    assert_eq!(code, Some(EXIT_ERROR), "{stderr}");
    let mut agent = run.agent_with(
        0,
        &run.token,
        "wss",
        &["--ca", &ca, "--cert", &client_cert, "--key", &client_key],
    );
    let (code, stderr) = coordinator.finish(DEADLINE);
    assert_eq!(code, Some(EXIT_PASS), "{stderr}");
    assert!(stderr.contains("TLS handshake failed"), "{stderr}");
    let (code, agent_err) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{agent_err}");
}

#[test]
fn a_heavy_share_keeps_its_heartbeat() {
    // One agent holds 6,000 sessions for longer than the 5 s silence that
    // counts as lost, on a 2-core machine that also runs the target: the
    // control channel's own thread keeps answering.
    common::go_targets();
    let _one_at_a_time = common::serial();
    let run = Run::new();
    let port = common::free_port();
    let scenario = format!(
        "[target]\nurl = \"ws://127.0.0.1:{port}/ws\"\ncommand = [{}, \"-addr\", \"127.0.0.1:{port}\", \"-fixed\"]\n\
         [load]\nsessions = 6000\nconcurrency = 6000\nwarmup = 0\ncycles = 2\nhold = \"6s\"\n\
         [[load.steps]]\nsend = \"hello\"\n[[load.steps]]\nexpect = \"hello\"\n\
         [settle]\ntimeout = \"10s\"\n[verdict]\nescalate = false\n",
        common::toml_str(&common::go_targets().join("chathub").to_string_lossy())
    );
    let mut coordinator = run.coordinator(&scenario, 1, &[]);
    coordinator.wait_for("waiting up to");
    let mut agent = run.agent(0, &run.token);
    let (code, stderr) = coordinator.finish(DEADLINE);
    let (agent_code, agent_err) = agent.finish(Duration::from_secs(20));
    assert!(!stderr.contains("was lost"), "{stderr}");
    assert_eq!(agent_code, Some(0), "{agent_err}");
    assert!(
        agent_err.contains("6000 session(s) started, holding"),
        "{agent_err}"
    );
    let report = run.report();
    // Every session ran (the hub may time some echoes out under this load:
    // that is the target's doing, counted as failures, not a lost agent).
    let l = &report["phases"][0]["load"];
    assert_eq!(l["started"].as_u64(), Some(6000), "{stderr}");
    assert_ne!(code, Some(EXIT_ERROR), "{stderr}");
}

#[test]
fn a_share_too_big_for_an_agent_is_an_error_naming_it() {
    common::go_targets();
    let run = Run::new();
    let scenario = Case::ws("chathub")
        .toml(common::free_port())
        .replace("sessions = 200", "sessions = 400\nconcurrency = 400");
    let mut coordinator = run.coordinator(&scenario, 1, &[]);
    coordinator.wait_for("waiting up to");
    // 200 descriptors, 100 kept back: 100 sessions fit, the share is 400.
    let url = format!("ws://{}", run.listen);
    let agent_cmd = format!(
        "ulimit -n 200 && exec {} agent --coordinator {url} --token-file {}",
        env!("CARGO_BIN_EXE_leakbench"),
        run.token.display()
    );
    let mut agent = Proc::start_program("agent 0", "sh", &["-c".as_ref(), agent_cmd.as_ref()]);
    let (code, stderr) = coordinator.finish(Duration::from_secs(30));
    assert_eq!(code, Some(EXIT_ERROR), "{stderr}");
    assert!(
        stderr.contains("agent 0")
            && stderr.contains("400 sessions at once, but at most 100 fit")
            && stderr.contains("ulimit -n 200")
            && stderr.contains("add agents"),
        "{stderr}"
    );
    let (code, stderr) = agent.finish(Duration::from_secs(20));
    assert_eq!(code, Some(EXIT_ERROR), "{stderr}");
}

#[test]
fn an_agent_gone_silent_while_holding_ends_inconclusive() {
    // SIGSTOP freezes the agent with its sockets open, as a cut link does:
    // no close, just silence. The coordinator's pings go unanswered.
    common::go_targets();
    let _one_at_a_time = common::serial();
    let run = Run::new();
    let mut coordinator = run.coordinator(&holding_scenario("20s", 40), 2, &[]);
    coordinator.wait_for("waiting up to");
    let mut a0 = run.agent(0, &run.token);
    let mut a1 = run.agent(1, &run.token);
    a0.wait_for("cycle 2: 20 session(s) started, holding");
    let stopped = Instant::now();
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(a0.pid() as i32, libc::SIGSTOP) };
    let (code, stderr) = coordinator.finish(Duration::from_secs(60));
    assert_eq!(code, Some(EXIT_INCONCLUSIVE), "{stderr}");
    // 5 s of silence, abort, one settle (at most 5 s), goodbye.
    assert!(stopped.elapsed() < Duration::from_secs(20), "{stderr}");
    let first = run.report()["reasons"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        first.contains("agent 0") && first.contains("no answer to pings for 5 s"),
        "{first}"
    );
    assert!(first.contains("while holding in cycle 1/2"), "{first}");
    let (code1, err1) = a1.finish(Duration::from_secs(20));
    assert_eq!(code1, Some(0), "{err1}");
    // Woken, the frozen agent finds its coordinator gone and exits non-zero.
    // SAFETY: as above.
    unsafe { libc::kill(a0.pid() as i32, libc::SIGCONT) };
    let (code0, err0) = a0.finish(Duration::from_secs(20));
    assert_eq!(code0, Some(EXIT_ERROR), "{err0}");
    assert!(err0.contains("every session was closed"), "{err0}");
}
