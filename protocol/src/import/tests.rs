//! Shared helpers of the importer tests, and tests of the API itself (detection, errors,
//! the report's JSON, encodings).

use super::*;
use crate::plan::{self, Plan, PlanFiles, Step};

/// Feeder and body files for parsing an imported plan: every feeder file has the given columns.
pub(super) struct AnyFiles(pub Vec<String>);

impl PlanFiles for AnyFiles {
    fn read(&self, _path: &str, _limit: usize) -> Result<Vec<u8>, String> {
        let mut csv = self.0.join(",");
        csv.push('\n');
        csv.push_str(&vec!["x"; self.0.len()].join(","));
        csv.push('\n');
        Ok(csv.into_bytes())
    }
}

/// Files read by an import, from a map.
pub(super) struct MapFiles(pub Vec<(&'static str, Vec<u8>)>);

impl ImportFiles for MapFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        self.0
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| format!("{path}: not found"))
    }
}

/// Parses an imported plan with herd's parser; feeder files get the feeders' own columns.
pub(super) fn parse(imported: &Imported) -> Plan {
    let value: serde_json::Value = serde_yaml::from_str(&imported.plan_yaml).expect("YAML");
    let mut columns = Vec::new();
    // A feeder file's columns are whatever the steps need that nothing else defines.
    if let Err(e) = plan::from_yaml_str_with(&imported.plan_yaml, &AnyFiles(vec!["unused".into()]))
    {
        for fe in e.0 {
            if let Some(rest) = fe.message.strip_prefix("unknown variable ${") {
                if let Some(name) = rest.split('}').next() {
                    if !columns.contains(&name.to_string()) {
                        columns.push(name.to_string());
                    }
                }
            }
        }
    }
    if columns.is_empty() {
        columns.push("unused".into());
    }
    let _ = value;
    plan::from_yaml_str_with(&imported.plan_yaml, &AnyFiles(columns))
        .unwrap_or_else(|e| panic!("{e}\n{}", imported.plan_yaml))
}

/// The (method, path) of every request step, of every scenario.
pub(super) fn requests(plan: &Plan) -> Vec<(String, String)> {
    plan.all_steps()
        .into_iter()
        .flatten()
        .filter_map(|s| match s {
            Step::Request(r) => Some((r.method.as_str().to_string(), r.path.clone())),
            _ => None,
        })
        .collect()
}

/// A JMX test plan around `body` (the thread group's children).
pub(super) fn jmx(group: &str, body: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<jmeterTestPlan version="1.2" properties="5.0" jmeter="5.6.3">
  <hashTree>
    <TestPlan guiclass="TestPlanGui" testclass="TestPlan" testname="Plan">
      <elementProp name="TestPlan.user_defined_variables" elementType="Arguments">
        <collectionProp name="Arguments.arguments">
          <elementProp name="host" elementType="Argument">
            <stringProp name="Argument.name">host</stringProp>
            <stringProp name="Argument.value">${{__P(host,api.example.com)}}</stringProp>
          </elementProp>
        </collectionProp>
      </elementProp>
    </TestPlan>
    <hashTree>
      {group}
      <hashTree>
        {body}
      </hashTree>
    </hashTree>
  </hashTree>
</jmeterTestPlan>"#
    )
    .into_bytes()
}

/// A standard thread group.
pub(super) fn tg(threads: u32, ramp: u32, loops: i32) -> String {
    format!(
        r#"<ThreadGroup guiclass="ThreadGroupGui" testclass="ThreadGroup" testname="Users">
        <intProp name="ThreadGroup.num_threads">{threads}</intProp>
        <intProp name="ThreadGroup.ramp_time">{ramp}</intProp>
        <elementProp name="ThreadGroup.main_controller" elementType="LoopController">
          <intProp name="LoopController.loops">{loops}</intProp>
        </elementProp>
      </ThreadGroup>"#
    )
}

/// An HTTP sampler to `${host}` with extra properties, and children.
pub(super) fn sampler(name: &str, method: &str, path: &str, extra: &str, children: &str) -> String {
    format!(
        r#"<HTTPSamplerProxy guiclass="HttpTestSampleGui" testclass="HTTPSamplerProxy" testname="{name}">
          <stringProp name="HTTPSampler.domain">${{host}}</stringProp>
          <stringProp name="HTTPSampler.protocol">https</stringProp>
          <stringProp name="HTTPSampler.path">{path}</stringProp>
          <stringProp name="HTTPSampler.method">{method}</stringProp>
          {extra}
        </HTTPSamplerProxy>
        <hashTree>{children}</hashTree>"#
    )
}

pub(super) fn import(bytes: &[u8]) -> Imported {
    convert(bytes, &ImportOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn outcome_of<'r>(report: &'r Report, path_part: &str) -> &'r Outcome {
    &report
        .items
        .iter()
        .find(|i| i.path.ends_with(path_part))
        .or_else(|| report.items.iter().find(|i| i.path.contains(path_part)))
        .unwrap_or_else(|| panic!("no item {path_part} in\n{report}"))
        .outcome
}

#[test]
fn formats_are_detected_by_content() {
    assert_eq!(detect(&jmx(&tg(1, 0, 1), "")), Format::Jmeter);
    assert_eq!(
        detect(b"\xef\xbb\xbf{\"log\": {\"entries\": []}}"),
        Format::Har
    );
    assert_eq!(detect(b"execution:\n- concurrency: 1\n"), Format::Taurus);
    assert_eq!(detect(br#"{"scenarios": {"a": {}}}"#), Format::Taurus);
    assert_eq!(
        detect(br#"{"testName": "x", "testScenario": {}}"#),
        Format::Dlt
    );
    assert_eq!(detect(b"<html></html>"), Format::Unknown);
    assert_eq!(detect(b"just: text"), Format::Unknown);
    let e = convert(b"hello", &ImportOptions::default()).expect_err("unknown");
    assert!(matches!(e, ImportError::UnknownFormat(_)), "{e}");
}

#[test]
fn the_report_serializes_with_outcomes_and_paths() {
    let bytes = jmx(&tg(2, 0, 1), &sampler("Home", "GET", "/", "", ""));
    let imported = import(&bytes);
    let json = serde_json::to_value(&imported).expect("json");
    assert_eq!(json["format"], "jmeter");
    let items = json["report"]["items"].as_array().expect("items");
    let home = items
        .iter()
        .find(|i| {
            i["path"] == "Test Plan \"Plan\" > Thread Group \"Users\" > HTTP Request \"Home\""
        })
        .expect("home item");
    assert_eq!(home["outcome"], "converted");
    assert_eq!(home["element"], "HTTPSamplerProxy");
    let text = imported.report.to_string();
    assert!(text.contains("converted"), "{text}");
}

#[test]
fn files_in_other_encodings_are_read_with_a_warning() {
    let latin1: Vec<u8> = jmx(
        &tg(1, 0, 1),
        &sampler("Caf\u{e9}", "GET", "/caf\u{e9}", "", ""),
    )
    .to_vec();
    // The same text, encoded as ISO-8859-1 but declared UTF-8.
    let text = String::from_utf8(latin1).expect("utf8");
    let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    let imported = import(&bytes);
    assert!(
        imported
            .report
            .warnings
            .iter()
            .any(|w| w.contains("windows-1252")),
        "{:?}",
        imported.report.warnings
    );
    let plan = parse(&imported);
    assert_eq!(requests(&plan)[0].1, "/caf\u{e9}");
    // Declared ISO-8859-1 and encoded so: no warning.
    let declared = String::from_utf8(
        bytes
            .iter()
            .map(|b| *b as char)
            .collect::<String>()
            .into_bytes(),
    )
    .expect("utf8")
    .replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"");
    let bytes: Vec<u8> = declared.chars().map(|c| c as u32 as u8).collect();
    let imported = import(&bytes);
    assert!(
        imported.report.warnings.is_empty(),
        "{:?}",
        imported.report.warnings
    );
}
