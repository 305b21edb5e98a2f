//! End-to-end: `options.tls` (a private CA and a client certificate, against a target that
//! requires one: mTLS) and `options.proxy` (a counting proxy written here: plain requests in
//! absolute form, https through `CONNECT`), by `herd run` with real agent processes.

use bytes::Bytes;
use herd_e2e::https::HttpsTarget;
use herd_e2e::mqtt_tls::certificates_for;
use herd_e2e::{run_plan, run_plan_ok, CountingTarget};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Runs `future` on a runtime of its own thread, forever.
fn background<F: std::future::Future<Output = ()> + Send + 'static>(future: F) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future);
    });
}

fn listener() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    (listener, addr)
}

/// What the mTLS target saw.
#[derive(Debug, Default)]
struct MtlsSeen {
    requests: u64,
    /// Handshakes that failed on its side (no client certificate).
    refused: u64,
}

/// An https target (HTTP/1.1) whose certificate is for `herd-test.invalid`, signed by the test
/// CA, that requires a client certificate of the same CA.
fn mtls_target(dir: &Path) -> (SocketAddr, Arc<Mutex<MtlsSeen>>) {
    let pem = |name: &str| std::fs::read(dir.join(name)).expect("read PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&pem("ca.pem")) {
        roots.add(ca.expect("CA")).expect("add CA");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem("server.pem"))
        .collect::<Result<_, _>>()
        .expect("server chain");
    let key = PrivateKeyDer::from_pem_slice(&pem("server.key")).expect("server key");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let seen = Arc::new(Mutex::new(MtlsSeen::default()));
    let (listener, addr) = listener();
    let record = seen.clone();
    background(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    record.lock().expect("lock").refused += 1;
                    return;
                };
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let record = record.clone();
                    async move {
                        req.into_body().collect().await?;
                        record.lock().expect("lock").requests += 1;
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn tls_plan(port: u16, tls: &str) -> String {
    format!(
        "version: 1\nname: mtls\ntarget: https://herd-test.invalid:{port}\nagents: 2\n\
         load:\n  stages:\n    - {{ duration: 10ms, vus: 4 }}\n    - {{ duration: 60s, vus: 4 }}\n  iterations_per_vu: 5\n\
         hosts: {{ herd-test.invalid: 127.0.0.1 }}\nscenario:\n  - get: /secure\n\
         options: {{ timeout: 5s, tls: {tls} }}\n"
    )
}

#[test]
fn an_mtls_target_takes_the_client_certificate_and_refuses_a_client_without_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates_for(dir.path(), &["herd-test.invalid"], "client");
    let (addr, seen) = mtls_target(dir.path());

    // With the client certificate: every request reaches the target, verified against the test
    // CA under the name the plan targets (connected through `hosts:`).
    let plan = tls_plan(
        addr.port(),
        "{ ca: ca.pem, client_cert: client.pem, client_key: client.key }",
    );
    let s = run_plan_ok(dir.path(), &plan, Duration::from_secs(60));
    assert_eq!(u(&s["requests"]), 20);
    assert_eq!(u(&s["errors"]), 0, "{s}");
    assert_eq!(seen.lock().expect("lock").requests, 20);

    // Without it: the target refuses every connection, and herd counts every request as an
    // error; none reaches the target.
    let plan = tls_plan(addr.port(), "{ ca: ca.pem }");
    let (_, s) = run_plan(dir.path(), &plan, Duration::from_secs(60));
    assert_eq!(u(&s["requests"]), 20);
    assert_eq!(u(&s["errors"]), 20, "{s}");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.requests, 20, "none more got through");
    assert!(seen.refused >= 1);
    let kinds = s["error_kinds"].as_object().expect("error_kinds");
    assert!(
        kinds
            .keys()
            .all(|k| k == "tls" || k == "closed" || k == "reset"),
        "a refused handshake: {kinds:?}"
    );
}

/// What the proxy saw.
#[derive(Debug, Default)]
struct ProxySeen {
    /// Requests in absolute form it forwarded.
    forwarded: u64,
    /// `CONNECT` tunnels it opened.
    tunnels: u64,
    /// `Proxy-Authorization` values it received.
    authorizations: Vec<String>,
}

type ProxyBody = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

async fn proxy_request(
    req: Request<Incoming>,
    seen: Arc<Mutex<ProxySeen>>,
) -> Result<Response<ProxyBody>, hyper::Error> {
    if let Some(a) = req.headers().get("proxy-authorization") {
        let a = a.to_str().unwrap_or_default().to_string();
        seen.lock().expect("lock").authorizations.push(a);
    }
    let authority = req
        .uri()
        .authority()
        .map(ToString::to_string)
        .unwrap_or_default();
    if req.method() == Method::CONNECT {
        seen.lock().expect("lock").tunnels += 1;
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let Ok(mut server) = tokio::net::TcpStream::connect(&authority).await else {
                return;
            };
            let mut client = TokioIo::new(upgraded);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
        return Ok(Response::new(Empty::new().map_err(|e| match e {}).boxed()));
    }
    seen.lock().expect("lock").forwarded += 1;
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect to the origin");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let (mut parts, body) = req.into_parts();
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .expect("origin form");
    parts.headers.remove("proxy-authorization");
    let response = sender
        .send_request(Request::from_parts(parts, body))
        .await?;
    Ok(response.map(BodyExt::boxed))
}

/// A counting HTTP proxy on 127.0.0.1.
fn counting_proxy() -> (SocketAddr, Arc<Mutex<ProxySeen>>) {
    let seen = Arc::new(Mutex::new(ProxySeen::default()));
    let (listener, addr) = listener();
    let record = seen.clone();
    background(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req| proxy_request(req, record.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (addr, seen)
}

#[test]
fn a_proxy_sees_every_plain_request_and_tunnels_https() {
    let (proxy, seen) = counting_proxy();
    let target = CountingTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let load = "load:\n  stages:\n    - { duration: 10ms, vus: 4 }\n    - { duration: 60s, vus: 4 }\n  iterations_per_vu: 5\n";
    let plan = format!(
        "version: 1\nname: proxy\ntarget: {}\nagents: 2\n{load}\
         scenario:\n  - get: /ok\n  - get: /mix\n\
         options: {{ proxy: 'http://herd:s3cret@{proxy}' }}\n",
        target.url()
    );
    let s = run_plan_ok(dir.path(), &plan, Duration::from_secs(60));
    assert_eq!(u(&s["requests"]), 40);
    assert_eq!(u(&s["errors"]), 0, "{s}");
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.forwarded, 40, "the proxy saw every request");
        assert_eq!(seen.tunnels, 0);
        assert_eq!(seen.authorizations.len(), 40);
        // base64("herd:s3cret")
        assert!(seen
            .authorizations
            .iter()
            .all(|a| a == "Basic aGVyZDpzM2NyZXQ="));
    }
    assert_eq!(target.received().total, 40);

    // https: through CONNECT, TLS end to end; the proxy sees one tunnel per connection.
    let https = HttpsTarget::start();
    let plan = format!(
        "version: 1\nname: proxy-tls\ntarget: {}\nagents: 2\n{load}\
         scenario:\n  - put: /upload\n    body: data\n\
         options: {{ proxy: 'http://{proxy}', insecure_tls: true }}\n",
        https.url()
    );
    let s = run_plan_ok(dir.path(), &plan, Duration::from_secs(60));
    assert_eq!(u(&s["requests"]), 20);
    assert_eq!(https.received().len(), 20);
    let seen = seen.lock().expect("lock");
    assert!(
        (1..=4).contains(&seen.tunnels),
        "one tunnel per VU's connection: {}",
        seen.tunnels
    );
    assert_eq!(seen.forwarded, 40, "nothing more in absolute form");
}
