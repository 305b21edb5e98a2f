//! Fetching a JWKS over `http://` or `https://`.
//!
//! Cognito publishes a user pool's keys only over https, so the fetch speaks TLS (rustls with the
//! `ring` provider herd already builds, and the Mozilla roots from `webpki-roots`, so no system
//! certificate store is needed in a container). An extra root may be trusted with `--jwks-ca`
//! (a PEM file) for a private JWKS behind an internal CA, or a test's own self-signed server.
//! One GET per fetch over hyper's HTTP/1 connection API: fetches are rare (start-up and key
//! rotation), so no pooled client is kept.

use bytes::Bytes;
use herd_protocol::tls::{self, ClientTls, OptionNames, PemSource, TlsOptions};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::JwkSet;
use rustls::pki_types::ServerName;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// How long one fetch may take, connection included.
const FETCH_LIMIT: Duration = Duration::from_secs(5);

/// A JWKS is a few keys; anything much larger is not one.
const MAX_BODY: usize = 1 << 20;

/// Why the keys could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not an absolute http(s) URL.
    #[error("bad JWKS URL: {0}")]
    Url(String),
    /// A `--jwks-ca` file that holds no usable certificate.
    #[error("cannot use the CA file {path}: {reason}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting, TLS, or HTTP failed.
    #[error("{0}")]
    Transport(String),
    /// No answer within [`FETCH_LIMIT`].
    #[error("timed out after {FETCH_LIMIT:?}")]
    Timeout,
    /// The server answered with an error status.
    #[error("HTTP {0}")]
    Status(u16),
    /// The body is not a JWKS.
    #[error("not a JWKS: {0}")]
    Body(String),
}

/// How `herd up` names the CA option, for error messages.
const NAMES: OptionNames = OptionNames {
    ca: "--jwks-ca",
    cert: "--jwks-ca",
    key: "--jwks-ca",
};

/// Fetches JWKS documents.
#[derive(Clone)]
pub struct JwksClient {
    tls: tokio_rustls::TlsConnector,
}

impl JwksClient {
    /// Trusts the Mozilla roots, plus the certificates of `extra_ca` (a PEM file) if given.
    pub fn new(extra_ca: Option<&Path>) -> Result<Self, FetchError> {
        let options = TlsOptions {
            ca: extra_ca.map(|p| PemSource::File(p.to_path_buf())),
            ..TlsOptions::default()
        };
        let config = tls::client_config(&ClientTls {
            options: Some((&options, NAMES)),
            builtin_roots_too: true,
            ..ClientTls::default()
        })
        .map_err(|e| FetchError::Ca {
            path: extra_ca.map_or_else(String::new, |p| p.display().to_string()),
            reason: e.reason,
        })?;
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// GETs `url` and parses it as a JWKS.
    pub async fn fetch(&self, url: &str) -> Result<JwkSet, FetchError> {
        tokio::time::timeout(FETCH_LIMIT, self.fetch_now(url))
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    async fn fetch_now(&self, url: &str) -> Result<JwkSet, FetchError> {
        let uri: hyper::Uri = url.parse().map_err(|e| FetchError::Url(format!("{e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(FetchError::Url(format!("{url}: not http(s)"))),
        };
        let host = uri
            .host()
            .ok_or_else(|| FetchError::Url(format!("{url}: no host")))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| FetchError::Transport(format!("cannot connect to {host}:{port}: {e}")))?;
        let body = if https {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| FetchError::Url(format!("{host}: {e}")))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| FetchError::Transport(format!("TLS with {host}: {e}")))?;
            get(tls, &uri).await?
        } else {
            get(tcp, &uri).await?
        };
        serde_json::from_slice(&body).map_err(|e| FetchError::Body(e.to_string()))
    }
}

async fn get<S>(stream: S, uri: &hyper::Uri) -> Result<Bytes, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let transport = |e: hyper::Error| FetchError::Transport(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(transport)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "JWKS connection ended with an error");
        }
    });
    let authority = uri.authority().map_or("", |a| a.as_str());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Url(e.to_string()))?;
    let response = sender.send_request(request).await.map_err(transport)?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| FetchError::Body(e.to_string()))
}
