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

/// Prints `fpga-sync.1`, or writes every page into `--dir`.
pub fn man(args: &ManArgs) -> std::io::Result<()> {
    let command = Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(command, dir)
        }
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout().lock()),
    }
}
