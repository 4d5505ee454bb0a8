//! Replacing a file atomically: the bytes go to a temporary file in the same folder,
//! flushed to disk, then renamed over the target, so a reader sees the old file or the
//! new one, never half of it, and a crash leaves no partial file under the target's name.
//! I/O: the file system.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically, creating the folder.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// As [`write`], for JSON, pretty and ending in a newline.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write(path, &bytes)
}
