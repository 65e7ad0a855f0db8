//! The HTTP/1.1 transport: `load.requests` sequential requests on the
//! session's one connection, each body read to its end.
//!
//! hyper's connection is driven inside the session (no spawned task, no
//! pool): when the session ends, its connection has ended too, and the TCP
//! stream comes back to the session loop to be closed as the mode says.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::failure::{Cause, Detail, Failure, Stage};
use super::session::{Transport, bounded};
use super::stats::{Metric, Recorder};

type Io = TokioIo<TcpStream>;

/// HTTP sessions against one URL.
#[derive(Debug)]
pub(crate) struct Http {
    method: Method,
    /// Path and query only (origin form), as sent on the request line.
    path: Uri,
    host: HeaderValue,
    requests: u32,
    step_timeout: Duration,
}

/// One open HTTP connection.
pub(crate) struct HttpConn {
    sender: SendRequest<Empty<Bytes>>,
    conn: Connection<Io, Empty<Bytes>>,
    /// The connection has finished (server closed, or error) and must not be
    /// polled again.
    done: bool,
}

impl Http {
    /// `url` and `method` were validated by the scenario; an unusable value
    /// here is a bug, reported as an error message for the caller.
    pub(crate) fn new(
        url: &Uri,
        method: &str,
        requests: u32,
        step_timeout: Duration,
    ) -> Result<Http, String> {
        let method =
            Method::from_bytes(method.as_bytes()).map_err(|e| format!("method `{method}`: {e}"))?;
        let path = url.path_and_query().map_or("/", |pq| pq.as_str());
        let path = Uri::builder()
            .path_and_query(path)
            .build()
            .map_err(|e| format!("path of {url}: {e}"))?;
        let authority = url
            .authority()
            .ok_or_else(|| format!("{url} has no host"))?;
        let host =
            HeaderValue::from_str(authority.as_str()).map_err(|e| format!("host of {url}: {e}"))?;
        Ok(Http {
            method,
            path,
            host,
            requests,
            step_timeout,
        })
    }

    fn request(&self) -> Request<Empty<Bytes>> {
        let mut request = Request::new(Empty::new());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.path.clone();
        request.headers_mut().insert(HOST, self.host.clone());
        request
    }

    /// One request: time to the response head, then to the end of the body.
    async fn send(
        &self,
        sender: &mut SendRequest<Empty<Bytes>>,
        stage: Stage,
        rec: &Recorder,
    ) -> Result<(), Failure> {
        let err = |e| Failure::http(stage, e);
        sender.ready().await.map_err(err)?;
        let start = Instant::now();
        let response = sender.send_request(self.request()).await.map_err(err)?;
        rec.record(Metric::Handshake, start.elapsed());
        if response.status().as_u16() >= 400 {
            return Err(Failure::new(
                Cause::BadStatus,
                stage,
                Detail::Status(response.status()),
            ));
        }
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(err)?;
        }
        rec.record(Metric::Request, start.elapsed());
        Ok(())
    }
}

impl Transport for Http {
    type Conn = HttpConn;

    async fn open(&self, stream: TcpStream, _rec: &Recorder) -> Result<HttpConn, Failure> {
        // No bytes move here: hyper only sets up its state.
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::http(Stage::Handshake, e))?;
        Ok(HttpConn {
            sender,
            conn,
            done: false,
        })
    }

    async fn exchange(&self, c: &mut HttpConn, rec: &Recorder) -> Result<(), Failure> {
        for i in 0..self.requests {
            let stage = Stage::Request(i);
            let HttpConn { sender, conn, done } = c;
            let request = bounded(self.step_timeout, stage, self.send(sender, stage, rec));
            drive(conn, done, stage, async { request.await? }).await?;
        }
        Ok(())
    }

    async fn hold(&self, c: &mut HttpConn, until: Instant) -> Result<(), Failure> {
        let idle = async {
            tokio::time::sleep_until(until).await;
            Ok(())
        };
        drive(&mut c.conn, &mut c.done, Stage::Hold, idle).await
    }

    /// HTTP has no goodbye of its own: dropping the sender ends hyper's
    /// connection (without touching the socket), and the stream comes back.
    async fn release(&self, c: HttpConn, _goodbye: bool) -> Result<TcpStream, Failure> {
        let HttpConn {
            sender,
            mut conn,
            done,
        } = c;
        drop(sender);
        if !done {
            bounded(
                self.step_timeout,
                Stage::Close,
                poll_fn(|cx| conn.poll_without_shutdown(cx)),
            )
            .await?
            .map_err(|e| Failure::http(Stage::Close, e))?;
        }
        Ok(conn.into_parts().io.into_inner())
    }
}

/// Runs `work` while driving the connection that carries it. If the
/// connection finishes first, `work` gets one more poll to take what the
/// connection delivered on its way out; still pending, it failed as `closed`.
async fn drive<T>(
    conn: &mut Connection<Io, Empty<Bytes>>,
    done: &mut bool,
    stage: Stage,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let mut work = pin!(work);
    poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if *done {
            return Poll::Ready(Err(Failure::closed(stage, "server closed the connection")));
        }
        match conn.poll_without_shutdown(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                *done = true;
                Poll::Ready(Err(Failure::http(stage, e)))
            }
            Poll::Ready(Ok(())) => {
                *done = true;
                match work.as_mut().poll(cx) {
                    Poll::Ready(out) => Poll::Ready(out),
                    Poll::Pending => {
                        Poll::Ready(Err(Failure::closed(stage, "server closed the connection")))
                    }
                }
            }
        }
    })
    .await
}
