//! End-to-end: from a deployed stack to a run, with `herd.toml` written by `herd init aws`.
//!
//! The hub template (infra/cloudformation/herd.yaml) is deployed into moto (`CreateStack`, new
//! VPC, `CREATE_COMPLETE`). `herd init aws --stack herd` reads its outputs and writes
//! `herd.toml`; `herd config check` accepts it; `herd up --config` runs with it. A `start_run`
//! command goes to the stack's commands queue; the ECS launcher calls `RunTask` on the stack's
//! cluster and agent task definition; an ECS stand-in starts `herd agent` with exactly the
//! container override the launcher sent; frames come back through the stack's frames queue; the
//! run's counts are the target's, and the run is in the stack's DynamoDB tables.
//!
//! Where moto cannot play, and the rendered file is changed for it (nothing else is):
//! - IoT Core's MQTT broker: moto has none. `[broker] url` (what agents are told) becomes a
//!   local Mosquitto's URL instead of `mqtts://ENDPOINT:8883`.
//! - IoT Core's data plane: moto's `Publish` reaches no subscriber. `[broker] iot_endpoint_url`
//!   becomes [`IotStandin`]'s, which republishes to Mosquitto.
//! - The topic rule (`AWS::IoT::TopicRule`, skipped by moto's CloudFormation): [`TopicRuleToSqs`]
//!   forwards the agents' messages from Mosquitto into the stack's frames queue.
//! - Fargate: [`EcsStandin`] runs the tasks moto records.
//! - Cognito (skipped by moto): its outputs are absent, and `herd init aws` must do without them.

use aws_sdk_dynamodb::types::AttributeValue;
use herd_coordinator::aws::dynamo::DynamoStore;
use herd_coordinator::config::{
    BrokerAuth, CommandsVia, FramesVia, LauncherConfig, ServiceConfig, StoreConfig,
};
use herd_coordinator::store::Store;
use herd_e2e::aws::{await_run_end, create_queue, queue_arn, subscribe, Mosquitto, Moto};
use herd_e2e::ecs_standin::EcsStandin;
use herd_e2e::iot_standin::{IotStandin, TopicRuleToSqs};
use herd_e2e::service::Service;
use herd_e2e::stacks::{deploy, herd, replace_value};
use herd_e2e::{herd_bin, CountingTarget, Herd};
use herd_protocol::RunId;
use serde_json::json;
use std::time::Duration;

const TEMPLATE: &str = include_str!("../../../infra/cloudformation/herd.yaml");
const IOT_ENDPOINT: &str = "abcdefghij1234-ats.iot.us-east-1.amazonaws.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herd_init_aws_renders_herd_toml_from_the_stack_and_a_run_goes_through_it() {
    let moto = Moto::start();
    moto.ecs_tasks_keep_running();
    let sdk = moto.sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let outputs = deploy(
        &cfn,
        "herd",
        TEMPLATE,
        &[
            (
                "ImageUri",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/herd:1.0.0",
            ),
            ("IotEndpoint", IOT_ENDPOINT),
            ("AdminEmail", "admin@example.com"),
        ],
    )
    .await;
    let o = |k: &str| {
        outputs
            .get(k)
            .cloned()
            .unwrap_or_else(|| panic!("output {k}: {outputs:?}"))
    };
    assert!(
        !outputs.contains_key("CognitoClientId") && !outputs.contains_key("UserPoolId"),
        "moto skips Cognito, so its outputs vanish: {outputs:?}"
    );

    // herd init aws: the file from the outputs, accepted by `herd config check`.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("herd.toml");
    let path_arg = path.to_str().expect("utf-8 path");
    let (code, _, stderr) = herd(
        &moto,
        &["init", "aws", "--stack", "herd", "-o", path_arg],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("no Cognito outputs"), "{stderr}");
    let rendered = std::fs::read_to_string(&path).expect("herd.toml written");
    let (code, stdout, stderr) = herd(&moto, &["config", "check", path_arg], dir.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(": valid ("), "{stdout}");
    let (code, _, stderr) = herd(
        &moto,
        &["init", "aws", "--stack", "herd", "-o", path_arg],
        dir.path(),
    );
    assert_eq!(code, 2, "an existing file is kept: {stderr}");

    // Every key the contract names holds its output.
    let c = ServiceConfig::from_toml(&rendered).expect("valid");
    assert_eq!(c.aws.region.as_deref(), Some(o("Region").as_str()));
    assert_eq!(c.max_agents.map(|n| n.to_string()), Some(o("MaxAgents")));
    assert_eq!(
        c.commands.as_ref().map(|c| c.queue_url.clone()),
        Some(o("CommandsQueueUrl"))
    );
    assert_eq!(
        c.events.as_ref().map(|e| e.topic_arn.clone()),
        Some(o("EventsTopicArn"))
    );
    assert_eq!(
        c.store,
        StoreConfig::DynamoDb {
            table_prefix: o("TablePrefix"),
            create_tables: false
        }
    );
    assert_eq!(
        c.broker.url,
        Some(herd_protocol::broker::BrokerAddr::parse(&o("BrokerUrl")).expect("BrokerUrl"))
    );
    assert_eq!(c.broker.auth, BrokerAuth::None);
    assert_eq!(
        c.broker.commands_via,
        CommandsVia::IotData {
            endpoint_url: Some(o("IotEndpointUrl"))
        }
    );
    assert_eq!(
        c.broker.frames_via,
        FramesVia::Sqs {
            queue_url: o("FramesQueueUrl")
        }
    );
    let LauncherConfig::Ecs(ecs) = &c.launcher else {
        panic!("ecs launcher expected");
    };
    assert_eq!(ecs.cluster, o("ClusterName"));
    assert_eq!(ecs.task_definition, o("AgentTaskDefinition"));
    assert_eq!(ecs.container_name, o("AgentContainerName"));
    assert_eq!(ecs.subnets.join(","), o("Subnets"));
    assert_eq!(ecs.security_groups.join(","), o("SecurityGroups"));
    assert_eq!(ecs.assign_public_ip.to_string(), o("AssignPublicIp"));

    // What moto cannot play (see the module docs): Mosquitto for IoT Core's broker, the data
    // plane and topic rule stand-ins, Fargate's stand-in. Only these two lines change.
    let mosquitto = Mosquitto::start();
    let iot = IotStandin::start(&mosquitto.url());
    let _rule = TopicRuleToSqs::start(
        &mosquitto.url(),
        &sdk,
        &o("FramesQueueUrl"),
        "herd/runs/+/agents/#",
    );
    let adjusted = replace_value(&rendered, "url", &o("BrokerUrl"), &mosquitto.url());
    let adjusted = replace_value(
        &adjusted,
        "iot_endpoint_url",
        &o("IotEndpointUrl"),
        &iot.endpoint(),
    );
    std::fs::write(&path, adjusted).expect("write herd.toml");
    let fargate = EcsStandin::start(
        &sdk,
        &o("ClusterName"),
        &o("AgentTaskDefinition"),
        &o("AgentContainerName"),
        herd_bin(),
        vec![("RUST_LOG".into(), "warn".into())],
    );

    // The stack's events topic, into a queue the test reads.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let events = create_queue(&sqs, "test-events", None).await;
    subscribe(
        &sns,
        &o("EventsTopicArn"),
        &queue_arn(&sqs, &events).await,
        true,
    )
    .await;

    let service = tokio::task::spawn_blocking({
        let data = dir.path().join("data");
        let config = path.clone();
        let env = moto.env();
        move || {
            let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
            Service::start_with_env(&data, &["--config", config.to_str().expect("utf-8")], &env)
        }
    })
    .await
    .expect("herd up starts");

    let target = CountingTarget::start();
    let start = json!({
        "version": 1, "id": "init-e2e-1", "type": "start_run",
        "plan": {
            "version": 1, "name": "from-the-stack", "target": target.url(), "agents": 2,
            "load": {"stages": [{"duration": "3s", "vus": 4}]},
            "scenario": [{"get": "/ok"}, {"think": "20ms"}],
        },
    });
    sqs.send_message()
        .queue_url(o("CommandsQueueUrl"))
        .message_body(start.to_string())
        .send()
        .await
        .expect("send start_run");

    let (completed, _) = await_run_end(&sqs, &events, Duration::from_secs(120)).await;
    assert_eq!(completed["type"], "run.completed", "{completed}");
    let run = completed["run"].as_str().expect("run id").to_owned();

    // Fargate's stand-in ran exactly what the launcher asked for: one task per agent, each
    // `herd agent` told the broker `[broker] url` names, this run, and its own id.
    let started = fargate.started();
    assert_eq!(started.len(), 2, "{started:?}");
    let mut agents: Vec<&str> = Vec::new();
    for task in &started {
        let [agent, broker_flag, broker, run_flag, task_run, agent_flag, id] =
            task.command.as_slice()
        else {
            panic!("command override {:?}", task.command);
        };
        assert_eq!(
            [agent, broker_flag, run_flag, agent_flag].map(String::as_str),
            ["agent", "--broker", "--run", "--agent"]
        );
        assert_eq!(
            (broker.as_str(), task_run.as_str()),
            (mosquitto.url().as_str(), run.as_str())
        );
        assert!(task.environment.is_empty(), "{task:?}");
        assert_eq!(task.group.as_deref(), Some(format!("herd:{run}").as_str()));
        agents.push(id);
    }
    agents.sort_unstable();
    agents.dedup();
    assert_eq!(agents.len(), 2, "each task is its own agent: {started:?}");
    assert!(
        iot.published()
            .iter()
            .any(|p| p.topic == format!("herd/runs/{run}/cmd")),
        "commands went out through the IoT data plane"
    );

    // The counts are the target's.
    let received = target.received();
    let requests = completed["summary"]["requests"].as_u64().expect("requests");
    assert!(requests > 20, "{completed}");
    assert_eq!(requests, received.total, "the run's count is the target's");

    // The run is in the stack's tables.
    let prefix = o("TablePrefix");
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let item = dynamo
        .get_item()
        .table_name(format!("{prefix}runs"))
        .key("id", AttributeValue::S(run.clone()))
        .consistent_read(true)
        .send()
        .await
        .expect("get run")
        .item
        .expect("the run is stored");
    assert_eq!(
        item.get("state"),
        Some(&AttributeValue::S("completed".into())),
        "{item:?}"
    );
    let store = DynamoStore::connect(&sdk, &prefix, false)
        .await
        .expect("the stack's tables");
    let run_id = RunId::new(&run).expect("run id");
    let seconds = store.list_seconds(&run_id).await.expect("seconds");
    assert_eq!(
        seconds.iter().map(|s| s.requests).sum::<u64>(),
        received.total
    );
    let summary = store
        .get_summary(&run_id)
        .await
        .expect("read")
        .expect("a summary");
    assert_eq!(summary.requests, received.total);

    // The agents' processes end with the run.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !fargate.all_exited() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "agents still running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::task::spawn_blocking(move || drop(service))
        .await
        .expect("stop herd up");
}

/// `herd init aws` names every output a stack lacks (exit 2) and writes nothing; a stack that
/// does not exist is named too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herd_init_aws_names_missing_outputs_and_writes_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let template = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n\
                    Outputs:\n  Region:\n    Value: !Ref AWS::Region\n  \
                    CommandsQueueUrl:\n    Value: !Ref Queue\n";
    deploy(&cfn, "not-herd", template, &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("herd.toml");
    let path_arg = path.to_str().expect("utf-8 path");
    let (code, _, stderr) = herd(
        &moto,
        &["init", "aws", "--stack", "not-herd", "-o", path_arg],
        dir.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr
            .contains("the stack has no output MaxAgents, EventsTopicArn, TablePrefix, BrokerUrl"),
        "{stderr}"
    );
    assert!(!stderr.contains("CommandsQueueUrl,"), "{stderr}");
    assert!(!path.exists(), "nothing is written");
    let (code, _, stderr) = herd(
        &moto,
        &["init", "aws", "--stack", "nowhere", "-o", path_arg],
        dir.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("DescribeStacks nowhere: no such stack"),
        "{stderr}"
    );
}

/// `herd up` and `herd config check` read `--config`, else `HERD_CONFIG`, else the TOML text in
/// `HERD_CONFIG_TOML`, and every error names the source it came from.
#[test]
fn the_config_comes_from_the_flag_the_path_variable_or_the_text_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    // SigV4 signs WebSocket connections only: over mqtts:// it is refused by name.
    let sigv4 = "[broker]\nurl = \"mqtts://iot.example\"\nauth = \"sigv4\"\n";
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[api]\nmax_agents = 3\n").expect("write");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Herd::new(args, dir.path());
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        let out = cmd.run(Duration::from_secs(30));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &*String::from_utf8_lossy(&out.stderr),
        )
    };
    let good_arg = good.to_str().expect("utf-8");
    // HERD_CONFIG_TOML alone: its text is read, its problems named with it.
    let (code, text) = run(&["config", "check"], &[("HERD_CONFIG_TOML", sigv4)]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("herd: HERD_CONFIG_TOML: broker.auth: \"sigv4\"")
            && text.contains("signs MQTT over WebSocket"),
        "{text}"
    );
    let (code, text) = run(
        &["up", "--listen", "127.0.0.1:0"],
        &[("HERD_CONFIG_TOML", sigv4)],
    );
    assert_eq!(code, 2, "herd up refuses it too: {text}");
    assert!(
        text.contains("herd: HERD_CONFIG_TOML: broker.auth"),
        "{text}"
    );
    // HERD_CONFIG wins over HERD_CONFIG_TOML, and the flag over both.
    let (code, text) = run(
        &["config", "check"],
        &[("HERD_CONFIG", good_arg), ("HERD_CONFIG_TOML", sigv4)],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("HERD_CONFIG={good_arg}: valid")),
        "{text}"
    );
    let missing = dir.path().join("missing.toml");
    let (code, text) = run(
        &["config", "check"],
        &[("HERD_CONFIG", missing.to_str().expect("utf-8"))],
    );
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("HERD_CONFIG="),
        "the error names the variable: {text}"
    );
    let (code, text) = run(
        &["config", "check", good_arg],
        &[("HERD_CONFIG", "/nonexistent"), ("HERD_CONFIG_TOML", sigv4)],
    );
    assert_eq!(code, 0, "{text}");
    // Nothing at all: config check has nothing to check.
    let (code, _) = run(&["config", "check"], &[]);
    assert_eq!(code, 2);
}
