//! `hosts:` overrides, a step's own timeout and `parallel` requests, against real sockets on
//! loopback.

use super::*;
use crate::recorder::Outcome;
use herd_protocol::plan::{HostOverride, Method as PlanMethod, Options, RequestStep};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn get(path: &str, timeout: Option<Duration>) -> RequestStep {
    RequestStep {
        label: format!("GET {path}"),
        named: false,
        method: PlanMethod::Get,
        path: path.into(),
        headers: vec![],
        body: None,
        body_file: None,
        checks: vec![],
        extract: vec![],
        timeout,
        multipart: vec![],
    }
}

/// Answers every request on every connection with `200` and a cookie, after `wait` requests in
/// all have arrived (so requests that do not overlap never get an answer); records each head.
async fn gathering_server(wait: usize) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(tokio::sync::Barrier::new(wait));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (seen, barrier) = (seen.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    seen.lock()
                        .expect("lock")
                        .push(String::from_utf8_lossy(&buf[..n]).to_string());
                    barrier.wait().await;
                    let reply =
                        b"HTTP/1.1 200 OK\r\nset-cookie: s=1\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, heads)
}

#[tokio::test]
async fn a_hosts_override_connects_to_its_address_while_host_stays_the_name() {
    let (port, heads) = gathering_server(1).await;
    let hosts = vec![HostOverride {
        name: "herd-test.invalid".into(),
        ip: "127.0.0.1".parse().expect("ip"),
        port: None,
    }];
    let client = Client::with_hosts(&Options::default(), hosts).expect("client");
    let target = format!("http://HERD-test.invalid:{port}");
    let request = PreparedRequest::new(&target, &get("/x", None)).expect("request");
    let outcome = execute(&mut client.connections(), &request, &mut |_| {}).await;
    assert!(
        matches!(outcome, Outcome::Response { status: 200, .. }),
        "{outcome:?}"
    );
    let head = heads.lock().expect("lock")[0].to_ascii_lowercase();
    assert!(
        head.contains(&format!("\r\nhost: herd-test.invalid:{port}\r\n")),
        "{head}"
    );

    // With a port, the override replaces the URL's too.
    let hosts = vec![HostOverride {
        name: "herd-test.invalid".into(),
        ip: "127.0.0.1".parse().expect("ip"),
        port: Some(port),
    }];
    let client = Client::with_hosts(&Options::default(), hosts).expect("client");
    let request =
        PreparedRequest::new("http://herd-test.invalid", &get("/y", None)).expect("request");
    let outcome = execute(&mut client.connections(), &request, &mut |_| {}).await;
    assert!(
        matches!(outcome, Outcome::Response { status: 200, .. }),
        "{outcome:?}"
    );
    // A name without an override is still looked up (and `.invalid` never resolves).
    let request = PreparedRequest::new("http://other.invalid", &get("/z", None)).expect("request");
    let outcome = execute(&mut client.connections(), &request, &mut |_| {}).await;
    assert_eq!(outcome, Outcome::Failure(FailureKind::Connect));
}

#[tokio::test]
async fn a_steps_own_timeout_ends_it_even_after_a_request_with_a_longer_one() {
    // Answers the first connection's requests; never answers the second connection.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            if held.is_empty() {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
            held.push(stream);
        }
    });
    let target = format!("http://{addr}");
    let options = Options {
        timeout: Duration::from_secs(60),
        ..Options::default()
    };
    let client = Client::new(&options).expect("client");
    let mut conns = client.connections();
    let quick = PreparedRequest::new(&target, &get("/a", None)).expect("request");
    let outcome = execute(&mut conns, &quick, &mut |_| {}).await;
    assert!(matches!(outcome, Outcome::Response { status: 200, .. }));
    // The VU's timer is armed for the first request's 60 s; the step's 200 ms comes first.
    let own = PreparedRequest::new(&target, &get("/b", Some(Duration::from_millis(200))))
        .expect("request");
    let began = std::time::Instant::now();
    let outcome = execute(&mut conns, &own, &mut |_| {}).await;
    assert_eq!(outcome, Outcome::Failure(FailureKind::Timeout));
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "ended by the step's timeout, not the plan's"
    );
}

#[tokio::test]
async fn parallel_requests_overlap_share_the_jar_and_keep_their_lanes() {
    // The server answers only once all three requests arrived: sent one after the other, they
    // would wait forever (and time out).
    let (port, heads) = gathering_server(3).await;
    let options = Options {
        timeout: Duration::from_secs(20),
        ..Options::default()
    };
    let client = Client::new(&options).expect("client");
    let mut conns = client.connections();
    let target = format!("http://127.0.0.1:{port}");
    let requests: Vec<PreparedRequest> = ["/a", "/b", "/c"]
        .iter()
        .map(|p| PreparedRequest::new(&target, &get(p, None)).expect("request"))
        .collect();
    let with_keep: Vec<(&PreparedRequest, Keep)> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| (r, if i == 1 { Keep::Body } else { Keep::Nothing }))
        .collect();
    let heard = std::cell::RefCell::new(Vec::new());
    let sent = execute_parallel(&mut conns, &with_keep, &|i, outcome, last| {
        heard.borrow_mut().push((i, outcome, last));
    })
    .await;
    assert_eq!(sent.len(), 3);
    assert!(sent
        .iter()
        .all(|s| matches!(s.outcome, Outcome::Response { status: 200, .. })));
    assert_eq!(
        sent.iter()
            .map(|s| s.captured.is_some())
            .collect::<Vec<_>>(),
        vec![false, true, false]
    );
    let mut finals: Vec<usize> = heard
        .borrow()
        .iter()
        .filter(|(_, _, last)| *last)
        .map(|(i, _, _)| *i)
        .collect();
    finals.sort_unstable();
    assert_eq!(finals, vec![0, 1, 2], "each request heard once, as final");
    // The jar came back to the VU with the cookie the responses set.
    assert!(!conns.jar.is_empty());
    // Again: the lanes' connections are reused, and the cookie goes along.
    let sent = execute_parallel(&mut conns, &with_keep, &|_, _, _| {}).await;
    assert!(sent
        .iter()
        .all(|s| matches!(s.outcome, Outcome::Response { status: 200, .. })));
    let heads = heads.lock().expect("lock").clone();
    assert_eq!(heads.len(), 6);
    assert!(
        heads[3..].iter().all(|h| h.contains("\r\ncookie: s=1\r\n")),
        "{heads:?}"
    );
}
