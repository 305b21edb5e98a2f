//! Tests of the scenario parts of a plan: variables, feeders, extractions, checks, and the
//! `iterations` / `vus` forms of the load.

use super::*;
use serde_json::json;
use std::collections::BTreeMap;

const SCENARIO: &str = r#"
version: 1
name: shop
target: http://127.0.0.1:8080
agents: 2
load:
  vus: 4
  iterations: 100
vars:
  page_size: 20
  greeting: hello
feeders:
  users:
    rows: [[user, password], [alice, a1], [bob, b2], [carol, "c,3"]]
    mode: per_vu
scenario:
  - name: login
    post: /login
    headers: { content-type: application/json }
    body: '{"user": "${user}", "password": "${password}", "price": "$5"}'
    extract:
      token: { json: "$.data.token" }
      csrf: { regex: 'csrf=([a-z0-9]+)' }
      next: { header: Location }
    checks:
      status: 200
      body_contains: [token, "${greeting}"]
      json: { "$.data.user": "${user}", "data.admin": false }
  - get: /items?size=${page_size}&vu=${__vu}
    headers: { authorization: "Bearer ${token}", x-csrf: "${csrf}" }
    checks: { max_latency: 1s }
"#;

fn errors(yaml: &str) -> Vec<String> {
    from_yaml_str(yaml)
        .expect_err("plan is invalid")
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn assert_reported(text: &[String], expected: &[&str]) {
    for e in expected {
        assert!(
            text.iter().any(|t| t.starts_with(e)),
            "missing {e:?} in {text:#?}"
        );
    }
}

#[test]
fn a_realistic_scenario_parses_and_round_trips() {
    let plan = from_yaml_str(SCENARIO).expect("valid");
    assert_eq!(
        plan.vars,
        [
            ("greeting".to_string(), "hello".to_string()),
            ("page_size".to_string(), "20".to_string())
        ]
    );
    let users = &plan.feeders[0];
    assert_eq!(users.name, "users");
    assert_eq!(users.mode, FeederMode::PerVu);
    assert_eq!(users.columns, ["user", "password"]);
    assert_eq!(users.rows[2], ["carol", "c,3"]);
    let Step::Request(login) = &plan.scenario[0] else {
        panic!("a request")
    };
    assert_eq!(
        login.extract,
        [
            Extract {
                var: "csrf".into(),
                from: ExtractFrom::Regex("csrf=([a-z0-9]+)".into()),
            },
            Extract {
                var: "next".into(),
                from: ExtractFrom::Header("location".into()),
            },
            Extract {
                var: "token".into(),
                from: ExtractFrom::Json(JsonPath::parse("$.data.token").expect("path")),
            },
        ]
    );
    assert!(login
        .checks
        .contains(&Check::BodyContains("${greeting}".into())));
    assert!(login.checks.contains(&Check::JsonEquals {
        path: JsonPath::parse("data.admin").expect("path"),
        value: json!(false),
    }));
    assert_eq!(plan.load.iterations, Some(100));
    assert_eq!(plan.load.duration(), DEFAULT_ITERATIONS_DURATION);
    // Four VUs from the first instant, held.
    assert_eq!(plan.load.vus_at(Duration::ZERO), 4);
    assert_eq!(plan.load.vus_at(Duration::from_secs(599)), 4);
    assert_eq!(from_value(&plan.to_json()), Ok(plan));
}

#[test]
fn unknown_variables_are_named_with_their_field() {
    let text = errors(
        &SCENARIO
            .replace("Bearer ${token}", "Bearer ${tokn}")
            .replace("size=${page_size}", "size=${page_sise}")
            .replace("\"${greeting}\"", "\"${greting}\""),
    );
    assert_reported(
        &text,
        &[
            "scenario[1].headers.authorization: unknown variable ${tokn}",
            "scenario[1].get: unknown variable ${page_sise}",
            "scenario[0].checks.body_contains: unknown variable ${greting}",
        ],
    );
    assert!(
        text[0].contains("defined: __agent, __iteration, __vu, csrf, greeting"),
        "{text:?}"
    );
    let syntax = errors(&SCENARIO.replace("\"${user}\", \"password\"", "\"${user\", \"password\""));
    assert_reported(
        &syntax,
        &["scenario[0].body: `${` at byte 10 does not start a reference"],
    );
    let json_value = errors(&SCENARIO.replace(
        "\"$.data.user\": \"${user}\"",
        "\"$.data.user\": \"${nobody}\"",
    ));
    assert_reported(
        &json_value,
        &["scenario[0].checks.json.$.data.user: unknown variable ${nobody}"],
    );
}

#[test]
fn feeder_mistakes_are_named() {
    let base = |feeders: &str| {
        format!(
            "version: 1\nname: f\ntarget: http://127.0.0.1:1\nagents: 3\nload: {{vus: 1, duration: 1s}}\n\
             vars: {{user: x}}\nfeeders: {feeders}\nscenario: [{{get: /}}]\n"
        )
    };
    let text = errors(&base(
        "{a: {rows: [[id], [1], [2]], mode: sideways}, b: {rows: [[id, x, x], [1, 2]]}, \
         c: {file: c.csv, rows: []}, d: {}, e: {rows: [[__vu, 9z]]}, f: {rows: [[only]]}}",
    ));
    assert_reported(
        &text,
        &[
            "feeders.a.mode: must be one of shared, per_vu, random, unique, got \"sideways\"",
            "feeders.b.rows: row 2 has 2 fields but the header has 3",
            "feeders.c: give either `file` or `rows`",
            "feeders.d: needs `file: PATH.csv`",
            "feeders.e.rows (header column 1): names starting with __ are reserved",
            "feeders.e.rows (header column 2): is not a variable name",
            "feeders.f.rows: has a header but no data row",
        ],
    );
    let twice = errors(&base(
        "{a: {rows: [[id], [1], [2], [3]]}, b: {rows: [[id], [1], [2], [3]]}}",
    ));
    assert_reported(
        &twice,
        &["feeders.b: column id is also a column of another feeder"],
    );
    let clash = errors(&base("{a: {rows: [[id, user], [1, u]]}}"));
    assert_reported(
        &clash,
        &[
            "vars.user: is defined by `vars` and by the columns of feeders.a",
            "feeders.a: has 1 rows but the run has 3 agents",
        ],
    );
    // Built as a value: 64 MiB of YAML text would take the parser a while.
    let mut big = value_from_text(&base("{}"), false).expect("yaml");
    big["feeders"] = json!({"big": {"rows": [["v"], ["x".repeat(MAX_FEEDER_BYTES)]]}});
    let text: Vec<String> = from_value(&big)
        .expect_err("too big")
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_reported(
        &text,
        &["feeders: 67108865 bytes of rows in all, more than the limit"],
    );
}

/// CSV files from memory, standing in for the coordinator's file system.
struct Files(BTreeMap<&'static str, &'static str>);

impl PlanFiles for Files {
    fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, String> {
        match self.0.get(path) {
            Some(text) if text.len() > limit => Err(format!("larger than {limit} bytes")),
            Some(text) => Ok(text.as_bytes().to_vec()),
            None => Err("no such file".into()),
        }
    }
}

#[test]
fn csv_files_are_read_through_the_loader_and_travel_as_rows() {
    let plan = "version: 1\nname: f\ntarget: http://127.0.0.1:1\nload: {vus: 1, duration: 1s}\n\
                feeders: {users: {file: users.csv, mode: shared}}\n\
                scenario: [{get: '/u/${user}?k=${key}'}]\n";
    let files = Files([("users.csv", "user,key\r\nalice,\"a,1\"\nbob,b2\n")].into());
    let parsed = from_yaml_str_with(plan, &files).expect("valid");
    assert_eq!(parsed.feeders[0].rows, [["alice", "a,1"], ["bob", "b2"]]);
    // Agents get the rows inside the plan, and parse it without any file.
    let json = parsed.to_json();
    assert!(json["feeders"]["users"].get("file").is_none());
    assert_eq!(from_value(&json), Ok(parsed));

    let text = from_yaml_str(plan).expect_err("no loader").to_string();
    assert!(
        text.starts_with("feeders.users.file: cannot read users.csv here"),
        "{text}"
    );
    let missing = from_yaml_str_with(&plan.replace("users.csv", "nope.csv"), &files)
        .expect_err("missing file")
        .to_string();
    assert_eq!(missing, "feeders.users.file: nope.csv: no such file");
    let broken = Files([("users.csv", "user,key\n\"open,1\n")].into());
    let text = from_yaml_str_with(plan, &broken)
        .expect_err("bad csv")
        .to_string();
    assert_eq!(
        text,
        "feeders.users.file: users.csv: line 2: a quoted field is not closed"
    );
}

#[test]
fn extraction_and_check_mistakes_are_named() {
    let yaml = r#"
version: 1
name: x
target: http://127.0.0.1:1
load: { vus: 1, duration: 1s }
scenario:
  - get: /
    extract:
      a: { regex: "(unclosed" }
      b: { json: "$..x" }
      c: { json: "$.x", header: y }
      9d: { header: x }
      e: { header: "bad header" }
      f: "$.x"
    checks:
      body_contains: []
      json: { "a[": 1 }
  - get: /
    checks: { json: [1] }
"#;
    assert_reported(
        &errors(yaml),
        &[
            "scenario[0].extract.a.regex: not a valid regular expression",
            "scenario[0].extract.b.json: not a JSON path",
            "scenario[0].extract.c: needs exactly one of json, regex, header",
            "scenario[0].extract.9d: is not a variable name",
            "scenario[0].extract.e.header: is not a valid header name",
            "scenario[0].extract.f: must be a map",
            "scenario[0].checks.body_contains: must be a non-empty text",
            "scenario[0].checks.json.a[: not a JSON path",
            "scenario[1].checks.json: must be a map of JSON paths",
        ],
    );
}

#[test]
fn iterations_bound_the_load_instead_of_a_duration() {
    let plan = |load: &str| {
        format!("version: 1\nname: i\ntarget: http://127.0.0.1:1\nload: {load}\nscenario: [{{get: /}}]\n")
    };
    let held = from_yaml_str(&plan("{vus: 3, duration: 2s}")).expect("valid");
    assert_eq!(held.load.duration(), Duration::from_secs(2));
    assert_eq!(held.load.iterations, None);
    assert_eq!(held.load.vus_at(Duration::ZERO), 3);
    let per_vu = from_yaml_str(&plan(
        "{stages: [{duration: 0s, vus: 5}, {duration: 1s, vus: 5}], iterations_per_vu: 2, iterations: 7}",
    ))
    .expect("valid");
    assert_eq!(per_vu.load.iterations_per_vu, Some(2));
    assert_eq!(per_vu.load.iterations, Some(7));
    assert_eq!(per_vu.load.vus_at(Duration::ZERO), 5);
    assert_eq!(from_value(&per_vu.to_json()), Ok(per_vu));
    assert_reported(
        &errors(&plan("{vus: 3}")),
        &["load.duration: is required with `vus`"],
    );
    assert_reported(
        &errors(&plan("{vus: 0, iterations: 0}")),
        &["load.vus: must be > 0", "load.iterations: must be >= 1"],
    );
    assert_reported(
        &errors(&plan("{vus: 2, stages: [{duration: 1s, vus: 1}]}")),
        &["load: use either `stages` or `vus`"],
    );
    assert_reported(
        &errors(&plan("{stages: [{duration: 0s, vus: 1}], duration: 1s}")),
        &[
            "load.duration: goes with `vus`",
            "load.stages: must last longer than 0s in all",
        ],
    );
    assert_reported(
        &errors(&plan("{arrival: [{duration: 1s, rps: 5}], iterations: 3}")),
        &["load.iterations: belongs to the closed model"],
    );
}

#[test]
fn variable_names_from_vars_and_extractions_are_checked() {
    let yaml = "version: 1\nname: v\ntarget: http://127.0.0.1:1\nload: {vus: 1, duration: 1s}\n\
                vars: {__vu: 1, ok: [1], 'a-b': x}\n\
                scenario: [{get: /, extract: {__agent: {header: x}}}]\n";
    assert_reported(
        &errors(yaml),
        &[
            "vars.__vu: names starting with __ are reserved",
            "vars.ok: must be a string, number or boolean",
            "vars.a-b: is not a variable name",
            "scenario[0].extract.__agent: names starting with __ are reserved",
        ],
    );
}

#[test]
fn template_functions_need_no_definition_and_bad_calls_name_their_field() {
    let plan = from_yaml_str(&SCENARIO.replace(
        "vu=${__vu}",
        "vu=${__vu}&r=${__random(1,100)}&id=${__uuid}&t=${__time}",
    ))
    .expect("functions need no definition");
    assert_eq!(from_value(&plan.to_json()), Ok(plan));
    let text = errors(
        &SCENARIO
            .replace("vu=${__vu}", "vu=${__random(9,1)}")
            .replace("Bearer ${token}", "${__uuid(x)}")
            .replace("\"${greeting}\"", "\"${__random}\""),
    );
    assert_reported(
        &text,
        &[
            "scenario[1].get: `${__random(9,1)}`: write `${__random(MIN,MAX)}`",
            "scenario[1].headers.authorization: `${__uuid}` takes no arguments",
            "scenario[0].checks.body_contains: `${__random}` needs its bounds",
        ],
    );
}
