//! End-to-end: `herd run` against an https target with a self-signed certificate, HTTP/2 chosen
//! by ALPN, and a request body read from a file beside the plan by the coordinator and shipped
//! to the agents inside the plan.

use herd_e2e::https::HttpsTarget;
use herd_e2e::{run_plan, write_file, Herd};
use hyper::Version;
use std::path::Path;
use std::time::Duration;

fn plan(target: &str, options: &str) -> String {
    format!(
        r#"
version: 1
name: https
target: {target}
agents: 2
load:
  stages:
    - {{ duration: 10ms, vus: 4 }}
    - {{ duration: 30s, vus: 4 }}
  iterations_per_vu: 10
scenario:
  - name: upload
    put: /upload
    body_file: data/payload.bin
thresholds:
  - "error_rate < 1%"
options: {options}
"#
    )
}

fn run(dir: &Path, plan_text: &str) -> (Option<i32>, serde_json::Value, String) {
    let (out, summary) = run_plan(dir, plan_text, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code(), summary, stderr)
}

#[test]
fn an_https_target_over_http2_gets_the_body_file_and_every_count_matches() {
    let target = HttpsTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    let payload: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    std::fs::write(dir.path().join("data/payload.bin"), &payload).expect("write payload");

    let (code, s, stderr) = run(
        dir.path(),
        &plan(&target.url(), "{ insecure_tls: true, timeout: 5s }"),
    );
    assert_eq!(code, Some(0), "{s}\n{stderr}");
    let received = target.received();
    // 4 VUs (2 per agent) × 10 iterations.
    assert_eq!(s["requests"], 40);
    assert_eq!(received.len(), 40);
    assert_eq!(s["errors"], 0);
    assert!(received
        .iter()
        .all(|r| r.version == Version::HTTP_2 && r.route == "PUT /upload" && r.body == payload));
}

#[test]
fn a_certificate_that_is_not_trusted_fails_every_request_as_tls() {
    let target = HttpsTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    std::fs::write(dir.path().join("data/payload.bin"), b"x").expect("write payload");

    let (code, s, stderr) = run(dir.path(), &plan(&target.url(), "{ timeout: 5s }"));
    assert_eq!(
        code,
        Some(1),
        "the error-rate threshold fails: {s}\n{stderr}"
    );
    assert_eq!(s["requests"], 40);
    assert_eq!(s["errors"], 40);
    assert_eq!(s["error_kinds"]["tls"], 40, "{}", s["error_kinds"]);
    assert!(target.received().is_empty(), "no request got through");
    assert!(target.handshakes_failed() >= 1);
}

#[test]
fn a_body_file_that_cannot_be_read_is_named_before_any_load() {
    let target = HttpsTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_file(dir.path(), "plan.yaml", &plan(&target.url(), "{}"));
    let out = Herd::new(["validate", plan.to_str().expect("utf8")], dir.path())
        .run(Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("scenario[0].body_file: data/payload.bin: No such file"),
        "{stderr}"
    );
}
