//! The engine against real targets speaking TLS, HTTP/2 (by ALPN and by prior knowledge) and
//! redirects: herd's counts must equal what the target received, and the target confirms the
//! protocol version, the method and the body it saw.

mod common;

use common::plan_json;
use common::protocols::{ProtocolTarget, Seen, Speaks};
use herd_agent::engine::{run_load, LoadIo, LoadReport, LoadSpec};
use herd_agent::recorder::FrameIdentity;
use herd_protocol::clock::Clock;
use herd_protocol::frame::Frame;
use herd_protocol::plan::{self, Plan};
use herd_protocol::{AgentId, RunId};
use hyper::Version;
use std::cell::Cell;
use std::rc::Rc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Runs `plan` as the only agent; returns the report and every frame.
async fn run(plan: Plan) -> (LoadReport, Vec<Frame>) {
    let (_control, control_rx) = mpsc::unbounded_channel();
    let (frames_tx, mut frames_rx) = mpsc::unbounded_channel();
    let io = LoadIo {
        control: control_rx,
        frames: frames_tx,
        vus: Rc::new(Cell::new(0)),
    };
    let spec = LoadSpec {
        plan,
        agent_count: 1,
        agent_index: 0,
        start: Instant::now(),
        clock: Clock::new(),
        identity: FrameIdentity {
            run: RunId::new("run-http").expect("valid"),
            agent: AgentId::numbered(0),
        },
        joins_later: false,
    };
    let report = run_load(spec, io).await.expect("load runs");
    let mut frames = Vec::new();
    while let Ok(frame) = frames_rx.try_recv() {
        frames.push(frame);
    }
    let total: u64 = frames.iter().map(|f| f.total.requests).sum();
    assert_eq!(total, report.requests, "every request is in one frame");
    (report, frames)
}

/// `vus` VUs, each running the scenario `iterations` times.
fn plan_for(target: &str, vus: u32, iterations: u32, scenario: &str, options: &str) -> Plan {
    let mut json = plan_json(
        target,
        &format!("[{{duration: 10ms, vus: {vus}}}, {{duration: 20s, vus: {vus}}}]"),
        scenario,
        options,
    );
    json["load"]["iterations_per_vu"] = iterations.into();
    plan::from_value(&json).expect("valid plan")
}

fn sum(frames: &[Frame], pick: impl Fn(&Frame) -> u64) -> u64 {
    frames.iter().map(pick).sum()
}

fn status(frames: &[Frame], code: u16) -> u64 {
    sum(frames, |f| {
        f.total.status_codes.get(&code).copied().unwrap_or(0)
    })
}

fn kind(frames: &[Frame], kind: &str) -> u64 {
    sum(frames, |f| {
        f.total.error_kinds.get(kind).copied().unwrap_or(0)
    })
}

fn versions(seen: &[Seen]) -> Vec<Version> {
    let mut v: Vec<Version> = seen.iter().map(|s| s.version).collect();
    v.dedup();
    v
}

#[tokio::test(flavor = "current_thread")]
async fn a_self_signed_https_target_runs_with_insecure_tls() {
    let target = ProtocolTarget::start(Speaks::TlsHttp1).await;
    let plan = plan_for(&target.url, 4, 25, "[{get: /ok}]", "{insecure_tls: true}");
    let (report, frames) = run(plan).await;
    assert_eq!(report.requests, 100);
    assert_eq!(target.received(), 100);
    assert_eq!(status(&frames, 200), 100);
    assert_eq!(versions(&target.seen()), vec![Version::HTTP_11]);
    assert_eq!(target.tls_failures(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn without_insecure_tls_a_self_signed_certificate_fails_as_tls() {
    let target = ProtocolTarget::start(Speaks::TlsAlpn).await;
    let plan = plan_for(&target.url, 2, 5, "[{get: /ok}]", "{}");
    let (report, frames) = run(plan).await;
    assert_eq!(report.requests, 10, "each failed request is counted");
    assert_eq!(kind(&frames, "tls"), 10);
    assert_eq!(sum(&frames, |f| f.total.errors), 10);
    assert_eq!(target.received(), 0, "no HTTP request got through");
    assert!(target.tls_failures() >= 1);
}

#[tokio::test(flavor = "current_thread")]
async fn http2_is_chosen_by_alpn_over_tls_unless_the_plan_wants_http1() {
    let target = ProtocolTarget::start(Speaks::TlsAlpn).await;
    let plan = plan_for(&target.url, 3, 20, "[{get: /ok}]", "{insecure_tls: true}");
    let (report, frames) = run(plan).await;
    assert_eq!(report.requests, 60);
    assert_eq!(target.received(), 60);
    assert_eq!(status(&frames, 200), 60);
    assert_eq!(versions(&target.seen()), vec![Version::HTTP_2]);

    let plan = plan_for(
        &target.url,
        3,
        20,
        "[{get: /ok}]",
        "{insecure_tls: true, http: http1}",
    );
    let (report, _) = run(plan).await;
    assert_eq!(report.requests, 60);
    let seen = target.seen();
    assert_eq!(seen.len(), 120);
    assert_eq!(versions(&seen[60..]), vec![Version::HTTP_11]);
}

#[tokio::test(flavor = "current_thread")]
async fn h2c_speaks_http2_by_prior_knowledge() {
    let target = ProtocolTarget::start(Speaks::H2c).await;
    let plan = plan_for(
        &target.url,
        3,
        20,
        r#"[{post: /ok, json: {n: 1}}]"#,
        "{http: http2}",
    );
    let (report, frames) = run(plan).await;
    assert_eq!(report.requests, 60);
    assert_eq!(target.received(), 60);
    assert_eq!(status(&frames, 200), 60);
    let seen = target.seen();
    assert_eq!(versions(&seen), vec![Version::HTTP_2]);
    assert!(seen.iter().all(|s| s.method == "POST"
        && s.body == br#"{"n":1}"#
        && s.content_type.as_deref() == Some("application/json")));
}

#[tokio::test(flavor = "current_thread")]
async fn each_followed_redirect_is_a_request_of_the_step() {
    let target = ProtocolTarget::start(Speaks::Http1).await;
    // /redirect/3 → /redirect/2 → /redirect/1 → /ok: four requests per iteration.
    let plan = plan_for(&target.url, 2, 5, "[{name: chain, get: /redirect/3}]", "{}");
    let (report, frames) = run(plan).await;
    assert_eq!(report.requests, 40);
    assert_eq!(target.received(), 40);
    assert_eq!(status(&frames, 302), 30);
    assert_eq!(status(&frames, 200), 10);
    assert_eq!(
        sum(&frames, |f| f.steps.get("chain").map_or(0, |s| s.requests)),
        40
    );

    // A limit: the last redirect followed is the step's response.
    let plan = plan_for(&target.url, 2, 5, "[{get: /redirect/3}]", "{redirects: 1}");
    let (report, frames) = run(plan).await;
    assert_eq!(report.requests, 20);
    assert_eq!(status(&frames, 302), 20);
    assert_eq!(target.received(), 60);

    // None followed.
    let plan = plan_for(&target.url, 2, 5, "[{get: /redirect/3}]", "{redirects: 0}");
    let (report, frames) = run(plan).await;
    assert_eq!(report.requests, 10);
    assert_eq!(status(&frames, 302), 10);
    assert_eq!(target.received(), 70);
}

#[tokio::test(flavor = "current_thread")]
async fn redirects_change_method_and_body_as_k6_does_and_may_change_host() {
    let target = ProtocolTarget::start(Speaks::Http1).await;
    let other = ProtocolTarget::start(Speaks::Http1).await;
    let scenario = format!(
        r#"[{{post: /see-other, json: {{a: 1}}}}, {{post: /temporary, body: "b=2", headers: {{content-type: text/plain}}}}, {{get: "/away?to={}/ok"}}]"#,
        other.url
    );
    let plan = plan_for(&target.url, 1, 1, &scenario, "{}");
    let (report, frames) = run(plan).await;
    assert_eq!(report.requests, 6);
    assert_eq!(target.received() + other.received(), 6);
    assert_eq!(status(&frames, 200), 3);
    let seen: Vec<(String, String, Vec<u8>, Option<String>)> = target
        .seen()
        .into_iter()
        .map(|s| (s.method, s.path, s.body, s.content_type))
        .collect();
    let json = Some("application/json".to_string());
    let text = Some("text/plain".to_string());
    assert_eq!(
        seen,
        vec![
            (
                "POST".into(),
                "/see-other".into(),
                br#"{"a":1}"#.to_vec(),
                json
            ),
            // 303: a GET without the body or its content type.
            ("GET".into(), "/echo".into(), vec![], None),
            (
                "POST".into(),
                "/temporary".into(),
                b"b=2".to_vec(),
                text.clone()
            ),
            // 307: the same method and body.
            ("POST".into(), "/echo".into(), b"b=2".to_vec(), text),
            ("GET".into(), "/away".into(), vec![], None),
        ]
    );
    let there = other.seen();
    assert_eq!(there.len(), 1);
    assert_eq!(
        (there[0].method.as_str(), there[0].path.as_str()),
        ("GET", "/ok")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_body_file_is_sent_byte_for_byte() {
    let target = ProtocolTarget::start(Speaks::TlsAlpn).await;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let yaml = format!(
        "version: 1\nname: t\ntarget: {}\nload: {{stages: [{{duration: 10ms, vus: 2}}, {{duration: 20s, vus: 2}}], iterations_per_vu: 3}}\n\
         scenario: [{{put: /upload, body_file: payload.bin, headers: {{content-type: application/octet-stream}}}}]\n\
         options: {{insecure_tls: true}}\n",
        target.url
    );
    let plan =
        plan::from_yaml_str_with(&yaml, &OneFile("payload.bin", &bytes)).expect("valid plan");
    // As an agent gets it: through the plan's JSON.
    let plan = plan::from_value(&plan.to_json()).expect("valid JSON plan");
    let (report, frames) = run(plan).await;
    assert_eq!(report.requests, 6);
    assert_eq!(status(&frames, 200), 6);
    let seen = target.seen();
    assert_eq!(seen.len(), 6);
    assert!(seen
        .iter()
        .all(|s| s.method == "PUT" && s.body == bytes && s.version == Version::HTTP_2));
}

/// The one file a plan names, standing in for the coordinator's file system.
struct OneFile<'a>(&'static str, &'a [u8]);

impl plan::PlanFiles for OneFile<'_> {
    fn read(&self, path: &str, _limit: usize) -> Result<Vec<u8>, String> {
        assert_eq!(path, self.0);
        Ok(self.1.to_vec())
    }
}
