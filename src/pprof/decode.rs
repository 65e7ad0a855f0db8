//! Bytes to [`Profile`]: gzip unwrapping under a size cap, protobuf decoding,
//! and resolving sample -> location -> line -> function -> string ids into
//! function-name stacks, with every id and index checked.

use std::collections::HashMap;
use std::io::Read;

use prost::Message;

use super::{DecodeError, Profile, Sample, printable_start, proto};

/// Largest profile.proto accepted, after gunzip (or raw). Real heap and
/// goroutine profiles are kilobytes to a few MiB; Go's own `debug=2` dump
/// truncates at 64 MiB. 256 MiB leaves room for huge services while a gzip
/// bomb (a few KiB inflating to GiBs) fails fast with [`DecodeError::TooLarge`].
pub const MAX_DECOMPRESSED_BYTES: u64 = 256 << 20;

/// Most samples accepted: one per distinct stack (and label set). Heap
/// profiles of large services hold around 10^5.
pub const MAX_SAMPLES: usize = 1 << 21;

/// Most locations (distinct PCs) accepted.
pub const MAX_LOCATIONS: usize = 1 << 22;

/// Most functions accepted.
pub const MAX_FUNCTIONS: usize = 1 << 22;

/// Most frames in one resolved stack, inlined frames included. Go records
/// at most 128 PCs per stack (32 before Go 1.23); inlining multiplies that
/// by a small factor.
pub const MAX_STACK_DEPTH: usize = 4096;

/// Most bytes of names copied into resolved stacks and labels, all samples
/// together. Resolution copies a name once per use, so a small hostile
/// profile (one long name, many references) could otherwise expand to GiBs.
pub const MAX_RESOLVED_BYTES: u64 = 1 << 30;

/// gzip's magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decodes a profile, gzip-wrapped or not.
pub fn decode(bytes: &[u8]) -> Result<Profile, DecodeError> {
    let raw = decode_proto(bytes)?;
    resolve(&raw)
}

/// Unwraps and decodes `bytes` into the generated type, checking the table
/// size caps but not yet the ids.
pub(super) fn decode_proto(bytes: &[u8]) -> Result<proto::Profile, DecodeError> {
    let raw = unwrap(bytes, MAX_DECOMPRESSED_BYTES)?;
    let profile = proto::Profile::decode(raw.as_ref())?;
    check_counts(&profile)?;
    Ok(profile)
}

/// The profile.proto bytes inside `bytes`: inflated if gzip, else `bytes`
/// itself once it is clear it is not text. Fails past `cap` bytes.
fn unwrap(bytes: &[u8], cap: u64) -> Result<std::borrow::Cow<'_, [u8]>, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty {
            expected: "profile",
        });
    }
    if bytes.starts_with(&GZIP_MAGIC) {
        return gunzip(bytes, cap).map(std::borrow::Cow::Owned);
    }
    if looks_like_text(bytes) {
        return Err(DecodeError::NotProfile {
            start: printable_start(bytes, 40),
        });
    }
    if bytes.len() as u64 > cap {
        return Err(DecodeError::TooLarge {
            what: "the raw profile",
            limit: cap,
        });
    }
    Ok(std::borrow::Cow::Borrowed(bytes))
}

/// Inflates one gzip member, failing once more than `cap` bytes come out.
fn gunzip(bytes: &[u8], cap: u64) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(DecodeError::CorruptGzip)?;
    if out.len() as u64 > cap {
        return Err(DecodeError::TooLarge {
            what: "the decompressed profile",
            limit: cap,
        });
    }
    if out.is_empty() {
        return Err(DecodeError::Empty {
            expected: "profile inside the gzip stream",
        });
    }
    Ok(out)
}

/// Whether the start of `bytes` is printable text (HTML, a `debug=1` dump,
/// an error message) rather than protobuf. A profile.proto starts with tag
/// 0x0a (sample_type) followed by a length and tag 0x08, neither printable.
fn looks_like_text(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .take(32)
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
}

fn check_counts(p: &proto::Profile) -> Result<(), DecodeError> {
    for (what, count, limit) in [
        ("samples", p.sample.len(), MAX_SAMPLES),
        ("locations", p.location.len(), MAX_LOCATIONS),
        ("functions", p.function.len(), MAX_FUNCTIONS),
    ] {
        if count > limit {
            return Err(DecodeError::TooMany { what, count, limit });
        }
    }
    Ok(())
}

/// Id-to-entry lookups over a decoded profile, each id and string index
/// checked once. Shared by [`decode`] and the diff writer.
pub(super) struct Tables<'a> {
    pub(super) profile: &'a proto::Profile,
    locations: HashMap<u64, &'a proto::Location>,
    functions: HashMap<u64, &'a proto::Function>,
}

impl<'a> Tables<'a> {
    /// Indexes `profile`, checking the string table, the ids, and that
    /// every reference between tables points somewhere.
    pub(super) fn new(profile: &'a proto::Profile) -> Result<Self, DecodeError> {
        if profile.string_table.first().map(String::as_str) != Some("") {
            return Err(DecodeError::Inconsistent(
                "string_table must start with the empty string".to_owned(),
            ));
        }
        if profile.sample_type.is_empty() {
            return Err(DecodeError::Inconsistent(
                "no sample types: nothing says what the values mean".to_owned(),
            ));
        }
        let mut tables = Tables {
            profile,
            locations: HashMap::with_capacity(profile.location.len()),
            functions: HashMap::with_capacity(profile.function.len()),
        };
        for f in &profile.function {
            if f.id == 0 {
                return Err(DecodeError::Inconsistent("a function has id 0".to_owned()));
            }
            if tables.functions.insert(f.id, f).is_some() {
                return Err(DecodeError::Inconsistent(format!(
                    "function id {} appears twice",
                    f.id
                )));
            }
            for (field, index) in [
                ("name", f.name),
                ("system_name", f.system_name),
                ("filename", f.filename),
            ] {
                tables.string(index, || format!("function {} {field}", f.id))?;
            }
        }
        for loc in &profile.location {
            if loc.id == 0 {
                return Err(DecodeError::Inconsistent("a location has id 0".to_owned()));
            }
            if tables.locations.insert(loc.id, loc).is_some() {
                return Err(DecodeError::Inconsistent(format!(
                    "location id {} appears twice",
                    loc.id
                )));
            }
            for line in &loc.line {
                if !tables.functions.contains_key(&line.function_id) {
                    return Err(DecodeError::Inconsistent(format!(
                        "location {} refers to function id {}, which is not in the function table",
                        loc.id, line.function_id
                    )));
                }
            }
        }
        Ok(tables)
    }

    /// String `index` of the table; `what` names the referring field for the
    /// error message.
    pub(super) fn string(
        &self,
        index: i64,
        what: impl FnOnce() -> String,
    ) -> Result<&'a str, DecodeError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.profile.string_table.get(i))
            .map(String::as_str)
            .ok_or_else(|| {
                DecodeError::Inconsistent(format!(
                    "{} is string index {index}, but string_table has {} entries",
                    what(),
                    self.profile.string_table.len()
                ))
            })
    }

    /// The location with `id`, referred to by sample number `sample`.
    pub(super) fn location(
        &self,
        id: u64,
        sample: usize,
    ) -> Result<&'a proto::Location, DecodeError> {
        self.locations.get(&id).copied().ok_or_else(|| {
            DecodeError::Inconsistent(format!(
                "sample {sample} refers to location id {id}, which is not in the location table"
            ))
        })
    }

    /// The function with `id`; [`Tables::new`] checked that every line's
    /// function exists.
    pub(super) fn function(&self, id: u64) -> Option<&'a proto::Function> {
        self.functions.get(&id).copied()
    }

    /// (type, unit) of a value type.
    pub(super) fn value_type(
        &self,
        vt: &proto::ValueType,
        what: &str,
    ) -> Result<(String, String), DecodeError> {
        Ok((
            self.string(vt.r#type, || format!("{what} type"))?
                .to_owned(),
            self.string(vt.unit, || format!("{what} unit"))?.to_owned(),
        ))
    }

    /// Checks sample `i` has one value per sample type and that its stack is
    /// not absurdly deep.
    pub(super) fn check_sample(&self, i: usize, s: &proto::Sample) -> Result<(), DecodeError> {
        if s.value.len() != self.profile.sample_type.len() {
            return Err(DecodeError::Inconsistent(format!(
                "sample {i} has {} values but the profile has {} sample types",
                s.value.len(),
                self.profile.sample_type.len()
            )));
        }
        if s.location_id.len() > MAX_STACK_DEPTH {
            return Err(DecodeError::Inconsistent(format!(
                "sample {i} has {} locations, more than the limit of {MAX_STACK_DEPTH}",
                s.location_id.len()
            )));
        }
        Ok(())
    }
}

/// A frame name for a location without line information (unsymbolized).
pub(super) fn address_frame(loc: &proto::Location) -> String {
    format!("0x{:x}", loc.address)
}

/// Resolves every id of `p` into a [`Profile`].
fn resolve(p: &proto::Profile) -> Result<Profile, DecodeError> {
    let tables = Tables::new(p)?;
    let sample_types = p
        .sample_type
        .iter()
        .enumerate()
        .map(|(i, vt)| tables.value_type(vt, &format!("sample_type[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let period_type = match &p.period_type {
        Some(vt) => Some(tables.value_type(vt, "period_type")?),
        None => None,
    };
    let default_sample_type =
        match tables.string(p.default_sample_type, || "default_sample_type".to_owned())? {
            "" => None,
            name => Some(name.to_owned()),
        };

    let mut budget = Budget(MAX_RESOLVED_BYTES);
    let mut samples = Vec::with_capacity(p.sample.len());
    for (i, s) in p.sample.iter().enumerate() {
        tables.check_sample(i, s)?;
        let mut stack = Vec::with_capacity(s.location_id.len());
        for &id in &s.location_id {
            let loc = tables.location(id, i)?;
            if loc.line.is_empty() {
                stack.push(budget.take(address_frame(loc))?);
            }
            for line in &loc.line {
                // Tables::new checked every line's function exists.
                let name = match tables.function(line.function_id) {
                    Some(f) => tables.string(f.name, || format!("function {} name", f.id))?,
                    None => "?",
                };
                stack.push(budget.take_str(name)?);
            }
            if stack.len() > MAX_STACK_DEPTH {
                return Err(DecodeError::Inconsistent(format!(
                    "sample {i} expands to more than {MAX_STACK_DEPTH} frames"
                )));
            }
        }
        let mut labels = Vec::new();
        for l in &s.label {
            if l.str == 0 {
                continue; // numeric label, or no value
            }
            let key = tables.string(l.key, || format!("sample {i} label key"))?;
            let value = tables.string(l.str, || format!("sample {i} label value"))?;
            labels.push((budget.take_str(key)?, budget.take_str(value)?));
        }
        samples.push(Sample {
            stack,
            values: s.value.clone(),
            labels,
        });
    }
    Ok(Profile {
        sample_types,
        samples,
        period_type,
        period: p.period,
        time_nanos: p.time_nanos,
        duration_nanos: p.duration_nanos,
        default_sample_type,
    })
}

/// Bytes left to copy into resolved names (see [`MAX_RESOLVED_BYTES`]).
struct Budget(u64);

impl Budget {
    fn take_str(&mut self, s: &str) -> Result<String, DecodeError> {
        self.charge(s.len())?;
        Ok(s.to_owned())
    }

    fn take(&mut self, s: String) -> Result<String, DecodeError> {
        self.charge(s.len())?;
        Ok(s)
    }

    fn charge(&mut self, len: usize) -> Result<(), DecodeError> {
        // Each copy also costs a String header; count it so that millions of
        // empty names still add up.
        let cost = len as u64 + std::mem::size_of::<String>() as u64;
        self.0 = self.0.checked_sub(cost).ok_or(DecodeError::TooLarge {
            what: "the resolved stacks",
            limit: MAX_RESOLVED_BYTES,
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::fixtures::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn heap_fixture_has_the_four_heap_sample_types() {
        let p = decode(HEAP_AFTER).unwrap();
        let types: Vec<_> = p.sample_types.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            types,
            [
                "alloc_objects",
                "alloc_space",
                "inuse_objects",
                "inuse_space"
            ]
        );
        assert_eq!(p.sample_types[3].1, "bytes");
        assert_eq!(
            p.period_type,
            Some(("space".to_owned(), "bytes".to_owned()))
        );
        assert_eq!(p.period, 512 * 1024);
        assert!(p.time_nanos > 0);
        assert_eq!(p.value_index("inuse_space"), Some(3));
        assert!(
            p.samples
                .iter()
                .any(|s| s.stack.iter().any(|f| f == "main.retain"))
        );
        for s in &p.samples {
            assert_eq!(s.values.len(), 4);
            assert!(!s.stack.is_empty());
        }
    }

    #[test]
    fn goroutineleak_fixture_totals_the_stranded_senders() {
        let p = decode(GOROUTINE_LEAK).unwrap();
        assert_eq!(
            p.sample_types,
            [("goroutineleak".to_owned(), "count".to_owned())]
        );
        assert_eq!(crate::pprof::sample_total(&p, 0), 50);
        assert!(p.samples.iter().all(|s| {
            s.stack.iter().any(|f| f == "main.handleLookup.func1")
                && s.stack.iter().any(|f| f == "runtime.chansend1")
        }));
    }

    #[test]
    fn goroutine_fixture_resolves_leaf_first() {
        let p = decode(GOROUTINE_AFTER).unwrap();
        assert_eq!(
            p.sample_types,
            [("goroutine".to_owned(), "count".to_owned())]
        );
        let total: i64 = p.samples.iter().map(|s| s.values[0]).sum();
        assert_eq!(total, 203, "matches goroutine-after.debug1.txt's total");
        let leak = p
            .samples
            .iter()
            .find(|s| s.stack.iter().any(|f| f == "main.leakyWorker"))
            .unwrap();
        assert_eq!(leak.values, [200]);
        // pprof drops runtime.goexit from the root, as `go tool pprof -traces` shows.
        assert_eq!(
            leak.stack,
            [
                "runtime.gopark",
                "runtime.chanrecv",
                "runtime.chanrecv1",
                "main.leakyWorker"
            ]
        );
    }

    #[test]
    fn raw_protobuf_decodes_like_gzip() {
        let raw = unwrap(GOROUTINE_BASE, MAX_DECOMPRESSED_BYTES).unwrap();
        let from_raw = decode(&raw).unwrap();
        let from_gz = decode(GOROUTINE_BASE).unwrap();
        assert_eq!(from_raw.samples.len(), from_gz.samples.len());
        assert_eq!(from_raw.samples[0].stack, from_gz.samples[0].stack);
    }

    #[test]
    fn inlined_lines_expand_innermost_first_and_labels_are_kept() {
        let p = proto::Profile {
            sample_type: vec![proto::ValueType { r#type: 1, unit: 2 }],
            sample: vec![proto::Sample {
                location_id: vec![7, 8],
                value: vec![3],
                label: vec![
                    proto::Label {
                        key: 6,
                        str: 7,
                        ..Default::default()
                    },
                    proto::Label {
                        key: 8,
                        num: 64,
                        ..Default::default()
                    },
                ],
            }],
            location: vec![
                proto::Location {
                    id: 7,
                    line: vec![
                        proto::Line {
                            function_id: 1,
                            line: 10,
                            column: 0,
                        },
                        proto::Line {
                            function_id: 2,
                            line: 20,
                            column: 0,
                        },
                    ],
                    ..Default::default()
                },
                proto::Location {
                    id: 8,
                    address: 0x4abc,
                    ..Default::default()
                },
            ],
            function: vec![
                proto::Function {
                    id: 1,
                    name: 3,
                    ..Default::default()
                },
                proto::Function {
                    id: 2,
                    name: 4,
                    ..Default::default()
                },
            ],
            string_table: [
                "",
                "goroutine",
                "count",
                "main.inner",
                "main.outer",
                "",
                "handler",
                "ws",
                "bytes",
            ]
            .map(String::from)
            .to_vec(),
            ..Default::default()
        };
        let decoded = decode(&p.encode_to_vec()).unwrap();
        let s = &decoded.samples[0];
        assert_eq!(s.stack, ["main.inner", "main.outer", "0x4abc"]);
        assert_eq!(s.labels, [("handler".to_owned(), "ws".to_owned())]);
    }

    fn minimal() -> proto::Profile {
        proto::Profile {
            sample_type: vec![proto::ValueType { r#type: 1, unit: 2 }],
            sample: vec![proto::Sample {
                location_id: vec![1],
                value: vec![1],
                label: vec![],
            }],
            location: vec![proto::Location {
                id: 1,
                line: vec![proto::Line {
                    function_id: 1,
                    line: 1,
                    column: 0,
                }],
                ..Default::default()
            }],
            function: vec![proto::Function {
                id: 1,
                name: 3,
                ..Default::default()
            }],
            string_table: ["", "goroutine", "count", "main.f"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        }
    }

    fn inconsistency(p: &proto::Profile) -> String {
        match decode(&p.encode_to_vec()) {
            Err(DecodeError::Inconsistent(msg)) => msg,
            other => panic!("expected Inconsistent, got {other:?}"),
        }
    }

    #[test]
    fn minimal_profile_decodes() {
        let p = decode(&minimal().encode_to_vec()).unwrap();
        assert_eq!(p.samples[0].stack, ["main.f"]);
    }

    #[test]
    fn dangling_references_are_named() {
        let mut p = minimal();
        p.sample[0].location_id = vec![9];
        assert!(inconsistency(&p).contains("location id 9"));

        let mut p = minimal();
        p.location[0].line[0].function_id = 5;
        assert!(inconsistency(&p).contains("function id 5"));

        let mut p = minimal();
        p.function[0].name = 40;
        let msg = inconsistency(&p);
        assert!(
            msg.contains("function 1 name") && msg.contains("40"),
            "{msg}"
        );

        let mut p = minimal();
        p.function[0].name = -1;
        assert!(inconsistency(&p).contains("-1"));

        let mut p = minimal();
        p.sample[0].value = vec![1, 2];
        assert!(inconsistency(&p).contains("2 values"));

        let mut p = minimal();
        p.location.push(p.location[0].clone());
        assert!(inconsistency(&p).contains("appears twice"));

        let mut p = minimal();
        p.string_table[0] = "x".to_owned();
        assert!(inconsistency(&p).contains("empty string"));
    }

    #[test]
    fn html_and_text_bodies_say_what_they_are() {
        let err = decode(b"<html><body>404 page not found</body></html>").unwrap_err();
        assert!(matches!(err, DecodeError::NotProfile { .. }));
        let msg = err.to_string();
        assert!(msg.starts_with("response is not a profile: it starts with '<html>"));
        assert!(msg.contains("pprof endpoint"), "{msg}");

        let text = GOROUTINE_DEBUG1.as_bytes();
        let msg = decode(text).unwrap_err().to_string();
        assert!(msg.contains("'goroutine profile: total 203"), "{msg}");
    }

    #[test]
    fn empty_truncated_and_corrupt_inputs_are_errors() {
        assert!(matches!(decode(b""), Err(DecodeError::Empty { .. })));
        assert!(matches!(decode(&gzip(b"")), Err(DecodeError::Empty { .. })));
        for cut in [2, 10, HEAP_AFTER.len() / 2, HEAP_AFTER.len() - 1] {
            let err = decode(&HEAP_AFTER[..cut]).unwrap_err();
            assert!(matches!(err, DecodeError::CorruptGzip(_)), "{cut}: {err}");
        }
        let mut flipped = HEAP_AFTER.to_vec();
        flipped[20] ^= 0xff;
        assert!(decode(&flipped).is_err());
        // A gzip-wrapped body that is not protobuf.
        assert!(decode(&gzip(&[0xff; 64])).is_err());
        // Raw bytes that are neither text nor protobuf.
        assert!(matches!(
            decode(&[0x0a, 0xff, 0xff, 0x01]),
            Err(DecodeError::Protobuf(_))
        ));
    }

    #[test]
    fn gzip_bomb_stops_at_the_cap() {
        let bomb = gzip(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 8 << 10);
        match unwrap(&bomb, 64 << 10) {
            Err(DecodeError::TooLarge { limit, .. }) => assert_eq!(limit, 64 << 10),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(unwrap(&bomb, 1 << 20).unwrap().len(), 1 << 20);
    }
}
