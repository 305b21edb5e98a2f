//! Tests of the steps that hold steps (`group`, `choose`, `repeat`, `if`, `pace`) and of
//! thresholds' selectors: parsing, errors named by their path through the tree, round trips.

use super::*;

const FLOW: &str = r#"
version: 1
name: flow
target: http://127.0.0.1:8080
load: { vus: 2, duration: 1s }
vars: { limit: 3 }
scenario:
  - group: checkout
    steps:
      - name: cart
        get: /cart
        extract: { items: { json: "$.items" } }
      - choose:
          - weight: 3
            steps: [{ name: pay, post: /pay }]
          - weight: 1
            steps: []
  - repeat: 2
    steps: [{ get: /poll }, { think: 10ms }]
  - if: "${status} == 200 && ${items} > ${limit}"
    then: [{ get: /big }]
    else: [{ get: /small }]
  - pace: 2s
thresholds:
  - "p99{step:pay} < 300ms"
  - "error_rate{group:checkout} < 1%"
  - "checks > 99%"
"#;

fn errors(yaml: &str) -> Vec<String> {
    from_yaml_str(yaml)
        .expect_err("plan is invalid")
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn flow_steps_parse_and_round_trip() {
    let plan = from_yaml_str(FLOW).expect("valid");
    let Step::Group(g) = &plan.scenario[0] else {
        panic!("a group")
    };
    assert_eq!((g.name.as_str(), g.steps.len()), ("checkout", 2));
    let Step::Choose(branches) = &g.steps[1] else {
        panic!("a choice")
    };
    assert_eq!(
        branches.iter().map(|b| b.weight).collect::<Vec<_>>(),
        [3, 1]
    );
    assert!(branches[1].steps.is_empty());
    assert!(matches!(&plan.scenario[1], Step::Repeat(r) if r.count == 2 && r.steps.len() == 2));
    let Step::If(c) = &plan.scenario[2] else {
        panic!("an if")
    };
    assert_eq!(c.cond.vars(), ["status", "items", "limit"]);
    assert_eq!(
        plan.scenario[3],
        Step::Pace(std::time::Duration::from_secs(2))
    );
    assert_eq!(
        plan.step_labels(),
        ["cart", "pay", "GET /poll", "GET /big", "GET /small"]
    );
    assert_eq!(plan.group_names(), ["checkout"]);
    assert_eq!(
        plan.thresholds
            .iter()
            .map(|t| t.applies_to())
            .collect::<Vec<_>>(),
        ["step \"pay\"", "group \"checkout\"", "the whole run"]
    );
    let again = from_value(&plan.to_json()).expect("round trip");
    assert_eq!(again, plan);
}

#[test]
fn nested_errors_name_their_path_and_are_all_reported() {
    let text = errors(
        r#"
version: 1
name: bad
target: http://127.0.0.1:8080
load: { vus: 1, duration: 1s }
scenario:
  - get: /ok
  - group: ""
    steps: [{ get: nope }]
  - choose:
      - { weight: 0, steps: [{ get: /a }] }
      - { steps: [{ get: /b, checks: { status: 9 } }] }
  - repeat: 0
    steps: []
  - if: "${status} = 200"
    then: [{ get: "/x/${missing}" }]
  - if: "${undefined} > 1"
    then: [{ get: /y }]
  - pace: 0s
  - name: "group:x"
    get: /z
thresholds: ["p99{step:nope} < 1s", "checks{group:none} > 1%"]
"#,
    );
    for expected in [
        "scenario[1].group: must not be empty",
        "scenario[1].steps[0].get: must be a path starting with '/'",
        "scenario[2].choose[0].weight: must be >= 1",
        "scenario[2].choose[1].weight: is required",
        "scenario[2].choose[1].steps[0].checks.status",
        "scenario[3].repeat: must be >= 1",
        "scenario[3].steps: must have at least one step",
        "scenario[4].if: cannot read",
        "scenario[6].pace: must be longer than 0",
        "scenario[7].name: must not start with \"group:\"",
    ] {
        assert!(
            text.iter().any(|t| t.starts_with(expected)),
            "missing {expected:?} in {text:#?}"
        );
    }
}

#[test]
fn variables_of_nested_steps_and_conditions_must_be_defined() {
    let text = errors(
        r#"
version: 1
name: vars
target: http://127.0.0.1:8080
load: { vus: 1, duration: 1s }
scenario:
  - if: "${status} == 200"
    then: [{ get: "/x/${missing}" }]
  - if: "${undefined} > 1"
    then: [{ group: g, steps: [{ get: /y, extract: { later: { header: x } } }] }]
  - if: "${later} > 1"
    then: [{ get: /z }]
"#,
    );
    assert_eq!(
        text.iter()
            .map(|t| t.split(" (defined").next().unwrap_or_default())
            .collect::<Vec<_>>(),
        [
            "scenario[1].if: unknown variable ${undefined}: define it in `vars`, a feeder's \
             columns or an `extract`",
            "scenario[0].then[0].get: unknown variable ${missing}: define it in `vars`, a \
             feeder's columns or an `extract`",
        ]
    );
}

#[test]
fn selectors_must_name_a_step_or_group_of_the_scenario() {
    let plan = FLOW.replace("p99{step:pay}", "p99{step:payment}");
    let text = errors(&plan);
    assert!(
        text.iter()
            .any(|t| t.starts_with("thresholds[0]: no step is named \"payment\"")),
        "{text:#?}"
    );
    let plan = FLOW.replace("{group:checkout}", "{group:basket}");
    let text = errors(&plan);
    assert!(
        text.iter()
            .any(|t| t.starts_with("thresholds[1]: no group is named \"basket\"")),
        "{text:#?}"
    );
}
