//! Serde for a load's header list, `[[name, value], ...]` with values as
//! text (the scenario's header values are text, `${VAR}` already
//! expanded): the form in which a coordinator ships a validated load to
//! its fleet agents.

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

/// Writes the headers as pairs of strings.
pub fn serialize<S: Serializer>(
    headers: &[(HeaderName, HeaderValue)],
    s: S,
) -> Result<S::Ok, S::Error> {
    let pairs: Vec<(&str, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    pairs.serialize(s)
}

/// Reads pairs of strings back into headers.
pub fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<(HeaderName, HeaderValue)>, D::Error> {
    let pairs: Vec<(String, String)> = Vec::deserialize(d)?;
    pairs
        .into_iter()
        .map(|(n, v)| {
            let name = HeaderName::try_from(n.as_str()).map_err(D::Error::custom)?;
            let value = HeaderValue::try_from(v.as_str()).map_err(D::Error::custom)?;
            Ok((name, value))
        })
        .collect()
}
