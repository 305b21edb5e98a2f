use super::*;
use proptest::prelude::*;

pub(crate) const SMOKE: &str = r#"
version: 1
name: smoke
target: http://127.0.0.1:8080
agents: 3
load:
  stages:
    - { duration: 2s, vus: 20 }     # linear ramp from 0 to 20
    - { duration: 8s, vus: 20 }     # hold
scenario:
  - name: mix
    get: /mix
  - think: 10ms
  - name: login
    post: /login
    headers: { content-type: application/json }
    body: '{"user":"u1"}'
thresholds:
  - "p99 < 1s"
  - "error_rate < 1%"
"#;

#[test]
fn the_contract_plan_parses() {
    let plan = from_yaml_str(SMOKE).expect("the contract plan is valid");
    assert_eq!(plan.name, "smoke");
    assert_eq!(plan.agents, 3);
    assert_eq!(plan.load.duration(), Duration::from_secs(10));
    assert_eq!(plan.scenario.len(), 3);
    assert_eq!(
        plan.step_labels(),
        vec!["mix".to_string(), "login".to_string()]
    );
    assert_eq!(plan.thresholds.len(), 2);
    let Step::Request(login) = &plan.scenario[2] else {
        panic!("third step is a request")
    };
    assert_eq!(login.method, Method::Post);
    assert_eq!(login.body.as_deref(), Some(r#"{"user":"u1"}"#));
    assert_eq!(
        login.headers,
        vec![("content-type".into(), "application/json".into())]
    );
}

#[test]
fn every_mistake_is_reported_with_its_path() {
    let bad = r#"
version: 1
name: ""
target: ftp://nowhere
agents: 0
load:
  stages:
    - { duration: 2s, vus: 20 }
    - { duration: 0s, vus: -3 }
    - { duration: soon, vus: 5 }
scenario:
  - get: mix
  - think: 10
  - gett: /x
thresholds:
  - "p99 << 1s"
colour: blue
"#;
    let errors = from_yaml_str(bad).expect_err("plan is invalid").0;
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for expected in [
        "colour: unknown field",
        "name: must not be empty",
        "target: must be an http:// or https:// URL",
        "agents: must be >= 1",
        "load.stages[1].vus: must be > 0",
        "load.stages[2].duration: must be a duration",
        "scenario[0].get: must be a path starting with '/'",
        "scenario[1].think: must be a duration with a unit",
        "scenario[2].gett: unknown field",
        "thresholds[0]:",
    ] {
        assert!(
            text.iter().any(|t| t.starts_with(expected)),
            "missing {expected:?} in {text:#?}"
        );
    }
}

#[test]
fn unsupported_version_is_named() {
    let errors = from_json_str(r#"{"version": 2}"#).expect_err("invalid").0;
    assert!(errors
        .iter()
        .any(|e| e.path == "version" && e.message.contains("unsupported plan version 2")));
    assert!(from_yaml_str(": : :").is_err());
    assert!(from_json_str("[1,2]")
        .expect_err("invalid")
        .to_string()
        .contains("must be a map"));
}

#[test]
fn vus_follow_linear_ramps() {
    let plan = from_yaml_str(SMOKE).expect("valid");
    let at = |ms| plan.load.vus_at(Duration::from_millis(ms));
    assert_eq!(at(0), 0);
    assert_eq!(at(1000), 10);
    assert_eq!(at(1999), 19);
    assert_eq!(at(2000), 20);
    assert_eq!(at(9999), 20);
    assert_eq!(at(10_000), 0);
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u64..5_000_000).prop_map(|us| Step::Think(Think::fixed(Duration::from_micros(us)))),
        (
            proptest::option::of("[a-z]{1,8}"),
            0usize..6,
            "/[a-z0-9/]{0,12}",
            proptest::collection::vec(("[a-z][a-z-]{0,8}", "[ -~]{0,12}"), 0..3),
            proptest::option::of("[ -~]{0,20}"),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        )
            .prop_map(|(name, m, path, headers, body, file)| {
                let method = Method::ALL[m].0;
                // Texts are templates: `$${` keeps a generated `${` literal.
                let literal = |s: String| s.replace("${", "$${");
                let body = body.map(literal);
                let mut headers: Vec<(String, String)> =
                    headers.into_iter().map(|(k, v)| (k, literal(v))).collect();
                headers.sort();
                headers.dedup_by(|a, b| a.0 == b.0);
                Step::Request(RequestStep {
                    label: name
                        .clone()
                        .unwrap_or_else(|| format!("{} {}", method.as_str(), path)),
                    named: name.is_some(),
                    method,
                    path,
                    headers,
                    // At most one body: a file wins over text.
                    body: body.filter(|_| file.is_none()),
                    body_file: file.map(|content: Vec<u8>| BodyFile {
                        path: "data.bin".into(),
                        content: content.into(),
                    }),
                    checks: vec![],
                    extract: vec![],
                    timeout: None,
                    multipart: vec![],
                })
            }),
    ]
}

proptest! {
    #[test]
    fn plans_round_trip_through_json(
        agents in 1u32..64,
        stages in proptest::collection::vec((1u64..100_000, 1u32..10_000), 1..5),
        steps in proptest::collection::vec(arb_step(), 0..5),
        timeout_ms in 1u64..100_000,
        connect_ms in 1u64..100_000,
        http in 0usize..3,
        insecure_tls in any::<bool>(),
        redirects in 0u32..50,
    ) {
        let mut scenario = steps;
        scenario.push(Step::Request(RequestStep {
            label: "GET /".into(), named: false, method: Method::Get, path: "/".into(),
            headers: vec![], body: None, body_file: None, checks: vec![], extract: vec![],
            timeout: None,
            multipart: vec![],
        }));
        let plan = Plan {
            name: "p".into(),
            target: "http://127.0.0.1:1".into(),
            agents,
            secrets: vec![],
            outputs: vec![],
            regions: vec![],
            hosts: vec![],
            scenarios: vec![],
            scripts: None,
            setup: vec![],
            teardown: vec![],
            load: Load { stages: stages.into_iter().map(|(ms, vus)| Stage { duration: Duration::from_millis(ms), vus }).collect(), ..Load::default() },
            vars: vec![],
            feeders: vec![],
            scenario,
            thresholds: vec![Threshold::parse("p99 < 1s").expect("valid").into()],
            options: Options {
                timeout: Duration::from_millis(timeout_ms),
                connect_timeout: Duration::from_millis(connect_ms),
                http: HttpVersion::ALL[http].0,
                insecure_tls,
                redirects,
                ..Options::default()
            },
        };
        let back = from_value(&plan.to_json());
        prop_assert_eq!(back, Ok(plan));
    }
}

const OPEN: &str = r#"
version: 1
name: open
target: http://127.0.0.1:8080
load:
  arrival:
    - { duration: 1s, rps: 100 }
    - { duration: 2s, rps: 100 }
  start_rps: 50
  max_in_flight: 64
scenario:
  - get: /
  - think: 100ms..300ms
  - think: { min: 1ms, max: 2ms }
  - get: /checked
    checks: { status: 201, max_latency: 50ms }
"#;

#[test]
fn the_open_model_and_think_ranges_parse_and_round_trip() {
    let plan = from_yaml_str(OPEN).expect("valid");
    let arrival = plan.load.arrival.as_ref().expect("open model");
    assert_eq!(arrival.max_in_flight, 64);
    assert_eq!(arrival.start_rps, 50.0);
    // 75 arrivals in the ramp, 200 in the hold.
    assert_eq!(arrival.total(), 275);
    assert_eq!(plan.load.duration(), Duration::from_secs(3));
    assert_eq!(
        plan.scenario[1],
        Step::Think(Think {
            min: Duration::from_millis(100),
            max: Duration::from_millis(300)
        })
    );
    let Step::Request(checked) = &plan.scenario[3] else {
        panic!("fourth step is a request")
    };
    assert_eq!(
        checked.checks,
        vec![
            Check::Status(201),
            Check::MaxLatency(Duration::from_millis(50))
        ]
    );
    assert_eq!(from_value(&plan.to_json()), Ok(plan));
    let closed =
        from_yaml_str(&SMOKE.replace("load:\n", "load:\n  iterations: 5\n")).expect("valid");
    assert_eq!(closed.load.iterations, Some(5));
    assert_eq!(from_value(&closed.to_json()), Ok(closed));
}

#[test]
fn load_mistakes_are_reported_with_their_paths() {
    let bad = r#"
version: 1
name: n
target: http://127.0.0.1:8080
load:
  arrival:
    - { duration: 1s, rps: -1 }
    - { duration: 0s, rps: fast }
  max_in_flight: 0
  iterations: 3
scenario:
  - get: /
  - think: 3s..1s
  - think: { min: 1s }
  - get: /
    checks: { status: 999, body: x }
"#;
    let text: Vec<String> = from_yaml_str(bad)
        .expect_err("invalid")
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    for expected in [
        "load.iterations: belongs to the closed model",
        "load.max_in_flight: must be >= 1",
        "load.arrival[0].rps: must be from 0",
        "load.arrival[1].duration: must be > 0",
        "load.arrival[1].rps: must be a number",
        "scenario[1].think: min must not be greater than max",
        "scenario[2].think.max: is required",
        "scenario[3].checks.status: must be an HTTP status",
        "scenario[3].checks.body: unknown field",
    ] {
        assert!(
            text.iter().any(|t| t.starts_with(expected)),
            "missing {expected:?} in {text:#?}"
        );
    }
    let both = SMOKE.replace("load:\n", "load:\n  arrival: [{duration: 1s, rps: 1}]\n");
    let errors = from_yaml_str(&both).expect_err("invalid").to_string();
    assert!(errors.contains("use either `stages`"), "{errors}");
}

#[test]
fn ramp_stages_are_read_for_either_model_and_named_from_stages() {
    let vus = ramp_from_value(&serde_json::json!([{"duration": "2s", "vus": 6}])).expect("vus");
    assert_eq!(
        vus,
        RampStages::Vus(vec![Stage {
            duration: Duration::from_secs(2),
            vus: 6
        }])
    );
    assert_eq!(ramp_from_value(&vus.to_json()), Ok(vus));
    let rate = ramp_from_value(&serde_json::json!([{"duration": "1s", "rps": 20.5}])).expect("rps");
    assert_eq!(
        rate,
        RampStages::Rate(vec![RateStage {
            duration: Duration::from_secs(1),
            rps: 20.5
        }])
    );
    assert_eq!(ramp_from_value(&rate.to_json()), Ok(rate));
    let e = ramp_from_value(
        &serde_json::json!([{"duration": "1s", "vus": 2}, {"duration": "x", "vus": -1}]),
    )
    .expect_err("invalid")
    .to_string();
    assert!(e.contains("stages[1].duration"), "{e}");
    assert!(e.contains("stages[1].vus"), "{e}");
    assert!(!e.contains("load."), "{e}");
    assert!(ramp_from_value(&serde_json::json!([])).is_err());
}
