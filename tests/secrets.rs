//! Secrets stay out of every output: a run whose scenario carries a token
//! (from the environment, via `${VAR}`) in an Authorization header, a
//! cookie, a query parameter marked secret and the target's command line,
//! against a real Go target that logs the token, leaves no trace of it in
//! stdout, stderr or any file in --out.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The token: distinctive, so any trace of it is found.
fn token() -> String {
    format!("tok-{}-Zq7xV9", std::process::id())
}

fn run(scenario: &str, token: &str) -> (Option<i32>, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, scenario).expect("write scenario");
    let out = dir.path().join("out");
    // The run is bounded by the scenario's own timeouts (all short here).
    let output = Command::new(env!("CARGO_BIN_EXE_leakbench"))
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .env("LEAKBENCH_SECRET_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .expect("run leakbench");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        dir,
    )
}

/// Every file under `dir`, recursively (the scenario file itself excluded:
/// it holds `${LEAKBENCH_SECRET_TOKEN}`, never the value).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn token_leaves_no_trace_in_any_output() {
    let _one_at_a_time = common::serial();
    let token = token();
    let port = common::free_port();
    let program = common::go_targets().join("careless");
    let scenario = format!(
        "[target]\n\
         url = \"http://127.0.0.1:{port}/hello?token=${{LEAKBENCH_SECRET_TOKEN}}&room=lobby\"\n\
         command = [{:?}, \"-addr\", \"127.0.0.1:{port}\", \"-token\", \"${{LEAKBENCH_SECRET_TOKEN}}\"]\n\
         [load]\nsessions = 5\nwarmup = 1\ncycles = 2\n\
         headers = {{ Authorization = \"Bearer ${{LEAKBENCH_SECRET_TOKEN}}\", Cookie = \"sid=${{LEAKBENCH_SECRET_TOKEN}}\" }}\n\
         [settle]\ntimeout = \"5s\"\n\
         [secrets]\nquery = [\"token\"]\n",
        program.to_string_lossy()
    );
    let (code, stdout, stderr, dir) = run(&scenario, &token);
    let context = format!("exit {code:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(matches!(code, Some(0 | 1 | 3)), "a verdict\n{context}");
    assert!(!stdout.contains(&token), "token on stdout\n{context}");
    assert!(!stderr.contains(&token), "token on stderr\n{context}");

    let out = dir.path().join("out");
    let written = files(&out);
    assert!(
        written.iter().any(|p| p.ends_with("report.json")),
        "{written:?}"
    );
    for file in &written {
        let bytes = std::fs::read(file).expect("read output file");
        assert!(
            !contains(&bytes, token.as_bytes()),
            "token in {}\n{context}",
            file.display()
        );
    }
    // It was there to hide: the target logged it, the report has the URL.
    let log = std::fs::read_to_string(out.join("target.log")).expect("target.log");
    assert!(log.contains("with token \"***\""), "{log}");
    let report = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    assert!(report.contains("token=***&room=lobby"), "{report}");
    let report: serde_json::Value = serde_json::from_str(&report).expect("report.json is JSON");
    assert_eq!(report["status"], "complete", "{report:#}");
    assert!(
        report["phases"].as_array().is_some_and(|p| p.len() == 3),
        "{report:#}"
    );
    assert!(stderr.contains("-token ***"), "{context}");
}

#[test]
fn token_in_url_userinfo_stays_out_of_the_error_line() {
    let token = token();
    let port = common::free_port();
    // Nothing listens: the run fails naming the pprof URL, which is derived
    // from the target URL, userinfo included.
    let scenario = format!(
        "[target]\nurl = \"http://bot:${{LEAKBENCH_SECRET_TOKEN}}@127.0.0.1:{port}/\"\n\
         [load]\nsessions = 1\n"
    );
    let (code, stdout, stderr, dir) = run(&scenario, &token);
    let context = format!("exit {code:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert_eq!(code, Some(2), "{context}");
    assert!(stderr.contains("***@127.0.0.1"), "{context}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains(&token), "{context}");
    }
    for file in files(&dir.path().join("out")) {
        let bytes = std::fs::read(&file).expect("read output file");
        assert!(!contains(&bytes, token.as_bytes()), "{}", file.display());
    }
}
