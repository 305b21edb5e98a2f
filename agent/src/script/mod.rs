//! The script hook: `script: NAME` steps calling functions of the plan's `scripts:` file (Rhai).
//!
//! Built only when a plan has `scripts:` ([`ScriptHost::new`]): a plain plan constructs no
//! engine and its VUs carry no script state. One engine and one compiled file serve every VU of
//! the agent; what is per VU is the map a call is bound to as `this`:
//! `#{vars, state, response}` — the VU's variables (read and write: written values go back to
//! the VU's variables), a map the script keeps across the VU's iterations, and the VU's last
//! response (`status`, `body`, `headers`). The function's result decides the step's check:
//! `false`, an error, or running past the time limit is a failed check; anything else passes.
//!
//! - `sandbox` — the engine: what exists for scripts (no file, network or process access), the
//!   helpers they get, and the per-call time limit;
//! - `bridge` — each call on a blocking thread, its `request(…)`s sent through the VU's own
//!   client ([`Event`]).

mod bridge;
mod sandbox;

#[cfg(test)]
mod tests;

pub use bridge::{Event, ScriptRequest, ScriptResponse};

use herd_protocol::duration;
use herd_protocol::plan::Scripts;
use rhai::{CallFnOptions, Dynamic, Engine, EvalAltResult, Scope, AST};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The plan's script file, compiled, and the engine its calls run in.
pub struct ScriptHost {
    engine: Engine,
    ast: AST,
    file: String,
    call_timeout: Duration,
}

impl std::fmt::Debug for ScriptHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptHost")
            .field("file", &self.file)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl ScriptHost {
    /// Compiles the plan's scripts into the sandboxed engine.
    pub fn new(scripts: &Scripts) -> Result<Self, String> {
        let mut engine = sandbox::engine();
        bridge::register(&mut engine);
        let ast = engine
            .compile(&scripts.source)
            .map_err(|e| format!("{}: {e}", scripts.file))?;
        Ok(Self {
            engine,
            ast,
            file: scripts.file.clone(),
            call_timeout: scripts.call_timeout,
        })
    }

    /// Starts `function()` with `this` bound to a VU's map, on a blocking thread; the VU serves
    /// the returned [`Call`]'s events until [`Event::Done`].
    pub fn start(self: &Arc<Self>, function: Arc<str>, this: Dynamic) -> Call {
        let (tx, rx) = mpsc::unbounded_channel();
        let host = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let (this, result) = host.run(&function, this, Some(tx.clone()));
            let _ = tx.send(Event::Done {
                this: Some(this),
                result,
            });
        });
        Call { events: rx }
    }

    /// Runs `function()` with `this` on the current thread; its requests go to `vu`.
    fn run(
        &self,
        function: &str,
        mut this: Dynamic,
        vu: Option<mpsc::UnboundedSender<Event>>,
    ) -> (Dynamic, Result<bool, String>) {
        bridge::set_vu(vu);
        sandbox::set_deadline(Some(Instant::now() + self.call_timeout));
        let options = CallFnOptions::new()
            .eval_ast(false)
            .rewind_scope(true)
            .bind_this_ptr(&mut this);
        let result = self.engine.call_fn_with_options::<Dynamic>(
            options,
            &mut Scope::new(),
            &self.ast,
            function,
            (),
        );
        sandbox::set_deadline(None);
        bridge::set_vu(None);
        let result = match result {
            Ok(value) => Ok(value.as_bool().unwrap_or(true)),
            Err(e) => Err(self.explain(function, &e)),
        };
        (this, result)
    }

    fn explain(&self, function: &str, error: &EvalAltResult) -> String {
        if let EvalAltResult::ErrorTerminated(token, at) = error {
            if token.clone().into_string().ok().as_deref() == Some(sandbox::TIMED_OUT) {
                return format!(
                    "{function}() in {} was stopped after computing for {} (scripts.call_timeout; \
                     time waiting on its requests does not count){}",
                    self.file,
                    duration::format(self.call_timeout),
                    at.line()
                        .map_or(String::new(), |l| format!(", at line {l}"))
                );
            }
        }
        format!("{function}() in {}: {error}", self.file)
    }
}

/// A call in progress, as its VU sees it.
pub struct Call {
    events: mpsc::UnboundedReceiver<Event>,
}

impl Call {
    /// The call's next request, or its end.
    pub async fn next(&mut self) -> Event {
        self.events.recv().await.unwrap_or(Event::Done {
            this: None,
            result: Err("the script's thread ended without an answer".into()),
        })
    }
}
