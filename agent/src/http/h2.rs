//! One HTTP/2 connection, spoken directly: over TLS when the server chose `h2` by ALPN, or over
//! plain TCP by prior knowledge (h2c, `options.http: http2`).
//!
//! Each virtual user owns its connection and sends one request at a time on it, as a k6 VU does
//! (a `parallel` step opens a connection per request, see `parallel`), so streams are used one
//! after the other and the client needs none of a multiplexer's machinery: no stream store, no
//! per-stream buffers or wakers, no task. A request is its header block (HPACK-encoded once per
//! request step, `h2_frame::request_block`) behind a 9-byte frame header, written in one write
//! with whatever control frames were queued meanwhile (the connection preface goes out with the
//! first request); its body follows in DATA frames within the server's windows. The response
//! is read into one buffer and its frames handled in place: the head decoded by `h2_hpack`
//! (which hands over only `:status`, `location` and `set-cookie` unless the step keeps the
//! headers), DATA counted (and kept up to a limit when asked). Between requests nobody reads the
//! connection; what came meanwhile (a GOAWAY, the server closing it, settings, pings) is read
//! before the next request is sent, which goes on a new connection if this one is going away.
//!
//! Why not the `h2` crate (used here until it was replaced): measured with bench/engine.py
//! against h2load, its client reached 0.82× h2load's requests per CPU-second on h2c; perf showed
//! the kernel's loopback work at 55 % and the rest spread thin over the general machinery
//! (`BytesMut` splits, the stream store, HPACK decoding of every field, memcpy), none above 5 %.
//! This client, same bench (`--modes h2c,h2 --rounds 7 --duration 5`, the `h2` crate build as
//! `--compare base`, load average 4-8 from other work): h2c 84,595 requests per CPU-second
//! against h2load's 66,288 (median of per-round ratios 1.25×, rounds 1.09-1.52) and the h2
//! crate's 57,457 (1.46×); over TLS 70,798 against 52,020 (1.43×, rounds 1.20-1.62) and 54,621
//! (1.49×). Again at load average 2-3: h2c 1.19× h2load (rounds 1.14-1.33), TLS 1.60× (rounds
//! 1.42-1.78). perf (h2c): the kernel 82 % of the agent's CPU, herd's own code 14 %.
//!
//! What the server may do follows RFC 9113: settings are applied and acknowledged, pings
//! answered, flow control kept in both directions (receive windows of [`STREAM_WINDOW`] and
//! [`CONNECTION_WINDOW`], replenished when half is used; request bodies sent within the
//! server's windows and frame size), CONTINUATION and padding handled. A request the server did
//! not process — RST_STREAM with REFUSED_STREAM, or a GOAWAY whose last stream is below it — is
//! `Attempt::Stale`, sent again on a new connection (section 8.7); any other reset is `reset`, a
//! GOAWAY with an error under the request is `closed`, and a protocol violation by the server
//! (a malformed frame, a bad header block) is `io`, after a GOAWAY naming the error.

use super::connector::Stream;
use super::h2_frame::{self as frame, Head};
use super::h2_recv::{
    frame_size, Exchange, State, Stop, CONNECTION_WINDOW, DEFAULT_WINDOW, MAX_HEADER_LIST,
    MAX_STREAM_ID, STREAM_WINDOW,
};
use super::readbuf::ReadBuf;
use super::{classify, Answer, Attempt, Captured, Keep};
use crate::recorder::FailureKind;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Room kept free in the read buffer: a whole frame of the largest size herd allows.
const READ_CHUNK: usize = 32 << 10;
/// Body chunks up to this size are copied next to their frame header (one write); larger ones
/// are written from the request's own buffer (shared by all VUs), never copied.
const COPY_LIMIT: usize = 4 << 10;

/// An HTTP/2 connection.
pub(super) struct H2 {
    io: Io,
    state: State,
    /// Set while a request is in flight, and left set if it failed (the connection's state is
    /// then unknown).
    broken: bool,
}

/// The socket and what was read from it.
struct Io {
    stream: Stream,
    /// What was read and not handled yet.
    buf: ReadBuf,
}

impl H2 {
    /// A connection on `stream`; its preface and settings go out with the first request.
    pub fn new(stream: Stream) -> Self {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(frame::PREFACE);
        frame::put_settings(
            &mut out,
            &[
                (frame::SETTINGS_ENABLE_PUSH, 0),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (frame::SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST as u32),
            ],
        );
        frame::put_window_update(&mut out, 0, CONNECTION_WINDOW - DEFAULT_WINDOW);
        Self {
            io: Io {
                stream,
                buf: ReadBuf::new(READ_CHUNK, READ_CHUNK / 2),
            },
            state: State::new(out),
            broken: false,
        }
    }

    /// Whether another request may be sent on it.
    pub fn is_open(&self) -> bool {
        !self.broken && !self.state.going_away && self.state.next_stream <= MAX_STREAM_ID
    }

    /// Sends a request — its header `block` (see `h2_frame::request_block`) and `body` — and
    /// reads the whole response, keeping what `keep` asks for.
    pub async fn exchange(
        &mut self,
        block: &[u8],
        body: &[u8],
        keep: Keep,
    ) -> Result<Answer, Attempt> {
        if let Err(stop) = self.catch_up() {
            tracing::debug!(?stop, "HTTP/2 connection ended while idle");
            self.broken = true;
        }
        if !self.is_open() {
            // Closed or going away: nothing was sent on it.
            return Err(Attempt::Stale);
        }
        let id = self.state.next_stream;
        self.state.next_stream += 2;
        self.broken = true; // Until the response proves otherwise.
        frame::put_headers(
            &mut self.state.out,
            id,
            block,
            body.is_empty(),
            self.state.peer_max_frame,
        );
        let mut ex = Exchange::new(id, keep, self.state.peer_initial_window);
        if let Err(stop) = self.run(&mut ex, body).await {
            return Err(match stop {
                Stop::Refused => Attempt::Stale,
                Stop::Failed(kind) => Attempt::Failed(kind),
                Stop::Protocol(code, reason) => {
                    tracing::debug!(reason, "HTTP/2 protocol error by the server");
                    frame::put_goaway(&mut self.state.out, code);
                    self.write_quietly();
                    Attempt::Failed(FailureKind::Io)
                }
            });
        }
        if ex.sent < body.len() {
            // The server answered before taking the whole body (RFC 9113 section 8.1): the rest
            // is not sent, and the stream is closed so it does not count against the server's
            // limit on open streams.
            frame::put_rst_stream(&mut self.state.out, id, frame::CANCEL);
        }
        // What the response's frames asked for (a settings or ping acknowledgement, window
        // updates) goes out now rather than with the next request; usually there is nothing.
        self.broken =
            !self.state.out.is_empty() && self.io.write(&[&self.state.out]).await.is_err();
        self.state.out.clear();
        Ok(Answer {
            status: ex.status,
            location: ex.location,
            set_cookies: ex.set_cookies,
            bytes: ex.bytes,
            captured: ex.headers.map(|headers| {
                Box::new(Captured {
                    headers,
                    body: ex.kept,
                })
            }),
        })
    }

    /// Writes what is queued and the body as the windows allow, and reads until the response
    /// ended.
    async fn run(&mut self, ex: &mut Exchange, body: &[u8]) -> Result<(), Stop> {
        loop {
            self.send(ex, body).await?;
            self.io.fill().await?;
            while let Some((head, start)) = self.io.frame()? {
                let payload = &self.io.buf.unread()[start..start + head.len];
                self.state.handle(head, payload, ex)?;
                self.io.consume(Head::SIZE + head.len);
                if ex.done {
                    return Ok(());
                }
            }
        }
    }

    /// Queues as much of the body as the windows allow, and writes what is queued.
    async fn send(&mut self, ex: &mut Exchange, body: &[u8]) -> Result<(), Stop> {
        let state = &mut self.state;
        while ex.sent < body.len() {
            let window = ex.send_window.min(state.send_window);
            if window <= 0 {
                break;
            }
            let n = (body.len() - ex.sent)
                .min(state.peer_max_frame)
                .min(window as usize);
            let chunk = &body[ex.sent..ex.sent + n];
            ex.sent += n;
            ex.send_window -= n as i64;
            state.send_window -= n as i64;
            let flags = if ex.sent == body.len() {
                frame::END_STREAM
            } else {
                0
            };
            frame::put_head(&mut state.out, n, frame::DATA, flags, ex.id);
            if n <= COPY_LIMIT {
                state.out.extend_from_slice(chunk);
            } else {
                self.io.write(&[&state.out, chunk]).await?;
                state.out.clear();
            }
        }
        if !state.out.is_empty() {
            self.io.write(&[&state.out]).await?;
            state.out.clear();
        }
        Ok(())
    }

    /// Handles what the server sent while the connection was idle (frames already read, and
    /// what the socket has), without waiting.
    fn catch_up(&mut self) -> Result<(), Stop> {
        let mut idle = Exchange::new(0, Keep::Nothing, 0);
        loop {
            while let Some((head, start)) = self.io.frame()? {
                let payload = &self.io.buf.unread()[start..start + head.len];
                self.state.handle(head, payload, &mut idle)?;
                self.io.consume(Head::SIZE + head.len);
            }
            if !self.io.readable() {
                return Ok(());
            }
            let mut fill = pin!(self.io.fill());
            match quietly(|cx| fill.as_mut().poll(cx)) {
                Poll::Ready(result) => result?,
                Poll::Pending => return Ok(()),
            }
        }
    }

    /// Writes what is queued if the socket takes it at once (a GOAWAY on the way out).
    fn write_quietly(&mut self) {
        let Self { io, state, .. } = self;
        let mut stream = Pin::new(&mut io.stream);
        let _ = quietly(|cx| {
            let _ = stream.as_mut().poll_write(cx, &state.out);
            stream.as_mut().poll_flush(cx)
        });
        state.out.clear();
    }
}

impl Io {
    /// The next complete frame among the unread bytes: its header and where its payload starts
    /// in them.
    fn frame(&self) -> Result<Option<(Head, usize)>, Stop> {
        let rest = self.buf.unread();
        let Some(bytes) = rest.first_chunk::<{ Head::SIZE }>() else {
            return Ok(None);
        };
        let head = Head::parse(bytes);
        // herd never raises SETTINGS_MAX_FRAME_SIZE above its default.
        if head.len > frame::MIN_MAX_FRAME {
            return Err(frame_size("a frame larger than the allowed size"));
        }
        if rest.len() < Head::SIZE + head.len {
            return Ok(None);
        }
        Ok(Some((head, Head::SIZE)))
    }

    fn consume(&mut self, n: usize) {
        self.buf.consume(n);
    }

    /// Reads more into the buffer; `Closed` at end of stream.
    async fn fill(&mut self) -> Result<(), Stop> {
        match self.buf.fill(&mut self.stream).await {
            Ok(0) => Err(Stop::Failed(FailureKind::Closed)),
            Ok(_) => Ok(()),
            Err(e) => Err(Stop::Failed(io_failure(&e))),
        }
    }

    async fn write(&mut self, parts: &[&[u8]]) -> Result<(), Stop> {
        let result = async {
            for part in parts {
                self.stream.write_all(part).await?;
            }
            // A no-op on plain TCP; pushes TLS records out.
            self.stream.flush().await
        };
        result.await.map_err(|e| Stop::Failed(io_failure(&e)))
    }

    /// Whether the socket has something to read (or was closed). Its readiness is cleared by
    /// every short read, so this costs no system call.
    fn readable(&self) -> bool {
        let tcp = match &self.stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        };
        quietly(|cx| tcp.poll_read_ready(cx).is_ready())
    }
}

/// Runs `poll` with a waker that does nothing: for looks at the socket that must not wake this
/// task later (nothing waits on them).
fn quietly<T>(poll: impl FnOnce(&mut Context<'_>) -> T) -> T {
    poll(&mut Context::from_waker(Waker::noop()))
}

fn io_failure(e: &io::Error) -> FailureKind {
    // A write to a connection the server closed.
    if e.kind() == io::ErrorKind::BrokenPipe {
        return FailureKind::Closed;
    }
    classify(e)
}
