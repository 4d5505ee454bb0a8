//! `fpga-sync apply`: carries out a saved plan after checking it is not stale, or plans,
//! shows the plan, asks, and carries it out; with `--host`, one compute host's part.
//! Progress goes to stderr: progress bars on a terminal, one line per event elsewhere.
//! I/O: the terminal, the status file.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::apply::{Applied, Reporter};
use crate::cli::{ApplyArgs, LogFormat};
use crate::cloud::CloudError;
use crate::cloud::placement::Placement;
use crate::diagnostic::Diagnostic;
use crate::host::execute::LogReporter;
use crate::host::plan::render as host_render;
use crate::host::report::status::{HostStatus, SlotState};
use crate::plan::{Action, Plan, render};
use crate::reconcile::rollout::{Keeper, Mode};
use crate::reconcile::{self, Error, SavedPlan};

/// Runs `apply`; returns whether everything was applied.
pub fn run(args: &ApplyArgs, color: bool) -> std::io::Result<bool> {
    let runtime = reconcile::runtime()?;
    let result = match &args.host.host {
        Some(host) => {
            super::init_logging(LogFormat::Text, "warn");
            runtime.block_on(apply_host(args, host))
        }
        None => runtime.block_on(apply_cloud(args, color)),
    };
    match result {
        Ok(done) => Ok(done),
        Err(e) => {
            super::report(&e.diagnostics(), color);
            Ok(false)
        }
    }
}

/// Asks on the terminal; `Ok(false)` when the answer is not `yes`.
fn confirm(question: &str, unattended_help: &str) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::other(
            Diagnostic::error(
                "fpga_sync::apply",
                "not applying: no terminal to ask for confirmation",
            )
            .help(unattended_help),
        ));
    }
    eprint!("\n{question} Only `yes` applies: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    if answer.trim() != "yes" {
        eprintln!("Not applied.");
        return Ok(false);
    }
    Ok(true)
}

/// The cloud-wide apply: a saved plan, or a fresh one shown and confirmed.
async fn apply_cloud(args: &ApplyArgs, color: bool) -> Result<bool, Error> {
    let spec = args.source.spec();
    let os_cloud = args.cloud.os_cloud.as_deref();
    let planned = match &args.plan {
        Some(path) => {
            let saved = SavedPlan::read(path).map_err(Error::other)?;
            reconcile::cloud::from_saved(path, saved, &spec, os_cloud, super::warn).await?
        }
        None => {
            let planned =
                reconcile::cloud::plan(&spec, os_cloud, args.prune.settings(), super::warn).await?;
            eprint!("{}", render::human(&planned.plan, &planned.header(), color));
            if planned.plan.has_changes()
                && !args.auto_approve
                && !confirm(
                    "Apply these changes?",
                    "add `--auto-approve`, or apply a reviewed saved plan: `fpga-sync plan --out FILE` then `fpga-sync apply FILE`",
                )?
            {
                return Ok(true);
            }
            planned
        }
    };
    if !planned.plan.has_changes() {
        eprintln!("Nothing to do: the cloud matches the desired state.");
        return Ok(true);
    }
    let reporter = CliReporter::new();
    let applied = reconcile::cloud::apply(&planned, &reporter, args.parallel)
        .await
        .map_err(Error::io("making a scratch folder for uploads"))?;
    reporter.finish();
    Ok(summarise(&planned.plan, &applied, color))
}

/// One host's apply: its plan shown, confirmed, carried out, its result printed and
/// written to `--status-file`.
async fn apply_host(args: &ApplyArgs, host: &str) -> Result<bool, Error> {
    let mut options = args
        .host
        .driver
        .host_options(host, &args.prune.site.name, args.host.force);
    // Approved up front, the observation takes its rollouts' units; else only once asked.
    if args.auto_approve {
        options.rollouts = Mode::Act;
    }
    let mut prepared = reconcile::host::prepare(
        &args.source.spec(),
        args.cloud.os_cloud.as_deref(),
        &options,
        super::warn,
    )
    .await?;
    let observation = &prepared.observation;
    let head = format!(
        "fpga-sync plan --host {host}: {} → cloud `{}`",
        prepared.loaded.snapshot.describe(),
        prepared.session.cloud_name()
    );
    eprint!(
        "{}",
        host_render::human(&observation.plan, &observation.problems, &head)
    );
    let previous = args.host.status_file.as_deref().and_then(HostStatus::read);
    if !observation.plan.has_changes() {
        eprintln!("Nothing to program or report: host `{host}` matches the desired state.");
    } else if !args.auto_approve
        && !confirm(
            "Program and report these?",
            "add `--auto-approve` (as a service does: `fpga-sync watch`)",
        )?
    {
        return Ok(true);
    }
    if options.rollouts != Mode::Act && !prepared.observation.gates.is_empty() {
        options.rollouts = Mode::Act;
        prepared.observation = reconcile::host::observe(
            &prepared.loaded,
            &options,
            &prepared.drivers,
            &Placement::new(&prepared.session),
            &mut prepared.memory,
        )
        .await?;
    }
    let observation = &prepared.observation;
    // Units taken are renewed while the slots are programmed.
    let _keeper = Keeper::start(
        prepared.session.clone(),
        prepared.memory.rollouts.holdings.clone(),
        args.prune.site.name.clone(),
        host.to_owned(),
    );
    let stop = AtomicBool::new(false);
    let status = reconcile::host::execute(
        &prepared.session,
        &prepared.loaded,
        &options,
        &prepared.drivers,
        observation,
        previous.as_ref(),
        &stop,
        &LogReporter,
        &prepared.memory,
    )
    .await;
    if observation.plan.has_changes() {
        eprint!("{}", host_render::results(&status));
    }
    if let Some(path) = &args.host.status_file
        && let Err(e) = status.write(path)
    {
        eprintln!(
            "warning: could not write the status file `{}`: {e}",
            path.display()
        );
    }
    Ok(status.error.is_none()
        && status
            .slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Verified | SlotState::Manual)))
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
