//! What a command carries beside its plan and the plan needs before it runs: the values of the
//! plan's secrets, extra starting variables, and the run's allow-list of targets. The start
//! command and the setup/teardown commands carry the same three, and apply them the same way.

use crate::error::AgentError;
use herd_protocol::allow::AllowList;
use herd_protocol::plan::Plan;
use std::collections::BTreeMap;

/// Makes the plan's secrets variables of every VU (their values came in `command`, never in the
/// plan), adds `vars` over the plan's own, and puts the allow-list in force.
pub(crate) fn apply(
    plan: &mut Plan,
    command: &str,
    secrets: &BTreeMap<String, String>,
    vars: BTreeMap<String, String>,
    allowed_targets: Option<Vec<String>>,
) -> Result<(), AgentError> {
    for secret in &plan.secrets {
        let value = secrets.get(&secret.name).ok_or_else(|| {
            AgentError::Session(format!(
                "the {command} command lacks the value of secret {}",
                secret.name
            ))
        })?;
        plan.vars.push((secret.name.clone(), value.clone()));
    }
    plan.vars.extend(vars);
    let allowed = allowed_targets
        .map(|list| {
            AllowList::parse(&list)
                .map_err(|(i, e)| AgentError::Session(format!("allowed_targets[{i}]: {e}")))
        })
        .transpose()?;
    crate::http::restrict(allowed);
    Ok(())
}
