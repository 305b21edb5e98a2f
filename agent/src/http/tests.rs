//! Failure classification against real sockets on loopback: each test provokes one failure.

use super::*;
use crate::recorder::Outcome;
use herd_protocol::plan::{Method as PlanMethod, Options, RequestStep};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn get(path: &str) -> RequestStep {
    RequestStep {
        label: format!("GET {path}"),
        named: false,
        method: PlanMethod::Get,
        path: path.into(),
        headers: vec![("x-test".into(), "1".into())],
        body: None,
        body_file: None,
        checks: vec![],
        extract: vec![],
        timeout: None,
        multipart: vec![],
    }
}

/// A one-shot server: accepts one connection, reads the request head, then does `then`.
async fn server<F, Fut>(then: F) -> String
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            then(stream).await;
        }
    });
    format!("http://{addr}")
}

async fn outcome(target: &str, timeout_ms: u64) -> Outcome {
    let request = PreparedRequest::new(target, &get("/x")).expect("valid request");
    let options = Options {
        timeout: Duration::from_millis(timeout_ms),
        ..Options::default()
    };
    let client = Client::new(&options).expect("client");
    execute(&mut client.connections(), &request, &mut |o| {
        panic!("no redirect expected, got {o:?}")
    })
    .await
}

#[tokio::test]
async fn a_complete_response_has_a_status_and_a_latency() {
    let target = server(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\n\r\nhello")
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    })
    .await;
    match outcome(&target, 2000).await {
        Outcome::Response {
            status, latency_us, ..
        } => {
            assert_eq!(status, 404);
            assert!(latency_us > 0);
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let outcome = outcome(&format!("http://{addr}"), 2000).await;
    assert_eq!(outcome, Outcome::Failure(FailureKind::Connect));
}

#[tokio::test]
async fn no_response_in_time_is_timeout() {
    let target = server(|s| async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(s);
    })
    .await;
    assert_eq!(
        outcome(&target, 200).await,
        Outcome::Failure(FailureKind::Timeout)
    );
}

#[tokio::test]
async fn a_connection_closed_before_the_response_is_closed() {
    let target = server(|s| async move { drop(s) }).await;
    assert_eq!(
        outcome(&target, 2000).await,
        Outcome::Failure(FailureKind::Closed)
    );
}

#[tokio::test]
async fn a_truncated_body_is_closed() {
    let target = server(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort")
            .await;
    })
    .await;
    assert_eq!(
        outcome(&target, 2000).await,
        Outcome::Failure(FailureKind::Closed)
    );
}

#[tokio::test]
async fn a_reset_connection_is_reset() {
    let target = server(|s| async move {
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await;
    assert_eq!(
        outcome(&target, 2000).await,
        Outcome::Failure(FailureKind::Reset)
    );
}

#[test]
fn invalid_requests_are_refused_when_the_load_starts() {
    let mut step = get("/x");
    step.headers = vec![("x".into(), "bad\u{7f}value".into())];
    assert!(PreparedRequest::new("http://127.0.0.1:1", &step).is_err());
    assert!(PreparedRequest::new("http://bad host", &get("/x")).is_err());
}

async fn capture(target: &str, keep_body: bool) -> (Outcome, Option<Captured>) {
    let request = PreparedRequest::new(target, &get("/x")).expect("valid request");
    let client = Client::new(&Options::default()).expect("client");
    execute_capture(&mut client.connections(), &request, &mut |_| {}, keep_body).await
}

#[tokio::test]
async fn a_captured_response_keeps_its_headers_and_body() {
    const CHUNKED: &[u8] =
        b"HTTP/1.1 201 Created\r\nx-token: abc\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    for keep_body in [true, false] {
        let target = server(|mut s| async move {
            let _ = s.write_all(CHUNKED).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        })
        .await;
        let (outcome, captured) = capture(&target, keep_body).await;
        assert!(
            matches!(outcome, Outcome::Response { status: 201, .. }),
            "{outcome:?}"
        );
        let captured = captured.expect("captured");
        assert_eq!(captured.headers["x-token"], "abc");
        let want: &[u8] = if keep_body { b"hello" } else { b"" };
        assert_eq!(captured.body, want);
    }
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_is_replaced_without_a_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut closed = Some(closed_tx);
        for _ in 0..2 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            // A keep-alive response, then the server closes the connection anyway.
            drop(stream);
            if let Some(tx) = closed.take() {
                let _ = tx.send(());
            }
        }
    });
    let request = PreparedRequest::new(&format!("http://{addr}"), &get("/x")).expect("valid");
    let client = Client::new(&Options::default()).expect("client");
    let mut conns = client.connections();
    let mut no_redirect = |o: Outcome| panic!("no redirect expected, got {o:?}");
    let first = execute(&mut conns, &request, &mut no_redirect).await;
    assert!(
        matches!(first, Outcome::Response { status: 200, .. }),
        "{first:?}"
    );
    closed_rx.await.expect("server closed the first connection");
    // Let the event loop see the close.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = execute(&mut conns, &request, &mut no_redirect).await;
    assert!(
        matches!(second, Outcome::Response { status: 200, .. }),
        "{second:?}"
    );
}

/// A keep-alive server that records each request's line and `Cookie` header: `/login` answers
/// a redirect to `/home` that sets a session cookie; everything else 200.
async fn cookie_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 1024];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        buf.drain(..end + 4);
                        let line = head.lines().next().unwrap_or_default().to_string();
                        let cookie = head
                            .lines()
                            .find_map(|l| l.strip_prefix("cookie: "))
                            .unwrap_or("-");
                        record
                            .lock()
                            .expect("lock")
                            .push(format!("{line} | {cookie}"));
                        let answer: &[u8] = if line.starts_with("GET /login ") {
                            b"HTTP/1.1 302 Found\r\nlocation: /home\r\nset-cookie: sid=1; Path=/\r\n\
                              set-cookie: other=2; Domain=elsewhere.test\r\ncontent-length: 0\r\n\r\n"
                        } else {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                        };
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn a_cookie_set_on_a_redirect_follows_the_vu_and_joins_a_written_cookie() {
    let (target, seen) = cookie_server().await;
    let client = Client::new(&Options::default()).expect("client");
    let mut vu = client.connections();
    let mut hops = 0;
    let login = PreparedRequest::new(&target, &get("/login")).expect("valid");
    execute(&mut vu, &login, &mut |_| hops += 1).await;
    let mut mine = get("/x");
    mine.headers.push(("cookie".into(), "mine=3".into()));
    let mine = PreparedRequest::new(&target, &mine).expect("valid");
    execute(&mut vu, &mine, &mut |_| {}).await;
    // Another VU has a jar of its own; an arrival's cleared jar sends nothing either.
    let mut other = client.connections();
    execute(
        &mut other,
        &PreparedRequest::new(&target, &get("/y")).expect("valid"),
        &mut |_| {},
    )
    .await;
    vu.clear_cookies();
    execute(
        &mut vu,
        &PreparedRequest::new(&target, &get("/z")).expect("valid"),
        &mut |_| {},
    )
    .await;
    assert_eq!(hops, 1, "the redirect was followed");
    assert_eq!(
        *seen.lock().expect("lock"),
        [
            "GET /login HTTP/1.1 | -",
            "GET /home HTTP/1.1 | sid=1",
            "GET /x HTTP/1.1 | mine=3; sid=1",
            "GET /y HTTP/1.1 | -",
            "GET /z HTTP/1.1 | -",
        ]
    );
    // With `cookies: false`, nothing is kept.
    let off = Client::new(&Options {
        cookies: false,
        ..Options::default()
    })
    .expect("client");
    let mut vu = off.connections();
    execute(&mut vu, &login, &mut |_| {}).await;
    let seen = seen.lock().expect("lock");
    assert_eq!(seen[seen.len() - 1], "GET /home HTTP/1.1 | -");
}
