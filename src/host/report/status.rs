//! Reading and writing the host status file, replaced atomically, and the clock it is
//! stamped with. I/O: the status file, the wall clock.

use std::path::Path;

pub use crate::host::status::{HostStatus, SlotState, SlotStatus};

impl HostStatus {
    /// Reads a status file; `None` when absent or unreadable.
    pub fn read(path: &Path) -> Option<HostStatus> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// Writes it atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::atomic::write_json(path, self)
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
