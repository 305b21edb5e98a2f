//! Virtual users, open-model workers, and the state they share with the controller.
//!
//! Everything runs on one thread (a `LocalSet`), so the shared state is plain `Cell`/`RefCell`:
//! recording a request is a borrow flag and a few additions, no lock and no atomic. Whatever runs
//! iterations lives in a numbered slot: in the closed model slot `id` is VU `id`, which runs while
//! `id < target` and the load is not stopping; in the open model slots are workers (at most the
//! in-flight cap) that take planned arrivals from the backlog. Both check only at step
//! boundaries, so neither abandons a request. Think times can be cut short (via the interrupt);
//! requests still in flight after the graceful period are aborted by the controller, which knows
//! from the slots which step each of them was running and counts each exactly once as `aborted`.

use super::iteration::{run_iteration, Rng};
use crate::clock::{micros, Clock};
use crate::health::CpuSampler;
use crate::http::Client;
use crate::recorder::{FailureKind, Outcome, Recorder};
use crate::scenario::Program;
use herd_protocol::frame::Health;
use herd_protocol::plan::Think;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How many iterations this agent may run (closed model).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Limits {
    /// Iterations of each VU.
    pub per_vu: Option<u32>,
    /// Iterations of all this agent's VUs together: its share of the plan's `iterations`.
    pub total: Option<u64>,
}

#[derive(Default)]
struct Slot {
    /// The running task of this slot, if any.
    task: Option<JoinHandle<()>>,
    /// The label of the request the task is waiting for, if any.
    in_flight: Option<usize>,
    /// Closed model: the VU ran all its iterations and is not to be started again.
    done: bool,
}

/// State shared by the controller and every VU or worker of one agent.
pub(super) struct Shared {
    pub client: Client,
    pub program: Program,
    pub timeout: Duration,
    pub clock: Clock,
    pub recorder: RefCell<Recorder>,
    /// Closed model: iteration limits.
    limits: Limits,
    /// Closed model: iterations started by all VUs.
    started: Cell<u64>,
    target: Cell<u32>,
    stopping: Cell<bool>,
    alive: Cell<u32>,
    /// Requests on the wire now.
    requests_in_flight: Cell<u32>,
    /// VUs that ran all their iterations.
    done: Cell<u32>,
    slots: RefCell<Vec<Slot>>,
    /// Open model: planned starts not taken by a worker yet, oldest first.
    backlog: RefCell<VecDeque<Instant>>,
    /// Open model: workers waiting for an arrival.
    idle: Cell<u32>,
    /// Open model: woken (one permit) when an arrival joins the backlog.
    arrived: Notify,
    /// Woken when VUs may have to stop (target lowered, or stopping).
    interrupt: Notify,
    /// Woken (one permit) whenever a VU or worker exits.
    pub exited: Notify,
    rng: RefCell<Rng>,
    cpu: RefCell<CpuSampler>,
}

impl Shared {
    pub fn new(
        client: Client,
        program: Program,
        timeout: Duration,
        clock: Clock,
        recorder: Recorder,
        limits: Limits,
    ) -> Self {
        Self {
            client,
            program,
            timeout,
            clock,
            rng: RefCell::new(Rng::seeded(clock.now_us())),
            recorder: RefCell::new(recorder),
            limits,
            started: Cell::new(0),
            target: Cell::new(0),
            stopping: Cell::new(false),
            alive: Cell::new(0),
            requests_in_flight: Cell::new(0),
            done: Cell::new(0),
            slots: RefCell::new(Vec::new()),
            backlog: RefCell::new(VecDeque::new()),
            idle: Cell::new(0),
            arrived: Notify::new(),
            interrupt: Notify::new(),
            exited: Notify::new(),
            cpu: RefCell::new(CpuSampler::new()),
        }
    }

    /// VUs or workers running now (including those finishing a request above the target).
    pub fn alive(&self) -> u32 {
        self.alive.get()
    }

    /// VUs that ran all their iterations.
    pub fn done(&self) -> u32 {
        self.done.get()
    }

    /// Whether this agent started every iteration of its share of the plan's `iterations`.
    pub fn iterations_exhausted(&self) -> bool {
        self.limits.total.is_some_and(|n| self.started.get() >= n)
    }

    /// Claims one iteration of the agent's share; `false` when none is left.
    fn claim_iteration(&self) -> bool {
        if self.iterations_exhausted() {
            return false;
        }
        self.started.set(self.started.get() + 1);
        true
    }

    /// The agent's health now (the loop lag is added per second by the recorder).
    pub fn health(&self) -> Health {
        Health {
            cpu_percent: self.cpu.borrow_mut().sample(),
            loop_lag_ms: 0.0,
            in_flight: self.requests_in_flight.get(),
        }
    }

    pub(super) fn may_continue(&self, id: u32) -> bool {
        !self.stopping.get() && id < self.target.get()
    }

    /// A pause drawn from `think`.
    pub(super) fn pick(&self, think: &Think) -> Duration {
        if think.min == think.max {
            return think.min;
        }
        let span = micros(think.max - think.min);
        think.min + Duration::from_micros(self.rng.borrow_mut().below(span + 1))
    }

    /// Moves the target to `target` VUs: starts the missing ones, and tells those above it to
    /// stop at their next step boundary.
    pub fn set_target(self: &Rc<Self>, target: u32) {
        if self.stopping.get() {
            return;
        }
        let old = self.target.replace(target);
        if target < old {
            self.interrupt.notify_waiters();
        }
        let mut slots = self.slots.borrow_mut();
        let wanted = target as usize;
        if slots.len() < wanted {
            slots.resize_with(wanted, Slot::default);
        }
        for (id, slot) in (0u32..).zip(slots.iter_mut().take(wanted)) {
            if slot.task.is_none() && !slot.done {
                slot.task = Some(tokio::task::spawn_local(run_vu(Rc::clone(self), id)));
                self.alive.set(self.alive.get() + 1);
            }
        }
    }

    /// Open model: at most `cap` workers from now on.
    pub fn set_cap(&self, cap: u32) {
        self.target.set(cap);
    }

    /// Open model: an iteration planned for `planned` is due. A waiting worker takes it, or a
    /// new one if the cap allows; otherwise it waits in the backlog for the next free worker.
    pub fn arrive(self: &Rc<Self>, planned: Instant) {
        self.backlog.borrow_mut().push_back(planned);
        if self.idle.get() > 0 {
            self.arrived.notify_one();
            return;
        }
        let id = self.alive.get();
        if id < self.target.get() && !self.stopping.get() {
            let mut slots = self.slots.borrow_mut();
            if slots.len() <= id as usize {
                slots.resize_with(id as usize + 1, Slot::default);
            }
            slots[id as usize].task =
                Some(tokio::task::spawn_local(run_worker(Rc::clone(self), id)));
            self.alive.set(id + 1);
        }
    }

    /// Open model: gives up every arrival still waiting, counting each as dropped.
    pub fn drop_backlog(&self) {
        let n = std::mem::take(&mut *self.backlog.borrow_mut()).len() as u64;
        if n > 0 {
            let now = self.clock.now_us();
            self.recorder.borrow_mut().record_dropped(now, n);
        }
    }

    /// No new requests from now on; VUs leave at their next step boundary.
    pub fn stop(&self) {
        self.stopping.set(true);
        self.interrupt.notify_waiters();
        self.arrived.notify_waiters();
    }

    /// Aborts every VU still running, counting its request in flight (if any) as `aborted`.
    pub fn abort_all(&self) {
        let now = self.clock.now_us();
        let mut recorder = self.recorder.borrow_mut();
        for slot in self.slots.borrow_mut().iter_mut() {
            if let Some(task) = slot.task.take() {
                // The task is not running (one thread): it is dropped before its next poll, so
                // it can no longer record anything itself.
                task.abort();
                self.alive.set(self.alive.get().saturating_sub(1));
                if let Some(label) = slot.in_flight.take() {
                    self.requests_in_flight
                        .set(self.requests_in_flight.get().saturating_sub(1));
                    recorder.record(now, label, Outcome::Failure(FailureKind::Aborted));
                }
            }
        }
        self.exited.notify_one();
    }

    pub(super) fn set_in_flight(&self, id: u32, label: Option<usize>) {
        let n = self.requests_in_flight.get();
        self.requests_in_flight.set(match label {
            Some(_) => n + 1,
            None => n.saturating_sub(1),
        });
        if let Some(slot) = self.slots.borrow_mut().get_mut(id as usize) {
            slot.in_flight = label;
        }
    }

    fn exit(&self, id: u32, done: bool) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(id as usize) {
            slot.task = None;
            slot.in_flight = None;
            slot.done = done;
        }
        if done {
            self.done.set(self.done.get() + 1);
        }
        self.alive.set(self.alive.get().saturating_sub(1));
        self.exited.notify_one();
    }

    /// Sleeps `d`, or less if VU `id` has to stop meanwhile.
    pub(super) async fn think(&self, id: u32, d: Duration) {
        let deadline = Instant::now() + d;
        loop {
            // Created before the check: `notify_waiters` wakes it even before its first poll.
            let interrupted = self.interrupt.notified();
            if !self.may_continue(id) {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                () = interrupted => {}
            }
        }
    }
}

/// One virtual user: loops over the scenario while it may, up to its iteration limit, on
/// connections of its own.
pub(super) async fn run_vu(shared: Rc<Shared>, id: u32) {
    let mut vu = shared.program.start_vu(id);
    let mut conns = shared.client.connections();
    let mut runs = 0u32;
    let done = loop {
        if !shared.may_continue(id) {
            break false;
        }
        if shared.limits.per_vu.is_some_and(|n| runs >= n) || !shared.claim_iteration() {
            break true;
        }
        if !run_iteration(&shared, &mut conns, id, None, &mut vu).await {
            break false;
        }
        runs += 1;
    };
    shared.exit(id, done);
}

/// One open-model worker: runs planned arrivals from the backlog, oldest first, until the load
/// stops. An arrival that waited longer than the request timeout for a worker is dropped: it
/// could not have been answered in time anyway, and the backlog stays bounded.
async fn run_worker(shared: Rc<Shared>, id: u32) {
    let mut vu = shared.program.start_vu(id);
    let mut conns = shared.client.connections();
    loop {
        let arrived = shared.arrived.notified();
        if shared.stopping.get() {
            break;
        }
        let next = shared.backlog.borrow_mut().pop_front();
        match next {
            Some(planned) => {
                if planned.elapsed() > shared.timeout {
                    let now = shared.clock.now_us();
                    shared.recorder.borrow_mut().record_dropped(now, 1);
                    continue;
                }
                if !run_iteration(&shared, &mut conns, id, Some(planned), &mut vu).await {
                    break;
                }
            }
            None => {
                shared.idle.set(shared.idle.get() + 1);
                arrived.await;
                shared.idle.set(shared.idle.get().saturating_sub(1));
            }
        }
    }
    shared.exit(id, false);
}
