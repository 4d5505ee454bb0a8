//! `fpga-sync program`: the seed's program API for FPGA developers — one device or region
//! loaded by hand with a repository bitstream or a local file, read back
//! ([`crate::reconcile::program`]). I/O: stderr, stdout (`--format json`).

use crate::cli::{Format, ProgramArgs};
use crate::host::driver::Slot;
use crate::output::{FORMAT_VERSION, ProgramReport};
use crate::reconcile::{self, program::ProgramOptions};

/// Runs `program`; returns the exit code.
pub fn run(args: &ProgramArgs, color: bool) -> std::io::Result<u8> {
    let json = args.format == Format::Json;
    let host = args.host.as_deref().unwrap_or_default();
    let options = ProgramOptions {
        slot: Slot {
            address: args.device.clone(),
            region: args.region.clone(),
        },
        bitstream: &args.bitstream,
        backend: args.backend,
        allow_managed: args.allow_managed || args.force,
        host: args
            .driver
            .host_options(host, &args.site.name, args.allow_busy || args.force),
        os_cloud: args.cloud.os_cloud.as_deref(),
    };
    let runtime = reconcile::runtime()?;
    match runtime.block_on(reconcile::program::program(
        &args.source.spec(),
        &options,
        |notice| super::note(notice),
    )) {
        Ok(message) if json => {
            super::print_json(&ProgramReport {
                format_version: FORMAT_VERSION,
                ok: true,
                message,
            })?;
            Ok(0)
        }
        Ok(message) => {
            eprintln!("{message}");
            Ok(0)
        }
        Err(e) => {
            super::fail(&e.diagnostics(), color, json)?;
            Ok(1)
        }
    }
}
