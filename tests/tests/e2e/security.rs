//! End-to-end: the API's hardening (issue 15) through a real `herd up`: body limits per route
//! (413 naming the limit, announced or streamed), the per-credential write limit (429 with
//! `Retry-After`, then recovery), revoked and expired tokens (401), and the audit log holding
//! each write once.

use herd_e2e::service::{plan, Service};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A raw request: `head` is everything before the blank line (without `Host`), `body` follows.
fn raw(s: &Service, head: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(s.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!("{head}\r\nHost: x\r\nConnection: close\r\n\r\n{body}");
    let _ = stream.write_all(request.as_bytes());
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn test_body(id: &str) -> Value {
    json!({"id": id, "name": id, "plan": plan(id, "http://127.0.0.1:9", 1, 1, 1, &[])})
}

fn subject(s: &Service, token: &str) -> String {
    let (status, me) = s.request("GET", "/api/v1/whoami", Some(token), None);
    assert_eq!(status, 200, "{me}");
    me["subject"].as_str().expect("subject").to_string()
}

#[test]
fn bodies_over_their_route_limit_are_refused_with_413_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    // Announced: refused before the body is read.
    let answer = raw(
        &s,
        &format!(
            "POST /api/v1/tests HTTP/1.1\r\nAuthorization: Bearer {op}\r\nContent-Length: 100000000"
        ),
        "",
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("limit of 87 MiB"), "{answer}");
    // Streamed (chunked, no length): cut off at the limit while read.
    let big = "x".repeat(20 << 10);
    let answer = raw(
        &s,
        &format!(
            "POST /api/v1/runs/r1/ramp HTTP/1.1\r\nAuthorization: Bearer {op}\r\nTransfer-Encoding: chunked"
        ),
        &format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len()),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("POST /api/v1/runs/r1/ramp"), "{answer}");
    assert!(answer.contains("limit of 16 KiB"), "{answer}");
    // A plan under the limit is taken.
    let (status, body) = s.request("POST", "/api/v1/tests", Some(&op), Some(&test_body("fits")));
    assert_eq!(status, 201, "{body}");
}

#[test]
fn a_burst_of_writes_gets_429_with_retry_after_then_recovers_and_each_write_is_audited_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("herd.toml");
    std::fs::write(&config, "[api]\nwrite_burst = 4\nwrites_per_second = 0.2\n").expect("write");
    let s = Service::start(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("utf-8 path")],
    );
    let op = s.token("operator");
    let other = s.token("operator");
    let mut created = Vec::new();
    for i in 0..4 {
        let id = format!("burst-{i}");
        let (status, body) = s.request("POST", "/api/v1/tests", Some(&op), Some(&test_body(&id)));
        assert_eq!(status, 201, "write {i} of the burst: {body}");
        created.push(id);
    }
    let (status, head, body) = s.request_head(
        "POST",
        "/api/v1/tests",
        Some(&op),
        &test_body("refused").to_string(),
    );
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "rate_limited", "{body}");
    let retry: u64 = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {head}"));
    assert!((1..=5).contains(&retry), "Retry-After {retry}");
    // Another credential has its own share; reads are not limited.
    let (status, body) = s.request(
        "POST",
        "/api/v1/tests",
        Some(&other),
        Some(&test_body("other")),
    );
    assert_eq!(status, 201, "{body}");
    let (status, _) = s.request("GET", "/api/v1/tests", Some(&op), None);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_secs(retry));
    let (status, body) = s.request(
        "POST",
        "/api/v1/tests",
        Some(&op),
        Some(&test_body("after")),
    );
    assert_eq!(status, 201, "recovered after Retry-After: {body}");
    created.push("after".into());

    let me = subject(&s, &op);
    let (status, audit) = s.request("GET", "/api/v1/audit?limit=100", Some(&op), None);
    assert_eq!(status, 200, "{audit}");
    let mine: Vec<&Value> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["actor"] == me.as_str())
        .collect();
    assert_eq!(
        mine.len(),
        created.len(),
        "each admitted write once, the refused one not: {audit}"
    );
    assert!(mine
        .iter()
        .all(|e| e["action"] == "POST /api/v1/tests" && e["status"] == 201));
    let mut ids: Vec<&str> = mine.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), created.len(), "distinct entries");
    let creations = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("token.create"))
        })
        .count();
    assert_eq!(
        creations, 2,
        "the CLI's token creations are audited too: {audit}"
    );
    let viewer = s.token("viewer");
    let (status, _) = s.request("GET", "/api/v1/audit", Some(&viewer), None);
    assert_eq!(status, 403, "the audit log is for operators");
}

#[test]
fn revoked_and_expired_tokens_get_401() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    let id = subject(&s, &op);
    let (out, _) = s.token_with(&["list"]);
    assert!(out.contains(&format!("{id}\toperator\tactive")), "{out}");
    let (_, said) = s.token_with(&["revoke", &id]);
    assert!(said.contains(&id), "{said}");
    let (status, body) = s.request("GET", "/api/v1/tests", Some(&op), None);
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("revoked")),
        "{body}"
    );
    let (out, _) = s.token_with(&["list"]);
    assert!(
        out.contains(&format!("{id}\toperator\twas revoked")),
        "{out}"
    );

    let (short, _) = s.token_with(&["create", "--role", "viewer", "--expires-in", "3s"]);
    let (status, _) = s.request("GET", "/api/v1/tests", Some(&short), None);
    assert_eq!(status, 200, "valid before its expiry");
    std::thread::sleep(Duration::from_millis(3100));
    let (status, body) = s.request("GET", "/api/v1/tests", Some(&short), None);
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{body}"
    );
    assert!(
        !body.to_string().contains(&short),
        "the token is not echoed"
    );
}

/// A target that keeps the credential headers it receives (HTTP/1.1, keep-alive, 200 "ok").
struct HeaderTarget {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl HeaderTarget {
    fn start() -> Self {
        Self::on("127.0.0.1", None)
    }

    /// On `ip`; with `redirect`, every request is answered `302 Location: {redirect}`.
    fn on(ip: &str, redirect: Option<String>) -> Self {
        let listener = std::net::TcpListener::bind((ip, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let kept = kept.clone();
                let redirect = redirect.clone();
                std::thread::spawn(move || serve(stream, &kept, redirect.as_deref()));
            }
        });
        Self { addr, seen }
    }

    /// Every request's `authorization`, `x-api-key` and `cookie` values, one line each.
    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

fn serve(stream: TcpStream, seen: &std::sync::Mutex<Vec<String>>, redirect: Option<&str>) {
    use std::io::BufRead;
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = std::io::BufReader::new(stream);
    loop {
        let mut request = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            request.push(line.trim_end().to_string());
        }
        let credentials: Vec<String> = request
            .iter()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                ["authorization:", "x-api-key:", "cookie:"]
                    .iter()
                    .any(|h| l.starts_with(h))
            })
            .cloned()
            .collect();
        seen.lock().expect("lock").push(credentials.join(" | "));
        let answer = match redirect {
            Some(to) => {
                format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
            }
            None => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_string(),
        };
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Every file under `dir`, as text (lossy: the SQLite file and its WAL too).
fn all_files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.map_while(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    out
}

#[test]
fn secret_values_and_credential_headers_reach_the_target_and_nothing_else() {
    const FROM_ENV: &str = "s3cr3t-from-env-4242";
    const LITERAL_KEY: &str = "literal-key-7777";
    const COOKIE: &str = "sid=cookie-5555";
    let dir = tempfile::tempdir().expect("tempdir");
    let target = HeaderTarget::start();
    let s = Service::start_with_env(
        dir.path(),
        &[],
        &[
            ("HERD_E2E_SECRET", FROM_ENV.to_string()),
            ("RUST_LOG", "debug,rumqttd=off".to_string()),
        ],
    );
    let op = s.token("operator");
    let viewer = s.token("viewer");
    let plan = json!({
        "version": 1, "name": "secret", "target": format!("http://{}", target.addr), "agents": 2,
        "load": {"stages": [{"duration": "2s", "vus": 2}]},
        "secrets": {"API_TOKEN": {"env": "HERD_E2E_SECRET"}},
        "scenario": [
            {"get": "/x", "headers": {
                "Authorization": "Bearer ${API_TOKEN}", "X-API-KEY": LITERAL_KEY, "cookie": COOKIE,
            }},
            {"think": "20ms"},
        ],
    });
    let (status, summary) = s.request(
        "POST",
        "/api/v1/runs?wait=true",
        Some(&op),
        Some(&json!({"plan": plan})),
    );
    assert_eq!(status, 200, "{summary}");
    let seen = target.seen();
    assert_eq!(
        summary["requests"].as_u64(),
        Some(seen.len() as u64),
        "{summary}"
    );
    assert!(seen.len() > 10, "{seen:?}");
    let expected = format!("Bearer {FROM_ENV}");
    assert!(
        seen.iter()
            .all(|l| l.contains(&expected) && l.contains(LITERAL_KEY) && l.contains(COOKIE)),
        "the target receives every value: {seen:?}"
    );

    // A missing secret is refused naming it, not its value.
    let mut missing = plan.clone();
    missing["secrets"]["OTHER"] = json!({"env": "HERD_E2E_NOT_SET"});
    let (status, refused) = s.request(
        "POST",
        "/api/v1/runs",
        Some(&op),
        Some(&json!({"plan": missing})),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains("secrets.OTHER"), "{refused}");

    let run_id = summary["run_id"].as_str().expect("run id");
    let mut answers = vec![summary.to_string(), refused.to_string()];
    for path in [
        format!("/api/v1/runs/{run_id}"),
        "/api/v1/runs".to_string(),
        format!("/api/v1/runs/{run_id}/seconds"),
        "/api/v1/audit".to_string(),
    ] {
        for token in [&viewer, &op] {
            let (status, body) = s.request("GET", &path, Some(token), None);
            assert!(status == 200 || path.ends_with("audit"), "{path}: {body}");
            answers.push(body.to_string());
        }
    }
    // A stored test keeps its plan (it must run), but viewers see it masked.
    let mut stored = plan.clone();
    stored["scenario"][0]["headers"]["X-API-KEY"] = json!("stored-key-1234");
    stored["scenario"][0]["headers"]["cookie"] = json!("stored-cookie-1234");
    let (status, body) = s.request(
        "POST",
        "/api/v1/tests",
        Some(&op),
        Some(&json!({"id": "t", "name": "t", "plan": stored})),
    );
    assert_eq!(status, 201, "{body}");
    for path in ["/api/v1/tests/t", "/api/v1/tests"] {
        let (_, body) = s.request("GET", path, Some(&viewer), None);
        assert!(
            !body.to_string().contains("stored-key-1234"),
            "{path}: {body}"
        );
        assert!(body.to_string().contains("***"), "{path}: {body}");
    }

    let log = s.log();
    assert!(log.contains("audit.write"), "events are in the log: {log}");
    let mut places: Vec<(String, String)> = vec![("herd up's log".into(), log)];
    places.extend(
        answers
            .into_iter()
            .map(|a| ("an API answer".to_string(), a)),
    );
    places.extend(all_files(dir.path()));
    assert!(
        places
            .iter()
            .any(|(_, text)| text.contains("stored-key-1234")),
        "the store's files are searched (the stored test's own value is in them)"
    );
    for (place, text) in &places {
        for value in [FROM_ENV, LITERAL_KEY, COOKIE] {
            assert!(!text.contains(value), "{value} appears in {place}");
        }
    }
}

fn allowed_config(dir: &std::path::Path, list: &str) -> Service {
    let config = dir.join("herd.toml");
    std::fs::write(&config, format!("[api]\nallowed_targets = {list}\n")).expect("write");
    Service::start(
        &dir.join("data"),
        &["--config", config.to_str().expect("utf-8 path")],
    )
}

fn simple_plan(target: &str, path: &str) -> Value {
    json!({
        "version": 1, "name": "allow", "target": target, "agents": 1,
        "load": {"stages": [{"duration": "2s", "vus": 4}]},
        "scenario": [{"get": path}, {"think": "50ms"}],
    })
}

#[test]
fn a_target_outside_allowed_targets_is_refused_or_blocked_and_counts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = HeaderTarget::start();
    let url = format!("http://{}", target.addr);
    // By name, at the API: 400 naming the target.
    let s = allowed_config(dir.path(), "[\"*.staging.example.com\"]");
    let op = s.token("operator");
    let (status, body) = s.request(
        "POST",
        "/api/v1/runs",
        Some(&op),
        Some(&json!({"plan": simple_plan(&url, "/x")})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "plan.target", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains(&url)),
        "{body}"
    );
    let (status, body) = s.request(
        "POST",
        "/api/v1/tests",
        Some(&op),
        Some(&json!({"id": "t", "name": "t", "plan": simple_plan(&url, "/x")})),
    );
    assert_eq!(status, 400, "a stored test is checked too: {body}");
    drop(s);
    assert!(target.seen().is_empty());

    // A name only its address can decide: the agent resolves it and blocks the connection.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = allowed_config(dir.path(), "[\"10.0.0.0/8\"]");
    let op = s.token("operator");
    let by_name = format!("http://localhost:{}", target.addr.port());
    let (status, summary) = s.request(
        "POST",
        "/api/v1/runs?wait=true",
        Some(&op),
        Some(&json!({"plan": simple_plan(&by_name, "/x")})),
    );
    assert!(status == 200 || status == 422, "{summary}");
    let blocked = summary["error_kinds"]["blocked"].as_u64().unwrap_or(0);
    assert!(blocked > 0, "requests fail as blocked: {summary}");
    assert_eq!(summary["errors"].as_u64(), Some(blocked), "{summary}");
    assert!(target.seen().is_empty(), "the target counts 0");
    drop(s);

    // A redirect hop outside the list is blocked; the allowed first hop is reached.
    let outside = HeaderTarget::on("127.0.0.2", None);
    let first = HeaderTarget::on("127.0.0.1", Some(format!("http://{}/y", outside.addr)));
    let dir = tempfile::tempdir().expect("tempdir");
    let s = allowed_config(dir.path(), "[\"127.0.0.1\"]");
    let op = s.token("operator");
    let (status, summary) = s.request(
        "POST",
        "/api/v1/runs?wait=true",
        Some(&op),
        Some(&json!({"plan": simple_plan(&format!("http://{}", first.addr), "/hop")})),
    );
    assert!(status == 200 || status == 422, "{summary}");
    assert!(
        summary["error_kinds"]["blocked"].as_u64().unwrap_or(0) > 0,
        "{summary}"
    );
    assert!(!first.seen().is_empty(), "the allowed hop is reached");
    assert!(outside.seen().is_empty(), "the redirect target counts 0");
}

#[test]
fn herd_run_is_unrestricted_unless_given_allowed_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = HeaderTarget::start();
    let plan = herd_e2e::write_file(
        dir.path(),
        "plan.json",
        &simple_plan(&format!("http://{}", target.addr), "/x").to_string(),
    );
    let refused = herd_e2e::Herd::new(
        [
            "run",
            plan.to_str().expect("utf-8"),
            "-q",
            "--allowed-targets",
            "10.0.0.0/8,*.example.com",
        ],
        &dir.path().join("data"),
    )
    .run(Duration::from_secs(60));
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("target") && stderr.contains(&target.addr.to_string()),
        "{stderr}"
    );
    assert!(target.seen().is_empty());
    let ran = herd_e2e::Herd::new(
        ["run", plan.to_str().expect("utf-8"), "-q"],
        &dir.path().join("data"),
    )
    .run(Duration::from_secs(60));
    assert_eq!(ran.status.code(), Some(0), "{ran:?}");
    assert!(
        !target.seen().is_empty(),
        "without the flag the target is reached"
    );
}
