//! `fpga-sync plan`: reads the desired state, observes the cloud, prints the plan (human,
//! JSON or Markdown) and saves it with `--out`. I/O: source, cloud, stdout, stderr, the
//! plan file.

use std::io::Write;

use crate::cli::{PlanArgs, PlanFormat, PruneArgs};
use crate::diagnostic::Diagnostic;
use crate::plan::{self, Plan, PlanInput, PlanSettings, render};
use crate::reconcile::{self, Loaded, SavedPlan};

/// The plan's settings from the command line.
pub fn settings(args: &PruneArgs) -> PlanSettings {
    PlanSettings {
        site: args.site.name.clone(),
        prune: args.prune,
        max_delete_share: args.max_delete_share,
        allow_mass_delete: args.allow_mass_delete,
    }
}

/// Plans against the cloud: everything `plan` and `apply` do before they diverge.
pub async fn make(
    loaded: &Loaded,
    cloud: &crate::cli::CloudArgs,
    settings: PlanSettings,
) -> Result<
    (
        crate::cloud::session::Session,
        Plan,
        crate::observed::Observed,
    ),
    Vec<Diagnostic>,
> {
    let session = super::connect(cloud).await.map_err(|d| vec![d])?;
    let observed = crate::cloud::observe::observe(&session)
        .await
        .map_err(|e| vec![e.into()])?;
    let input = PlanInput {
        desired: &loaded.desired,
        digests: &loaded.digests,
        observed: &observed,
        settings,
    };
    let plan = plan::plan(&input).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| Diagnostic::error("fpga_sync::plan", p.message).help(p.help))
            .collect::<Vec<_>>()
    })?;
    Ok((session, plan, observed))
}

/// The line above a plan: what was read, and which cloud.
pub fn header(loaded: &Loaded, cloud: &str) -> String {
    format!(
        "fpga-sync plan: {} → cloud `{cloud}`",
        loaded.snapshot.describe()
    )
}

/// Prints diagnostics to stderr.
pub fn report(diagnostics: &[Diagnostic], color: bool) {
    for d in diagnostics {
        eprint!("{}", d.render(color));
    }
}

/// Runs `plan`; returns the exit code. Diagnostics are coloured for stderr, the plan for
/// stdout, each when that stream is a terminal (or `--color always`).
pub fn run(args: &PlanArgs, choice: crate::cli::Color) -> std::io::Result<u8> {
    use std::io::IsTerminal;
    let color = super::use_color(choice);
    let color_out = super::use_color_on(choice, std::io::stdout().is_terminal());
    if args.host.host.is_some() {
        return super::host::run(
            &args.source,
            &args.cloud,
            &args.prune.site.name,
            &args.host,
            false,
            false,
            args.detailed_exitcode,
            args.format == PlanFormat::Json,
            color,
        );
    }
    let spec = super::repo_spec(&args.source);
    let loaded = match reconcile::load(&spec) {
        Ok(l) => l,
        Err(d) => {
            report(&d, color);
            return Ok(1);
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let (session, plan, observed) =
        match runtime.block_on(make(&loaded, &args.cloud, settings(&args.prune))) {
            Ok(p) => p,
            Err(d) => {
                report(&d, color);
                return Ok(1);
            }
        };
    let saved = SavedPlan {
        format_version: plan::FORMAT_VERSION,
        repo: args.source.repo.clone(),
        dir: args.source.dir.clone(),
        worktree: args.source.worktree,
        cloud: session.cloud_name().to_owned(),
        plan,
    };
    let head = header(&loaded, session.cloud_name());
    let mut out = std::io::stdout().lock();
    match args.format {
        PlanFormat::Human => {
            out.write_all(render::human(&saved.plan, &head, color_out).as_bytes())?
        }
        PlanFormat::Markdown => out.write_all(render::markdown(&saved.plan, &head).as_bytes())?,
        PlanFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&saved).expect("plans serialise")
        )?,
    }
    if !loaded.desired.host_groups.is_empty() && args.format != PlanFormat::Json {
        let cache = spec.cache_dir.clone();
        let targets = crate::host::agent::targets_of(&loaded, &cache);
        let slots = crate::host::fleet::fleet(&loaded.desired, &targets, &observed.providers);
        out.write_all(
            crate::host::fleet::render(&slots, args.format == PlanFormat::Markdown).as_bytes(),
        )?;
    }
    if let Some(path) = &args.out {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&saved).expect("plans serialise"),
        )?;
        eprintln!(
            "saved the plan to `{}`; `fpga-sync apply {}` carries it out",
            path.display(),
            path.display()
        );
    }
    Ok(match (args.detailed_exitcode, saved.plan.has_changes()) {
        (true, true) => 2,
        _ => 0,
    })
}
