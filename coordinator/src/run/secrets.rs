//! The coordinator's side of a plan's `secrets` ([`herd_protocol::plan::secrets`]): values are
//! read here, from this process's environment or a file (relative paths from its working
//! directory), when a run is accepted (to refuse a missing one, naming it) and again when the
//! start command is built, so a value never rests in the store or in the plan. The plan's JSON
//! stored with the run has its credential headers masked ([`stored_plan`]), and text agents send
//! back is masked before it is logged or kept ([`redact`]).

use herd_protocol::plan::secrets::{redact_plan_json, resolve};
use herd_protocol::plan::{FieldError, Plan, Redactor, Step};
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
    // An OTLP output's headers are typically its credentials (an API key, a tenant token).
    if let Some(outputs) = json.get_mut("outputs").and_then(|o| o.as_array_mut()) {
        for output in outputs {
            if let Some(headers) = output
                .pointer_mut("/otlp/headers")
                .and_then(|h| h.as_object_mut())
            {
                headers
                    .values_mut()
                    .for_each(|v| *v = serde_json::Value::from("***"));
            }
        }
    }
    json
}

/// Masks `plan`'s secret values and literal credential headers in text that came from elsewhere
/// (an agent's error message) before it is logged, stored or shown.
pub fn redact(plan: &Plan, text: &str) -> String {
    let values = values(plan).unwrap_or_default();
    // Every request's headers, nested ones (groups, branches, repeats) too.
    let mut headers = Vec::new();
    for steps in plan.all_steps() {
        herd_protocol::plan::walk(steps, "", &mut |_, step| {
            if let Step::Request(r) = step {
                headers.extend(r.headers.iter());
            }
        });
    }
    Redactor::new(values.values().map(String::as_str))
        .with_headers(headers)
        .redact(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_text_is_masked_and_the_stored_plan_has_no_credential() {
        std::env::set_var("HERD_UNIT_SECRET_A", "value-from-env-81");
        let plan = herd_protocol::plan::from_value(&serde_json::json!({
            "version": 1, "name": "s", "target": "http://127.0.0.1:1",
            "load": {"stages": [{"duration": "1s", "vus": 1}]},
            "secrets": {"A": {"env": "HERD_UNIT_SECRET_A"}},
            "scenario": [{"get": "/${A}", "headers": {"X-Api-Key": "literal-82"}}],
        }))
        .expect("valid");
        assert_eq!(
            redact(&plan, "GET /value-from-env-81 with literal-82 failed"),
            "GET /*** with *** failed"
        );
        let stored = stored_plan(&plan).to_string();
        assert!(!stored.contains("literal-82") && !stored.contains("value-from-env-81"));
        assert!(stored.contains("HERD_UNIT_SECRET_A"), "{stored}");
    }
}
