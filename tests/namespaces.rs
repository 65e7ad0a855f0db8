//! The namespace harness itself: hosts reach each other over the bridge,
//! have no way out, and leave nothing behind.

mod netns;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

const SERVE_ONE: &str = "import socket,sys\n\
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind((sys.argv[1], 9000)); s.listen(1)\n\
c,_=s.accept(); c.sendall(b'hi'); c.close()\n";

const FETCH: &str = "import socket,sys\n\
c=socket.create_connection((sys.argv[1], 9000), timeout=5)\n\
print(c.recv(16).decode())\n";

fn namespaces() -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hosts_talk_over_the_bridge_and_nowhere_else() {
    let Some(mut net) = netns::Net::new("nstest") else {
        return;
    };
    let a = net.host("a", 2);
    let b = net.host("b", 3);
    let mut server = a
        .command("python3")
        .args(["-c", SERVE_ONE, &a.addr.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 in namespace a");
    assert!(
        a.wait_tcp(9000, Duration::from_secs(10)),
        "no listener in a"
    );
    let fetched = b
        .command("python3")
        .args(["-c", FETCH, &a.addr.to_string()])
        .output()
        .expect("python3 in namespace b");
    assert_eq!(String::from_utf8_lossy(&fetched.stdout).trim(), "hi");
    assert!(server.wait().expect("server exit").success());

    // No default route: only the bridge's /24 is reachable.
    let routes = std::process::Command::new("ip")
        .args(["-n", &b.ns, "route", "show"])
        .output()
        .expect("ip route");
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(!routes.contains("default"), "{routes}");
    assert!(routes.contains("198.18.0.0/24"), "{routes}");

    // A cut host is unreachable until restored.
    net.cut(&a);
    let mut probe = b
        .command("python3")
        .args(["-c", FETCH, &a.addr.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 in namespace b");
    let status = probe.wait().expect("probe exit");
    let mut err = String::new();
    probe
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "reached a cut host");
    net.restore(&a);

    // A process left running is killed with its namespace.
    let mut left = a.command("sleep").arg("600").spawn().expect("sleep");
    let names = namespaces();
    assert!(names.contains(&a.ns) && names.contains(&b.ns), "{names}");
    drop(net);
    let status = left.wait().expect("sleep exit");
    assert!(!status.success(), "the namespace's process outlived it");
    let names = namespaces();
    assert!(!names.contains("lb-nstest-"), "left behind: {names}");
}
