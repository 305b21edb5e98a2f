//! `herd-coordinator`: the actors that drive a distributed load test, and the adapters behind
//! their boundaries. The `herd` binary (`coordinator/herd/`) chooses the adapters and runs them;
//! this library never does, and knows nothing of the agent's code.
//!
//! Read it top-down; each layer uses only the ones below it (ARCHITECTURE.md, "Dependency rules"):
//! - **Entry points** — [`api`] (HTTP API, SSE, auth), [`scheduler`] (schedules that fire
//!   commands), [`intake`] (the MQTT command topic), and with the `aws` feature [`aws`]'s SQS
//!   intake and SNS events. All of them hand commands to:
//! - [`manager`] — the one command path (create/update/delete tests, start/stop/ramp runs,
//!   schedules, idempotence by command id); it starts and follows:
//! - [`run`] — the `RunActor` (actix), one per run: an explicit state machine (launching →
//!   waiting for ready → running → stopping → completed / degraded / failed / cancelled) with a
//!   deadline on every state, so no run can hang. It launches agents through a [`launcher`],
//!   commands them through an [`bus::AgentBus`], feeds their frames to the
//!   [`aggregate::Aggregator`], writes to a [`store::Store`] and publishes an observable view.
//! - **Boundaries** (traits, with the types they carry): [`bus`] (agents' messages, decoded once),
//!   [`launcher`], [`store`], [`events`] (lifecycle events out).
//! - **Local adapters**: [`mqtt`] (the coordinator's MQTT session, plain or TLS), [`broker`] (the
//!   embedded rumqttd on loopback), `launcher::local` (child processes), `store::embedded`
//!   (SQLite). **AWS adapters** ([`aws`], feature `aws`, on by default): SQS, SNS, DynamoDB,
//!   ECS, IoT data plane.
//! - **Leaves**: [`aggregate`] (merging per-second frames across agents), [`calendar`] (when a
//!   schedule fires), [`config`] (`herd.toml`, validated, every problem at once), [`metrics`].
//! - [`report`] — a run's single-file HTML report, from its stored results (used by [`api`] and
//!   the CLI).
//!
//! The actors only hold the boundary traits, never a concrete adapter, so the AWS adapters slot
//! in beside the local ones and tests use fakes.

pub mod aggregate;
pub mod api;
#[cfg(feature = "aws")]
pub mod aws;
pub mod broker;
pub mod bus;
pub mod calendar;
pub mod config;
pub mod events;
pub mod export;
#[cfg(test)]
mod fakes;
#[cfg(test)]
mod fuzz_tests;
pub mod intake;
pub mod launcher;
pub mod manager;
pub mod metrics;
pub mod mqtt;
pub mod output;
pub mod report;
pub mod run;
pub mod scheduler;
pub mod store;
