//! What `herd run` changes in a plan before validating it: `--vus N --duration D` or
//! `--rps R --duration D` (the load), `--set path=value` (any field), and `${env.NAME}`
//! references resolved from the environment of the process that loads the plan.
//!
//! All of it works on the plan's value tree, before the plan is parsed, so the result is
//! validated like any plan and errors name the same fields. Environment values are resolved where
//! the plan is loaded (`herd run`, `herd validate`), never on agents: a plan carries the values it
//! runs with, and a name the environment lacks is a validation error at its field.

use super::cx::{kind, FieldError, PlanErrors};
use serde_json::{json, Map, Value};

/// Changes asked for on the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--vus N`: a constant number of VUs for `duration`.
    pub vus: Option<u32>,
    /// `--rps R`: a constant arrival rate for `duration`.
    pub rps: Option<f64>,
    /// `--duration D`.
    pub duration: Option<String>,
    /// `--set path=value`, in order (`options.timeout=5s`, `load.stages[0].vus=3`).
    pub set: Vec<(String, String)>,
}

impl Overrides {
    /// Applies the overrides to a plan's value tree; returns what was overridden, as shown in
    /// the summary (`vus=3`, `duration=3s`, `options.timeout=5s`).
    pub fn apply(&self, plan: &mut Value) -> Result<Vec<String>, PlanErrors> {
        let mut shown = Vec::new();
        let mut errors = Vec::new();
        let err = |errors: &mut Vec<FieldError>, path: &str, message: String| {
            errors.push(FieldError {
                path: path.to_string(),
                message,
            })
        };
        let load = match (self.vus, self.rps, &self.duration) {
            (Some(_), Some(_), _) => {
                err(&mut errors, "--rps", "give --vus or --rps, not both".into());
                None
            }
            (Some(vus), None, Some(d)) => {
                shown.extend([format!("vus={vus}"), format!("duration={d}")]);
                Some(json!({"vus": vus, "duration": d}))
            }
            (None, Some(rps), Some(d)) => {
                shown.extend([format!("rps={rps}"), format!("duration={d}")]);
                Some(json!({"arrival": [{"duration": d, "rps": rps}]}))
            }
            (None, None, None) => None,
            (vus, _, None) => {
                let flag = if vus.is_some() { "--vus" } else { "--rps" };
                err(&mut errors, flag, "needs --duration too".to_string());
                None
            }
            (None, None, Some(_)) => {
                err(&mut errors, "--duration", "needs --vus or --rps too".into());
                None
            }
        };
        if let (Some(_), Some(Value::Object(_))) = (&load, plan.get("scenarios")) {
            let flag = if self.vus.is_some() { "--vus" } else { "--rps" };
            err(
                &mut errors,
                flag,
                "the plan has several scenarios, each with its own load: change one with \
                 --set scenarios.NAME.load.vus=N (or .load.arrival[0].rps=R)"
                    .into(),
            );
        } else if let (Some(load), Value::Object(m)) = (load, &mut *plan) {
            m.insert("load".into(), load);
        }
        for (path, text) in &self.set {
            let value =
                serde_yaml::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.clone()));
            match set_path(plan, path, value) {
                Ok(()) => shown.push(format!("{path}={text}")),
                Err(e) => err(&mut errors, &format!("--set {path}"), e),
            }
        }
        if errors.is_empty() {
            Ok(shown)
        } else {
            Err(PlanErrors(errors))
        }
    }
}

/// Sets the field at `path` (`a.b[2].c`), creating maps on the way; a list index must exist.
fn set_path(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let mut keys: Vec<(String, Option<usize>)> = Vec::new();
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => {
                let i = rest
                    .strip_suffix(']')
                    .and_then(|i| i.parse::<usize>().ok())
                    .ok_or_else(|| format!("{part:?} is not KEY or KEY[INDEX]"))?;
                (k, Some(i))
            }
            None => (part, None),
        };
        if key.is_empty() {
            return Err(format!("{path:?} has an empty key"));
        }
        keys.push((key.to_string(), index));
    }
    let mut at = root;
    let last = keys.len().saturating_sub(1);
    for (n, (key, index)) in keys.into_iter().enumerate() {
        if !at.is_object() {
            return Err(format!("cannot set {key:?} inside {}", kind(at)));
        }
        let m: &mut Map<String, Value> = at.as_object_mut().ok_or("not a map")?;
        let leaf = n == last && index.is_none();
        if leaf {
            m.insert(key, value);
            return Ok(());
        }
        let next = m.entry(key.clone()).or_insert_with(|| json!({}));
        at = match index {
            None => next,
            Some(i) => {
                let len = next.as_array().map_or(0, Vec::len);
                let item = next
                    .as_array_mut()
                    .and_then(|a| a.get_mut(i))
                    .ok_or_else(|| format!("{key}[{i}] does not exist ({key} has {len} items)"))?;
                if n == last {
                    *item = value;
                    return Ok(());
                }
                item
            }
        };
    }
    Ok(())
}

/// Replaces every `${env.NAME}` in the plan's strings by `env(NAME)`; a name `env` does not know
/// is an error at its field. `$${env.NAME}` stays as written (a literal, for the template).
pub fn resolve_env(plan: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk_strings(plan, String::new(), &mut |path, s| {
        if !s.contains("${env.") {
            return;
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(i) = rest.find("${env.") {
            let escaped = rest[..i].ends_with('$');
            out.push_str(&rest[..i]);
            let after = &rest[i + "${env.".len()..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[i..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            if escaped {
                out.push_str(&rest[i..i + "${env.".len() + end + 1]);
            } else {
                match env(name) {
                    Some(v) => out.push_str(&v),
                    None => errors.push(FieldError {
                        path: path.to_string(),
                        message: format!(
                            "${{env.{name}}}: {name} is not set in the environment of the \
                             process loading the plan (give it with --env {name}=VALUE)"
                        ),
                    }),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        *s = out;
    });
    errors
}

fn walk_strings(v: &mut Value, path: String, f: &mut impl FnMut(&str, &mut String)) {
    match v {
        Value::String(s) => f(&path, s),
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk_strings(item, format!("{path}[{i}]"), f);
            }
        }
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk_strings(item, p, f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_and_fields_are_overridden_and_shown() {
        let mut plan = json!({"load": {"stages": [{"duration": "1m", "vus": 50}]},
                              "options": {"timeout": "1s"}, "scenario": [{"get": "/a"}]});
        let o = Overrides {
            vus: Some(3),
            duration: Some("3s".into()),
            set: vec![
                ("options.timeout".into(), "5s".into()),
                ("scenario[0].get".into(), "/b".into()),
                ("agents".into(), "2".into()),
            ],
            ..Overrides::default()
        };
        let shown = o.apply(&mut plan).expect("applies");
        assert_eq!(
            shown,
            [
                "vus=3",
                "duration=3s",
                "options.timeout=5s",
                "scenario[0].get=/b",
                "agents=2"
            ]
        );
        assert_eq!(plan["load"], json!({"vus": 3, "duration": "3s"}));
        assert_eq!(plan["options"]["timeout"], "5s");
        assert_eq!(plan["scenario"][0]["get"], "/b");
        assert_eq!(plan["agents"], 2);
    }

    #[test]
    fn contradictions_and_missing_fields_are_errors() {
        let mut plan = json!({"scenario": []});
        let both = Overrides {
            vus: Some(1),
            rps: Some(2.0),
            duration: Some("1s".into()),
            ..Overrides::default()
        };
        assert!(both.apply(&mut plan).is_err());
        let alone = Overrides {
            vus: Some(1),
            ..Overrides::default()
        };
        assert!(alone.apply(&mut plan).is_err());
        let missing = Overrides {
            set: vec![("scenario[3].get".into(), "/x".into())],
            ..Overrides::default()
        };
        let e = missing.apply(&mut plan).expect_err("no such step");
        assert!(e.0[0].message.contains("does not exist"), "{e}");
    }

    #[test]
    fn env_references_are_resolved_and_unknown_names_reported() {
        let mut plan = json!({"vars": {"token": "Bearer ${env.TOKEN}", "raw": "$${env.TOKEN}"},
                              "scenario": [{"get": "/${env.NOPE}"}]});
        let env = |name: &str| (name == "TOKEN").then(|| "s3cret".to_string());
        let errors = resolve_env(&mut plan, &env);
        assert_eq!(plan["vars"]["token"], "Bearer s3cret");
        assert_eq!(plan["vars"]["raw"], "$${env.TOKEN}");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "scenario[0].get");
        assert!(errors[0].message.contains("NOPE is not set"));
    }
}
