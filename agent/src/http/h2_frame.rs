//! HTTP/2 frames (RFC 9113, section 4 and 6) as herd's client reads and writes them: the 9-byte
//! frame header, the frames a client sends (appended to one output buffer, so control frames
//! queued while reading go out in the same write as the next request), and the header block of
//! a request, encoded once per request step.

use super::h2_hpack::{put_field, put_indexed};
use bytes::Bytes;
use hyper::header::{self, HeaderMap};
use hyper::Method;

pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const PRIORITY: u8 = 0x2;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const PUSH_PROMISE: u8 = 0x5;
pub(super) const PING: u8 = 0x6;
pub(super) const GOAWAY: u8 = 0x7;
pub(super) const WINDOW_UPDATE: u8 = 0x8;
pub(super) const CONTINUATION: u8 = 0x9;

pub(super) const END_STREAM: u8 = 0x1;
pub(super) const ACK: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
pub(super) const PADDED: u8 = 0x8;
pub(super) const PRIORITY_FLAG: u8 = 0x20;

/// Error codes (section 7).
pub(super) const NO_ERROR: u32 = 0x0;
pub(super) const PROTOCOL_ERROR: u32 = 0x1;
pub(super) const FLOW_CONTROL_ERROR: u32 = 0x3;
pub(super) const FRAME_SIZE_ERROR: u32 = 0x6;
pub(super) const REFUSED_STREAM: u32 = 0x7;
pub(super) const CANCEL: u32 = 0x8;
pub(super) const COMPRESSION_ERROR: u32 = 0x9;

/// Settings (section 6.5.2).
pub(super) const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub(super) const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub(super) const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub(super) const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// The client connection preface.
pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The smallest (and default) largest frame payload.
pub(super) const MIN_MAX_FRAME: usize = 16_384;
/// The largest flow-control window.
pub(super) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// A frame's header.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    pub const SIZE: usize = 9;

    /// The header at the start of `bytes` (at least [`Head::SIZE`] long).
    pub fn parse(bytes: &[u8; 9]) -> Self {
        Self {
            len: usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]),
            kind: bytes[3],
            flags: bytes[4],
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
        }
    }
}

/// Appends a frame header.
pub(super) fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

pub(super) fn put_settings(out: &mut Vec<u8>, settings: &[(u16, u32)]) {
    put_head(out, settings.len() * 6, SETTINGS, 0, 0);
    for (id, value) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub(super) fn put_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_head(out, 4, WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&increment.to_be_bytes());
}

pub(super) fn put_rst_stream(out: &mut Vec<u8>, stream: u32, code: u32) {
    put_head(out, 4, RST_STREAM, 0, stream);
    out.extend_from_slice(&code.to_be_bytes());
}

pub(super) fn put_goaway(out: &mut Vec<u8>, code: u32) {
    // Last stream 0: the client accepts no stream from the server.
    put_head(out, 8, GOAWAY, 0, 0);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
}

/// Appends a request's `HEADERS` frame for `stream` with its header `block`, split into
/// `CONTINUATION` frames beyond `max_frame` bytes.
pub(super) fn put_headers(
    out: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: usize,
) {
    let mut chunks = block.chunks(max_frame.max(1)).peekable();
    let mut kind = HEADERS;
    let mut flags = if end_stream { END_STREAM } else { 0 };
    loop {
        let chunk = chunks.next().unwrap_or_default();
        let last = chunks.peek().is_none();
        put_head(
            out,
            chunk.len(),
            kind,
            flags | if last { END_HEADERS } else { 0 },
            stream,
        );
        out.extend_from_slice(chunk);
        if last {
            return;
        }
        kind = CONTINUATION;
        flags = 0;
    }
}

/// Headers HTTP/2 forbids (section 8.2.2); a step's own `content-length` and `host` are
/// replaced (by the body's length and `:authority`).
fn left_out(name: &header::HeaderName, value: &[u8]) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    ) || (name == header::TE && !value.eq_ignore_ascii_case(b"trailers"))
}

/// The header block of a request (HPACK, literals only: see `h2_hpack`): pseudo-headers, then
/// the step's headers, then `content-length` for a body (or for an empty one where a body is
/// expected, as HTTP/1.1 sends it). `authority` is the step's `Host` if it sets one.
pub(super) fn request_block(
    method: &Method,
    tls: bool,
    authority: &[u8],
    path: &str,
    headers: &HeaderMap,
    body_len: usize,
) -> Bytes {
    let mut out = Vec::with_capacity(32 + authority.len() + path.len() + headers.len() * 32);
    match *method {
        Method::GET => put_indexed(&mut out, 2),
        Method::POST => put_indexed(&mut out, 3),
        _ => put_field(&mut out, b":method", method.as_str().as_bytes(), false),
    }
    put_indexed(&mut out, if tls { 7 } else { 6 });
    let authority = headers
        .get(header::HOST)
        .map_or(authority, |h| h.as_bytes());
    put_field(&mut out, b":authority", authority, false);
    if path == "/" {
        put_indexed(&mut out, 4);
    } else {
        put_field(&mut out, b":path", path.as_bytes(), false);
    }
    for (name, value) in headers {
        if left_out(name, value.as_bytes()) {
            continue;
        }
        let sensitive = value.is_sensitive()
            || matches!(
                name.as_str(),
                "authorization" | "proxy-authorization" | "cookie"
            );
        put_field(
            &mut out,
            name.as_str().as_bytes(),
            value.as_bytes(),
            sensitive,
        );
    }
    if body_len > 0 || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        put_field(
            &mut out,
            b"content-length",
            body_len.to_string().as_bytes(),
            false,
        );
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::super::h2_hpack::Decoder;
    use super::*;
    use crate::http::test_bytes::pairs;
    use hyper::header::HeaderValue;

    fn fields(block: &[u8]) -> Vec<(String, String)> {
        let mut got = Vec::new();
        Decoder::default()
            .decode(
                block,
                |_| true,
                |n, v| {
                    got.push((
                        String::from_utf8_lossy(n).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    ))
                },
            )
            .expect("valid");
        got
    }

    #[test]
    fn a_request_block_names_the_pseudo_headers_and_leaves_out_what_http2_forbids() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "vhost.test"),
            ("connection", "close"),
            ("te", "gzip"),
            ("content-length", "99"),
            ("authorization", "Bearer t"),
            ("x-a", "1"),
        ] {
            headers.append(
                header::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let block = request_block(&Method::PUT, true, b"a.test:8443", "/p?q", &headers, 4);
        assert_eq!(
            fields(&block),
            pairs(&[
                (":method", "PUT"),
                (":scheme", "https"),
                (":authority", "vhost.test"),
                (":path", "/p?q"),
                ("authorization", "Bearer t"),
                ("x-a", "1"),
                ("content-length", "4"),
            ])
        );
        let get = request_block(&Method::GET, false, b"a.test", "/", &HeaderMap::new(), 0);
        assert_eq!(
            &get[..],
            &[0x82, 0x86, 0x01, 6, b'a', b'.', b't', b'e', b's', b't', 0x84]
        );
    }

    #[test]
    fn a_header_block_beyond_the_frame_size_continues_in_continuation_frames() {
        let block: Vec<u8> = (0..40).collect();
        let mut out = Vec::new();
        put_headers(&mut out, 3, &block, true, 16);
        let mut at = 0;
        let mut frames = Vec::new();
        while at < out.len() {
            let bytes: &[u8; 9] = out[at..at + 9].try_into().expect("nine bytes");
            let head = Head::parse(bytes);
            frames.push((head.kind, head.flags, head.stream, head.len));
            at += 9 + head.len;
        }
        assert_eq!(
            frames,
            [
                (HEADERS, END_STREAM, 3, 16),
                (CONTINUATION, 0, 3, 16),
                (CONTINUATION, END_HEADERS, 3, 8)
            ]
        );
    }
}
