//! The `fpga-sync` binary: parses the command line and runs the subcommand. Exit codes:
//! 0 success, 1 invalid input or failure, 2 usage error (from clap).

use std::process::ExitCode;

use clap::Parser;
use fpga_sync::cli::{Cli, Command};
use fpga_sync::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = commands::use_color(cli.color);
    let result = match &cli.command {
        Command::Validate(args) => commands::validate::run(args, color),
        Command::Observe(args) => commands::observe::run(args, color),
        Command::Schema => commands::schema::run().map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        // A closed pipe (`fpga-sync schema | head`) is not a failure worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
