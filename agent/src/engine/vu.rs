//! Virtual users and the state they share with the controller.
//!
//! Everything runs on one thread (a `LocalSet`), so the shared state is plain `Cell`/`RefCell`:
//! recording a request is a borrow flag and a few additions, no lock and no atomic. VUs live in
//! numbered slots; VU `id` runs while `id < target` and the load is not stopping, and checks
//! that only at step boundaries, so it never abandons a request. Think times can be cut short
//! (via [`Shared::interrupt`]); requests still in flight after the graceful period are aborted by
//! the controller, which knows from the slots which step each of them was running and counts
//! each exactly once as `aborted`.

use crate::clock::Clock;
use crate::http::{self, HttpClient, PreparedRequest};
use crate::recorder::{FailureKind, Outcome, Recorder};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A scenario step, ready to run.
#[derive(Debug)]
pub(super) enum PreparedStep {
    /// Send a request; results are recorded under label number `label`.
    Request {
        request: Box<PreparedRequest>,
        label: usize,
    },
    /// Pause.
    Think(Duration),
}

#[derive(Default)]
struct Slot {
    /// The running VU of this slot, if any.
    task: Option<JoinHandle<()>>,
    /// The label of the request the VU is waiting for, if any.
    in_flight: Option<usize>,
}

/// State shared by the controller and every VU of one agent.
pub(super) struct Shared {
    pub client: HttpClient,
    pub steps: Vec<PreparedStep>,
    pub timeout: Duration,
    pub clock: Clock,
    pub recorder: RefCell<Recorder>,
    target: Cell<u32>,
    stopping: Cell<bool>,
    alive: Cell<u32>,
    slots: RefCell<Vec<Slot>>,
    /// Woken when VUs may have to stop (target lowered, or stopping).
    interrupt: Notify,
    /// Woken (one permit) whenever a VU exits.
    pub exited: Notify,
}

impl Shared {
    pub fn new(
        client: HttpClient,
        steps: Vec<PreparedStep>,
        timeout: Duration,
        clock: Clock,
        recorder: Recorder,
    ) -> Self {
        Self {
            client,
            steps,
            timeout,
            clock,
            recorder: RefCell::new(recorder),
            target: Cell::new(0),
            stopping: Cell::new(false),
            alive: Cell::new(0),
            slots: RefCell::new(Vec::new()),
            interrupt: Notify::new(),
            exited: Notify::new(),
        }
    }

    /// VUs running now (including those finishing a request above the target).
    pub fn alive(&self) -> u32 {
        self.alive.get()
    }

    fn may_continue(&self, id: u32) -> bool {
        !self.stopping.get() && id < self.target.get()
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
            if slot.task.is_none() {
                slot.task = Some(tokio::task::spawn_local(run_vu(Rc::clone(self), id)));
                self.alive.set(self.alive.get() + 1);
            }
        }
    }

    /// No new requests from now on; VUs leave at their next step boundary.
    pub fn stop(&self) {
        self.stopping.set(true);
        self.interrupt.notify_waiters();
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
                    recorder.record(now, label, Outcome::Failure(FailureKind::Aborted));
                }
            }
        }
        self.exited.notify_one();
    }

    fn set_in_flight(&self, id: u32, label: Option<usize>) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(id as usize) {
            slot.in_flight = label;
        }
    }

    fn exit(&self, id: u32) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(id as usize) {
            slot.task = None;
            slot.in_flight = None;
        }
        self.alive.set(self.alive.get().saturating_sub(1));
        self.exited.notify_one();
    }

    /// Sleeps `d`, or less if VU `id` has to stop meanwhile.
    async fn think(&self, id: u32, d: Duration) {
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

/// One virtual user: loops over the scenario while it may.
async fn run_vu(shared: Rc<Shared>, id: u32) {
    'run: loop {
        for step in &shared.steps {
            if !shared.may_continue(id) {
                break 'run;
            }
            match step {
                PreparedStep::Request { request, label } => {
                    shared.set_in_flight(id, Some(*label));
                    let outcome = http::execute(&shared.client, request, shared.timeout).await;
                    // No await between here and the record: the request is counted exactly once.
                    shared.set_in_flight(id, None);
                    let now = shared.clock.now_us();
                    shared.recorder.borrow_mut().record(now, *label, outcome);
                }
                PreparedStep::Think(d) => shared.think(id, *d).await,
            }
        }
    }
    shared.exit(id);
}
