//! Observability sinks the export tests push to: Debian's Prometheus (remote-write receiver and
//! native histograms enabled), started on a loopback port with a temporary storage directory,
//! and an OTLP/HTTP receiver (`tests/otlp/receiver.py`) that decodes with the OpenTelemetry
//! project's own protobuf classes. Both are installed by `scripts/test`; a missing one fails
//! the test, naming what to install.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Prometheus server of its own, killed when dropped.
pub struct Prometheus {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

/// The Prometheus binary: `HERD_PROMETHEUS`, or Debian's.
fn prometheus_bin() -> PathBuf {
    std::env::var_os("HERD_PROMETHEUS")
        .map_or_else(|| PathBuf::from("/usr/bin/prometheus"), PathBuf::from)
}

impl Prometheus {
    /// Starts it with `--web.enable-remote-write-receiver` and native histograms, and waits
    /// until it is ready.
    pub fn start() -> Self {
        let bin = prometheus_bin();
        assert!(
            bin.exists(),
            "{} is missing: install Debian's `prometheus` package (scripts/test does)",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1m\n").expect("config");
        let addr = format!("127.0.0.1:{}", crate::service::free_port());
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .args([
                "--web.enable-remote-write-receiver",
                "--enable-feature=native-histograms",
                "--log.level=warn",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start prometheus");
        let me = Self {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if get(&me.addr, "/-/ready").is_some_and(|(s, _)| s == 200) {
                return me;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("prometheus did not get ready at {} within 30 s", me.addr);
    }

    /// Its remote-write endpoint.
    pub fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    /// An instant PromQL query; the `data.result` array.
    pub fn query(&self, promql: &str) -> Value {
        let (status, body) = get(
            &self.addr,
            &format!("/api/v1/query?query={}", encode(promql)),
        )
        .expect("prometheus answers");
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!(status, 200, "{promql}: {body}");
        v["data"]["result"].clone()
    }

    /// The single value (a float sample, as Prometheus gives it) of an instant query.
    pub fn scalar(&self, promql: &str) -> f64 {
        let result = self.query(promql);
        result[0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{promql}: no single value in {result}"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OTLP receiver (Python, `opentelemetry-proto`), killed when dropped.
pub struct OtlpReceiver {
    child: Child,
    addr: String,
}

impl OtlpReceiver {
    /// Starts it with `target/otlp-venv`'s Python (or `HERD_OTLP_PYTHON`).
    pub fn start() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = std::env::var_os("HERD_OTLP_PYTHON").map_or_else(
            || root.join("../target/otlp-venv/bin/python"),
            PathBuf::from,
        );
        assert!(
            python.exists(),
            "{} is missing: scripts/test creates target/otlp-venv with opentelemetry-proto",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(root.join("otlp/receiver.py"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OTLP receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the receiver prints its port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            panic!("the OTLP receiver did not start (printed {line:?}): is opentelemetry-proto installed?")
        });
        Self {
            child,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// Its metrics endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/v1/metrics", self.addr)
    }

    /// What it decoded so far (see `tests/otlp/receiver.py`).
    pub fn totals(&self) -> Value {
        let (_, body) = get(&self.addr, "/totals").expect("the receiver answers");
        serde_json::from_str(&body).expect("JSON totals")
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET over HTTP/1.0 (no chunked answer); the status and body, or `None` if nobody answers.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_string()))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
