//! `[load]`: session counts and cycles, timing, the HTTP side (requests,
//! method, body, statuses, connections), subprotocols, headers, arrival rate
//! and source addresses. Its steps are in the steps module.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::raw::FileLoad;
use super::validate::Validator;
use super::{
    Body, CloseMode, DEFAULT_MAX_FAILURE_RATIO, DEFAULT_STEP_TIMEOUT, HttpConnection, HttpLoad,
    Load, MAX_SESSIONS, Rate, ScenarioError, Transport,
};

impl Validator<'_> {
    pub(super) fn load(
        &self,
        file: FileLoad,
        transport: Transport,
        dir: &Path,
    ) -> Result<Load, ScenarioError> {
        let sessions = self.count("load.sessions", Some(file.sessions), 1, 1, MAX_SESSIONS)?;
        let concurrency =
            self.count("load.concurrency", file.concurrency, sessions, 1, sessions)?;
        let warmup = self.count("load.warmup", file.warmup, 1, 0, 100)?;
        let cycles = self.count("load.cycles", file.cycles, 3, 2, 1000)?;
        let hold = self.duration("load.hold", file.hold, Duration::ZERO)?;
        let step_timeout =
            self.duration("load.step_timeout", file.step_timeout, DEFAULT_STEP_TIMEOUT)?;
        if step_timeout.is_zero() {
            return Err(self.invalid("load.step_timeout", "must be above zero, e.g. \"10s\""));
        }
        let max_failure_ratio = file.max_failure_ratio.unwrap_or(DEFAULT_MAX_FAILURE_RATIO);
        if !(0.0..=1.0).contains(&max_failure_ratio) {
            return Err(self.invalid(
                "load.max_failure_ratio",
                format!("{max_failure_ratio} is not a share between 0.0 and 1.0 (0.01 = 1%)"),
            ));
        }
        let close = file.close.unwrap_or(CloseMode::Graceful);
        if close == CloseMode::Silent && hold.is_zero() {
            return Err(self.invalid(
                "load.close",
                "\"silent\" keeps the socket open, unattended, for `hold`; give a hold, e.g. hold = \"5s\"",
            ));
        }

        let steps = self.steps("load.steps", file.steps, dir, 0)?;
        let only = |key: &str, what: &str, given: bool| -> Result<(), ScenarioError> {
            if given {
                Err(self.invalid(key, format!("applies to {what} targets only")))
            } else {
                Ok(())
            }
        };
        let ws = transport == Transport::WebSocket;
        only("load.requests", "http(s)", ws && file.requests.is_some())?;
        only("load.body", "http(s)", ws && file.body.is_some())?;
        only("load.body_file", "http(s)", ws && file.body_file.is_some())?;
        only(
            "load.expect_status",
            "http(s)",
            ws && file.expect_status.is_some(),
        )?;
        only(
            "load.connection",
            "http(s)",
            ws && file.connection.is_some(),
        )?;
        only("load.steps", "websocket", !ws && !steps.is_empty())?;
        only(
            "load.subprotocols",
            "websocket",
            !ws && file.subprotocols.is_some(),
        )?;
        let requests = if ws {
            0
        } else {
            self.count("load.requests", file.requests, 1, 1, 1_000_000)?
        };
        let mut headers = Vec::with_capacity(file.headers.len());
        for (name, value) in &file.headers {
            let key = format!("load.headers.{name}");
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| self.invalid(&key, "is not a valid HTTP header name"))?;
            let value = self.expand(&key, value)?;
            self.check_placeholders(&key, &value)?;
            let value = http::HeaderValue::from_str(&value).map_err(|_| {
                self.invalid(&key, "value has characters not allowed in an HTTP header")
            })?;
            headers.push((header, value));
        }
        let method = file.method.unwrap_or_else(|| "GET".to_owned());
        if ws && method != "GET" {
            return Err(self.invalid("load.method", "applies to http(s) targets only"));
        }
        if http::Method::from_bytes(method.as_bytes()).is_err() {
            return Err(self.invalid("load.method", format!("`{method}` is not an HTTP method")));
        }
        let body = match (file.body, file.body_file) {
            (Some(_), Some(_)) => {
                return Err(self.invalid("load.body", "give `body` or `body_file`, not both"));
            }
            (Some(text), None) => {
                let text = self.expand("load.body", &text)?;
                self.check_placeholders("load.body", &text)?;
                Some(Body::Text(text))
            }
            (None, Some(path)) => {
                Some(Body::Bytes(self.read_file("load.body_file", &path, dir)?))
            }
            (None, None) => None,
        };
        let mut expect_status = Vec::new();
        for code in file.expect_status.unwrap_or_default() {
            if !(100..=599).contains(&code) {
                return Err(self.invalid(
                    "load.expect_status",
                    format!(
                        "{code} is not an HTTP status; use codes from 100 to 599, e.g. [200, 204]"
                    ),
                ));
            }
            expect_status.push(code as u16);
        }
        let http = HttpLoad {
            requests,
            method: method.clone(),
            body,
            expect_status,
            connection: file.connection.unwrap_or(HttpConnection::KeepAlive),
        };
        let mut subprotocols = Vec::new();
        for name in file.subprotocols.unwrap_or_default() {
            let token_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if !token_ok {
                return Err(self.invalid(
                    "load.subprotocols",
                    format!("`{name}` is not a subprotocol name (an HTTP token, e.g. \"chat.v1\")"),
                ));
            }
            subprotocols.push(name);
        }
        let rate = match file.rate {
            None => {
                if file.ramp.is_some() {
                    return Err(self.invalid("load.ramp", "needs `rate` (sessions per second)"));
                }
                None
            }
            Some(r) if r.is_finite() && r > 0.0 && r <= 1_000_000.0 => Some(Rate {
                per_second: r,
                ramp: self.duration("load.ramp", file.ramp, Duration::ZERO)?,
            }),
            Some(r) => {
                return Err(self.invalid(
                    "load.rate",
                    format!("{r} is not a rate; give sessions per second above 0, e.g. 500"),
                ));
            }
        };
        let mut source_addresses = Vec::new();
        for text in file.source_addresses.unwrap_or_default() {
            let ip: IpAddr = text.parse().map_err(|_| {
                self.invalid(
                    "load.source_addresses",
                    format!(
                        "`{text}` is not an IP address; write e.g. [\"127.0.0.2\", \"127.0.0.3\"]"
                    ),
                )
            })?;
            if !ip.is_loopback() {
                return Err(self.invalid(
                    "load.source_addresses",
                    format!("`{ip}` is not a loopback address; load stays on 127.0.0.0/8 or ::1"),
                ));
            }
            if source_addresses.contains(&ip) {
                return Err(
                    self.invalid("load.source_addresses", format!("`{ip}` is listed twice"))
                );
            }
            source_addresses.push(ip);
        }
        Ok(Load {
            sessions,
            concurrency,
            warmup,
            cycles,
            hold,
            close,
            requests,
            method,
            http,
            steps,
            subprotocols,
            rate,
            source_addresses,
            headers,
            step_timeout,
            max_failure_ratio,
        })
    }
}
