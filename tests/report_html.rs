//! report.html in a real browser: Debian's headless Chromium renders a
//! report built in memory, and the test checks that the charts exist as SVG
//! in the DOM Chromium built and that they were painted (their colours are
//! in the screenshot).

mod report_support;

use leakbench::report::Render;
use leakbench::report::html::{GOROUTINE_COLOUR, HEAP_COLOUR, Html};
use leakbench::report::sample::leaking_report;
use report_support::{WINDOW, assert_charts_in_dom, count_colour, decode_png, render_in_chromium};

/// Pixels of a series colour that prove a chart was painted: a 2-pixel line
/// across a 1100-pixel chart alone is well over this.
const PAINTED: usize = 400;

#[test]
fn html_report_renders_its_charts_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("report.html");
    std::fs::write(&path, Html.render(&leaking_report())).expect("write report.html");

    let page = render_in_chromium(&path);
    assert_charts_in_dom(&page.dom);
    // The scenario text with markup in it stayed text.
    assert!(
        page.dom
            .contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "scenario text not shown escaped"
    );

    let (w, h, pixels) = decode_png(&page.png);
    assert_eq!((w, h), WINDOW, "screenshot size");
    let goroutine = count_colour(&pixels, GOROUTINE_COLOUR);
    let heap = count_colour(&pixels, HEAP_COLOUR);
    assert!(
        goroutine > PAINTED && heap > PAINTED,
        "charts not painted: {goroutine} goroutine-coloured and {heap} heap-coloured pixels"
    );
    // Not a blank page: a good share of pixels is not white.
    let ink = pixels.iter().filter(|p| p[..3] != [255, 255, 255]).count();
    assert!(
        ink > pixels.len() / 50,
        "page nearly blank: {ink} of {} pixels",
        pixels.len()
    );
}
