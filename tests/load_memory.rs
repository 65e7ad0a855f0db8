//! Client memory per idle websocket session: a measurement, not a check, so
//! it is ignored by default. Run it by hand, in release mode:
//!
//! ```text
//! cargo test --release --test load_memory -- --ignored --nocapture idle_ws
//! ```
//!
//! The echo server runs in a child process (this test binary, re-run with
//! `LEAKBENCH_ECHO_CHILD=1`), so only the client's memory is in our RSS.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use leakbench::load::run_cycle;
use leakbench::scenario::Scenario;

/// Sessions held open at once for the measurement.
const SESSIONS: u32 = 5_000;
/// Longest the child server lives, whatever happens to the parent.
const CHILD_LIFETIME: Duration = Duration::from_secs(120);

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// The echo server, when run as the child; a no-op otherwise.
#[test]
#[ignore]
fn echo_server_child() {
    if std::env::var_os("LEAKBENCH_ECHO_CHILD").is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let serve = async {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                tokio::spawn(async move {
                    let Ok(mut ws) =
                        tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
                    else {
                        return;
                    };
                    while let Some(Ok(message)) = ws.next().await {
                        if message.is_text() && ws.send(message).await.is_err() {
                            break;
                        }
                    }
                });
            }
        };
        let _ = tokio::time::timeout(CHILD_LIFETIME, serve).await;
    });
}

#[test]
#[ignore]
fn idle_ws_session_memory() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "echo_server_child", "--nocapture"])
        .env("LEAKBENCH_ECHO_CHILD", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = lines
        .by_ref()
        .take(50)
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("PORT ").map(|p| p.parse().unwrap()))
        .expect("child prints its port");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let scenario = |sessions: u32, hold: &str| {
        let text = format!(
            "[target]\nurl = \"ws://127.0.0.1:{port}/\"\n[load]\nsessions = {sessions}\n\
             hold = \"{hold}\"\n[[load.steps]]\nsend = \"hi\"\n[[load.steps]]\nexpect = \"hi\"\n"
        );
        Scenario::parse(&text, Path::new("/tmp/mem.toml")).unwrap()
    };
    rt.block_on(async {
        // Warm the runtime and allocator with the same shape of work.
        let warm = scenario(200, "200ms");
        let w = run_cycle(&warm.target, &warm.load).await;
        assert_eq!(w.completed, 200, "{w:?}");

        let before = rss_bytes();
        let peak = Arc::new(AtomicU64::new(before));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
            tokio::spawn(async move {
                // Sampling, not synchronisation: bounded by count.
                for _ in 0..1200 {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let s = scenario(SESSIONS, "3s");
        let load = run_cycle(&s.target, &s.load).await;
        done.store(true, Ordering::Relaxed);
        sampler.await.unwrap();
        assert_eq!(load.completed, u64::from(SESSIONS), "{load:?}");
        let grown = peak.load(Ordering::Relaxed).saturating_sub(before);
        println!(
            "{SESSIONS} idle ws sessions: client RSS {:.1} MiB before, +{:.1} MiB at peak, \
             {:.1} KiB per session (connect p50 {} us, handshake p50 {} us, cycle {:.2} s)",
            before as f64 / 1048576.0,
            grown as f64 / 1048576.0,
            grown as f64 / 1024.0 / f64::from(SESSIONS),
            load.connect.p50_us,
            load.handshake.p50_us,
            load.elapsed_s,
        );
    });
    let _ = child.kill();
    let _ = child.wait();
}
