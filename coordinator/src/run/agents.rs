//! What the run knows about each of its agents, and its stored form ([`AgentRecord`]), from which
//! a restarted coordinator gets it back.

use super::liveness::Heard;
use crate::store::{AgentGap, AgentRecord};
use herd_protocol::AgentId;
use std::collections::BTreeMap;

/// One agent's bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentTrack {
    /// Where the launcher put it.
    pub handle: Option<String>,
    /// Process id it reported when ready.
    pub pid: Option<u32>,
    /// Reported ready.
    pub ready: bool,
    /// When its load actually started (µs since the Unix epoch).
    pub started_at_us: Option<u64>,
    /// Reported finished (its last frame is out).
    pub finished: bool,
    /// How many frames it said it sent, once finished.
    pub frames: Option<u64>,
    /// When the coordinator heard it finish (ms since the Unix epoch).
    pub finished_at_ms: Option<u64>,
    /// Why it was lost, if it was.
    pub lost: Option<String>,
    /// What was heard from it: send times, numbers, seconds (see [`super::liveness`]).
    pub heard: Heard,
    /// The last error it reported, kept for the loss reason.
    pub last_error: Option<String>,
    /// Its process exited: a loss it cannot come back from.
    pub exited: bool,
    /// Each time it was declared lost, and whether it came back.
    pub gaps: Vec<AgentGap>,
}

impl AgentTrack {
    /// Finished or lost: nothing more is expected from it.
    pub fn settled(&self) -> bool {
        self.finished || self.lost.is_some()
    }

    /// Its stored form.
    pub fn record(&self, agent: &AgentId) -> AgentRecord {
        AgentRecord {
            agent: agent.clone(),
            handle: self.handle.clone(),
            pid: self.pid,
            ready: self.ready,
            started_at_us: self.started_at_us,
            finished_frames: if self.finished {
                self.frames.or(Some(0))
            } else {
                None
            },
            finished_at_ms: self.finished_at_ms,
            lost: self.lost.clone(),
            last_error: self.last_error.clone(),
            gaps: self.gaps.clone(),
        }
    }

    /// Back from its stored form; `now_ms` restarts the heartbeat clock (the coordinator's
    /// absence is not the agent's silence).
    pub fn from_record(record: &AgentRecord, now_ms: u64) -> Self {
        Self {
            handle: record.handle.clone(),
            pid: record.pid,
            ready: record.ready,
            started_at_us: record.started_at_us,
            finished: record.finished_frames.is_some(),
            frames: record.finished_frames,
            finished_at_ms: record.finished_at_ms,
            lost: record.lost.clone(),
            heard: Heard::new(now_ms),
            last_error: record.last_error.clone(),
            exited: false,
            gaps: record.gaps.clone(),
        }
    }
}

/// Every agent of a run, by id.
#[derive(Debug, Clone, Default)]
pub struct Agents(pub BTreeMap<AgentId, AgentTrack>);

impl Agents {
    /// Tracks `ids`, all unheard of so far (`now_ms` starts the heartbeat clock).
    pub fn new(ids: &[AgentId], now_ms: u64) -> Self {
        Self(
            ids.iter()
                .map(|id| {
                    (
                        id.clone(),
                        AgentTrack {
                            heard: Heard::new(now_ms),
                            ..AgentTrack::default()
                        },
                    )
                })
                .collect(),
        )
    }

    /// How many are connected now: ready, and neither finished nor lost.
    pub fn connected(&self) -> u32 {
        self.0.values().filter(|a| a.ready && !a.settled()).count() as u32
    }

    /// How many reported ready.
    pub fn ready(&self) -> u32 {
        self.0.values().filter(|a| a.ready).count() as u32
    }

    /// How many are neither finished nor lost.
    pub fn live(&self) -> u32 {
        self.0.values().filter(|a| !a.settled()).count() as u32
    }

    /// Whether every agent is finished or lost.
    pub fn all_settled(&self) -> bool {
        self.0.values().all(AgentTrack::settled)
    }

    /// Ids of lost agents, with reasons.
    pub fn lost(&self) -> Vec<(AgentId, String)> {
        self.0
            .iter()
            .filter_map(|(id, a)| a.lost.clone().map(|r| (id.clone(), r)))
            .collect()
    }

    /// Spread of the agents' actual start times, in milliseconds.
    pub fn start_skew_ms(&self) -> f64 {
        let starts: Vec<u64> = self.0.values().filter_map(|a| a.started_at_us).collect();
        match (starts.iter().min(), starts.iter().max()) {
            (Some(min), Some(max)) => (max - min) as f64 / 1000.0,
            _ => 0.0,
        }
    }

    /// How late the last agent started after `start_at_ms`, in milliseconds (0 if none was).
    pub fn start_late_ms(&self, start_at_ms: u64) -> f64 {
        self.0
            .values()
            .filter_map(|a| a.started_at_us)
            .map(|us| us.saturating_sub(start_at_ms.saturating_mul(1000)))
            .max()
            .map_or(0.0, |us| us as f64 / 1000.0)
    }

    /// Earliest actual start (µs since the Unix epoch).
    pub fn first_start_us(&self) -> Option<u64> {
        self.0.values().filter_map(|a| a.started_at_us).min()
    }
}
