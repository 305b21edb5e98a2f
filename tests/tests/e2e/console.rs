//! End-to-end: the console as `herd up` serves it — the app at every console route, its files
//! typed, gzipped and revalidated, with no credential — and the API routes it relies on:
//! `whoami`, `auth/config`, the runs history, and the live stream's `Last-Event-ID` replay (what
//! makes a reload mid-run show the whole run).

use herd_e2e::service::{plan, Service};
use herd_e2e::CountingTarget;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A GET with extra header lines; the status, the head (lower-cased) and the body bytes.
pub(crate) fn get(s: &Service, path: &str, headers: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(s.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head, raw[split + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[test]
fn the_console_is_served_at_its_routes_with_typed_gzipped_revalidated_assets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start(dir.path(), &[]);
    let (status, head, index) = get(&s, "/", "");
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header(&head, "content-type"),
        Some("text/html;charset=utf-8")
    );
    let html = String::from_utf8_lossy(&index).to_string();
    assert!(
        html.contains(r#"<script type="module" src="/assets/app.js">"#),
        "{html}"
    );
    for route in [
        "/login",
        "/tests",
        "/tests/new",
        "/tests/t-1",
        "/runs",
        "/runs/x",
    ] {
        let (status, _, body) = get(&s, route, "");
        assert_eq!(
            (status, body == index),
            (200, true),
            "{route} answers the app"
        );
    }
    let (status, _, _) = get(&s, "/runs/x/y", "");
    assert_eq!(status, 401, "not a console route: the API's answer");

    let (status, head, body) = get(&s, "/assets/app.js", "Accept-Encoding: gzip, br\r\n");
    assert_eq!(status, 200);
    assert_eq!(
        header(&head, "content-type"),
        Some("text/javascript;charset=utf-8")
    );
    assert_eq!(header(&head, "content-encoding"), Some("gzip"));
    assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip bytes");
    let etag = header(&head, "etag").expect("an ETag").to_string();
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
    let (status, _, body) = get(&s, "/assets/app.js", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((status, body.len()), (304, 0), "revalidated, not resent");
    let (status, head, _) = get(&s, "/assets/vendor/uPlot.min.css", "");
    assert_eq!(status, 200);
    assert_eq!(
        header(&head, "content-type"),
        Some("text/css;charset=utf-8")
    );
    assert_eq!(
        header(&head, "content-encoding"),
        None,
        "plain unless asked"
    );
    assert_eq!(get(&s, "/assets/nope.js", "").0, 404);

    // The API stays closed; only the sign-in settings are public.
    assert_eq!(s.request("GET", "/api/v1/runs", None, None).0, 401);
    let (status, config) = s.request("GET", "/api/v1/auth/config", None, None);
    assert_eq!((status, &config), (200, &json!({"cognito": null})));
    let viewer = s.token("viewer");
    let (status, who) = s.request("GET", "/api/v1/whoami", Some(&viewer), None);
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["role"], "viewer");
    assert!(
        who["subject"]
            .as_str()
            .is_some_and(|t| t.starts_with("tok-")),
        "{who}"
    );
}

/// The `(id, t, replayed)` of the first `n` `second` events of a stream.
fn first_seconds(
    s: &Service,
    path: &str,
    token: &str,
    extra: &str,
    n: usize,
) -> Vec<(u64, u64, bool)> {
    let mut stream = TcpStream::connect(s.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{extra}Accept: text/event-stream\r\n\r\n"
    )
    .expect("write");
    let mut reader = BufReader::new(stream);
    let (mut out, mut id, mut line) = (Vec::new(), None, String::new());
    while out.len() < n && reader.read_line(&mut line).unwrap_or(0) > 0 {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("id: ") {
            id = v.parse::<u64>().ok();
        } else if let Some(data) = l.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(data).expect("json");
            if let Some(t) = v["second"]["t"].as_u64() {
                let replayed = v["replayed"] == true;
                out.push((id.take().expect("every second has an id"), t, replayed));
            }
        }
        line.clear();
    }
    out
}

#[test]
fn the_live_stream_replays_the_stored_seconds_after_last_event_id_and_runs_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    let body = json!({"id": "replay", "name": "replay", "plan": plan("replay", &target.url(), 1, 2, 12, &[])});
    assert_eq!(
        s.request("POST", "/api/v1/tests", Some(&op), Some(&body)).0,
        201
    );
    let (status, run) = s.request("POST", "/api/v1/tests/replay/runs", Some(&op), None);
    assert_eq!(status, 201, "{run}");
    let run = run["id"].as_str().expect("run id").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, seconds) = s.request(
            "GET",
            &format!("/api/v1/runs/{run}/seconds"),
            Some(&op),
            None,
        );
        if seconds["seconds"].as_array().is_some_and(|a| a.len() >= 4) {
            break;
        }
        assert!(Instant::now() < deadline, "no 4 stored seconds: {seconds}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let live = format!("/api/v1/runs/{run}/live");
    // A reconnect after second 1: seconds 2 and 3 come at once, replayed, each with its id.
    let after = first_seconds(&s, &live, &op, "Last-Event-ID: 1\r\n", 2);
    assert_eq!(after, [(2, 2, true), (3, 3, true)]);
    // A first connection (a reload): the whole run so far, from second 0.
    let all = first_seconds(&s, &live, &op, "", 4);
    assert_eq!(
        all,
        [(0, 0, true), (1, 1, true), (2, 2, true), (3, 3, true)]
    );

    // The history lists it, by state and by test.
    let (status, list) = s.request("GET", "/api/v1/runs?state=active", Some(&op), None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["runs"][0]["id"], run.as_str(), "{list}");
    let (_, list) = s.request("GET", "/api/v1/runs?test=replay&limit=1", Some(&op), None);
    assert_eq!(
        (list["runs"][0]["id"].as_str(), list["more"].as_bool()),
        (Some(run.as_str()), Some(false))
    );
    let (status, bad) = s.request("GET", "/api/v1/runs?state=nope", Some(&op), None);
    assert_eq!((status, bad["field"].as_str()), (400, Some("state")));
    assert_eq!(
        s.request("POST", &format!("/api/v1/runs/{run}/stop"), Some(&op), None)
            .0,
        202
    );
}
