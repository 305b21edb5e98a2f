//! One POST to a receiver over `http://` or `https://` (rustls with the Mozilla roots), a
//! connection per push: pushes come once a second at most, so no pool is kept.

use bytes::Bytes;
use herd_protocol::tls::{self, ClientTls};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// How long one push may take, connecting included.
const PUSH_LIMIT: Duration = Duration::from_secs(10);

/// Why a push failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PostError {
    /// What went wrong.
    pub message: String,
    /// Connection failures, timeouts, 429 and 5xx: yes; other 4xx: no (the receiver refuses
    /// this body and would refuse it again).
    pub retry: bool,
}

impl PostError {
    fn retry(message: String) -> Self {
        Self {
            message,
            retry: true,
        }
    }
}

/// Sends pushes.
#[derive(Clone)]
pub struct Poster {
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Poster {
    /// A poster; TLS is set up once, and only when some URL needs it.
    pub fn new(https: bool) -> Self {
        let tls = if https {
            tls::client_config(&ClientTls {
                builtin_roots_too: true,
                ..ClientTls::default()
            })
            .ok()
            .map(|config| tokio_rustls::TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Self { tls }
    }

    /// POSTs `body` to `url` with `headers`.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<(), PostError> {
        tokio::time::timeout(PUSH_LIMIT, self.post_now(url, headers, body))
            .await
            .map_err(|_| PostError::retry(format!("no answer within {PUSH_LIMIT:?}")))?
    }

    async fn post_now(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<(), PostError> {
        let fatal = |message: String| PostError {
            message,
            retry: false,
        };
        let uri: hyper::Uri = url.parse().map_err(|e| fatal(format!("{url}: {e}")))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or_else(|| fatal(format!("{url}: no host")))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| PostError::retry(format!("cannot connect to {host}:{port}: {e}")))?;
        if !https {
            return send(tcp, &uri, headers, body).await;
        }
        let Some(connector) = &self.tls else {
            return Err(fatal("TLS is not available".into()));
        };
        let name = ServerName::try_from(host.clone()).map_err(|e| fatal(format!("{host}: {e}")))?;
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| PostError::retry(format!("TLS with {host}: {e}")))?;
        send(stream, &uri, headers, body).await
    }
}

async fn send<S>(
    stream: S,
    uri: &hyper::Uri,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<(), PostError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let transport = |e: hyper::Error| PostError::retry(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(transport)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "output connection ended with an error");
        }
    });
    let authority = uri.authority().map_or("", |a| a.as_str());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = hyper::Request::post(path).header(hyper::header::HOST, authority);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| PostError {
            message: e.to_string(),
            retry: false,
        })?;
    let response = sender.send_request(request).await.map_err(transport)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = Limited::new(response.into_body(), 4096)
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
        .unwrap_or_default();
    Err(PostError {
        message: format!("HTTP {}: {text}", status.as_u16()),
        retry: status.as_u16() == 429 || status.is_server_error(),
    })
}
