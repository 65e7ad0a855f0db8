//! report.json against the checked-in schema (schema/report.v1.schema.json):
//! a report built in memory validates, and the schema rejects what a
//! consumer must not be handed silently. The report of a real run is
//! validated in report_outputs.rs.

mod report_support;

use leakbench::report::Render;
use leakbench::report::json::Json;
use leakbench::report::sample::leaking_report;
use report_support::{assert_valid_report, schema};
use serde_json::{Value, json};

fn sample_json() -> Value {
    serde_json::from_str(&Json.render(&leaking_report())).expect("report.json is JSON")
}

#[test]
fn unit_built_report_matches_schema() {
    assert_valid_report(&sample_json());
}

#[test]
fn partial_report_matches_schema() {
    // What an interrupted run writes: no signals, suspects or profiles yet.
    let mut r = leaking_report();
    r.status = leakbench::report::Status::Interrupted;
    r.verdict = leakbench::verdict::Verdict::Inconclusive;
    r.signals.clear();
    r.suspects.clear();
    r.profiles.clear();
    r.scenario_text = None;
    let v: Value = serde_json::from_str(&Json.render(&r)).expect("JSON");
    assert_valid_report(&v);
}

#[test]
fn remote_report_matches_schema() {
    // What a run with --allow-remote writes: the consent and the pins.
    let mut r = leaking_report();
    r.remote = Some(leakbench::report::model::RemoteAccess {
        allowed: vec!["198.18.0.2".to_owned(), "chat.test".to_owned()],
        pinned: [("chat.test".to_owned(), vec!["198.18.0.2".to_owned()])].into(),
    });
    let mut v: Value = serde_json::from_str(&Json.render(&r)).expect("JSON");
    assert_valid_report(&v);
    assert_eq!(v["remote"]["pinned"]["chat.test"][0], "198.18.0.2");
    // A consent that allowed nothing, or an unknown field, is not described.
    let validator = jsonschema::draft202012::new(&schema()).expect("schema compiles");
    v["remote"]["allowed"] = json!([]);
    assert!(
        !validator.is_valid(&v),
        "schema accepted an empty allow list"
    );
    v["remote"]["allowed"] = json!(["198.18.0.2"]);
    v["remote"]["extra"] = json!(1);
    assert!(
        !validator.is_valid(&v),
        "schema accepted an unknown remote field"
    );
    // A loopback-only run writes no `remote` at all.
    assert!(sample_json().get("remote").is_none());
}

#[test]
fn schema_rejects_what_it_does_not_describe() {
    let validator = jsonschema::draft202012::new(&schema()).expect("schema compiles");
    type Mutation = (&'static str, fn(&mut Value));
    let mutations: [Mutation; 8] = [
        ("unknown top-level field", |v| v["extra"] = json!(1)),
        ("unknown verdict", |v| v["verdict"] = json!("maybe")),
        ("other layout", |v| {
            v["schema"] = json!("leakbench.report/v2")
        }),
        ("negative goroutine count", |v| {
            v["timeline"][0]["goroutines"] = json!(-1)
        }),
        ("missing signal field", |v| {
            v["signals"][0]
                .as_object_mut()
                .expect("object")
                .remove("reason");
        }),
        ("unknown finding kind", |v| {
            v["signals"][0]["finding"]["kind"] = json!("maybe")
        }),
        ("a session budget without its size", |v| {
            v["course"]["stop"]
                .as_object_mut()
                .expect("object")
                .remove("max");
        }),
        ("a curve point without its sessions", |v| {
            v["signals"][0]["curve"][1]
                .as_object_mut()
                .expect("object")
                .remove("sessions");
        }),
    ];
    for (what, mutate) in mutations {
        let mut v = sample_json();
        mutate(&mut v);
        assert!(
            !validator.is_valid(&v),
            "schema accepted a report with {what}"
        );
    }
}
