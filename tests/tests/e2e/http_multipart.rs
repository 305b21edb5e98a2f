//! End-to-end: a `multipart` upload (a text field with a variable, a binary file read next to
//! the plan), by `herd run` with real agent processes, each body parsed at the target by an
//! independent multipart parser (Python's `email` package) and compared with what the plan says.

use bytes::Bytes;
use herd_e2e::{run_plan_ok, serve_http, Answer};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bodies received, with their content type.
type Uploads = Vec<(String, Vec<u8>)>;

async fn upload_target(req: Request<Incoming>, seen: Arc<Mutex<Uploads>>) -> Answer {
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    seen.lock().expect("lock").push((content_type, body));
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

const PARSE: &str = r#"
import base64, email, json, sys
from email import policy
data = sys.stdin.buffer.read()
content_type, body = data.split(b"\n", 1)
msg = email.message_from_bytes(
    b"Content-Type: " + content_type + b"\r\n\r\n" + body, policy=policy.HTTP)
parts = [{
    "name": p.get_param("name", header="content-disposition"),
    "filename": p.get_filename(),
    "type": p.get_content_type(),
    "data": base64.b64encode(p.get_payload(decode=True)).decode(),
} for p in msg.iter_parts()]
print(json.dumps({"multipart": msg.is_multipart(), "defects": [str(d) for d in msg.defects],
                  "parts": parts}))
"#;

/// The parts of one body as Python's multipart parser reads them.
fn parse(content_type: &str, body: &[u8]) -> Value {
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut input = format!("{content_type}\n").into_bytes();
    input.extend_from_slice(body);
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("write");
    let out = child.wait_with_output().expect("python3 ran");
    assert!(out.status.success(), "the parser failed");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn a_multipart_upload_reaches_the_target_as_the_plan_wrote_it() {
    use base64::Engine as _;
    let seen = Arc::new(Mutex::new(Uploads::new()));
    let addr = serve_http(seen.clone(), upload_target);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    let doc: Vec<u8> = (0..=255u8).cycle().take(20_000).collect();
    std::fs::write(dir.path().join("data/doc.bin"), &doc).expect("write doc");
    let plan = format!(
        "version: 1\nname: upload\ntarget: http://{addr}\nagents: 2\n\
         load:\n  stages:\n    - {{ duration: 10ms, vus: 2 }}\n    - {{ duration: 60s, vus: 2 }}\n  iterations_per_vu: 3\n\
         scenario:\n  - name: upload\n    post: /upload\n    multipart:\n\
         \x20     - {{ name: user, value: 'u-${{__vu}}' }}\n\
         \x20     - {{ name: doc, file: data/doc.bin, content_type: application/pdf }}\n\
         \x20     - {{ name: note, file: data/doc.bin, filename: 'n\"1.txt' }}\n"
    );
    let s = run_plan_ok(dir.path(), &plan, Duration::from_secs(60));
    assert_eq!(s["requests"], 6);
    assert_eq!(s["errors"], 0);
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 6);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut users: Vec<String> = Vec::new();
    for (content_type, body) in seen.iter() {
        assert!(content_type.starts_with("multipart/form-data; boundary="));
        let parsed = parse(content_type, body);
        assert_eq!(parsed["multipart"], true, "{parsed}");
        assert_eq!(parsed["defects"], serde_json::json!([]), "{parsed}");
        let parts = parsed["parts"].as_array().expect("parts");
        assert_eq!(parts.len(), 3, "{parsed}");
        assert_eq!(parts[0]["name"], "user");
        assert!(parts[0]["filename"].is_null());
        users.push(
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(parts[0]["data"].as_str().expect("data"))
                    .expect("base64"),
            )
            .expect("text"),
        );
        assert_eq!(parts[1]["name"], "doc");
        assert_eq!(parts[1]["filename"], "doc.bin");
        assert_eq!(parts[1]["type"], "application/pdf");
        assert_eq!(
            parts[1]["data"],
            b64(&doc),
            "the file arrived byte for byte"
        );
        assert_eq!(parts[2]["type"], "application/octet-stream");
        assert_eq!(parts[2]["filename"], "n%221.txt");
        assert_eq!(parts[2]["data"], b64(&doc));
    }
    users.sort();
    users.dedup();
    assert_eq!(users, vec!["u-0", "u-1"], "each VU's own value");
}
