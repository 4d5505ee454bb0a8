//! A plain folder (or a git work tree with `--worktree`) as the desired-state source:
//! walks it for YAML files and inspects bitstream files, streaming them through sha256.
//! I/O: the file system under the folder.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Reader, RepoSpec, Snapshot, is_yaml_name, state_dir};
use crate::desired::{FileFact, MAX_FILE_BYTES, RawContent, RawFile};
use crate::diagnostic::Diagnostic;

pub(super) fn read(spec: &RepoSpec) -> Result<Snapshot, Diagnostic> {
    let dir = state_dir("", spec.dir.as_deref())?;
    let root = Path::new(&spec.repo).join(&dir);
    if !root.is_dir() {
        return Err(Diagnostic::error(
            "fpga_sync::source",
            format!("`{}` is not a folder", root.display()),
        )
        .help("check `--repo` and `--dir`"));
    }
    let mut files = Vec::new();
    walk(&root, "", &mut files).map_err(|e| {
        Diagnostic::error(
            "fpga_sync::source",
            format!("cannot read the folder `{}`: {e}", root.display()),
        )
    })?;
    Ok(Snapshot {
        origin: spec.repo.clone(),
        commit: None,
        reference: None,
        dir,
        files,
        signer: None,
        reader: Reader::Folder(root),
    })
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<RawFile>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        // Symlinks are not followed: a link could lead out of the folder or loop.
        let kind = entry.file_type()?;
        if kind.is_dir() && !name.starts_with('.') {
            walk(&entry.path(), &path, out)?;
        } else if kind.is_file() && is_yaml_name(&name) {
            let size = entry.metadata()?.len();
            let content = if size > MAX_FILE_BYTES {
                RawContent::TooLarge { size }
            } else {
                RawContent::Bytes(fs::read(entry.path())?)
            };
            out.push(RawFile { path, content });
        }
    }
    Ok(())
}

pub(super) fn inspect(root: &Path, path: &str, want_sha256: bool) -> FileFact {
    let full: PathBuf = root.join(path);
    let Ok(meta) = fs::symlink_metadata(&full) else {
        return FileFact::Missing;
    };
    let (Ok(real), Ok(real_root)) = (full.canonicalize(), root.canonicalize()) else {
        return FileFact::Missing;
    };
    if !real.starts_with(&real_root) {
        let target = fs::read_link(&full)
            .map_or_else(|_| real.display().to_string(), |t| t.display().to_string());
        return FileFact::LeavesRepository { target };
    }
    let meta = if meta.file_type().is_symlink() {
        fs::metadata(&real)
    } else {
        Ok(meta)
    };
    match meta {
        Ok(m) if m.is_file() => {
            let sha256 = if want_sha256 {
                match sha256_of(&real) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        return FileFact::Unreadable {
                            reason: e.to_string(),
                        };
                    }
                }
            } else {
                None
            };
            FileFact::Present {
                size: m.len(),
                sha256,
            }
        }
        Ok(_) => FileFact::NotAFile,
        Err(e) => FileFact::Unreadable {
            reason: e.to_string(),
        },
    }
}

/// Streams a file through sha256 in 1 MiB reads, so memory stays flat whatever its size.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
