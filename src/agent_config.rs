//! The agent's configuration file (`watch --config FILE`, `FPGA_SYNC_CONFIG`, and
//! `EnvironmentFile=` of the systemd unit, which reads the same file): `KEY=VALUE` lines
//! of environment variables. Every option of `watch` has an `FPGA_SYNC_*` variable, so
//! every option can live there, beside `OS_*` (the cloud) and `RUST_LOG`. The format is
//! the part of systemd's `EnvironmentFile=` both readers agree on: one assignment per
//! line, `#` or `;` comments and blank lines ignored, a value optionally in single or
//! double quotes. Variables already in the environment win over the file, and options on
//! the command line win over both. An `FPGA_SYNC_*` key no option has is an error (a
//! typo would otherwise be ignored), with its line and a suggestion.
//!
//! I/O: reads the file; [`apply`] sets the process environment, before any thread starts.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A line of the file that is not an assignment, or an unknown option.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)?;
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)?;
        }
        write!(f, "\n  help: {}", self.help)
    }
}

/// The configuration file the command line (`watch --config FILE`, `--config=FILE`) or
/// `FPGA_SYNC_CONFIG` names, if any.
pub fn find(args: &[OsString]) -> Option<PathBuf> {
    let mut after_watch = false;
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "watch" {
            after_watch = true;
        } else if after_watch && text == "--config" {
            return iter.next().map(PathBuf::from);
        } else if let Some(path) = text.strip_prefix("--config=").filter(|_| after_watch) {
            return Some(PathBuf::from(path));
        }
    }
    after_watch
        .then(|| std::env::var_os("FPGA_SYNC_CONFIG").map(PathBuf::from))
        .flatten()
}

/// The assignments of a configuration file, in order. `known` holds every `FPGA_SYNC_*`
/// variable an option reads. Pure.
pub fn parse(
    text: &str,
    known: &BTreeSet<String>,
) -> Result<Vec<(String, String)>, (usize, String, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((
                i + 1,
                format!("`{line}` is not an assignment"),
                "write `KEY=VALUE`, e.g. `FPGA_SYNC_HOST=compute-01`, or start a comment with `#`"
                    .to_owned(),
            ));
        };
        let key = key.trim();
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err((
                i + 1,
                format!("`{key}` is not a variable name"),
                "names are letters, digits and `_`, e.g. `FPGA_SYNC_REPO`".to_owned(),
            ));
        }
        if key.starts_with("FPGA_SYNC_") && !known.contains(key) {
            let closest = known
                .iter()
                .map(|k| (strsim::levenshtein(k, key), k))
                .filter(|(d, _)| *d <= 3)
                .min();
            let help = match closest {
                Some((_, k)) => format!("did you mean `{k}`?"),
                None => "`fpga-sync watch --help` names each option's variable".to_owned(),
            };
            return Err((i + 1, format!("no option reads `{key}`"), help));
        }
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| {
                value
                    .strip_prefix(*q)
                    .and_then(|v| v.strip_suffix(*q))
                    .filter(|_| value.len() >= 2)
            })
            .unwrap_or(value);
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// Every `FPGA_SYNC_*` variable an option of `command` (or of its subcommands) reads.
pub fn known_variables(command: &clap::Command) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .filter(|e| e.starts_with("FPGA_SYNC_"))
        .collect();
    for sub in command.get_subcommands() {
        out.extend(known_variables(sub));
    }
    out
}

/// Reads the file and sets each variable it assigns that the environment does not have
/// already; returns how many it set. Call it before any thread starts.
pub fn apply(path: &Path, known: &BTreeSet<String>) -> Result<usize, ConfigError> {
    let error = |line: usize, message: String, help: String| ConfigError {
        path: path.to_owned(),
        line,
        message,
        help,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        error(
            0,
            format!("cannot read the agent configuration: {e}"),
            "give `--config` (or FPGA_SYNC_CONFIG) a readable file of `KEY=VALUE` lines".to_owned(),
        )
    })?;
    let assignments = parse(&text, known).map_err(|(line, m, h)| error(line, m, h))?;
    let mut set = 0;
    for (key, value) in assignments {
        if std::env::var_os(&key).is_some() {
            continue;
        }
        // SAFETY: called from `main` before the runtime or any other thread starts, so
        // nothing reads the environment concurrently.
        unsafe { std::env::set_var(&key, &value) };
        set += 1;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["FPGA_SYNC_HOST", "FPGA_SYNC_REPO", "FPGA_SYNC_POLL"]
            .map(String::from)
            .into()
    }

    #[test]
    fn assignments_comments_and_quotes_as_systemd_reads_them() {
        let text = "# the agent\n\nFPGA_SYNC_HOST=compute-01\n; also a comment\nFPGA_SYNC_REPO = \"https://git.example/site.git\"\nOS_CLOUD='prod'\nRUST_LOG=info\n";
        assert_eq!(
            parse(text, &known()).unwrap(),
            [
                ("FPGA_SYNC_HOST", "compute-01"),
                ("FPGA_SYNC_REPO", "https://git.example/site.git"),
                ("OS_CLOUD", "prod"),
                ("RUST_LOG", "info")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn a_misspelt_option_and_a_line_that_is_no_assignment_are_located() {
        let (line, message, help) =
            parse("FPGA_SYNC_HOST=a\nFPGA_SYNC_POL=5\n", &known()).unwrap_err();
        assert_eq!(
            (line, message.as_str()),
            (2, "no option reads `FPGA_SYNC_POL`")
        );
        assert_eq!(help, "did you mean `FPGA_SYNC_POLL`?");
        let (line, message, _) = parse("\n\nfpga sync\n", &known()).unwrap_err();
        assert_eq!(
            (line, message.as_str()),
            (3, "`fpga sync` is not an assignment")
        );
    }

    #[test]
    fn the_file_is_found_after_watch_only() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            find(&args(&["fpga-sync", "watch", "--config", "/etc/a.conf"])),
            Some(PathBuf::from("/etc/a.conf"))
        );
        assert_eq!(
            find(&args(&["fpga-sync", "watch", "--config=/etc/b.conf"])),
            Some(PathBuf::from("/etc/b.conf"))
        );
        assert_eq!(find(&args(&["fpga-sync", "plan", "--config", "x"])), None);
    }
}
