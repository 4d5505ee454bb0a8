//! The steps `validate`, `plan` and `apply` share: read and check the desired state, digest its
//! bitstream files (cached), connect to the cloud, observe it, and plan. I/O: the source,
//! the digest cache and the cloud; the planning itself is the pure `plan::plan`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::apply::BitstreamFiles;
use crate::desired::{self, Desired, Outcome};
use crate::diagnostic::Diagnostic;
use crate::source::{self, DigestCache, FileDigest, RepoSpec, Snapshot};

/// The desired state, read and checked, with its bitstream files' digests.
pub struct Loaded {
    /// Where it was read from.
    pub snapshot: Snapshot,
    /// The validated desired state.
    pub desired: Desired,
    /// Digest of each bitstream's file, by bitstream name.
    pub digests: BTreeMap<String, FileDigest>,
}

/// Checks the desired state of `snapshot`: the pure parse, the file facts from the source,
/// then the pure checks. The commit travels with the result.
pub fn check(snapshot: &Snapshot) -> Outcome {
    let parsed = desired::parse(snapshot.files.clone());
    let facts = snapshot.inspect(&parsed.file_requests());
    let mut outcome = desired::finish(parsed, &facts);
    if let Some(desired) = &mut outcome.desired {
        desired.commit.clone_from(&snapshot.commit);
    }
    outcome
}

/// Reads, validates and digests the desired state. Errors are every diagnostic found.
pub fn load(spec: &RepoSpec) -> Result<Loaded, Vec<Diagnostic>> {
    let snapshot = source::read(spec).map_err(|d| vec![d])?;
    let outcome = check(&snapshot);
    let Some(desired) = outcome.desired else {
        return Err(outcome.diagnostics);
    };
    let cache = DigestCache::new(&spec.cache_dir);
    let digests = desired
        .bitstreams
        .values()
        .filter_map(|b| {
            let file = b.spec.file.as_deref()?;
            snapshot
                .digest(file, &cache)
                .map(|d| (b.spec.name.clone(), d))
        })
        .collect();
    Ok(Loaded {
        snapshot,
        desired,
        digests,
    })
}

/// Bitstream files from a snapshot, written to a scratch folder when they live in git.
pub struct SnapshotFiles<'a> {
    /// The snapshot.
    pub snapshot: &'a Snapshot,
    /// Where blobs are written for upload.
    pub scratch: PathBuf,
}

impl BitstreamFiles for SnapshotFiles<'_> {
    fn path_for(&self, source: &str) -> std::io::Result<PathBuf> {
        self.snapshot.materialise(source, &self.scratch)
    }
}

/// A plan saved by `plan --out`, with what `apply FILE` needs to carry it out later.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    /// The saved-plan format version.
    pub format_version: u32,
    /// The repository (`--repo`).
    pub repo: String,
    /// The desired-state folder (`--dir`).
    pub dir: Option<String>,
    /// Whether the files were read from disk rather than a commit.
    pub worktree: bool,
    /// The cloud's name.
    pub cloud: String,
    /// The plan.
    pub plan: crate::plan::Plan,
}

impl SavedPlan {
    /// Reads a saved plan.
    pub fn read(path: &Path) -> Result<SavedPlan, Diagnostic> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Diagnostic::error(
                "fpga_sync::saved_plan",
                format!("cannot read the saved plan `{}`: {e}", path.display()),
            )
        })?;
        let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
            Diagnostic::error(
                "fpga_sync::saved_plan",
                format!("`{}` is not a saved plan: {e}", path.display()),
            )
            .help("make one with `fpga-sync plan --out FILE`")
        })?;
        if saved.format_version != crate::plan::FORMAT_VERSION {
            return Err(Diagnostic::error(
                "fpga_sync::saved_plan",
                format!(
                    "`{}` is a version {} plan; this fpga-sync applies version {}",
                    path.display(),
                    saved.format_version,
                    crate::plan::FORMAT_VERSION
                ),
            )
            .help("make the plan again with this fpga-sync"));
        }
        Ok(saved)
    }
}
