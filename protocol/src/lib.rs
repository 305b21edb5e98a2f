//! `herd-protocol`: every contract that crosses a process boundary in herd, and nothing that does I/O.
//!
//! The coordinator and the agents both depend on this crate, and nothing else defines a wire format:
//! - [`plan`] — the test plan users write (YAML or JSON), validated into typed config with *every*
//!   error reported at once, each with its field path;
//! - [`agent`] — commands the coordinator sends to agents (start at, ramp, stop) and the status
//!   messages agents send back (ready, started, heartbeat, finished, error, lost);
//! - [`frame`] — the per-second result frame an agent publishes, with its latency histograms;
//! - [`command`] — commands to the coordinator (create/update/delete a test, start/stop a run,
//!   schedule), from the HTTP API, the scheduler or a queue, each with an id for idempotency;
//! - [`event`] — what the coordinator reports back (`run.completed`, `command.rejected`, …);
//! - [`summary`] — the summary of a finished run (`herd run --json`, events, the API);
//! - [`histogram`] — the HdrHistogram codec (V2 deflate, base64) and percentile helpers;
//! - [`topics`] — MQTT topic names;
//! - [`wire`] — the versioned JSON envelope: every message carries `version`, and an unknown
//!   version is refused with a clear error instead of being half-understood;
//! - [`ids`], [`duration`], [`split`] — newtype ids, human durations, exact splitting of totals.

pub mod agent;
pub mod command;
pub mod duration;
pub mod event;
pub mod frame;
pub mod histogram;
pub mod ids;
pub mod plan;
pub mod split;
pub mod summary;
pub mod topics;
pub mod wire;

pub use ids::{AgentId, RunId};
pub use wire::{WireError, PROTOCOL_VERSION};
