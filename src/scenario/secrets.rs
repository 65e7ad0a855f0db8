//! `[secrets]`: header names, query parameters and environment variables
//! whose values are redacted from every output.

use super::raw::FileSecrets;
use super::validate::Validator;
use super::{ScenarioError, Secrets};

impl Validator<'_> {
    pub(super) fn secrets(&self, file: FileSecrets) -> Result<Secrets, ScenarioError> {
        let mut out = Secrets::default();
        for name in &file.headers {
            let header = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                self.invalid(
                    "secrets.headers",
                    format!("`{name}` is not an HTTP header name"),
                )
            })?;
            out.headers.push(header);
        }
        for name in file.query {
            if name.is_empty() || name.contains(['&', '=', '#']) {
                return Err(self.invalid(
                    "secrets.query",
                    format!("`{name}` is not a query parameter name"),
                ));
            }
            out.query.push(name);
        }
        for name in &file.env {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.invalid(
                    "secrets.env",
                    format!("`{name}` is not a variable name; use letters, digits and _"),
                ));
            }
            if let Ok(value) = std::env::var(name) {
                out.values.push(value);
            }
        }
        Ok(out)
    }
}
