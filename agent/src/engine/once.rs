//! A plan's `setup` or `teardown`: its steps run once, on one VU, on this agent.
//!
//! The steps are compiled and run by the scenario's own code (a [`Program`] over the phase's
//! plan, [`herd_protocol::plan::Plan::phase_plan`], one iteration in slot 0 of a [`Shared`]),
//! so every step kind a scenario has works here too, and requests are counted the same way. It
//! goes one top-level step at a time and stops at the first that fails: a request that failed
//! (transport error, or status >= 400) or a failed check or extraction. Setup prepares the load:
//! the steps after a failed login would only send requests that cannot work. The whole phase has
//! a time limit; a request still in flight then is aborted and counted as such (`aborted`), so
//! the figures still match what the target saw.
//!
//! Its requests are recorded by a recorder of their own, read after each step: they never reach
//! the load's frames, and the phase's figures travel in its `*_done` status instead.

use super::iteration::run_steps_once;
use super::shared::{Limits, Shared, Slot};
use crate::error::AgentError;
use crate::http;
use crate::recorder::{FrameIdentity, Recorder};
use crate::scenario::{recorder_labels, Program};
use herd_protocol::clock::{Clock, US_PER_SEC};
use herd_protocol::frame::Health;
use herd_protocol::once::{PhaseStep, PhaseSummary};
use herd_protocol::plan::{extracted_vars, OncePhase, Plan, GROUP_KEY_PREFIX};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What to run.
#[derive(Debug, Clone)]
pub struct OnceSpec {
    /// The phase's plan: its steps are the scenario; its `vars` include the values the command
    /// carried (secrets, setup's variables).
    pub plan: Plan,
    /// Which phase, for the messages.
    pub phase: OncePhase,
    /// How long all the steps may take together.
    pub timeout: Duration,
    /// Wall-clock anchor.
    pub clock: Clock,
    /// Who measures (the recorder wants it; nothing of it leaves the agent).
    pub identity: FrameIdentity,
}

/// What a phase did: its figures (the agent's name is the caller's to fill in) and, when it
/// succeeded, the variables its steps extracted.
#[derive(Debug, Clone, PartialEq)]
pub struct OnceOutcome {
    /// Its figures, and why it failed if it did.
    pub result: PhaseSummary,
    /// The extracted variables by name (empty when it failed).
    pub vars: BTreeMap<String, String>,
}

/// Runs the phase's steps once; see the module docs. An error is a plan this agent cannot
/// compile (it never sent anything).
pub async fn run_once(spec: OnceSpec) -> Result<OnceOutcome, AgentError> {
    let plan = &spec.plan;
    let labels = recorder_labels(plan);
    let runs = plan.scenario_runs();
    let Some(run) = runs.first() else {
        return Err(AgentError::Session(format!(
            "the {} plan has no steps",
            spec.phase.key()
        )));
    };
    let program = Program::for_run(plan, run, &labels, 1, 0)?;
    let recorder = Rc::new(RefCell::new(Recorder::new(
        spec.identity.clone(),
        labels,
        spec.clock.now_us() / US_PER_SEC,
    )));
    let shared = Rc::new(Shared::new(
        http::Client::for_plan(plan)?,
        program,
        plan.options.timeout,
        spec.clock,
        Rc::clone(&recorder),
        Limits::default(),
    ));
    shared.target.set(1);
    shared.slots.borrow_mut().push(Slot::default());
    shared.alive.set(1);
    let names = extracted_vars(&plan.scenario);
    let tally = Rc::new(RefCell::new(Tally::default()));
    let began = Instant::now();
    let local = tokio::task::LocalSet::new();
    let phase = spec.phase;
    let outcome = local
        .run_until(async {
            let (tx, rx) = oneshot::channel();
            let task = tokio::task::spawn_local(steps(
                Rc::clone(&shared),
                Rc::clone(&tally),
                phase,
                names,
                tx,
            ));
            if let Some(slot) = shared.slots.borrow_mut().first_mut() {
                slot.task = Some(task);
            }
            match tokio::time::timeout(spec.timeout, rx).await {
                Ok(Ok(done)) => done,
                Ok(Err(_)) => Err(format!("{} stopped before its end", phase.key())),
                Err(_) => {
                    // Counts the request in flight (if any) as aborted, as a stopping load does.
                    shared.abort_all();
                    let now = spec.clock.now_us();
                    let mut tally = tally.borrow_mut();
                    tally.drain(&mut recorder.borrow_mut(), now);
                    Err(format!(
                        "{} did not finish within {} s (it was at {})",
                        phase.key(),
                        spec.timeout.as_secs_f64(),
                        tally.at
                    ))
                }
            }
        })
        .await;
    let mut result = std::mem::take(&mut tally.borrow_mut().summary);
    result.duration_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(match outcome {
        Ok(vars) => {
            result.vars = vars.keys().cloned().collect();
            OnceOutcome { result, vars }
        }
        Err(why) => {
            result.error = Some(why);
            OnceOutcome {
                result,
                vars: BTreeMap::new(),
            }
        }
    })
}

/// The phase's steps, one top-level step at a time, stopping at the first that fails; sends the
/// extracted variables, or why it failed.
async fn steps(
    shared: Rc<Shared>,
    tally: Rc<RefCell<Tally>>,
    phase: OncePhase,
    names: Vec<String>,
    done: oneshot::Sender<Result<BTreeMap<String, String>, String>>,
) {
    let mut vu = shared.program.start_vu(0);
    let mut conns = shared.client.connections();
    // No feeders in a phase's plan: the iteration always starts (it only sets `__iteration`).
    let _ = shared.program.start_iteration(&mut vu);
    let mut result = Ok(());
    for (i, step) in shared.program.steps.iter().enumerate() {
        let at = format!("{}[{i}]", phase.key());
        tally.borrow_mut().at.clone_from(&at);
        run_steps_once(&shared, &mut conns, 0, std::slice::from_ref(step), &mut vu).await;
        let now = shared.clock.now_us();
        let failed = tally
            .borrow_mut()
            .drain(&mut shared.recorder.borrow_mut(), now);
        if let Some(why) = failed {
            result = Err(format!("{at} {why}"));
            break;
        }
    }
    let _ = done.send(result.map(|()| shared.program.values(&vu, &names)));
}

/// The phase's figures so far.
#[derive(Debug, Default)]
struct Tally {
    summary: PhaseSummary,
    /// The top-level step running now (`setup[1]`).
    at: String,
}

impl Tally {
    /// Adds what the recorder holds (everything since the last drain) and says what failed in
    /// it, naming the step (`(POST /login): 1 of 2 checks failed; response status 401`).
    fn drain(&mut self, recorder: &mut Recorder, now_us: u64) -> Option<String> {
        let frames = recorder.finish(now_us, 0, Health::default());
        let mut fresh: BTreeMap<String, PhaseStep> = BTreeMap::new();
        for frame in frames {
            let s = &mut self.summary;
            s.requests += frame.total.requests;
            s.errors += frame.total.errors;
            s.checks.passed += frame.total.checks.passed;
            s.checks.failed += frame.total.checks.failed;
            for (label, stats) in frame.steps {
                if label.starts_with(GROUP_KEY_PREFIX) {
                    continue;
                }
                let step = fresh.entry(label).or_default();
                step.requests += stats.requests;
                step.errors += stats.errors;
                step.checks.passed += stats.checks.passed;
                step.checks.failed += stats.checks.failed;
                for (code, n) in stats.status_codes {
                    *step.status_codes.entry(code.to_string()).or_default() += n;
                }
                for (kind, n) in stats.error_kinds {
                    *step.error_kinds.entry(kind).or_default() += n;
                }
            }
        }
        let mut problems = Vec::new();
        for (label, step) in fresh {
            if step.errors > 0 || step.checks.failed > 0 {
                problems.push(format!("({label}): {}", describe(&step)));
            }
            let into = self.summary.steps.entry(label).or_default();
            into.requests += step.requests;
            into.errors += step.errors;
            into.checks.passed += step.checks.passed;
            into.checks.failed += step.checks.failed;
            for (code, n) in step.status_codes {
                *into.status_codes.entry(code).or_default() += n;
            }
            for (kind, n) in step.error_kinds {
                *into.error_kinds.entry(kind).or_default() += n;
            }
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// What went wrong in a step, without any value it sent or received (they may be secret).
fn describe(step: &PhaseStep) -> String {
    let mut parts = Vec::new();
    let transport: Vec<&str> = step
        .error_kinds
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with("http_"))
        .collect();
    if !transport.is_empty() {
        parts.push(format!("request failed ({})", transport.join(", ")));
    }
    if step.checks.failed > 0 {
        parts.push(format!(
            "{} of {} checks failed",
            step.checks.failed,
            step.checks.failed + step.checks.passed
        ));
    }
    if !step.status_codes.is_empty() {
        let codes: Vec<&str> = step.status_codes.keys().map(String::as_str).collect();
        let error = step
            .status_codes
            .keys()
            .any(|c| c.parse::<u16>().is_ok_and(|c| c >= 400));
        parts.push(format!(
            "{}response status {}",
            if error { "error " } else { "" },
            codes.join(", ")
        ));
    }
    parts.join("; ")
}
