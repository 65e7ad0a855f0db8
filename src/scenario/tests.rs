//! Unit tests of scenario validation: defaults, every section's checks, and
//! where errors point.

use super::*;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text, Path::new("/tmp/s.toml"))
}

const MINIMAL: &str = r#"
        [target]
        url = "ws://127.0.0.1:8080/ws"
        [load]
        sessions = 200
    "#;

#[test]
fn minimal_scenario_gets_defaults() {
    let s = parse(MINIMAL).unwrap();
    assert_eq!(s.name, "s");
    assert_eq!(s.target.transport, Transport::WebSocket);
    assert_eq!(
        s.target.pprof.unwrap().to_string(),
        "http://127.0.0.1:8080/debug/pprof"
    );
    assert_eq!(s.load.concurrency, 200);
    assert_eq!(s.load.warmup, 1);
    assert_eq!(s.load.cycles, 3);
    assert_eq!(s.load.close, CloseMode::Graceful);
    assert_eq!(s.settle.timeout, DEFAULT_SETTLE_TIMEOUT);
    assert_eq!(s.thresholds, Thresholds::default());
    assert_eq!(
        s.verdict,
        Escalation {
            escalate: true,
            max_sessions: 20_000,
            max_time: DEFAULT_MAX_TIME,
        }
    );
}

#[test]
fn verdict_budgets_default_from_the_cycle_and_are_checked() {
    let with = |sessions: u32, verdict: &str| {
        format!(
            "[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = {sessions}\n[verdict]\n{verdict}"
        )
    };
    // 100 cycles' worth, at most 40,000.
    assert_eq!(parse(&with(300, "")).unwrap().verdict.max_sessions, 30_000);
    assert_eq!(parse(&with(2000, "")).unwrap().verdict.max_sessions, 40_000);
    let s = parse(&with(
        200,
        "escalate = false\nmax_sessions = 5000\nmax_time = \"2m\"",
    ))
    .unwrap();
    assert_eq!(
        s.verdict,
        Escalation {
            escalate: false,
            max_sessions: 5000,
            max_time: Duration::from_secs(120),
        }
    );
    let e = err(&with(200, "max_sessions = 100"));
    assert!(
        e.contains(":6:16: verdict.max_sessions: 100 is fewer than"),
        "{e}"
    );
    assert!(e.contains("give at least 600"), "{e}");
    let e = err(&with(200, "max_time = \"10ms\""));
    assert!(e.contains("verdict.max_time: must be at least 1s"), "{e}");
    let e = err(&with(200, "max_time = \"soon\""));
    assert!(
        e.contains("verdict.max_time: `soon` is not a duration"),
        "{e}"
    );
    let e = err(&with(200, "escalte = true"));
    assert!(e.contains("did you mean `escalate`?"), "{e}");
}

#[test]
fn full_scenario_round_trips() {
    let s = parse(
        r#"
            name = "chat"
            [target]
            url = "ws://localhost:9000/chat?user=a"
            pprof = "http://127.0.0.1:6060/debug/pprof/"
            [load]
            sessions = 10
            concurrency = 5
            warmup = 0
            cycles = 4
            hold = "250ms"
            close = "abrupt"
            [[load.steps]]
            send = "hi"
            [[load.steps]]
            expect = "hi"
            [settle]
            timeout = "5s"
            "#,
    )
    .unwrap();
    assert_eq!(s.name, "chat");
    assert_eq!(
        s.target.pprof.unwrap().to_string(),
        "http://127.0.0.1:6060/debug/pprof"
    );
    assert_eq!(s.load.hold, Duration::from_millis(250));
    assert_eq!(s.load.close, CloseMode::Abrupt);
    assert_eq!(
        s.load.steps,
        vec![
            Step::Send {
                text: "hi".into(),
                timeout: None
            },
            Step::Expect {
                matcher: Matcher::Contains("hi".into()),
                timeout: None
            }
        ]
    );
    assert_eq!(s.settle.timeout, Duration::from_secs(5));
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn unknown_key_is_rejected_with_location() {
    let e = err(r#"
            [target]
            url = "ws://127.0.0.1:8080/ws"
            [load]
            sessions = 2
            sesions = 3
        "#);
    assert!(
        e.starts_with("/tmp/s.toml:6:13: load.sesions: unknown key"),
        "{e}"
    );
    assert!(e.contains("did you mean `sessions`?"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    let e = err("[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 2\nclose = \"abrubt\"");
    assert!(e.contains(":5:9: load.close:"), "{e}");
    assert!(e.contains("did you mean `abrupt`?"), "{e}");
    let e = err(
        "[target]\nurl = \"ws://127.0.0.1:1/\"\n[setle]\ntimeout = \"1s\"\n[load]\nsessions = 2",
    );
    assert!(e.contains(":3:2: setle: unknown key"), "{e}");
    assert!(e.contains("did you mean `settle`?"), "{e}");
    let e = err("[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nconcurrency = 2");
    assert!(e.contains("load.sessions: is required"), "{e}");
}

#[test]
fn thresholds_default_and_can_be_set() {
    let base = |t: &str| {
        format!("[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 1\n[thresholds]\n{t}")
    };
    let s = parse(&base("")).unwrap();
    assert_eq!(s.thresholds, Thresholds::default());
    let s = parse(&base("heap_objects_per_session = 1.5\nheap_objects = 10")).unwrap();
    assert_eq!(s.thresholds.heap_objects_per_session, 1.5);
    assert_eq!(s.thresholds.heap_objects, 10.0);
    let e = err(&base("heap_objects_per_session = -1"));
    assert!(e.contains("thresholds.heap_objects_per_session"), "{e}");
    assert!(e.contains("not a non-negative number"), "{e}");
}

#[test]
fn durations_and_ports_are_bounded() {
    let base = |extra: &str| {
        format!("[target]\nurl = \"ws://127.0.0.1:1/\"\n{extra}\n[load]\nsessions = 1\n")
    };
    assert!(err(&base("probe_timeout = \"10ms\"")).contains("target.probe_timeout"));
    assert!(err(&base("ready_timeout = \"100000h\"")).contains("longer than a day"));
    let s = parse(&base("probe_timeout = \"1s\"")).unwrap();
    assert_eq!(s.target.probe_timeout, Duration::from_secs(1));
    assert!(err("[target]\nurl = \"ws://127.0.0.1:0/\"\n[load]\nsessions = 1").contains("port 0"));
    let e = err(
        "[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 1\n[secrets]\nheaders = [\"a b\"]",
    );
    assert!(e.contains("secrets.headers"), "{e}");
}

#[test]
fn out_of_range_values_are_rejected() {
    let base = |load: &str| format!("[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\n{load}\n");
    assert!(err(&base("sessions = 0")).contains("load.sessions"));
    assert!(err(&base("sessions = 5\nconcurrency = 6")).contains("load.concurrency"));
    assert!(err(&base("sessions = 5\ncycles = 1")).contains("load.cycles"));
    assert!(err(&base("sessions = 5\nhold = \"-1s\"")).contains("load.hold"));
    assert!(err(&base("sessions = 5\nclose = \"slam\"")).contains("close"));
    assert!(err(&base("sessions = 5\nrequests = 2")).contains("load.requests"));
    assert!(
        err(&base(
            "sessions = 5\n[[load.steps]]\nsend = \"a\"\nexpect = \"b\""
        ))
        .contains("steps[0]")
    );
}

#[test]
fn scheme_and_host_are_checked() {
    assert!(
        err("[target]\nurl = \"ftp://127.0.0.1/\"\n[load]\nsessions = 1")
            .contains("unsupported scheme")
    );
    assert!(
        err("[target]\nurl = \"ws://10.0.0.1:80/\"\n[load]\nsessions = 1").contains("loopback")
    );
    assert!(
        err("[target]\nurl = \"ws://example.com/\"\n[load]\nsessions = 1").contains("loopback")
    );
    assert!(parse("[target]\nurl = \"http://[::1]:8080/x\"\n[load]\nsessions = 1").is_ok());
    assert!(parse("[target]\nurl = \"http://127.0.0.2:8080/x\"\n[load]\nsessions = 1").is_ok());
}

#[test]
fn headers_are_validated_and_expanded() {
    // SAFETY: test-only variable name nothing else reads.
    unsafe { std::env::set_var("LEAKBENCH_TEST_TOKEN", "abc") };
    let s = parse(
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 1\nheaders = { Authorization = \"Bearer ${LEAKBENCH_TEST_TOKEN}\" }",
        )
        .unwrap();
    assert_eq!(s.load.headers.len(), 1);
    assert_eq!(s.load.headers[0].0, http::header::AUTHORIZATION);
    assert_eq!(s.load.headers[0].1, "Bearer abc");
    let e = err(
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 1\nheaders = { \"Bad Name\" = \"x\" }",
    );
    assert!(e.contains("load.headers.Bad Name"), "{e}");
}

#[test]
fn metrics_sources_turn_off_the_assumed_pprof() {
    let s = parse(
        r#"
            [target]
            url = "http://127.0.0.1:3000/visit"
            metrics = "http://127.0.0.1:3000/metrics"
            ready = "tcp://127.0.0.1:3000"
            [load]
            sessions = 5
            [[signals]]
            metric = 'jvm_memory_used_bytes{area="heap"}'
            name = "jvm_heap"
            unit = "bytes"
            decides = false
            [[signals]]
            metric = "nodejs_active_handles_total"
            threshold = 3
            "#,
    )
    .unwrap();
    assert!(s.target.pprof.is_none());
    assert_eq!(s.target.ready, Some(Ready::Tcp("127.0.0.1".into(), 3000)));
    assert_eq!(s.signals.len(), 2);
    assert_eq!(s.signals[0].name, "jvm_heap");
    assert_eq!(s.signals[0].selector.labels["area"], "heap");
    assert_eq!(
        (s.signals[0].unit, s.signals[0].decides),
        (Unit::Bytes, false)
    );
    assert_eq!(s.signals[1].name, "nodejs_active_handles_total");
    assert_eq!(
        (s.signals[1].threshold, s.signals[1].decides),
        (Some(3.0), true)
    );
}

#[test]
fn signal_sources_are_checked() {
    let base = "[target]\nurl = \"http://127.0.0.1:1/\"\n";
    let e = err(&format!(
        "{base}[load]\nsessions = 1\n[[signals]]\nmetric = \"x\""
    ));
    assert!(e.contains("target.metrics"), "{e}");
    let e = err(&format!(
        "{base}metrics = \"http://10.1.1.1/metrics\"\n[load]\nsessions = 1"
    ));
    assert!(e.contains("loopback"), "{e}");
    let e = err(&format!("{base}pprof = \"off\"\n[load]\nsessions = 1"));
    assert!(e.contains("no signal source"), "{e}");
    let e = err(&format!("{base}pid = 2147483000\n[load]\nsessions = 1"));
    assert!(e.contains("no process"), "{e}");
    let e = err(&format!(
        "{base}metrics = \"http://127.0.0.1:1/m\"\n[load]\nsessions = 1\n[[signals]]\nmetric = \"a b\""
    ));
    assert!(e.contains("signals[0].metric"), "{e}");
}

#[test]
fn environment_variables_are_expanded() {
    // SAFETY: test-only variable names nothing else reads.
    unsafe { std::env::set_var("LEAKBENCH_TEST_PORT", "18181") };
    let s =
        parse("[target]\nurl = \"ws://127.0.0.1:${LEAKBENCH_TEST_PORT}/ws\"\n[load]\nsessions = 1")
            .unwrap();
    assert_eq!(s.target.url.port_u16(), Some(18181));
    let e = err(
        "[target]\nurl = \"ws://127.0.0.1:${LEAKBENCH_NOT_SET_ANYWHERE}/\"\n[load]\nsessions = 1",
    );
    assert!(e.contains("LEAKBENCH_NOT_SET_ANYWHERE is not set"), "{e}");
    let e = err("[target]\nurl = \"ws://127.0.0.1:${OPEN/\"\n[load]\nsessions = 1");
    assert!(e.contains("closing"), "{e}");
}

#[test]
fn new_load_keys_are_validated_with_their_key_named() {
    let ws = |load: &str| {
        format!("[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 5\n{load}\n")
    };
    let web = |load: &str| {
        format!("[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 5\n{load}\n")
    };
    let cases = [
        (ws("close = \"silent\""), "load.close"),
        (
            ws("[[load.steps]]\nexpect_regex = \"(\""),
            "load.steps[0].expect_regex",
        ),
        (
            ws("[[load.steps]]\nsend_base64 = \"!!\""),
            "load.steps[0].send_base64",
        ),
        (
            ws("[[load.steps]]\nsend = \"{{who}}\""),
            "unknown placeholder",
        ),
        (ws("[[load.steps]]\nrepeat = 2"), "load.steps[0].steps"),
        (
            ws("[[load.steps]]\npause = \"1s\"\ntimeout = \"1s\""),
            "load.steps[0].timeout",
        ),
        (
            ws("[[load.steps]]\nsend = \"a\"\nbinary = true"),
            "load.steps[0].binary",
        ),
        (
            ws("[[load.steps]]\nsend_file = \"nope.bin\""),
            "load.steps[0].send_file",
        ),
        (ws("body = \"x\""), "load.body"),
        (ws("subprotocols = [\"a b\"]"), "load.subprotocols"),
        (web("expect_status = [99]"), "load.expect_status"),
        (web("connection = \"sometimes\""), "connection"),
        (web("subprotocols = [\"x\"]"), "load.subprotocols"),
        (web("rate = 0"), "load.rate"),
        (web("ramp = \"1s\""), "load.ramp"),
        (
            web("source_addresses = [\"10.0.0.1\"]"),
            "load.source_addresses",
        ),
        (
            web("source_addresses = [\"nope\"]"),
            "load.source_addresses",
        ),
        (web("[[load.steps]]\nsend = \"a\""), "load.steps"),
    ];
    for (text, want) in cases {
        let e = err(&text);
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn scripts_and_http_options_parse() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.bin"), [1u8, 2, 3]).unwrap();
    let text = r#"
            [target]
            url = "ws://127.0.0.1:1/ws?u={{session}}"
            [load]
            sessions = 4
            rate = 100
            ramp = "2s"
            subprotocols = ["v1"]
            [[load.steps]]
            send_file = "m.bin"
            [[load.steps]]
            repeat = 2
            [[load.steps.steps]]
            ping = "x"
            timeout = "1s"
        "#;
    let s = Scenario::parse(text, &dir.path().join("s.toml")).unwrap();
    assert_eq!(s.target.url.to_string(), "ws://127.0.0.1:1/ws?u=0");
    assert_eq!(
        s.target.url_template.as_deref(),
        Some("ws://127.0.0.1:1/ws?u={{session}}")
    );
    assert_eq!(
        s.load.steps,
        vec![
            Step::SendBinary {
                bytes: vec![1, 2, 3],
                timeout: None
            },
            Step::Repeat {
                times: 2,
                steps: vec![Step::Ping {
                    payload: b"x".to_vec(),
                    timeout: Some(Duration::from_secs(1))
                }]
            }
        ]
    );
    assert_eq!(
        s.load.rate,
        Some(Rate {
            per_second: 100.0,
            ramp: Duration::from_secs(2)
        })
    );
    let s = parse(
            "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 1\nmethod = \"PUT\"\nbody = \"b\"\n\
             connection = \"per_request\"\nexpect_status = [200, 204]",
        )
        .unwrap();
    assert_eq!(s.load.http.connection, HttpConnection::PerRequest);
    assert_eq!(s.load.http.expect_status, vec![200, 204]);
    assert_eq!(s.load.http.body, Some(Body::Text("b".into())));
}

#[test]
fn tls_targets_need_an_explicit_trust_choice() {
    let base = |tls: &str| {
        format!(
            "[target]\nurl = \"wss://127.0.0.1:1/\"\npprof = \"http://127.0.0.1:2/debug/pprof\"\n{tls}\n[load]\nsessions = 1"
        )
    };
    assert!(err(&base("")).contains("target.tls"));
    assert!(err(&base("[target.tls]")).contains("ca_file"));
    assert!(err(&base("[target.tls]\nca_file = \"/nope.pem\"")).contains("does not exist"));
    let s = parse(&base("[target.tls]\ninsecure = true")).unwrap();
    assert!(s.target.tls.insecure);
    assert!(
            err("[target]\nurl = \"https://127.0.0.1:1/\"\n[target.tls]\ninsecure = true\n[load]\nsessions = 1")
                .contains("target.pprof")
        );
    assert!(
            err("[target]\nurl = \"http://127.0.0.1:1/\"\n[target.tls]\ninsecure = true\n[load]\nsessions = 1")
                .contains("wss and https")
        );
}

#[test]
fn missing_program_is_named() {
    let e = err(
        "[target]\nurl = \"ws://127.0.0.1:1/\"\ncommand = [\"./no-such-server\"]\n[load]\nsessions = 1",
    );
    assert!(e.contains("/tmp/no-such-server"), "{e}");
}

#[test]
fn value_errors_name_line_and_column() {
    // `sessions = 0` on line 7: the position is the value's, in the format
    // syntax errors use.
    let e = err(r#"name = "positions"
# The service.
[target]
url = "ws://127.0.0.1:1/"

[load]
sessions = 0
"#);
    assert!(
        e.starts_with("/tmp/s.toml:7:12: load.sessions: 0 is out of range"),
        "{e}"
    );
    assert!(e.contains(":7:"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    // A syntax error on the same value reads the same way.
    let e = err(
        "name = \"positions\"\n# The service.\n[target]\nurl = \"ws://127.0.0.1:1/\"\n\n[load]\nsessions = \"0\"\n",
    );
    assert!(
        e.starts_with("/tmp/s.toml:7:12: load.sessions: invalid type"),
        "{e}"
    );
}

#[test]
fn value_errors_point_at_the_value_in_every_section() {
    let ws =
        |rest: &str| format!("[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 5\n{rest}");
    let web = |rest: &str| {
        format!("[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 5\n{rest}")
    };
    let cases = [
        (
            "[target]\nurl = \"ws://10.0.0.1:1/\"\n[load]\nsessions = 1".to_owned(),
            ":2:7: target.url: host `10.0.0.1` is not a loopback address",
        ),
        (
            "[target]\nurl = \"ws://127.0.0.1:1/\"\nprobe_timeout = \"10ms\"\n[load]\nsessions = 1"
                .to_owned(),
            ":3:17: target.probe_timeout: must be at least 100ms",
        ),
        (
            "[target]\nurl = \"ws://127.0.0.1:1/\"\ncommand = [\"./no-such-server\"]\n[load]\nsessions = 1"
                .to_owned(),
            ":3:12: target.command: program `/tmp/no-such-server` does not exist",
        ),
        (
            "[target]\nurl = \"http://127.0.0.1:1/\"\nenv = { A = \"${LEAKBENCH_NOT_SET_ANYWHERE}\" }\n[load]\nsessions = 1"
                .to_owned(),
            ":3:13: target.env.A: environment variable LEAKBENCH_NOT_SET_ANYWHERE is not set",
        ),
        (ws("cycles = 1"), ":5:10: load.cycles: 1 is out of range"),
        (ws("hold = \"-1s\""), ":5:8: load.hold: `-1s` is not a duration"),
        (ws("requests = 2"), ":5:12: load.requests: applies to http(s) targets only"),
        (ws("close = \"silent\""), ":5:9: load.close: \"silent\" keeps"),
        (web("rate = 100\nramp = \"x\""), ":6:8: load.ramp: `x` is not a duration"),
        (web("ramp = \"1s\""), ":5:8: load.ramp: needs `rate`"),
        (
            web("expect_status = [200, 99]"),
            ":5:23: load.expect_status: 99 is not an HTTP status",
        ),
        (
            web("source_addresses = [\"127.0.0.2\", \"127.0.0.2\"]"),
            ":5:34: load.source_addresses: `127.0.0.2` is listed twice",
        ),
        (
            web("headers = { \"Bad Name\" = \"x\" }"),
            ":5:13: load.headers.Bad Name: is not a valid HTTP header name",
        ),
        (
            ws("[[load.steps]]\nsend = \"a\"\n[[load.steps]]\nping = \"x\"\ntimeout = \"0s\""),
            ":9:11: load.steps[1].timeout: must be above zero",
        ),
        (
            ws("[[load.steps]]\nrepeat = 2\n[[load.steps.steps]]\nexpect_regex = \"(\""),
            ":8:16: load.steps[0].steps[0].expect_regex: is not a regular expression",
        ),
        (
            ws("[settle]\ntimeout = \"1ms\""),
            ":6:11: settle.timeout: must be at least 100ms",
        ),
        (
            ws("[thresholds]\nfds = 1\ngoroutines = -2"),
            ":7:14: thresholds.goroutines: -2 is not a non-negative number",
        ),
        (
            ws("[secrets]\nquery = [\"ok\", \"a=b\"]"),
            ":6:16: secrets.query: `a=b` is not a query parameter name",
        ),
        (
            "[target]\nurl = \"http://127.0.0.1:1/\"\nmetrics = \"http://127.0.0.1:1/m\"\n[load]\nsessions = 1\n[[signals]]\nmetric = \"a b\"\n[[signals]]\nmetric = \"b\"\nthreshold = -1"
                .to_owned(),
            ":7:10: signals[0].metric:",
        ),
    ];
    for (text, want) in cases {
        let e = err(&text);
        assert!(e.starts_with("/tmp/s.toml:"), "{e}");
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn errors_about_a_whole_table_point_at_it() {
    // What a table lacks, or a step with two actions: the table's header.
    let e = err(
        "name = \"x\"\n\n[target]\nurl = \"http://127.0.0.1:1/\"\npprof = \"off\"\n[load]\nsessions = 1",
    );
    assert!(
        e.contains("/tmp/s.toml:3:1: target: has no signal source"),
        "{e}"
    );
    let e = err("name = \"x\"\n[target]\nurl = \"wss://127.0.0.1:1/\"\n[load]\nsessions = 1");
    assert!(
        e.contains(":2:1: target.tls: a wss/https target needs"),
        "{e}"
    );
    let e = err(
        "[target]\nurl = \"wss://127.0.0.1:1/\"\npprof = \"http://127.0.0.1:2/\"\n\n[target.tls]\n\n[load]\nsessions = 1",
    );
    assert!(e.contains(":5:1: target.tls: give `ca_file"), "{e}");
    let e =
        err("target = { url = \"http://127.0.0.1:1/\", pprof = \"off\" }\n[load]\nsessions = 1");
    assert!(e.contains(":1:10: target: has no signal source"), "{e}");
    let e = err(
        "[target]\nurl = \"ws://127.0.0.1:1/\"\n[load]\nsessions = 1\n\n[[load.steps]]\nsend = \"a\"\nexpect = \"b\"",
    );
    assert!(
        e.contains(":6:1: load.steps[0]: each step takes exactly one"),
        "{e}"
    );
    let e = err(
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 1\n[[signals]]\nmetric = \"x\"",
    );
    assert!(
        e.contains(":5:1: signals[0]: reads from the Prometheus source"),
        "{e}"
    );
}

#[test]
fn value_error_columns_count_characters() {
    // `query = ["é", ` is fifteen characters and sixteen bytes: the bad
    // name starts at column 15.
    let e = err(
        "[target]\nurl = \"http://127.0.0.1:1/\"\n[load]\nsessions = 1\n[secrets]\nquery = [\"é\", \"a=b\"]",
    );
    assert!(
        e.contains("/tmp/s.toml:6:15: secrets.query: `a=b` is not a query parameter name"),
        "{e}"
    );
}

fn parse_allowing(text: &str, flags: &[&str]) -> Result<Scenario, String> {
    let policy = Policy::from_flags(flags).expect("valid flags");
    Scenario::parse_with(text, Path::new("/tmp/s.toml"), &policy).map_err(|e| e.to_string())
}

const REMOTE: &str = "[target]\nurl = \"ws://198.18.0.2:8080/ws\"\npprof = \"http://198.18.0.2:6060/debug/pprof\"\n[load]\nsessions = 10\n";

#[test]
fn a_remote_host_needs_the_command_line_and_says_which_flag() {
    let e = err(REMOTE);
    assert!(
        e.starts_with("/tmp/s.toml:2:7: target.url: host `198.18.0.2` is not a loopback address"),
        "{e}"
    );
    assert!(
        e.contains("add `--allow-remote 198.18.0.2` to the command line"),
        "{e}"
    );
    let s = parse_allowing(REMOTE, &["198.18.0.2"]).unwrap();
    assert_eq!(s.target.remote.allowed(), ["198.18.0.2"]);
    assert_eq!(s.hosts(), ["198.18.0.2"]);
    // The probe's host is checked on its own: allowing the target's address
    // does not allow another one.
    let other = REMOTE.replace("http://198.18.0.2:6060", "http://198.18.0.3:6060");
    let e = parse_allowing(&other, &["198.18.0.2"]).unwrap_err();
    assert!(e.contains("target.pprof: host `198.18.0.3`"), "{e}");
    assert!(parse_allowing(&other, &["198.18.0.0/15"]).is_ok());
    // Never allowed, whatever the flag.
    let metadata = REMOTE.replace("198.18.0.2:6060", "169.254.169.254:80");
    let e = parse_allowing(&metadata, &["0.0.0.0/0"]).unwrap_err();
    assert!(e.contains("target.pprof") && e.contains("never"), "{e}");
}

#[test]
fn a_remote_target_is_neither_started_nor_read_from_proc() {
    let with_command = REMOTE.replace("[load]", "command = [\"/bin/true\"]\n[load]");
    let e = parse_allowing(&with_command, &["198.18.0.2"]).unwrap_err();
    assert!(
        e.contains("target.command: the target is remote (`198.18.0.2`)"),
        "{e}"
    );
    let with_pid = REMOTE.replace("[load]", "pid = 1\n[load]");
    let e = parse_allowing(&with_pid, &["198.18.0.2"]).unwrap_err();
    assert!(e.contains("target.pid: the target is remote"), "{e}");
    // A loopback URL with a remote metrics endpoint is remote too.
    let mixed = "[target]\nurl = \"ws://127.0.0.1:8080/ws\"\nmetrics = \"http://metrics.test/metrics\"\ncommand = [\"/bin/true\"]\n[load]\nsessions = 1\n";
    let e = parse_allowing(mixed, &["metrics.test"]).unwrap_err();
    assert!(
        e.contains("target.command: the target is remote (`metrics.test`)"),
        "{e}"
    );
}

#[test]
fn names_are_allowed_by_name_or_left_to_resolution() {
    let named = "[target]\nurl = \"ws://chat.test:8080/ws\"\n[load]\nsessions = 1\n";
    let e = err(named);
    assert!(e.contains("add `--allow-remote chat.test`"), "{e}");
    let s = parse_allowing(named, &["chat.test"]).unwrap();
    assert_eq!(s.hosts(), ["chat.test"]);
    // With a block allowed the name may resolve into it: checked at run start.
    assert!(parse_allowing(named, &["198.18.0.0/15"]).is_ok());
    assert!(parse_allowing(named, &["other.test"]).is_err());
}

#[test]
fn source_addresses_must_be_able_to_reach_the_target() {
    let loopback = "source_addresses = [\"127.0.0.2\"]\n";
    let e = parse_allowing(&format!("{REMOTE}{loopback}"), &["198.18.0.2"]).unwrap_err();
    assert!(
        e.contains("load.source_addresses: `127.0.0.2` cannot reach a remote target"),
        "{e}"
    );
    let own = "source_addresses = [\"198.18.0.5\"]\n";
    let s = parse_allowing(&format!("{REMOTE}{own}"), &["198.18.0.2"]).unwrap();
    assert_eq!(s.load.source_addresses, [ip_addr("198.18.0.5")]);
    let e = err(&format!("{}\n{own}", MINIMAL.trim_end()));
    assert!(e.contains("not a loopback address"), "{e}");
}

fn ip_addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn abort_failure_ratio_is_a_share_not_below_the_tolerated_one() {
    let s = parse(MINIMAL).unwrap();
    assert_eq!(s.load.abort_failure_ratio, DEFAULT_ABORT_FAILURE_RATIO);
    let tolerant = parse(&format!(
        "{}\nmax_failure_ratio = 0.7\n",
        MINIMAL.trim_end()
    ))
    .unwrap();
    assert_eq!(tolerant.load.abort_failure_ratio, 0.7);
    let s = parse(&format!(
        "{}\nabort_failure_ratio = 1.0\n",
        MINIMAL.trim_end()
    ))
    .unwrap();
    assert_eq!(s.load.abort_failure_ratio, 1.0);
    for (value, says) in [
        ("0.0", "not a share"),
        ("1.5", "not a share"),
        ("-0.1", "not a share"),
    ] {
        let e = err(&format!(
            "{}\nabort_failure_ratio = {value}\n",
            MINIMAL.trim_end()
        ));
        assert!(
            e.contains("load.abort_failure_ratio") && e.contains(says),
            "{value}: {e}"
        );
    }
    let e = err(&format!(
        "{}\nmax_failure_ratio = 0.3\nabort_failure_ratio = 0.2\n",
        MINIMAL.trim_end()
    ));
    assert!(
        e.contains(":7:23: load.abort_failure_ratio: 0.2 is below load.max_failure_ratio (0.3)"),
        "{e}"
    );
}
