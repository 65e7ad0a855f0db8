//! The coordinator's listener: accepts agent connections on the fleet's
//! own thread, checks each upgrade's path and bearer token, claims the
//! agent's index, welcomes it with the job and then relays messages both
//! ways, pinging every second, until the connection ends.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    self, Message,
    handshake::server::{ErrorResponse, Request, Response},
};

use super::coordinator::Agent;
use super::share;
use super::wire::{FromAgent, FromCoordinator, Job, PATH};
use super::{PING_EVERY, SILENT_FOR, token_matches};

/// Bound on an agent's websocket upgrade and its `hello`.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

/// Bound on an agent's answer to `welcome` (it runs its preflight).
const READY_WITHIN: Duration = Duration::from_secs(30);

/// Bound on closing a connection after `bye`.
const BYE_WITHIN: Duration = Duration::from_secs(3);

/// What a connection tells the protocol.
pub(super) enum Event {
    /// An agent is in and ready.
    Joined(Agent),
    /// An agent refused the job; the run cannot go on.
    Refused { who: String, reason: String },
    /// A message from agent `index`.
    Msg(u32, FromAgent),
    /// Agent `index`'s connection is gone.
    Lost(u32, String),
    /// Something worth a progress line (a refused connection).
    Note(String),
}

/// Which agent indices are taken, shared by the connection tasks.
pub(super) struct Registry {
    pub(super) agents: u32,
    pub(super) taken: Vec<bool>,
    /// Set once all agents joined: later connections are turned away.
    pub(super) complete: bool,
}

impl Registry {
    pub(super) fn claim(&mut self, asked: Option<u32>) -> Result<u32, String> {
        if self.complete {
            return Err(format!(
                "the coordinator already has its {} agents; this run needs no more",
                self.agents
            ));
        }
        match asked {
            Some(i) if i >= self.agents => Err(format!(
                "index {i} is out of range: this run has {} agents (indices 0 to {})",
                self.agents,
                self.agents - 1
            )),
            Some(i) if self.taken[i as usize] => Err(format!(
                "index {i} is taken by another agent; give each agent its own --index"
            )),
            Some(i) => {
                self.taken[i as usize] = true;
                Ok(i)
            }
            None => match self.taken.iter().position(|t| !t) {
                Some(i) => {
                    self.taken[i] = true;
                    Ok(i as u32)
                }
                None => Err(format!(
                    "all {} agent indices are taken; this run needs no more agents",
                    self.agents
                )),
            },
        }
    }

    pub(super) fn release(&mut self, index: u32) {
        if !self.complete {
            self.taken[index as usize] = false;
        }
    }
}

/// What every connection task needs.
pub(super) struct Shared {
    pub(super) token: String,
    pub(super) job: Job,
    pub(super) agents: u32,
    /// The scenario's concurrency, for each agent's preflight share.
    pub(super) concurrency: u32,
    pub(super) registry: Mutex<Registry>,
    pub(super) events: mpsc::UnboundedSender<Event>,
}

pub(super) async fn accept_loop(
    listener: std::net::TcpListener,
    ctx: Arc<Shared>,
    tls: Option<super::tls::ServerTls>,
    mut stop: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = ctx
                .events
                .send(Event::Note(format!("cannot accept agents: {e}")));
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let ctx = Arc::clone(&ctx);
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            Some(tls) => match tls.accept(stream).await {
                                Ok(stream) => serve(stream, peer, ctx).await,
                                Err(e) => {
                                    let _ = ctx.events.send(Event::Note(format!(
                                        "turned away a connection from {peer}: TLS handshake failed ({e})"
                                    )));
                                }
                            },
                            None => serve(stream, peer, ctx).await,
                        }
                    });
                }
                // EMFILE and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Checks the upgrade request: the agent path and the bearer token.
#[allow(clippy::result_large_err)] // tungstenite's callback signature
fn check_request(
    req: &Request,
    response: Response,
    token: &str,
) -> Result<Response, ErrorResponse> {
    let reject = |status: u16, text: &str| {
        let mut r = ErrorResponse::new(Some(text.to_owned()));
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::FORBIDDEN);
        r
    };
    if req.uri().path() != PATH {
        return Err(reject(404, "not a leakbench agent endpoint"));
    }
    let presented = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if !token_matches(presented, token.as_bytes()) {
        return Err(reject(401, "wrong or missing bearer token"));
    }
    Ok(response)
}

/// One agent connection, from upgrade to close.
async fn serve<S>(stream: S, peer: SocketAddr, ctx: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let note = |line: String| {
        let _ = ctx.events.send(Event::Note(line));
    };
    let token = ctx.token.clone();
    // tungstenite's callback signature fixes the error type.
    #[allow(clippy::result_large_err)]
    let upgrade = tokio_tungstenite::accept_hdr_async(stream, move |req: &Request, resp| {
        check_request(req, resp, &token)
    });
    let mut ws = match tokio::time::timeout(HELLO_WITHIN, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(tungstenite::Error::Http(r))) if r.status() == 401 => {
            return note(format!(
                "turned away a connection from {peer}: wrong or missing bearer token"
            ));
        }
        Ok(Err(e)) => return note(format!("turned away a connection from {peer}: {e}")),
        Err(_) => {
            return note(format!(
                "turned away a connection from {peer}: no upgrade within {HELLO_WITHIN:?}"
            ));
        }
    };
    let (name, asked) = match tokio::time::timeout(HELLO_WITHIN, next_json(&mut ws)).await {
        Ok(Some(FromAgent::Hello {
            version,
            name,
            index,
            ..
        })) => {
            if version != env!("CARGO_PKG_VERSION") {
                let reason = format!(
                    "the agent is leakbench {version}, the coordinator {}; run the same version on both",
                    env!("CARGO_PKG_VERSION")
                );
                note(format!("turned away {name} ({peer}): {reason}"));
                let _ = send_json(&mut ws, &FromCoordinator::Rejected { reason }).await;
                return;
            }
            (name, index)
        }
        _ => return note(format!("turned away a connection from {peer}: no hello")),
    };
    let claimed = ctx
        .registry
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .claim(asked);
    let index = match claimed {
        Ok(i) => i,
        Err(reason) => {
            note(format!("turned away {name} ({peer}): {reason}"));
            let _ = send_json(&mut ws, &FromCoordinator::Rejected { reason }).await;
            let _ = ws.close(None).await;
            return;
        }
    };
    let release = || {
        ctx.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(index);
    };
    let concurrency = share::split(ctx.concurrency, ctx.agents)[index as usize];
    let welcome = FromCoordinator::Welcome {
        index,
        agents: ctx.agents,
        job: Box::new(ctx.job.clone()),
        concurrency,
    };
    if send_json(&mut ws, &welcome).await.is_err() {
        release();
        return;
    }
    let who = format!("agent {index} ({name}, {peer})");
    let (open_files, fits) = match tokio::time::timeout(READY_WITHIN, next_json(&mut ws)).await {
        Ok(Some(FromAgent::Ready { open_files, fits })) => (open_files, fits),
        Ok(Some(FromAgent::Refused { reason })) => {
            release();
            let _ = ctx.events.send(Event::Refused { who, reason });
            return;
        }
        _ => {
            release();
            return note(format!(
                "{who} did not answer the welcome; it was turned away"
            ));
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let agent = Agent {
        index,
        name,
        peer,
        open_files,
        fits,
        tx,
        lost: None,
    };
    if ctx.events.send(Event::Joined(agent)).is_err() {
        return;
    }
    let why = relay(&mut ws, &mut rx, index, &ctx.events).await;
    release();
    let _ = ctx.events.send(Event::Lost(index, why));
}

/// Relays messages both ways and pings, until the connection ends; returns
/// why it ended.
async fn relay<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    rx: &mut mpsc::UnboundedReceiver<FromCoordinator>,
    index: u32,
    events: &mpsc::UnboundedSender<Event>,
) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(msg) => {
                    let bye = matches!(msg, FromCoordinator::Bye);
                    if let Err(e) = send_json(ws, &msg).await {
                        return format!("sending failed: {e}");
                    }
                    if bye {
                        let _ = tokio::time::timeout(BYE_WITHIN, ws.close(None)).await;
                        return "the run ended".to_owned();
                    }
                }
                None => {
                    let _ = ws.close(None).await;
                    return "the coordinator hung up".to_owned();
                }
            },
            frame = ws.next() => {
                heard = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<FromAgent>(&text) {
                        Ok(msg) => {
                            let _ = events.send(Event::Msg(index, msg));
                        }
                        Err(e) => {
                            let _ = events.send(Event::Msg(index, FromAgent::Error {
                                message: format!("sent a message the coordinator cannot read: {e}"),
                            }));
                        }
                    },
                    Some(Ok(Message::Close(_))) | None => return "connection closed".to_owned(),
                    Some(Ok(_)) => {}
                    Some(Err(tungstenite::Error::Protocol(
                        tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    ))) => return "connection reset".to_owned(),
                    Some(Err(e)) => return format!("connection failed: {e}"),
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_FOR {
                    return format!(
                        "no answer to pings for {} s",
                        SILENT_FOR.as_secs()
                    );
                }
                if let Err(e) = ws.send(Message::Ping(Vec::new().into())).await {
                    return format!("sending a ping failed: {e}");
                }
            }
        }
    }
}

/// Sends one message as a JSON text frame.
pub(super) async fn send_json<S, M>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    msg: &M,
) -> Result<(), tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    M: serde::Serialize,
{
    let text = serde_json::to_string(msg).unwrap_or_default();
    ws.send(Message::Text(text.into())).await
}

/// The next JSON text message, skipping control frames; `None` when the
/// connection ends or sends something unreadable.
pub(super) async fn next_json<S, M>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Option<M>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    M: serde::de::DeserializeOwned,
{
    loop {
        match ws.next().await? {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_claimed_once() {
        let mut r = Registry {
            agents: 3,
            taken: vec![false; 3],
            complete: false,
        };
        assert_eq!(r.claim(Some(1)), Ok(1));
        assert!(r.claim(Some(1)).unwrap_err().contains("taken"));
        assert!(r.claim(Some(3)).unwrap_err().contains("out of range"));
        assert_eq!(r.claim(None), Ok(0));
        assert_eq!(r.claim(None), Ok(2));
        assert!(r.claim(None).is_err());
        r.release(2);
        assert_eq!(r.claim(None), Ok(2));
        r.complete = true;
        r.release(2);
        assert!(r.claim(None).unwrap_err().contains("already has"));
    }
}
