//! A small JSON Schema checker for the schemas herd publishes (`herd schema live`,
//! `herd schema commands`), so a test can check a real message against the published schema
//! without a validator dependency. It understands what schemars writes: `$ref` to `#/$defs/…`,
//! `type` (one or several, `integer` as a whole number), `properties`, `required`,
//! `additionalProperties`, `items`, `anyOf`/`oneOf`/`allOf`, `const`, `enum` and `minimum`.
//! Anything else in a schema is refused, so a schema it cannot read fails the test instead of
//! passing it.

use serde_json::Value;

/// Every place `value` breaks `schema` (empty when it validates), as `path: problem`.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check(schema, schema, value, "$", &mut problems);
    problems
}

const KNOWN: &[&str] = &[
    "$schema",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "format",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "const",
    "enum",
    "minimum",
    "default",
];

fn check(root: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            out.push(format!("{path}: not allowed"));
        }
        return;
    };
    for key in obj.keys() {
        if !KNOWN.contains(&key.as_str()) {
            out.push(format!(
                "{path}: the checker does not understand the keyword {key:?}"
            ));
        }
    }
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        match r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs").and_then(|d| d.get(name)))
        {
            Some(target) => check(root, target, value, path, out),
            None => out.push(format!("{path}: unresolvable $ref {r}")),
        }
    }
    if let Some(t) = obj.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| is_type(value, t)) {
            out.push(format!("{path}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(c) = obj.get("const") {
        if c != value {
            out.push(format!("{path}: {value} is not {c}"));
        }
    }
    if let Some(e) = obj.get("enum").and_then(Value::as_array) {
        if !e.contains(value) {
            out.push(format!("{path}: {value} is not one of {e:?}"));
        }
    }
    if let (Some(min), Some(v)) = (obj.get("minimum").and_then(Value::as_f64), value.as_f64()) {
        if v < min {
            out.push(format!("{path}: {v} < {min}"));
        }
    }
    if let Some(fields) = value.as_object() {
        let props = obj.get("properties").and_then(Value::as_object);
        for name in obj
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = name.as_str() {
                if !fields.contains_key(name) {
                    out.push(format!("{path}: {name} is required"));
                }
            }
        }
        for (name, v) in fields {
            let sub = format!("{path}.{name}");
            match props.and_then(|p| p.get(name)) {
                Some(s) => check(root, s, v, &sub, out),
                None => {
                    if let Some(extra) = obj.get("additionalProperties") {
                        check(root, extra, v, &sub, out);
                    }
                }
            }
        }
    }
    if let (Some(items), Some(list)) = (obj.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            check(root, items, v, &format!("{path}[{i}]"), out);
        }
    }
    for (key, need) in [("anyOf", 1..=usize::MAX), ("oneOf", 1..=1)] {
        if let Some(options) = obj.get(key).and_then(Value::as_array) {
            let passing = options
                .iter()
                .filter(|o| {
                    let mut sub = Vec::new();
                    check(root, o, value, path, &mut sub);
                    sub.is_empty()
                })
                .count();
            if !need.contains(&passing) {
                out.push(format!(
                    "{path}: {passing} of the {key} options match {value}"
                ));
            }
        }
    }
    for s in obj
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check(root, s, value, path, out);
    }
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_u64() || value.is_i64(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::validate;
    use serde_json::json;

    #[test]
    fn it_finds_what_is_wrong_and_passes_what_is_right() {
        let schema = json!({
            "type": "object", "required": ["n", "kind"],
            "properties": {
                "n": {"type": "integer", "minimum": 0},
                "kind": {"$ref": "#/$defs/Kind"},
                "maybe": {"anyOf": [{"type": "null"}, {"type": "string"}]},
                "list": {"type": "array", "items": {"type": "number"}},
                "map": {"type": "object", "additionalProperties": {"type": "integer"}}
            },
            "$defs": {"Kind": {"enum": ["a", "b"]}}
        });
        let good = json!({"n": 3, "kind": "a", "maybe": null, "list": [1.5, 2], "map": {"200": 4}});
        assert_eq!(validate(&schema, &good), Vec::<String>::new());
        let bad = json!({"n": -1.5, "kind": "c", "maybe": 3, "list": ["x"], "map": {"200": "4"}});
        let problems = validate(&schema, &bad);
        for needle in ["$.n:", "$.kind:", "$.maybe:", "$.list[0]:", "$.map.200:"] {
            assert!(
                problems.iter().any(|p| p.starts_with(needle)),
                "{needle} in {problems:?}"
            );
        }
        assert!(validate(&schema, &json!({"n": 1}))
            .iter()
            .any(|p| p.contains("kind is required")));
        assert!(
            !validate(&json!({"pattern": "x"}), &json!("y")).is_empty(),
            "unknown keywords fail"
        );
    }
}
