//! End-to-end: a plan's `setup` and `teardown`, run once per run by one agent, with real agent
//! processes against a target that checks the token each request carries and counts every
//! request by path, so each phase's figures are checked against the target's own count.

use herd_e2e::scenario::ScenarioTarget;
use herd_e2e::{read_summary, write_file, Herd};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

/// `herd run` of `plan` in `dir` with info logs; its output and summary.
fn run(dir: &Path, plan: &str) -> (Output, Value) {
    let plan = write_file(dir, "plan.yaml", plan);
    let json = dir.join("summary.json");
    let out = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "--json",
            json.to_str().expect("utf8"),
        ],
        dir,
    )
    .env("RUST_LOG", "info")
    .run(Duration::from_secs(90));
    let text = format!(
        "stderr:\n{}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(json.exists(), "no summary; {text}");
    (out, read_summary(&json))
}

fn all_output(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// Setup logs in once; 4 VUs on 2 agents call `/me` with setup's token; teardown logs out.
fn login_plan(target: &str, setup_status: u16, thresholds: &str) -> String {
    format!(
        r#"
version: 1
name: setup-login
target: {target}
agents: 2
load: {{ vus: 4, duration: 2s }}
setup:
  - name: login
    post: /login
    json: {{ user: setup }}
    checks: {{ status: {setup_status} }}
    extract: {{ token: {{ json: "$.data.token" }} }}
scenario:
  - name: me
    get: /me
    headers: {{ authorization: "Bearer ${{token}}", x-user: setup }}
    checks: {{ status: 200 }}
  - think: 20ms
teardown:
  - name: logout
    post: /logout
    headers: {{ authorization: "Bearer ${{token}}", x-user: setup }}
    checks: {{ status: 200 }}
thresholds: {thresholds}
"#
    )
}

#[test]
fn setup_logs_in_once_every_vu_uses_its_token_and_teardown_logs_out_once() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = login_plan(&target.url(), 200, "[]");

    let validate = Herd::new(
        [
            "validate",
            write_file(dir.path(), "v.yaml", &plan)
                .to_str()
                .expect("utf8"),
        ],
        dir.path(),
    )
    .run(Duration::from_secs(20));
    let listed = String::from_utf8_lossy(&validate.stdout);
    assert!(
        listed.contains("setup: 1 step (login), timeout 60s; every VU starts with token")
            && listed.contains("teardown: 1 step (logout), timeout 60s"),
        "{listed}"
    );

    let (out, s) = run(dir.path(), &plan);
    let seen = target.seen();
    assert_eq!(out.status.code(), Some(0), "{s}\n{}", all_output(&out));

    // Once per run, whatever the number of agents.
    assert_eq!(seen.by_route["POST /login"], 1);
    assert_eq!(seen.by_route["POST /logout"], 1);
    assert_eq!(seen.logouts, 1, "teardown carried setup's token");
    // Every load request carried the token setup got: all of them, on both agents.
    assert_eq!(seen.me_bad, 0);
    assert!(seen.me_ok > 20, "{seen:?}");
    assert_eq!(seen.me_ok, seen.by_route["GET /me"]);
    assert!(
        s["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .all(|a| u(&a["requests"]) > 0),
        "both agents loaded: {}",
        s["agents"]
    );

    // The load's figures are the load's; each phase's are its own; together, the target's.
    assert_eq!(u(&s["requests"]), seen.by_route["GET /me"]);
    assert_eq!(u(&s["steps"]["me"]["requests"]), seen.by_route["GET /me"]);
    assert!(s["steps"].get("login").is_none() && s["steps"].get("logout").is_none());
    let setup = &s["setup"];
    assert_eq!(
        u(&setup["requests"]),
        seen.by_route["POST /login"],
        "{setup}"
    );
    assert_eq!(u(&setup["steps"]["login"]["requests"]), 1, "{setup}");
    assert_eq!(u(&setup["errors"]), 0);
    // The status check and the extraction.
    assert_eq!(u(&setup["checks"]["passed"]), 2, "{setup}");
    assert_eq!(setup["vars"], serde_json::json!(["token"]));
    assert_eq!(setup["agent"], "agent-0");
    assert!(setup.get("error").is_none(), "{setup}");
    let teardown = &s["teardown"];
    assert_eq!(
        u(&teardown["requests"]),
        seen.by_route["POST /logout"],
        "{teardown}"
    );
    assert_eq!(u(&teardown["checks"]["passed"]), 1, "{teardown}");
    assert!(teardown.get("error").is_none(), "{teardown}");
    assert_eq!(
        u(&s["requests"]) + u(&setup["requests"]) + u(&teardown["requests"]),
        seen.total
    );
    // The table shows both phases.
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("setup       1 requests, 0 errors"),
        "{table}"
    );
    assert!(
        table.contains("teardown    1 requests, 0 errors"),
        "{table}"
    );

    // The token never shows: not in logs, not in the summary.
    let token = seen
        .logins
        .get("setup")
        .map(|_| "tok-1-setup")
        .expect("setup logged in");
    assert!(!all_output(&out).contains(token), "{}", all_output(&out));
    assert!(!s.to_string().contains(token));
}

#[test]
fn a_failed_setup_check_fails_the_run_before_any_load_and_names_the_step() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // The target answers 200; setup wants 201.
    let (out, s) = run(dir.path(), &login_plan(&target.url(), 201, "[]"));
    let seen = target.seen();

    assert_eq!(out.status.code(), Some(3), "{s}\n{}", all_output(&out));
    assert_eq!(s["run_state"], "failed");
    let reason = s["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("setup failed: setup[0] (login): 1 of 2 checks failed"),
        "{reason}"
    );
    // Setup's one request, and no load; teardown did not run (there was nothing to undo).
    assert_eq!(seen.by_route.get("POST /login"), Some(&1));
    assert_eq!(seen.by_route.get("GET /me"), None);
    assert_eq!(seen.by_route.get("POST /logout"), None);
    assert_eq!(seen.total, 1);
    assert_eq!(u(&s["requests"]), 0);
    assert_eq!(u(&s["setup"]["requests"]), 1);
    assert_eq!(u(&s["setup"]["checks"]["failed"]), 1, "{}", s["setup"]);
    assert_eq!(s["teardown"]["error"], "not run");
}

#[test]
fn teardown_runs_after_a_run_whose_thresholds_failed() {
    let target = ScenarioTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Every request fails this threshold; the load's results stand, and teardown still runs.
    let (out, s) = run(
        dir.path(),
        &login_plan(&target.url(), 200, r#"["error_rate > 50%"]"#),
    );
    let seen = target.seen();
    assert_eq!(out.status.code(), Some(1), "{s}\n{}", all_output(&out));
    assert_eq!(seen.by_route["POST /logout"], 1);
    assert_eq!(seen.logouts, 1);
    assert_eq!(u(&s["teardown"]["requests"]), 1);
    assert_eq!(u(&s["requests"]), seen.by_route["GET /me"]);
}
