//! Private test hosts in network namespaces, for the tests whose traffic
//! must cross a network (remote targets, load agents on their own hosts).
//!
//! A [`Net`] is one Linux bridge with no address in the root namespace; each
//! [`Host`] is a namespace joined to it by a veth pair, with an address from
//! 198.18.0.0/24 (the benchmarking range) and no default route, so nothing
//! it sends can leave the bridge. Dropping the `Net` kills every process
//! left in its namespaces and deletes them and the bridge; a run killed
//! before its drop is cleaned up by the next `Net` with the same tag.
//!
//! Creating namespaces needs root. Without it a test prints why it is
//! skipped; as root (CI) a failure to create them fails the test instead,
//! so CI never skips these silently.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How often [`Host::wait_tcp`] looks for a listener.
const POLL: Duration = Duration::from_millis(50);

/// One private bridge and the hosts on it.
pub struct Net {
    tag: String,
    bridge: String,
    hosts: Vec<Host>,
}

/// A namespace on a [`Net`]: a host of its own with one address.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace's name, `lb-TAG-NAME`.
    pub ns: String,
    /// Its address on the bridge.
    pub addr: Ipv4Addr,
    /// The root-namespace end of its veth pair.
    link: String,
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (package iproute2): {e}"))
}

/// Runs `ip ARGS`, panicking with its stderr if it fails.
fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Net {
    /// A new bridge for the test tagged `tag` (at most 6 characters of
    /// `[a-z0-9]`, unique per test so parallel tests never share names), or
    /// `None` after printing why namespaces cannot be made here.
    pub fn new(tag: &str) -> Option<Net> {
        assert!(
            !tag.is_empty()
                && tag.len() <= 6
                && tag
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "netns tag `{tag}`: 1 to 6 characters of a-z and 0-9 (interface names are short)"
        );
        if !is_root() {
            eprintln!(
                "skipped: network namespaces need root (`ip netns add` is not permitted for this user)"
            );
            return None;
        }
        let net = Net {
            tag: tag.to_owned(),
            bridge: format!("lbb{tag}"),
            hosts: Vec::new(),
        };
        net.clean_stale();
        ip_ok(&["link", "add", &net.bridge, "type", "bridge"]);
        ip_ok(&["link", "set", &net.bridge, "up"]);
        Some(net)
    }

    /// Deletes what an earlier run with this tag left behind.
    fn clean_stale(&self) {
        let prefix = format!("lb-{}-", self.tag);
        let listed = ip(&["netns", "list"]);
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.starts_with(&prefix) {
                kill_all_in(name);
                let _ = ip(&["netns", "del", name]);
                let _ = std::fs::remove_dir_all(etc_netns(name));
            }
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }

    /// A host named `name` at 198.18.0.`octet`.
    pub fn host(&mut self, name: &str, octet: u8) -> Host {
        assert!(
            (2..=254).contains(&octet),
            "host octet {octet}: use 2..=254"
        );
        let ns = format!("lb-{}-{name}", self.tag);
        let link = format!("lbv{}{octet}", self.tag);
        let addr = Ipv4Addr::new(198, 18, 0, octet);
        ip_ok(&["netns", "add", &ns]);
        let host = Host {
            ns: ns.clone(),
            addr,
            link: link.clone(),
        };
        // Recorded before the links so that a failure below is cleaned up.
        self.hosts.push(host.clone());
        ip_ok(&[
            "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip_ok(&["link", "set", &link, "master", &self.bridge, "up"]);
        ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
        ip_ok(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip_ok(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        host
    }

    /// Cuts `host` off the bridge: its packets go nowhere, and nobody is
    /// told (no FIN, no reset), as when a machine's cable is pulled.
    pub fn cut(&self, host: &Host) {
        ip_ok(&["link", "set", &host.link, "down"]);
    }

    /// Joins `host` to the bridge again after [`Net::cut`].
    pub fn restore(&self, host: &Host) {
        ip_ok(&["link", "set", &host.link, "up"]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for host in &self.hosts {
            kill_all_in(&host.ns);
            let _ = ip(&["netns", "del", &host.ns]);
            let _ = ip(&["link", "del", &host.link]);
            let _ = std::fs::remove_dir_all(etc_netns(&host.ns));
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// SIGKILL to every process in namespace `ns`.
fn kill_all_in(ns: &str) {
    let pids = ip(&["netns", "pids", ns]);
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        if let Ok(pid) = pid.parse::<i32>() {
            // SAFETY: signalling a process of a namespace this test made.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn etc_netns(ns: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(ns)
}

impl Host {
    /// `program` to be run inside this host's namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }

    /// Writes the hosts file that `ip netns exec` gives this namespace's
    /// processes as /etc/hosts, so names resolve as the test says.
    pub fn hosts_file(&self, text: &str) {
        let dir = etc_netns(&self.ns);
        std::fs::create_dir_all(&dir).expect("creating /etc/netns/NS");
        std::fs::write(dir.join("hosts"), text).expect("writing /etc/netns/NS/hosts");
    }

    /// Whether something in this namespace listens on TCP `port` within
    /// `within`, looking every 50 ms.
    pub fn wait_tcp(&self, port: u16, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let filter = format!("sport = :{port}");
        loop {
            let out = self
                .command("ss")
                .args(["-Hltn", &filter])
                .output()
                .expect("running ss in the namespace");
            if out.status.success() && !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }
}
