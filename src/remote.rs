//! Remote targets: which hosts besides this machine a run may send traffic
//! to, and the addresses it pinned for them.
//!
//! Loopback is always allowed and is the default. Anything else needs the
//! operator's consent on the command line (`--allow-remote HOST|IP|CIDR`,
//! repeatable), because a scenario file travels between people and
//! machines, and a file that could aim load at any host would turn every
//! shared scenario into a way to attack someone else's service. The
//! [`Policy`] is that consent; the scenario's validator asks it about every
//! host it meets, and nothing in a scenario file can add to it.
//!
//! A name is resolved once, at run start, and every address it gives must
//! pass the policy ([`resolve`]). The load engine and the probes then
//! connect to those [`Pins`] for the whole run, so a DNS answer that changes
//! mid-run (rebinding) cannot move the load to an address nobody allowed.
//! SNI and the Host header keep the name as written.
//!
//! Some addresses are never allowed, flag or not ([`forbidden`]): link-local
//! ranges (where cloud metadata services answer with credentials),
//! multicast, broadcast and unspecified addresses, in any of their IPv6
//! spellings.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

/// What one `--allow-remote` value allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// An address (as a /32 or /128) or a CIDR block.
    Net(IpNet),
    /// A host name, lower case: whatever it resolves to at run start.
    Name(String),
}

/// The operator's consent to non-loopback hosts: the `--allow-remote`
/// values of the command line. The default allows loopback only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allowed: Vec<Allowed>,
    /// The values as given, for banners and reports.
    written: Vec<String>,
}

/// A host or address the policy does not allow, with the fix in its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Policy {
    /// Loopback only: what every command but `run --allow-remote` uses.
    pub fn loopback_only() -> Policy {
        Policy::default()
    }

    /// The policy of `--allow-remote` values: each an IP address, a CIDR
    /// block or a host name. A value that names a never-allowed address is
    /// refused here, so the mistake shows before anything runs.
    pub fn from_flags<S: AsRef<str>>(values: &[S]) -> Result<Policy, Refused> {
        let mut policy = Policy::default();
        for value in values {
            let text = value.as_ref().trim();
            let entry = parse_entry(text)?;
            if !policy.allowed.contains(&entry) {
                policy.allowed.push(entry);
                policy.written.push(text.to_owned());
            }
        }
        Ok(policy)
    }

    /// Whether only loopback is allowed.
    pub fn is_loopback_only(&self) -> bool {
        self.allowed.is_empty()
    }

    /// The `--allow-remote` values, as given (duplicates dropped).
    pub fn allowed(&self) -> &[String] {
        &self.written
    }

    /// Whether `host` (as in a URL: a name, an address, IPv6 in brackets or
    /// not) may be named by a scenario. Addresses are judged in full; a
    /// name passes when it is `localhost`, is itself allowed, or may
    /// resolve into an allowed block (decided by [`resolve`] at run start).
    pub fn check_host(&self, host: &str) -> Result<(), Refused> {
        let bare = bare_host(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.check_addr(None, ip);
        }
        let name = bare.to_ascii_lowercase();
        if name == "localhost" || self.names(&name) {
            return Ok(());
        }
        if self.allowed.iter().any(|a| matches!(a, Allowed::Net(_))) {
            // Its addresses are checked when it is resolved.
            return Ok(());
        }
        Err(Refused(format!(
            "host `{bare}` is not a loopback address; to drive load and probes at it, add \
             `--allow-remote {name}` (or the address or CIDR it resolves to) to the \
             command line; a scenario file cannot allow a remote host"
        )))
    }

    /// Whether `ip` may be connected to: loopback always; otherwise it must
    /// be in an allowed block, or be what `name`, itself allowed, resolved
    /// to. Never a [`forbidden`] address.
    pub fn check_addr(&self, name: Option<&str>, ip: IpAddr) -> Result<(), Refused> {
        let ip = canonical(ip);
        let shown = match name {
            Some(n) => format!("host `{n}` resolves to {ip}, which"),
            None => format!("host `{ip}`"),
        };
        if let Some(why) = forbidden(ip) {
            return Err(Refused(format!(
                "{shown} is {why}; leakbench never sends traffic there, whatever --allow-remote says"
            )));
        }
        if ip.is_loopback() {
            return Ok(());
        }
        let by_net = self
            .allowed
            .iter()
            .any(|a| matches!(a, Allowed::Net(net) if net.contains(&ip)));
        let by_name = name.is_some_and(|n| self.names(&n.to_ascii_lowercase()));
        if by_net || by_name {
            return Ok(());
        }
        let given = if self.written.is_empty() {
            String::new()
        } else {
            format!(
                " and not in the allowed set (--allow-remote {})",
                self.written.join(", ")
            )
        };
        let or_name = name
            .map(|n| format!(" (or `--allow-remote {n}` for whatever it resolves to)"))
            .unwrap_or_default();
        Err(Refused(format!(
            "{shown} is not a loopback address{given}; to drive load and probes at it, add \
             `--allow-remote {ip}`{or_name} to the command line; a scenario \
             file cannot allow a remote host"
        )))
    }

    fn names(&self, name: &str) -> bool {
        self.allowed
            .iter()
            .any(|a| matches!(a, Allowed::Name(n) if n == name))
    }
}

impl fmt::Display for Policy {
    /// `loopback only`, or the allowed values joined by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.written.is_empty() {
            f.write_str("loopback only")
        } else {
            f.write_str(&self.written.join(", "))
        }
    }
}

/// One `--allow-remote` value.
fn parse_entry(text: &str) -> Result<Allowed, Refused> {
    let bare = bare_host(text);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        let ip = canonical(ip);
        if let Some(why) = forbidden(ip) {
            return Err(Refused(format!(
                "--allow-remote {text}: {ip} is {why}; leakbench never sends traffic there"
            )));
        }
        return Ok(Allowed::Net(IpNet::from(ip)));
    }
    if text.contains('/') {
        let net: IpNet = text.parse().map_err(|_| {
            Refused(format!(
                "--allow-remote {text}: not an address, CIDR or host name; write e.g. \
                 198.18.0.2, 198.18.0.0/15 or staging.example.com"
            ))
        })?;
        if net.trunc() != net {
            return Err(Refused(format!(
                "--allow-remote {text}: the address has bits set past the /{} prefix; write {}",
                net.prefix_len(),
                net.trunc()
            )));
        }
        return Ok(Allowed::Net(net));
    }
    let name = text.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(Refused(format!(
            "--allow-remote {text}: not an address, CIDR or host name; write e.g. 198.18.0.2, \
             198.18.0.0/15 or staging.example.com"
        )));
    }
    Ok(Allowed::Name(name))
}

/// `host` without the brackets of an IPv6 URL host.
fn bare_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// `ip` with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) turned into
/// the IPv4 address it carries, so that a block or a rule written for IPv4
/// covers both spellings of the same destination.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// AWS's instance metadata service over IPv6 (a unique local address, so
/// not covered by the link-local rule).
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Alibaba Cloud's metadata service, in the shared address space.
const ALIBABA_METADATA: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);

/// Why `ip` is never a destination, or `None` when it may be allowed.
/// IPv4-mapped, IPv4-compatible and NAT64 (64:ff9b::/96) spellings are
/// judged by the IPv4 address they carry.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_unspecified() {
                return Some("the unspecified address");
            }
            if v6 == AWS_METADATA_V6 {
                return Some("a cloud metadata service (AWS IMDS over IPv6)");
            }
            if (s[0] & 0xffc0) == 0xfe80 {
                return Some("link-local (fe80::/10)");
            }
            if v6.is_multicast() {
                return Some("multicast (ff00::/8)");
            }
            let embedded =
                Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            let compatible = s[..6].iter().all(|&x| x == 0) && !v6.is_loopback();
            let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0);
            if compatible {
                return Some(
                    "an IPv4-compatible IPv6 address (deprecated; write the IPv4 address)",
                );
            }
            if nat64 {
                return forbidden_v4(embedded);
            }
            None
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let o = v4.octets();
    if v4 == Ipv4Addr::new(169, 254, 169, 254) {
        Some("the cloud metadata address (link-local)")
    } else if v4.is_link_local() {
        Some("link-local (169.254.0.0/16, where cloud metadata services answer)")
    } else if v4 == ALIBABA_METADATA {
        Some("a cloud metadata service (Alibaba Cloud, 100.100.100.200)")
    } else if v4.is_broadcast() {
        Some("the broadcast address")
    } else if o[0] == 0 {
        // Linux connects 0.0.0.0 to this machine: an address that means
        // loopback without looking like it.
        Some("unspecified (0.0.0.0/8, which reaches this machine)")
    } else if v4.is_multicast() {
        Some("multicast (224.0.0.0/4)")
    } else {
        None
    }
}

/// Whether `host` (a URL host) is this machine by its spelling alone:
/// `localhost`, 127.0.0.0/8, ::1 or an IPv4-mapped loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = bare_host(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<IpAddr>()
            .is_ok_and(|ip| canonical(ip).is_loopback())
}

/// The addresses a run connects to for each host name, resolved once at
/// its start. Hosts written as addresses need no entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    by_host: BTreeMap<String, Vec<IpAddr>>,
}

impl Pins {
    /// The pinned addresses of `host` (a URL host), in resolver order;
    /// `None` when it was not resolved (an address, or nothing pinned).
    pub fn get(&self, host: &str) -> Option<&[IpAddr]> {
        self.by_host
            .get(&bare_host(host).to_ascii_lowercase())
            .map(Vec::as_slice)
    }

    /// Where to connect for `host:port`: its pinned addresses, or the
    /// address itself; `None` for a name that was not pinned.
    pub fn socket_addrs(&self, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
        if let Ok(ip) = bare_host(host).parse::<IpAddr>() {
            return Some(vec![SocketAddr::new(ip, port)]);
        }
        self.get(host)
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
    }

    /// Every pinned name and its addresses, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[IpAddr])> {
        self.by_host
            .iter()
            .map(|(host, ips)| (host.as_str(), ips.as_slice()))
    }

    /// Whether nothing was pinned.
    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }

    /// Pins `host` to `ips` as given (for tests and for a caller that
    /// resolved by other means and checked the policy itself).
    pub fn insert(&mut self, host: &str, ips: Vec<IpAddr>) {
        self.by_host
            .insert(bare_host(host).to_ascii_lowercase(), ips);
    }
}

/// Resolves every host name among `hosts` once, within `timeout` each, and
/// checks every address it gives against `policy`: one address outside it
/// refuses the name, since the resolver may hand any of them out later.
/// Addresses among `hosts` are checked as they are.
pub async fn resolve<I, S>(policy: &Policy, hosts: I, timeout: Duration) -> Result<Pins, Refused>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut pins = Pins::default();
    for host in hosts {
        let bare = bare_host(host.as_ref()).to_owned();
        if let Ok(ip) = bare.parse::<IpAddr>() {
            policy.check_addr(None, ip)?;
            continue;
        }
        if pins.get(&bare).is_some() {
            continue;
        }
        // Port 0: only the addresses are wanted.
        let found = tokio::time::timeout(timeout, tokio::net::lookup_host((bare.as_str(), 0)))
            .await
            .map_err(|_| {
                Refused(format!(
                    "resolving `{bare}` took longer than {timeout:?}; check the name or its resolver"
                ))
            })?
            .map_err(|e| Refused(format!("cannot resolve `{bare}`: {e}")))?;
        let mut ips: Vec<IpAddr> = Vec::new();
        for addr in found {
            let ip = addr.ip();
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        if ips.is_empty() {
            return Err(Refused(format!("`{bare}` resolves to no address")));
        }
        for ip in &ips {
            policy.check_addr(Some(&bare), *ip)?;
        }
        pins.insert(&bare, ips);
    }
    Ok(pins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn policy(flags: &[&str]) -> Policy {
        Policy::from_flags(flags).unwrap()
    }

    #[test]
    fn loopback_is_allowed_without_any_flag() {
        let p = Policy::loopback_only();
        for host in [
            "127.0.0.1",
            "127.3.4.5",
            "[::1]",
            "::1",
            "localhost",
            "LocalHost",
        ] {
            assert_eq!(p.check_host(host), Ok(()), "{host}");
        }
        assert_eq!(p.check_addr(None, ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(p.check_addr(Some("localhost"), ip("127.0.0.1")), Ok(()));
    }

    #[test]
    fn a_remote_host_without_the_flag_names_the_flag_to_add() {
        let p = Policy::loopback_only();
        let e = p.check_host("198.18.0.2").unwrap_err().0;
        assert!(e.contains("`--allow-remote 198.18.0.2`"), "{e}");
        assert!(e.contains("a scenario file cannot allow"), "{e}");
        let e = p.check_host("Chat.Example").unwrap_err().0;
        assert!(e.contains("`--allow-remote chat.example`"), "{e}");
        let e = p.check_host("[2001:db8::5]").unwrap_err().0;
        assert!(e.contains("`--allow-remote 2001:db8::5`"), "{e}");
    }

    #[test]
    fn addresses_blocks_and_names_allow_what_they_cover() {
        let p = policy(&[
            "198.18.0.2",
            "10.1.0.0/16",
            "staging.example.com",
            "2001:db8::/32",
        ]);
        assert_eq!(p.check_host("198.18.0.2"), Ok(()));
        assert_eq!(p.check_host("10.1.200.3"), Ok(()));
        assert_eq!(p.check_host("[2001:db8::77]"), Ok(()));
        // The mapped spelling of an allowed address is the same address.
        assert_eq!(p.check_addr(None, ip("::ffff:198.18.0.2")), Ok(()));
        let e = p.check_host("198.18.0.3").unwrap_err().0;
        assert!(e.contains("`--allow-remote 198.18.0.3`"), "{e}");
        assert!(
            e.contains("not in the allowed set (--allow-remote 198.18.0.2, 10.1.0.0/16"),
            "{e}"
        );
        // A name is allowed when named, or deferred to resolution while
        // blocks are allowed.
        assert_eq!(p.check_host("STAGING.example.com"), Ok(()));
        assert_eq!(p.check_host("other.example.com"), Ok(()));
        assert!(policy(&["x.test"]).check_host("y.test").is_err());
        // What a named host resolves to is allowed with it, and only with it.
        assert_eq!(
            p.check_addr(Some("staging.example.com"), ip("203.0.113.9")),
            Ok(())
        );
        let e = p
            .check_addr(Some("other.example.com"), ip("203.0.113.9"))
            .unwrap_err()
            .0;
        assert!(
            e.contains("host `other.example.com` resolves to 203.0.113.9"),
            "{e}"
        );
        assert!(
            e.contains("`--allow-remote other.example.com` for whatever"),
            "{e}"
        );
    }

    #[test]
    fn never_allowed_whatever_the_flag() {
        let p = policy(&["0.0.0.0/0", "::/0", "metadata.internal"]);
        for addr in [
            "169.254.169.254",
            "169.254.1.1",
            "fe80::1",
            "febf::1",
            "224.0.0.1",
            "239.255.255.250",
            "ff02::1",
            "255.255.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "fd00:ec2::254",
            "100.100.100.200",
        ] {
            let e = p.check_addr(None, ip(addr));
            assert!(e.is_err(), "{addr} was allowed");
            assert!(e.unwrap_err().0.contains("never"), "{addr}");
            let e = p.check_addr(Some("metadata.internal"), ip(addr));
            assert!(e.is_err(), "{addr} was allowed by name");
        }
        // Next to them, the same flags allow ordinary addresses.
        for addr in [
            "198.18.0.2",
            "8.8.8.8",
            "2001:db8::1",
            "64:ff9b::c612:2",
            "fd00:ec2::253",
        ] {
            assert_eq!(p.check_addr(None, ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn bad_flag_values_say_what_to_write() {
        for (value, needle) in [
            ("169.254.169.254", "never"),
            ("[fe80::1]", "never"),
            ("198.18.0.5/24", "write 198.18.0.0/24"),
            ("198.18.0.0/40", "not an address, CIDR or host name"),
            ("bad_name!", "not an address, CIDR or host name"),
            ("", "not an address"),
        ] {
            let e = Policy::from_flags(&[value]).unwrap_err().0;
            assert!(e.contains(needle), "{value}: {e}");
        }
        let p = policy(&["198.18.0.2", "198.18.0.2", "[::ffff:198.18.0.2]"]);
        assert_eq!(p.allowed(), ["198.18.0.2"]);
        assert_eq!(p.to_string(), "198.18.0.2");
        assert_eq!(Policy::loopback_only().to_string(), "loopback only");
    }

    #[test]
    fn loopback_spellings() {
        for host in ["localhost", "127.0.0.1", "[::1]", "::ffff:127.0.0.9"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["198.18.0.2", "chat.test", "[::]", "0.0.0.0"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    proptest::proptest! {
        /// An IPv4 address and its IPv4-mapped and NAT64 spellings are one
        /// destination: the same rule refuses or allows all three.
        #[test]
        fn every_spelling_of_an_ipv4_address_is_judged_alike(bits: u32, block in 0u8..=32) {
            let v4 = Ipv4Addr::from(bits);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            let o = v4.octets();
            let nat64 = IpAddr::V6(Ipv6Addr::new(
                0x64, 0xff9b, 0, 0, 0, 0,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
            ));
            proptest::prop_assert_eq!(forbidden(IpAddr::V4(v4)), forbidden(mapped));
            proptest::prop_assert_eq!(forbidden(IpAddr::V4(v4)).is_some(), forbidden(nat64).is_some());
            let net = IpNet::new(IpAddr::V4(v4), block).unwrap().trunc();
            let p = Policy::from_flags(&[net.to_string()]).unwrap();
            proptest::prop_assert_eq!(
                p.check_addr(None, IpAddr::V4(v4)).is_ok(),
                p.check_addr(None, mapped).is_ok()
            );
            // Inside its own block an address is allowed unless forbidden.
            proptest::prop_assert_eq!(
                p.check_addr(None, IpAddr::V4(v4)).is_ok(),
                forbidden(IpAddr::V4(v4)).is_none()
            );
        }
    }

    #[tokio::test]
    async fn names_resolve_once_and_every_address_must_pass() {
        let pins = resolve(
            &Policy::loopback_only(),
            ["localhost", "127.0.0.1"],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let ips = pins.get("LOCALHOST").expect("localhost pinned");
        assert!(ips.iter().all(|ip| ip.is_loopback()), "{ips:?}");
        assert_eq!(pins.get("127.0.0.1"), None);
        assert_eq!(
            pins.socket_addrs("[::1]", 80),
            Some(vec!["[::1]:80".parse().unwrap()])
        );
        assert_eq!(pins.socket_addrs("other", 80), None);
        let e = resolve(
            &Policy::loopback_only(),
            ["198.18.0.2"],
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(e.0.contains("--allow-remote 198.18.0.2"), "{e}");
        let e = resolve(
            &Policy::loopback_only(),
            ["no-such-host.invalid"],
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(e.0.contains("no-such-host.invalid"), "{e}");
    }
}
