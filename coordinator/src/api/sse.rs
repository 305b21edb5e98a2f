//! `GET /runs/{id}/live`: Server-Sent Events of a running run's per-second aggregates.
//!
//! The run actor's [`RunView`](crate::run::RunView) changes as soon as the aggregator emits a
//! second (when every live agent reported it, or its grace passed), so each `second` event leaves
//! within milliseconds of that. The stream ends with an `end` event carrying the verdict.
//!
//! Every `second` event carries `id: <t>`. A client that (re)connects with `Last-Event-ID: N` is
//! first sent every stored second after `N`; one without the header, every stored second. So a
//! page reloaded mid-run, or a viewer arriving late, draws the whole run from the stream alone,
//! and a reconnect loses nothing. Replayed events carry `"replayed": true` (their delay says
//! nothing about the live path). Seconds the view skipped (two emitted between two wake-ups of
//! this task: the view keeps only the latest) are read back from the store the same way.

use super::respond::Body;
use crate::manager::RunWatch;
use crate::store::Store;
use bytes::Bytes;
use herd_protocol::summary::{AgentHealth, LiveMessage, SecondSummary};
use herd_protocol::{RunId, PROTOCOL_VERSION};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
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

/// A `second` event: `id: t`, the live message, when the second ended, whether it is replayed.
fn second_event(
    run: &RunId,
    second: SecondSummary,
    totals: (u64, u64),
    end_ms: Option<u64>,
    replayed: bool,
    agents: Vec<AgentHealth>,
) -> Bytes {
    let t = second.t;
    let message = LiveMessage {
        version: PROTOCOL_VERSION,
        run: run.to_string(),
        second,
        total_requests: totals.0,
        total_errors: totals.1,
        second_end_ms: end_ms,
        replayed,
        agents,
    };
    let data = serde_json::to_string(&message).unwrap_or_default();
    Bytes::from(format!("id: {t}\nevent: second\ndata: {data}\n\n"))
}

/// Sends the stored seconds with `after < t < before` (`None`: no bound), each with the run's
/// totals up to it. Returns the last `t` sent, or `after` when none was; `Err` when the client
/// is gone.
async fn replay(
    store: &dyn Store,
    run: &RunId,
    after: Option<u64>,
    before: Option<u64>,
    tx: &mpsc::Sender<Bytes>,
) -> Result<Option<u64>, ()> {
    let stored = match store.list_seconds(run).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%run, error = %e, "cannot replay the stored seconds");
            return Ok(after);
        }
    };
    let (mut requests, mut errors, mut sent) = (0u64, 0u64, after);
    for s in stored {
        if before.is_some_and(|b| s.t >= b) {
            break;
        }
        requests += s.requests;
        errors += s.errors;
        if after.is_some_and(|a| s.t <= a) {
            continue;
        }
        let end_ms = s.second.saturating_add(1).saturating_mul(1000);
        let bytes = second_event(
            run,
            s.to_summary(),
            (requests, errors),
            Some(end_ms),
            true,
            Vec::new(),
        );
        tx.send(bytes).await.map_err(|_| ())?;
        sent = Some(s.t);
    }
    Ok(sent)
}

/// The SSE response following `watch`, after replaying the stored seconds after `last_event_id`
/// (all of them without one).
pub fn stream(
    run: RunId,
    mut watch: RunWatch,
    store: Arc<dyn Store>,
    last_event_id: Option<u64>,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        if tx
            .send(Bytes::from_static(b": herd live\n\n"))
            .await
            .is_err()
        {
            return;
        }
        let Ok(mut sent) = replay(&*store, &run, last_event_id, None, &tx).await else {
            return;
        };
        loop {
            let view = watch.view.borrow_and_update().clone();
            if let Some(second) = view.last_second {
                if sent.is_none_or(|t| second.t > t) {
                    let t = second.t;
                    let skipped = sent.map_or(t > 0, |s| t > s + 1);
                    if skipped && replay(&*store, &run, sent, Some(t), &tx).await.is_err() {
                        return;
                    }
                    sent = Some(t);
                    let end_ms = view.start_at_ms.map(|start| (start / 1000 + t + 1) * 1000);
                    let totals = (view.requests, view.errors);
                    let agents = match view.live_agents {
                        Some((at, agents)) if at == t => agents,
                        _ => Vec::new(),
                    };
                    if tx
                        .send(second_event(&run, second, totals, end_ms, false, agents))
                        .await
                        .is_err()
                    {
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
