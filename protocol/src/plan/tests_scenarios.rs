//! `scenarios:`: several scenarios in one plan, each with its own load and steps.

use super::*;

const TWO: &str = r#"
version: 1
name: two
target: http://127.0.0.1:8080
agents: 2
vars: { user: u0 }
scenarios:
  browse:
    load: { vus: 3, duration: 2s }
    steps:
      - name: a
        get: /a?u=${user}
  buy:
    load:
      arrival: [{ duration: 2s, rps: 50 }]
    vars: { user: buyer, cart: c1 }
    steps:
      - group: checkout
        steps:
          - post: /b/${cart}
thresholds:
  - "p99 < 1s"
  - "error_rate{step:a} < 1%"
  - "p99{group:checkout} < 2s"
"#;

fn errors(text: &str) -> Vec<String> {
    match from_yaml_str(text) {
        Ok(_) => panic!("the plan should be refused"),
        Err(PlanErrors(e)) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn two_scenarios_parse_with_their_own_loads_steps_and_vars() {
    let plan = from_yaml_str(TWO).expect("valid");
    assert!(plan.has_scenarios());
    assert_eq!(plan.scenario_names(), ["browse", "buy"]);
    let runs = plan.scenario_runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].name, Some("browse"));
    assert_eq!(runs[0].load.max_vus(), 3);
    assert_eq!(runs[0].load.duration(), Duration::from_secs(2));
    assert!(runs[1].load.arrival.is_some());
    assert_eq!(
        runs[1].vars,
        [
            ("cart".to_string(), "c1".to_string()),
            ("user".into(), "buyer".into())
        ]
    );
    assert_eq!(plan.duration(), Duration::from_secs(2));
    assert_eq!(plan.step_labels(), ["a", "POST /b/${cart}"]);
    assert_eq!(plan.group_names(), ["checkout"]);
    // No top-level load or steps: every reader goes through `scenario_runs`.
    assert!(plan.scenario.is_empty());
    assert_eq!(plan.load, Load::default());
}

#[test]
fn a_plan_with_scenarios_reads_back_from_its_json() {
    let plan = from_yaml_str(TWO).expect("valid");
    let json = plan.to_json();
    assert!(json.get("load").is_none() && json.get("scenario").is_none());
    assert_eq!(from_value(&json), Ok(plan));
}

#[test]
fn the_single_scenario_form_has_one_unnamed_run() {
    let plan = from_yaml_str(tests::SMOKE).expect("valid");
    assert!(!plan.has_scenarios());
    let runs = plan.scenario_runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].name, None);
    assert_eq!(runs[0].steps.len(), 3);
    assert_eq!(plan.duration(), plan.load.duration());
    assert!(plan.to_json().get("scenarios").is_none());
}

#[test]
fn every_problem_of_every_scenario_is_named_at_once() {
    let errs = errors(
        r#"
version: 1
name: bad
target: http://127.0.0.1:8080
load: { vus: 1, duration: 1s }
scenario: [{ get: / }]
scenarios:
  1st:
    load: { stages: [{ duration: 1s, vus: 0 }] }
    steps: [{ get: /x }]
  no_load:
    steps: [{ get: /y }]
  no_steps:
    load: { vus: 1, duration: 1s }
  bad_step:
    load: { arrival: [{ duration: 1s, rps: 5 }], iterations: 3 }
    steps: [{ get: nope }, { think: 1s }]
    vars: { "bad name": 1 }
    extra: true
  unknown_var:
    load: { vus: 1, duration: 1s }
    steps: [{ get: "/${missing}" }]
  thinker:
    load: { vus: 1, duration: 1s }
    steps: [{ think: 1s }]
"#,
    );
    let want = [
        "load: a plan with `scenarios` gives each scenario its own load and steps",
        "scenario: a plan with `scenarios` gives each scenario its own load and steps",
        "scenarios.1st: is not a scenario name",
        "scenarios.1st.load.stages: at least one stage must have vus > 0",
        "scenarios.no_load.load: is required",
        "scenarios.no_steps.steps: is required",
        "scenarios.bad_step.extra: unknown field",
        "scenarios.bad_step.load.iterations: belongs to the closed model",
        "scenarios.bad_step.vars.bad name:",
        "scenarios.bad_step.steps[0].get: must be a path starting with '/'",
        "scenarios.unknown_var.steps[0].get: unknown variable ${missing}",
        "scenarios.thinker.steps: must have at least one request step",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {errs:#?}"
        );
    }
}

#[test]
fn a_step_label_or_group_in_two_scenarios_is_refused_by_name() {
    let errs = errors(
        r#"
version: 1
name: clash
target: http://127.0.0.1:8080
scenarios:
  a:
    load: { vus: 1, duration: 1s }
    steps: [{ get: /same }, { group: g, steps: [{ get: /g1 }] }]
  b:
    load: { vus: 1, duration: 1s }
    steps: [{ get: /same }, { group: g, steps: [{ get: /g2 }] }, { name: own, get: /same }]
"#,
    );
    assert_eq!(
        errs,
        [
            "scenarios.b.steps: step \"GET /same\" is in scenario a too: results list steps by \
             label, so give it a `name:` of its own in one of them",
            "scenarios.b.steps: group \"g\" is in scenario a too: results list steps by label, \
             so give it a `name:` of its own in one of them",
        ]
    );
}

#[test]
fn scenarios_must_be_a_non_empty_map() {
    let base = "version: 1\nname: x\ntarget: http://127.0.0.1:1\n";
    assert_eq!(
        errors(&format!("{base}scenarios: [a]\n")),
        ["scenarios: must be a map of scenario names to {load, steps}, got a list"]
    );
    assert_eq!(
        errors(&format!("{base}scenarios: {{}}\n")),
        ["scenarios: must name at least one scenario"]
    );
}

#[test]
fn thresholds_may_select_steps_of_any_scenario() {
    let errs = errors(&TWO.replace("{group:checkout}", "{group:nowhere}"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("thresholds[2]: no group is named \"nowhere\""),
        "{errs:?}"
    );
}

#[test]
fn run_overrides_of_the_load_are_refused_and_set_reaches_one_scenario() {
    let mut value = value_from_text(TWO, false).expect("yaml");
    let vus = Overrides {
        vus: Some(9),
        duration: Some("1s".into()),
        ..Overrides::default()
    };
    let errs: Vec<String> = vus
        .apply(&mut value.clone())
        .expect_err("refused")
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        [
            "--vus: the plan has several scenarios, each with its own load: change one with \
          --set scenarios.NAME.load.vus=N (or .load.arrival[0].rps=R)"
        ]
    );
    let set = Overrides {
        set: vec![("scenarios.browse.load.vus".into(), "7".into())],
        ..Overrides::default()
    };
    set.apply(&mut value).expect("applies");
    let plan = from_value(&value).expect("valid");
    assert_eq!(plan.scenarios[0].load.max_vus(), 7);
}

#[test]
fn a_scenario_describes_itself_for_validate() {
    let plan = from_yaml_str(TWO).expect("valid");
    assert_eq!(
        plan.scenarios[0].describe(),
        "browse: 3 VUs (peak) for 2.0s, 1 step"
    );
    assert_eq!(
        plan.scenarios[1].describe(),
        "buy: arrivals up to 50/s for 2.0s, 1 step"
    );
}
