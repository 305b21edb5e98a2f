//! End-to-end: each VU's cookie jar (`options.cookies`, on by default) and the template
//! functions `${__random(a,b)}`, `${__uuid}`, `${__time}`, run by `herd run` with real agent
//! processes against a target that issues sessions by cookie and checks every request itself.
//!
//! The target binds each session to the VU that logged in (`?vu=${__vu}`): a request that
//! carries no session, an unknown one, or another VU's is counted as such, so shared or lost
//! cookies show up in its counts, not only in herd's.

use bytes::Bytes;
use herd_e2e::{query, run_plan, serve_http, Answer};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the session target saw, by verdict.
#[derive(Debug, Default, Clone)]
struct Seen {
    total: u64,
    logins: u64,
    /// `/account/me` with the caller's own session.
    own: u64,
    /// `/account/me` without a session cookie (or with an unknown one).
    missing: u64,
    /// `/account/me` with another VU's session.
    foreign: u64,
    public: u64,
    /// `/public` requests that carried the `/account`-only cookie (a path rule broken).
    leaked: u64,
    /// `/fn` requests whose three values were well-formed.
    fn_ok: u64,
    fn_bad: Vec<String>,
    uuids: BTreeSet<String>,
    randoms: BTreeSet<i64>,
    /// Sessions by id → the VU that logged in.
    sessions: HashMap<String, String>,
}

struct SessionTarget {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl SessionTarget {
    fn start() -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let addr = serve_http(seen.clone(), respond);
        Self { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Seen {
        self.seen.lock().expect("lock").clone()
    }
}

fn cookies(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.headers()
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn is_uuid_v4(u: &str) -> bool {
    let groups: Vec<&str> = u.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && u.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        && groups[2].starts_with('4')
        && "89ab".contains(&groups[3][..1])
}

async fn respond(req: Request<Incoming>, seen: Arc<Mutex<Seen>>) -> Answer {
    let path = req.uri().path().to_string();
    let q = query(&req);
    let jar = cookies(&req);
    req.into_body().collect().await?;
    let mut s = seen.lock().expect("lock");
    s.total += 1;
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    let mut status = 200;
    match path.as_str() {
        "/login" => {
            s.logins += 1;
            let sid = format!("s{}", s.logins);
            s.sessions
                .insert(sid.clone(), q.get("vu").cloned().unwrap_or_default());
            let headers = response.headers_mut();
            for cookie in [
                format!("sid={sid}; Path=/; HttpOnly"),
                "area=1; Path=/account".to_string(),
            ] {
                headers.append(
                    hyper::header::SET_COOKIE,
                    cookie.parse().expect("header value"),
                );
            }
        }
        "/account/me" => {
            let vu = q.get("vu").cloned().unwrap_or_default();
            let sids: Vec<&String> = jar
                .iter()
                .filter(|(k, _)| k == "sid")
                .map(|(_, v)| v)
                .collect();
            match sids[..] {
                [sid] => match s.sessions.get(sid) {
                    Some(owner) if *owner == vu => s.own += 1,
                    Some(_) => {
                        s.foreign += 1;
                        status = 403;
                    }
                    None => {
                        s.missing += 1;
                        status = 401;
                    }
                },
                _ => {
                    s.missing += 1;
                    status = 401;
                }
            }
        }
        "/public" => {
            s.public += 1;
            if jar.iter().any(|(k, _)| k == "area") {
                s.leaked += 1;
            }
        }
        "/fn" => {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let r = q.get("r").and_then(|r| r.parse::<i64>().ok());
            let u = q.get("u").cloned().unwrap_or_default();
            let t = q.get("t").and_then(|t| t.parse::<i64>().ok());
            let ok = r.is_some_and(|r| (1..=3).contains(&r))
                && is_uuid_v4(&u)
                && t.is_some_and(|t| (now_ms - t).abs() < 60_000);
            if ok {
                s.fn_ok += 1;
                s.uuids.insert(u);
                s.randoms.extend(r);
            } else {
                s.fn_bad.push(format!("{q:?}"));
            }
        }
        _ => status = 404,
    }
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
    Ok(response)
}

fn plan(target: &str, options: &str) -> String {
    format!(
        r#"
version: 1
name: cookies
target: {target}
agents: 2
load: {{ vus: 6, duration: 2s }}
options: {options}
scenario:
  - {{ name: login, post: "/login?vu=${{__vu}}" }}
  - {{ name: me1, get: "/account/me?vu=${{__vu}}" }}
  - {{ name: public, get: /public }}
  - {{ name: fn, get: "/fn?r=${{__random(1,3)}}&u=${{__uuid}}&t=${{__time}}" }}
  - {{ name: me2, get: "/account/me?vu=${{__vu}}" }}
"#
    )
}

fn run(dir: &Path, plan: &str) -> Value {
    run_plan(dir, plan, Duration::from_secs(120)).1
}

fn step(summary: &Value, name: &str) -> u64 {
    summary["steps"][name]["requests"]
        .as_u64()
        .unwrap_or_else(|| panic!("no step {name}: {summary}"))
}

#[test]
fn each_vu_keeps_its_own_session_cookie_and_functions_are_fresh() {
    let target = SessionTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = run(dir.path(), &plan(&target.url(), "{}"));
    let seen = target.seen();
    assert_eq!(summary["requests"].as_u64(), Some(seen.total), "{summary}");
    assert!(seen.logins >= 6, "every VU logged in: {seen:?}");
    assert_eq!(step(&summary, "login"), seen.logins);
    // Every /account/me carried exactly the session its own VU was given, never another's.
    assert_eq!(seen.foreign, 0, "{seen:?}");
    assert_eq!(seen.missing, 0, "{seen:?}");
    assert_eq!(step(&summary, "me1") + step(&summary, "me2"), seen.own);
    assert_eq!(
        summary["errors"].as_u64(),
        Some(0),
        "no 4xx anywhere: {summary}"
    );
    // `Path=/account` kept the second cookie away from /public.
    assert_eq!(step(&summary, "public"), seen.public);
    assert_eq!(seen.leaked, 0, "{seen:?}");
    // The functions: well-formed at every request, a fresh UUID each time, both bounds drawn.
    assert!(seen.fn_bad.is_empty(), "{:?}", seen.fn_bad);
    assert_eq!(step(&summary, "fn"), seen.fn_ok);
    assert_eq!(seen.uuids.len() as u64, seen.fn_ok, "every UUID is new");
    assert_eq!(seen.randoms, BTreeSet::from([1, 2, 3]), "{seen:?}");
}

#[test]
fn without_the_jar_no_cookie_is_sent_back() {
    let target = SessionTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = run(dir.path(), &plan(&target.url(), "{ cookies: false }"));
    let seen = target.seen();
    assert_eq!(summary["requests"].as_u64(), Some(seen.total), "{summary}");
    assert!(seen.logins > 0, "{seen:?}");
    assert_eq!(seen.own + seen.foreign, 0, "{seen:?}");
    assert_eq!(step(&summary, "me1") + step(&summary, "me2"), seen.missing);
    assert_eq!(summary["errors"].as_u64(), Some(seen.missing), "{summary}");
}
