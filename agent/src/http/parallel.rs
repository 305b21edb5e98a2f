//! The requests of a `parallel` step, sent at once as a browser fetches a page's resources: each
//! on its own lane of the VU's connections (the first on the VU's usual one, the others on lanes
//! opened the first time a parallel step needs them and kept, with their connections, for the
//! next iterations), all sharing the VU's cookie jar, each with its own timeout and redirects.
//!
//! Everything runs in the VU's task (one thread): the requests are futures polled together, not
//! tasks, so no connection or jar crosses a thread and nothing is spawned per request.

use super::client::Lane;
use super::exchange::exchange;
use super::{Captured, Connections, Keep, PreparedRequest};
use crate::recorder::Outcome;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// How one request of a parallel step ended: its last response (or failure) and what was kept
/// of it.
#[derive(Debug)]
pub struct Sent {
    /// The outcome of its last request (after the redirects it followed).
    pub outcome: Outcome,
    /// What was kept of the last response, when asked.
    pub captured: Option<Captured>,
}

type Exchange<'a> = Pin<Box<dyn Future<Output = Sent> + 'a>>;

/// Sends every request of `requests` (with what to keep of its response) at once and waits for
/// all. `on_outcome(i, outcome, last)` hears every request as it completes, in the order they
/// complete: a followed redirect of request `i` with `last == false`, its final outcome with
/// `last == true` — so each is recorded at its own time. Returns the final outcomes in the
/// order of `requests`.
pub async fn execute_parallel(
    conns: &mut Connections,
    requests: &[(&PreparedRequest, Keep)],
    on_outcome: &dyn Fn(usize, Outcome, bool),
) -> Vec<Sent> {
    let Connections {
        settings,
        lane,
        jar,
        extra,
    } = conns;
    while extra.len() + 1 < requests.len() {
        extra.push(Lane::default());
    }
    let shared_jar = RefCell::new(std::mem::take(jar));
    let settings = &**settings;
    let lanes = std::iter::once(lane).chain(extra.iter_mut());
    let exchanges: Vec<Exchange<'_>> = requests
        .iter()
        .zip(lanes)
        .enumerate()
        .map(|(i, ((request, keep), lane))| {
            let jar = &shared_jar;
            let exchange: Exchange<'_> = Box::pin(async move {
                let mut redirect = |outcome| on_outcome(i, outcome, false);
                let (outcome, captured) =
                    exchange(settings, lane, jar, request, &mut redirect, *keep).await;
                on_outcome(i, outcome, true);
                Sent { outcome, captured }
            });
            exchange
        })
        .collect();
    let sent = join_all(exchanges).await;
    *jar = shared_jar.into_inner();
    sent
}

/// Polls every future until all are ready; their outputs in order.
async fn join_all<T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
