//! IoT Core over WebSocket with SigV4, stood in locally: Mosquitto with a websockets listener,
//! behind `tests/sigv4_standin.py`, which checks every connection's presigned URL with botocore
//! (an implementation independent of herd's) before forwarding it, and refuses the rest with 403.

use crate::aws::{free_port, Mosquitto, Moto};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The credentials the stand-in accepts (and a session token the agent appends unsigned).
pub const ACCESS_KEY: &str = "AKIAHERDTEST0000";
/// The secret of [`ACCESS_KEY`].
pub const SECRET: &str = "herd/sigv4+test-secret";
/// The region the stand-in checks signatures for.
pub const REGION: &str = "eu-west-1";

/// Mosquitto (websockets) behind the SigV4-checking stand-in.
pub struct IotWebSocket {
    mosquitto: Child,
    standin: Child,
    /// The stand-in's port: `ws://127.0.0.1:{port}/mqtt`.
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl IotWebSocket {
    /// Starts both; `clock_offset_s` moves the stand-in's clock (positive: URLs look expired).
    pub fn start(clock_offset_s: i64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (plain_port, ws_port) = (free_port(), free_port());
        let conf = dir.path().join("mosquitto.conf");
        // Mosquitto 2.0.11 (Debian 12) exits "Unable to start any listening sockets" when its
        // only listener is a websockets one: it gets a plain one too, which nothing uses.
        std::fs::write(
            &conf,
            format!(
                "persistence false\nallow_anonymous true\nlistener {plain_port} 127.0.0.1\n\
                 listener {ws_port} 127.0.0.1\nprotocol websockets\n"
            ),
        )
        .expect("mosquitto.conf");
        let mosquitto = Mosquitto::spawn(&conf, &[plain_port, ws_port]);
        // The moto venv's Python has botocore.
        let python = Moto::program().with_file_name("python");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sigv4_standin.py");
        let mut standin = Command::new(python)
            .arg(script)
            .args([
                &ws_port.to_string(),
                ACCESS_KEY,
                SECRET,
                REGION,
                &clock_offset_s.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SigV4 stand-in");
        let mut stdout = BufReader::new(standin.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("the stand-in's port");
        let port = first
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the stand-in said {first:?}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        Self {
            mosquitto,
            standin,
            port,
            lines,
            _dir: dir,
        }
    }

    /// `ws://127.0.0.1:{port}/mqtt`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/mqtt", self.port)
    }

    /// The stand-in's verdicts so far (`ACCEPTED …`, `REFUSED why`).
    pub fn verdicts(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// Waits until some verdict satisfies `f`, for at most `limit`.
    pub fn wait_for(&self, limit: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(v) = self.verdicts().into_iter().find(|v| f(v)) {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The environment of a process holding the stand-in's credentials (`secret` in place of the
    /// right one, to be refused).
    pub fn credentials_env(secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
            ("AWS_SESSION_TOKEN", "session/token+1".to_string()),
            ("AWS_REGION", REGION.to_string()),
        ]
    }
}

impl Drop for IotWebSocket {
    fn drop(&mut self) {
        for child in [&mut self.standin, &mut self.mosquitto] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
