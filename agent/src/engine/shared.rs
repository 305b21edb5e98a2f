//! The state shared by the controller and every VU or open-model worker of one agent.
//!
//! Everything runs on one thread (a `LocalSet`), so the shared state is plain `Cell`/`RefCell`:
//! recording a request is a borrow flag and a few additions, no lock and no atomic. Whatever runs
//! iterations lives in a numbered slot: in the closed model slot `id` is VU `id`, which runs while
//! `id < target` and the load is not stopping; in the open model slots are workers (at most the
//! in-flight cap) that take planned arrivals from the backlog. Both check only at step
//! boundaries, so neither abandons a request. Think times can be cut short (via the interrupt);
//! requests still in flight after the graceful period are aborted by the controller, which knows
//! from the slots which step each of them was running and counts each exactly once as `aborted`.
//!
//! Why a module of its own: one pass over the scenario (`iteration`) reads this state, and the
//! VU and worker loops (`vu`) both run iterations and start new slots. Kept here, a leaf that
//! imports neither, the state is below both and they do not import each other in a circle. The
//! methods that start VUs and workers ([`Shared::set_target`], [`Shared::arrive`]) live in `vu`,
//! beside the loops they spawn; the fields they drive are visible to the engine for that.

use crate::health::CpuSampler;
use crate::http::Client;
use crate::recorder::{FailureKind, Outcome, Recorder};
use crate::scenario::Program;
use herd_protocol::clock::{micros, Clock};
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
pub(super) struct Slot {
    /// The running task of this slot, if any.
    pub(super) task: Option<JoinHandle<()>>,
    /// The label of the request the task is waiting for, if any.
    pub(super) in_flight: Option<usize>,
    /// Closed model: the VU ran all its iterations and is not to be started again.
    pub(super) done: bool,
    /// The labels of the requests of a `parallel` step still in flight (empty otherwise).
    pub(super) parallel: Vec<usize>,
}

/// State shared by the controller and every VU or worker of one agent.
pub(super) struct Shared {
    pub client: Client,
    pub program: Program,
    pub timeout: Duration,
    pub clock: Clock,
    /// The agent's one recorder, shared by the controllers of every scenario.
    pub recorder: Rc<RefCell<Recorder>>,
    /// Closed model: iteration limits.
    pub(super) limits: Limits,
    /// Closed model: iterations started by all VUs.
    started: Cell<u64>,
    pub(super) target: Cell<u32>,
    pub(super) stopping: Cell<bool>,
    pub(super) alive: Cell<u32>,
    /// Requests on the wire now.
    requests_in_flight: Cell<u32>,
    /// VUs that ran all their iterations.
    done: Cell<u32>,
    pub(super) slots: RefCell<Vec<Slot>>,
    /// Open model: planned starts not taken by a worker yet, oldest first.
    pub(super) backlog: RefCell<VecDeque<Instant>>,
    /// Open model: workers waiting for an arrival.
    pub(super) idle: Cell<u32>,
    /// Open model: woken (one permit) when an arrival joins the backlog.
    pub(super) arrived: Notify,
    /// Woken when VUs may have to stop (target lowered, or stopping).
    pub(super) interrupt: Notify,
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
        recorder: Rc<RefCell<Recorder>>,
        limits: Limits,
    ) -> Self {
        Self {
            client,
            program,
            timeout,
            clock,
            rng: RefCell::new(Rng::seeded(clock.now_us())),
            recorder,
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

    /// Requests on the wire now.
    pub fn in_flight(&self) -> u32 {
        self.requests_in_flight.get()
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
    pub(super) fn claim_iteration(&self) -> bool {
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
            commands_refused: 0,
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

    /// Open model: at most `cap` workers from now on.
    pub fn set_cap(&self, cap: u32) {
        self.target.set(cap);
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
                for label in slot
                    .in_flight
                    .take()
                    .into_iter()
                    .chain(slot.parallel.drain(..))
                {
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

    /// A request of a `parallel` step of slot `id` is sent.
    pub(super) fn add_parallel_in_flight(&self, id: u32, label: usize) {
        self.requests_in_flight
            .set(self.requests_in_flight.get() + 1);
        if let Some(slot) = self.slots.borrow_mut().get_mut(id as usize) {
            slot.parallel.push(label);
        }
    }

    /// A request of a `parallel` step of slot `id` finished.
    pub(super) fn remove_parallel_in_flight(&self, id: u32, label: usize) {
        self.requests_in_flight
            .set(self.requests_in_flight.get().saturating_sub(1));
        if let Some(slot) = self.slots.borrow_mut().get_mut(id as usize) {
            if let Some(i) = slot.parallel.iter().position(|l| *l == label) {
                slot.parallel.swap_remove(i);
            }
        }
    }

    pub(super) fn exit(&self, id: u32, done: bool) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(id as usize) {
            slot.task = None;
            slot.in_flight = None;
            slot.parallel.clear();
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
        self.wait_until(id, Instant::now() + d).await;
    }

    /// A number in `0..n`, for weighted branches.
    pub(super) fn random_below(&self, n: u64) -> u64 {
        self.rng.borrow_mut().below(n)
    }

    /// Sleeps until `deadline`, or less if VU `id` has to stop meanwhile.
    pub(super) async fn wait_until(&self, id: u32, deadline: Instant) {
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

/// A small xorshift generator for think times: uniform enough, no crate, no lock.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn seeded(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n.max(1)
    }
}
