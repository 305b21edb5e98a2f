//! From a synchronous interpreter to the VU's asynchronous client, and back.
//!
//! Rhai cannot pause a call halfway, and a VU is an async task on the agent's one engine thread,
//! so a call must not run on that thread: a script that computes for its whole time limit would
//! stall every other VU. Each call therefore runs on tokio's blocking pool. Its `request(…)`
//! sends the request to the VU's task over a channel ([`Event::Request`]) and blocks until the
//! task answers; the task sends it with its own connections and records it like any request of
//! the step, so a script's requests are counted and timed exactly as the plan's. When the call
//! returns, its end ([`Event::Done`]) travels the same channel, carrying the VU's script state
//! back: the state is owned by whichever side is running, never shared.

use super::sandbox;
use rhai::{Dynamic, EvalAltResult, Map};
use std::cell::RefCell;
use std::sync::mpsc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// A request a script asked for: `request(#{method, path, headers, body})`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRequest {
    /// `GET`, `POST`, … (upper case).
    pub method: String,
    /// Path and query, appended to the plan's target.
    pub path: String,
    /// Headers, in the order the map gave them.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<String>,
}

/// A response as scripts see it (`request`'s result and `this.response`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptResponse {
    /// The status; 0 when the request failed (then `error` says why).
    pub status: u16,
    /// Headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The body as text (decoded when compressed; invalid UTF-8 replaced).
    pub body: String,
    /// Why there is no response, if there is none.
    pub error: Option<String>,
}

impl ScriptResponse {
    /// The response as a script's map: `#{status, body, headers, error}`.
    pub fn to_map(&self) -> Map {
        let mut headers = Map::new();
        for (k, v) in &self.headers {
            headers.insert(k.as_str().into(), v.clone().into());
        }
        let mut m = Map::new();
        m.insert("status".into(), i64::from(self.status).into());
        m.insert("body".into(), self.body.clone().into());
        m.insert("headers".into(), headers.into());
        m.insert(
            "error".into(),
            self.error.clone().map_or(Dynamic::UNIT, Dynamic::from),
        );
        m
    }
}

/// What a running call tells its VU.
pub enum Event {
    /// Send this request and answer through the [`Reply`].
    Request(ScriptRequest, Reply),
    /// The call is over: the script's `this` (with the VU's state) back, and whether it passed
    /// (`Err`: why it failed, for the log).
    Done {
        /// The call's `this`, unless the call's thread died.
        this: Option<Dynamic>,
        /// `Ok(false)` when the function returned `false`.
        result: Result<bool, String>,
    },
}

/// Where the answer to a script's request goes.
pub struct Reply(mpsc::SyncSender<ScriptResponse>);

impl Reply {
    /// Answers the request; the script goes on.
    pub fn send(self, response: ScriptResponse) {
        // The call may have been stopped meanwhile (the run is ending): nobody to answer.
        let _ = self.0.send(response);
    }
}

thread_local! {
    /// The VU of the call running on this thread, for `request`.
    static VU: RefCell<Option<UnboundedSender<Event>>> = const { RefCell::new(None) };
}

/// Sets (or clears) the VU that calls on this thread talk to.
pub(super) fn set_vu(vu: Option<UnboundedSender<Event>>) {
    VU.with(|v| *v.borrow_mut() = vu);
}

/// Registers `request(#{method, path, headers, body})`.
pub(super) fn register(engine: &mut rhai::Engine) {
    engine.register_fn("request", request);
}

fn request(spec: Map) -> Result<Map, Box<EvalAltResult>> {
    let request = parse_request(&spec)?;
    let Some(vu) = VU.with(|v| v.borrow().clone()) else {
        return Err("request: only a script step's call may send requests".into());
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let asked = Instant::now();
    if vu.send(Event::Request(request, Reply(tx))).is_err() {
        return Err("request: the run is stopping".into());
    }
    let answer = rx.recv();
    // Waiting for the target is not computing: it does not count against the time limit.
    sandbox::extend_deadline(asked.elapsed());
    match answer {
        Ok(response) => Ok(response.to_map()),
        Err(_) => Err("request: the run is stopping".into()),
    }
}

/// `#{method, path, headers, body}` → a request; names the bad field.
pub(super) fn parse_request(spec: &Map) -> Result<ScriptRequest, Box<EvalAltResult>> {
    for key in spec.keys() {
        if !["method", "path", "headers", "body"].contains(&key.as_str()) {
            return Err(format!(
                "request: unknown field `{key}` (expected method, path, headers, body)"
            )
            .into());
        }
    }
    let text = |key: &str| -> Result<Option<String>, Box<EvalAltResult>> {
        match spec.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.to_string())),
            Some(v) => {
                Err(format!("request: `{key}` must be a string, got {}", v.type_name()).into())
            }
        }
    };
    let method = text("method")?
        .unwrap_or_else(|| "GET".into())
        .to_ascii_uppercase();
    if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method.as_str()) {
        return Err(format!("request: unknown method {method:?}").into());
    }
    let Some(path) = text("path")? else {
        return Err("request: `path` is required (such as \"/login\")".into());
    };
    if !path.starts_with('/') {
        return Err(format!("request: `path` must start with '/', got {path:?}").into());
    }
    let mut headers = Vec::new();
    match spec.get("headers") {
        None => {}
        Some(h) => {
            let Some(map) = h.read_lock::<Map>() else {
                return Err(
                    format!("request: `headers` must be a map, got {}", h.type_name()).into(),
                );
            };
            for (k, v) in map.iter() {
                headers.push((k.to_string(), v.to_string()));
            }
        }
    }
    Ok(ScriptRequest {
        method,
        path,
        headers,
        body: text("body")?,
    })
}
