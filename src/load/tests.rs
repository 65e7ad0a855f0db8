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
async fn live_counts_end_equal_to_the_cycle_totals() {
    let server = ws_server(true).await;
    let s = scenario(
        &ws_url(&server),
        &format!("sessions = 30\nconcurrency = 10\n{ECHO_STEPS}"),
    );
    let live = std::sync::Arc::new(super::Live::default());
    let load = super::run_cycle_observed(&s.target, &s.load, &live).await;
    assert_eq!(live.counts(), (30, 30, 0), "{load:?}");
    assert_eq!((load.started, load.completed, load.failed), live.counts());

    let refused = scenario("ws://127.0.0.1:1/", "sessions = 5");
    let live = std::sync::Arc::new(super::Live::default());
    let load = super::run_cycle_observed(&refused.target, &refused.load, &live).await;
    assert_eq!(live.counts(), (5, 0, 5), "{load:?}");
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

/// Starts a server whose per-connection function also gets the peer's
/// address: [`serve`] with the accept loop's peer passed along.
async fn serve_peers(peers: mpsc::UnboundedSender<std::net::IpAddr>) -> Server {
    serve(move |stream, _| {
        let peers = peers.clone();
        async move {
            let _ = peers.send(stream.peer_addr().unwrap().ip());
            let mut seen = Seen {
                close_frames: 0,
                pongs: 0,
                requests: 0,
                end: End::Other("no end".into()),
            };
            let mut tcp = stream;
            let mut buf = [0u8; 64];
            seen.end = match tcp.read(&mut buf).await {
                Ok(0) => End::Eof,
                Ok(n) => End::Other(format!("{n} bytes")),
                Err(e) => end_of(&e),
            };
            seen
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_source_addresses_are_used_round_robin() {
    let (tx, mut peers) = mpsc::unbounded_channel();
    let mut server = serve_peers(tx).await;
    let s = scenario(
        &format!("http://{}/", server.addr),
        "sessions = 6\nconcurrency = 6\nclose = \"abrupt\"\nstep_timeout = \"300ms\"\n\
         source_addresses = [\"127.0.0.2\", \"127.0.0.3\"]",
    );
    // The server never answers: sessions fail by timeout, which is fine,
    // the connections are what this test is about.
    let load = cycle(&s).await;
    assert_eq!(load.connect.count, 6, "{load:?}");
    server.reports(6).await;
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..6 {
        *seen.entry(peers.recv().await.unwrap()).or_insert(0) += 1;
    }
    let two: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let three: std::net::IpAddr = "127.0.0.3".parse().unwrap();
    assert_eq!(seen.get(&two), Some(&3), "{seen:?}");
    assert_eq!(seen.get(&three), Some(&3), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_silent_peer_sends_nothing_and_keeps_the_socket_until_hold_ends() {
    const HOLD: Duration = Duration::from_millis(600);
    let (tx, mut waited) = mpsc::unbounded_channel();
    let mut server = serve(move |stream, _| {
        let tx = tx.clone();
        async move {
            let mut seen = Seen {
                close_frames: 0,
                pongs: 0,
                requests: 0,
                end: End::Other("no end".into()),
            };
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            let start = std::time::Instant::now();
            // A server that talks: a ping and a message the peer never reads.
            ws.send(Message::Ping("hello?".into())).await.unwrap();
            ws.send(Message::Text("news".into())).await.unwrap();
            loop {
                match ws.next().await {
                    Some(Ok(Message::Pong(_))) => seen.pongs += 1,
                    Some(Ok(Message::Close(_))) => seen.close_frames += 1,
                    Some(Ok(_)) => seen.requests += 1,
                    Some(Err(tungstenite::Error::Io(e))) => {
                        seen.end = end_of(&e);
                        break;
                    }
                    Some(Err(tungstenite::Error::Protocol(_))) | None => {
                        seen.end = End::Eof;
                        break;
                    }
                    Some(Err(e)) => {
                        seen.end = End::Other(e.to_string());
                        break;
                    }
                }
            }
            let _ = tx.send(start.elapsed());
            seen
        }
    })
    .await;
    let s = scenario(
        &ws_url(&server),
        &format!(
            "sessions = 3\nclose = \"silent\"\nhold = \"{}ms\"",
            HOLD.as_millis()
        ),
    );
    let load = cycle(&s).await;
    assert_eq!(load.completed, 3, "{load:?}");
    for seen in server.reports(3).await {
        // No pong, no message, no close frame: nothing at all came back.
        assert_eq!((seen.pongs, seen.requests, seen.close_frames), (0, 0, 0));
        // Dropped without a goodbye: a FIN, or a reset when the server's
        // bytes were still unread in the kernel.
        assert!(matches!(seen.end, End::Eof | End::Reset), "{seen:?}");
    }
    for _ in 0..3 {
        let quiet = waited.recv().await.unwrap();
        assert!(
            quiet >= HOLD,
            "the socket ended after {quiet:?}, before the hold"
        );
    }
}

/// What a websocket server saw of one session's script.
#[derive(Debug, Default)]
struct ScriptSeen {
    uri: String,
    header: Option<String>,
    protocol: Option<String>,
    texts: Vec<String>,
    binaries: Vec<Vec<u8>>,
    pings: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The handshake callback's error type is tungstenite's, not ours.
#[allow(clippy::result_large_err)]
async fn ws_script_runs_every_kind_of_step_with_session_values() {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let (tx, mut scripts) = mpsc::unbounded_channel();
    let mut server = serve(move |stream, _| {
        let tx = tx.clone();
        async move {
            let mut got = ScriptSeen::default();
            let mut head = (String::new(), None, None);
            let callback = |req: &Request, mut resp: Response| {
                head.0 = req.uri().to_string();
                head.1 = req
                    .headers()
                    .get("x-user")
                    .map(|v| v.to_str().unwrap().to_owned());
                let offered = req
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap().to_owned());
                if offered.is_some() {
                    resp.headers_mut()
                        .insert("sec-websocket-protocol", "chat.v2".parse().unwrap());
                }
                head.2 = offered;
                Ok(resp)
            };
            let mut ws = tokio_tungstenite::accept_hdr_async(stream, callback)
                .await
                .unwrap();
            (got.uri, got.header, got.protocol) = head;
            while let Some(Ok(message)) = ws.next().await {
                match &message {
                    Message::Text(t) => got.texts.push(t.to_string()),
                    Message::Binary(b) => got.binaries.push(b.to_vec()),
                    Message::Ping(_) => got.pings += 1,
                    _ => {}
                }
                if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                    break;
                }
            }
            let _ = tx.send(got);
            Seen {
                close_frames: 1,
                pongs: 0,
                requests: 0,
                end: End::Eof,
            }
        }
    })
    .await;
    let s = scenario(
        &format!("ws://{}/ws?user={{{{session}}}}", server.addr),
        r#"sessions = 2
concurrency = 1
subprotocols = ["chat.v2", "chat.v1"]
headers = { X-User = "u{{session}}" }
[[load.steps]]
send = "hi {{session}} {{token}}"
[[load.steps]]
expect_regex = '^hi \d+ [0-9a-f]{16}$'
timeout = "2s"
[[load.steps]]
repeat = 3
[[load.steps.steps]]
send_base64 = "AAEC/w=="
[[load.steps.steps]]
expect = ""
[[load.steps]]
ping = "p"
[[load.steps]]
pause = "10ms""#,
    );
    let load = cycle(&s).await;
    assert_eq!((load.completed, load.failed), (2, 0), "{load:?}");
    // One text echo, three binary echoes, one ping.
    assert_eq!(load.round_trip.count, 2 * 5, "{load:?}");
    server.reports(2).await;
    let mut got: Vec<ScriptSeen> =
        vec![scripts.recv().await.unwrap(), scripts.recv().await.unwrap()];
    got.sort_by(|a, b| a.uri.cmp(&b.uri));
    for (n, g) in got.iter().enumerate() {
        assert_eq!(g.uri, format!("/ws?user={n}"));
        assert_eq!(g.header.as_deref(), Some(format!("u{n}").as_str()));
        assert_eq!(g.protocol.as_deref(), Some("chat.v2, chat.v1"));
        assert_eq!(g.texts.len(), 1);
        assert!(g.texts[0].starts_with(&format!("hi {n} ")), "{g:?}");
        assert_eq!(g.binaries, vec![vec![0u8, 1, 2, 255]; 3]);
        assert_eq!(g.pings, 1);
    }
    assert_ne!(got[0].texts[0][5..], got[1].texts[0][5..], "tokens differ");
}

/// An HTTP server that records each request's head and body (by
/// content-length) and answers `status`.
async fn http_recording(status: u16, heads: mpsc::UnboundedSender<(String, Vec<u8>)>) -> Server {
    serve(move |mut stream, _| {
        let heads = heads.clone();
        async move {
            let mut seen = Seen {
                close_frames: 0,
                pongs: 0,
                requests: 0,
                end: End::Other("no end".into()),
            };
            let response = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
            let mut pending = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                while let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&pending[..at]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if pending.len() < at + 4 + len {
                        break;
                    }
                    let body = pending[at + 4..at + 4 + len].to_vec();
                    pending.drain(..at + 4 + len);
                    seen.requests += 1;
                    let _ = heads.send((head, body));
                    if let Err(e) = stream.write_all(response.as_bytes()).await {
                        seen.end = end_of(&e);
                        return seen;
                    }
                }
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
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_method_headers_body_and_one_connection_per_request() {
    let (tx, mut heads) = mpsc::unbounded_channel();
    let mut server = http_recording(201, tx).await;
    let s = scenario(
        &format!("http://{}/item/{{{{session}}}}", server.addr),
        r#"sessions = 3
requests = 2
method = "POST"
connection = "per_request"
expect_status = [201]
body = '{"user": {{session}}}'
headers = { Authorization = "Bearer t{{session}}", Content-Type = "application/json" }"#,
    );
    let load = cycle(&s).await;
    assert_eq!((load.completed, load.failed), (3, 0), "{load:?}");
    assert_eq!((load.connect.count, load.request.count), (6, 6), "{load:?}");
    // Six connections, one request each, each ended with a FIN.
    for seen in server.reports(6).await {
        assert_eq!((seen.requests, seen.end), (1, End::Eof));
    }
    for _ in 0..6 {
        let (head, body) = heads.recv().await.unwrap();
        let n: u32 = head
            .strip_prefix("post /item/")
            .and_then(|r| r.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            head.contains(&format!("authorization: bearer t{n}")),
            "{head}"
        );
        assert!(head.contains("content-type: application/json"), "{head}");
        assert_eq!(body, format!("{{\"user\": {n}}}").into_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_outside_expect_status_is_bad_status() {
    let (tx, _heads) = mpsc::unbounded_channel();
    let server = http_recording(200, tx).await;
    let s = scenario(
        &format!("http://{}/", server.addr),
        "sessions = 4\nrequests = 3\nexpect_status = [204]",
    );
    let load = cycle(&s).await;
    assert_eq!(load.failures.get("bad_status"), Some(&4), "{load:?}");
    assert!(
        load.failure_examples[0].contains("request 1: HTTP 200"),
        "{load:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_paces_starts_and_times_latency_from_the_intended_start() {
    let server = http_server(|_| 200).await;
    // 20 sessions at 50/s: the last is due at 380 ms.
    let s = scenario(
        &format!("http://{}/", server.addr),
        "sessions = 20\nrate = 50",
    );
    let load = cycle(&s).await;
    assert_eq!(load.completed, 20, "{load:?}");
    assert!(load.elapsed_s >= 0.38, "{load:?}");
    assert!(load.connect.p50_us < 100_000, "{load:?}");

    // One at a time, each holding 50 ms, but due every 1 ms: the 10th starts
    // ~450 ms late, and that lateness is in its latency.
    let s = scenario(
        &format!("http://{}/", server.addr),
        "sessions = 10\nconcurrency = 1\nrate = 1000\nhold = \"50ms\"",
    );
    let load = cycle(&s).await;
    assert_eq!(load.completed, 10, "{load:?}");
    assert!(load.connect.max_us >= 350_000, "{load:?}");
    assert!(load.request.max_us >= 350_000, "{load:?}");
}

/// A TLS acceptor with a fresh self-signed certificate for 127.0.0.1 and
/// localhost, and that certificate as PEM.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![key.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
        )
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        key.cert.pem(),
    )
}

/// A wss echo server; each report's `requests` counts echoed messages.
async fn wss_server(acceptor: tokio_rustls::TlsAcceptor) -> Server {
    serve(move |stream, _| {
        let acceptor = acceptor.clone();
        async move {
            let mut seen = Seen {
                close_frames: 0,
                pongs: 0,
                requests: 0,
                end: End::Other("no end".into()),
            };
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    seen.end = End::Other(format!("tls: {e}"));
                    return seen;
                }
            };
            let mut ws = tokio_tungstenite::accept_async(tls).await.unwrap();
            while let Some(Ok(message)) = ws.next().await {
                match message {
                    Message::Close(_) => seen.close_frames += 1,
                    Message::Text(t) => {
                        seen.requests += 1;
                        if ws.send(Message::Text(t)).await.is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut tls = ws.into_inner();
            let mut buf = [0u8; 64];
            seen.end = match tls.read(&mut buf).await {
                Ok(0) => End::Eof,
                Ok(n) => End::Other(format!("{n} bytes after close")),
                Err(e) => end_of(&e),
            };
            seen
        }
    })
    .await
}

fn tls_scenario(url: &str, tls: &str, load: &str) -> Scenario {
    let text = format!(
        "[target]\nurl = \"{url}\"\npprof = \"http://127.0.0.1:1/debug/pprof\"\n\
         [target.tls]\n{tls}\n[load]\n{load}\n"
    );
    Scenario::parse(&text, Path::new("/tmp/x.toml")).expect("test scenario is valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_ca_file_echoes_and_closes_gracefully() {
    let (acceptor, pem) = tls_acceptor();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let mut server = wss_server(acceptor).await;
    let s = tls_scenario(
        &format!("wss://{}/ws", server.addr),
        &format!("ca_file = \"{}\"", ca.display()),
        &format!("sessions = 4\n{ECHO_STEPS}"),
    );
    let load = cycle(&s).await;
    assert_eq!((load.completed, load.failed), (4, 0), "{load:?}");
    assert_eq!(load.round_trip.count, 4);
    for seen in server.reports(4).await {
        // close_notify then FIN reach the server as an orderly end.
        assert_eq!(
            (seen.requests, seen.close_frames, seen.end),
            (1, 1, End::Eof)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_checks_are_real() {
    let (acceptor, _pem) = tls_acceptor();
    // Someone else's certificate as the CA: the handshake must fail...
    let (_, other) = tls_acceptor();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("other.pem");
    std::fs::write(&ca, other).unwrap();
    let server = wss_server(acceptor).await;
    let url = format!("wss://{}/ws", server.addr);
    let s = tls_scenario(
        &url,
        &format!("ca_file = \"{}\"", ca.display()),
        "sessions = 2",
    );
    let load = cycle(&s).await;
    assert_eq!(load.failures.get("handshake"), Some(&2), "{load:?}");
    assert!(load.failure_examples[0].contains("certificate"), "{load:?}");
    // ...unless the scenario explicitly accepts any certificate.
    let s = tls_scenario(
        &url,
        "insecure = true",
        &format!("sessions = 2\n{ECHO_STEPS}"),
    );
    let load = cycle(&s).await;
    assert_eq!((load.completed, load.failed), (2, 0), "{load:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_requests_over_tls() {
    let (acceptor, _pem) = tls_acceptor();
    let mut server = serve(move |stream, _| {
        let acceptor = acceptor.clone();
        async move {
            let mut seen = Seen {
                close_frames: 0,
                pongs: 0,
                requests: 0,
                end: End::Other("no end".into()),
            };
            let mut tls = acceptor.accept(stream).await.unwrap();
            let mut pending = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                while let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    pending.drain(..at + 4);
                    seen.requests += 1;
                    tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await
                        .unwrap();
                }
                match tls.read(&mut buf).await {
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
            }
        }
    })
    .await;
    let s = tls_scenario(
        &format!("https://{}/", server.addr),
        "insecure = true",
        "sessions = 3\nrequests = 4",
    );
    let load = cycle(&s).await;
    assert_eq!((load.completed, load.request.count), (3, 12), "{load:?}");
    for seen in server.reports(3).await {
        assert_eq!((seen.requests, seen.end), (4, End::Eof));
    }
}
