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
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
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
