//! Bad input gets one clear line and exit code 2, never a verdict or a panic.
//!
//! Each test is a row of docs/errors.md (named after it): a broken scenario
//! file, or a loopback server written here that answers the pprof paths
//! badly, run with the real `leakbench` binary. The server otherwise serves
//! real captured answers from tests/fixtures, so only the one bad answer
//! stops the run; `fake_target_with_good_answers_gives_a_verdict` shows that.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use leakbench::pprof::{self, proto};

const EXIT_ERROR: i32 = leakbench::exit::ERROR as i32;

/// Longest any of these runs may take: each fails at its first bad answer,
/// within seconds; the bound only stops a hang from hanging the suite.
const DEADLINE: Duration = Duration::from_secs(120);

// ---- a fake target ---------------------------------------------------------

/// What the fake target answers on one path.
#[derive(Clone)]
enum Reply {
    /// A complete answer.
    Full {
        status: u16,
        content_type: &'static str,
        body: Arc<Vec<u8>>,
    },
    /// Headers, then one byte every 100 ms (at most 600 bytes).
    Trickle,
    /// A chunked body that never ends (bounded at 1 GiB written).
    Flood,
    /// A 302 to this Location.
    Redirect(&'static str),
}

fn ok(content_type: &'static str, body: Vec<u8>) -> Reply {
    Reply::Full {
        status: 200,
        content_type,
        body: Arc::new(body),
    }
}

fn status(code: u16, body: &str) -> Reply {
    Reply::Full {
        status: code,
        content_type: "text/plain; charset=utf-8",
        body: Arc::new(body.as_bytes().to_vec()),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const GOROUTINE_COUNT: &str = "/debug/pprof/goroutine?debug=1";
const MEMSTATS: &str = "/debug/pprof/heap?debug=1&gc=1";
const HEAP_PROFILE: &str = "/debug/pprof/heap?gc=1";
const GOROUTINE_PROFILE: &str = "/debug/pprof/goroutine";
const GOROUTINE_DUMP: &str = "/debug/pprof/goroutine?debug=2";

/// Real answers for every path leakbench reads; any other pprof profile is
/// 404, as net/http/pprof answers for a profile it does not have (before Go
/// 1.26, `goroutineleak`); everything else is 200 "ok" (the sessions' URL).
fn good_answers() -> HashMap<&'static str, Reply> {
    let text = "text/plain; charset=utf-8";
    let bin = "application/octet-stream";
    HashMap::from([
        (
            GOROUTINE_COUNT,
            ok(text, fixture("goroutine-after.debug1.txt")),
        ),
        (MEMSTATS, ok(text, fixture("heap-after.debug1.txt"))),
        (HEAP_PROFILE, ok(bin, fixture("heap-base.pb.gz"))),
        (GOROUTINE_PROFILE, ok(bin, fixture("goroutine-base.pb.gz"))),
        (
            GOROUTINE_DUMP,
            ok(text, fixture("goroutine-after.debug2.txt")),
        ),
    ])
}

/// An HTTP/1.1 server on a loopback port, one thread per connection, each
/// answer followed by `Connection: close`. Stops when dropped.
struct FakeTarget {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl FakeTarget {
    /// Good answers, with `path` answering `reply` instead.
    fn with(path: &'static str, reply: Reply) -> FakeTarget {
        let mut answers = good_answers();
        answers.insert(path, reply);
        FakeTarget::serve(answers)
    }

    fn serve(answers: HashMap<&'static str, Reply>) -> FakeTarget {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(answers);
        let stopping = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let answers = answers.clone();
                let stopping = stopping.clone();
                thread::spawn(move || answer(conn, &answers, &stopping));
            }
        });
        FakeTarget { port, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for FakeTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(conn: TcpStream, answers: &HashMap<&'static str, Reply>, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    // Headers, up to the blank line (bounded).
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let reply = answers.get(path).cloned().unwrap_or_else(|| {
        if path.starts_with("/debug/pprof/") {
            status(404, "Unknown profile")
        } else {
            ok("text/plain", b"ok".to_vec())
        }
    });
    let mut conn = conn;
    match reply {
        Reply::Full {
            status,
            content_type,
            body,
        } => {
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
        Reply::Redirect(location) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.write_all(head.as_bytes());
        }
        Reply::Trickle => {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n",
            );
            for _ in 0..600 {
                if stop.load(Ordering::SeqCst) || conn.write_all(b"g").is_err() {
                    break;
                }
                // Pacing of the answer itself, not test synchronisation.
                thread::sleep(Duration::from_millis(100));
            }
        }
        Reply::Flood => {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            );
            let chunk = vec![b'x'; 1 << 20];
            let head = format!("{:x}\r\n", chunk.len());
            for _ in 0..1024 {
                if stop.load(Ordering::SeqCst)
                    || conn.write_all(head.as_bytes()).is_err()
                    || conn.write_all(&chunk).is_err()
                    || conn.write_all(b"\r\n").is_err()
                {
                    break;
                }
            }
        }
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Write);
    // Let the client read to the end before the socket goes away.
    let mut sink = [0u8; 1024];
    for _ in 0..1000 {
        match reader.get_mut().read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

// ---- running leakbench -----------------------------------------------------

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn context(&self) -> String {
        format!(
            "exit code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Exit code 2, no panic, and exactly one stderr line: the error,
    /// naming `names` and containing `says`.
    fn assert_error(&self, names: &str, says: &str) {
        assert!(
            !self.stdout.contains("panicked") && !self.stderr.contains("panicked"),
            "a panic\n{}",
            self.context()
        );
        assert_eq!(self.code, Some(EXIT_ERROR), "{}", self.context());
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "one stderr line\n{}", self.context());
        let line = lines[0];
        // Shown with --nocapture: what docs/errors.md quotes.
        println!("SEES {line}");
        assert!(line.starts_with("leakbench: error: "), "{}", self.context());
        assert!(line.contains(names), "names {names}\n{}", self.context());
        assert!(line.contains(says), "says {says:?}\n{}", self.context());
        assert!(
            !self.stdout.contains("LEAK") && !self.stdout.contains("PASS"),
            "an error is never a verdict\n{}",
            self.context()
        );
    }
}

fn leakbench(args: &[&str], scenario: &Path) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_leakbench"))
        .args(args)
        .arg(scenario)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leakbench");
    let started = Instant::now();
    let pid = child.id();
    // A watchdog instead of polling: kill a hung run at the deadline.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if done_rx.recv_timeout(DEADLINE).is_err() {
            // SAFETY: signalling the child we started, by its pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for leakbench");
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let mut stderr = String::from_utf8_lossy(&stderr).into_owned();
    if started.elapsed() >= DEADLINE {
        stderr.push_str("\n[test: leakbench killed at the deadline]");
    }
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr,
    }
}

fn scenario_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// A short scenario against the fake target: two sessions, no warm-up,
/// two cycles, a 2 s settle.
fn fake_scenario(t: &FakeTarget, target_extra: &str) -> String {
    format!(
        "[target]\nurl = \"{}\"\n{target_extra}\n[load]\nsessions = 2\nwarmup = 0\ncycles = 2\n\
         [settle]\ntimeout = \"2s\"\n",
        t.url("/session")
    )
}

fn run_against(t: &FakeTarget, target_extra: &str) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = scenario_file(dir.path(), &fake_scenario(t, target_extra));
    let out = dir.path().join("out");
    leakbench(&["run", "--quiet", "--out", out.to_str().unwrap()], &path)
}

fn run_text(text: &str) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = scenario_file(dir.path(), text);
    leakbench(&["run", "--quiet"], &path)
}

// ---- the control: good answers give a verdict --------------------------------

#[test]
fn fake_target_with_good_answers_gives_a_verdict() {
    let t = FakeTarget::serve(good_answers());
    let run = run_against(&t, "");
    assert!(!run.stderr.contains("panicked"), "{}", run.context());
    assert_eq!(run.code, Some(0), "{}", run.context());
}

// ---- scenario rows -----------------------------------------------------------

#[test]
fn scenario_misspelt_key() {
    let run = run_text("[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsesions = 5\n");
    run.assert_error(
        "scenario.toml:4:1: load.sesions",
        "did you mean `sessions`?",
    );
}

#[test]
fn scenario_misspelt_table() {
    let run = run_text(
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 5\n[setle]\ntimeout = \"5s\"\n",
    );
    run.assert_error("scenario.toml:5:2: setle", "did you mean `settle`?");
}

#[test]
fn scenario_unknown_close_mode() {
    let run = run_text(
        "[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 5\nclose = \"abort\"\n",
    );
    run.assert_error("load.close", "use one of `graceful`, `abrupt`");
}

#[test]
fn scenario_wrong_type() {
    let run = run_text("[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = \"5\"\n");
    run.assert_error(
        "scenario.toml:4:12: load.sessions",
        "expected a whole number",
    );
}

#[test]
fn scenario_zero_sessions() {
    let run = run_text("[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 0\n");
    run.assert_error(
        "load.sessions",
        "0 is out of range; use a whole number from 1",
    );
}

#[test]
fn scenario_concurrency_above_sessions() {
    let run = run_text(
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 5\nconcurrency = 6\n",
    );
    run.assert_error("load.concurrency", "6 is out of range");
}

#[test]
fn scenario_negative_duration() {
    let run =
        run_text("[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 5\nhold = \"-1s\"\n");
    run.assert_error("load.hold", "is not a duration");
}

#[test]
fn scenario_unsupported_scheme() {
    let run = run_text("[target]\nurl = \"ftp://127.0.0.1:1/\"\n[load]\nsessions = 5\n");
    run.assert_error("target.url", "unsupported scheme `ftp`");
}

#[test]
fn scenario_tls_target_without_tls_settings() {
    let run = run_text("[target]\nurl = \"wss://127.0.0.1:1/\"\n[load]\nsessions = 5\n");
    run.assert_error("target.tls", "needs `[target.tls]` with `ca_file");
}

#[test]
fn scenario_remote_host() {
    let run = run_text("[target]\nurl = \"http://example.com/\"\n[load]\nsessions = 5\n");
    run.assert_error("target.url", "not a loopback address");
}

#[test]
fn scenario_remote_without_flag() {
    let run = run_text("[target]\nurl = \"ws://198.18.0.2:1/ws\"\n[load]\nsessions = 5\n");
    run.assert_error(
        "target.url",
        "add `--allow-remote 198.18.0.2` to the command line; a scenario file \
         cannot allow a remote host",
    );
}

#[test]
fn remote_flag_never_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = scenario_file(
        dir.path(),
        "[target]\nurl = \"ws://127.0.0.1:1/ws\"\n[load]\nsessions = 5\n",
    );
    let run = leakbench(
        &["run", "--quiet", "--allow-remote", "169.254.169.254"],
        &path,
    );
    run.assert_error(
        "--allow-remote 169.254.169.254",
        "never sends traffic there",
    );
}

#[test]
fn remote_target_with_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = scenario_file(
        dir.path(),
        "[target]\nurl = \"ws://198.18.0.2:1/ws\"\ncommand = [\"/bin/true\"]\n[load]\nsessions = 5\n",
    );
    let run = leakbench(&["run", "--quiet", "--allow-remote", "198.18.0.2"], &path);
    run.assert_error(
        "target.command",
        "the target is remote (`198.18.0.2`), and `command` starts a program on this machine",
    );
}

#[test]
fn scenario_unset_variable() {
    let run = run_text(
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 5\n\
         headers = { Authorization = \"Bearer ${LEAKBENCH_ERRORS_UNSET}\" }\n",
    );
    run.assert_error(
        "load.headers.Authorization",
        "environment variable LEAKBENCH_ERRORS_UNSET is not set",
    );
}

#[test]
fn scenario_missing_file() {
    let run = leakbench(&["run"], Path::new("/nonexistent/leakbench.toml"));
    run.assert_error("/nonexistent/leakbench.toml", "cannot read scenario");
}

// ---- target rows -------------------------------------------------------------

#[test]
fn target_connection_refused() {
    // Bound and released: nothing listens there now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = run_text(&format!(
        "[target]\nurl = \"http://127.0.0.1:{port}/\"\n[load]\nsessions = 2\n"
    ));
    run.assert_error(
        &format!("http://127.0.0.1:{port}/debug/pprof/goroutine?debug=1"),
        "Connection refused",
    );
}

#[test]
fn target_localhost_name_connection_refused() {
    // `localhost` is the one name accepted; it resolves from /etc/hosts, so
    // the failure a user sees is the refused connection, not DNS.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = run_text(&format!(
        "[target]\nurl = \"http://localhost:{port}/\"\n[load]\nsessions = 2\n"
    ));
    run.assert_error(
        &format!("http://localhost:{port}/debug/pprof"),
        "cannot reach",
    );
}

#[test]
fn target_pprof_not_found() {
    let t = FakeTarget::with(GOROUTINE_COUNT, status(404, "404 page not found\n"));
    run_against(&t, "").assert_error(&t.url(GOROUTINE_COUNT), "import _ \"net/http/pprof\"");
}

#[test]
fn target_pprof_forbidden() {
    let t = FakeTarget::with(GOROUTINE_COUNT, status(403, "forbidden host\n"));
    run_against(&t, "").assert_error(&t.url(GOROUTINE_COUNT), "check the Host header");
}

#[test]
fn target_pprof_server_error() {
    let t = FakeTarget::with(MEMSTATS, status(500, "boom\n"));
    run_against(&t, "").assert_error(&t.url(MEMSTATS), "answered 500");
}

const HTML: &str =
    "<!DOCTYPE html><html><head><title>Sign in</title></head><body>proxy</body></html>";

#[test]
fn target_html_instead_of_goroutine_text() {
    let t = FakeTarget::with(GOROUTINE_COUNT, ok("text/html", HTML.as_bytes().to_vec()));
    run_against(&t, "").assert_error(&t.url(GOROUTINE_COUNT), "it starts with '<!DOCTYPE html>");
}

#[test]
fn target_html_instead_of_memstats() {
    let t = FakeTarget::with(MEMSTATS, ok("text/html", HTML.as_bytes().to_vec()));
    run_against(&t, "").assert_error(&t.url(MEMSTATS), "is not a heap profile with MemStats");
}

#[test]
fn target_html_instead_of_profile() {
    let t = FakeTarget::with(HEAP_PROFILE, ok("text/html", HTML.as_bytes().to_vec()));
    run_against(&t, "").assert_error(&t.url(HEAP_PROFILE), "response is not a profile");
}

#[test]
fn target_goroutineleak_not_a_profile() {
    let leaks = "/debug/pprof/goroutineleak";
    let t = FakeTarget::with(leaks, ok("text/html", HTML.as_bytes().to_vec()));
    run_against(&t, "").assert_error(&t.url(leaks), "response is not a profile");
}

#[test]
fn target_empty_profile() {
    let t = FakeTarget::with(
        GOROUTINE_PROFILE,
        ok("application/octet-stream", Vec::new()),
    );
    run_against(&t, "").assert_error(&t.url(GOROUTINE_PROFILE), "response is empty");
}

#[test]
fn target_truncated_gzip() {
    let mut gz = fixture("heap-base.pb.gz");
    gz.truncate(gz.len() / 2);
    let t = FakeTarget::with(HEAP_PROFILE, ok("application/octet-stream", gz));
    run_against(&t, "").assert_error(&t.url(HEAP_PROFILE), "corrupt or truncated");
}

#[test]
fn target_corrupt_gzip() {
    let mut gz = fixture("goroutine-base.pb.gz");
    let mid = gz.len() / 2;
    for b in &mut gz[mid..mid + 8] {
        *b ^= 0x5a;
    }
    let t = FakeTarget::with(GOROUTINE_PROFILE, ok("application/octet-stream", gz));
    run_against(&t, "").assert_error(&t.url(GOROUTINE_PROFILE), "corrupt or truncated");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn target_protobuf_that_does_not_decode() {
    // Field 2 (samples), length-delimited, claiming far more bytes than follow.
    let t = FakeTarget::with(
        HEAP_PROFILE,
        ok("application/octet-stream", gzip(&[0x12, 0xff, 0x7f, 0x08])),
    );
    run_against(&t, "").assert_error(&t.url(HEAP_PROFILE), "not valid profile.proto");
}

#[test]
fn target_profile_with_inconsistent_ids() {
    // A sample on location 7, which the profile does not define.
    let p = proto::Profile {
        sample_type: vec![proto::ValueType { r#type: 1, unit: 2 }],
        sample: vec![proto::Sample {
            location_id: vec![7],
            value: vec![1],
            label: Vec::new(),
        }],
        string_table: vec![String::new(), "goroutine".into(), "count".into()],
        ..Default::default()
    };
    let t = FakeTarget::with(
        GOROUTINE_PROFILE,
        ok("application/octet-stream", pprof::encode_gz(&p)),
    );
    run_against(&t, "").assert_error(&t.url(GOROUTINE_PROFILE), "profile is inconsistent");
}

#[test]
fn target_gzip_bomb() {
    // Zeros past the decompressed-size cap, a few hundred KiB on the wire.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..=(pprof::MAX_DECOMPRESSED_BYTES >> 20) {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let t = FakeTarget::with(HEAP_PROFILE, ok("application/octet-stream", bomb));
    run_against(&t, "").assert_error(&t.url(HEAP_PROFILE), "profile is too large");
}

#[test]
fn target_trickles_bytes() {
    let t = FakeTarget::with(GOROUTINE_COUNT, Reply::Trickle);
    run_against(&t, "probe_timeout = \"1s\"")
        .assert_error(&t.url(GOROUTINE_COUNT), "did not answer within 1 s");
}

#[test]
fn target_redirects() {
    let t = FakeTarget::with(
        GOROUTINE_COUNT,
        Reply::Redirect("http://198.18.0.9:6060/debug/pprof/goroutine?debug=1"),
    );
    run_against(&t, "").assert_error(
        &t.url(GOROUTINE_COUNT),
        "answered 302 Found, a redirect to http://198.18.0.9:6060/debug/pprof/goroutine?debug=1; \
         redirects are not followed",
    );
}

#[test]
fn target_floods() {
    let t = FakeTarget::with(GOROUTINE_COUNT, Reply::Flood);
    run_against(&t, "").assert_error(&t.url(GOROUTINE_COUNT), "larger than 256 MiB");
}

#[test]
fn every_docs_row_has_its_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/errors.md")).expect("docs/errors.md");
    let tests = std::fs::read_to_string(root.join("tests/errors.rs")).expect("tests/errors.rs");
    let rows: Vec<&str> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert!(rows.len() >= 20, "rows found: {rows:?}");
    for row in rows {
        assert!(
            tests.contains(&format!("fn {row}()")),
            "docs/errors.md row `{row}` has no test of that name"
        );
    }
}
