//! `leakbench kube` through the real binary: the printed manifests,
//! deserialized into the Kubernetes API types of k8s-openapi (which check
//! each object's apiVersion and kind), carry every field the run depends
//! on; the shell the pods run works as the manifests promise; the
//! Dockerfile puts the binary where the manifests call it; and bad input
//! is exit 2 with a message that names the fix.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Secret, Service};
use serde::Deserialize;
use serde_json::Value;

const TOKEN: &str = "kube-test-token-5e1f0c";
const NS: &str = "perf";
const AGENTS: i32 = 3;

fn leakbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leakbench"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run leakbench")
}

/// A scenario for a chat hub running in the cluster, with a binary payload
/// in a subfolder, and a token file, in a fresh folder.
fn cluster_scenario() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("payloads")).expect("mkdir");
    std::fs::write(dir.path().join("payloads/hello.bin"), [0xffu8, 0, 1, 2]).expect("payload");
    let scenario = dir.path().join("chat.toml");
    std::fs::write(
        &scenario,
        r#"
[target]
url = "ws://chat.perf.svc:8080/ws?room={{session}}"
pprof = "http://chat.perf.svc:6060/debug/pprof"

[load]
sessions = 600
concurrency = 300

[[load.steps]]
send_file = "payloads/hello.bin"
"#,
    )
    .expect("scenario");
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token");
    (dir, scenario, token)
}

/// The objects of the printed stream, by kind.
struct Printed {
    stdout: String,
    stderr: String,
    secret: Secret,
    config_map: ConfigMap,
    service: Service,
    coordinator: Job,
    agents: Job,
}

fn objects(stdout: &str, stderr: &str) -> Printed {
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for doc in serde_yaml_ng::Deserializer::from_str(stdout) {
        let value = Value::deserialize(doc).expect("each document is YAML");
        let kind = value["kind"].as_str().expect("a kind").to_owned();
        by_kind.entry(kind).or_default().push(value);
    }
    let kinds: Vec<(&String, usize)> = by_kind.iter().map(|(k, v)| (k, v.len())).collect();
    assert_eq!(
        format!("{kinds:?}"),
        r#"[("ConfigMap", 1), ("Job", 2), ("Secret", 1), ("Service", 1)]"#
    );
    let mut jobs: Vec<Job> = by_kind["Job"].iter().map(typed).collect();
    let agents_at = jobs
        .iter()
        .position(|j| j.spec.as_ref().unwrap().completion_mode.as_deref() == Some("Indexed"))
        .expect("an Indexed Job");
    let agents = jobs.remove(agents_at);
    Printed {
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
        secret: typed(&by_kind["Secret"][0]),
        config_map: typed(&by_kind["ConfigMap"][0]),
        service: typed(&by_kind["Service"][0]),
        coordinator: jobs.remove(0),
        agents,
    }
}

/// `value` as `T`, and back to the same JSON: a misspelt or misplaced
/// field, which the API types would drop, fails here.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> T {
    let object: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("not a valid {}: {e}\n{value:#}", std::any::type_name::<T>()));
    let back = serde_json::to_value(&object).expect("serialize");
    assert_eq!(
        &back,
        value,
        "fields lost in a round trip through {}",
        std::any::type_name::<T>()
    );
    object
}

fn print(extra: &[&str]) -> Printed {
    let (dir, scenario, token) = cluster_scenario();
    let mut args = vec![
        "kube",
        scenario.to_str().unwrap(),
        "--agents",
        "3",
        "--image",
        "registry.example/leakbench:0.1.0",
        "--namespace",
        NS,
        "--allow-remote",
        "chat.perf.svc",
        "--token-file",
        token.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = leakbench(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    drop(dir);
    objects(&stdout, &stderr)
}

fn pod(job: &Job) -> &PodSpec {
    job.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template")
}

fn pod_labels(job: &Job) -> &BTreeMap<String, String> {
    job.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .expect("pod labels")
}

/// The container's whole command line, command then args.
fn argv(c: &Container) -> Vec<String> {
    let mut all = c.command.clone().unwrap_or_default();
    all.extend(c.args.clone().unwrap_or_default());
    all
}

/// The value after `flag` in `argv`.
fn flag<'a>(argv: &'a [String], flag: &str) -> &'a str {
    let i = argv
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {argv:?}"));
    &argv[i + 1]
}

/// The token Secret is mounted where `--token-file` points.
fn assert_token_mounted(job: &Job, c: &Container, secret_name: &str) {
    let all = argv(c);
    let file = flag(&all, "--token-file");
    let dir = Path::new(file).parent().unwrap().to_str().unwrap();
    let mount = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.mount_path == dir)
        .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    let volume = pod(job)
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == mount.name)
        .expect("the mounted volume");
    let secret = volume.secret.as_ref().expect("a secret volume");
    assert_eq!(secret.secret_name.as_deref(), Some(secret_name));
    let items = secret.items.as_ref().unwrap();
    assert_eq!(
        Path::new(dir).join(&items[0].path),
        Path::new(file),
        "the token file's name"
    );
    assert_eq!(items[0].key, "token");
}

#[test]
fn manifests_are_kubernetes_objects_with_the_fields_the_run_needs() {
    let p = print(&[]);
    let ns = Some(NS.to_owned());

    // The token is in the Secret, nowhere else, never on stderr.
    assert_eq!(p.secret.data.as_ref().unwrap()["token"].0, TOKEN.as_bytes());
    assert!(!p.stdout.contains(TOKEN) && !p.stderr.contains(TOKEN));
    let secret_name = p.secret.metadata.name.clone().unwrap();

    // The scenario travels as written, its binary payload byte for byte.
    let cm = &p.config_map;
    let scenario_text = &cm.data.as_ref().unwrap()["chat.toml"];
    assert!(scenario_text.contains("ws://chat.perf.svc:8080/ws?room={{session}}"));
    let binary = cm.binary_data.as_ref().unwrap();
    assert_eq!(binary.values().next().unwrap().0, vec![0xff, 0, 1, 2]);

    for object in [
        &p.secret.metadata,
        &p.config_map.metadata,
        &p.service.metadata,
        &p.coordinator.metadata,
        &p.agents.metadata,
    ] {
        assert_eq!(object.namespace, ns);
        assert_eq!(
            object.labels.as_ref().unwrap()["app.kubernetes.io/name"],
            "leakbench"
        );
    }

    // The coordinator: one try, never restarted, the fleet's run.
    let cspec = p.coordinator.spec.as_ref().unwrap();
    assert_eq!(cspec.backoff_limit, Some(0));
    assert_eq!(cspec.active_deadline_seconds, Some(3600));
    let cpod = pod(&p.coordinator);
    assert_eq!(cpod.restart_policy.as_deref(), Some("Never"));
    let coordinator = &cpod.containers[0];
    let cargv = argv(coordinator);
    let run = cargv
        .iter()
        .position(|a| a == "/usr/local/bin/leakbench")
        .expect("the binary");
    assert_eq!(cargv[run + 1], "run");
    assert_eq!(cargv[run + 2], "/scenario/chat.toml");
    assert_eq!(flag(&cargv, "--agents"), AGENTS.to_string());
    assert_eq!(flag(&cargv, "--listen"), "0.0.0.0:7070");
    assert_eq!(flag(&cargv, "--allow-remote"), "chat.perf.svc");
    assert_eq!(flag(&cargv, "--out"), "/results");
    assert_eq!(flag(&cargv, "--agent-timeout"), "300s");
    assert_token_mounted(&p.coordinator, coordinator, &secret_name);
    // The ConfigMap is the scenario's folder in the pod, payload included.
    let scenario_volume = cpod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find_map(|v| v.config_map.as_ref())
        .expect("the scenario volume");
    assert_eq!(
        scenario_volume.name,
        p.config_map.metadata.name.clone().unwrap()
    );
    let paths: Vec<&str> = scenario_volume
        .items
        .as_ref()
        .unwrap()
        .iter()
        .map(|i| i.path.as_str())
        .collect();
    assert_eq!(paths, ["chat.toml", "payloads/hello.bin"]);

    // The Service reaches the coordinator pod on its control port.
    let sspec = p.service.spec.as_ref().unwrap();
    let labels = pod_labels(&p.coordinator);
    for (k, v) in sspec.selector.as_ref().unwrap() {
        assert_eq!(labels.get(k), Some(v), "the selector's {k}");
    }
    assert!(!pod_labels(&p.agents).iter().eq(labels.iter()));
    let port = &sspec.ports.as_ref().unwrap()[0];
    assert_eq!(port.port, 7070);
    let container_port = &coordinator.ports.as_ref().unwrap()[0];
    assert_eq!(container_port.container_port, 7070);
    assert_eq!(
        serde_json::to_value(port.target_port.as_ref().unwrap()).unwrap(),
        Value::from(container_port.name.clone().unwrap())
    );

    // The agents: an Indexed Job of N pods, all at once, one try each.
    let aspec = p.agents.spec.as_ref().unwrap();
    assert_eq!(aspec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(aspec.completions, Some(AGENTS));
    assert_eq!(aspec.parallelism, Some(AGENTS));
    assert_eq!(aspec.backoff_limit, Some(0));
    assert_eq!(aspec.active_deadline_seconds, Some(3600));
    let apod = pod(&p.agents);
    assert_eq!(apod.restart_policy.as_deref(), Some("Never"));
    let spread = &apod.topology_spread_constraints.as_ref().unwrap()[0];
    assert_eq!(spread.topology_key, "kubernetes.io/hostname");
    assert_eq!(spread.max_skew, 1);
    let agent_labels = pod_labels(&p.agents);
    let matched = spread
        .label_selector
        .as_ref()
        .unwrap()
        .match_labels
        .as_ref();
    for (k, v) in matched.unwrap() {
        assert_eq!(agent_labels.get(k), Some(v), "the spread selector's {k}");
    }
    let agent = &apod.containers[0];
    let aargv = argv(agent);
    assert_eq!(
        aargv[..4],
        ["/usr/bin/tini", "--", "/usr/local/bin/leakbench", "agent"]
    );
    let service = p.service.metadata.name.clone().unwrap();
    assert_eq!(
        flag(&aargv, "--coordinator"),
        format!("ws://{service}.{NS}.svc:{}", port.port)
    );
    assert_eq!(flag(&aargv, "--allow-remote"), "chat.perf.svc");
    assert_token_mounted(&p.agents, agent, &secret_name);
    // Waiting for the coordinator is the init container's job, bounded.
    let wait = argv(&apod.init_containers.as_ref().unwrap()[0]);
    assert_eq!(wait[0], "timeout");
    assert!(wait.contains(&format!("{service}.{NS}.svc")), "{wait:?}");
}

#[test]
fn the_pods_copy_of_the_scenario_folder_is_the_same_scenario() {
    let p = print(&[]);
    // Lay the ConfigMap out as the volume's items do, and print again from
    // there: the payload is found at the path the scenario names.
    let pod_dir = tempfile::tempdir().expect("tempdir");
    let cm = &p.config_map;
    let items = pod(&p.coordinator)
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find_map(|v| v.config_map.as_ref())
        .and_then(|c| c.items.clone())
        .expect("items");
    for item in &items {
        let bytes = match cm.data.as_ref().unwrap().get(&item.key) {
            Some(text) => text.clone().into_bytes(),
            None => cm.binary_data.as_ref().unwrap()[&item.key].0.clone(),
        };
        let at = pod_dir.path().join(&item.path);
        std::fs::create_dir_all(at.parent().unwrap()).expect("mkdir");
        std::fs::write(at, bytes).expect("write");
    }
    let token = pod_dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("token");
    let scenario = pod_dir.path().join("chat.toml");
    let out = leakbench(&[
        "kube",
        scenario.to_str().unwrap(),
        "--agents",
        "3",
        "--image",
        "registry.example/leakbench:0.1.0",
        "--namespace",
        NS,
        "--allow-remote",
        "chat.perf.svc",
        "--token-file",
        token.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        p.stdout,
        "the same manifests from the pod's copy"
    );
}

/// `leakbench kube` on `scenario` with `LB_KUBE_TEST_KEY` set to `value`,
/// or unset.
fn kube_with_key(scenario: &Path, token: &Path, value: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leakbench"));
    cmd.args([
        "kube",
        scenario.to_str().unwrap(),
        "--agents",
        "2",
        "--image",
        "lb:1",
        "--allow-remote",
        "chat.perf.svc",
        "--token-file",
        token.to_str().unwrap(),
    ]);
    match value {
        Some(v) => cmd.env("LB_KUBE_TEST_KEY", v),
        None => cmd.env_remove("LB_KUBE_TEST_KEY"),
    };
    cmd.stdin(Stdio::null()).output().expect("run leakbench")
}

#[test]
fn scenario_variables_travel_in_the_secret_not_in_the_pod_spec() {
    let (_dir, scenario, token) = cluster_scenario();
    let value = "header-value-from-env-9d2a";
    std::fs::write(
        &scenario,
        "[target]\nurl = \"ws://chat.perf.svc:8080/ws\"\n[load]\nsessions = 10\n\
         [load.headers]\nX-Api-Key = \"${LB_KUBE_TEST_KEY}\"\n\
         [secrets]\nenv = [\"LB_KUBE_TEST_KEY\"]\n",
    )
    .expect("scenario");
    let out = kube_with_key(&scenario, &token, Some(value));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stdout.contains(value) && !stderr.contains(value));
    let p = objects(&stdout, &stderr);
    let data = p.secret.data.as_ref().unwrap();
    assert_eq!(data["env.LB_KUBE_TEST_KEY"].0, value.as_bytes());
    let env = pod(&p.coordinator).containers[0].env.clone().unwrap();
    assert_eq!(env.len(), 1);
    assert_eq!(env[0].name, "LB_KUBE_TEST_KEY");
    let from = env[0].value_from.as_ref().unwrap();
    let from = from.secret_key_ref.as_ref().unwrap();
    assert_eq!(from.name, p.secret.metadata.name.clone().unwrap());
    assert_eq!(from.key, "env.LB_KUBE_TEST_KEY");
    // Unset here, the scenario's own error says so.
    let unset = kube_with_key(&scenario, &token, None);
    assert_eq!(unset.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unset.stderr);
    assert!(stderr.contains("LB_KUBE_TEST_KEY is not set"), "{stderr}");
}

#[test]
fn a_results_claim_and_a_fresh_token() {
    let (_dir, scenario, _) = cluster_scenario();
    let run = |_: ()| {
        let out = leakbench(&[
            "kube",
            scenario.to_str().unwrap(),
            "--agents",
            "1",
            "--image",
            "lb:1",
            "--allow-remote",
            "chat.perf.svc",
            "--results-claim",
            "lb-results",
            "--name",
            "soak",
        ]);
        assert_eq!(out.status.code(), Some(0));
        objects(
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
        )
    };
    let first = run(());
    let second = run(());
    let token = |p: &Printed| p.secret.data.as_ref().unwrap()["token"].0.clone();
    assert_eq!(token(&first).len(), 64);
    assert_ne!(token(&first), token(&second), "a fresh token every time");
    let shown = String::from_utf8(token(&first)).unwrap();
    assert!(!first.stderr.contains(&shown), "{}", first.stderr);
    assert!(first.stderr.contains("soak-token"), "{}", first.stderr);
    let claim = pod(&first.coordinator)
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find_map(|v| v.persistent_volume_claim.as_ref())
        .expect("the claim");
    assert_eq!(claim.claim_name, "lb-results");
    assert_eq!(first.agents.spec.as_ref().unwrap().completions, Some(1));
    assert_eq!(first.agents.metadata.name.as_deref(), Some("soak-agents"));
}

/// The coordinator pod's shell, as printed.
fn coordinator_script() -> String {
    let p = print(&[]);
    let c = &pod(&p.coordinator).containers[0];
    let argv = argv(c);
    let i = argv.iter().position(|a| a == "-c").expect("bash -c");
    argv[i + 1].clone()
}

/// Waits at most `within` for `child` to exit.
fn exit_within(child: &mut std::process::Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn the_coordinator_pod_exits_with_leakbenchs_code_and_passes_sigterm_on() {
    let script = coordinator_script();
    // Exit code 3 (inconclusive) comes through with no keep window.
    let out = Command::new("bash")
        .args(["-c", &script, "coordinator", "0", "sh", "-c", "exit 3"])
        .output()
        .expect("bash");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exited 3"));

    // SIGTERM reaches the run (here a sleep): it ends at once, not at the
    // kubelet's SIGKILL.
    let mut child = Command::new("bash")
        .args(["-c", &script, "coordinator", "0", "sleep", "60"])
        .spawn()
        .expect("bash");
    // Bounded wait until the sleep has started under it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid = child.id().to_string();
    while Instant::now() < deadline {
        let children = Command::new("pgrep").args(["-P", &pid]).output();
        if children.is_ok_and(|o| !o.stdout.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    send_signal(child.id(), "TERM");
    let code = exit_within(&mut child, Duration::from_secs(5));
    assert_eq!(code, Some(143), "sleep killed by SIGTERM, passed through");
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

#[test]
fn agents_wait_for_the_coordinator_until_it_listens_and_no_longer() {
    let p = print(&[]);
    let wait = argv(&pod(&p.agents).init_containers.as_ref().unwrap()[0]);
    let i = wait.iter().position(|a| a == "-c").expect("bash -c");
    let script = &wait[i + 1];
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port().to_string();
    let status = Command::new("timeout")
        .args(["10", "bash", "-c", script, "wait", "127.0.0.1", &port])
        .status()
        .expect("bash");
    assert_eq!(
        status.code(),
        Some(0),
        "a listening coordinator ends the wait"
    );
    drop(listener);
    let status = Command::new("timeout")
        .args(["2", "bash", "-c", script, "wait", "127.0.0.1", &port])
        .status()
        .expect("bash");
    assert_eq!(status.code(), Some(124), "none: the timeout ends it");
}

#[test]
fn the_dockerfile_puts_the_binary_where_the_manifests_call_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    let p = print(&[]);
    let agent = argv(&pod(&p.agents).containers[0]);
    let (init, binary) = (&agent[0], &agent[2]);
    assert!(
        dockerfile.contains(&format!(
            "COPY --from=build /src/target/release/leakbench {binary}"
        )),
        "{dockerfile}"
    );
    assert!(dockerfile.contains(&format!("ENTRYPOINT [\"{init}\", \"--\", \"{binary}\"]")));
    assert!(dockerfile.contains("tini"));
    let uid = pod(&p.agents)
        .security_context
        .as_ref()
        .unwrap()
        .run_as_user
        .unwrap();
    assert!(dockerfile.contains(&format!("USER {uid}")), "{dockerfile}");
    assert!(dockerfile.contains("cargo build --release --locked"));
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).expect(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}

/// `leakbench kube` with `args` after the scenario ends in exit 2, with
/// every one of `says` in its message.
fn refused(scenario_text: Option<&str>, args: &[&str], says: &[&str]) {
    let (dir, scenario, _) = cluster_scenario();
    if let Some(text) = scenario_text {
        std::fs::write(&scenario, text).expect("scenario");
    }
    let mut all = vec!["kube", scenario.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = leakbench(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
    assert!(out.stdout.is_empty(), "nothing printed for kubectl");
    for s in says {
        assert!(stderr.contains(s), "{all:?}: `{s}` not in: {stderr}");
    }
    drop(dir);
}

#[test]
fn bad_input_is_exit_2_naming_the_fix() {
    let ok = ["--image", "lb:1", "--allow-remote", "chat.perf.svc"];
    let with = |extra: &[&'static str]| {
        let mut v: Vec<&str> = ok.to_vec();
        v.extend_from_slice(extra);
        v
    };
    refused(
        None,
        &with(&["--agents", "0"]),
        &["--agents 0", "between 1 and 1000"],
    );
    refused(None, &with(&["--agents", "1001"]), &["between 1 and 1000"]);
    refused(
        None,
        &["--agents", "2", "--allow-remote", "x"],
        &["--image"],
    );
    refused(
        None,
        &["--agents", "2", "--image", "lb:1"],
        &["add `--allow-remote chat.perf.svc`", "scenario file cannot"],
    );
    refused(
        None,
        &with(&["--agents", "2", "--name", "Big_Name"]),
        &["--name `Big_Name`", "lowercase"],
    );
    refused(
        None,
        &with(&["--agents", "2", "--keep", "2h"]),
        &["--keep 2h", "--deadline 1h"],
    );
    refused(
        None,
        &with(&[
            "--agents",
            "2",
            "--token-file",
            "/nonexistent/leakbench-token",
        ]),
        &["--token-file /nonexistent/leakbench-token"],
    );
    // The scenario's own errors, with file, line and key.
    refused(
        Some("[target]\nurl = \"ws://chat.perf.svc:8080/ws\"\n[load]\nsesions = 10\n"),
        &with(&["--agents", "2"]),
        &["chat.toml:4:", "load.sesions", "sessions"],
    );
    refused(
        Some("[target]\nurl = \"ws://chat.perf.svc:8080/ws\"\n[load]\nsessions = 0\n"),
        &with(&["--agents", "2"]),
        &["chat.toml:4:", "load.sessions"],
    );
    refused(
        Some("[target]\nurl = \"ws://127.0.0.1:8080/ws\"\n[load]\nsessions = 10\n"),
        &with(&["--agents", "2"]),
        &["target.url", "loopback", "Service"],
    );
    refused(
        Some(
            "[target]\nurl = \"ws://chat.perf.svc:8080/ws\"\ncommand = [\"./chat\"]\n[load]\nsessions = 10\n",
        ),
        &with(&["--agents", "2"]),
        &["target.command", "remove"],
    );
    refused(
        Some(
            "[target]\nurl = \"ws://chat.perf.svc:8080/ws\"\n[load]\nsessions = 10\n[[load.steps]]\nsend_file = \"../secret.bin\"\n",
        ),
        &with(&["--agents", "2"]),
        &["../secret.bin", "outside the scenario's folder"],
    );
    refused(
        None,
        &with(&["--agents", "2", "--port", "0"]),
        &["--port 0"],
    );
    let (big_dir, big, _) = cluster_scenario();
    std::fs::write(
        big_dir.path().join("payloads/hello.bin"),
        vec![7u8; 1100 * 1024],
    )
    .expect("big payload");
    let mut args = vec!["kube", big.to_str().unwrap(), "--agents", "2"];
    args.extend_from_slice(&ok);
    let out = leakbench(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("more than a ConfigMap holds") && stderr.contains("payloads/hello.bin"),
        "{stderr}"
    );
}

#[test]
fn an_empty_token_file_is_refused() {
    let (_dir, scenario, token) = cluster_scenario();
    std::fs::write(&token, "\n").expect("token");
    let out = leakbench(&[
        "kube",
        scenario.to_str().unwrap(),
        "--agents",
        "2",
        "--image",
        "lb:1",
        "--allow-remote",
        "chat.perf.svc",
        "--token-file",
        token.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is empty"), "{stderr}");
}
