//! The Debian package (`scripts/package`, cargo-deb): built from the binary the tests
//! already built (stripped), installed with `dpkg -i` into a scratch root whose package
//! database is a copy of this machine's (so its dependencies are checked against what is
//! installed here), then run from there; its unit, configuration file, man pages and
//! completions are where the package says, and it removes cleanly. Needs cargo-deb
//! (`cargo install cargo-deb --locked`) and dpkg; fails with that message without them.

use std::path::Path;
use std::process::Command;

fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{command:?} failed:\n{text}");
    text
}

#[test]
fn the_debian_package_builds_installs_and_runs() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        Command::new("cargo-deb").arg("--version").output().is_ok(),
        "cargo-deb is needed for this test: cargo install cargo-deb --locked"
    );
    // A target folder of its own holding this build as the release binary.
    let target = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(target.path().join("release")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_fpga-sync"),
        target.path().join("release/fpga-sync"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    run(Command::new(manifest.join("scripts/package"))
        .args(["--no-build", "-o"])
        .arg(out.path())
        .env("CARGO_TARGET_DIR", target.path()));
    let deb = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/fpga-sync",
        "./lib/systemd/system/fpga-sync-watch.service",
        "./etc/fpga-sync/agent.conf",
        "./usr/share/man/man1/fpga-sync.1.gz",
        "./usr/share/man/man1/fpga-sync-watch.1.gz",
        "./usr/share/man/man1/fpga-sync-rollout-status.1.gz",
        "./usr/share/bash-completion/completions/fpga-sync",
        "./usr/share/zsh/vendor-completions/_fpga-sync",
        "./usr/share/fish/vendor_completions.d/fpga-sync.fish",
    ] {
        assert!(
            contents.contains(path),
            "{path} is not in the package:\n{contents}"
        );
    }
    let conffiles = run(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/fpga-sync/agent.conf");

    // Installed into a scratch root.
    let root = tempfile::tempdir().unwrap();
    let db = root.path().join("var/lib/dpkg");
    std::fs::create_dir_all(db.join("info")).unwrap();
    std::fs::create_dir_all(db.join("updates")).unwrap();
    std::fs::copy("/var/lib/dpkg/status", db.join("status")).unwrap();
    let dpkg = || {
        let mut c = Command::new("dpkg");
        c.arg(format!("--root={}", root.path().display()))
            .args(["--force-not-root", "--log=/dev/null"]);
        c
    };
    run(dpkg().arg("-i").arg(&deb));
    let status = run(dpkg().args(["-s", "fpga-sync"]));
    assert!(status.contains("Status: install ok installed"), "{status}");
    let bin = root.path().join("usr/bin/fpga-sync");
    let version = run(Command::new(&bin).arg("--version"));
    // `fpga-sync 0.1.0`, with `(commit …)` when built in a git checkout.
    assert!(
        version.starts_with(&format!("fpga-sync {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let valid = run(Command::new(&bin)
        .args(["validate", "--worktree", "--repo"])
        .arg(manifest.join("examples")));
    assert!(valid.contains("valid"), "{valid}");
    // The configuration file the unit reads, accepted by the binary it runs.
    let unit = std::fs::read_to_string(
        root.path()
            .join("lib/systemd/system/fpga-sync-watch.service"),
    )
    .unwrap();
    assert!(
        unit.contains("EnvironmentFile=/etc/fpga-sync/agent.conf"),
        "{unit}"
    );
    assert!(
        unit.contains("ExecStart=/usr/bin/fpga-sync watch"),
        "{unit}"
    );
    let conf = root.path().join("etc/fpga-sync/agent.conf");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let help = run(Command::new(&bin)
        .args(["watch", "--config"])
        .arg(&conf)
        .arg("--help"));
    assert!(help.contains("FPGA_SYNC_METRICS_ADDRESS"), "{help}");
    let man =
        std::fs::metadata(root.path().join("usr/share/man/man1/fpga-sync-watch.1.gz")).unwrap();
    assert!(man.len() > 500);

    // Removed, the configuration stays (a conffile) until purged.
    run(dpkg().args(["-r", "fpga-sync"]));
    assert!(!bin.exists());
    assert!(conf.exists());
    run(dpkg().args(["-P", "fpga-sync"]));
    assert!(!conf.exists());
}
