//! `[load]`: session counts and cycles, timing, the HTTP side (requests,
//! method, body, statuses, connections), subprotocols, headers, arrival rate
//! and source addresses. Its steps are in the steps module.

use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::raw::FileLoad;
use super::validate::Validator;
use super::{
    Body, CloseMode, DEFAULT_ABORT_FAILURE_RATIO, DEFAULT_MAX_FAILURE_RATIO, DEFAULT_STEP_TIMEOUT,
    HttpConnection, HttpLoad, Load, MAX_SESSIONS, Rate, ScenarioError, Transport,
};

impl Validator<'_> {
    /// `[load]` for a target of `transport` (`remote` when its URL's host is
    /// not this machine); keys of the other transport are refused.
    pub(super) fn load(
        &self,
        file: FileLoad,
        transport: Transport,
        remote: bool,
        dir: &Path,
    ) -> Result<Load, ScenarioError> {
        let sessions = self.count("load.sessions", Some(&file.sessions), 1, 1, MAX_SESSIONS)?;
        let concurrency = self.count(
            "load.concurrency",
            file.concurrency.as_ref(),
            sessions,
            1,
            sessions,
        )?;
        let warmup = self.count("load.warmup", file.warmup.as_ref(), 1, 0, 100)?;
        let cycles = self.count("load.cycles", file.cycles.as_ref(), 3, 2, 1000)?;
        let hold = self.duration("load.hold", file.hold.as_ref(), Duration::ZERO)?;
        let step_timeout = self.duration(
            "load.step_timeout",
            file.step_timeout.as_ref(),
            DEFAULT_STEP_TIMEOUT,
        )?;
        // Only a written timeout can be zero: the default is 10 s.
        if let Some(given) = &file.step_timeout {
            if step_timeout.is_zero() {
                return Err(self.invalid(
                    "load.step_timeout",
                    given.span(),
                    "must be above zero, e.g. \"10s\"",
                ));
            }
        }
        // The default, 0.01, is a share; only a written one can be out of range.
        let max_failure_ratio = match &file.max_failure_ratio {
            None => DEFAULT_MAX_FAILURE_RATIO,
            Some(given) => {
                let ratio = *given.get_ref();
                if !(0.0..=1.0).contains(&ratio) {
                    return Err(self.invalid(
                        "load.max_failure_ratio",
                        given.span(),
                        format!("{ratio} is not a share between 0.0 and 1.0 (0.01 = 1%)"),
                    ));
                }
                ratio
            }
        };
        // The default is half, or the tolerated share when that is higher:
        // a cycle is never stopped for failures the scenario tolerates.
        let abort_failure_ratio = match &file.abort_failure_ratio {
            None => DEFAULT_ABORT_FAILURE_RATIO.max(max_failure_ratio),
            Some(given) => {
                let ratio = *given.get_ref();
                if !(ratio > 0.0 && ratio <= 1.0) {
                    return Err(self.invalid(
                        "load.abort_failure_ratio",
                        given.span(),
                        format!(
                            "{ratio} is not a share above 0.0 and at most 1.0 (0.5 = stop once \
                             half the started sessions failed; 1.0 = never stop)"
                        ),
                    ));
                }
                if ratio < max_failure_ratio {
                    return Err(self.invalid(
                        "load.abort_failure_ratio",
                        given.span(),
                        format!(
                            "{ratio} is below load.max_failure_ratio ({max_failure_ratio}): a cycle \
                             would stop for failures the scenario tolerates; raise it to at least \
                             {max_failure_ratio}"
                        ),
                    ));
                }
                ratio
            }
        };
        let close = file
            .close
            .as_ref()
            .map_or(CloseMode::Graceful, |c| *c.get_ref());
        // Only a written close mode can be silent: the default is graceful.
        if let Some(given) = &file.close {
            if close == CloseMode::Silent && hold.is_zero() {
                return Err(self.invalid(
                    "load.close",
                    given.span(),
                    "\"silent\" keeps the socket open, unattended, for `hold`; give a hold, e.g. hold = \"5s\"",
                ));
            }
        }

        let first_step = file.steps.first().map(Spanned::span);
        let steps = self.steps("load.steps", file.steps, dir, 0)?;
        // A key of the other transport, refused where it was written.
        let only = |key: &str, what: &str, given: Option<Range<usize>>| match given {
            Some(at) => Err(self.invalid(key, at, format!("applies to {what} targets only"))),
            None => Ok(()),
        };
        let ws = transport == Transport::WebSocket;
        let refused = |given: Option<Range<usize>>, here: bool| given.filter(|_| here);
        let http_only = [
            ("load.requests", file.requests.as_ref().map(Spanned::span)),
            ("load.body", file.body.as_ref().map(Spanned::span)),
            ("load.body_file", file.body_file.as_ref().map(Spanned::span)),
            (
                "load.expect_status",
                file.expect_status.as_ref().map(Spanned::span),
            ),
            (
                "load.connection",
                file.connection.as_ref().map(Spanned::span),
            ),
        ];
        for (key, given) in http_only {
            only(key, "http(s)", refused(given, ws))?;
        }
        only("load.steps", "websocket", refused(first_step, !ws))?;
        only(
            "load.subprotocols",
            "websocket",
            refused(file.subprotocols.as_ref().map(Spanned::span), !ws),
        )?;
        let requests = if ws {
            0
        } else {
            self.count("load.requests", file.requests.as_ref(), 1, 1, 1_000_000)?
        };
        let mut headers = Vec::with_capacity(file.headers.len());
        for (name, value) in &file.headers {
            let key = format!("load.headers.{}", name.get_ref());
            let header = http::HeaderName::from_bytes(name.get_ref().as_bytes())
                .map_err(|_| self.invalid(&key, name.span(), "is not a valid HTTP header name"))?;
            let at = value.span();
            let value = self.expand(&key, value.get_ref(), at.clone())?;
            self.check_placeholders(&key, &value, at.clone())?;
            let value = http::HeaderValue::from_str(&value).map_err(|_| {
                self.invalid(
                    &key,
                    at,
                    "value has characters not allowed in an HTTP header",
                )
            })?;
            headers.push((header, value));
        }
        // Only a written method can be refused: the default, GET, is valid
        // for both transports.
        let method = match &file.method {
            None => "GET".to_owned(),
            Some(given) => {
                let method = given.get_ref();
                if ws && method != "GET" {
                    return Err(self.invalid(
                        "load.method",
                        given.span(),
                        "applies to http(s) targets only",
                    ));
                }
                if http::Method::from_bytes(method.as_bytes()).is_err() {
                    return Err(self.invalid(
                        "load.method",
                        given.span(),
                        format!("`{method}` is not an HTTP method"),
                    ));
                }
                method.clone()
            }
        };
        let body = match (file.body, file.body_file) {
            (Some(text), Some(_)) => {
                return Err(self.invalid(
                    "load.body",
                    text.span(),
                    "give `body` or `body_file`, not both",
                ));
            }
            (Some(text), None) => {
                let at = text.span();
                let text = self.expand("load.body", text.get_ref(), at.clone())?;
                self.check_placeholders("load.body", &text, at)?;
                Some(Body::Text(text))
            }
            (None, Some(path)) => {
                Some(Body::Bytes(self.read_file("load.body_file", &path, dir)?))
            }
            (None, None) => None,
        };
        let mut expect_status = Vec::new();
        for code in file
            .expect_status
            .map(Spanned::into_inner)
            .unwrap_or_default()
        {
            let at = code.span();
            let code = code.into_inner();
            if !(100..=599).contains(&code) {
                return Err(self.invalid(
                    "load.expect_status",
                    at,
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
            connection: file
                .connection
                .map_or(HttpConnection::KeepAlive, Spanned::into_inner),
        };
        let mut subprotocols = Vec::new();
        for name in file
            .subprotocols
            .map(Spanned::into_inner)
            .unwrap_or_default()
        {
            let at = name.span();
            let name = name.into_inner();
            let token_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if !token_ok {
                return Err(self.invalid(
                    "load.subprotocols",
                    at,
                    format!("`{name}` is not a subprotocol name (an HTTP token, e.g. \"chat.v1\")"),
                ));
            }
            subprotocols.push(name);
        }
        let rate = match &file.rate {
            None => {
                if let Some(ramp) = &file.ramp {
                    return Err(self.invalid(
                        "load.ramp",
                        ramp.span(),
                        "needs `rate` (sessions per second)",
                    ));
                }
                None
            }
            Some(given) => {
                let r = *given.get_ref();
                if !(r.is_finite() && r > 0.0 && r <= 1_000_000.0) {
                    return Err(self.invalid(
                        "load.rate",
                        given.span(),
                        format!("{r} is not a rate; give sessions per second above 0, e.g. 500"),
                    ));
                }
                Some(Rate {
                    per_second: r,
                    ramp: self.duration("load.ramp", file.ramp.as_ref(), Duration::ZERO)?,
                })
            }
        };
        let mut source_addresses = Vec::new();
        for text in file.source_addresses.unwrap_or_default() {
            let at = text.span();
            let text = text.into_inner();
            let ip: IpAddr = text.parse().map_err(|_| {
                self.invalid(
                    "load.source_addresses",
                    at.clone(),
                    format!(
                        "`{text}` is not an IP address; write e.g. [\"127.0.0.2\", \"127.0.0.3\"]"
                    ),
                )
            })?;
            // A source is this machine's own address: loopback for a
            // loopback target, one of its interfaces' (checked by binding
            // it at preflight) for a remote one, which loopback cannot reach.
            if !remote && !ip.is_loopback() {
                return Err(self.invalid(
                    "load.source_addresses",
                    at,
                    format!("`{ip}` is not a loopback address; load stays on 127.0.0.0/8 or ::1"),
                ));
            }
            if remote && (ip.is_loopback() || crate::remote::forbidden(ip).is_some()) {
                return Err(self.invalid(
                    "load.source_addresses",
                    at,
                    format!(
                        "`{ip}` cannot reach a remote target; list addresses of this machine's \
                         network interfaces (see `ip -brief address`), or leave the key out"
                    ),
                ));
            }
            if source_addresses.contains(&ip) {
                return Err(self.invalid(
                    "load.source_addresses",
                    at,
                    format!("`{ip}` is listed twice"),
                ));
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
            abort_failure_ratio,
        })
    }
}
