//! The websocket transport: upgrade (headers, subprotocols, per-session
//! URL), the session's script (send, expect, ping, pause, repeat), attentive
//! hold, close handshake.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::SEC_WEBSOCKET_PROTOCOL;
use http::{HeaderValue, Uri};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::failure::{Cause, Detail, Failure, Stage};
use super::net::Stream;
use super::session::{Session, Transport, bounded};
use super::stats::{Metric, Recorder};
use super::template::{Headers, Template, Vars};
use crate::scenario::{Load, Matcher, Step, Target};

/// Read buffer allocated per connection up front. tungstenite's default is
/// 128 KiB, which at 20,000 sessions is 2.5 GiB of mostly empty buffer; 4 KiB
/// holds the small frames a leak test exchanges, and bigger frames still fit
/// because the buffer grows to the frame being read.
const READ_BUFFER: usize = 4 * 1024;

/// A message to send, prepared once per cycle.
#[derive(Debug)]
enum Outgoing {
    /// The same message for every session (cloning shares the bytes).
    Fixed(Message),
    /// Text with placeholders, filled per session.
    Text(Template),
}

/// What an expect waits for, prepared once per cycle.
#[derive(Debug)]
enum Wanted {
    Contains(Template),
    Regex(regex::bytes::Regex),
}

/// One instruction of a session's script: steps flattened, `repeat` blocks
/// turned into a begin and an end, so the script runs without recursion.
#[derive(Debug)]
enum Op {
    Send(Outgoing, Duration),
    Expect(Wanted, Duration),
    Ping(Bytes, Duration),
    Pause(Duration),
    /// Start of a block run `times` times; `end` is the index of its `End`.
    Begin {
        times: u32,
        end: usize,
    },
    /// End of the block that starts at `begin`.
    End {
        begin: usize,
    },
}

/// An op and the number of the step it came from (file order, from 0).
type Script = Vec<(usize, Op)>;

/// Websocket sessions against one URL.
#[derive(Debug)]
pub(crate) struct Ws {
    url: Uri,
    url_template: Option<Template>,
    headers: Headers,
    subprotocols: Option<HeaderValue>,
    script: Script,
    step_timeout: Duration,
    config: WebSocketConfig,
}

impl Ws {
    pub(crate) fn new(target: &Target, load: &Load) -> Result<Ws, String> {
        let mut script = Vec::new();
        let mut number = 0;
        compile(&load.steps, load.step_timeout, &mut script, &mut number)?;
        let subprotocols = if load.subprotocols.is_empty() {
            None
        } else {
            Some(
                HeaderValue::from_str(&load.subprotocols.join(", "))
                    .map_err(|e| format!("subprotocols: {e}"))?,
            )
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            // Write each message straight through: nothing to batch, and no
            // write buffer kept per idle connection.
            .write_buffer_size(0);
        Ok(Ws {
            url: target.url.clone(),
            url_template: target.url_template.as_deref().map(Template::new),
            headers: Headers::new(&load.headers),
            subprotocols,
            script,
            step_timeout: load.step_timeout,
            config,
        })
    }

    /// Waits for a message `wanted` describes, skipping others; pings are
    /// answered by tungstenite while reading.
    async fn expect(
        ws: &mut WebSocketStream<Stream>,
        wanted: &Wanted,
        vars: Vars,
        stage: Stage,
    ) -> Result<(), Failure> {
        let needle = match wanted {
            Wanted::Contains(t) => Some(t.render(vars)),
            Wanted::Regex(_) => None,
        };
        loop {
            let message = match ws.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(missed_if_closed(Failure::ws(stage, e))),
                None => return Err(stream_ended(stage)),
            };
            let payload: &[u8] = match &message {
                Message::Text(text) => text.as_bytes(),
                Message::Binary(bytes) => bytes,
                Message::Close(_) => return Err(stream_ended(stage)),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            let matched = match (wanted, &needle) {
                (Wanted::Regex(re), _) => re.is_match(payload),
                (_, Some(needle)) => contains(payload, needle.as_bytes()),
                (Wanted::Contains(_), None) => true,
            };
            if matched {
                return Ok(());
            }
        }
    }

    /// Waits for the pong carrying `payload`, skipping other messages.
    async fn pong(
        ws: &mut WebSocketStream<Stream>,
        payload: &[u8],
        stage: Stage,
    ) -> Result<(), Failure> {
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(p))) if p.as_ref() == payload => return Ok(()),
                Some(Ok(Message::Close(_))) | None => return Err(stream_ended(stage)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(missed_if_closed(Failure::ws(stage, e))),
            }
        }
    }
}

/// Flattens `steps` into `script`, numbering steps in file order.
fn compile(
    steps: &[Step],
    default: Duration,
    script: &mut Script,
    number: &mut usize,
) -> Result<(), String> {
    for step in steps {
        let n = *number;
        *number += 1;
        let op = match step {
            Step::Send { text, timeout } => {
                let t = Template::new(text);
                let out = match t.fixed() {
                    Some(fixed) => {
                        Outgoing::Fixed(Message::Text(Utf8Bytes::from(fixed.to_owned())))
                    }
                    None => Outgoing::Text(t),
                };
                Op::Send(out, timeout.unwrap_or(default))
            }
            Step::SendBinary { bytes, timeout } => Op::Send(
                Outgoing::Fixed(Message::Binary(Bytes::from(bytes.clone()))),
                timeout.unwrap_or(default),
            ),
            Step::Expect { matcher, timeout } => {
                let wanted = match matcher {
                    Matcher::Contains(text) => Wanted::Contains(Template::new(text)),
                    Matcher::Regex(re) => Wanted::Regex(
                        regex::bytes::Regex::new(re).map_err(|e| format!("step {}: {e}", n + 1))?,
                    ),
                };
                Op::Expect(wanted, timeout.unwrap_or(default))
            }
            Step::Ping { payload, timeout } => {
                Op::Ping(Bytes::from(payload.clone()), timeout.unwrap_or(default))
            }
            Step::Pause(d) => Op::Pause(*d),
            Step::Repeat { times, steps } => {
                let begin = script.len();
                script.push((
                    n,
                    Op::Begin {
                        times: *times,
                        end: 0,
                    },
                ));
                compile(steps, default, script, number)?;
                let end = script.len();
                script.push((n, Op::End { begin }));
                script[begin].1 = Op::Begin { times: *times, end };
                continue;
            }
        };
        script.push((n, op));
    }
    Ok(())
}

impl Transport for Ws {
    type Conn = WebSocketStream<Stream>;

    async fn open(
        &self,
        stream: Stream,
        session: &Session,
        rec: &Recorder,
    ) -> Result<Self::Conn, Failure> {
        let start = Instant::now();
        let uri = match &self.url_template {
            None => self.url.clone(),
            Some(t) => t.render(session.vars).parse::<Uri>().map_err(|e| {
                Failure::new(
                    Cause::Handshake,
                    Stage::Handshake,
                    Detail::Io(std::io::Error::other(format!("session URL: {e}"))),
                )
            })?,
        };
        let mut request = uri
            .into_client_request()
            .map_err(|e| Failure::ws(Stage::Handshake, e))?;
        self.headers.apply(request.headers_mut(), session.vars);
        if let Some(protocols) = &self.subprotocols {
            request
                .headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, protocols.clone());
        }
        let handshake =
            tokio_tungstenite::client_async_with_config(request, stream, Some(self.config));
        let (ws, _response) = bounded(self.step_timeout, Stage::Handshake, handshake)
            .await?
            .map_err(|e| Failure::ws(Stage::Handshake, e))?;
        rec.record(Metric::Handshake, start.elapsed());
        Ok(ws)
    }

    async fn exchange(
        &self,
        ws: &mut Self::Conn,
        session: &Session,
        _part: u32,
        rec: &Recorder,
    ) -> Result<(), Failure> {
        let mut sent_at = None;
        // Runs left of each open block; depth is bounded by the scenario.
        let mut loops: Vec<u32> = Vec::new();
        let mut pc = 0;
        while let Some((number, op)) = self.script.get(pc) {
            let stage = Stage::Step(*number);
            pc += 1;
            match op {
                Op::Send(out, limit) => {
                    let message = match out {
                        Outgoing::Fixed(m) => m.clone(),
                        Outgoing::Text(t) => {
                            Message::Text(Utf8Bytes::from(t.render(session.vars).into_owned()))
                        }
                    };
                    bounded(*limit, stage, ws.send(message))
                        .await?
                        .map_err(|e| Failure::ws(stage, e))?;
                    sent_at = Some(Instant::now());
                }
                Op::Expect(wanted, limit) => {
                    tokio::time::timeout(*limit, Ws::expect(ws, wanted, session.vars, stage))
                        .await
                        .map_err(|_| {
                            Failure::new(Cause::ExpectMissed, stage, Detail::TimedOut(*limit))
                        })??;
                    if let Some(sent) = sent_at.take() {
                        rec.record(Metric::RoundTrip, sent.elapsed());
                    }
                }
                Op::Ping(payload, limit) => {
                    let sent = Instant::now();
                    bounded(*limit, stage, async {
                        ws.send(Message::Ping(payload.clone()))
                            .await
                            .map_err(|e| Failure::ws(stage, e))?;
                        Ws::pong(ws, payload, stage).await
                    })
                    .await
                    .map_err(|_| {
                        Failure::new(Cause::ExpectMissed, stage, Detail::TimedOut(*limit))
                    })??;
                    rec.record(Metric::RoundTrip, sent.elapsed());
                }
                Op::Pause(d) => tokio::time::sleep(*d).await,
                Op::Begin { times, end } => {
                    if *times == 0 {
                        pc = end + 1;
                    } else {
                        loops.push(*times);
                    }
                }
                Op::End { begin } => {
                    if let Some(left) = loops.last_mut() {
                        *left -= 1;
                        if *left > 0 {
                            pc = begin + 1;
                        } else {
                            loops.pop();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn hold(&self, ws: &mut Self::Conn, until: Instant) -> Result<(), Failure> {
        loop {
            match tokio::time::timeout_at(until, ws.next()).await {
                Err(_) => return Ok(()),
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) => {
                    return Err(Failure::closed(Stage::Hold, "server closed during hold"));
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Err(Failure::ws(Stage::Hold, e)),
            }
        }
    }

    async fn release(&self, mut ws: Self::Conn, goodbye: bool) -> Result<Stream, Failure> {
        if goodbye {
            bounded(self.step_timeout, Stage::Close, async {
                ws.close(None).await?;
                // Until the server's close reply (or its end of stream).
                while let Some(message) = ws.next().await {
                    if let Message::Close(_) = message? {
                        break;
                    }
                }
                Ok(())
            })
            .await?
            .or_else(|e| match e {
                tungstenite::Error::ConnectionClosed => Ok(()),
                e => Err(Failure::ws(Stage::Close, e)),
            })?;
        }
        Ok(ws.into_inner())
    }
}

fn stream_ended(stage: Stage) -> Failure {
    Failure::new(
        Cause::ExpectMissed,
        stage,
        Detail::Note("connection closed before the expected message"),
    )
}

/// An expected message that cannot come any more is a miss, not a close.
fn missed_if_closed(f: Failure) -> Failure {
    if f.cause == Cause::Closed {
        Failure::new(Cause::ExpectMissed, f.stage, f.into_detail())
    } else {
        f
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::contains;

    #[test]
    fn contains_finds_substrings() {
        assert!(contains(b"PONG\r\n", b"PONG"));
        assert!(contains(b"x", b""));
        assert!(!contains(b"PO", b"PONG"));
    }
}
