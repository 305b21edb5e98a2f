//! Tests of the script hook's grammar: `scripts: FILE` read through the loader and carried as
//! text, `script: NAME` steps checked against the file's functions, errors naming file and line.

use super::*;
use std::time::Duration;

struct Files(&'static str);

impl PlanFiles for Files {
    fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, String> {
        match path {
            "auth.rhai" if self.0.len() > limit => Err(format!("larger than {limit} bytes")),
            "auth.rhai" => Ok(self.0.as_bytes().to_vec()),
            _ => Err("no such file".into()),
        }
    }
}

const AUTH: &str =
    "fn sign() {\n  this.vars.sig = hex(sha256(this.response.body));\n}\nfn helper(x) { x }\n";

fn plan(scripts: &str, steps: &str) -> String {
    format!(
        "version: 1\nname: s\ntarget: http://127.0.0.1:1\nload: {{vus: 1, duration: 1s}}\n\
         vars: {{sig: \"\"}}\n{scripts}scenario:\n{steps}"
    )
}

const STEPS: &str = "  - get: /nonce\n  - script: sign\n  - name: login step\n    script: sign\n";

fn errors(yaml: &str, source: &'static str) -> Vec<String> {
    from_yaml_str_with(yaml, &Files(source))
        .expect_err("invalid")
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_script_file_is_read_through_the_loader_and_travels_as_text() {
    let yaml = plan("scripts: auth.rhai\n", STEPS);
    let plan = from_yaml_str_with(&yaml, &Files(AUTH)).expect("valid");
    let scripts = plan.scripts.clone().expect("scripts");
    assert_eq!(scripts.file, "auth.rhai");
    assert_eq!(scripts.source, AUTH);
    assert_eq!(scripts.call_timeout, DEFAULT_CALL_TIMEOUT);
    assert_eq!(
        plan.scenario[1],
        Step::Script(ScriptStep {
            label: "script sign".into(),
            named: false,
            function: "sign".into(),
        })
    );
    assert_eq!(
        plan.step_labels(),
        vec!["GET /nonce", "script sign", "login step"]
    );
    // The agents' form carries the text: it parses back to the same plan without a loader.
    let again = from_value(&plan.to_json()).expect("round trip");
    assert_eq!(again, plan);
}

#[test]
fn the_long_form_sets_the_call_timeout() {
    let yaml = plan("scripts: {file: auth.rhai, call_timeout: 250ms}\n", STEPS);
    let plan = from_yaml_str_with(&yaml, &Files(AUTH)).expect("valid");
    let scripts = plan.scripts.expect("scripts");
    assert_eq!(scripts.call_timeout, Duration::from_millis(250));
    let bad = plan_errors_of(&plan_text_with_timeout("0s"));
    assert_eq!(bad, vec!["scripts.call_timeout: must be > 0"]);
}

fn plan_text_with_timeout(t: &str) -> String {
    plan(
        &format!("scripts: {{file: auth.rhai, call_timeout: {t}}}\n"),
        STEPS,
    )
}

fn plan_errors_of(yaml: &str) -> Vec<String> {
    errors(yaml, AUTH)
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let yaml = plan("scripts: auth.rhai\n", STEPS);
    let errs = errors(&yaml, "fn sign() {\n  let x = ;\n}\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("scripts: auth.rhai line 2, column "),
        "{errs:?}"
    );
}

#[test]
fn steps_must_name_a_function_without_parameters_of_the_file() {
    let yaml = plan(
        "scripts: auth.rhai\n",
        "  - script: helper\n  - script: nope\n  - script: \"not a name\"\n",
    );
    assert_eq!(
        errors(&yaml, AUTH),
        vec!["scenario[2].script: \"not a name\" is not a function name (letters, digits, `_`)",]
    );
    let yaml = plan(
        "scripts: auth.rhai\n",
        "  - script: helper\n  - script: nope\n",
    );
    assert_eq!(
        errors(&yaml, AUTH),
        vec![
            "scenario[0].script: auth.rhai defines no function helper() without parameters (it defines: sign)",
            "scenario[1].script: auth.rhai defines no function nope() without parameters (it defines: sign)",
        ]
    );
}

#[test]
fn script_steps_need_scripts_and_files_must_be_readable() {
    let yaml = plan("", "  - get: /\n  - script: sign\n");
    assert_eq!(
        errors(&yaml, AUTH),
        vec!["scenario[1].script: calls sign() but the plan has no `scripts: FILE` to define it"]
    );
    let yaml = plan("scripts: missing.rhai\n", STEPS);
    assert_eq!(
        errors(&yaml, AUTH),
        vec!["scripts: missing.rhai: no such file"]
    );
    let big: &'static str = Box::leak("// x\n".repeat(MAX_SCRIPT_BYTES / 4).into_boxed_str());
    let yaml = plan("scripts: auth.rhai\n", STEPS);
    let errs = errors(&yaml, big);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("scripts: auth.rhai: larger than"),
        "{errs:?}"
    );
}

#[test]
fn a_plan_sent_as_json_must_carry_the_text() {
    let yaml = plan("scripts: auth.rhai\n", STEPS);
    let errs: Vec<String> = from_yaml_str(&yaml)
        .expect_err("no loader")
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("scripts: the file was not read"),
        "{errs:?}"
    );
}

#[test]
fn a_plan_without_scripts_has_none_and_writes_none() {
    let plan = from_yaml_str(&plan("", "  - get: /\n")).expect("valid");
    assert_eq!(plan.scripts, None);
    assert!(plan.to_json().get("scripts").is_none());
}
