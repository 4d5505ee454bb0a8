//! Build script: the version `fpga-sync -V` prints, with the git commit it was built from
//! when the source is a git checkout (`0.1.0 (commit 09b9ccc1a2b3)`), else the bare
//! version. I/O: runs `git` in the source folder.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    // A release build from a tarball may name its commit itself.
    let commit = std::env::var("FPGA_SYNC_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    let full = match &commit {
        Some(c) => format!("{version} (commit {c})"),
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=FPGA_SYNC_VERSION={full}");
    println!("cargo:rerun-if-env-changed=FPGA_SYNC_BUILD_COMMIT");
    // Rebuild when HEAD moves: HEAD itself (a branch switch) and the branch it names.
    // Only files that exist are named: cargo reruns the script every time for a missing one.
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut watched = vec![root.join(head)];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
            && let Some(path) = git(&["rev-parse", "--git-path", &branch])
        {
            watched.push(root.join(path));
        }
        if let Some(packed) = git(&["rev-parse", "--git-path", "packed-refs"]) {
            watched.push(root.join(packed));
        }
        for path in watched.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
}
