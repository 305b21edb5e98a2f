use super::*;

const CONTRACT: &str = r#"
[aws]
region = "us-east-1"
endpoint_url = "http://127.0.0.1:5000"
[commands]
sqs_queue_url = "http://127.0.0.1:5000/123456789012/herd-commands"
[events]
sns_topic_arn = "arn:aws:sns:us-east-1:123456789012:herd-events"
[store]
kind = "dynamodb"
table_prefix = "herd-"
[broker]
url = "mqtt://127.0.0.1:1883"
[launcher]
kind = "local"
"#;

#[test]
fn the_contract_example_is_valid() {
    let c = ServiceConfig::from_toml(CONTRACT).expect("valid");
    assert_eq!(c.aws.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        c.commands.as_ref().map(|c| c.queue_url.as_str()),
        Some("http://127.0.0.1:5000/123456789012/herd-commands")
    );
    assert_eq!(
        c.commands.as_ref().map(|c| c.wait_time),
        Some(Duration::from_secs(20))
    );
    assert_eq!(c.events.as_ref().map(|e| e.format), Some(EventFormat::Json));
    assert_eq!(
        c.store,
        StoreConfig::DynamoDb {
            table_prefix: "herd-".into(),
            create_tables: true
        }
    );
    assert_eq!(
        c.broker.url.as_ref().map(|u| u.to_string()).as_deref(),
        Some("mqtt://127.0.0.1:1883")
    );
    assert_eq!(c.broker.commands_via, CommandsVia::Mqtt);
    assert_eq!(c.launcher, LauncherConfig::Local);
    assert!(c.uses_aws());
}

#[test]
fn an_empty_file_is_the_embedded_mode() {
    let c = ServiceConfig::from_toml("").expect("valid");
    assert_eq!(c.store, StoreConfig::Embedded { data_dir: None });
    assert_eq!(c.broker.url, None);
    assert_eq!(c.launcher, LauncherConfig::Local);
    assert!(c.commands.is_none() && c.events.is_none());
    assert!(!c.uses_aws());
    assert_eq!(c, ServiceConfig::default());
}

#[test]
fn an_unknown_key_is_named() {
    let e = ServiceConfig::from_toml("[store]\nkind = \"dynamodb\"\ntable_prefx = \"x\"\n")
        .expect_err("unknown key");
    assert!(e.to_string().contains("table_prefx"), "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
version = 2
[api]
listen = "nowhere"
[commands]
wait_time_s = 30
[events]
sns_topic_arn = "herd-events"
format = "slack"
[store]
kind = "postgres"
[broker]
url = "http://x:1"
frames_via = "sqs"
[launcher]
kind = "ecs"
cluster = "c"
"#;
    let e = ServiceConfig::from_toml(text).expect_err("invalid");
    let keys: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "version",
            "api.listen",
            "commands.sqs_queue_url",
            "commands.wait_time_s",
            "events.sns_topic_arn",
            "events.format",
            "store.kind",
            "broker.url",
            "broker.frames_queue_url",
            "broker.frames_via",
            "launcher.task_definition",
            "launcher.subnets",
        ],
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("launcher.subnets: at least one is required when launcher.kind = \"ecs\""),
        "{e}"
    );
}

#[test]
fn ecs_and_iot_settings_are_typed() {
    let text = r#"
[broker]
url = "mqtt://127.0.0.1:1883"
agent_url = "mqtts://abc-ats.iot.us-east-1.amazonaws.com:8883"
commands_via = "iot-data"
iot_endpoint_url = "http://127.0.0.1:9000"
frames_via = "sqs"
frames_queue_url = "http://127.0.0.1:5000/123456789012/herd-frames"
[launcher]
kind = "ecs"
cluster = "herd"
task_definition = "herd-agent:3"
subnets = ["subnet-1", "subnet-2"]
security_groups = ["sg-1"]
"#;
    let c = ServiceConfig::from_toml(text).expect("valid");
    assert_eq!(
        c.broker.commands_via,
        CommandsVia::IotData {
            endpoint_url: Some("http://127.0.0.1:9000".into())
        }
    );
    assert_eq!(
        c.broker.frames_via,
        FramesVia::Sqs {
            queue_url: "http://127.0.0.1:5000/123456789012/herd-frames".into()
        }
    );
    let LauncherConfig::Ecs(ecs) = c.launcher else {
        panic!("ecs launcher expected");
    };
    assert_eq!(ecs.container_name, "herd-agent");
    assert_eq!(ecs.subnets, ["subnet-1", "subnet-2"]);
    assert!(!ecs.assign_public_ip);
}

#[test]
fn a_tls_broker_takes_its_ca_and_client_certificate() {
    let text = r#"
[broker]
url = "mqtts://[::1]"
ca_file = "/etc/herd/ca.pem"
cert_file = "/etc/herd/coordinator.pem"
key_file = "/etc/herd/coordinator.key"
"#;
    let c = ServiceConfig::from_toml(text).expect("valid");
    let url = c.broker.url.expect("url");
    assert_eq!((url.host.as_str(), url.port), ("::1", 8883));
    assert!(c.broker.tls.ca.is_some() && c.broker.tls.key.is_some());
    let plain = ServiceConfig::from_toml("[broker]\nurl = \"mqtt://h:1\"\nca_file = \"ca.pem\"\n")
        .expect_err("TLS files without mqtts");
    assert!(
        plain
            .to_string()
            .contains("broker.ca_file: ca_file, cert_file and key_file are for a TLS broker"),
        "{plain}"
    );
    let ws = ServiceConfig::from_toml("[broker]\nurl = \"gopher://h\"\n").expect_err("scheme");
    assert!(
        ws.to_string().starts_with("broker.url: the scheme must be"),
        "{ws}"
    );
}

/// The keys of every problem `text` has.
fn problem_keys(text: &str) -> Vec<String> {
    ServiceConfig::from_toml(text)
        .expect_err("invalid")
        .0
        .into_iter()
        .map(|e| e.key)
        .collect()
}

#[test]
fn broker_auth_is_none_or_a_certificate() {
    let none =
        ServiceConfig::from_toml("[broker]\nurl = \"mqtts://iot.example:8883\"\n").expect("valid");
    assert_eq!(none.broker.auth, BrokerAuth::None);
    let files = "cert_file = \"c.pem\"\nkey_file = \"k.pem\"\n";
    let implied = ServiceConfig::from_toml(&format!(
        "[broker]\nurl = \"mqtts://iot.example:8883\"\n{files}"
    ))
    .expect("a certificate without auth is auth = certificate");
    assert_eq!(implied.broker.auth, BrokerAuth::Certificate);
    let explicit = ServiceConfig::from_toml(&format!(
        "[broker]\nurl = \"mqtts://iot.example:8883\"\nauth = \"certificate\"\n{files}"
    ))
    .expect("valid");
    assert_eq!(explicit.broker.auth, BrokerAuth::Certificate);
    assert_eq!(
        problem_keys("[broker]\nurl = \"mqtts://iot.example:8883\"\nauth = \"certificate\"\n"),
        ["broker.cert_file", "broker.key_file"]
    );
    assert_eq!(
        problem_keys(&format!(
            "[broker]\nurl = \"mqtts://iot.example:8883\"\nauth = \"none\"\n{files}"
        )),
        ["broker.auth"]
    );
    assert_eq!(
        problem_keys("[broker]\nurl = \"mqtts://h\"\nauth = \"basic\"\n"),
        ["broker.auth"]
    );
}

#[test]
fn broker_auth_sigv4_is_for_websocket_urls_without_certificates() {
    let ok = ServiceConfig::from_toml(
        "[broker]\nurl = \"wss://abc-ats.iot.us-east-1.amazonaws.com/mqtt\"\nauth = \"sigv4\"\n",
    )
    .expect("sigv4 over wss");
    assert_eq!(ok.broker.auth, BrokerAuth::SigV4);
    let text = r#"
[api]
max_agents = 0
[broker]
url = "mqtts://abc-ats.iot.us-east-1.amazonaws.com"
auth = "sigv4"
"#;
    let errors = ServiceConfig::from_toml(text).expect_err("sigv4 needs a websocket");
    let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["api.max_agents", "broker.auth"]);
    assert!(errors.0[1].problem.contains("wss://"), "{errors}");
}

/// The coordinator's `herd.toml` the hub template renders (`HERD_CONFIG_TOML`), with a stack's
/// values in place of its `${…}`: it parses, needs no MQTT session, and tells agents IoT Core.
#[test]
fn the_hub_templates_coordinator_config_parses() {
    let template = include_str!("../../../infra/cloudformation/herd.yaml");
    let start = template
        .find("- Name: HERD_CONFIG_TOML")
        .expect("the template sets HERD_CONFIG_TOML");
    let block = &template[start..];
    let body = block
        .find("- |\n")
        .map(|i| &block[i + 4..])
        .expect("a literal block");
    let indent = body.len() - body.trim_start().len();
    let text: String = body
        .lines()
        .take_while(|l| l.len() > indent && l[..indent].trim().is_empty())
        .map(|l| format!("{}\n", &l[indent..]))
        .collect();
    for (subnets, public_ip) in [
        ("subnet-a\", \"subnet-b", "true"),
        ("subnet-private-a\", \"subnet-private-b", "false"),
    ] {
        let rendered = text
            .replace("${AWS::Region}", "eu-west-1")
            .replace("${MaxAgents}", "64")
            .replace(
                "${CommandsQueue}",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/herd-commands",
            )
            .replace(
                "${EventsTopic}",
                "arn:aws:sns:eu-west-1:123456789012:herd-events",
            )
            .replace("${TablePrefix}", "herd-")
            .replace("${IotEndpoint}", "abc123-ats.iot.eu-west-1.amazonaws.com")
            .replace(
                "${FramesQueue}",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/herd-frames",
            )
            .replace("${Cluster}", "herd")
            .replace(
                "${AgentTaskDefinition}",
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/herd-agent:1",
            )
            .replace("${SubnetList}", subnets)
            .replace("${AgentSecurityGroup}", "sg-1")
            .replace("${PublicIp}", public_ip)
            .replace("${ExtraConfigToml}", "");
        assert!(!rendered.contains("${"), "unsubstituted: {rendered}");
        let c = ServiceConfig::from_toml(&rendered).unwrap_or_else(|e| panic!("{e}\n{rendered}"));
        assert_eq!(c.broker.auth, BrokerAuth::None);
        assert!(matches!(c.broker.commands_via, CommandsVia::IotData { .. }));
        assert!(matches!(c.broker.frames_via, FramesVia::Sqs { .. }));
        let url = c.broker.url.expect("agents are told IoT Core");
        assert_eq!(url.host, "abc123-ats.iot.eu-west-1.amazonaws.com");
        let LauncherConfig::Ecs(ecs) = c.launcher else {
            panic!("ecs launcher expected");
        };
        assert_eq!(ecs.subnets.len(), 2);
        assert_eq!(ecs.assign_public_ip, public_ip == "true");
    }
}

#[test]
fn the_write_rate_is_read_and_bad_values_are_named() {
    let config = ServiceConfig::from_toml("[api]\nwrites_per_second = 0.5\nwrite_burst = 3\n")
        .expect("valid");
    assert_eq!(config.writes_per_second, Some(0.5));
    assert_eq!(config.write_burst, Some(3));
    assert_eq!(
        problem_keys("[api]\nwrites_per_second = 0\nwrite_burst = -1\n"),
        ["api.writes_per_second", "api.write_burst"]
    );
}

#[test]
fn allowed_targets_are_read_and_a_bad_entry_is_named() {
    let config = ServiceConfig::from_toml(
        "[api]\nallowed_targets = [\"*.staging.example.com\", \"10.0.0.0/8\"]\n",
    )
    .expect("valid");
    assert_eq!(
        config.allowed_targets,
        Some(vec![
            "*.staging.example.com".to_string(),
            "10.0.0.0/8".to_string()
        ])
    );
    assert_eq!(
        problem_keys("[api]\nallowed_targets = [\"ok.com\", \"10.0.0.0/40\"]\n"),
        ["api.allowed_targets[1]"]
    );
}

#[test]
fn outputs_are_read_with_the_plans_rules_and_named_fields() {
    let c = ServiceConfig::from_toml(
        r#"
[[outputs]]
prometheus = { url = "http://127.0.0.1:9090/api/v1/write", labels = { env = "ci" } }
[[outputs]]
otlp = { url = "https://collector/v1/metrics" }
"#,
    )
    .expect("valid");
    assert_eq!(
        c.outputs,
        vec![
            herd_protocol::plan::Output::Prometheus {
                url: "http://127.0.0.1:9090/api/v1/write".into(),
                labels: vec![("env".into(), "ci".into())],
            },
            herd_protocol::plan::Output::Otlp {
                url: "https://collector/v1/metrics".into(),
                headers: vec![],
            },
        ]
    );
    assert!(ServiceConfig::from_toml("")
        .expect("valid")
        .outputs
        .is_empty());
    let errors = ServiceConfig::from_toml(
        "[[outputs]]\nprometheus = { url = \"x\", labels = { step = \"a\" } }\n[[outputs]]\nkafka = {}\n",
    )
    .expect_err("invalid")
    .to_string();
    for needle in [
        "outputs[0].prometheus.url",
        "outputs[0].prometheus.labels.step",
        "outputs[1].kafka",
    ] {
        assert!(errors.contains(needle), "{needle} not in {errors}");
    }
}

#[test]
fn launcher_regions_are_typed_with_defaults_from_launcher_and_every_problem_named() {
    let text = r#"
[launcher]
kind = "ecs"
cluster = "herd"
task_definition = "herd-agent:1"
subnets = ["subnet-home"]
assign_public_ip = true

[[launcher.regions]]
region = "eu-west-1"
cluster = "herd"
task_definition = "arn:aws:ecs:eu-west-1:123456789012:task-definition/herd-agent:3"
subnets = ["subnet-eu1", "subnet-eu2"]
security_groups = ["sg-eu"]

[[launcher.regions]]
region = "ap-southeast-2"
cluster = "herd-ap"
task_definition = "herd-agent"
subnets = ["subnet-ap"]
assign_public_ip = false
container_name = "agent"
"#;
    let c = ServiceConfig::from_toml(text).expect("valid");
    let LauncherConfig::Ecs(ecs) = c.launcher else {
        panic!("ecs launcher expected");
    };
    assert_eq!(ecs.regions.len(), 2);
    let eu = &ecs.regions[0];
    assert_eq!(
        (
            eu.region.as_str(),
            eu.subnets.len(),
            eu.security_groups.as_slice()
        ),
        ("eu-west-1", 2, ["sg-eu".to_string()].as_slice())
    );
    assert_eq!(eu.container_name, "herd-agent", "from [launcher]");
    assert!(eu.assign_public_ip, "from [launcher]");
    let ap = &ecs.regions[1];
    assert_eq!(
        (ap.container_name.as_str(), ap.assign_public_ip),
        ("agent", false)
    );
    assert_eq!(
        ecs.region_names(Some("us-east-1")),
        ["us-east-1", "eu-west-1", "ap-southeast-2"]
    );
    assert_eq!(
        ecs.placement("us-east-1", Some("us-east-1"))
            .map(|p| p.subnets),
        Some(vec!["subnet-home".to_string()]),
        "the coordinator's own region is the [launcher] table"
    );
    assert_eq!(
        ecs.placement("eu-west-1", Some("us-east-1")).as_ref(),
        Some(eu)
    );
    assert_eq!(ecs.placement("sa-east-1", Some("us-east-1")), None);

    let bad = r#"
[launcher]
kind = "ecs"
cluster = "herd"
task_definition = "herd-agent:1"
subnets = ["s"]
[[launcher.regions]]
region = "EU West"
task_definition = "t"
[[launcher.regions]]
region = "us-west-2"
cluster = "c"
task_definition = "t"
subnets = ["s"]
[[launcher.regions]]
region = "us-west-2"
cluster = "c"
task_definition = "t"
subnets = ["s"]
"#;
    let e = ServiceConfig::from_toml(bad).expect_err("invalid");
    let lines: Vec<String> =
        e.0.iter()
            .map(|e| format!("{}: {}", e.key, e.problem))
            .collect();
    assert_eq!(
        lines,
        [
            "launcher.regions[0].region: \"EU West\" is not a region name like eu-west-1",
            "launcher.regions[0].cluster: required in each [[launcher.regions]]",
            "launcher.regions[0].subnets: at least one is required in each [[launcher.regions]]",
            "launcher.regions[2].region: \"us-west-2\" has a table already: give each region once",
        ]
    );
    let local = ServiceConfig::from_toml("[[launcher.regions]]\nregion = \"eu-west-1\"\n")
        .expect_err("regions need ecs");
    assert!(
        e.to_string().contains("launcher.regions[0]") && local.to_string().contains(
            "launcher.regions: only for kind = \"ecs\" (local agents take a plan's regions as labels)"
        ),
        "{local}"
    );
}

#[test]
fn the_embedded_brokers_log_is_sized_in_mib_and_only_for_the_embedded_broker() {
    use crate::broker::LogWindow;
    let c = ServiceConfig::from_toml("[broker]\nembedded_log_mib = 10\n").expect("valid");
    assert_eq!(c.broker.embedded_log, LogWindow::total_mib(10));
    assert_eq!(c.broker.embedded_log.max_bytes(), 10 * 1024 * 1024);
    assert_eq!(
        ServiceConfig::default().broker.embedded_log,
        LogWindow::DEFAULT
    );
    assert_eq!(
        problem_keys("[broker]\nembedded_log_mib = 1\n"),
        ["broker.embedded_log_mib"]
    );
    assert_eq!(
        problem_keys("[broker]\nurl = \"mqtt://h:1\"\nembedded_log_mib = 10\n"),
        ["broker.embedded_log_mib"]
    );
}
