//! `fpga-sync apply`: carries out a saved plan after checking it is not stale, or plans,
//! shows the plan, asks, and carries it out; with `--host`, one compute host's part. Each
//! runs under its lease (docs/locking.md). Progress goes to stderr (progress bars on a
//! terminal, one line per event elsewhere), or with `--format json` as one event object
//! per line on stdout, ended by a result object (docs/json.md). A plan declined at the
//! prompt is not applied and exits 1. I/O: the terminal, stdout, the status file.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::apply::{Applied, Reporter};
use crate::cli::{ApplyArgs, Format};
use crate::cloud::CloudError;
use crate::diagnostic::Diagnostic;
use crate::host::execute::LogReporter;
use crate::host::plan::render as host_render;
use crate::host::report::status::{HostStatus, SlotState};
use crate::output::{ActionRef, ApplyEvent, ApplyResult, FORMAT_VERSION};
use crate::plan::{Action, Plan, render};
use crate::reconcile::cloud::{ApplyContext, ApplyFrom, ApplyOutcome, Planned};
use crate::reconcile::host::{HostApplyContext, Prepared};
use crate::reconcile::rollout::Mode;
use crate::reconcile::{self, Error, SavedPlan, lease};

/// How an apply ended, when it got as far as asking or applying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// Everything asked was done (or there was nothing to do).
    Done,
    /// Something failed.
    Failed,
    /// The answer at the prompt was not `yes`: nothing was applied.
    Declined,
}

/// Runs `apply`; returns the exit code: 0 when everything was applied, 1 otherwise
/// (including a plan declined at the prompt).
pub fn run(args: &ApplyArgs, color: bool) -> std::io::Result<u8> {
    let json = args.format == Format::Json;
    let runtime = reconcile::runtime()?;
    let result = match &args.host.host {
        Some(host) => runtime.block_on(apply_host(args, host, json)),
        None => runtime.block_on(apply_cloud(args, color, json)),
    };
    let diagnostics = match result {
        Ok(Ended::Done) => return Ok(0),
        Ok(Ended::Failed) => return Ok(1),
        Ok(Ended::Declined) => vec![declined()],
        Err(e) => e.diagnostics(),
    };
    if json {
        super::print_json_line(&ApplyEvent::Result(ApplyResult {
            format_version: FORMAT_VERSION,
            ok: false,
            done: 0,
            failed: 0,
            skipped: 0,
            diagnostics: diagnostics.iter().map(Diagnostic::to_json).collect(),
        }))?;
    } else if result_is_declined(&diagnostics) {
        eprintln!("Not applied.");
    } else {
        super::report(&diagnostics, color);
    }
    Ok(1)
}

const DECLINED: &str = "fpga_sync::apply::declined";

fn declined() -> Diagnostic {
    Diagnostic::error(
        DECLINED,
        "not applied: the answer at the prompt was not `yes`",
    )
}

fn result_is_declined(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.len() == 1 && diagnostics[0].code == DECLINED
}

/// Whether the run waits at the confirmation prompt (where an interrupt quits at once).
static PROMPTING: AtomicBool = AtomicBool::new(false);

/// Ctrl-C or SIGTERM: the first sets `stop` (the run starts nothing more and gives its
/// lease back); the second, or one at the prompt, quits at once (the lease then lapses
/// after its TTL).
fn on_interrupt(stop: Arc<AtomicBool>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if PROMPTING.load(Ordering::SeqCst) || stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nInterrupted.");
                std::process::exit(130);
            }
            eprintln!(
                "\nInterrupted: stopping after what is under way, then giving the lease back (interrupt again to quit at once)"
            );
        }
    });
    Ok(())
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
    PROMPTING.store(true, Ordering::SeqCst);
    std::io::stdin().lock().read_line(&mut answer).ok();
    PROMPTING.store(false, Ordering::SeqCst);
    Ok(answer.trim() == "yes")
}

/// Tells what happens to the lease, on stderr.
fn lease_event(event: &lease::Event<'_>) {
    match event {
        lease::Event::Lost { .. } | lease::Event::ReleaseFailed { .. } => {
            super::warn(&event.message())
        }
        _ => super::note(event.message()),
    }
}

/// The cloud-wide apply, under the site's lease: a saved plan checked for staleness, or
/// a fresh one shown and confirmed.
async fn apply_cloud(args: &ApplyArgs, color: bool, json: bool) -> Result<Ended, Error> {
    let spec = args.source.spec();
    let from = match &args.plan {
        Some(path) => ApplyFrom::Saved {
            path,
            saved: Box::new(SavedPlan::read(path).map_err(Error::other)?),
            spec: &spec,
            site: args.prune.site.name.clone(),
        },
        None => ApplyFrom::Fresh {
            spec: &spec,
            settings: args.prune.settings(),
        },
    };
    let saved = args.plan.is_some();
    let human = CliReporter::new();
    let machine = JsonReporter::default();
    let reporter: &dyn Reporter = if json { &machine } else { &human };
    let stop = Arc::new(AtomicBool::new(false));
    on_interrupt(stop.clone()).map_err(Error::io("setting up the interrupt handler"))?;
    let context = ApplyContext {
        os_cloud: args.cloud.os_cloud.as_deref(),
        lease: args.lease.options("apply"),
        events: &lease_event,
        reporter,
        concurrency: args.parallel,
        stop: &stop,
    };
    let review = |planned: &Planned| {
        let ask = !saved && planned.plan.has_changes() && !args.auto_approve;
        if !json || ask {
            eprint!("{}", render::human(&planned.plan, &planned.header(), color));
        }
        if json {
            super::print_json_line(&ApplyEvent::Plan {
                format_version: FORMAT_VERSION,
                plan: planned.plan.clone(),
            })
            .map_err(Error::io("writing to stdout"))?;
        }
        if !ask {
            return Ok(true);
        }
        tokio::task::block_in_place(|| {
            confirm(
                "Apply these changes?",
                "add `--auto-approve` (`-y`), or apply a reviewed saved plan: `fpga-sync plan --out FILE` then `fpga-sync apply FILE`",
            )
        })
    };
    let outcome = reconcile::cloud::apply_locked(from, &context, review, super::warn).await?;
    let (planned, applied) = match outcome {
        ApplyOutcome::Declined(_) => return Ok(Ended::Declined),
        ApplyOutcome::Done(planned, applied) => (planned, applied),
    };
    if !planned.plan.has_changes() {
        if json {
            print_result(&Applied::default())?;
        } else {
            super::note("Nothing to do: the cloud matches the desired state.");
        }
        return Ok(Ended::Done);
    }
    human.finish();
    let ok = if json {
        print_result(&applied)?
    } else {
        summarise(&planned.plan, &applied, color)
    };
    Ok(if ok { Ended::Done } else { Ended::Failed })
}

/// The `result` line of a cloud-wide apply; returns whether everything was done.
fn print_result(applied: &Applied) -> Result<bool, Error> {
    super::print_json_line(&ApplyEvent::Result(ApplyResult {
        format_version: FORMAT_VERSION,
        ok: applied.ok(),
        done: applied.succeeded.len(),
        failed: applied.failed.len(),
        skipped: applied.skipped.len(),
        diagnostics: Vec::new(),
    }))
    .map_err(Error::io("writing to stdout"))?;
    Ok(applied.ok())
}

/// One host's apply, under the host's lease: its plan shown, confirmed, carried out, its
/// result printed and written to `--status-file`.
async fn apply_host(args: &ApplyArgs, host: &str, json: bool) -> Result<Ended, Error> {
    let mut options =
        args.host
            .driver
            .host_options(host, &args.prune.site.name, args.host.allow_busy);
    // Approved up front, the observation takes its rollouts' units; else only once asked.
    if args.auto_approve {
        options.rollouts = Mode::Act;
    }
    let previous = args.host.status_file.as_deref().and_then(HostStatus::read);
    let stop = Arc::new(AtomicBool::new(false));
    on_interrupt(stop.clone()).map_err(Error::io("setting up the interrupt handler"))?;
    let context = HostApplyContext {
        os_cloud: args.cloud.os_cloud.as_deref(),
        lease: args.lease.options("apply --host"),
        events: &lease_event,
        reporter: &LogReporter,
        previous: previous.as_ref(),
        stop: &stop,
    };
    let declined = std::cell::Cell::new(false);
    let review = |prepared: &Prepared| {
        let observation = &prepared.observation;
        let head = format!(
            "fpga-sync plan --host {host}: {} → cloud `{}`",
            prepared.loaded.snapshot.describe(),
            prepared.session.cloud_name()
        );
        let ask = observation.plan.has_changes() && !args.auto_approve;
        if !json || ask {
            eprint!(
                "{}",
                host_render::human(&observation.plan, &observation.problems, &head)
            );
        }
        if !observation.plan.has_changes() {
            if !json {
                super::note(format!(
                    "Nothing to program or report: host `{host}` matches the desired state."
                ));
            }
            return Ok(true);
        }
        if !ask {
            return Ok(true);
        }
        let yes = tokio::task::block_in_place(|| {
            confirm(
                "Program and report these?",
                "add `--auto-approve` (`-y`), as a service does: `fpga-sync watch`",
            )
        })?;
        declined.set(!yes);
        Ok(yes)
    };
    let (prepared, status) =
        reconcile::host::apply_locked(&args.source.spec(), &options, &context, review, super::warn)
            .await?;
    let Some(status) = status else {
        return Ok(if declined.get() {
            Ended::Declined
        } else {
            Ended::Done
        });
    };
    if prepared.observation.plan.has_changes() && !json {
        eprint!("{}", host_render::results(&status));
    }
    if let Some(path) = &args.host.status_file
        && let Err(e) = status.write(path)
    {
        super::warn(&format!(
            "could not write the status file `{}`: {e}",
            path.display()
        ));
    }
    let ok = status.error.is_none()
        && status
            .slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Verified | SlotState::Manual));
    if json {
        super::print_json_line(&ApplyEvent::HostResult {
            format_version: FORMAT_VERSION,
            ok,
            status,
        })
        .map_err(Error::io("writing to stdout"))?;
    }
    Ok(if ok { Ended::Done } else { Ended::Failed })
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
    if let Some(why) = &applied.halt_reason {
        let d = Diagnostic::error(
            "fpga_sync::apply",
            format!(
                "stopped: {why}; {} action(s) not started: {}",
                applied.halted.len(),
                applied
                    .halted
                    .iter()
                    .map(|id| name(*id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .help("run `fpga-sync apply` again: it continues from what is there (when the lease was lost, another run may be changing the site now: `fpga-sync lock status` shows it)");
        eprint!("{}", d.render(color));
    }
    let total = plan.actions.len();
    if applied.ok() {
        super::note(format!("Apply complete: {total} action(s) done."));
    } else {
        eprintln!(
            "Apply incomplete: {} done, {} failed, {} skipped{}. Run `fpga-sync apply` again once the cause is fixed: it continues from here.",
            applied.succeeded.len(),
            applied.failed.len(),
            applied.skipped.len(),
            if applied.halted.is_empty() {
                String::new()
            } else {
                format!(", {} not started", applied.halted.len())
            }
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
        let bars = (std::io::stderr().is_terminal() && !super::quiet()).then(MultiProgress::new);
        CliReporter {
            bars,
            uploads: Mutex::new(BTreeMap::new()),
            started: Mutex::new(BTreeMap::new()),
        }
    }

    fn line(&self, text: String) {
        if super::quiet() {
            return;
        }
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

/// Progress for machines: one JSON event per line on stdout.
#[derive(Default)]
struct JsonReporter {
    started: Mutex<BTreeMap<usize, Instant>>,
    /// The last tenth of each upload reported.
    tenths: Mutex<BTreeMap<usize, u64>>,
}

fn action_ref(a: &Action) -> ActionRef {
    ActionRef {
        action: a.id,
        kind: a.kind,
        object: a.object,
        name: a.name.clone(),
    }
}

fn emit(event: &ApplyEvent) {
    // A closed stdout must not stop the apply; its end is reported by the exit code.
    let _ = super::print_json_line(event);
}

impl Reporter for JsonReporter {
    fn started(&self, action: &Action) {
        self.started
            .lock()
            .expect("never poisoned")
            .insert(action.id, Instant::now());
        emit(&ApplyEvent::Started(action_ref(action)));
    }

    fn progress(&self, action: &Action, sent: u64, total: u64) {
        let tenth = (sent * 10).checked_div(total).unwrap_or(10);
        let mut tenths = self.tenths.lock().expect("never poisoned");
        if tenths.get(&action.id) == Some(&tenth) {
            return;
        }
        tenths.insert(action.id, tenth);
        emit(&ApplyEvent::Progress {
            action: action_ref(action),
            sent,
            total,
        });
    }

    fn finished(&self, action: &Action, outcome: &Result<(), CloudError>) {
        let seconds = self
            .started
            .lock()
            .expect("never poisoned")
            .get(&action.id)
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or_default();
        emit(&match outcome {
            Ok(()) => ApplyEvent::Done {
                action: action_ref(action),
                seconds,
            },
            Err(e) => ApplyEvent::Failed {
                action: action_ref(action),
                error: e.to_string(),
                help: e.help(),
            },
        });
    }

    fn skipped(&self, action: &Action, because: usize) {
        emit(&ApplyEvent::Skipped {
            action: action_ref(action),
            because,
        });
    }
}
