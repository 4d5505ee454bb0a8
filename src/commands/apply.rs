//! `fpga-sync apply`: carries out a saved plan after checking it is not stale, or plans,
//! shows the plan, asks, and carries it out. Progress goes to stderr: progress bars on a
//! terminal, one line per event elsewhere. I/O: source, cloud, terminal.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::plan::{header, make, report, settings};
use crate::apply::{self, Applied, Reporter};
use crate::cli::{ApplyArgs, CloudArgs};
use crate::cloud::CloudError;
use crate::diagnostic::Diagnostic;
use crate::plan::{Action, Plan, current_fingerprints, render};
use crate::reconcile::{self, SavedPlan, SnapshotFiles};

/// Runs `apply`; returns whether everything was applied.
pub fn run(args: &ApplyArgs, color: bool) -> std::io::Result<bool> {
    if args.host.host.is_some() {
        super::host::init_logging_at(crate::cli::LogFormat::Text, "warn");
        return super::host::run(
            &args.source,
            &args.cloud,
            &args.prune.site.name,
            &args.host,
            true,
            args.auto_approve,
            false,
            false,
            color,
        )
        .map(|code| code == 0);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let prepared = match &args.plan {
            Some(path) => from_saved(path, args).await,
            None => fresh(args, color).await,
        };
        let (loaded, session, plan) = match prepared {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(true),
            Err(d) => {
                report(&d, color);
                return Ok(false);
            }
        };
        if !plan.has_changes() {
            eprintln!("Nothing to do: the cloud matches the desired state.");
            return Ok(true);
        }
        let scratch = tempfile::tempdir()?;
        let files = SnapshotFiles {
            snapshot: &loaded.snapshot,
            scratch: scratch.path().to_owned(),
        };
        let reporter = CliReporter::new();
        let applied = apply::apply(&plan, &session, &files, &reporter, args.parallel).await;
        reporter.finish();
        Ok(summarise(&plan, &applied, color))
    })
}

type Prepared = Option<(reconcile::Loaded, crate::cloud::session::Session, Plan)>;

/// Plans now, shows the plan and asks.
async fn fresh(args: &ApplyArgs, color: bool) -> Result<Prepared, Vec<Diagnostic>> {
    let loaded = reconcile::load(&super::repo_spec(&args.source))?;
    let (session, plan, _) = make(&loaded, &args.cloud, settings(&args.prune)).await?;
    eprint!(
        "{}",
        render::human(&plan, &header(&loaded, session.cloud_name()), color)
    );
    if plan.has_changes() && !args.auto_approve {
        if !std::io::stdin().is_terminal() {
            return Err(vec![Diagnostic::error("fpga_sync::apply", "not applying: no terminal to ask for confirmation")
                .help("add `--auto-approve`, or apply a reviewed saved plan: `fpga-sync plan --out FILE` then `fpga-sync apply FILE`")]);
        }
        eprint!("\nApply these changes? Only `yes` applies: ");
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok();
        if answer.trim() != "yes" {
            eprintln!("Not applied.");
            return Ok(None);
        }
    }
    Ok(Some((loaded, session, plan)))
}

/// Reads a saved plan, re-reads its commit and the cloud, and refuses it when stale.
async fn from_saved(path: &std::path::Path, args: &ApplyArgs) -> Result<Prepared, Vec<Diagnostic>> {
    let saved = SavedPlan::read(path).map_err(|d| vec![d])?;
    let mut source = super::repo_spec(&args.source);
    source.repo = saved.repo.clone();
    source.dir = saved.dir.clone();
    source.worktree = saved.worktree;
    source.reference = saved.plan.commit.clone();
    let loaded = reconcile::load(&source)?;
    let cloud = CloudArgs {
        os_cloud: args.cloud.os_cloud.clone().or(Some(saved.cloud.clone())),
    };
    let session = super::connect(&cloud).await.map_err(|d| vec![d])?;
    let observed = crate::cloud::observe::observe(&session)
        .await
        .map_err(|e| vec![Diagnostic::from(e)])?;
    let now = current_fingerprints(&saved.plan.fingerprints, &observed);
    let moved: Vec<String> = saved
        .plan
        .fingerprints
        .iter()
        .filter(|(k, v)| now.get(*k) != Some(*v))
        .map(|(k, v)| {
            format!(
                "  {k}: was {v}, now {}",
                now.get(k).map_or("unknown", String::as_str)
            )
        })
        .collect();
    if !moved.is_empty() {
        return Err(vec![
            Diagnostic::error(
                "fpga_sync::stale_plan",
                format!(
                    "the saved plan `{}` is stale: {} object(s) changed since it was made:\n{}",
                    path.display(),
                    moved.len(),
                    moved.join("\n")
                ),
            )
            .help("make a new plan with `fpga-sync plan --out FILE` and review it"),
        ]);
    }
    Ok(Some((loaded, session, saved.plan)))
}

fn summarise(plan: &Plan, applied: &Applied, color: bool) -> bool {
    let name = |id: usize| {
        plan.actions.get(id).map_or_else(
            || format!("#{id}"),
            |a| format!("{} {}", a.object.label(), a.name),
        )
    };
    for (id, error) in &applied.failed {
        let d: Diagnostic =
            Diagnostic::error("fpga_sync::apply", format!("{} failed: {error}", name(*id)));
        let d = match error.help() {
            Some(h) => d.help(h),
            None => d,
        };
        eprint!("{}", d.render(color));
    }
    for (id, cause) in &applied.skipped {
        eprintln!(
            "skipped {}: it depends on {}, which did not succeed",
            name(*id),
            name(*cause)
        );
    }
    let total = plan.actions.len();
    if applied.ok() {
        eprintln!("Apply complete: {total} action(s) done.");
    } else {
        eprintln!(
            "Apply incomplete: {} done, {} failed, {} skipped. Run `fpga-sync apply` again once the cause is fixed: it continues from here.",
            applied.succeeded.len(),
            applied.failed.len(),
            applied.skipped.len()
        );
    }
    applied.ok()
}

/// Progress for people: bars on a terminal, lines elsewhere.
struct CliReporter {
    bars: Option<MultiProgress>,
    uploads: Mutex<BTreeMap<usize, ProgressBar>>,
    started: Mutex<BTreeMap<usize, Instant>>,
}

impl CliReporter {
    fn new() -> Self {
        let bars = std::io::stderr().is_terminal().then(MultiProgress::new);
        CliReporter {
            bars,
            uploads: Mutex::new(BTreeMap::new()),
            started: Mutex::new(BTreeMap::new()),
        }
    }

    fn line(&self, text: String) {
        match &self.bars {
            Some(bars) => bars.println(text).unwrap_or(()),
            None => eprintln!("{text}"),
        }
    }

    fn finish(&self) {
        for bar in self.uploads.lock().expect("never poisoned").values() {
            bar.finish_and_clear();
        }
    }
}

fn title(a: &Action) -> String {
    format!("{} {} {}", a.kind.symbol(), a.object.label(), a.name)
}

impl Reporter for CliReporter {
    fn started(&self, action: &Action) {
        self.started
            .lock()
            .expect("never poisoned")
            .insert(action.id, Instant::now());
        self.line(format!("  {}: started", title(action)));
    }

    fn progress(&self, action: &Action, sent: u64, total: u64) {
        let Some(bars) = &self.bars else { return };
        let mut uploads = self.uploads.lock().expect("never poisoned");
        let bar = uploads.entry(action.id).or_insert_with(|| {
            let bar = bars.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "  {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_message(format!("uploading {}", action.name));
            bar
        });
        bar.set_position(sent);
    }

    fn finished(&self, action: &Action, outcome: &Result<(), CloudError>) {
        if let Some(bar) = self
            .uploads
            .lock()
            .expect("never poisoned")
            .remove(&action.id)
        {
            bar.finish_and_clear();
        }
        let took = self
            .started
            .lock()
            .expect("never poisoned")
            .get(&action.id)
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or_default();
        match outcome {
            Ok(()) => self.line(format!("  {}: done ({took:.1} s)", title(action))),
            Err(e) => self.line(format!("  {}: FAILED: {e}", title(action))),
        }
    }

    fn skipped(&self, action: &Action, because: usize) {
        self.line(format!(
            "  {}: skipped (action {because} did not succeed)",
            title(action)
        ));
    }
}
