//! `fpga-sync import`: desired-state YAML for what a cloud already holds
//! ([`crate::reconcile::import`]); prints the files written (one per line, or with
//! `--format json` one object with the warnings). I/O: stdout, stderr.

use std::io::Write;
use std::sync::Mutex;

use crate::cli::{Format, ImportArgs};
use crate::output::{FORMAT_VERSION, ImportReport};
use crate::reconcile::{self, import::ImportOptions};

/// Runs `import`; returns the exit code: 0 written, 1 failed, 2 bad `--match` pattern.
pub fn run(args: &ImportArgs, color: bool) -> std::io::Result<u8> {
    let json = args.format == Format::Json;
    let filter = match crate::import::name_filter(&args.matching) {
        Ok(f) => f,
        Err(d) => {
            super::fail(&[d], color, json)?;
            return Ok(2);
        }
    };
    let options = ImportOptions {
        os_cloud: args.cloud.os_cloud.as_deref(),
        to: args.to.clone(),
        force: args.overwrite,
        filter,
    };
    let warnings = Mutex::new(Vec::new());
    let warn = |w: &str| {
        if !json {
            super::warn(w);
        }
        warnings.lock().expect("never poisoned").push(w.to_owned());
    };
    let note = |n: &str| {
        if !json {
            super::note(n);
        }
    };
    let runtime = reconcile::runtime()?;
    match runtime.block_on(reconcile::import::import(&options, &warn, &note)) {
        Ok(imported) if json => {
            super::print_json(&ImportReport {
                format_version: FORMAT_VERSION,
                ok: true,
                written: imported.written,
                warnings: warnings.into_inner().expect("never poisoned"),
            })?;
            Ok(0)
        }
        Ok(imported) => {
            let (images, traits, classes, flavors) = imported.counts;
            let dir = args.to.display();
            super::note(format!(
                "Imported {images} bitstream(s), {traits} trait(s), {classes} resource class(es) and {flavors} flavor(s) into `{dir}`.\nNext: `fpga-sync validate --worktree --repo {dir}`, then `fpga-sync plan`: the first apply adopts the images and flavors."
            ));
            let mut out = std::io::stdout().lock();
            for path in imported.written {
                writeln!(out, "{path}")?;
            }
            Ok(0)
        }
        Err(e) => {
            super::fail(&e.diagnostics(), color, json)?;
            Ok(1)
        }
    }
}
