//! What the engine's controllers share: the load's inputs ([`LoadSpec`], [`Control`], [`LoadIo`]),
//! the controller's state across phases ([`ControlFlow`]) and frame flushing.
//!
//! Why a module of its own: the closed-model controller (the parent module) and the open-model
//! one (`open`) both take these, and the parent calls `open`. With them in the parent, `open`
//! imported the parent that calls it (a cycle). Here they sit below both controllers and import
//! no sibling but `shared`, the state every part of the engine uses.

use super::shared::Shared;
use crate::recorder::FrameIdentity;
use herd_protocol::clock::{micros, Clock, US_PER_SEC};
use herd_protocol::frame::{Frame, Health};
use herd_protocol::plan::{Plan, RampStages};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long after a second boundary that second's frame is emitted.
pub const FLUSH_DELAY: Duration = Duration::from_millis(5);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The validated plan.
    pub plan: Plan,
    /// How many agents share the load.
    pub agent_count: u32,
    /// This agent's index among them.
    pub agent_index: u32,
    /// The run's start (the same instant on every agent); the profile is timed from here.
    pub start: Instant,
    /// Wall-clock anchor, for frame seconds.
    pub clock: Clock,
    /// Written into every frame.
    pub identity: FrameIdentity,
    /// A replacement that joins a running load in a lost agent's place (it has that agent's
    /// index, so its feeder rows and VU numbers): it carries nothing until a reassignment it
    /// joined (`Control::Reassign`), and no share of a `load.iterations` count.
    pub joins_later: bool,
}

impl LoadSpec {
    /// This agent's place in the split from the start on.
    pub fn parts(&self) -> herd_protocol::split::Parts {
        herd_protocol::split::Parts::new(
            self.agent_count,
            (!self.joins_later).then_some(self.agent_index),
        )
    }
}

/// A live change to a running load.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// From `at` on, follow `stages` (whole-run totals), ramping from the current VU target
    /// (closed model) or arrival rate (open model).
    Ramp {
        /// When the new stages begin.
        at: Instant,
        /// The new stages, for the model the run follows.
        stages: RampStages,
    },
    /// From `at` on, the load is split over other agents: this one is `index` of `count`, or
    /// (`None`) carries nothing (see [`herd_protocol::split::Parts`]).
    Reassign {
        /// When the new split begins.
        at: Instant,
        /// How many agents carry the load from then on.
        count: u32,
        /// This agent's index among them.
        index: Option<u32>,
    },
    /// Start no new requests; abort those still in flight after `graceful`.
    Stop {
        /// How long requests in flight may take to finish.
        graceful: Duration,
    },
}

/// The engine's channels to the outside.
#[derive(Debug)]
pub struct LoadIo {
    /// Live changes.
    pub control: mpsc::UnboundedReceiver<Control>,
    /// Every frame, in `seq` order; the last one is final.
    pub frames: mpsc::UnboundedSender<Frame>,
    /// VUs running now, for heartbeats.
    pub vus: Rc<Cell<u32>>,
}

/// The controller's state across the run and drain phases.
pub(super) struct ControlFlow {
    /// Set when a stop arrived: how long requests in flight may take.
    pub(super) graceful: Option<Duration>,
    /// Whether the control channel is still open.
    pub(super) control_open: bool,
    /// When the next frames are due.
    pub(super) next_flush: Instant,
    /// Every controller of this agent, for frames and the VU count.
    pub(super) crew: Rc<Crew>,
}

/// The load controllers of one agent (one per scenario of the plan) and what they share: one
/// recorder, so every second is one frame whatever the number of scenarios, and the agent's VU
/// count and health, summed over the controllers. Each controller flushes at each second's
/// boundary; the first to do so emits the frame, the others find nothing left to emit.
pub(super) struct Crew {
    /// The controllers' states, one per scenario.
    pub(super) members: Vec<Rc<Shared>>,
    /// Where frames go.
    frames: mpsc::UnboundedSender<Frame>,
    /// The agent's VUs running now, for heartbeats.
    vus: Rc<Cell<u32>>,
}

impl Crew {
    pub(super) fn new(members: Vec<Rc<Shared>>, io: &LoadIo) -> Self {
        Self {
            members,
            frames: io.frames.clone(),
            vus: Rc::clone(&io.vus),
        }
    }

    /// VUs or workers of every scenario running now.
    pub(super) fn alive(&self) -> u32 {
        self.members.iter().map(|m| m.alive()).sum()
    }

    /// Updates the VU count heartbeats report.
    pub(super) fn note_vus(&self) {
        self.vus.set(self.alive());
    }

    /// The agent's health: the CPU sampled once, requests in flight of every scenario.
    pub(super) fn health(&self) -> Health {
        let mut health = self.members.first().map(|m| m.health()).unwrap_or_default();
        health.in_flight = self.members.iter().map(|m| m.in_flight()).sum();
        health
    }

    /// Emits the frames of the seconds that are over; returns when to flush next.
    pub(super) fn flush(&self) -> Instant {
        let Some(first) = self.members.first() else {
            return Instant::now() + Duration::from_secs(1);
        };
        let now_us = first.clock.now_us();
        let second = now_us / US_PER_SEC;
        let due = first.recorder.borrow().due_before(second);
        if due {
            let health = self.health();
            let frames = first
                .recorder
                .borrow_mut()
                .flush_before(second, self.alive(), health);
            self.send(frames);
        }
        first.clock.instant_at_us((second + 1) * US_PER_SEC) + FLUSH_DELAY
    }

    /// The last frames, once every controller has drained; returns what the load did.
    pub(super) fn finish(&self) -> (u64, u64, u64) {
        self.vus.set(0);
        let Some(first) = self.members.first() else {
            return (0, 0, 0);
        };
        let health = self.health();
        let mut recorder = first.recorder.borrow_mut();
        let frames = recorder.finish(first.clock.now_us(), 0, health);
        self.send(frames);
        (recorder.requests(), recorder.frames(), recorder.dropped())
    }

    fn send(&self, frames: Vec<Frame>) {
        for frame in frames {
            if self.frames.send(frame).is_err() {
                tracing::warn!("frame receiver is gone; frames are discarded");
            }
        }
    }
}

/// How late (µs) the event loop woke for a timer set at `planned`: the agent's own delay.
pub(super) fn lag_us(planned: Instant) -> u64 {
    micros(Instant::now().saturating_duration_since(planned))
}
