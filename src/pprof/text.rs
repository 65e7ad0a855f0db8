//! Go's text dumps: the total of `goroutine?debug=1`, the goroutines of
//! `goroutine?debug=2`, and the MemStats block of `heap?debug=1`.
//!
//! Parsing is lenient where Go's format has varied between versions (extra
//! header fields, `in goroutine N`, labels) and strict only where a wrong
//! answer would follow: a missing header or counter is an error that says
//! what the text looked like instead.

use std::collections::HashMap;

use super::{DecodeError, Goroutine, MemStats, printable_start};

/// What `goroutine?debug=1` starts with.
const GOROUTINE_TOTAL_PREFIX: &str = "goroutine profile: total ";

/// The line that opens `heap?debug=1`'s counters.
const MEMSTATS_HEADER: &str = "# runtime.MemStats";

/// The total from the first line of `goroutine?debug=1`.
pub fn goroutine_total(text: &str) -> Result<u64, DecodeError> {
    const EXPECTED: &str = "a goroutine profile (goroutine?debug=1)";
    let Some((i, first)) = text.lines().enumerate().find(|(_, l)| !l.trim().is_empty()) else {
        return Err(DecodeError::Empty { expected: EXPECTED });
    };
    let Some(total) = first.trim().strip_prefix(GOROUTINE_TOTAL_PREFIX) else {
        return Err(not_text(EXPECTED, text));
    };
    total.trim().parse().map_err(|_| DecodeError::Malformed {
        what: "goroutine?debug=1",
        line: i + 1,
        message: format!("total '{}' is not a count", total.trim()),
    })
}

/// Parses `goroutine?debug=2`.
///
/// Each goroutine is a header `goroutine ID [STATE, ...]:` (extra fields
/// before the bracket or after it are ignored), frame pairs of `pkg.func(args)`
/// and an indented `file:line +0xoff`, and an optional `created by pkg.func`
/// (`in goroutine N` is dropped). `...N frames elided...` lines are skipped,
/// so the stack of a very deep goroutine lacks its middle. Text before the
/// first header is ignored.
pub fn parse_goroutines(text: &str) -> Result<Vec<Goroutine>, DecodeError> {
    const EXPECTED: &str = "a goroutine dump (goroutine?debug=2)";
    let mut goroutines = Vec::new();
    let mut current: Option<Goroutine> = None;
    for line in text.lines() {
        if let Some(g) = parse_header(line) {
            goroutines.extend(current.replace(g));
            continue;
        }
        let Some(g) = current.as_mut() else {
            continue; // preamble, e.g. a panic message
        };
        let line = line.trim_end();
        if line.is_empty() {
            goroutines.extend(current.take());
        } else if let Some(creator) = line.strip_prefix("created by ") {
            let creator = creator
                .rfind(" in goroutine ")
                .map_or(creator, |i| &creator[..i]);
            g.created_by = Some(creator.to_owned());
        } else if !is_frame_line(line) {
            // file:line lines, elision markers, "goroutine running on other
            // thread; stack unavailable", and anything a newer Go adds.
        } else {
            g.stack.push(function_name(line).to_owned());
        }
    }
    goroutines.extend(current);
    if goroutines.is_empty() {
        return Err(if text.trim().is_empty() {
            DecodeError::Empty { expected: EXPECTED }
        } else {
            not_text(EXPECTED, text)
        });
    }
    Ok(goroutines)
}

/// A goroutine with no frames yet, if `line` is a `goroutine ID [...]` header.
fn parse_header(line: &str) -> Option<Goroutine> {
    let rest = line.strip_prefix("goroutine ")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let id = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    if !rest.starts_with([' ', ':']) && !rest.is_empty() {
        return None;
    }
    let state = match rest.find('[') {
        Some(open) => {
            let inner = &rest[open + 1..];
            let inner = inner.find(']').map_or(inner, |close| &inner[..close]);
            inner.split(',').next().unwrap_or("").trim().to_owned()
        }
        None => String::new(),
    };
    Some(Goroutine {
        id,
        state,
        stack: Vec::new(),
        created_by: None,
    })
}

/// Whether `line` (already known not to be a header) names a function.
fn is_frame_line(line: &str) -> bool {
    !(line.starts_with([' ', '\t', '.', '['])
        || line.starts_with("goroutine ")
        || (line.starts_with("...") && line.ends_with("frames elided...")))
}

/// `pkg.func` of a frame line `pkg.func(args)`: the line up to the
/// parenthesis that matches its last `)`. `main.(*T).M(0x1, {0x2, 0x3})`
/// gives `main.(*T).M`. Lines without trailing arguments are kept whole.
fn function_name(line: &str) -> &str {
    if !line.ends_with(')') {
        return line;
    }
    let mut depth = 0usize;
    for (i, c) in line.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &line[..i];
                }
            }
            _ => {}
        }
    }
    line
}

/// Parses the MemStats block of `heap?debug=1`.
///
/// The block is the `# runtime.MemStats` line and the `# Key = value` lines
/// after it; `# Stack = inuse / sys` gives two counters. Every counter
/// [`MemStats`] holds must be present except `MaxRSS` (newer Go only).
pub fn parse_memstats(text: &str) -> Result<MemStats, DecodeError> {
    const EXPECTED: &str = "a heap profile with MemStats (heap?debug=1)";
    const WHAT: &str = "heap?debug=1 MemStats";
    let mut lines = text.lines().enumerate();
    let Some((header, _)) = lines.find(|(_, l)| l.trim() == MEMSTATS_HEADER) else {
        return Err(if text.trim().is_empty() {
            DecodeError::Empty { expected: EXPECTED }
        } else {
            not_text(EXPECTED, text)
        });
    };
    let mut fields: HashMap<&str, (usize, &str)> = HashMap::new();
    for (i, line) in lines {
        let Some(entry) = line.strip_prefix('#') else {
            break;
        };
        if let Some((key, value)) = entry.split_once('=') {
            fields.insert(key.trim(), (i + 1, value.trim()));
        }
    }

    let field = |key: &str| -> Result<(usize, &str), DecodeError> {
        fields
            .get(key)
            .copied()
            .ok_or_else(|| DecodeError::Malformed {
                what: WHAT,
                line: header + 1,
                message: format!("no '# {key} = ...' line in the block"),
            })
    };
    let bad = |line: usize, key: &str, value: &str| DecodeError::Malformed {
        what: WHAT,
        line,
        message: format!("{key} = '{value}' is not a number"),
    };
    let num = |key: &str| -> Result<u64, DecodeError> {
        let (line, value) = field(key)?;
        value.parse().map_err(|_| bad(line, key, value))
    };

    let (stack_line, stack) = field("Stack")?;
    let (stack_inuse, stack_sys) = stack
        .split_once('/')
        .and_then(|(inuse, sys)| Some((inuse.trim().parse().ok()?, sys.trim().parse().ok()?)))
        .ok_or_else(|| DecodeError::Malformed {
            what: WHAT,
            line: stack_line,
            message: format!("Stack = '{stack}' is not 'inuse / sys'"),
        })?;
    let (fraction_line, fraction) = field("GCCPUFraction")?;
    Ok(MemStats {
        heap_alloc: num("HeapAlloc")?,
        heap_objects: num("HeapObjects")?,
        heap_inuse: num("HeapInuse")?,
        stack_inuse,
        sys: num("Sys")?,
        num_gc: num("NumGC")?,
        total_alloc: num("TotalAlloc")?,
        mallocs: num("Mallocs")?,
        frees: num("Frees")?,
        heap_sys: num("HeapSys")?,
        heap_idle: num("HeapIdle")?,
        heap_released: num("HeapReleased")?,
        stack_sys,
        next_gc: num("NextGC")?,
        last_gc_nanos: num("LastGC")?,
        num_forced_gc: num("NumForcedGC")?,
        gc_cpu_fraction: fraction
            .parse()
            .map_err(|_| bad(fraction_line, "GCCPUFraction", fraction))?,
        max_rss: match fields.get("MaxRSS") {
            Some(&(line, value)) => Some(value.parse().map_err(|_| bad(line, "MaxRSS", value))?),
            None => None,
        },
    })
}

/// The error for a text body that is not the dump asked for, with a hint
/// when it is recognisably another one.
fn not_text(expected: &'static str, text: &str) -> DecodeError {
    let start = text.trim_start();
    let hint = if start.starts_with('<') {
        " - is this the pprof endpoint?"
    } else if start.starts_with(GOROUTINE_TOTAL_PREFIX) {
        " - that is goroutine?debug=1"
    } else if parse_header(start.lines().next().unwrap_or("")).is_some() {
        " - that is goroutine?debug=2"
    } else if start.starts_with("heap profile:") {
        " - that is heap?debug=1"
    } else if start.starts_with("\u{1f}\u{fffd}") || start.starts_with('\u{1f}') {
        " - that is a gzip profile (debug=0)"
    } else {
        ""
    };
    DecodeError::NotText {
        expected,
        start: printable_start(start.as_bytes(), 40),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::fixtures::*;

    #[test]
    fn total_of_the_debug1_fixture() {
        assert_eq!(goroutine_total(GOROUTINE_DEBUG1).unwrap(), 203);
        assert_eq!(
            goroutine_total("\ngoroutine profile: total 7\n").unwrap(),
            7
        );
    }

    #[test]
    fn total_rejects_other_bodies_with_a_hint() {
        let msg = goroutine_total(GOROUTINE_DEBUG2).unwrap_err().to_string();
        assert!(
            msg.starts_with("response is not a goroutine profile"),
            "{msg}"
        );
        assert!(msg.ends_with("that is goroutine?debug=2"), "{msg}");
        let msg = goroutine_total("<html>oops</html>")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("'<html>oops</html>'"), "{msg}");
        assert!(msg.contains("pprof endpoint"), "{msg}");
        assert!(matches!(
            goroutine_total(" \n"),
            Err(DecodeError::Empty { .. })
        ));
        let msg = goroutine_total("goroutine profile: total many")
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "goroutine?debug=1, line 1: total 'many' is not a count"
        );
    }

    #[test]
    fn debug2_fixture_has_200_leaked_receivers() {
        let gs = parse_goroutines(GOROUTINE_DEBUG2).unwrap();
        assert_eq!(gs.len(), 203);
        let leaked: Vec<_> = gs
            .iter()
            .filter(|g| g.stack.first().map(String::as_str) == Some("main.leakyWorker"))
            .collect();
        assert_eq!(leaked.len(), 200);
        for g in &leaked {
            assert_eq!(g.state, "chan receive");
            assert_eq!(g.stack, ["main.leakyWorker"]);
            assert_eq!(g.created_by.as_deref(), Some("main.leak"));
        }
        let main = gs.iter().find(|g| g.id == 1).unwrap();
        assert_eq!(main.state, "IO wait");
        assert_eq!(main.created_by, None);
        assert_eq!(main.stack.last().unwrap(), "main.main");
        let running = gs.iter().find(|g| g.state == "running").unwrap();
        assert_eq!(running.stack[0], "runtime/pprof.writeGoroutineStacks");
        assert_eq!(
            running.created_by.as_deref(),
            Some("net/http.(*Server).Serve")
        );
        let mut ids: Vec<u64> = gs.iter().map(|g| g.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 203, "ids are unique");
    }

    #[test]
    fn debug2_variants_of_newer_and_older_go() {
        let text = "\
goroutine 42 [select, 3 minutes, locked to thread]:
main.(*client).writePump(0xc000123456)
\t/src/app/client.go:88 +0x1d2
...7 frames elided...
main.main.func1({0x1, 0x2}, ...)
\t/src/app/main.go:12 +0x33
created by main.main in goroutine 1
\t/src/app/main.go:10 +0x99

goroutine 43 gp=0xc000007c00 m=nil [chan send (nil chan), 2 minutes]: {\"handler\":\"ws\"}
github.com/a/b/v2/server.(*client).readLoop(...)
\t/go/pkg/server/client.go:5
goroutine 44 [running]:
goroutine running on other thread; stack unavailable
";
        let gs = parse_goroutines(text).unwrap();
        assert_eq!(gs.len(), 3);
        assert_eq!(gs[0].id, 42);
        assert_eq!(gs[0].state, "select");
        assert_eq!(gs[0].stack, ["main.(*client).writePump", "main.main.func1"]);
        assert_eq!(gs[0].created_by.as_deref(), Some("main.main"));
        assert_eq!(gs[1].state, "chan send (nil chan)");
        assert_eq!(gs[1].stack, ["github.com/a/b/v2/server.(*client).readLoop"]);
        assert_eq!(gs[1].created_by, None);
        assert_eq!(gs[2].state, "running");
        assert!(gs[2].stack.is_empty());
    }

    #[test]
    fn debug2_rejects_other_bodies() {
        let msg = parse_goroutines(GOROUTINE_DEBUG1).unwrap_err().to_string();
        assert!(msg.contains("goroutine?debug=2"), "{msg}");
        assert!(msg.ends_with("that is goroutine?debug=1"), "{msg}");
        assert!(matches!(
            parse_goroutines(""),
            Err(DecodeError::Empty { .. })
        ));
        assert!(parse_goroutines("<html>").is_err());
    }

    #[test]
    fn function_names_drop_only_the_arguments() {
        assert_eq!(function_name("main.(*T).M(0x1, {0x2, 0x3})"), "main.(*T).M");
        assert_eq!(function_name("main.f(...)"), "main.f");
        assert_eq!(function_name("main.f()"), "main.f");
        assert_eq!(function_name("main.f"), "main.f");
        assert_eq!(function_name("))"), "))");
        assert_eq!(function_name("(("), "((");
    }

    #[test]
    fn memstats_of_the_heap_fixture() {
        let m = parse_memstats(HEAP_DEBUG1).unwrap();
        assert!(
            m.heap_alloc > 200 * 64 * 1024,
            "holds the 200 retained buffers"
        );
        assert!(m.num_gc > 0);
        assert!(m.num_forced_gc >= 2, "two heap?gc=1 captures");
        assert!(m.heap_objects > 0 && m.mallocs >= m.frees);
        assert!(m.heap_inuse >= m.heap_alloc);
        assert!(m.heap_sys >= m.heap_inuse);
        assert!(m.stack_inuse > 0 && m.stack_sys >= m.stack_inuse);
        assert!(m.sys > m.heap_sys && m.total_alloc >= m.heap_alloc);
        assert!(m.next_gc > 0 && m.last_gc_nanos > 0);
        assert!(m.gc_cpu_fraction >= 0.0 && m.gc_cpu_fraction < 1.0);
        assert!(m.max_rss.unwrap() > 0);
    }

    #[test]
    fn memstats_names_what_is_missing_or_wrong() {
        let msg = parse_memstats(GOROUTINE_DEBUG1).unwrap_err().to_string();
        assert!(
            msg.starts_with("response is not a heap profile with MemStats"),
            "{msg}"
        );
        let no_gc = HEAP_DEBUG1.replace("# NumGC = ", "# NumGCs = ");
        let msg = parse_memstats(&no_gc).unwrap_err().to_string();
        assert!(msg.contains("no '# NumGC = ...' line"), "{msg}");
        let bad = HEAP_DEBUG1.replace("# HeapAlloc = ", "# HeapAlloc = x");
        let msg = parse_memstats(&bad).unwrap_err().to_string();
        assert!(msg.contains("HeapAlloc = 'x"), "{msg}");
        let stack = HEAP_DEBUG1.replace("# Stack = ", "# Stack = 12 ");
        assert!(parse_memstats(&stack).is_err());
        assert!(matches!(parse_memstats(""), Err(DecodeError::Empty { .. })));
    }
}
