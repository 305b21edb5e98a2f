//! Scheduled runs: stored tests that start by themselves, `at` a time, every day / week / two
//! weeks / month, or on a cron expression in a time zone.
//!
//! Fire times are computed by [`crate::calendar`] (pure, tested with explicit instants, and
//! also used by the manager to show a test's next fire) and kept in the
//! store beside each test (`next_fire_ms`), so schedules survive a restart. The [`Scheduler`] task
//! wakes every [`TICK`], reads the due tests, advances each one's next fire time *first* (so a
//! crash cannot fire it twice) and then submits an ordinary `start_run` command whose id is derived
//! from the test and the due time — the same command path as the API, and idempotent even if the
//! advance was lost.
//!
//! Policies:
//! - **overlap**: a fire whose previous run of the test is still going does not start a second
//!   one; it is skipped with a `schedule.skipped` event.
//! - **missed fires** (the coordinator was down): every fire that came due while it was down is
//!   coalesced into one; that one runs if it is at most [`MISSED_FIRE_GRACE`] late, and is
//!   skipped (with a `schedule.skipped` event) otherwise. Then the schedule continues from now.

pub mod task;
#[cfg(test)]
mod tests;

pub use task::{MISSED_FIRE_GRACE, TICK};
