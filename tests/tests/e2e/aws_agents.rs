//! AWS mode's agent side, end to end with real parts: the coordinator's run actor commands real
//! `herd agent` processes through the IoT data plane's `Publish` (a stand-in that republishes to
//! Mosquitto, since moto's data plane reaches no subscriber), hears them over MQTT or through an
//! SQS queue (moto) that a topic rule fills, and an agent reaches its broker over mutual TLS.
//! Every count is checked against the counting target's own.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use herd_coordinator::aws::frames_sqs::FramesViaSqs;
use herd_coordinator::aws::iot::{Inbound, IotDataBus};
use herd_coordinator::bus::AgentBus as _;
use herd_coordinator::launcher::local::LocalLauncher;
use herd_coordinator::manager::new_run_id;
use herd_coordinator::mqtt::{BrokerEndpoint, MqttLink};
use herd_coordinator::run::{self, RunDeps, RunSpec, Timeouts};
use herd_coordinator::store::embedded::EmbeddedStore;
use herd_e2e::aws::{Mosquitto, Moto, REGION};
use herd_e2e::iot_standin::{IotStandin, TopicRuleToSqs};
use herd_e2e::mqtt_tls::{certificates, MosquittoTls};
use herd_e2e::{herd_bin, wait_with_limit, CountingTarget};
use herd_protocol::agent::{AgentCommand, AgentCommandMessage, AgentStatus, StatusMessage};
use herd_protocol::frame::Frame;
use herd_protocol::plan::{self, Plan};
use herd_protocol::summary::{RunState, Summary};
use herd_protocol::topics::{self, AgentTopic};
use herd_protocol::{wire, AgentId, RunId};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn plan(target: &CountingTarget, agents: u32) -> Plan {
    plan::from_yaml_str(&format!(
        r#"
version: 1
name: iot
target: {}
agents: {agents}
load:
  stages:
    - {{ duration: 3s, vus: 4 }}
scenario:
  - get: /ok
  - think: 20ms
"#,
        target.url()
    ))
    .expect("a valid plan")
}

/// An SDK config with static test credentials, aimed at `endpoint`.
async fn sdk_at(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// Runs `plan` on the run actor with `bus`, local agent processes and an embedded store.
async fn run_with(
    bus: Arc<dyn herd_coordinator::bus::AgentBus>,
    broker: &str,
    plan: Plan,
) -> (RunId, Summary) {
    let dir = tempfile::tempdir().expect("tempdir");
    let deps = RunDeps {
        launcher: Arc::new(LocalLauncher::new(
            herd_bin(),
            Some(dir.path().join("logs")),
        )),
        bus,
        store: Arc::new(EmbeddedStore::open(dir.path()).expect("store")),
        broker_url: broker.to_owned(),
        owner: "aws-agents-test".to_owned(),
        allowed_targets: None,
        fallback_dir: None,
        outputs: Vec::new(),
    };
    let run = new_run_id();
    let handle = run::start(
        RunSpec {
            run: run.clone(),
            test: None,
            plan,
            timeouts: Timeouts::default(),
        },
        deps,
    );
    let summary = tokio::time::timeout(Duration::from_secs(60), handle.outcome)
        .await
        .expect("the run ends within 60 s")
        .expect("a summary");
    (run, summary)
}

/// The retained message on `topic`, if the broker holds one.
async fn retained(broker: &str, topic: &str) -> Option<Vec<u8>> {
    let port = broker
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .expect("port");
    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new("retained-check", "127.0.0.1", port), 16);
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let mut subscribed_at: Option<Instant> = None;
    loop {
        let wait = match subscribed_at {
            // A broker sends retained messages right after the SUBACK.
            Some(at) => Duration::from_millis(500).saturating_sub(at.elapsed()),
            None => Duration::from_secs(10),
        };
        match tokio::time::timeout(wait, eventloop.poll()).await {
            Err(_) if subscribed_at.is_some() => return None,
            Err(_) => panic!("no SUBACK from {broker}"),
            Ok(Ok(Event::Incoming(Incoming::SubAck(_)))) => subscribed_at = Some(Instant::now()),
            Ok(Ok(Event::Incoming(Incoming::Publish(p)))) if p.retain => {
                return Some(p.payload.to_vec())
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("retained check: {e}"),
        }
    }
}

fn check_counts(summary: &Summary, target: &CountingTarget) {
    let received = target.received();
    assert_eq!(
        summary.run_state,
        RunState::Completed,
        "{:?}",
        summary.reason
    );
    assert!(received.total > 0, "the agents sent requests");
    assert_eq!(
        summary.requests, received.total,
        "herd's count is the target's"
    );
    assert_eq!(summary.errors, 0);
}

/// The data-plane publishes of a run's command topic: retained start first, the clearing empty
/// retained publish last, QoS1 throughout.
fn check_commands(standin: &IotStandin, run: &RunId) {
    let commands: Vec<_> = standin
        .published()
        .into_iter()
        .filter(|p| p.topic == topics::commands(run))
        .collect();
    assert!(commands.len() >= 2, "{commands:?}");
    let start: AgentCommandMessage = wire::decode(&commands[0].payload).expect("a command");
    assert!(matches!(start.command, AgentCommand::Start { .. }));
    assert!(
        commands[0].retain && commands[0].qos == 1,
        "the start is retained"
    );
    for later in &commands[1..commands.len() - 1] {
        assert!(
            !later.retain && later.qos == 1,
            "only the start is retained"
        );
    }
    let last = &commands[commands.len() - 1];
    assert!(
        last.retain && last.payload.is_empty(),
        "the retained start is cleared at the end"
    );
    let live = standin
        .published()
        .into_iter()
        .filter(|p| p.topic == topics::live(run))
        .count();
    assert!(live > 0, "live seconds go out through Publish too");
}

#[actix::test]
async fn commands_through_the_iot_data_plane_reach_local_agents_and_frames_come_back_over_mqtt() {
    let mosquitto = Mosquitto::start();
    let standin = IotStandin::start(&mosquitto.url());
    let target = CountingTarget::start();
    let link = MqttLink::connect(
        &BrokerEndpoint::parse(&mosquitto.url()).expect("url"),
        "coordinator",
    )
    .await
    .expect("coordinator on Mosquitto");
    let sdk = sdk_at(&standin.endpoint()).await;
    let bus = IotDataBus::new(&sdk, Some(&standin.endpoint()), Inbound::Mqtt(link));

    let (run, summary) = run_with(Arc::new(bus), &mosquitto.url(), plan(&target, 2)).await;

    check_counts(&summary, &target);
    check_commands(&standin, &run);
    assert_eq!(
        retained(&mosquitto.url(), &topics::commands(&run)).await,
        None
    );
}

#[actix::test]
async fn frames_through_an_iot_rule_into_sqs_reach_the_run() {
    let moto = Moto::start();
    let mosquitto = Mosquitto::start();
    let standin = IotStandin::start(&mosquitto.url());
    let target = CountingTarget::start();
    let sdk = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .create_queue()
        .queue_name("herd-frames")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let rule = TopicRuleToSqs::start(&mosquitto.url(), &sdk, &queue, "herd/runs/+/agents/#");
    let bus = IotDataBus::new(
        &sdk,
        Some(&standin.endpoint()),
        Inbound::Sqs(FramesViaSqs::start(&sdk, &queue)),
    );

    let (run, summary) = run_with(Arc::new(bus), &mosquitto.url(), plan(&target, 2)).await;

    check_counts(&summary, &target);
    check_commands(&standin, &run);
    assert!(rule.forwarded() > 0);
    // Everything the run used was deleted from the queue.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .expect("queue attributes");
        let count = |name| {
            attrs
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        };
        let left = count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} messages left in the frames queue"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn agent(tls_port: u16, run: &RunId, dir: &Path, with_cert: bool) -> Child {
    let mut command = Command::new(herd_bin());
    command
        .args([
            "agent",
            "--broker",
            &format!("mqtts://127.0.0.1:{tls_port}"),
        ])
        .args(["--run", run.as_str(), "--agent", "agent-0"])
        .arg("--mqtt-ca")
        .arg(dir.join("ca.pem"));
    if with_cert {
        command
            .arg("--mqtt-cert")
            .arg(dir.join("agent.pem"))
            .arg("--mqtt-key")
            .arg(dir.join("agent.key"));
    }
    command
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn herd agent")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[actix::test]
async fn an_agent_over_mutual_tls_takes_the_retained_start_and_reports_exact_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path());
    let broker = MosquittoTls::start(dir.path());
    let plain = format!("mqtt://127.0.0.1:{}", broker.plain_port);
    let standin = IotStandin::start(&plain);
    let target = CountingTarget::start();
    let run = RunId::new("run-mtls").expect("run id");

    // The test plays the coordinator: it listens to the agent on the plain listener, and sends
    // the start through the IoT data plane *before* the agent exists, as a retained message.
    let mut options = MqttOptions::new("observer", "127.0.0.1", broker.plain_port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (observer, mut events) = AsyncClient::new(options, 64);
    observer
        .subscribe(topics::agents_filter(&run), QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    loop {
        if let Event::Incoming(Incoming::SubAck(_)) = events.poll().await.expect("observer") {
            break;
        }
    }
    let link = MqttLink::connect(&BrokerEndpoint::parse(&plain).expect("url"), "coordinator")
        .await
        .expect("link");
    let sdk = sdk_at(&standin.endpoint()).await;
    let bus = IotDataBus::new(&sdk, Some(&standin.endpoint()), Inbound::Mqtt(link));
    let plan = plan(&target, 1);
    bus.send_command(AgentCommandMessage {
        version: 1,
        run: run.clone(),
        command: AgentCommand::Start {
            plan: plan.to_json(),
            assignments: BTreeMap::from([(AgentId::numbered(0), 0)]),
            agent_count: 1,
            start_at_ms: now_ms() + 2000,
            secrets: Default::default(),
            allowed_targets: None,
            reassigned: Vec::new(),
            feeder_data: None,
            body_data: None,
            setup_vars: Default::default(),
        },
    })
    .await
    .expect("retained start published");

    let child = agent(broker.tls_port, &run, dir.path(), true);
    let mut frames = 0u64;
    let mut requests = 0u64;
    let finished = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            let Event::Incoming(Incoming::Publish(p)) = events.poll().await.expect("observer")
            else {
                continue;
            };
            match topics::parse_agent_topic(&p.topic) {
                Some(AgentTopic::Frames(..)) => {
                    let frame: Frame = wire::decode(&p.payload).expect("a frame");
                    frames += 1;
                    requests += frame.total.requests;
                }
                Some(AgentTopic::Status(..)) => {
                    let status: StatusMessage = wire::decode(&p.payload).expect("a status");
                    match status.status {
                        AgentStatus::Finished { frames, requests } => return (frames, requests),
                        AgentStatus::Error { message } => panic!("agent error: {message}"),
                        AgentStatus::Lost => panic!("agent lost"),
                        _ => {}
                    }
                }
                None => {}
            }
        }
    })
    .await
    .expect("the agent finishes within 40 s");
    let out = wait_with_limit(child, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received = target.received().total;
    assert!(received > 0);
    assert_eq!(
        finished,
        (frames, received),
        "finished names every frame and request"
    );
    assert_eq!(
        requests, received,
        "the frames count what the target received"
    );

    bus.unregister(&run).await;
    assert_eq!(retained(&plain, &topics::commands(&run)).await, None);
}

#[test]
fn an_agent_without_a_client_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path());
    let broker = MosquittoTls::start(dir.path());
    let run = RunId::new("run-no-cert").expect("run id");
    let out = wait_with_limit(
        agent(broker.tls_port, &run, dir.path(), false),
        Duration::from_secs(40),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to the MQTT broker at mqtts://127.0.0.1"),
        "{stderr}"
    );
}
