//! The coordinator's side of a plan's `secrets` ([`herd_protocol::plan::secrets`]): values are
//! read here, from this process's environment or a file (relative paths from its working
//! directory), when a run is accepted (to refuse a missing one, naming it) and again when the
//! start command is built, so a value never rests in the store or in the plan. The plan's JSON
//! stored with the run has its credential headers masked ([`stored_plan`]).

use herd_protocol::plan::secrets::{redact_plan_json, resolve};
use herd_protocol::plan::{FieldError, Plan};
use std::collections::BTreeMap;

/// The values of `plan`'s secrets, or the first one that cannot be read.
pub fn values(plan: &Plan) -> Result<BTreeMap<String, String>, FieldError> {
    resolve(
        &plan.secrets,
        |var| std::env::var(var).ok(),
        |path| std::fs::read_to_string(path).map_err(|e| e.to_string()),
    )
}

/// The plan as the store keeps it and the API shows it: credential headers masked (secrets are
/// references only, so they need nothing).
pub fn stored_plan(plan: &Plan) -> serde_json::Value {
    let mut json = plan.to_json();
    redact_plan_json(&mut json);
    json
}
