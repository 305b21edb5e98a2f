//! End-to-end faults of the target: it refuses connections, resets them after reading each
//! request, or reads requests and never answers. The run ends on time in each case, every request
//! is an error of the kind the fault causes, and where the target sees requests, herd's count is
//! the target's own.

use herd_e2e::{read_summary, write_file, Herd};
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt as _;

/// What the misbehaving target does with each request it reads.
#[derive(Clone, Copy)]
enum Fault {
    /// Closes the connection with a TCP reset (SO_LINGER 0).
    Reset,
    /// Never answers; reads on until the client gives up.
    Silent,
}

/// A TCP server on 127.0.0.1 that counts the request heads it reads and then misbehaves.
struct BadTarget {
    port: u16,
    requests: Arc<AtomicU64>,
}

impl BadTarget {
    fn start(fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&requests);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, fault, Arc::clone(&counter)));
                }
            });
        });
        Self { port, requests }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn received(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: tokio::net::TcpStream, fault: Fault, requests: Arc<AtomicU64>) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        seen.extend_from_slice(&buf[..n]);
        // GET requests have no body: each blank line ends one request.
        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            seen.drain(..end + 4);
            requests.fetch_add(1, Ordering::SeqCst);
            if let Fault::Reset = fault {
                // Closing with a zero linger sends RST instead of FIN.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                return;
            }
        }
    }
}

/// Runs a 4 s plan of 4 VUs on 2 agents against `target` (timeout 500 ms, graceful stop 1 s);
/// returns the summary and how long `herd run` took.
fn run_against(dir: &Path, target: &str) -> (Value, Duration) {
    let plan = format!(
        "version: 1\nname: bad-target\ntarget: {target}\nagents: 2\n\
         load:\n  vus: 4\n  duration: 4s\n\
         options:\n  timeout: 500ms\n  graceful_stop: 1s\n\
         scenario:\n  - get: /x\n  - think: 50ms\n"
    );
    let plan = write_file(dir, "plan.yaml", &plan);
    let json = dir.join("summary.json");
    let started = Instant::now();
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
    .run(Duration::from_secs(60));
    let took = started.elapsed();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "herd run ends normally: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (read_summary(&json), took)
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Every request failed, and only with the kinds in `kinds` (the first of them at least once).
fn all_errors_of(summary: &Value, kinds: &[&str]) {
    let requests = count(&summary["requests"]);
    assert!(requests > 0, "{summary}");
    assert_eq!(count(&summary["errors"]), requests, "{summary}");
    let by_kind = summary["error_kinds"].as_object().expect("error_kinds");
    let total: u64 = by_kind.values().map(count).sum();
    assert_eq!(total, requests, "every error has its kind: {summary}");
    for kind in by_kind.keys() {
        assert!(
            kinds.contains(&kind.as_str()),
            "unexpected kind {kind}: {summary}"
        );
    }
    assert!(
        count(&by_kind.get(kinds[0]).cloned().unwrap_or_default()) > 0,
        "{summary}"
    );
    assert_eq!(summary["run_state"], "completed", "{summary}");
}

/// 4 s of load, 1 s of graceful stop, and the start and finish around them.
const ON_TIME: Duration = Duration::from_secs(20);

#[test]
fn a_target_that_refuses_connections_gives_connect_errors_and_the_run_ends_on_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nobody listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let (summary, took) = run_against(dir.path(), &format!("http://127.0.0.1:{port}"));
    all_errors_of(&summary, &["connect"]);
    assert!(took < ON_TIME, "took {took:?}");
}

#[test]
fn a_target_that_resets_connections_gives_reset_errors_counted_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = BadTarget::start(Fault::Reset);
    let (summary, took) = run_against(dir.path(), &target.url());
    all_errors_of(&summary, &["reset", "closed"]);
    assert_eq!(count(&summary["requests"]), target.received(), "{summary}");
    assert!(took < ON_TIME, "took {took:?}");
}

#[test]
fn a_target_that_never_answers_gives_timeouts_counted_exactly_and_the_run_ends_on_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = BadTarget::start(Fault::Silent);
    let (summary, took) = run_against(dir.path(), &target.url());
    all_errors_of(&summary, &["timeout", "aborted"]);
    assert_eq!(count(&summary["requests"]), target.received(), "{summary}");
    assert!(took < ON_TIME, "took {took:?}");
}
