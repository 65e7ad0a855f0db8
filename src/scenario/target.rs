//! `[target]` and `[target.tls]`: the URL sessions connect to, the signal
//! sources (pprof, metrics, expvar, /proc), readiness, and the command that
//! starts the target.

use std::path::Path;
use std::time::Duration;

use http::Uri;

use super::raw::{FileTarget, FileTls};
use super::validate::Validator;
use super::{
    DEFAULT_PROBE_TIMEOUT, Ready, ScenarioError, Target, Tls, Transport, fill_placeholders,
};

impl Validator<'_> {
    pub(super) fn target(&self, mut file: FileTarget, dir: &Path) -> Result<Target, ScenarioError> {
        file.url = self.expand("target.url", &file.url)?;
        if let Some(p) = &file.pprof {
            file.pprof = Some(self.expand("target.pprof", p)?);
        }
        if let Some(argv) = &mut file.command {
            for arg in argv.iter_mut() {
                *arg = self.expand("target.command", arg)?;
            }
        }
        for (name, value) in file.env.iter_mut() {
            *value = self.expand(&format!("target.env.{name}"), value)?;
        }
        // Placeholders may fill the path and query per session; the URL is
        // checked with them standing in as `0`.
        let url_template = file.url.contains("{{").then(|| file.url.clone());
        if let Some(template) = &url_template {
            self.check_placeholders("target.url", template)?;
            let path_start = template
                .find("://")
                .and_then(|i| template[i + 3..].find('/').map(|j| i + 3 + j))
                .unwrap_or(template.len());
            if template[..path_start].contains("{{") {
                return Err(self.invalid(
                    "target.url",
                    "placeholders may only appear in the path and query, not in the host or port",
                ));
            }
            file.url = fill_placeholders(template, "0");
        }
        let url: Uri = file.url.parse().map_err(|e| {
            self.invalid(
                "target.url",
                format!(
                    "`{}` is not a URL ({e}); write e.g. \"ws://127.0.0.1:8080/ws\"",
                    file.url
                ),
            )
        })?;
        let transport = match url.scheme_str() {
            Some("ws") | Some("wss") => Transport::WebSocket,
            Some("http") | Some("https") => Transport::Http,
            Some(other) => {
                return Err(self.invalid(
                    "target.url",
                    format!("unsupported scheme `{other}`; use ws, wss, http or https"),
                ));
            }
            None => {
                return Err(self.invalid(
                    "target.url",
                    format!(
                        "`{}` has no scheme; write e.g. \"ws://127.0.0.1:8080/ws\"",
                        file.url
                    ),
                ));
            }
        };
        let secure = matches!(url.scheme_str(), Some("wss") | Some("https"));
        let tls = self.tls(file.tls, secure, dir)?;
        if secure && file.pprof.is_none() {
            return Err(self.invalid(
                "target.pprof",
                "a wss/https target needs its plain-http pprof URL given, e.g. \"http://127.0.0.1:6060/debug/pprof\"",
            ));
        }
        let host = url
            .host()
            .ok_or_else(|| self.invalid("target.url", "has no host"))?;
        self.require_loopback("target.url", host)?;
        if url.port_u16() == Some(0) {
            return Err(self.invalid("target.url", "port 0 is not a port to connect to"));
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

        let metrics = self.source_url(
            "target.metrics",
            file.metrics.as_deref(),
            "http://127.0.0.1:9100/metrics",
        )?;
        let expvar = self.source_url(
            "target.expvar",
            file.expvar.as_deref(),
            "http://127.0.0.1:8080/debug/vars",
        )?;
        // pprof is assumed at the target's own address only when no other
        // source is named: a metrics-only service has no /debug/pprof.
        let pprof_text = match file.pprof.as_deref() {
            Some("off") => None,
            Some(text) => Some(text.to_owned()),
            None if metrics.is_none() && expvar.is_none() => {
                Some(format!("http://{authority}/debug/pprof"))
            }
            None => None,
        };
        let pprof = match pprof_text {
            Some(text) => self.source_url(
                "target.pprof",
                Some(text.trim_end_matches('/')),
                "http://127.0.0.1:6060/debug/pprof",
            )?,
            None => None,
        };
        let pid = match file.pid {
            None => None,
            Some(p) if p > 0 && p <= i64::from(i32::MAX) => Some(p as u32),
            Some(p) => {
                return Err(self.invalid("target.pid", format!("{p} is not a process id")));
            }
        };
        if let Some(p) = pid {
            if !Path::new(&format!("/proc/{p}")).exists() {
                return Err(self.invalid(
                    "target.pid",
                    format!(
                        "no process {p} is running; start the target first or use target.command"
                    ),
                ));
            }
        }
        let ready = match file.ready.as_deref() {
            None => None,
            Some(text) => Some(self.ready(text)?),
        };

        let cwd = match file.cwd {
            Some(c) if c.is_absolute() => c,
            Some(c) => dir.join(c),
            None => dir.to_path_buf(),
        };
        let command = match file.command {
            None => None,
            Some(argv) if argv.is_empty() || argv[0].trim().is_empty() => {
                return Err(self.invalid(
                    "target.command",
                    "is empty; give the program and its arguments, e.g. [\"./server\", \"-addr\", \"127.0.0.1:8080\"]",
                ));
            }
            Some(mut argv) => {
                argv[0] = self.resolve_program(&argv[0], dir)?;
                Some(argv)
            }
        };
        let ready_timeout = self.duration(
            "target.ready_timeout",
            file.ready_timeout,
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
                "has no signal source: name pprof, metrics or expvar, or a pid or command for /proc",
            ));
        }
        let probe_timeout = self.duration(
            "target.probe_timeout",
            file.probe_timeout,
            DEFAULT_PROBE_TIMEOUT,
        )?;
        if probe_timeout < Duration::from_millis(100) {
            return Err(self.invalid(
                "target.probe_timeout",
                "must be at least 100ms; a pprof fetch needs time to answer",
            ));
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
            env: file.env,
            cwd,
            ready_timeout,
            probe_timeout,
            url_template,
            tls,
        })
    }

    /// An optional http URL of a signal source on this machine.
    pub(super) fn source_url(
        &self,
        key: &str,
        text: Option<&str>,
        example: &str,
    ) -> Result<Option<Uri>, ScenarioError> {
        let Some(text) = text else {
            return Ok(None);
        };
        let text = self.expand(key, text)?;
        let uri: Uri = text.parse().map_err(|e| {
            self.invalid(
                key,
                format!("`{text}` is not a URL ({e}); write e.g. \"{example}\""),
            )
        })?;
        if uri.scheme_str() != Some("http") {
            return Err(self.invalid(key, format!("must be an http:// URL, e.g. \"{example}\"")));
        }
        let host = uri.host().ok_or_else(|| self.invalid(key, "has no host"))?;
        self.require_loopback(key, host)?;
        Ok(Some(uri))
    }

    pub(super) fn ready(&self, text: &str) -> Result<Ready, ScenarioError> {
        let text = self.expand("target.ready", text)?;
        if let Some(rest) = text.strip_prefix("tcp://") {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
                self.invalid(
                    "target.ready",
                    "write tcp://HOST:PORT, e.g. \"tcp://127.0.0.1:8080\"",
                )
            })?;
            let port: u16 = port
                .parse()
                .map_err(|_| self.invalid("target.ready", format!("`{port}` is not a port")))?;
            self.require_loopback("target.ready", host)?;
            return Ok(Ready::Tcp(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port,
            ));
        }
        match self.source_url("target.ready", Some(&text), "http://127.0.0.1:8080/healthz")? {
            Some(uri) => Ok(Ready::Http(uri)),
            None => unreachable!("source_url returns Some for Some"),
        }
    }

    pub(super) fn tls(
        &self,
        file: Option<FileTls>,
        secure: bool,
        dir: &Path,
    ) -> Result<Tls, ScenarioError> {
        let Some(file) = file else {
            if secure {
                return Err(self.invalid(
                    "target.tls",
                    "a wss/https target needs `[target.tls]` with `ca_file = \"ca.pem\"`, or \
                     `insecure = true` for a self-signed test server",
                ));
            }
            return Ok(Tls::default());
        };
        if !secure {
            return Err(self.invalid(
                "target.tls",
                "applies to wss and https targets only; the URL is plain ws/http",
            ));
        }
        let insecure = file.insecure.unwrap_or(false);
        let ca_file = file
            .ca_file
            .map(|p| if p.is_absolute() { p } else { dir.join(p) });
        match (&ca_file, insecure) {
            (Some(_), true) => {
                return Err(self.invalid(
                    "target.tls",
                    "give either `ca_file` or `insecure = true`, not both",
                ));
            }
            (None, false) => {
                return Err(self.invalid(
                    "target.tls",
                    "give `ca_file = \"ca.pem\"` (PEM, relative to the scenario), or \
                     `insecure = true` to accept any certificate",
                ));
            }
            (Some(path), false) if !path.is_file() => {
                return Err(self.invalid(
                    "target.tls.ca_file",
                    format!("`{}` does not exist", path.display()),
                ));
            }
            _ => {}
        }
        if let Some(name) = &file.server_name {
            if rustls_pki_types::ServerName::try_from(name.as_str()).is_err() {
                return Err(self.invalid(
                    "target.tls.server_name",
                    format!("`{name}` is not a DNS name or IP address"),
                ));
            }
        }
        Ok(Tls {
            ca_file,
            insecure,
            server_name: file.server_name,
        })
    }

    pub(super) fn resolve_program(
        &self,
        program: &str,
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
            format!("program `{program}` is not on PATH; install it or give a path"),
        ))
    }
}
