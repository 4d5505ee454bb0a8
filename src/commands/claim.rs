//! `fpga-sync claim` and `fpga-sync release`: the seed's claim API — a free FPGA slot of a
//! host allocated through Placement for a consumer, programmed when asked, its PCI address
//! printed; and the claim freed again ([`crate::reconcile::claim`]). I/O: stdout, stderr.

use crate::cli::{ClaimArgs, Format, ReleaseArgs};
use crate::reconcile::{self, claim::ClaimOptions};

/// Runs `claim`; returns the exit code.
pub fn run(args: &ClaimArgs, color: bool) -> std::io::Result<u8> {
    let options = ClaimOptions {
        host: args.driver.host_options(&args.host, &args.site.name, false),
        os_cloud: args.cloud.os_cloud.as_deref(),
        bitstream: args.bitstream.as_deref(),
        function: args.function.as_deref(),
        traits: args.traits.clone(),
        resource_class: args.resource_class.clone(),
        consumer: args.consumer.clone(),
    };
    let runtime = reconcile::runtime()?;
    let claimed = match runtime.block_on(reconcile::claim::claim(
        &args.source.spec(),
        &options,
        |notice| eprintln!("{notice}"),
    )) {
        Ok(c) => c,
        Err(e) => {
            super::report(&e.diagnostics(), color);
            return Ok(1);
        }
    };
    match args.format {
        Format::Json => {
            let mut value = serde_json::to_value(&claimed).expect("claims serialise");
            value["format_version"] = 1.into();
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Format::Human => {
            println!(
                "claimed {} on host `{}` for consumer {}",
                claimed.slot, claimed.host, claimed.consumer
            );
            match &claimed.pci_address {
                Some(a) => println!("  PCI address:  {a}"),
                None => println!("  device:       {} (no PCI address)", claimed.slot.address),
            }
            println!(
                "  provider:     `{}` (1 {})",
                claimed.provider, claimed.resource_class
            );
            match (&claimed.programmed, &claimed.bitstream) {
                (Some(p), _) => println!("  programmed:   `{p}`, read back: {}", claimed.carries),
                (None, Some(b)) => {
                    println!("  carries:      `{b}`, read back: {}", claimed.carries)
                }
                (None, None) => {
                    println!("  carries:      {} (nothing programmed)", claimed.carries)
                }
            }
            println!(
                "  release with: fpga-sync release --consumer {}",
                claimed.consumer
            );
        }
    }
    Ok(0)
}

/// Runs `release`; returns the exit code.
pub fn run_release(args: &ReleaseArgs, color: bool) -> std::io::Result<u8> {
    let runtime = reconcile::runtime()?;
    let released = match runtime.block_on(reconcile::claim::release(
        args.cloud.os_cloud.as_deref(),
        &args.consumer,
    )) {
        Ok(r) => r,
        Err(e) => {
            super::report(&e.diagnostics(), color);
            return Ok(1);
        }
    };
    match args.format {
        Format::Json => {
            let mut value = serde_json::to_value(&released).expect("releases serialise");
            value["format_version"] = 1.into();
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Format::Human => {
            let freed: Vec<String> = released
                .freed
                .iter()
                .map(|(p, r)| {
                    let amounts: Vec<String> =
                        r.iter().map(|(rc, n)| format!("{n} {rc}")).collect();
                    format!("`{p}` ({})", amounts.join(", "))
                })
                .collect();
            println!(
                "released consumer {}: freed {}",
                released.consumer,
                freed.join(", ")
            );
        }
    }
    Ok(0)
}
