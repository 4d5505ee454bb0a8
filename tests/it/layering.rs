//! The layering rules of ARCHITECTURE.md, checked on the source text so that a change
//! that breaks one fails the test run:
//!
//! - a pure module (the desired-state model, both planners, the observation types, the
//!   host's shared data, the watch schedule) uses no I/O crate (tokio, reqwest, git2,
//!   notify, libc, tempfile), no `std::fs`/`std::env`/`std::process`/`std::net`, no clock,
//!   and no I/O module of the crate (cloud, source, apply, reconcile, commands, the host's
//!   discover, execute and report);
//! - no command imports another command, and no library module imports `commands`.
//!
//! Code under `#[cfg(test)]` is not checked (tests may use the clock), nor are comments.
//! A file is pure when it lies in a pure folder, is named in the list below, or says
//! "Pure" in its `//!` header.

use std::path::{Path, PathBuf};

/// Folders whose every file is pure.
const PURE_FOLDERS: &[&str] = &["desired", "plan", "host/plan", "import", "yaml"];

/// Pure files outside those folders.
const PURE_FILES: &[&str] = &[
    "observed.rs",
    "markers.rs",
    "text.rs",
    "host/driver.rs",
    "host/id.rs",
    "host/status.rs",
    "reconcile/watch/schedule.rs",
    "reconcile/watch/backoff.rs",
];

/// What a pure file must not name, with why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("tokio::", "the async runtime"),
    ("reqwest::", "HTTP"),
    ("git2::", "git"),
    ("notify::", "file notifications"),
    ("libc::", "system calls"),
    ("tempfile::", "temporary files"),
    ("std::fs", "the file system"),
    ("std::env", "the environment"),
    ("std::process", "processes"),
    ("std::net", "the network"),
    ("Instant::now", "the clock"),
    ("SystemTime::now", "the clock"),
    ("crate::cloud", "the cloud clients"),
    ("crate::source", "the repository"),
    ("crate::apply", "the executor"),
    ("crate::reconcile", "the operations layer"),
    ("crate::commands", "the command line"),
    ("crate::host::discover", "the drivers"),
    ("crate::host::execute", "the host executor"),
    ("crate::host::report", "Placement I/O"),
];

/// Names a pure file may use although they match a forbidden prefix: plain values.
const ALLOWED: &[&str] = &[
    "tokio::time::Instant",
    "reqwest::StatusCode",
    "reqwest::Method",
    "reqwest::{Method, StatusCode}",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without test modules and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rel(path: &Path) -> String {
    path.strip_prefix(src())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn is_pure(rel: &str, text: &str) -> bool {
    PURE_FOLDERS
        .iter()
        .any(|f| rel.starts_with(&format!("{f}/")))
        || PURE_FILES.contains(&rel)
        || text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .any(|l| l.contains("Pure"))
}

/// Where `needle` stands in `code` as a path (not inside a longer identifier).
fn mentions(code: &str, needle: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices(needle) {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i..];
        if ALLOWED.iter().any(|a| rest.starts_with(a)) {
            continue;
        }
        // `crate::host::plan` is not `crate::host::planner`; `std::fs` is not `std::fsx`.
        let after = rest[needle.len()..].chars().next();
        if !needle.ends_with("::") && after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        out.push(code[..i].lines().count().max(1));
    }
    out
}

#[test]
fn pure_modules_do_no_io_and_commands_stay_at_the_edge() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    all.sort();
    let mut problems = Vec::new();
    let mut pure = 0;
    for path in &all {
        let rel = rel(path);
        let text = std::fs::read_to_string(path).unwrap();
        let code = code(&text);
        if is_pure(&rel, &text) {
            pure += 1;
            for (needle, what) in FORBIDDEN {
                for line in mentions(&code, needle) {
                    problems.push(format!(
                        "src/{rel}:{line}: a pure module names `{needle}` ({what})"
                    ));
                }
            }
        }
        let in_commands = rel.starts_with("commands/");
        if !in_commands && rel != "main.rs" {
            for line in mentions(&code, "crate::commands") {
                problems.push(format!(
                    "src/{rel}:{line}: the library imports `commands` (the command line is the edge)"
                ));
            }
        }
        if in_commands && rel != "commands/mod.rs" {
            let command = rel.trim_start_matches("commands/").trim_end_matches(".rs");
            for other in all.iter().filter_map(|p| rel_command(p)) {
                if other == command {
                    continue;
                }
                for needle in [
                    format!("super::{other}::"),
                    format!("crate::commands::{other}"),
                ] {
                    for line in mentions(&code, &needle) {
                        problems.push(format!(
                            "src/{rel}:{line}: the command `{command}` imports the command `{other}`"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        pure >= 40,
        "the pure set shrank to {pure} files: check the lists above"
    );
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

fn rel_command(path: &Path) -> Option<String> {
    let rel = rel(path);
    let name = rel.strip_prefix("commands/")?.trim_end_matches(".rs");
    (name != "mod").then(|| name.to_owned())
}

#[test]
fn the_checker_sees_a_violation() {
    // The checker itself must be able to fail.
    let code = code(
        "//! Pure.\nuse std::fs;\n// std::env in a comment\nfn f() { tokio::time::Instant::now(); }\n#[cfg(test)]\nmod t { use std::env; }\n",
    );
    assert_eq!(mentions(&code, "std::fs"), [2]);
    assert!(
        mentions(&code, "std::env").is_empty(),
        "comments and tests are skipped"
    );
    assert!(
        mentions(&code, "tokio::").is_empty(),
        "tokio::time::Instant is allowed"
    );
    assert_eq!(mentions(&code, "Instant::now"), [4]);
    assert!(mentions("crate::host::planner", "crate::host::plan").is_empty());
}
