//! Failure classification against real sockets on loopback: each test provokes one failure.

use super::*;
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
