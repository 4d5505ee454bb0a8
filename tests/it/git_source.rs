//! Reading the desired state from real git repositories made here with git2: the files
//! of the requested commit (branch, tag, id) and its id, never the work tree unless asked;
//! sub-folders; remote clones into a cache folder, fetched again on each read.

use std::path::Path;

use fpga_sync::reconcile::check as load;
use fpga_sync::source::{self, RepoSpec};
use git2::{Oid, Repository};

use crate::support::{Site, findings, valid_site};

fn commit_all(repo: &Repository, message: &str) -> Oid {
    crate::support::commit_all(repo, "*", message)
}

fn trait_doc(name: &str) -> String {
    format!("apiVersion: fpga-sync/v1\nkind: Trait\nname: {name}\n")
}

fn trait_names(spec: &RepoSpec) -> (Option<String>, Vec<String>) {
    let snapshot = source::read(spec).unwrap_or_else(|d| panic!("{}", d.message));
    let outcome = load(&snapshot);
    let desired = outcome.desired.unwrap_or_else(|| {
        panic!(
            "{:#?}",
            outcome
                .diagnostics
                .iter()
                .map(|d| &d.message)
                .collect::<Vec<_>>()
        )
    });
    (
        snapshot.commit.clone(),
        desired.traits.keys().cloned().collect(),
    )
}

/// A repository with: commit 1 (tag `v1`): CUSTOM_ONE; commit 2 (main): CUSTOM_TWO; branch
/// `feature` off commit 2: CUSTOM_THREE; and an uncommitted edit: CUSTOM_DIRTY.
fn history(site: &Site) -> (Repository, Oid, Oid, Oid) {
    let repo = Repository::init(site.path()).unwrap();
    repo.set_head("refs/heads/main").unwrap();
    site.write("state/traits.yaml", trait_doc("CUSTOM_ONE"));
    let one = commit_all(&repo, "one");
    repo.tag_lightweight("v1", &repo.find_object(one, None).unwrap(), false)
        .unwrap();
    site.write("state/traits.yaml", trait_doc("CUSTOM_TWO"));
    let two = commit_all(&repo, "two");
    repo.branch("feature", &repo.find_commit(two).unwrap(), false)
        .unwrap();
    repo.set_head("refs/heads/feature").unwrap();
    site.write("state/traits.yaml", trait_doc("CUSTOM_THREE"));
    let three = commit_all(&repo, "three");
    repo.set_head("refs/heads/main").unwrap();
    site.write("state/traits.yaml", trait_doc("CUSTOM_DIRTY"));
    (repo, one, two, three)
}

fn spec(repo: &str, reference: Option<&str>, dir: Option<&str>, cache: &Path) -> RepoSpec {
    RepoSpec {
        repo: repo.to_owned(),
        reference: reference.map(str::to_owned),
        dir: dir.map(str::to_owned),
        worktree: false,
        cache_dir: cache.to_owned(),
        ssh: Default::default(),
        require_signed_by: None,
    }
}

#[test]
fn reads_the_requested_commit_not_the_work_tree() {
    let site = Site::new();
    let (_repo, one, two, three) = history(&site);
    let root = site.path().to_string_lossy().into_owned();
    let cache = tempfile::tempdir().unwrap();
    let at = |r: Option<&str>| trait_names(&spec(&root, r, Some("state"), cache.path()));
    assert_eq!(
        at(None),
        (Some(two.to_string()), vec!["CUSTOM_TWO".to_owned()])
    );
    assert_eq!(
        at(Some("v1")),
        (Some(one.to_string()), vec!["CUSTOM_ONE".to_owned()])
    );
    assert_eq!(
        at(Some("feature")),
        (Some(three.to_string()), vec!["CUSTOM_THREE".to_owned()])
    );
    assert_eq!(
        at(Some(&one.to_string()[..10])),
        (Some(one.to_string()), vec!["CUSTOM_ONE".to_owned()])
    );
    let mut worktree = spec(&root, None, Some("state"), cache.path());
    worktree.worktree = true;
    assert_eq!(
        trait_names(&worktree),
        (None, vec!["CUSTOM_DIRTY".to_owned()])
    );
}

#[test]
fn a_sub_folder_path_selects_the_state_folder_of_the_enclosing_repository() {
    let site = Site::new();
    let (_repo, _, two, _) = history(&site);
    let state = site.path().join("state").to_string_lossy().into_owned();
    let cache = tempfile::tempdir().unwrap();
    let snapshot = source::read(&spec(&state, None, None, cache.path())).unwrap();
    assert_eq!(snapshot.dir, "state");
    assert_eq!(snapshot.commit, Some(two.to_string()));
    let root = site.path().canonicalize().unwrap();
    assert_eq!(
        snapshot.describe(),
        format!("`state/` of `{}` at commit {two} (HEAD)", root.display())
    );
}

#[test]
fn unknown_refs_missing_folders_and_empty_repositories_are_clear_errors() {
    let site = Site::new();
    history(&site);
    let root = site.path().to_string_lossy().into_owned();
    let cache = tempfile::tempdir().unwrap();
    let err = |s: RepoSpec| source::read(&s).err().expect("an error");
    let e = err(spec(&root, Some("nope"), None, cache.path()));
    assert!(
        e.message
            .starts_with("`nope` names no branch, tag or commit of"),
        "{}",
        e.message
    );
    let e = err(spec(&root, Some("v1"), Some("elsewhere"), cache.path()));
    assert!(
        e.message
            .starts_with("folder `elsewhere` does not exist at commit "),
        "{}",
        e.message
    );
    let empty = Site::new();
    Repository::init(empty.path()).unwrap();
    let e = err(spec(
        &empty.path().to_string_lossy(),
        None,
        None,
        cache.path(),
    ));
    assert!(e.message.ends_with("has no commits yet"), "{}", e.message);
    assert_eq!(
        e.help.as_deref(),
        Some("commit the desired state, or add `--worktree` to read the files as they are")
    );
}

#[test]
fn remote_repositories_are_cloned_then_fetched() {
    let upstream = Site::new();
    let (repo, _, two, three) = history(&upstream);
    let url = format!("file://{}", upstream.path().display());
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(
        trait_names(&spec(&url, None, Some("state"), cache.path())),
        (Some(two.to_string()), vec!["CUSTOM_TWO".to_owned()])
    );
    assert_eq!(
        trait_names(&spec(&url, Some("feature"), Some("state"), cache.path())),
        (Some(three.to_string()), vec!["CUSTOM_THREE".to_owned()])
    );
    // A new upstream commit is seen by the next read.
    upstream.write("state/traits.yaml", trait_doc("CUSTOM_FOUR"));
    let four = commit_all(&repo, "four");
    assert_eq!(
        trait_names(&spec(&url, None, Some("state"), cache.path())),
        (Some(four.to_string()), vec!["CUSTOM_FOUR".to_owned()])
    );
    let clones = std::fs::read_dir(cache.path().join("repos"))
        .unwrap()
        .count();
    assert_eq!(clones, 1, "one cached clone per URL");
}

#[cfg(unix)]
#[test]
fn bitstream_files_come_from_the_commit_and_symlinks_stay_inside() {
    let site = valid_site();
    let repo = Repository::init(site.path()).unwrap();
    std::fs::remove_file(site.path().join("files/aes.gbs")).unwrap();
    std::os::unix::fs::symlink("../../outside.gbs", site.path().join("files/aes.gbs")).unwrap();
    std::fs::remove_file(site.path().join("files/shell.bin")).unwrap();
    commit_all(&repo, "without the shell file");
    // Present in the work tree only: the commit does not have it.
    site.write("files/shell.bin", b"uncommitted");
    let outcome = load(&source::read(&site.spec()).unwrap());
    assert_eq!(
        findings(&outcome),
        [
            "bitstreams.yaml:4:7: error: bitstream file `files/shell.bin` does not exist in the repository",
            "bitstreams.yaml:18:7: error: `files/aes.gbs` is a symlink to `../../outside.gbs`, outside the repository",
        ]
    );
}

#[test]
fn a_password_in_a_remote_url_never_reaches_the_output() {
    let site = Site::new();
    // Port 1 on loopback refuses at once: the fetch fails, and its error is printed.
    let url = "https://bot:s3cret-token@127.0.0.1:1/site.git";
    let out = site.run(&[
        "validate",
        "--repo",
        url,
        "--cache-dir",
        &site.path().join("cache").to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("https://***@127.0.0.1:1/site.git"), "{all}");
    assert!(!all.contains("s3cret-token"), "{all}");
    let json = site.run(&[
        "validate",
        "--format",
        "json",
        "--repo",
        url,
        "--cache-dir",
        &site.path().join("cache").to_string_lossy(),
    ]);
    assert!(!String::from_utf8_lossy(&json.stdout).contains("s3cret-token"));
}
