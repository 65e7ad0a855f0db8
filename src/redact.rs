//! Secrets stay out of every output: a [`Redactor`] built from the scenario
//! knows each secret value and replaces it with `***` in any text before it
//! is printed or written.
//!
//! Secret values are: the values of the Authorization, Cookie and
//! Proxy-Authorization headers (always) and of any header listed in
//! `secrets.headers`, each with its credential part on its own (`Bearer
//! <token>` also hides a bare `<token>`); the userinfo of `target.url` and
//! `target.pprof`; the values of query parameters listed in `secrets.query`;
//! the values of the environment variables listed in `secrets.env`; and a
//! fleet's control-channel token (`--token-file`).
//!
//! Redaction is by value, not by place, so a secret is hidden wherever it
//! turns up: a progress line, an error from the load engine, a URL in a
//! report, the target's own log. Each value is also searched for in its
//! JSON-escaped and percent-encoded forms. Values shorter than
//! [`MIN_SECRET_LEN`] are not searched for: they are no secret, and hiding
//! every `a` would wreck the output.

use std::borrow::Cow;

use http::Uri;
use http::header::{AUTHORIZATION, COOKIE, HeaderName, PROXY_AUTHORIZATION};

use crate::scenario::Scenario;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Shortest value searched for (see the module docs).
pub const MIN_SECRET_LEN: usize = 4;

/// Replaces known secret values with [`MASK`].
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a value is replaced before any part of it.
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for everything `scenario` marks secret.
    pub fn from_scenario(scenario: &Scenario) -> Redactor {
        let mut r = Redactor::default();
        let always = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION];
        let is_secret =
            |name: &HeaderName| always.contains(name) || scenario.secrets.headers.contains(name);
        for (name, value) in &scenario.load.headers {
            if is_secret(name) {
                r.add_header_value(&String::from_utf8_lossy(value.as_bytes()));
            }
        }
        let t = &scenario.target;
        let sources = [&t.pprof, &t.metrics, &t.expvar].into_iter().flatten();
        for uri in std::iter::once(&t.url).chain(sources) {
            r.add_uri(uri, &scenario.secrets.query);
        }
        for value in &scenario.secrets.values {
            r.add(value);
        }
        r
    }

    /// Adds the fleet's control-channel bearer token, alone and as the
    /// `Bearer <token>` header value it travels in.
    pub fn add_token(&mut self, token: &str) {
        self.add_header_value(&format!("Bearer {token}"));
    }

    /// Adds one secret value (and its encoded forms).
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.len() < MIN_SECRET_LEN {
            return;
        }
        let json = serde_json::to_string(value).unwrap_or_default();
        let json = json.trim_matches('"').to_owned();
        let encoded = percent_encode(value);
        for v in [value.to_owned(), json, encoded] {
            if v.len() >= MIN_SECRET_LEN && !self.secrets.contains(&v) {
                self.secrets.push(v);
            }
        }
        self.secrets
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    }

    /// A header value: the whole value, its credentials after an auth
    /// scheme (`Bearer x`, `Basic x`), and each cookie's value.
    fn add_header_value(&mut self, value: &str) {
        self.add(value);
        if let Some((scheme, credentials)) = value.trim().split_once(char::is_whitespace) {
            if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                self.add(credentials);
            }
        }
        for cookie in value.split(';') {
            if let Some((_, v)) = cookie.split_once('=') {
                self.add(v);
            }
        }
    }

    /// A URL's userinfo and the values of its secret query parameters.
    fn add_uri(&mut self, uri: &Uri, secret_params: &[String]) {
        if let Some(authority) = uri.authority() {
            if let Some((userinfo, _)) = authority.as_str().rsplit_once('@') {
                self.add(userinfo);
                if let Some((_, password)) = userinfo.split_once(':') {
                    self.add(password);
                }
            }
        }
        if let Some(query) = uri.query() {
            for pair in query.split('&') {
                if let Some((name, value)) = pair.split_once('=') {
                    if secret_params.iter().any(|p| p == name) {
                        self.add(value);
                        self.add(&percent_decode(value));
                    }
                }
            }
        }
    }

    /// True when there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        out
    }

    /// Like [`Redactor::redact`] for bytes that may not be UTF-8 (a log):
    /// unchanged unless a secret occurs in them.
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out = Cow::Borrowed(bytes);
        for secret in &self.secrets {
            let needle = secret.as_bytes();
            if find(&out, needle).is_none() {
                continue;
            }
            let mut replaced = Vec::with_capacity(out.len());
            let mut rest: &[u8] = &out;
            while let Some(i) = find(rest, needle) {
                replaced.extend_from_slice(&rest[..i]);
                replaced.extend_from_slice(MASK.as_bytes());
                rest = &rest[i + needle.len()..];
            }
            replaced.extend_from_slice(rest);
            out = Cow::Owned(replaced);
        }
        out
    }

    /// Rewrites a file in place if it holds a secret (the target's log).
    pub fn redact_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let bytes = std::fs::read(path)?;
        if let Cow::Owned(clean) = self.redact_bytes(&bytes) {
            std::fs::write(path, clean)?;
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// RFC 3986 unreserved characters stay; everything else becomes %XX.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(extra: &str, url: &str) -> Scenario {
        let text = format!("[target]\nurl = \"{url}\"\n[load]\nsessions = 1\n{extra}");
        Scenario::parse(&text, Path::new("/tmp/redact.toml")).unwrap()
    }

    #[test]
    fn the_fleet_token_is_hidden_bare_and_as_a_header() {
        let mut r = Redactor::default();
        r.add_token("c2VjcmV0LXRva2Vu+/=");
        assert_eq!(
            r.redact("Authorization: Bearer c2VjcmV0LXRva2Vu+/= and c2VjcmV0LXRva2Vu%2B%2F%3D"),
            "Authorization: *** and ***"
        );
    }

    #[test]
    fn authorization_and_its_token_are_hidden() {
        let s = scenario(
            "headers = { Authorization = \"Bearer s3cr3t-t0ken\", X-Trace = \"visible\" }",
            "http://127.0.0.1:1/",
        );
        let r = Redactor::from_scenario(&s);
        assert_eq!(
            r.redact(
                "sent Authorization: Bearer s3cr3t-t0ken, then s3cr3t-t0ken alone; X-Trace visible"
            ),
            "sent Authorization: ***, then *** alone; X-Trace visible"
        );
    }

    #[test]
    fn cookies_marked_headers_userinfo_and_query_are_hidden() {
        let s = scenario(
            "headers = { Cookie = \"sid=abcd1234; theme=dark\", X-Api-Key = \"key-5678\" }\n\
             [secrets]\nheaders = [\"x-api-key\"]\nquery = [\"token\"]",
            "ws://user:hunter22@127.0.0.1:1/ws?token=qwerty%2F9&room=lobby",
        );
        let r = Redactor::from_scenario(&s);
        let text = format!(
            "{} {} abcd1234 key-5678 qwerty/9",
            s.target.url,
            s.target.pprof.as_ref().unwrap()
        );
        let out = r.redact(&text);
        for secret in ["hunter22", "abcd1234", "key-5678", "qwerty", "user:"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("room=lobby"), "{out}");
    }

    #[test]
    fn env_values_marked_secret_are_hidden_in_bytes_and_json() {
        // SAFETY: test-only variable name nothing else reads.
        unsafe { std::env::set_var("LEAKBENCH_REDACT_TEST", "pa\"ss-word") };
        let s = scenario(
            "[secrets]\nenv = [\"LEAKBENCH_REDACT_TEST\", \"LEAKBENCH_UNSET_ANYWHERE\"]",
            "http://127.0.0.1:1/",
        );
        let r = Redactor::from_scenario(&s);
        let json = serde_json::to_string("x pa\"ss-word y").unwrap();
        assert!(!r.redact(&json).contains("ss-word"));
        assert_eq!(&*r.redact_bytes(b"\xff pa\"ss-word \xfe"), b"\xff *** \xfe");
    }

    #[test]
    fn short_values_are_left_alone() {
        let mut r = Redactor::default();
        r.add("ab");
        assert!(r.is_empty());
        assert_eq!(r.redact("a b ab"), "a b ab");
    }

    #[test]
    fn percent_decoding_survives_odd_input() {
        assert_eq!(percent_decode("a%2Fb+c%"), "a/b c%");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
