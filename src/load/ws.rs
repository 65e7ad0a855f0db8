//! The websocket transport: upgrade, `send`/`expect` steps, attentive hold,
//! close handshake.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::Uri;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use super::failure::{Cause, Detail, Failure, Stage};
use super::session::{Transport, bounded};
use super::stats::{Metric, Recorder};
use crate::scenario::Step;

/// Read buffer allocated per connection up front. tungstenite's default is
/// 128 KiB, which at 20,000 sessions is 2.5 GiB of mostly empty buffer; 4 KiB
/// holds the small frames a leak test exchanges, and bigger frames still fit
/// because the buffer grows to the frame being read.
const READ_BUFFER: usize = 4 * 1024;

/// A step, prepared once per cycle so sessions share the message bytes.
#[derive(Debug)]
enum WsStep {
    Send(Message),
    Expect(Box<[u8]>),
}

/// Websocket sessions against one URL.
#[derive(Debug)]
pub(crate) struct Ws {
    url: Uri,
    steps: Vec<WsStep>,
    step_timeout: Duration,
    config: WebSocketConfig,
}

impl Ws {
    pub(crate) fn new(url: Uri, steps: &[Step], step_timeout: Duration) -> Ws {
        let steps = steps
            .iter()
            .map(|step| match step {
                Step::Send(text) => WsStep::Send(Message::Text(Utf8Bytes::from(text.clone()))),
                Step::Expect(text) => WsStep::Expect(text.as_bytes().into()),
            })
            .collect();
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            // Write each message straight through: nothing to batch, and no
            // write buffer kept per idle connection.
            .write_buffer_size(0);
        Ws {
            url,
            steps,
            step_timeout,
            config,
        }
    }

    /// Waits for a message containing `needle`, skipping others; pings are
    /// answered by tungstenite while reading.
    async fn expect(
        ws: &mut WebSocketStream<TcpStream>,
        needle: &[u8],
        stage: Stage,
    ) -> Result<(), Failure> {
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
            if contains(payload, needle) {
                return Ok(());
            }
        }
    }
}

impl Transport for Ws {
    type Conn = WebSocketStream<TcpStream>;

    async fn open(&self, stream: TcpStream, rec: &Recorder) -> Result<Self::Conn, Failure> {
        let start = Instant::now();
        let handshake = tokio_tungstenite::client_async_with_config(
            self.url.clone(),
            stream,
            Some(self.config),
        );
        let (ws, _response) = bounded(self.step_timeout, Stage::Handshake, handshake)
            .await?
            .map_err(|e| Failure::ws(Stage::Handshake, e))?;
        rec.record(Metric::Handshake, start.elapsed());
        Ok(ws)
    }

    async fn exchange(&self, ws: &mut Self::Conn, rec: &Recorder) -> Result<(), Failure> {
        let mut sent_at = None;
        for (i, step) in self.steps.iter().enumerate() {
            let stage = Stage::Step(i);
            match step {
                WsStep::Send(message) => {
                    bounded(self.step_timeout, stage, ws.send(message.clone()))
                        .await?
                        .map_err(|e| Failure::ws(stage, e))?;
                    sent_at = Some(Instant::now());
                }
                WsStep::Expect(needle) => {
                    tokio::time::timeout(self.step_timeout, Ws::expect(ws, needle, stage))
                        .await
                        .map_err(|_| {
                            Failure::new(
                                Cause::ExpectMissed,
                                stage,
                                Detail::TimedOut(self.step_timeout),
                            )
                        })??;
                    if let Some(sent) = sent_at.take() {
                        rec.record(Metric::RoundTrip, sent.elapsed());
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

    async fn release(&self, mut ws: Self::Conn, goodbye: bool) -> Result<TcpStream, Failure> {
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
