//! End-to-end: a 16 MiB request body read from a file beside the plan (`body_file`, the largest a
//! file may be), carried to 2 real agent processes in chunks beside the start command, and sent
//! by 20 VUs (its URL has a variable, so every request is built anew: the body is still not
//! copied): the target counts every request with the bytes it received and their checksum,
//! and each agent's memory is read from `/proc` while the load runs, to show that the file is
//! held once per agent, not once per VU or per request.

use base64::Engine as _;
use bytes::Bytes;
use herd_e2e::service::Service;
use herd_e2e::{
    children_matching, read_summary, serve_http, wait_with_limit, write_file, Answer, Herd,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The file: 16 MiB of bytes that do not compress (a worst case for the chunks).
const FILE_BYTES: usize = 16 << 20;
const VUS: u64 = 20;
const ITERATIONS: u64 = 2;

/// Per request: the bytes of its body and their CRC-32, as received.
type Uploads = Vec<(usize, u32)>;

/// Reads each body as it streams in (never holding it whole), counting and checksumming it.
async fn counting_target(req: Request<Incoming>, seen: Arc<Mutex<Uploads>>) -> Answer {
    let mut body = req.into_body();
    let (mut bytes, mut crc) = (0usize, flate2::Crc::new());
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            bytes += data.len();
            crc.update(data);
        }
    }
    seen.lock().expect("lock").push((bytes, crc.sum()));
    Ok(Response::new(Full::new(Bytes::from_static(b"stored"))))
}

fn file() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..FILE_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Resident and peak memory of a process, in KiB (`VmRSS`, `VmHWM` of `/proc/PID/status`).
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[test]
fn a_16_mib_body_file_reaches_the_target_whole_from_20_vus_and_each_agent_holds_it_once() {
    let seen = Arc::new(Mutex::new(Uploads::new()));
    let addr = serve_http(seen.clone(), counting_target);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    let content = file();
    std::fs::write(dir.path().join("data/big.bin"), &content).expect("write file");
    let mut crc = flate2::Crc::new();
    crc.update(&content);
    let want = (content.len(), crc.sum());
    drop(content);

    let plan = write_file(
        dir.path(),
        "plan.yaml",
        &format!(
            "version: 1\nname: bodies\ntarget: http://{addr}\nagents: 2\n\
             load:\n  stages:\n    - {{ duration: 10ms, vus: {VUS} }}\n    - {{ duration: 90s, vus: {VUS} }}\n  \
             iterations_per_vu: {ITERATIONS}\n\
             scenario:\n  - name: upload\n    put: \"/upload?vu=${{__vu}}\"\n    body_file: data/big.bin\n    \
             headers: {{ content-type: application/octet-stream }}\n\
             thresholds: [\"error_rate < 1%\"]\noptions: {{ timeout: 60s }}\n"
        ),
    );
    let json = dir.path().join("summary.json");
    let herd = Herd::new(
        [
            "run",
            plan.to_str().expect("utf8"),
            "--json",
            json.to_str().expect("utf8"),
            "-q",
        ],
        dir.path(),
    )
    .spawn();
    let herd_pid = herd.id();

    // Each agent's memory: its highest resident size once the load runs (the target has seen a
    // request), sampled every 50 ms until herd ends.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, seen) = (done.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut loaded: BTreeMap<u32, u64> = BTreeMap::new();
            let mut peak: BTreeMap<u32, u64> = BTreeMap::new();
            while !done.load(Ordering::Relaxed) {
                let running = !seen.lock().expect("lock").is_empty();
                for pid in children_matching(herd_pid, &["agent"]) {
                    if let Some((rss, hwm)) = memory_kib(pid) {
                        peak.insert(pid, hwm);
                        if running {
                            let top = loaded.entry(pid).or_default();
                            *top = (*top).max(rss);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (loaded, peak)
        })
    };
    let out = wait_with_limit(herd, Duration::from_secs(240));
    done.store(true, Ordering::Relaxed);
    let (loaded, peak) = sampler.join().expect("sampler");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = read_summary(&json);

    // Every request arrived whole: exactly the file's bytes, with its checksum; herd's counts
    // are the target's.
    let uploads = seen.lock().expect("lock").clone();
    assert_eq!(uploads.len() as u64, VUS * ITERATIONS);
    assert!(
        uploads.iter().all(|u| *u == want),
        "{uploads:?} vs {want:?}"
    );
    assert_eq!(s["requests"], VUS * ITERATIONS, "{s}");
    assert_eq!(s["errors"], 0, "{s}");

    // Memory: 10 VUs per agent sending the file at once would hold 160 MiB more each if a VU or
    // a request copied it. Each agent holds it once: its resident size while the load runs stays
    // under a bare agent's (~22 MiB with a 1 KiB file in this plan; 32 MiB allowed) plus three
    // times the file (measured: ~50-61 MiB).
    assert_eq!(
        loaded.len(),
        2,
        "both agents were sampled under load: {loaded:?}"
    );
    let file_kib = (FILE_BYTES / 1024) as u64;
    for (pid, rss) in &loaded {
        eprintln!(
            "agent {pid}: {} MiB resident under load, {} MiB at its peak (file {} MiB)",
            rss / 1024,
            peak.get(pid).copied().unwrap_or_default() / 1024,
            file_kib / 1024
        );
        assert!(
            *rss < 32 * 1024 + 3 * file_kib,
            "agent {pid} held {rss} KiB under load"
        );
    }
}

#[test]
fn a_plan_sent_to_the_api_carries_its_16_mib_file_itself_and_a_bare_path_is_named() {
    let seen = Arc::new(Mutex::new(Uploads::new()));
    let addr = serve_http(seen.clone(), counting_target);
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    let content = file();
    let mut crc = flate2::Crc::new();
    crc.update(&content);
    let want = (content.len(), crc.sum());
    let plan = |body_file: serde_json::Value| {
        serde_json::json!({"plan": {
            "version": 1, "name": "api-bodies", "target": format!("http://{addr}"), "agents": 2,
            "load": {"stages": [{"duration": "10ms", "vus": 4}, {"duration": "60s", "vus": 4}],
                     "iterations_per_vu": 1},
            "scenario": [{"name": "upload", "put": "/upload", "body_file": body_file}],
            "options": {"timeout": "60s"},
        }})
    };

    // A path alone: the service reads no file for a caller; the field is named.
    let (status, body) = s.request(
        "POST",
        "/api/v1/runs",
        Some(&op),
        Some(&plan(serde_json::json!("data/big.bin"))),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string()
            .contains("scenario[0].body_file: the file \\\"data/big.bin\\\" was not read"),
        "{body}"
    );

    // The content itself (22 MiB of base64 in the request): the run sends it whole.
    let inline = serde_json::json!({
        "path": "big.bin",
        "content_base64": base64::engine::general_purpose::STANDARD.encode(&content),
    });
    drop(content);
    let (status, summary) = s.request(
        "POST",
        "/api/v1/runs?wait=true",
        Some(&op),
        Some(&plan(inline)),
    );
    assert_eq!(status, 200, "{summary}");
    let uploads = seen.lock().expect("lock").clone();
    assert_eq!(uploads.len(), 4);
    assert!(
        uploads.iter().all(|u| *u == want),
        "{uploads:?} vs {want:?}"
    );
    assert_eq!(summary["requests"], 4, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
}
