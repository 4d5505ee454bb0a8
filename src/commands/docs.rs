//! `fpga-sync completions SHELL` and `fpga-sync man`: the shell completion scripts
//! (`clap_complete`) and the manual pages (`clap_mangen`), generated from the command
//! line's own definition, so they cannot drift from it. I/O: stdout, the pages' folder.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// Prints the completion script of a shell.
pub fn completions(args: &CompletionsArgs) -> std::io::Result<()> {
    let mut command = Cli::command();
    // Into memory first: the generator panics on a write error (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "fpga-sync", &mut script);
    std::io::stdout().lock().write_all(&script)
}

/// Prints `fpga-sync.1`, or writes every page into `--dir`: `fpga-sync.1` and
/// `fpga-sync-<command>.1` for each command.
pub fn man(args: &ManArgs) -> std::io::Result<()> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            write_pages(&command, dir)
        }
        None => {
            let mut page = Vec::new();
            render(&command, &mut page)?;
            std::io::stdout().lock().write_all(&page)
        }
    }
}

fn write_pages(command: &clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name());
    let mut page = Vec::new();
    render(command, &mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)
}

/// clap_mangen's page, with an ENVIRONMENT section naming the variable of each option
/// that has one (what the agent's configuration file sets).
fn render(command: &clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    clap_mangen::Man::new(command.clone()).render(out)?;
    let vars: Vec<(String, String)> = command
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| {
            let var = a.get_env()?.to_string_lossy().into_owned();
            Some((
                var,
                a.get_long().map_or(String::new(), |l| format!("--{l}")),
            ))
        })
        .collect();
    if vars.is_empty() {
        return Ok(());
    }
    let roff = |t: &str| t.replace('\\', "\\\\").replace('-', "\\-");
    writeln!(out, ".SH ENVIRONMENT")?;
    for (var, long) in vars {
        writeln!(
            out,
            ".TP\n\\fB{}\\fR\nthe value of \\fB{}\\fR",
            roff(&var),
            roff(&long)
        )?;
    }
    Ok(())
}
