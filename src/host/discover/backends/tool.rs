//! Running a vendor tool: an argv (never a shell) with no stdin, its stdout and stderr
//! captured, in its own process group so that a tool that hangs is killed together with
//! its children when the timeout passes. I/O: spawns the process and signals its group.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::host::driver::DriverError;

/// What a tool that exited 0 printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolOutput {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl ToolOutput {
    /// stdout and stderr together, trimmed, for a report.
    pub fn combined(&self) -> String {
        let (out, err) = (self.stdout.trim(), self.stderr.trim());
        match (out.is_empty(), err.is_empty()) {
            (_, true) => out.to_owned(),
            (true, false) => err.to_owned(),
            (false, false) => format!("{out}\n{err}"),
        }
    }
}

/// How often a running tool is polled.
const POLL: Duration = Duration::from_millis(10);
/// How long output is still collected after the tool exits (a child it left behind may
/// hold the pipes open).
const DRAIN: Duration = Duration::from_secs(2);

/// Runs `argv` with `timeout`. Exit 0 → its output; non-zero → [`DriverError::ToolFailed`]
/// with the code and stderr (else stdout) trimmed; past the timeout → its process group is
/// killed and [`DriverError::Timeout`]; cannot start → [`DriverError::Io`].
pub fn run(argv: &[String], timeout: Duration) -> Result<ToolOutput, DriverError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(DriverError::Parse {
            source: "command".into(),
            reason: "empty argv".into(),
        });
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| DriverError::Io {
            path: program.into(),
            error: e.to_string(),
        })?;
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    if let Some(mut out) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            let _ = tx.send((true, buf));
        });
    }
    if let Some(mut err) = child.stderr.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            let _ = tx.send((false, buf));
        });
    }
    drop(tx);
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= timeout => {
                kill_group(pid);
                let _ = child.wait();
                return Err(DriverError::Timeout {
                    command: argv.to_vec(),
                    after: timeout,
                });
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                kill_group(pid);
                let _ = child.wait();
                return Err(DriverError::Io {
                    path: program.into(),
                    error: e.to_string(),
                });
            }
        }
    };
    let mut output = ToolOutput::default();
    let deadline = Instant::now() + DRAIN;
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, buf)) => output.stdout = String::from_utf8_lossy(&buf).into_owned(),
            Ok((false, buf)) => output.stderr = String::from_utf8_lossy(&buf).into_owned(),
            Err(_) => break,
        }
    }
    if status.success() {
        return Ok(output);
    }
    let said = if output.stderr.trim().is_empty() {
        output.stdout.trim()
    } else {
        output.stderr.trim()
    };
    Err(DriverError::ToolFailed {
        command: argv.to_vec(),
        code: status.code(),
        output: said.to_owned(),
    })
}

fn kill_group(pid: libc::pid_t) {
    // SAFETY: kill(2) with a negative pid signals the process group the child leads
    // (spawned with process_group(0)); it touches no memory of ours.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn output_and_exit_codes_are_reported() {
        let out = run(&argv(&["sh", "-c", "echo hi; echo warn >&2"]), POLL * 500).unwrap();
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("hi\n", "warn\n")
        );
        let err = run(&argv(&["sh", "-c", "echo out; exit 4"]), POLL * 500).unwrap_err();
        assert!(
            matches!(&err, DriverError::ToolFailed { code: Some(4), output, .. } if output == "out"),
            "{err:?}"
        );
    }

    #[test]
    fn a_hung_tool_and_its_children_are_killed() {
        let start = Instant::now();
        let err = run(
            &argv(&["sh", "-c", "sleep 30 & sleep 30"]),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(err, DriverError::Timeout { .. }), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
