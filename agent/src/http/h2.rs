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
//! The figures of this client are in the commit that introduced it and in `bench/engine.py`'s
//! notes.
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
use super::h2_hpack::Decoder;
use super::{classify, Answer, Attempt, Captured, Keep, MAX_CAPTURED_BODY};
use crate::recorder::FailureKind;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Receive windows (hyper's client defaults, kept when it was replaced): large enough that a big
/// response streams without waiting for window updates, which go out when half is used.
const STREAM_WINDOW: u32 = 2 << 20;
const CONNECTION_WINDOW: u32 = 5 << 20;
/// The window every stream and the connection start with (section 6.9.2).
const DEFAULT_WINDOW: u32 = 65_535;
/// The largest response header list accepted (as for an HTTP/1.1 head).
const MAX_HEADER_LIST: usize = 64 << 10;
/// Room kept free in the read buffer: a whole frame of the largest size herd allows.
const READ_CHUNK: usize = 32 << 10;
const MAX_STREAM_ID: u32 = (1 << 31) - 1;
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
    /// Bytes read; those from `pos` on are not handled yet.
    buf: Vec<u8>,
    pos: usize,
}

/// Everything else the connection knows.
struct State {
    /// Frames to write, sent with the next write.
    out: Vec<u8>,
    hpack: Decoder,
    /// A header block being continued by CONTINUATION frames: its stream and flags, and
    /// `block` holds it so far.
    continuing: Option<(u32, u8)>,
    block: Vec<u8>,
    next_stream: u32,
    /// The server's settings.
    peer_max_frame: usize,
    peer_initial_window: i64,
    /// What the server lets this client send on the connection.
    send_window: i64,
    /// What this client lets the server send on the connection, and what it received since it
    /// last said so.
    recv_window: i64,
    recv_unacked: u32,
    /// The server sent a GOAWAY: no new request goes on this connection.
    going_away: bool,
}

/// The request in flight and its response so far (or, with `id` 0, none).
struct Exchange {
    id: u32,
    keep: Keep,
    /// The final response head came.
    head_done: bool,
    /// The response ended (END_STREAM).
    done: bool,
    status: u16,
    location: Option<HeaderValue>,
    set_cookies: Vec<HeaderValue>,
    headers: Option<HeaderMap>,
    bytes: usize,
    kept: Vec<u8>,
    /// Body bytes sent.
    sent: usize,
    send_window: i64,
    recv_window: i64,
    recv_unacked: u32,
}

impl Exchange {
    fn new(id: u32, keep: Keep, send_window: i64) -> Self {
        Self {
            id,
            keep,
            head_done: false,
            done: id == 0,
            status: 0,
            location: None,
            set_cookies: Vec::new(),
            headers: None,
            bytes: 0,
            kept: Vec::new(),
            sent: 0,
            send_window,
            recv_window: i64::from(STREAM_WINDOW),
            recv_unacked: 0,
        }
    }

    /// Whether a frame on `stream` belongs to the response still awaited.
    fn awaits(&self, stream: u32) -> bool {
        stream == self.id && !self.done
    }
}

/// Why an exchange stopped before its response ended.
#[derive(Debug)]
enum Stop {
    /// The server broke the protocol: a connection error, with its code for the GOAWAY.
    Protocol(u32, &'static str),
    /// The server did not process the request: it may be sent again.
    Refused,
    Failed(FailureKind),
}

fn protocol(reason: &'static str) -> Stop {
    Stop::Protocol(frame::PROTOCOL_ERROR, reason)
}

fn frame_size(reason: &'static str) -> Stop {
    Stop::Protocol(frame::FRAME_SIZE_ERROR, reason)
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
                buf: Vec::with_capacity(READ_CHUNK),
                pos: 0,
            },
            state: State {
                out,
                hpack: Decoder::default(),
                continuing: None,
                block: Vec::new(),
                next_stream: 1,
                peer_max_frame: frame::MIN_MAX_FRAME,
                peer_initial_window: i64::from(DEFAULT_WINDOW),
                send_window: i64::from(DEFAULT_WINDOW),
                recv_window: i64::from(CONNECTION_WINDOW),
                recv_unacked: 0,
                going_away: false,
            },
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
                let payload = &self.io.buf[start..start + head.len];
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
                let payload = &self.io.buf[start..start + head.len];
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
    /// The next complete frame in the buffer: its header and where its payload starts.
    fn frame(&self) -> Result<Option<(Head, usize)>, Stop> {
        let rest = &self.buf[self.pos..];
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
        Ok(Some((head, self.pos + Head::SIZE)))
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos >= self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Reads more into the buffer; `Closed` at end of stream.
    async fn fill(&mut self) -> Result<(), Stop> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            // Make room: drop what was handled before growing.
            self.buf.drain(..self.pos);
            self.pos = 0;
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
                self.buf.reserve(READ_CHUNK);
            }
        }
        match self.stream.read_buf(&mut self.buf).await {
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

/// The payload of a DATA or HEADERS frame without its padding.
fn unpadded(head: Head, payload: &[u8]) -> Result<&[u8], Stop> {
    if head.flags & frame::PADDED == 0 {
        return Ok(payload);
    }
    let (&pad, rest) = payload
        .split_first()
        .ok_or(frame_size("a padded frame without its pad length"))?;
    rest.len()
        .checked_sub(usize::from(pad))
        .map(|end| &rest[..end])
        .ok_or(protocol("padding longer than the frame"))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

impl State {
    /// Handles one frame.
    fn handle(&mut self, head: Head, payload: &[u8], ex: &mut Exchange) -> Result<(), Stop> {
        if let Some((stream, flags)) = self.continuing {
            if head.kind != frame::CONTINUATION || head.stream != stream {
                return Err(protocol("a header block not continued"));
            }
            if self.block.len() + payload.len() > MAX_HEADER_LIST {
                return Err(protocol("a header block too large"));
            }
            self.block.extend_from_slice(payload);
            if head.flags & frame::END_HEADERS != 0 {
                self.continuing = None;
                let block = std::mem::take(&mut self.block);
                let result = self.headers(stream, flags, &block, ex);
                self.block = block;
                self.block.clear();
                result?;
            }
            return Ok(());
        }
        match head.kind {
            frame::DATA => self.data(head, payload, ex),
            frame::HEADERS => {
                if head.stream == 0 {
                    return Err(protocol("HEADERS on stream 0"));
                }
                let mut block = unpadded(head, payload)?;
                if head.flags & frame::PRIORITY_FLAG != 0 {
                    block = block
                        .get(5..)
                        .ok_or(frame_size("HEADERS too short for its priority"))?;
                }
                if head.flags & frame::END_HEADERS == 0 {
                    self.continuing = Some((head.stream, head.flags));
                    self.block.clear();
                    self.block.extend_from_slice(block);
                    return Ok(());
                }
                self.headers(head.stream, head.flags, block, ex)
            }
            frame::PRIORITY if head.len != 5 => Err(frame_size("PRIORITY not 5 bytes")),
            frame::RST_STREAM => {
                if head.len != 4 {
                    return Err(frame_size("RST_STREAM not 4 bytes"));
                }
                if head.stream == 0 {
                    return Err(protocol("RST_STREAM on stream 0"));
                }
                if !ex.awaits(head.stream) {
                    return Ok(());
                }
                Err(if u32_at(payload, 0) == frame::REFUSED_STREAM {
                    Stop::Refused
                } else {
                    Stop::Failed(FailureKind::Reset)
                })
            }
            frame::SETTINGS => self.settings(head, payload, ex),
            frame::PUSH_PROMISE => Err(protocol("PUSH_PROMISE, push being disabled")),
            frame::PING => {
                if head.len != 8 {
                    return Err(frame_size("PING not 8 bytes"));
                }
                if head.stream != 0 {
                    return Err(protocol("PING on a stream"));
                }
                if head.flags & frame::ACK == 0 {
                    frame::put_head(&mut self.out, 8, frame::PING, frame::ACK, 0);
                    self.out.extend_from_slice(payload);
                }
                Ok(())
            }
            frame::GOAWAY => {
                if head.len < 8 {
                    return Err(frame_size("GOAWAY under 8 bytes"));
                }
                if head.stream != 0 {
                    return Err(protocol("GOAWAY on a stream"));
                }
                self.going_away = true;
                let last = u32_at(payload, 0) & MAX_STREAM_ID;
                if !ex.awaits(ex.id) {
                    Ok(())
                } else if ex.id > last {
                    // Left out: the server did not process it.
                    Err(Stop::Refused)
                } else if u32_at(payload, 4) != frame::NO_ERROR {
                    Err(Stop::Failed(FailureKind::Closed))
                } else {
                    // Graceful: the response still comes.
                    Ok(())
                }
            }
            frame::WINDOW_UPDATE => self.window_update(head, payload, ex),
            frame::CONTINUATION => Err(protocol("CONTINUATION without a header block")),
            // PRIORITY, and frame types this client does not know, are ignored (section 5.5).
            _ => Ok(()),
        }
    }

    fn data(&mut self, head: Head, payload: &[u8], ex: &mut Exchange) -> Result<(), Stop> {
        if head.stream == 0 {
            return Err(protocol("DATA on stream 0"));
        }
        let data = unpadded(head, payload)?;
        // Flow control counts the whole payload, padding included.
        let len = head.len as u32;
        self.recv_window -= i64::from(len);
        if self.recv_window < 0 {
            return Err(Stop::Protocol(
                frame::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            ));
        }
        self.recv_unacked += len;
        if self.recv_unacked >= CONNECTION_WINDOW / 2 {
            frame::put_window_update(&mut self.out, 0, self.recv_unacked);
            self.recv_window += i64::from(self.recv_unacked);
            self.recv_unacked = 0;
        }
        if !ex.awaits(head.stream) {
            // A stream this client is done with: it counted for the connection only.
            return Ok(());
        }
        if !ex.head_done {
            return Err(protocol("DATA before the response head"));
        }
        ex.recv_window -= i64::from(len);
        if ex.recv_window < 0 {
            return Err(Stop::Protocol(
                frame::FLOW_CONTROL_ERROR,
                "DATA beyond the stream window",
            ));
        }
        ex.bytes += data.len();
        if ex.keep == Keep::Body {
            let room = MAX_CAPTURED_BODY.saturating_sub(ex.kept.len());
            ex.kept.extend_from_slice(&data[..data.len().min(room)]);
        }
        if head.flags & frame::END_STREAM != 0 {
            ex.done = true;
            return Ok(());
        }
        ex.recv_unacked += len;
        if ex.recv_unacked >= STREAM_WINDOW / 2 {
            frame::put_window_update(&mut self.out, ex.id, ex.recv_unacked);
            ex.recv_window += i64::from(ex.recv_unacked);
            ex.recv_unacked = 0;
        }
        Ok(())
    }

    /// A whole header block on `stream`: the response's head (or an interim one, or its
    /// trailers), or one for a stream this client is done with, decoded only to keep the HPACK
    /// table in step with the server's.
    fn headers(
        &mut self,
        stream: u32,
        flags: u8,
        block: &[u8],
        ex: &mut Exchange,
    ) -> Result<(), Stop> {
        let compression = |_| Stop::Protocol(frame::COMPRESSION_ERROR, "a malformed header block");
        if !ex.awaits(stream) || ex.head_done {
            self.hpack
                .decode(block, |_| false, |_, _| {})
                .map_err(compression)?;
            if ex.awaits(stream) {
                // Trailers: they end the response.
                if flags & frame::END_STREAM == 0 {
                    return Err(protocol("trailers without END_STREAM"));
                }
                ex.done = true;
            }
            return Ok(());
        }
        let keep_all = ex.keep != Keep::Nothing;
        let mut status = None;
        let mut size = 0usize;
        let mut location = None;
        let mut set_cookies = Vec::new();
        let mut headers = keep_all.then(HeaderMap::new);
        self.hpack
            .decode(
                block,
                |name| keep_all || matches!(name, b":status" | b"location" | b"set-cookie"),
                |name, value| {
                    size += name.len() + value.len() + 32;
                    if name == b":status" {
                        status = std::str::from_utf8(value)
                            .ok()
                            .filter(|s| s.len() == 3)
                            .and_then(|s| s.parse::<u16>().ok());
                        return;
                    }
                    if name.starts_with(b":") {
                        return;
                    }
                    if name == b"location" {
                        location = HeaderValue::from_bytes(value).ok();
                    } else if name == b"set-cookie" {
                        set_cookies.extend(HeaderValue::from_bytes(value).ok());
                    }
                    if let Some(map) = headers.as_mut() {
                        if let (Ok(name), Ok(value)) =
                            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
                        {
                            map.append(name, value);
                        }
                    }
                },
            )
            .map_err(compression)?;
        if size > MAX_HEADER_LIST {
            return Err(protocol("a response header list too large"));
        }
        let status = status
            .filter(|s| *s >= 100)
            .ok_or(protocol("a response without a valid :status"))?;
        if status < 200 {
            // An interim response (100 Continue, 103 Early Hints): the real one follows.
            if status == 101 || flags & frame::END_STREAM != 0 {
                return Err(protocol("an interim response that ends the stream"));
            }
            return Ok(());
        }
        ex.head_done = true;
        ex.status = status;
        ex.location = location.filter(|_| (300..400).contains(&status));
        ex.set_cookies = set_cookies;
        ex.headers = headers;
        ex.done = flags & frame::END_STREAM != 0;
        Ok(())
    }

    fn settings(&mut self, head: Head, payload: &[u8], ex: &mut Exchange) -> Result<(), Stop> {
        if head.stream != 0 {
            return Err(protocol("SETTINGS on a stream"));
        }
        if head.flags & frame::ACK != 0 {
            return if head.len == 0 {
                Ok(())
            } else {
                Err(frame_size("a SETTINGS ACK with a payload"))
            };
        }
        if head.len % 6 != 0 {
            return Err(frame_size("SETTINGS not a multiple of 6 bytes"));
        }
        for setting in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            let value = u32_at(setting, 2);
            match id {
                frame::SETTINGS_ENABLE_PUSH if value > 1 => {
                    return Err(protocol("SETTINGS_ENABLE_PUSH not 0 or 1"));
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > frame::MAX_WINDOW {
                        return Err(Stop::Protocol(
                            frame::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE too large",
                        ));
                    }
                    // Applies to open streams too (section 6.9.2): the one in flight.
                    ex.send_window += value - self.peer_initial_window;
                    self.peer_initial_window = value;
                    if ex.send_window > frame::MAX_WINDOW {
                        return Err(Stop::Protocol(
                            frame::FLOW_CONTROL_ERROR,
                            "a stream window too large",
                        ));
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(frame::MIN_MAX_FRAME as u32..=(1 << 24) - 1).contains(&value) {
                        return Err(protocol("SETTINGS_MAX_FRAME_SIZE out of range"));
                    }
                    self.peer_max_frame = value as usize;
                }
                // The header table size (this client's requests use no table), the limit on
                // concurrent streams (it opens one at a time), the header list size (advice).
                _ => {}
            }
        }
        frame::put_head(&mut self.out, 0, frame::SETTINGS, frame::ACK, 0);
        Ok(())
    }

    fn window_update(&mut self, head: Head, payload: &[u8], ex: &mut Exchange) -> Result<(), Stop> {
        if head.len != 4 {
            return Err(frame_size("WINDOW_UPDATE not 4 bytes"));
        }
        let increment = i64::from(u32_at(payload, 0) & MAX_STREAM_ID);
        let window = if head.stream == 0 {
            &mut self.send_window
        } else if ex.awaits(head.stream) {
            &mut ex.send_window
        } else {
            return Ok(());
        };
        if increment == 0 {
            return Err(protocol("a WINDOW_UPDATE of 0"));
        }
        *window += increment;
        if *window > frame::MAX_WINDOW {
            return Err(Stop::Protocol(
                frame::FLOW_CONTROL_ERROR,
                "a window beyond 2^31-1",
            ));
        }
        Ok(())
    }
}
