//! One HTTP/1.1 connection, driven by the task that uses it.
//!
//! hyper's connection future usually runs as a task of its own, and each request then crosses a
//! channel to it and its response crosses back: two task wake-ups per request, and a pool to find
//! the connection in. Here the virtual user's own task polls the connection future *together
//! with* the request it is waiting for ([`drive`]), so a request is written, its response parsed
//! and its body read in the polls of one task, with no pool and no cross-task wake-up.
//!
//! A connection found closed before a request was written to it (the server closed an idle
//! keep-alive connection) is reported as [`Attempt::Stale`], so the caller opens a new one and
//! sends the request there: nothing reached the server, so nothing is counted twice.

use super::connector::Stream;
use super::{classify, Answer, Attempt};
use crate::recorder::FailureKind;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;

type Connection = http1::Connection<TokioIo<Stream>, Full<Bytes>>;

/// An HTTP/1.1 connection and the handle to send on it.
pub(super) struct H1 {
    sender: http1::SendRequest<Full<Bytes>>,
    /// `None` once the connection has ended.
    conn: Option<Connection>,
}

/// The connection ended while a future was waiting on it (with its error, if any).
struct Ended(Option<hyper::Error>);

impl H1 {
    pub async fn handshake(stream: Stream) -> Result<Self, hyper::Error> {
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Self {
            sender,
            conn: Some(conn),
        })
    }

    /// Whether another request may be sent on it.
    pub fn is_open(&self) -> bool {
        self.conn.is_some() && !self.sender.is_closed()
    }

    /// Sends `request` and reads the whole response.
    pub async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Result<Answer, Attempt> {
        let Self { sender, conn } = self;
        if conn.is_none() {
            return Err(Attempt::Stale);
        }
        let response = {
            let sent = pin!(sender.try_send_request(request));
            match drive(conn, sent).await {
                Ok(Ok(response)) => response,
                Ok(Err(mut e)) => match e.take_message() {
                    // Not written: the connection was not ready for it. Wait until it is (or
                    // turns out closed), then send it once more.
                    Some(request) => {
                        match drive(conn, pin!(sender.ready())).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) | Err(_) => return Err(Attempt::Stale),
                        }
                        let sent = pin!(sender.send_request(request));
                        match drive(conn, sent).await {
                            Ok(Ok(response)) => response,
                            Ok(Err(e)) => return Err(Attempt::Failed(classify(&e))),
                            Err(ended) => return Err(ended.failure()),
                        }
                    }
                    None => return Err(Attempt::Failed(classify(e.error()))),
                },
                Err(ended) => return Err(ended.failure()),
            }
        };
        let status = response.status();
        let location = location(status, response.headers());
        let mut body = response.into_body();
        let mut bytes = 0usize;
        loop {
            match drive(conn, pin!(body.frame())).await {
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        bytes += data.len();
                    }
                }
                Ok(Some(Err(e))) => return Err(Attempt::Failed(classify(&e))),
                Ok(None) => break,
                Err(ended) => return Err(ended.failure()),
            }
        }
        Ok(Answer {
            status: status.as_u16(),
            location,
            bytes,
        })
    }
}

/// The `Location` of a redirect response.
pub(super) fn location(
    status: StatusCode,
    headers: &hyper::HeaderMap,
) -> Option<hyper::header::HeaderValue> {
    if status.is_redirection() {
        headers.get(hyper::header::LOCATION).cloned()
    } else {
        None
    }
}

impl Ended {
    fn failure(self) -> Attempt {
        Attempt::Failed(match self.0 {
            Some(e) => classify(&e),
            None => FailureKind::Closed,
        })
    }
}

/// Polls `fut` and the connection in turn until `fut` completes; the connection first, so what
/// it reads is ready for `fut` in the same poll. If the connection ends and `fut` cannot
/// complete any more, says so instead of waiting forever.
async fn drive<F: Future + Unpin>(
    conn: &mut Option<Connection>,
    mut fut: F,
) -> Result<F::Output, Ended> {
    let mut ended = None;
    poll_fn(move |cx| {
        if let Some(c) = conn.as_mut() {
            if let Poll::Ready(result) = Pin::new(c).poll(cx) {
                *conn = None;
                ended = Some(result.err());
            }
        }
        if let Poll::Ready(out) = Pin::new(&mut fut).poll(cx) {
            return Poll::Ready(Ok(out));
        }
        if conn.is_none() {
            return Poll::Ready(Err(Ended(ended.take().flatten())));
        }
        Poll::Pending
    })
    .await
}
