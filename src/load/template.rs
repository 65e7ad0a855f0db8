//! Per-session values in messages, headers, bodies and URLs: `{{session}}`
//! (the session's number in its cycle, from 0, or from a fleet agent's
//! first session) and `{{token}}` (16 random
//! hex digits, fixed for the session). Text is split once per cycle; text
//! without placeholders is shared, never copied per session.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};

use http::{HeaderMap, HeaderName, HeaderValue};

/// The per-session values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vars {
    /// The session's number in its cycle, from 0 (from its share's first
    /// session on a fleet agent).
    pub(crate) session: u64,
    /// The session's random token.
    pub(crate) token: u64,
}

impl Vars {
    /// Values for session `session`, with a fresh random token.
    pub(crate) fn new(session: u64) -> Vars {
        // std's RandomState is seeded from the OS once per thread and moved
        // on per instance: unpredictable enough for a test token, no crate.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(session);
        Vars {
            session,
            token: h.finish(),
        }
    }
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Session,
    Token,
}

/// Text with placeholders, split once.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    /// The text itself when it has no placeholder.
    whole: Option<String>,
    parts: Vec<Part>,
}

impl Template {
    /// Splits `text` (validated by the scenario: every `{{` opens a known
    /// placeholder; anything else stays text).
    pub(crate) fn new(text: &str) -> Template {
        if !text.contains("{{") {
            return Template {
                whole: Some(text.to_owned()),
                parts: Vec::new(),
            };
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("{{") {
            let (before, tail) = rest.split_at(at);
            if !before.is_empty() {
                parts.push(Part::Text(before.to_owned()));
            }
            if let Some(after) = tail.strip_prefix("{{session}}") {
                parts.push(Part::Session);
                rest = after;
            } else if let Some(after) = tail.strip_prefix("{{token}}") {
                parts.push(Part::Token);
                rest = after;
            } else {
                parts.push(Part::Text("{{".to_owned()));
                rest = &tail[2..];
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Template { whole: None, parts }
    }

    /// The text without placeholders, if it has none.
    pub(crate) fn fixed(&self) -> Option<&str> {
        self.whole.as_deref()
    }

    /// The text for one session.
    pub(crate) fn render(&self, vars: Vars) -> Cow<'_, str> {
        if let Some(whole) = &self.whole {
            return Cow::Borrowed(whole);
        }
        let mut out = String::with_capacity(64);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                // Writing to a String cannot fail.
                Part::Session => {
                    let _ = write!(out, "{}", vars.session);
                }
                Part::Token => {
                    let _ = write!(out, "{:016x}", vars.token);
                }
            }
        }
        Cow::Owned(out)
    }
}

/// Request headers from the scenario, split once per cycle.
#[derive(Debug, Clone)]
pub(crate) struct Headers(Vec<(HeaderName, HeaderTemplate)>);

#[derive(Debug, Clone)]
enum HeaderTemplate {
    Fixed(HeaderValue),
    Filled(Template),
}

impl Headers {
    pub(crate) fn new(headers: &[(HeaderName, HeaderValue)]) -> Headers {
        Headers(
            headers
                .iter()
                .map(|(name, value)| {
                    let t = match value.to_str() {
                        Ok(text) if text.contains("{{") => {
                            HeaderTemplate::Filled(Template::new(text))
                        }
                        _ => HeaderTemplate::Fixed(value.clone()),
                    };
                    (name.clone(), t)
                })
                .collect(),
        )
    }

    /// Adds the headers, filled for one session, to `map` (replacing any
    /// value the request already had under that name).
    pub(crate) fn apply(&self, map: &mut HeaderMap, vars: Vars) {
        for (name, value) in &self.0 {
            let value = match value {
                HeaderTemplate::Fixed(v) => v.clone(),
                // The template was a valid header value, and placeholders
                // fill in digits and hex only.
                HeaderTemplate::Filled(t) => match HeaderValue::from_str(&t.render(vars)) {
                    Ok(v) => v,
                    Err(_) => continue,
                },
            };
            map.insert(name.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_per_session() {
        let t = Template::new("user-{{session}}&t={{token}}!");
        let v = Vars {
            session: 42,
            token: 0xabc,
        };
        assert_eq!(t.render(v), "user-42&t=0000000000000abc!");
        assert!(t.fixed().is_none());
        let plain = Template::new("hello");
        assert_eq!(plain.fixed(), Some("hello"));
        assert!(matches!(plain.render(v), Cow::Borrowed("hello")));
    }

    #[test]
    fn tokens_differ_between_sessions() {
        let a = Vars::new(1);
        let b = Vars::new(1);
        assert_ne!(a.token, b.token);
    }
}
