//! Comparing two profiles of one type: [`grown_stacks`] over resolved
//! [`Profile`]s, and [`diff_profile`], which writes `after - base` as a new
//! profile.proto that `go tool pprof` reads like any other.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Write;

use prost::Message;

use super::decode::{Tables, decode_proto};
use super::{DecodeError, Growth, Profile, proto};

/// Stacks whose value at `index` grew from `base` to `after`, largest growth first.
///
/// Samples are summed per function-name stack first (labels ignored), so a
/// stack split by labels or by heap object size counts once. Ties are broken
/// by the stack itself, so the order is deterministic. An `index` beyond a
/// sample's values counts as 0.
pub fn grown_stacks(base: &Profile, after: &Profile, index: usize) -> Vec<Growth> {
    let base_totals = totals(base, index);
    let after_totals = totals(after, index);
    let mut grown: Vec<Growth> = after_totals
        .iter()
        .map(|(stack, &a)| (*stack, base_totals.get(stack).copied().unwrap_or(0), a))
        // Gone from `after` is 0 there: growth only if the base was negative,
        // as in delta profiles.
        .chain(
            base_totals
                .iter()
                .filter(|(stack, _)| !after_totals.contains_key(*stack))
                .map(|(stack, &b)| (*stack, b, 0)),
        )
        .filter(|&(_, b, a)| a > b)
        .map(|(stack, base, after)| Growth {
            stack: stack.to_vec(),
            base,
            after,
        })
        .collect();
    grown.sort_by(|x, y| {
        growth(y)
            .cmp(&growth(x))
            .then_with(|| x.stack.cmp(&y.stack))
    });
    grown
}

fn growth(g: &Growth) -> i128 {
    i128::from(g.after) - i128::from(g.base)
}

/// Sum of value `index` per stack.
fn totals(p: &Profile, index: usize) -> HashMap<&[String], i64> {
    let mut sums: HashMap<&[String], i64> = HashMap::new();
    for s in &p.samples {
        let v = s.values.get(index).copied().unwrap_or(0);
        let sum = sums.entry(s.stack.as_slice()).or_insert(0);
        *sum = sum.saturating_add(v);
    }
    sums
}

/// Gzips an encoded profile, as net/http/pprof serves them.
pub fn encode_gz(p: &proto::Profile) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    enc.write_all(&p.encode_to_vec())
        .and_then(|()| enc.finish())
        .unwrap_or_default()
}

/// Writes `after - base` as a gzipped profile.proto, like `go tool pprof
/// -base base after` would show it.
///
/// Both inputs are raw profiles (gzip or not) of the same type: sample types
/// and period type must match. Samples merge when their stacks match frame
/// by frame (function name, file, line; inlining kept) and their string
/// labels match; every value becomes after - base, and samples whose values
/// are all 0 are dropped. Numeric labels (heap's per-object `bytes`) are
/// dropped, so one stack's sizes merge. The output has its own string,
/// function and location tables (ids from 1, no mappings), period and period
/// type of `after`, and a comment saying it is a diff.
pub fn diff_profile(base: &[u8], after: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let base = decode_proto(base)?;
    let after = decode_proto(after)?;
    let base_t = Tables::new(&base)?;
    let after_t = Tables::new(&after)?;

    let types = |t: &Tables<'_>| -> Result<Vec<(String, String)>, DecodeError> {
        t.profile
            .sample_type
            .iter()
            .map(|vt| t.value_type(vt, "sample_type"))
            .collect()
    };
    let (base_types, after_types) = (types(&base_t)?, types(&after_t)?);
    if base_types != after_types {
        return Err(DecodeError::Mismatch(format!(
            "sample types differ: base has {}, after has {} - are both the same profile kind?",
            show_types(&base_types),
            show_types(&after_types)
        )));
    }
    let period_type = |t: &Tables<'_>| match &t.profile.period_type {
        Some(vt) => t.value_type(vt, "period_type").map(Some),
        None => Ok(None),
    };
    let (base_period, after_period) = (period_type(&base_t)?, period_type(&after_t)?);
    if base_period != after_period {
        return Err(DecodeError::Mismatch(format!(
            "period types differ: base has {base_period:?}, after has {after_period:?}"
        )));
    }

    let mut merged = Merged::default();
    merged.add(&after_t, 1)?;
    merged.add(&base_t, -1)?;

    let mut w = Writer::new();
    let mut out = proto::Profile {
        sample_type: after_types
            .iter()
            .map(|(ty, unit)| w.value_type(ty, unit))
            .collect(),
        period_type: after_period.map(|(ty, unit)| w.value_type(&ty, &unit)),
        period: after.period,
        time_nanos: after.time_nanos,
        duration_nanos: match after.time_nanos.checked_sub(base.time_nanos) {
            Some(d) if base.time_nanos > 0 && d > 0 => d,
            _ => after.duration_nanos,
        },
        ..Default::default()
    };
    for (field, index) in [
        (&mut out.default_sample_type, after.default_sample_type),
        (&mut out.drop_frames, after.drop_frames),
        (&mut out.keep_frames, after.keep_frames),
    ] {
        let s = after_t.string(index, || "a profile header field".to_owned())?;
        *field = w.string(s);
    }
    out.comment
        .push(w.string("leakbench diff: after minus base"));

    for (key, values) in merged.order.iter().zip(&merged.values) {
        if values.iter().all(|&v| v == 0) {
            continue;
        }
        let location_id = key
            .0
            .iter()
            .map(|&loc| w.location(loc, &merged.locs[loc]))
            .collect();
        let label = key
            .1
            .iter()
            .map(|&(k, v)| proto::Label {
                key: w.string(k),
                str: w.string(v),
                ..Default::default()
            })
            .collect();
        out.sample.push(proto::Sample {
            location_id,
            value: values.clone(),
            label,
        });
    }
    out.string_table = w.strings;
    out.function = w.functions;
    out.location = w.locations;
    Ok(encode_gz(&out))
}

fn show_types(types: &[(String, String)]) -> String {
    let list: Vec<String> = types.iter().map(|(t, u)| format!("{t}/{u}")).collect();
    format!("[{}]", list.join(", "))
}

/// One frame of a stack, as merging compares them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Frame<'a> {
    name: &'a str,
    file: &'a str,
    line: i64,
    /// Not compared beyond what name and file already say in practice; kept
    /// so the output function is complete.
    system_name: &'a str,
    start_line: i64,
}

/// One location: its frames innermost first, or a bare address when it has
/// no line information.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Loc<'a> {
    Frames(Vec<Frame<'a>>),
    Address(u64),
}

/// Locations leaf first (indexes into [`Merged::locs`]), and sorted string
/// labels. Indexes rather than [`Loc`]s keep memory proportional to the
/// input: a location is stored once however many samples use it.
type SampleKey<'a> = (Vec<usize>, Vec<(&'a str, &'a str)>);

/// Signed sums of samples per key, in first-seen order.
#[derive(Default)]
struct Merged<'a> {
    /// Distinct locations of both profiles.
    locs: Vec<Loc<'a>>,
    loc_index: HashMap<Loc<'a>, usize>,
    index: HashMap<SampleKey<'a>, usize>,
    order: Vec<SampleKey<'a>>,
    values: Vec<Vec<i64>>,
}

impl<'a> Merged<'a> {
    /// Adds every sample of `t`, multiplied by `sign`.
    fn add(&mut self, t: &Tables<'a>, sign: i64) -> Result<(), DecodeError> {
        // Input location id -> index into self.locs.
        let mut by_id: HashMap<u64, usize> = HashMap::new();
        for (i, s) in t.profile.sample.iter().enumerate() {
            t.check_sample(i, s)?;
            let mut stack = Vec::with_capacity(s.location_id.len());
            for &id in &s.location_id {
                let loc = match by_id.entry(id) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => {
                        let key = loc_key(t, t.location(id, i)?)?;
                        let next = self.locs.len();
                        let loc = *self.loc_index.entry(key.clone()).or_insert(next);
                        if loc == next {
                            self.locs.push(key);
                        }
                        *e.insert(loc)
                    }
                };
                stack.push(loc);
            }
            let mut labels = Vec::new();
            for l in s.label.iter().filter(|l| l.str != 0) {
                labels.push((
                    t.string(l.key, || format!("sample {i} label key"))?,
                    t.string(l.str, || format!("sample {i} label value"))?,
                ));
            }
            labels.sort_unstable();
            let slot = match self.index.entry((stack, labels)) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    self.order.push(e.key().clone());
                    self.values.push(vec![0; s.value.len()]);
                    *e.insert(self.values.len() - 1)
                }
            };
            for (sum, &v) in self.values[slot].iter_mut().zip(&s.value) {
                *sum = sum.saturating_add(v.saturating_mul(sign));
            }
        }
        Ok(())
    }
}

fn loc_key<'a>(t: &Tables<'a>, loc: &'a proto::Location) -> Result<Loc<'a>, DecodeError> {
    if loc.line.is_empty() {
        return Ok(Loc::Address(loc.address));
    }
    let mut frames = Vec::with_capacity(loc.line.len());
    for line in &loc.line {
        let Some(f) = t.function(line.function_id) else {
            return Err(DecodeError::Inconsistent(format!(
                "location {} refers to function id {}, which is not in the function table",
                loc.id, line.function_id
            )));
        };
        frames.push(Frame {
            name: t.string(f.name, || format!("function {} name", f.id))?,
            file: t.string(f.filename, || format!("function {} filename", f.id))?,
            line: line.line,
            system_name: t.string(f.system_name, || format!("function {} system_name", f.id))?,
            start_line: f.start_line,
        });
    }
    Ok(Loc::Frames(frames))
}

/// Builds the output tables, interning strings, functions and locations;
/// ids count from 1 in order of first use, string 0 is "".
struct Writer<'a> {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    functions: Vec<proto::Function>,
    function_ids: HashMap<(&'a str, &'a str), u64>,
    locations: Vec<proto::Location>,
    /// Index into [`Merged::locs`] -> output location id.
    location_ids: HashMap<usize, u64>,
}

impl<'a> Writer<'a> {
    fn new() -> Self {
        Writer {
            strings: vec![String::new()],
            string_ids: HashMap::from([(String::new(), 0)]),
            functions: Vec::new(),
            function_ids: HashMap::new(),
            locations: Vec::new(),
            location_ids: HashMap::new(),
        }
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = self.strings.len() as i64;
        self.strings.push(s.to_owned());
        self.string_ids.insert(s.to_owned(), id);
        id
    }

    fn value_type(&mut self, ty: &str, unit: &str) -> proto::ValueType {
        proto::ValueType {
            r#type: self.string(ty),
            unit: self.string(unit),
        }
    }

    fn function(&mut self, f: &Frame<'a>) -> u64 {
        if let Some(&id) = self.function_ids.get(&(f.name, f.file)) {
            return id;
        }
        let function = proto::Function {
            id: self.functions.len() as u64 + 1,
            name: self.string(f.name),
            system_name: self.string(f.system_name),
            filename: self.string(f.file),
            start_line: f.start_line,
        };
        self.function_ids.insert((f.name, f.file), function.id);
        self.functions.push(function);
        self.functions.len() as u64
    }

    /// The output id of merged location number `index`, which is `loc`.
    fn location(&mut self, index: usize, loc: &Loc<'a>) -> u64 {
        if let Some(&id) = self.location_ids.get(&index) {
            return id;
        }
        let id = self.locations.len() as u64 + 1;
        let location = match loc {
            Loc::Address(address) => proto::Location {
                id,
                address: *address,
                ..Default::default()
            },
            Loc::Frames(frames) => proto::Location {
                id,
                line: frames
                    .iter()
                    .map(|f| proto::Line {
                        function_id: self.function(f),
                        line: f.line,
                        column: 0,
                    })
                    .collect(),
                ..Default::default()
            },
        };
        self.locations.push(location);
        self.location_ids.insert(index, id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::fixtures::*;
    use crate::pprof::{Sample, decode, focus_frame};

    fn profile(samples: &[(&[&str], i64)]) -> Profile {
        Profile {
            sample_types: vec![("goroutine".to_owned(), "count".to_owned())],
            samples: samples
                .iter()
                .map(|(stack, v)| Sample {
                    stack: stack.iter().map(|f| (*f).to_owned()).collect(),
                    values: vec![*v],
                    labels: Vec::new(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn goroutine_leak_is_the_top_growth() {
        let base = decode(GOROUTINE_BASE).unwrap();
        let after = decode(GOROUTINE_AFTER).unwrap();
        let grown = grown_stacks(&base, &after, 0);
        let top = &grown[0];
        assert!(top.stack.iter().any(|f| f == "main.leakyWorker"));
        assert_eq!(focus_frame(&top.stack), "main.leakyWorker");
        assert_eq!((top.base, top.after), (0, 200));
        for g in &grown[1..] {
            assert!(g.after - g.base < 10, "only the leak grows much: {g:?}");
        }
    }

    #[test]
    fn heap_growth_names_retain() {
        let base = decode(HEAP_BASE).unwrap();
        let after = decode(HEAP_AFTER).unwrap();
        let index = after.value_index("inuse_space").unwrap();
        let grown = grown_stacks(&base, &after, index);
        assert_eq!(focus_frame(&grown[0].stack), "main.retain");
        // 200 x 64 KiB retained; the sampled estimate is within +-50% here.
        let retained = grown[0].after - grown[0].base;
        assert!((6 << 20..20 << 20).contains(&retained), "{retained}");
    }

    #[test]
    fn growth_is_summed_per_stack_sorted_and_tie_broken() {
        let base = profile(&[(&["a"], 5), (&["b"], 1), (&["gone"], -3)]);
        let after = profile(&[
            (&["a"], 4),
            (&["a"], 4), // same stack, e.g. another label set
            (&["c"], 3),
            (&["b"], 4),
            (&["flat"], 0),
        ]);
        let grown = grown_stacks(&base, &after, 0);
        let got: Vec<(&str, i64, i64)> = grown
            .iter()
            .map(|g| (g.stack[0].as_str(), g.base, g.after))
            .collect();
        assert_eq!(
            got,
            [("a", 5, 8), ("b", 1, 4), ("c", 0, 3), ("gone", -3, 0)]
        );
        assert!(
            grown_stacks(&base, &after, 7)
                .iter()
                .all(|g| g.after > g.base)
        );
    }

    #[test]
    fn diff_profile_decodes_and_shows_the_leak() {
        let diff = diff_profile(GOROUTINE_BASE, GOROUTINE_AFTER).unwrap();
        let p = decode(&diff).unwrap();
        assert_eq!(
            p.sample_types,
            [("goroutine".to_owned(), "count".to_owned())]
        );
        assert!(p.samples.iter().all(|s| s.values.iter().any(|&v| v != 0)));
        let top = p.samples.iter().max_by_key(|s| s.values[0]).unwrap();
        assert_eq!(top.values, [200]);
        assert_eq!(focus_frame(&top.stack), "main.leakyWorker");
        let total: i64 = p.samples.iter().map(|s| s.values[0]).sum();
        assert_eq!(total, 200, "203 after - 3 at baseline");
    }

    #[test]
    fn heap_diff_keeps_types_and_period() {
        let diff = diff_profile(HEAP_BASE, HEAP_AFTER).unwrap();
        let p = decode(&diff).unwrap();
        let after = decode(HEAP_AFTER).unwrap();
        assert_eq!(p.sample_types, after.sample_types);
        assert_eq!(p.period_type, after.period_type);
        assert_eq!(p.period, after.period);
        let index = p.value_index("inuse_space").unwrap();
        let top = p.samples.iter().max_by_key(|s| s.values[index]).unwrap();
        assert_eq!(top.stack[0], "main.retain");
    }

    #[test]
    fn diff_of_a_profile_with_itself_is_empty_but_valid() {
        let p = decode(&diff_profile(HEAP_AFTER, HEAP_AFTER).unwrap()).unwrap();
        assert!(p.samples.is_empty());
        assert_eq!(p.sample_types.len(), 4);
    }

    #[test]
    fn diff_tables_are_compact_with_ids_from_one() {
        let diff = diff_profile(GOROUTINE_BASE, GOROUTINE_AFTER).unwrap();
        let raw = decode_proto(&diff).unwrap();
        for (i, f) in raw.function.iter().enumerate() {
            assert_eq!(f.id, i as u64 + 1);
        }
        for (i, l) in raw.location.iter().enumerate() {
            assert_eq!(l.id, i as u64 + 1);
        }
        let mut strings = raw.string_table.clone();
        strings.sort();
        strings.dedup();
        assert_eq!(strings.len(), raw.string_table.len(), "strings are unique");
    }

    #[test]
    fn diff_of_different_kinds_is_refused() {
        let err = diff_profile(GOROUTINE_BASE, HEAP_AFTER).unwrap_err();
        assert!(matches!(err, DecodeError::Mismatch(_)));
        let msg = err.to_string();
        assert!(msg.contains("[goroutine/count]"), "{msg}");
        assert!(msg.contains("inuse_space/bytes"), "{msg}");
        assert!(diff_profile(b"<html>", HEAP_AFTER).is_err());
        assert!(diff_profile(HEAP_BASE, &HEAP_AFTER[..100]).is_err());
    }

    /// One location with 3000 inlined lines, used 4 times by each of 5000
    /// samples: 60 million frames if expanded per sample, from 50 KiB.
    fn amplifying_profile() -> Vec<u8> {
        let p = proto::Profile {
            sample_type: vec![proto::ValueType { r#type: 1, unit: 2 }],
            period_type: Some(proto::ValueType { r#type: 1, unit: 2 }),
            period: 1,
            sample: (0..5000)
                .map(|_| proto::Sample {
                    location_id: vec![1; 4],
                    value: vec![1],
                    label: vec![],
                })
                .collect(),
            location: vec![proto::Location {
                id: 1,
                line: (0..3000)
                    .map(|line| proto::Line {
                        function_id: 1,
                        line,
                        column: 0,
                    })
                    .collect(),
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
        };
        p.encode_to_vec()
    }

    #[test]
    fn shared_deep_locations_do_not_amplify() {
        let bytes = amplifying_profile();
        assert!(bytes.len() < 100 << 10);
        let err = decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("more than 4096 frames"), "{err}");
        // The diff stores the location once; 5000 identical samples merge.
        let diff = diff_profile(GOROUTINE_BASE, &bytes).unwrap();
        let raw = decode_proto(&diff).unwrap();
        let deep = raw
            .sample
            .iter()
            .find(|s| s.location_id.len() == 4)
            .unwrap();
        assert_eq!(deep.value, [5000]);
        let deep_locations = raw.location.iter().filter(|l| l.line.len() == 3000);
        assert_eq!(deep_locations.count(), 1);
    }

    /// Needs Go on PATH: `cargo test --lib pprof -- --ignored`.
    #[test]
    #[ignore = "runs `go tool pprof`"]
    fn go_tool_pprof_reads_the_diff() {
        let dir = std::env::temp_dir().join(format!("leakbench-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, base, after, expect) in [
            (
                "goroutine",
                GOROUTINE_BASE,
                GOROUTINE_AFTER,
                "main.leakyWorker",
            ),
            ("heap", HEAP_BASE, HEAP_AFTER, "main.retain"),
        ] {
            let path = dir.join(format!("diff-{name}.pb.gz"));
            std::fs::write(&path, diff_profile(base, after).unwrap()).unwrap();
            let out = std::process::Command::new("go")
                .args(["tool", "pprof", "-top"])
                .arg(&path)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains(expect), "{stdout}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
