//! [`ScenarioTarget`]: an HTTP target for scenario tests, which checks what a *stateful* client
//! sends, not just that it sends.
//!
//! - `POST /login` with a JSON body `{"user": U}` issues a fresh token for `U` and answers
//!   `{"data": {"token": T, "user": U}}`; the target remembers the last token issued to each user.
//! - `GET /me` answers 200 `{"ok":true}` only when `authorization: Bearer T` carries exactly the
//!   last token issued to the user named by `x-user`; anything else is a 401, counted as a
//!   mismatch.
//! - `GET /row?v=V` records that the agent named by the `x-herd-agent` header sent row value `V`.
//! - `GET /page` answers 200 with an HTML page saying `welcome`.
//! - `POST /logout` answers 200 and forgets the token when `authorization: Bearer T` carries the
//!   last token issued to the user named by `x-user` (counted in `logouts`); else 401.
//!
//! Like [`CountingTarget`](crate::CountingTarget) it counts every request by route, so herd's
//! counts can be compared with its own.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// What the scenario target saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Requests received, in all.
    pub total: u64,
    /// By `METHOD /path` (without the query).
    pub by_route: BTreeMap<String, u64>,
    /// `GET /me` calls with exactly the token last issued to their user.
    pub me_ok: u64,
    /// `GET /me` calls with a missing, unknown, stale or someone else's token.
    pub me_bad: u64,
    /// `POST /logout` calls that carried their user's token.
    pub logouts: u64,
    /// Users that logged in, each with the number of logins.
    pub logins: BTreeMap<String, u64>,
    /// For each `/row` value, the agents (by `x-herd-agent`) that sent it, with counts.
    pub rows: BTreeMap<String, BTreeMap<String, u64>>,
    /// Last token issued to each user.
    tokens: BTreeMap<String, String>,
    issued: u64,
}

impl Seen {
    /// The distinct agents that sent each row value.
    pub fn agents_per_row(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.rows
            .iter()
            .map(|(v, by)| (v.clone(), by.keys().cloned().collect()))
            .collect()
    }
}

/// The scenario target, on its own thread and runtime.
pub struct ScenarioTarget {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl ScenarioTarget {
    /// Starts it on an ephemeral port of 127.0.0.1.
    pub fn start() -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let addr = crate::serve_http(seen.clone(), respond);
        Self { addr, seen }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it saw so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().expect("state lock").clone()
    }
}

fn header(req: &Request<Incoming>, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn respond(
    req: Request<Incoming>,
    state: Arc<Mutex<Seen>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let route = format!("{} {}", req.method(), req.uri().path());
    let query = req.uri().query().unwrap_or_default().to_string();
    let authorization = header(&req, "authorization");
    let user = header(&req, "x-user");
    let agent = header(&req, "x-herd-agent");
    let gzip_ok = header(&req, "accept-encoding").contains("gzip");
    let body = req.into_body().collect().await?.to_bytes();
    let mut s = state.lock().expect("state lock");
    s.total += 1;
    *s.by_route.entry(route.clone()).or_default() += 1;
    let (status, text) = match route.as_str() {
        "POST /login" => {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            match json["user"].as_str() {
                Some(user) => {
                    s.issued += 1;
                    let token = format!("tok-{}-{user}", s.issued);
                    s.tokens.insert(user.to_string(), token.clone());
                    *s.logins.entry(user.to_string()).or_default() += 1;
                    let answer = serde_json::json!({"data": {"token": token, "user": user}});
                    (200, answer.to_string())
                }
                None => (400, "{\"error\":\"no user\"}".to_string()),
            }
        }
        "GET /me" => {
            let presented = authorization.strip_prefix("Bearer ");
            if presented.is_some() && presented == s.tokens.get(&user).map(String::as_str) {
                s.me_ok += 1;
                (200, "{\"ok\":true}".to_string())
            } else {
                s.me_bad += 1;
                (401, "{\"ok\":false}".to_string())
            }
        }
        "POST /logout" => {
            let presented = authorization.strip_prefix("Bearer ");
            if presented.is_some() && presented == s.tokens.get(&user).map(String::as_str) {
                s.tokens.remove(&user);
                s.logouts += 1;
                (200, "{\"ok\":true}".to_string())
            } else {
                (401, "{\"ok\":false}".to_string())
            }
        }
        "GET /row" => {
            let value = query.strip_prefix("v=").unwrap_or(&query).to_string();
            *s.rows.entry(value).or_default().entry(agent).or_default() += 1;
            (200, "row".to_string())
        }
        "GET /page" => (200, "<html><p>welcome</p></html>".to_string()),
        // JSON, gzip-encoded when the client accepts it (like most servers); counted per form.
        "GET /compressed" => {
            s.issued += 1;
            *s.by_route
                .entry(format!("GET /compressed gzip={gzip_ok}"))
                .or_default() += 1;
            let answer =
                serde_json::json!({"data": {"token": format!("gz-{}", s.issued), "ok": true}});
            (200, answer.to_string())
        }
        // Paths of flow tests: counted per path by `by_route`, always answered.
        r if r.starts_with("GET /p/") => (200, "ok".to_string()),
        _ => (404, "none".to_string()),
    };
    drop(s);
    let compress = gzip_ok && route == "GET /compressed";
    let body = if compress {
        gzip(text.as_bytes())
    } else {
        text.into_bytes()
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
    if compress {
        response.headers_mut().insert(
            hyper::header::CONTENT_ENCODING,
            hyper::header::HeaderValue::from_static("gzip"),
        );
    }
    Ok(response)
}

/// `data` gzip-encoded (flate2, the same crate the agent decodes with, but its encoder).
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}
