//! The shipped systemd unit of the host agent: it parses, and its sandbox keeps
//! `systemd-analyze security` exposure at or below 3.0 ("OK"), so a change that loosens
//! it fails here. `systemd-analyze` (Debian's `systemd` package) must be installed.

use std::path::Path;
use std::process::Command;

#[test]
fn the_agent_unit_is_sandboxed() {
    let unit =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd/fpga-sync-watch.service");
    // The offline analysis reads the unit by its file name.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("fpga-sync-watch.service");
    std::fs::copy(&unit, &copy).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&copy)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze is needed for this test (apt-get install systemd): {e}")
        });
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score of `{line}`"));
    assert!(score <= 3.0, "exposure {score} > 3.0:\n{text}");
    for needed in [
        "NoNewPrivileges=",
        "ProtectSystem=",
        "CapabilityBoundingSet=",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with('✓') && l.contains(needed)),
            "{needed} is not in effect:\n{text}"
        );
    }
}
