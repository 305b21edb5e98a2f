//! `herd-agent`: the process that generates load for one share of a herd run.
//!
//! An agent connects to the run's MQTT broker, reports itself ready, waits for the coordinator's
//! start command and its absolute start time, runs its exact share of the plan's virtual users
//! against the target, publishes one result frame per wall-clock second, and leaves cleanly once
//! the broker has acknowledged its last frame. [`run_agent`] is the whole life of an agent; the
//! `herd agent` subcommand of the coordinator calls it.
//!
//! Modules, from the outside in:
//! - `runner` — the agent's life: [`run_agent`], [`AgentConfig`], [`AgentReport`]; glues MQTT
//!   commands to the engine and engine frames to MQTT;
//! - `once` — the plan's `setup`/`teardown` steps, run once when the coordinator names this agent;
//! - `command_plan` — what the start and the setup/teardown commands carry beside their plan
//!   (secret values, starting variables, the allow-list), applied to it the same way;
//! - `session` — the MQTT session (rumqttc): connection and retries, TLS for AWS IoT Core
//!   ([`TlsOptions`]), last will, command routing, and tracking of every QoS1 publish until the
//!   broker acknowledges it;
//! - [`engine`] — the load engine: closed model (schedule of VU targets, virtual users) and open
//!   model (this agent's share of the arrival schedule, workers under the in-flight cap), the
//!   controller that drains and aborts; usable without MQTT through [`engine::run_load`] (the
//!   `herd-bench-agent` diagnostic binary does exactly that);
//! - [`health`] — the agent's own CPU use, for the health every frame carries;
//! - `scenario` — the plan's scenario compiled for this agent: variables and templates, data
//!   feeders, checks and extractions, each VU's variables;
//! - [`http`] — prepared requests, the connections each VU owns (HTTP/1.1 spoken directly,
//!   HTTP/2 on the h2 crate driven by the VU's own task, TLS by rustls), redirects, failure classification;
//! - [`recorder`] — per-second buckets of outcomes, turned into gap-free [`Frame`]s;
//! - [`error`] — the crate's error type, [`AgentError`].
//!
//! Threading: the agent is built for a current-thread tokio runtime. The engine and its virtual
//! users run on that thread in a `LocalSet` and share state through `Rc`/`RefCell`, so recording
//! a request costs no lock; only the MQTT event loop is a separate (Send) task.
//!
//! [`Frame`]: herd_protocol::frame::Frame

mod command_plan;
pub mod engine;
pub mod error;
pub mod health;
pub mod http;
mod once;
pub mod recorder;
mod runner;
mod scenario;
mod script;
mod session;

pub use error::AgentError;
pub use runner::{run_agent, AgentConfig, AgentReport, DEFAULT_START_WAIT};
pub use session::{PemSource, TlsOptions};
