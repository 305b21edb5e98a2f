//! [`NonceTarget`]: a login that needs a signature a plan cannot compute but a script can.
//!
//! - `GET /nonce?user=U` answers a fresh nonce (the body is the nonce, as text) and remembers it
//!   as `U`'s only valid one;
//! - `POST /login` with `x-user: U` and `x-signature: hex(HMAC-SHA256(SECRET, nonce))` answers
//!   200 when the signature is over `U`'s last nonce (which it then forgets: each nonce signs one
//!   login), else 401;
//! - anything else is answered 200 `ok` and counted by route.
//!
//! It counts every request, so herd's counts (a script's own requests included) can be compared
//! with its own.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The key both the target and the test's plan (as a variable) know.
pub const SECRET: &str = "s3cret-key";

/// What the nonce target saw.
#[derive(Debug, Default, Clone)]
pub struct NonceSeen {
    /// Requests received, in all.
    pub total: u64,
    /// By `METHOD /path` (without the query).
    pub by_route: BTreeMap<String, u64>,
    /// Logins with a valid signature over the user's last nonce.
    pub logins_ok: u64,
    /// Logins with a missing, wrong or replayed signature.
    pub logins_bad: u64,
    nonces: BTreeMap<String, String>,
    issued: u64,
}

/// The nonce target, on its own thread and runtime.
pub struct NonceTarget {
    addr: SocketAddr,
    seen: Arc<Mutex<NonceSeen>>,
}

impl NonceTarget {
    /// Starts it on an ephemeral port of 127.0.0.1.
    pub fn start() -> Self {
        let seen = Arc::new(Mutex::new(NonceSeen::default()));
        let addr = crate::serve_http(seen.clone(), respond);
        Self { addr, seen }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it saw so far.
    pub fn seen(&self) -> NonceSeen {
        self.seen.lock().expect("state lock").clone()
    }
}

/// `hex(HMAC-SHA256(key, message))`, as the target checks it.
pub fn signature(key: &str, message: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::sign(&key, message.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn respond(
    req: Request<Incoming>,
    state: Arc<Mutex<NonceSeen>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let route = format!("{} {}", req.method(), req.uri().path());
    let query = req.uri().query().unwrap_or_default().to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (user, presented) = (header("x-user"), header("x-signature"));
    req.into_body().collect().await?;
    let mut s = state.lock().expect("state lock");
    s.total += 1;
    *s.by_route.entry(route.clone()).or_default() += 1;
    let (status, text) = match route.as_str() {
        "GET /nonce" => {
            let user = query.strip_prefix("user=").unwrap_or_default().to_string();
            s.issued += 1;
            let nonce = format!("n{}-{user}", s.issued);
            s.nonces.insert(user, nonce.clone());
            (200, nonce)
        }
        "POST /login" => match s.nonces.remove(&user) {
            Some(nonce) if signature(SECRET, &nonce) == presented => {
                s.logins_ok += 1;
                (200, "welcome".to_string())
            }
            _ => {
                s.logins_bad += 1;
                (401, "bad signature".to_string())
            }
        },
        _ => (200, "ok".to_string()),
    };
    drop(s);
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
    Ok(response)
}
