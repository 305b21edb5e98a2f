//! The HTTP side of a plan: https targets, options, and the three forms of a request body.

use super::*;

fn plan(target: &str, scenario: &str, options: &str) -> String {
    format!(
        "version: 1\nname: t\ntarget: {target}\nload: {{stages: [{{duration: 1s, vus: 1}}]}}\n\
         scenario: {scenario}\noptions: {options}\n"
    )
}

fn request(plan: &Plan, i: usize) -> &RequestStep {
    match &plan.scenario[i] {
        Step::Request(r) => r,
        _ => panic!("step {i} is not a request step"),
    }
}

pub(super) fn errors(text: &str) -> Vec<String> {
    from_yaml_str(text)
        .expect_err("plan is invalid")
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

pub(super) fn assert_has(errors: &[String], expected: &str) {
    assert!(
        errors.iter().any(|e| e.starts_with(expected)),
        "missing {expected:?} in {errors:#?}"
    );
}

#[test]
fn https_targets_and_http_options_parse_and_round_trip() {
    let text = plan(
        "https://localhost:8443/",
        "[{get: /}]",
        "{timeout: 2s, connect_timeout: 500ms, http: http2, insecure_tls: true, redirects: 0, \
          on_agent_loss: replace, cookies: false}",
    );
    let p = from_yaml_str(&text).expect("valid");
    assert_eq!(p.target, "https://localhost:8443");
    assert_eq!(
        p.options,
        Options {
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_millis(500),
            graceful_stop: Duration::from_secs(30),
            http: HttpVersion::Http2,
            insecure_tls: true,
            redirects: 0,
            on_agent_loss: OnAgentLoss::Replace,
            cookies: false,
            tls: TargetTls::default(),
            proxy: None,
            ..Options::default()
        }
    );
    assert_eq!(from_value(&p.to_json()), Ok(p));
}

#[test]
fn options_default_to_verified_tls_auto_http_and_ten_redirects() {
    let p = from_yaml_str(&plan("http://h", "[{get: /}]", "{}")).expect("valid");
    assert_eq!(p.options.http, HttpVersion::Auto);
    assert!(!p.options.insecure_tls);
    assert_eq!(p.options.redirects, 10);
    assert!(p.options.cookies, "a cookie jar per VU, as in k6");
    assert_eq!(p.options.connect_timeout, Duration::from_secs(10));
    assert_eq!(p.options.on_agent_loss, OnAgentLoss::Redistribute);
}

#[test]
fn bad_options_are_named() {
    let e = errors(&plan(
        "http://h",
        "[{get: /}]",
        "{connect_timeout: 0s, http: h3, insecure_tls: yes please, redirects: -1, \
          on_agent_loss: retry, cookies: 1}",
    ));
    assert_has(&e, "options.connect_timeout: must be > 0");
    assert_has(&e, "options.http: unknown HTTP version \"h3\"");
    assert_has(&e, "options.insecure_tls: must be true or false");
    assert_has(&e, "options.redirects: must be >= 0");
    assert_has(&e, "options.on_agent_loss: unknown policy \"retry\"");
    assert_has(&e, "options.cookies: must be true or false");
    let e = errors(&plan("http://h", "[{get: /}]", "{on_agent_loss: 3}"));
    assert_has(
        &e,
        "options.on_agent_loss: must be one of continue, redistribute",
    );
}

#[test]
fn a_json_body_is_sent_as_json_text_with_its_content_type() {
    let text = plan(
        "http://h",
        "[{post: /a, json: {user: u1, n: [1, 2]}}, \
          {post: /b, json: [1], headers: {Content-Type: application/vnd.x+json}}]",
        "{}",
    );
    let p = from_yaml_str(&text).expect("valid");
    let a = request(&p, 0);
    assert_eq!(a.body.as_deref(), Some(r#"{"n":[1,2],"user":"u1"}"#));
    assert_eq!(
        a.headers,
        vec![("content-type".into(), "application/json".into())]
    );
    // A content type the step sets itself is kept.
    let b = request(&p, 1);
    assert_eq!(b.body.as_deref(), Some("[1]"));
    assert_eq!(
        b.headers,
        vec![("Content-Type".into(), "application/vnd.x+json".into())]
    );
    assert_eq!(from_value(&p.to_json()), Ok(p));
}

#[test]
fn a_body_file_is_read_by_the_loader_and_travels_inside_the_plan() {
    let text = plan("http://h", "[{put: /upload, body_file: data/x.bin}]", "{}");
    let asked = std::cell::RefCell::new(Vec::new());
    let p = from_yaml_str_with(
        &text,
        &Reader(|path: &str| {
            asked.borrow_mut().push(path.to_string());
            Ok(vec![0, 159, 255, b'\n'])
        }),
    )
    .expect("valid");
    assert_eq!(asked.into_inner(), vec!["data/x.bin".to_string()]);
    let file = request(&p, 0).body_file.as_ref().expect("a body file");
    assert_eq!(file.path, "data/x.bin");
    assert_eq!(file.content, vec![0, 159, 255, b'\n']);
    // The JSON form carries the bytes: an agent parses it without the file.
    let json = p.to_json();
    assert_eq!(
        json["scenario"][0]["body_file"]["content_base64"],
        serde_json::json!("AJ//Cg==")
    );
    assert_eq!(from_value(&json), Ok(p));
}

#[test]
fn body_file_mistakes_are_named() {
    // A bare path where nothing reads files (an API or a queue sends the plan as a value).
    let text = plan("http://h", "[{post: /a, body_file: x.bin}]", "{}");
    assert_has(
        &errors(&text),
        "scenario[0].body_file: the file \"x.bin\" was not read",
    );
    // A file that cannot be read, with the other problems of the plan.
    let text = plan(
        "http://h",
        "[{post: /a, body_file: missing.bin}, {get: nope}]",
        "{}",
    );
    let e: Vec<String> = from_yaml_str_with(&text, &Reader(|_: &str| Err("not found".into())))
        .expect_err("invalid")
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_has(&e, "scenario[0].body_file: missing.bin: not found");
    assert_has(&e, "scenario[1].get: must be a path");
    // Too large, alone (16 MiB a file) or together (64 MiB a plan), named at the field.
    let big = vec![b'x'; MAX_BODY_FILE_BYTES + 1];
    let e = from_yaml_str_with(
        &text.replace(", {get: nope}", ""),
        &Reader(|_: &str| Ok(big.clone())),
    )
    .expect_err("too large")
    .to_string();
    assert_eq!(
        e,
        "scenario[0].body_file: missing.bin: the file holds 16777217 bytes, more than the limit \
         of 16777216 bytes (16 MiB) per body file"
    );
    let just = vec![b'x'; MAX_BODY_FILE_BYTES];
    let one = from_yaml_str_with(
        &text.replace(", {get: nope}", ""),
        &Reader(|_: &str| Ok(just.clone())),
    )
    .expect("16 MiB is allowed");
    assert_eq!(
        request(&one, 0).body_file.as_ref().map(|f| f.content.len()),
        Some(MAX_BODY_FILE_BYTES)
    );
    let fifth = vec![b'x'; MAX_BODY_FILES_BYTES / 5 + 1];
    let five = plan(
        "http://h",
        "[{post: /a, body_file: a}, {post: /b, body_file: b}, {post: /c, body_file: c}, \
         {post: /d, multipart: [{name: f, file: d}]}, {post: /e, body_file: e}]",
        "{}",
    );
    let e = from_yaml_str_with(&five, &Reader(|_: &str| Ok(fifth.clone())))
        .expect_err("too large together")
        .to_string();
    assert_eq!(
        e,
        format!(
            "scenario[4].body_file: the plan's body files hold {} bytes with this one, more than \
             the limit of 67108864 bytes (64 MiB) for all of them together",
            5 * fifth.len()
        )
    );
    use base64::Engine as _;
    // A plan sent as a value with too large a content, or a reference to chunks only a start
    // command's plan may hold.
    let inline = plan(
        "http://h",
        &format!(
            "[{{post: /a, body_file: {{path: p, content_base64: '{}'}}}}]",
            base64::engine::general_purpose::STANDARD.encode(&big)
        ),
        "{}",
    );
    assert_has(
        &errors(&inline),
        "scenario[0].body_file: the file holds 16777217 bytes, more than the limit",
    );
    let chunked = plan(
        "http://h",
        "[{post: /a, body_file: {path: p, chunked: {offset: 0, bytes: 3}}}]",
        "{}",
    );
    assert_has(
        &errors(&chunked),
        "scenario[0].body_file.chunked: only a start command's plan carries body files beside it",
    );
    // Two bodies, and a bad inline content.
    let e = errors(&plan(
        "http://h",
        "[{post: /a, body: x, json: {}}, {post: /b, body_file: {path: p, content_base64: '***'}}]",
        "{}",
    ));
    assert_has(
        &e,
        "scenario[0]: has body and json: a request has at most one body",
    );
    assert_has(
        &e,
        "scenario[1].body_file.content_base64: is not valid base64",
    );
}

/// A file reader from a closure, standing in for the coordinator's file system.
struct Reader<F>(F);

impl<F: Fn(&str) -> Result<Vec<u8>, String>> PlanFiles for Reader<F> {
    fn read(&self, path: &str, _limit: usize) -> Result<Vec<u8>, String> {
        (self.0)(path)
    }
}
