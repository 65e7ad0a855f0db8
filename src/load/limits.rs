//! What the machine allows: the open-file limit (raised to its hard limit),
//! ephemeral ports per source address, and so how many sessions can be open
//! at once. [`preflight`] says it before any load, instead of a cycle failing
//! halfway with EMFILE or EADDRNOTAVAIL.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Serialize;

use crate::scenario::{Load, Target};

/// Descriptors kept back from sessions: stdio, the runtime's epoll and
/// wakers, the probe's connection, a started target's pipes, report files.
pub const RESERVED_FDS: u64 = 100;

/// Share of a source address's ephemeral ports the engine plans to use:
/// the rest absorbs other programs' connections and ports still in
/// TIME_WAIT from the previous cycle.
const PORT_SHARE: f64 = 0.9;

/// Most loopback source addresses the engine spreads over by itself
/// (127.0.0.1 to 127.0.0.16): 16 × ~25,000 ports is far beyond what one
/// process's descriptors allow.
const MAX_AUTO_SOURCES: u32 = 16;

/// Ephemeral range assumed when /proc cannot be read (Linux's default).
const DEFAULT_PORT_RANGE: (u32, u32) = (32768, 60999);

/// What the machine allows for a scenario's load, computed before any load.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    /// The open-file soft limit now in force (after raising it).
    pub open_files: u64,
    /// Sessions the descriptors allow at once (`open_files` minus
    /// [`RESERVED_FDS`]; one socket per session).
    pub fd_sessions: u64,
    /// Ephemeral ports per source address (from ip_local_port_range).
    pub ports_per_source: u64,
    /// Source addresses connections are spread over; empty: the kernel
    /// picks (one source address).
    pub sources: Vec<IpAddr>,
    /// Sessions the ports allow at once over those sources.
    pub port_sessions: u64,
    /// Sessions that fit at once: the smaller of the two.
    pub fits: u64,
    /// What limits `fits`, for a person: e.g. "open files (ulimit -n 20000)".
    pub limited_by: String,
}

/// Raises the open-file soft limit to the hard limit; returns (soft, hard)
/// as they are afterwards. Idempotent; cheap.
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit from a struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Says before any load whether `load.concurrency` sessions can be open at
/// once, and raises the open-file limit on the way. `Err` names how many fit
/// and what limits them.
pub fn preflight(target: &Target, load: &Load) -> Result<Preflight, String> {
    let (soft, hard) =
        raise_open_file_limit().map_err(|e| format!("reading the open-file limit: {e}"))?;
    let addr = target_ip(target);
    let ports = ports_per_source();
    let sources = plan_sources(addr, load, ports);
    check_sources(&sources)?;
    let fd_sessions = soft.saturating_sub(RESERVED_FDS);
    let source_count = sources.len().max(1) as u64;
    let port_sessions = (ports as f64 * PORT_SHARE) as u64 * source_count;
    let (fits, limited_by) = if fd_sessions <= port_sessions {
        (
            fd_sessions,
            format!("open files (ulimit -n {soft}, hard limit {hard}, {RESERVED_FDS} kept back)"),
        )
    } else {
        (
            port_sessions,
            format!(
                "ephemeral ports ({ports} per source address, {} source address{}; add \
                 load.source_addresses)",
                source_count,
                if source_count == 1 { "" } else { "es" }
            ),
        )
    };
    let pre = Preflight {
        open_files: soft,
        fd_sessions,
        ports_per_source: ports,
        sources,
        port_sessions,
        fits,
        limited_by,
    };
    if u64::from(load.concurrency) > pre.fits {
        return Err(format!(
            "load.concurrency {} does not fit: at most {} sessions can be open at once, \
             limited by {}; lower load.concurrency to {} or less",
            load.concurrency, pre.fits, pre.limited_by, pre.fits
        ));
    }
    Ok(pre)
}

/// The target's address when the URL gives an IP (or localhost).
pub(crate) fn target_ip(target: &Target) -> Option<IpAddr> {
    let host = target.url.host()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    bare.parse().ok()
}

/// Ephemeral ports per source address, from the kernel's range.
pub(crate) fn ports_per_source() -> u64 {
    let (lo, hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or(DEFAULT_PORT_RANGE);
    u64::from(hi.saturating_sub(lo)) + 1
}

/// The source addresses to spread a cycle's connections over: the
/// scenario's list when it gives one; otherwise, for an IPv4 loopback
/// target whose concurrency needs more ports than one source has, enough
/// addresses from 127.0.0.1 up; otherwise none (the kernel picks).
pub(crate) fn plan_sources(target: Option<IpAddr>, load: &Load, ports: u64) -> Vec<IpAddr> {
    if !load.source_addresses.is_empty() {
        return load.source_addresses.clone();
    }
    let Some(IpAddr::V4(ip)) = target else {
        return Vec::new();
    };
    if !ip.is_loopback() {
        return Vec::new();
    }
    let per_source = ((ports as f64 * PORT_SHARE) as u64).max(1);
    let needed = u64::from(load.concurrency).div_ceil(per_source);
    if needed <= 1 {
        return Vec::new();
    }
    let count = needed.min(u64::from(MAX_AUTO_SOURCES)) as u32;
    (1..=count)
        .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, k as u8)))
        .collect()
}

/// Each source address can be bound (it is a local address).
fn check_sources(sources: &[IpAddr]) -> Result<(), String> {
    for ip in sources {
        let socket = match ip {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        // Needs no runtime: only socket(2) and bind(2).
        let bound = socket.and_then(|s| super::net::bind_source(&s, *ip));
        bound.map_err(|e| {
            format!(
                "source address {} cannot be bound ({e}); use local loopback addresses",
                SocketAddr::new(*ip, 0)
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use std::path::Path;

    fn load(extra: &str) -> (Target, Load) {
        let text = format!("[target]\nurl = \"ws://127.0.0.1:9/ws\"\n[load]\n{extra}\n");
        let s = Scenario::parse(&text, Path::new("/tmp/x.toml")).unwrap();
        (s.target, s.load)
    }

    #[test]
    fn one_source_while_its_ports_suffice() {
        let (t, l) = load("sessions = 20000");
        assert!(plan_sources(target_ip(&t), &l, 28232).is_empty());
    }

    #[test]
    fn loopback_spreads_past_one_sources_ports() {
        let (t, l) = load("sessions = 60000");
        let sources = plan_sources(target_ip(&t), &l, 28232);
        assert_eq!(
            sources,
            ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
                .map(|s| s.parse::<IpAddr>().unwrap())
                .to_vec()
        );
        // A small port range needs more sources for the same load.
        assert_eq!(plan_sources(target_ip(&t), &l, 10_000).len(), 7);
    }

    #[test]
    fn configured_sources_win() {
        let (t, l) = load("sessions = 10\nsource_addresses = [\"127.0.0.5\"]");
        assert_eq!(
            plan_sources(target_ip(&t), &l, 28232),
            vec!["127.0.0.5".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn preflight_names_the_limit_when_concurrency_does_not_fit() {
        let (t, l) = load("sessions = 900000");
        let e = preflight(&t, &l).unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
        assert!(e.contains("open files"), "{e}");
        let (t, l) = load("sessions = 100");
        let p = preflight(&t, &l).unwrap();
        assert!(p.fits >= 100, "{p:?}");
        // The soft limit is now the hard limit.
        let (soft, hard) = raise_open_file_limit().unwrap();
        assert_eq!(soft, hard);
    }
}
