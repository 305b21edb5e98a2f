//! One pass over the scenario, as a VU or an open-model worker runs it.
//!
//! The first request of an open-model iteration is measured from the iteration's *planned*
//! start: if the agent had to wait for a free worker (the target was slow and the in-flight cap
//! was reached), that wait is part of what a user would have seen, as in wrk2. Later requests of
//! the iteration have no schedule of their own and are measured from their send. Service time
//! (send to end of response) is recorded beside it either way. A followed redirect is a request
//! of the step, recorded as it completes; the planned start counts for the step's first request,
//! and checks and extractions apply to its last response.

use super::script_step::run_script;
use super::shared::Shared;
use crate::http::{self, Connections};
use crate::recorder::Outcome;
use crate::scenario::{Capture, Request, Step, VuState};
use herd_protocol::clock::micros;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use tokio::time::Instant;

/// What a pass over the scenario carries down into nested steps.
struct Pass<'a> {
    shared: &'a Rc<Shared>,
    id: u32,
    /// When the iteration started (for `pace`).
    started: Instant,
    /// The open model's planned start, until the first request takes it.
    planned: Option<Instant>,
}

/// Runs the scenario once in slot `id`, on the slot's connections and with its VU's variables;
/// `false` if it had to stop at a step boundary.
pub(super) async fn run_iteration(
    shared: &Rc<Shared>,
    conns: &mut Connections,
    id: u32,
    planned: Option<Instant>,
    vu: &mut VuState,
) -> bool {
    if !shared.program.start_iteration(vu) {
        // A `unique` feeder has no row left: the VU stops (see `Program::exhausted`).
        return false;
    }
    let mut pass = Pass {
        shared,
        id,
        started: Instant::now(),
        planned,
    };
    run_steps(&mut pass, conns, &shared.program.steps, vu).await
}

/// Runs `steps` once in slot `id`, outside any iteration of the load: a plan's `setup` or
/// `teardown` (`once`), which goes step by step to see where it fails.
pub(super) async fn run_steps_once(
    shared: &Rc<Shared>,
    conns: &mut Connections,
    id: u32,
    steps: &[Step],
    vu: &mut VuState,
) -> bool {
    let mut pass = Pass {
        shared,
        id,
        started: Instant::now(),
        planned: None,
    };
    run_steps(&mut pass, conns, steps, vu).await
}

/// Runs `steps` in order; `false` if the VU had to stop at a step boundary. A plain plan's steps
/// are all requests and pauses and run in this loop; only steps that hold steps recurse, boxed.
async fn run_steps(
    pass: &mut Pass<'_>,
    conns: &mut Connections,
    steps: &[Step],
    vu: &mut VuState,
) -> bool {
    let shared = pass.shared;
    for step in steps {
        if !shared.may_continue(pass.id) {
            return false;
        }
        match step {
            // Boxed: a request's state (its rendered form, the HTTP/1.1 and HTTP/2 paths, TLS,
            // redirects) is most of an iteration's future, and a VU spends most of its life
            // thinking. Unboxed, each of 100,000 thinking VUs held 2.6 KB of it; one allocation
            // per request costs far less than the request.
            Step::Request(request) => {
                Box::pin(run_request(
                    shared,
                    conns,
                    pass.id,
                    &mut pass.planned,
                    request,
                    vu,
                ))
                .await;
            }
            Step::Parallel(requests) => {
                Box::pin(super::parallel::run_parallel(
                    shared,
                    conns,
                    pass.id,
                    &mut pass.planned,
                    requests,
                    vu,
                ))
                .await;
            }
            Step::Think(think) => shared.think(pass.id, shared.pick(think)).await,
            Step::Pace(d) => shared.wait_until(pass.id, pass.started + *d).await,
            Step::Script(call) => {
                Box::pin(run_script(shared, conns, pass.id, call, vu)).await;
            }
            Step::Group(inner) => {
                if !nested(pass, conns, inner, vu).await {
                    return false;
                }
            }
            Step::Repeat(n, inner) => {
                for _ in 0..*n {
                    if !nested(pass, conns, inner, vu).await {
                        return false;
                    }
                }
            }
            Step::Choose(choice) => {
                let inner = choice.pick(|n| shared.random_below(n));
                if !nested(pass, conns, inner, vu).await {
                    return false;
                }
            }
            Step::If(cond, then, otherwise) => {
                let inner = if cond.holds(vu) { then } else { otherwise };
                if !nested(pass, conns, inner, vu).await {
                    return false;
                }
            }
        }
    }
    true
}

/// [`run_steps`] for nested steps: boxed, as recursion in async code must be.
fn nested<'a>(
    pass: &'a mut Pass<'_>,
    conns: &'a mut Connections,
    steps: &'a [Step],
    vu: &'a mut VuState,
) -> Pin<Box<dyn Future<Output = bool> + 'a>> {
    Box::pin(run_steps(pass, conns, steps, vu))
}

/// Sends one request step (following its redirects), records it, then runs its checks and
/// extractions. The first request of an open-model iteration carries the wait for `planned`.
async fn run_request(
    shared: &Rc<Shared>,
    conns: &mut Connections,
    id: u32,
    planned: &mut Option<Instant>,
    request: &Request,
    vu: &mut VuState,
) {
    let label = request.label;
    let groups = &request.groups[..];
    let mut rendered = None;
    let Some(prepared) = request.prepare(vu.vars(), &mut rendered) else {
        // Not sent (its variables make no valid request): a failed check, not a request.
        let now = shared.clock.now_us();
        shared
            .recorder
            .borrow_mut()
            .record_check_in(now, label, &request.groups, false);
        return;
    };
    shared.set_in_flight(id, Some(label));
    let sent = Instant::now();
    // The first request of the step carries the wait for its planned start.
    let mut delay = |outcome: Outcome| match planned.take() {
        Some(planned) => outcome.waited(micros(sent.saturating_duration_since(planned))),
        None => outcome,
    };
    let (outcome, captured) = {
        let mut redirect = |outcome: Outcome| {
            let outcome = delay(outcome);
            let now = shared.clock.now_us();
            shared
                .recorder
                .borrow_mut()
                .record_in(now, label, groups, outcome);
        };
        match request.capture() {
            Capture::Nothing => (http::execute(conns, prepared, &mut redirect).await, None),
            capture => {
                let body = capture == Capture::Body;
                http::execute_capture(conns, prepared, &mut redirect, body).await
            }
        }
    };
    // No await between here and the record: the request is counted exactly once.
    shared.set_in_flight(id, None);
    let outcome = delay(outcome);
    let now = shared.clock.now_us();
    let mut recorder = shared.recorder.borrow_mut();
    recorder.record_in(now, label, groups, outcome);
    if let Outcome::Response {
        status, service_us, ..
    } = outcome
    {
        request.apply(status, service_us, captured.as_ref(), vu, |passed| {
            recorder.record_check_in(now, label, groups, passed);
        });
        shared.program.note_status(vu, status);
        if request.keeps_response() {
            shared.program.keep_response(vu, status, captured.as_ref());
        }
    } else {
        shared.program.note_status(vu, 0);
        if request.keeps_response() {
            shared.program.keep_response(vu, 0, None);
        }
    }
}
