//! One HTTP/2 connection: over TLS when the server chose `h2` by ALPN, or over plain TCP by prior
//! knowledge (h2c, `options.http: http2`).
//!
//! Each virtual user owns its connection and sends one request at a time on it, as a k6 VU does,
//! so streams are used one after the other. HTTP/2 multiplexes frames of several streams, pings
//! and window updates on one socket, which hyper handles in a connection task of its own; the
//! user only holds the handle to open streams.

use super::connector::Stream;
use super::{classify, Answer, Attempt, Captured, Keep, MAX_CAPTURED_BODY};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The handle to an HTTP/2 connection whose task runs on its own.
pub(super) struct H2 {
    sender: http2::SendRequest<Full<Bytes>>,
}

impl H2 {
    pub async fn handshake(stream: Stream) -> Result<Self, hyper::Error> {
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP/2 connection ended");
            }
        });
        Ok(Self { sender })
    }

    /// Whether another request may be sent on it.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `request` and reads the whole response.
    pub async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        keep: Keep,
    ) -> Result<Answer, Attempt> {
        if self.sender.ready().await.is_err() {
            return Err(Attempt::Stale);
        }
        let response = match self.sender.try_send_request(request).await {
            Ok(response) => response,
            Err(e) if e.message().is_some() => return Err(Attempt::Stale),
            Err(e) => return Err(Attempt::Failed(classify(e.error()))),
        };
        let status = response.status();
        let location = if status.is_redirection() {
            response.headers().get(hyper::header::LOCATION).cloned()
        } else {
            None
        };
        let set_cookies = response
            .headers()
            .get_all(hyper::header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        let (parts, mut body) = response.into_parts();
        let mut bytes = 0usize;
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Attempt::Failed(classify(&e)))?;
            if let Some(data) = frame.data_ref() {
                bytes += data.len();
                if keep == Keep::Body {
                    let room = MAX_CAPTURED_BODY.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
        Ok(Answer {
            status: status.as_u16(),
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
