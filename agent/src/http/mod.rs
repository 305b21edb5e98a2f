//! The HTTP side of a virtual user: requests prepared once per run, connections each VU owns,
//! redirects followed and counted, and every way a request can fail mapped onto herd's error
//! kinds.
//!
//! - `request` — [`PreparedRequest`]: validated once when the load starts, so the hot path only
//!   clones cheap handles; what a redirect makes of a request;
//! - `client` — [`Client`] (the plan's options and TLS settings, shared) and [`Connections`] (the
//!   connections one VU or worker owns; no shared pool), with its cookie jar;
//! - `cookies` — the per-VU cookie jar (RFC 6265): `Set-Cookie` stored, `Cookie` sent back;
//! - `connector` — resolve (or the plan's `hosts:`), TCP, a proxy's `CONNECT` tunnel, TLS, ALPN,
//!   within the connect timeout;
//! - `tls` — rustls configuration (Mozilla roots or the plan's CA, or any certificate with
//!   `insecure_tls`; the plan's client certificate);
//! - `h1` — HTTP/1.1 spoken directly (one write per request, the head parsed in place): hyper's
//!   client cost as much CPU per request as the kernel did;
//! - `h2` — HTTP/2 spoken directly, one request at a time per connection (the `h2` crate's
//!   general machinery cost more than the kernel's work left room for), with `h2_recv` (what
//!   the server's frames do), `h2_frame` (frames, a request's header block encoded once) and
//!   `h2_hpack` / `h2_huffman` (HPACK);
//! - `readbuf` — the read buffer `h1` and `h2` parse responses from in place;
//! - `exchange` — one request step: cookies, timeout, redirects ([`execute`]);
//! - `parallel` — the requests of a `parallel` step at once ([`execute_parallel`]);
//! - `decode` — compressed bodies (gzip, deflate, br) decoded for checks and extractions.
//!
//! The body of each response is read to the end (that is part of the latency) and counted, never
//! kept — except by [`execute_capture`], for the steps that extract from or check a response.

mod client;
mod connector;
mod cookies;
pub(crate) mod decode;
mod exchange;
mod h1;
mod h2;
mod h2_frame;
mod h2_hpack;
mod h2_huffman;
mod h2_recv;
mod multipart;
mod parallel;
mod readbuf;
mod request;
mod tls;

pub use client::{Client, Connections};
pub use connector::restrict;
pub use exchange::{execute, execute_capture};
pub use parallel::{execute_parallel, Sent};
pub use request::PreparedRequest;

use crate::recorder::FailureKind;
use hyper::header::{HeaderMap, HeaderValue};
use std::error::Error as StdError;
use std::io;

/// A response kept for a step's extractions and checks: its headers, and its body when asked.
#[derive(Debug)]
pub struct Captured {
    /// The response headers.
    pub headers: HeaderMap,
    /// The body (its first [`MAX_CAPTURED_BODY`] bytes), or empty when not asked for.
    pub body: Vec<u8>,
}

/// The most bytes of a response body kept for extraction and checks; the rest is read (and
/// timed) but not kept, so one huge response cannot exhaust the agent's memory.
pub const MAX_CAPTURED_BODY: usize = 4 << 20;

/// What to keep of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nothing: the body is read and counted.
    Nothing,
    /// The headers.
    Headers,
    /// The headers and the body (up to [`MAX_CAPTURED_BODY`]).
    Body,
}

/// A complete response.
pub(crate) struct Answer {
    status: u16,
    /// `Location`, on a redirect status.
    location: Option<HeaderValue>,
    /// Body bytes read.
    bytes: usize,
    /// What was kept of it (`None` for `Keep::Nothing`); boxed to keep the answer small, as it
    /// is moved through every layer.
    captured: Option<Box<Captured>>,
    /// Its `Set-Cookie` headers (an empty `Vec`, which does not allocate, when none).
    set_cookies: Vec<HeaderValue>,
}

/// How sending on a connection went wrong.
pub(crate) enum Attempt {
    /// The connection was closed before the request was written: send it on a new one.
    Stale,
    /// The request failed.
    Failed(FailureKind),
}

/// Classifies any error by walking its source chain: the most specific cause wins.
pub(crate) fn classify(error: &(dyn StdError + 'static)) -> FailureKind {
    let mut current = Some(error);
    let mut kind = FailureKind::Io;
    while let Some(e) = current {
        if e.is::<rustls::Error>() {
            return FailureKind::Tls;
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return FailureKind::Tls;
            }
            return match io.kind() {
                io::ErrorKind::TimedOut => FailureKind::Timeout,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => FailureKind::Reset,
                io::ErrorKind::UnexpectedEof => FailureKind::Closed,
                io::ErrorKind::ConnectionRefused => FailureKind::Connect,
                _ => FailureKind::Io,
            };
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                kind = FailureKind::Timeout;
            } else if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                kind = FailureKind::Closed;
            }
        }
        current = e.source();
    }
    kind
}

#[cfg(test)]
mod test_bytes;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_breadth;
#[cfg(test)]
mod tests_h2;
#[cfg(test)]
mod tests_h2_wire;
