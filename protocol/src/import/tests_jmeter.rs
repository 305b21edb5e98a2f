//! Golden tests of the JMeter importer, one element kind at a time, on small plans written here.

use super::tests::{import, jmx, outcome_of, parse, requests, sampler, tg};
use super::*;
use crate::plan::{Check, ExtractFrom, Step};
use std::time::Duration;

fn hdr(name: &str, value: &str) -> String {
    format!(
        r#"<HeaderManager guiclass="HeaderPanel" testclass="HeaderManager" testname="Headers">
        <collectionProp name="HeaderManager.headers">
          <elementProp name="" elementType="Header">
            <stringProp name="Header.name">{name}</stringProp>
            <stringProp name="Header.value">{value}</stringProp>
          </elementProp>
        </collectionProp></HeaderManager><hashTree/>"#
    )
}

fn args(pairs: &[(&str, &str)]) -> String {
    let items: String = pairs
        .iter()
        .map(|(n, v)| {
            format!(
                r#"<elementProp name="{n}" elementType="HTTPArgument">
                <boolProp name="HTTPArgument.always_encode">true</boolProp>
                <stringProp name="Argument.name">{n}</stringProp>
                <stringProp name="Argument.value">{v}</stringProp></elementProp>"#
            )
        })
        .collect();
    format!(
        r#"<elementProp name="HTTPsampler.Arguments" elementType="Arguments"><collectionProp name="Arguments.arguments">{items}</collectionProp></elementProp>"#
    )
}

#[test]
fn a_login_token_is_extracted_and_reused_in_the_next_header() {
    let login = sampler(
        "Login",
        "POST",
        "/login",
        r#"<boolProp name="HTTPSampler.postBodyRaw">true</boolProp>
        <elementProp name="HTTPsampler.Arguments" elementType="Arguments"><collectionProp name="Arguments.arguments">
        <elementProp name="" elementType="HTTPArgument"><stringProp name="Argument.value">{"user":"u${__threadNum}"}</stringProp></elementProp>
        </collectionProp></elementProp>"#,
        r#"<JSONPostProcessor guiclass="JSONPostProcessorGui" testclass="JSONPostProcessor" testname="token">
          <stringProp name="JSONPostProcessor.referenceNames">token</stringProp>
          <stringProp name="JSONPostProcessor.jsonPathExprs">$.data.token</stringProp>
          <stringProp name="JSONPostProcessor.defaultValues">NOT_FOUND</stringProp>
        </JSONPostProcessor><hashTree/>
        <ResponseAssertion guiclass="AssertionGui" testclass="ResponseAssertion" testname="200">
          <collectionProp name="Asserion.test_strings"><stringProp name="49586">200</stringProp></collectionProp>
          <stringProp name="Assertion.test_field">Assertion.response_code</stringProp>
          <intProp name="Assertion.test_type">8</intProp>
        </ResponseAssertion><hashTree/>"#,
    );
    let me = sampler(
        "Me",
        "GET",
        "/me",
        "",
        &hdr("Authorization", "Bearer ${token}"),
    );
    let imported = import(&jmx(&tg(10, 5, 3), &format!("{login}{me}")));
    let plan = parse(&imported);
    assert_eq!(plan.target, "https://api.example.com");
    let Step::Request(l) = &plan.scenario[0] else {
        panic!("request")
    };
    assert_eq!(l.label, "Login");
    assert_eq!(l.body.as_deref(), Some(r#"{"user":"u${__vu}"}"#));
    assert_eq!(l.extract[0].var, "token");
    assert!(matches!(&l.extract[0].from, ExtractFrom::Json(p) if p.as_str() == "$.data.token"));
    assert!(l.checks.contains(&Check::Status(200)));
    let Step::Request(m) = &plan.scenario[1] else {
        panic!("request")
    };
    assert_eq!(
        m.headers,
        [("Authorization".to_string(), "Bearer ${token}".to_string())]
    );
    assert!(plan.vars.contains(&("token".into(), "NOT_FOUND".into())));
    // 10 threads, 5 s ramp, 3 loops: iterations per VU and in all.
    assert_eq!(plan.load.iterations_per_vu, Some(3));
    assert_eq!(plan.load.iterations, Some(30));
    assert_eq!(plan.load.stages[0].duration, Duration::from_secs(5));
    assert!(
        matches!(outcome_of(&imported.report, "HTTP Request \"Login\""), Outcome::Approximated(h) if h.contains("__vu"))
    );
}

#[test]
fn arguments_become_a_query_or_a_form_body() {
    let get = sampler(
        "Search",
        "GET",
        "/search",
        &args(&[("q", "a b"), ("page", "${page}")]),
        "",
    );
    let post = sampler("Form", "POST", "/form", &args(&[("name", "x&amp;y")]), "");
    let plan = parse(&import(&jmx(&tg(1, 0, 1), &format!("{get}{post}"))));
    let reqs = requests(&plan);
    assert_eq!(reqs[0], ("GET".into(), "/search?q=a+b&page=${page}".into()));
    let Step::Request(f) = &plan.scenario[1] else {
        panic!()
    };
    assert_eq!(f.body.as_deref(), Some("name=x%26y"));
    assert!(f
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/x-www-form-urlencoded"));
    // `page` is referenced but defined nowhere: defined empty, with a warning.
    assert!(plan.vars.contains(&("page".into(), String::new())));
}

#[test]
fn headers_apply_by_scope_and_inner_ones_win() {
    let body = format!(
        "{}{}{}",
        hdr("X-Scope", "group"),
        sampler("A", "GET", "/a", "", ""),
        sampler("B", "GET", "/b", "", &hdr("X-Scope", "sampler")),
    );
    let plan = parse(&import(&jmx(&tg(1, 0, 1), &body)));
    let values: Vec<String> = plan
        .scenario
        .iter()
        .filter_map(|s| match s {
            Step::Request(r) => r
                .headers
                .iter()
                .find(|h| h.0 == "X-Scope")
                .map(|h| h.1.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(values, ["group", "sampler"]);
}

#[test]
fn timers_become_think_times_before_each_sampler_in_scope() {
    let timers = r#"<ConstantTimer guiclass="ConstantTimerGui" testclass="ConstantTimer" testname="c">
        <stringProp name="ConstantTimer.delay">300</stringProp></ConstantTimer><hashTree/>
        <UniformRandomTimer guiclass="UniformRandomTimerGui" testclass="UniformRandomTimer" testname="u">
        <stringProp name="ConstantTimer.delay">100</stringProp><stringProp name="RandomTimer.range">200</stringProp></UniformRandomTimer><hashTree/>"#;
    let body = format!(
        "{timers}{}{}",
        sampler("A", "GET", "/a", "", ""),
        sampler("B", "GET", "/b", "", "")
    );
    let plan = parse(&import(&jmx(&tg(1, 0, 1), &body)));
    let thinks: Vec<String> = plan
        .scenario
        .iter()
        .filter_map(|s| match s {
            Step::Think(t) => Some(t.format()),
            _ => None,
        })
        .collect();
    assert_eq!(thinks, ["400ms..600ms", "400ms..600ms"]);
}

#[test]
fn regex_and_boundary_extractors_and_duration_and_json_assertions() {
    let children = r#"<RegexExtractor guiclass="RegexExtractorGui" testclass="RegexExtractor" testname="id">
        <stringProp name="RegexExtractor.useHeaders">false</stringProp>
        <stringProp name="RegexExtractor.refname">order-id</stringProp>
        <stringProp name="RegexExtractor.regex">id=(\d+)</stringProp>
        <stringProp name="RegexExtractor.template">$1$</stringProp>
        <stringProp name="RegexExtractor.default">0</stringProp>
        <stringProp name="RegexExtractor.match_number">1</stringProp></RegexExtractor><hashTree/>
        <BoundaryExtractor guiclass="BoundaryExtractorGui" testclass="BoundaryExtractor" testname="b">
        <stringProp name="BoundaryExtractor.refname">csrf</stringProp>
        <stringProp name="BoundaryExtractor.lboundary">value="</stringProp>
        <stringProp name="BoundaryExtractor.rboundary">"</stringProp></BoundaryExtractor><hashTree/>
        <DurationAssertion guiclass="DurationAssertionGui" testclass="DurationAssertion" testname="d">
        <stringProp name="DurationAssertion.duration">750</stringProp></DurationAssertion><hashTree/>
        <JSONPathAssertion guiclass="JSONPathAssertionGui" testclass="JSONPathAssertion" testname="j">
        <stringProp name="JSON_PATH">$.ok</stringProp><stringProp name="EXPECTED_VALUE">true</stringProp>
        <boolProp name="JSONVALIDATION">true</boolProp><boolProp name="ISREGEX">false</boolProp></JSONPathAssertion><hashTree/>
        <ResponseAssertion guiclass="AssertionGui" testclass="ResponseAssertion" testname="text">
        <collectionProp name="Asserion.test_strings"><stringProp name="1">Welcome</stringProp></collectionProp>
        <stringProp name="Assertion.test_field">Assertion.response_data</stringProp>
        <intProp name="Assertion.test_type">16</intProp></ResponseAssertion><hashTree/>
        <XPathExtractor guiclass="XPathExtractorGui" testclass="XPathExtractor" testname="x"/><hashTree/>"#;
    let imported = import(&jmx(
        &tg(1, 0, 1),
        &sampler("Order", "GET", "/order", "", children),
    ));
    let plan = parse(&imported);
    let Step::Request(r) = &plan.scenario[0] else {
        panic!()
    };
    let mut vars: Vec<&str> = r.extract.iter().map(|e| e.var.as_str()).collect();
    vars.sort();
    assert_eq!(vars, ["csrf", "order_id"]);
    assert!(r
        .extract
        .iter()
        .any(|e| matches!(&e.from, ExtractFrom::Regex(re) if re == "(?s)value=\"(.*?)\"")));
    assert!(r
        .checks
        .contains(&Check::MaxLatency(Duration::from_millis(750))));
    assert!(r.checks.contains(&Check::BodyContains("Welcome".into())));
    assert!(r.checks.iter().any(
        |c| matches!(c, Check::JsonEquals { value, .. } if *value == serde_json::json!(true))
    ));
    assert!(plan.vars.contains(&("order_id".into(), "0".into())));
    assert!(matches!(
        outcome_of(&imported.report, "XPathExtractor"),
        Outcome::Skipped(_)
    ));
}

#[test]
fn controllers_name_steps_unroll_small_loops_and_approximate_the_rest() {
    let body = format!(
        r#"<TransactionController guiclass="TransactionControllerGui" testclass="TransactionController" testname="Checkout"/>
        <hashTree>{}</hashTree>
        <LoopController guiclass="LoopControlPanel" testclass="LoopController" testname="x3">
          <intProp name="LoopController.loops">3</intProp></LoopController>
        <hashTree>{}</hashTree>
        <LoopController guiclass="LoopControlPanel" testclass="LoopController" testname="x500">
          <intProp name="LoopController.loops">500</intProp></LoopController>
        <hashTree>{}</hashTree>
        <IfController guiclass="IfControllerPanel" testclass="IfController" testname="if"/>
        <hashTree>{}</hashTree>
        <GenericController guiclass="LogicControllerGui" testclass="GenericController" testname="off" enabled="false"/>
        <hashTree>{}</hashTree>
        <com.example.FancyController testclass="com.example.FancyController" testname="fancy"/>
        <hashTree>{}</hashTree>
        <com.example.Gadget testclass="com.example.Gadget" testname="gadget"/><hashTree/>
        <ResultCollector guiclass="ViewResultsFullVisualizer" testclass="ResultCollector" testname="tree"/><hashTree/>"#,
        sampler("Pay", "POST", "/pay", "", ""),
        sampler("Poll", "GET", "/poll", "", ""),
        sampler("Scroll", "GET", "/scroll", "", ""),
        sampler("Maybe", "GET", "/maybe", "", ""),
        sampler("Never", "GET", "/never", "", ""),
        sampler("Fancy", "GET", "/fancy", "", ""),
    );
    let imported = import(&jmx(&tg(1, 0, 1), &body));
    let plan = parse(&imported);
    let paths: Vec<String> = requests(&plan).into_iter().map(|r| r.1).collect();
    assert_eq!(
        paths,
        ["/pay", "/poll", "/poll", "/poll", "/scroll", "/maybe", "/fancy"]
    );
    assert_eq!(plan.step_labels()[0], "Checkout / Pay");
    let r = &imported.report;
    assert!(
        matches!(outcome_of(r, "\"x500\""), Outcome::Approximated(h) if h.contains("500 repetitions"))
    );
    assert!(matches!(outcome_of(r, "\"x3\""), Outcome::Approximated(h) if h.contains("unrolled")));
    assert!(matches!(outcome_of(r, "\"if\""), Outcome::Approximated(_)));
    assert_eq!(
        outcome_of(r, "\"off\""),
        &Outcome::Skipped("disabled".into())
    );
    assert!(matches!(outcome_of(r, "\"Never\""), Outcome::Skipped(w) if w.contains("disabled")));
    assert!(
        matches!(outcome_of(r, "\"fancy\""), Outcome::Approximated(h) if h.contains("unknown controller"))
    );
    assert!(
        matches!(outcome_of(r, "\"gadget\""), Outcome::Skipped(w) if w.contains("not supported"))
    );
    assert!(
        !r.items.iter().any(|i| i.path.contains("\"tree\"")),
        "listeners are silent"
    );
}

#[test]
fn functions_map_to_herd_functions_or_are_approximated_and_said() {
    let path = "/p?r=${__Random(6,1,die)}&amp;u=${__UUID()}&amp;t=${__time()}&amp;f=${__time(yyyy)}&amp;x=${__groovy(1+1)}&amp;e=${__P(env,dev)}&amp;s=${__RandomString(4)}";
    let imported = convert(
        &jmx(&tg(1, 0, 1), &sampler("F", "GET", path, "", "")),
        &ImportOptions {
            set: [("env".to_string(), "prod".to_string())].into(),
            ..ImportOptions::default()
        },
    )
    .expect("import");
    let plan = parse(&imported);
    assert_eq!(
        requests(&plan)[0].1,
        "/p?r=${__random(1,6)}&u=${__uuid}&t=${__time}&f=${__time}&x=${fn_groovy}&e=prod&s=${random_string_4}"
    );
    assert!(plan.vars.contains(&("fn_groovy".into(), String::new())));
    let feeder = plan
        .feeders
        .iter()
        .find(|f| f.name == "random_string_4")
        .expect("feeder");
    assert_eq!(feeder.rows.len(), 100);
    let Outcome::Approximated(how) = outcome_of(&imported.report, "\"F\"") else {
        panic!()
    };
    for word in ["die", "yyyy", "__groovy", "__RandomString"] {
        assert!(how.contains(word), "{how}");
    }
    assert!(!how.contains("__UUID"), "mapped exactly: {how}");
}

#[test]
fn plugin_groups_become_stages_or_an_arrival_rate() {
    let utg = r#"<kg.apc.jmeter.threads.UltimateThreadGroup guiclass="kg.apc.jmeter.threads.UltimateThreadGroupGui" testclass="kg.apc.jmeter.threads.UltimateThreadGroup" testname="UTG">
      <collectionProp name="ultimatethreadgroupdata">
        <collectionProp name="1"><stringProp name="a">10</stringProp><stringProp name="b">0</stringProp><stringProp name="c">10</stringProp><stringProp name="d">60</stringProp><stringProp name="e">10</stringProp></collectionProp>
        <collectionProp name="2"><stringProp name="a">5</stringProp><stringProp name="b">20</stringProp><stringProp name="c">0</stringProp><stringProp name="d">30</stringProp><stringProp name="e">0</stringProp></collectionProp>
      </collectionProp></kg.apc.jmeter.threads.UltimateThreadGroup>"#;
    let plan = parse(&import(&jmx(utg, &sampler("A", "GET", "/", "", ""))));
    let stages: Vec<(u64, u32)> = plan
        .load
        .stages
        .iter()
        .map(|s| (s.duration.as_secs(), s.vus))
        .collect();
    assert_eq!(
        stages,
        [
            (10, 10),
            (10, 10),
            (0, 15),
            (30, 15),
            (0, 10),
            (20, 10),
            (10, 0)
        ]
    );
    let atg = r#"<com.blazemeter.jmeter.threads.arrivals.ArrivalsThreadGroup testclass="com.blazemeter.jmeter.threads.arrivals.ArrivalsThreadGroup" testname="ATG">
      <stringProp name="TargetLevel">120</stringProp><stringProp name="RampUp">1</stringProp><stringProp name="Hold">2</stringProp>
      <stringProp name="Unit">M</stringProp><stringProp name="ConcurrencyLimit">50</stringProp></com.blazemeter.jmeter.threads.arrivals.ArrivalsThreadGroup>"#;
    let plan = parse(&import(&jmx(atg, &sampler("A", "GET", "/", "", ""))));
    let arrival = plan.load.arrival.expect("open model");
    assert_eq!(arrival.max_in_flight, 50);
    assert_eq!(arrival.stages[0].rps, 2.0);
    assert_eq!(arrival.stages[1].duration, Duration::from_secs(120));
    let ctg = r#"<com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup testclass="com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup" testname="CTG">
      <stringProp name="TargetLevel">10</stringProp><stringProp name="RampUp">20</stringProp><stringProp name="Steps">2</stringProp>
      <stringProp name="Hold">60</stringProp><stringProp name="Unit">S</stringProp></com.blazemeter.jmeter.threads.concurrency.ConcurrencyThreadGroup>"#;
    let plan = parse(&import(&jmx(ctg, &sampler("A", "GET", "/", "", ""))));
    let stages: Vec<(u64, u32)> = plan
        .load
        .stages
        .iter()
        .map(|s| (s.duration.as_secs(), s.vus))
        .collect();
    assert_eq!(stages, [(0, 5), (10, 5), (0, 10), (10, 10), (60, 10)]);
}

#[test]
fn overrides_replace_the_load_and_groups_keep_their_ratio() {
    let small = tg(10, 0, 1).replace("\"Users\"", "\"Small\"");
    let big = tg(30, 0, 1).replace("\"Users\"", "\"Big\"");
    let body_a = sampler("A", "GET", "/a", "", "");
    let bytes = jmx(&small, &body_a);
    let text = String::from_utf8(bytes).expect("utf8").replace(
        "</hashTree>\n    </hashTree>\n  </hashTree>",
        &format!(
            "</hashTree>\n{big}<hashTree>{}</hashTree>\n    </hashTree>\n  </hashTree>",
            sampler("B", "GET", "/b", "", "")
        ),
    );
    let options = ImportOptions {
        vus: Some(100),
        ramp: Some(Duration::from_secs(30)),
        hold: Some(Duration::from_secs(120)),
        agents: Some(2),
        ..ImportOptions::default()
    };
    let imported = convert(text.as_bytes(), &options).expect("import");
    let plan = parse(&imported);
    // Each thread group is a scenario with its own load; --vus 100 is split 10:30.
    assert_eq!(plan.scenario_names(), ["Big", "Small"]);
    let stages = |i: usize| -> Vec<(u64, u32)> {
        plan.scenarios[i]
            .load
            .stages
            .iter()
            .map(|s| (s.duration.as_secs(), s.vus))
            .collect()
    };
    assert_eq!(stages(0), [(30, 75), (120, 75)]);
    assert_eq!(stages(1), [(30, 25), (120, 25)]);
    assert_eq!(
        requests(&plan),
        [
            ("GET".to_string(), "/b".to_string()),
            ("GET".into(), "/a".into())
        ]
    );
    assert_eq!(plan.agents, 2);
    assert!(plan.scenarios.iter().all(|s| s.load.iterations.is_none()));
    assert!(
        matches!(outcome_of(&imported.report, "\"Small\""), Outcome::Approximated(w)
            if w.contains("scenario Small of the plan's 2") && w.contains("this one's share is 25"))
    );
    assert!(matches!(
        outcome_of(&imported.report, "\"A\""),
        Outcome::Converted
    ));
    assert!(
        imported
            .report
            .warnings
            .iter()
            .any(|w| w == "2 thread groups became 2 scenarios, each with its own load: Small, Big"),
        "{:?}",
        imported.report.warnings
    );
}

#[test]
fn two_thread_groups_become_two_scenarios_with_their_own_loads() {
    let a = tg(3, 0, 1).replace("\"Users\"", "\"Browse users\"");
    let b = tg(5, 2, 1).replace("\"Users\"", "\"Buyers\"");
    let text = String::from_utf8(jmx(&a, &sampler("Home", "GET", "/", "", "")))
        .expect("utf8")
        .replace(
            "</hashTree>\n    </hashTree>\n  </hashTree>",
            &format!(
                "</hashTree>\n{b}<hashTree>{}</hashTree>\n    </hashTree>\n  </hashTree>",
                sampler("Home", "GET", "/", "", "")
            ),
        );
    let imported = convert(text.as_bytes(), &ImportOptions::default()).expect("import");
    let yaml = &imported.plan_yaml;
    assert!(
        yaml.contains("scenarios:\n  \"Browse_users\":\n    load:\n"),
        "{yaml}"
    );
    assert!(
        !yaml.contains("\nscenario:") && !yaml.contains("\nload:"),
        "{yaml}"
    );
    let plan = parse(&imported);
    assert_eq!(plan.scenario_names(), ["Browse_users", "Buyers"]);
    assert_eq!(plan.scenarios[0].load.max_vus(), 3);
    assert_eq!(plan.scenarios[1].load.max_vus(), 5);
    // The same sampler name in both groups: the second is renamed, labels stay unique.
    assert_eq!(plan.step_labels(), ["Home", "Buyers: Home"]);
}

#[test]
fn csv_data_sets_become_feeders_read_through_the_callback() {
    let csv = r#"<CSVDataSet guiclass="TestBeanGUI" testclass="CSVDataSet" testname="users">
      <stringProp name="filename">/home/someone/data/users.csv</stringProp>
      <stringProp name="variableNames">user,pass</stringProp>
      <stringProp name="delimiter">;</stringProp>
      <stringProp name="shareMode">shareMode.thread</stringProp></CSVDataSet><hashTree/>"#;
    let body = format!(
        "{csv}{}",
        sampler("A", "GET", "/u/${user}?p=${pass}", "", "")
    );
    let files = super::tests::MapFiles(vec![("users.csv", b"alice;1\nbob;2\n".to_vec())]);
    let imported =
        convert_with(&jmx(&tg(1, 0, 1), &body), &ImportOptions::default(), &files).expect("import");
    let plan = parse(&imported);
    let f = &plan.feeders[0];
    assert_eq!(f.columns, ["user", "pass"]);
    assert_eq!(f.rows, [["alice", "1"], ["bob", "2"]]);
    assert_eq!(f.mode, crate::plan::FeederMode::PerVu);
    let Outcome::Approximated(how) = outcome_of(&imported.report, "CSV Data Set") else {
        panic!()
    };
    assert!(how.contains("absolute path"), "{how}");
    // Without the file, the feeder names it and says what header it needs.
    let imported = import(&jmx(&tg(1, 0, 1), &body));
    assert!(
        imported.plan_yaml.contains("file: \"users.csv\""),
        "{}",
        imported.plan_yaml
    );
    assert!(
        matches!(outcome_of(&imported.report, "CSV Data Set"), Outcome::Approximated(h) if h.contains("add the header row user,pass"))
    );
}

#[test]
fn old_format_with_string_props_and_defaults_converts_like_the_new_one() {
    let old = r#"<?xml version="1.0" encoding="UTF-8"?>
<jmeterTestPlan version="1.2" properties="2.1">
  <hashTree>
    <TestPlan guiclass="TestPlanGui" testclass="TestPlan" testname="Old" enabled="true"/>
    <hashTree>
      <ConfigTestElement guiclass="HttpDefaultsGui" testclass="ConfigTestElement" testname="Defaults" enabled="true">
        <stringProp name="HTTPSampler.domain">old.example.com</stringProp>
        <stringProp name="HTTPSampler.port">8080</stringProp>
      </ConfigTestElement>
      <hashTree/>
      <ThreadGroup guiclass="ThreadGroupGui" testclass="ThreadGroup" testname="TG" enabled="true">
        <elementProp name="ThreadGroup.main_controller" elementType="LoopController">
          <boolProp name="LoopController.continue_forever">false</boolProp>
          <stringProp name="LoopController.loops">-1</stringProp>
        </elementProp>
        <stringProp name="ThreadGroup.num_threads">4</stringProp>
        <stringProp name="ThreadGroup.ramp_time">2</stringProp>
        <boolProp name="ThreadGroup.scheduler">true</boolProp>
        <stringProp name="ThreadGroup.duration">60</stringProp>
      </ThreadGroup>
      <hashTree>
        <HTTPSampler guiclass="HttpTestSampleGui" testclass="HTTPSampler" testname="Home" enabled="true">
          <stringProp name="HTTPSampler.path">index.html</stringProp>
          <stringProp name="HTTPSampler.method">GET</stringProp>
        </HTTPSampler>
        <hashTree/>
        <HTTPSampler guiclass="HttpTestSampleGui" testclass="HTTPSampler" testname="Off" enabled="false">
          <stringProp name="HTTPSampler.path">/off</stringProp>
        </HTTPSampler>
        <hashTree/>
      </hashTree>
    </hashTree>
  </hashTree>
</jmeterTestPlan>"#;
    let imported = import(old.as_bytes());
    let plan = parse(&imported);
    assert_eq!(plan.target, "http://old.example.com:8080");
    assert_eq!(
        requests(&plan),
        [("GET".to_string(), "/index.html".to_string())]
    );
    let stages: Vec<(u64, u32)> = plan
        .load
        .stages
        .iter()
        .map(|s| (s.duration.as_secs(), s.vus))
        .collect();
    assert_eq!(stages, [(2, 4), (58, 4)]);
    assert_eq!(
        outcome_of(&imported.report, "\"Off\""),
        &Outcome::Skipped("disabled".into())
    );
}

#[test]
fn malformed_xml_is_reported_at_its_line_and_column() {
    let bytes = b"<?xml version=\"1.0\"?>\n<jmeterTestPlan>\n  <hashTree>\n    <TestPlan testname=\"x\">\n  </hashTree>\n</jmeterTestPlan>";
    match convert(bytes, &ImportOptions::default()) {
        Err(ImportError::Malformed {
            format: "XML",
            line,
            column,
            ..
        }) => {
            assert_eq!(line, 5, "column {column}");
        }
        other => panic!("{other:?}"),
    }
    let truncated = b"<jmeterTestPlan>\n  <hashTree>\n";
    let e = convert(truncated, &ImportOptions::default()).expect_err("truncated");
    assert!(e.to_string().contains("line 3"), "{e}");
}

#[test]
fn no_request_and_no_host_are_errors() {
    let e = convert(&jmx(&tg(1, 0, 1), ""), &ImportOptions::default()).expect_err("empty");
    assert!(matches!(e, ImportError::NoRequest(_)), "{e}");
    let hostless = r#"<HTTPSamplerProxy testclass="HTTPSamplerProxy" testname="Nowhere">
        <stringProp name="HTTPSampler.path">/x</stringProp></HTTPSamplerProxy><hashTree/>"#;
    let e = convert(&jmx(&tg(1, 0, 1), hostless), &ImportOptions::default()).expect_err("no host");
    assert!(
        e.to_string()
            .contains("HTTP Request \"Nowhere\": the request has no host"),
        "{e}"
    );
    let ok = convert(
        &jmx(&tg(1, 0, 1), hostless),
        &ImportOptions {
            target: Some("http://127.0.0.1:9".into()),
            ..ImportOptions::default()
        },
    )
    .expect("with --target");
    assert_eq!(parse(&ok).target, "http://127.0.0.1:9");
}

#[test]
fn a_constant_throughput_timer_becomes_an_arrival_rate() {
    let timer = r#"<ConstantThroughputTimer guiclass="TestBeanGUI" testclass="ConstantThroughputTimer" testname="ctt">
        <intProp name="calcMode">1</intProp><doubleProp><name>throughput</name><value>120.0</value></doubleProp>
        <stringProp name="throughput">120</stringProp></ConstantThroughputTimer><hashTree/>"#;
    let body = format!(
        "{timer}{}{}",
        sampler("A", "GET", "/a", "", ""),
        sampler("B", "GET", "/b", "", "")
    );
    let group = tg(8, 0, 1).replace("<intProp name=\"ThreadGroup.ramp_time\">0</intProp>", "<intProp name=\"ThreadGroup.ramp_time\">0</intProp><boolProp name=\"ThreadGroup.scheduler\">true</boolProp><stringProp name=\"ThreadGroup.duration\">60</stringProp>");
    let plan = parse(&import(&jmx(&group, &body)));
    let arrival = plan.load.arrival.expect("open");
    assert_eq!(arrival.start_rps, 1.0);
    assert_eq!(arrival.max_in_flight, 8);
}
