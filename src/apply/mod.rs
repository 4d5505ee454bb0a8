//! The executor: carries out a plan's operations exactly as written, phase by phase (the
//! plan's order), each phase's actions in parallel up to a limit. An action whose
//! dependency failed is skipped; independent actions go on; every failure is reported.
//! What it leaves after a failure is what the next plan converges from: uploads are marked
//! `uploading` (with the lease they run under) until verified, replacements create before
//! they delete. Run under a lease ([`Under`]), it starts no action once the lease is lost.
//! I/O: the cloud and the bitstream files.

mod operations;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use futures_util::StreamExt;

use crate::cloud::CloudError;
use crate::cloud::session::Session;
use crate::plan::{Action, Plan};

/// Where the executor finds a bitstream file to upload.
pub trait BitstreamFiles {
    /// A local path holding the content of `source` (a path in the desired-state folder).
    fn path_for(&self, source: &str) -> std::io::Result<PathBuf>;
}

/// What the executor tells as it goes; the CLI draws progress bars, the daemon logs.
pub trait Reporter: Sync {
    /// An action starts.
    fn started(&self, action: &Action);
    /// Bytes of an upload sent so far.
    fn progress(&self, action: &Action, sent: u64, total: u64);
    /// An action ended.
    fn finished(&self, action: &Action, outcome: &Result<(), CloudError>);
    /// An action was not run because `because` (an action id) failed or was skipped.
    fn skipped(&self, action: &Action, because: usize);
}

/// What happened to each action.
#[derive(Debug, Default)]
pub struct Applied {
    /// Ids of the actions that succeeded.
    pub succeeded: Vec<usize>,
    /// Ids and errors of those that failed.
    pub failed: Vec<(usize, CloudError)>,
    /// Ids of those skipped, with the failed action that caused it.
    pub skipped: Vec<(usize, usize)>,
    /// Ids of those not started because the run stopped ([`Under::halted`]).
    pub halted: Vec<usize>,
    /// Why the run stopped, when it did.
    pub halt_reason: Option<String>,
}

impl Applied {
    /// Whether everything succeeded.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.halted.is_empty()
    }
}

/// What a run is carried out under.
pub struct Under<'a> {
    /// The lease the run holds: recorded in the `uploading` mark of every image it
    /// uploads ([`crate::markers::IMAGE_LEASE`]), so nobody takes the upload for an
    /// interrupted one while the lease lives.
    pub lease: Option<&'a str>,
    /// Why not to start another action, if so: the lease was lost. Actions under way
    /// finish.
    pub halted: &'a (dyn Fn() -> Option<String> + Sync),
}

impl Under<'_> {
    /// No lease, never halted.
    pub const NOTHING: Under<'static> = Under {
        lease: None,
        halted: &|| None,
    };
}

/// Runs `plan`. `concurrency` bounds the actions of one phase in flight; requests are
/// bounded again by the session.
pub async fn apply(
    plan: &Plan,
    session: &Session,
    files: &dyn BitstreamFiles,
    reporter: &dyn Reporter,
    concurrency: usize,
) -> Applied {
    apply_under(plan, session, files, reporter, concurrency, &Under::NOTHING).await
}

/// Runs `plan` under a lease: its id marks the uploads, and no action starts once
/// `under.halted` says why not.
pub async fn apply_under(
    plan: &Plan,
    session: &Session,
    files: &dyn BitstreamFiles,
    reporter: &dyn Reporter,
    concurrency: usize,
    under: &Under<'_>,
) -> Applied {
    let applied = Mutex::new(Applied::default());
    let mut phases: Vec<Vec<&Action>> = Vec::new();
    for action in &plan.actions {
        match phases.last_mut() {
            Some(last) if last[0].operation.phase() == action.operation.phase() => {
                last.push(action)
            }
            _ => phases.push(vec![action]),
        }
    }
    for actions in phases {
        let blocked: BTreeSet<usize> = {
            let a = applied.lock().expect("never poisoned");
            a.failed
                .iter()
                .map(|(id, _)| *id)
                .chain(a.skipped.iter().map(|(id, _)| *id))
                .collect()
        };
        futures_util::stream::iter(actions)
            .for_each_concurrent(concurrency.max(1), |action| {
                let applied = &applied;
                let blocked = &blocked;
                async move {
                    if let Some(&cause) = action.depends_on.iter().find(|d| blocked.contains(d)) {
                        reporter.skipped(action, cause);
                        applied
                            .lock()
                            .expect("never poisoned")
                            .skipped
                            .push((action.id, cause));
                        return;
                    }
                    if let Some(why) = (under.halted)() {
                        let mut a = applied.lock().expect("never poisoned");
                        a.halted.push(action.id);
                        a.halt_reason.get_or_insert(why);
                        return;
                    }
                    reporter.started(action);
                    let outcome =
                        operations::run(action, session, files, reporter, under.lease).await;
                    reporter.finished(action, &outcome);
                    let mut a = applied.lock().expect("never poisoned");
                    match outcome {
                        Ok(()) => a.succeeded.push(action.id),
                        Err(e) => a.failed.push((action.id, e)),
                    }
                }
            })
            .await;
    }
    let mut applied = applied.into_inner().expect("never poisoned");
    applied.succeeded.sort_unstable();
    applied.failed.sort_by_key(|(id, _)| *id);
    applied.skipped.sort_unstable();
    applied.halted.sort_unstable();
    applied
}
