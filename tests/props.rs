//! Property tests: random and mutated inputs never panic the scenario
//! parser, the profile decoder or the text parsers, and what they return
//! stays within their caps.
//!
//! Mutations start from real inputs (the shipped scenarios' shape, the
//! captured fixtures in tests/fixtures) so they reach deep into each parser.
//! Cases per property: proptest's default of 256, or `PROPTEST_CASES`.
//! A failure prints the minimal input that reproduces it.

use std::io::{Read, Write};
use std::path::Path;

use leakbench::pprof;
use leakbench::scenario::Scenario;
use proptest::prelude::*;
use proptest::sample::Index;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .expect("fixture is gzip");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("write to a Vec");
    enc.finish().expect("finish into a Vec")
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, u8),
    Duplicate(Index, u8, Index),
    Truncate(Index),
}

/// Bytes that mean something to protobuf, gzip or the text formats.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x08, 0x0a, 0x10, 0x12, 0x1a, 0x22, 0x7f, 0x80, 0xff, b'\n', b'\t', b' ', b'[',
    b']', b'(', b')', b'=', b'#', b'@', b'"', b'{', b'}', b'$', b'.', b':', b',',
];

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![any::<u8>(), proptest::sample::select(INTERESTING)];
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Edit::Flip(i, 1 << bit)),
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), proptest::collection::vec(byte, 1..16))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>(), 1u8..32).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), 1u8..64, any::<Index>()).prop_map(|(i, n, to)| Edit::Duplicate(i, n, to)),
        any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(input: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = input.to_vec();
    for e in edits {
        if out.is_empty() {
            out.push(0);
        }
        let len = out.len();
        match e {
            Edit::Flip(i, mask) => out[i.index(len)] ^= mask,
            Edit::Set(i, b) => out[i.index(len)] = *b,
            Edit::Insert(i, bytes) => {
                let at = i.index(len);
                out.splice(at..at, bytes.iter().copied());
            }
            Edit::Delete(i, n) => {
                let at = i.index(len);
                let end = (at + usize::from(*n)).min(len);
                out.drain(at..end);
            }
            Edit::Duplicate(i, n, to) => {
                let at = i.index(len);
                let end = (at + usize::from(*n)).min(len);
                let chunk = out[at..end].to_vec();
                let to = to.index(len);
                out.splice(to..to, chunk);
            }
            Edit::Truncate(i) => out.truncate(i.index(len)),
        }
    }
    out
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(edit(), 1..8)
}

/// What a decoded profile must respect whatever the input.
fn assert_bounded(p: &pprof::Profile) {
    assert!(p.samples.len() <= pprof::MAX_SAMPLES);
    for s in &p.samples {
        assert!(s.stack.len() <= pprof::MAX_STACK_DEPTH);
        assert_eq!(s.values.len(), p.sample_types.len());
    }
}

// ---- scenario parser ---------------------------------------------------------

const SCENARIO: &str = r#"name = "chat hub"

[target]
url = "ws://127.0.0.1:18080/ws?user=a&token=${LEAKBENCH_PROPS_TOKEN}"
pprof = "http://127.0.0.1:6060/debug/pprof"
env = { GOGC = "100" }
ready_timeout = "15s"
probe_timeout = "5s"

[load]
sessions = 200
concurrency = 100
warmup = 1
cycles = 3
hold = "0s"
close = "graceful"
step_timeout = "10s"
max_failure_ratio = 0.01
headers = { Authorization = "Bearer ${LEAKBENCH_PROPS_TOKEN}", X-Trace = "1" }

[[load.steps]]
send = "hello"
[[load.steps]]
expect = "hello"

[settle]
timeout = "30s"

[thresholds]
goroutines = 2
heap_bytes = 65536

[secrets]
headers = ["X-Trace"]
query = ["token"]
env = ["LEAKBENCH_PROPS_TOKEN"]
"#;

fn parse_scenario(text: &str) {
    // SAFETY: test-only variable name that nothing else reads or writes
    // differently; every property sets the same value.
    unsafe { std::env::set_var("LEAKBENCH_PROPS_TOKEN", "t0ken-value") };
    if let Err(e) = Scenario::parse(text, Path::new("/tmp/props.toml")) {
        let line = e.to_string();
        assert!(!line.is_empty());
        assert!(
            !line.contains('\n'),
            "scenario errors are one line: {line:?}"
        );
    }
}

#[test]
fn the_seed_scenario_is_valid() {
    // SAFETY: as in parse_scenario.
    unsafe { std::env::set_var("LEAKBENCH_PROPS_TOKEN", "t0ken-value") };
    Scenario::parse(SCENARIO, Path::new("/tmp/props.toml")).expect("seed scenario is valid");
}

proptest! {
    #[test]
    fn scenario_parser_survives_random_text(text in "\\PC{0,400}") {
        parse_scenario(&text);
    }

    #[test]
    fn scenario_parser_survives_random_toml_shapes(
        lines in proptest::collection::vec(
            "(\\[{1,2}[a-z_.]{0,12}\\]{0,2}|[a-z_]{1,14} ?= ?(\"[^\"\\n]{0,12}\"|-?[0-9]{1,12}|[0-9.e+-]{1,8}|true|\\[\\]|\\{ *\\}))",
            0..20,
        )
    ) {
        parse_scenario(&lines.join("\n"));
    }

    #[test]
    fn scenario_parser_survives_mutated_scenarios(edits in edits()) {
        let bytes = apply(SCENARIO.as_bytes(), &edits);
        parse_scenario(&String::from_utf8_lossy(&bytes));
    }
}

// ---- profile decoder ---------------------------------------------------------

proptest! {
    #[test]
    fn decoder_survives_mutated_gzip_profiles(edits in edits(), which in 0usize..4) {
        let name = ["heap-base.pb.gz", "heap-after.pb.gz", "goroutine-base.pb.gz", "goroutine-after.pb.gz"][which];
        let bytes = apply(&fixture(name), &edits);
        if let Ok(p) = pprof::decode(&bytes) {
            assert_bounded(&p);
        }
    }

    #[test]
    fn decoder_survives_mutated_protobuf(edits in edits(), which in 0usize..4) {
        // Mutate inside the gzip layer, so the edits reach the protobuf
        // decoder and the id resolution instead of failing the CRC.
        let name = ["heap-base.pb.gz", "heap-after.pb.gz", "goroutine-base.pb.gz", "goroutine-after.pb.gz"][which];
        let raw = apply(&gunzip(&fixture(name)), &edits);
        for input in [gzip(&raw), raw] {
            if let Ok(p) = pprof::decode(&input) {
                assert_bounded(&p);
            }
        }
    }

    #[test]
    fn decoder_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = pprof::decode(&bytes);
        let mut gz = vec![0x1f, 0x8b];
        gz.extend_from_slice(&bytes);
        let _ = pprof::decode(&gz);
    }

    #[test]
    fn diff_survives_mutated_profiles(edits in edits()) {
        let base = fixture("goroutine-base.pb.gz");
        let after = gzip(&apply(&gunzip(&fixture("goroutine-after.pb.gz")), &edits));
        let _ = pprof::diff_profile(&base, &after);
    }
}

// ---- text parsers --------------------------------------------------------------

proptest! {
    #[test]
    fn goroutine_dump_parser_survives_mutations(edits in edits()) {
        let text = String::from_utf8_lossy(&apply(&fixture("goroutine-after.debug2.txt"), &edits)).into_owned();
        if let Ok(gs) = pprof::parse_goroutines(&text) {
            // One goroutine per header line at most: nothing is invented.
            assert!(gs.len() <= text.lines().count());
        }
    }

    #[test]
    fn goroutine_count_parser_survives_mutations(edits in edits()) {
        let text = String::from_utf8_lossy(&apply(&fixture("goroutine-after.debug1.txt"), &edits)).into_owned();
        let _ = pprof::goroutine_total(&text);
    }

    #[test]
    fn memstats_parser_survives_mutations(edits in edits()) {
        let text = String::from_utf8_lossy(&apply(&fixture("heap-after.debug1.txt"), &edits)).into_owned();
        let _ = pprof::parse_memstats(&text);
    }

    #[test]
    fn text_parsers_survive_random_text(text in "\\PC{0,300}") {
        let _ = pprof::parse_goroutines(&text);
        let _ = pprof::goroutine_total(&text);
        let _ = pprof::parse_memstats(&text);
    }
}
