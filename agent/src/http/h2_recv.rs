//! What the server's frames do to an HTTP/2 connection (`h2`) and to the request in flight:
//! settings applied and acknowledged, pings answered, windows kept in both directions, a
//! response head decoded (or an interim one skipped, or trailers), DATA counted, resets and
//! GOAWAYs turned into how the request ends. Frames are handled in place, from the read buffer,
//! and what they ask to send back is queued in `State::out`.

use super::h2_frame::{self as frame, Head};
use super::h2_hpack::Decoder;
use super::{Keep, MAX_CAPTURED_BODY};
use crate::recorder::FailureKind;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

/// Receive windows (hyper's client defaults, kept when it was replaced): large enough that a big
/// response streams without waiting for window updates, which go out when half is used.
pub(super) const STREAM_WINDOW: u32 = 2 << 20;
pub(super) const CONNECTION_WINDOW: u32 = 5 << 20;
/// The window every stream and the connection start with (section 6.9.2).
pub(super) const DEFAULT_WINDOW: u32 = 65_535;
/// The largest response header list accepted (as for an HTTP/1.1 head).
pub(super) const MAX_HEADER_LIST: usize = 64 << 10;
pub(super) const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// What an HTTP/2 connection knows besides its socket.
pub(super) struct State {
    /// Frames to write, sent with the next write.
    pub(super) out: Vec<u8>,
    pub(super) hpack: Decoder,
    /// A header block being continued by CONTINUATION frames: its stream and flags, and
    /// `block` holds it so far.
    pub(super) continuing: Option<(u32, u8)>,
    pub(super) block: Vec<u8>,
    pub(super) next_stream: u32,
    /// The server's settings.
    pub(super) peer_max_frame: usize,
    pub(super) peer_initial_window: i64,
    /// What the server lets this client send on the connection.
    pub(super) send_window: i64,
    /// What this client lets the server send on the connection, and what it received since it
    /// last said so.
    pub(super) recv_window: i64,
    pub(super) recv_unacked: u32,
    /// The server sent a GOAWAY: no new request goes on this connection.
    pub(super) going_away: bool,
}

impl State {
    /// A new connection's state; `out` holds the preface and settings to send.
    pub(super) fn new(out: Vec<u8>) -> Self {
        Self {
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
        }
    }
}

/// The request in flight and its response so far (or, with `id` 0, none).
pub(super) struct Exchange {
    pub(super) id: u32,
    pub(super) keep: Keep,
    /// The final response head came.
    pub(super) head_done: bool,
    /// The response ended (END_STREAM).
    pub(super) done: bool,
    pub(super) status: u16,
    pub(super) location: Option<HeaderValue>,
    pub(super) set_cookies: Vec<HeaderValue>,
    pub(super) headers: Option<HeaderMap>,
    pub(super) bytes: usize,
    pub(super) kept: Vec<u8>,
    /// Body bytes sent.
    pub(super) sent: usize,
    pub(super) send_window: i64,
    pub(super) recv_window: i64,
    pub(super) recv_unacked: u32,
}

impl Exchange {
    pub(super) fn new(id: u32, keep: Keep, send_window: i64) -> Self {
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
pub(super) enum Stop {
    /// The server broke the protocol: a connection error, with its code for the GOAWAY.
    Protocol(u32, &'static str),
    /// The server did not process the request: it may be sent again.
    Refused,
    Failed(FailureKind),
}

fn protocol(reason: &'static str) -> Stop {
    Stop::Protocol(frame::PROTOCOL_ERROR, reason)
}

pub(super) fn frame_size(reason: &'static str) -> Stop {
    Stop::Protocol(frame::FRAME_SIZE_ERROR, reason)
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
    pub(super) fn handle(
        &mut self,
        head: Head,
        payload: &[u8],
        ex: &mut Exchange,
    ) -> Result<(), Stop> {
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
        if !head.len.is_multiple_of(6) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Frames of every type, with random flags and payloads, on the connection or a stream.
    fn frames() -> impl Strategy<Value = Vec<(u8, u8, u32, Vec<u8>)>> {
        let frame = (
            0u8..11,
            any::<u8>(),
            0u32..4,
            prop::collection::vec(any::<u8>(), 0..48),
        );
        prop::collection::vec(frame, 1..8)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 10_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Whatever a server sends, handling it never panics, and a response counts as ended
        /// only with a final status.
        #[test]
        fn random_frames_never_panic_nor_end_a_response_without_a_status(list in frames()) {
            let mut state = State::new(Vec::new());
            let mut ex = Exchange::new(1, Keep::Body, i64::from(DEFAULT_WINDOW));
            for (kind, flags, stream, payload) in list {
                let head = Head { len: payload.len(), kind, flags, stream };
                if state.handle(head, &payload, &mut ex).is_err() || ex.done {
                    break;
                }
            }
            prop_assert!(!ex.done || (200..1000).contains(&ex.status));
            prop_assert!(ex.kept.len() <= ex.bytes);
        }

        /// Random header blocks: decoded or refused, never a panic, on one decoder in a row
        /// (so the dynamic table carries from one block to the next).
        #[test]
        fn random_header_blocks_never_panic(
            blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..4)
        ) {
            let mut decoder = Decoder::default();
            for block in blocks {
                let _ = decoder.decode(&block, |_| true, |_, _| {});
            }
        }
    }
}
