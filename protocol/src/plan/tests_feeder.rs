//! Tests of feeders in plans: JSON files and inline objects, the `random` and `unique` modes and
//! `on_exhausted`, and the errors that name the feeder's field and row.

use super::*;
use std::collections::BTreeMap;

/// Feeder files from memory, standing in for the coordinator's file system.
struct Files(BTreeMap<&'static str, String>);

impl PlanFiles for Files {
    fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, String> {
        match self.0.get(path) {
            Some(text) if text.len() > limit => Err(format!("larger than {limit} bytes")),
            Some(text) => Ok(text.as_bytes().to_vec()),
            None => Err("no such file".into()),
        }
    }
}

fn plan(feeders: &str) -> String {
    format!(
        "version: 1\nname: f\ntarget: http://127.0.0.1:1\nload: {{vus: 1, duration: 1s}}\n\
         feeders: {feeders}\nscenario: [{{get: '/u/${{user}}?k=${{key}}'}}]\n"
    )
}

fn parse(feeders: &str, files: &[(&'static str, &str)]) -> Result<Plan, Vec<String>> {
    let files = Files(files.iter().map(|(k, v)| (*k, v.to_string())).collect());
    from_yaml_str_with(&plan(feeders), &files)
        .map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

#[test]
fn json_files_become_rows_by_extension_or_format() {
    let users =
        r#"[{"user": "alice", "key": 1}, {"user": "bob", "key": {"k": [1]}}, {"user": "carol"}]"#;
    for (feeders, name) in [
        ("{users: {file: users.json}}", "users.json"),
        ("{users: {file: users.txt, format: json}}", "users.txt"),
    ] {
        let parsed = parse(feeders, &[(name, users)]).expect("valid");
        let f = &parsed.feeders[0];
        assert_eq!(f.columns, ["key", "user"]);
        assert_eq!(
            f.rows,
            [["1", "alice"], [r#"{"k":[1]}"#, "bob"], ["", "carol"]]
        );
        // Agents get the rows inside the plan, as with CSV.
        assert_eq!(from_value(&parsed.to_json()).as_ref(), Ok(&parsed));
    }
    // Inline objects are rows too.
    let inline = parse(
        "{users: {rows: [{user: a, key: 1}, {key: 2, user: b}], mode: random}}",
        &[],
    )
    .expect("valid");
    assert_eq!(inline.feeders[0].rows, [["1", "a"], ["2", "b"]]);
    assert_eq!(inline.feeders[0].mode, FeederMode::Random);
}

#[test]
fn bad_json_feeders_name_the_field_and_the_row() {
    let not_object = parse(
        "{users: {file: users.json}}",
        &[("users.json", r#"[{"user": "a", "key": 1}, 7]"#)],
    )
    .expect_err("a number");
    assert!(
        not_object[0].starts_with(
            "feeders.users.file: users.json: not a JSON array of objects: row [1]: must be an \
             object (a map of column names to values), got a number"
        ),
        "{not_object:?}"
    );
    let broken = parse(
        "{users: {file: users.json}}",
        &[("users.json", "[\n{\"user\": \"a\",\n \"key\" 1}]")],
    )
    .expect_err("broken");
    assert!(
        broken[0].starts_with("feeders.users.file: users.json: not a JSON array of objects")
            && broken[0].contains("line 3"),
        "{broken:?}"
    );
    let bad_key = parse(
        "{users: {file: users.json}}",
        &[("users.json", r#"[{"user": "a", "key": 1, "my-key": 2}]"#)],
    )
    .expect_err("a key that is no variable name");
    assert!(
        bad_key[0].starts_with("feeders.users.file (key \"my-key\"): is not a variable name"),
        "{bad_key:?}"
    );
    let empty = parse("{users: {file: users.json}}", &[("users.json", "[]")]).expect_err("empty");
    assert!(
        empty
            .iter()
            .any(|e| e == "feeders.users.file: has no row (an empty array)"),
        "{empty:?}"
    );
    let format = parse(
        "{users: {file: users.json, format: xml}}",
        &[("users.json", "[]")],
    )
    .expect_err("bad format");
    assert_eq!(
        format,
        ["feeders.users.format: must be csv or json, got \"xml\""]
    );
    let inline = parse("{users: {rows: [{user: a, key: 1}, [b, 2]]}}", &[]).expect_err("mixed");
    assert_eq!(
        inline,
        ["feeders.users.rows: row [1]: must be an object (a map of column names to values), got a list"]
    );
}

#[test]
fn unique_feeders_say_what_happens_when_they_run_out() {
    let rows = "rows: [[user, key], [a, 1], [b, 2]]";
    let default = parse(&format!("{{users: {{{rows}, mode: unique}}}}"), &[]).expect("valid");
    assert_eq!(default.feeders[0].mode, FeederMode::Unique);
    assert_eq!(default.feeders[0].on_exhausted, OnExhausted::StopVu);
    let end = parse(
        &format!("{{users: {{{rows}, mode: unique, on_exhausted: end_run}}}}"),
        &[],
    )
    .expect("valid");
    assert_eq!(end.feeders[0].on_exhausted, OnExhausted::EndRun);
    assert_eq!(end.to_json()["feeders"]["users"]["on_exhausted"], "end_run");
    assert_eq!(from_value(&end.to_json()).as_ref(), Ok(&end));
    let wrong = parse(
        &format!("{{users: {{{rows}, mode: shared, on_exhausted: end_run}}}}"),
        &[],
    )
    .expect_err("not unique");
    assert_eq!(
        wrong,
        ["feeders.users.on_exhausted: applies to `mode: unique` only (the other modes start over at the end)"]
    );
    let bad = parse(
        &format!("{{users: {{{rows}, mode: unique, on_exhausted: later}}}}"),
        &[],
    )
    .expect_err("bad value");
    assert_eq!(
        bad,
        ["feeders.users.on_exhausted: must be stop_vu or end_run, got \"later\""]
    );
}
