//! Small helpers over sysfs-style attribute files: read an attribute (trimming the
//! whitespace and NUL padding some attributes carry), read a 128-bit id, list entries by
//! prefix, resolve class symlinks, find the PCI address a device path sits below, and
//! write an attribute. I/O: reads and writes only the paths it is given.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::host::driver::DriverError;
use crate::host::id::Id128;

/// Trims whitespace and trailing NULs.
pub fn trim(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || c == '\0')
}

/// The attribute at `path`, trimmed; `Ok(None)` when it does not exist. Other errors
/// (`EBUSY` from `afu_id` during reconfiguration, `EACCES`) are errors.
pub fn read_attr(path: &Path) -> Result<Option<String>, DriverError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(trim(&String::from_utf8_lossy(&bytes)).to_owned())),
        // ENOENT also comes from attributes the driver does not implement (e.g. a base
        // region's `compat_id`): same as missing.
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, &e)),
    }
}

/// The attribute at `path`, trimmed; `None` when it is missing or unreadable.
pub fn attr(path: &Path) -> Option<String> {
    read_attr(path).ok().flatten()
}

/// The 128-bit id in the attribute at `path`; `Ok(None)` when missing or empty.
pub fn read_id(path: &Path) -> Result<Option<Id128>, DriverError> {
    match read_attr(path)? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|e| DriverError::Parse {
            source: path.display().to_string(),
            reason: format!("{e}"),
        }),
    }
}

/// The entries of `dir` whose names start with `prefix`, sorted by name (numeric
/// suffixes in numeric order, so `region10` follows `region9`). Empty when `dir` is
/// missing.
pub fn list_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    out.sort_by_key(|p| natural_key(p));
    out
}

fn natural_key(path: &Path) -> (String, u64, String) {
    let name = file_name(path);
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, num) = name.split_at(name.len() - digits);
    (stem.to_owned(), num.parse().unwrap_or(0), name.clone())
}

/// The last component of `path`, lossily as text.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `path` with every symlink resolved (`/sys/class/*` entries link into `/sys/devices`).
pub fn canonical(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

pub use crate::host::driver::is_pci_address;

/// The PCI address (lower case) of the nearest ancestor of `path` (itself included,
/// symlinks resolved) named like `dddd:bb:dd.f`.
pub fn pci_address(path: &Path) -> Option<String> {
    pci_device_dir(path).map(|dir| file_name(&dir).to_ascii_lowercase())
}

/// The directory of the nearest PCI device at or above `path`, symlinks resolved.
pub fn pci_device_dir(path: &Path) -> Option<PathBuf> {
    let real = canonical(path)?;
    real.ancestors()
        .find(|a| is_pci_address(&file_name(a)))
        .map(Path::to_path_buf)
}

/// The PCI `vendor:device` id of the PCI device directory `dir` (`0x8086` → `8086`).
pub fn pci_id(dir: &Path) -> Option<String> {
    let strip = |s: String| {
        let s = s.to_ascii_lowercase();
        s.strip_prefix("0x").map(str::to_owned).unwrap_or(s)
    };
    let vendor = strip(attr(&dir.join("vendor"))?);
    let device = strip(attr(&dir.join("device"))?);
    Some(format!("{vendor}:{device}"))
}

/// Writes `value` to the existing attribute at `path` in one `write(2)`; the error of
/// that write is the kernel's answer (e.g. a failed load on an FPGA manager).
pub fn write_attr(path: &Path, value: &str) -> Result<(), DriverError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_error(path, &e))?;
    file.write_all(value.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| io_error(path, &e))
}

/// A [`DriverError::Io`] for `path`.
pub fn io_error(path: &Path, error: &std::io::Error) -> DriverError {
    DriverError::Io {
        path: path.to_path_buf(),
        error: error.to_string(),
    }
}

/// Writes `bytes` to `path` atomically (a temporary file in the same folder, then
/// rename), creating the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DriverError> {
    crate::atomic::write(path, bytes).map_err(|e| io_error(path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_are_recognised() {
        assert!(is_pci_address("0000:5e:00.0"));
        assert!(is_pci_address("0000:B3:00.1"));
        assert!(!is_pci_address("pci0000:00"));
        assert!(!is_pci_address("0000:5e:00"));
        assert!(!is_pci_address("0000x5e:00.0"));
    }

    #[test]
    fn attributes_are_trimmed_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("afu_id");
        std::fs::write(&p, "F7DF405CBD7ACF7222F144B0B93ACD18\n\0\0").unwrap();
        assert_eq!(
            read_id(&p).unwrap().unwrap().to_string(),
            "f7df405cbd7acf7222f144b0b93acd18"
        );
        assert_eq!(read_attr(&dir.path().join("nope")).unwrap(), None);
        std::fs::write(&p, "junk").unwrap();
        assert!(read_id(&p).is_err());
    }

    #[test]
    fn entries_sort_numerically() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["region10", "region9", "other"] {
            std::fs::create_dir(dir.path().join(n)).unwrap();
        }
        let names: Vec<String> = list_prefix(dir.path(), "region")
            .iter()
            .map(|p| file_name(p))
            .collect();
        assert_eq!(names, ["region9", "region10"]);
    }
}
