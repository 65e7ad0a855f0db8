//! The objects `leakbench kube` prints, built from a checked [`Plan`] as
//! plain JSON values and written as multi-document YAML.
//!
//! Pure: nothing here reads files or the environment, so unit tests can
//! look at every field, and the integration test deserializes the printed
//! YAML into the Kubernetes API types.

use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine as _;
use serde_json::{Value, json};

/// Where the token Secret is mounted; the file is `token`.
pub const TOKEN_DIR: &str = "/token";
/// Where the scenario ConfigMap is mounted: the scenario's own folder in
/// the pod, so its relative payload paths resolve as they did locally.
pub const SCENARIO_DIR: &str = "/scenario";
/// Where the coordinator writes its reports (`leakbench run --out`).
pub const RESULTS_DIR: &str = "/results";
/// The binary's path in the image the Dockerfile builds.
pub const BINARY: &str = "/usr/local/bin/leakbench";
/// The init process in that image: it forwards SIGTERM from the kubelet
/// and reaps children, which a plain PID 1 does not.
pub const INIT: &str = "/usr/bin/tini";
/// The image's non-root user and group (the Dockerfile creates it).
pub const UID: i64 = 10001;
/// Once `/results/.fetched` exists the coordinator pod ends at once
/// instead of waiting out its keep window.
pub const FETCHED_MARKER: &str = "/results/.fetched";

/// Longest an agent pod waits for the coordinator's Service to accept a
/// connection before giving up: image pulls and scheduling of a fresh node
/// take minutes, not hours.
const AGENT_WAIT: Duration = Duration::from_secs(300);

/// One file carried in the scenario ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// ConfigMap key (letters, digits, `-`, `_`, `.`).
    pub key: String,
    /// Path below [`SCENARIO_DIR`], as the scenario names it.
    pub path: String,
    /// The bytes; text goes in `data`, anything else in `binaryData`.
    pub bytes: Vec<u8>,
}

/// Everything the manifests depend on, checked by the command.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Prefix of every object's name, a DNS label.
    pub name: String,
    /// Namespace of every object.
    pub namespace: String,
    /// The leakbench image.
    pub image: String,
    /// Agent pods.
    pub agents: u32,
    /// The coordinator's control port.
    pub port: u16,
    /// `activeDeadlineSeconds` of both Jobs.
    pub deadline: Duration,
    /// How long the finished coordinator pod waits for `kubectl cp`.
    pub keep: Duration,
    /// The coordinator's wait for all agents to connect.
    pub agent_timeout: Duration,
    /// The bearer token agents present.
    pub token: String,
    /// Path of the scenario below [`SCENARIO_DIR`] (its file name).
    pub scenario: String,
    /// The scenario and the payload files it names.
    pub files: Vec<ConfigFile>,
    /// Environment variables the scenario expands, with their values:
    /// carried in the Secret, set in the coordinator pod.
    pub env: Vec<(String, String)>,
    /// `--allow-remote` values for the coordinator and the agents.
    pub allow_remote: Vec<String>,
    /// A PersistentVolumeClaim for the results instead of an emptyDir.
    pub results_claim: Option<String>,
}

impl Plan {
    fn coordinator_name(&self) -> String {
        format!("{}-coordinator", self.name)
    }

    fn agents_name(&self) -> String {
        format!("{}-agents", self.name)
    }

    fn token_name(&self) -> String {
        format!("{}-token", self.name)
    }

    fn scenario_name(&self) -> String {
        format!("{}-scenario", self.name)
    }

    /// The URL agents dial: the coordinator's Service by its cluster name.
    pub fn coordinator_url(&self) -> String {
        format!(
            "ws://{}.{}.svc:{}",
            self.coordinator_name(),
            self.namespace,
            self.port
        )
    }

    /// The recommended labels, for `component` (coordinator, agent, ...).
    fn labels(&self, component: &str) -> Value {
        json!({
            "app.kubernetes.io/name": "leakbench",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "leakbench-kube",
            "app.kubernetes.io/version": env!("CARGO_PKG_VERSION"),
        })
    }

    /// The labels that pick one component's pods (no version: a selector
    /// must not change when the image does).
    fn selector(&self, component: &str) -> Value {
        json!({
            "app.kubernetes.io/name": "leakbench",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": component,
        })
    }

    fn metadata(&self, name: String, component: &str) -> Value {
        json!({
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(component),
        })
    }

    /// `--allow-remote H` for each allowed host.
    fn allow_args(&self) -> Vec<String> {
        self.allow_remote
            .iter()
            .flat_map(|h| ["--allow-remote".to_owned(), h.clone()])
            .collect()
    }

    /// The coordinator's `leakbench run` command line.
    pub fn coordinator_args(&self) -> Vec<String> {
        let mut args = vec![
            BINARY.to_owned(),
            "run".to_owned(),
            format!("{SCENARIO_DIR}/{}", self.scenario),
            "--agents".to_owned(),
            self.agents.to_string(),
            "--listen".to_owned(),
            format!("0.0.0.0:{}", self.port),
            "--token-file".to_owned(),
            format!("{TOKEN_DIR}/token"),
            "--agent-timeout".to_owned(),
            format!("{}s", self.agent_timeout.as_secs()),
            "--out".to_owned(),
            RESULTS_DIR.to_owned(),
        ];
        args.extend(self.allow_args());
        args
    }

    /// An agent's `leakbench agent` arguments (after the binary): its index
    /// comes from `JOB_COMPLETION_INDEX`, which the Indexed Job sets.
    pub fn agent_args(&self) -> Vec<String> {
        let mut args = vec![
            "agent".to_owned(),
            "--coordinator".to_owned(),
            self.coordinator_url(),
            "--token-file".to_owned(),
            format!("{TOKEN_DIR}/token"),
        ];
        args.extend(self.allow_args());
        args
    }

    /// The token Secret, plus the scenario's environment variables.
    fn secret(&self) -> Value {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut data = serde_json::Map::new();
        data.insert("token".into(), b64(&self.token).into());
        for (name, value) in &self.env {
            data.insert(env_key(name), b64(value).into());
        }
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self.metadata(self.token_name(), "token"),
            "type": "Opaque",
            "data": data,
        })
    }

    fn config_map(&self) -> Value {
        let mut data = serde_json::Map::new();
        let mut binary = serde_json::Map::new();
        for f in &self.files {
            match std::str::from_utf8(&f.bytes) {
                Ok(text) => data.insert(f.key.clone(), text.into()),
                Err(_) => binary.insert(
                    f.key.clone(),
                    base64::engine::general_purpose::STANDARD
                        .encode(&f.bytes)
                        .into(),
                ),
            };
        }
        let mut cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.metadata(self.scenario_name(), "scenario"),
            "data": data,
        });
        if !binary.is_empty() {
            cm["binaryData"] = binary.into();
        }
        cm
    }

    fn service(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.metadata(self.coordinator_name(), "coordinator"),
            "spec": {
                "type": "ClusterIP",
                "selector": self.selector("coordinator"),
                "ports": [{
                    "name": "control",
                    "port": self.port,
                    "targetPort": "control",
                    "protocol": "TCP",
                }],
            },
        })
    }

    /// Volumes both kinds of pod mount: the token (readable by the image's
    /// group only) and a writable /tmp under a read-only root.
    fn common_volumes(&self) -> Vec<Value> {
        vec![
            json!({
                "name": "token",
                "secret": {
                    "secretName": self.token_name(),
                    "items": [{"key": "token", "path": "token"}],
                    "defaultMode": 0o440,
                },
            }),
            json!({"name": "tmp", "emptyDir": {}}),
        ]
    }

    fn common_mounts() -> Vec<Value> {
        vec![
            json!({"name": "token", "mountPath": TOKEN_DIR, "readOnly": true}),
            json!({"name": "tmp", "mountPath": "/tmp"}),
        ]
    }

    /// Pod-level settings both pods share: non-root, nothing from the API
    /// server mounted (leakbench never talks to it), never restarted (a
    /// restarted agent would change the sessions of a cycle mid-run).
    fn pod_spec(&self, mut spec: serde_json::Map<String, Value>) -> Value {
        spec.insert("restartPolicy".into(), "Never".into());
        spec.insert("automountServiceAccountToken".into(), false.into());
        spec.insert("enableServiceLinks".into(), false.into());
        spec.insert(
            "securityContext".into(),
            json!({
                "runAsNonRoot": true,
                "runAsUser": UID,
                "runAsGroup": UID,
                "fsGroup": UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            }),
        );
        Value::Object(spec)
    }

    fn container_security() -> Value {
        json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        })
    }

    fn coordinator_job(&self) -> Value {
        let mut volumes = self.common_volumes();
        let mut items = Vec::new();
        for f in &self.files {
            items.push(json!({"key": f.key, "path": f.path}));
        }
        volumes.push(json!({
            "name": "scenario",
            "configMap": {"name": self.scenario_name(), "items": items},
        }));
        volumes.push(match &self.results_claim {
            Some(claim) => {
                json!({"name": "results", "persistentVolumeClaim": {"claimName": claim}})
            }
            None => json!({"name": "results", "emptyDir": {}}),
        });
        let mut mounts = Self::common_mounts();
        mounts.push(json!({"name": "scenario", "mountPath": SCENARIO_DIR, "readOnly": true}));
        mounts.push(json!({"name": "results", "mountPath": RESULTS_DIR}));
        let env: Vec<Value> = self
            .env
            .iter()
            .map(|(name, _)| {
                json!({
                    "name": name,
                    "valueFrom": {"secretKeyRef": {"name": self.token_name(), "key": env_key(name)}},
                })
            })
            .collect();
        let mut command = vec![
            INIT.to_owned(),
            "--".to_owned(),
            "bash".to_owned(),
            "-c".to_owned(),
            COORDINATOR_SCRIPT.to_owned(),
            "leakbench-coordinator".to_owned(),
            self.keep.as_secs().to_string(),
        ];
        command.extend(self.coordinator_args());
        let container = json!({
            "name": "coordinator",
            "image": self.image,
            "command": command,
            "env": env,
            "ports": [{"name": "control", "containerPort": self.port, "protocol": "TCP"}],
            // The Service sends agents here only once the port is open.
            "readinessProbe": {
                "tcpSocket": {"port": "control"},
                "periodSeconds": 2,
                "failureThreshold": 1,
            },
            "resources": {
                "requests": {"cpu": "500m", "memory": "256Mi"},
                // Goroutine dumps of a big target are tens of MB each.
                "limits": {"memory": "2Gi"},
            },
            "volumeMounts": mounts,
            "securityContext": Self::container_security(),
        });
        let mut spec = serde_json::Map::new();
        spec.insert("containers".into(), json!([container]));
        spec.insert("volumes".into(), volumes.into());
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": self.metadata(self.coordinator_name(), "coordinator"),
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": self.deadline.as_secs(),
                "template": {
                    "metadata": {"labels": self.labels("coordinator")},
                    "spec": self.pod_spec(spec),
                },
            },
        })
    }

    fn agents_job(&self) -> Value {
        let wait = json!({
            "name": "wait-for-coordinator",
            "image": self.image,
            "command": [
                "timeout", AGENT_WAIT.as_secs().to_string(), "bash", "-c", WAIT_SCRIPT,
                "wait-for-coordinator",
                format!("{}.{}.svc", self.coordinator_name(), self.namespace),
                self.port.to_string(),
            ],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
            "securityContext": Self::container_security(),
        });
        let agent = json!({
            "name": "agent",
            "image": self.image,
            "command": [INIT, "--", BINARY],
            "args": self.agent_args(),
            "resources": {
                // No CPU limit: throttling would show as target latency.
                "requests": {"cpu": "1", "memory": "512Mi"},
                "limits": {"memory": "2Gi"},
            },
            "volumeMounts": Self::common_mounts(),
            "securityContext": Self::container_security(),
        });
        let mut spec = serde_json::Map::new();
        spec.insert("initContainers".into(), json!([wait]));
        spec.insert("containers".into(), json!([agent]));
        spec.insert("volumes".into(), self.common_volumes().into());
        // One agent per node where the cluster has the nodes: the point of
        // many agents is many source addresses and many machines' ports.
        spec.insert(
            "topologySpreadConstraints".into(),
            json!([{
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": self.selector("agent")},
            }]),
        );
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": self.metadata(self.agents_name(), "agent"),
            "spec": {
                "completionMode": "Indexed",
                "completions": self.agents,
                "parallelism": self.agents,
                "backoffLimit": 0,
                "activeDeadlineSeconds": self.deadline.as_secs(),
                "template": {
                    "metadata": {"labels": self.labels("agent")},
                    "spec": self.pod_spec(spec),
                },
            },
        })
    }

    /// Every object, in the order `kubectl apply` should create them: what
    /// pods mount first, then the Service, then the pods.
    pub fn objects(&self) -> Vec<Value> {
        vec![
            self.secret(),
            self.config_map(),
            self.service(),
            self.coordinator_job(),
            self.agents_job(),
        ]
    }

    /// The objects as one YAML stream, after a comment that says how to
    /// use it. The token appears only inside the Secret.
    pub fn yaml(&self) -> Result<String> {
        let mut out = self.header();
        for object in self.objects() {
            out.push_str("---\n");
            out.push_str(&serde_yaml_ng::to_string(&object).context("writing YAML")?);
        }
        Ok(out)
    }

    fn header(&self) -> String {
        let ns = &self.namespace;
        let coord = self.coordinator_name();
        let name = &self.name;
        format!(
            "# leakbench {version}: {agents} agent pod(s) and a coordinator in namespace {ns}.\n\
             # Apply:    leakbench kube ... | kubectl apply -f -\n\
             # Watch:    kubectl -n {ns} logs -f job/{coord}\n\
             # Results:  kubectl -n {ns} cp $(kubectl -n {ns} get pod -l \
             app.kubernetes.io/instance={name},app.kubernetes.io/component=coordinator -o name | \
             cut -d/ -f2):{RESULTS_DIR} ./results\n\
             #           (the pod keeps them for {keep} s after the run; then\n\
             #           kubectl -n {ns} exec job/{coord} -- touch {FETCHED_MARKER} ends it)\n\
             # Clean up: kubectl -n {ns} delete job,service,secret,configmap -l app.kubernetes.io/instance={name}\n\
             # Each agent holds its share of load.concurrency open at once: the pods' open-file\n\
             # limit (the container runtime's RLIMIT_NOFILE) must exceed it; agents check and refuse.\n",
            version = env!("CARGO_PKG_VERSION"),
            agents = self.agents,
            keep = self.keep.as_secs(),
        )
    }
}

/// The Secret key an environment variable travels under (Secret keys
/// allow `.`, variable names do not, so no two variables collide).
fn env_key(name: &str) -> String {
    format!("env.{name}")
}

/// The coordinator container's shell: clears a marker a previous run left on
/// a reused claim, runs `leakbench run` (all arguments after the keep
/// window), forwards SIGTERM to it, then keeps the pod, and
/// so its results folder, up for `kubectl cp` until the keep window ends or
/// the marker file appears, and exits with leakbench's code, so the Job's
/// status is the verdict (Complete only on a pass).
pub const COORDINATOR_SCRIPT: &str = r#"keep="$1"; shift
rm -f /results/.fetched
"$@" & child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"; code=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
trap - TERM INT
echo "leakbench exited $code; results stay in /results for ${keep}s or until /results/.fetched exists" >&2
end=$((SECONDS + keep))
while [ "$SECONDS" -lt "$end" ] && [ ! -e /results/.fetched ]; do sleep 1; done
exit "$code""#;

/// An agent pod's init container: polls the coordinator's Service until it
/// accepts a TCP connection (bounded by `timeout`), so agents do not race a
/// coordinator that is still being scheduled or pulled.
pub const WAIT_SCRIPT: &str = r#"until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do sleep 1; done"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            name: "lb".into(),
            namespace: "perf".into(),
            image: "registry.example/leakbench:1".into(),
            agents: 3,
            port: 7070,
            deadline: Duration::from_secs(3600),
            keep: Duration::from_secs(600),
            agent_timeout: Duration::from_secs(300),
            token: "s3cret-token-value".into(),
            scenario: "chat.toml".into(),
            files: vec![
                ConfigFile {
                    key: "chat.toml".into(),
                    path: "chat.toml".into(),
                    bytes: b"name = 'x'".to_vec(),
                },
                ConfigFile {
                    key: "f1-blob.bin".into(),
                    path: "payloads/blob.bin".into(),
                    bytes: vec![0xff, 0x00, 0x80],
                },
            ],
            env: vec![("API_KEY".into(), "k".into())],
            allow_remote: vec!["chat.perf.svc".into()],
            results_claim: None,
        }
    }

    #[test]
    fn the_token_appears_only_in_the_secret() {
        let p = plan();
        let objects = p.objects();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&p.token);
        for o in &objects {
            let text = o.to_string();
            assert!(!text.contains(&p.token), "{text}");
            assert_eq!(text.contains(&encoded), o["kind"] == "Secret", "{text}");
        }
        let yaml = p.yaml().unwrap();
        assert!(!yaml.contains(&p.token));
    }

    #[test]
    fn binary_payloads_go_in_binary_data_and_keep_their_path() {
        let cm = &plan().objects()[1];
        assert_eq!(cm["data"]["chat.toml"], "name = 'x'");
        assert_eq!(cm["binaryData"]["f1-blob.bin"], "/wCA");
        let job = &plan().objects()[3];
        let items = &job["spec"]["template"]["spec"]["volumes"][2]["configMap"]["items"];
        assert_eq!(items[1]["path"], "payloads/blob.bin");
    }

    #[test]
    fn scenario_variables_reach_the_coordinator_through_the_secret() {
        let objects = plan().objects();
        assert_eq!(objects[0]["data"]["env.API_KEY"], "aw==");
        let env = &objects[3]["spec"]["template"]["spec"]["containers"][0]["env"][0];
        assert_eq!(env["name"], "API_KEY");
        assert_eq!(env["valueFrom"]["secretKeyRef"]["key"], "env.API_KEY");
    }

    #[test]
    fn a_claim_replaces_the_empty_dir() {
        let mut p = plan();
        p.results_claim = Some("leakbench-results".into());
        let job = &p.objects()[3];
        let results = &job["spec"]["template"]["spec"]["volumes"][3];
        assert_eq!(
            results["persistentVolumeClaim"]["claimName"],
            "leakbench-results"
        );
    }
}
