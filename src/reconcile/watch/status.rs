//! The status file `watch` writes after every pass: the host's status (what `apply --host
//! --status-file` writes, so the same readers work) plus what the service knows about the
//! pass. I/O: the status file, replaced atomically.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::schedule::Trigger;
use crate::host::driver::Slot;
use crate::host::report::status::HostStatus;

/// The status file of `watch`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WatchStatus {
    /// The host's status.
    #[serde(flatten)]
    pub status: HostStatus,
    /// Why the last pass ran.
    pub trigger: Trigger,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Passes since the service started.
    pub passes: u64,
    /// Slots backing off: when each is tried again.
    #[serde(default)]
    pub backoff: Vec<BackoffEntry>,
}

/// One slot backing off, in the status file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackoffEntry {
    /// The slot.
    pub slot: Slot,
    /// Consecutive failed attempts.
    pub attempts: u32,
    /// The next attempt, seconds since the Unix epoch.
    pub next_attempt_at: u64,
}

impl WatchStatus {
    /// Reads a status file written by `watch`; `None` when absent or of another shape.
    pub fn read(path: &Path) -> Option<WatchStatus> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// Writes it atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::atomic::write_json(path, self)
    }
}
