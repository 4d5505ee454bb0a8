//! `--require-signed-by`: a desired-state commit is used only when it carries an SSH
//! signature by a key of the `allowed_signers` file, as `git verify-commit` with
//! `gpg.format=ssh` decides. Commits are made and signed with the real `git` and
//! `ssh-keygen` (keys made per test), against the real local cloud and a `sim` host: an
//! allowed key's commit is applied (central and `--host`); an unsigned commit and one
//! signed by another key are refused by `plan`, `apply` and `watch` with a message naming
//! the commit and the reason, and nothing changes; `watch` keeps carrying the last verified
//! commit, writes the refusal to the status file and logs it once per commit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fpga_sync::cloud::glance::Glance;
use fpga_sync::cloud::placement::Placement;
use fpga_sync::host::discover::backends::sim;
use fpga_sync::host::report::status::SlotState;
use fpga_sync::reconcile::watch::WatchStatus;

use crate::support::cloud::{NOAUTH, local_cloud};
use crate::support::fake_host::FakeHost;
use crate::support::host_site::*;

/// Two SSH keys (`alice` allowed, `mallory` not) and the `allowed_signers` file.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        for name in ["alice", "mallory"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(dir.path().join(name))
                .output()
                .expect("ssh-keygen (openssh-client) must be installed: scripts/test installs it");
            assert!(out.status.success(), "{out:?}");
        }
        let public = std::fs::read_to_string(dir.path().join("alice.pub")).unwrap();
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        std::fs::write(
            dir.path().join("allowed_signers"),
            format!(
                "# who may change the site\nalice@example.org {}\n",
                key.join(" ")
            ),
        )
        .unwrap();
        Keys { dir }
    }

    fn allowed(&self) -> String {
        self.dir
            .path()
            .join("allowed_signers")
            .display()
            .to_string()
    }

    fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Commits everything in `repo` with the real git: signed with `key`, or unsigned.
fn git_commit(repo: &Path, message: &str, key: Option<&Path>) -> String {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=site editor",
                "-c",
                "user.email=editor@example.org",
            ])
            .args(["-c", "gpg.format=ssh", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(repo)
            .output()
            .expect("git must be installed");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    if !repo.join(".git").exists() {
        git(&["init", "-q"]);
        std::fs::write(repo.join(".gitignore"), ".cache/\n").unwrap();
    }
    git(&["add", "-A"]);
    match key {
        Some(key) => {
            let signing = format!("user.signingkey={}", key.display());
            git(&[
                "-c",
                &signing,
                "commit",
                "-q",
                "--allow-empty",
                "-S",
                "-m",
                message,
            ]);
        }
        None => {
            git(&["commit", "-q", "--allow-empty", "-m", message]);
        }
    }
    git(&["rev-parse", "HEAD"])
}

/// What `git verify-commit` says of HEAD with the same allowed signers: the reference.
fn git_verifies(repo: &Path, keys: &Keys) -> bool {
    Command::new("git")
        .args([
            "-c",
            &format!("gpg.ssh.allowedSignersFile={}", keys.allowed()),
            "verify-commit",
            "HEAD",
        ])
        .current_dir(repo)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Appends a bitstream `extra-<lower>` (a new image a central apply would upload).
fn add_extra_bitstream(site: &HostSite, seed: &str) -> String {
    let name = format!("extra-{seed}-{}", site.lower);
    std::fs::write(
        site.path().join(format!("files/extra-{seed}.bin")),
        format!("extra {seed} {}", site.token),
    )
    .unwrap();
    let uuid = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        seed.len(),
        u64::from_str_radix(&site.token[site.token.len() - 12..], 16).unwrap()
    );
    let doc = format!(
        "---\napiVersion: fpga-sync/v1\nkind: Bitstream\nname: {name}\nfile: files/extra-{seed}.bin\nmetadata:\n  bs-name: extra\n  bs-uuid: {uuid}\n  vendor: Intel\n  board: PAC-A10\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {uuid}\n"
    );
    let path = site.path().join("site.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(path, format!("{text}\n{doc}")).unwrap();
    name
}

async fn image_named(name: &str) -> bool {
    let session = local_cloud().session(NOAUTH).await;
    Glance::new(&session)
        .images(&[])
        .await
        .unwrap()
        .iter()
        .any(|i| i.name.as_deref() == Some(name))
}

#[tokio::test(flavor = "multi_thread")]
async fn central_plan_and_apply_use_only_commits_signed_by_an_allowed_key() {
    let keys = Keys::new();
    let site = HostSite::new("sim", &["-h1"]);
    let signed = ["--require-signed-by", &keys.allowed()];

    // Unsigned: refused by plan, apply and validate; nothing uploaded.
    let extra = add_extra_bitstream(&site, "u");
    let unsigned = git_commit(site.path(), "unsigned", None);
    assert!(!git_verifies(site.path(), &keys));
    for command in [
        vec!["plan", "--repo", "."],
        vec!["apply", "--repo", ".", "--auto-approve"],
        vec!["validate", "--repo", "."],
    ] {
        let mut args = command.clone();
        args.extend(signed);
        let (code, out) = site.run(&args, &[]);
        assert_eq!(code, 1, "{command:?}: {out}");
        assert!(
            out.contains(&format!("commit {unsigned} is refused: it is not signed")),
            "{command:?}: {out}"
        );
        assert!(out.contains("git commit -S"), "the help says how: {out}");
    }
    assert!(!image_named(&extra).await, "nothing was uploaded");
    // The same through the environment variable.
    let (code, out) = site.run(
        &["apply", "--repo", ".", "--auto-approve"],
        &[("FPGA_SYNC_REQUIRE_SIGNED_BY", keys.allowed())],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not signed"), "{out}");

    // Signed by a key the file does not allow: refused, the key named.
    let by_mallory = git_commit(site.path(), "mallory's", Some(&keys.key("mallory")));
    assert!(!git_verifies(site.path(), &keys));
    let mut args = vec!["apply", "--repo", ".", "--auto-approve"];
    args.extend(signed);
    let (code, out) = site.run(&args, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "commit {by_mallory} is refused: it is signed with ED25519 key SHA256:"
        )) && out.contains("does not allow"),
        "{out}"
    );
    assert!(!image_named(&extra).await, "nothing was uploaded");

    // Signed by alice: planned and applied, the signer shown.
    git_commit(site.path(), "alice's", Some(&keys.key("alice")));
    assert!(git_verifies(site.path(), &keys));
    let (code, out) = site.run(&args, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("signed by alice@example.org (ED25519 key SHA256:"),
        "{out}"
    );
    assert!(
        image_named(&extra).await,
        "the signed commit was applied: {out}"
    );

    // A tampered commit (alice's signature over another payload) is refused.
    let raw = Command::new("git")
        .args(["cat-file", "commit", "HEAD"])
        .current_dir(site.path())
        .output()
        .unwrap()
        .stdout;
    let tampered = String::from_utf8(raw)
        .unwrap()
        .replace("alice's", "alice's, amended");
    let mut hash = Command::new("git")
        .args(["hash-object", "-t", "commit", "-w", "--stdin"])
        .current_dir(site.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut hash.stdin.take().unwrap(), tampered.as_bytes()).unwrap();
    let forged = String::from_utf8(hash.wait_with_output().unwrap().stdout).unwrap();
    let forged = forged.trim();
    let (code, out) = site.run(
        &[
            "plan",
            "--repo",
            ".",
            "--ref",
            forged,
            "--require-signed-by",
            &keys.allowed(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "commit {forged} is refused: its signature by alice@example.org does not verify"
        )),
        "{out}"
    );

    // Files on disk carry no signature; a missing allowed-signers file is an error.
    let (code, out) = site.run(
        &[
            "plan",
            "--repo",
            ".",
            "--worktree",
            "--require-signed-by",
            &keys.allowed(),
        ],
        &[],
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("cannot be used with") || out.contains("carry no signature"),
        "{out}"
    );
    let missing = keys.dir.path().join("nope").display().to_string();
    let (code, out) = site.run(
        &["plan", "--repo", ".", "--require-signed-by", &missing],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("cannot read the allowed signers file"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_programs_only_commits_signed_by_an_allowed_key() {
    let keys = Keys::new();
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let site = HostSite::new("sim", &["-h1"]);
    let host = site.host(1);
    compute_node(&placement, &host).await;
    let fake = FakeHost::new();
    let dirs = HostDirs::of(&fake);
    let root = fake.config().sim_root;
    sim::add_device(&root, ADDR, "8086:09c4", "simulated PAC", None).unwrap();
    sim::add_region(&root, ADDR, "0", Some(IFACE), None).unwrap();
    let allowed = keys.allowed();
    let args = [
        "apply",
        "--repo",
        ".",
        "--auto-approve",
        "--host",
        &host,
        "--require-signed-by",
        &allowed,
    ];

    git_commit(site.path(), "unsigned", None);
    let (code, out) = site.run(&args, &dirs.env());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is refused: it is not signed"), "{out}");
    assert!(sim::calls(&root).is_empty(), "nothing was programmed");
    let providers = placement
        .providers(Some(&format!("{host}_{ADDR}")), None)
        .await
        .unwrap();
    assert!(providers.is_empty(), "nothing was reported: {providers:?}");

    git_commit(site.path(), "mallory's", Some(&keys.key("mallory")));
    let (code, out) = site.run(&args, &dirs.env());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not allow"), "{out}");
    assert!(sim::calls(&root).is_empty(), "nothing was programmed");

    git_commit(site.path(), "alice's", Some(&keys.key("alice")));
    let (code, out) = site.run(&args, &dirs.env());
    assert_eq!(code, 0, "{out}");
    assert_eq!(sim::calls(&root).len(), 1, "programmed: {out}");
    let (_, traits, _, _) = provider_of(&placement, &format!("{host}_{ADDR}")).await;
    assert!(traits.contains(&function_trait(site.afu[0])), "{traits:?}");
}

/// `watch` in the background until it is killed.
struct Watch(std::process::Child);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn wait_status(file: &Path, what: &str, check: impl Fn(&WatchStatus) -> bool) -> WatchStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = WatchStatus::read(file)
            && check(&s)
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no status with {what} within 60 s; last: {:#?}",
            WatchStatus::read(file)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn carries(status: &WatchStatus, bitstream: &str) -> bool {
    status.status.slots.iter().any(|s| {
        s.slot.region.as_deref() == Some("0")
            && s.state == SlotState::Verified
            && s.bitstream.as_deref() == Some(bitstream)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_keeps_the_last_verified_commit_and_reports_a_refused_one_once() {
    let keys = Keys::new();
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let site = HostSite::new("sim", &["-h1"]);
    let host = site.host(1);
    compute_node(&placement, &host).await;
    let fake = FakeHost::new();
    let dirs = HostDirs::of(&fake);
    let root = fake.config().sim_root;
    sim::add_device(&root, ADDR, "8086:09c4", "simulated PAC", None).unwrap();
    sim::add_region(&root, ADDR, "0", Some(IFACE), None).unwrap();
    let first = git_commit(site.path(), "alice's: aes-a", Some(&keys.key("alice")));

    let status_file = dirs.state.join("status.json");
    let log = dirs.state.join("watch.log");
    let child = Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args([
            "watch",
            "--repo",
            ".",
            "--host",
            &host,
            "--require-signed-by",
            &keys.allowed(),
        ])
        .args([
            "--verify-every",
            "1",
            "--debounce",
            "100",
            "--log-format",
            "json",
        ])
        .arg("--status-file")
        .arg(&status_file)
        .current_dir(site.path())
        .envs(local_cloud().os_env())
        .env("OS_CLOUD", NOAUTH)
        .env("FPGA_SYNC_SITE", &site.token)
        .env("FPGA_SYNC_CACHE_DIR", site.path().join(".cache"))
        .envs(dirs.env())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _watch = Watch(child);
    let aes_a = format!("aes-a-{}", site.lower);
    let aes_b = format!("aes-b-{}", site.lower);
    wait_status(&status_file, "aes-a verified", |s| {
        s.status.error.is_none() && carries(s, &aes_a)
    });
    assert_eq!(sim::calls(&root).len(), 1);

    // An unsigned commit moving the slot to aes-b: refused, aes-a kept and still verified.
    site.assign("b");
    let unsigned = git_commit(site.path(), "unsigned: aes-b", None);
    let refused = wait_status(&status_file, "the refusal", |s| {
        s.status
            .error
            .as_deref()
            .is_some_and(|e| e.contains(&unsigned))
    });
    let error = refused.status.error.clone().unwrap();
    assert!(error.contains("is not signed"), "{error}");
    assert_eq!(
        refused.status.commit.as_deref(),
        Some(first.as_str()),
        "{refused:#?}"
    );
    assert!(carries(&refused, &aes_a), "{refused:#?}");
    // Several read-back passes later: nothing programmed, the refusal logged once.
    let passes = refused.passes;
    wait_status(&status_file, "three more passes", |s| {
        s.passes >= passes + 3
    });
    assert_eq!(
        sim::calls(&root).len(),
        1,
        "nothing programmed from the refused commit"
    );
    let (_, traits, _, _) = provider_of(&placement, &format!("{host}_{ADDR}")).await;
    assert!(
        traits.contains(&function_trait(site.afu[0])),
        "aes-a still offered: {traits:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let refusals = text
        .lines()
        .filter(|l| l.contains(&unsigned) && l.contains("\"ERROR\""))
        .count();
    assert_eq!(refusals, 1, "logged once per commit:\n{text}");

    // Mallory's commit: refused too, logged once more (another commit).
    let by_mallory = git_commit(site.path(), "mallory's: aes-b", Some(&keys.key("mallory")));
    wait_status(&status_file, "mallory's refusal", |s| {
        s.status
            .error
            .as_deref()
            .is_some_and(|e| e.contains(&by_mallory) && e.contains("does not allow"))
    });
    assert_eq!(sim::calls(&root).len(), 1);

    // Alice signs the change: programmed.
    std::fs::write(site.path().join("note.txt"), "signed off").unwrap();
    let second = git_commit(site.path(), "alice's: aes-b", Some(&keys.key("alice")));
    let done = wait_status(&status_file, "aes-b verified", |s| {
        s.status.error.is_none() && carries(s, &aes_b)
    });
    assert_eq!(done.status.commit.as_deref(), Some(second.as_str()));
    assert_eq!(sim::calls(&root).len(), 2);
}
