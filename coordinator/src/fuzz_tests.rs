//! Fuzzed input on the coordinator's own intakes: `herd.toml`, chat lines (SQS/SNS, AWS Chatbot),
//! SQS command bodies (raw or in an SNS envelope) and whatever arrives on an agent topic. (Plans, commands and frames as wire formats are fuzzed
//! in the protocol crate.)
//!
//! 10,000 cases each. The rules: nothing panics; every refusal names a key or a reason; and what
//! agents send can never change a run's totals unless it is a well-formed frame of that run (a
//! frame the aggregator refuses changes nothing).

use crate::aggregate::Aggregator;
use crate::bus::{decode_inbound, AgentInbound};
use crate::config::ServiceConfig;
use herd_protocol::frame::{Checks, Frame, Stats};
use herd_protocol::histogram::{new_latency, record_us, EncodedHistogram};
use herd_protocol::{topics, wire, AgentId, RunId};
use proptest::prelude::*;
use std::time::Duration;

const CASES: u32 = 10_000;

fn config_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("url"),
        Just("kind"),
        Just("region"),
        Just("listen"),
        Just("max_agents"),
        Just("sqs_queue_url"),
        Just("sns_topic_arn"),
        Just("format"),
        Just("commands_via"),
        Just("frames_via"),
        Just("ca_file"),
        Just("cluster"),
        Just("subnets"),
        Just("wait_time_s"),
        Just("version"),
    ];
    let value = prop_oneof![
        "\"[a-z0-9:/._-]{0,20}\"",
        "-?[0-9]{1,6}",
        Just("true".to_string()),
        Just("[\"a\", \"b\"]".to_string()),
        Just("\"mqtts://[::1]:8883\"".to_string()),
        Just("\"dynamodb\"".to_string()),
        Just("\"ecs\"".to_string()),
        Just("\"iot-data\"".to_string()),
        Just("\"sqs\"".to_string()),
    ];
    let section = prop_oneof![
        Just("[aws]"),
        Just("[api]"),
        Just("[commands]"),
        Just("[events]"),
        Just("[store]"),
        Just("[broker]"),
        Just("[launcher]"),
        Just("[nonsense]"),
    ];
    prop_oneof![
        section.prop_map(String::from),
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        "\\PC{0,30}",
    ]
}

/// Three agents' first frames (built once: encoding histograms is most of a case's cost).
fn first_frames() -> &'static (RunId, Vec<Frame>, serde_json::Value) {
    static FRAMES: std::sync::OnceLock<(RunId, Vec<Frame>, serde_json::Value)> =
        std::sync::OnceLock::new();
    FRAMES.get_or_init(|| {
        let run = RunId::new("run-1").expect("run id");
        let frames = (0..3)
            .map(|i| frame(&run, i, 0, 1_700_000_000, 10))
            .collect();
        let next = serde_json::to_value(frame(&run, 1, 1, 1_700_000_001, 5)).expect("json");
        (run, frames, next)
    })
}

/// A fresh aggregator that merged three agents' first frames.
fn aggregator_with_frames() -> (Aggregator, RunId) {
    let (run, frames, _) = first_frames();
    let agents: Vec<AgentId> = (0..3).map(AgentId::numbered).collect();
    let mut agg = Aggregator::new(run.clone(), agents, Duration::from_secs(2));
    for frame in frames {
        agg.ingest(frame).expect("a valid frame");
    }
    (agg, run.clone())
}

fn frame(run: &RunId, agent: u32, seq: u64, second: u64, requests: u64) -> Frame {
    let mut h = new_latency();
    for us in 1..=requests {
        record_us(&mut h, us * 1000);
    }
    let stats = Stats {
        requests,
        errors: 0,
        status_codes: [(200, requests)].into_iter().collect(),
        error_kinds: Default::default(),
        latency: EncodedHistogram::encode(&h),
        service_latency: EncodedHistogram::encode(&h),
        checks: Checks::default(),
    };
    Frame {
        version: 1,
        run: run.clone(),
        agent: AgentId::numbered(agent),
        seq,
        second,
        is_final: false,
        vus: 1,
        total: stats.clone(),
        steps: [("ok".to_string(), stats)].into_iter().collect(),
        dropped: 0,
        health: Default::default(),
        sent_ms: 0,
    }
}

/// Requests and errors, in all and per agent.
type Counts = (u64, u64, Vec<(AgentId, (u64, u64))>);

/// The totals a test can compare.
fn counts(agg: &Aggregator) -> Counts {
    let t = agg.totals();
    (
        t.all.requests,
        t.all.errors,
        t.per_agent.iter().map(|(a, c)| (a.clone(), *c)).collect(),
    )
}

#[test]
fn a_malformed_histogram_is_refused_and_counts_nothing() {
    let (mut agg, run) = aggregator_with_frames();
    let before = counts(&agg);
    let mut bad = frame(&run, 1, 1, 1_700_000_001, 5);
    bad.total.latency =
        serde_json::from_value(serde_json::json!("not a histogram")).unwrap_or_default();
    if agg.ingest(&bad).is_err() {
        assert_eq!(counts(&agg), before);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn herd_toml_is_read_or_refused_naming_the_key(lines in proptest::collection::vec(config_line(), 0..12)) {
        if let Err(errors) = ServiceConfig::from_toml(&lines.join("\n")) {
            prop_assert!(!errors.0.is_empty());
            for e in &errors.0 {
                prop_assert!(!e.key.is_empty() && !e.problem.trim().is_empty(), "{e:?}");
            }
        }
    }

    #[cfg(feature = "aws")]
    #[test]
    fn chat_lines_are_commands_or_named_refusals(
        words in proptest::collection::vec(prop_oneof![
            Just("run".to_string()), Just("stop".to_string()), Just("ramp".to_string()),
            Just("status".to_string()), Just("@herd".to_string()), Just("agents=4".to_string()),
            Just("duration=30s".to_string()), Just("vus=50".to_string()), Just("rps=x".to_string()),
            Just("for=5m".to_string()), Just("over=".to_string()), Just("concurrent".to_string()),
            "\\PC{0,12}",
        ], 0..6)
    ) {
        if let Err(e) = crate::aws::chat::parse(&words.join(" ")) {
            prop_assert!(!e.message.trim().is_empty(), "{e:?}");
        }
    }

    /// Whatever arrives on an agent topic — any bytes, or a real frame with a part changed — is
    /// decoded into a message for the run or a `Malformed` naming why, and a frame the aggregator
    /// refuses leaves the run's totals as they were.
    #[test]
    fn agent_messages_never_change_totals_unless_they_are_good_frames(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        field in 0usize..10,
        junk in prop_oneof![Just(serde_json::json!(null)), Just(serde_json::json!(-1)), Just(serde_json::json!("x")), Just(serde_json::json!({"a": 1})), Just(serde_json::json!(u64::MAX))],
        status_topic in any::<bool>(),
    ) {
        let run = first_frames().0.clone();
        let agent = AgentId::numbered(1);
        let topic = if status_topic { topics::status(&run, &agent) } else { topics::frames(&run, &agent) };
        let mut good = first_frames().2.clone();
        let keys = ["run", "agent", "seq", "second", "total", "steps", "vus", "version"];
        match keys.get(field) {
            Some(key) => {
                if let Some(m) = good.as_object_mut() {
                    m.insert((*key).to_string(), junk);
                }
            }
            // A histogram that is not one: the frame decodes, and the aggregator must refuse it.
            None => good["total"]["latency"] = serde_json::json!(format!("{junk}AAAA")),
        }
        for payload in [bytes, wire::encode(&good)] {
            match decode_inbound(&topic, &payload) {
                None => prop_assert!(false, "an agent topic must always yield a message"),
                Some((r, AgentInbound::Malformed { error, .. })) => {
                    prop_assert_eq!(&r, &run);
                    prop_assert!(!error.trim().is_empty());
                }
                Some((_, AgentInbound::Frame(f))) => {
                    // Built only here: merging the first frames is most of a case's cost.
                    let (mut agg, _) = aggregator_with_frames();
                    let before = counts(&agg);
                    if agg.ingest(&f).is_err() {
                        prop_assert_eq!(counts(&agg), before);
                    }
                }
                Some((_, AgentInbound::Status(_))) => {}
            }
        }
    }

    /// Whatever arrives on the SQS command queue — chat text, JSON, a command with a part
    /// changed, any of them inside an SNS notification — is a request or a refusal naming what
    /// is wrong; and a command reads the same raw or wrapped in SNS.
    #[cfg(feature = "aws")]
    #[test]
    fn sqs_bodies_are_requests_or_named_refusals(
        text in "\\PC{0,60}",
        key in prop_oneof![Just("version"), Just("id"), Just("type"), Just("test_id"), Just("plan"), Just("run_id")],
        junk in prop_oneof![Just(serde_json::json!(null)), Just(serde_json::json!(2)), Just(serde_json::json!("x")), Just(serde_json::json!({"a": [1]})), Just(serde_json::json!(-1.5))],
        shape in 0usize..4,
    ) {
        use crate::aws::envelope::{read, Request};
        let mut command = serde_json::json!({"version": 1, "id": "c-1", "type": "start_run", "test_id": "smoke"});
        command[key] = junk;
        let inner = match shape {
            0 => text.clone(),
            1 => command.to_string(),
            2 => format!("{{{text}"),
            _ => serde_json::json!({"Type": "Notification", "Message": text}).to_string(),
        };
        let wrapped = serde_json::json!({"Type": "Notification", "MessageId": "m-1", "Message": inner}).to_string();
        for body in [inner.as_str(), wrapped.as_str()] {
            if let Err(e) = read(body, "q-1") {
                prop_assert!(e.problem.contains(':') && !e.problem.trim().is_empty(), "{e:?}");
            }
        }
        if shape == 1 {
            let raw = read(&inner, "q-1");
            let sns = read(&wrapped, "q-1");
            match (raw, sns) {
                (Ok(Request::Command(a)), Ok(Request::Command(b))) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(a.problem.replacen("body", "Message", 1), b.problem),
                (a, b) => prop_assert!(false, "raw {a:?} but wrapped {b:?}"),
            }
        }
    }
}
