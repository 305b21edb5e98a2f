//! Fuzzed input on every intake the protocol owns: plans (YAML and JSON), commands to the
//! coordinator, commands to agents, agents' status messages and frames.
//!
//! Each property runs 10,000 cases (a few seconds in all): random text, random JSON, and — the
//! cases that find real bugs — valid messages with one part replaced, removed or added. The rules:
//! nothing panics, and every refusal says what is wrong (a plan error names a field or the whole
//! document, with a non-empty message). A crashing input found here becomes a regression test.

use crate::agent::{AgentCommandMessage, StatusMessage};
use crate::command::CommandMessage;
use crate::frame::Frame;
use crate::plan;
use crate::wire;
use proptest::prelude::*;
use serde_json::{json, Value};

const CASES: u32 = 10_000;

/// Any JSON value, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        "[0-9]{1,4}(ms|s|m|h|us|%)".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One change to a document: at the `n`-th place (modulo their count), `0` replaces the value,
/// `1` removes it, `2` adds an unknown key beside it.
type Edit = (usize, u8, Value);

fn arb_edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec((any::<usize>(), 0u8..3, arb_json()), 1..4)
}

/// Every place in `v`: a path of object keys and array indices.
fn places(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                at.push(k.clone());
                out.push(at.clone());
                places(child, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                at.push(i.to_string());
                out.push(at.clone());
                places(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn mutate(base: &Value, edits: &[Edit]) -> Value {
    let mut doc = base.clone();
    for (n, action, value) in edits {
        let mut all = Vec::new();
        places(&doc, &mut Vec::new(), &mut all);
        let Some(path) = all.get(n % all.len().max(1)).cloned() else {
            return value.clone();
        };
        let (last, parent) = path.split_last().expect("a place has a key");
        let mut node = &mut doc;
        for key in parent {
            node = match node {
                Value::Object(m) => m.get_mut(key).expect("place exists"),
                Value::Array(a) => &mut a[key.parse::<usize>().expect("index")],
                _ => unreachable!("places are inside containers"),
            };
        }
        match (node, action) {
            (Value::Object(m), 0) => {
                m.insert(last.clone(), value.clone());
            }
            (Value::Object(m), 1) => {
                m.remove(last);
            }
            (Value::Object(m), _) => {
                m.insert(format!("{last}_fuzz"), value.clone());
            }
            (Value::Array(a), 0) => a[last.parse::<usize>().expect("index")] = value.clone(),
            (Value::Array(a), 1) => {
                a.remove(last.parse::<usize>().expect("index"));
            }
            (Value::Array(a), _) => a.push(value.clone()),
            _ => {}
        }
    }
    doc
}

/// A plan exercising most of the format: stages, scenario steps with checks, extraction and
/// templates, vars, a feeder, thresholds, options.
fn base_plan() -> Value {
    json!({
        "version": 1, "name": "fuzz", "target": "http://127.0.0.1:8080", "agents": 3,
        "load": {"stages": [{"duration": "2s", "vus": 20}, {"duration": "8s", "vus": 20}], "iterations_per_vu": 5},
        "vars": {"page": 1},
        "feeders": {"users": {"rows": [["user"], ["alice"], ["bob"], ["carol"]], "mode": "shared"}},
        "scenario": [
            {"name": "login", "post": "/login", "headers": {"content-type": "application/json"},
             "json": {"user": "${user}"}, "extract": {"token": {"json": "$.token"}},
             "checks": {"status": 200, "max_latency": "500ms", "body_contains": "ok"}},
            {"think": "100ms..300ms"},
            {"get": "/items?page=${page}", "headers": {"authorization": "Bearer ${token}"}}
        ],
        "thresholds": ["p99 < 1s", "error_rate < 1%"],
        "options": {"timeout": "30s", "http": "auto", "redirects": 10}
    })
}

/// A plan refusal must say what is wrong.
fn check_plan(result: Result<plan::Plan, plan::PlanErrors>) -> Result<(), TestCaseError> {
    if let Err(errors) = result {
        prop_assert!(!errors.0.is_empty(), "a refusal without an error");
        for e in &errors.0 {
            prop_assert!(
                !e.message.trim().is_empty(),
                "an error without a message: {e:?}"
            );
        }
    }
    Ok(())
}

fn base_frame() -> Value {
    json!({
        "version": 1, "run": "run-1", "agent": "agent-0", "seq": 3, "second": 1_700_000_000u64,
        "final": false, "vus": 5,
        "total": {"requests": 10, "errors": 1, "status_codes": {"200": 9, "500": 1},
                  "error_kinds": {"http_5xx": 1}, "checks": {"passed": 9, "failed": 1}},
        "steps": {"login": {"requests": 10, "errors": 1}},
        "dropped": 0, "health": {"cpu_percent": 12.5, "loop_lag_ms": 0.4, "in_flight": 2}
    })
}

fn base_command() -> Value {
    json!({"version": 1, "id": "ci-42", "type": "start_run", "test_id": "smoke"})
}

fn base_agent_command() -> Value {
    json!({"version": 1, "run": "run-1", "type": "start", "plan": base_plan(),
           "assignments": {"agent-0": 0, "agent-1": 1}, "agent_count": 2, "start_at_ms": 1_700_000_000_000u64})
}

fn base_status() -> Value {
    json!({"version": 1, "agent": "agent-0", "type": "finished", "frames": 10, "requests": 100})
}

/// A refusal of the versioned envelope must say something.
fn check_wire<T>(result: Result<T, wire::WireError>) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(!e.to_string().trim().is_empty());
    }
    Ok(())
}

#[test]
fn the_bases_are_valid() {
    if let Err(e) = plan::from_value(&base_plan()) {
        panic!("{e}");
    }
    let bytes = |v: Value| v.to_string().into_bytes();
    assert!(wire::decode::<Frame>(&bytes(base_frame())).is_ok());
    assert!(wire::decode::<CommandMessage>(&bytes(base_command())).is_ok());
    assert!(wire::decode::<AgentCommandMessage>(&bytes(base_agent_command())).is_ok());
    assert!(wire::decode::<StatusMessage>(&bytes(base_status())).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn plans_with_a_part_changed_are_parsed_or_refused_by_field(edits in arb_edits()) {
        let doc = mutate(&base_plan(), &edits);
        check_plan(plan::from_value(&doc))?;
        check_plan(plan::from_json_str(&doc.to_string()))?;
    }

    #[test]
    fn any_json_is_a_plan_or_a_named_refusal(doc in arb_json()) {
        check_plan(plan::from_value(&doc))?;
    }

    #[test]
    fn yaml_text_is_a_plan_or_a_named_refusal(text in "(\\PC|\n){0,200}") {
        check_plan(plan::from_yaml_str(&text))?;
    }

    #[test]
    fn yaml_with_a_line_changed_is_a_plan_or_a_named_refusal(line in 0usize..40, text in "\\PC{0,40}") {
        let yaml = serde_yaml::to_string(&base_plan()).expect("yaml");
        let mut lines: Vec<&str> = yaml.lines().collect();
        let at = line % lines.len();
        lines[at] = &text;
        check_plan(plan::from_yaml_str(&lines.join("\n")))?;
    }

    #[test]
    fn messages_with_a_part_changed_decode_or_are_refused(edits in arb_edits()) {
        let enc = |v: Value| v.to_string().into_bytes();
        check_wire(wire::decode::<Frame>(&enc(mutate(&base_frame(), &edits))))?;
        check_wire(wire::decode::<CommandMessage>(&enc(mutate(&base_command(), &edits))))?;
        check_wire(wire::decode::<AgentCommandMessage>(&enc(mutate(&base_agent_command(), &edits))))?;
        check_wire(wire::decode::<StatusMessage>(&enc(mutate(&base_status(), &edits))))?;
    }

    #[test]
    fn any_bytes_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_wire(wire::decode::<Frame>(&bytes))?;
        check_wire(wire::decode::<CommandMessage>(&bytes))?;
        check_wire(wire::decode::<AgentCommandMessage>(&bytes))?;
        check_wire(wire::decode::<StatusMessage>(&bytes))?;
    }
}
