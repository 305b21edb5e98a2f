//! Unit tests of the compiled scenario: rendering, checks and extractions on responses, feeders,
//! and the variables a VU starts with.

use super::feeder::AgentFeeder;
use super::response::Rules;
use super::template::{RequestTemplate, Tpl};
use super::*;
use crate::http::Captured;
use herd_protocol::plan::{
    self, Check, Extract, ExtractFrom, Feeder, FeederMode, JsonPath, OnExhausted,
};
use hyper::header::{HeaderMap, HeaderValue};
use serde_json::json;

fn names(list: &[&str]) -> Names {
    let mut names = Names::default();
    for n in list {
        names.add(n);
    }
    names
}

fn vars(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn templates_render_variables_by_index() {
    let n = names(&["id", "q"]);
    let t = Tpl::compile("/users/${id}?q=${q}&id=${id}", &n).expect("compiles");
    assert_eq!(t.as_literal(), None);
    let v = vars(&["42", "a b/ü#x&y=1%20"]);
    assert_eq!(t.render(&v), "/users/42?q=a b/ü#x&y=1%20&id=42");
    // In a URL, what a URL cannot carry is encoded; separators and `%` pass.
    assert_eq!(
        t.render_url(&v),
        "/users/42?q=a%20b/%C3%BC%23x&y=1%20&id=42"
    );
    assert_eq!(
        Tpl::compile("plain $5", &n).expect("compiles").as_literal(),
        Some("plain $5".to_string())
    );
    let unknown = Tpl::compile("${nope}", &n).expect_err("unknown");
    assert_eq!(unknown, "unknown variable ${nope}");
}

#[test]
fn template_functions_give_a_fresh_value_at_each_render() {
    let n = names(&[]);
    let random = Tpl::compile("${__random(-1,1)}", &n).expect("compiles");
    assert_eq!(random.as_literal(), None, "a function is never literal");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..300 {
        let v: i64 = random.render(&[]).parse().expect("an integer");
        assert!((-1..=1).contains(&v), "{v}");
        seen.insert(v);
    }
    assert_eq!(seen.len(), 3, "both bounds are drawn: {seen:?}");
    let uuid = Tpl::compile("${__uuid}", &n).expect("compiles");
    let (a, b) = (uuid.render_url(&[]), uuid.render_url(&[]));
    assert_ne!(a, b);
    for u in [&a, &b] {
        let groups: Vec<&str> = u.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{u}"
        );
        assert!(u
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(groups[2].starts_with('4'), "version 4: {u}");
        assert!("89ab".contains(&groups[3][..1]), "RFC 4122 variant: {u}");
    }
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis()
    };
    let before = ms(std::time::SystemTime::now());
    let time: u128 = Tpl::compile("${__time}", &n)
        .expect("compiles")
        .render(&[])
        .parse()
        .expect("milliseconds");
    let after = ms(std::time::SystemTime::now());
    assert!(
        before <= time && time <= after,
        "{before} <= {time} <= {after}"
    );
    let full = Tpl::compile("${__random(-9223372036854775808,9223372036854775807)}", &n)
        .expect("compiles");
    full.render(&[])
        .parse::<i64>()
        .expect("the whole i64 range");
}

#[test]
fn a_step_with_a_function_is_rendered_per_request() {
    let n = names(&["token", "user"]);
    let s = step("{get: '/o/${__uuid}', headers: {x-n: '${__random(5,5)}'}}");
    let t = RequestTemplate::compile("http://h:1", &s, &n)
        .expect("compiles")
        .expect("has a function");
    let (one, two) = (
        format!("{:?}", t.render(&[]).expect("renders")),
        format!("{:?}", t.render(&[]).expect("renders")),
    );
    assert_ne!(one, two, "a fresh UUID per request");
    assert!(one.contains("x-n: 5") || one.contains("\"5\""), "{one}");
}

fn step(yaml: &str) -> plan::RequestStep {
    let text = format!(
        "version: 1\nname: t\ntarget: http://127.0.0.1:1\nload: {{vus: 1, duration: 1s}}\n\
         vars: {{token: t, user: u}}\nscenario: [{yaml}]\n"
    );
    match plan::from_yaml_str(&text)
        .expect("valid plan")
        .scenario
        .remove(0)
    {
        plan::Step::Request(r) => r,
        _ => panic!("a request step"),
    }
}

#[test]
fn only_steps_with_variables_are_rendered_per_request() {
    let n = names(&["token", "user"]);
    let plain = step("{get: '/me?x=$1', headers: {a: b}, body: '{\"k\": 1}'}");
    assert!(RequestTemplate::compile("http://h:1", &plain, &n)
        .expect("compiles")
        .is_none());
    let auth = step("{name: me, get: '/u/${user}', headers: {authorization: 'Bearer ${token}'}}");
    let t = RequestTemplate::compile("http://h:1", &auth, &n)
        .expect("compiles")
        .expect("has variables");
    assert_eq!(t.label(), "me");
    let ok = t.render(&vars(&["abc", "jo e"])).expect("renders");
    let shown = format!("{ok:?}");
    assert!(shown.contains("/u/jo%20e"), "{shown}");
    assert!(shown.contains("Bearer abc"), "{shown}");
    // A value a header cannot carry makes the request unsendable, with the reason.
    let bad = t.render(&vars(&["a\nb", "x"])).expect_err("line break");
    assert!(bad.contains("header authorization"), "{bad}");
}

fn captured(headers: &[(&'static str, &'static str)], body: &str) -> Captured {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(*k, HeaderValue::from_static(v));
    }
    Captured {
        headers: map,
        body: body.as_bytes().to_vec(),
    }
}

fn path(p: &str) -> JsonPath {
    JsonPath::parse(p).expect("valid path")
}

fn extract(var: &str, from: ExtractFrom) -> Extract {
    Extract {
        var: var.into(),
        from,
    }
}

/// Applies `rules` and returns each outcome in order.
fn outcomes(rules: &Rules, status: u16, c: Option<&Captured>, v: &mut [String]) -> Vec<bool> {
    let mut seen = Vec::new();
    rules.apply(status, 1500, c, v, |passed| seen.push(passed));
    seen
}

#[test]
fn checks_pass_or_fail_on_the_response() {
    let n = names(&["user"]);
    let checks = [
        Check::Status(200),
        Check::MaxLatency(std::time::Duration::from_millis(1)),
        Check::BodyContains("hello ${user}".into()),
        Check::JsonEquals {
            path: path("$.n"),
            value: json!(3),
        },
        Check::JsonEquals {
            path: path("who"),
            value: json!("${user}"),
        },
        Check::JsonEquals {
            path: path("list[1]"),
            value: json!({"a": true}),
        },
    ];
    let rules = Rules::compile(&checks, &[], &n).expect("compiles");
    assert_eq!(rules.capture(), Capture::Body);
    let body = r#"{"n": 3.0, "who": "ann", "list": [0, {"a": true}], "greeting": "hello ann"}"#;
    let c = captured(&[], body);
    let mut v = vars(&["ann"]);
    // Latency 1.5 ms > 1 ms: that check fails; 3.0 equals 3.
    assert_eq!(
        outcomes(&rules, 200, Some(&c), &mut v),
        [true, false, true, true, true, true]
    );
    let mut other = vars(&["bob"]);
    assert_eq!(
        outcomes(&rules, 500, Some(&captured(&[], "not json")), &mut other),
        [false, false, false, false, false, false]
    );
    let status_only = Rules::compile(&[Check::Status(204)], &[], &n).expect("compiles");
    assert_eq!(status_only.capture(), Capture::Nothing);
    assert_eq!(outcomes(&status_only, 204, None, &mut v), [true]);
}

#[test]
fn extractions_set_variables_or_count_as_failed_checks() {
    let n = names(&["token", "id", "csrf", "whole", "next"]);
    let rules = Rules::compile(
        &[],
        &[
            extract("token", ExtractFrom::Json(path("$.data.token"))),
            extract("id", ExtractFrom::Json(path("data.items[0]"))),
            extract("csrf", ExtractFrom::Regex(r"csrf=([a-z0-9]+)".into())),
            extract("whole", ExtractFrom::Regex(r"n=\d+".into())),
            extract("next", ExtractFrom::Header("location".into())),
        ],
        &n,
    )
    .expect("compiles");
    assert_eq!(rules.capture(), Capture::Body);
    let body = r#"{"data": {"token": "tk-1", "items": [{"id": 7}]}, "html": "csrf=ab12 n=99"}"#;
    let c = captured(&[("location", "/next"), ("location", "/second")], body);
    let mut v = vars(&["", "", "", "", ""]);
    assert_eq!(outcomes(&rules, 200, Some(&c), &mut v), [true; 5]);
    assert_eq!(v, ["tk-1", r#"{"id":7}"#, "ab12", "n=99", "/next"]);
    // Nothing found: each is a failed check, and the variables keep their values.
    let empty = captured(&[], r#"{"data": {"token": null}}"#);
    assert_eq!(outcomes(&rules, 200, Some(&empty), &mut v), [false; 5]);
    assert_eq!(v, ["tk-1", r#"{"id":7}"#, "ab12", "n=99", "/next"]);
    let headers_only = Rules::compile(
        &[],
        &[extract("next", ExtractFrom::Header("location".into()))],
        &n,
    )
    .expect("compiles");
    assert_eq!(headers_only.capture(), Capture::Headers);
}

fn feeder(mode: FeederMode, rows: usize) -> Feeder {
    Feeder {
        name: "ids".into(),
        mode,
        columns: vec!["id".into()],
        rows: (0..rows).map(|i| vec![format!("r{i}")]).collect(),
        on_exhausted: OnExhausted::StopVu,
    }
}

#[test]
fn a_random_feeder_draws_from_this_agents_rows_only() {
    let n = names(&["id"]);
    // 12 rows on 3 agents: agent 2 has r2, r5, r8, r11.
    let f = AgentFeeder::new(&feeder(FeederMode::Random, 12), &n, 3, 2).expect("has rows");
    let mut v = vars(&[""]);
    let mut counts: std::collections::BTreeMap<String, u32> = Default::default();
    for _ in 0..4000 {
        f.start_iteration(&mut v);
        *counts.entry(v[0].clone()).or_default() += 1;
    }
    assert_eq!(
        counts.keys().map(String::as_str).collect::<Vec<_>>(),
        ["r11", "r2", "r5", "r8"]
    );
    // Uniform: each of 4 rows near 1,000 of 4,000 draws (far outside chance if not).
    assert!(
        counts.values().all(|c| (800..1200).contains(c)),
        "{counts:?}"
    );
}

#[test]
fn a_unique_feeder_hands_each_row_once_then_says_it_ran_out() {
    let yaml = "version: 1\nname: t\ntarget: http://127.0.0.1:1\nagents: 2\n\
                load: {vus: 2, duration: 1s}\n\
                feeders: {ids: {rows: [[id], [a], [b], [c], [d], [e]], mode: unique, on_exhausted: end_run},\n\
                          names: {rows: [[who], [x], [y]], mode: shared}}\n\
                scenario: [{get: '/x?id=${id}&who=${who}'}]\n";
    let plan = plan::from_yaml_str(yaml).expect("valid");
    // Agent 0 of 2 has a, c, e.
    let program = Program::new(&plan, &recorder_labels(&plan), 2, 0).expect("compiles");
    let mut vu = program.start_vu(0);
    let mut seen = Vec::new();
    while program.start_iteration(&mut vu) {
        seen.push(vu.vars()[0].clone());
        assert!(program.exhausted().is_none());
    }
    assert_eq!(seen, ["a", "c", "e"]);
    assert_eq!(program.exhausted(), Some(("ids", OnExhausted::EndRun)));
    // Every later iteration finds it exhausted too.
    assert!(!program.start_iteration(&mut program.start_vu(1)));
}

#[test]
fn a_shared_feeder_hands_this_agents_rows_round_robin() {
    let n = names(&["id"]);
    // 7 rows on 3 agents: agent 1 has rows 1 and 4.
    let f = AgentFeeder::new(&feeder(FeederMode::Shared, 7), &n, 3, 1).expect("has rows");
    let mut v = vars(&[""]);
    let mut seen = Vec::new();
    for _ in 0..5 {
        f.start_vu(0, &mut v);
        f.start_iteration(&mut v);
        seen.push(v[0].clone());
    }
    assert_eq!(seen, ["r1", "r4", "r1", "r4", "r1"]);
    let none = AgentFeeder::new(&feeder(FeederMode::Shared, 2), &n, 3, 2).expect_err("no row");
    assert_eq!(none, "feeder ids has 2 rows, none of them for agent 2 of 3");
}

#[test]
fn a_per_vu_feeder_gives_each_vu_its_own_row() {
    let n = names(&["id"]);
    // 6 rows on 2 agents: agent 0 has r0, r2, r4.
    let f = AgentFeeder::new(&feeder(FeederMode::PerVu, 6), &n, 2, 0).expect("has rows");
    let row_of = |slot| {
        let mut v = vars(&[""]);
        f.start_vu(slot, &mut v);
        f.start_iteration(&mut v);
        f.start_iteration(&mut v);
        v[0].clone()
    };
    assert_eq!(
        [row_of(0), row_of(1), row_of(2), row_of(3)],
        ["r0", "r2", "r4", "r0"]
    );
}

#[test]
fn vus_start_with_defaults_rows_and_built_ins() {
    let yaml = "version: 1\nname: t\ntarget: http://127.0.0.1:1\nagents: 3\n\
                load: {vus: 6, duration: 1s}\nvars: {page: 2}\n\
                feeders: {users: {rows: [[user], [a], [b], [c], [d], [e], [f]]}}\n\
                scenario:\n\
                - {get: '/x?a=${__agent}&v=${__vu}&i=${__iteration}&p=${page}&u=${user}',\n\
                   extract: {tok: {header: x-token}}}\n\
                - {get: /plain}\n";
    let plan = plan::from_yaml_str(yaml).expect("valid");
    let labels = plan.step_labels();
    let program = Program::new(&plan, &labels, 3, 2).expect("compiles");
    assert!(matches!(
        &program.steps[1],
        Step::Request(r) if matches!(r.send, Send::Static(_))
    ));
    let mut vu = program.start_vu(1);
    let value = |vu: &VuState, name: &str| {
        let n = names(&["page", "user", "tok", "__agent", "__vu", "__iteration"]);
        vu.vars()[n.get(name).expect("known")].clone()
    };
    assert_eq!(value(&vu, "page"), "2");
    assert_eq!(value(&vu, "__agent"), "2");
    // Slot 1 of agent 2 of 3 is VU 5 of the run.
    assert_eq!(value(&vu, "__vu"), "5");
    assert!(program.start_iteration(&mut vu));
    assert_eq!(
        (value(&vu, "__iteration"), value(&vu, "user")),
        ("0".into(), "c".into())
    );
    assert!(program.start_iteration(&mut vu));
    assert_eq!(
        (value(&vu, "__iteration"), value(&vu, "user")),
        ("1".into(), "f".into())
    );
    assert_eq!(value(&vu, "tok"), "");

    let plain = plan::from_yaml_str(
        "version: 1\nname: p\ntarget: http://127.0.0.1:1\nload: {vus: 1, duration: 1s}\n\
         scenario: [{get: /}]\n",
    )
    .expect("valid");
    let program = Program::new(&plain, &plain.step_labels(), 1, 0).expect("compiles");
    assert!(program.start_vu(0).vars().is_empty());
}

#[test]
fn a_choice_takes_each_branch_exactly_weight_times_per_bag_and_conditions_read_the_status() {
    let yaml = "version: 1\nname: t\ntarget: http://127.0.0.1:1\nload: {vus: 1, duration: 1s}\n\
                scenario: [{group: g, steps: [{choose: [{weight: 3, steps: [{get: /a}]}, \
                {weight: 1, steps: [{get: /b}]}]}]}, \
                {if: '${status} == 404', then: [{get: /nf}]}]\n";
    let plan = plan::from_yaml_str(yaml).expect("valid");
    let labels = recorder_labels(&plan);
    assert_eq!(labels, ["GET /a", "GET /b", "GET /nf", "group:g"]);
    let program = Program::new(&plan, &labels, 1, 0).expect("compiles");
    let Step::Group(inner) = &program.steps[0] else {
        panic!("a group")
    };
    let Step::Choose(choice) = &inner[0] else {
        panic!("a choice")
    };
    // A generator that always draws the last ticket: the bag still empties evenly.
    let mut counts = [0u32; 2];
    for _ in 0..4000 {
        let branch = choice.pick(|n| n - 1);
        let Step::Request(r) = &branch[0] else {
            panic!("a request")
        };
        assert_eq!(&*r.groups, [3], "requests in the group know it");
        counts[r.label] += 1;
    }
    assert_eq!(counts, [3000, 1000]);

    let Step::If(cond, _, _) = &program.steps[1] else {
        panic!("an if")
    };
    let mut vu = program.start_vu(0);
    assert!(!cond.holds(&vu), "no response yet: status 0");
    program.note_status(&mut vu, 404);
    assert!(cond.holds(&vu));
    program.note_status(&mut vu, 200);
    assert!(!cond.holds(&vu));
}

#[test]
fn each_scenario_compiles_its_own_steps_and_vars_and_records_under_its_key() {
    let yaml = "version: 1\nname: t\ntarget: http://127.0.0.1:1\nvars: {who: all}\n\
                scenarios:\n  a: {load: {vus: 1, duration: 1s}, steps: [{get: '/a/${who}'}]}\n  \
                b: {load: {vus: 2, duration: 1s}, vars: {who: bee}, \
                steps: [{group: g, steps: [{get: '/b/${who}'}]}]}\n";
    let plan = plan::from_yaml_str(yaml).expect("valid");
    let labels = recorder_labels(&plan);
    assert_eq!(
        labels,
        [
            "GET /a/${who}",
            "GET /b/${who}",
            "group:g",
            "scenario:a",
            "scenario:b"
        ]
    );
    let runs = plan.scenario_runs();
    let a = Program::for_run(&plan, &runs[0], &labels, 1, 0).expect("compiles");
    let b = Program::for_run(&plan, &runs[1], &labels, 1, 0).expect("compiles");
    let Step::Request(ra) = &a.steps[0] else {
        panic!("a request")
    };
    assert_eq!((ra.label, &ra.groups[..]), (0, &[3][..]));
    let Step::Group(inner) = &b.steps[0] else {
        panic!("a group")
    };
    let Step::Request(rb) = &inner[0] else {
        panic!("a request")
    };
    // The scenario's key comes first, then the groups around the step.
    assert_eq!((rb.label, &rb.groups[..]), (1, &[4, 2][..]));
    assert_eq!(a.start_vu(0).vars(), ["all"]);
    assert_eq!(b.start_vu(0).vars(), ["bee"]);
}
