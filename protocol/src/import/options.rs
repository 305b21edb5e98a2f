//! What the caller gives a conversion besides the bytes: the options of `herd import`
//! ([`ImportOptions`]) and the reader of the files a source names ([`ImportFiles`]).
//!
//! Why a module of its own: every importer takes these, and the parent module calls every
//! importer. Kept in the parent, each importer imported the module that calls it (a cycle); here
//! they sit below all of them and import no sibling.

use std::collections::BTreeMap;
use std::time::Duration;

/// What the caller may change in the conversion (the flags of `herd import`).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The plan's target (`http://host:port`), replacing the file's hosts: every request is sent
    /// there, whatever host the file named.
    pub target: Option<String>,
    /// Total virtual users, replacing the file's (thread groups keep their ratio, as DLT does).
    pub vus: Option<u32>,
    /// Ramp-up time, replacing the file's.
    pub ramp: Option<Duration>,
    /// Hold time after the ramp, replacing the file's duration (and its iteration limits).
    pub hold: Option<Duration>,
    /// Agents, replacing the file's (DLT's task count); default 1.
    pub agents: Option<u32>,
    /// JMeter properties (`${__P(name,default)}`) and Taurus properties, by name (`--set`).
    pub set: BTreeMap<String, String>,
    /// Keep static resources (images, CSS, scripts, fonts) of a HAR recording.
    pub include_static: bool,
}

/// Files a source file names (CSV data, a Taurus `script:`, a DLT JMeter script), read by the
/// caller relative to the imported file. This crate does no I/O.
pub trait ImportFiles {
    /// The bytes of the file at `path` as the source wrote it; the error says why not.
    fn read(&self, path: &str) -> Result<Vec<u8>, String>;
}

/// A reader that has no files: every named file is reported as not read.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFiles;

impl ImportFiles for NoFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        Err(format!(
            "{path} was not read (no files are available to this import)"
        ))
    }
}
