//! `fpga-sync rollout status`: every rollout of the desired state as the fleet reports it,
//! for people, as Markdown or as JSON (`schema/rollout.schema.json`; with `--format json`,
//! a failure is the JSON error object on stdout). I/O: stdout, stderr.

use std::io::Write;

use crate::cli::{PlanFormat, RolloutCommand, RolloutStatusArgs};
use crate::host::plan::rollout_view;
use crate::reconcile::{self, Error};

/// Runs `rollout ...`; returns the exit code.
pub fn run(command: &RolloutCommand, color: bool) -> std::io::Result<u8> {
    let RolloutCommand::Status(args) = command;
    let runtime = reconcile::runtime()?;
    match runtime.block_on(status(args)) {
        Ok(()) => Ok(0),
        Err(e) => {
            super::fail(&e.diagnostics(), color, args.format == PlanFormat::Json)?;
            Ok(1)
        }
    }
}

async fn status(args: &RolloutStatusArgs) -> Result<(), Error> {
    let status = reconcile::rollout::status::status(
        &args.source.spec(),
        args.cloud.os_cloud.as_deref(),
        &args.site.name,
        super::warn,
    )
    .await?;
    let text = match args.format {
        PlanFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&rollout_view::json(&status.views))
                .expect("rollout views serialise")
        ),
        PlanFormat::Human | PlanFormat::Markdown => {
            let mut out = format!(
                "fpga-sync rollout status: {} → cloud `{}`\n",
                status.loaded.snapshot.describe(),
                status.cloud
            );
            if status.views.is_empty() {
                out.push_str("\nNo host group has a `rollout:`.\n");
            } else {
                out.push_str(&rollout_view::render(
                    &status.views,
                    args.format == PlanFormat::Markdown,
                ));
            }
            out
        }
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(Error::io("writing the status to stdout"))
}
