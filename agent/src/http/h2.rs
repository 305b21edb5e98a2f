//! One HTTP/2 connection: over TLS when the server chose `h2` by ALPN, or over plain TCP by prior
//! knowledge (h2c, `options.http: http2`).
//!
//! Each virtual user owns its connection and sends one request at a time on it, as a k6 VU does,
//! so streams are used one after the other. The connection is spoken with the `h2` crate and
//! driven by the VU's own task: while it waits for a response, the VU polls the connection (which
//! reads and writes the socket, answers pings, updates windows) and then its stream. Between
//! requests nobody polls it; whatever came meanwhile (a GOAWAY, the server closing) is read before
//! the next request is sent, which goes on a new connection if this one is going away or gone.
//!
//! Why not hyper's client here: hyper ran the connection in a task of its own, so each request
//! crossed tasks (the request handed to the connection task through a dispatch channel, the
//! response and the body's frames handed back through a oneshot and a body channel); a VU
//! waiting on its own connection needs none of that. Streams are polled with a no-op waker and
//! the connection only when they are not ready (see `quietly`), so a request does not wake its
//! own task either. Measured (bench/engine.py --modes h2c,h2 --rounds 7 --duration 5, paired
//! rounds with the hyper build as `--compare`, machine at load average 5-7): h2c 50,142 vs
//! 37,555 requests per CPU-second (h2load 56,871: 0.82×), h2 over TLS 58,454 vs 42,388 (h2load
//! 52,624: 1.10×); medians of per-round ratios to hyper +18 % and +24 %. What is
//! left (perf): the kernel's loopback work is 55 % of the agent's CPU, the rest spread thin over
//! h2's framing (HPACK decoding, `BytesMut` splits, the stream store, memcpy), none above 5 %.

use super::connector::Stream;
use super::{classify, Answer, Attempt, Captured, Keep, MAX_CAPTURED_BODY};
use crate::recorder::FailureKind;
use bytes::Bytes;
use h2::client::{self, Connection, SendRequest};
use h2::Reason;
use hyper::header::{LOCATION, SET_COOKIE};
use hyper::Request;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Receive windows (hyper's client defaults, kept when it was replaced): large enough that a big
/// response streams without waiting for window updates.
const STREAM_WINDOW: u32 = 2 << 20;
const CONNECTION_WINDOW: u32 = 5 << 20;
/// The largest response header list accepted (hyper's default too).
const MAX_HEADER_LIST: u32 = 16 << 10;

/// An HTTP/2 connection, polled by whoever sends on it.
pub(super) struct H2 {
    sender: SendRequest<Bytes>,
    connection: Connection<Stream, Bytes>,
    /// Set once the connection has ended (closed by either side, or failed), with how it failed.
    ended: Option<FailureKind>,
}

impl H2 {
    /// Sends the connection preface and the agent's settings.
    pub async fn handshake(stream: Stream) -> Result<Self, FailureKind> {
        let (sender, connection) = client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_header_list_size(MAX_HEADER_LIST)
            .enable_push(false)
            .handshake(stream)
            .await
            .map_err(|e| failure(&e))?;
        Ok(Self {
            sender,
            connection,
            ended: None,
        })
    }

    /// Whether another request may be sent on it.
    pub fn is_open(&self) -> bool {
        self.ended.is_none()
    }

    /// Polls the connection once: reads what the server sent, writes what is queued.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if self.ended.is_some() {
            return;
        }
        if let Poll::Ready(result) = Pin::new(&mut self.connection).poll(cx) {
            self.ended = Some(match result {
                Ok(()) => FailureKind::Closed,
                Err(e) => {
                    tracing::debug!(error = %e, "HTTP/2 connection ended");
                    failure(&e)
                }
            });
        }
    }

    /// Runs `poll` (on a stream of this connection) to its end, driving the connection meanwhile.
    async fn until<T, E: Into<Attempt>>(
        &mut self,
        mut poll: impl FnMut(&mut Context<'_>) -> Poll<Result<T, E>>,
    ) -> Result<T, Attempt> {
        poll_fn(|cx| {
            // The stream first: what was read already needs no trip through the connection.
            if let Poll::Ready(result) = quietly(&mut poll) {
                return Poll::Ready(result.map_err(Into::into));
            }
            self.drive(cx);
            match quietly(&mut poll) {
                Poll::Ready(result) => Poll::Ready(result.map_err(Into::into)),
                // The stream learns of the connection's end when it ends; this is a safety net
                // (nothing would wake this task again).
                Poll::Pending => match self.ended {
                    Some(kind) => Poll::Ready(Err(Attempt::Failed(kind))),
                    None => Poll::Pending,
                },
            }
        })
        .await
    }

    /// Whether a request may be sent now, once what came while the connection was idle (a
    /// GOAWAY, the server closing it, settings) is read; waits only while the server's limit on
    /// concurrent streams is reached.
    async fn ready(&mut self) -> bool {
        let check = |this: &mut Self, cx: &mut Context<'_>| {
            this.drive(cx);
            if this.ended.is_some() {
                return Poll::Ready(false);
            }
            this.sender.poll_ready(cx).map(|r| r.is_ok())
        };
        // Quietly: the connection then remembers no waker, so the request about to be queued
        // does not wake this very task (one needless poll per request); the connection is
        // polled with the task's own waker right after, when the request is written.
        match quietly(|cx| check(self, cx)) {
            Poll::Ready(ready) => ready,
            Poll::Pending => poll_fn(|cx| check(self, cx)).await,
        }
    }

    /// Sends `request` with `body` and reads the whole response, keeping what `keep` asks for.
    pub async fn exchange(
        &mut self,
        request: Request<()>,
        body: Bytes,
        keep: Keep,
    ) -> Result<Answer, Attempt> {
        if !self.ready().await {
            return Err(Attempt::Stale);
        }
        let (response, mut sending) = match self.sender.send_request(request, body.is_empty()) {
            Ok(sent) => sent,
            // The connection is going away or gone: nothing was sent.
            Err(_) => return Err(Attempt::Stale),
        };
        if !body.is_empty() {
            // Buffered, and written as the server's window allows while the response is awaited.
            if let Err(e) = sending.send_data(body, true) {
                return Err(Attempt::Failed(failure(&e)));
            }
        }
        let mut response = response;
        let response = self
            .until(|cx| Pin::new(&mut response).poll(cx).map_err(Refusal))
            .await?;
        // Kept until the response came: dropping it earlier could cancel the stream.
        drop(sending);
        let (parts, mut body) = response.into_parts();
        let location = if parts.status.is_redirection() {
            parts.headers.get(LOCATION).cloned()
        } else {
            None
        };
        let set_cookies = parts.headers.get_all(SET_COOKIE).iter().cloned().collect();
        let mut bytes = 0usize;
        let mut kept = Vec::new();
        while !body.is_end_stream() {
            let Some(data) = self
                .until(|cx| body.poll_data(cx).map(Option::transpose))
                .await?
            else {
                break;
            };
            bytes += data.len();
            if keep == Keep::Body {
                let room = MAX_CAPTURED_BODY.saturating_sub(kept.len());
                kept.extend_from_slice(&data[..data.len().min(room)]);
            }
            // Lets the server send more (a window update, sent when enough was released).
            let _ = body.flow_control().release_capacity(data.len());
        }
        Ok(Answer {
            status: parts.status.as_u16(),
            location,
            set_cookies,
            bytes,
            captured: (keep != Keep::Nothing).then(|| {
                Box::new(Captured {
                    headers: parts.headers,
                    body: kept,
                })
            }),
        })
    }
}

/// A failure before the response came, which may be a refusal.
struct Refusal(h2::Error);

impl From<Refusal> for Attempt {
    /// The server refused the stream without processing it — RST_STREAM with REFUSED_STREAM, or
    /// a graceful GOAWAY that left it out (streams it processes still end normally) — so it may
    /// be sent again on a new connection (RFC 9113 §8.7); anything else failed the request.
    fn from(Refusal(e): Refusal) -> Self {
        let refused = e.is_remote()
            && match e.reason() {
                Some(Reason::REFUSED_STREAM) => e.is_reset(),
                Some(Reason::NO_ERROR) => e.is_go_away(),
                _ => false,
            };
        if refused {
            Attempt::Stale
        } else {
            Attempt::Failed(failure(&e))
        }
    }
}

impl From<h2::Error> for Attempt {
    fn from(e: h2::Error) -> Self {
        Attempt::Failed(failure(&e))
    }
}

/// Runs `poll` with a waker that does nothing. Safe for this connection's streams: only polling
/// the connection (always with the task's own waker, in the same poll) makes them ready, and
/// h2 would otherwise wake this task for what it is about to look at anyway.
fn quietly<T>(poll: impl FnOnce(&mut Context<'_>) -> T) -> T {
    poll(&mut Context::from_waker(Waker::noop()))
}

/// The error kind of an HTTP/2 failure.
fn failure(e: &h2::Error) -> FailureKind {
    if let Some(io) = e.get_io() {
        // h2 ends the streams of a connection the server closed with a broken pipe.
        if io.kind() == io::ErrorKind::BrokenPipe {
            return FailureKind::Closed;
        }
        return classify(io);
    }
    if e.is_remote() && e.is_reset() {
        // RST_STREAM: the server gave up on this request.
        return FailureKind::Reset;
    }
    if e.is_remote() && e.is_go_away() {
        // GOAWAY with an error: the server closed the connection under the request.
        return FailureKind::Closed;
    }
    FailureKind::Io
}
