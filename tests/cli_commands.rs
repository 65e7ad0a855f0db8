//! The helper subcommands through the real binary: `init` output that
//! `validate` accepts, `validate --allow-remote` as `run` takes it, `diff` on the captured fixtures (gzip or not) and on
//! a live target's URL, and `snapshot` of a real Go target (ctxleak, which
//! leaks one `main.watchDeadline` goroutine per request) before and after
//! load, compared with `diff`; completion scripts that a real bash
//! completes with, and man pages.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest a started target may take to answer on its pprof endpoint.
const READY_DEADLINE: Duration = Duration::from_secs(20);

fn leakbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leakbench"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run leakbench")
}

fn ok(args: &[&str]) -> String {
    let out = leakbench(args);
    assert!(
        out.status.success(),
        "leakbench {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The site of the first row under "sites that grew".
fn first_site(text: &str) -> &str {
    text.lines()
        .skip_while(|l| !l.contains("sites that grew"))
        .nth(2)
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no site row in:\n{text}"))
}

#[test]
fn validate_takes_the_same_consent_as_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("staging.toml");
    std::fs::write(
        &path,
        "[target]\nurl = \"ws://198.18.0.7:8080/ws\"\npprof = \"http://198.18.0.7:8080/debug/pprof\"\n\
         [load]\nsessions = 10\n",
    )
    .expect("scenario");
    let file = path.to_str().expect("utf-8 path");
    let refused = leakbench(&["validate", file]);
    assert_eq!(refused.status.code(), Some(common::EXIT_ERROR));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("add `--allow-remote 198.18.0.7` to the command line"),
        "{stderr}"
    );
    let shown = ok(&["validate", file, "--allow-remote", "198.18.0.0/24"]);
    assert!(
        shown.contains("valid") && shown.contains("198.18.0.7"),
        "{shown}"
    );
    let never = leakbench(&["validate", file, "--allow-remote", "169.254.169.254"]);
    assert_eq!(never.status.code(), Some(common::EXIT_ERROR));
}

/// What bash's completion offers for `words` (the last one being typed),
/// with the script `leakbench completions bash` printed loaded. Bash calls
/// a completion function with the command, the word being completed and
/// the word before it, and reads back COMPREPLY.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let n = words.len();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _leakbench leakbench {} {}; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        n - 1,
        quoted[n - 1],
        quoted[n - 2],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{program}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn completions_complete_subcommands_and_flags_in_a_real_bash() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("leakbench.bash");
    std::fs::write(&script, ok(&["completions", "bash"])).unwrap();
    assert_eq!(
        bash_completes(&script, &["leakbench", "comp"]),
        ["compare", "completions"]
    );
    let flags = bash_completes(&script, &["leakbench", "run", "--b"]);
    assert_eq!(flags, ["--bisect"]);
    let flags = bash_completes(&script, &["leakbench", "compare", "--t"]);
    assert_eq!(flags, ["--tolerance"]);
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let text = ok(&["completions", shell]);
        assert!(
            text.contains("compare") && text.contains("bisect") && text.contains("tolerance"),
            "{shell}:\n{text}"
        );
    }
    let out = leakbench(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values: bash"));
}

#[test]
fn man_pages_cover_every_subcommand() {
    let page = ok(&["man"]);
    assert!(page.contains(".TH leakbench 1"), "{page}");
    for sub in ["run", "compare", "diff", "agent", "kube", "completions"] {
        assert!(
            page.contains(&format!("leakbench\\-{sub}")),
            "{sub} in\n{page}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    ok(&["man", "--out", pages.to_str().unwrap()]);
    let run = std::fs::read_to_string(pages.join("leakbench-run.1")).unwrap();
    assert!(run.contains(".TH leakbench-run 1"), "{run}");
    assert!(run.contains("\\-\\-bisect"), "{run}");
    let compare = std::fs::read_to_string(pages.join("leakbench-compare.1")).unwrap();
    assert!(compare.contains("\\-\\-tolerance"), "{compare}");
    assert!(compare.contains("[default: 25]"), "{compare}");
    // Every page renders in groff (groff-base, from .ci/install) without a
    // warning, and the run page says what its exit codes mean.
    let mut names: Vec<_> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 11, "{names:?}");
    for page in &names {
        let out = Command::new("groff")
            .args(["-man", "-Tascii", "-P-cbou", "-ww"])
            .arg(page)
            .output()
            .expect("groff (Debian's groff-base; bash .ci/install installs it)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {stderr}",
            page.display()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("EXIT STATUS"), "{}:\n{text}", page.display());
        if page.ends_with("leakbench-run.1") {
            let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                words.contains("run --bisect, as git bisect run reads them"),
                "{text}"
            );
            assert!(words.contains("125 (skip this commit)"), "{text}");
        }
    }
}

#[test]
fn init_writes_scenarios_that_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    for kind in ["ws", "http"] {
        let path = dir.path().join(format!("{kind}.toml"));
        let file = path.to_str().expect("utf-8 path");
        ok(&["init", kind, "-o", file]);
        let validated = ok(&["validate", file]);
        assert!(validated.contains("valid"), "{validated}");
        assert!(
            validated.contains(&format!("{kind}://127.0.0.1:8080")),
            "{validated}"
        );
        // Stdout gets the same text.
        let printed = ok(&["init", kind]);
        assert_eq!(printed, std::fs::read_to_string(&path).expect("read"));
        assert!(printed.lines().filter(|l| l.starts_with('#')).count() > 5);
        // Never overwrites by accident.
        let again = leakbench(&["init", kind, "-o", file]);
        assert_eq!(again.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
        ok(&["init", kind, "-o", file, "--force"]);
    }
}

#[test]
fn diff_of_captured_profiles_names_the_leaking_function_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("diff-heap.pb.gz");
    let heap = ok(&[
        "diff",
        &fixture("heap-base.pb.gz"),
        &fixture("heap-after.pb.gz"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(first_site(&heap), "main.retain", "{heap}");
    assert!(heap.contains("KiB each)  main.retain"), "{heap}");
    // The written diff is a profile go tool pprof reads, leading with it too.
    let top = Command::new("go")
        .args(["tool", "pprof", "-top", "-sample_index=inuse_space"])
        .arg(&out)
        .output()
        .expect("go tool pprof");
    let top = String::from_utf8_lossy(&top.stdout);
    let first_row = top
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .nth(1)
        .unwrap_or_default();
    assert!(first_row.ends_with("main.retain"), "{top}");

    let goroutine = ok(&[
        "diff",
        &fixture("goroutine-base.pb.gz"),
        &fixture("goroutine-after.pb.gz"),
    ]);
    assert_eq!(first_site(&goroutine), "main.leakyWorker", "{goroutine}");
    assert!(
        goroutine.starts_with("goroutines: 3 -> 203 (+200)"),
        "{goroutine}"
    );
}

#[test]
fn diff_reads_uncompressed_profiles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::read(fixture("goroutine-after.pb.gz"))
            .expect("fixture")
            .as_slice(),
    )
    .read_to_end(&mut raw)
    .expect("gunzip fixture");
    let plain = dir.path().join("goroutine-after.pb");
    std::fs::write(&plain, raw).expect("write");
    let gz = ok(&[
        "diff",
        &fixture("goroutine-base.pb.gz"),
        &fixture("goroutine-after.pb.gz"),
    ]);
    let mixed = ok(&[
        "diff",
        &fixture("goroutine-base.pb.gz"),
        plain.to_str().expect("utf-8"),
    ]);
    assert_eq!(gz, mixed);
}

#[test]
fn diff_refuses_mixed_kinds_and_remote_urls() {
    let mixed = leakbench(&[
        "diff",
        &fixture("heap-base.pb.gz"),
        &fixture("goroutine-after.pb.gz"),
    ]);
    assert_eq!(mixed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("heap profile"));
    let remote = leakbench(&[
        "diff",
        "http://192.0.2.1:6060/debug/pprof/heap",
        &fixture("heap-after.pb.gz"),
    ]);
    assert_eq!(remote.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&remote.stderr).contains("loopback"));
}

/// A Go target started by the test, killed when dropped.
struct Target {
    child: Child,
    port: u16,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 GET on a fresh connection; returns the whole response.
fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

fn start(name: &str) -> Target {
    let program: PathBuf = common::go_targets().join(name);
    let port = common::free_port();
    let child = Command::new(&program)
        .args(["-addr", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let target = Target { child, port };
    // Ready when pprof answers; the target binds within milliseconds, the
    // deadline only bounds a broken start.
    let started = Instant::now();
    loop {
        match get(port, "/debug/pprof/goroutine?debug=1") {
            Ok(r) if r.starts_with("HTTP/1.1 200") => return target,
            _ if started.elapsed() > READY_DEADLINE => {
                panic!("{name} did not answer on 127.0.0.1:{port} within {READY_DEADLINE:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn snapshots_before_and_after_load_show_the_leak() {
    let _one_at_a_time = common::serial();
    let target = start("ctxleak");
    let pprof = format!("http://127.0.0.1:{}/debug/pprof", target.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let before = dir.path().join("before");
    let after = dir.path().join("after");

    let said = ok(&["snapshot", &pprof, "-o", before.to_str().expect("utf-8")]);
    assert!(said.contains("goroutines"), "{said}");
    for name in [
        "heap.pb.gz",
        "goroutine.pb.gz",
        "goroutine.txt",
        "counters.json",
    ] {
        assert!(before.join(name).is_file(), "snapshot did not write {name}");
    }
    let counters: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(before.join("counters.json")).expect("counters.json"),
    )
    .expect("counters.json is JSON");
    let idle = counters["counters"]["goroutines"]
        .as_f64()
        .expect("goroutines");
    assert!(idle >= 1.0, "{counters}");
    assert!(counters["counters"]["heap_bytes"].as_f64().expect("heap") > 0.0);

    const REQUESTS: u64 = 50;
    for _ in 0..REQUESTS {
        let r = get(target.port, "/work").expect("GET /work");
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
    ok(&[
        "snapshot",
        &pprof,
        "-o",
        after.to_str().expect("utf-8"),
        "--settle",
        "5s",
    ]);
    let counters: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(after.join("counters.json")).expect("counters.json"),
    )
    .expect("JSON");
    let leaked = counters["counters"]["goroutines"]
        .as_f64()
        .expect("goroutines")
        - idle;
    assert_eq!(leaked, REQUESTS as f64, "{counters}");
    let dump = std::fs::read_to_string(after.join("goroutine.txt")).expect("dump");
    assert_eq!(dump.matches("main.watchDeadline(").count() as u64, REQUESTS);

    let base = before.join("goroutine.pb.gz");
    let diff = ok(&[
        "diff",
        base.to_str().expect("utf-8"),
        after.join("goroutine.pb.gz").to_str().expect("utf-8"),
    ]);
    assert_eq!(first_site(&diff), "main.watchDeadline", "{diff}");
    assert!(diff.contains(&format!("+{REQUESTS}")), "{diff}");
    // The same straight from the live endpoint.
    let live = ok(&[
        "diff",
        base.to_str().expect("utf-8"),
        &format!("{pprof}/goroutine"),
    ]);
    assert_eq!(first_site(&live), "main.watchDeadline", "{live}");
}
