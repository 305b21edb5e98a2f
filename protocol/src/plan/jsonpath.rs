//! A small JSON path: the part of JSONPath that extractions and checks need.
//!
//! Grammar: an optional `$`, then steps, each `.key`, `[N]` (an array index from 0) or
//! `["key"]` / `['key']` (a key with dots or brackets in it); the first `.` may be left out.
//! So `$.data.token`, `data.items[0].id`, `$["a.b"][2]` and `$` (the whole document) are paths.
//! There are no wildcards, filters or slices: a path names at most one value, which is what an
//! extraction into one variable or an equality check needs, and it is evaluated without
//! allocating.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A key of an object.
    Key(String),
    /// An index of an array.
    Index(usize),
}

/// A parsed path; it keeps its source text for messages and for writing the plan back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    source: String,
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parses `text`; the error says where and why it is not a path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |at: usize, why: &str| {
            Err(format!(
                "not a JSON path at byte {at} ({why}); write e.g. `$.data.token` or `items[0].id`"
            ))
        };
        let bytes = text.as_bytes();
        let mut i = usize::from(text.starts_with('$'));
        let mut segments = Vec::new();
        let mut first = true;
        while i < bytes.len() {
            match bytes[i] {
                b'[' => {
                    let rest = &text[i + 1..];
                    let (segment, used) = match rest.chars().next() {
                        Some(q @ ('"' | '\'')) => match rest[1..].find([q]) {
                            Some(n) if rest[1 + n + 1..].starts_with(']') => {
                                (Segment::Key(rest[1..1 + n].to_string()), n + 3)
                            }
                            _ => return bad(i, "a quoted key must be closed by its quote and `]`"),
                        },
                        _ => {
                            let Some(close) = rest.find(']') else {
                                return bad(i, "`[` without `]`");
                            };
                            match rest[..close].parse::<usize>() {
                                Ok(n) => (Segment::Index(n), close + 1),
                                Err(_) => {
                                    return bad(
                                        i,
                                        "an index must be a number from 0, a key in quotes",
                                    )
                                }
                            }
                        }
                    };
                    segments.push(segment);
                    i += 1 + used;
                }
                b'.' => {
                    let start = i + 1;
                    let end = key_end(text, start);
                    if end == start {
                        return bad(i, "`.` must be followed by a key");
                    }
                    segments.push(Segment::Key(text[start..end].to_string()));
                    i = end;
                }
                _ if first && i == 0 => {
                    let end = key_end(text, 0);
                    if end == 0 {
                        return bad(0, "unexpected character");
                    }
                    segments.push(Segment::Key(text[..end].to_string()));
                    i = end;
                }
                _ => return bad(i, "expected `.key` or `[index]`"),
            }
            first = false;
        }
        if text.trim().is_empty() {
            return bad(0, "it is empty");
        }
        Ok(Self {
            source: text.to_string(),
            segments,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The steps of the path.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The value the path names in `doc`, if there is one.
    pub fn get<'v>(&self, doc: &'v Value) -> Option<&'v Value> {
        self.segments
            .iter()
            .try_fold(doc, |v, segment| match (segment, v) {
                (Segment::Key(k), Value::Object(m)) => m.get(k),
                (Segment::Index(n), Value::Array(a)) => a.get(*n),
                _ => None,
            })
    }
}

/// Where a bare key starting at `start` ends: at the next `.`, `[` or `]`, or the end.
fn key_end(text: &str, start: usize) -> usize {
    text[start..]
        .find(['.', '[', ']'])
        .map_or(text.len(), |n| start + n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    #[test]
    fn dotted_and_indexed_paths_parse_alike() {
        let a = JsonPath::parse("$.data.items[0].id").expect("valid");
        let b = JsonPath::parse("data.items[0].id").expect("valid");
        assert_eq!(a.segments(), b.segments());
        assert_eq!(
            a.segments(),
            [key("data"), key("items"), Segment::Index(0), key("id")]
        );
        assert_eq!(a.as_str(), "$.data.items[0].id");
        let quoted = JsonPath::parse(r#"$["a.b"]['c[d]'][12]"#).expect("valid");
        assert_eq!(
            quoted.segments(),
            [key("a.b"), key("c[d]"), Segment::Index(12)]
        );
        assert_eq!(JsonPath::parse("$").expect("valid").segments(), []);
        assert_eq!(
            JsonPath::parse("$[1]").expect("valid").segments(),
            [Segment::Index(1)]
        );
    }

    #[test]
    fn paths_find_values_or_nothing() {
        let doc = json!({"data": {"token": "abc", "items": [{"id": 7}, {"id": 8}], "a.b": true}});
        let get = |p: &str| JsonPath::parse(p).expect("valid").get(&doc).cloned();
        assert_eq!(get("$.data.token"), Some(json!("abc")));
        assert_eq!(get("data.items[1].id"), Some(json!(8)));
        assert_eq!(get(r#"data["a.b"]"#), Some(json!(true)));
        assert_eq!(get("$"), Some(doc.clone()));
        assert_eq!(get("data.items[2]"), None);
        assert_eq!(get("data.token.length"), None);
        assert_eq!(get("data[0]"), None);
        assert_eq!(get("missing"), None);
    }

    #[test]
    fn malformed_paths_say_where() {
        for bad in ["", "$.", "a..b", "a[", "a[x]", "a[-1]", "$x", "a]b"] {
            let e = JsonPath::parse(bad).expect_err(bad);
            assert!(e.contains("not a JSON path"), "{bad}: {e}");
        }
    }
}
