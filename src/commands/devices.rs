//! `fpga-sync devices`: what this host's driver backends see — each device's PCI address
//! (or FPGA manager name) and id, what it and each region carries (and whether that comes
//! from fpga-sync's ledger), the interfaces each region accepts, whether it is busy (or
//! assigned to an SR-IOV VF) and why a device cannot be programmed — as a table or JSON.
//! I/O: the drivers (sysfs, vendor tools), stdout.

use crate::cli::{DevicesArgs, Format};
use crate::host::driver::interfaces_text;
use crate::reconcile;

/// Runs `devices`; returns the exit code.
pub fn run(args: &DevicesArgs, color: bool) -> std::io::Result<u8> {
    let runtime = reconcile::runtime()?;
    let seen = match runtime.block_on(async {
        reconcile::host::devices(
            &args.source.spec(),
            args.host.as_deref(),
            &args.backend,
            &args.driver.config(),
        )
    }) {
        Ok(seen) => seen,
        Err(e) => {
            super::fail(&e.diagnostics(), color, args.format == Format::Json)?;
            return Ok(1);
        }
    };
    let mut failed = false;
    if args.format == Format::Json {
        let json: serde_json::Map<String, serde_json::Value> = seen
            .iter()
            .map(|(b, r)| {
                let v = match r {
                    Ok(devices) => serde_json::json!({"devices": devices}),
                    Err(e) => {
                        failed = true;
                        serde_json::json!({"error": e.to_string()})
                    }
                };
                (
                    serde_json::to_value(b)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    v,
                )
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?
        );
        return Ok(u8::from(failed));
    }
    for (backend, result) in &seen {
        let name = serde_json::to_value(backend)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        match result {
            Err(e) => {
                failed = true;
                println!("{name}: error: {e}");
            }
            Ok(devices) if devices.is_empty() => println!("{name}: no FPGA devices"),
            Ok(devices) => {
                println!("{name}:");
                for d in devices {
                    println!(
                        "  {}  {}  {}  carries {}  {}",
                        d.address,
                        d.pci_id.as_deref().unwrap_or("-"),
                        d.description,
                        d.loaded,
                        d.busy
                    );
                    if let Some(why) = &d.cannot_program {
                        println!("    cannot program: {why}");
                    }
                    for r in &d.regions {
                        println!(
                            "    region {:<4} accepts {}  carries {}  {}",
                            r.name,
                            interfaces_text(&r.accepts),
                            r.loaded,
                            r.busy
                        );
                    }
                }
            }
        }
    }
    Ok(u8::from(failed))
}
