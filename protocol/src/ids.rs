//! Newtype ids, so a run id can never be passed where an agent id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id. Ids are used in MQTT topic names, so they must be non-empty and made of
            /// ASCII letters, digits, `-`, `_` and `.` only.
            pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
                let id = id.into();
                if is_valid_id(&id) {
                    Ok(Self(id))
                } else {
                    Err(InvalidId(id))
                }
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

id_type!(
    /// Identifies one run of a test plan.
    RunId
);
id_type!(
    /// Identifies one agent within a run.
    AgentId
);

/// An id that is empty or holds characters that are not allowed in a topic level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {0:?}: use 1-64 ASCII letters, digits, '-', '_' or '.'")]
pub struct InvalidId(pub String);

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl AgentId {
    /// The conventional id of the `index`-th agent of a run (`agent-0`, `agent-1`, …).
    pub fn numbered(index: u32) -> Self {
        Self(format!("agent-{index}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_topic_wildcards_and_separators() {
        for bad in ["", "a/b", "+", "#", "a b", &"x".repeat(65)] {
            assert!(RunId::new(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            RunId::new("r-1_2.3").map(|r| r.to_string()),
            Ok("r-1_2.3".into())
        );
    }
}
