//! The expvar source: Go's `/debug/vars` (`target.expvar`), for Go targets
//! that serve expvar but not pprof.
//!
//! It owns the MemStats fields read from the JSON's `memstats`. No GC can
//! be forced through expvar, so its heap figures include garbage and are
//! shown only; it is last among the HTTP sources and fills what they did
//! not give.

use super::{Depth, Floors, Pending, Reading, Setup, SignalSpec, Source, SourceError, fill};
use crate::probe::Probe;
use crate::signal::SourceKind;
use crate::signal::Unit::{Bytes, Count};
use crate::signal::name::*;

/// MemStats fields and the signals they fill.
const FIELDS: [(&str, &str); 5] = [
    ("HeapAlloc", HEAP_BYTES),
    ("HeapObjects", HEAP_OBJECTS),
    ("StackInuse", STACK_BYTES),
    ("HeapInuse", HEAP_INUSE),
    ("Sys", SYS_BYTES),
];

/// The expvar source of `setup`, if the scenario names an expvar URL.
pub(super) fn open(setup: &Setup<'_>) -> Option<Box<dyn Source>> {
    let url = setup.scenario?.target.expvar.as_ref()?;
    Some(Box::new(Expvar {
        probe: setup.probe(url),
    }))
}

/// A target's `/debug/vars`.
struct Expvar {
    probe: Probe,
}

/// Fills `r` from the body of `/debug/vars` read at `url`.
fn insert_vars(url: String, body: &[u8], r: &mut Reading) -> Result<(), SourceError> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| SourceError::Content {
            url: url.clone(),
            message: format!("not expvar JSON ({e}); is `import _ \"expvar\"` in the target?"),
        })?;
    let mem = json.get("memstats").ok_or_else(|| SourceError::Content {
        url,
        message: "has no `memstats`: the target does not import expvar's runtime stats".into(),
    })?;
    for (field, name) in FIELDS {
        if let Some(v) = mem.get(field).and_then(serde_json::Value::as_f64) {
            fill(r, name, v);
        }
    }
    Ok(())
}

impl Source for Expvar {
    fn kind(&self) -> SourceKind {
        SourceKind::Expvar
    }

    fn describe(&self) -> Option<String> {
        Some(format!("expvar {}", self.probe.base()))
    }

    fn signals(&self, f: &Floors) -> Vec<SignalSpec> {
        let expvar =
            |name, unit, floor| SignalSpec::new(name, unit, false, floor, SourceKind::Expvar);
        vec![
            expvar(HEAP_BYTES, Bytes, f.bytes),
            expvar(HEAP_OBJECTS, Count, f.objects),
            expvar(STACK_BYTES, Bytes, f.bytes),
            expvar(HEAP_INUSE, Bytes, f.bytes),
            expvar(SYS_BYTES, Bytes, f.bytes),
        ]
    }

    fn read<'a>(&'a mut self, _depth: Depth, r: &'a mut Reading) -> Pending<'a> {
        Box::pin(async move {
            let body = self.probe.get("").await?;
            insert_vars(self.probe.base().to_string(), &body, r)
        })
    }

    fn close(&mut self) {
        self.probe.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(body: &str, r: &mut Reading) -> Result<(), SourceError> {
        insert_vars(
            "http://127.0.0.1:1/debug/vars".to_owned(),
            body.as_bytes(),
            r,
        )
    }

    #[test]
    fn memstats_fill_what_better_sources_did_not() {
        let body = r#"{"cmdline":["x"],"memstats":{"HeapAlloc":1000,"HeapObjects":10,
            "StackInuse":64,"HeapInuse":2000,"Sys":9000,"NumGC":3}}"#;
        let mut r = Reading::from([(HEAP_BYTES.to_owned(), 5.0)]);
        vars(body, &mut r).unwrap();
        assert_eq!(r[HEAP_BYTES], 5.0, "a better source's value stays");
        assert_eq!(
            (r[HEAP_OBJECTS], r[HEAP_INUSE], r[SYS_BYTES]),
            (10.0, 2000.0, 9000.0)
        );
        assert_eq!(r.len(), 5, "{r:?}");
    }

    #[test]
    fn html_and_json_without_memstats_say_what_is_missing() {
        let mut r = Reading::new();
        let e = vars("<html>login</html>", &mut r).unwrap_err().to_string();
        assert!(
            e.contains("not expvar JSON") && e.contains("import _"),
            "{e}"
        );
        let e = vars(r#"{"cmdline":["x"]}"#, &mut r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no `memstats`"), "{e}");
        assert!(e.starts_with("http://127.0.0.1:1/debug/vars: "), "{e}");
        assert!(r.is_empty());
    }
}
