//! One file per subcommand, each thin: its arguments become options, one call into the
//! operations layer ([`crate::reconcile`]) does the work, and the result is rendered.
//! Here are what they share at the edge: colour, diagnostics on stderr, logging. No
//! command imports another. I/O: the terminal.

pub mod apply;
pub mod devices;
pub mod docs;
pub mod import;
pub mod observe;
pub mod plan;
pub mod program;
pub mod rollout;
pub mod schema;
pub mod validate;
pub mod watch;

use std::io::IsTerminal;

use crate::cli::{Color, LogFormat};
use crate::diagnostic::Diagnostic;

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

/// Sends tracing events to stderr, as text lines or JSON objects. `RUST_LOG` overrides
/// the level `default` (`watch`: info; `apply --host`, which prints its own results:
/// warn).
pub fn init_logging(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
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
