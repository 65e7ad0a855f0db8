//! The CI files people copy from examples/ci, checked the way their CI
//! services read them and run for real.
//!
//! - actionlint lints the GitHub Actions workflow and runs shellcheck on
//!   its `run:` scripts. check-jsonschema checks the workflow against the
//!   GitHub workflow schema and the GitLab file against GitLab's CI schema
//!   (both schemas ship with it: one test runs it with no network at all).
//! - Each linter is also shown broken copies it must reject. A linter that
//!   checks nothing fails these tests.
//! - Every leakbench command line in the examples and in docs/ci.md uses a
//!   subcommand and flags that the real binary's `--help` lists.
//! - The GitHub gate step gives every exit code the outcome its comments
//!   promise.
//! - The leakbench steps of both files run for real against the chat hub
//!   (leaky for GitHub, fixed for GitLab) and leave behind the files that
//!   their artifacts and test reports name.
//!
//! The linters come from `bash .ci/install`. When one is missing the test
//! fails and names that command: it never skips.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_yaml_ng::Value;

/// Longest a step script that runs leakbench may take: one run of the
/// four-cycle chat hub scenario, as tests/common bounds it.
const STEP_DEADLINE: Duration = Duration::from_secs(600);

/// How often a running step is checked for having exited.
const STEP_POLL: Duration = Duration::from_millis(50);

/// Longest a linter may take on one file.
const LINT_DEADLINE: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn github() -> String {
    read("examples/ci/github-actions.yml")
}

fn gitlab() -> String {
    read("examples/ci/gitlab-ci.yml")
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("examples/ci file is YAML")
}

// ---- finding the linters ----------------------------------------------------

const INSTALL: &str = "install the CI examples' linters with: bash .ci/install";

/// `program` on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Where `python3 -m pip install` put console scripts. .ci/install installs
/// into the first python3 on PATH, and that folder is not always on PATH
/// too (a pyenv python without its shims, for example).
fn python_scripts() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(dir.trim()))
        .filter(|d| d.is_dir())
}

/// A linter installed by pip: found on PATH, else in python3's scripts
/// folder. Panics and names `bash .ci/install` when it is in neither place.
fn pip_tool(program: &str) -> PathBuf {
    on_path(program)
        .or_else(|| {
            python_scripts()
                .map(|d| d.join(program))
                .filter(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("`{program}` is neither on PATH nor in python3's scripts folder; {INSTALL}")
        })
}

fn actionlint() -> &'static Path {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| pip_tool("actionlint"))
}

fn check_jsonschema() -> &'static Path {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| pip_tool("check-jsonschema"))
}

/// shellcheck, which actionlint runs on the `run:` scripts. It is required:
/// without it actionlint skips those scripts without saying so.
fn shellcheck() -> &'static Path {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| {
        on_path("shellcheck")
            .unwrap_or_else(|| panic!("`shellcheck` is not on PATH (apt: shellcheck); {INSTALL}"))
    })
}

// ---- running things, bounded --------------------------------------------------

/// Waits for `child` (started with piped stdout and stderr) for at most
/// `deadline`, killing it and panicking with what it printed past that.
/// Returns its exit code and its stdout followed by its stderr.
fn wait_bounded(mut child: Child, deadline: Duration, what: &str) -> (Option<i32>, String) {
    let stdout = common::drain(child.stdout.take().expect("piped stdout"));
    let stderr = common::drain(child.stderr.take().expect("piped stderr"));
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("wait for a child") {
            Some(status) => break status,
            None if started.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what}: still running after {deadline:?}, killed\n{}{}",
                    common::collect(stdout),
                    common::collect(stderr)
                );
            }
            None => std::thread::sleep(STEP_POLL),
        }
    };
    let mut text = common::collect(stdout);
    text.push_str(&common::collect(stderr));
    (status.code(), text)
}

/// Lints `text` with `linter` and its `args`, from a scratch folder so that
/// no configuration of this repository is picked up. Returns the exit
/// code and what the linter printed.
fn lint(linter: &Path, args: &[&str], name: &str, text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(name);
    std::fs::write(&file, text).expect("write the file to lint");
    let child = Command::new(linter)
        .args(args)
        .arg(&file)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL}", linter.display()));
    wait_bounded(
        child,
        LINT_DEADLINE,
        &format!("{} {name}", linter.display()),
    )
}

fn run_actionlint(text: &str) -> (Option<i32>, String) {
    let shellcheck = format!("-shellcheck={}", shellcheck().display());
    lint(
        actionlint(),
        &["-no-color", "-oneline", &shellcheck, "-pyflakes="],
        "leakbench.yml",
        text,
    )
}

fn run_schema(schema: &str, text: &str) -> (Option<i32>, String) {
    lint(
        check_jsonschema(),
        &["--builtin-schema", schema],
        "ci.yml",
        text,
    )
}

fn gitlab_schema(text: &str) -> (Option<i32>, String) {
    run_schema("vendor.gitlab-ci", text)
}

/// `original` with the first `from` replaced by `to`. Panics if `from`
/// is not there, so that a broken copy never equals the original.
fn broken(original: &str, from: &str, to: &str) -> String {
    assert!(
        original.contains(from),
        "the example no longer contains {from:?}: update this broken copy"
    );
    original.replacen(from, to, 1)
}

// ---- the linters ----------------------------------------------------------

#[test]
fn github_workflow_lints_clean_with_shellcheck() {
    let (code, out) = run_actionlint(&github());
    assert_eq!(code, Some(0), "actionlint rejects the workflow:\n{out}");
    let (code, out) = run_schema("vendor.github-workflows", &github());
    assert_eq!(
        code,
        Some(0),
        "the GitHub workflow schema rejects it:\n{out}"
    );
}

#[test]
fn actionlint_rejects_broken_copies_of_the_workflow() {
    let original = github();
    let cases = [
        // A misspelt job key.
        (
            broken(&original, "timeout-minutes: 30", "timeout-minute: 30"),
            "unexpected key \"timeout-minute\"",
        ),
        // A `${{ }}` expression that does not parse.
        (
            broken(
                &original,
                "${{ steps.run.outputs.code }}",
                "${{ steps.run.outputs.code) }}",
            ),
            "[expression]",
        ),
        // An expression that parses but names a step that does not exist.
        (
            broken(
                &original,
                "${{ steps.run.outputs.code }}",
                "${{ steps.rnu.outputs.code }}",
            ),
            "property \"rnu\" is not defined",
        ),
        // An unquoted variable in a `run:` script: only shellcheck sees it.
        (
            broken(
                &original,
                "echo \"code=$code\" >> \"$GITHUB_OUTPUT\"",
                "echo \"code=$code\" >> $GITHUB_OUTPUT",
            ),
            "SC2086",
        ),
    ];
    for (copy, expected) in cases {
        let (code, out) = run_actionlint(&copy);
        assert_eq!(code, Some(1), "actionlint passed a broken copy:\n{out}");
        assert!(
            out.contains(expected),
            "actionlint did not report {expected:?}:\n{out}"
        );
    }
}

#[test]
fn gitlab_job_matches_gitlabs_schema() {
    let (code, out) = gitlab_schema(&gitlab());
    assert_eq!(code, Some(0), "GitLab's CI schema rejects the file:\n{out}");
}

/// The GitLab schema ships inside check-jsonschema: with no network at all
/// (a fresh network namespace, loopback down) it still passes the file and
/// still rejects a broken copy, so the check never depends on a download.
#[test]
fn the_gitlab_schema_check_needs_no_network() {
    let offline = Command::new("unshare")
        .args(["--net", "true"])
        .stdin(Stdio::null())
        .output();
    if !offline.is_ok_and(|o| o.status.success()) {
        println!("skipped: `unshare --net` is not permitted for this user (it needs root)");
        return;
    }
    let linter = check_jsonschema().display().to_string();
    let args = ["--net", &linter, "--builtin-schema", "vendor.gitlab-ci"];
    let (code, out) = lint(Path::new("unshare"), &args, "ci.yml", &gitlab());
    assert_eq!(code, Some(0), "offline, the schema check fails:\n{out}");
    let copy = broken(&gitlab(), "  after_script:", "  afterscript:");
    let (code, out) = lint(Path::new("unshare"), &args, "ci.yml", &copy);
    assert_eq!(code, Some(1), "offline, a broken copy passes:\n{out}");
    assert!(out.contains("'afterscript' was unexpected"), "{out}");
}

#[test]
fn check_jsonschema_rejects_broken_copies_of_the_gitlab_job() {
    let original = gitlab();
    let cases = [
        // A misspelt job key.
        (
            broken(&original, "  after_script:", "  afterscript:"),
            "'afterscript' was unexpected",
        ),
        // A misspelt key inside allow_failure.
        (
            broken(&original, "exit_codes: [3]", "exit_code: [3]"),
            "allow_failure",
        ),
        // A value outside an enum.
        (
            broken(&original, "when: always", "when: allways"),
            "allways",
        ),
    ];
    for (copy, expected) in cases {
        let (code, out) = gitlab_schema(&copy);
        assert_eq!(
            code,
            Some(1),
            "check-jsonschema passed a broken copy:\n{out}"
        );
        assert!(
            out.contains(expected),
            "check-jsonschema did not report {expected:?}:\n{out}"
        );
    }
}

// ---- leakbench command lines ------------------------------------------------

/// Shell code in a CI file: every string under a `run`, `script`,
/// `before_script` or `after_script` key, at any depth.
fn yaml_scripts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                let script_key = matches!(
                    k.as_str(),
                    Some("run" | "script" | "before_script" | "after_script")
                );
                match v {
                    Value::String(s) if script_key => out.push(s.clone()),
                    Value::Sequence(lines) if script_key => {
                        out.extend(lines.iter().filter_map(|l| l.as_str().map(str::to_owned)))
                    }
                    _ => yaml_scripts(v, out),
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| yaml_scripts(i, out)),
        _ => {}
    }
}

/// Code in Markdown: fenced blocks and inline code spans.
fn markdown_code(text: &str) -> Vec<String> {
    let span = Regex::new("`([^`]+)`").unwrap();
    let mut code = Vec::new();
    let mut fence: Option<String> = None;
    for line in text.lines() {
        match (&mut fence, line.trim_start().starts_with("```")) {
            (None, true) => fence = Some(String::new()),
            (Some(block), true) => {
                code.push(std::mem::take(block));
                fence = None;
            }
            (Some(block), false) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, false) => {
                code.extend(span.captures_iter(line).map(|c| c[1].to_owned()));
            }
        }
    }
    code
}

/// One `leakbench [SUBCOMMAND] ...` in shell code: the subcommand (empty
/// for `leakbench --version` and the like) and the flags given to it.
#[derive(Debug, PartialEq)]
struct Invocation {
    subcommand: String,
    flags: Vec<String>,
    line: String,
}

/// Every leakbench command line in `code`, by name or by path
/// (`.leakbench/bin/leakbench`). Continuation lines are joined, and a
/// command ends at a shell operator, a redirection or a comment.
fn invocations(code: &str) -> Vec<Invocation> {
    let joined = code.replace("\\\n", " ");
    let start = Regex::new(r"(?:^|[\s;&|(/])leakbench[ \t]+([^\s;&|<>()`]+)(.*)").unwrap();
    let mut found = Vec::new();
    for line in joined.lines() {
        let Some(c) = start.captures(line) else {
            continue;
        };
        let (subcommand, tail) = if c[1].starts_with('-') {
            (String::new(), format!("{} {}", &c[1], &c[2]))
        } else {
            (c[1].to_owned(), c[2].to_owned())
        };
        let mut flags = Vec::new();
        for token in tail.split_whitespace() {
            let ends = ["||", "&&", "|", ";", "#"].contains(&token)
                || token.starts_with('>')
                || token.starts_with('<')
                || token.starts_with("2>");
            if ends {
                break;
            }
            let token = token.trim_matches(|ch| matches!(ch, '[' | ']' | '\'' | '"'));
            if token.starts_with('-') && token != "-" {
                flags.push(token.split('=').next().unwrap_or(token).to_owned());
            }
        }
        found.push(Invocation {
            subcommand,
            flags,
            line: line.trim().to_owned(),
        });
    }
    found
}

fn leakbench_help(args: &[&str]) -> Option<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_leakbench"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run leakbench --help");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The subcommands `leakbench --help` lists.
fn subcommands() -> Vec<String> {
    let help = leakbench_help(&["--help"]).expect("leakbench --help");
    let section = help
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .expect("a Commands: section in leakbench --help");
    section
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The flags `leakbench SUBCOMMAND --help` lists, long and short; those of
/// `leakbench --help` for an empty subcommand.
fn flags_of(subcommand: &str) -> Vec<String> {
    let args: &[&str] = if subcommand.is_empty() {
        &["--help"]
    } else {
        &[subcommand, "--help"]
    };
    let help =
        leakbench_help(args).unwrap_or_else(|| panic!("leakbench {subcommand} --help failed"));
    let flag = Regex::new(r"(?m)^\s+(?:(-[A-Za-z0-9]), )?(--[a-z0-9][a-z0-9-]*)").unwrap();
    flag.captures_iter(&help)
        .flat_map(|c| [c.get(1), c.get(2)])
        .flatten()
        .map(|m| m.as_str().to_owned())
        .collect()
}

/// Checks one invocation against the real binary's help: an error naming
/// the subcommand or flag it does not know.
fn check(inv: &Invocation, known: &[String]) -> Result<(), String> {
    if !inv.subcommand.is_empty() && !known.contains(&inv.subcommand) {
        return Err(format!(
            "`{}`: leakbench has no subcommand `{}` (it has {})",
            inv.line,
            inv.subcommand,
            known.join(", ")
        ));
    }
    let accepted = flags_of(&inv.subcommand);
    match inv.flags.iter().find(|f| !accepted.contains(f)) {
        Some(flag) => Err(format!(
            "`{}`: leakbench {}has no flag {flag} (it has {})",
            inv.line,
            if inv.subcommand.is_empty() {
                String::new()
            } else {
                format!("{} ", inv.subcommand)
            },
            accepted.join(" ")
        )),
        None => Ok(()),
    }
}

#[test]
fn every_leakbench_command_line_uses_flags_the_binary_accepts() {
    let mut sources: Vec<(&str, Vec<String>)> = Vec::new();
    for file in [
        "examples/ci/github-actions.yml",
        "examples/ci/gitlab-ci.yml",
    ] {
        let mut scripts = Vec::new();
        yaml_scripts(&yaml(&read(file)), &mut scripts);
        sources.push((file, scripts));
    }
    for file in ["examples/ci/README.md", "docs/ci.md"] {
        sources.push((file, markdown_code(&read(file))));
    }

    let known = subcommands();
    let mut seen = Vec::new();
    for (file, code) in &sources {
        for inv in code.iter().flat_map(|c| invocations(c)) {
            if let Err(e) = check(&inv, &known) {
                panic!("{file}: {e}");
            }
            for flag in &inv.flags {
                seen.push(format!("{file}: {} {flag}", inv.subcommand).replace(":  ", ": "));
            }
            if !inv.subcommand.is_empty() {
                seen.push(format!("{file}: {}", inv.subcommand));
            }
        }
    }
    // The extraction finds what the files are known to hold, so a reader
    // that finds nothing cannot pass.
    for expected in [
        "examples/ci/github-actions.yml: run --out",
        "examples/ci/github-actions.yml: compare --markdown",
        "examples/ci/gitlab-ci.yml: run --out",
        "examples/ci/gitlab-ci.yml: --version",
        "docs/ci.md: run --bisect",
        "docs/ci.md: compare",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "no `{expected}` found; found:\n{}",
            seen.join("\n")
        );
    }
}

#[test]
fn the_command_line_check_rejects_unknown_flags_and_subcommands() {
    let known = subcommands();
    let script = "code=0\nleakbench run s.toml --out o \\\n  --no-such-flag || code=$?\n";
    let invs = invocations(script);
    assert_eq!(invs.len(), 1, "{invs:?}");
    assert_eq!(invs[0].flags, ["--out", "--no-such-flag"]);
    let err = check(&invs[0], &known).unwrap_err();
    assert!(err.contains("no flag --no-such-flag"), "{err}");

    let err = check(&invocations("leakbench rnu s.toml")[0], &known).unwrap_err();
    assert!(err.contains("no subcommand `rnu`"), "{err}");

    // Flags before any subcommand are leakbench's own.
    let invs = invocations("  .leakbench/bin/leakbench --version");
    check(&invs[0], &known).expect("leakbench --version");
    let err = check(&invocations("leakbench --verison")[0], &known).unwrap_err();
    assert!(err.contains("leakbench has no flag --verison"), "{err}");

    // A redirection ends the command: its target is not a flag.
    let invs = invocations("leakbench compare a b --markdown > --x.md # --y");
    assert_eq!(invs[0].flags, ["--markdown"]);
    check(&invs[0], &known).expect("compare --markdown");
}

// ---- running the GitHub steps ---------------------------------------------

/// The workflow's steps of its one job.
fn github_steps(workflow: &Value) -> &Vec<Value> {
    let jobs = workflow["jobs"].as_mapping().expect("jobs");
    assert_eq!(jobs.len(), 1, "the example has one job");
    let (_, job) = jobs.iter().next().unwrap();
    job["steps"].as_sequence().expect("steps")
}

fn step<'a>(workflow: &'a Value, name: &str) -> &'a Value {
    github_steps(workflow)
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no step named {name:?}"))
}

/// The workflow-level `env:`.
fn workflow_env(workflow: &Value) -> BTreeMap<String, String> {
    workflow["env"]
        .as_mapping()
        .expect("env")
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => serde_yaml_ng::to_string(other).unwrap().trim().to_owned(),
            };
            (k.as_str().unwrap().to_owned(), v)
        })
        .collect()
}

/// A step's `env:`, its `${{ steps.ID.outputs.KEY }}` expressions taken
/// from `outputs`. Any other expression panics: the test cannot evaluate
/// it, and a step that needs one is not run here.
fn step_env(step: &Value, outputs: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let expr = Regex::new(r"^\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}$").unwrap();
    let Some(env) = step["env"].as_mapping() else {
        return BTreeMap::new();
    };
    env.iter()
        .map(|(k, v)| {
            let v = v.as_str().expect("a string env value");
            let value = match expr.captures(v) {
                Some(c) => outputs
                    .get(&format!("{}.{}", &c[1], &c[2]))
                    .cloned()
                    .unwrap_or_default(),
                None if v.contains("${{") => panic!("cannot evaluate {v} here"),
                None => v.to_owned(),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect()
}

/// Runs `script` as GitHub runs a `run:` step on Linux (`bash -e`) in
/// `dir`, with `env` added, bounded by [`STEP_DEADLINE`].
fn bash(
    script: &str,
    dir: &Path,
    env: &BTreeMap<String, String>,
    what: &str,
) -> (Option<i32>, String) {
    let file = dir.join(".step.sh");
    std::fs::write(&file, script).expect("write the step script");
    let child = Command::new("bash")
        .args(["--noprofile", "--norc", "-e"])
        .arg(&file)
        .current_dir(dir)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bash");
    wait_bounded(child, STEP_DEADLINE, what)
}

/// Reads the `key=value` lines a step appended to `$GITHUB_OUTPUT`.
fn read_outputs(file: &Path, id: &str, into: &mut BTreeMap<String, String>) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            into.insert(format!("{id}.{k}"), v.to_owned());
        }
    }
    std::fs::write(file, "").expect("clear GITHUB_OUTPUT");
}

#[test]
fn github_gate_gives_each_exit_code_its_documented_outcome() {
    let workflow = yaml(&github());
    let env = workflow_env(&workflow);
    assert_eq!(
        env.get("LEAKBENCH_INCONCLUSIVE").map(String::as_str),
        Some("fail"),
        "the workflow's default for inconclusive is fail"
    );
    let gate = step(&workflow, "Gate on the verdict");
    assert_eq!(
        gate["if"].as_str(),
        Some("always()"),
        "the gate always runs"
    );
    let script = gate["run"].as_str().expect("the gate's script");
    let dir = tempfile::tempdir().expect("tempdir");

    // (leakbench's exit code, compare's, LEAKBENCH_INCONCLUSIVE) -> the
    // step's exit code and a word of what it says.
    let cases = [
        ("0", "", "fail", 0, "pass"),
        ("1", "", "fail", 1, "leak"),
        ("1", "", "pass", 1, "leak"),
        ("2", "", "pass", 1, "exit 2"),
        ("3", "", "fail", 1, "::error title=leakbench::inconclusive"),
        (
            "3",
            "",
            "pass",
            0,
            "::warning title=leakbench::inconclusive",
        ),
        ("3", "", "maybe", 1, "LEAKBENCH_INCONCLUSIVE is 'maybe'"),
        ("0", "", "Fail", 1, "set it to fail or pass"),
        ("130", "", "pass", 1, "exit 130"),
        ("", "", "fail", 1, "did not run"),
        ("0", "0", "fail", 0, "pass"),
        ("0", "1", "fail", 1, "worse than"),
        (
            "0",
            "2",
            "fail",
            0,
            "::warning title=leakbench::not compared",
        ),
        ("3", "1", "pass", 1, "worse than"),
    ];
    for (code, compare, inconclusive, want, says) in cases {
        let mut vars = env.clone();
        vars.insert("LEAKBENCH_INCONCLUSIVE".into(), inconclusive.into());
        let outputs = BTreeMap::from([
            ("run.code".to_owned(), code.to_owned()),
            ("compare.code".to_owned(), compare.to_owned()),
        ]);
        vars.extend(step_env(gate, &outputs));
        let (got, out) = bash(script, dir.path(), &vars, "the gate step");
        let case = format!("leakbench {code:?}, compare {compare:?}, {inconclusive}");
        assert_eq!(got, Some(want), "{case}: gate exited {got:?}:\n{out}");
        assert!(out.contains(says), "{case}: no {says:?} in:\n{out}");
    }
}

/// The files a list of artifact paths (one a line, `*` within a file name)
/// matches under `dir`; panics naming a path that matches nothing.
fn assert_paths_exist(dir: &Path, paths: &str) {
    for pattern in paths.lines().map(str::trim).filter(|p| !p.is_empty()) {
        let path = dir.join(pattern);
        let found = match pattern.split_once('*') {
            None => path.exists(),
            Some((head, tail)) => {
                let (folder, prefix) = head.rsplit_once('/').unwrap_or((".", head));
                std::fs::read_dir(dir.join(folder))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.starts_with(prefix) && name.ends_with(tail)
                    })
            }
        };
        assert!(
            found,
            "artifact path {pattern} matches nothing in {}",
            dir.display()
        );
    }
}

/// PATH with the leakbench under test first, as the install step leaves it.
fn path_with_leakbench() -> String {
    let bin = Path::new(common::leakbench()).parent().expect("bin folder");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    std::env::join_paths(dirs)
        .expect("PATH")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn github_steps_gate_a_leaking_target_and_leave_what_they_upload() {
    common::go_targets();
    let _alone = common::serial();
    let work = tempfile::tempdir().expect("tempdir");
    let scenario = work.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        common::Case::ws("chathub").toml(common::free_port()),
    )
    .expect("write the scenario");

    let workflow = yaml(&github());
    let mut env = workflow_env(&workflow);
    assert!(env.contains_key("LEAKBENCH_SCENARIO"));
    env.insert("LEAKBENCH_SCENARIO".into(), scenario.display().to_string());
    env.insert("PATH".into(), path_with_leakbench());
    let output = work.path().join("github-output");
    let summary = work.path().join("step-summary");
    env.insert("GITHUB_OUTPUT".into(), output.display().to_string());
    env.insert("GITHUB_STEP_SUMMARY".into(), summary.display().to_string());

    let mut outputs = BTreeMap::new();
    let mut gate = None;
    for name in ["Run the scenario", "Step summary", "Gate on the verdict"] {
        let step = step(&workflow, name);
        let mut vars = env.clone();
        vars.extend(step_env(step, &outputs));
        let script = step["run"].as_str().expect("a run: step");
        let (code, out) = bash(script, work.path(), &vars, name);
        if let Some(id) = step["id"].as_str() {
            read_outputs(&output, id, &mut outputs);
        }
        if name == "Gate on the verdict" {
            gate = Some((code, out));
        } else {
            assert_eq!(code, Some(0), "step {name:?} failed:\n{out}");
        }
    }

    assert_eq!(
        outputs.get("run.code").map(String::as_str),
        Some("1"),
        "the run step keeps leakbench's leak exit code: {outputs:?}"
    );
    let (code, out) = gate.unwrap();
    assert_eq!(code, Some(1), "the gate fails the job on a leak:\n{out}");
    assert!(out.contains("::error title=leakbench::leak"), "{out}");

    let summary_md = std::fs::read_to_string(work.path().join("leakbench-out/summary.md"))
        .expect("leakbench wrote summary.md");
    let step_summary = std::fs::read_to_string(&summary).expect("the step summary");
    assert!(summary_md.contains("## leakbench: "), "{summary_md}");
    assert_eq!(step_summary, summary_md, "the step summary is summary.md");

    let upload = step(&workflow, "Upload the report");
    assert_eq!(upload["if"].as_str(), Some("always()"));
    assert_paths_exist(work.path(), upload["with"]["path"].as_str().expect("path"));
    let junit = step(&workflow, "Test report");
    assert_eq!(junit["if"].as_str(), Some("always()"));
    assert_paths_exist(
        work.path(),
        junit["with"]["report_paths"]
            .as_str()
            .expect("report_paths"),
    );
}

// ---- running the GitLab job ---------------------------------------------------

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .expect("a list of script lines")
        .iter()
        .map(|l| l.as_str().expect("a script line").to_owned())
        .collect()
}

#[test]
fn gitlab_job_passes_a_fixed_target_and_keeps_its_artifacts() {
    common::go_targets();
    let _alone = common::serial();
    let file = yaml(&gitlab());
    let job = &file["leakbench"];
    assert_eq!(
        job["allow_failure"]["exit_codes"],
        serde_yaml_ng::from_str::<Value>("[3]").unwrap(),
        "only inconclusive (3) is allowed to fail"
    );
    let artifacts = &job["artifacts"];
    assert_eq!(artifacts["when"].as_str(), Some("always"));

    // The folder the build job's artifact lands in, holding the leakbench
    // under test.
    let project = tempfile::tempdir().expect("tempdir");
    let bin = project.path().join(".leakbench/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(common::leakbench(), bin.join("leakbench")).unwrap();
    let build = &file["leakbench:build"];
    assert_paths_exist(
        project.path(),
        &strings(&build["artifacts"]["paths"]).join("\n"),
    );

    let scenario = project.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        common::Case::ws("chathub")
            .arg("-fixed")
            .toml(common::free_port()),
    )
    .expect("write the scenario");
    let mut env: BTreeMap<String, String> = file["variables"]
        .as_mapping()
        .expect("variables")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
        .collect();
    assert!(env.contains_key("LEAKBENCH_SCENARIO"));
    env.insert("LEAKBENCH_SCENARIO".into(), scenario.display().to_string());
    env.insert(
        "CI_PROJECT_DIR".into(),
        project.path().display().to_string(),
    );

    // The job's script, less the service's build: the scenario starts a
    // target built by tests/targets instead.
    let (service_build, script): (Vec<String>, Vec<String>) = strings(&job["script"])
        .into_iter()
        .partition(|l| l.starts_with("go build"));
    assert_eq!(service_build.len(), 1, "one service build line");
    let (code, out) = bash(&script.join("\n"), project.path(), &env, "the job's script");
    assert_eq!(code, Some(0), "the job fails on a fixed target:\n{out}");

    let (code, after) = bash(
        &strings(&job["after_script"]).join("\n"),
        project.path(),
        &env,
        "after_script",
    );
    assert_eq!(code, Some(0), "{after}");
    let summary_md = std::fs::read_to_string(project.path().join("leakbench-out/summary.md"))
        .expect("leakbench wrote summary.md");
    assert!(
        after.contains(&summary_md),
        "after_script prints summary.md:\n{after}"
    );

    assert_paths_exist(project.path(), &strings(&artifacts["paths"]).join("\n"));
    let junit = artifacts["reports"]["junit"]
        .as_str()
        .expect("reports: junit");
    assert_paths_exist(project.path(), junit);
    assert!(
        std::fs::read_to_string(project.path().join(junit))
            .unwrap()
            .contains("<testsuite"),
        "junit.xml is a JUnit report"
    );
}
