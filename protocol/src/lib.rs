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
//! - [`ids`], [`duration`], [`split`] — newtype ids, human durations, exact splitting of totals;
//!   [`roster`] — the carriers of the load, changed by reassignments that name only what changed;
//! - [`broker`] — broker URLs (`mqtt`, `mqtts`, `ws`, `wss`), parsed one way for both sides.
//!
//! With the `runtime` feature (agents and the coordinator turn it on; pure users of the types do
//! not), pieces that must not differ between the processes: [`clock`], the wall clock read
//! once and advanced monotonically, [`tls`], the one rustls client builder, and [`sigv4`] with
//! [`aws_credentials`], the presigned WebSocket URL for IoT Core and the credentials it is
//! signed with (the agent has no AWS SDK), [`mqtt_ws`], MQTT over WebSocket signed that way, and
//! [`msgauth`], broker credentials and the MAC that binds a message to its publisher's credential,
//! and [`cmdseal`], commands sealed with their run's key so only its agents read them.

pub mod agent;
pub mod allow;
#[cfg(feature = "runtime")]
pub mod aws_credentials;
pub mod body_data;
pub mod broker;
pub mod chunked;
#[cfg(feature = "runtime")]
pub mod clock;
#[cfg(feature = "runtime")]
pub mod cmdseal;
pub mod command;
pub mod duration;
pub mod event;
pub mod feeder_data;
pub mod frame;
#[cfg(test)]
mod fuzz_tests;
pub mod histogram;
pub mod ids;
pub mod import;
#[cfg(feature = "runtime")]
pub mod mqtt_ws;
#[cfg(feature = "runtime")]
pub mod msgauth;
pub mod once;
pub mod plan;
pub mod roster;
#[cfg(feature = "runtime")]
pub mod sigv4;
pub mod split;
pub mod summary;
#[cfg(feature = "runtime")]
pub mod tls;
pub mod topics;
pub mod wire;

pub use ids::{AgentId, RunId};
pub use wire::{WireError, PROTOCOL_VERSION};
