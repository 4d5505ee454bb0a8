//! A commit of a git repository as the desired-state source: resolves the reference,
//! reads the YAML files from the commit's tree (never the work tree), and inspects
//! bitstream files in that tree, symlinks included. I/O: the repository's object store.

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use sha2::{Digest, Sha256};

use super::folder::hex;
use super::{Reader, RepoSpec, Snapshot, is_yaml_name, resolve_link, state_dir};
use crate::desired::{FileFact, MAX_FILE_BYTES, RawContent, RawFile};
use crate::diagnostic::Diagnostic;

/// Reads bitstream files from one commit's tree.
pub(super) struct TreeReader {
    repository: Repository,
    tree: Oid,
    dir: String,
}

const LINK_MODE: i32 = 0o120000;

fn git_error(what: String) -> impl Fn(git2::Error) -> Diagnostic {
    move |e| Diagnostic::error("fpga_sync::source", format!("{what}: {}", e.message()))
}

pub(super) fn read(
    repository: Repository,
    spec: &RepoSpec,
    inner: &str,
    origin: String,
) -> Result<Snapshot, Diagnostic> {
    let dir = state_dir(inner, spec.dir.as_deref())?;
    let (commit_id, tree_id, files) = read_commit(&repository, spec, &dir)?;
    Ok(Snapshot {
        origin,
        commit: Some(commit_id),
        reference: spec.reference.clone(),
        dir: dir.clone(),
        files,
        signer: None,
        reader: Reader::Git(TreeReader {
            repository,
            tree: tree_id,
            dir,
        }),
    })
}

/// The commit id, its root tree, and the YAML files under `dir`.
fn read_commit(
    repository: &Repository,
    spec: &RepoSpec,
    dir: &str,
) -> Result<(String, Oid, Vec<RawFile>), Diagnostic> {
    let reference = spec.reference.clone();
    let wanted = reference.as_deref().unwrap_or("HEAD");
    let commit = match repository.revparse_single(&format!("{wanted}^{{commit}}")) {
        Ok(object) => object
            .peel_to_commit()
            .map_err(git_error(format!("`{wanted}` is not a commit")))?,
        Err(_) if reference.is_none() && repository.head().is_err() => {
            return Err(Diagnostic::error(
                "fpga_sync::source",
                format!("the git repository at `{}` has no commits yet", spec.repo),
            )
            .help("commit the desired state, or add `--worktree` to read the files as they are"));
        }
        Err(e) => {
            return Err(Diagnostic::error(
                "fpga_sync::source",
                format!(
                    "`{wanted}` names no branch, tag or commit of `{}`",
                    spec.repo
                ),
            )
            .help(format!(
                "give `--ref` a branch, a tag or a commit id ({})",
                e.message()
            )));
        }
    };
    let commit_id = commit.id().to_string();
    let root = commit
        .tree()
        .map_err(git_error(format!("reading commit {commit_id}")))?;
    let tree = if dir.is_empty() {
        root.clone()
    } else {
        match root
            .get_path(std::path::Path::new(dir))
            .ok()
            .and_then(|e| e.to_object(repository).ok())
            .and_then(|o| o.into_tree().ok())
        {
            Some(tree) => tree,
            None => {
                return Err(Diagnostic::error(
                    "fpga_sync::source",
                    format!("folder `{dir}` does not exist at commit {commit_id}"),
                )
                .help(
                    "commit the folder, fix `--dir`, or add `--worktree` to read uncommitted files",
                ));
            }
        }
    };
    let odb = repository
        .odb()
        .map_err(git_error("opening the object store".into()))?;
    let mut found = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        let name = entry.name().unwrap_or_default();
        match entry.kind() {
            Some(ObjectType::Tree) if name.starts_with('.') => TreeWalkResult::Skip,
            Some(ObjectType::Blob) if entry.filemode() != LINK_MODE && is_yaml_name(name) => {
                found.push((format!("{parent}{name}"), entry.id()));
                TreeWalkResult::Ok
            }
            _ => TreeWalkResult::Ok,
        }
    })
    .map_err(git_error(format!("walking the tree of commit {commit_id}")))?;
    let mut files = Vec::with_capacity(found.len());
    for (path, id) in found {
        let (size, _) = odb
            .read_header(id)
            .map_err(git_error(format!("reading `{path}`")))?;
        let content = if size as u64 > MAX_FILE_BYTES {
            RawContent::TooLarge { size: size as u64 }
        } else {
            let blob = repository
                .find_blob(id)
                .map_err(git_error(format!("reading `{path}`")))?;
            RawContent::Bytes(blob.content().to_vec())
        };
        files.push(RawFile { path, content });
    }
    Ok((commit_id, root.id(), files))
}

impl TreeReader {
    /// The repository the commit is read from.
    pub(super) fn repository(&self) -> &Repository {
        &self.repository
    }

    /// The blob id and size of the file at `path`, following symlinks like
    /// [`TreeReader::inspect`].
    pub(super) fn blob(&self, path: &str) -> Option<(git2::Oid, u64)> {
        let id = self.resolve(path)?;
        let (size, _) = self.repository.odb().ok()?.read_header(id).ok()?;
        Some((id, size as u64))
    }

    /// The content of the file at `path`.
    pub(super) fn blob_content(&self, path: &str) -> Option<Vec<u8>> {
        let id = self.resolve(path)?;
        Some(self.repository.find_blob(id).ok()?.content().to_vec())
    }

    fn resolve(&self, path: &str) -> Option<git2::Oid> {
        self.follow(path).ok()
    }

    /// Follows `path` (relative to the state folder) through symlinks that stay inside
    /// the state folder, at most 8 deep, to a blob's id; or what stands in the way.
    fn follow(&self, path: &str) -> Result<git2::Oid, FileFact> {
        let unreadable = |reason: &str| FileFact::Unreadable {
            reason: reason.into(),
        };
        let tree = self
            .repository
            .find_tree(self.tree)
            .map_err(|_| unreadable("the commit's tree is gone"))?;
        let mut current = path.to_owned();
        for _ in 0..8 {
            let full = if self.dir.is_empty() {
                current.clone()
            } else {
                format!("{}/{current}", self.dir)
            };
            let entry = tree
                .get_path(std::path::Path::new(&full))
                .map_err(|_| FileFact::Missing)?;
            if entry.kind() != Some(ObjectType::Blob) {
                return Err(FileFact::NotAFile);
            }
            if entry.filemode() != LINK_MODE {
                return Ok(entry.id());
            }
            let blob = self
                .repository
                .find_blob(entry.id())
                .map_err(|_| unreadable("cannot read the symlink"))?;
            let target = String::from_utf8_lossy(blob.content()).into_owned();
            let base = current.rsplit_once('/').map_or("", |(b, _)| b);
            current = resolve_link(base, &target).ok_or(FileFact::LeavesRepository { target })?;
        }
        Err(unreadable("symlinks nest more than 8 deep"))
    }

    /// Facts about `path` (relative to the state folder) in the commit's tree.
    pub(super) fn inspect(&self, path: &str, want_sha256: bool) -> FileFact {
        let id = match self.follow(path) {
            Ok(id) => id,
            Err(fact) => return fact,
        };
        let Ok(blob) = self.repository.find_blob(id) else {
            return FileFact::Unreadable {
                reason: "cannot read the blob".into(),
            };
        };
        // libgit2 cannot stream packed objects, so the blob is in memory here; bitstreams
        // too big for that belong behind `url:`.
        let sha256 = want_sha256.then(|| hex(&Sha256::digest(blob.content())));
        FileFact::Present {
            size: blob.size() as u64,
            sha256,
        }
    }
}
