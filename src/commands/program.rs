//! `fpga-sync program`: the seed's program API for FPGA developers — one device or region
//! loaded by hand with a repository bitstream or a local file, read back
//! ([`crate::reconcile::program`]). I/O: stderr.

use crate::cli::ProgramArgs;
use crate::diagnostic::Diagnostic;
use crate::host::driver::Slot;
use crate::reconcile::{self, program::ProgramOptions};

/// Runs `program`; returns the exit code.
pub fn run(args: &ProgramArgs, color: bool) -> std::io::Result<u8> {
    let Some(host) = &args.host else {
        let d = Diagnostic::error(
            "fpga_sync::program",
            "`program` needs `--host` (or FPGA_SYNC_HOST): the repository's host groups say whether the device may be programmed by hand",
        )
        .help("give the name the repository uses for this host");
        super::report(&[d], color);
        return Ok(1);
    };
    let options = ProgramOptions {
        slot: Slot {
            address: args.device.to_ascii_lowercase(),
            region: args.region.clone(),
        },
        bitstream: &args.bitstream,
        backend: args.backend,
        host: args.driver.host_options(host, &args.site.name, args.force),
        os_cloud: args.cloud.os_cloud.as_deref(),
    };
    let runtime = reconcile::runtime()?;
    match runtime.block_on(reconcile::program::program(
        &args.source.spec(),
        &options,
        |notice| eprintln!("{notice}"),
    )) {
        Ok(message) => {
            eprintln!("{message}");
            Ok(0)
        }
        Err(e) => {
            super::report(&e.diagnostics(), color);
            Ok(1)
        }
    }
}
