//! The buffer both the HTTP/1.1 (`h1`) and HTTP/2 (`h2`) connections read a
//! response into and parse in place: one per connection, reused for every response.
//!
//! Bytes before `pos` are handled; `fill` first drops them (one `drain`) when less
//! than `min_free` is left, and grows the buffer by a chunk only if that did not make room, so a
//! keep-alive connection holds no more than its largest unhandled tail plus a chunk.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A connection's read buffer.
pub(super) struct ReadBuf {
    buf: Vec<u8>,
    pos: usize,
    /// What the buffer grows by.
    chunk: usize,
    /// Room a read needs: below it, handled bytes are dropped (and then the buffer grown).
    min_free: usize,
}

impl ReadBuf {
    /// An empty buffer of `chunk` bytes that keeps at least `min_free` free for each read.
    pub(super) fn new(chunk: usize, min_free: usize) -> Self {
        Self {
            buf: Vec::with_capacity(chunk),
            pos: 0,
            chunk,
            min_free,
        }
    }

    /// What was read and not handled yet.
    pub(super) fn unread(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The first `n` unread bytes are handled.
    pub(super) fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos >= self.buf.len() {
            self.clear();
        }
    }

    /// Forgets everything read.
    pub(super) fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }

    /// Reads once from `stream` into the buffer: the bytes read, 0 at end of stream.
    pub(super) async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < self.min_free {
            // Make room: drop what was handled before growing.
            self.buf.drain(..self.pos);
            self.pos = 0;
            if self.buf.capacity() - self.buf.len() < self.min_free {
                self.buf.reserve(self.chunk);
            }
        }
        stream.read_buf(&mut self.buf).await
    }
}
