//! report.json: the machine-readable contract.

use super::{Render, Report};

/// Pretty-printed JSON of the whole [`Report`].
pub struct Json;

impl Render for Json {
    fn file_name(&self) -> &'static str {
        "report.json"
    }

    fn render(&self, report: &Report) -> String {
        let mut text = serde_json::to_string_pretty(report).expect("report serializes");
        text.push('\n');
        text
    }
}
