//! `GET /runs/{id}/live`: Server-Sent Events of a running run's per-second aggregates.
//!
//! The run actor's [`RunView`](crate::run::RunView) changes as soon as the aggregator emits a
//! second (when every live agent reported it, or its grace passed), so each `second` event leaves
//! within milliseconds of that. The stream ends with an `end` event carrying the verdict.

use super::Body;
use crate::manager::RunWatch;
use bytes::Bytes;
use herd_protocol::summary::LiveMessage;
use herd_protocol::{RunId, PROTOCOL_VERSION};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// A body fed by a channel: each message is one chunk.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

fn event(name: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The SSE response following `watch`.
pub fn stream(run: RunId, mut watch: RunWatch) -> Response<Body> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut sent: Option<u64> = None;
        if tx
            .send(Bytes::from_static(b": herd live\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let view = watch.view.borrow_and_update().clone();
            if let Some(second) = view.last_second {
                if sent.is_none_or(|t| second.t > t) {
                    let t = second.t;
                    sent = Some(second.t);
                    let message = LiveMessage {
                        version: PROTOCOL_VERSION,
                        run: run.to_string(),
                        second,
                        total_requests: view.requests,
                        total_errors: view.errors,
                    };
                    let mut data = serde_json::to_value(&message).unwrap_or_default();
                    if let Some(start) = view.start_at_ms {
                        data["second_end_ms"] = ((start / 1000 + t + 1) * 1000).into();
                    }
                    if tx.send(event("second", &data)).await.is_err() {
                        return;
                    }
                }
            }
            let done = watch.done.borrow().clone();
            if let Some(summary) = done {
                let data = serde_json::json!({
                    "run": run, "status": summary.status, "run_state": summary.run_state,
                    "requests": summary.requests,
                });
                let _ = tx.send(event("end", &data)).await;
                return;
            }
            tokio::select! {
                changed = watch.view.changed() => {
                    // The actor is gone: only the manager's end notice can follow.
                    if changed.is_err() && watch.done.changed().await.is_err() {
                        return;
                    }
                }
                changed = watch.done.changed() => if changed.is_err() { return; },
            }
        }
    });
    let mut response = Response::new(ChannelBody(rx).boxed());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    response
}
