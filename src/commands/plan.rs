//! `fpga-sync plan`: the cloud-wide plan (human, JSON or Markdown, saved with `--out`),
//! ended by the fleet view; with `--host`, one compute host's plan. With `--format json`,
//! a failure is the JSON error object on stdout. I/O: stdout, stderr, the plan file.

use std::io::{IsTerminal, Write};

use crate::cli::{Color, PlanArgs, PlanFormat};
use crate::host::plan::{fleet, render as host_render, rollout_view};
use crate::plan::{render, schedulable};
use crate::reconcile::{self, Error};

/// Runs `plan`; returns the exit code. Diagnostics are coloured for stderr, the plan for
/// stdout, each when that stream is a terminal (or `--color always`).
pub fn run(args: &PlanArgs, choice: Color) -> std::io::Result<u8> {
    let color = super::use_color(choice);
    let color_out = super::use_color_on(choice, std::io::stdout().is_terminal());
    let runtime = reconcile::runtime()?;
    let result = match &args.host.host {
        Some(host) => runtime.block_on(plan_host(args, host)),
        None => runtime.block_on(plan_cloud(args, color_out)),
    };
    match result {
        Ok(changes) => Ok(u8::from(args.detailed_exitcode && changes) * 2),
        Err(e) => {
            super::fail(&e.diagnostics(), color, args.format == PlanFormat::Json)?;
            Ok(1)
        }
    }
}

/// Prints the cloud's plan; returns whether it has changes.
async fn plan_cloud(args: &PlanArgs, color_out: bool) -> Result<bool, Error> {
    let spec = args.source.spec();
    let planned = reconcile::cloud::plan(
        &spec,
        args.cloud.os_cloud.as_deref(),
        args.prune.settings(),
        super::warn,
    )
    .await?;
    if let Some(held) = &planned.lease {
        eprintln!(
            "note: another fpga-sync run holds the lease of site `{}`: {}; this plan leaves its uploads alone and may be out of date once it ends",
            planned.site,
            held.describe()
        );
    }
    let saved = planned.views(&spec, &args.source.repo).await;
    let head = planned.header();
    let mut out = std::io::stdout().lock();
    let markdown = args.format == PlanFormat::Markdown;
    let mut text = match args.format {
        PlanFormat::Human => render::human(&saved.plan, &head, color_out),
        PlanFormat::Markdown => render::markdown(&saved.plan, &head),
        PlanFormat::Json => serde_json::to_string_pretty(&saved).expect("plans serialise") + "\n",
    };
    if args.format != PlanFormat::Json {
        if let Some(slots) = &saved.fleet {
            text.push_str(&fleet::render(slots, markdown));
        }
        if let Some(flavors) = &saved.schedulable {
            text.push_str(&schedulable::render(flavors, markdown));
        }
        let rollouts = planned
            .rollouts(&spec.cache_dir, &args.prune.site.name)
            .await?;
        if !rollouts.is_empty() {
            text.push_str(&rollout_view::render(&rollouts, markdown));
        }
    }
    out.write_all(text.as_bytes())
        .map_err(Error::io("writing the plan to stdout"))?;
    if let Some(path) = &args.out {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&saved).expect("plans serialise"),
        )
        .map_err(Error::io(format!(
            "writing the plan to `{}`",
            path.display()
        )))?;
        super::note(format!(
            "saved the plan to `{}`; `fpga-sync apply {}` carries it out",
            path.display(),
            path.display()
        ));
    }
    Ok(saved.plan.has_changes())
}

/// Prints one host's plan; returns whether it has changes.
async fn plan_host(args: &PlanArgs, host: &str) -> Result<bool, Error> {
    let options = args
        .host
        .driver
        .host_options(host, &args.prune.site.name, args.host.allow_busy);
    let prepared = reconcile::host::prepare(
        &args.source.spec(),
        args.cloud.os_cloud.as_deref(),
        &options,
        super::warn,
    )
    .await?;
    let observation = &prepared.observation;
    if args.format == PlanFormat::Json {
        let value = host_render::json(&observation.plan, &observation.problems);
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        let head = format!(
            "fpga-sync plan --host {host}: {} → cloud `{}`",
            prepared.loaded.snapshot.describe(),
            prepared.session.cloud_name()
        );
        print!(
            "{}",
            host_render::human(&observation.plan, &observation.problems, &head)
        );
    }
    Ok(observation.plan.has_changes())
}
