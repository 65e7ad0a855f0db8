//! Why a session failed: one [`Cause`] per failed session, the [`Stage`] it
//! failed in, and the underlying error kept as a value so that a message is
//! only formatted when the report still has room for an example.

use std::fmt;
use std::io;
use std::time::Duration;

use http::StatusCode;
use tokio_tungstenite::tungstenite;

/// The cause a failed session is counted under, once per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// Nothing listened: the connect was refused.
    Refused,
    /// The server reset the connection.
    Reset,
    /// A connect, handshake, request or close did not finish within
    /// `load.step_timeout` (or the cycle's deadline passed).
    Timeout,
    /// The websocket upgrade was rejected or malformed.
    Handshake,
    /// An HTTP response had a status of 400 or above.
    BadStatus,
    /// An `expect` step timed out, or the stream ended before the text came.
    ExpectMissed,
    /// The server closed the connection before the session was done with it.
    Closed,
    /// The server broke the websocket or HTTP protocol after the handshake.
    Protocol,
    /// Any other I/O error.
    Io,
}

impl Cause {
    /// Every cause, in report order.
    pub const ALL: [Cause; 9] = [
        Cause::Refused,
        Cause::Reset,
        Cause::Timeout,
        Cause::Handshake,
        Cause::BadStatus,
        Cause::ExpectMissed,
        Cause::Closed,
        Cause::Protocol,
        Cause::Io,
    ];

    /// The key this cause is reported under in `CycleLoad::failures`.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Refused => "refused",
            Cause::Reset => "reset",
            Cause::Timeout => "timeout",
            Cause::Handshake => "handshake",
            Cause::BadStatus => "bad_status",
            Cause::ExpectMissed => "expect_missed",
            Cause::Closed => "closed",
            Cause::Protocol => "protocol",
            Cause::Io => "io",
        }
    }

    /// Position in [`Cause::ALL`], for counting in a fixed array.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The cause an I/O error stands for.
    pub(crate) fn of_io(e: &io::Error) -> Cause {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Cause::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Cause::Reset,
            io::ErrorKind::UnexpectedEof => Cause::Closed,
            io::ErrorKind::TimedOut => Cause::Timeout,
            _ => Cause::Io,
        }
    }
}

/// Where in its life a session failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// TCP connect.
    Connect,
    /// Websocket upgrade, or HTTP connection setup.
    Handshake,
    /// The websocket step with this index in `load.steps`.
    Step(usize),
    /// The HTTP request with this index (0-based) on the session's connection.
    Request(u32),
    /// Holding the connection open.
    Hold,
    /// Closing: close frame, FIN and waiting for the server's end.
    Close,
    /// The session was still open when the cycle's deadline passed.
    Deadline,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Connect => f.write_str("connect"),
            Stage::Handshake => f.write_str("handshake"),
            Stage::Step(i) => write!(f, "step {}", i + 1),
            Stage::Request(i) => write!(f, "request {}", i + 1),
            Stage::Hold => f.write_str("hold"),
            Stage::Close => f.write_str("close"),
            Stage::Deadline => f.write_str("cycle deadline"),
        }
    }
}

/// The error behind a failure, kept unformatted.
#[derive(Debug)]
pub(crate) enum Detail {
    Io(io::Error),
    Ws(tungstenite::Error),
    Http(hyper::Error),
    Status(StatusCode),
    TimedOut(Duration),
    /// A fixed explanation.
    Note(&'static str),
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Io(e) => write!(f, "{e}"),
            Detail::Ws(tungstenite::Error::Http(response)) => {
                write!(f, "upgrade rejected with HTTP {}", response.status())
            }
            Detail::Ws(e) => write!(f, "{e}"),
            Detail::Http(e) => {
                write!(f, "{e}")?;
                if let Some(io) = io_source(e) {
                    write!(f, ": {io}")?;
                }
                Ok(())
            }
            Detail::Status(s) => write!(f, "HTTP {s}"),
            Detail::TimedOut(d) => write!(f, "no answer within {d:?}"),
            Detail::Note(text) => f.write_str(text),
        }
    }
}

/// One failed session: counted under `cause`, described by stage and detail.
#[derive(Debug)]
pub struct Failure {
    /// What the failure is counted as.
    pub cause: Cause,
    /// Where the session was when it failed.
    pub stage: Stage,
    detail: Detail,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {}: {}",
            self.cause.name(),
            self.stage,
            self.detail
        )
    }
}

impl Failure {
    pub(crate) fn new(cause: Cause, stage: Stage, detail: Detail) -> Failure {
        Failure {
            cause,
            stage,
            detail,
        }
    }

    pub(crate) fn into_detail(self) -> Detail {
        self.detail
    }

    /// A bound of `limit` passed at `stage`.
    pub(crate) fn timeout(stage: Stage, limit: Duration) -> Failure {
        Failure::new(Cause::Timeout, stage, Detail::TimedOut(limit))
    }

    /// The server ended the connection while the session still needed it.
    pub(crate) fn closed(stage: Stage, note: &'static str) -> Failure {
        Failure::new(Cause::Closed, stage, Detail::Note(note))
    }

    pub(crate) fn io(stage: Stage, e: io::Error) -> Failure {
        Failure::new(Cause::of_io(&e), stage, Detail::Io(e))
    }

    /// A TLS handshake error: a certificate or protocol problem is a
    /// failed handshake; anything else is counted by its I/O kind.
    pub(crate) fn tls(stage: Stage, e: io::Error) -> Failure {
        let cause = match e.kind() {
            io::ErrorKind::InvalidData => Cause::Handshake,
            _ => Cause::of_io(&e),
        };
        Failure::new(cause, stage, Detail::Io(e))
    }

    /// A websocket error. During the handshake anything that is not a plain
    /// I/O failure means the upgrade itself went wrong.
    pub(crate) fn ws(stage: Stage, e: tungstenite::Error) -> Failure {
        use tungstenite::Error as E;
        use tungstenite::error::ProtocolError;
        let cause = match &e {
            E::Io(io) => Cause::of_io(io),
            _ if stage == Stage::Handshake => Cause::Handshake,
            E::ConnectionClosed
            | E::AlreadyClosed
            | E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Cause::Closed,
            E::Http(_) | E::HttpFormat(_) | E::Url(_) => Cause::Handshake,
            _ => Cause::Protocol,
        };
        Failure::new(cause, stage, Detail::Ws(e))
    }

    /// An error from hyper's client connection.
    pub(crate) fn http(stage: Stage, e: hyper::Error) -> Failure {
        let cause = if let Some(io) = io_source(&e) {
            Cause::of_io(io)
        } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
            Cause::Closed
        } else if e.is_parse() || e.is_parse_status() {
            Cause::Protocol
        } else {
            Cause::Io
        };
        Failure::new(cause, stage, Detail::Http(e))
    }
}

/// The I/O error somewhere in an error's source chain.
fn io_source<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut current = e.source();
    // Source chains are short; the bound keeps a cyclic chain from spinning.
    for _ in 0..8 {
        let err = current?;
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_map_to_causes() {
        let cause = |kind| Cause::of_io(&io::Error::from(kind));
        assert_eq!(cause(io::ErrorKind::ConnectionRefused), Cause::Refused);
        assert_eq!(cause(io::ErrorKind::ConnectionReset), Cause::Reset);
        assert_eq!(cause(io::ErrorKind::UnexpectedEof), Cause::Closed);
        assert_eq!(cause(io::ErrorKind::PermissionDenied), Cause::Io);
    }

    #[test]
    fn names_follow_the_index_order() {
        for (i, cause) in Cause::ALL.iter().enumerate() {
            assert_eq!(cause.index(), i, "{}", cause.name());
        }
    }

    #[test]
    fn message_names_cause_stage_and_detail() {
        let f = Failure::new(
            Cause::BadStatus,
            Stage::Request(2),
            Detail::Status(StatusCode::INTERNAL_SERVER_ERROR),
        );
        assert_eq!(
            f.to_string(),
            "bad_status at request 3: HTTP 500 Internal Server Error"
        );
    }
}
