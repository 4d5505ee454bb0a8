//! The `fpga-sync` binary: parses the command line and runs the subcommand. Exit codes:
//! 0 success, 1 invalid input or failure, 2 usage error (from clap) or, for
//! `plan --detailed-exitcode`, changes present.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use fpga_sync::agent_config;
use fpga_sync::cli::{Cli, Command};
use fpga_sync::commands;

fn main() -> ExitCode {
    // The agent's configuration file becomes environment, which the options read; before
    // any thread starts.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(path) = agent_config::find(&args) {
        let known = agent_config::known_variables(&Cli::command());
        if let Err(e) = agent_config::apply(&path, &known) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    let cli = Cli::parse_from(args);
    let color = commands::use_color(cli.color);
    let status = |ok: bool| if ok { 0 } else { 1 };
    let result = match &cli.command {
        Command::Validate(args) => commands::validate::run(args, color).map(status),
        Command::Observe(args) => commands::observe::run(args, color).map(status),
        Command::Import(args) => commands::import::run(args, color),
        Command::Plan(args) => commands::plan::run(args, cli.color),
        Command::Apply(args) => commands::apply::run(args, color).map(status),
        Command::Devices(args) => commands::devices::run(args, color),
        Command::Program(args) => commands::program::run(args, color),
        Command::Watch(args) => commands::watch::run(args),
        Command::Schema => commands::schema::run().map(|()| 0),
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
