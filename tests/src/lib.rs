//! `herd-e2e`: support for herd's end-to-end tests, which run the real `herd` binary (coordinator
//! and agents as separate OS processes) against real HTTP targets that count what they receive.
//!
//! - [`CountingTarget`] — an HTTP/1.1 server on 127.0.0.1 that counts every request it receives by
//!   method + path and by status it answers, with endpoints that delay or fail on purpose;
//! - [`aws`] — moto and Mosquitto, the AWS stand-ins of the AWS-mode tests;
//! - [`scenario::ScenarioTarget`] — a target that checks what a stateful scenario sends (tokens
//!   it issued, which agent sent which data row);
//! - [`ecs_standin::EcsStandin`] — Fargate behind moto's ECS: a `herd` process per task, with
//!   exactly the task's container override;
//! - [`iot_standin`] — the IoT data plane's `Publish` and an IoT topic rule into SQS, over
//!   Mosquitto (what moto cannot play);
//! - [`https::HttpsTarget`] — an https target (self-signed, HTTP/2 by ALPN) recording the HTTP
//!   version and body of every request;
//! - [`json_schema::validate`] — checks a message against a schema herd publishes;
//! - [`herd_bin`] / [`Herd`] — find and run the built `herd` binary with a timeout.
//!
//! The target is written independently of herd's agent, so its counts are an outside check of the
//! numbers herd reports.

pub mod aws;
pub mod ecs_standin;
pub mod https;
pub mod iot_standin;
pub mod json_schema;
pub mod jwt;
pub mod mqtt_tls;
pub mod nonce;
pub mod observe;
pub mod scenario;
pub mod service;
pub mod sigv4;
pub mod stacks;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the target received.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Requests received, in all.
    pub total: u64,
    /// By `METHOD /path`.
    pub by_route: BTreeMap<String, u64>,
    /// By the status code it answered.
    pub by_status: BTreeMap<u16, u64>,
    /// Time the target itself spent on each `/delay/…` request (µs), from handing the request to
    /// the handler to returning the response: the ground truth herd's latencies are checked against.
    pub delay_service_us: Vec<u64>,
    /// When the first request arrived (the clock of `/slow_after/…`).
    pub first_at: Option<Instant>,
    /// When the latest request arrived.
    pub last_at: Option<Instant>,
}

impl Received {
    /// The `q` quantile (0..=1) of the target's own `/delay` service times, in milliseconds.
    pub fn delay_quantile_ms(&self, q: f64) -> f64 {
        let mut v = self.delay_service_us.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0.0;
        }
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i] as f64 / 1000.0
    }
}

/// A counting HTTP target on its own thread and runtime.
///
/// Routes: `GET /ok` and `GET /mix` → 200; `POST /login` → 200 with a token; `GET /delay/{ms}` →
/// 200 after `ms` milliseconds; `GET /status/{code}` → that status; `GET /slow_after/{s}/{ms}` →
/// 200 at once until `s` seconds after the target's first request, then 200 after `ms`
/// milliseconds (a target that starts answering slowly); anything else → 404.
pub struct CountingTarget {
    addr: SocketAddr,
    received: Arc<Mutex<Received>>,
}

impl CountingTarget {
    /// Starts the target on an ephemeral port of 127.0.0.1.
    pub fn start() -> Self {
        let received = Arc::new(Mutex::new(Received::default()));
        let addr = serve_http(received.clone(), respond);
        Self { addr, received }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it received so far.
    pub fn received(&self) -> Received {
        self.received.lock().expect("counts lock").clone()
    }
}

/// What a test target answers a request with, given its shared state.
pub type Answer = Result<Response<Full<Bytes>>, hyper::Error>;

/// Serves HTTP/1.1 on an ephemeral port of 127.0.0.1, on a thread and runtime of its own, each
/// request answered by `respond` with the shared `state`; returns the address. The one server
/// loop of the test targets.
pub fn serve_http<S, F, Fut>(state: Arc<Mutex<S>>, respond: F) -> SocketAddr
where
    S: Send + 'static,
    F: Fn(Request<Incoming>, Arc<Mutex<S>>) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = Answer> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("target runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req| respond(req, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr
}

async fn respond(
    req: Request<Incoming>,
    counts: Arc<Mutex<Received>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let began = Instant::now();
    let route = format!("{} {}", req.method(), req.uri().path());
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    req.into_body().collect().await?;
    let first_at = {
        let mut c = counts.lock().expect("counts lock");
        c.last_at = Some(began);
        *c.first_at.get_or_insert(began)
    };
    let status: u16 = match (method.as_str(), path.as_str()) {
        ("GET", p) if p.starts_with("/slow_after/") => {
            let mut parts = p["/slow_after/".len()..].split('/');
            let after_s: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let ms: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            if began >= first_at + Duration::from_secs(after_s) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            200
        }
        ("GET", "/ok" | "/mix") | ("POST", "/login") => 200,
        ("GET", p) if p.starts_with("/delay/") => {
            let ms: u64 = p["/delay/".len()..].parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            200
        }
        ("GET", p) if p.starts_with("/status/") => p["/status/".len()..].parse().unwrap_or(500),
        _ => 404,
    };
    {
        let mut c = counts.lock().expect("counts lock");
        if path.starts_with("/delay/") {
            c.delay_service_us.push(began.elapsed().as_micros() as u64);
        }
        c.total += 1;
        *c.by_route.entry(route).or_default() += 1;
        *c.by_status.entry(status).or_default() += 1;
    }
    let body = if path == "/login" {
        "{\"token\":\"t-1\"}"
    } else {
        "ok"
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
    Ok(response)
}

/// The query of a request as a map (`a=1&b=2`; no percent-decoding).
pub fn query(req: &Request<Incoming>) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `herd` binary built in this workspace (`HERD_BIN` overrides).
pub fn herd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HERD_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test-binary> → target/<profile>/herd
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("herd");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build --bin herd`), as the README's test command does",
        bin.display()
    );
    bin
}

/// A `herd` invocation with a deadline.
pub struct Herd {
    command: Command,
}

impl Herd {
    /// `herd ARGS…`, with a quiet log and its own data directory.
    pub fn new<I, S>(args: I, data_dir: &Path) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(herd_bin());
        command
            .args(args)
            .env("HERD_DATA_DIR", data_dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Self { command }
    }

    /// Sets an environment variable (e.g. `RUST_LOG`) for it.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    /// Runs it in `dir` (where it finds a `./herd.toml`).
    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Starts it.
    pub fn spawn(mut self) -> std::process::Child {
        self.command.spawn().expect("spawn herd")
    }

    /// Runs it to completion, killing it after `limit`.
    pub fn run(self, limit: Duration) -> Output {
        wait_with_limit(self.spawn(), limit)
    }
}

/// Waits for a child, killing it (and failing the test) after `limit`. Its stdout and stderr are
/// read while it runs: a child that logs more than a pipe holds (64 KiB; 300 agents' broker
/// disconnections do) would otherwise block on its next write and never finish.
pub fn wait_with_limit(mut child: std::process::Child, limit: Duration) -> Output {
    fn drain(
        pipe: Option<impl std::io::Read + Send + 'static>,
    ) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let (status, timed_out) = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => break (status, false),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                break (child.wait().expect("wait"), true);
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let out = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if timed_out {
        panic!(
            "herd did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Child processes of `parent` whose command line contains every one of `needles`.
pub fn children_matching(parent: u32, needles: &[&str]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Field 4 is the parent pid; field 2 (the name) is parenthesised and may hold spaces.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if needles.iter().all(|n| cmdline.contains(n)) {
            found.push(pid);
        }
    }
    found
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

/// Writes `plan` into `dir` (as `plan.yaml`) and runs `herd run` on it quietly, with `dir` as its
/// data directory, killed after `limit`; returns the process output and its `--json` summary
/// (failing the test, with herd's stderr, when it wrote none).
pub fn run_plan(dir: &Path, plan: &str, limit: Duration) -> (Output, serde_json::Value) {
    let plan = write_file(dir, "plan.yaml", plan);
    let json = dir.join("summary.json");
    let out = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "--json",
            json.to_str().expect("utf8"),
            "-q",
        ],
        dir,
    )
    .run(limit);
    assert!(
        json.exists(),
        "no summary; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = read_summary(&json);
    (out, summary)
}

/// [`run_plan`], failing the test (with herd's stderr) unless herd exits 0; the summary.
pub fn run_plan_ok(dir: &Path, plan: &str, limit: Duration) -> serde_json::Value {
    let (out, summary) = run_plan(dir, plan, limit);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    summary
}

/// Parses the `--json` summary written by herd.
pub fn read_summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("summary file exists");
    serde_json::from_str(&text).expect("summary is JSON")
}
