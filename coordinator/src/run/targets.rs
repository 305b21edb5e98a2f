//! `allowed_targets` before a run starts: a plan whose target the list refuses by name is
//! refused with the target named (400 through the API, exit 2 for `herd run`). What only an
//! address can tell (a name outside every glob, when the list has CIDRs) is left to the agents,
//! which check every connection after resolving it ([`herd_protocol::allow`]).

use herd_protocol::allow::{url_host, AllowList};
use herd_protocol::plan::{FieldError, Plan};

/// Whether `plan` may run under `allowed` (`None`: any target).
pub fn check(plan: &Plan, allowed: Option<&[String]>) -> Result<(), FieldError> {
    let Some(entries) = allowed else {
        return Ok(());
    };
    let list = AllowList::parse(entries).map_err(|(i, e)| FieldError {
        path: format!("allowed_targets[{i}]"),
        message: e,
    })?;
    let host = url_host(&plan.target).unwrap_or_default();
    let is_name = host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_err();
    if list.allows_host(host) || (is_name && list.has_cidrs()) {
        return Ok(());
    }
    Err(FieldError {
        path: "target".into(),
        message: format!(
            "{} is outside allowed_targets ({})",
            plan.target,
            entries.join(", ")
        ),
    })
}
