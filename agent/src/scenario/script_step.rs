//! A `script` step as the scenario holds it, and what a call reads from and writes back to its
//! VU: the `this` map (`#{vars, state, response}`) built from the VU before a call and taken
//! apart after it. The call itself runs in `crate::script`; the engine sends its requests.

use super::{Program, VuState};
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
pub(super) struct VuScript {
    state: Map,
    last: ScriptResponse,
}

impl Program {
    /// The `this` of a call for `vu`: its variables, its state map (moved out until
    /// [`Program::end_script`]), its last response.
    pub fn begin_script(&self, vu: &mut VuState) -> Dynamic {
        let kept = vu.script.get_or_insert_with(Box::default);
        let mut vars = Map::new();
        for (name, value) in self.var_names.iter().zip(&vu.vars) {
            if !name.starts_with('#') {
                vars.insert(name.as_str().into(), value.clone().into());
            }
        }
        let mut this = Map::new();
        this.insert("vars".into(), vars.into());
        this.insert("state".into(), std::mem::take(&mut kept.state).into());
        this.insert("response".into(), kept.last.to_map().into());
        this.into()
    }

    /// Takes a finished call's `this` apart into `vu` (variables written, state kept) and says
    /// whether the step's check passed; a failure is logged once per step.
    pub fn end_script(
        &self,
        step: &ScriptCall,
        vu: &mut VuState,
        this: Option<Dynamic>,
        result: Result<bool, String>,
    ) -> bool {
        let mut result = result;
        if let Some(this) = this.and_then(|t| t.try_cast::<Map>()) {
            let mut this = this;
            if let Some(state) = this.remove("state").and_then(|s| s.try_cast::<Map>()) {
                if let Some(kept) = vu.script.as_mut() {
                    kept.state = state;
                }
            }
            if let Some(vars) = this.remove("vars").and_then(|v| v.try_cast::<Map>()) {
                if let Err(e) = self.write_vars(vu, vars) {
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

    /// Writes the values of `vars` that differ back into the VU's variables.
    fn write_vars(&self, vu: &mut VuState, vars: Map) -> Result<(), String> {
        let mut unknown = Vec::new();
        for (name, value) in vars {
            let value = if value.is_string() {
                value.into_string().unwrap_or_default()
            } else {
                value.to_string()
            };
            match self
                .var_names
                .iter()
                .position(|n| n.as_str() == name.as_str())
            {
                Some(i) if !name.starts_with('#') => {
                    if vu.vars[i] != value {
                        vu.vars[i] = value;
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

    /// Notes a script's own request's response as `vu`'s last.
    pub fn keep_script_response(&self, vu: &mut VuState, response: &ScriptResponse) {
        if let Some(kept) = vu.script.as_mut() {
            kept.last.clone_from(response);
        }
    }

    /// Notes `vu`'s last response for scripts (plans with scripts only).
    pub fn keep_response(&self, vu: &mut VuState, status: u16, captured: Option<&Captured>) {
        let Some(kept) = vu.script.as_mut() else {
            return;
        };
        kept.last = response_of(status, captured, None);
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
