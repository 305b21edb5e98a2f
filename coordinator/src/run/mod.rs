//! One run of a test plan, driven by a [`RunActor`].
//!
//! [`start`] spawns the actor on the current actix system and returns a [`RunHandle`]: an address
//! to cancel it, an observable [`RunView`] (what a progress line or a console shows) and the final
//! summary. What a run is given is in `spec`; the actor's observable states in [`phase`]; the
//! agents' bookkeeping in [`agents`]; who carries the load after agents are lost in [`shares`]; turning aggregates into the summary in [`summary`]; carrying
//! a run on after a coordinator restart in [`resume`], from what `stored` reads back.
//!
//! Dependencies point one way: the data modules (`spec`, `view`, `phase`, `agents`, `shares`,
//! `summary`, `stored`) import nothing of the actor; the actor imports them; `handle` and `resume` start the
//! actor. No module here imports this one: it only declares and re-exports.

mod actor;
pub mod agents;
mod handle;
pub mod liveness;
pub mod phase;
pub mod resume;
pub mod secrets;
pub mod shares;
mod spec;
mod stored;
pub mod summary;
pub mod targets;
mod view;
pub mod watch;

pub use actor::{Cancel, Ramp, RampRefused, Ramped, RunActor};
pub use handle::{start, RunHandle};
pub use phase::Phase;
pub use spec::{RunDeps, RunSpec, Timeouts, LEASE};
pub use view::RunView;

#[cfg(test)]
mod resume_tests;
#[cfg(test)]
mod tests;
