//! End-to-end: the script hook (`scripts: FILE`, `script: NAME`) run by `herd run` with real agent
//! processes — a login whose signature only a script can compute passes the target's check, a
//! script's own requests are counted like the plan's (herd's counts equal the target's), and a
//! script that never ends is stopped by its time limit, counted as a failed check, while the run
//! goes on.

use herd_e2e::nonce::{NonceTarget, SECRET};
use herd_e2e::{run_plan, write_file};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a count, got {v}"))
}

fn output(out: &Output) -> String {
    format!(
        "stderr:\n{}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

const AUTH: &str = r#"
// The nonce is the body of the last response (the plan's GET /nonce).
fn sign() {
    this.vars.sig = hex(hmac_sha256(this.vars.secret, this.response.body));
    this.state.signed = (this.state.signed ?? 0) + 1;
    this.response.status == 200
}

// The whole flow from the script, through herd's client.
fn relogin() {
    let user = "s-" + this.vars.__vu;
    let n = request(#{ path: "/nonce?user=" + user });
    let sig = hex(hmac_sha256(this.vars.secret, n.body));
    let r = request(#{ method: "POST", path: "/login", headers: #{ "x-user": user, "x-signature": sig } });
    r.status == 200 && this.state.signed >= 1
}
"#;

#[test]
fn a_signature_computed_in_a_script_passes_the_targets_check_and_every_request_is_counted() {
    let target = NonceTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(dir.path(), "auth.rhai", AUTH);
    // 40 iterations on 2 agents, 4 VUs: each logs in twice, once with a signature the plan
    // sends after a script computed it, once entirely from a script.
    let plan = format!(
        r#"
version: 1
name: script-login
target: {}
agents: 2
load: {{ vus: 4, iterations: 40 }}
vars: {{ secret: "{SECRET}", sig: "" }}
scripts: auth.rhai
scenario:
  - name: nonce
    get: /nonce?user=vu-${{__vu}}
  - name: sign
    script: sign
  - name: login
    post: /login
    headers: {{ x-user: "vu-${{__vu}}", x-signature: "${{sig}}" }}
    checks: {{ status: 200 }}
  - script: relogin
thresholds:
  - "checks > 99%"
"#,
        target.url()
    );
    let (out, s) = run_plan(dir.path(), &plan, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    let seen = target.seen();

    assert_eq!(seen.logins_bad, 0, "{seen:?}");
    assert_eq!(seen.logins_ok, 80, "{seen:?}");
    assert_eq!(seen.by_route["GET /nonce"], 80);
    // herd's counts are the target's, the script's own requests included.
    assert_eq!(u(&s["requests"]), seen.total);
    assert_eq!(seen.total, 160);
    assert_eq!(u(&s["steps"]["nonce"]["requests"]), 40);
    assert_eq!(u(&s["steps"]["login"]["requests"]), 40);
    assert_eq!(u(&s["steps"]["script relogin"]["requests"]), 80);
    assert_eq!(u(&s["errors"]), 0);
    // Each script call is one check of its step; all held (login's status check: 40 more).
    // The summary lists per step only steps that sent requests: `sign` counts in the totals.
    assert_eq!(u(&s["steps"]["script relogin"]["checks"]["passed"]), 40);
    assert_eq!(u(&s["checks"]["passed"]), 120);
    assert_eq!(u(&s["checks"]["failed"]), 0);
}

#[test]
fn a_script_that_never_ends_is_stopped_counted_as_a_failed_check_and_the_run_goes_on() {
    let target = NonceTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(
        dir.path(),
        "spin.rhai",
        "fn spin() { let n = 0; loop { n += 1; } }\n",
    );
    let plan = format!(
        r#"
version: 1
name: runaway
target: {}
agents: 1
load: {{ vus: 2, iterations: 6 }}
scripts: {{ file: spin.rhai, call_timeout: 100ms }}
scenario:
  - script: spin
  - name: after
    get: /after
"#,
        target.url()
    );
    let (out, s) = run_plan(dir.path(), &plan, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    let seen = target.seen();

    // Every iteration went on past the stopped script.
    assert_eq!(seen.by_route["GET /after"], 6);
    assert_eq!(u(&s["requests"]), seen.total);
    // The summary lists per step only steps that sent requests: the calls count in the totals.
    assert_eq!(u(&s["checks"]["failed"]), 6);
    assert_eq!(u(&s["checks"]["passed"]), 0);
    assert_eq!(u(&s["errors"]), 0);
    // The message ("spin() in spin.rhai was stopped after computing for 100ms") goes to the
    // agent's log, which `herd run -q` does not print; the sandbox's unit test checks it.
}

#[test]
fn validate_names_the_script_file_and_line_of_a_syntax_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(dir.path(), "bad.rhai", "fn f() {\n  let = 1;\n}\n");
    let plan = write_file(
        dir.path(),
        "plan.yaml",
        "version: 1\nname: v\ntarget: http://127.0.0.1:1\nload: {vus: 1, duration: 1s}\n\
         scripts: bad.rhai\nscenario:\n  - script: f\n",
    );
    let out = herd_e2e::Herd::new(["validate", plan.to_str().expect("utf8")], dir.path())
        .run(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", output(&out));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(text.contains("scripts: bad.rhai line 2, column"), "{text}");
}
