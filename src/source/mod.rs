//! Where the desired state comes from: a commit of a git repository (local, or a remote
//! one cloned into a cache folder) or a plain folder. Hands over the YAML files and
//! answers questions about the bitstream files they name. All of fpga-sync's reads of the
//! desired-state repository happen here: git objects, the file system, and the network
//! (fetching a remote).

mod digests;
mod folder;
mod git;
mod remote;
mod signature;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use digests::{DigestCache, FileDigest};
pub use folder::sha256_of;
pub use remote::SSH_REFUSED;
pub use signature::Signer;

use crate::desired::{FileFact, FileRequest, RawFile};
use crate::diagnostic::Diagnostic;

/// What to read, as the command line says it.
#[derive(Clone, Debug)]
pub struct RepoSpec {
    /// A local path or a remote URL.
    pub repo: String,
    /// A branch, tag or commit; default: the repository's HEAD.
    pub reference: Option<String>,
    /// A sub-folder of the repository that holds the desired state.
    pub dir: Option<String>,
    /// Read the work tree (uncommitted edits) instead of a commit.
    pub worktree: bool,
    /// Where remote repositories are cloned to.
    pub cache_dir: PathBuf,
    /// How SSH remotes are reached.
    pub ssh: SshOptions,
    /// An SSH `allowed_signers` file: when set, only a commit signed by one of its keys
    /// is used (see [`Snapshot::verify_signature`]).
    pub require_signed_by: Option<PathBuf>,
}

/// How SSH remotes (`ssh://`, `user@host:path`) are fetched: by the system's `git` and
/// OpenSSH, so keys come from ssh-agent, `~/.ssh/id_*` and `~/.ssh/config` as for any git
/// command, and host keys are always checked (an unknown or changed key is refused).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshOptions {
    /// A private key to use instead of the agent's and the default ones.
    pub key: Option<PathBuf>,
    /// A known_hosts file to check host keys against instead of `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
}

/// The desired-state files as read, and where they were read from.
pub struct Snapshot {
    /// The repository: a local checkout's root, a folder, or a remote URL (passwords
    /// removed).
    pub origin: String,
    /// The commit the files were read from; `None` for a plain folder or the work tree.
    pub commit: Option<String>,
    /// The reference that was resolved, when one was given.
    pub reference: Option<String>,
    /// The desired-state folder inside the repository (`""` for its root).
    pub dir: String,
    /// The YAML files, paths relative to the desired-state folder.
    pub files: Vec<RawFile>,
    /// Who signed the commit, once [`Snapshot::verify_signature`] checked it.
    pub signer: Option<Signer>,
    reader: Reader,
}

enum Reader {
    Git(git::TreeReader),
    Folder(PathBuf),
}

impl Snapshot {
    /// Facts about each requested bitstream file (paths relative to the desired-state
    /// folder): present, missing, a folder, a symlink out of the repository; sha256 when
    /// asked.
    pub fn inspect(&self, requests: &[FileRequest]) -> BTreeMap<String, FileFact> {
        requests
            .iter()
            .map(|r| {
                let fact = match &self.reader {
                    Reader::Git(tree) => tree.inspect(&r.path, r.want_sha256),
                    Reader::Folder(root) => folder::inspect(root, &r.path, r.want_sha256),
                };
                (r.path.clone(), fact)
            })
            .collect()
    }

    /// Checks that the commit is signed by a key `allowed_signers` allows, as
    /// `git verify-commit` does with `gpg.format=ssh`, and records the signer. Files read
    /// from disk carry no signature and are refused.
    pub fn verify_signature(&mut self, allowed_signers: &Path) -> Result<&Signer, Diagnostic> {
        let signer = match (&self.reader, &self.commit) {
            (Reader::Git(tree), Some(commit)) => {
                signature::verify(tree.repository(), commit, allowed_signers)?
            }
            _ => return Err(signature::no_commit(&self.origin)),
        };
        Ok(self.signer.insert(signer))
    }

    /// One line saying what was read: the commit, or that none is pinned.
    pub fn describe(&self) -> String {
        let dir = if self.dir.is_empty() {
            String::new()
        } else {
            format!("`{}/` of ", self.dir)
        };
        match &self.commit {
            Some(commit) => {
                let reference = self.reference.as_deref().unwrap_or("HEAD");
                let signed = self
                    .signer
                    .as_ref()
                    .map(|s| format!(", signed by {} ({})", s.principal, s.key))
                    .unwrap_or_default();
                format!(
                    "{dir}`{}` at commit {commit} ({reference}){signed}",
                    self.origin
                )
            }
            None => format!("{dir}`{}` as it is on disk: no commit pinned", self.origin),
        }
    }
}

/// Whether `repo` names a remote rather than a local path.
pub fn is_remote(repo: &str) -> bool {
    repo.contains("://") || (repo.contains('@') && repo.contains(':') && !Path::new(repo).exists())
}

/// Whether `repo` is an SSH remote: `ssh://`, `git+ssh://` or git's scp-like
/// `user@host:path`.
pub fn is_ssh(repo: &str) -> bool {
    repo.starts_with("ssh://")
        || repo.starts_with("git+ssh://")
        || repo.starts_with("ssh+git://")
        || (!repo.contains("://") && is_remote(repo))
}

/// Reads the desired-state files that `spec` names.
pub fn read(spec: &RepoSpec) -> Result<Snapshot, Diagnostic> {
    if is_remote(&spec.repo) {
        if spec.worktree {
            return Err(Diagnostic::error(
                "fpga_sync::source",
                "`--worktree` reads a local checkout, but `--repo` is a remote URL",
            )
            .help("drop `--worktree`, or point `--repo` at a local checkout"));
        }
        let repository = remote::fetch(&spec.repo, &spec.cache_dir, &spec.ssh)?;
        return git::read(repository, spec, "", remote::redact(&spec.repo));
    }
    let path = Path::new(&spec.repo);
    if !path.is_dir() {
        return Err(Diagnostic::error("fpga_sync::source", format!("`{}` is not a folder", spec.repo))
            .help("give `--repo` a local folder or git checkout, or a remote URL (https://, ssh://, file://)"));
    }
    match (spec.worktree, git2::Repository::discover(path)) {
        (false, Ok(repository)) if repository.workdir().is_some() => {
            let workdir = repository
                .workdir()
                .expect("checked")
                .canonicalize()
                .map_err(io_error(path))?;
            let here = path.canonicalize().map_err(io_error(path))?;
            let inner = here
                .strip_prefix(&workdir)
                .unwrap_or(Path::new(""))
                .to_string_lossy()
                .replace('\\', "/");
            git::read(repository, spec, &inner, workdir.display().to_string())
        }
        (false, Ok(repository)) => {
            let origin = repository.path().display().to_string();
            git::read(repository, spec, "", origin)
        }
        (true, _) | (false, Err(_)) => {
            if spec.reference.is_some() && !spec.worktree {
                return Err(Diagnostic::error(
                    "fpga_sync::source",
                    format!(
                        "`--ref` needs a git repository, and `{}` is not in one",
                        spec.repo
                    ),
                )
                .help("drop `--ref` to read the folder as it is"));
            }
            folder::read(spec)
        }
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Diagnostic + '_ {
    move |e| {
        Diagnostic::error(
            "fpga_sync::source",
            format!("cannot read `{}`: {e}", path.display()),
        )
    }
}

/// Joins the repository-relative folder of the state and `--dir`, `/`-separated.
fn state_dir(inner: &str, dir: Option<&str>) -> Result<String, Diagnostic> {
    let dir = dir.unwrap_or("").trim_matches('/');
    if let Some(problem) = crate::desired::files::path_problem(dir).filter(|_| !dir.is_empty()) {
        return Err(Diagnostic::error(
            "fpga_sync::source",
            format!("`--dir {dir}` is not a folder inside the repository: {problem}"),
        )
        .help("give `--dir` a path relative to the repository root"));
    }
    Ok([inner.trim_matches('/'), dir]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/"))
}

/// Whether a file name is a desired-state YAML file: `.yaml` or `.yml`, not hidden.
fn is_yaml_name(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Lexically resolves `target` (a symlink's text) against the folder `base` of the link;
/// `None` when it leaves the root.
fn resolve_link(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_lexically_and_never_above_the_root() {
        assert_eq!(resolve_link("a/b", "../c.gbs").as_deref(), Some("a/c.gbs"));
        assert_eq!(resolve_link("a", "../../etc/passwd"), None);
        assert_eq!(resolve_link("", "/etc/passwd"), None);
        assert_eq!(resolve_link("", "x/./y"), Some("x/y".into()));
    }

    #[test]
    fn remote_urls_are_told_from_paths() {
        assert!(is_remote("https://example.org/site.git"));
        assert!(is_remote("file:///tmp/site.git"));
        assert!(is_remote("git@example.org:site.git"));
        assert!(!is_remote("examples/"));
        assert!(is_ssh("git@example.org:org/site.git"));
        assert!(is_ssh("ssh://git@example.org:2222/org/site.git"));
        assert!(!is_ssh("https://example.org/site.git"));
        assert!(!is_ssh("file:///srv/site.git"));
    }
}
