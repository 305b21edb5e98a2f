//! Golden tests of the Taurus, HAR and DLT importers.

use super::tests::{import, outcome_of, parse, requests, MapFiles};
use super::*;
use crate::plan::{Check, Step};
use std::time::Duration;

#[test]
fn taurus_requests_blocks_extractions_and_assertions() {
    let yaml = r#"
execution:
  concurrency: 4
  ramp-up: 10s
  hold-for: 1m
  scenario: shop
scenarios:
  shop:
    default-address: https://shop.example.com
    headers: { X-App: herd }
    think-time: 200ms
    variables: { sku: A-1 }
    requests:
      - /home
      - url: /login
        method: POST
        label: login
        body: { user: "u1", pass: "p w" }
        extract-jsonpath:
          token: { jsonpath: $.token, default: NONE }
        assert:
          - contains: ["200"]
            subject: http-code
      - transaction: buy
        do:
          - url: /cart/${sku}
            headers: { Authorization: "Bearer ${token}" }
            assert-jsonpath:
              - jsonpath: $.count
                expected-value: 1
                validate: true
      - loop: 2
        do:
          - /poll
      - include-scenario: extra
      - set-variables: { a: 1 }
  extra:
    requests:
      - url: https://shop.example.com/extra
        think-time: uniform(1s, 500ms)
"#;
    let imported = import(yaml.as_bytes());
    let plan = parse(&imported);
    assert_eq!(plan.target, "https://shop.example.com");
    let paths: Vec<String> = requests(&plan).into_iter().map(|r| r.1).collect();
    assert_eq!(
        paths,
        [
            "/home",
            "/login",
            "/cart/${sku}",
            "/poll",
            "/poll",
            "/extra"
        ]
    );
    let reqs: Vec<&crate::plan::RequestStep> = plan
        .scenario
        .iter()
        .filter_map(|s| {
            if let Step::Request(r) = s {
                Some(r)
            } else {
                None
            }
        })
        .collect();
    // Taurus maps are read without their order: fields are sorted.
    assert_eq!(reqs[1].body.as_deref(), Some("pass=p+w&user=u1"));
    assert!(reqs[1].checks.contains(&Check::Status(200)));
    assert_eq!(reqs[2].label, "buy");
    assert!(reqs[2].headers.iter().any(|h| h.0 == "X-App"));
    assert!(plan.vars.contains(&("token".into(), "NONE".into())));
    let stages: Vec<(u64, u32)> = plan
        .load
        .stages
        .iter()
        .map(|s| (s.duration.as_secs(), s.vus))
        .collect();
    assert_eq!(stages, [(10, 4), (60, 4)]);
    let last_think = plan.scenario.iter().rev().find_map(|s| {
        if let Step::Think(t) = s {
            Some(t.format())
        } else {
            None
        }
    });
    assert_eq!(last_think.as_deref(), Some("500ms..1500ms"));
    assert!(matches!(
        outcome_of(&imported.report, "requests[5]"),
        Outcome::Skipped(_)
    ));
}

#[test]
fn taurus_script_hands_over_to_the_jmeter_importer() {
    let yaml = b"execution:\n- concurrency: 7\n  hold-for: 2m\n  scenario: s\nscenarios:\n  s:\n    script: plan.jmx\n";
    let jmx = super::tests::jmx(
        &super::tests::tg(1, 0, 1),
        &super::tests::sampler("A", "GET", "/a", "", ""),
    );
    let imported = convert_with(
        yaml,
        &ImportOptions::default(),
        &MapFiles(vec![("plan.jmx", jmx)]),
    )
    .expect("import");
    let plan = parse(&imported);
    assert_eq!(plan.load.stages.last().map(|s| s.vus), Some(7));
    assert!(
        matches!(outcome_of(&imported.report, "script"), Outcome::Approximated(h) if h.contains("JMeter importer"))
    );
    let e = convert(yaml, &ImportOptions::default()).expect_err("no file");
    assert!(e.to_string().contains("plan.jmx"), "{e}");
}

#[test]
fn malformed_yaml_and_json_are_reported_at_their_position() {
    let e = convert(
        b"execution:\n  - concurrency: [1\nscenarios: {}\n",
        &ImportOptions::default(),
    )
    .expect_err("yaml");
    assert!(
        matches!(e, ImportError::Malformed { format: "YAML", .. })
            || matches!(e, ImportError::UnknownFormat(_)),
        "{e}"
    );
    let e = convert(b"{\"log\": {\"entries\": [}", &ImportOptions::default()).expect_err("json");
    assert!(
        matches!(
            e,
            ImportError::UnknownFormat(_) | ImportError::Malformed { .. }
        ),
        "{e}"
    );
}

fn entry(start: &str, time: f64, method: &str, url: &str, mime: &str, extra: &str) -> String {
    format!(
        r#"{{"startedDateTime": "{start}", "time": {time}, "request": {{"method": "{method}", "url": "{url}", "headers": [
          {{"name": ":authority", "value": "x"}}, {{"name": "Cookie", "value": "a=b"}}, {{"name": "Connection", "value": "keep-alive"}},
          {{"name": "Accept", "value": "*/*"}}]{extra}}},
          "response": {{"status": 200, "content": {{"mimeType": "{mime}"}}}}}}"#
    )
}

#[test]
fn har_entries_are_sorted_paused_filtered_and_decoded() {
    let entries = [
        entry(
            "2024-01-01T10:00:01.000Z",
            50.0,
            "GET",
            "https://app.example.com/logo.png",
            "image/png",
            "",
        ),
        entry(
            "2024-01-01T10:00:03.000Z",
            100.0,
            "POST",
            "https://app.example.com/api/save",
            "application/json",
            r#", "postData": {"mimeType": "application/json", "encoding": "base64", "text": "eyJhIjoxfQ=="}"#,
        ),
        entry(
            "2024-01-01T10:00:00.000Z",
            200.0,
            "GET",
            "https://app.example.com/",
            "text/html",
            "",
        ),
        entry(
            "2024-01-01T10:00:03.150Z",
            10.0,
            "GET",
            "https://cdn.other.com/x",
            "application/json",
            "",
        ),
        entry(
            "2024-01-01T10:00:03.160Z",
            10.0,
            "GET",
            "https://app.example.com/api/list?q=${x}",
            "application/json",
            "",
        ),
    ];
    let har = format!(
        r#"{{"log": {{"version": "1.2", "entries": [{}]}}}}"#,
        entries.join(",")
    );
    let imported = import(har.as_bytes());
    let plan = parse(&imported);
    assert_eq!(plan.target, "https://app.example.com");
    let reqs = requests(&plan);
    assert_eq!(
        reqs,
        [
            ("GET".to_string(), "/".to_string()),
            ("POST".to_string(), "/api/save".to_string()),
            ("GET".to_string(), "/api/list?q=$${x}".to_string()),
        ]
    );
    let Step::Think(t) = &plan.scenario[1] else {
        panic!("{:?}", plan.scenario)
    };
    // From the end of the last activity (the logo, 1.000 s + 50 ms) to the save at 3 s.
    assert_eq!(t.min, Duration::from_millis(1950));
    let Step::Request(save) = &plan.scenario[2] else {
        panic!()
    };
    assert_eq!(save.body.as_deref(), Some("{\"a\":1}"));
    let names: Vec<&str> = save.headers.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(names, ["Accept", "content-type"]);
    assert!(
        matches!(outcome_of(&imported.report, "logo.png"), Outcome::Skipped(w) if w.contains("static"))
    );
    assert!(
        matches!(outcome_of(&imported.report, "cdn.other.com"), Outcome::Skipped(w) if w.contains("one target"))
    );
    let with_static = convert(
        har.as_bytes(),
        &ImportOptions {
            include_static: true,
            ..ImportOptions::default()
        },
    )
    .expect("import");
    assert_eq!(requests(&parse(&with_static)).len(), 4);
}

#[test]
fn dlt_tasks_become_agents_and_the_schedule_herds() {
    let body = br#"{"testName": "api", "testTaskConfigs": [{"region": "us-east-1", "taskCount": 3, "concurrency": 20}],
      "testScenario": {"execution": [{"ramp-up": "1m", "hold-for": "10m", "scenario": "api"}],
        "scenarios": {"api": {"requests": [{"url": "https://api.example.com/v1/x", "method": "POST",
          "headers": {"content-type": "application/json"}, "body": "{\"k\": 1}"}]}}},
      "testType": "simple", "cronValue": "0 9 * * 1-5", "cronExpiryDate": "2026-12-31", "scheduleTimezone": "Europe/Paris"}"#;
    let imported = import(body);
    let plan = parse(&imported);
    assert_eq!(plan.agents, 3);
    let stages: Vec<(u64, u32)> = plan
        .load
        .stages
        .iter()
        .map(|s| (s.duration.as_secs(), s.vus))
        .collect();
    assert_eq!(stages, [(60, 60), (600, 60)]);
    assert_eq!(requests(&plan), [("POST".to_string(), "/v1/x".to_string())]);
    assert_eq!(
        imported.schedule,
        Some(
            serde_json::json!({"kind": "cron", "expr": "0 9 * * 1-5", "tz": "Europe/Paris", "until": "2026-12-31T23:59:59Z"})
        )
    );
    let overridden = convert(
        body,
        &ImportOptions {
            vus: Some(10),
            agents: Some(1),
            ..ImportOptions::default()
        },
    )
    .expect("import");
    let plan = parse(&overridden);
    assert_eq!((plan.agents, plan.load.stages[0].vus), (1, 10));
}

#[test]
fn taurus_executions_become_one_scenario_each_with_its_own_load() {
    let yaml = r#"
execution:
  - concurrency: 3
    hold-for: 30s
    scenario: browse
  - concurrency: 9
    ramp-up: 10s
    hold-for: 20s
    scenario: buy
  - concurrency: 1
    hold-for: 5s
    scenario: browse
modules: { jmeter: { version: 5.6 } }
scenarios:
  browse:
    default-address: http://shop.example.com
    requests: [/home, /list]
  buy:
    default-address: http://shop.example.com
    requests:
      - url: /cart
        method: POST
"#;
    let options = ImportOptions {
        vus: Some(26),
        ..ImportOptions::default()
    };
    let imported = convert(yaml.as_bytes(), &options).expect("import");
    let plan = parse(&imported);
    assert_eq!(plan.target, "http://shop.example.com");
    assert_eq!(plan.scenario_names(), ["browse", "browse_2", "buy"]);
    let by_name = |n: &str| {
        plan.scenarios
            .iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("scenario {n}"))
    };
    // --vus 26 is split by the executions' concurrency, 3:9:1; ramp and hold stay each one's.
    let stages = |n: &str| -> Vec<(u64, u32)> {
        by_name(n)
            .load
            .stages
            .iter()
            .map(|s| (s.duration.as_secs(), s.vus))
            .collect()
    };
    assert_eq!(stages("browse"), [(0, 6), (30, 6)]);
    assert_eq!(stages("buy"), [(10, 18), (20, 18)]);
    assert_eq!(stages("browse_2"), [(0, 2), (5, 2)]);
    // The same scenario run by two executions: the second's labels are its own.
    assert_eq!(
        plan.step_labels(),
        [
            "GET /home",
            "GET /list",
            "browse_2: GET /home",
            "browse_2: GET /list",
            "POST /cart"
        ]
    );
    assert_eq!(by_name("buy").steps.len(), 1);
    let executions: Vec<&str> = imported
        .report
        .items
        .iter()
        .filter(|i| i.element == "execution")
        .map(|i| i.path.as_str())
        .collect();
    assert_eq!(executions, ["execution[0]", "execution[1]", "execution[2]"]);
    assert_eq!(
        imported
            .report
            .items
            .iter()
            .filter(|i| i.element == "modules")
            .count(),
        1,
        "tool settings are reported once"
    );
    assert!(imported
        .report
        .warnings
        .iter()
        .any(|w| w
            == "3 executions became 3 scenarios, each with its own load: browse, buy, browse_2"));
}
