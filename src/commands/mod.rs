//! One file per subcommand, each thin: its arguments become options, one call into the
//! operations layer ([`crate::reconcile`]) does the work, and the result is rendered.
//! Here are what they share at the edge: colour, diagnostics on stderr (or as a JSON error
//! object on stdout), notes that `--quiet` silences, logging at the level `-v` or
//! `RUST_LOG` sets. No command imports another. I/O: the terminal.

pub mod apply;
pub mod claim;
pub mod devices;
pub mod docs;
pub mod import;
pub mod lock;
pub mod observe;
pub mod plan;
pub mod program;
pub mod rollout;
pub mod schema;
pub mod status;
pub mod validate;
pub mod watch;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::cli::{Color, LogFormat};
use crate::diagnostic::Diagnostic;

static QUIET: AtomicBool = AtomicBool::new(false);
static VERBOSE: AtomicU8 = AtomicU8::new(0);

/// Sets `--quiet` and `-v`'s count for the run.
pub fn set_verbosity(quiet: bool, verbose: u8) {
    QUIET.store(quiet, Ordering::Relaxed);
    VERBOSE.store(verbose, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints a note or progress line to stderr, unless `--quiet`.
pub fn note(text: impl std::fmt::Display) {
    if !quiet() {
        eprintln!("{text}");
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)
}

/// Prints `value` as one JSON line on stdout (an event of a stream).
pub fn print_json_line(value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    out.flush()
}

/// Reports a failure: as diagnostics on stderr, or with `json` as the error object on
/// stdout (docs/json.md).
pub fn fail(diagnostics: &[Diagnostic], color: bool, json: bool) -> std::io::Result<()> {
    if json {
        print_json(&crate::output::ErrorReport::of(diagnostics))
    } else {
        report(diagnostics, color);
        Ok(())
    }
}

/// Whether to colour what goes to stderr.
pub fn use_color(choice: Color) -> bool {
    use_color_on(choice, std::io::stderr().is_terminal())
}

/// Whether to colour a stream that is (or is not) a terminal: `auto` colours terminals
/// unless `NO_COLOR` is set.
pub fn use_color_on(choice: Color, terminal: bool) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// Prints diagnostics to stderr.
pub fn report(diagnostics: &[Diagnostic], color: bool) {
    for d in diagnostics {
        eprint!("{}", d.render(color));
    }
}

/// Prints a session's warning to stderr.
pub fn warn(warning: &str) {
    eprintln!("warning: {warning}");
}

/// The log filter: `-q` errors only; `-v` info, `-vv` debug (the HTTP request trace),
/// `-vvv` trace, for fpga-sync's own events (other crates stay at warn below `-vvv`);
/// without them `RUST_LOG`, else `default`.
pub fn log_filter(quiet: bool, verbose: u8, rust_log: Option<&str>, default: &str) -> String {
    match (quiet, verbose) {
        (true, _) => "error".into(),
        (false, 1) => "warn,fpga_sync=info".into(),
        (false, 2) => "warn,fpga_sync=debug".into(),
        (false, 3..) => "info,fpga_sync=trace".into(),
        (false, 0) => rust_log
            .filter(|v| !v.trim().is_empty())
            .unwrap_or(default)
            .to_owned(),
    }
}

/// Sends tracing events to stderr, as text lines or JSON objects, at the level of
/// [`log_filter`] (`default`: `watch` info, every other command warn).
pub fn init_logging(format: LogFormat, default: &str) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let wanted = log_filter(
        quiet(),
        VERBOSE.load(Ordering::Relaxed),
        rust_log.as_deref(),
        default,
    );
    let filter = tracing_subscriber::EnvFilter::try_new(&wanted)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second initialisation (tests run commands in-process) keeps the first.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(false).compact().try_init(),
    };
}
