//! `leakbench diff BASE AFTER`: what grew between two heap or goroutine
//! profiles, offline: for reproducing a leak from profiles someone attached
//! to a bug report, or from two `leakbench snapshot`s.
//!
//! Prints the sites that grew (the function to look at, every stack through
//! it summed) and the stacks that grew, with absolute figures and, for the
//! heap, bytes per object (in-use space over in-use objects: 64 KiB per
//! object is one buffer per leaked session, 48 B is a map entry). `--out`
//! writes after minus base as a profile for `go tool pprof`.

use std::collections::HashMap;
use std::fmt::Write;

use anyhow::{Context, Result, bail};

use crate::pprof::{self, Profile, focus_frame};
use crate::signal::{Unit, format_value};

/// Frames shown per stack.
const FRAMES_SHOWN: usize = 8;

/// What the two profiles hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `heap` (or `allocs`): in-use space and objects.
    Heap,
    /// `goroutine`: counts.
    Goroutine,
}

impl Kind {
    fn of(p: &Profile) -> Option<Kind> {
        if p.value_index("inuse_space").is_some() && p.value_index("inuse_objects").is_some() {
            Some(Kind::Heap)
        } else if p.value_index("goroutine").is_some() {
            Some(Kind::Goroutine)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Heap => "heap",
            Kind::Goroutine => "goroutine",
        }
    }
}

/// Growth of one stack or one site.
#[derive(Debug, Clone, PartialEq)]
pub struct Grown {
    /// The function to look at ([`focus_frame`] of the stack).
    pub site: String,
    /// Function names, leaf first (empty for a site).
    pub stack: Vec<String>,
    /// Change of the main value: in-use bytes (heap) or goroutines.
    pub delta: i64,
    /// Heap only: change of in-use objects.
    pub delta_objects: i64,
    /// Value in AFTER.
    pub after: i64,
}

impl Grown {
    /// Bytes per object of the growth, when both grew.
    pub fn bytes_per_object(&self) -> Option<f64> {
        (self.delta > 0 && self.delta_objects > 0)
            .then(|| self.delta as f64 / self.delta_objects as f64)
    }
}

/// The comparison of two profiles.
#[derive(Debug, Clone)]
pub struct Diff {
    /// What was compared.
    pub kind: Kind,
    /// Totals of the main value in BASE and AFTER.
    pub totals: (i64, i64),
    /// Heap only: total in-use objects in BASE and AFTER.
    pub objects: (i64, i64),
    /// Sites that grew, largest first.
    pub sites: Vec<Grown>,
    /// Stacks that grew, largest first.
    pub stacks: Vec<Grown>,
}

/// Compares two decoded profiles of the same kind.
pub fn compare(base: &Profile, after: &Profile) -> Result<Diff> {
    let kind = match (Kind::of(base), Kind::of(after)) {
        (Some(b), Some(a)) if a == b => a,
        (Some(b), Some(a)) => bail!(
            "BASE is a {} profile and AFTER a {} profile: compare two of one kind",
            b.name(),
            a.name()
        ),
        _ => bail!(
            "only heap (inuse_space, inuse_objects) and goroutine profiles are compared; \
             these hold {:?}",
            after
                .sample_types
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
        ),
    };
    let (main, objects) = match kind {
        Kind::Heap => (
            after.value_index("inuse_space").expect("checked above"),
            after.value_index("inuse_objects"),
        ),
        Kind::Goroutine => (after.value_index("goroutine").expect("checked above"), None),
    };
    // Per stack: (base, after) of the main value and of objects.
    let mut per_stack: HashMap<&[String], [i64; 4]> = HashMap::new();
    for (p, side) in [(base, 0), (after, 1)] {
        for s in &p.samples {
            let e = per_stack.entry(s.stack.as_slice()).or_default();
            let value = |i: Option<usize>| i.and_then(|i| s.values.get(i)).copied().unwrap_or(0);
            e[side] = e[side].saturating_add(value(Some(main)));
            e[2 + side] = e[2 + side].saturating_add(value(objects));
        }
    }
    let sum = |i: usize| per_stack.values().map(|v| v[i]).sum::<i64>();
    let totals = (sum(0), sum(1));
    let objects_total = (sum(2), sum(3));

    let mut sites: HashMap<&str, Grown> = HashMap::new();
    let mut stacks = Vec::new();
    for (stack, [b, a, bo, ao]) in &per_stack {
        let site = focus_frame(stack);
        let entry = sites.entry(site).or_insert_with(|| Grown {
            site: site.to_owned(),
            stack: Vec::new(),
            delta: 0,
            delta_objects: 0,
            after: 0,
        });
        entry.delta += a - b;
        entry.delta_objects += ao - bo;
        entry.after += a;
        if a > b {
            stacks.push(Grown {
                site: site.to_owned(),
                stack: stack.to_vec(),
                delta: a - b,
                delta_objects: ao - bo,
                after: *a,
            });
        }
    }
    let mut sites: Vec<Grown> = sites.into_values().filter(|g| g.delta > 0).collect();
    let order = |x: &Grown, y: &Grown| {
        y.delta
            .cmp(&x.delta)
            .then_with(|| x.site.cmp(&y.site))
            .then_with(|| x.stack.cmp(&y.stack))
    };
    sites.sort_by(order);
    stacks.sort_by(order);
    Ok(Diff {
        kind,
        totals,
        objects: objects_total,
        sites,
        stacks,
    })
}

fn signed(v: i64, unit: Unit) -> String {
    let s = format_value(v as f64, unit);
    if v > 0 { format!("+{s}") } else { s }
}

impl Diff {
    fn unit(&self) -> Unit {
        match self.kind {
            Kind::Heap => Unit::Bytes,
            Kind::Goroutine => Unit::Count,
        }
    }

    /// The text printed by `leakbench diff`, `top` rows per table.
    pub fn render(&self, top: usize) -> String {
        let unit = self.unit();
        let mut o = String::new();
        let (b, a) = self.totals;
        match self.kind {
            Kind::Heap => {
                let (bo, ao) = self.objects;
                let _ = writeln!(
                    o,
                    "heap (in use, sampled): {} in {bo} objects -> {} in {ao} objects ({} in {:+} objects)",
                    format_value(b as f64, unit),
                    format_value(a as f64, unit),
                    signed(a - b, unit),
                    ao - bo
                );
            }
            Kind::Goroutine => {
                let _ = writeln!(o, "goroutines: {b} -> {a} ({:+})", a - b);
            }
        }
        if self.sites.is_empty() {
            let _ = writeln!(o, "\nnothing grew");
            return o;
        }
        let growth: i64 = self.sites.iter().map(|g| g.delta).sum();
        let share = |d: i64| 100.0 * d as f64 / growth.max(1) as f64;

        let _ = writeln!(
            o,
            "\n  sites that grew (the function to look at; every stack through it summed)"
        );
        match self.kind {
            Kind::Heap => {
                let _ = writeln!(
                    o,
                    "  {:>12}{:>8}{:>11}{:>14}  site",
                    "in use", "share", "objects", "bytes/object"
                );
            }
            Kind::Goroutine => {
                let _ = writeln!(o, "  {:>12}{:>8}  site", "goroutines", "share");
            }
        }
        for g in self.sites.iter().take(top) {
            let _ = write!(o, "  {:>12}{:>7.1}%", signed(g.delta, unit), share(g.delta));
            if self.kind == Kind::Heap {
                let _ = write!(
                    o,
                    "{:>11}{:>14}",
                    format!("{:+}", g.delta_objects),
                    g.bytes_per_object()
                        .map_or("-".to_owned(), |v| format_value(v, Unit::Bytes))
                );
            }
            let _ = writeln!(o, "  {}", g.site);
        }
        if self.sites.len() > top {
            let _ = writeln!(o, "  ... {} more sites", self.sites.len() - top);
        }

        let _ = writeln!(o, "\n  stacks that grew (leaf first)");
        for (i, g) in self.stacks.iter().take(top).enumerate() {
            let per_object = match (self.kind, g.bytes_per_object()) {
                (Kind::Heap, Some(v)) => format!(
                    " in {:+} objects ({} each)",
                    g.delta_objects,
                    format_value(v, Unit::Bytes)
                ),
                (Kind::Heap, None) => format!(" in {:+} objects", g.delta_objects),
                (Kind::Goroutine, _) => String::new(),
            };
            let _ = writeln!(
                o,
                "  {}. {}{per_object}  {}",
                i + 1,
                signed(g.delta, unit),
                g.site
            );
            for f in g.stack.iter().take(FRAMES_SHOWN) {
                let _ = writeln!(o, "        {f}");
            }
            if g.stack.len() > FRAMES_SHOWN {
                let _ = writeln!(
                    o,
                    "        ... {} more frames",
                    g.stack.len() - FRAMES_SHOWN
                );
            }
        }
        if self.stacks.len() > top {
            let _ = writeln!(o, "  ... {} more stacks", self.stacks.len() - top);
        }
        o
    }
}

/// Runs `leakbench diff`: prints the comparison, writes the diff profile to
/// `out` if given.
pub async fn execute(
    base: &str,
    after: &str,
    out: Option<&std::path::Path>,
    top: usize,
) -> Result<()> {
    let base_bytes = super::fetch(base).await?;
    let after_bytes = super::fetch(after).await?;
    let base_p = pprof::decode(&base_bytes).with_context(|| format!("decoding {base}"))?;
    let after_p = pprof::decode(&after_bytes).with_context(|| format!("decoding {after}"))?;
    let diff = compare(&base_p, &after_p)?;
    print!("{}", diff.render(top.max(1)));
    if let Some(path) = out {
        let bytes = pprof::diff_profile(&base_bytes, &after_bytes)
            .with_context(|| format!("diffing {base} and {after}"))?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
        let index = match diff.kind {
            Kind::Heap => " -sample_index=inuse_space",
            Kind::Goroutine => "",
        };
        println!(
            "\n  wrote {0} (after minus base): go tool pprof -top{index} {0}",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Profile {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        pprof::decode(&std::fs::read(&path).expect("fixture")).expect("decodes")
    }

    #[test]
    fn heap_diff_names_retain_first_with_bytes_per_object() {
        let d = compare(&fixture("heap-base.pb.gz"), &fixture("heap-after.pb.gz")).expect("diff");
        assert_eq!(d.kind, Kind::Heap);
        assert_eq!(d.sites[0].site, "main.retain");
        assert_eq!(d.stacks[0].site, "main.retain");
        // main.retain keeps 64 KiB buffers: one object each.
        let per_object = d.sites[0].bytes_per_object().expect("objects grew");
        assert!(
            (60_000.0..=70_000.0).contains(&per_object),
            "{per_object} bytes per object"
        );
        let text = d.render(5);
        let first_site = text
            .lines()
            .skip_while(|l| !l.contains("sites that grew"))
            .nth(2)
            .expect("a site row");
        assert!(first_site.ends_with("main.retain"), "{text}");
        assert!(
            first_site.contains(&format_value(per_object, Unit::Bytes)),
            "{text}"
        );
    }

    #[test]
    fn goroutine_diff_names_leaky_worker_first() {
        let d = compare(
            &fixture("goroutine-base.pb.gz"),
            &fixture("goroutine-after.pb.gz"),
        )
        .expect("diff");
        assert_eq!(d.kind, Kind::Goroutine);
        assert_eq!(d.totals, (3, 203));
        assert_eq!(d.sites[0].site, "main.leakyWorker");
        assert_eq!(d.sites[0].delta, 200);
        let text = d.render(5);
        assert!(text.starts_with("goroutines: 3 -> 203 (+200)"), "{text}");
        assert!(text.contains("1. +200  main.leakyWorker"), "{text}");
    }

    #[test]
    fn kinds_must_match_and_same_profile_grows_nothing() {
        let e = compare(
            &fixture("heap-base.pb.gz"),
            &fixture("goroutine-after.pb.gz"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("BASE is a heap profile"), "{e}");
        let p = fixture("goroutine-after.pb.gz");
        let d = compare(&p, &p).expect("diff");
        assert!(d.sites.is_empty() && d.stacks.is_empty());
        assert!(d.render(5).contains("nothing grew"));
    }
}
