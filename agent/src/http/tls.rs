//! TLS for https targets: the protocol crate's one rustls builder ([`herd_protocol::tls`]: ring,
//! the Mozilla roots compiled in so an agent container needs no CA bundle, `insecure_tls` still
//! checking handshake signatures), with ALPN offering what the plan's `options.http` allows, and
//! the plan's `options.tls`: its CA instead of the Mozilla roots, its client certificate for
//! servers that ask for one (mTLS).

use herd_protocol::plan::{HttpVersion, PemFile, TargetTls};
use herd_protocol::tls::{self, ClientTls, OptionNames, PemSource, TlsError, TlsOptions};
use std::sync::Arc;

pub(super) use herd_protocol::tls::server_name;

/// ALPN protocol id of HTTP/2.
pub(super) const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// How the plan names the files, for errors.
const NAMES: OptionNames = OptionNames {
    ca: "options.tls.ca",
    cert: "options.tls.client_cert",
    key: "options.tls.client_key",
};

/// The connector every connection of one agent uses (its session cache makes reconnects cheap).
pub(super) fn connector(
    http: HttpVersion,
    insecure: bool,
    target: &TargetTls,
) -> Result<tokio_rustls::TlsConnector, TlsError> {
    let alpn = match http {
        HttpVersion::Auto => vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()],
        HttpVersion::Http1 => vec![ALPN_HTTP1.to_vec()],
        HttpVersion::Http2 => vec![ALPN_H2.to_vec()],
    };
    let inline = |f: &Option<PemFile>| f.as_ref().map(|f| PemSource::Inline(f.pem.clone()));
    let files = TlsOptions {
        ca: inline(&target.ca),
        cert: inline(&target.client_cert),
        key: inline(&target.client_key),
    };
    let config = tls::client_config(&ClientTls {
        options: files.is_set().then_some((&files, NAMES)),
        insecure,
        alpn,
        ..ClientTls::default()
    })?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
