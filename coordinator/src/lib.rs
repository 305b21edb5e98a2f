//! `herd-coordinator`: the actors that drive a distributed load test, and the adapters they use.
//!
//! One run, from command to stored result (see ARCHITECTURE.md at the repository root):
//! - [`run`] — the `RunActor` (actix), one per run: an explicit state machine (launching →
//!   waiting for ready → running → stopping → completed / degraded / failed / cancelled) with a
//!   deadline on every state, so no run can hang. It launches agents through a [`launcher`],
//!   commands them through an [`bus::AgentBus`], feeds their frames to the
//!   [`aggregate::Aggregator`], writes to a [`store::Store`] and publishes an observable view.
//! - [`aggregate`] — merges per-second frames across agents (dedupe, late frames, missing agents).
//! - [`store`] — where runs, per-second aggregates and summaries live (embedded SQLite here).
//! - [`launcher`] — starts agents: local child processes here.
//! - [`mqtt`] — the coordinator's MQTT session: routes agents' status and frames to run actors and
//!   publishes commands and live aggregates.
//! - [`broker`] — the embedded MQTT broker (rumqttd on loopback) of the local modes.
//! - [`local`] — wires the embedded pieces together for `herd run`.
//! - [`config`] and [`runtime`] — `herd.toml`, validated, and the adapters `herd up` builds from
//!   it, one per boundary.
//!
//! - [`aws`] — the AWS adapters of the same boundaries (SQS, SNS, DynamoDB, ECS, IoT data plane).
//!
//! The actors only hold the boundary traits (launcher, publisher, store), never a concrete
//! adapter, so the AWS adapters can slot in beside the local ones.

pub mod aggregate;
pub mod api;
pub mod aws;
pub mod broker;
pub mod bus;
pub mod clock;
pub mod config;
pub mod events;
#[cfg(test)]
mod fakes;
pub mod intake;
pub mod launcher;
pub mod local;
pub mod manager;
pub mod metrics;
pub mod mqtt;
pub mod run;
pub mod runtime;
pub mod scheduler;
pub mod store;
