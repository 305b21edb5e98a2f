//! An https target for end-to-end tests: TLS with a self-signed certificate made when it starts
//! (rcgen; no key is committed), ALPN offering `h2` and `http/1.1`, and a record of every request
//! it received — the HTTP version it was spoken in and its body — so a test can check herd's
//! counts and that the agents spoke the protocol the plan asked for.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One request as the target received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The HTTP version it was sent in.
    pub version: Version,
    /// `METHOD /path`.
    pub route: String,
    /// Its body.
    pub body: Vec<u8>,
}

/// A counting https target on its own thread and runtime.
pub struct HttpsTarget {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    handshakes_failed: Arc<Mutex<u64>>,
}

impl HttpsTarget {
    /// Starts it on an ephemeral port of 127.0.0.1.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let received = Arc::new(Mutex::new(Vec::new()));
        let handshakes_failed = Arc::new(Mutex::new(0));
        let (record, failed) = (received.clone(), handshakes_failed.clone());
        let acceptor = acceptor();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("target runtime");
            runtime.block_on(serve(listener, acceptor, record, failed));
        });
        Self {
            addr,
            received,
            handshakes_failed,
        }
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// TLS handshakes that failed on the server's side.
    pub fn handshakes_failed(&self) -> u64 {
        *self.handshakes_failed.lock().expect("lock")
    }
}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])
        .expect("self-signed certificate");
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("certificate and key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn serve(
    listener: std::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    record: Arc<Mutex<Vec<Received>>>,
    failed: Arc<Mutex<u64>>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, record, failed) = (acceptor.clone(), record.clone(), failed.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                *failed.lock().expect("lock") += 1;
                return;
            };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let service = hyper::service::service_fn(move |req| respond(req, record.clone()));
            let io = TokioIo::new(tls);
            let _ = if h2 {
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service)
                    .await
            } else {
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
            };
        });
    }
}

async fn respond(
    req: Request<Incoming>,
    record: Arc<Mutex<Vec<Received>>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let version = req.version();
    let route = format!("{} {}", req.method(), req.uri().path());
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    record.lock().expect("lock").push(Received {
        version,
        route,
        body,
    });
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}
