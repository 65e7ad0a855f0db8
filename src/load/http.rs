//! The HTTP/1.1 transport: `load.requests` sequential requests on the
//! session's one connection (or one connection each), with the scenario's
//! method, headers and body, each response body read to its end and its
//! status checked.
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
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::failure::{Cause, Detail, Failure, Stage};
use super::net::Stream;
use super::session::{Session, Transport, bounded};
use super::stats::{Metric, Recorder};
use super::template::{Headers, Template, Vars};
use crate::scenario::{Body, HttpConnection, Load, Target};

type Io = TokioIo<Stream>;
type ReqBody = Full<Bytes>;

/// A request body, prepared once per cycle.
#[derive(Debug)]
enum BodyOut {
    None,
    Fixed(Bytes),
    Text(Template),
}

/// HTTP sessions against one URL.
#[derive(Debug)]
pub(crate) struct Http {
    method: Method,
    /// Path and query only (origin form), as sent on the request line.
    path: Uri,
    /// The path and query with placeholders, when the URL has them.
    path_template: Option<Template>,
    host: HeaderValue,
    headers: Headers,
    body: BodyOut,
    expect_status: Vec<u16>,
    requests: u32,
    per_request: bool,
    step_timeout: Duration,
}

/// One open HTTP connection.
pub(crate) struct HttpConn {
    sender: SendRequest<ReqBody>,
    conn: Connection<Io, ReqBody>,
    /// The connection has finished (server closed, or error) and must not be
    /// polled again.
    done: bool,
}

impl Http {
    /// The target and load were validated by the scenario; an unusable value
    /// here is a bug, reported as an error message for the caller.
    pub(crate) fn new(target: &Target, load: &Load) -> Result<Http, String> {
        let url = &target.url;
        let spec = &load.http;
        let method = Method::from_bytes(spec.method.as_bytes())
            .map_err(|e| format!("method `{}`: {e}", spec.method))?;
        let path = url.path_and_query().map_or("/", |pq| pq.as_str());
        let path = Uri::builder()
            .path_and_query(path)
            .build()
            .map_err(|e| format!("path of {url}: {e}"))?;
        let path_template = target.url_template.as_deref().map(|t| {
            // The template was validated: placeholders only after the authority.
            let after_scheme = t.find("://").map_or(0, |i| i + 3);
            let at = t[after_scheme..]
                .find('/')
                .map_or(t.len(), |j| after_scheme + j);
            Template::new(&t[at..])
        });
        let authority = url
            .authority()
            .ok_or_else(|| format!("{url} has no host"))?;
        let host =
            HeaderValue::from_str(authority.as_str()).map_err(|e| format!("host of {url}: {e}"))?;
        let body = match &spec.body {
            None => BodyOut::None,
            Some(Body::Bytes(b)) => BodyOut::Fixed(Bytes::from(b.clone())),
            Some(Body::Text(t)) => {
                let t = Template::new(t);
                match t.fixed() {
                    Some(fixed) => BodyOut::Fixed(Bytes::from(fixed.to_owned())),
                    None => BodyOut::Text(t),
                }
            }
        };
        Ok(Http {
            method,
            path,
            path_template,
            host,
            headers: Headers::new(&load.headers),
            body,
            expect_status: spec.expect_status.clone(),
            requests: spec.requests,
            per_request: spec.connection == HttpConnection::PerRequest,
            step_timeout: load.step_timeout,
        })
    }

    fn request(&self, vars: Vars) -> Result<Request<ReqBody>, Failure> {
        let body = match &self.body {
            BodyOut::None => Bytes::new(),
            BodyOut::Fixed(b) => b.clone(),
            BodyOut::Text(t) => Bytes::from(t.render(vars).into_owned()),
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = match &self.path_template {
            None => self.path.clone(),
            Some(t) => t.render(vars).parse().map_err(|e| {
                Failure::new(
                    Cause::Io,
                    Stage::Handshake,
                    Detail::Io(std::io::Error::other(format!("session URL: {e}"))),
                )
            })?,
        };
        request.headers_mut().insert(HOST, self.host.clone());
        self.headers.apply(request.headers_mut(), vars);
        Ok(request)
    }

    fn status_ok(&self, status: StatusCode) -> bool {
        if self.expect_status.is_empty() {
            status.as_u16() < 400
        } else {
            self.expect_status.contains(&status.as_u16())
        }
    }

    /// One request: time to the response head, then to the end of the body;
    /// both from `from` when given (the session's intended start).
    async fn send(
        &self,
        sender: &mut SendRequest<ReqBody>,
        request: Request<ReqBody>,
        from: Option<Instant>,
        stage: Stage,
        rec: &Recorder,
    ) -> Result<(), Failure> {
        let err = |e| Failure::http(stage, e);
        sender.ready().await.map_err(err)?;
        let start = from.unwrap_or_else(Instant::now);
        let response = sender.send_request(request).await.map_err(err)?;
        rec.record(Metric::Handshake, start.elapsed());
        let status = response.status();
        // The body is read either way, so the connection stays usable.
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(err)?;
        }
        if !self.status_ok(status) {
            return Err(Failure::new(
                Cause::BadStatus,
                stage,
                Detail::Status(status),
            ));
        }
        rec.record(Metric::Request, start.elapsed());
        Ok(())
    }
}

impl Transport for Http {
    type Conn = HttpConn;

    fn connections(&self) -> u32 {
        if self.per_request { self.requests } else { 1 }
    }

    async fn open(
        &self,
        stream: Stream,
        _session: &Session,
        _rec: &Recorder,
    ) -> Result<HttpConn, Failure> {
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

    async fn exchange(
        &self,
        c: &mut HttpConn,
        session: &Session,
        part: u32,
        rec: &Recorder,
    ) -> Result<(), Failure> {
        let numbers = if self.per_request {
            part..part + 1
        } else {
            0..self.requests
        };
        for i in numbers {
            let stage = Stage::Request(i);
            let from = if i == 0 { session.intended } else { None };
            let request = self.request(session.vars)?;
            let HttpConn { sender, conn, done } = c;
            let request = bounded(
                self.step_timeout,
                stage,
                self.send(sender, request, from, stage, rec),
            );
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
    async fn release(&self, c: HttpConn, _goodbye: bool) -> Result<Stream, Failure> {
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
    conn: &mut Connection<Io, ReqBody>,
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
