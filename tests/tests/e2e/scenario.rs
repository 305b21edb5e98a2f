//! End-to-end: scenarios as users write them — a token extracted and reused, CSV rows split
//! between agents, checks that fail without being errors — run by `herd run` with real agent
//! processes against a target that checks what it receives.

use herd_e2e::scenario::ScenarioTarget;
use herd_e2e::{run_plan, write_file, Herd};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

/// Runs `herd run` on `plan` (written into `dir`), expecting exit code 0; returns the summary.
fn run(dir: &Path, plan: &str) -> Value {
    let (out, summary) = run_plan(dir, plan, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    summary
}

fn output(out: &Output) -> String {
    format!(
        "stderr:\n{}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

#[test]
fn a_token_extracted_at_login_is_reused_and_the_target_verifies_it() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // 60 iterations in all, shared by 6 VUs on 2 agents; each logs in as its own user, reads the
    // token from the JSON answer, and calls /me with it.
    let plan = format!(
        r#"
version: 1
name: login-flow
target: {}
agents: 2
load: {{ vus: 6, iterations: 60 }}
scenario:
  - name: login
    post: /login
    headers: {{ content-type: application/json }}
    body: '{{"user": "vu-${{__vu}}"}}'
    extract:
      token: {{ json: "$.data.token" }}
    checks:
      status: 200
      json: {{ "$.data.user": "vu-${{__vu}}" }}
  - name: me
    get: /me
    headers: {{ authorization: "Bearer ${{token}}", x-user: "vu-${{__vu}}" }}
    checks: {{ status: 200, body_contains: '"ok":true' }}
"#,
        target.url()
    );
    let s = run(dir.path(), &plan);
    let seen = target.seen();

    assert_eq!(seen.me_bad, 0, "every /me carried its user's latest token");
    assert_eq!(seen.me_ok, 60);
    assert_eq!(seen.by_route["POST /login"], 60, "iterations: 60 in all");
    // Six distinct VUs (numbered 0..6 across both agents) logged in.
    let users: BTreeSet<&str> = seen.logins.keys().map(String::as_str).collect();
    assert_eq!(
        users,
        ["vu-0", "vu-1", "vu-2", "vu-3", "vu-4", "vu-5"].into()
    );

    assert_eq!(u(&s["requests"]), seen.total);
    assert_eq!(
        u(&s["steps"]["login"]["requests"]),
        seen.by_route["POST /login"]
    );
    assert_eq!(u(&s["steps"]["me"]["requests"]), seen.by_route["GET /me"]);
    assert_eq!(u(&s["errors"]), 0);
    // login: status, JSON value, extraction; me: status, body; all held.
    assert_eq!(u(&s["steps"]["login"]["checks"]["passed"]), 3 * 60);
    assert_eq!(u(&s["steps"]["me"]["checks"]["passed"]), 2 * 60);
    assert_eq!(u(&s["checks"]["failed"]), 0);
    let per_agent: Vec<u64> = s["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| u(&a["requests"]))
        .collect();
    assert_eq!(per_agent, [60, 60], "the iterations split exactly");
}

#[test]
fn csv_rows_are_each_used_by_exactly_one_agent() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let rows: Vec<String> = (0..10).map(|i| format!("row-{i}")).collect();
    write_file(
        dir.path(),
        "ids.csv",
        &format!("id,unused\n{}\n", rows.join(",x\n") + ",x"),
    );
    // 3 agents × 10 iterations each: every agent cycles through its own rows (4, 3 and 3 of them).
    let plan = format!(
        r#"
version: 1
name: rows
target: {}
agents: 3
load: {{ vus: 6, iterations: 30 }}
feeders:
  ids: {{ file: ids.csv, mode: shared }}
scenario:
  - name: row
    get: /row?v=${{id}}
    headers: {{ x-herd-agent: "${{__agent}}" }}
    checks: {{ status: 200 }}
"#,
        target.url()
    );
    let s = run(dir.path(), &plan);
    let seen = target.seen();

    let owners = seen.agents_per_row();
    assert_eq!(
        owners.keys().cloned().collect::<BTreeSet<_>>(),
        rows.iter().cloned().collect::<BTreeSet<_>>(),
        "every row was used"
    );
    for (value, agents) in &owners {
        assert_eq!(agents.len(), 1, "{value} was sent by {agents:?}");
        // Row k belongs to agent k mod 3.
        let k: u32 = value["row-".len()..].parse().expect("row number");
        let agent = agents.iter().next().expect("one agent");
        assert_eq!(agent, &(k % 3).to_string(), "{value}");
    }
    assert_eq!(u(&s["requests"]), seen.total);
    assert_eq!(seen.total, 30);
    assert_eq!(u(&s["checks"]["failed"]), 0);
}

#[test]
fn failed_checks_are_counted_per_step_and_are_not_transport_errors() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = format!(
        r#"
version: 1
name: checks
target: {}
agents: 2
load: {{ vus: 4, duration: 2s }}
scenario:
  - name: wrong_text
    get: /page
    checks: {{ status: 200, body_contains: "goodbye" }}
  - name: right_text
    get: /page
    checks: {{ body_contains: welcome }}
  - name: no_match
    get: /page
    extract:
      id: {{ regex: 'id=(\d+)' }}
  - think: 5ms
"#,
        target.url()
    );
    let s = run(dir.path(), &plan);
    let seen = target.seen();
    let step = |name: &str, field: &str| u(&s["steps"][name]["checks"][field]);
    let requests = |name: &str| u(&s["steps"][name]["requests"]);

    assert_eq!(u(&s["requests"]), seen.total);
    assert_eq!(seen.by_route["GET /page"], seen.total);
    assert!(requests("wrong_text") > 10, "{s}");
    // status passes, body_contains fails, on every response of the step.
    assert_eq!(step("wrong_text", "failed"), requests("wrong_text"));
    assert_eq!(step("wrong_text", "passed"), requests("wrong_text"));
    assert_eq!(step("right_text", "failed"), 0);
    assert_eq!(step("right_text", "passed"), requests("right_text"));
    // An extraction that finds nothing is a failed check of its step.
    assert_eq!(step("no_match", "failed"), requests("no_match"));
    assert_eq!(
        u(&s["checks"]["failed"]),
        requests("wrong_text") + requests("no_match")
    );
    // None of it is an error.
    assert_eq!(u(&s["errors"]), 0);
    assert_eq!(s["error_kinds"], serde_json::json!({}));
    for name in ["wrong_text", "right_text", "no_match"] {
        assert_eq!(u(&s["steps"][name]["errors"]), 0, "{name}");
        assert_eq!(s["steps"][name]["error_kinds"], serde_json::json!({}));
    }
    assert_eq!(u(&s["status_codes"]["200"]), seen.total);
}

#[test]
fn scenario_mistakes_are_named_before_any_load() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(dir.path(), "two.csv", "user\nann\nbob\n");
    let plan = format!(
        r#"
version: 1
name: broken
target: {}
agents: 3
load: {{ vus: 3, duration: 1s }}
feeders:
  users: {{ file: two.csv }}
  missing: {{ file: nowhere.csv }}
scenario:
  - get: /u/${{user}}
    headers: {{ authorization: "Bearer ${{tokn}}" }}
"#,
        target.url()
    );
    let plan = write_file(dir.path(), "plan.yaml", &plan);
    let out = Herd::new(["validate", plan.to_str().expect("utf8")], dir.path())
        .run(Duration::from_secs(20));
    let text = output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("feeders.missing.file: nowhere.csv:"),
        "{text}"
    );
    // With the file there, every other problem is named at once.
    let fixed = std::fs::read_to_string(&plan)
        .expect("plan")
        .replace("  missing: { file: nowhere.csv }\n", "");
    let plan = write_file(dir.path(), "plan.yaml", &fixed);
    let out = Herd::new(["validate", plan.to_str().expect("utf8")], dir.path())
        .run(Duration::from_secs(20));
    let text = output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    for expected in [
        "scenario[0].headers.authorization: unknown variable ${tokn}",
        // Rows are split between agents: two rows cannot feed three.
        "feeders.users: has 2 rows but the run has 3 agents",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
    assert_eq!(target.seen().total, 0, "no load was sent");
}

#[test]
fn the_example_scenario_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenario.yaml");
    let out = Herd::new(["validate", example.to_str().expect("utf8")], dir.path())
        .run(Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
}

#[test]
fn checks_and_extractions_read_gzip_bodies_decoded() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // The plan asks for gzip as a browser would; the target answers /compressed gzip-encoded.
    // The JSON check and the extraction must see the decoded document, and the token must reach
    // the next request.
    let plan = format!(
        r#"
version: 1
name: gzip
target: {}
agents: 1
load: {{ vus: 2, iterations: 20 }}
scenario:
  - name: compressed
    get: /compressed
    headers: {{ accept-encoding: "gzip, deflate" }}
    extract:
      token: {{ json: "$.data.token" }}
    checks:
      status: 200
      json: {{ "$.data.ok": true }}
      body_contains: '"token":"gz-'
  - name: use
    get: /row?v=${{token}}
"#,
        target.url()
    );
    let s = run(dir.path(), &plan);
    let seen = target.seen();
    assert_eq!(
        seen.by_route["GET /compressed gzip=true"], 20,
        "{:?}",
        seen.by_route
    );
    assert_eq!(
        u(&s["steps"]["compressed"]["checks"]["passed"]),
        4 * 20,
        "3 checks and 1 extraction"
    );
    assert_eq!(u(&s["checks"]["failed"]), 0);
    let tokens: BTreeSet<&String> = seen.rows.keys().collect();
    assert_eq!(
        tokens.len(),
        20,
        "each iteration used the token it extracted: {tokens:?}"
    );
    assert!(tokens.iter().all(|t| t.starts_with("gz-")), "{tokens:?}");
    assert_eq!(u(&s["requests"]), seen.total);
}
