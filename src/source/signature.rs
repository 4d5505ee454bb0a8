//! Who signed a commit: the SSH signature of a desired-state commit checked against an
//! `allowed_signers` file exactly as `git verify-commit` does with `gpg.format=ssh` — the
//! signature and the signed payload are taken from the commit object (git2's
//! `extract_signature`), `ssh-keygen -Y find-principals` names the principals whose keys
//! may have made it, and `ssh-keygen -Y verify -n git` checks it for one of them, at the
//! commit's committer time (so `valid-after`/`valid-before` in the file mean what they mean
//! to git). I/O: the repository's object store, the `allowed_signers` file, a scratch
//! file for the signature, and the `ssh-keygen` program.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use git2::{Oid, Repository};

use crate::diagnostic::Diagnostic;

const CODE: &str = "fpga_sync::unsigned_commit";
/// The namespace git signs commits in.
const NAMESPACE: &str = "git";

/// A commit whose signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The principal of `allowed_signers` whose key signed it (e.g. `alice@example.org`).
    pub principal: String,
    /// The key, as `ssh-keygen` names it (`ED25519 key SHA256:…`).
    pub key: String,
}

/// Checks that commit `id` of `repository` carries an SSH signature made by a key that
/// `allowed_signers` allows; the error says why not and how to fix it.
pub fn verify(
    repository: &Repository,
    id: &str,
    allowed_signers: &Path,
) -> Result<Signer, Diagnostic> {
    let file = allowed_signers.display();
    let refused = |why: String| Diagnostic::error(CODE, format!("commit {id} is refused: {why}"));
    std::fs::read(allowed_signers).map_err(|e| {
        Diagnostic::error(
            CODE,
            format!("cannot read the allowed signers file `{file}` (--require-signed-by): {e}"),
        )
        .help("give `--require-signed-by` an SSH `allowed_signers` file: one `PRINCIPAL KEYTYPE KEY` line per key (see ssh-keygen(1), ALLOWED SIGNERS)")
    })?;
    let oid =
        Oid::from_str(id).map_err(|e| refused(format!("not a commit id: {}", e.message())))?;
    let commit = repository
        .find_commit(oid)
        .map_err(|e| refused(format!("cannot read it: {}", e.message())))?;
    let (signature, payload) = match repository.extract_signature(&oid, None) {
        Ok(pair) => pair,
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            return Err(refused(format!(
                "it is not signed, and `--require-signed-by` requires a signature by a key of `{file}`"
            ))
            .help(format!(
                "sign the commit with a key `{file}` lists (`git commit -S` with `gpg.format=ssh` and `user.signingKey`)"
            )));
        }
        Err(e) => {
            return Err(refused(format!(
                "cannot read its signature: {}",
                e.message()
            )));
        }
    };
    let signature = signature.as_str().unwrap_or_default().to_owned();
    if !signature
        .trim_start()
        .starts_with("-----BEGIN SSH SIGNATURE-----")
    {
        return Err(
            refused("its signature is not an SSH signature (GPG or X.509?)".into()).help(
                "`--require-signed-by` checks SSH signatures; sign commits with `gpg.format=ssh`",
            ),
        );
    }
    let mut sig_file = tempfile::NamedTempFile::new().map_err(|e| {
        Diagnostic::error(
            CODE,
            format!("cannot write a scratch file for the signature: {e}"),
        )
    })?;
    sig_file
        .write_all(signature.as_bytes())
        .and_then(|()| sig_file.flush())
        .map_err(|e| {
            Diagnostic::error(
                CODE,
                format!("cannot write a scratch file for the signature: {e}"),
            )
        })?;
    let verify_time = format!(
        "-Overify-time={}",
        utc_stamp(commit.committer().when().seconds())
    );
    let sig_path = sig_file.path().to_owned();

    let found = ssh_keygen(
        &[
            "-Y",
            "find-principals",
            "-f",
            &allowed_signers.to_string_lossy(),
            "-s",
            &sig_path.to_string_lossy(),
            &verify_time,
        ],
        None,
    )?;
    let principals: Vec<String> = if found.ok {
        found
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    if principals.is_empty() {
        // Which key it was, for the message: checked without any allowed key.
        let anyone = ssh_keygen(
            &[
                "-Y",
                "check-novalidate",
                "-n",
                NAMESPACE,
                "-s",
                &sig_path.to_string_lossy(),
            ],
            Some(&payload),
        )?;
        let why = if anyone.ok {
            format!(
                "it is signed with {}, which `{file}` does not allow (at the commit's time)",
                key_of(&anyone.text()).unwrap_or_else(|| "a key".into())
            )
        } else {
            format!("its signature does not verify: {}", anyone.reason())
        };
        return Err(refused(why).help(format!(
            "only commits signed by a key of `{file}` are used; add the signer's public key there if it is trusted"
        )));
    }
    let mut last = String::new();
    for principal in &principals {
        let checked = ssh_keygen(
            &[
                "-Y",
                "verify",
                "-n",
                NAMESPACE,
                "-f",
                &allowed_signers.to_string_lossy(),
                "-I",
                principal,
                "-s",
                &sig_path.to_string_lossy(),
                &verify_time,
            ],
            Some(&payload),
        )?;
        if checked.ok {
            return Ok(Signer {
                principal: principal.clone(),
                key: key_of(&checked.text()).unwrap_or_default(),
            });
        }
        last = checked.reason();
    }
    Err(refused(format!(
        "its signature by {} does not verify: {last}",
        principals.join(", ")
    ))
    .help("the commit was changed after it was signed, or the signature is damaged: sign it again"))
}

/// A commit that is not read from git cannot be verified.
pub fn no_commit(origin: &str) -> Diagnostic {
    Diagnostic::error(
        CODE,
        format!("`{origin}` is read as files on disk, which carry no signature, and `--require-signed-by` requires a signed commit"),
    )
    .help("read a commit of a git repository (drop `--worktree`, point `--repo` at a checkout or remote)")
}

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    fn reason(&self) -> String {
        let text = self.stderr.trim();
        if text.is_empty() {
            "ssh-keygen refused it".into()
        } else {
            text.lines().collect::<Vec<_>>().join("; ")
        }
    }
}

fn ssh_keygen(args: &[&str], stdin: Option<&[u8]>) -> Result<Ran, Diagnostic> {
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Diagnostic::error(CODE, format!("cannot run `ssh-keygen` to verify commit signatures: {e}"))
                .help("install OpenSSH's ssh-keygen (Debian: `apt-get install openssh-client`), as git needs it to verify SSH signatures too")
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // ssh-keygen reads the whole payload; a write error shows up as its failure.
        let _ = pipe.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Diagnostic::error(CODE, format!("`ssh-keygen` failed to run: {e}")))?;
    Ok(Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `ED25519 key SHA256:…` from ssh-keygen's `Good "git" signature … with ED25519 key
/// SHA256:…`.
fn key_of(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains(" key "))?;
    let at = line.rfind(" with ")?;
    Some(line[at + " with ".len()..].trim().to_owned())
}

/// `YYYYMMDDHHMMSSZ` for ssh-keygen's `verify-time`, from Unix seconds.
fn utc_stamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_times_become_utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101000000Z");
        assert_eq!(utc_stamp(1_000_000_000), "20010909014640Z");
        assert_eq!(utc_stamp(1_796_161_083), "20261201213803Z");
        assert_eq!(utc_stamp(951_782_400), "20000229000000Z");
    }

    #[test]
    fn the_key_is_read_from_ssh_keygens_verdict() {
        assert_eq!(
            key_of("Good \"git\" signature for a@b with ED25519 key SHA256:abc\n").as_deref(),
            Some("ED25519 key SHA256:abc")
        );
        assert_eq!(key_of("nothing"), None);
    }
}
