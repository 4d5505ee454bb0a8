//! `fpga-sync observe`: prints what the cloud holds that fpga-sync cares about, as tables
//! or JSON (a failure as the JSON error object). I/O: the cloud, stdout and stderr.

use std::io::Write;

use crate::cli::{Format, ObserveArgs};
use crate::observed::Observed;
use crate::output::{FORMAT_VERSION, ObserveReport};

/// Runs `observe`; returns whether it succeeded.
pub fn run(args: &ObserveArgs, color: bool) -> std::io::Result<bool> {
    let runtime = crate::reconcile::runtime()?;
    let outcome = runtime.block_on(async {
        let session = crate::reconcile::connect(
            args.cloud.os_cloud.as_deref(),
            crate::reconcile::Needs::Cloud,
            super::warn,
        )
        .await?;
        let observed = crate::cloud::observe::observe(&session).await?;
        Ok::<_, crate::reconcile::Error>((session.cloud_name().to_owned(), observed))
    });
    let (cloud, observed) = match outcome {
        Ok(o) => o,
        Err(e) => {
            super::fail(&e.diagnostics(), color, args.format == Format::Json)?;
            return Ok(false);
        }
    };
    match args.format {
        Format::Json => super::print_json(&ObserveReport {
            format_version: FORMAT_VERSION,
            cloud,
            observed,
        })?,
        Format::Human => std::io::stdout()
            .lock()
            .write_all(render(&observed).as_bytes())?,
    }
    Ok(true)
}

/// The tables `observe` prints. Pure.
pub fn render(o: &Observed) -> String {
    let mut out = String::new();
    section(
        &mut out,
        &format!("FPGA images ({})", o.images.len()),
        &[
            "NAME", "STATUS", "BS-UUID", "VENDOR", "BOARD", "FUNCTION", "SIZE", "ID",
        ],
        o.images.iter().map(|i| {
            let p = |k: &str| i.properties.get(k).cloned().unwrap_or_else(|| "-".into());
            vec![
                i.name.clone().unwrap_or_else(|| "-".into()),
                i.status.to_string(),
                p("bs-uuid"),
                p("vendor"),
                p("board"),
                p("function_name"),
                i.size.map_or("-".into(), |s| s.to_string()),
                i.id.to_string(),
            ]
        }),
    );
    section(
        &mut out,
        &format!("Custom traits ({})", o.traits.len()),
        &["NAME"],
        o.traits.iter().map(|t| vec![t.clone()]),
    );
    section(
        &mut out,
        &format!("Custom resource classes ({})", o.resource_classes.len()),
        &["NAME"],
        o.resource_classes.iter().map(|t| vec![t.clone()]),
    );
    section(
        &mut out,
        &format!("FPGA device providers ({})", o.providers.len()),
        &["NAME", "STATE", "GENERATION", "INVENTORY", "TRAITS"],
        o.providers.iter().map(|p| {
            let inventory: Vec<String> = p
                .inventories
                .iter()
                .map(|(rc, i)| format!("{rc}={}/{} reserved {}", i.total, i.max_unit, i.reserved))
                .collect();
            let traits: Vec<&str> = p.traits.iter().map(String::as_str).collect();
            vec![
                p.name.clone(),
                crate::host::plan::provider::provider_state(&p.traits),
                p.generation.to_string(),
                inventory.join(", "),
                traits.join(", "),
            ]
        }),
    );
    section(
        &mut out,
        &format!("Flavors with FPGA requests ({})", o.flavors.len()),
        &["NAME", "VCPUS", "RAM", "DISK", "EXTRA SPECS"],
        o.flavors.iter().map(|f| {
            let specs: Vec<String> = f
                .extra_specs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            vec![
                f.name.clone(),
                f.shape.vcpus.to_string(),
                f.shape.ram.to_string(),
                f.shape.disk.to_string(),
                specs.join(", "),
            ]
        }),
    );
    out
}

fn section(
    out: &mut String,
    title: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let rows: Vec<Vec<String>> = rows.collect();
    out.push_str(title);
    out.push('\n');
    if rows.is_empty() {
        out.push_str("  (none)\n\n");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    out.push_str(&line(header.to_vec()));
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out.push('\n');
}
