//! `[secrets]`: header names, query parameters and environment variables
//! whose values are redacted from every output.

use super::raw::FileSecrets;
use super::validate::Validator;
use super::{ScenarioError, Secrets};

impl Validator<'_> {
    /// `[secrets]`: each name checked; the values of the named environment
    /// variables that are set are read now.
    pub(super) fn secrets(&self, file: FileSecrets) -> Result<Secrets, ScenarioError> {
        let mut out = Secrets::default();
        for name in &file.headers {
            let header = http::HeaderName::from_bytes(name.get_ref().as_bytes()).map_err(|_| {
                self.invalid(
                    "secrets.headers",
                    name.span(),
                    format!("`{}` is not an HTTP header name", name.get_ref()),
                )
            })?;
            out.headers.push(header);
        }
        for name in file.query {
            let at = name.span();
            let name = name.into_inner();
            if name.is_empty() || name.contains(['&', '=', '#']) {
                return Err(self.invalid(
                    "secrets.query",
                    at,
                    format!("`{name}` is not a query parameter name"),
                ));
            }
            out.query.push(name);
        }
        for spanned in &file.env {
            let name = spanned.get_ref();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.invalid(
                    "secrets.env",
                    spanned.span(),
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
