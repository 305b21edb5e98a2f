//! A `parallel` step as a VU runs it: every request rendered from the VU's variables as they are
//! now, all sent at once (`http::execute_parallel`), each recorded as its own request of its own
//! step the moment it (or a redirect it follows) completes, then — once all have finished — the
//! checks and extractions of each, in the order the plan lists them, so what a later request
//! extracts wins and no request of the step sees another's extraction.
//!
//! The open model's planned start is carried by every request of the step when the step is the
//! iteration's first: they all waited for it. Requests in flight are known to the slot, so a VU
//! aborted after the graceful stop counts each of them once as `aborted`.

use super::shared::Shared;
use crate::http::{self, Connections, Keep, PreparedRequest};
use crate::recorder::Outcome;
use crate::scenario::{Capture, Request, VuState};
use herd_protocol::clock::micros;
use std::cell::Cell;
use std::rc::Rc;
use tokio::time::Instant;

/// Runs the requests of one `parallel` step for VU (or worker) `id`.
pub(super) async fn run_parallel(
    shared: &Rc<Shared>,
    conns: &mut Connections,
    id: u32,
    planned: &mut Option<Instant>,
    requests: &[Request],
    vu: &mut VuState,
) {
    let mut rendered: Vec<Option<PreparedRequest>> = requests.iter().map(|_| None).collect();
    let mut ready: Vec<(&Request, &PreparedRequest, Keep)> = Vec::with_capacity(requests.len());
    for (request, slot) in requests.iter().zip(rendered.iter_mut()) {
        match request.prepare(vu.vars(), slot) {
            Some(prepared) => {
                let keep = match request.capture() {
                    Capture::Nothing => Keep::Nothing,
                    Capture::Headers => Keep::Headers,
                    Capture::Body => Keep::Body,
                };
                ready.push((request, prepared, keep));
            }
            None => {
                // Not sent (its variables make no valid request): a failed check, not a request.
                let now = shared.clock.now_us();
                shared.recorder.borrow_mut().record_check_in(
                    now,
                    request.label,
                    &request.groups,
                    false,
                );
            }
        }
    }
    if ready.is_empty() {
        return;
    }
    for (request, _, _) in &ready {
        shared.add_parallel_in_flight(id, request.label);
    }
    let sent_at = Instant::now();
    let planned = planned.take();
    // Whether each request's first outcome was recorded (it carries the planned start's wait).
    let first_done: Vec<Cell<bool>> = ready.iter().map(|_| Cell::new(false)).collect();
    let to_send: Vec<(&PreparedRequest, Keep)> = ready.iter().map(|(_, p, k)| (*p, *k)).collect();
    let record = |i: usize, outcome: Outcome, last: bool| {
        let request = ready[i].0;
        let outcome = match (planned, first_done[i].replace(true)) {
            (Some(planned), false) => {
                outcome.waited(micros(sent_at.saturating_duration_since(planned)))
            }
            _ => outcome,
        };
        if last {
            // No await between here and the record: the request is counted exactly once.
            shared.remove_parallel_in_flight(id, request.label);
        }
        let now = shared.clock.now_us();
        shared
            .recorder
            .borrow_mut()
            .record_in(now, request.label, &request.groups, outcome);
    };
    let sent = http::execute_parallel(conns, &to_send, &record).await;
    let now = shared.clock.now_us();
    let mut last_status = None;
    for ((request, _, _), sent) in ready.iter().zip(&sent) {
        if let Outcome::Response {
            status, service_us, ..
        } = sent.outcome
        {
            let mut recorder = shared.recorder.borrow_mut();
            request.apply(status, service_us, sent.captured.as_ref(), vu, |passed| {
                recorder.record_check_in(now, request.label, &request.groups, passed);
            });
            last_status = Some(status);
        } else {
            last_status = Some(0);
        }
    }
    if let Some(status) = last_status {
        shared.program.note_status(vu, status);
    }
}
