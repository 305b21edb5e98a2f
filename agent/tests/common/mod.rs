//! Test parts: a real HTTP target that counts what it receives.

#![allow(dead_code)] // Each test binary uses a different subset.

pub mod broker;
pub mod protocols;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// A keep-alive HTTP/1.1 server on 127.0.0.1 that counts every request it receives (when its
/// head arrives). `/slow` answers after 10 s, `/fail` with 500, `/missing` with 404, anything
/// else with 200 and a small body.
pub struct Target {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    received: Arc<AtomicU64>,
    paused_until: Arc<Mutex<Option<Instant>>>,
}

impl Target {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(AtomicU64::new(0));
        let paused_until = Arc::new(Mutex::new(None));
        let counter = Arc::clone(&received);
        let pause = Arc::clone(&paused_until);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                let pause = Arc::clone(&pause);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let until = *pause.lock().expect("not poisoned");
                        async move {
                            if let Some(until) = until {
                                tokio::time::sleep_until(until).await;
                            }
                            Ok::<_, Infallible>(respond(req).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            received,
            paused_until,
        }
    }

    /// Holds every response (of requests arriving from now on, and those being answered) until
    /// `d` from now.
    pub fn pause_for(&self, d: Duration) {
        *self.paused_until.lock().expect("not poisoned") = Some(Instant::now() + d);
    }

    /// Requests received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

async fn respond(req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let _ = req.into_body().collect().await;
    let (status, body) = match path.as_str() {
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            (200, "late")
        }
        "/fail" => (500, "no"),
        "/missing" => (404, "none"),
        _ => (200, "hello, herd"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
    response
}

/// An open-model plan (`load` given as YAML flow text) as the coordinator would send it.
pub fn plan_with_load(
    target: &str,
    load: &str,
    scenario: &str,
    options: &str,
) -> serde_json::Value {
    let yaml = format!(
        "version: 1\nname: t\ntarget: {target}\nagents: 1\nload: {load}\nscenario: {scenario}\noptions: {options}\n"
    );
    let plan = herd_protocol::plan::from_yaml_str(&yaml).expect("test plan is valid");
    plan.to_json()
}

/// A plan as the coordinator would send it.
pub fn plan_json(target: &str, stages: &str, scenario: &str, options: &str) -> serde_json::Value {
    let yaml = format!(
        "version: 1\nname: t\ntarget: {target}\nagents: 1\nload:\n  stages: {stages}\nscenario: {scenario}\noptions: {options}\n"
    );
    let plan = herd_protocol::plan::from_yaml_str(&yaml).expect("test plan is valid");
    plan.to_json()
}
