//! Prometheus text exposition: parse `/metrics` and pick values by selector.
//!
//! Only what a verdict needs: sample lines `name{label="value",...} value
//! [timestamp]`, comments skipped. A selector is a metric name with optional
//! equality matchers, e.g. `jvm_memory_used_bytes{area="heap"}`; the values of
//! every series that matches are summed.

use std::collections::BTreeMap;

/// One series of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name.
    pub name: String,
    /// Label pairs as written.
    pub labels: BTreeMap<String, String>,
    /// The sample value.
    pub value: f64,
}

/// A metric name with label matchers that must all be equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Metric name.
    pub name: String,
    /// Labels that must match exactly.
    pub labels: BTreeMap<String, String>,
}

/// Why text is not an exposition or a selector.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line (0 for a selector).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Most series read from one exposition; more is not a metrics page.
const MAX_SERIES: usize = 1_000_000;

/// Parses a whole exposition. Lines that are neither comments nor samples
/// are errors: a page of HTML is not metrics.
pub fn parse(text: &str) -> Result<Vec<Series>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if out.len() >= MAX_SERIES {
            return Err(ParseError {
                line: i + 1,
                message: format!("more than {MAX_SERIES} series"),
            });
        }
        out.push(parse_sample(line).map_err(|message| ParseError {
            line: i + 1,
            message,
        })?);
    }
    Ok(out)
}

fn parse_sample(line: &str) -> Result<Series, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("`{}` is not a metric name", shorten(name)));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if rest.starts_with('{') {
        let (parsed, after) = parse_labels(rest)?;
        labels = parsed;
        rest = after;
    }
    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("`{}` has no value", shorten(line)))?;
    let value = parse_value(value_text)
        .ok_or_else(|| format!("`{}` is not a sample value", shorten(value_text)))?;
    Ok(Series {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `{a="x",b="y"}` at the start of `text`; returns the labels and the rest.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.char_indices().skip(1).peekable();
    loop {
        // Skip separators and spaces.
        while let Some((_, c)) = chars.peek() {
            if *c == ',' || c.is_whitespace() {
                chars.next();
            } else {
                break;
            }
        }
        match chars.next() {
            Some((i, '}')) => return Ok((labels, &text[i + 1..])),
            Some((start, _)) => {
                let eq = text[start..].find('=').ok_or("a label has no `=`")? + start;
                let key = text[start..eq].trim();
                if !valid_name(key) {
                    return Err(format!("`{}` is not a label name", shorten(key)));
                }
                while let Some((i, _)) = chars.peek() {
                    if *i <= eq {
                        chars.next();
                    } else {
                        break;
                    }
                }
                match chars.next() {
                    Some((_, '"')) => {}
                    _ => return Err(format!("label `{key}` has no quoted value")),
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => return Err("unterminated label value".to_owned()),
                        },
                        Some((_, '"')) => break,
                        Some((_, c)) => value.push(c),
                        None => return Err("unterminated label value".to_owned()),
                    }
                }
                labels.insert(key.to_owned(), value);
            }
            None => return Err("unterminated label set".to_owned()),
        }
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn shorten(text: &str) -> String {
    text.chars().take(60).collect()
}

impl Selector {
    /// Parses `name` or `name{label="value",...}`.
    pub fn parse(text: &str) -> Result<Selector, ParseError> {
        let err = |message: String| ParseError { line: 0, message };
        let text = text.trim();
        let (name, labels) = match text.find('{') {
            None => (text, BTreeMap::new()),
            Some(i) => {
                let (labels, rest) = parse_labels(&text[i..]).map_err(err)?;
                if !rest.trim().is_empty() {
                    return Err(err(format!(
                        "unexpected `{}` after the labels",
                        shorten(rest)
                    )));
                }
                (&text[..i], labels)
            }
        };
        if !valid_name(name) {
            return Err(err(format!("`{}` is not a metric name", shorten(name))));
        }
        Ok(Selector {
            name: name.to_owned(),
            labels,
        })
    }

    /// The sum of every matching series; `None` when nothing matches.
    pub fn value(&self, series: &[Series]) -> Option<f64> {
        let mut found = None;
        for s in series {
            if s.name == self.name
                && self
                    .labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|x| x == v))
            {
                *found.get_or_insert(0.0) += s.value;
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
process_open_fds 17
jvm_memory_used_bytes{area="heap",id="eden"} 1.5e6
jvm_memory_used_bytes{area="heap",id="old"} 500000
jvm_memory_used_bytes{area="nonheap",id="meta"} 9
http_requests_total{path="/a \"quoted\", b",code="200"} 3 1700000000000
weird{} +Inf
"#;

    #[test]
    fn parses_samples_labels_and_timestamps() {
        let s = parse(PAGE).unwrap();
        assert_eq!(s.len(), 7);
        assert_eq!(s[0].name, "go_goroutines");
        assert_eq!(s[0].value, 42.0);
        assert_eq!(s[5].labels["path"], "/a \"quoted\", b");
        assert_eq!(s[5].value, 3.0);
        assert!(s[6].value.is_infinite());
    }

    #[test]
    fn selectors_sum_matching_series() {
        let s = parse(PAGE).unwrap();
        let heap = Selector::parse(r#"jvm_memory_used_bytes{area="heap"}"#).unwrap();
        assert_eq!(heap.value(&s), Some(2_000_000.0));
        assert_eq!(
            Selector::parse("go_goroutines").unwrap().value(&s),
            Some(42.0)
        );
        assert_eq!(
            Selector::parse("nodejs_active_handles_total")
                .unwrap()
                .value(&s),
            None
        );
    }

    #[test]
    fn html_is_not_metrics() {
        let e = parse("<html><body>login</body></html>").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("not a metric name"), "{e}");
    }

    #[test]
    fn bad_selectors_are_rejected() {
        assert!(Selector::parse("9lives").is_err());
        assert!(Selector::parse(r#"m{area=heap}"#).is_err());
        assert!(Selector::parse(r#"m{area="heap"} extra"#).is_err());
        assert!(Selector::parse(r#"m{area="heap""#).is_err());
    }
}
