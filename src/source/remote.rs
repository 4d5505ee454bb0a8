//! Remote desired-state repositories: a bare clone per URL in the cache folder, fetched
//! (branches and tags, pruned) on every read, its HEAD set to the remote's default branch.
//! I/O: the network and the cache folder.

use std::path::Path;

use git2::{AutotagOption, Direction, FetchOptions, RemoteCallbacks, Repository};
use sha2::{Digest, Sha256};

use super::folder::hex;
use crate::diagnostic::Diagnostic;

/// Clones `url` into the cache on first use, fetches it, and opens it.
pub(super) fn fetch(url: &str, cache_dir: &Path) -> Result<Repository, Diagnostic> {
    let key = &hex(&Sha256::digest(url.as_bytes()))[..16];
    let path = cache_dir.join("repos").join(format!("{key}.git"));
    let fail = |what: &str, e: git2::Error| {
        Diagnostic::error("fpga_sync::source", format!("{what} `{}`: {}", redact(url), e.message().replace(url, &redact(url))))
            .help("check the URL and that this machine can reach it; private repositories need a git credential helper")
    };
    let repository = if path.exists() {
        Repository::open_bare(&path).map_err(|e| fail("cannot open the cached clone of", e))?
    } else {
        std::fs::create_dir_all(&path).map_err(|e| {
            Diagnostic::error(
                "fpga_sync::source",
                format!("cannot create the cache folder `{}`: {e}", path.display()),
            )
            .help("set `--cache-dir` to a writable folder")
        })?;
        Repository::init_bare(&path).map_err(|e| fail("cannot create a clone of", e))?
    };
    {
        let mut remote = repository
            .remote_anonymous(url)
            .map_err(|e| fail("cannot use", e))?;
        let callbacks = || {
            let mut callbacks = RemoteCallbacks::new();
            callbacks.credentials(|url, username, _| {
                let config = git2::Config::open_default()?;
                git2::Cred::credential_helper(&config, url, username)
            });
            callbacks
        };
        remote
            .connect_auth(Direction::Fetch, Some(callbacks()), None)
            .map_err(|e| fail("cannot reach", e))?;
        let default_branch = remote
            .default_branch()
            .ok()
            .and_then(|b| b.as_str().ok().map(str::to_owned));
        remote.disconnect().map_err(|e| fail("cannot talk to", e))?;
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks());
        options.prune(git2::FetchPrune::On);
        options.download_tags(AutotagOption::All);
        remote
            .fetch(
                &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                Some(&mut options),
                None,
            )
            .map_err(|e| fail("cannot fetch", e))?;
        if let Some(branch) = default_branch {
            repository
                .set_head(&branch)
                .map_err(|e| fail("cannot set HEAD of the clone of", e))?;
        }
    }
    Ok(repository)
}

/// The URL without its credentials, for messages and reports.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_in_urls_are_not_shown() {
        assert_eq!(
            redact("https://bot:s3cret@git.example.org/site.git"),
            "https://***@git.example.org/site.git"
        );
        assert_eq!(
            redact("https://git.example.org/site.git"),
            "https://git.example.org/site.git"
        );
    }
}
