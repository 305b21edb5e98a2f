//! JSON feeders: a file (`users.json`, or any file with `format: json`), or inline `rows`, that
//! holds an array of objects, one object per row.
//!
//! The columns are the union of the objects' keys, in name order (a plan reads them by name, so
//! order only matters to whoever reads the plan's JSON form); a row that
//! lacks a key has an empty value there (data exported from an API often leaves optional fields
//! out, and a plan that needs the value can check for it with `if: "${key} != ''"`). Strings are
//! taken as they are, numbers and booleans as their JSON text, `null` as empty, and nested arrays
//! and objects as their compact JSON text (a template can put them into a JSON body as they are).
//!
//! The file is read element by element ([`serde::de::SeqAccess`]), so a 64 MiB file never exists
//! as one tree of JSON values: only one object at a time does, beside the rows already made.

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// Builds a feeder's records (the header row of column names, then the data rows, all as long
/// as the header) from JSON objects, one at a time.
#[derive(Debug, Default)]
struct Builder {
    columns: Vec<String>,
    index: HashMap<String, usize>,
    rows: Vec<Vec<String>>,
}

impl Builder {
    /// Adds item `i` of the array; the error names it.
    fn push(&mut self, i: usize, item: Value) -> Result<(), String> {
        let Value::Object(object) = item else {
            return Err(format!(
                "row [{i}]: must be an object (a map of column names to values), got {}",
                super::cx::kind(&item)
            ));
        };
        let mut row = vec![String::new(); self.columns.len()];
        for (key, value) in object {
            let at = match self.index.get(&key) {
                Some(at) => *at,
                None => {
                    let at = self.columns.len();
                    self.index.insert(key.clone(), at);
                    self.columns.push(key);
                    at
                }
            };
            if row.len() <= at {
                row.resize(at + 1, String::new());
            }
            row[at] = cell(value);
        }
        self.rows.push(row);
        Ok(())
    }

    /// The records: header first (in name order), every row as wide as the header (a key a
    /// row lacks is empty there).
    fn finish(self) -> Vec<Vec<String>> {
        let mut order: Vec<usize> = (0..self.columns.len()).collect();
        order.sort_by(|a, b| self.columns[*a].cmp(&self.columns[*b]));
        let mut records = Vec::with_capacity(self.rows.len() + 1);
        records.push(order.iter().map(|i| self.columns[*i].clone()).collect());
        records.extend(self.rows.into_iter().map(|mut r| {
            order
                .iter()
                .map(|i| r.get_mut(*i).map(std::mem::take).unwrap_or_default())
                .collect()
        }));
        records
    }
}

/// One value as a cell's text.
fn cell(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        nested @ (Value::Array(_) | Value::Object(_)) => nested.to_string(),
    }
}

/// Records (header, then rows) from JSON text holding an array of objects; the error names the
/// row (`row [3]`) or the line and column of broken JSON.
pub fn parse_json(text: &str) -> Result<Vec<Vec<String>>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut de = serde_json::Deserializer::from_str(text);
    let mut builder = Builder::default();
    RowsSeed(&mut builder)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| {
            if e.is_data() || e.is_syntax() || e.is_eof() {
                format!("not a JSON array of objects: {e}")
            } else {
                e.to_string()
            }
        })?;
    Ok(builder.finish())
}

/// Records from inline JSON objects (`rows: [{user: alice}, …]` in a plan).
pub fn json_records(items: &[Value]) -> Result<Vec<Vec<String>>, String> {
    let mut builder = Builder::default();
    for (i, item) in items.iter().enumerate() {
        builder.push(i, item.clone())?;
    }
    Ok(builder.finish())
}

/// Reads the top-level array into a [`Builder`], one element at a time.
struct RowsSeed<'a>(&'a mut Builder);

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of objects, one per row")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while let Some(item) = seq.next_element::<Value>()? {
            self.0.push(i, item).map_err(de::Error::custom)?;
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_the_union_of_keys_and_missing_keys_are_empty() {
        let text = r#"[
            {"user": "alice", "id": 1, "admin": true, "tags": ["a", "b"]},
            {"user": "bob", "profile": {"age": 30}, "id": null},
            {}
        ]"#;
        let records = parse_json(text).expect("valid");
        assert_eq!(records[0], ["admin", "id", "profile", "tags", "user"]);
        let col = |name: &str| records[0].iter().position(|c| c == name).expect(name);
        assert_eq!(records.len(), 4);
        assert!(records.iter().all(|r| r.len() == 5), "{records:?}");
        assert_eq!(records[1][col("id")], "1");
        assert_eq!(records[1][col("admin")], "true");
        assert_eq!(records[1][col("tags")], r#"["a","b"]"#);
        assert_eq!(records[1][col("profile")], "");
        assert_eq!(records[2][col("user")], "bob");
        assert_eq!(records[2][col("profile")], r#"{"age":30}"#);
        assert_eq!(records[2][col("id")], "");
        assert!(records[3].iter().all(String::is_empty));
    }

    #[test]
    fn bad_json_names_the_row_or_the_place() {
        let not_object = parse_json(r#"[{"a": 1}, {"a": 2}, "three"]"#).expect_err("a string");
        assert!(
            not_object.contains("row [2]: must be an object") && not_object.contains("line 1"),
            "{not_object}"
        );
        let broken = parse_json("[{\"a\": 1},\n {\"a\": }]").expect_err("broken");
        assert!(broken.contains("line 2"), "{broken}");
        let map = parse_json(r#"{"a": 1}"#).expect_err("not an array");
        assert!(
            map.contains("expected an array of objects, one per row"),
            "{map}"
        );
        let trailing = parse_json("[] x").expect_err("trailing text");
        assert!(trailing.contains("trailing characters"), "{trailing}");
        let inline = json_records(&[serde_json::json!({"a": 1}), serde_json::json!([1])])
            .expect_err("a list");
        assert_eq!(
            inline,
            "row [1]: must be an object (a map of column names to values), got a list"
        );
    }
}
