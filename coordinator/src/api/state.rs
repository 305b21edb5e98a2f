//! What every handler is given: the command path, the store to read, who may do what, where
//! audit events go, and how many writes each credential may make.

use super::auth::Auth;
use super::limiter::WriteLimiter;
use crate::events::EventSink;
use crate::manager::Manager;
use crate::store::Store;
use herd_protocol::clock::Clock;
use std::sync::Arc;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The one command path.
    pub manager: Manager,
    /// Reads.
    pub store: Arc<dyn Store>,
    /// Who may do what.
    pub auth: Arc<Auth>,
    /// Where `audit.write` events go.
    pub events: Arc<dyn EventSink>,
    /// Each credential's share of writes.
    pub writes: Arc<WriteLimiter>,
    /// The wall clock audit entries are stamped with.
    pub clock: Clock,
}
