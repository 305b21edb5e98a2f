//! Through an HTTP proxy (`options.proxy`): https targets (and h2c) by a `CONNECT` tunnel, opened
//! when the connection is, inside which TLS runs end to end as it would straight to the target;
//! plain HTTP/1.1 by naming the absolute URL on the request line (RFC 9112, section 3.2.2), the
//! proxy opening its own connections. Either way herd counts its requests as always: one per
//! request sent, the proxy's answers (a 502, a 407) counting as the responses they are.

use super::connector::{ConnectError, Origin};
use super::request::Hop;
use crate::recorder::FailureKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most bytes the proxy's answer to `CONNECT` may take.
const MAX_CONNECT_HEAD: usize = 16 * 1024;

/// Asks the proxy on `stream` for a tunnel to `origin`; `Ok` once it answered 2xx.
pub(super) async fn tunnel(
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

/// `hop` as a proxy takes it: the request line names the absolute URL, and the proxy's
/// `authorization` line (possibly empty) joins the headers. Made per request, on proxied plain
/// HTTP connections only.
pub(super) fn absolute_form(hop: &Hop, authorization: &[u8]) -> Vec<u8> {
    let wire = &hop.h1_wire[..];
    let line_end = wire
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(wire.len(), |i| i + 2);
    let absolute = hop.target.absolute.to_string();
    let mut out = Vec::with_capacity(wire.len() + absolute.len() + authorization.len());
    out.extend_from_slice(hop.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(absolute.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    out.extend_from_slice(authorization);
    out.extend_from_slice(&wire[line_end..]);
    out
}
