//! One HTTP/1.1 connection, spoken directly: the request's bytes (serialized once, when the
//! load starts) go out in one write, the response head is parsed in place with `httparse`, and the
//! body is counted as it passes through one reused buffer.
//!
//! Why not hyper here: measured against wrk (bench/engine.py, perf), hyper's client costs as much
//! CPU per request as the kernel's own work for that request — a channel and a oneshot to its
//! dispatcher, a channel per response body, a header map per response, the request moved through
//! all of them — which halves the requests an agent gets per CPU-second. A load generator needs
//! much less: one request at a time per connection, no upgrades, no pipelining. HTTP/2 is spoken
//! the same way (module `h2`).
//!
//! What the response may do follows RFC 9112: interim 1xx responses are skipped, a response to
//! HEAD and a 204 or 304 have no body, otherwise `Transfer-Encoding: chunked`, then
//! `Content-Length`, then "until the connection closes" decide where the body ends. A connection
//! is kept for the next request only if the response left it in a known state (complete body,
//! nothing extra received, no `Connection: close`, HTTP/1.1 or an explicit keep-alive).

use super::connector::Stream;
use super::readbuf::ReadBuf;
use super::{Answer, Attempt, Captured, Keep, MAX_CAPTURED_BODY};
use crate::recorder::FailureKind;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use std::future::poll_fn;
use std::io;
use std::task::Poll;
use tokio::io::AsyncWriteExt;

/// Most bytes a response head may take.
const MAX_HEAD: usize = 64 * 1024;
/// Headers a response head is parsed with first: enough for nearly all, and cheap to set up
/// (the array is initialised for every response).
const FEW_HEADERS: usize = 32;
/// Most headers a response head may have.
const MAX_HEADERS: usize = 512;
/// Room kept free in the buffer for each read.
const READ_CHUNK: usize = 16 * 1024;

/// An HTTP/1.1 connection.
pub(super) struct H1 {
    stream: Stream,
    /// What was read and not consumed yet. Reused for every response.
    buf: ReadBuf,
    /// Whether a request may be sent on it.
    open: bool,
    /// Whether it carried a request already (an idle connection may have been closed by the
    /// server meanwhile).
    used: bool,
}

/// Where the body of a response ends.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the head of a response says.
struct Head {
    status: u16,
    /// Bytes the head took in the buffer.
    len: usize,
    framing: Framing,
    keep_alive: bool,
    location: Option<HeaderValue>,
    /// `Set-Cookie` values (no allocation when there are none).
    set_cookies: Vec<HeaderValue>,
    /// The headers, when the step keeps them.
    headers: Option<HeaderMap>,
}

/// Where the bytes of a body go: counted, and kept (up to a limit) when the step needs them.
struct Sink {
    keep: bool,
    kept: Vec<u8>,
    bytes: usize,
}

impl Sink {
    fn take(&mut self, data: &[u8]) {
        self.bytes += data.len();
        if self.keep {
            let room = MAX_CAPTURED_BODY.saturating_sub(self.kept.len());
            self.kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
}

impl H1 {
    pub fn new(stream: Stream) -> Self {
        Self {
            stream,
            buf: ReadBuf::new(READ_CHUNK, READ_CHUNK / 4),
            open: true,
            used: false,
        }
    }

    /// Whether another request may be sent on it.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Sends `wire` (a serialized request) then `body` (the rest of it, written from its own
    /// buffer: a large body is never copied per request) and reads the whole response, keeping
    /// what `keep` asks for. `head_request`: the request was a HEAD, so the response has no body
    /// whatever its headers say.
    pub async fn exchange(
        &mut self,
        wire: &[u8],
        body: &[u8],
        head_request: bool,
        keep: Keep,
    ) -> Result<Answer, Attempt> {
        if self.used && self.peer_spoke_while_idle().await {
            // Closed by the server (or it sent something unasked): nothing was sent on it yet.
            self.open = false;
            return Err(Attempt::Stale);
        }
        self.used = true;
        self.open = false; // Until the response proves otherwise.
        if let Err(e) = self.write(wire, body).await {
            return Err(Attempt::Failed(io_failure(&e)));
        }
        let head = loop {
            let head = self.read_head(head_request, keep != Keep::Nothing).await?;
            self.consume(head.len);
            if (100..200).contains(&head.status) && head.status != 101 {
                // An interim response (100 Continue, 103 Early Hints): the real one follows.
                continue;
            }
            break head;
        };
        if head.status == 101 {
            return Err(Attempt::Failed(FailureKind::Io));
        }
        let mut sink = Sink {
            keep: keep == Keep::Body,
            kept: Vec::new(),
            bytes: 0,
        };
        match head.framing {
            Framing::None => {}
            Framing::Length(n) => self.read_length(n, &mut sink).await?,
            Framing::Chunked => self.read_chunked(&mut sink).await?,
            Framing::UntilClose => self.read_to_close(&mut sink).await?,
        }
        let until_close = matches!(head.framing, Framing::UntilClose);
        // Anything beyond the response is a server speaking out of turn: do not reuse.
        self.open = head.keep_alive && !until_close && self.unconsumed().is_empty();
        self.buf.clear();
        Ok(Answer {
            status: head.status,
            location: head.location,
            set_cookies: head.set_cookies,
            bytes: sink.bytes,
            captured: head.headers.map(|headers| {
                Box::new(Captured {
                    headers,
                    body: sink.kept,
                })
            }),
        })
    }

    async fn write(&mut self, wire: &[u8], body: &[u8]) -> io::Result<()> {
        self.stream.write_all(wire).await?;
        if !body.is_empty() {
            self.stream.write_all(body).await?;
        }
        // A no-op on plain TCP; pushes TLS records out.
        self.stream.flush().await
    }

    /// Whether the idle connection became readable (the server closed it, or sent something).
    /// The socket's readiness is cleared by every short read, so this costs no system call.
    async fn peer_spoke_while_idle(&self) -> bool {
        let tcp = match &self.stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        };
        poll_fn(|cx| Poll::Ready(tcp.poll_read_ready(cx).is_ready())).await
    }

    fn unconsumed(&self) -> &[u8] {
        self.buf.unread()
    }

    fn consume(&mut self, n: usize) {
        self.buf.consume(n);
    }

    /// Reads more into the buffer; `Closed` at end of stream.
    async fn fill(&mut self) -> Result<usize, Attempt> {
        match self.buf.fill(&mut self.stream).await {
            Ok(0) => Err(Attempt::Failed(FailureKind::Closed)),
            Ok(n) => Ok(n),
            Err(e) => Err(Attempt::Failed(io_failure(&e))),
        }
    }

    async fn read_head(&mut self, head_request: bool, keep: bool) -> Result<Head, Attempt> {
        loop {
            if !self.unconsumed().is_empty() {
                if let Some(head) = parse_head(self.unconsumed(), head_request, keep)? {
                    return Ok(head);
                }
                if self.unconsumed().len() > MAX_HEAD {
                    return Err(Attempt::Failed(FailureKind::Io));
                }
            }
            self.fill().await?;
        }
    }

    async fn read_length(&mut self, length: u64, sink: &mut Sink) -> Result<(), Attempt> {
        let mut left = length;
        loop {
            let take = left.min(self.unconsumed().len() as u64) as usize;
            sink.take(&self.unconsumed()[..take]);
            self.consume(take);
            left -= take as u64;
            if left == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    async fn read_to_close(&mut self, sink: &mut Sink) -> Result<(), Attempt> {
        loop {
            let n = self.unconsumed().len();
            sink.take(self.unconsumed());
            self.consume(n);
            match self.fill().await {
                Ok(_) => {}
                Err(Attempt::Failed(FailureKind::Closed)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    async fn read_chunked(&mut self, sink: &mut Sink) -> Result<(), Attempt> {
        let mut chunks = Chunked::default();
        loop {
            match chunks.advance(self.unconsumed(), &mut |data| sink.take(data)) {
                Ok((consumed, done)) => {
                    self.consume(consumed);
                    if done {
                        return Ok(());
                    }
                }
                Err(()) => return Err(Attempt::Failed(FailureKind::Io)),
            }
            self.fill().await?;
        }
    }
}

/// Parses a response head at the start of `buf` (with its headers as a map if `keep`); `None`
/// if it is not complete yet.
fn parse_head(buf: &[u8], head_request: bool, keep: bool) -> Result<Option<Head>, Attempt> {
    let mut few = [httparse::EMPTY_HEADER; FEW_HEADERS];
    let mut many = Vec::new();
    let mut response = httparse::Response::new(&mut few);
    let mut parsed = response.parse(buf);
    if parsed == Err(httparse::Error::TooManyHeaders) {
        many.resize(MAX_HEADERS, httparse::EMPTY_HEADER);
        response = httparse::Response::new(&mut many);
        parsed = response.parse(buf);
    }
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Attempt::Failed(FailureKind::Io)),
    };
    let status = response.code.unwrap_or(0);
    let mut keep_alive = response.version == Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut location = None;
    let mut set_cookies = Vec::new();
    let mut kept = keep.then(|| HeaderMap::with_capacity(response.headers.len()));
    for h in response.headers.iter() {
        if let Some(map) = kept.as_mut() {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(h.name.as_bytes()),
                HeaderValue::from_bytes(h.value),
            ) {
                map.append(name, value);
            }
        }
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(Attempt::Failed(FailureKind::Io))?;
            if length.is_some_and(|l| l != n) {
                return Err(Attempt::Failed(FailureKind::Io));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked is the last coding applied, if at all.
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && response.version == Some(0) {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("location") && (300..400).contains(&status) {
            location = HeaderValue::from_bytes(h.value).ok();
        } else if name.eq_ignore_ascii_case("set-cookie") {
            set_cookies.extend(HeaderValue::from_bytes(h.value).ok());
        }
    }
    let framing = if head_request || status == 204 || status == 304 || status < 200 {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head {
        status,
        len,
        framing,
        keep_alive,
        location,
        set_cookies,
        headers: kept,
    }))
}

fn io_failure(e: &io::Error) -> FailureKind {
    super::classify(e)
}

/// Where a chunked body's decoder is.
#[derive(Default)]
struct Chunked {
    /// Data bytes of the current chunk still to skip (then its CRLF).
    left: u64,
    /// In a chunk's data (`left` bytes, then CRLF).
    in_data: bool,
    /// After the last chunk: in the trailer section.
    trailers: bool,
}

impl Chunked {
    /// Consumes what it can of `buf`, passing the data to `data`: how many bytes, and whether
    /// the body ended.
    fn advance(&mut self, buf: &[u8], data: &mut dyn FnMut(&[u8])) -> Result<(usize, bool), ()> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            if self.in_data {
                if self.left > 0 {
                    let take = self.left.min(rest.len() as u64) as usize;
                    self.left -= take as u64;
                    data(&rest[..take]);
                    at += take;
                    if self.left > 0 {
                        return Ok((at, false));
                    }
                    continue;
                }
                match rest {
                    [b'\r', b'\n', ..] => {
                        at += 2;
                        self.in_data = false;
                    }
                    [] | [b'\r'] => return Ok((at, false)),
                    _ => return Err(()),
                }
                continue;
            }
            // A line: a chunk size (with optional extensions), or a trailer field.
            let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                return if rest.len() > MAX_HEAD {
                    Err(())
                } else {
                    Ok((at, false))
                };
            };
            let line = &rest[..end];
            at += end + 2;
            if self.trailers {
                if line.is_empty() {
                    return Ok((at, true));
                }
                continue;
            }
            let size = line
                .split(|b| *b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or(())?;
            if size == 0 {
                self.trailers = true;
            } else {
                self.left = size;
                self.in_data = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_is_decoded_across_any_split() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nx-trailer: 1\r\n\r\n";
        for split in 0..body.len() {
            let mut c = Chunked::default();
            let mut data = Vec::new();
            let mut buf = body[..split].to_vec();
            let (used, done) = c
                .advance(&buf, &mut |d| data.extend_from_slice(d))
                .expect("valid so far");
            assert!(!done || split == body.len());
            buf.drain(..used);
            buf.extend_from_slice(&body[split..]);
            let (used, done) = c
                .advance(&buf, &mut |d| data.extend_from_slice(d))
                .expect("valid");
            assert!(done, "split at {split}");
            assert_eq!(used, buf.len());
            assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.");
        }
        let mut ignore = |_: &[u8]| {};
        assert!(Chunked::default().advance(b"zz\r\n", &mut ignore).is_err());
        assert!(Chunked::default()
            .advance(b"2\r\nabX\r\n", &mut ignore)
            .is_err());
    }

    fn head(text: &str, head_request: bool) -> Head {
        match parse_head(text.as_bytes(), head_request, true) {
            Ok(Some(h)) => h,
            _ => panic!("not a complete head: {text:?}"),
        }
    }

    #[test]
    fn the_head_says_where_the_body_ends_and_whether_to_keep_the_connection() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello", false);
        assert!(matches!(h.framing, Framing::Length(12)) && h.keep_alive);
        assert_eq!(h.headers.expect("kept")["content-length"], "12");
        assert_eq!(h.len, 39);
        let h = head(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        );
        assert!(matches!(h.framing, Framing::Chunked));
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
            false,
        );
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\n\r\n", false);
        assert!(matches!(h.framing, Framing::UntilClose) && !h.keep_alive);
        let h = head(
            "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert!(h.keep_alive);
        for (text, head_request) in [
            ("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true),
            ("HTTP/1.1 204 No Content\r\n\r\n", false),
            (
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                false,
            ),
        ] {
            assert!(
                matches!(head(text, head_request).framing, Framing::None),
                "{text}"
            );
        }
        let many: String = (0..200).map(|i| format!("x-h{i}: {i}\r\n")).collect();
        let h = head(
            &format!("HTTP/1.1 200 OK\r\n{many}Content-Length: 3\r\n\r\n"),
            false,
        );
        assert!(matches!(h.framing, Framing::Length(3)));
        assert_eq!(h.headers.expect("kept").len(), 201);
        let h = head(
            "HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert_eq!(h.location.expect("location"), "/next");
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false, false),
            Ok(None)
        ));
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "SMTP ready\r\n\r\n",
        ] {
            assert!(parse_head(bad.as_bytes(), false, false).is_err(), "{bad}");
        }
    }
}
