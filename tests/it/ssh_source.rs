//! Point 4: a desired-state repository over SSH, from a real OpenSSH server the test
//! starts on loopback (its own config, host key, authorized_keys and port; `sshd -D -e`):
//! `ssh://user@127.0.0.1:PORT/path` and scp-like `user@127.0.0.1:path` are fetched with
//! the deploy key of `--ssh-key` (or FPGA_SYNC_SSH_KEY) and the host key checked against
//! `--ssh-known-hosts`; an unknown host key and a key the server refuses are clear errors;
//! a new commit is fetched on the next read. The tests fail (never skip) when `sshd` or
//! `git` is missing: `scripts/test` installs them.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::valid_site;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sh(program: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e} (scripts/test installs it)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A running sshd on 127.0.0.1, serving a bare repository of the valid test site.
struct Server {
    dir: TempDir,
    sshd: Child,
    port: u16,
    user: String,
    /// The bare repository, by absolute path.
    repo: PathBuf,
    /// The work tree its commits come from.
    work: crate::support::Site,
}

impl Server {
    fn start() -> Server {
        let sshd_path = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("no sshd: install openssh-server (scripts/test does)");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host", "client", "stranger"] {
            sh(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", key],
                d,
            );
        }
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
        let user = text(&Command::new("id").arg("-un").output().unwrap().stdout)
            .trim()
            .to_owned();
        // A root sshd needs its privilege separation folder.
        if user == "root" {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {h}\nAuthorizedKeysFile {a}\nPidFile {p}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowUsers {user}\nLogLevel VERBOSE\n",
                h = d.join("host").display(),
                a = d.join("authorized_keys").display(),
                p = d.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        let sshd = Command::new(sshd_path)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on {port}: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The trusted host key, as `ssh-keyscan -p PORT 127.0.0.1` would give it.
        let host_key = std::fs::read_to_string(d.join("host.pub")).unwrap();
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}"),
        )
        .unwrap();
        std::fs::write(d.join("empty_known_hosts"), "").unwrap();
        let work = valid_site();
        sh("git", &["init", "-q", "-b", "main"], work.path());
        sh("git", &["add", "-A"], work.path());
        commit(work.path(), "initial");
        let repo = d.join("site.git");
        sh(
            "git",
            &[
                "clone",
                "-q",
                "--bare",
                work.path().to_str().unwrap(),
                repo.to_str().unwrap(),
            ],
            d,
        );
        Server {
            dir,
            sshd,
            port,
            user,
            repo,
            work,
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn ssh_url(&self) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            self.repo.display()
        )
    }

    fn scp_url(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.repo.display())
    }

    /// `validate` of `repo` with `args` and `env`, a fresh HOME and cache.
    fn validate(&self, repo: &str, args: &[&str], env: &[(&str, String)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
            .args([
                "validate",
                "--repo",
                repo,
                "--cache-dir",
                &self.file("cache"),
            ])
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("GIT_SSH_COMMAND")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("FPGA_SYNC_SSH_KEY")
            .env_remove("FPGA_SYNC_SSH_KNOWN_HOSTS")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.sshd.kill().ok();
        self.sshd.wait().ok();
    }
}

fn commit(work: &Path, message: &str) {
    sh(
        "git",
        &[
            "-c",
            "user.name=fpga-sync tests",
            "-c",
            "user.email=tests@fpga-sync.invalid",
            "commit",
            "-q",
            "-m",
            message,
        ],
        work,
    );
}

fn head(repo: &Path) -> String {
    sh(
        "git",
        &["--git-dir", repo.to_str().unwrap(), "rev-parse", "main"],
        repo,
    )
    .trim()
    .to_owned()
}

#[test]
fn a_repository_over_ssh_is_read_with_a_deploy_key_and_a_checked_host_key() {
    let server = Server::start();
    let key = server.file("client");
    let known = server.file("known_hosts");
    let url = server.ssh_url();

    // ssh://, key and known hosts by flag.
    let out = server.validate(&url, &["--ssh-key", &key, "--ssh-known-hosts", &known], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\nsshd: {}",
        text(&out.stderr),
        server.log()
    );
    assert!(text(&out.stdout).starts_with("valid: 7 documents"));
    let first = head(&server.repo);
    assert!(
        text(&out.stderr).contains(&format!("`{url}` at commit {first} (HEAD)")),
        "{}",
        text(&out.stderr)
    );

    // scp-like `user@host:path`, the port from GIT_SSH_COMMAND (as git itself takes it),
    // key and known hosts from the environment; a new commit is fetched.
    server.work.write(
        "placement.yaml",
        crate::support::PLACEMENT.replace(
            "CUSTOM_FPGA\n",
            "CUSTOM_FPGA\n---\napiVersion: fpga-sync/v1\nkind: Trait\nname: CUSTOM_OVER_SSH\n",
        ),
    );
    sh("git", &["add", "-A"], server.work.path());
    commit(server.work.path(), "a trait");
    sh(
        "git",
        &["push", "-q", server.repo.to_str().unwrap(), "main"],
        server.work.path(),
    );
    let second = head(&server.repo);
    assert_ne!(first, second);
    let env = [
        ("GIT_SSH_COMMAND", format!("ssh -p {}", server.port)),
        ("FPGA_SYNC_SSH_KEY", key.clone()),
        ("FPGA_SYNC_SSH_KNOWN_HOSTS", known.clone()),
    ];
    let out = server.validate(&server.scp_url(), &[], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\nsshd: {}",
        text(&out.stderr),
        server.log()
    );
    assert!(
        text(&out.stdout).starts_with("valid: 8 documents"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains(&second), "{}", text(&out.stderr));

    // An unknown host key is refused, with how to trust it.
    let out = server.validate(
        &url,
        &[
            "--ssh-key",
            &key,
            "--ssh-known-hosts",
            &server.file("empty_known_hosts"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "refusing to fetch `{url}`: the SSH host key of `127.0.0.1` is not in"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "`ssh-keyscan -p {} 127.0.0.1 >> ~/.ssh/known_hosts`",
            server.port
        )),
        "{err}"
    );
    assert!(err.contains("--ssh-known-hosts FILE"), "{err}");

    // A key the server does not know is refused, with what to do.
    let out = server.validate(
        &url,
        &[
            "--ssh-key",
            &server.file("stranger"),
            "--ssh-known-hosts",
            &known,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("`127.0.0.1` refused the SSH key"), "{err}");
    assert!(err.contains("as a read-only deploy key"), "{err}");
}
