//! `fpga-sync status`: the host agent's last pass, read from the status file `watch` (or
//! `apply --host --status-file`) writes, for people or as JSON, and whether the agent is
//! healthy (the exit code, for monitoring). I/O: the status file, the clock, stdout.

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::{Format, StatusArgs};
use crate::diagnostic::Diagnostic;
use crate::host::report::status::{SlotState, now};
use crate::output::{FORMAT_VERSION, StatusFile, StatusReport};

/// Runs `status`; returns the exit code: 0 healthy, 1 unhealthy or unreadable.
pub fn run(args: &StatusArgs, color: bool) -> std::io::Result<u8> {
    let json = args.format == Format::Json;
    let path = args
        .status_file
        .clone()
        .unwrap_or_else(|| args.state_dir.join("status.json"));
    let file = match read(&path) {
        Ok(file) => file,
        Err(d) => {
            super::fail(&[d], color, json)?;
            return Ok(1);
        }
    };
    let age = now().saturating_sub(file.host.finished_at);
    let report = StatusReport {
        format_version: FORMAT_VERSION,
        file: path.display().to_string(),
        healthy: false,
        problems: problems(&file, age, args.max_age),
        age_seconds: age,
        status: file,
    };
    let report = StatusReport {
        healthy: report.problems.is_empty(),
        ..report
    };
    if json {
        super::print_json(&report)?;
    } else {
        print!("{}", human(&report));
    }
    Ok(u8::from(!report.healthy))
}

fn read(path: &Path) -> Result<StatusFile, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::error(
            "fpga_sync::status",
            format!("cannot read the status file `{}`: {e}", path.display()),
        )
        .help("the host agent (`fpga-sync watch`) writes it after every pass, to `<state-dir>/status.json` unless `--status-file` says otherwise: give the same `--state-dir` or `--status-file` here, and check that the agent runs (`systemctl status fpga-sync-watch`)")
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Diagnostic::error(
            "fpga_sync::status",
            format!("`{}` is not an fpga-sync status file: {e}", path.display()),
        )
        .help(
            "give the file `fpga-sync watch --status-file` or `apply --host --status-file` writes",
        )
    })
}

/// Why the agent is not healthy, one line each.
fn problems(file: &StatusFile, age: u64, max_age: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &file.host.error {
        out.push(format!("the last pass failed: {e}"));
    }
    for s in &file.host.slots {
        let state = match s.state {
            // Held back by its rollout until its turn: by design, not the agent's problem
            // (a halted rollout shows in `rollout status` and the agent's metrics).
            SlotState::Verified | SlotState::Manual | SlotState::Waiting => continue,
            SlotState::Pending => "pending",
            SlotState::Blocked => "blocked",
            SlotState::Failed => "FAILED",
        };
        out.push(format!("{}: {state}: {}", s.slot, s.message));
    }
    if let Some(max) = max_age.filter(|m| age > *m) {
        out.push(format!(
            "the last pass finished {} ago, more than `--max-age {max}`: is the agent running?",
            ago(age)
        ));
    }
    out
}

fn ago(seconds: u64) -> String {
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7199 => format!("{} min", seconds / 60),
        _ => format!("{} h", seconds / 3600),
    }
}

/// The report for a terminal.
fn human(r: &StatusReport) -> String {
    let s = &r.status;
    let mut out = String::new();
    let commit = s
        .host
        .commit
        .as_deref()
        .map_or("files on disk".to_owned(), |c| {
            format!("commit {}", &c[..c.len().min(12)])
        });
    let mut pass = format!("last pass {} ago", ago(r.age_seconds));
    if let Some(t) = s.trigger {
        pass.push_str(&format!(", trigger {}", t.name()));
    }
    if let Some(ms) = s.duration_ms {
        pass.push_str(&format!(", {ms} ms"));
    }
    if let Some(n) = s.passes {
        pass.push_str(&format!(", {n} pass(es) since the agent started"));
    }
    let _ = writeln!(out, "host {}: {commit}; {pass}", s.host.host);
    let _ = writeln!(out, "status file: {}\n", r.file);
    for slot in &s.host.slots {
        let state = match slot.state {
            SlotState::Verified => "verified",
            SlotState::Manual => "manual",
            SlotState::Pending => "pending",
            SlotState::Blocked => "BLOCKED",
            SlotState::Failed => "FAILED",
            SlotState::Waiting => "waiting",
        };
        let _ = writeln!(
            out,
            "  {:<24} {state:<8}  {}",
            slot.slot.to_string(),
            slot.message
        );
        if let Some(b) = s.backoff.iter().find(|b| b.slot == slot.slot) {
            let _ = writeln!(
                out,
                "  {:<24} {:<8}  backing off after {} failed attempt(s): next in {}",
                "",
                "",
                b.attempts,
                ago(b.next_attempt_at.saturating_sub(now()))
            );
        }
    }
    if s.host.slots.is_empty() {
        let _ = writeln!(out, "  (no slots assigned to this host)");
    }
    for removal in &s.host.removals {
        let _ = writeln!(out, "  {removal}");
    }
    if let Some(e) = &s.host.error {
        let _ = writeln!(out, "\nerror: the last pass failed: {e}");
    }
    let _ = writeln!(
        out,
        "\n{}",
        if r.healthy {
            "healthy".to_owned()
        } else {
            format!("unhealthy: {} problem(s)", r.problems.len())
        }
    );
    out
}
