//! TLS for https targets: the protocol crate's one rustls builder ([`herd_protocol::tls`]: ring,
//! the Mozilla roots compiled in so an agent container needs no CA bundle, `insecure_tls` still
//! checking handshake signatures), with ALPN offering what the plan's `options.http` allows.

use herd_protocol::plan::HttpVersion;
use herd_protocol::tls::{self, ClientTls, TlsError};
use std::sync::Arc;

pub(super) use herd_protocol::tls::server_name;

/// ALPN protocol id of HTTP/2.
pub(super) const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The connector every connection of one agent uses (its session cache makes reconnects cheap).
pub(super) fn connector(
    http: HttpVersion,
    insecure: bool,
) -> Result<tokio_rustls::TlsConnector, TlsError> {
    let alpn = match http {
        HttpVersion::Auto => vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()],
        HttpVersion::Http1 => vec![ALPN_HTTP1.to_vec()],
        HttpVersion::Http2 => vec![ALPN_H2.to_vec()],
    };
    let config = tls::client_config(&ClientTls {
        insecure,
        alpn,
        ..ClientTls::default()
    })?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
