use super::{Event, ScriptHost, ScriptResponse};
use herd_protocol::plan::Scripts;
use rhai::{Dynamic, Map};
use std::sync::Arc;
use std::time::Duration;

fn host(source: &str, call_timeout: Duration) -> ScriptHost {
    ScriptHost::new(&Scripts {
        file: "t.rhai".into(),
        source: source.into(),
        call_timeout,
    })
    .expect("compiles")
}

fn this() -> Dynamic {
    let mut m = Map::new();
    m.insert("vars".into(), Map::new().into());
    m.insert("state".into(), Map::new().into());
    m.insert("response".into(), ScriptResponse::default().to_map().into());
    m.into()
}

/// Runs `f()` of `source` on this thread (no VU: `request` is refused).
fn run(source: &str, f: &str) -> (Dynamic, Result<bool, String>) {
    host(source, Duration::from_secs(5)).run(f, this(), None)
}

fn field(this: &Dynamic, part: &str, key: &str) -> String {
    let m = this.clone().cast::<Map>();
    let part = m[part].clone().cast::<Map>();
    part.get(key).map(ToString::to_string).unwrap_or_default()
}

#[test]
fn scripts_have_no_file_network_or_process_functions() {
    for call in [
        r#"open("/etc/passwd")"#,
        r#"read_file("/etc/passwd")"#,
        r#"File("/etc/passwd")"#,
        r#"system("ls")"#,
        r#"exec("ls")"#,
        r#"command("ls")"#,
        r#"env("HOME")"#,
        r#"connect("127.0.0.1:80")"#,
        r#"http_get("http://127.0.0.1/")"#,
        r#"fetch("http://127.0.0.1/")"#,
    ] {
        let (_, result) = run(&format!("fn f() {{ {call}; true }}"), "f");
        let err = result.expect_err(call);
        assert!(err.contains("Function not found"), "{call}: {err}");
    }
    // Sleeping would block outside the time limit's sight.
    for call in ["sleep(1)", "sleep(0.5)"] {
        let (_, result) = run(&format!("fn f() {{ {call}; true }}"), "f");
        let err = result.expect_err(call);
        assert!(err.contains("scripts may not sleep"), "{call}: {err}");
    }
}

#[test]
fn scripts_cannot_import_or_eval() {
    let import = ScriptHost::new(&Scripts {
        file: "t.rhai".into(),
        source: "import \"x\" as y; fn f() { true }".into(),
        call_timeout: Duration::from_secs(1),
    });
    assert!(import.is_err(), "import must not compile");
    let eval = ScriptHost::new(&Scripts {
        file: "t.rhai".into(),
        source: "fn f() { eval(\"1\") }".into(),
        call_timeout: Duration::from_secs(1),
    });
    let err = eval.expect_err("eval must not compile");
    assert!(err.starts_with("t.rhai: "), "{err}");
}

#[test]
fn a_runaway_call_is_stopped_by_its_time_limit() {
    let h = host(
        "fn spin() { let n = 0; loop { n += 1; } }",
        Duration::from_millis(50),
    );
    let (_, result) = h.run("spin", this(), None);
    let err = result.expect_err("stopped");
    assert!(
        err.contains("spin() in t.rhai was stopped after computing for 50ms"),
        "{err}"
    );
    // The engine is fine afterwards: the next call runs.
    let h = host(
        "fn spin() { loop {} } fn ok() { 1 }",
        Duration::from_millis(50),
    );
    assert!(h.run("spin", this(), None).1.is_err());
    assert_eq!(h.run("ok", this(), None).1, Ok(true));
}

#[test]
fn deep_recursion_and_huge_strings_are_errors_not_crashes() {
    let (_, r) = run("fn r(n) { r(n + 1) } fn f() { r(0) }", "f");
    assert!(r.is_err());
    let (_, r) = run(
        r#"fn f() { let s = "xxxxxxxxxxxxxxxx"; loop { s += s; } }"#,
        "f",
    );
    assert!(r.expect_err("too long").contains("Length of string"));
}

#[test]
fn helpers_compute_what_auth_needs() {
    let source = r#"
        fn f() {
            // RFC 4231 test case 2.
            this.vars.mac = hex(hmac_sha256("Jefe", "what do ya want for nothing?"));
            this.vars.sha = hex(sha256("abc"));
            this.vars.b64 = base64_encode("hello");
            this.vars.back = text(base64_decode("aGVsbG8="));
            this.vars.id = uuid();
            let r = random();
            this.vars.in_range = r >= 0.0 && r < 1.0 && random(3, 5) >= 3 && random(3, 5) < 5;
            this.vars.now = now_ms() > 1700000000000;
        }
    "#;
    let (this, result) = run(source, "f");
    assert_eq!(result, Ok(true));
    assert_eq!(
        field(&this, "vars", "mac"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        field(&this, "vars", "sha"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(field(&this, "vars", "b64"), "aGVsbG8=");
    assert_eq!(field(&this, "vars", "back"), "hello");
    let id = field(&this, "vars", "id");
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    assert_eq!(field(&this, "vars", "in_range"), "true");
    assert_eq!(field(&this, "vars", "now"), "true");
}

#[test]
fn state_is_kept_across_calls_and_false_fails_the_check() {
    let h = host(
        "fn count() { this.state.n = (this.state.n ?? 0) + 1; this.state.n < 3 }",
        Duration::from_secs(1),
    );
    let (mut t, r) = h.run("count", this(), None);
    assert_eq!(r, Ok(true));
    for expected in [Ok(true), Ok(false)] {
        let (next, r) = h.run("count", t, None);
        assert_eq!(r, expected);
        t = next;
    }
    assert_eq!(field(&t, "state", "n"), "3");
}

#[test]
fn request_outside_a_vu_and_bad_requests_are_errors_naming_the_field() {
    let (_, r) = run(r#"fn f() { request(#{path: "/x"}) }"#, "f");
    assert!(r.expect_err("no VU").contains("only a script step's call"));
    for (spec, says) in [
        (r#"#{}"#, "`path` is required"),
        (r#"#{path: "x"}"#, "must start with '/'"),
        (r#"#{path: "/", method: "BREW"}"#, "unknown method"),
        (r#"#{path: "/", bodyy: "x"}"#, "unknown field `bodyy`"),
        (r#"#{path: "/", headers: 1}"#, "`headers` must be a map"),
    ] {
        let (_, r) = run(&format!("fn f() {{ request({spec}) }}"), "f");
        let err = r.expect_err(spec);
        assert!(err.contains(says), "{spec}: {err}");
    }
}

/// A call's requests reach its VU; waiting for the answer does not count against the limit.
#[tokio::test(flavor = "current_thread")]
async fn requests_go_through_the_vu_and_waiting_is_not_computing() {
    let h = Arc::new(host(
        r#"fn login() {
            let r = request(#{method: "post", path: "/nonce", headers: #{"x-a": "1"}, body: "b"});
            this.vars.got = r.body;
            this.vars.status = r.status;
            r.status == 200
        }"#,
        Duration::from_millis(100),
    ));
    let mut call = h.start("login".into(), this());
    let mut asked = Vec::new();
    let (this, result) = loop {
        match call.next().await {
            Event::Request(request, reply) => {
                asked.push(request);
                // Longer than the call's limit: only computing counts.
                tokio::time::sleep(Duration::from_millis(300)).await;
                reply.send(ScriptResponse {
                    status: 200,
                    body: "n-123".into(),
                    ..ScriptResponse::default()
                });
            }
            Event::Done { this, result } => break (this, result),
        }
    };
    assert_eq!(result, Ok(true));
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].method, "POST");
    assert_eq!(asked[0].path, "/nonce");
    assert_eq!(asked[0].headers, vec![("x-a".to_string(), "1".to_string())]);
    assert_eq!(asked[0].body.as_deref(), Some("b"));
    let this = this.expect("this comes back");
    assert_eq!(field(&this, "vars", "got"), "n-123");
    assert_eq!(field(&this, "vars", "status"), "200");
}
