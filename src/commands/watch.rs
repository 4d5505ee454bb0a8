//! `fpga-sync watch` (being written).

use crate::cli::WatchArgs;

/// Runs `watch`; returns the exit code.
pub fn run(_args: &WatchArgs) -> std::io::Result<u8> {
    eprintln!("error: not written yet");
    Ok(1)
}
