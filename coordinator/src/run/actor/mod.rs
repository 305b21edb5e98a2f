//! The run actor: one per run, owning its state machine, its agents' bookkeeping and its aggregator.
//!
//! Everything reaches it as a message (agent status and frames from the bus, process exits from
//! the launcher, cancel requests), and a 100 ms tick enforces every deadline: heartbeats, the
//! current phase's time limit, the aggregator's grace period and the final drain.
//!
//! What the run learns is stored as it goes ([`persist`]): changed seconds with their merge state,
//! agents' records, the start time; agents' messages are acknowledged to the bus only once stored.
//! So a coordinator that dies mid-run can be replaced by one that [`resume`]s the run.

//! The actor is cut by concern, each file an `impl RunActor` block: the state machine
//! (`machine`: the struct, launching, starting, losing agents, the tick), who is alive (`alive`:
//! send times, taking lost agents back, the start's lead), the messages it handles
//! (`handlers`), storing as it goes (`persist`, over the bookkeeping of `ledger`), the end
//! (`finalize`, retrying its writes in `retry`; the summary's seconds, of which only those that
//! may still change stay in memory, in `seconds`), live ramps (`ramp`), a lost agent's share of the load (`loss`) and its replacement (`replace`), stopping on a broken `abort_on_fail` threshold (`abort`), an agent ending the run
//! early (`end_run`) and
//! resuming (`resume`); the start's large feeder rows go out in chunks before it
//! (`start_data`). The per-phase data is in `stage`.
//! `ledger`, `pending`, `seconds` and `stage` import nothing of the actor; everything else imports `machine` for the
//! struct, and this module only declares and re-exports, so no file imports its parent.

mod abort;
mod alive;
mod end_run;
mod finalize;
mod handlers;
mod ledger;
mod loss;
mod machine;
mod once;
mod once_state;
mod pending;
mod persist;
mod ramp;
mod replace;
mod resume;
mod retry;
mod seconds;
mod stage;
mod start_data;

pub use handlers::Cancel;
#[cfg(test)]
pub(crate) use handlers::{Crash, SecondsInMemory};
pub use machine::RunActor;
pub use ramp::{Ramp, RampRefused, Ramped};
