//! Wall-clock time for the coordinator, derived from tokio's clock.
//!
//! Agents start at an absolute Unix time and frames are keyed by Unix second, so the coordinator
//! needs wall-clock time. Reading it as "an anchor plus tokio's elapsed time" keeps it monotonic
//! and lets tests drive it with `tokio::time::pause()`.

use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// A monotonic wall clock anchored once.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Instant,
    anchor_unix_ms: u64,
}

impl Clock {
    /// Anchors the clock now.
    pub fn new() -> Self {
        let anchor_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            anchor: Instant::now(),
            anchor_unix_ms,
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> u64 {
        self.anchor_unix_ms + self.anchor.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
