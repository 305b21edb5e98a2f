//! Tests of `setup:` and `teardown:`: their grammar, the variables they define and see, the
//! errors named by their paths, the phase plan agents run, and round trips.

use super::*;

const PLAN: &str = r#"
version: 1
name: with-setup
target: http://127.0.0.1:8080
load: { vus: 2, duration: 1s }
vars: { user: alice }
feeders:
  items: { rows: [[sku], [a1], [b2]] }
setup:
  - name: login
    post: /login
    json: { user: "${user}" }
    checks: { status: 200 }
    extract: { token: { json: "$.token" } }
  - group: warm
    steps: [{ get: "/warm?t=${token}" }]
scenario:
  - get: "/items/${sku}"
    headers: { authorization: "Bearer ${token}" }
teardown:
  - post: /logout
    headers: { authorization: "Bearer ${token}" }
options: { setup_timeout: 5s }
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
fn setup_and_teardown_parse_and_round_trip() {
    let plan = from_yaml_str(PLAN).expect("valid");
    assert_eq!(plan.setup.len(), 2);
    assert_eq!(plan.teardown.len(), 1);
    assert_eq!(plan.setup_vars(), ["token"]);
    assert_eq!(plan.once_timeout(OncePhase::Setup), Duration::from_secs(5));
    assert_eq!(plan.once_timeout(OncePhase::Teardown), DEFAULT_ONCE_TIMEOUT);
    // Setup's steps are not the load's: their labels stay out of the results' steps.
    assert_eq!(plan.step_labels(), ["GET /items/${sku}"]);
    assert_eq!(from_value(&plan.to_json()), Ok(plan.clone()));
    assert_eq!(
        plan.describe_once(),
        [
            "setup: 2 steps (login, GET /warm?t=${token}), timeout 5s; every VU starts with token",
            "teardown: 1 step (POST /logout), timeout 60s"
        ]
    );
}

#[test]
fn a_plan_without_them_writes_neither() {
    let plan = from_yaml_str(&PLAN.replace("setup:", "unused:")).map(|_| ());
    assert!(plan.is_err(), "unknown key refused");
    let text = "version: 1\nname: p\ntarget: http://h:1\nload: { vus: 1, duration: 1s }\n\
                scenario: [{ get: / }]\n";
    let plan = from_yaml_str(text).expect("valid");
    let json = plan.to_json();
    assert!(json.get("setup").is_none() && json.get("teardown").is_none());
    assert!(json["options"].get("setup_timeout").is_none());
    assert!(plan.phase_plan(OncePhase::Setup).is_none());
    assert!(plan.describe_once().is_empty());
}

#[test]
fn the_phase_plan_holds_only_what_an_agent_needs() {
    let plan = from_yaml_str(PLAN).expect("valid");
    let setup = plan.phase_plan(OncePhase::Setup).expect("has setup");
    assert_eq!(setup.scenario, plan.setup);
    assert!(setup.feeders.is_empty() && setup.setup.is_empty() && setup.teardown.is_empty());
    assert_eq!(setup.vars, plan.vars);
    assert_eq!(from_value(&setup.to_json()), Ok(setup));
    // Teardown sees setup's variables: the phase plan names them, the command carries values.
    let teardown = plan.phase_plan(OncePhase::Teardown).expect("has teardown");
    assert_eq!(teardown.scenario, plan.teardown);
    assert!(teardown
        .vars
        .contains(&("token".to_string(), String::new())));
    // (Variables come back in the JSON map's order.)
    let back = from_value(&teardown.to_json()).expect("agents read it");
    assert_eq!(back.scenario, teardown.scenario);
    assert_eq!(back.vars.len(), teardown.vars.len());
}

#[test]
fn mistakes_in_setup_and_teardown_are_named_by_their_path() {
    let bad = PLAN
        .replace("post: /login", "post: login")
        .replace("- post: /logout", "- pots: /logout");
    let e = errors(&bad);
    assert!(
        e.iter()
            .any(|e| e == "setup[0].post: must be a path starting with '/'"),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("teardown[0].pots: unknown field")),
        "{e:?}"
    );
    let e = errors(&PLAN.replace("setup:\n  - name", "setup: 3\nx:\n  - name"));
    assert!(
        e.iter()
            .any(|e| e == "setup: must be a list of steps, got a number"),
        "{e:?}"
    );
    let e = errors(&PLAN.replace(
        "teardown:\n  - post: /logout\n    headers: { authorization: \"Bearer ${token}\" }",
        "teardown: [{ think: 1s }]",
    ));
    assert!(
        e.iter()
            .any(|e| e.starts_with("teardown: must have at least one request step")),
        "{e:?}"
    );
    let e = errors(&PLAN.replace("setup_timeout: 5s", "setup_timeout: 0s"));
    assert!(
        e.iter().any(|e| e == "options.setup_timeout: must be > 0"),
        "{e:?}"
    );
}

#[test]
fn setup_sees_no_feeder_and_only_its_own_extractions() {
    // A feeder's column in setup: feeders hand rows to VUs, and setup runs before any VU.
    let e = errors(&PLAN.replace("/warm?t=${token}", "/warm?sku=${sku}"));
    assert!(
        e.iter()
            .any(|e| e.starts_with("setup[1].steps[0].get: unknown variable ${sku}")),
        "{e:?}"
    );
    // A variable only the scenario extracts is not setup's.
    let with_scenario_extract = PLAN
        .replace("/warm?t=${token}", "/warm?s=${session}")
        .replace(
            "  - get: \"/items/${sku}\"\n",
            "  - get: \"/items/${sku}\"\n    extract: { session: { header: x-session } }\n",
        );
    let e = errors(&with_scenario_extract);
    assert!(
        e.iter()
            .any(|e| e.starts_with("setup[1].steps[0].get: unknown variable ${session}")),
        "{e:?}"
    );
    // Setup extracting a feeder's column: two values for one name in every VU.
    let e = errors(&PLAN.replace("extract: { token:", "extract: { sku:"));
    assert!(
        e.iter()
            .any(|e| e.starts_with("setup: extracts sku, which is also a column of feeders.items")),
        "{e:?}"
    );
}

#[test]
fn without_setup_its_variables_are_unknown_to_the_scenario_and_teardown() {
    let no_setup = PLAN.replace("setup:\n", "unused_setup:\n");
    let text = no_setup
        .lines()
        .filter(|l| !l.starts_with("unused_setup"))
        .collect::<Vec<_>>()
        .join("\n");
    // The steps under the removed key are now under `vars`' neighbour: cut them out too.
    let start = text.find("  - name: login").expect("setup steps");
    let end = text.find("scenario:").expect("scenario");
    let text = format!("{}{}", &text[..start], &text[end..]);
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|e| e.starts_with("scenario[0].headers.authorization: unknown variable ${token}")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("teardown[0].headers.authorization: unknown variable ${token}")),
        "{e:?}"
    );
}
