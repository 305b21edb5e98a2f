//! Parsing of `feeders:`: where each feeder's rows come from (a CSV or JSON file beside the
//! plan, or inline `rows`), how they are handed out (`mode`), and what happens when a `unique`
//! feeder runs out (`on_exhausted`). The data model and its rules are in [`super::feeder`].

use super::cx::{join, kind, Cx, PlanFiles};
use super::feeder::{parse_csv, table};
use super::feeder_json::{json_records, parse_json};
use super::parse_scenario::scalar;
use super::{Feeder, FeederMode, OnExhausted, MAX_FEEDER_BYTES};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The format of a feeder's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// The format a feeder's `format:` names, or its file's extension implies (`.json`; anything
/// else is CSV); `Err` when `format` is not one of them.
fn format_of(spec: &Map<String, Value>) -> Result<Format, Option<&Value>> {
    match spec.get("format") {
        Some(Value::String(f)) if f == "csv" => Ok(Format::Csv),
        Some(Value::String(f)) if f == "json" => Ok(Format::Json),
        Some(other) => Err(Some(other)),
        None => match spec.get("file").and_then(Value::as_str) {
            Some(path) if path.to_ascii_lowercase().ends_with(".json") => Ok(Format::Json),
            _ => Ok(Format::Csv),
        },
    }
}

impl Cx {
    /// Reads the file of every feeder that names one, before the plan is parsed; the records
    /// (or the error, reported here under `feeders.NAME.file`) wait in `file_rows`.
    pub(super) fn read_feeder_files(&mut self, plan: &Value, files: &dyn PlanFiles) {
        let Some(Value::Object(feeders)) = plan.get("feeders") else {
            return;
        };
        for (name, feeder) in feeders {
            let Some(spec) = feeder.as_object() else {
                continue;
            };
            let Some(Value::String(path)) = spec.get("file") else {
                continue;
            };
            let Ok(format) = format_of(spec) else {
                // A bad `format` is reported when the feeder is parsed.
                self.file_rows.insert(name.clone(), None);
                continue;
            };
            let field = format!("feeders.{name}.file");
            let read = files
                .read(path, MAX_FEEDER_BYTES)
                .and_then(|bytes| {
                    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())
                })
                .and_then(|text| match format {
                    Format::Csv => parse_csv(&text),
                    Format::Json => parse_json(&text),
                })
                .map_err(|e| format!("{path}: {e}"));
            if let Err(e) = &read {
                self.err(&field, e.clone());
            }
            self.file_rows.insert(name.clone(), read.ok());
        }
    }

    /// `feeders: {NAME: {file: users.csv | users.json | rows: [[header…], [row…], …] | [{…}, …],
    /// format: csv|json, mode: shared|per_vu|random|unique, on_exhausted: stop_vu|end_run}}`.
    pub(super) fn feeders(&mut self, v: &Value) -> Option<Vec<Feeder>> {
        let Value::Object(m) = v else {
            self.err(
                "feeders",
                format!("must be a map of feeder names to feeders, got {}", kind(v)),
            );
            return None;
        };
        let mut out: Vec<Feeder> = Vec::with_capacity(m.len());
        let mut ok = true;
        for (name, spec) in m {
            match self.feeder(name, spec) {
                Some(f) => out.push(f),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let mut seen = BTreeSet::new();
        for f in &out {
            for c in &f.columns {
                if !seen.insert(c.as_str()) {
                    ok = false;
                    self.err(
                        &join("feeders", &f.name),
                        format!("column {c} is also a column of another feeder"),
                    );
                }
            }
        }
        let bytes: usize = out.iter().map(Feeder::data_bytes).sum();
        if bytes > MAX_FEEDER_BYTES {
            self.err(
                "feeders",
                format!(
                    "{bytes} bytes of rows in all, more than the limit of {MAX_FEEDER_BYTES}: \
                     the rows travel to the agents inside the plan"
                ),
            );
            return None;
        }
        ok.then_some(out)
    }

    fn feeder(&mut self, name: &str, v: &Value) -> Option<Feeder> {
        let path = join("feeders", name);
        let m = self.object(
            v,
            &path,
            &["file", "rows", "format", "mode", "on_exhausted"],
        )?;
        let mode = self.feeder_mode(m, &path);
        let on_exhausted = self.on_exhausted(m, &path, mode);
        let format = match format_of(m) {
            Ok(f) => Some(f),
            Err(v) => {
                let got = v.map_or_else(String::new, ToString::to_string);
                self.err(
                    &join(&path, "format"),
                    format!("must be csv or json, got {got}"),
                );
                None
            }
        };
        let (records, field) = match (m.get("file"), m.get("rows")) {
            (Some(_), Some(_)) => {
                self.err(&path, "give either `file` or `rows`, not both");
                return None;
            }
            (None, None) => {
                self.err(
                    &path,
                    "needs `file: PATH.csv` (or `.json`) or `rows: [[header…], [row…]]`",
                );
                return None;
            }
            (Some(file), None) => {
                let field = join(&path, "file");
                let file = self.string(file, &field)?;
                match self.file_rows.get(name) {
                    Some(Some(records)) => (records.clone(), field),
                    // The read failed and was reported (or the format is bad).
                    Some(None) => return None,
                    None => {
                        self.err(
                            &field,
                            format!(
                                "cannot read {file} here: feeder files are read where a plan is \
                                 loaded from a file (`herd run`, `herd validate`); elsewhere give \
                                 the rows inline with `rows:`"
                            ),
                        );
                        return None;
                    }
                }
            }
            (None, Some(rows)) => {
                let field = join(&path, "rows");
                (self.inline_rows(rows, &field)?, field)
            }
        };
        let json = format == Some(Format::Json) || m.get("rows").is_some_and(is_object_rows);
        let (columns, rows) = match table(records) {
            Ok(t) => t,
            Err(e) => {
                self.err(&field, e);
                return None;
            }
        };
        let mut ok = true;
        for (i, c) in columns.iter().enumerate() {
            let at = if json {
                format!("{field} (key {c:?})")
            } else {
                format!("{field} (header column {})", i + 1)
            };
            ok &= self.var_name(c, &at);
            if columns[..i].contains(c) {
                self.err(&field, format!("column {c} appears twice in the header"));
                ok = false;
            }
        }
        if rows.is_empty() {
            let what = if json {
                "has no row (an empty array)"
            } else {
                "has a header but no data row"
            };
            self.err(&field, what);
            ok = false;
        }
        let (mode, on_exhausted, _) = (mode?, on_exhausted?, format?);
        ok.then(|| Feeder {
            name: name.to_string(),
            mode,
            columns,
            rows,
            on_exhausted,
        })
    }

    fn feeder_mode(&mut self, m: &Map<String, Value>, path: &str) -> Option<FeederMode> {
        let Some(v) = m.get("mode") else {
            return Some(FeederMode::Shared);
        };
        let found = FeederMode::ALL
            .iter()
            .find(|mode| v.as_str() == Some(mode.as_str()));
        if found.is_none() {
            let names: Vec<&str> = FeederMode::ALL.iter().map(|m| m.as_str()).collect();
            self.err(
                &join(path, "mode"),
                format!("must be one of {}, got {v}", names.join(", ")),
            );
        }
        found.copied()
    }

    fn on_exhausted(
        &mut self,
        m: &Map<String, Value>,
        path: &str,
        mode: Option<FeederMode>,
    ) -> Option<OnExhausted> {
        let Some(v) = m.get("on_exhausted") else {
            return Some(OnExhausted::default());
        };
        let field = join(path, "on_exhausted");
        if mode.is_some_and(|m| m != FeederMode::Unique) {
            self.err(
                &field,
                "applies to `mode: unique` only (the other modes start over at the end)",
            );
            return None;
        }
        let found = [OnExhausted::StopVu, OnExhausted::EndRun]
            .into_iter()
            .find(|o| v.as_str() == Some(o.as_str()));
        if found.is_none() {
            self.err(&field, format!("must be stop_vu or end_run, got {v}"));
        }
        found
    }

    /// Inline rows: lists (the first naming the columns), or objects (as in a JSON file).
    fn inline_rows(&mut self, v: &Value, path: &str) -> Option<Vec<Vec<String>>> {
        let Value::Array(items) = v else {
            self.err(
                path,
                format!(
                    "must be a list of rows, the first naming the columns, or a list of \
                     objects; got {}",
                    kind(v)
                ),
            );
            return None;
        };
        if is_object_rows(v) {
            return json_records(items).map_err(|e| self.err(path, e)).ok();
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let cells = match item {
                Value::Array(cells) => cells.iter().map(scalar).collect::<Option<Vec<_>>>(),
                _ => None,
            };
            match cells {
                Some(cells) => out.push(cells),
                None => {
                    self.err(&p, "must be a list of strings, numbers or booleans");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// Whether inline rows are objects (their first item is one).
fn is_object_rows(rows: &Value) -> bool {
    rows.as_array()
        .and_then(|items| items.first())
        .is_some_and(Value::is_object)
}
