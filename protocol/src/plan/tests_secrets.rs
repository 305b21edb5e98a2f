//! Tests of plan secrets and redaction ([`super::secrets`]).

use super::secrets::*;
use super::{from_value, Step};
use serde_json::Value;

fn plan_with(secrets: Value, header: &str) -> Value {
    serde_json::json!({
        "version": 1, "name": "s", "target": "http://127.0.0.1:1",
        "load": {"stages": [{"duration": "1s", "vus": 1}]},
        "secrets": secrets,
        "scenario": [{"get": "/", "headers": {"Authorization": header, "X-Trace": "t"}}],
    })
}

#[test]
fn secrets_parse_round_trip_and_define_variables() {
    let json = plan_with(
        serde_json::json!({"TOKEN": {"env": "MY_TOKEN"}, "PIN": {"file": "pin.txt"}}),
        "Bearer ${TOKEN}",
    );
    let plan = from_value(&json).expect("valid");
    assert_eq!(
        plan.secrets,
        vec![
            Secret {
                name: "PIN".into(),
                source: SecretSource::File("pin.txt".into())
            },
            Secret {
                name: "TOKEN".into(),
                source: SecretSource::Env("MY_TOKEN".into())
            },
        ]
    );
    assert_eq!(from_value(&plan.to_json()).expect("again"), plan);
    assert!(
        plan.vars.is_empty(),
        "secrets are not vars: their values are not in the plan"
    );
}

#[test]
fn bad_secrets_are_named() {
    let errors = from_value(&plan_with(
        serde_json::json!({"A": {"env": ""}, "B": "x", "C": {"env": "V", "file": "f"}}),
        "x",
    ))
    .expect_err("invalid");
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["secrets.A", "secrets.B", "secrets.C"]);
    let errors = from_value(&plan_with(serde_json::json!({}), "Bearer ${NOPE}"))
        .expect_err("unknown variable");
    assert!(errors.to_string().contains("${NOPE}"), "{errors}");
}

#[test]
fn values_resolve_from_env_and_files_naming_the_missing_one() {
    let secrets = vec![
        Secret {
            name: "A".into(),
            source: SecretSource::Env("VA".into()),
        },
        Secret {
            name: "B".into(),
            source: SecretSource::File("b.txt".into()),
        },
    ];
    let env = |v: &str| (v == "VA").then(|| "alpha".to_string());
    let read = |f: &str| match f {
        "b.txt" => Ok("beta\n".to_string()),
        _ => Err("no such file".to_string()),
    };
    let values = resolve(&secrets, env, read).expect("resolved");
    assert_eq!(values["A"], "alpha");
    assert_eq!(values["B"], "beta", "the final newline is not part of it");
    let missing = resolve(&secrets, |_| None, read).expect_err("missing");
    assert_eq!(missing.path, "secrets.A");
    assert!(!missing.message.contains("alpha"));
}

#[test]
fn credential_headers_and_values_are_masked() {
    let mut json = plan_with(serde_json::json!({}), "Bearer s3cr3t");
    json["scenario"][0]["headers"]["cookie"] = "sid=abc".into();
    let plan = from_value(&json).expect("valid");
    redact_plan_json(&mut json);
    let headers = &json["scenario"][0]["headers"];
    assert_eq!(headers["Authorization"], MASK);
    assert_eq!(headers["cookie"], MASK);
    assert_eq!(headers["X-Trace"], "t", "other headers stay");
    let headers = plan.scenario.iter().flat_map(|s| match s {
        Step::Request(r) => r.headers.iter().collect::<Vec<_>>(),
        _ => Vec::new(),
    });
    let r = Redactor::new(["alpha"]).with_headers(headers);
    assert_eq!(
        r.redact("sent Bearer s3cr3t and alpha, cookie sid=abc"),
        "sent *** and ***, cookie ***"
    );
    assert_eq!(Redactor::new([""]).redact("text"), "text");
}

#[test]
fn references_stay_in_the_stored_plan_literals_are_masked_at_any_depth() {
    let mut json = serde_json::json!({
        "scenario": [
            {"get": "/", "headers": {"Authorization": "Bearer ${TOKEN}", "Cookie": "sid=${S}; lang=${L}"}},
            {"group": "g", "steps": [{"get": "/n", "headers": {"X-Api-Key": "literal-key-5"}}]},
        ],
        "scenarios": [{"scenario": [{"get": "/", "headers": {"authorization": "Bearer x${T}"}}]}],
    });
    assert!(!has_masked_headers(&json));
    redact_plan_json(&mut json);
    assert_eq!(
        json["scenario"][0]["headers"]["Authorization"],
        "Bearer ${TOKEN}"
    );
    assert_eq!(
        json["scenario"][0]["headers"]["Cookie"],
        "sid=${S}; lang=${L}"
    );
    assert_eq!(
        json["scenario"][1]["steps"][0]["headers"]["X-Api-Key"],
        MASK
    );
    assert_eq!(
        json["scenarios"][0]["scenario"][0]["headers"]["authorization"], MASK,
        "a literal glued to a reference is a literal"
    );
    assert!(has_masked_headers(&json));
    for (value, only) in [
        ("${A}", true),
        ("Basic ${A}", true),
        ("token=${A}", true),
        ("Bearer abc", false),
        ("Bearer abc ${A}", false),
        ("${A", false),
        ("", false),
    ] {
        assert_eq!(is_reference_only(value), only, "{value}");
    }
}
