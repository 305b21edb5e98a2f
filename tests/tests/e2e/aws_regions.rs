//! End-to-end: one run, agents in two regions. The hub template is deployed into moto in
//! us-east-1 and the regional template (infra/cloudformation/herd-region.yaml) in eu-west-1,
//! both with `CreateStack` to `CREATE_COMPLETE` (moto serves every region on one endpoint).
//! `herd init aws --stack herd --regional-stack eu-west-1=herd-eu` writes `herd.toml` with the
//! regional stack's `[[launcher.regions]]` table; `herd up` runs a plan with
//! `regions: [{region: eu-west-1, agents: 2}, {region: us-east-1, agents: 1}]`: the ECS launcher
//! calls `RunTask` in each region's cluster (checked with `ListTasks`/`DescribeTasks` in each
//! region), one ECS stand-in per region runs what was launched there, and the summary's and the
//! stored seconds' per-region counts add up to the target's own count.
//!
//! moto's gaps are filled as in `aws_init.rs` (Mosquitto for IoT Core's broker, the data plane
//! and topic rule stand-ins, Fargate's stand-in); only `[broker] url` and `iot_endpoint_url`
//! of the rendered file change.

use herd_coordinator::aws::dynamo::DynamoStore;
use herd_coordinator::config::{LauncherConfig, ServiceConfig};
use herd_coordinator::store::Store;
use herd_e2e::aws::{await_run_end, create_queue, queue_arn, subscribe, Mosquitto, Moto};
use herd_e2e::ecs_standin::EcsStandin;
use herd_e2e::iot_standin::{IotStandin, TopicRuleToSqs};
use herd_e2e::service::Service;
use herd_e2e::stacks::{deploy, herd, replace_value};
use herd_e2e::{herd_bin, CountingTarget};
use herd_protocol::RunId;
use serde_json::json;
use std::time::Duration;

const HUB: &str = include_str!("../../../infra/cloudformation/herd.yaml");
const REGIONAL: &str = include_str!("../../../infra/cloudformation/herd-region.yaml");
const IOT_ENDPOINT: &str = "abcdefghij1234-ats.iot.us-east-1.amazonaws.com";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/herd:1.0.0";

/// The run's task ARNs in one region's cluster (by `startedBy`), and each one's agent id.
async fn tasks_of(ecs: &aws_sdk_ecs::Client, cluster: &str, run: &str) -> Vec<(String, String)> {
    let listed = ecs
        .list_tasks()
        .cluster(cluster)
        .started_by(run)
        .send()
        .await
        .expect("ListTasks");
    if listed.task_arns().is_empty() {
        return Vec::new();
    }
    let described = ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(listed.task_arns().to_vec()))
        .send()
        .await
        .expect("DescribeTasks");
    let mut tasks: Vec<(String, String)> = described
        .tasks()
        .iter()
        .map(|t| {
            let command = t
                .overrides()
                .map(|o| o.container_overrides())
                .unwrap_or_default()
                .first()
                .map(|c| c.command().to_vec())
                .unwrap_or_default();
            (
                t.task_arn().unwrap_or_default().to_owned(),
                command.last().cloned().unwrap_or_default(),
            )
        })
        .collect();
    tasks.sort_by(|a, b| a.1.cmp(&b.1));
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_regions_launches_each_regions_agents_in_its_cluster_and_counts_add_up() {
    let moto = Moto::start();
    moto.ecs_tasks_keep_running();
    let sdk = moto.sdk_config().await;
    let eu_sdk = sdk
        .to_builder()
        .region(aws_config::Region::new("eu-west-1"))
        .build();
    let hub = deploy(
        &aws_sdk_cloudformation::Client::new(&sdk),
        "herd",
        HUB,
        &[
            ("ImageUri", IMAGE),
            ("IotEndpoint", IOT_ENDPOINT),
            ("AdminEmail", "admin@example.com"),
        ],
    )
    .await;
    let eu = deploy(
        &aws_sdk_cloudformation::Client::new(&eu_sdk),
        "herd-eu",
        REGIONAL,
        &[("HubRegion", "us-east-1"), ("ImageUri", IMAGE)],
    )
    .await;
    let o = |outputs: &std::collections::BTreeMap<String, String>, k: &str| {
        outputs
            .get(k)
            .cloned()
            .unwrap_or_else(|| panic!("output {k}: {outputs:?}"))
    };
    assert_eq!(o(&eu, "Region"), "eu-west-1");
    assert!(
        o(&eu, "AgentTaskDefinition").contains(":eu-west-1:"),
        "{eu:?}"
    );

    // herd init aws with the regional stack: its outputs become a [[launcher.regions]] table.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("herd.toml");
    let path_arg = path.to_str().expect("utf-8 path");
    let (code, _, stderr) = herd(
        &moto,
        &[
            "init",
            "aws",
            "--stack",
            "herd",
            "--regional-stack",
            "eu-west-1=herd-eu",
            "-o",
            path_arg,
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let rendered = std::fs::read_to_string(&path).expect("herd.toml written");
    let c = ServiceConfig::from_toml(&rendered).expect("valid");
    let LauncherConfig::Ecs(ecs) = &c.launcher else {
        panic!("ecs launcher expected");
    };
    assert_eq!(ecs.regions.len(), 1, "{rendered}");
    let table = &ecs.regions[0];
    assert_eq!(table.region, "eu-west-1");
    assert_eq!(table.cluster, o(&eu, "ClusterName"));
    assert_eq!(table.task_definition, o(&eu, "AgentTaskDefinition"));
    assert_eq!(table.subnets.join(","), o(&eu, "Subnets"));
    assert_eq!(table.security_groups.join(","), o(&eu, "SecurityGroups"));
    // A regional stack named for the wrong region is refused, and nothing is written.
    let (code, _, stderr) = herd(
        &moto,
        &[
            "init",
            "aws",
            "--stack",
            "herd",
            "--regional-stack",
            "us-west-2=herd-eu",
            "-o",
            "-",
        ],
        dir.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("herd-eu"), "{stderr}");

    let mosquitto = Mosquitto::start();
    let iot = IotStandin::start(&mosquitto.url());
    let _rule = TopicRuleToSqs::start(
        &mosquitto.url(),
        &sdk,
        &o(&hub, "FramesQueueUrl"),
        "herd/runs/+/agents/#",
    );
    let adjusted = replace_value(&rendered, "url", &o(&hub, "BrokerUrl"), &mosquitto.url());
    let adjusted = replace_value(
        &adjusted,
        "iot_endpoint_url",
        &o(&hub, "IotEndpointUrl"),
        &iot.endpoint(),
    );
    std::fs::write(&path, adjusted).expect("write herd.toml");
    let quiet = vec![("RUST_LOG".to_owned(), "warn".to_owned())];
    let fargate_us = EcsStandin::start(
        &sdk,
        &o(&hub, "ClusterName"),
        &o(&hub, "AgentTaskDefinition"),
        &o(&hub, "AgentContainerName"),
        herd_bin(),
        quiet.clone(),
    );
    let fargate_eu = EcsStandin::start(
        &eu_sdk,
        &o(&eu, "ClusterName"),
        &o(&eu, "AgentTaskDefinition"),
        &o(&eu, "AgentContainerName"),
        herd_bin(),
        quiet,
    );

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let events = create_queue(&sqs, "test-events", None).await;
    subscribe(
        &sns,
        &o(&hub, "EventsTopicArn"),
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
    let plan = |regions: serde_json::Value| {
        json!({
            "version": 1, "name": "two-regions", "target": target.url(),
            "regions": regions,
            "load": {"vus": 3, "duration": "3s"},
            "scenario": [{"get": "/ok"}, {"think": "20ms"}],
        })
    };
    // A region without a table is refused before anything starts, naming the field.
    let nowhere = json!({"version": 1, "id": "regions-e2e-0", "type": "start_run",
        "plan": plan(json!([{"region": "ap-south-1", "agents": 1}]))});
    let start = json!({"version": 1, "id": "regions-e2e-1", "type": "start_run",
    "plan": plan(json!([
        {"region": "eu-west-1", "agents": 2},
        {"region": "us-east-1", "agents": 1},
    ]))});
    for command in [nowhere, start] {
        sqs.send_message()
            .queue_url(o(&hub, "CommandsQueueUrl"))
            .message_body(command.to_string())
            .send()
            .await
            .expect("send start_run");
    }

    let (completed, got) = await_run_end(&sqs, &events, Duration::from_secs(120)).await;
    assert_eq!(completed["type"], "run.completed", "{completed}");
    let run = completed["run"].as_str().expect("run id").to_owned();
    let rejected = got
        .iter()
        .find(|d| d.body["type"] == "command.rejected")
        .map(|d| d.body.to_string())
        .unwrap_or_default();
    assert!(
        rejected.contains("plan.regions[0].region")
            && rejected.contains("\\\"ap-south-1\\\" is not configured"),
        "{rejected}"
    );

    // Each region's cluster, asked in its own region, has exactly its share of the run's tasks.
    let eu_tasks = tasks_of(
        &aws_sdk_ecs::Client::new(&eu_sdk),
        &o(&eu, "ClusterName"),
        &run,
    )
    .await;
    let us_tasks = tasks_of(
        &aws_sdk_ecs::Client::new(&sdk),
        &o(&hub, "ClusterName"),
        &run,
    )
    .await;
    let agents = |tasks: &[(String, String)], region: &str| -> Vec<String> {
        for (arn, _) in tasks {
            assert!(arn.contains(&format!(":{region}:")), "{arn} in {region}");
        }
        tasks.iter().map(|(_, a)| a.clone()).collect()
    };
    assert_eq!(agents(&eu_tasks, "eu-west-1"), ["agent-0", "agent-1"]);
    assert_eq!(agents(&us_tasks, "us-east-1"), ["agent-2"]);
    assert_eq!(
        fargate_eu.started().len(),
        2,
        "the stand-in ran eu-west-1's"
    );
    assert_eq!(
        fargate_us.started().len(),
        1,
        "the stand-in ran us-east-1's"
    );

    // The per-region counts add up to the target's own count.
    let received = target.received();
    let summary = &completed["summary"];
    assert_eq!(summary["requests"].as_u64(), Some(received.total));
    let region = |name: &str| summary["regions"][name]["requests"].as_u64().unwrap_or(0);
    assert!(
        region("eu-west-1") > 0 && region("us-east-1") > 0,
        "{summary}"
    );
    assert_eq!(
        region("eu-west-1") + region("us-east-1"),
        received.total,
        "{summary}"
    );
    let per_agent = |prefix: &[&str]| -> u64 {
        summary["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .filter(|a| prefix.contains(&a["id"].as_str().unwrap_or("")))
            .map(|a| a["requests"].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!(region("eu-west-1"), per_agent(&["agent-0", "agent-1"]));
    assert_eq!(region("us-east-1"), per_agent(&["agent-2"]));

    // The stored seconds break down per region too, and add up the same.
    let store = DynamoStore::connect(&sdk, &o(&hub, "TablePrefix"), false)
        .await
        .expect("the stack's tables");
    let seconds = store
        .list_seconds(&RunId::new(&run).expect("run id"))
        .await
        .expect("seconds");
    let stored: u64 = seconds
        .iter()
        .flat_map(|s| s.detail.regions.values().map(|r| r.requests))
        .sum();
    assert_eq!(stored, received.total);

    tokio::task::spawn_blocking(move || drop(service))
        .await
        .expect("stop herd up");
}

/// Without AWS: `herd run` with local agents takes a plan's regions as labels, and the summary
/// still breaks the run down per region, adding up to the target's count; `--agents` that
/// disagrees with the regions is refused naming `agents`.
#[test]
fn local_agents_take_regions_as_labels_and_the_breakdown_adds_up() {
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = herd_e2e::write_file(
        dir.path(),
        "plan.yaml",
        &format!(
            "version: 1\nname: labels\ntarget: {}\n\
             regions: [{{region: lab-a, agents: 2}}, {{region: lab-b, agents: 1}}]\n\
             load: {{vus: 3, duration: 2s}}\nscenario: [{{get: /ok}}, {{think: 20ms}}]\n",
            target.url()
        ),
    );
    let json = dir.path().join("summary.json");
    let plan_arg = plan.to_str().expect("utf-8");
    let out = herd_e2e::Herd::new(
        [
            "run",
            plan_arg,
            "--json",
            json.to_str().expect("utf-8"),
            "-q",
        ],
        dir.path(),
    )
    .run(Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("summary")).expect("json");
    let received = target.received().total;
    let region = |name: &str| s["regions"][name]["requests"].as_u64().unwrap_or(0);
    assert!(region("lab-a") > 0 && region("lab-b") > 0, "{s}");
    assert_eq!(region("lab-a") + region("lab-b"), received, "{s}");
    assert_eq!(s["requests"].as_u64(), Some(received));
    let table = String::from_utf8_lossy(&out.stdout);
    for (name, n) in [("lab-a", region("lab-a")), ("lab-b", region("lab-b"))] {
        let row = table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("region {name} ")))
            .unwrap_or_else(|| panic!("no row for region {name}:\n{table}"));
        assert!(row.trim_end().ends_with(&format!(" {n}")), "{row}");
    }

    let refused = herd_e2e::Herd::new(["run", plan_arg, "--agents", "2"], dir.path())
        .run(Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("agents: the plan's regions place 3 agents, so the run cannot have 2"),
        "{stderr}"
    );
}
