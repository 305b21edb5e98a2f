//! End-to-end: the store fails mid-run. `herd up` keeps runs in DynamoDB (moto) reached through a
//! proxy in this test that can turn into a failing endpoint: every request then gets a 500
//! `InternalServerError`, as DynamoDB answers when it is unwell, and every open connection is cut.
//!
//! - Failing for 6 s mid-run, then healthy again: aggregation goes on in memory, writes are
//!   retried with backoff, and once the store is back nothing is missing: the summary's and the
//!   stored seconds' counts are the target's own.
//! - Failing for good: the run ends `failed`, its reason naming the store, and its summary (with
//!   the target's count) is written to `summaries/{run}.json` in the data directory.

use herd_e2e::aws::Moto;
use herd_e2e::service::{plan, Service};
use herd_e2e::CountingTarget;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A TCP proxy to `upstream` that can fail every request on demand.
struct FaultyEndpoint {
    port: u16,
    failing: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl FaultyEndpoint {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the proxy");
        let port = listener.local_addr().expect("addr").port();
        let failing = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (f, o) = (failing.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if f.load(Ordering::SeqCst) {
                    std::thread::spawn(move || answer_500(client));
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    o.lock().expect("lock").extend([c, s]);
                }
                pipe(client, server);
            }
        });
        Self {
            port,
            failing,
            open,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// From now on every request fails, and the connections open now are cut.
    fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
        for s in self.open.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.failing.store(false, Ordering::SeqCst);
    }
}

/// Copies both ways between `a` and `b` until either side closes.
fn pipe(a: TcpStream, b: TcpStream) {
    for (mut from, mut to) in [
        (a.try_clone().expect("clone"), b.try_clone().expect("clone")),
        (b, a),
    ] {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}

/// Reads a request's head and answers DynamoDB's 500.
fn answer_500(mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by the test"}"#;
    let _ = write!(
        client,
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/x-amz-json-1.0\r\n\
         x-amzn-ErrorType: InternalServerError\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// `herd up` on DynamoDB through `endpoint`, with `[store] grace_s = grace_s`.
fn service(dir: &Path, moto: &Moto, endpoint: &FaultyEndpoint, grace_s: u32) -> Service {
    let config = dir.join("herd.toml");
    std::fs::write(
        &config,
        format!(
            "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
             [store]\nkind = \"dynamodb\"\ntable_prefix = \"fault-\"\ngrace_s = {grace_s}\n",
            endpoint.url()
        ),
    )
    .expect("write herd.toml");
    let env: Vec<(&str, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| {
            if k == "AWS_ENDPOINT_URL" {
                (k, endpoint.url())
            } else {
                (k, v)
            }
        })
        .collect();
    Service::start_with_env(
        &dir.join("data"),
        &["--config", config.to_str().expect("utf-8 path")],
        &env,
    )
}

fn run_body(s: &Service, token: &str, run: &str) -> Value {
    let (status, body) = s.request("GET", &format!("/api/v1/runs/{run}"), Some(token), None);
    assert_eq!(status, 200, "{body}");
    body
}

/// Starts a run of 3 agents × 2 VUs for `secs` and waits until its load is counted live.
fn start_run(s: &Service, token: &str, target: &CountingTarget, secs: u32) -> String {
    let (status, reply) = s.request(
        "POST",
        "/api/v1/runs",
        Some(token),
        Some(&json!({"plan": plan("store-fault", &target.url(), 3, 6, secs, &[])})),
    );
    assert!((200..=202).contains(&status), "{status} {reply}");
    let run = reply["id"].as_str().expect("run id").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = run_body(s, token, &run);
        if body["state"] == "running" && body["live"]["requests"].as_u64().unwrap_or(0) > 0 {
            return run;
        }
        assert!(Instant::now() < deadline, "the run never got going: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_store_failing_mid_run_and_back_loses_nothing() {
    let moto = Moto::start();
    let endpoint = FaultyEndpoint::start(free_port_of(&moto));
    let dir = tempfile::tempdir().expect("tempdir");
    let service = service(dir.path(), &moto, &endpoint, 30);
    let op = service.token("operator");
    let target = CountingTarget::start();
    let run = start_run(&service, &op, &target, 14);
    std::thread::sleep(Duration::from_secs(2));
    endpoint.fail();
    let during = target.received().total;
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        target.received().total > during,
        "the load goes on while the store fails"
    );
    endpoint.heal();

    let deadline = Instant::now() + Duration::from_secs(90);
    let body = loop {
        let body = run_body(&service, &op, &run);
        if body["state"] != "running" && body.get("summary").is_some() {
            break body;
        }
        assert!(Instant::now() < deadline, "the run did not end: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let received = target.received().total;
    assert_eq!(body["state"], "completed", "{body}");
    assert_eq!(
        body["summary"]["requests"].as_u64(),
        Some(received),
        "herd's count is the target's across the outage: {body}"
    );
    let stored = service.stored_requests(&op, &run);
    assert_eq!(
        stored, received,
        "the stored seconds add up to the target's count"
    );
    let log = service.log();
    assert!(
        log.contains("cannot store a second"),
        "the outage was felt:\n{log}"
    );
    assert_eq!(service.stop(Duration::from_secs(20)).code(), Some(0));
}

#[test]
fn a_store_that_never_returns_fails_the_run_and_its_summary_goes_to_a_file() {
    let moto = Moto::start();
    let endpoint = FaultyEndpoint::start(free_port_of(&moto));
    let dir = tempfile::tempdir().expect("tempdir");
    let service = service(dir.path(), &moto, &endpoint, 5);
    let op = service.token("operator");
    let target = CountingTarget::start();
    let run = start_run(&service, &op, &target, 6);
    std::thread::sleep(Duration::from_secs(2));
    endpoint.fail();

    let file = dir
        .path()
        .join("data/summaries")
        .join(format!("{run}.json"));
    let deadline = Instant::now() + Duration::from_secs(90);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "no summary file at {}:\n{}",
            file.display(),
            service.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(200));
    let summary: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("JSON summary");
    assert_eq!(summary["run_state"], "failed", "{summary}");
    let reason = summary["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the store failed") && reason.contains("DynamoDB"),
        "the reason names the store: {reason}"
    );
    assert_eq!(
        summary["requests"].as_u64(),
        Some(target.received().total),
        "the file's summary has the target's count: {summary}"
    );
    endpoint.heal();
    service.kill();
}

/// moto's port, from its endpoint URL.
fn free_port_of(moto: &Moto) -> u16 {
    moto.endpoint()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("moto's port")
}
