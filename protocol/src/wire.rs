//! The versioned JSON envelope shared by every message.
//!
//! Each message type is a struct with a `version` field. [`decode`] checks that field *before*
//! interpreting anything else, so a message from a newer herd is refused with "unsupported
//! version" rather than misread.

use serde::{de::DeserializeOwned, Serialize};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Why a message could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not JSON at all.
    #[error("message is not valid JSON: {0}")]
    Json(String),
    /// The `version` field is missing or not a number.
    #[error("message has no numeric `version` field")]
    MissingVersion,
    /// A version this build does not speak.
    #[error("unsupported message version {found} (this herd speaks version {PROTOCOL_VERSION})")]
    UnsupportedVersion {
        /// The version the message carried.
        found: u64,
    },
    /// JSON of the right version but the wrong shape.
    #[error("malformed message: {0}")]
    Shape(String),
}

/// Serializes a message to JSON bytes.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Serializing our own plain data types to JSON cannot fail (no non-string map keys, no I/O).
    serde_json::to_vec(message).unwrap_or_default()
}

/// Decodes a message, refusing unknown versions first.
///
/// The usual message — an object of this version that fits `T` — is read straight into `T`
/// after its version alone is read ([`Envelope`]); building a `serde_json::Value` of the whole
/// message first, then converting it, cost twice as much on the coordinator's busiest path
/// (thousands of frames a second). Anything else takes the general path, so every refusal is
/// the one it always was.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let is_object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if is_object {
        let current = serde_json::from_slice::<Envelope>(bytes).is_ok_and(|e| {
            e.version.as_ref().and_then(serde_json::Value::as_u64)
                == Some(u64::from(PROTOCOL_VERSION))
        });
        if current {
            if let Ok(message) = serde_json::from_slice(bytes) {
                return Ok(message);
            }
        }
    }
    decode_general(bytes)
}

/// Only a message's version (the rest of the object is skipped, not built).
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    version: Option<serde_json::Value>,
}

/// Decodes through a `serde_json::Value`: what [`decode`] does for anything but the usual
/// message, and what it must agree with.
fn decode_general<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| WireError::Json(e.to_string()))?;
    check_version(&value)?;
    serde_json::from_value(value).map_err(|e| WireError::Shape(e.to_string()))
}

/// Checks the `version` field of an already-parsed message.
pub fn check_version(value: &serde_json::Value) -> Result<(), WireError> {
    match value.get("version").and_then(serde_json::Value::as_u64) {
        None => Err(WireError::MissingVersion),
        Some(v) if v == u64::from(PROTOCOL_VERSION) => Ok(()),
        Some(found) => Err(WireError::UnsupportedVersion { found }),
    }
}

/// Serde helper: the `version` field, always written as [`PROTOCOL_VERSION`].
pub fn current_version() -> u32 {
    PROTOCOL_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Message {
        version: u32,
        name: String,
        #[serde(default)]
        count: u64,
    }

    fn both(json: &str) -> (Result<Message, String>, Result<Message, String>) {
        let bytes = json.as_bytes();
        (
            decode(bytes).map_err(|e| e.to_string()),
            decode_general(bytes).map_err(|e| e.to_string()),
        )
    }

    /// The quick path reads what the general one reads, and refuses nothing differently.
    #[test]
    fn the_quick_path_agrees_with_the_general_one() {
        for json in [
            r#"{"version":1,"name":"a","count":3}"#,
            r#"  {"name":"a","version":1,"extra":[1,{"x":null}]}"#,
            r#"{"version":2,"name":"a"}"#,
            r#"{"version":"1","name":"a"}"#,
            r#"{"name":"a"}"#,
            r#"{"version":1}"#,
            r#"{"version":1,"name":"a","count":-1}"#,
            r#"{"version":1,"name":"a","name":"b"}"#,
            r#"{"version":1,"version":2,"name":"a"}"#,
            r#"[1,"a",3]"#,
            r#""text""#,
            r#"{"version":1,"name":"a""#,
            "",
            "not json",
        ] {
            let (quick, general) = both(json);
            assert_eq!(quick, general, "{json}");
        }
        assert_eq!(
            both(r#"{"version":1,"name":"a","count":3}"#).0,
            Ok(Message {
                version: 1,
                name: "a".into(),
                count: 3
            })
        );
    }
}
