//! A real HTTP target that speaks what a test asks for — HTTP/1.1, h2c (HTTP/2 by prior
//! knowledge), or TLS with a self-signed certificate made at test time (rcgen; no key is
//! committed) and ALPN choosing HTTP/2 or HTTP/1.1 — and records, per request, the HTTP version
//! it saw, the method, the path and the body. Its counts are the outside check of herd's.
//!
//! Routes: `/redirect/N` answers 302 to `/redirect/N-1` (`/ok` for N = 1); `/see-other` answers
//! 303 and `/temporary` 307, both to `/echo`; `/away?to=URL` answers 302 to `URL`; anything else
//! 200.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// How the target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    /// Plain HTTP/1.1.
    Http1,
    /// Plain HTTP/2 only (h2c with prior knowledge).
    H2c,
    /// TLS; ALPN offers `h2` and `http/1.1`.
    TlsAlpn,
    /// TLS; ALPN offers only `http/1.1`.
    TlsHttp1,
}

/// One request the target received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub version: Version,
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

pub struct ProtocolTarget {
    /// `http(s)://127.0.0.1:PORT`
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// TLS handshakes that failed on the server's side.
    tls_failures: Arc<Mutex<u64>>,
}

impl ProtocolTarget {
    pub async fn start(speaks: Speaks) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let tls = matches!(speaks, Speaks::TlsAlpn | Speaks::TlsHttp1);
        let url = format!("{}://{addr}", if tls { "https" } else { "http" });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tls_failures = Arc::new(Mutex::new(0));
        let acceptor = tls.then(|| acceptor(speaks));
        let (record, failures) = (Arc::clone(&seen), Arc::clone(&tls_failures));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (record, failures) = (Arc::clone(&record), Arc::clone(&failures));
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        None => serve(stream, speaks == Speaks::H2c, record).await,
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => {
                                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                                serve(tls, h2, record).await;
                            }
                            Err(_) => *failures.lock().expect("not poisoned") += 1,
                        },
                    }
                });
            }
        });
        Self {
            url,
            seen,
            tls_failures,
        }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }

    /// Requests received so far.
    pub fn received(&self) -> u64 {
        self.seen.lock().expect("not poisoned").len() as u64
    }

    /// TLS handshakes the server saw fail.
    pub fn tls_failures(&self) -> u64 {
        *self.tls_failures.lock().expect("not poisoned")
    }
}

fn acceptor(speaks: Speaks) -> tokio_rustls::TlsAcceptor {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
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
    config.alpn_protocols = match speaks {
        Speaks::TlsAlpn => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        _ => vec![b"http/1.1".to_vec()],
    };
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn serve<S>(stream: S, h2: bool, record: Arc<Mutex<Vec<Seen>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let record = Arc::clone(&record);
        async move { Ok::<_, Infallible>(respond(req, record).await) }
    });
    let io = TokioIo::new(stream);
    let _ = if h2 {
        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service)
            .await
    } else {
        hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await
    };
}

async fn respond(req: Request<Incoming>, record: Arc<Mutex<Vec<Seen>>>) -> Response<Full<Bytes>> {
    let version = req.version();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    record.lock().expect("not poisoned").push(Seen {
        version,
        method,
        path: path.clone(),
        content_type,
        body,
    });
    let redirect = |status: u16, to: String| {
        let mut r = Response::new(Full::new(Bytes::from_static(b"moved")));
        *r.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
        r.headers_mut()
            .insert(hyper::header::LOCATION, to.parse().expect("valid location"));
        r
    };
    if let Some(n) = path.strip_prefix("/redirect/") {
        let n: u32 = n.parse().unwrap_or(1);
        let to = if n <= 1 {
            "/ok".to_string()
        } else {
            format!("/redirect/{}", n - 1)
        };
        return redirect(302, to);
    }
    match path.as_str() {
        "/see-other" => redirect(303, "echo".into()),
        "/temporary" => redirect(307, "/echo".into()),
        "/away" => redirect(302, query.trim_start_matches("to=").to_string()),
        _ => Response::new(Full::new(Bytes::from_static(b"hello, herd"))),
    }
}
