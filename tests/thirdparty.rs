//! End-to-end tests against real third-party services from Debian's
//! packages (see .ci/install and shared TARGETS.md): nats-server over its
//! websocket listener and caddy over plain HTTP. Neither leaks, so both must
//! pass with leakbench's default thresholds and settle policy.
//!
//! Their configurations are the templates in tests/thirdparty/, filled in
//! with free loopback ports and written next to each run's scenario; the
//! scenario's relative config path is resolved by the service against its
//! working directory, which defaults to the scenario's folder.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{EXIT_PASS, Outcome, toml_str};

/// Sessions per cycle (caddy).
const SESSIONS: u32 = 200;

/// Sessions per cycle for nats-server: a default scenario's size, with
/// default warm-up, cycles, thresholds and budgets. The server ends each
/// connection first, so its TIME_WAITs sit on the server's side and client
/// ports are free to reuse over the 20,000 connections a run may make.
const NATS_SESSIONS: u32 = 300;

/// The template `name` from tests/thirdparty/ with each `{{KEY}}` replaced.
fn config(name: &str, ports: &[(&str, u16)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/thirdparty")
        .join(name);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for (key, port) in ports {
        text = text.replace(&format!("{{{{{key}}}}}"), &port.to_string());
    }
    assert!(
        !text.contains("{{"),
        "{} has a placeholder left:\n{text}",
        path.display()
    );
    text
}

/// Writes `files` and `scenario` into a fresh folder and runs leakbench.
fn run_in_folder(files: &[(&str, String)], scenario: &str) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write config");
    }
    let scenario = scenario.replace("{{DIR}}", &dir.path().to_string_lossy());
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, &scenario).expect("write scenario");
    let mut run = common::run_leakbench(&path, &dir.path().join("out"));
    run.scenario = scenario;
    run
}

#[test]
fn nats_server_websocket_passes() {
    common::require_program("nats-server", "nats-server");
    let _one_at_a_time = common::serial();
    let (client, prof, ws) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let conf = config(
        "nats-ws.conf",
        &[
            ("CLIENT_PORT", client),
            ("PROF_PORT", prof),
            ("WS_PORT", ws),
        ],
    );
    let mut t = String::new();
    writeln!(t, "name = \"nats-server websocket\"\n\n[target]").unwrap();
    writeln!(t, "url = \"ws://127.0.0.1:{ws}/\"").unwrap();
    writeln!(t, "command = [\"nats-server\", \"-c\", \"nats.conf\"]").unwrap();
    writeln!(t, "pprof = \"http://127.0.0.1:{prof}/debug/pprof\"").unwrap();
    // nats-server keeps every closed connection's details for its monitoring
    // endpoint (`Server.saveClosedClient`, about 700 B and 4.7 objects per
    // connection) in a ring of 10,000 that its config file cannot resize.
    // Over the default three cycles that is a straight line; escalation has
    // to reach past the ring's bound, see the curve bend flat, and say so.
    writeln!(t, "\n[load]\nsessions = {NATS_SESSIONS}").unwrap();
    // The NATS protocol's greeting, handshake and round trip.
    writeln!(t, "\n[[load.steps]]\nexpect = \"INFO\"").unwrap();
    writeln!(
        t,
        "\n[[load.steps]]\nsend = {}",
        toml_str("CONNECT {\"verbose\":false}\r\nPING\r\n")
    )
    .unwrap();
    writeln!(t, "\n[[load.steps]]\nexpect = \"PONG\"").unwrap();

    let run = run_in_folder(&[("nats.conf", conf)], &t);
    run.assert_verdict(EXIT_PASS, "pass");
    common::assert_signal(&run, "goroutines", "pass", true);
    common::assert_signal(&run, "fds", "pass", true);
    // The ring is found as what it is: bounded, near 10,000 connections.
    let heap = common::signal(&run, "heap_bytes");
    assert_eq!(heap["finding"]["kind"], "bounded", "{}", run.context());
    let filled = heap["finding"]["filled_by"].as_f64().unwrap_or(0.0);
    assert!(
        (5_000.0..=20_000.0).contains(&filled),
        "the ring fills at 10,000 connections, {filled} seen\n{}",
        run.context()
    );
    let reasons = run.report()["reasons"].to_string();
    assert!(reasons.contains("heap_bytes bounded"), "{}", run.context());
    assert!(reasons.contains("retains at most"), "{}", run.context());
    run.assert_suspect("github.com/nats-io/nats-server/server.(*Server).saveClosedClient");
}

#[test]
fn caddy_http_passes() {
    common::require_program("caddy", "caddy");
    let _one_at_a_time = common::serial();
    let (admin, http) = (common::free_port(), common::free_port());
    let caddyfile = config("Caddyfile", &[("ADMIN_PORT", admin), ("HTTP_PORT", http)]);
    let mut t = String::new();
    writeln!(t, "name = \"caddy http\"\n\n[target]").unwrap();
    writeln!(t, "url = \"http://127.0.0.1:{http}/hello\"").unwrap();
    writeln!(
        t,
        "command = [\"caddy\", \"run\", \"--config\", \"Caddyfile\", \"--adapter\", \"caddyfile\"]"
    )
    .unwrap();
    // caddy keeps its state under XDG folders; keep them in the run's folder.
    writeln!(
        t,
        "env = {{ XDG_DATA_HOME = \"{{{{DIR}}}}/xdg-data\", XDG_CONFIG_HOME = \"{{{{DIR}}}}/xdg-config\" }}"
    )
    .unwrap();
    writeln!(t, "pprof = \"http://127.0.0.1:{admin}/debug/pprof\"").unwrap();
    writeln!(t, "\n[load]\nsessions = {SESSIONS}\nrequests = 1").unwrap();

    let run = run_in_folder(&[("Caddyfile", caddyfile)], &t);
    run.assert_verdict(EXIT_PASS, "pass");
    common::assert_signal(&run, "goroutines", "pass", true);
    common::assert_signal(&run, "fds", "pass", true);
}
