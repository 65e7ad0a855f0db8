//! The one session loop: connect, open the transport, exchange, hold, say
//! goodbye, end the TCP connection. Transports plug in through [`Transport`];
//! close modes through [`Ending`]. Nothing here knows websocket or HTTP.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::failure::{Failure, Stage};
use super::net::{self, Stream, TlsClient};
use super::stats::{Metric, Recorder};
use super::template::Vars;
use crate::scenario::CloseMode;

/// A wire protocol a session speaks over its own connection.
///
/// Every method bounds its own network waits by the step timeout. A failing
/// method drops what it holds: the socket then closes with the system's
/// default (a FIN, or a reset if unread data is left).
pub(crate) trait Transport: Send + Sync + 'static {
    /// One open connection of this transport.
    type Conn: Send;

    /// Connections a session makes one after another (HTTP one per
    /// request: `connection = "per_request"`); 1 for most.
    fn connections(&self) -> u32 {
        1
    }

    /// Upgrade a fresh connection (websocket handshake, HTTP setup).
    fn open(
        &self,
        stream: Stream,
        session: &Session,
        rec: &Recorder,
    ) -> impl Future<Output = Result<Self::Conn, Failure>> + Send;

    /// The session's work on connection number `part` (from 0): websocket
    /// steps, or HTTP requests.
    fn exchange(
        &self,
        conn: &mut Self::Conn,
        session: &Session,
        part: u32,
        rec: &Recorder,
    ) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Stay connected until `until`, answering what the protocol requires
    /// (pings) and failing if the server leaves first.
    fn hold(
        &self,
        conn: &mut Self::Conn,
        until: Instant,
    ) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Leave the protocol, politely if `goodbye` (websocket close handshake),
    /// and hand back the stream without ending it.
    fn release(
        &self,
        conn: Self::Conn,
        goodbye: bool,
    ) -> impl Future<Output = Result<Stream, Failure>> + Send;
}

/// How the TCP connection itself ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpEnd {
    /// Orderly: (TLS close_notify and) FIN, read to the server's FIN, close.
    Fin,
    /// SO_LINGER 0 then close: the kernel sends RST and discards buffers.
    Reset,
    /// Plain close(2), no shutdown first and no waiting: a FIN, or a reset
    /// if the server's unread bytes are still queued.
    Drop,
}

/// What a close mode means, split into the decisions the session loop makes.
/// A new close mode is a new row here, not a new session loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ending {
    /// Keep reading during the hold (answer pings, notice the server leaving).
    pub(crate) attend_hold: bool,
    /// Run the protocol's own close (websocket close frame and its reply).
    pub(crate) goodbye: bool,
    /// How the TCP connection ends.
    pub(crate) tcp: TcpEnd,
}

impl From<CloseMode> for Ending {
    fn from(mode: CloseMode) -> Ending {
        match mode {
            CloseMode::Graceful => Ending {
                attend_hold: true,
                goodbye: true,
                tcp: TcpEnd::Fin,
            },
            CloseMode::Abrupt => Ending {
                attend_hold: true,
                goodbye: false,
                tcp: TcpEnd::Reset,
            },
            CloseMode::Silent => Ending {
                attend_hold: false,
                goodbye: false,
                tcp: TcpEnd::Drop,
            },
        }
    }
}

/// What every session of a cycle shares, apart from its transport.
#[derive(Debug, Clone)]
pub(crate) struct SessionPlan {
    /// The target's resolved address.
    pub(crate) addr: SocketAddr,
    /// Source addresses, used round robin by session number; empty: the
    /// kernel picks.
    pub(crate) sources: Vec<IpAddr>,
    /// TLS for wss/https targets.
    pub(crate) tls: Option<TlsClient>,
    /// Bound on each network wait.
    pub(crate) step_timeout: Duration,
    /// How long to stay connected after the exchange.
    pub(crate) hold: Duration,
    /// How the session leaves.
    pub(crate) ending: Ending,
}

/// One session's own values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    /// Placeholder values.
    pub(crate) vars: Vars,
    /// With an arrival rate: when the session should have started. Its
    /// first connect (and first HTTP request) is timed from here, so a late
    /// start counts as latency instead of disappearing.
    pub(crate) intended: Option<Instant>,
}

/// Runs one session to its end and records its timings into `rec`.
pub(crate) async fn run<T: Transport>(
    transport: &T,
    plan: &SessionPlan,
    session: &Session,
    rec: &Recorder,
) -> Result<(), Failure> {
    let parts = transport.connections();
    for part in 0..parts {
        let from = if part == 0 { session.intended } else { None };
        let stream = connect(plan, session.vars.session, from, rec).await?;
        let mut conn = transport.open(stream, session, rec).await?;
        transport.exchange(&mut conn, session, part, rec).await?;
        if part + 1 == parts && !plan.hold.is_zero() {
            let until = Instant::now() + plan.hold;
            if plan.ending.attend_hold {
                transport.hold(&mut conn, until).await?;
            } else {
                tokio::time::sleep_until(until).await;
            }
        }
        let stream = transport.release(conn, plan.ending.goodbye).await?;
        end_tcp(stream, plan.ending.tcp, plan.step_timeout).await?;
    }
    Ok(())
}

/// TCP connect (from the session's source address) with TCP_NODELAY, then
/// TLS if the target needs it; timed together as [`Metric::Connect`], from
/// `from` when given.
async fn connect(
    plan: &SessionPlan,
    number: u64,
    from: Option<Instant>,
    rec: &Recorder,
) -> Result<Stream, Failure> {
    let start = from.unwrap_or_else(Instant::now);
    let source = match plan.sources.len() {
        0 => None,
        n => Some(plan.sources[(number % n as u64) as usize]),
    };
    let tcp = bounded(
        plan.step_timeout,
        Stage::Connect,
        net::connect(plan.addr, source),
    )
    .await?
    .map_err(|e| Failure::io(Stage::Connect, e))?;
    tcp.set_nodelay(true)
        .map_err(|e| Failure::io(Stage::Connect, e))?;
    let stream = match &plan.tls {
        None => Stream::Plain(tcp),
        Some(tls) => bounded(plan.step_timeout, Stage::Handshake, tls.handshake(tcp))
            .await?
            .map_err(|e| Failure::tls(Stage::Handshake, e))?,
    };
    rec.record(Metric::Connect, start.elapsed());
    Ok(stream)
}

/// Ends a connection the transport has finished with.
async fn end_tcp(mut stream: Stream, end: TcpEnd, limit: Duration) -> Result<(), Failure> {
    match end {
        TcpEnd::Reset => {
            socket2::SockRef::from(stream.tcp())
                .set_linger(Some(Duration::ZERO))
                .map_err(|e| Failure::io(Stage::Close, e))?;
            drop(stream);
            Ok(())
        }
        TcpEnd::Drop => {
            drop(stream);
            Ok(())
        }
        TcpEnd::Fin => {
            bounded(limit, Stage::Close, async {
                stream.shutdown().await?;
                // Read to the server's FIN so the close is complete on both
                // sides and no unread byte turns our close into a reset.
                let mut scratch = [0u8; 512];
                loop {
                    match stream.read(&mut scratch).await {
                        Ok(0) => return Ok(()),
                        Ok(_) => {}
                        // A TLS server may close without close_notify after
                        // ours; its FIN is all we wait for.
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
            })
            .await?
            .map_err(|e| Failure::io(Stage::Close, e))
        }
    }
}

/// `fut`, failing as a timeout at `stage` if it takes longer than `limit`.
pub(crate) async fn bounded<F: Future>(
    limit: Duration,
    stage: Stage,
    fut: F,
) -> Result<F::Output, Failure> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| Failure::timeout(stage, limit))
}
