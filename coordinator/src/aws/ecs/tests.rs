//! The ECS launcher against moto's ECS: real `RunTask`/`DescribeTasks`/`StopTask` calls through
//! the SDK, checked by reading the tasks back.

use super::*;
use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode, Task, TaskField};
use bytes::Bytes;
use herd_e2e::aws::Moto;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const CLUSTER: &str = "herd";
const FAMILY: &str = "herd-agent";
const BROKER: &str = "mqtts://iot.example:8883";

/// One raw call to moto (EC2 lookups without an EC2 SDK, and moto's own control API).
async fn moto_call(moto: &Moto, method: &str, path: &str, body: &str) -> String {
    moto_call_in(moto, "us-east-1", method, path, body).await
}

/// The same, signed for `region` (moto answers EC2 calls from that region's resources).
async fn moto_call_in(moto: &Moto, region: &str, method: &str, path: &str, body: &str) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", moto.endpoint()))
        // moto picks the service from the credential scope of the signature.
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/ec2/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let response = client.request(request).await.expect("moto answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(status.is_success(), "{method} {path}: {status}: {text}");
    text
}

/// Values of every `<tag>…</tag>` in an EC2 XML answer.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(v, _)| v.to_owned()))
        .collect()
}

/// A cluster and a Fargate task definition in a fresh moto, and launcher settings naming moto's
/// default subnets and security group (their ids differ in every moto).
async fn ecs_setup(moto: &Moto, task_definition: &str) -> (aws_sdk_ecs::Client, EcsSettings) {
    ecs_setup_in(moto, "us-east-1", task_definition).await
}

/// The same in `region`, with an ECS client for that region.
async fn ecs_setup_in(
    moto: &Moto,
    region: &str,
    task_definition: &str,
) -> (aws_sdk_ecs::Client, EcsSettings) {
    let ec2 = "/?Version=2016-11-15&Action=";
    let subnets = xml_values(
        &moto_call_in(moto, region, "GET", &format!("{ec2}DescribeSubnets"), "").await,
        "subnetId",
    );
    let groups = xml_values(
        &moto_call_in(
            moto,
            region,
            "GET",
            &format!("{ec2}DescribeSecurityGroups"),
            "",
        )
        .await,
        "groupId",
    );
    assert!(
        !subnets.is_empty() && !groups.is_empty(),
        "moto has a default VPC"
    );
    // By default moto moves a task one step toward STOPPED on every DescribeTasks.
    moto_call(
        moto,
        "POST",
        "/moto-api/state-manager/set-transition",
        r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#,
    )
    .await;
    let config = aws_sdk_ecs::config::Builder::from(&moto.sdk_config().await)
        .region(aws_sdk_ecs::config::Region::new(region.to_owned()))
        .build();
    let ecs = aws_sdk_ecs::Client::from_conf(config);
    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .expect("create cluster");
    ecs.register_task_definition()
        .family(FAMILY)
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("herd-agent")
                .image("herd:latest")
                .memory(512)
                .entry_point("herd")
                .build(),
        )
        .send()
        .await
        .expect("register task definition");
    let settings = EcsSettings {
        cluster: CLUSTER.into(),
        task_definition: task_definition.into(),
        container_name: "herd-agent".into(),
        subnets: subnets.into_iter().take(2).collect(),
        security_groups: groups.into_iter().take(1).collect(),
        assign_public_ip: true,
        regions: Vec::new(),
    };
    (ecs, settings)
}

fn fast() -> EcsTimings {
    EcsTimings {
        backoff: Backoff {
            first: Duration::from_millis(10),
            max: Duration::from_millis(40),
            attempts: 3,
        },
        follow_interval: Duration::from_millis(100),
    }
}

fn spec(run: &RunId, agents: u32) -> LaunchSpec {
    LaunchSpec {
        run: run.clone(),
        agents: (0..agents).map(AgentId::numbered).collect(),
        broker_url: BROKER.into(),
        regions: std::collections::BTreeMap::new(),
    }
}

async fn describe_all(ecs: &aws_sdk_ecs::Client) -> Vec<Task> {
    let mut arns = Vec::new();
    let mut next = None;
    loop {
        let page = ecs
            .list_tasks()
            .cluster(CLUSTER)
            .set_next_token(next)
            .send()
            .await
            .expect("list tasks");
        arns.extend(page.task_arns().iter().cloned());
        next = page.next_token().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    let mut tasks = Vec::new();
    for chunk in arns.chunks(100) {
        let out = ecs
            .describe_tasks()
            .cluster(CLUSTER)
            .set_tasks(Some(chunk.to_vec()))
            .include(TaskField::Tags)
            .send()
            .await
            .expect("describe tasks");
        tasks.extend(out.tasks().iter().cloned());
    }
    tasks
}

#[tokio::test]
async fn each_agent_is_a_fargate_task_with_its_own_overrides_and_stop_ends_them_all() {
    let moto = Moto::start();
    let (ecs, settings) = ecs_setup(&moto, FAMILY).await;
    // moto decides whether DescribeTasks shows tags with state shared by all requests: keep the
    // follower's DescribeTasks (without tags) out of the way of the test's own.
    let quiet = EcsTimings {
        follow_interval: Duration::from_secs(3600),
        ..fast()
    };
    let launcher = EcsLauncher::with_timings(&moto.sdk_config().await, settings.clone(), quiet);
    let run = RunId::new("run-ecs-1").expect("run id");
    let (events, _exits) = mpsc::unbounded_channel();

    let launched = launcher
        .launch(spec(&run, 25), events)
        .await
        .expect("25 agents launch");
    assert_eq!(launched.len(), 25);

    let tasks = describe_all(&ecs).await;
    assert_eq!(tasks.len(), 25, "one task per agent, no more");
    // moto keeps `startedBy` for ListTasks' filter but leaves it out of DescribeTasks.
    let started_by_run = ecs
        .list_tasks()
        .cluster(CLUSTER)
        .started_by("run-ecs-1")
        .send()
        .await
        .expect("list by startedBy");
    assert_eq!(started_by_run.task_arns().len(), 25);
    let mut agents = Vec::new();
    for task in &tasks {
        assert_eq!(task.launch_type(), Some(&LaunchType::Fargate));
        assert_eq!(task.last_status(), Some("RUNNING"));
        assert_eq!(task.group(), Some("herd:run-ecs-1"));
        let overrides = task.overrides().expect("overrides").container_overrides();
        assert_eq!(overrides.len(), 1);
        assert_eq!(overrides[0].name(), Some("herd-agent"));
        let command = overrides[0].command();
        assert_eq!(
            command[..6],
            ["agent", "--broker", BROKER, "--run", "run-ecs-1", "--agent"].map(String::from)
        );
        let agent = command[6].clone();
        let tag = |k: &str| {
            task.tags()
                .iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .map(str::to_owned)
        };
        assert_eq!(tag("herd:run").as_deref(), Some("run-ecs-1"));
        assert_eq!(tag("herd:agent").as_deref(), Some(agent.as_str()));
        let handle = launched
            .iter()
            .find(|l| l.agent.as_str() == agent)
            .map(|l| l.handle.as_str());
        assert_eq!(handle, task.task_arn(), "Launched names the agent's task");
        agents.push(agent);
    }
    // Distinct agent ids in the tasks' overrides: every RunTask call started exactly one task
    // (a call's overrides apply to each task it starts).
    agents.sort_by_key(|a| {
        a.trim_start_matches("agent-")
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    let expected: Vec<String> = (0..25).map(|i| format!("agent-{i}")).collect();
    assert_eq!(agents, expected);
    let subnets = tasks[0]
        .attachments()
        .iter()
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some("subnetId"))
        .and_then(|d| d.value())
        .map(str::to_owned);
    assert_eq!(subnets.as_deref(), Some(settings.subnets[0].as_str()));

    launcher.stop(&run).await;
    let tasks = describe_all(&ecs).await;
    assert_eq!(tasks.len(), 25);
    for task in &tasks {
        assert_eq!(task.last_status(), Some("STOPPED"), "{:?}", task.task_arn());
        assert_eq!(task.stopped_reason(), Some("herd: the run ended"));
    }
}

#[tokio::test]
async fn a_task_that_stops_is_reported_as_its_agent_exiting() {
    let moto = Moto::start();
    let (ecs, settings) = ecs_setup(&moto, FAMILY).await;
    let launcher = EcsLauncher::with_timings(&moto.sdk_config().await, settings, fast());
    let run = RunId::new("run-ecs-2").expect("run id");
    let (events, mut exits) = mpsc::unbounded_channel();
    let launched = launcher
        .launch(spec(&run, 2), events)
        .await
        .expect("launch");
    let victim = &launched[1];
    ecs.stop_task()
        .cluster(CLUSTER)
        .task(&victim.handle)
        .reason("OutOfMemoryError: Container killed due to memory usage")
        .send()
        .await
        .expect("stop one task");
    let exit = tokio::time::timeout(Duration::from_secs(20), exits.recv())
        .await
        .expect("the follower reports the stopped task")
        .expect("an exit");
    assert_eq!(exit.agent, victim.agent);
    // moto gives every container exit code 0 (an agent told to stop by SIGTERM also exits 0).
    assert!(exit.success, "{}", exit.detail);
    assert!(exit.detail.contains("exit code 0"), "{}", exit.detail);
    assert!(
        exit.detail.contains("OutOfMemoryError"),
        "the stop reason is in the detail: {}",
        exit.detail
    );
    launcher.stop(&run).await;
}

/// A replacement launched during a run joins the run's tasks: the first ones are still
/// followed (an exit is reported) and stopping the run stops them all.
#[tokio::test]
async fn a_later_launch_for_the_same_run_adds_to_its_tasks() {
    let moto = Moto::start();
    let (ecs, settings) = ecs_setup(&moto, FAMILY).await;
    let launcher = EcsLauncher::with_timings(&moto.sdk_config().await, settings, fast());
    let run = RunId::new("run-ecs-5").expect("run id");
    let (events, mut exits) = mpsc::unbounded_channel();
    let first = launcher
        .launch(spec(&run, 2), events.clone())
        .await
        .expect("launch");
    let replacement = LaunchSpec {
        agents: vec![AgentId::new("agent-1-r1").expect("valid")],
        ..spec(&run, 0)
    };
    let later = launcher.launch(replacement, events).await.expect("launch");
    assert_eq!(later.len(), 1);
    ecs.stop_task()
        .cluster(CLUSTER)
        .task(&first[0].handle)
        .reason("lost")
        .send()
        .await
        .expect("stop one task");
    let exit = tokio::time::timeout(Duration::from_secs(20), exits.recv())
        .await
        .expect("the first task is still followed")
        .expect("an exit");
    assert_eq!(exit.agent, first[0].agent);
    launcher.stop(&run).await;
    let tasks = describe_all(&ecs).await;
    assert_eq!(tasks.len(), 3);
    let stopped_by_run = tasks
        .iter()
        .filter(|t| t.stopped_reason() == Some("herd: the run ended"))
        .count();
    assert_eq!(
        stopped_by_run, 2,
        "the other first task and the replacement"
    );
    assert!(tasks.iter().all(|t| t.last_status() == Some("STOPPED")));
}

#[tokio::test]
async fn a_launch_that_cannot_start_fails_naming_how_many_started_and_why() {
    let moto = Moto::start();
    let (_ecs, settings) = ecs_setup(&moto, "herd-missing:7").await;
    let launcher = EcsLauncher::with_timings(&moto.sdk_config().await, settings, fast());
    let run = RunId::new("run-ecs-3").expect("run id");
    let (events, _exits) = mpsc::unbounded_channel();
    let err = launcher
        .launch(spec(&run, 3), events)
        .await
        .expect_err("no task definition herd-missing:7");
    let text = err.to_string();
    assert!(
        text.starts_with("only 0 of 3 agents could be started: agent-"),
        "{text}"
    );
    assert!(text.contains("ClientException"), "the API's reason: {text}");
}

#[tokio::test]
async fn a_later_coordinator_stops_a_runs_tasks_it_did_not_start() {
    let moto = Moto::start();
    let (ecs, settings) = ecs_setup(&moto, FAMILY).await;
    let sdk = moto.sdk_config().await;
    let first = EcsLauncher::with_timings(&sdk, settings.clone(), fast());
    let run = RunId::new("run-ecs-4").expect("run id");
    let (events, _exits) = mpsc::unbounded_channel();
    first.launch(spec(&run, 3), events).await.expect("launch");
    let other = RunId::new("run-ecs-other").expect("run id");
    let (events, _other_exits) = mpsc::unbounded_channel();
    first.launch(spec(&other, 1), events).await.expect("launch");

    EcsLauncher::with_timings(&sdk, settings, fast())
        .stop(&run)
        .await;
    let tasks = describe_all(&ecs).await;
    let status = |run: &str| {
        tasks
            .iter()
            .filter(|t| t.group() == Some(format!("herd:{run}").as_str()))
            .map(|t| t.last_status().unwrap_or("?").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(status("run-ecs-4"), ["STOPPED"; 3]);
    assert_eq!(
        status("run-ecs-other"),
        ["RUNNING"],
        "only the run's own tasks"
    );
}

#[tokio::test]
async fn agents_placed_in_regions_run_in_each_regions_cluster_with_that_regions_network() {
    let moto = Moto::start();
    let (home_ecs, home) = ecs_setup(&moto, FAMILY).await;
    let (eu_ecs, eu) = ecs_setup_in(&moto, "eu-west-1", FAMILY).await;
    assert_ne!(home.subnets, eu.subnets, "each region has its own subnets");
    let settings = EcsSettings {
        regions: vec![EcsRegion {
            region: "eu-west-1".into(),
            cluster: eu.cluster.clone(),
            task_definition: eu.task_definition.clone(),
            container_name: eu.container_name.clone(),
            subnets: eu.subnets.clone(),
            security_groups: eu.security_groups.clone(),
            assign_public_ip: true,
        }],
        ..home.clone()
    };
    let quiet = EcsTimings {
        follow_interval: Duration::from_secs(3600),
        ..fast()
    };
    let launcher = EcsLauncher::with_timings(&moto.sdk_config().await, settings, quiet);
    assert_eq!(
        launcher.regions(),
        Some(vec!["eu-west-1".to_owned(), "us-east-1".to_owned()]),
        "[[launcher.regions]] and the coordinator's own region"
    );
    let run = RunId::new("run-ecs-regions").expect("run id");
    let mut regional = spec(&run, 6);
    regional.regions = (0..6)
        .map(|i| {
            let region = if i < 4 { "eu-west-1" } else { "us-east-1" };
            (AgentId::numbered(i), region.to_owned())
        })
        .collect();
    let (events, _exits) = mpsc::unbounded_channel();
    let launched = launcher
        .launch(regional, events)
        .await
        .expect("6 agents launch");
    assert_eq!(launched.len(), 6);

    let agents_in = |tasks: &[Task], region: &str, subnet: &str| -> Vec<String> {
        let mut agents: Vec<String> = tasks
            .iter()
            .map(|t| {
                let arn = t.task_arn().unwrap_or_default();
                assert!(arn.contains(&format!(":{region}:")), "{arn} is in {region}");
                let attached = t
                    .attachments()
                    .iter()
                    .flat_map(|a| a.details())
                    .find(|d| d.name() == Some("subnetId"))
                    .and_then(|d| d.value());
                assert_eq!(attached, Some(subnet), "the region's own subnet");
                t.overrides().expect("overrides").container_overrides()[0].command()[6].clone()
            })
            .collect();
        agents.sort();
        agents
    };
    let eu_tasks = describe_all(&eu_ecs).await;
    assert_eq!(
        agents_in(&eu_tasks, "eu-west-1", &eu.subnets[0]),
        ["agent-0", "agent-1", "agent-2", "agent-3"]
    );
    let home_tasks = describe_all(&home_ecs).await;
    assert_eq!(
        agents_in(&home_tasks, "us-east-1", &home.subnets[0]),
        ["agent-4", "agent-5"]
    );

    // A later coordinator finds and stops the run's tasks in every region.
    EcsLauncher::with_timings(
        &moto.sdk_config().await,
        EcsSettings {
            regions: vec![EcsRegion {
                region: "eu-west-1".into(),
                cluster: eu.cluster.clone(),
                task_definition: eu.task_definition.clone(),
                container_name: eu.container_name.clone(),
                subnets: eu.subnets.clone(),
                security_groups: eu.security_groups.clone(),
                assign_public_ip: true,
            }],
            ..home.clone()
        },
        fast(),
    )
    .stop(&run)
    .await;
    for tasks in [describe_all(&eu_ecs).await, describe_all(&home_ecs).await] {
        for task in &tasks {
            assert_eq!(task.last_status(), Some("STOPPED"), "{:?}", task.task_arn());
        }
    }

    // A region without a table fails the launch before any task starts.
    let mut unknown = spec(&RunId::new("run-ecs-nowhere").expect("run id"), 1);
    unknown
        .regions
        .insert(AgentId::numbered(0), "ap-south-1".into());
    let (events, _exits) = mpsc::unbounded_channel();
    let err = launcher
        .launch(unknown, events)
        .await
        .expect_err("ap-south-1 is not configured");
    assert_eq!(
        err.to_string(),
        "only 0 of 1 agents could be started: agent-0: region \"ap-south-1\" has no \
         [[launcher.regions]] table in herd.toml (configured: eu-west-1, us-east-1)"
    );
}
