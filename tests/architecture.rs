//! The house rules of `src/`, checked by reading its `use crate::` lines:
//! data flows one way (scenario → protocol → load, sources, settle →
//! verdict → suspects → report model → renderers), so no module reaches
//! back into one that depends on it, and renderers read the report model,
//! never the protocol that fills it.
//!
//! `cargo test --test architecture` prints the module graph it read when a
//! rule breaks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module -> the top-level modules its code names through `crate::`.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without comments (line comments and doc comments; the
/// code base has no block comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal ("http://...") is not a comment.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module named after `crate::`, including each one of a
/// `crate::{a, b::c}` group.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first path segment of each top-level item of the group;
            // nested groups (`load::{self, X}`) belong to their item.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        insert_first_segment(&item, &mut out);
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            insert_first_segment(&item, &mut out);
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn insert_first_segment(item: &str, out: &mut BTreeSet<String>) {
    let name = item.trim().split("::").next().unwrap_or("").trim();
    if !name.is_empty() {
        out.insert(name.to_owned());
    }
}

/// The top-level module a file belongs to; `None` for the crate root.
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).expect("under src/");
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    match first.strip_suffix(".rs") {
        Some("lib") | Some("main") => None,
        Some(stem) => Some(stem.to_owned()),
        None => Some(first),
    }
}

fn graph() -> Graph {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut g = Graph::new();
    for path in files {
        let Some(module) = module_of(&path) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).expect("readable source");
        let edges = g.entry(module.clone()).or_default();
        for m in named_modules(&code(&text)) {
            if m != module {
                edges.insert(m);
            }
        }
    }
    g
}

/// A cycle through the graph, as the path of modules that closes it.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in g.get(node).into_iter().flatten() {
            if let Some(c) = visit(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in g.keys() {
        if let Some(c) = visit(g, node, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

fn show(g: &Graph) -> String {
    g.iter()
        .map(|(m, deps)| {
            format!(
                "  {m} -> {}",
                deps.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_module_reaches_back_into_one_that_uses_it() {
    let g = graph();
    assert!(g.len() > 10, "read too few modules:\n{}", show(&g));
    // Edges that must exist, so a reader that silently saw nothing fails.
    assert!(g["report"].contains("verdict"), "{}", show(&g));
    assert!(g["scenario"].contains("prom"), "{}", show(&g));
    if let Some(cycle) = find_cycle(&g) {
        panic!(
            "import circle: {}\nthe module graph:\n{}",
            cycle.join(" -> "),
            show(&g)
        );
    }
}

#[test]
fn renderers_read_the_report_model_only() {
    let mut files = Vec::new();
    rust_files(&src().join("report"), &mut files);
    let forbidden = ["cli", "commands", "protocol", "run", "probe", "target"];
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable source");
        let named = named_modules(&code(&text));
        let bad: Vec<&str> = forbidden
            .iter()
            .copied()
            .filter(|m| named.contains(*m))
            .collect();
        assert!(
            bad.is_empty(),
            "{} names {bad:?}: renderers read crate::report::model",
            path.display()
        );
    }
}

#[test]
fn the_checker_sees_a_circle_when_there_is_one() {
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.to_owned()).or_default().insert(b.to_owned());
    }
    assert_eq!(
        find_cycle(&g).map(|c| c.join(" -> ")),
        Some("a -> b -> c -> a".to_owned())
    );
    g.get_mut("c").map(|deps| deps.remove("a"));
    assert_eq!(find_cycle(&g), None);
    let names = named_modules("use crate::{load::{self, X}, report};\nlet x = crate::exit::ERROR;");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["exit", "load", "report"]
    );
}
