//! Support for tests of `herd up`: start the service on a free loopback port with its own data
//! directory, create tokens, and speak plain HTTP/1.1 to it (a small blocking client written
//! here, independent of the server's stack).

use crate::herd_bin;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `herd up`.
pub struct Service {
    child: Child,
    /// The embedded broker's URL, once `herd up` announced it on stderr.
    broker: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// Everything it wrote on stderr so far.
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its `--config` file, if any, and its extra environment: `herd token create` needs both
    /// to reach the same store.
    config: Option<String>,
    env: Vec<(String, String)>,
}

/// A free port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Service {
    /// Starts `herd up` with `extra` arguments and waits until `/healthz` answers.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// Like [`Service::start`], with environment variables for the process (an AWS stand-in's
    /// endpoint and credentials, say).
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let child = Command::new(herd_bin())
            .args(["up", "--listen", &addr.to_string(), "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herd up");
        let mut child = child;
        let broker = std::sync::Arc::new(std::sync::Mutex::new(None));
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            // Pass its stderr through (for diagnostics), keeping it, and noting the broker URL
            // it announces.
            let found = broker.clone();
            let kept = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    let mut kept = kept.lock().expect("lock");
                    kept.push_str(&line);
                    kept.push('\n');
                    drop(kept);
                    if let Some(rest) = line.split_once("(broker ").map(|(_, r)| r) {
                        let url = rest.split([',', ')']).next().unwrap_or_default();
                        *found.lock().expect("lock") = Some(url.to_string());
                    }
                }
            });
        }
        let config = extra
            .iter()
            .position(|a| *a == "--config")
            .and_then(|i| extra.get(i + 1))
            .map(|c| (*c).to_string());
        let service = Self {
            child,
            broker,
            log,
            addr,
            data_dir: data_dir.to_path_buf(),
            config,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while service.request("GET", "/healthz", None, None).0 != 200 {
            assert!(Instant::now() < deadline, "herd up did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    /// What it wrote on stderr so far (its log).
    pub fn log(&self) -> String {
        self.log.lock().expect("lock").clone()
    }

    /// The embedded broker's URL (`mqtt://127.0.0.1:PORT`).
    pub fn broker_url(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(url) = self.broker.lock().expect("lock").clone() {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "herd up did not announce its broker"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `herd token create --role ROLE` on this service's store.
    pub fn token(&self, role: &str) -> String {
        self.token_with(&["create", "--role", role]).0
    }

    /// `herd token ARGS…` on this service's store; its stdout and stderr, trimmed. It must
    /// succeed.
    pub fn token_with(&self, args: &[&str]) -> (String, String) {
        let out = Command::new(herd_bin())
            .arg("token")
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(self.config.iter().flat_map(|c| ["--config", c.as_str()]))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("herd token");
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert!(out.status.success(), "herd token {args:?}: {stderr}");
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr,
        )
    }

    /// `/metrics` as text (it is not JSON, so [`Service::request`] cannot read it).
    pub fn metrics(&self, token: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        text
    }

    /// One request; returns the status and the JSON body (`Null` if none or not JSON).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.request_raw(method, path, token, &body)
    }

    /// One request with a body as it is (an uploaded file); the status and the JSON answer.
    pub fn request_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let (status, _, body) = self.request_head(method, path, token, body);
        (status, body)
    }

    /// Like [`Service::request_raw`], also giving the response's head (status line and headers).
    pub fn request_head(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String, Value) {
        let Ok(mut stream) = TcpStream::connect(self.addr) else {
            return (0, String::new(), Value::Null);
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(90)));
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        if stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()))
            .is_err()
        {
            return (0, String::new(), Value::Null);
        }
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let body = serde_json::from_str(body).unwrap_or(Value::Null);
        (status, head.to_string(), body)
    }

    /// Opens an SSE stream; returns a reader positioned after the response head.
    pub fn sse(&self, path: &str, token: &str) -> BufReader<TcpStream> {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n",
            self.addr
        )
        .expect("write");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("head");
            if line == "\r\n" || line.is_empty() {
                return reader;
            }
        }
    }

    /// The requests of `run`'s stored seconds, summed (`GET /api/v1/runs/{run}/seconds`).
    pub fn stored_requests(&self, token: &str, run: &str) -> u64 {
        let (_, seconds) = self.request(
            "GET",
            &format!("/api/v1/runs/{run}/seconds"),
            Some(token),
            None,
        );
        seconds["seconds"]
            .as_array()
            .expect("seconds")
            .iter()
            .map(|s| s["requests"].as_u64().unwrap_or(0))
            .sum()
    }

    /// Kills it with SIGKILL (no chance to clean up, as in a crash) and waits for it to be gone.
    /// Its agents are not its children's process group: they keep running.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL herd up");
        self.child.wait().expect("wait for herd up");
    }

    /// Sends SIGTERM and waits (at most `limit`) for a clean exit.
    pub fn stop(mut self, limit: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "cannot signal herd up");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "herd up did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `series` (name and labels, as printed) in a Prometheus text page.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// A plan (as JSON) of `vus` virtual users for `secs` seconds on `agents` agents, hitting
/// `GET /ok` then `GET /delay/{delay_ms}` on `target`.
pub fn plan(
    name: &str,
    target: &str,
    agents: u32,
    vus: u32,
    secs: u32,
    thresholds: &[&str],
) -> Value {
    serde_json::json!({
        "version": 1, "name": name, "target": target, "agents": agents,
        "load": {"stages": [{"duration": format!("{secs}s"), "vus": vus}]},
        "scenario": [{"name": "ok", "get": "/ok"}, {"think": "20ms"}],
        "thresholds": thresholds,
    })
}
