//! Collecting every problem of `herd.toml`, each with its key: the validators of every section
//! push into one [`Errors`] and go on, so a user sees all mistakes at once.

use std::fmt;

/// One problem in `herd.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, e.g. `launcher.subnets`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

/// Every problem found in `herd.toml`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}", e.key, e.problem)?;
        }
        Ok(())
    }
}

/// The problems found so far, while validation goes on.
pub(super) struct Errors(pub(super) Vec<ConfigError>);

impl Errors {
    pub(super) fn push(&mut self, key: &str, problem: impl Into<String>) {
        self.0.push(ConfigError {
            key: key.to_owned(),
            problem: problem.into(),
        });
    }

    /// `value` if present, otherwise an error that `key` is required `when`.
    pub(super) fn required(&mut self, key: &str, value: Option<String>, when: &str) -> String {
        match value {
            Some(v) if !v.trim().is_empty() => v,
            _ => {
                self.push(key, format!("required {when}"));
                String::new()
            }
        }
    }

    pub(super) fn seconds(
        &mut self,
        key: &str,
        value: Option<i64>,
        range: (i64, i64),
        default: u64,
    ) -> u64 {
        match value {
            None => default,
            Some(v) if v >= range.0 && v <= range.1 => v.unsigned_abs(),
            Some(v) => {
                self.push(
                    key,
                    format!("{v} is out of range {}..={}", range.0, range.1),
                );
                default
            }
        }
    }
}

/// An error unless `url` starts with one of `schemes` and `://` and has something after it.
pub(super) fn url_with_scheme(errors: &mut Errors, key: &str, url: &str, schemes: &[&str]) {
    let ok = schemes.iter().any(|s| {
        url.strip_prefix(s)
            .and_then(|r| r.strip_prefix("://"))
            .is_some_and(|rest| !rest.is_empty())
    });
    if !ok {
        errors.push(
            key,
            format!("{url:?} is not a {} URL", schemes.join(" or ")),
        );
    }
}
