//! Turning toml's deserialization errors into one line a person can act on:
//! where (line and column), which dotted key, what was expected, and for a
//! misspelt key or value the nearest valid one ("did you mean `sessions`?").

use std::ops::Range;

/// A scenario syntax or schema error, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// 1-based line of the offending text (1 when toml gives no position).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Dotted key, e.g. `load.sesions`; empty when no key applies.
    pub key: String,
    /// What is wrong, what was expected and, for a typo, the suggestion.
    pub message: String,
}

/// The candidate nearest to `word`, if it is close enough to be a typo of
/// it: at most two edits (transpositions count as one), and fewer edits
/// than a third of the longer word, so `x` never "means" `url`.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|&(d, c)| d > 0 && d <= 2 && d * 3 <= word.len().max(c.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Locates and rewrites a toml error against the text it came from.
pub fn locate(text: &str, span: Option<Range<usize>>, message: &str) -> Located {
    let start = span.map_or(0, |s| s.start).min(text.len());
    let (line, column, line_text) = position(text, start);
    let table = enclosing_table(text, start, line_text);
    let join = |table: &str, key: &str| {
        if table.is_empty() {
            key.to_owned()
        } else {
            format!("{table}.{key}")
        }
    };

    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (field, expected) = split_quoted(rest);
        let candidates = quoted_words(expected);
        let mut out = format!("unknown key `{field}`");
        if let Some(best) = nearest(field, candidates.iter().copied()) {
            out.push_str(&format!("; did you mean `{best}`?"));
        }
        if !candidates.is_empty() {
            out.push_str(&format!(" (valid here: {})", backticked(&candidates)));
        }
        return Located {
            line,
            column,
            key: join(&table, field),
            message: out,
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (value, expected) = split_quoted(rest);
        let candidates = quoted_words(expected);
        let mut out = format!("`{value}` is not a valid value");
        if let Some(best) = nearest(value, candidates.iter().copied()) {
            out.push_str(&format!("; did you mean `{best}`?"));
        }
        if !candidates.is_empty() {
            out.push_str(&format!(" (use one of {})", backticked(&candidates)));
        }
        return Located {
            line,
            column,
            key: join(&table, line_key(line_text)),
            message: out,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let (field, _) = split_quoted(rest);
        // The only required keys; toml points at the enclosing table (or
        // the start of the file), so name them by their full path.
        let key = match field {
            "url" => "target.url".to_owned(),
            "sessions" => "load.sessions".to_owned(),
            other => other.to_owned(),
        };
        return Located {
            line,
            column,
            key,
            message: "is required but missing".to_owned(),
        };
    }
    let key = if line_text.trim_start().starts_with('[') {
        table
    } else {
        join(&table, line_key(line_text))
    };
    Located {
        line,
        column,
        key: key.trim_matches('.').to_owned(),
        message: friendly_types(message),
    }
}

/// 1-based line and column (in characters) of byte `at`, and the text of
/// that line. Value errors are located with it too.
pub(super) fn position(text: &str, at: usize) -> (usize, usize, &str) {
    let mut at = at;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = text[..line_start].matches('\n').count() + 1;
    let column = text[line_start..at].chars().count() + 1;
    (line, column, &text[line_start..line_end])
}

/// The dotted name of the table a position is in: the nearest `[header]`
/// above it, or the parent of the header it is on.
fn enclosing_table(text: &str, at: usize, line_text: &str) -> String {
    if let Some(header) = header_name(line_text) {
        return match header.rsplit_once('.') {
            Some((parent, _)) => parent.to_owned(),
            None => String::new(),
        };
    }
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text[..at]
        .lines()
        .rev()
        .find_map(header_name)
        .unwrap_or_default()
}

/// `load.steps` from `[load]`-style or `[[load.steps]]`-style header lines.
fn header_name(line: &str) -> Option<String> {
    let t = line.trim();
    if !t.starts_with('[') {
        return None;
    }
    let inner = t.trim_start_matches('[');
    let end = inner.find(']')?;
    let name: String = inner[..end]
        .split('.')
        .map(|part| part.trim().trim_matches('"').trim_matches('\''))
        .collect::<Vec<_>>()
        .join(".");
    Some(name)
}

/// The key written before `=` on a line (empty if none).
fn line_key(line: &str) -> &str {
    line.split_once('=')
        .map_or("", |(k, _)| k.trim().trim_matches('"').trim_matches('\''))
}

/// (`X`, rest) from "`X`, rest".
fn split_quoted(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('`') {
        if let Some(end) = inner.find('`') {
            return (&inner[..end], &inner[end + 1..]);
        }
    }
    (s, "")
}

/// Every `word` in backticks.
fn quoted_words(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

fn backticked(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// serde's type names, in words.
fn friendly_types(message: &str) -> String {
    message
        .replace("expected i64", "expected a whole number")
        .replace("expected u32", "expected a whole number")
        .replace("expected f64", "expected a number")
        .replace(
            "expected a sequence",
            "expected a list, e.g. [\"a\", \"b\"]",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, word: &str) -> Range<usize> {
        let i = text.find(word).unwrap();
        i..i + word.len()
    }

    #[test]
    fn typos_find_their_key() {
        let keys = ["sessions", "concurrency", "cycles", "close"];
        assert_eq!(nearest("sesions", keys), Some("sessions"));
        assert_eq!(nearest("cyles", keys), Some("cycles"));
        assert_eq!(nearest("concurency", keys), Some("concurrency"));
        assert_eq!(nearest("x", keys), None);
        assert_eq!(nearest("banana", keys), None);
    }

    #[test]
    fn unknown_field_gets_key_and_suggestion() {
        let text = "[target]\nurl = \"x\"\n[load]\nsesions = 3\n";
        let l = locate(
            text,
            Some(at(text, "sesions")),
            "unknown field `sesions`, expected one of `sessions`, `close`",
        );
        assert_eq!((l.line, l.column), (4, 1));
        assert_eq!(l.key, "load.sesions");
        assert!(l.message.contains("did you mean `sessions`?"), "{l:?}");
    }

    #[test]
    fn unknown_table_is_named_from_its_header() {
        let text = "[target]\nurl = \"x\"\n[lod]\nsessions = 1\n";
        let l = locate(
            text,
            Some(at(text, "lod")),
            "unknown field `lod`, expected `target` or `load`",
        );
        assert_eq!(l.key, "lod");
        assert!(l.message.contains("did you mean `load`?"), "{l:?}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = "[target]\nurl = \"x\"\n[load]\nsessions = \"3\"\n";
        let l = locate(
            text,
            Some(at(text, "\"3\"")),
            "invalid type: string \"3\", expected i64",
        );
        assert_eq!(l.key, "load.sessions");
        assert!(l.message.contains("whole number"), "{l:?}");
    }

    #[test]
    fn positions_survive_odd_input() {
        let text = "é\u{0}[[\n";
        for at in 0..=text.len() + 3 {
            let _ = locate(text, Some(at..at + 1), "unknown field ``");
        }
        let _ = locate("", None, "missing field `load`");
    }
}
