//! Deterministic mutation tests: the fixtures, corrupted by a seeded
//! xorshift mutator, must give values or errors from every decoder and
//! parser, never a panic or a hang. A failing case prints its seed.

use std::io::Read;

use prost::Message;

use super::fixtures::*;
use super::{
    DecodeError, decode, diff_profile, goroutine_total, parse_goroutines, parse_memstats, proto,
};

/// Cases per input. Each decode of a fixture takes well under a
/// millisecond even in debug builds, so this stays around a second.
const CASES: u64 = 500;

/// xorshift64: tiny, seeded, and good enough to pick positions and bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `input` with 1 to 8 random edits: byte flips, overwrites with protobuf-
/// and text-significant bytes, inserts, deletions, duplicated chunks and a
/// truncation.
fn mutate(input: &[u8], seed: u64) -> Vec<u8> {
    const INTERESTING: &[u8] = &[
        0x00, 0x01, 0x08, 0x0a, 0x12, 0x7f, 0x80, 0xff, b'\n', b'(', b')', b'[', b']', b'=', b'/',
        b'#', b' ',
    ];
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut out = input.to_vec();
    for _ in 0..=rng.below(8) {
        if out.is_empty() {
            out.push(rng.next() as u8);
        }
        let at = rng.below(out.len());
        match rng.below(6) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => out.insert(at, rng.next() as u8),
            3 => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            4 => {
                let end = (at + 1 + rng.below(64)).min(out.len());
                let chunk = out[at..end].to_vec();
                let to = rng.below(out.len());
                out.splice(to..to, chunk);
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn decode_never_panics_on_mutated_profiles() {
    for (name, fixture) in [
        ("heap-after", HEAP_AFTER),
        ("goroutine-after", GOROUTINE_AFTER),
    ] {
        for input in [gunzip(fixture), fixture.to_vec()] {
            for seed in 0..CASES {
                let bytes = mutate(&input, seed);
                let result = std::panic::catch_unwind(|| decode(&bytes).map(|p| p.samples.len()));
                assert!(result.is_ok(), "decode panicked: {name} seed {seed}");
            }
        }
    }
}

/// A number near the edges of what an id, index or value can be.
fn edgy(rng: &mut Rng, len: usize) -> i64 {
    match rng.below(7) {
        0 => 0,
        1 => -1,
        2 => len as i64,
        3 => len as i64 + 1,
        4 => i64::MAX,
        5 => i64::MIN,
        _ => rng.below(len.max(1)) as i64,
    }
}

/// `p` with 1 to 4 of its ids, indexes, values or tables changed, so the
/// mutation survives protobuf framing and reaches the resolver.
fn mutate_profile(p: &mut proto::Profile, seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0xd1b5_4a32_d192_ed03) | 1);
    for _ in 0..=rng.below(4) {
        let strings = p.string_table.len();
        let (n_samples, n_locs, n_funcs) = (p.sample.len(), p.location.len(), p.function.len());
        match rng.below(10) {
            0 if n_samples > 0 => {
                let s = &mut p.sample[rng.below(n_samples)];
                if !s.location_id.is_empty() {
                    let i = rng.below(s.location_id.len());
                    s.location_id[i] = edgy(&mut rng, n_locs) as u64;
                }
            }
            1 if n_samples > 0 => {
                let s = &mut p.sample[rng.below(n_samples)];
                if !s.value.is_empty() {
                    let i = rng.below(s.value.len());
                    s.value[i] = edgy(&mut rng, 1000);
                } else {
                    s.value.push(1);
                }
            }
            2 if n_samples > 0 => {
                let i = rng.below(n_samples);
                p.sample[i].value.pop();
            }
            3 if n_samples > 0 => {
                let label = proto::Label {
                    key: edgy(&mut rng, strings),
                    str: edgy(&mut rng, strings),
                    num: edgy(&mut rng, 100),
                    num_unit: 0,
                };
                let i = rng.below(n_samples);
                p.sample[i].label.push(label);
            }
            4 if n_locs > 0 => {
                let loc = &mut p.location[rng.below(n_locs)];
                match loc.line.first_mut() {
                    Some(line) => line.function_id = edgy(&mut rng, n_funcs) as u64,
                    None => loc.id = edgy(&mut rng, n_locs) as u64,
                }
            }
            5 if n_locs > 0 => {
                let i = rng.below(n_locs);
                let lines = std::mem::take(&mut p.location[i].line);
                if rng.below(2) == 0 {
                    // Drop the lines (unsymbolized) or duplicate them (deep inlining).
                    p.location[i].line = lines.iter().chain(&lines).cloned().collect();
                }
            }
            6 if n_funcs > 0 => {
                let f = &mut p.function[rng.below(n_funcs)];
                match rng.below(3) {
                    0 => f.name = edgy(&mut rng, strings),
                    1 => f.filename = edgy(&mut rng, strings),
                    _ => f.id = edgy(&mut rng, n_funcs) as u64,
                }
            }
            7 => {
                let vt = proto::ValueType {
                    r#type: edgy(&mut rng, strings),
                    unit: edgy(&mut rng, strings),
                };
                match rng.below(3) {
                    0 => p.period_type = Some(vt),
                    1 => p.sample_type.push(vt),
                    _ => {
                        p.sample_type.pop();
                    }
                }
            }
            8 => {
                if rng.below(2) == 0 {
                    p.string_table.truncate(rng.below(strings.max(1)));
                } else if strings > 0 {
                    let i = rng.below(strings);
                    p.string_table[i] = "\u{0}<html>/.(".to_owned();
                }
            }
            _ => {
                p.default_sample_type = edgy(&mut rng, strings);
                p.drop_frames = edgy(&mut rng, strings);
            }
        }
    }
}

#[test]
fn decode_and_diff_never_panic_on_mutated_tables() {
    for (name, base, after) in [
        ("heap", HEAP_BASE, HEAP_AFTER),
        ("goroutine", GOROUTINE_BASE, GOROUTINE_AFTER),
    ] {
        let original = proto::Profile::decode(gunzip(after).as_slice()).unwrap();
        let mut outcomes = [0usize; 3]; // decoded, inconsistent, other error
        for seed in 0..CASES {
            let mut p = original.clone();
            mutate_profile(&mut p, seed);
            let bytes = p.encode_to_vec();
            let result = std::panic::catch_unwind(|| {
                let decoded = decode(&bytes).map(|p| p.samples.len());
                let diffed = diff_profile(base, &bytes).map(|out| decode(&out).is_ok());
                (decoded, diffed)
            });
            match result {
                Err(_) => panic!("decode or diff panicked: {name} seed {seed}"),
                Ok((Ok(_), diffed)) => {
                    outcomes[0] += 1;
                    if let Ok(reread) = diffed {
                        assert!(reread, "{name} seed {seed}: diff output does not decode");
                    }
                }
                Ok((Err(DecodeError::Inconsistent(_)), _)) => outcomes[1] += 1,
                Ok((Err(_), _)) => outcomes[2] += 1,
            }
        }
        // Both paths must be exercised, or the mutator is too weak or too wild.
        assert!(
            outcomes[0] > 30 && outcomes[1] > 100,
            "{name}: decoded, inconsistent, other = {outcomes:?}"
        );
    }
}

#[test]
fn diff_never_panics_on_mutated_profiles() {
    let raw = gunzip(GOROUTINE_AFTER);
    for seed in 0..CASES {
        let bytes = mutate(&raw, seed);
        let result = std::panic::catch_unwind(|| {
            diff_profile(GOROUTINE_BASE, &bytes).map(|out| decode(&out).map(|p| p.samples.len()))
        });
        assert!(result.is_ok(), "diff_profile panicked: seed {seed}");
    }
}

#[test]
fn text_parsers_never_panic_on_mutated_dumps() {
    for (name, fixture) in [
        ("goroutine debug=1", GOROUTINE_DEBUG1),
        ("goroutine debug=2", GOROUTINE_DEBUG2),
        ("heap debug=1", HEAP_DEBUG1),
    ] {
        for seed in 0..CASES {
            let text = String::from_utf8_lossy(&mutate(fixture.as_bytes(), seed)).into_owned();
            let result = std::panic::catch_unwind(|| {
                let _ = goroutine_total(&text);
                let _ = parse_goroutines(&text);
                let _ = parse_memstats(&text);
            });
            assert!(result.is_ok(), "a parser panicked: {name} seed {seed}");
        }
    }
}

#[test]
fn mutations_are_deterministic_and_do_mutate() {
    let a = mutate(HEAP_DEBUG1.as_bytes(), 7);
    assert_eq!(a, mutate(HEAP_DEBUG1.as_bytes(), 7));
    let changed = (0..50)
        .filter(|&seed| mutate(HEAP_DEBUG1.as_bytes(), seed) != HEAP_DEBUG1.as_bytes())
        .count();
    assert!(changed >= 45, "{changed} of 50 mutated");
}
