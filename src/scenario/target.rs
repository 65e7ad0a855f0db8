//! `[target]` and `[target.tls]`: the URL sessions connect to, the signal
//! sources (pprof, metrics, expvar, /proc), readiness, and the command that
//! starts the target.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use toml::Spanned;

use super::raw::{FileTarget, FileTls};
use super::validate::Validator;
use super::{
    DEFAULT_PROBE_TIMEOUT, Pins, Ready, ScenarioError, Target, Tls, Transport, fill_placeholders,
    is_loopback_host,
};

impl Validator<'_> {
    /// `[target]`: errors about what the table lacks point at the table.
    pub(super) fn target(
        &self,
        file: Spanned<FileTarget>,
        dir: &Path,
    ) -> Result<Target, ScenarioError> {
        let table = file.span();
        let file = file.into_inner();
        let url_at = file.url.span();
        let mut url_text = self.expand("target.url", file.url.get_ref(), url_at.clone())?;
        let pprof_given = match &file.pprof {
            Some(p) => Some((
                self.expand("target.pprof", p.get_ref(), p.span())?,
                p.span(),
            )),
            None => None,
        };
        let command = match file.command {
            Some(argv) => {
                let at = argv.span();
                let mut expanded = Vec::with_capacity(argv.get_ref().len());
                for arg in argv.into_inner() {
                    let text = self.expand("target.command", arg.get_ref(), arg.span())?;
                    expanded.push((text, arg.span()));
                }
                Some((expanded, at))
            }
            None => None,
        };
        let mut env = BTreeMap::new();
        for (name, value) in &file.env {
            let text = self.expand(&format!("target.env.{name}"), value.get_ref(), value.span())?;
            env.insert(name.clone(), text);
        }
        // Placeholders may fill the path and query per session; the URL is
        // checked with them standing in as `0`.
        let url_template = url_text.contains("{{").then(|| url_text.clone());
        if let Some(template) = &url_template {
            self.check_placeholders("target.url", template, url_at.clone())?;
            let path_start = template
                .find("://")
                .and_then(|i| template[i + 3..].find('/').map(|j| i + 3 + j))
                .unwrap_or(template.len());
            if template[..path_start].contains("{{") {
                return Err(self.invalid(
                    "target.url",
                    url_at,
                    "placeholders may only appear in the path and query, not in the host or port",
                ));
            }
            url_text = fill_placeholders(template, "0");
        }
        let url: Uri = url_text.parse().map_err(|e| {
            self.invalid(
                "target.url",
                url_at.clone(),
                format!("`{url_text}` is not a URL ({e}); write e.g. \"ws://127.0.0.1:8080/ws\""),
            )
        })?;
        let transport = match url.scheme_str() {
            Some("ws") | Some("wss") => Transport::WebSocket,
            Some("http") | Some("https") => Transport::Http,
            Some(other) => {
                return Err(self.invalid(
                    "target.url",
                    url_at,
                    format!("unsupported scheme `{other}`; use ws, wss, http or https"),
                ));
            }
            None => {
                return Err(self.invalid(
                    "target.url",
                    url_at,
                    format!("`{url_text}` has no scheme; write e.g. \"ws://127.0.0.1:8080/ws\""),
                ));
            }
        };
        let secure = matches!(url.scheme_str(), Some("wss") | Some("https"));
        let tls = self.tls(file.tls, secure, dir, table.clone())?;
        if secure && pprof_given.is_none() {
            return Err(self.invalid(
                "target.pprof",
                table,
                "a wss/https target needs its plain-http pprof URL given, e.g. \"http://127.0.0.1:6060/debug/pprof\"",
            ));
        }
        let host = url
            .host()
            .ok_or_else(|| self.invalid("target.url", url_at.clone(), "has no host"))?;
        self.require_allowed("target.url", host, url_at.clone())?;
        if url.port_u16() == Some(0) {
            return Err(self.invalid("target.url", url_at, "port 0 is not a port to connect to"));
        }
        let authority = url
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let authority = if url.port().is_some() {
            authority
        } else if secure {
            format!("{host}:443")
        } else {
            format!("{host}:80")
        };

        let metrics = file
            .metrics
            .as_ref()
            .map(|m| {
                self.source_url(
                    "target.metrics",
                    m.get_ref(),
                    m.span(),
                    "http://127.0.0.1:9100/metrics",
                )
            })
            .transpose()?;
        let expvar = file
            .expvar
            .as_ref()
            .map(|x| {
                self.source_url(
                    "target.expvar",
                    x.get_ref(),
                    x.span(),
                    "http://127.0.0.1:8080/debug/vars",
                )
            })
            .transpose()?;
        // pprof is assumed at the target's own address only when no other
        // source is named: a metrics-only service has no /debug/pprof. An
        // assumed URL's errors point at target.url, which it comes from.
        let pprof_text = match pprof_given {
            Some((text, _)) if text == "off" => None,
            Some(given) => Some(given),
            None if metrics.is_none() && expvar.is_none() => {
                Some((format!("http://{authority}/debug/pprof"), url_at.clone()))
            }
            None => None,
        };
        let pprof = match pprof_text {
            Some((text, at)) => Some(self.source_url(
                "target.pprof",
                text.trim_end_matches('/'),
                at,
                "http://127.0.0.1:6060/debug/pprof",
            )?),
            None => None,
        };
        let pid = match &file.pid {
            None => None,
            Some(p) => match *p.get_ref() {
                n if n > 0 && n <= i64::from(i32::MAX) => Some((n as u32, p.span())),
                n => {
                    return Err(self.invalid(
                        "target.pid",
                        p.span(),
                        format!("{n} is not a process id"),
                    ));
                }
            },
        };
        let ready = match &file.ready {
            None => None,
            Some(text) => Some(self.ready(text)?),
        };
        // A remote host's processes are not this machine's: nothing to
        // start, and no /proc to read.
        let ready_host = match &ready {
            Some(Ready::Http(u)) => u.host().map(str::to_owned),
            Some(Ready::Tcp(h, _)) => Some(h.clone()),
            None => None,
        };
        let remote_host = [
            Some(&url),
            pprof.as_ref(),
            metrics.as_ref(),
            expvar.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|u| u.host().map(str::to_owned))
        .chain(ready_host)
        .find(|h| !is_loopback_host(h));
        if let Some(host) = &remote_host {
            if let Some((_, at)) = &command {
                return Err(self.invalid(
                    "target.command",
                    at.clone(),
                    format!(
                        "the target is remote (`{host}`), and `command` starts a program on \
                         this machine; start the service where it runs and drop target.command"
                    ),
                ));
            }
            if let Some((_, at)) = &pid {
                return Err(self.invalid(
                    "target.pid",
                    at.clone(),
                    format!(
                        "the target is remote (`{host}`), and `pid` reads this machine's /proc; \
                         drop target.pid and read the target through pprof, metrics or expvar"
                    ),
                ));
            }
        }
        if let Some((p, at)) = &pid {
            if !Path::new(&format!("/proc/{p}")).exists() {
                return Err(self.invalid(
                    "target.pid",
                    at.clone(),
                    format!(
                        "no process {p} is running; start the target first or use target.command"
                    ),
                ));
            }
        }
        let pid = pid.map(|(p, _)| p);

        let cwd = match file.cwd {
            Some(c) if c.is_absolute() => c,
            Some(c) => dir.join(c),
            None => dir.to_path_buf(),
        };
        let command = match command {
            None => None,
            Some((argv, at)) if argv.is_empty() || argv[0].0.trim().is_empty() => {
                return Err(self.invalid(
                    "target.command",
                    at,
                    "is empty; give the program and its arguments, e.g. [\"./server\", \"-addr\", \"127.0.0.1:8080\"]",
                ));
            }
            Some((argv, _)) => {
                let program = self.resolve_program(&argv[0].0, argv[0].1.clone(), dir)?;
                let rest = argv.into_iter().skip(1).map(|(arg, _)| arg);
                Some(std::iter::once(program).chain(rest).collect())
            }
        };
        let ready_timeout = self.duration(
            "target.ready_timeout",
            file.ready_timeout.as_ref(),
            Duration::from_secs(15),
        )?;
        if pprof.is_none()
            && metrics.is_none()
            && expvar.is_none()
            && pid.is_none()
            && command.is_none()
        {
            return Err(self.invalid(
                "target",
                table,
                "has no signal source: name pprof, metrics or expvar, or a pid or command for /proc",
            ));
        }
        let probe_timeout = self.duration(
            "target.probe_timeout",
            file.probe_timeout.as_ref(),
            DEFAULT_PROBE_TIMEOUT,
        )?;
        // Only a written timeout can be this short: the default is 60 s.
        if let Some(given) = &file.probe_timeout {
            if probe_timeout < Duration::from_millis(100) {
                return Err(self.invalid(
                    "target.probe_timeout",
                    given.span(),
                    "must be at least 100ms; a pprof fetch needs time to answer",
                ));
            }
        }
        Ok(Target {
            url,
            transport,
            pprof,
            metrics,
            expvar,
            pid,
            ready,
            command,
            env,
            cwd,
            ready_timeout,
            probe_timeout,
            url_template,
            tls,
            remote: self.policy.clone(),
            pins: Pins::default(),
        })
    }

    /// An http URL of a signal source on this machine or an allowed host,
    /// written at `at`.
    pub(super) fn source_url(
        &self,
        key: &str,
        text: &str,
        at: Range<usize>,
        example: &str,
    ) -> Result<Uri, ScenarioError> {
        let text = self.expand(key, text, at.clone())?;
        let uri: Uri = text.parse().map_err(|e| {
            self.invalid(
                key,
                at.clone(),
                format!("`{text}` is not a URL ({e}); write e.g. \"{example}\""),
            )
        })?;
        if uri.scheme_str() != Some("http") {
            return Err(self.invalid(
                key,
                at,
                format!("must be an http:// URL, e.g. \"{example}\""),
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| self.invalid(key, at.clone(), "has no host"))?;
        self.require_allowed(key, host, at)?;
        Ok(uri)
    }

    /// `target.ready`: `tcp://HOST:PORT` or an http URL, on this machine or
    /// an allowed host.
    pub(super) fn ready(&self, given: &Spanned<String>) -> Result<Ready, ScenarioError> {
        let at = given.span();
        let text = self.expand("target.ready", given.get_ref(), at.clone())?;
        if let Some(rest) = text.strip_prefix("tcp://") {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
                self.invalid(
                    "target.ready",
                    at.clone(),
                    "write tcp://HOST:PORT, e.g. \"tcp://127.0.0.1:8080\"",
                )
            })?;
            let port: u16 = port.parse().map_err(|_| {
                self.invalid(
                    "target.ready",
                    at.clone(),
                    format!("`{port}` is not a port"),
                )
            })?;
            self.require_allowed("target.ready", host, at)?;
            return Ok(Ready::Tcp(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port,
            ));
        }
        let uri = self.source_url("target.ready", &text, at, "http://127.0.0.1:8080/healthz")?;
        Ok(Ready::Http(uri))
    }

    /// `[target.tls]`, required for wss and https and refused otherwise;
    /// `target` is where the `[target]` table is, for when it is missing.
    pub(super) fn tls(
        &self,
        file: Option<Spanned<FileTls>>,
        secure: bool,
        dir: &Path,
        target: Range<usize>,
    ) -> Result<Tls, ScenarioError> {
        let Some(file) = file else {
            if secure {
                return Err(self.invalid(
                    "target.tls",
                    target,
                    "a wss/https target needs `[target.tls]` with `ca_file = \"ca.pem\"`, or \
                     `insecure = true` for a self-signed test server",
                ));
            }
            return Ok(Tls::default());
        };
        let table = file.span();
        let file = file.into_inner();
        if !secure {
            return Err(self.invalid(
                "target.tls",
                table,
                "applies to wss and https targets only; the URL is plain ws/http",
            ));
        }
        let insecure = file.insecure.unwrap_or(false);
        let ca_file: Option<(PathBuf, Range<usize>)> = file.ca_file.map(|p| {
            let at = p.span();
            let p = p.into_inner();
            (if p.is_absolute() { p } else { dir.join(p) }, at)
        });
        match (&ca_file, insecure) {
            (Some(_), true) => {
                return Err(self.invalid(
                    "target.tls",
                    table,
                    "give either `ca_file` or `insecure = true`, not both",
                ));
            }
            (None, false) => {
                return Err(self.invalid(
                    "target.tls",
                    table,
                    "give `ca_file = \"ca.pem\"` (PEM, relative to the scenario), or \
                     `insecure = true` to accept any certificate",
                ));
            }
            (Some((path, at)), false) if !path.is_file() => {
                return Err(self.invalid(
                    "target.tls.ca_file",
                    at.clone(),
                    format!("`{}` does not exist", path.display()),
                ));
            }
            _ => {}
        }
        if let Some(name) = &file.server_name {
            if rustls_pki_types::ServerName::try_from(name.get_ref().as_str()).is_err() {
                return Err(self.invalid(
                    "target.tls.server_name",
                    name.span(),
                    format!("`{}` is not a DNS name or IP address", name.get_ref()),
                ));
            }
        }
        Ok(Tls {
            ca_file: ca_file.map(|(p, _)| p),
            insecure,
            server_name: file.server_name.map(Spanned::into_inner),
        })
    }

    /// The program of `target.command` (written at `at`) as a full path:
    /// relative paths against the scenario's folder, bare names on PATH.
    pub(super) fn resolve_program(
        &self,
        program: &str,
        at: Range<usize>,
        dir: &Path,
    ) -> Result<String, ScenarioError> {
        let as_path = Path::new(program);
        if as_path.components().count() > 1 || program.starts_with('.') {
            let full = if as_path.is_absolute() {
                as_path.to_path_buf()
            } else {
                dir.join(as_path.strip_prefix(".").unwrap_or(as_path))
            };
            if !full.is_file() {
                return Err(self.invalid(
                    "target.command",
                    at,
                    format!(
                        "program `{}` does not exist (relative paths resolve against the scenario's folder); build it first",
                        full.display()
                    ),
                ));
            }
            return Ok(full.to_string_lossy().into_owned());
        }
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        for entry in std::env::split_paths(&path_var) {
            let candidate = entry.join(program);
            if candidate.is_file() {
                return Ok(candidate.to_string_lossy().into_owned());
            }
        }
        Err(self.invalid(
            "target.command",
            at,
            format!("program `{program}` is not on PATH; install it or give a path"),
        ))
    }
}
