//! A `script` step, as a VU runs it: the call runs on a blocking thread (`crate::script`), and
//! the VU serves the requests it asks for with its own connections, recording each under the
//! step's label and groups exactly as a request step's — so the target's count and herd's agree,
//! and a script's requests are timed like any other (from their send; a script's request has no
//! planned start of its own). The call's outcome is one check of the step.

use super::shared::Shared;
use crate::http::{self, Connections, PreparedRequest};
use crate::recorder::Outcome;
use crate::scenario::{response_of, ScriptCall, VuState};
use crate::script::{Event, ScriptRequest, ScriptResponse};
use herd_protocol::plan::{Method, RequestStep};
use std::rc::Rc;
use std::sync::Arc;

/// Runs one script step for slot `id`.
pub(super) async fn run_script(
    shared: &Rc<Shared>,
    conns: &mut Connections,
    id: u32,
    step: &ScriptCall,
    vu: &mut VuState,
) {
    let program = &shared.program;
    let Some(host) = program.scripts() else {
        return;
    };
    let mut call = host.start(Arc::clone(&step.function), program.begin_script(vu));
    let passed = loop {
        match call.next().await {
            Event::Request(request, reply) => {
                let response = send(shared, conns, id, step, &request, vu).await;
                reply.send(response);
            }
            Event::Done { this, result } => break program.end_script(step, vu, this, result),
        }
    };
    let now = shared.clock.now_us();
    shared
        .recorder
        .borrow_mut()
        .record_check_in(now, step.label, &step.groups, passed);
}

/// Sends a script's request (following redirects, each hop recorded) and gives its response to
/// the script; it also becomes the VU's last response.
async fn send(
    shared: &Rc<Shared>,
    conns: &mut Connections,
    id: u32,
    step: &ScriptCall,
    request: &ScriptRequest,
    vu: &mut VuState,
) -> ScriptResponse {
    let prepared = match prepare(shared.program.target(), request) {
        Ok(p) => p,
        // Not sent: the script sees why, and decides.
        Err(reason) => return response_of(0, None, Some(reason)),
    };
    let (label, groups) = (step.label, &step.groups[..]);
    shared.set_in_flight(id, Some(label));
    let (outcome, captured) = {
        let mut redirect = |outcome: Outcome| {
            let now = shared.clock.now_us();
            shared
                .recorder
                .borrow_mut()
                .record_in(now, label, groups, outcome);
        };
        http::execute_capture(conns, &prepared, &mut redirect, true).await
    };
    // No await between here and the record: the request is counted exactly once.
    shared.set_in_flight(id, None);
    let now = shared.clock.now_us();
    shared
        .recorder
        .borrow_mut()
        .record_in(now, label, groups, outcome);
    let response = match outcome {
        Outcome::Response { status, .. } => {
            shared.program.note_status(vu, status);
            response_of(status, captured.as_ref(), None)
        }
        Outcome::Failure(kind) => {
            shared.program.note_status(vu, 0);
            response_of(0, None, Some(format!("request failed: {kind:?}")))
        }
    };
    shared.program.keep_script_response(vu, &response);
    response
}

/// A script's request as a prepared request to the plan's target.
fn prepare(target: &str, request: &ScriptRequest) -> Result<PreparedRequest, String> {
    let method = Method::ALL
        .iter()
        .map(|(m, _)| *m)
        .find(|m| m.as_str() == request.method)
        .ok_or_else(|| format!("unknown method {:?}", request.method))?;
    let step = RequestStep {
        label: String::new(),
        named: false,
        method,
        path: request.path.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
        body_file: None,
        checks: Vec::new(),
        extract: Vec::new(),
        timeout: None,
        multipart: Vec::new(),
    };
    PreparedRequest::new(target, &step).map_err(|e| e.to_string())
}
