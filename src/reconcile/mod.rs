//! The operations layer: what each command does, as cargo's `ops` are to its commands.
//! Every operation is the same pipeline: read the desired state (`load`), observe the
//! world, plan with a pure planner, and (for `apply`) execute the plan, telling a reporter
//! as it goes.
//!
//! - [`cloud`]: the central pipeline — Glance, Placement and Nova against the repository's
//!   images, traits, resource classes and flavors; saved plans and their staleness check.
//! - [`host`]: one compute host's pipeline — its cards and their Placement providers.
//! - [`lease`]: the lease held in Placement that lets one run at a time change a site or
//!   a host.
//!
//! Errors of every layer converge in [`Error`], which knows whether trying again may help
//! ([`Error::is_transient`]); commands turn it into diagnostics only at the edge. I/O: the
//! source, the cloud and the hosts' drivers, through the layers below.

pub mod claim;
pub mod cloud;
mod consumers;
pub mod host;
pub mod import;
pub mod lease;
mod load;
pub mod program;
pub mod rollout;
mod saved;
pub mod watch;

pub use load::{Loaded, SnapshotFiles, check, fingerprint, load, load_snapshot};
pub use saved::SavedPlan;

use crate::cloud::CloudError;
use crate::cloud::session::Session;
use crate::diagnostic::Diagnostic;
use crate::host::driver::DriverError;
use crate::host::report::ComputeNodeError;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The desired state cannot be read or is invalid: every diagnostic found.
    #[error("the desired state cannot be read")]
    Desired(Vec<Diagnostic>),
    /// The repository cannot be read (a checkout or remote that is not there or not
    /// reachable).
    #[error("{}", .0.message)]
    Source(Box<Diagnostic>),
    /// The cloud: configuration, transport, a refusal, a bad response.
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The host's compute-node provider cannot be chosen.
    #[error(transparent)]
    ComputeNode(#[from] ComputeNodeError),
    /// A driver backend cannot run, or failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// No host group of the repository names the host.
    #[error("no host group of the repository names host `{host}`")]
    UnknownHost {
        /// The host, as given.
        host: String,
    },
    /// The planner refused: every problem, each with its help.
    #[error("the plan cannot be made")]
    Plan(Vec<crate::plan::Problem>),
    /// A saved plan no longer matches the cloud.
    #[error("the saved plan `{path}` is stale: {} object(s) changed since it was made", .changes.len())]
    StalePlan {
        /// The plan file.
        path: String,
        /// What moved.
        changes: Vec<crate::plan::stale::Moved>,
        /// Each change, said as a person would ([`crate::plan::stale::explain`]).
        explained: Vec<String>,
    },
    /// The lease of a site or host: held by another run, lost, or not the one named.
    #[error(transparent)]
    Lease(Box<lease::LeaseError>),
    /// A local file or stream could not be read or written.
    #[error("{what}")]
    Io {
        /// What was being done, e.g. ``writing `plan.json` ``.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Anything else that a person must fix, with its code and help.
    #[error("{}", .0.message)]
    Other(Box<Diagnostic>),
}

impl Error {
    /// Whether the same operation may succeed later without anyone changing anything: a
    /// service that is down or busy, a compute node nova-compute has not registered yet.
    /// Everything else (bad desired state, configuration, a backend that cannot run)
    /// needs a person or a new commit.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Source(_) => true,
            Error::Cloud(e) => e.is_transient(),
            Error::Lease(e) => e.is_transient(),
            Error::ComputeNode(e) => e.is_transient(),
            Error::Driver(e) => matches!(
                e,
                DriverError::Busy { .. } | DriverError::Timeout { .. } | DriverError::Io { .. }
            ),
            Error::Desired(_)
            | Error::UnknownHost { .. }
            | Error::Plan(_)
            | Error::StalePlan { .. }
            | Error::Io { .. }
            | Error::Other(_) => false,
        }
    }

    /// Whether the agent's own configuration is wrong, so that a service should stop
    /// rather than retry: its cloud (an unknown `OS_CLOUD`, an unreadable clouds.yaml,
    /// credentials Keystone refuses) or its SSH trust (an unknown host key, a refused
    /// key). Neither waiting nor a new commit fixes these.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Cloud(e) => e.is_configuration(),
            Error::Source(d) => d.code == crate::source::SSH_REFUSED,
            _ => false,
        }
    }

    /// An I/O error, with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// A person's error from a diagnostic.
    pub fn other(d: Diagnostic) -> Self {
        Error::Other(Box::new(d))
    }

    /// The error as diagnostics, each with its help.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let code = "fpga_sync::reconcile";
        match self {
            Error::Desired(d) => d.clone(),
            Error::Source(d) => vec![(**d).clone()],
            Error::Cloud(e) => vec![Diagnostic::from(e.clone())],
            Error::Lease(e) => vec![e.diagnostic()],
            Error::ComputeNode(e) => {
                let d = Diagnostic::error("fpga_sync::host", e.to_string());
                vec![match e.help() {
                    Some(h) => d.help(h),
                    None => d,
                }]
            }
            Error::Driver(e) => vec![Diagnostic::error("fpga_sync::host", e.to_string())],
            Error::UnknownHost { .. } => vec![Diagnostic::error("fpga_sync::host", self.to_string()).help(
                "add the host (or a pattern matching it) to a HostGroup's `hosts`, or check `--host`",
            )],
            Error::Plan(problems) => problems
                .iter()
                .map(|p| Diagnostic::error("fpga_sync::plan", p.message.clone()).help(p.help.clone()))
                .collect(),
            Error::StalePlan { explained, .. } => vec![
                Diagnostic::error(
                    "fpga_sync::stale_plan",
                    format!(
                        "{self}:\n{}",
                        explained
                            .iter()
                            .map(|c| format!("  {c}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    ),
                )
                .help("make a new plan with `fpga-sync plan --out FILE` and review it"),
            ],
            Error::Io { what, source } => vec![Diagnostic::error(
                "fpga_sync::io",
                format!("{what}: {source}"),
            )],
            Error::Other(d) => vec![(**d).clone()],
        }
        .into_iter()
        .map(|mut d| {
            if d.code.is_empty() {
                d.code = code;
            }
            d
        })
        .collect()
    }

    /// One line for logs: the message and its help.
    pub fn one_line(&self) -> String {
        let lines: Vec<String> = self
            .diagnostics()
            .iter()
            .map(|d| match &d.help {
                Some(h) => format!("{} (help: {h})", d.message),
                None => d.message.clone(),
            })
            .collect();
        let mut shown: Vec<String> = lines.iter().take(5).cloned().collect();
        if lines.len() > 5 {
            shown.push(format!("and {} more", lines.len() - 5));
        }
        match self {
            Error::Desired(_) => format!("the desired state cannot be read: {}", shown.join("; ")),
            _ => shown.join("; "),
        }
    }
}

impl From<lease::LeaseError> for Error {
    fn from(e: lease::LeaseError) -> Self {
        Error::Lease(Box::new(e))
    }
}

impl From<Vec<Diagnostic>> for Error {
    fn from(d: Vec<Diagnostic>) -> Self {
        Error::Desired(d)
    }
}

/// Which services an operation checks when it connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Placement, Glance and Nova: the central operations.
    Cloud,
    /// Placement only: the host agent must read back and withdraw what its cards do not
    /// carry even while Glance is down; a download finds Glance's state when it needs it.
    Placement,
}

/// Connects to the cloud named by `os_cloud` (else `OS_CLOUD` and clouds.yaml's rules),
/// checks once that the services `needs` names serve the API versions fpga-sync is written
/// for, and hands each of the session's warnings to `warn`.
pub async fn connect(
    os_cloud: Option<&str>,
    needs: Needs,
    warn: impl Fn(&str),
) -> Result<Session, Error> {
    use crate::cloud::{config, observe::check_versions, session::SessionOptions};
    // A file the configuration names that cannot be read (clouds.yaml, a CA bundle) is
    // a configuration error like any other.
    let unreadable = |e: CloudError| match e {
        CloudError::Io { path, reason } => CloudError::Config {
            message: format!("cannot read `{path}`: {reason}"),
            help: "check that the file exists and this user may read it".into(),
        },
        other => other,
    };
    let config = config::resolve(os_cloud, &config::process_env).map_err(unreadable)?;
    let session = Session::connect(config, SessionOptions::default())
        .await
        .map_err(unreadable)?;
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

/// Checks, without connecting, that the cloud `os_cloud` names (else `OS_CLOUD` or the
/// `OS_*` variables) can be resolved: a service checks this once at startup and exits on
/// an error rather than retrying it.
pub fn check_cloud_config(os_cloud: Option<&str>) -> Result<(), Error> {
    use crate::cloud::config;
    match config::resolve(os_cloud, &config::process_env) {
        Ok(_) => Ok(()),
        Err(CloudError::Io { path, reason }) => Err(Error::Cloud(CloudError::Config {
            message: format!("cannot read `{path}`: {reason}"),
            help: "check that the file exists and this user may read it".into(),
        })),
        Err(e) => Err(e.into()),
    }
}

/// The one runtime every command runs its operation on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_agents_own_configuration_is_fatal() {
        let config = Error::Cloud(CloudError::Config {
            message: "cloud `x` is not in clouds.yaml".into(),
            help: String::new(),
        });
        let ssh = Error::Source(Box::new(Diagnostic::error(
            crate::source::SSH_REFUSED,
            "the SSH host key of `git.example.org` is not in ~/.ssh/known_hosts",
        )));
        let unreachable = Error::Cloud(CloudError::Unreachable {
            service: crate::cloud::error::Service::Placement,
            request: "GET /".into(),
            reason: "connection refused".into(),
        });
        let fetch = Error::Source(Box::new(Diagnostic::error(
            "fpga_sync::source",
            "cannot fetch `https://git.example.org/site.git`",
        )));
        assert!(config.is_fatal() && ssh.is_fatal());
        assert!(!unreachable.is_fatal() && unreachable.is_transient());
        assert!(!fetch.is_fatal() && fetch.is_transient());
        assert!(!Error::Desired(vec![]).is_fatal());
        assert!(!Error::UnknownHost { host: "h".into() }.is_fatal());
    }
}
