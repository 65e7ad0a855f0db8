//! The goroutineleak part of the pprof source: Go's `goroutineleak`
//! profile (Go 1.26 with GOEXPERIMENT=goroutineleakprofile, 1.27 and
//! later) as the `leaked_goroutines` signal.
//!
//! It is not a [`Source`](super::Source) of its own: it is fetched through
//! pprof's [`Probe`] (one connection, so the target always sees one probe
//! goroutine), the measurement protocol reads it between the forced GCs and
//! the heap profile, and whether the target serves it is the probe's state.
//! This file owns what the signal is, how it enters a reading, and how the
//! sources line mentions it.

use super::{Reading, SignalSpec, SourceError};
use crate::probe::Probe;
use crate::signal::name::LEAKED_GOROUTINES;
use crate::signal::{SourceKind, Unit};

/// Proven leaks: one more every cycle is a leak.
pub(super) fn spec() -> SignalSpec {
    SignalSpec::new(LEAKED_GOROUTINES, Unit::Count, true, 1.0, SourceKind::Pprof)
}

/// Puts the profile's total into `r`, when the target serves the profile.
pub(super) fn insert(total: Option<u64>, r: &mut Reading) {
    if let Some(n) = total {
        r.insert(LEAKED_GOROUTINES.into(), n as f64);
    }
}

/// What the pprof part of the sources line adds, once it is known that the
/// target serves the profile.
pub(super) fn describe_suffix(serves: Option<bool>) -> &'static str {
    if serves == Some(true) {
        " (with goroutineleak)"
    } else {
        ""
    }
}

/// Adds the profile's total to `r` when the target serves it (finding out
/// whether it does, once).
pub(super) async fn add(probe: &mut Probe, r: &mut Reading) -> Result<(), SourceError> {
    let leaks = probe.goroutine_leaks().await?;
    insert(leaks.map(|l| l.total), r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sources_line_names_it_once_served() {
        assert_eq!(describe_suffix(Some(true)), " (with goroutineleak)");
        assert_eq!(describe_suffix(Some(false)), "");
        assert_eq!(describe_suffix(None), "");
    }

    #[test]
    fn a_total_is_inserted_and_none_is_not() {
        let mut r = Reading::new();
        insert(None, &mut r);
        assert!(r.is_empty());
        insert(Some(3), &mut r);
        assert_eq!(r[LEAKED_GOROUTINES], 3.0);
        let s = spec();
        assert!(s.decides && s.floor == 1.0 && s.source == SourceKind::Pprof);
    }
}
