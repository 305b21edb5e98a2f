//! A `script` step as the scenario holds it, and what a call reads from and writes back to its
//! VU: the `this` map (`#{vars, state, response}`) built from the VU before a call and taken
//! apart after it. The call itself runs in `crate::script`; the engine sends its requests.

use crate::http::{decode::decoded_body, Captured};
use crate::script::ScriptResponse;
use rhai::{Dynamic, Map};
use std::cell::Cell;
use std::sync::Arc;

/// A compiled `script: NAME` step.
#[derive(Debug)]
pub struct ScriptCall {
    /// Index of the step's label in the recorder (its check and its requests count there).
    pub label: usize,
    /// Indices (in the recorder) of the groups the step is in, outermost first.
    pub groups: Box<[usize]>,
    /// The function it calls.
    pub function: Arc<str>,
    /// Whether a failure of this step was logged already (it is logged once).
    warned: Cell<bool>,
}

impl ScriptCall {
    pub(super) fn new(label: usize, groups: Box<[usize]>, function: &str) -> Self {
        Self {
            label,
            groups,
            function: function.into(),
            warned: Cell::new(false),
        }
    }
}

/// What a VU keeps for scripts: its state map and its last response. Only plans with scripts
/// give a VU one.
#[derive(Debug, Default)]
pub struct VuScript {
    state: Map,
    last: ScriptResponse,
}

impl VuScript {
    /// The `this` of a call: the VU's variables (`vars`, named by `names`), this state map
    /// (moved out until [`VuScript::end`]), the last response.
    pub(super) fn begin(&mut self, names: &[String], vars: &[String]) -> Dynamic {
        let mut map = Map::new();
        for (name, value) in names.iter().zip(vars) {
            if !name.starts_with('#') {
                map.insert(name.as_str().into(), value.clone().into());
            }
        }
        let mut this = Map::new();
        this.insert("vars".into(), map.into());
        this.insert("state".into(), std::mem::take(&mut self.state).into());
        this.insert("response".into(), self.last.to_map().into());
        this.into()
    }

    /// Takes a finished call's `this` apart (variables written into `vars`, state kept) and
    /// says whether the step's check passed; a failure is logged once per step.
    pub(super) fn end(
        &mut self,
        step: &ScriptCall,
        names: &[String],
        vars: &mut [String],
        this: Option<Dynamic>,
        result: Result<bool, String>,
    ) -> bool {
        let mut result = result;
        if let Some(mut this) = this.and_then(|t| t.try_cast::<Map>()) {
            if let Some(state) = this.remove("state").and_then(|s| s.try_cast::<Map>()) {
                self.state = state;
            }
            if let Some(written) = this.remove("vars").and_then(|v| v.try_cast::<Map>()) {
                if let Err(e) = write_vars(names, vars, written) {
                    result = result.and(Err(format!("{}(): {e}", step.function)));
                }
            }
        }
        match result {
            Ok(passed) => passed,
            Err(reason) => {
                if !step.warned.replace(true) {
                    tracing::warn!(
                        step = %step.function,
                        %reason,
                        "a script call failed; it counts as a failed check of its step (logged \
                         once per step)"
                    );
                }
                false
            }
        }
    }

    /// Notes the VU's last response.
    pub(super) fn keep(&mut self, response: ScriptResponse) {
        self.last = response;
    }
}

/// Writes the values of `written` that differ back into `vars`.
fn write_vars(names: &[String], vars: &mut [String], written: Map) -> Result<(), String> {
    let mut unknown = Vec::new();
    for (name, value) in written {
        let value = if value.is_string() {
            value.into_string().unwrap_or_default()
        } else {
            value.to_string()
        };
        match names.iter().position(|n| n.as_str() == name.as_str()) {
            Some(i) if !name.starts_with('#') => {
                if vars[i] != value {
                    vars[i] = value;
                }
            }
            _ => unknown.push(name.to_string()),
        }
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "set variable(s) the plan does not define: {} (declare them under `vars:`)",
            unknown.join(", ")
        ))
    }
}

/// A response as scripts see it; `status` 0 with `error` when there was none.
pub fn response_of(
    status: u16,
    captured: Option<&Captured>,
    error: Option<String>,
) -> ScriptResponse {
    let Some(c) = captured else {
        return ScriptResponse {
            status,
            error,
            ..ScriptResponse::default()
        };
    };
    ScriptResponse {
        status,
        headers: c
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&decoded_body(c)).into_owned(),
        error,
    }
}
