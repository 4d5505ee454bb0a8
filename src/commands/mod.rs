//! One file per subcommand: turns parsed arguments into work and output. I/O: through
//! `source` and the terminal.

pub mod apply;
pub mod devices;
pub mod host;
pub mod import;
pub mod observe;
pub mod plan;
pub mod program;
pub mod schema;
pub mod validate;
pub mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::{Color, SourceArgs};
use crate::source::RepoSpec;

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

/// Which services a command checks when it connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Placement, Glance and Nova: the central commands.
    Cloud,
    /// Placement only: the host agent must read back and withdraw what its cards do not
    /// carry even while Glance is down; a download finds Glance's state when it needs it.
    Placement,
}

/// Connects to the cloud the command line names, checks its API versions once, and prints
/// the session's warnings. Errors come back as diagnostics.
pub async fn connect(
    args: &crate::cli::CloudArgs,
) -> Result<crate::cloud::session::Session, crate::diagnostic::Diagnostic> {
    connect_with(args, Needs::Cloud, |warning| {
        eprintln!("warning: {warning}")
    })
    .await
}

/// As [`connect`], checking only what `needs` says and handing each of the session's
/// warnings to `warn` (`watch` logs them, so that with `--log-format json` every stderr
/// line stays JSON).
pub async fn connect_with(
    args: &crate::cli::CloudArgs,
    needs: Needs,
    warn: impl Fn(&str),
) -> Result<crate::cloud::session::Session, crate::diagnostic::Diagnostic> {
    use crate::cloud::{
        config,
        observe::check_versions,
        session::{Session, SessionOptions},
    };
    let config = config::resolve(args.os_cloud.as_deref(), &config::process_env)?;
    let session = Session::connect(config, SessionOptions::default()).await?;
    for warning in session.warnings() {
        warn(warning);
    }
    match needs {
        Needs::Cloud => check_versions(&session).await?,
        Needs::Placement => {
            crate::cloud::placement::Placement::new(&session)
                .check_version()
                .await?
        }
    }
    Ok(session)
}

/// The source to read, from the command line and the environment.
pub fn repo_spec(args: &SourceArgs) -> RepoSpec {
    let cache_dir = args.cache_dir.clone().unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("fpga-sync")
    });
    RepoSpec {
        repo: args.repo.clone(),
        reference: args.reference.clone(),
        dir: args.dir.clone(),
        worktree: args.worktree,
        cache_dir,
    }
}
