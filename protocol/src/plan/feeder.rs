//! Data feeders: rows of test data (users, search terms, ids) handed to virtual users.
//!
//! A feeder is a table whose columns name variables: a CSV file whose header row names them, or
//! a JSON array of objects whose keys do ([`super::feeder_json`]). Its rows travel *inside the
//! plan*: a file named in a plan (`file:`) is read by the coordinator when it loads the plan
//! (through [`PlanFiles`](super::PlanFiles), since this crate does no I/O) and written into the
//! plan's JSON as `rows`, so agents on other machines need no shared file system; large rows
//! travel beside the start command in chunks ([`crate::feeder_data`]). The data is capped at
//! [`MAX_FEEDER_BYTES`].
//!
//! Across agents every row belongs to exactly one agent: agent `i` of `n` takes rows
//! `i, i + n, i + 2n, …` (as it takes arrivals in the open model), so two agents never use the
//! same row. Within an agent, `shared` mode hands the agent's rows to iterations in turn
//! (round-robin over all its VUs, starting over at the end), `per_vu` mode gives each VU one
//! row for its whole life, `random` gives each iteration a row drawn uniformly from the agent's
//! rows, and `unique` hands each of the agent's rows to one iteration only, once in the whole
//! run; when they run out, [`OnExhausted`] says what happens.

/// How the rows of one agent are handed to its virtual users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeederMode {
    /// Every iteration of any VU takes the agent's next row, round-robin.
    Shared,
    /// Each VU takes one row when it starts and keeps it.
    PerVu,
    /// Every iteration takes a row drawn uniformly from the agent's rows.
    Random,
    /// Every iteration takes the agent's next row, and no row is ever taken twice in the run.
    Unique,
}

impl FeederMode {
    /// Every mode, in the order the docs list them.
    pub const ALL: [FeederMode; 4] = [
        FeederMode::Shared,
        FeederMode::PerVu,
        FeederMode::Random,
        FeederMode::Unique,
    ];

    /// How the mode is written in a plan.
    pub fn as_str(self) -> &'static str {
        match self {
            FeederMode::Shared => "shared",
            FeederMode::PerVu => "per_vu",
            FeederMode::Random => "random",
            FeederMode::Unique => "unique",
        }
    }
}

/// What happens when an agent's rows of a `unique` feeder run out (`on_exhausted:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnExhausted {
    /// The VU that finds no row left stops (its iteration does not run). Once all of an
    /// agent's VUs stopped, its load is over (open model: it plays no more arrivals); the run
    /// ends when every agent's is. The default: every row of the feeder gets used.
    #[default]
    StopVu,
    /// The whole run ends, on every agent, as soon as one agent runs out; the summary's reason
    /// names the feeder. Rows other agents had not reached stay unused.
    EndRun,
}

impl OnExhausted {
    /// How it is written in a plan.
    pub fn as_str(self) -> &'static str {
        match self {
            OnExhausted::StopVu => "stop_vu",
            OnExhausted::EndRun => "end_run",
        }
    }
}

/// A validated feeder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feeder {
    /// Its name in the plan (`feeders.NAME`).
    pub name: String,
    /// How rows are handed out.
    pub mode: FeederMode,
    /// Variable names, from the header row.
    pub columns: Vec<String>,
    /// Data rows, each as long as `columns`; at least one.
    pub rows: Vec<Vec<String>>,
    /// What happens when a `unique` feeder runs out (the default for other modes).
    pub on_exhausted: OnExhausted,
}

/// The most bytes of feeder data (all cells of all feeders) a plan may carry. Rows larger than
/// [`crate::feeder_data::INLINE_LIMIT`] travel to agents in chunks beside the start command,
/// since MQTT brokers cap a message (1 MiB for herd's embedded broker, 128 KiB for AWS IoT Core).
pub const MAX_FEEDER_BYTES: usize = 64 * 1024 * 1024;

impl Feeder {
    /// The rows agent `index` of `count` uses: every row whose number is `index` modulo `count`.
    pub fn rows_for(&self, count: u32, index: u32) -> impl Iterator<Item = &[String]> {
        let count = count.max(1) as usize;
        self.rows
            .iter()
            .skip(index as usize)
            .step_by(count)
            .map(Vec::as_slice)
    }

    /// Bytes of data in its cells (header included).
    pub fn data_bytes(&self) -> usize {
        self.columns
            .iter()
            .chain(self.rows.iter().flatten())
            .map(String::len)
            .sum()
    }
}

/// Parses CSV text (RFC 4180: `,` separators, `"` quotes with `""` inside, LF or CRLF line ends)
/// into records. Empty lines are skipped; a UTF-8 byte-order mark is ignored.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    // Whether the current field was quoted, and whether the record has any content yet.
    let mut quoted = false;
    let mut started = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if field.is_empty() && !quoted => {
                quoted = true;
                started = true;
                let opened = line;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            field.push(ch);
                        }
                        None => return Err(format!("line {opened}: a quoted field is not closed")),
                    }
                }
                match chars.peek() {
                    None | Some(',' | '\n' | '\r') => {}
                    Some(_) => {
                        return Err(format!(
                            "line {line}: text after the closing quote of a field"
                        ))
                    }
                }
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                quoted = false;
                started = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if started || !field.is_empty() {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                quoted = false;
                started = false;
                line += 1;
            }
            _ => {
                field.push(c);
                started = true;
            }
        }
    }
    if started || !field.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// Splits CSV records into the header (the variable names) and data rows of equal width; the
/// error names the offending line (counted among non-empty records, 1 = the header).
pub fn table(records: Vec<Vec<String>>) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut records = records.into_iter();
    let Some(header) = records.next() else {
        return Err("has no header row (the first row names the variables)".into());
    };
    let rows: Vec<Vec<String>> = records.collect();
    if let Some((i, row)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != header.len())
    {
        return Err(format!(
            "row {} has {} fields but the header has {}",
            i + 2,
            row.len(),
            header.len()
        ));
    }
    Ok((header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn csv_follows_rfc_4180() {
        let text = "\u{feff}user,note\r\nalice,\"says \"\"hi\"\", then, leaves\"\r\n\r\nbob,\"two\nlines\"\ncarol,\n";
        assert_eq!(
            parse_csv(text).expect("valid"),
            strings(&[
                &["user", "note"],
                &["alice", "says \"hi\", then, leaves"],
                &["bob", "two\nlines"],
                &["carol", ""],
            ])
        );
        assert_eq!(
            parse_csv("a,b\n1,2").expect("no final newline"),
            strings(&[&["a", "b"], &["1", "2"]])
        );
        assert_eq!(
            parse_csv("x\n\"\"\n").expect("an empty quoted field"),
            strings(&[&["x"], &[""]])
        );
        assert!(parse_csv("").expect("empty").is_empty());
    }

    #[test]
    fn broken_csv_names_the_line() {
        let open = parse_csv("a\n\"never closed\n").expect_err("unclosed");
        assert!(open.starts_with("line 2:"), "{open}");
        let after = parse_csv("a,b\n\"x\"y,1\n").expect_err("text after quote");
        assert!(after.starts_with("line 2:"), "{after}");
        let width = table(parse_csv("a,b\n1,2\n3\n").expect("csv")).expect_err("short row");
        assert_eq!(width, "row 3 has 1 fields but the header has 2");
        assert!(table(Vec::new()).is_err());
    }

    #[test]
    fn every_row_goes_to_exactly_one_agent() {
        let rows: Vec<Vec<String>> = (0..10).map(|i| vec![i.to_string()]).collect();
        let feeder = Feeder {
            name: "ids".into(),
            mode: FeederMode::Shared,
            columns: vec!["id".into()],
            rows,
            on_exhausted: OnExhausted::StopVu,
        };
        let mut seen: Vec<String> = Vec::new();
        let mut sizes = Vec::new();
        for index in 0..3 {
            let mine: Vec<String> = feeder.rows_for(3, index).map(|r| r[0].clone()).collect();
            sizes.push(mine.len());
            seen.extend(mine);
        }
        seen.sort_by_key(|s| s.parse::<u32>().unwrap_or(u32::MAX));
        assert_eq!(seen, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
        assert_eq!(sizes, [4, 3, 3]);
        assert_eq!(feeder.rows_for(1, 0).count(), 10);
        assert_eq!(feeder.data_bytes(), 2 + 10);
    }
}
