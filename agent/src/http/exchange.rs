//! One request step on the wire: its cookies added from the VU's jar, sent on a lane of the VU's
//! connections within its timeout, its redirects followed (each hop a request of its own), the
//! cookies its responses set stored. The same loop serves a VU's requests one after the other
//! ([`execute`]) and the requests of a `parallel` step at once (`parallel`), which share the jar.

use super::client::{Lane, Settings};
use super::cookies::Jar;
use super::{Captured, Connections, Keep, PreparedRequest};
use crate::recorder::Outcome;
use herd_protocol::clock::micros;
use tokio::time::Instant;

/// Sends `request` on `conns`, follows redirects up to the plan's limit, and says how the last
/// response went. Each redirect response that was followed is a request of its own: it is
/// passed to `on_redirect` as it completes (so a count is never lost even if the VU is aborted
/// later), and the return value is the last request's outcome. Each request's latency runs from
/// just before it is sent (connecting, if it has to, included) to the end of its body, within
/// the plan's `timeout`.
pub async fn execute(
    conns: &mut Connections,
    request: &PreparedRequest,
    on_redirect: &mut dyn FnMut(Outcome),
) -> Outcome {
    let Connections {
        settings,
        lane,
        jar,
        ..
    } = conns;
    exchange(settings, lane, jar, request, on_redirect, Keep::Nothing)
        .await
        .0
}

/// Like [`execute`], but keeps the last response's headers, and its body if `keep_body`: only
/// steps that extract or check a response use it, so plain steps stay allocation-free.
pub async fn execute_capture(
    conns: &mut Connections,
    request: &PreparedRequest,
    on_redirect: &mut dyn FnMut(Outcome),
    keep_body: bool,
) -> (Outcome, Option<Captured>) {
    let Connections {
        settings,
        lane,
        jar,
        ..
    } = conns;
    exchange(
        settings,
        lane,
        jar,
        request,
        on_redirect,
        Keep::of(keep_body),
    )
    .await
}

impl Keep {
    /// The headers, and the body too if `keep_body`.
    pub(super) fn of(keep_body: bool) -> Self {
        if keep_body {
            Keep::Body
        } else {
            Keep::Headers
        }
    }
}

/// How a request reaches the VU's cookie jar: directly for a request of its own, shared through a
/// `RefCell` by the requests of a `parallel` step (one thread; never borrowed across an await).
pub(super) trait JarAccess {
    fn with<R>(&mut self, f: impl FnOnce(&mut Jar) -> R) -> R;
}

impl JarAccess for &mut Jar {
    fn with<R>(&mut self, f: impl FnOnce(&mut Jar) -> R) -> R {
        f(self)
    }
}

impl JarAccess for &std::cell::RefCell<Jar> {
    fn with<R>(&mut self, f: impl FnOnce(&mut Jar) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

pub(super) async fn exchange(
    settings: &Settings,
    lane: &mut Lane,
    mut jar: impl JarAccess,
    request: &PreparedRequest,
    on_redirect: &mut dyn FnMut(Outcome),
    keep: Keep,
) -> (Outcome, Option<Captured>) {
    let mut redirected;
    let mut hop = &request.hop;
    let mut left = settings.redirects;
    let timeout = request.timeout.unwrap_or(settings.timeout);
    loop {
        let started = Instant::now();
        // The jar's cookies join the hop's own `Cookie` header; a jar that never received a
        // cookie costs nothing here.
        let with_cookies = settings
            .cookies
            .then(|| {
                jar.with(|jar| {
                    if jar.is_empty() {
                        return None;
                    }
                    let now = std::time::SystemTime::now();
                    let value = jar.header(&hop.target.absolute, hop.cookie(), now)?;
                    Some(hop.with_cookie(value))
                })
            })
            .flatten();
        let sent = with_cookies.as_ref().unwrap_or(hop);
        let answer = match lane.exchange(settings, sent, keep, started + timeout).await {
            Ok(answer) => answer,
            Err(kind) => return (Outcome::Failure(kind), None),
        };
        if settings.cookies && !answer.set_cookies.is_empty() {
            let now = std::time::SystemTime::now();
            jar.with(|jar| {
                for value in &answer.set_cookies {
                    jar.store(&hop.target.absolute, value.as_bytes(), now);
                }
            });
        }
        let us = micros(started.elapsed());
        tracing::trace!(status = answer.status, bytes = answer.bytes, "response");
        let outcome = Outcome::Response {
            status: answer.status,
            latency_us: us,
            service_us: us,
        };
        if left == 0 || answer.location.is_none() {
            return (outcome, answer.captured.map(|c| *c));
        }
        match hop.redirected(answer.status, answer.location.as_ref()) {
            Some(next) => {
                on_redirect(outcome);
                left -= 1;
                redirected = next;
                hop = &redirected;
            }
            None => return (outcome, answer.captured.map(|c| *c)),
        }
    }
}
