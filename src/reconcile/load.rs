//! Reading the desired state for every operation: read the source at a commit, check it
//! (the pure parse and checks, with the file facts from the source), and digest its
//! bitstream files (cached by blob). I/O: the source and the digest cache.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::apply::BitstreamFiles;
use crate::desired::{self, Desired, Outcome, RawContent};
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
/// then the pure checks; a valid state also gets a warning for each flavor no host-group
/// entry can serve ([`crate::plan::schedulable::unschedulable`]). The commit travels with
/// the result.
pub fn check(snapshot: &Snapshot) -> Outcome {
    // Diagnostics name files from the repository root (`state/bitstreams.yaml` with
    // `--dir state`), as CI annotations and editors expect; bitstream `file:` paths stay
    // relative to the desired-state folder.
    let files = snapshot
        .files
        .iter()
        .cloned()
        .map(|mut f| {
            if !snapshot.dir.is_empty() {
                f.path = format!("{}/{}", snapshot.dir, f.path);
            }
            f
        })
        .collect();
    let parsed = desired::parse(files);
    let facts = snapshot.inspect(&parsed.file_requests());
    let mut outcome = desired::finish(parsed, &facts);
    if let Some(desired) = &mut outcome.desired {
        desired.commit.clone_from(&snapshot.commit);
        outcome
            .diagnostics
            .extend(crate::plan::schedulable::unschedulable(desired));
    }
    outcome
}

/// Reads, validates and digests the desired state. Errors are every diagnostic found.
pub fn load(spec: &RepoSpec) -> Result<Loaded, Vec<Diagnostic>> {
    let snapshot = source::read(spec).map_err(|d| vec![d])?;
    load_snapshot(snapshot, spec).map_err(|(_, d)| d)
}

/// Validates and digests a snapshot already read; an invalid one comes back with every
/// diagnostic found and its [`fingerprint`], which identifies what failed. With
/// `spec.require_signed_by`, a commit not signed by an allowed key is refused first,
/// before anything in it is looked at.
pub fn load_snapshot(
    mut snapshot: Snapshot,
    spec: &RepoSpec,
) -> Result<Loaded, (String, Vec<Diagnostic>)> {
    if let Some(allowed) = &spec.require_signed_by
        && let Err(d) = snapshot.verify_signature(allowed)
    {
        return Err((fingerprint(&snapshot, None), vec![d]));
    }
    let outcome = check(&snapshot);
    let Some(desired) = outcome.desired else {
        return Err((fingerprint(&snapshot, None), outcome.diagnostics));
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

/// What identifies a version of the desired state: the commit, or for files read from
/// disk a digest of the YAML files and, once loaded, of the bitstream files' digests.
pub fn fingerprint(snapshot: &Snapshot, digests: Option<&BTreeMap<String, FileDigest>>) -> String {
    if let Some(commit) = &snapshot.commit {
        return commit.clone();
    }
    let mut hash = Sha256::new();
    for f in &snapshot.files {
        hash.update(f.path.as_bytes());
        hash.update([0]);
        match &f.content {
            RawContent::Bytes(b) => {
                hash.update((b.len() as u64).to_le_bytes());
                hash.update(b);
            }
            RawContent::TooLarge { size } => hash.update(size.to_le_bytes()),
        }
    }
    for (name, d) in digests.into_iter().flatten() {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(d.sha256.as_bytes());
    }
    format!("content:{:x}", hash.finalize())
}
