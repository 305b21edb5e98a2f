//! Virtual users and open-model workers: the loops that run iterations in the slots of
//! [`Shared`], and the controller's calls that start them.
//!
//! In the closed model slot `id` is VU `id`, which loops over the scenario while `id < target`,
//! the load is not stopping and its iteration limit allows; in the open model slots are workers
//! (at most the in-flight cap) that take planned arrivals from the backlog. The state itself, and
//! why it needs no lock, is in `shared`; one pass over the scenario is in `iteration`.

use super::iteration::run_iteration;
use super::shared::{Shared, Slot};
use std::rc::Rc;
use tokio::time::Instant;

impl Shared {
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
            // A VU whose feeder ran out is done: it is not started again.
            break shared.program.exhausted().is_some();
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
                // Each arrival is a new user: it starts without the last one's cookies.
                conns.clear_cookies();
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
