//! `fpga-sync watch`: the host agent as a long-running service. It runs one reconcile
//! (a *pass*: observe the cards and Placement, plan, carry the plan out) whenever
//!
//! - the repository changes: a local checkout is watched with `notify` (its git folder,
//!   where a commit moves `refs/` and `logs/HEAD`; with `--worktree` the desired-state
//!   folder), events debounced until the tree is quiet; a remote is re-read (fetched)
//!   every `--poll` seconds plus up to 20% jitter. A pass runs only when the commit (or,
//!   for a work tree, the files' content) actually changed;
//! - `--verify-every` seconds passed: a pass with the desired state already loaded, which
//!   reads every card back, so drift (a power cycle that lost a partial bitstream) is
//!   repaired and reported;
//! - `--resync-every` seconds passed: a pass that reads the repository again;
//! - a failing device's backoff ended, or a failed pass is due for its retry.
//!
//! A slot that is Failed or Blocked after its `n`-th consecutive attempt is deferred (the
//! planner reports it but does not program it) until `min(max_backoff, base · 2^(n-1))`
//! later, `base` being `min(10 s, verify_every)`; a repository change lifts every backoff.
//! A pass that fails as a whole (repository unreadable, Placement unreachable) is logged,
//! recorded in the status file's `error` and retried with the same backoff; the service
//! keeps the last good desired state and never exits on it. SIGTERM/SIGINT set the stop
//! flag: the executor finishes the slot being programmed and skips the rest, the status
//! file is written, and [`run`] returns 0.
//!
//! I/O: the repository (through [`crate::reconcile::load`]), file-system notifications,
//! the drivers, Placement and Glance (through [`super::agent`]), the status file
//! (replaced atomically after every pass) and tracing events (one per pass).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::agent::{self, AgentOptions};
use super::driver::Slot;
use super::render;
use super::status::{HostStatus, SlotState, now};
use crate::cloud::placement::Placement;
use crate::cloud::session::Session;
use crate::desired::RawContent;
use crate::reconcile::{self, Loaded};
use crate::source::{self, RepoSpec};

/// The longest first backoff step.
const BASE_BACKOFF: Duration = Duration::from_secs(10);

/// How the service runs.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// The agent's options (`deferred` is filled in by the backoff on every pass).
    pub options: AgentOptions,
    /// Where the desired state is read from.
    pub spec: RepoSpec,
    /// How often a remote is fetched (plus up to 20% jitter).
    pub poll: Duration,
    /// How long a local checkout must be quiet after a change.
    pub debounce: Duration,
    /// How often the cards are read back.
    pub verify_every: Duration,
    /// How often the repository is read again regardless.
    pub resync_every: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The status file.
    pub status_file: PathBuf,
    /// Stop after this many passes.
    pub max_runs: Option<u64>,
}

impl WatchConfig {
    /// The first backoff step: 10 s, or `verify_every` when that is shorter.
    pub fn backoff_base(&self) -> Duration {
        BASE_BACKOFF
            .min(self.verify_every)
            .max(Duration::from_millis(100))
    }
}

/// Why a pass ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// The first pass.
    Startup,
    /// A local checkout changed (file-system notification).
    Repository,
    /// A remote was polled and its commit moved.
    Poll,
    /// The periodic read-back of the cards.
    Verify,
    /// The periodic full pass.
    Resync,
    /// The retry of a pass that failed as a whole.
    Retry,
    /// A failing slot's backoff ended.
    Backoff,
}

impl Trigger {
    /// Its name in logs and the status file.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Repository => "repository",
            Trigger::Poll => "poll",
            Trigger::Verify => "verify",
            Trigger::Resync => "resync",
            Trigger::Retry => "retry",
            Trigger::Backoff => "backoff",
        }
    }

    /// Whether it reads the repository again.
    fn rereads(self) -> bool {
        matches!(
            self,
            Trigger::Startup
                | Trigger::Repository
                | Trigger::Poll
                | Trigger::Resync
                | Trigger::Retry
        )
    }

    /// Whether it only checks for a repository change (no pass when nothing moved).
    fn change_only(self) -> bool {
        matches!(self, Trigger::Repository | Trigger::Poll)
    }
}

/// The status file `watch` writes: the host's status (what `apply --host --status-file`
/// writes, so the same readers work) plus what the service knows about the pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchStatus {
    /// The host's status.
    #[serde(flatten)]
    pub status: HostStatus,
    /// Why the last pass ran.
    pub trigger: Trigger,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Passes since the service started.
    pub passes: u64,
    /// Slots backing off: when each is tried again.
    #[serde(default)]
    pub backoff: Vec<BackoffEntry>,
}

/// One slot backing off, in the status file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackoffEntry {
    /// The slot.
    pub slot: Slot,
    /// Consecutive failed attempts.
    pub attempts: u32,
    /// The next attempt, seconds since the Unix epoch.
    pub next_attempt_at: u64,
}

impl WatchStatus {
    /// Reads a status file written by `watch`; `None` when absent or of another shape.
    pub fn read(path: &Path) -> Option<WatchStatus> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// Writes it: to a temporary file beside `path`, then renamed over it.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let temp = path.with_extension(format!("tmp.{}", std::process::id()));
        let mut bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        std::fs::write(&temp, bytes)?;
        std::fs::rename(&temp, path)
    }
}

/// The delay after the `n`-th consecutive failure: `min(max, base · 2^(n-1))`.
pub fn backoff_delay(base: Duration, max: Duration, n: u32) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(20);
    base.saturating_mul(factor).min(max)
}

/// A time for people: RFC 3339, UTC, whole seconds.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Per-slot exponential backoff.
#[derive(Clone, Debug, Default)]
pub struct Backoff {
    slots: BTreeMap<Slot, (u32, SystemTime)>,
}

impl Backoff {
    /// Picks up the failure counts of an earlier run's status, so a restarted service
    /// does not hammer a failing device.
    pub fn from_status(status: &HostStatus, base: Duration, max: Duration) -> Backoff {
        let finished = SystemTime::UNIX_EPOCH + Duration::from_secs(status.finished_at);
        let slots = status
            .slots
            .iter()
            .filter(|s| s.failures > 0 && matches!(s.state, SlotState::Failed | SlotState::Blocked))
            .map(|s| {
                (
                    s.slot.clone(),
                    (s.failures, finished + backoff_delay(base, max, s.failures)),
                )
            })
            .collect();
        Backoff { slots }
    }

    /// The slots not to program at `now`, with the reason the status shows.
    pub fn deferred(&self, now: SystemTime) -> BTreeMap<Slot, String> {
        self.slots
            .iter()
            .filter(|(_, (_, until))| *until > now)
            .map(|(slot, (n, until))| {
                let failures = if *n == 1 { "failure" } else { "failures" };
                (
                    slot.clone(),
                    format!(
                        "backing off after {n} {failures}; next attempt at {}",
                        format_time(*until)
                    ),
                )
            })
            .collect()
    }

    /// Records a pass: a slot that was tried and failed (or was refused) backs off
    /// longer; one that is fine (or gone) no longer backs off; a deferred one keeps its
    /// time.
    pub fn record(
        &mut self,
        status: &HostStatus,
        deferred: &BTreeMap<Slot, String>,
        now: SystemTime,
        base: Duration,
        max: Duration,
    ) {
        let mut next = BTreeMap::new();
        for s in &status.slots {
            let failing = matches!(s.state, SlotState::Failed | SlotState::Blocked);
            if !failing {
                continue;
            }
            let before = self.slots.get(&s.slot).copied();
            if deferred.contains_key(&s.slot) {
                if let Some(entry) = before {
                    next.insert(s.slot.clone(), entry);
                }
                continue;
            }
            let n = before.map_or(0, |(n, _)| n) + 1;
            next.insert(s.slot.clone(), (n, now + backoff_delay(base, max, n)));
        }
        self.slots = next;
    }

    /// Forgets every backoff (the repository changed: the operator may have fixed it).
    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// When the earliest backoff ends.
    pub fn next_end(&self) -> Option<SystemTime> {
        self.slots.values().map(|(_, until)| *until).min()
    }

    /// The entries, for the status file.
    pub fn entries(&self) -> Vec<BackoffEntry> {
        self.slots
            .iter()
            .map(|(slot, (n, until))| BackoffEntry {
                slot: slot.clone(),
                attempts: *n,
                next_attempt_at: until
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            })
            .collect()
    }
}

/// What identifies a version of the desired state: the commit, or for files read from
/// disk a digest of the YAML files and the bitstream files' digests.
pub fn fingerprint(loaded: &Loaded) -> String {
    if let Some(commit) = &loaded.desired.commit {
        return commit.clone();
    }
    let mut hash = Sha256::new();
    for f in &loaded.snapshot.files {
        hash.update(f.path.as_bytes());
        hash.update([0]);
        match &f.content {
            RawContent::Bytes(b) => {
                hash.update((b.len() as u64).to_le_bytes());
                hash.update(b);
            }
            RawContent::TooLarge { size } => hash.update(size.to_le_bytes()),
        }
    }
    for (name, d) in &loaded.digests {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(d.sha256.as_bytes());
    }
    format!("content:{:x}", hash.finalize())
}

/// What to watch for a local source: the git folder of a checkout read at a commit, or
/// the desired-state folder of a work tree or plain folder. Empty for a remote.
pub fn watch_paths(spec: &RepoSpec) -> Vec<PathBuf> {
    if source::is_remote(&spec.repo) {
        return Vec::new();
    }
    let path = Path::new(&spec.repo);
    if !spec.worktree
        && let Ok(repository) = git2::Repository::discover(path)
    {
        let mut out = vec![repository.path().to_path_buf()];
        let common = repository.commondir().to_path_buf();
        if !out.contains(&common) {
            out.push(common);
        }
        return out;
    }
    let state = spec
        .dir
        .as_deref()
        .map_or(path.to_path_buf(), |d| path.join(d));
    vec![if state.is_dir() {
        state
    } else {
        path.to_path_buf()
    }]
}

/// Starts watching `paths` (recursively); every relevant event sends `()`.
pub fn start_watcher(
    paths: &[PathBuf],
) -> Result<(notify::RecommendedWatcher, mpsc::UnboundedReceiver<()>), String> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(e) => !matches!(e.kind, EventKind::Access(_)),
            // An overflow or a backend error: something may have changed.
            Err(_) => true,
        };
        if relevant {
            let _ = tx.send(());
        }
    })
    .map_err(|e| format!("cannot start watching files: {e}"))?;
    for p in paths {
        watcher
            .watch(p, RecursiveMode::Recursive)
            .map_err(|e| format!("cannot watch `{}`: {e}", p.display()))?;
    }
    Ok((watcher, rx))
}

/// Sets `stop` and wakes the loop on SIGTERM or SIGINT.
pub fn spawn_signal_handler(stop: Arc<AtomicBool>, wake: Arc<Notify>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            info!(
                signal = name,
                "stopping: finishing the device being programmed, then exiting"
            );
            stop.store(true, Ordering::SeqCst);
            wake.notify_one();
        }
    });
    Ok(())
}

fn diagnostics_text(d: &[crate::diagnostic::Diagnostic]) -> String {
    let mut lines: Vec<String> = d
        .iter()
        .filter(|d| d.severity == crate::diagnostic::Severity::Error)
        .map(|d| match &d.help {
            Some(h) => format!("{} (help: {h})", d.message),
            None => d.message.clone(),
        })
        .collect();
    if lines.is_empty() {
        lines = d.iter().map(|d| d.message.clone()).collect();
    }
    let more = lines.len().saturating_sub(5);
    lines.truncate(5);
    if more > 0 {
        lines.push(format!("and {more} more"));
    }
    format!("the desired state cannot be read: {}", lines.join("; "))
}

/// The service's state between passes.
struct Service<C> {
    config: WatchConfig,
    connect: C,
    session: Option<Session>,
    loaded: Option<Loaded>,
    fingerprint: Option<String>,
    previous: Option<HostStatus>,
    backoff: Backoff,
    /// Consecutive passes that failed as a whole.
    errors: u32,
    passes: u64,
    next_verify: Instant,
    next_resync: Instant,
    next_poll: Option<Instant>,
    next_retry: Option<Instant>,
    stop: Arc<AtomicBool>,
}

enum Outcome {
    /// Nothing changed; no pass ran.
    Unchanged,
    /// A pass ran.
    Ran,
}

impl<C, F> Service<C>
where
    C: FnMut() -> F,
    F: Future<Output = Result<Session, String>>,
{
    fn poll_delay(&self) -> Duration {
        self.config.poll.mul_f64(1.0 + rand::random::<f64>() * 0.2)
    }

    /// The next timer, and the trigger it fires.
    fn next_timer(&self) -> (Instant, Trigger) {
        let mut next = (self.next_verify, Trigger::Verify);
        let mut consider = |at: Option<Instant>, t: Trigger| {
            if let Some(at) = at
                && at < next.0
            {
                next = (at, t);
            }
        };
        consider(Some(self.next_resync), Trigger::Resync);
        consider(self.next_poll, Trigger::Poll);
        consider(self.next_retry, Trigger::Retry);
        let backoff_end = self
            .backoff
            .next_end()
            .map(|t| Instant::now() + t.duration_since(SystemTime::now()).unwrap_or_default());
        // A failed pass retries on its own timer; backoffs end into a working loop only.
        if self.next_retry.is_none() {
            consider(backoff_end, Trigger::Backoff);
        }
        next
    }

    async fn pass(&mut self, trigger: Trigger) -> Outcome {
        let started = Instant::now();
        if trigger == Trigger::Poll {
            self.next_poll = Some(Instant::now() + self.poll_delay());
        }
        let reread = trigger.rereads() || self.loaded.is_none();
        if reread {
            let spec = self.config.spec.clone();
            match tokio::task::block_in_place(|| reconcile::load(&spec)) {
                Err(d) => {
                    let message = diagnostics_text(&d);
                    if trigger.change_only() && self.next_retry.is_some() {
                        // Already failing and retrying: no new pass for the same problem.
                        debug!(trigger = trigger.name(), error = %message, "repository still unreadable");
                        return Outcome::Unchanged;
                    }
                    return self.failed(trigger, started, message).await;
                }
                Ok(loaded) => {
                    let fp = fingerprint(&loaded);
                    let changed = self.fingerprint.as_ref() != Some(&fp);
                    if trigger.change_only() && !changed {
                        debug!(trigger = trigger.name(), commit = %fp, "repository unchanged");
                        return Outcome::Unchanged;
                    }
                    if changed && self.fingerprint.is_some() {
                        info!(
                            trigger = trigger.name(),
                            from = self.fingerprint.as_deref().unwrap_or(""),
                            to = %fp,
                            "the desired state changed; backoffs lifted"
                        );
                        self.backoff.clear();
                    }
                    self.fingerprint = Some(fp);
                    self.loaded = Some(loaded);
                    self.next_resync = Instant::now() + self.config.resync_every;
                }
            }
        }
        let loaded = self.loaded.as_ref().expect("loaded above");
        let host = self.config.options.host.clone();
        let drivers = match agent::host_drivers(
            &loaded.desired,
            &host,
            &self.config.options.drivers,
        ) {
            Ok(d) if d.is_empty() => {
                let message = format!(
                    "no host group of the repository names host `{host}` (add it, or a pattern matching it, to a HostGroup's `hosts`, or check `--host`)"
                );
                return self.failed(trigger, started, message).await;
            }
            Ok(d) => d,
            Err(e) => return self.failed(trigger, started, e).await,
        };
        if self.session.is_none() {
            match (self.connect)().await {
                Ok(s) => self.session = Some(s),
                Err(e) => {
                    return self
                        .failed(
                            trigger,
                            started,
                            format!("cannot connect to the cloud: {e}"),
                        )
                        .await;
                }
            }
        }
        let session = self.session.as_ref().expect("connected above");
        let wall = SystemTime::now();
        let deferred = self.backoff.deferred(wall);
        let mut options = self.config.options.clone();
        options.deferred.clone_from(&deferred);
        let placement = Placement::new(session);
        let observation = match agent::observe(loaded, &options, &drivers, &placement).await {
            Ok(o) => o,
            Err(e) => return self.failed(trigger, started, e).await,
        };
        for p in &observation.problems {
            warn!(problem = %p, "desired state problem");
        }
        let status = if observation.plan.has_changes() {
            agent::execute(
                session,
                loaded,
                &options,
                &drivers,
                &observation,
                self.previous.as_ref(),
                &self.stop,
            )
            .await
        } else {
            let mut slots = render::statuses(&observation.plan);
            agent::carry_failures(&mut slots, self.previous.as_ref());
            HostStatus {
                host: host.clone(),
                commit: loaded.desired.commit.clone(),
                finished_at: now(),
                error: None,
                slots,
                removals: Vec::new(),
            }
        };
        let base = self.config.backoff_base();
        self.backoff.record(
            &status,
            &deferred,
            SystemTime::now(),
            base,
            self.config.max_backoff,
        );
        self.errors = 0;
        self.next_retry = None;
        let count = |state: SlotState| status.slots.iter().filter(|s| s.state == state).count();
        let programmed = status.slots.iter().filter(|s| s.programmed).count();
        let duration = started.elapsed();
        info!(
            trigger = trigger.name(),
            commit = status.commit.as_deref().unwrap_or("(files on disk)"),
            duration_ms = duration.as_millis() as u64,
            slots = status.slots.len(),
            programmed,
            verified = count(SlotState::Verified),
            failed = count(SlotState::Failed),
            blocked = count(SlotState::Blocked),
            pending = count(SlotState::Pending),
            deferred = deferred.len(),
            removals = status.removals.len(),
            "pass finished"
        );
        self.finish(trigger, started, status);
        Outcome::Ran
    }

    async fn failed(&mut self, trigger: Trigger, started: Instant, message: String) -> Outcome {
        self.errors += 1;
        let delay = backoff_delay(
            self.config.backoff_base(),
            self.config.max_backoff,
            self.errors,
        );
        self.next_retry = Some(Instant::now() + delay);
        error!(
            trigger = trigger.name(),
            failures = self.errors,
            retry_in_s = delay.as_secs_f64(),
            error = %message,
            "pass failed"
        );
        let mut status = self.previous.clone().unwrap_or_else(|| HostStatus {
            host: self.config.options.host.clone(),
            commit: None,
            finished_at: 0,
            error: None,
            slots: Vec::new(),
            removals: Vec::new(),
        });
        status.finished_at = now();
        status.error = Some(message);
        self.finish(trigger, started, status);
        Outcome::Ran
    }

    fn finish(&mut self, trigger: Trigger, started: Instant, status: HostStatus) {
        self.passes += 1;
        self.next_verify = Instant::now() + self.config.verify_every;
        let file = WatchStatus {
            status: status.clone(),
            trigger,
            duration_ms: started.elapsed().as_millis() as u64,
            passes: self.passes,
            backoff: self.backoff.entries(),
        };
        if let Err(e) = file.write(&self.config.status_file) {
            warn!(path = %self.config.status_file.display(), error = %e, "cannot write the status file");
        }
        // A failed pass keeps the last good slots as the base of the failure counts.
        if status.error.is_none() {
            self.previous = Some(status);
        }
    }
}

/// Runs the service until `stop` is set (and the pass under way ends) or `max_runs`
/// passes ran. `connect` opens the cloud session (retried while it fails). Returns the
/// exit code: 0.
pub async fn run<C, F>(
    config: WatchConfig,
    connect: C,
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
) -> u8
where
    C: FnMut() -> F,
    F: Future<Output = Result<Session, String>>,
{
    let now_i = Instant::now();
    let remote = source::is_remote(&config.spec.repo);
    let previous = HostStatus::read(&config.status_file);
    let base = config.backoff_base();
    let backoff = previous
        .as_ref()
        .map(|p| Backoff::from_status(p, base, config.max_backoff))
        .unwrap_or_default();
    let paths = watch_paths(&config.spec);
    // The watcher lives as long as the loop; dropping it stops the notifications.
    let (_watcher, mut events) = match start_watcher(&paths) {
        Ok((w, rx)) if !paths.is_empty() => (Some(w), Some(rx)),
        Ok(_) => (None, None),
        Err(e) => {
            warn!(error = %e, "cannot watch the checkout; re-reading it every --poll instead");
            (None, None)
        }
    };
    let polling = remote || events.is_none();
    info!(
        host = %config.options.host,
        repo = %config.spec.repo,
        watching = %paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        poll_s = polling.then_some(config.poll.as_secs()),
        verify_every_s = config.verify_every.as_secs(),
        resync_every_s = config.resync_every.as_secs(),
        status_file = %config.status_file.display(),
        "watching"
    );
    let mut service = Service {
        next_verify: now_i + config.verify_every,
        next_resync: now_i + config.resync_every,
        next_poll: None,
        next_retry: None,
        config,
        connect,
        session: None,
        loaded: None,
        fingerprint: None,
        previous,
        backoff,
        errors: 0,
        passes: 0,
        stop: stop.clone(),
    };
    if polling {
        service.next_poll = Some(now_i + service.poll_delay());
    }
    let mut pending = Some(Trigger::Startup);
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if service.config.max_runs.is_some_and(|m| service.passes >= m) {
            info!(passes = service.passes, "stopping: --max-runs reached");
            break;
        }
        let trigger = match pending.take() {
            Some(t) => t,
            None => {
                let (at, timer) = service.next_timer();
                tokio::select! {
                    () = wake.notified() => continue,
                    got = async {
                        match events.as_mut() {
                            Some(rx) => rx.recv().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        if got.is_none() {
                            warn!("file notifications ended; re-reading the checkout every --poll instead");
                            events = None;
                            service.next_poll = Some(Instant::now() + service.poll_delay());
                            continue;
                        }
                        // Debounce: wait until the tree has been quiet for `debounce`.
                        let rx = events.as_mut().expect("some");
                        loop {
                            tokio::select! {
                                more = rx.recv() => if more.is_none() { break },
                                () = tokio::time::sleep(service.config.debounce) => break,
                                () = wake.notified() => break,
                            }
                        }
                        if stop.load(Ordering::SeqCst) {
                            continue;
                        }
                        Trigger::Repository
                    }
                    () = tokio::time::sleep_until(at) => timer,
                }
            }
        };
        match service.pass(trigger).await {
            Outcome::Ran | Outcome::Unchanged => {}
        }
    }
    info!(passes = service.passes, "stopped");
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: SlotState) -> HostStatus {
        HostStatus {
            host: "h".into(),
            commit: None,
            finished_at: 1_000,
            error: None,
            slots: vec![super::super::status::SlotStatus {
                slot: Slot::region("0000:5e:00.0", "0"),
                bitstream: Some("b".into()),
                state,
                message: String::new(),
                provider: None,
                programmed: false,
                failures: 3,
            }],
            removals: Vec::new(),
        }
    }

    #[test]
    fn the_delay_doubles_up_to_the_maximum() {
        let s = Duration::from_secs;
        let delays: Vec<u64> = (1..=7)
            .map(|n| backoff_delay(s(10), s(300), n).as_secs())
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff_delay(s(10), s(300), 0), s(10));
        assert_eq!(backoff_delay(s(10), s(900), u32::MAX), s(900));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(format_time(t), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_time(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_failing_slot_backs_off_longer_and_a_deferred_one_keeps_its_time() {
        let (base, max) = (Duration::from_secs(10), Duration::from_secs(60));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let slot = Slot::region("0000:5e:00.0", "0");
        let mut b = Backoff::default();
        b.record(&status(SlotState::Failed), &BTreeMap::new(), t0, base, max);
        assert_eq!(b.entries()[0].attempts, 1);
        assert_eq!(b.next_end(), Some(t0 + base));
        let deferred = b.deferred(t0 + Duration::from_secs(5));
        assert_eq!(
            deferred[&slot],
            "backing off after 1 failure; next attempt at 1970-01-12T13:46:50Z"
        );
        // A pass while it is deferred: Blocked by the deferral, the time stays.
        b.record(
            &status(SlotState::Blocked),
            &deferred,
            t0 + Duration::from_secs(5),
            base,
            max,
        );
        assert_eq!(b.entries()[0].attempts, 1);
        assert_eq!(b.next_end(), Some(t0 + base));
        assert!(b.deferred(t0 + base).is_empty(), "ends on time");
        // Tried again and failed: twice as long.
        let t1 = t0 + base;
        b.record(&status(SlotState::Failed), &BTreeMap::new(), t1, base, max);
        assert_eq!(b.entries()[0].attempts, 2);
        assert_eq!(b.next_end(), Some(t1 + 2 * base));
        // Fixed: no more backoff.
        b.record(
            &status(SlotState::Verified),
            &BTreeMap::new(),
            t1,
            base,
            max,
        );
        assert!(b.entries().is_empty());
        // A restart picks the count up from the status file.
        let b = Backoff::from_status(&status(SlotState::Failed), base, max);
        assert_eq!(b.entries()[0].attempts, 3);
        assert_eq!(b.entries()[0].next_attempt_at, 1_000 + 40);
    }
}
