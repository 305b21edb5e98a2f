//! A plan's `setup`/`teardown` run by [`run_once`] against a loopback server that counts what it
//! receives: extracted variables come back, the first failing step stops the phase and is named,
//! and a phase over its time limit counts its request in flight as aborted.

use super::{run_once, OnceSpec};
use crate::recorder::FrameIdentity;
use herd_protocol::clock::Clock;
use herd_protocol::plan::{from_yaml_str, OncePhase};
use herd_protocol::{AgentId, RunId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Seen = Arc<Mutex<BTreeMap<String, u64>>>;

/// Answers `/login` with a token, `/bad` with 500, `/slow` after 5 s, anything else 200; counts
/// requests by path (query included). One request per connection (`connection: close`).
async fn target() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Seen = Arc::default();
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counts = Arc::clone(&counts);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split(' ').nth(1).unwrap_or("?").to_string();
                *counts
                    .lock()
                    .expect("lock")
                    .entry(path.clone())
                    .or_default() += 1;
                let (status, body) = match path.as_str() {
                    "/login" => ("200 OK", r#"{"token":"t-42"}"#),
                    "/bad" => ("500 Internal Server Error", "no"),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        ("200 OK", "late")
                    }
                    _ => ("200 OK", "ok"),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

async fn setup(target: &str, steps: &str, timeout: Duration) -> super::OnceOutcome {
    let plan = from_yaml_str(&format!(
        "version: 1\nname: once\ntarget: {target}\nload: {{ vus: 1, duration: 1s }}\n\
         scenario: [{{ get: / }}]\nsetup: {steps}\n"
    ))
    .expect("valid plan");
    let spec = OnceSpec {
        plan: plan.phase_plan(OncePhase::Setup).expect("setup"),
        phase: OncePhase::Setup,
        timeout,
        clock: Clock::new(),
        identity: FrameIdentity {
            run: RunId::new("r").expect("id"),
            agent: AgentId::numbered(0),
        },
    };
    run_once(spec).await.expect("compiles")
}

#[tokio::test(flavor = "current_thread")]
async fn setup_hands_back_what_it_extracted() {
    let (url, seen) = target().await;
    let steps = r#"[{ name: login, post: /login, checks: { status: 200 },
                      extract: { token: { json: "$.token" } } },
                    { get: "/use?t=${token}" }]"#;
    let done = setup(&url, steps, Duration::from_secs(10)).await;
    assert_eq!(done.result.error, None, "{:?}", done.result);
    assert_eq!(done.vars, BTreeMap::from([("token".into(), "t-42".into())]));
    assert_eq!(done.result.vars, ["token"]);
    assert_eq!(done.result.requests, 2);
    assert_eq!(done.result.checks.passed, 2);
    assert_eq!(done.result.steps["login"].requests, 1);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen["/login"], 1);
    assert_eq!(
        seen["/use?t=t-42"], 1,
        "the next step used the token: {seen:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_first_failing_step_ends_setup_and_is_named() {
    let (url, seen) = target().await;
    let steps = r#"[{ get: /ok }, { group: g, steps: [{ get: /bad }] }, { get: /never }]"#;
    let done = setup(&url, steps, Duration::from_secs(10)).await;
    assert_eq!(
        done.result.error.as_deref(),
        Some("setup[1] (GET /bad): error response status 500")
    );
    assert!(done.vars.is_empty());
    assert_eq!((done.result.requests, done.result.errors), (2, 1));
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen.get("/never"),
        None,
        "nothing after the failure: {seen:?}"
    );
    assert_eq!(seen["/bad"], 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_setup_over_its_time_limit_counts_its_request_in_flight_as_aborted() {
    let (url, seen) = target().await;
    let done = setup(&url, "[{ get: /slow }]", Duration::from_millis(300)).await;
    assert_eq!(
        done.result.error.as_deref(),
        Some("setup did not finish within 0.3 s (it was at setup[0])")
    );
    assert_eq!(
        done.result.requests, 1,
        "the target got it: {:?}",
        done.result
    );
    assert_eq!(done.result.steps["GET /slow"].error_kinds["aborted"], 1);
    assert_eq!(seen.lock().expect("lock").get("/slow"), Some(&1));
}
