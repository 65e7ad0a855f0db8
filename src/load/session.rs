//! The one session loop: connect, open the transport, exchange, hold, say
//! goodbye, end the TCP connection. Transports plug in through [`Transport`];
//! close modes through [`Ending`]. Nothing here knows websocket or HTTP.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::failure::{Failure, Stage};
use super::stats::{Metric, Recorder};
use crate::scenario::CloseMode;

/// A wire protocol a session speaks over its own TCP connection.
///
/// Every method bounds its own network waits by the step timeout. A failing
/// method drops what it holds: the socket then closes with the system's
/// default (a FIN, or a reset if unread data is left).
pub(crate) trait Transport: Send + Sync + 'static {
    /// One open session of this transport.
    type Conn: Send;

    /// Upgrade a fresh TCP connection (websocket handshake, HTTP setup).
    fn open(
        &self,
        stream: TcpStream,
        rec: &Recorder,
    ) -> impl Future<Output = Result<Self::Conn, Failure>> + Send;

    /// The session's work: websocket steps, or HTTP requests.
    fn exchange(
        &self,
        conn: &mut Self::Conn,
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
    /// and hand back the TCP stream without ending it.
    fn release(
        &self,
        conn: Self::Conn,
        goodbye: bool,
    ) -> impl Future<Output = Result<TcpStream, Failure>> + Send;
}

/// How the TCP connection itself ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpEnd {
    /// Orderly: send FIN, read to the server's FIN, then close.
    Fin,
    /// SO_LINGER 0 then close: the kernel sends RST and discards buffers.
    Reset,
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
        }
    }
}

/// What every session of a cycle shares, apart from its transport.
#[derive(Debug, Clone)]
pub(crate) struct SessionPlan {
    /// The target's resolved address.
    pub(crate) addr: SocketAddr,
    /// Bound on each network wait.
    pub(crate) step_timeout: Duration,
    /// How long to stay connected after the exchange.
    pub(crate) hold: Duration,
    /// How the session leaves.
    pub(crate) ending: Ending,
}

/// Runs one session to its end and records its timings into `rec`.
pub(crate) async fn run<T: Transport>(
    transport: &T,
    plan: &SessionPlan,
    rec: &Recorder,
) -> Result<(), Failure> {
    let stream = connect(plan, rec).await?;
    let mut conn = transport.open(stream, rec).await?;
    transport.exchange(&mut conn, rec).await?;
    if !plan.hold.is_zero() {
        let until = Instant::now() + plan.hold;
        if plan.ending.attend_hold {
            transport.hold(&mut conn, until).await?;
        } else {
            tokio::time::sleep_until(until).await;
        }
    }
    let stream = transport.release(conn, plan.ending.goodbye).await?;
    end_tcp(stream, plan.ending.tcp, plan.step_timeout).await
}

/// TCP connect with TCP_NODELAY, timed as [`Metric::Connect`].
async fn connect(plan: &SessionPlan, rec: &Recorder) -> Result<TcpStream, Failure> {
    let start = Instant::now();
    let stream = bounded(
        plan.step_timeout,
        Stage::Connect,
        TcpStream::connect(plan.addr),
    )
    .await?
    .map_err(|e| Failure::io(Stage::Connect, e))?;
    rec.record(Metric::Connect, start.elapsed());
    stream
        .set_nodelay(true)
        .map_err(|e| Failure::io(Stage::Connect, e))?;
    Ok(stream)
}

/// Ends a TCP connection the transport has finished with.
async fn end_tcp(mut stream: TcpStream, end: TcpEnd, limit: Duration) -> Result<(), Failure> {
    match end {
        TcpEnd::Reset => {
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .map_err(|e| Failure::io(Stage::Close, e))?;
            drop(stream);
            Ok(())
        }
        TcpEnd::Fin => {
            bounded(limit, Stage::Close, async {
                stream.shutdown().await?;
                // Read to the server's FIN so the close is complete on both
                // sides and no unread byte turns our close into a reset.
                let mut scratch = [0u8; 512];
                while stream.read(&mut scratch).await? > 0 {}
                Ok(())
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
