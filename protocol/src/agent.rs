//! Messages between the coordinator and agents.
//!
//! Commands go to every agent of a run on one topic ([`crate::topics::commands`]); a start command
//! carries each agent's index so that every agent derives its exact share of the load itself.
//! Status messages go from each agent on its own topic; `lost` is published by the broker as the
//! agent's MQTT last will when its connection drops without a goodbye.

use crate::{AgentId, RunId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A command for the agents of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCommandMessage {
    /// Protocol version.
    #[serde(default = "crate::wire::current_version")]
    pub version: u32,
    /// The run the command is for.
    pub run: RunId,
    /// What to do.
    #[serde(flatten)]
    pub command: AgentCommand,
}

/// What the coordinator asks agents to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentCommand {
    /// Start the plan at an absolute wall-clock time.
    Start {
        /// The plan, in its JSON form (see [`crate::plan::Plan::to_json`]).
        plan: serde_json::Value,
        /// Each agent's index among `agent_count`; decides its share of VUs. Absent (empty)
        /// when the agents are the numbered ones, `agent-0` … `agent-{count-1}`, each indexed
        /// by its number ([`numbered_assignments`]): the start goes to
        /// every agent of the run, so a map of all of them would make its fan-out grow with the
        /// square of the agent count (16 KB to each of 1,000 agents; 200 KB to each of 10,000).
        /// Read it with [`agent_index`].
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        assignments: BTreeMap<AgentId, u32>,
        /// How many agents share the load.
        agent_count: u32,
        /// When to start, in milliseconds since the Unix epoch.
        start_at_ms: u64,
        /// The plan's secrets by name, resolved by the coordinator (see
        /// [`crate::plan::secrets`]): agents use them as variables. Absent when there are none.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        secrets: BTreeMap<String, String>,
        /// Host globs and CIDRs every connection must fall in ([`crate::allow`]); absent: any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allowed_targets: Option<Vec<String>>,
        /// The reassignments made since the start, oldest first: an agent that joins a running
        /// load (a replacement, not in `assignments`) follows them, as the others did when they
        /// heard them, and finds its own place in one that it `joined`. Absent when there were
        /// none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reassigned: Vec<Reassignment>,
        /// The plan's feeder rows, when they were too large to travel inside it: sent before
        /// this command in `data_chunk` commands ([`crate::feeder_data`]). Absent: the rows
        /// are in the plan.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feeder_data: Option<crate::feeder_data::FeederData>,
        /// The plan's body files, when they were too large to travel inside it: sent before
        /// this command in `data_chunk` commands ([`crate::body_data`]); the plan's files are
        /// slices of it. Absent: the files are in the plan.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body_data: Option<crate::body_data::BodyData>,
        /// What the plan's `setup` extracted, by variable: every VU starts with these values
        /// (over the plan's `vars`). Absent when the plan has no setup. May hold secrets: never
        /// logged.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        setup_vars: BTreeMap<String, String>,
    },
    /// Replace the remaining load profile, from an absolute time on. VU counts are whole-run totals.
    Ramp {
        /// When the new stages begin, in milliseconds since the Unix epoch.
        at_ms: u64,
        /// The new stages, as in a plan (`[{duration, vus}]`), ramping from the current target.
        stages: serde_json::Value,
    },
    /// From an absolute time on, the load is split over a changed list of agents (a lost agent's
    /// share moves to the others, or to its replacement): only the change travels. An agent that
    /// leaves the list carries nothing from then on; hearing the same reassignment twice changes
    /// nothing.
    Reassign(Reassignment),
    /// Stop: start no new iteration; let iterations in flight finish within `graceful_ms`.
    Stop {
        /// How long in-flight iterations may take.
        graceful_ms: u64,
    },
    /// A piece of a data set a start command will name (feeder rows, body files:
    /// [`crate::chunked`]); sent before it. Agents keep the chunks of the data sets the start
    /// names and ignore the rest. (`feeder_chunk` is its name from when only feeder rows
    /// travelled this way.)
    #[serde(alias = "feeder_chunk")]
    DataChunk {
        /// CRC-32 of the whole deflated data: which data set this is a piece of.
        crc32: u32,
        /// Its place, from 0.
        index: u32,
        /// Its bytes, base64.
        data: String,
    },
    /// Run the plan's `setup` steps once, on the agent named, before the start
    /// ([`crate::once`]); it answers `setup_done`.
    Setup(crate::once::OnceCommand),
    /// Run the plan's `teardown` steps once, on the agent named, after the load; it answers
    /// `teardown_done`. Agents that waited after their load end when they hear it.
    Teardown(crate::once::OnceCommand),
}

/// The assignments of the numbered agents `agent-0` … `agent-{count-1}`: each one's index is its
/// number, the order the coordinator launches and keeps its agents in. (Until this stop the empty
/// map meant the order of the ids as strings, `agent-10` before `agent-2`, while the coordinator
/// kept them by number: the two never matched beyond 10 agents, so every start carried the full
/// map, about 16 bytes per agent to every agent — 88 KB to each of 5,000 — and the start skew
/// grew with it. Up to 10 agents both orders are the same, so older coordinators' empty maps
/// mean what they meant.)
pub fn numbered_assignments(agent_count: u32) -> BTreeMap<AgentId, u32> {
    (0..agent_count)
        .map(|i| (AgentId::numbered(i), i))
        .collect()
}

/// The numbered agents `agent-0` … `agent-{count-1}` in index order.
pub fn numbered_agents(agent_count: u32) -> Vec<AgentId> {
    (0..agent_count).map(AgentId::numbered).collect()
}

/// What a start command carries as `assignments`: nothing when they are the numbered agents'
/// ([`numbered_assignments`]), else all of them.
pub fn compact_assignments(
    assignments: BTreeMap<AgentId, u32>,
    agent_count: u32,
) -> BTreeMap<AgentId, u32> {
    let numbered = assignments.len() == agent_count as usize
        && assignments
            .iter()
            .all(|(agent, &i)| *agent == AgentId::numbered(i));
    if numbered {
        BTreeMap::new()
    } else {
        assignments
    }
}

/// `agent`'s index in a start command's `assignments` (compacted or not), if it has one.
pub fn agent_index(
    assignments: &BTreeMap<AgentId, u32>,
    agent_count: u32,
    agent: &AgentId,
) -> Option<u32> {
    if !assignments.is_empty() {
        return assignments.get(agent).copied();
    }
    let number: u32 = agent.as_str().strip_prefix("agent-")?.parse().ok()?;
    (number < agent_count && AgentId::numbered(number) == *agent).then_some(number)
}

/// A change to the list of agents carrying the load, from an instant on (the `roster` module
/// applies it; see also [`crate::split`]): it names only the agents that leave the list and
/// those that join it, so it is a few bytes whatever the number of agents (a full list of every
/// survivor's index, sent to every agent, made each loss cost O(N²) bytes on the broker). Every
/// agent keeps the list itself (it knows it from the start command) and applies the changes in
/// `seq` order, so each one computes its own new index by the same rule the coordinator does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    /// Its number in the run: 1 for the first, each next one + 1. Agents apply them in this
    /// order; one heard again changes nothing.
    pub seq: u32,
    /// From when, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The carriers that leave the list (lost agents), all in the same instant; the others keep
    /// their order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<AgentId>,
    /// Agents that join the list (a replacement), each at its index in the new list, applied
    /// after `lost`, in index order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined: Vec<Joined>,
    /// How many agents carry the load from then on (a check of the list each agent keeps).
    pub agent_count: u32,
}

/// An agent that joins the carriers ([`Reassignment::joined`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// Which agent.
    pub agent: AgentId,
    /// Its index in the new list.
    pub index: u32,
    /// The start index of the agent whose place it takes: its feeder rows and VU numbers are
    /// that agent's.
    pub slot: u32,
}

/// A status message from an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusMessage {
    /// Protocol version.
    #[serde(default = "crate::wire::current_version")]
    pub version: u32,
    /// Which agent speaks.
    pub agent: AgentId,
    /// When the agent sent it, in milliseconds since the Unix epoch (0: not said, an older
    /// agent). The coordinator judges an agent's silence by what it *sent*, not by when the
    /// coordinator got round to handling it.
    #[serde(default)]
    pub sent_ms: u64,
    /// The agent's count of status messages, from 1 (0: not said). A higher number than any seen
    /// so far is news from the agent, however late it arrives.
    #[serde(default)]
    pub seq: u64,
    /// What it says.
    #[serde(flatten)]
    pub status: AgentStatus,
}

impl StatusMessage {
    /// A message of the current protocol version, without a send time or number.
    pub fn new(agent: AgentId, status: AgentStatus) -> Self {
        Self {
            version: crate::PROTOCOL_VERSION,
            agent,
            sent_ms: 0,
            seq: 0,
            status,
        }
    }

    /// The same message, stamped with its send time and number.
    #[must_use]
    pub fn sent(mut self, sent_ms: u64, seq: u64) -> Self {
        self.sent_ms = sent_ms;
        self.seq = seq;
        self
    }
}

/// What an agent reports about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentStatus {
    /// Connected, subscribed, waiting for a start command.
    Ready {
        /// OS process id.
        pid: u32,
        /// Host name.
        host: String,
    },
    /// The load began; the first virtual users are running.
    Started {
        /// When, in microseconds since the Unix epoch.
        at_us: u64,
    },
    /// Still alive (sent every second, between frames too).
    Heartbeat {
        /// Virtual users running now.
        vus: u32,
    },
    /// Done: the last frame is published. The coordinator knows how many frames to expect.
    Finished {
        /// Number of frames published (sequence numbers `0..frames`).
        frames: u64,
        /// Requests sent in all.
        requests: u64,
    },
    /// A failure the agent cannot recover from (bad plan, cannot reach the target, …).
    Error {
        /// What went wrong.
        message: String,
    },
    /// The connection dropped without a goodbye (the agent's MQTT last will).
    Lost,
    /// The agent asks for the whole run to end, on every agent, for this reason (a `unique`
    /// feeder with `on_exhausted: end_run` ran out of rows). Sent before its `finished`.
    EndRun {
        /// Why, for the summary's reason.
        reason: String,
    },
    /// The `setup` command ran: what it did, and (when it succeeded) the variables it extracted,
    /// sealed ([`crate::once`]).
    SetupDone {
        /// Its figures, and why it failed if it did.
        result: crate::once::PhaseSummary,
        /// Its variables, as [`crate::once::seal_vars`] wrote them; empty when it failed.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        vars: String,
    },
    /// The `teardown` command ran: what it did.
    TeardownDone {
        /// Its figures, and why it failed if it did.
        result: crate::once::PhaseSummary,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode, encode};
    use proptest::prelude::*;

    fn agent() -> AgentId {
        AgentId::numbered(1)
    }

    #[test]
    fn status_messages_round_trip() {
        for status in [
            AgentStatus::Ready {
                pid: 7,
                host: "h".into(),
            },
            AgentStatus::Started { at_us: 1 },
            AgentStatus::Heartbeat { vus: 3 },
            AgentStatus::Finished {
                frames: 10,
                requests: 99,
            },
            AgentStatus::Error {
                message: "x".into(),
            },
            AgentStatus::Lost,
            AgentStatus::EndRun {
                reason: "feeder ids ran out of rows".into(),
            },
        ] {
            let msg = StatusMessage::new(agent(), status).sent(1_700_000_000_123, 4);
            assert_eq!(decode::<StatusMessage>(&encode(&msg)).ok(), Some(msg));
        }
    }

    #[test]
    fn messages_of_older_agents_have_no_send_time() {
        let msg: StatusMessage =
            decode(br#"{"version":1,"agent":"a","type":"heartbeat","vus":2}"#).expect("valid");
        assert_eq!((msg.sent_ms, msg.seq), (0, 0));
        assert_eq!(msg.status, AgentStatus::Heartbeat { vus: 2 });
    }

    #[test]
    fn a_feeder_chunk_of_an_older_coordinator_is_a_data_chunk() {
        let msg: AgentCommandMessage = decode(
            br#"{"version":1,"run":"r","type":"feeder_chunk","crc32":1,"index":2,"data":"AA=="}"#,
        )
        .expect("valid");
        assert_eq!(
            msg.command,
            AgentCommand::DataChunk {
                crc32: 1,
                index: 2,
                data: "AA==".into()
            }
        );
    }

    #[test]
    fn unknown_versions_are_refused() {
        let err = decode::<StatusMessage>(br#"{"version":9,"agent":"a","type":"lost"}"#)
            .expect_err("version 9 is unknown");
        assert!(err.to_string().contains("unsupported message version 9"));
        assert!(decode::<StatusMessage>(br#"{"agent":"a","type":"lost"}"#).is_err());
    }

    proptest! {
        #[test]
        fn commands_round_trip(start in 0u64..u64::MAX / 2, graceful in 0u64..1_000_000, n in 1u32..50) {
            let run = RunId::new("r").expect("valid");
            let assignments: BTreeMap<AgentId, u32> = (0..n).map(|i| (AgentId::numbered(i), i)).collect();
            let moved = Reassignment { seq: 1, at_ms: start, lost: vec![AgentId::numbered(0)], joined: vec![Joined { agent: AgentId::new("agent-0-r1").expect("valid"), index: 0, slot: 0 }], agent_count: n };
            for command in [
                AgentCommand::Start { plan: serde_json::json!({"a": 1}), assignments, agent_count: n, start_at_ms: start, secrets: BTreeMap::from([("K".to_string(), "v".to_string())]), allowed_targets: Some(vec!["10.0.0.0/8".into()]), reassigned: vec![moved.clone()], feeder_data: Some(crate::feeder_data::FeederData { chunks: 2, bytes: 9, crc32: 7 }), body_data: Some(crate::body_data::BodyData { chunks: 1, bytes: 3, crc32: 8 }), setup_vars: BTreeMap::from([("token".to_string(), "t".to_string())]) },
                AgentCommand::DataChunk { crc32: 7, index: 1, data: "AAAA".into() },
                AgentCommand::Setup(crate::once::OnceCommand { agent: AgentId::numbered(0), plan: serde_json::json!({"b": 2}), vars: BTreeMap::new(), secrets: BTreeMap::from([("K".to_string(), "v".to_string())]), allowed_targets: None, timeout_ms: graceful }),
                AgentCommand::Teardown(crate::once::OnceCommand { agent: AgentId::numbered(1), plan: serde_json::json!({}), vars: BTreeMap::from([("token".to_string(), "t".to_string())]), secrets: BTreeMap::new(), allowed_targets: Some(vec!["h".into()]), timeout_ms: 60_000 }),
                AgentCommand::Reassign(moved),
                AgentCommand::Ramp { at_ms: start, stages: serde_json::json!([{"duration": "1s", "vus": 2}]) },
                AgentCommand::Stop { graceful_ms: graceful },
            ] {
                let msg = AgentCommandMessage { version: 1, run: run.clone(), command };
                prop_assert_eq!(decode::<AgentCommandMessage>(&encode(&msg)).ok(), Some(msg));
            }
        }
    }
}

#[cfg(test)]
mod assignment_tests {
    use super::*;

    #[test]
    fn numbered_agents_need_no_map_and_every_agent_finds_the_same_index() {
        for count in [1u32, 2, 9, 10, 11, 101, 1000] {
            let full = numbered_assignments(count);
            assert!(compact_assignments(full.clone(), count).is_empty());
            let mut seen = std::collections::BTreeSet::new();
            for (agent, index) in &full {
                assert_eq!(agent_index(&BTreeMap::new(), count, agent), Some(*index));
                assert_eq!(agent_index(&full, count, agent), Some(*index));
                seen.insert(*index);
            }
            assert_eq!(seen.len(), count as usize, "indexes 0..{count}, each once");
        }
        // By number, not as strings (agent-10 sorts before agent-2 as a string).
        let eleven = numbered_assignments(11);
        assert_eq!(eleven[&AgentId::numbered(10)], 10);
        assert_eq!(eleven[&AgentId::numbered(2)], 2);
        // The coordinator's own list, agent-i at index i, is what compacts: the start of 5,000
        // agents carries no map.
        let kept: BTreeMap<AgentId, u32> = numbered_agents(5_000).into_iter().zip(0..).collect();
        assert!(compact_assignments(kept, 5_000).is_empty());
    }

    #[test]
    fn other_agent_sets_keep_their_map_and_strangers_have_no_index() {
        let other: BTreeMap<AgentId, u32> = [(AgentId::numbered(0), 0), (AgentId::numbered(5), 1)]
            .into_iter()
            .collect();
        assert_eq!(compact_assignments(other.clone(), 2), other);
        let none = BTreeMap::new();
        for stranger in ["agent-7", "agent-01", "agent-x", "worker-1"] {
            let id = AgentId::new(stranger).expect("valid id");
            assert_eq!(agent_index(&none, 7, &id), None, "{stranger}");
        }
    }
}
