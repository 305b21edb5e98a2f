//! Names for new runs.

use herd_protocol::RunId;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// A new run id: time-ordered, with random bits so concurrent coordinators do not collide.
pub fn new_run_id() -> RunId {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let random = RandomState::new().hash_one(std::process::id()) & 0xffff_ffff;
    RunId::new(format!("run-{ms:x}-{random:08x}")).expect("run ids are built from [a-z0-9-]")
}
