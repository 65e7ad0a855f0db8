//! Load engine tests: real sockets on 127.0.0.1 against in-process servers
//! that report what they saw on the wire. Waits are on events (a channel of
//! per-connection reports), each bounded; nothing sleeps to synchronise.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{CycleLoad, run_cycle};
use crate::scenario::Scenario;

/// Longest any test waits for anything.
const TEST_BOUND: Duration = Duration::from_secs(30);

fn scenario(url: &str, load: &str) -> Scenario {
    let text = format!("[target]\nurl = \"{url}\"\n[load]\n{load}\n");
    Scenario::parse(&text, Path::new("/tmp/x.toml")).expect("test scenario is valid")
}

async fn cycle(s: &Scenario) -> CycleLoad {
    tokio::time::timeout(TEST_BOUND, run_cycle(&s.target, &s.load))
        .await
        .expect("run_cycle is bounded")
}

/// How a connection ended, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// Orderly end of stream (the client's FIN).
    Eof,
    /// The client reset the connection.
    Reset,
    /// Anything else, with its message.
    Other(String),
}

fn end_of(e: &std::io::Error) -> End {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => End::Reset,
        _ => End::Other(e.to_string()),
    }
}

/// What the server saw on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// Websocket close frames received.
    close_frames: usize,
    /// Websocket pongs received.
    pongs: usize,
    /// HTTP requests received.
    requests: usize,
    end: End,
}

/// Connections open right now and the most ever open at once.
#[derive(Debug, Default)]
struct Gauge {
    open: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn up(&self) {
        let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }
    fn down(&self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

struct Server {
    addr: SocketAddr,
    gauge: Arc<Gauge>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Server {
    /// Waits (bounded) for `n` connection reports.
    async fn reports(&mut self, n: usize) -> Vec<Seen> {
        let mut out = Vec::with_capacity(n);
        tokio::time::timeout(TEST_BOUND, async {
            while out.len() < n {
                out.push(self.seen.recv().await.expect("server is running"));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("only {} of {n} connection reports", out.len()));
        out
    }
}

/// Starts a server on 127.0.0.1 running `conn` per accepted connection.
async fn serve<F, Fut>(conn: F) -> Server
where
    F: Fn(TcpStream, usize) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Seen> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gauge = Arc::new(Gauge::default());
    let (tx, seen) = mpsc::unbounded_channel();
    let g = Arc::clone(&gauge);
    tokio::spawn(async move {
        // Ends with the test's runtime.
        for n in 0.. {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            g.up();
            let (g, tx, fut) = (Arc::clone(&g), tx.clone(), conn(stream, n));
            tokio::spawn(async move {
                let seen = fut.await;
                // The stream is gone with `fut`; count it down before the
                // report, so a test holding all reports sees zero open.
                g.down();
                let _ = tx.send(seen);
            });
        }
    });
    Server { addr, gauge, seen }
}

/// A websocket server that echoes text when `echo`, and otherwise only reads.
async fn ws_server(echo: bool) -> Server {
    ws_server_pinging(echo, false).await
}

/// [`ws_server`], sending one ping right after the upgrade when `ping`.
async fn ws_server_pinging(echo: bool, ping: bool) -> Server {
    serve(move |stream, _| async move {
        let mut seen = Seen {
            close_frames: 0,
            pongs: 0,
            requests: 0,
            end: End::Other("no end".into()),
        };
        let mut ws = match tokio_tungstenite::accept_async(stream).await {
            Ok(ws) => ws,
            Err(e) => {
                seen.end = End::Other(e.to_string());
                return seen;
            }
        };
        if ping {
            // Let-chains need Rust 1.88; the crate promises 1.85.
            if let Err(e) = ws.send(Message::Ping("are you there".into())).await {
                seen.end = End::Other(e.to_string());
                return seen;
            }
        }
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(_))) => seen.pongs += 1,
                Some(Ok(Message::Text(text))) if echo => {
                    if let Err(e) = ws.send(Message::Text(text)).await {
                        seen.end = End::Other(e.to_string());
                        return seen;
                    }
                }
                Some(Ok(Message::Close(_))) => seen.close_frames += 1,
                Some(Ok(_)) => {}
                Some(Err(tungstenite::Error::Io(e))) => {
                    seen.end = end_of(&e);
                    return seen;
                }
                Some(Err(e)) => {
                    seen.end = End::Other(e.to_string());
                    return seen;
                }
                None => break,
            }
        }
        // Close handshake done; now the TCP end.
        let mut tcp = ws.into_inner();
        let mut buf = [0u8; 64];
        seen.end = match tcp.read(&mut buf).await {
            Ok(0) => End::Eof,
            Ok(n) => End::Other(format!("{n} bytes after close")),
            Err(e) => end_of(&e),
        };
        seen
    })
    .await
}

/// An HTTP/1.1 server answering every request with `status(connection)`.
async fn http_server(status: fn(usize) -> u16) -> Server {
    serve(move |mut stream, n| async move {
        let mut seen = Seen {
            close_frames: 0,
            pongs: 0,
            requests: 0,
            end: End::Other("no end".into()),
        };
        let response = format!("HTTP/1.1 {} X\r\ncontent-length: 2\r\n\r\nok", status(n));
        let mut pending = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => {
                    seen.end = End::Eof;
                    return seen;
                }
                Ok(k) => pending.extend_from_slice(&buf[..k]),
                Err(e) => {
                    seen.end = end_of(&e);
                    return seen;
                }
            }
            while let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                pending.drain(..at + 4);
                seen.requests += 1;
                if let Err(e) = stream.write_all(response.as_bytes()).await {
                    seen.end = end_of(&e);
                    return seen;
                }
            }
        }
    })
    .await
}

fn ws_url(s: &Server) -> String {
    format!("ws://{}/ws", s.addr)
}

const ECHO_STEPS: &str = "[[load.steps]]\nsend = \"ping 1\"\n[[load.steps]]\nexpect = \"ping\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_echo_runs_every_session_within_concurrency() {
    let mut server = ws_server(true).await;
    let s = scenario(
        &ws_url(&server),
        &format!("sessions = 50\nconcurrency = 10\n{ECHO_STEPS}"),
    );
    let load = cycle(&s).await;
    assert_eq!(
        (load.started, load.completed, load.failed),
        (50, 50, 0),
        "{load:?}"
    );
    assert_eq!(load.connect.count, 50);
    assert_eq!(load.handshake.count, 50);
    assert_eq!(load.round_trip.count, 50);
    assert!(load.round_trip.p50_us > 0 && load.round_trip.max_us >= load.round_trip.p99_us);
    assert_eq!(load.request.count, 0);
    // Every connection has ended on the server's side too (each report is
    // sent after its connection was counted down).
    assert_eq!(server.reports(50).await.len(), 50);
    assert_eq!(server.gauge.open(), 0);
    assert!(server.gauge.max.load(Ordering::SeqCst) <= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_graceful_close_sends_close_frame_then_fin() {
    let mut server = ws_server(true).await;
    let s = scenario(
        &ws_url(&server),
        &format!("sessions = 4\nhold = \"20ms\"\nclose = \"graceful\"\n{ECHO_STEPS}"),
    );
    let load = cycle(&s).await;
    assert_eq!(load.completed, 4, "{load:?}");
    for seen in server.reports(4).await {
        assert_eq!((seen.close_frames, seen.end), (1, End::Eof));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_abrupt_close_resets_without_close_frame() {
    let mut server = ws_server(true).await;
    let s = scenario(
        &ws_url(&server),
        &format!("sessions = 4\nclose = \"abrupt\"\n{ECHO_STEPS}"),
    );
    let load = cycle(&s).await;
    assert_eq!(load.completed, 4, "{load:?}");
    for seen in server.reports(4).await {
        assert_eq!((seen.close_frames, seen.end), (0, End::Reset));
    }
    assert_eq!(server.gauge.open(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_share_one_connection_then_fin() {
    let mut server = http_server(|_| 200).await;
    let s = scenario(
        &format!("http://{}/hello?x=1", server.addr),
        "sessions = 6\nconcurrency = 3\nrequests = 3\nhold = \"10ms\"",
    );
    let load = cycle(&s).await;
    assert_eq!((load.completed, load.failed), (6, 0), "{load:?}");
    assert_eq!(load.request.count, 18);
    assert_eq!(load.handshake.count, 18);
    assert_eq!(load.connect.count, 6);
    for seen in server.reports(6).await {
        assert_eq!((seen.requests, seen.end), (3, End::Eof));
    }
    assert_eq!(server.gauge.open(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_abrupt_close_resets_after_requests() {
    let mut server = http_server(|_| 200).await;
    let s = scenario(
        &format!("http://{}/", server.addr),
        "sessions = 4\nrequests = 3\nclose = \"abrupt\"",
    );
    let load = cycle(&s).await;
    assert_eq!(load.completed, 4, "{load:?}");
    for seen in server.reports(4).await {
        assert_eq!((seen.requests, seen.end), (3, End::Reset));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_listener_counts_refused() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let s = scenario(&format!("ws://{addr}/"), "sessions = 20\nconcurrency = 5");
    let load = cycle(&s).await;
    assert_eq!((load.started, load.failed), (20, 20), "{load:?}");
    assert_eq!(load.failures.get("refused"), Some(&20), "{load:?}");
    assert_eq!(load.failure_examples.len(), 1, "{load:?}");
    assert!(load.failure_examples[0].starts_with("refused at connect"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_expect_is_expect_missed() {
    let mut server = ws_server(false).await;
    let s = scenario(
        &ws_url(&server),
        &format!("sessions = 3\nstep_timeout = \"200ms\"\n{ECHO_STEPS}"),
    );
    let load = cycle(&s).await;
    assert_eq!(load.failures.get("expect_missed"), Some(&3), "{load:?}");
    assert_eq!(load.round_trip.count, 0);
    assert!(load.failure_examples[0].contains("step 2"), "{load:?}");
    // The failed sessions' connections are closed too.
    assert_eq!(server.reports(3).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_error_status_is_bad_status() {
    let server = http_server(|_| 500).await;
    let s = scenario(
        &format!("http://{}/", server.addr),
        "sessions = 5\nrequests = 2",
    );
    let load = cycle(&s).await;
    assert_eq!(load.failures.get("bad_status"), Some(&5), "{load:?}");
    assert!(load.failure_examples[0].contains("500"), "{load:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_upgrade_is_handshake_failure() {
    let server = serve(|mut stream, _| async move {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(k) => head.extend_from_slice(&buf[..k]),
            }
        }
        let reply = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let _ = stream.write_all(reply).await;
        Seen {
            close_frames: 0,
            pongs: 0,
            requests: 1,
            end: End::Eof,
        }
    })
    .await;
    let s = scenario(&format!("ws://{}/ws", server.addr), "sessions = 3");
    let load = cycle(&s).await;
    assert_eq!(load.failures.get("handshake"), Some(&3), "{load:?}");
    assert_eq!(load.handshake.count, 0);
    assert!(load.failure_examples[0].contains("403"), "{load:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_examples_stay_bounded() {
    // Fifty different statuses, so fifty distinct messages are on offer.
    let server = http_server(|n| 500 + (n % 50) as u16).await;
    let s = scenario(
        &format!("http://{}/", server.addr),
        "sessions = 1000\nconcurrency = 50",
    );
    let load = cycle(&s).await;
    assert_eq!((load.started, load.failed), (1000, 1000), "{load:?}");
    assert_eq!(load.failures.get("bad_status"), Some(&1000));
    assert_eq!(
        load.failure_examples.len(),
        super::stats::MAX_FAILURE_EXAMPLES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_while_expecting() {
    let mut server = ws_server_pinging(true, true).await;
    let s = scenario(&ws_url(&server), &format!("sessions = 3\n{ECHO_STEPS}"));
    let load = cycle(&s).await;
    assert_eq!(load.completed, 3, "{load:?}");
    for seen in server.reports(3).await {
        assert_eq!((seen.pongs, seen.close_frames, seen.end), (1, 1, End::Eof));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_leaving_during_hold_is_closed() {
    // Answers one request, then closes its side.
    let server = serve(|mut stream, _| async move {
        let mut buf = [0u8; 1024];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(k) => head.extend_from_slice(&buf[..k]),
            }
        }
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await;
        Seen {
            close_frames: 0,
            pongs: 0,
            requests: 1,
            end: End::Eof,
        }
    })
    .await;
    let s = scenario(
        &format!("http://{}/", server.addr),
        "sessions = 2\nhold = \"10s\"",
    );
    let load = cycle(&s).await;
    assert_eq!(load.failures.get("closed"), Some(&2), "{load:?}");
    assert_eq!(load.request.count, 2);
    assert!(load.failure_examples[0].contains("hold"), "{load:?}");
    // Noticed when the server left, not at the end of the hold.
    assert!(load.elapsed_s < 5.0, "{load:?}");
}
