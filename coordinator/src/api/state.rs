//! What every handler is given: the command path, the store to read, and who may do what.

use super::auth::Auth;
use crate::manager::Manager;
use crate::store::Store;
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
}
