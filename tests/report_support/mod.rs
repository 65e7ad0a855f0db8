//! Checks shared by the report tests: render an HTML file in Debian's
//! headless Chromium, count a colour's pixels in the screenshot, validate a
//! report against the checked-in JSON Schema, and read junit.xml.

#![allow(dead_code)] // each test binary uses a subset

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest a Chromium render may take on a loaded two-core machine.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(180);

/// The browser window: wide enough for the charts, tall enough for the
/// verdict, the signals and the four top charts.
pub const WINDOW: (u32, u32) = (1200, 2400);

/// What headless Chromium made of a page.
pub struct Rendered {
    /// The DOM after parsing and layout (`--dump-dom`).
    pub dom: String,
    /// The screenshot.
    pub png: Vec<u8>,
}

fn chromium_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed, so report.html cannot be checked in a real browser; \
                 install it with: apt-get install -y chromium (or bash .ci/install)"
            )
        })
}

/// Runs headless Chromium on `html` with the given extra arguments, killing
/// it after [`CHROMIUM_DEADLINE`]; returns its stdout.
fn chromium(html: &Path, profile: &Path, extra: &[String]) -> String {
    let url = format!(
        "file://{}",
        html.canonicalize().expect("html path").display()
    );
    let mut child = Command::new(chromium_binary())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > CHROMIUM_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    stdout
}

/// Renders `html` in headless Chromium: its DOM, then a screenshot of
/// [`WINDOW`] size.
pub fn render_in_chromium(html: &Path) -> Rendered {
    let work = tempfile::tempdir().expect("tempdir");
    let dom = chromium(
        html,
        &work.path().join("profile-dom"),
        &["--dump-dom".to_owned()],
    );
    let shot = work.path().join("page.png");
    chromium(
        html,
        &work.path().join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        ],
    );
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot {}: {e}", shot.display()));
    Rendered { dom, png }
}

/// Decodes a PNG into (width, height, RGBA pixels).
pub fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<[u8; 4]>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let data = &buf[..info.buffer_size()];
    let pixels = match info.color_type {
        png::ColorType::Rgba => data
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
        png::ColorType::Rgb => data
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2], 255])
            .collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    (info.width, info.height, pixels)
}

/// Pixels within a small distance of `#rrggbb` (anti-aliasing aside, the
/// inside of a 2-pixel line or a marker is the exact colour).
pub fn count_colour(pixels: &[[u8; 4]], hex: &str) -> usize {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).expect("hex colour");
    let want = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
    pixels
        .iter()
        .filter(|p| (0..3).all(|i| p[i].abs_diff(want[i]) <= 6))
        .count()
}

/// Checks the DOM Chromium built: every chart is an SVG element with its
/// polylines, and nothing failed to parse into a script.
pub fn assert_charts_in_dom(dom: &str) {
    for id in [
        "chart-cycles-goroutines",
        "chart-cycles-heap",
        "chart-timeline-goroutines",
        "chart-timeline-heap",
        "chart-latency",
    ] {
        let at = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id} in the rendered DOM:\n{dom}"));
        let start = dom[..at].rfind('<').expect("element start");
        assert!(
            dom[start..].starts_with("<svg"),
            "#{id} is not an <svg> element in the rendered DOM"
        );
        let end = at + dom[at..].find("</svg>").expect("svg end");
        assert!(
            dom[at..end].contains("<polyline"),
            "#{id} has no line in the rendered DOM"
        );
    }
    assert!(!dom.contains("<script"), "a script element in the DOM");
}

/// The checked-in schema of report.json.
pub fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/report.v1.schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Validates `report` against the schema; panics listing every violation.
pub fn assert_valid_report(report: &Value) {
    let schema = schema();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report.json does not match schema/report.v1.schema.json:\n{}\n--- report ---\n{}",
        errors.join("\n"),
        serde_json::to_string_pretty(report).unwrap_or_default()
    );
}

/// A JUnit test case as read back from junit.xml.
#[derive(Debug)]
pub struct Case {
    /// `classname` attribute.
    pub classname: String,
    /// `name` attribute.
    pub name: String,
    /// The failure's message attribute and text, if it failed.
    pub failure: Option<(String, String)>,
}

/// Parses junit.xml with a real XML parser and checks the suite's counts
/// agree with its test cases.
pub fn parse_junit(xml: &str) -> Vec<Case> {
    let doc = roxmltree::Document::parse(xml)
        .unwrap_or_else(|e| panic!("junit.xml is not XML: {e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    let cases: Vec<Case> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| Case {
            classname: n.attribute("classname").unwrap_or_default().to_owned(),
            name: n.attribute("name").unwrap_or_default().to_owned(),
            failure: n.children().find(|c| c.has_tag_name("failure")).map(|f| {
                (
                    f.attribute("message").unwrap_or_default().to_owned(),
                    f.text().unwrap_or_default().to_owned(),
                )
            }),
        })
        .collect();
    let count = |node: roxmltree::Node, attr| -> usize {
        node.attribute(attr)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{} has no numeric {attr}", node.tag_name().name()))
    };
    let failed = cases.iter().filter(|c| c.failure.is_some()).count();
    for node in [root, suite] {
        assert_eq!(count(node, "tests"), cases.len(), "tests= of {xml}");
        assert_eq!(count(node, "failures"), failed, "failures= of {xml}");
    }
    cases
}
