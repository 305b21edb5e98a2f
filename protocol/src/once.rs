//! `setup` and `teardown` on the wire: the command that has one agent run a phase, and what the
//! phase did (its figures, and setup's variables).
//!
//! The coordinator sends one [`OnceCommand`] on the run's command topic (sealed like every
//! command, [`crate::cmdseal`]): it names the agent that runs it, carries the phase's own plan
//! ([`crate::plan::Plan::phase_plan`]), the secrets' values and, for teardown, setup's
//! variables. The agent answers with a status (`setup_done` / `teardown_done`) carrying a
//! [`PhaseSummary`]; setup's also carries the variables it extracted, which every VU starts
//! with. Those may be secrets (a login token): status topics are not sealed by the broker, so
//! the agent seals them with the run's command key ([`seal_vars`]), which only the coordinator and
//! the run's own agents hold, and nobody logs their values.

use crate::frame::Checks;
use crate::AgentId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Run a phase's steps once (`setup` or `teardown` commands).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OnceCommand {
    /// The agent that runs it. For teardown, every other agent, which waited after its load in
    /// case it was chosen, ends when it hears the command.
    pub agent: AgentId,
    /// The phase's plan, in its JSON form.
    pub plan: serde_json::Value,
    /// Variables every step starts with on top of the plan's (teardown: setup's). Absent when
    /// there are none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// The plan's secrets by name, resolved by the coordinator (as in the start command).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Host globs and CIDRs every connection must fall in ([`crate::allow`]); absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_targets: Option<Vec<String>>,
    /// How long the phase may take, all its steps together, in milliseconds.
    pub timeout_ms: u64,
}

impl std::fmt::Debug for OnceCommand {
    /// Names of variables and secrets only: their values may be secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnceCommand")
            .field("agent", &self.agent)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("allowed_targets", &self.allowed_targets)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

/// What a setup or teardown did: the summary's `setup` and `teardown`. Its requests are not in
/// the load's totals (they would skew its rate and latency); the target saw them all the same.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSummary {
    /// The agent that ran it (empty: it did not run).
    pub agent: String,
    /// Requests sent, each redirect hop counted (as the load counts them).
    pub requests: u64,
    /// Requests that failed (transport error, or HTTP status >= 400).
    pub errors: u64,
    /// Checks (and extractions) passed and failed.
    #[serde(default)]
    pub checks: Checks,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Per step label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub steps: BTreeMap<String, PhaseStep>,
    /// Setup: the variables it gave every VU (names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<String>,
    /// Why it failed, naming the step (`setup[0] (login): …`); absent when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PhaseSummary {
    /// One line on what it did, as the summary table shows it: `2 requests, 0 errors, checks 3
    /// passed 0 failed, 14 ms on agent-0`, and `FAILED: …` with why.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} requests, {} errors, checks {} passed {} failed, {} ms",
            self.requests, self.errors, self.checks.passed, self.checks.failed, self.duration_ms
        );
        if !self.agent.is_empty() {
            line.push_str(&format!(" on {}", self.agent));
        }
        if !self.vars.is_empty() {
            line.push_str(&format!("; every VU starts with {}", self.vars.join(", ")));
        }
        if let Some(error) = &self.error {
            line.push_str(&format!("; FAILED: {error}"));
        }
        line
    }
}

/// One step's figures in a [`PhaseSummary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseStep {
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Checks passed and failed.
    #[serde(default)]
    pub checks: Checks,
    /// Responses by status code.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status_codes: BTreeMap<String, u64>,
    /// Failures by kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_kinds: BTreeMap<String, u64>,
}

/// What starts sealed variables in [`seal_vars`]'s text.
#[cfg(feature = "runtime")]
const SEALED_PREFIX: &str = "sealed:";

/// Setup's variables as a status carries them: sealed with the run's command key for the
/// agent's status `topic` (base64, after `sealed:`) when the agent has one, else JSON text.
#[cfg(feature = "runtime")]
pub fn seal_vars(
    key: Option<&crate::cmdseal::RunKey>,
    topic: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, crate::cmdseal::SealError> {
    use base64::Engine;
    let text = serde_json::to_string(vars).unwrap_or_else(|_| "{}".into());
    let Some(key) = key else {
        return Ok(text);
    };
    let sealed = crate::cmdseal::seal(key, &vars_aad(topic), text.as_bytes())?;
    Ok(format!(
        "{SEALED_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(sealed)
    ))
}

/// The variables [`seal_vars`] wrote for `topic`. With a key they must be sealed with it.
#[cfg(feature = "runtime")]
pub fn open_vars(
    key: Option<&crate::cmdseal::RunKey>,
    topic: &str,
    text: &str,
) -> Result<BTreeMap<String, String>, String> {
    use base64::Engine;
    let plain = match (key, text.strip_prefix(SEALED_PREFIX)) {
        (Some(key), Some(b64)) => {
            let sealed = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("setup's variables are not base64: {e}"))?;
            crate::cmdseal::open(key, &vars_aad(topic), &sealed)
                .map_err(|e| format!("setup's variables: {e}"))?
        }
        (Some(_), None) => {
            return Err("setup's variables are not sealed with the run's key".into());
        }
        (None, Some(_)) => {
            return Err("setup's variables are sealed, and this coordinator has no run key".into());
        }
        (None, None) => text.as_bytes().to_vec(),
    };
    if plain.is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_slice(&plain).map_err(|e| format!("setup's variables are not a map: {e}"))
}

/// What sealed variables are bound to: the status topic, marked apart from commands (whose
/// associated data is the command topic), so neither can pass for the other.
#[cfg(feature = "runtime")]
fn vars_aad(topic: &str) -> String {
    format!("{topic}#setup-vars")
}

#[cfg(all(test, feature = "runtime"))]
mod tests {
    use super::*;
    use crate::cmdseal::RunKey;

    #[test]
    fn sealed_vars_open_only_with_the_key_and_topic() {
        let vars = BTreeMap::from([("token".to_string(), "s3cret".to_string())]);
        let key = RunKey::new("k1");
        let topic = "herd/runs/r/agents/agent-0/status";
        let text = seal_vars(Some(&key), topic, &vars).expect("sealed");
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(open_vars(Some(&key), topic, &text), Ok(vars.clone()));
        assert!(open_vars(Some(&RunKey::new("k2")), topic, &text).is_err());
        assert!(open_vars(Some(&key), "herd/runs/r/agents/agent-1/status", &text).is_err());
        assert!(open_vars(None, topic, &text).is_err());
        // Without keys (a bus that seals nothing), plain JSON.
        let plain = seal_vars(None, topic, &vars).expect("plain");
        assert_eq!(open_vars(None, topic, &plain), Ok(vars));
        assert!(open_vars(Some(&key), topic, &plain).is_err());
    }
}
