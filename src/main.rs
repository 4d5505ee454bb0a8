//! The `fpga-sync` binary: parses the command line and runs the subcommand. Exit codes:
//! 0 success, 1 invalid input, failure or a declined apply, 2 usage error (from clap) or,
//! for `plan --detailed-exitcode`, changes present.

use std::process::ExitCode;

use fpga_sync::agent_config;
use fpga_sync::cli::{self, Command, LogFormat};
use fpga_sync::commands;

fn main() -> ExitCode {
    // The agent's configuration file becomes environment, which the options read; before
    // any thread starts.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(path) = agent_config::find(&args) {
        let known = agent_config::known_variables(&cli::command());
        if let Err(e) = agent_config::apply(&path, &known) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    let cli = cli::try_parse_from(args).unwrap_or_else(|e| e.exit());
    commands::set_verbosity(cli.quiet, cli.verbose);
    // `watch` sets up its own logging (its format, info by default).
    if !matches!(cli.command, Command::Watch(_)) {
        commands::init_logging(LogFormat::Text, "warn");
    }
    let color = commands::use_color(cli.color);
    let status = |ok: bool| if ok { 0 } else { 1 };
    let result = match &cli.command {
        Command::Validate(args) => commands::validate::run(args, color).map(status),
        Command::Observe(args) => commands::observe::run(args, color).map(status),
        Command::Import(args) => commands::import::run(args, color),
        Command::Plan(args) => commands::plan::run(args, cli.color),
        Command::Apply(args) => commands::apply::run(args, color),
        Command::Devices(args) => commands::devices::run(args, color),
        Command::Program(args) => commands::program::run(args, color),
        Command::Watch(args) => commands::watch::run(args),
        Command::Lock(args) => commands::lock::run(args, color),
        Command::Claim(args) => commands::claim::run(args, color),
        Command::Release(args) => commands::claim::run_release(args, color),
        Command::Status(args) => commands::status::run(args, color),
        Command::Schema(args) => commands::schema::run(args).map(|()| 0),
        Command::Rollout(command) => commands::rollout::run(command, color),
        Command::Completions(args) => commands::docs::completions(args).map(|()| 0),
        Command::Man(args) => commands::docs::man(args).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // A closed pipe (`fpga-sync schema | head`) is not a failure worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
