//! Remote desired-state repositories: a bare clone per URL in the cache folder, fetched
//! (branches and tags, pruned) on every read, its HEAD set to the remote's default branch.
//! `https://` and `file://` remotes are fetched by libgit2 (credentials from git's
//! credential helpers); SSH remotes (`ssh://`, `user@host:path`) by the system's `git`
//! with OpenSSH, so that keys (ssh-agent, `~/.ssh/id_*`, `~/.ssh/config`, `--ssh-key`) and
//! host keys (`~/.ssh/known_hosts`, `--ssh-known-hosts`, hashed entries included) work as
//! for any git command. Host keys are always checked: `BatchMode=yes` and
//! `StrictHostKeyChecking=yes` are passed after whatever `GIT_SSH_COMMAND` sets (ssh keeps
//! the first value it reads, so a deliberate `GIT_SSH_COMMAND` choice stands). I/O: the
//! network, the cache folder, `git` and `ssh` processes.

use std::path::Path;
use std::process::Command;

use git2::{AutotagOption, Direction, FetchOptions, RemoteCallbacks, Repository};
use sha2::{Digest, Sha256};

use super::SshOptions;
use super::folder::hex;
use crate::diagnostic::Diagnostic;

/// The code of an SSH refusal that only a change of the agent's configuration fixes (an
/// unknown or changed host key, a key the server refuses); `watch` exits on it.
pub const SSH_REFUSED: &str = "fpga_sync::ssh";

/// Clones `url` into the cache on first use, fetches it, and opens it.
pub(super) fn fetch(
    url: &str,
    cache_dir: &Path,
    ssh: &SshOptions,
) -> Result<Repository, Diagnostic> {
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
    if super::is_ssh(url) {
        let branch = fetch_over_ssh(url, &path, ssh)?;
        if let Some(branch) = branch {
            repository
                .set_head(&branch)
                .map_err(|e| fail("cannot set HEAD of the clone of", e))?;
        }
        return Ok(repository);
    }
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

/// Fetches an SSH remote into the bare clone at `path` with the system's `git`; returns
/// the remote's default branch (`refs/heads/main`), when it names one.
fn fetch_over_ssh(url: &str, path: &Path, ssh: &SshOptions) -> Result<Option<String>, Diagnostic> {
    let ssh_command = ssh_command(ssh);
    let run = |args: &[&str]| -> Result<String, Diagnostic> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(path)
            .args(args)
            .env("GIT_SSH_COMMAND", &ssh_command)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .output()
            .map_err(|e| {
                Diagnostic::error(
                    "fpga_sync::source",
                    format!("cannot run `git` to fetch `{}`: {e}", redact(url)),
                )
                .help("fetching an SSH remote needs the `git` command and OpenSSH's `ssh`: install them (Debian: `apt install git openssh-client`)")
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(ssh_failure(url, &String::from_utf8_lossy(&out.stderr), ssh))
    };
    let heads = run(&["ls-remote", "--symref", url, "HEAD"])?;
    let branch = heads.lines().find_map(|l| {
        l.strip_prefix("ref: ")
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_owned)
    });
    run(&[
        "fetch",
        "--quiet",
        "--prune",
        "--no-write-fetch-head",
        url,
        "+refs/heads/*:refs/heads/*",
        "+refs/tags/*:refs/tags/*",
    ])?;
    Ok(branch)
}

/// The ssh command `git` runs: `GIT_SSH_COMMAND` (or `ssh`), then fpga-sync's options.
fn ssh_command(ssh: &SshOptions) -> String {
    let base = std::env::var("GIT_SSH_COMMAND")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "ssh".to_owned());
    let mut command = format!(
        "{base} -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4"
    );
    if let Some(key) = &ssh.key {
        command.push_str(&format!(" -o IdentitiesOnly=yes -i {}", shell_quote(key)));
    }
    if let Some(file) = &ssh.known_hosts {
        command.push_str(&format!(" -o UserKnownHostsFile={}", shell_quote(file)));
    }
    command
}

/// `text` quoted for the shell that runs `GIT_SSH_COMMAND`.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// What failed, from what `git` and `ssh` said, with how to fix it.
fn ssh_failure(url: &str, stderr: &str, ssh: &SshOptions) -> Diagnostic {
    let shown = redact(url);
    let said: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("fatal: Could not read from remote repository")
                && !l.starts_with("Please make sure you have")
        })
        .collect();
    let said = said.join("; ");
    let (host, port) = ssh_host(url);
    let known_hosts = ssh
        .known_hosts
        .as_ref()
        .map_or("~/.ssh/known_hosts".to_owned(), |p| {
            format!("`{}`", p.display())
        });
    if stderr.contains("Host key verification failed")
        || stderr.contains("host key is known")
        || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
    {
        let scan = match port {
            Some(p) => format!("ssh-keyscan -p {p} {host}"),
            None => format!("ssh-keyscan {host}"),
        };
        return Diagnostic::error(
            SSH_REFUSED,
            format!("refusing to fetch `{shown}`: the SSH host key of `{host}` is not in {known_hosts} or does not match it ({said})"),
        )
        .help(format!(
            "check the server's host key fingerprint with its administrator, then add it: `{scan} >> ~/.ssh/known_hosts`, or give a known_hosts file with `--ssh-known-hosts FILE` (FPGA_SYNC_SSH_KNOWN_HOSTS)"
        ));
    }
    if stderr.contains("Permission denied") {
        let key = ssh
            .key
            .as_ref()
            .map_or("ssh-agent and ~/.ssh/id_*".to_owned(), |k| {
                format!("`{}`", k.display())
            });
        return Diagnostic::error(
            SSH_REFUSED,
            format!("`{host}` refused the SSH key ({key}) for `{shown}`: {said}"),
        )
        .help("add this host's public key to the repository as a read-only deploy key, and give its private key with `--ssh-key FILE` (FPGA_SYNC_SSH_KEY) or load it into ssh-agent");
    }
    Diagnostic::error("fpga_sync::source", format!("cannot fetch `{shown}`: {said}"))
        .help("check the URL and that this machine can reach the server (`ssh -T` to it shows what ssh says)")
}

/// The host (and port) of an SSH URL, for messages.
fn ssh_host(url: &str) -> (String, Option<String>) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    if url.contains("://") {
        let authority = rest.split('/').next().unwrap_or(rest);
        match authority.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => {
                (h.to_owned(), Some(p.to_owned()))
            }
            _ => (authority.to_owned(), None),
        }
    } else {
        (rest.split(':').next().unwrap_or(rest).to_owned(), None)
    }
}

/// The URL without its credentials, for messages and reports. An SSH URL's user name
/// (`git@`) is no secret and stays; over HTTPS a user name may be a token, so it goes.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            if super::is_ssh(url) && !user.contains(':') {
                return url.to_owned();
            }
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_hosts_are_read_from_both_spellings() {
        assert_eq!(
            ssh_host("ssh://git@example.org:2222/org/site.git"),
            ("example.org".into(), Some("2222".into()))
        );
        assert_eq!(
            ssh_host("git@example.org:org/site.git"),
            ("example.org".into(), None)
        );
    }

    #[test]
    fn the_ssh_command_checks_host_keys_and_quotes_paths() {
        let c = ssh_command(&SshOptions {
            key: Some("/keys/deploy key".into()),
            known_hosts: Some("/etc/it's".into()),
        });
        assert!(c.contains("-o StrictHostKeyChecking=yes"), "{c}");
        assert!(c.contains("-i '/keys/deploy key'"), "{c}");
        assert!(c.contains("UserKnownHostsFile='/etc/it'\\''s'"), "{c}");
    }

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
        assert_eq!(
            redact("ssh://git@git.example.org/site.git"),
            "ssh://git@git.example.org/site.git"
        );
        assert_eq!(
            redact("https://ghp_token@github.com/o/site.git"),
            "https://***@github.com/o/site.git"
        );
    }
}
