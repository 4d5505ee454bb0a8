//! `plan --host` and `apply --host`: one compute host's part — which slots are programmed,
//! verified or refused, and what Placement will hold — and the setup every host command
//! shares (driver configuration, the agent's options, log output). I/O: source, cloud,
//! drivers, terminal, the status file.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::cli::{CloudArgs, DriverArgs, HostArgs, LogFormat, SourceArgs};
use crate::cloud::placement::Placement;
use crate::diagnostic::Diagnostic;
use crate::host::agent::{self, AgentOptions};
use crate::host::backends::DriverConfig;
use crate::host::render;
use crate::host::status::{HostStatus, SlotState};
use crate::reconcile;

/// The drivers' configuration from the command line.
pub fn driver_config(args: &DriverArgs) -> DriverConfig {
    DriverConfig {
        sysfs_root: args.sysfs_root.clone(),
        dev_root: args.dev_root.clone(),
        firmware_dir: args.firmware_dir.clone(),
        proc_root: args.proc_root.clone(),
        state_dir: args.state_dir.clone(),
        fpgaconf: args.fpgaconf.clone(),
        xrt_smi: args.xrt_smi.clone(),
        xbutil: args.xbutil.clone(),
        sim_root: args
            .sim_root
            .clone()
            .unwrap_or_else(|| args.state_dir.join("sim")),
        exec: None,
        timeout: Duration::from_secs(args.program_timeout),
    }
}

/// The agent's options from the command line.
pub fn agent_options(host: &str, site: &str, force: bool, driver: &DriverArgs) -> AgentOptions {
    AgentOptions {
        host: host.to_owned(),
        site: site.to_owned(),
        force,
        drivers: driver_config(driver),
        cache_dir: driver.state_dir.join("cache"),
        timeout: Duration::from_secs(driver.program_timeout),
        deferred: Default::default(),
    }
}

/// Sends the agent's tracing events to stderr, as text lines or JSON objects. `RUST_LOG`
/// overrides the level (default `info`).
pub fn init_logging(format: LogFormat) {
    init_logging_at(format, "info");
}

/// As [`init_logging`], with another default level: `apply --host` prints its own
/// results, so it logs only warnings unless `RUST_LOG` asks for more.
pub fn init_logging_at(format: LogFormat, default: &str) {
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

fn fail(message: impl Into<String>) -> Vec<Diagnostic> {
    vec![Diagnostic::error("fpga_sync::host", message.into())]
}

/// Runs `plan --host` (`apply: false`) or `apply --host`; returns the exit code.
#[allow(
    clippy::too_many_arguments,
    reason = "the two commands' shared options"
)]
pub fn run(
    source: &SourceArgs,
    cloud: &CloudArgs,
    site: &str,
    args: &HostArgs,
    apply: bool,
    auto_approve: bool,
    detailed_exitcode: bool,
    json: bool,
    color: bool,
) -> std::io::Result<u8> {
    let host = args.host.as_deref().expect("called with --host");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result: Result<u8, Vec<Diagnostic>> = runtime.block_on(async {
        let loaded = reconcile::load(&super::repo_spec(source))?;
        let options = agent_options(host, site, args.force, &args.driver);
        let drivers = agent::host_drivers(&loaded.desired, host, &options.drivers).map_err(fail)?;
        if drivers.is_empty() {
            return Err(vec![Diagnostic::error("fpga_sync::host", format!("no host group of the repository names host `{host}`"))
                .help("add the host (or a pattern matching it) to a HostGroup's `hosts`, or check `--host`")]);
        }
        let session = super::connect_with(cloud, super::Needs::Placement, |w| {
            eprintln!("warning: {w}")
        })
        .await
        .map_err(|d| vec![d])?;
        let placement = Placement::new(&session);
        let observation = agent::observe(&loaded, &options, &drivers, &placement)
            .await
            .map_err(fail)?;
        let head = format!(
            "fpga-sync plan --host {host}: {} → cloud `{}`",
            loaded.snapshot.describe(),
            session.cloud_name()
        );
        let text = render::human(&observation.plan, &observation.problems, &head);
        if !apply {
            if json {
                let value = render::json(&observation.plan, &observation.problems);
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                print!("{text}");
            }
            return Ok(match (detailed_exitcode, observation.plan.has_changes()) {
                (true, true) => 2,
                _ => 0,
            });
        }
        eprint!("{text}");
        if !observation.plan.has_changes() {
            eprintln!("Nothing to program or report: host `{host}` matches the desired state.");
            let status = HostStatus {
                host: host.to_owned(),
                commit: loaded.desired.commit.clone(),
                finished_at: crate::host::status::now(),
                error: None,
                slots: render::statuses(&observation.plan),
                removals: Vec::new(),
            };
            write_status(args, &status);
            return Ok(if observation.plan.has_blocked() { 1 } else { 0 });
        }
        if !auto_approve {
            if !std::io::stdin().is_terminal() {
                return Err(vec![Diagnostic::error("fpga_sync::apply", "not applying: no terminal to ask for confirmation")
                    .help("add `--auto-approve` (as a service does: `fpga-sync watch`)")]);
            }
            eprint!("\nProgram and report these? Only `yes` applies: ");
            std::io::stderr().flush().ok();
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer).ok();
            if answer.trim() != "yes" {
                eprintln!("Not applied.");
                return Ok(0);
            }
        }
        let stop = AtomicBool::new(false);
        let previous = args.status_file.as_deref().and_then(HostStatus::read);
        let status = agent::execute(&session, &loaded, &options, &drivers, &observation, previous.as_ref(), &stop).await;
        eprint!("{}", render::results(&status));
        write_status(args, &status);
        let ok = status
            .slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Verified | SlotState::Manual));
        Ok(if ok { 0 } else { 1 })
    });
    match result {
        Ok(code) => Ok(code),
        Err(d) => {
            super::plan::report(&d, color);
            Ok(1)
        }
    }
}

fn write_status(args: &HostArgs, status: &HostStatus) {
    if let Some(path) = &args.status_file
        && let Err(e) = status.write(path)
    {
        eprintln!(
            "warning: could not write the status file `{}`: {e}",
            path.display()
        );
    }
}
