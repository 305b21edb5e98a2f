//! HTTP/2 (h2c) against a server that misbehaves on purpose: each test makes the server end a
//! stream or the connection one way, and checks the error kind herd records, or that a request
//! the server never processed went out again on a new connection.

use super::*;
use crate::recorder::Outcome;
use ::h2::server::{self, SendResponse};
use ::h2::Reason;
use bytes::Bytes;
use herd_protocol::plan::{HttpVersion, Method as PlanMethod, Options, RequestStep};
use hyper::Response;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn step(body: Option<&str>) -> RequestStep {
    RequestStep {
        label: "step".into(),
        named: false,
        method: if body.is_some() {
            PlanMethod::Post
        } else {
            PlanMethod::Get
        },
        path: "/x".into(),
        headers: vec![("x-test".into(), "1".into())],
        body: body.map(Into::into),
        body_file: None,
        checks: vec![],
        extract: vec![],
        timeout: None,
        multipart: vec![],
    }
}

type Handler = Box<dyn FnOnce(TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

fn handler<F, Fut>(f: F) -> Handler
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::new(move |tcp| Box::pin(f(tcp)))
}

/// A server whose n-th connection is served by the n-th handler; returns its URL and the count of
/// connections it accepted.
async fn server(handlers: Vec<Handler>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        for handle in handlers {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(handle(tcp));
        }
    });
    (format!("http://{addr}"), accepted)
}

/// Answers every request 201 with `x-token: abc` and the body "hello" in two DATA frames, after
/// checking a POST's body; ends the connection after `requests` requests (with a graceful
/// GOAWAY), or when the client goes.
async fn answer(tcp: TcpStream, requests: usize) {
    let Ok(mut conn) = server::handshake(tcp).await else {
        return;
    };
    for _ in 0..requests {
        let Some(Ok((request, respond))) = conn.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let post = request.method() == hyper::Method::POST;
            let mut body = request.into_body();
            let mut got = Vec::new();
            while let Some(Ok(data)) = body.data().await {
                let _ = body.flow_control().release_capacity(data.len());
                got.extend_from_slice(&data);
            }
            assert_eq!(got, if post { &b"ping"[..] } else { b"" });
            respond_hello(respond);
        });
    }
    conn.graceful_shutdown();
    while let Some(Ok(_)) = conn.accept().await {}
}

fn respond_hello(mut respond: SendResponse<Bytes>) {
    let response = Response::builder()
        .status(201)
        .header("x-token", "abc")
        .body(())
        .expect("response");
    if let Ok(mut send) = respond.send_response(response, false) {
        let _ = send.send_data(Bytes::from_static(b"hel"), false);
        let _ = send.send_data(Bytes::from_static(b"lo"), true);
    }
}

/// Accepts one request, then does `then` with it and the connection.
fn on_request<F>(then: F) -> Handler
where
    F: FnOnce(
            server::Connection<TcpStream, Bytes>,
            SendResponse<Bytes>,
        ) -> Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + 'static,
{
    handler(|tcp| async move {
        let Ok(mut conn) = server::handshake(tcp).await else {
            return;
        };
        if let Some(Ok((_, respond))) = conn.accept().await {
            then(conn, respond).await;
        }
    })
}

fn client(timeout_ms: u64) -> Client {
    let options = Options {
        http: HttpVersion::Http2,
        timeout: Duration::from_millis(timeout_ms),
        ..Options::default()
    };
    Client::new(&options).expect("client")
}

async fn send(conns: &mut Connections, target: &str, body: Option<&str>) -> Outcome {
    let request = PreparedRequest::new(target, &step(body)).expect("valid request");
    execute(conns, &request, &mut |o| {
        panic!("no redirect expected, got {o:?}")
    })
    .await
}

async fn once(handlers: Vec<Handler>) -> (Outcome, usize) {
    let (target, accepted) = server(handlers).await;
    let outcome = send(&mut client(2000).connections(), &target, None).await;
    (outcome, accepted.load(Ordering::SeqCst))
}

fn created(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Response { status: 201, .. })
}

#[tokio::test]
async fn requests_share_one_connection_and_their_bodies_are_read_and_kept() {
    let (target, accepted) = server(vec![handler(|tcp| answer(tcp, 100))]).await;
    let client = client(2000);
    let mut conns = client.connections();
    for body in [None, Some("ping"), None, Some("ping")] {
        let outcome = send(&mut conns, &target, body).await;
        assert!(created(&outcome), "{outcome:?}");
    }
    let request = PreparedRequest::new(&target, &step(None)).expect("valid request");
    for keep_body in [true, false] {
        let (outcome, captured) =
            execute_capture(&mut conns, &request, &mut |_| {}, keep_body).await;
        assert!(created(&outcome), "{outcome:?}");
        let captured = captured.expect("captured");
        assert_eq!(captured.headers["x-token"], "abc");
        let want: &[u8] = if keep_body { b"hello" } else { b"" };
        assert_eq!(captured.body, want);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn after_a_graceful_goaway_the_next_request_opens_a_new_connection() {
    let (target, accepted) = server(vec![
        handler(|tcp| answer(tcp, 1)),
        handler(|tcp| answer(tcp, 100)),
    ])
    .await;
    let client = client(2000);
    let mut conns = client.connections();
    for _ in 0..3 {
        let outcome = send(&mut conns, &target, None).await;
        assert!(created(&outcome), "{outcome:?}");
        // Time for the GOAWAY to arrive while the connection is idle.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_is_replaced_without_a_failure() {
    let (target, accepted) = server(vec![
        handler(|tcp| async move {
            let Ok(mut conn) = server::handshake(tcp).await else {
                return;
            };
            if let Some(Ok((_, respond))) = conn.accept().await {
                respond_hello(respond);
                // Writes the response out, then the socket is dropped: closed with no GOAWAY.
                let _ = tokio::time::timeout(Duration::from_millis(50), conn.accept()).await;
            }
        }),
        handler(|tcp| answer(tcp, 100)),
    ])
    .await;
    let client = client(2000);
    let mut conns = client.connections();
    for _ in 0..2 {
        let outcome = send(&mut conns, &target, None).await;
        assert!(created(&outcome), "{outcome:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// Speaks HTTP/2 frames by hand: settings, then a GOAWAY (NO_ERROR) whose last stream id (0)
/// leaves out the request it received.
async fn goaway_before_the_first_stream(mut tcp: TcpStream) {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    // The preface (24 bytes), the client's SETTINGS, then its first HEADERS (type 1).
    while !has_headers_frame(&got) {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let settings = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    let settings_ack = [0, 0, 0, 4, 1, 0, 0, 0, 0];
    let goaway = [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let _ = tcp
        .write_all(&[&settings[..], &settings_ack, &goaway].concat())
        .await;
    let _ = tcp.shutdown().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn has_headers_frame(bytes: &[u8]) -> bool {
    let mut at = 24;
    while bytes.len() >= at + 9 {
        let len = usize::from(bytes[at]) << 16
            | usize::from(bytes[at + 1]) << 8
            | usize::from(bytes[at + 2]);
        if bytes[at + 3] == 1 {
            return true;
        }
        at += 9 + len;
    }
    false
}

#[tokio::test]
async fn a_request_a_goaway_left_out_goes_again_on_a_new_connection() {
    let (outcome, accepted) = once(vec![
        handler(goaway_before_the_first_stream),
        handler(|tcp| answer(tcp, 100)),
    ])
    .await;
    assert!(created(&outcome), "{outcome:?}");
    assert_eq!(accepted, 2);
}

#[tokio::test]
async fn a_refused_stream_goes_again_on_a_new_connection() {
    let refuse = on_request(|mut conn, mut respond| {
        Box::pin(async move {
            respond.send_reset(Reason::REFUSED_STREAM);
            let _ = tokio::time::timeout(Duration::from_millis(300), conn.accept()).await;
        })
    });
    let (outcome, accepted) = once(vec![refuse, handler(|tcp| answer(tcp, 100))]).await;
    assert!(created(&outcome), "{outcome:?}");
    assert_eq!(accepted, 2);
}

#[tokio::test]
async fn a_stream_reset_with_an_error_is_reset() {
    let reset = on_request(|mut conn, mut respond| {
        Box::pin(async move {
            respond.send_reset(Reason::INTERNAL_ERROR);
            let _ = tokio::time::timeout(Duration::from_millis(300), conn.accept()).await;
        })
    });
    assert_eq!(
        once(vec![reset]).await,
        (Outcome::Failure(FailureKind::Reset), 1)
    );
}

#[tokio::test]
async fn a_goaway_with_an_error_under_the_request_is_closed() {
    let abort = on_request(|mut conn, respond| {
        Box::pin(async move {
            conn.abrupt_shutdown(Reason::INTERNAL_ERROR);
            let _ = tokio::time::timeout(Duration::from_millis(300), conn.accept()).await;
            drop(respond);
        })
    });
    assert_eq!(
        once(vec![abort]).await,
        (Outcome::Failure(FailureKind::Closed), 1)
    );
}

#[tokio::test]
async fn a_connection_closed_before_the_response_is_closed() {
    let close = on_request(|conn, respond| {
        Box::pin(async move {
            drop(respond);
            drop(conn);
        })
    });
    assert_eq!(
        once(vec![close]).await,
        (Outcome::Failure(FailureKind::Closed), 1)
    );
}

#[tokio::test]
async fn a_connection_closed_within_the_body_is_closed() {
    let truncate = on_request(|mut conn, mut respond| {
        Box::pin(async move {
            let response = Response::builder().status(200).body(()).expect("response");
            if let Ok(mut send) = respond.send_response(response, false) {
                let _ = send.send_data(Bytes::from_static(b"part of it"), false);
            }
            // Writes the frames out, then drops the socket.
            let _ = tokio::time::timeout(Duration::from_millis(50), conn.accept()).await;
        })
    });
    assert_eq!(
        once(vec![truncate]).await,
        (Outcome::Failure(FailureKind::Closed), 1)
    );
}

#[tokio::test]
async fn no_response_in_time_is_timeout() {
    let (target, _) = server(vec![on_request(|mut conn, respond| {
        Box::pin(async move {
            let _ = tokio::time::timeout(Duration::from_secs(3), conn.accept()).await;
            drop(respond);
        })
    })])
    .await;
    let outcome = send(&mut client(200).connections(), &target, None).await;
    assert_eq!(outcome, Outcome::Failure(FailureKind::Timeout));
}

#[tokio::test]
async fn a_body_larger_than_the_receive_windows_is_read_to_the_end() {
    // 6 MiB: more than the stream's window (2 MiB) and the connection's (5 MiB), so it arrives
    // only if the agent's window updates go out while it reads.
    const SIZE: usize = 6 << 20;
    let big = on_request(|mut conn, mut respond| {
        Box::pin(async move {
            let response = Response::builder().status(200).body(()).expect("response");
            if let Ok(mut send) = respond.send_response(response, false) {
                let _ = send.send_data(Bytes::from(vec![b'x'; SIZE]), true);
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.accept()).await;
        })
    });
    let (target, _) = server(vec![big]).await;
    let request = PreparedRequest::new(&target, &step(None)).expect("valid request");
    let (outcome, captured) =
        execute_capture(&mut client(5000).connections(), &request, &mut |_| {}, true).await;
    assert!(
        matches!(outcome, Outcome::Response { status: 200, .. }),
        "{outcome:?}"
    );
    assert_eq!(captured.expect("captured").body.len(), MAX_CAPTURED_BODY);
}

/// Serves requests on one connection with `respond(i, request head, body)` for the i-th, after
/// reading the request's whole body (releasing the server's window as it goes).
fn serve_each<F>(server_window: u32, respond: F) -> Handler
where
    F: Fn(usize, &hyper::http::request::Parts, &[u8]) -> (Response<()>, Bytes)
        + Send
        + Sync
        + 'static,
{
    handler(move |tcp| async move {
        let Ok(mut conn) = server::Builder::new()
            .initial_window_size(server_window)
            .handshake(tcp)
            .await
        else {
            return;
        };
        let respond = Arc::new(respond);
        let mut i = 0;
        while let Some(Ok((request, mut send))) = conn.accept().await {
            let respond = Arc::clone(&respond);
            let n = i;
            i += 1;
            tokio::spawn(async move {
                let (parts, mut body) = request.into_parts();
                let mut got = Vec::new();
                while let Some(Ok(data)) = body.data().await {
                    let _ = body.flow_control().release_capacity(data.len());
                    got.extend_from_slice(&data);
                }
                let (response, data) = respond(n, &parts, &got);
                let end = data.is_empty();
                if let Ok(mut stream) = send.send_response(response, end) {
                    if !end {
                        let _ = stream.send_data(data, true);
                    }
                }
            });
        }
    })
}

#[tokio::test]
async fn headers_compressed_with_a_real_servers_dynamic_table_and_huffman_codes_decode() {
    // h2's encoder Huffman-codes every string and indexes what it can: the same value again is
    // one byte referring to the dynamic table, and 1,500-byte values make it evict (4,096
    // bytes), so each response checks that the client's table stayed in step.
    let big = |i: usize| format!("{i}-{}", "b".repeat(1500));
    let (target, accepted) = server(vec![serve_each(65_535, move |i, _, _| {
        let response = Response::builder()
            .status(if i % 5 == 4 { 302 } else { 200 })
            .header("x-same", "one value every time")
            .header("x-count", i.to_string())
            .header(format!("x-big-{}", i % 3), big(i % 4))
            .header("set-cookie", format!("s{i}=v; Path=/"))
            .header("location", format!("/next/{i}"))
            .body(())
            .expect("response");
        (response, Bytes::from_static(b"ok"))
    })])
    .await;
    // Redirects not followed: the 302s' own headers are checked.
    let options = Options {
        http: HttpVersion::Http2,
        redirects: 0,
        ..Options::default()
    };
    let client = Client::new(&options).expect("client");
    let mut conns = client.connections();
    let request = PreparedRequest::new(&target, &step(None)).expect("valid request");
    for i in 0..40 {
        let (outcome, captured) = execute_capture(&mut conns, &request, &mut |_| {}, true).await;
        let status = if i % 5 == 4 { 302 } else { 200 };
        assert!(
            matches!(outcome, Outcome::Response { status: s, .. } if s == status),
            "{i}: {outcome:?}"
        );
        let captured = captured.expect("captured");
        let h = &captured.headers;
        assert_eq!(h["x-same"], "one value every time", "{i}");
        assert_eq!(h["x-count"], i.to_string().as_str(), "{i}");
        assert_eq!(h[format!("x-big-{}", i % 3).as_str()], big(i % 4).as_str());
        assert_eq!(h["set-cookie"], format!("s{i}=v; Path=/").as_str());
        assert_eq!(h["location"], format!("/next/{i}").as_str());
        assert_eq!(captured.body, b"ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bodies_larger_than_the_windows_go_both_ways() {
    // The server's windows are 1,000 bytes: a 300 KB request body goes out only as its window
    // updates come; the 6 MB response needs the client's updates (as in the test above).
    const UP: usize = 300_000;
    const DOWN: usize = 6 << 20;
    let (target, _) = server(vec![serve_each(1_000, |_, request, body| {
        assert_eq!(request.method, hyper::Method::POST);
        let response = Response::builder()
            .status(200)
            .header("x-got", body.len().to_string())
            .header("x-intact", (body.iter().all(|b| *b == b'u')).to_string())
            .body(())
            .expect("response");
        (response, Bytes::from(vec![b'd'; DOWN]))
    })])
    .await;
    let mut post = step(None);
    post.method = PlanMethod::Post;
    post.body_file = Some(herd_protocol::plan::BodyFile {
        path: "up.bin".into(),
        content: Bytes::from(vec![b'u'; UP]),
    });
    let request = PreparedRequest::new(&target, &post).expect("valid request");
    let mut conns = client(10_000).connections();
    for _ in 0..2 {
        let (outcome, captured) = execute_capture(&mut conns, &request, &mut |_| {}, false).await;
        assert!(
            matches!(outcome, Outcome::Response { status: 200, .. }),
            "{outcome:?}"
        );
        let captured = captured.expect("captured");
        assert_eq!(captured.headers["x-got"], UP.to_string().as_str());
        assert_eq!(captured.headers["x-intact"], "true");
    }
}

#[tokio::test]
async fn redirects_and_cookies_follow_over_http2() {
    let (target, _) = server(vec![serve_each(65_535, |i, request, _| {
        let cookie = request
            .headers
            .get("cookie")
            .map_or("", |c| c.to_str().unwrap_or(""));
        let response = if i == 0 {
            Response::builder()
                .status(302)
                .header("location", "/y?z=1")
                .header("set-cookie", "a=1; Path=/")
        } else {
            Response::builder()
                .status(200)
                .header(
                    "x-path",
                    request.uri.path_and_query().map_or("", |p| p.as_str()),
                )
                .header(
                    "x-authority",
                    request.uri.authority().map_or("", |a| a.as_str()),
                )
                .header("x-cookie", cookie)
                .header(
                    "x-test",
                    request
                        .headers
                        .get("x-test")
                        .map_or("", |v| v.to_str().unwrap_or("")),
                )
        };
        (response.body(()).expect("response"), Bytes::new())
    })])
    .await;
    let request = PreparedRequest::new(&target, &step(None)).expect("valid request");
    let mut redirects = Vec::new();
    let (outcome, captured) = execute_capture(
        &mut client(2000).connections(),
        &request,
        &mut |o| redirects.push(o),
        false,
    )
    .await;
    assert!(
        matches!(redirects[..], [Outcome::Response { status: 302, .. }]),
        "{redirects:?}"
    );
    assert!(
        matches!(outcome, Outcome::Response { status: 200, .. }),
        "{outcome:?}"
    );
    let headers = captured.expect("captured").headers;
    assert_eq!(headers["x-path"], "/y?z=1");
    assert_eq!(headers["x-authority"], target.trim_start_matches("http://"));
    assert_eq!(headers["x-cookie"], "a=1");
    assert_eq!(headers["x-test"], "1");
}
