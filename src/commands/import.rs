//! `fpga-sync import`: desired-state YAML for what a cloud already holds
//! ([`crate::reconcile::import`]); prints the files written. I/O: stdout, stderr.

use std::io::Write;

use crate::cli::ImportArgs;
use crate::reconcile::{self, import::ImportOptions};

/// Runs `import`; returns the exit code: 0 written, 1 failed, 2 bad `--match` pattern.
pub fn run(args: &ImportArgs, color: bool) -> std::io::Result<u8> {
    let filter = match crate::import::name_filter(&args.matching) {
        Ok(f) => f,
        Err(d) => {
            super::report(&[d], color);
            return Ok(2);
        }
    };
    let options = ImportOptions {
        os_cloud: args.cloud.os_cloud.as_deref(),
        to: args.to.clone(),
        force: args.force,
        filter,
    };
    let runtime = reconcile::runtime()?;
    match runtime.block_on(reconcile::import::import(&options, super::warn)) {
        Ok(written) => {
            let mut out = std::io::stdout().lock();
            for path in written {
                writeln!(out, "{path}")?;
            }
            Ok(0)
        }
        Err(e) => {
            super::report(&e.diagnostics(), color);
            Ok(1)
        }
    }
}
