//! Opening a connection to an origin: resolve, TCP connect (Nagle off), TLS handshake for https,
//! all within the plan's `connect_timeout`, and the ALPN answer that picks the HTTP version.
//!
//! Failures are told apart because users act on them differently: a refused or unreachable
//! address, a failed name lookup or a connect that took too long is `connect`; anything that
//! goes wrong in the TLS handshake (untrusted certificate, wrong name, a plain-HTTP server on the
//! other end, no common ALPN protocol) is `tls`.
//!
//! Through an HTTP proxy (`options.proxy`), https targets (and h2c) go by a `CONNECT` tunnel,
//! opened here with the connection, inside which TLS runs end to end as it would straight to the
//! target; plain HTTP/1.1 connections go to the proxy as they are, and their requests name the
//! absolute URL (`Hop::absolute_form`). A proxy that refuses a tunnel fails the request as
//! `connect`.

use super::tls::{self, ALPN_H2};
use crate::recorder::FailureKind;
use herd_protocol::allow::AllowList;
use herd_protocol::plan::HostOverride;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Where requests go: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    /// `https`.
    pub tls: bool,
    /// Host name or IP address, without the brackets of an IPv6 literal.
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http(s)://` URI.
    pub fn of(uri: &hyper::Uri) -> Result<Self, String> {
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("the URL must start with http:// or https://".into()),
        };
        let host = uri.host().ok_or("the URL has no host")?;
        Ok(Self {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        })
    }
}

/// A connection's byte stream: plain TCP or TLS over TCP.
#[derive(Debug)]
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A new connection, and whether the server agreed by ALPN to speak HTTP/2.
pub(super) struct Connected {
    pub stream: Stream,
    pub alpn_h2: bool,
    /// Requests on it name their absolute URL (plain HTTP to a proxy).
    pub absolute_form: bool,
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub(super) struct ConnectError {
    pub kind: FailureKind,
    pub reason: String,
}

impl ConnectError {
    pub(super) fn new(kind: FailureKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }
}

/// An HTTP proxy every connection goes through (`options.proxy`).
#[derive(Debug)]
pub(super) struct ProxyRoute {
    /// Where the proxy listens.
    pub origin: Origin,
    /// The `Proxy-Authorization` header line (with its CRLF), or empty.
    pub authorization: bytes::Bytes,
    /// Whether plain-HTTP requests go through a `CONNECT` tunnel too (h2c, which cannot be sent
    /// in absolute form); https ones always do.
    pub tunnel_plain: bool,
}

/// How a connection reaches its origin.
pub(super) enum Route<'a> {
    /// Straight, to the address the plan's `hosts:` or DNS gives.
    Direct(&'a [HostOverride]),
    /// Through a proxy.
    Proxy(&'a ProxyRoute),
}

/// Opens a connection to `origin` by `route` within `limit` (TCP, the proxy's tunnel and TLS
/// together). `Connected::absolute_form`: a plain-HTTP connection to a proxy, on which requests
/// name their absolute URL.
pub(super) async fn connect(
    origin: &Origin,
    tls: &tokio_rustls::TlsConnector,
    limit: Duration,
    route: Route<'_>,
) -> Result<Connected, ConnectError> {
    let open = async {
        let (tcp, absolute_form) = match route {
            Route::Direct(hosts) => (tcp(origin, hosts).await?, false),
            Route::Proxy(proxy) => {
                let target_allowed = ALLOWED
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_ref()
                    .is_none_or(|list| list.allows_host(&origin.host));
                if !target_allowed {
                    return Err(ConnectError::new(
                        FailureKind::Blocked,
                        format!("{} is outside allowed_targets", origin.host),
                    ));
                }
                let mut stream = tcp(&proxy.origin, &[]).await?;
                let via_tunnel = origin.tls || proxy.tunnel_plain;
                if via_tunnel {
                    tunnel(&mut stream, origin, &proxy.authorization).await?;
                }
                (stream, !via_tunnel)
            }
        };
        if !origin.tls {
            return Ok(Connected {
                stream: Stream::Plain(tcp),
                alpn_h2: false,
                absolute_form,
            });
        }
        let name = tls::server_name(&origin.host).ok_or_else(|| {
            ConnectError::new(
                FailureKind::Tls,
                format!("{:?} is not a valid TLS server name", origin.host),
            )
        })?;
        let stream = tls
            .connect(name, tcp)
            .await
            .map_err(|e| ConnectError::new(FailureKind::Tls, e.to_string()))?;
        let alpn_h2 = stream.get_ref().1.alpn_protocol() == Some(ALPN_H2);
        Ok(Connected {
            stream: Stream::Tls(Box::new(stream)),
            alpn_h2,
            absolute_form: false,
        })
    };
    tokio::time::timeout(limit, open).await.unwrap_or_else(|_| {
        Err(ConnectError::new(
            FailureKind::Connect,
            format!("no connection within the connect timeout ({limit:?})"),
        ))
    })
}

/// The run's `allowed_targets`, set once by the agent before its load starts (an agent process
/// serves one run); `None`: any target.
static ALLOWED: std::sync::RwLock<Option<AllowList>> = std::sync::RwLock::new(None);

/// Restricts every connection of this process to `list` (`None`: unrestricted).
pub fn restrict(list: Option<AllowList>) {
    *ALLOWED
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = list;
}

/// Where the plan's `hosts:` sends connections to `origin`, if it names its host.
fn overridden(origin: &Origin, hosts: &[HostOverride]) -> Option<std::net::SocketAddr> {
    hosts
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(&origin.host))
        .map(|h| std::net::SocketAddr::new(h.ip, h.port.unwrap_or(origin.port)))
}

/// TCP to the first address of `origin` that accepts (the plan's `hosts:` entry for its name, or
/// what DNS says), among those `allowed_targets` allows: checked after resolution, so neither a
/// name nor an override can lead around the list.
async fn tcp(origin: &Origin, hosts: &[HostOverride]) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<std::net::SocketAddr> = match overridden(origin, hosts) {
        Some(addr) => vec![addr],
        None => tokio::net::lookup_host((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| {
                ConnectError::new(
                    FailureKind::Connect,
                    format!("cannot resolve {}: {e}", origin.host),
                )
            })?
            .collect(),
    };
    let allowed = ALLOWED
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let addrs: Vec<std::net::SocketAddr> = match &allowed {
        None => addrs,
        Some(list) => {
            let kept: Vec<_> = addrs
                .iter()
                .copied()
                .filter(|a| list.allows_addr(&origin.host, a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(ConnectError::new(
                    FailureKind::Blocked,
                    format!(
                        "{} ({}) is outside allowed_targets",
                        origin.host,
                        addrs
                            .iter()
                            .map(|a| a.ip().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            kept
        }
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Requests are small and latency is what we measure: never wait to coalesce.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(ConnectError::new(
        FailureKind::Connect,
        match last {
            Some(e) => format!("cannot connect to {}:{}: {e}", origin.host, origin.port),
            None => format!("{} has no address", origin.host),
        },
    ))
}

/// Most bytes the proxy's answer to `CONNECT` may take.
const MAX_CONNECT_HEAD: usize = 16 * 1024;

/// Asks the proxy on `stream` for a tunnel to `origin`; `Ok` once it answered 2xx.
async fn tunnel(
    stream: &mut TcpStream,
    origin: &Origin,
    authorization: &[u8],
) -> Result<(), ConnectError> {
    let authority = if origin.host.contains(':') {
        format!("[{}]:{}", origin.host, origin.port)
    } else {
        format!("{}:{}", origin.host, origin.port)
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n").into_bytes();
    request.extend_from_slice(authorization);
    request.extend_from_slice(b"\r\n");
    let failed = |reason: String| ConnectError::new(FailureKind::Connect, reason);
    stream.write_all(&request).await.map_err(|e| {
        failed(format!(
            "proxy: cannot ask for a tunnel to {authority}: {e}"
        ))
    })?;
    // Read up to the end of the head, byte chunks at a time: nothing follows a 2xx before our
    // TLS ClientHello is answered, so nothing is read past it.
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_CONNECT_HEAD {
            return Err(failed("proxy: its answer to CONNECT is too long".into()));
        }
        let want = if head.ends_with(b"\r\n\r") {
            1
        } else if head.ends_with(b"\r\n") {
            2
        } else if head.ends_with(b"\r") {
            3
        } else {
            4
        };
        let n = stream
            .read(&mut chunk[..want])
            .await
            .map_err(|e| failed(format!("proxy: {e}")))?;
        if n == 0 {
            return Err(failed(format!(
                "proxy: closed the connection instead of opening a tunnel to {authority}"
            )));
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_))
            if response.code.is_some_and(|c| (200..300).contains(&c)) =>
        {
            Ok(())
        }
        Ok(httparse::Status::Complete(_)) => Err(failed(format!(
            "proxy: refused a tunnel to {authority} with status {}",
            response.code.unwrap_or(0)
        ))),
        _ => Err(failed("proxy: its answer to CONNECT is not HTTP".into())),
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
