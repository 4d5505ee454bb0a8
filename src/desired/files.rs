//! Bitstream files: which ones the documents name, the rules for a path inside the
//! repository, and the checks on what the source found there (present, inside the
//! repository, matching its pinned digest). Pure: no I/O; `source` gathers the facts.

use std::collections::BTreeMap;

use super::bitstream::Bitstream;
use super::document::Declared;
use crate::diagnostic::Diagnostic;

/// A file the desired state needs facts about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileRequest {
    /// Path relative to the repository root, `/`-separated, normalised.
    pub path: String,
    /// Whether its sha256 is needed (it is pinned).
    pub want_sha256: bool,
}

/// What the source found at a requested path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileFact {
    /// Nothing there.
    Missing,
    /// A folder, not a file.
    NotAFile,
    /// A symlink whose target lies outside the repository.
    LeavesRepository {
        /// The link's target as written.
        target: String,
    },
    /// A file.
    Present {
        /// Size in bytes.
        size: u64,
        /// sha256 of the content, when requested.
        sha256: Option<String>,
    },
    /// It could not be read.
    Unreadable {
        /// Why.
        reason: String,
    },
}

/// `path` without leading `./` components (`./bitstreams/x.gbs` is `bitstreams/x.gbs`).
pub fn normalise(path: &str) -> String {
    let mut rest = path;
    while let Some(r) = rest.strip_prefix("./") {
        rest = r.trim_start_matches('/');
    }
    rest.to_owned()
}

/// Why a written path is not a plain path inside the repository, if it is not.
pub fn path_problem(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        Some("it is absolute")
    } else if path.contains('\\') {
        Some("it uses `\\`")
    } else if path.split('/').any(|c| c == "..") {
        Some("it climbs out with `..`")
    } else if path.split('/').any(|c| c.is_empty() || c == ".") {
        Some("it has an empty or `.` component")
    } else {
        None
    }
}

/// The files the bitstreams name, with well-formed paths only.
pub fn requests(bitstreams: &[Declared<Bitstream>]) -> Vec<FileRequest> {
    let mut out: BTreeMap<String, bool> = BTreeMap::new();
    for b in bitstreams {
        if let Some(path) = b.spec.file.as_deref().filter(|p| path_problem(p).is_none()) {
            *out.entry(path.to_owned()).or_default() |= b.spec.sha256.is_some();
        }
    }
    out.into_iter()
        .map(|(path, want_sha256)| FileRequest { path, want_sha256 })
        .collect()
}

/// Checks each bitstream's file against the facts the source gathered.
pub fn check(
    bitstreams: &[Declared<Bitstream>],
    facts: &BTreeMap<String, FileFact>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for b in bitstreams {
        let Some(path) = b.spec.file.as_deref() else {
            continue;
        };
        let ctx = &b.context;
        if let Some(problem) = path_problem(path) {
            out.push(
                ctx.error_at("/file", "fpga_sync::file_outside_repo", format!("`{path}` is not a path inside the repository: {problem}"))
                    .help("write the path relative to the desired-state folder (`--dir`, else the repository root) with `/` separators, e.g. `bitstreams/aes128.gbs`"),
            );
            continue;
        }
        match facts.get(path) {
            None | Some(FileFact::Missing) => out.push(
                ctx.error_at("/file", "fpga_sync::file_missing", format!("bitstream file `{path}` does not exist in the repository"))
                    .label("no such file")
                    .help("commit the file at this path, or fix the path; with `--worktree`, uncommitted files count too"),
            ),
            Some(FileFact::NotAFile) => out.push(
                ctx.error_at("/file", "fpga_sync::file_missing", format!("`{path}` is a folder, not a bitstream file"))
                    .help("name the bitstream file itself"),
            ),
            Some(FileFact::LeavesRepository { target }) => out.push(
                ctx.error_at("/file", "fpga_sync::file_outside_repo", format!("`{path}` is a symlink to `{target}`, outside the repository"))
                    .help("copy the file into the repository; fpga-sync reads only what the commit holds"),
            ),
            Some(FileFact::Unreadable { reason }) => out.push(
                ctx.error_at("/file", "fpga_sync::file_unreadable", format!("bitstream file `{path}` cannot be read: {reason}"))
                    .help("check the file's permissions"),
            ),
            Some(FileFact::Present { sha256: actual, .. }) => {
                if let (Some(pinned), Some(actual)) = (&b.spec.sha256, actual)
                    && pinned != actual
                {
                    out.push(
                        ctx.error_at("/sha256", "fpga_sync::digest_mismatch", format!("`{path}` does not match its pinned sha256"))
                            .label(format!("the file's sha256 is {actual}"))
                            .help(format!("if the new file is intended, pin it: `sha256: {actual}`; otherwise restore the file")),
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_inside() {
        assert_eq!(path_problem("bitstreams/a.gbs"), None);
        assert_eq!(path_problem("../a.gbs"), Some("it climbs out with `..`"));
        assert_eq!(path_problem("a/../../b"), Some("it climbs out with `..`"));
        assert_eq!(path_problem("/etc/passwd"), Some("it is absolute"));
        assert_eq!(
            path_problem("a//b"),
            Some("it has an empty or `.` component")
        );
        assert_eq!(path_problem("a\\b"), Some("it uses `\\`"));
    }
}

/// A file's content identity.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileDigest {
    /// sha256, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}
