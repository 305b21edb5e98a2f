//! Building and sending the start command, with a plan's large data in chunks before it.
//!
//! Feeder rows larger than [`herd_protocol::feeder_data::INLINE_LIMIT`] and body files larger
//! than [`herd_protocol::body_data::INLINE_LIMIT`] do not fit the one MQTT message a start
//! command is (brokers cap messages: 1 MiB embedded, 128 KiB on IoT Core), so they are taken out
//! of the plan and sent first, as `data_chunk` commands of at most
//! [`herd_protocol::chunked::CHUNK_BYTES`] each, in order on the run's command topic, and the
//! start says how many chunks of each data set to expect with their checksum. One task publishes
//! them all, then the start, so the start never overtakes its data; agents refuse a start whose
//! data they did not get whole. Agents take the data in between the start command and the start
//! time, so such a plan gets a longer lead ([`herd_protocol::feeder_data::feeder_lead`],
//! [`herd_protocol::body_data::body_lead`]).

use super::machine::RunActor;
use actix::prelude::*;
use herd_protocol::agent::{AgentCommand, AgentCommandMessage};
use herd_protocol::body_data::take_bodies;
use herd_protocol::chunked::ChunkedData;
use herd_protocol::feeder_data::take_rows;
use herd_protocol::PROTOCOL_VERSION;

impl RunActor {
    /// The start command, as every agent of the start gets it (sent by [`RunActor::send_start`]).
    pub(super) fn start_command(&self) -> AgentCommand {
        // The start's agents (a replacement is not among them: it joins by a reassignment).
        let assignments = self
            .shares
            .roster()
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        // Checked when the run was accepted; should a value vanish since, agents refuse the
        // start naming the secret, and the run fails saying so.
        let secrets = crate::run::secrets::values(&self.spec.plan).unwrap_or_else(|e| {
            tracing::error!(run = %self.spec.run, secret = %e.path, "{}", e.message);
            Default::default()
        });
        AgentCommand::Start {
            plan: self.spec.plan.to_json(),
            assignments: herd_protocol::agent::compact_assignments(
                assignments,
                self.spec.plan.agents,
            ),
            agent_count: self.spec.plan.agents,
            start_at_ms: self.stage.start_at_ms().unwrap_or_default(),
            secrets,
            allowed_targets: self.deps.allowed_targets.clone(),
            reassigned: self.shares.history().to_vec(),
            feeder_data: None,
            body_data: None,
            setup_vars: self.once.setup_vars(),
        }
    }

    /// Sends the start command (each time it is sent: the first start and a resumed run's),
    /// preceded by the chunks of its feeder rows and body files when they are too large for it.
    pub(super) fn send_start(&mut self, ctx: &mut Context<Self>) {
        let mut start = self.start_command();
        let mut chunks = Vec::new();
        if let AgentCommand::Start {
            plan,
            feeder_data,
            body_data,
            ..
        } = &mut start
        {
            if let Some((data, pieces)) = take_rows(plan) {
                tracing::info!(run = %self.spec.run, chunks = data.chunks, bytes = data.bytes, "feeder rows go to the agents in chunks");
                chunks.extend(chunk_commands(&data, pieces));
                *feeder_data = Some(data);
            }
            if let Some((data, pieces)) = take_bodies(plan) {
                tracing::info!(run = %self.spec.run, chunks = data.chunks, bytes = data.bytes, "body files go to the agents in chunks");
                chunks.extend(chunk_commands(&data, pieces));
                *body_data = Some(data);
            }
        }
        if chunks.is_empty() {
            self.send(start, ctx);
            return;
        }
        let run = self.spec.run.clone();
        let bus = self.deps.bus.clone();
        let work = async move {
            for command in chunks.into_iter().chain(std::iter::once(start)) {
                let message = AgentCommandMessage {
                    version: PROTOCOL_VERSION,
                    run: run.clone(),
                    command,
                };
                bus.send_command(message).await?;
            }
            Ok::<(), crate::bus::BusError>(())
        };
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| {
            if let Err(e) = result {
                act.fail(format!("cannot command the agents: {e}"), ctx);
            }
        }));
    }
}

/// The `data_chunk` commands that carry `pieces` of the data set `data`.
fn chunk_commands(data: &ChunkedData, pieces: Vec<String>) -> impl Iterator<Item = AgentCommand> {
    let crc32 = data.crc32;
    (0u32..)
        .zip(pieces)
        .map(move |(index, data)| AgentCommand::DataChunk { crc32, index, data })
}
