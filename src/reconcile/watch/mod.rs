//! `fpga-sync watch`: the host agent as a long-running service, shaped as kube-rs shapes a
//! controller. [`Agent::run_once`] runs one *pass* (read the desired state when the
//! trigger asks for it, observe the cards and Placement, plan, carry the plan out, write
//! the status file) and says how it ended; the pure [`schedule::next_run`] turns that
//! outcome into the next timers; [`run`] waits for the first of them, a file-system
//! notification (debounced) or a stop signal, and loops.
//!
//! A pass runs whenever
//!
//! - the repository changes: a local checkout is watched with `notify` (its git folder,
//!   where a commit moves `refs/` and `logs/HEAD`; with `--worktree` the desired-state
//!   folder), events debounced until the tree is quiet; a remote is re-read (fetched)
//!   every `--poll` seconds plus up to 20% jitter. A pass runs only when the commit (or,
//!   for a work tree, the files' content) actually changed;
//! - `--verify-every` seconds passed: a pass with the desired state already loaded, which
//!   reads every card back, so drift is repaired and reported;
//! - `--resync-every` seconds passed: a pass that reads the repository again;
//! - a failing slot's backoff ended ([`backoff`]), or a failed pass is due for its retry.
//!
//! A pass whose plan programs a card does so under the host's lease ([`super::lease`]):
//! it takes the lease (waiting up to its `--lock-timeout` for another run, e.g. an
//! `apply --host` by hand), reads the cards and Placement again under it, carries that plan
//! out and gives the lease back. Passes that only read back and report take no lease.
//!
//! A pass that fails as a whole is recorded in the status file's `error`. A transient
//! failure (a service down) is retried with exponential backoff; a permanent one (an
//! invalid commit, a host no group names, a backend that cannot run) is logged once per
//! version of the desired state and waits for a change: the service keeps reconciling the
//! last good desired state meanwhile; a version that cannot be used (invalid, or a commit
//! `--require-signed-by` refuses) stays in the status file's `error` of those passes until
//! a good one is read. An error in the agent's own configuration (its cloud: an unknown
//! `OS_CLOUD`, an unreadable clouds.yaml, credentials Keystone refuses; an SSH host key it
//! does not know, a deploy key the server refuses) is [`Outcome::Fatal`]: the status file
//! says so, and [`run`] returns with `fatal` set so that the service exits non-zero and its
//! manager restarts it with backoff (and shows it failed) rather than retrying forever
//! while it looks healthy. SIGTERM/SIGINT set the stop flag: the executor finishes the slot
//! being programmed and skips the rest, the status file is written, and [`run`] returns.
//!
//! I/O: the repository, file-system notifications, the drivers, Placement and Glance
//! (through [`super::host`]), the status file and tracing events (one per pass).

pub mod backoff;
pub mod metrics;
pub mod schedule;
pub mod status;
pub mod triggers;

use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::host::{self, Drivers, HostMemory, HostOptions};
use super::lease::{self, Event, LeaseOptions, Scope};
use super::rollout::{self, Keeper};
use super::{Error, Loaded};
use crate::cloud::session::Session;
use crate::host::execute::LogReporter;
use crate::host::report::status::{HostStatus, SlotState, now};
use crate::source::{self, RepoSpec};
use backoff::Backoff;
pub use metrics::Metrics;
pub use schedule::{Outcome, Schedule, Timing, Trigger, next_run};
pub use status::{BackoffEntry, WatchStatus};

/// The longest first backoff step.
const BASE_BACKOFF: Duration = Duration::from_secs(10);

/// How the service runs.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// The agent's options (`deferred` is filled in by the backoff on every pass).
    pub options: HostOptions,
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
    /// The host lease's TTL and wait, for passes that program.
    pub lease: LeaseOptions,
}

impl WatchConfig {
    /// The first backoff step: 10 s, or `verify_every` when that is shorter.
    pub fn backoff_base(&self) -> Duration {
        BASE_BACKOFF
            .min(self.verify_every)
            .max(Duration::from_millis(100))
    }

    /// The intervals the schedule keeps; `polling` when the repository is fetched rather
    /// than watched.
    pub fn timing(&self, polling: bool) -> Timing {
        Timing {
            poll: polling.then_some(self.poll),
            verify_every: self.verify_every,
            resync_every: self.resync_every,
            backoff_base: self.backoff_base(),
            max_backoff: self.max_backoff,
        }
    }
}

/// One pass of the service, as the loop sees it.
pub trait Pass {
    /// Runs the pass `trigger` asks for and says how it ended.
    fn run_once(&mut self, trigger: Trigger) -> impl Future<Output = Outcome>;
}

/// The host agent between passes: what it read, its session, the last status and the
/// slots' backoff.
pub struct Agent<C> {
    config: WatchConfig,
    connect: C,
    session: Option<Arc<Session>>,
    /// The compute node, the providers read and the rollouts, between passes.
    memory: HostMemory,
    /// Renews the rollout units held, once connected.
    keeper: Option<Keeper>,
    metrics: Arc<Metrics>,
    loaded: Option<Rc<Loaded>>,
    /// The version of the desired state in `loaded`.
    version: Option<String>,
    /// The version that last failed to load, so it is reported once.
    bad_version: Option<String>,
    /// The last permanent failure logged, so it is logged once per version.
    reported: Option<String>,
    /// Why the repository's current version is not used (invalid, or a commit refused by
    /// `--require-signed-by`) while passes go on with the last good one: shown in the
    /// status file's `error` until a good version is read.
    held_back: Option<String>,
    previous: Option<HostStatus>,
    backoff: Backoff,
    passes: u64,
    /// Cloud requests the last pass sent (the rollout units' renewals included).
    requests: u32,
    stop: Arc<AtomicBool>,
}

impl<C, F> Agent<C>
where
    C: FnMut() -> F,
    F: Future<Output = Result<Session, Error>>,
{
    /// An agent; `connect` opens the cloud session (retried while it fails). A status file
    /// left by an earlier run gives the slots' failure counts.
    pub fn new(config: WatchConfig, connect: C, stop: Arc<AtomicBool>) -> Self {
        let previous = HostStatus::read(&config.status_file);
        let backoff = previous
            .as_ref()
            .map(|p| Backoff::from_status(p, config.backoff_base(), config.max_backoff))
            .unwrap_or_default();
        let memory = HostMemory::load(&config.options.drivers.state_dir);
        let metrics = Arc::new(Metrics::new(
            (config.verify_every * 3).max(Duration::from_secs(60)),
        ));
        Agent {
            config,
            connect,
            session: None,
            memory,
            keeper: None,
            metrics,
            loaded: None,
            version: None,
            bad_version: None,
            reported: None,
            held_back: None,
            previous,
            backoff,
            passes: 0,
            requests: 0,
            stop,
        }
    }

    /// The agent's metrics, to serve.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Reads the repository again. `Ok(false)`: nothing changed and the trigger only
    /// looks for changes.
    fn reread(&mut self, trigger: Trigger) -> Result<bool, Error> {
        let spec = self.config.spec.clone();
        let snapshot = tokio::task::block_in_place(|| source::read(&spec))
            .map_err(|d| Error::Source(Box::new(d)))?;
        match tokio::task::block_in_place(|| super::load_snapshot(snapshot, &spec)) {
            Err((version, diagnostics)) => {
                if self.bad_version.as_ref() == Some(&version) && trigger.change_only() {
                    debug!(trigger = trigger.name(), version = %version, "the repository is still at the version that failed");
                    return Ok(false);
                }
                self.bad_version = Some(version);
                Err(Error::Desired(diagnostics))
            }
            Ok(loaded) => {
                let version = super::fingerprint(&loaded.snapshot, Some(&loaded.digests));
                let changed = self.version.as_ref() != Some(&version);
                if trigger.change_only() && !changed && self.bad_version.is_none() {
                    debug!(trigger = trigger.name(), version = %version, "repository unchanged");
                    return Ok(false);
                }
                if changed && self.version.is_some() {
                    info!(
                        trigger = trigger.name(),
                        from = self.version.as_deref().unwrap_or(""),
                        to = %version,
                        "the desired state changed; backoffs lifted"
                    );
                    self.backoff.clear();
                }
                self.bad_version = None;
                self.held_back = None;
                self.version = Some(version);
                self.loaded = Some(Rc::new(loaded));
                Ok(true)
            }
        }
    }

    /// The pass proper, once the desired state is loaded.
    async fn pass(&mut self, loaded: &Loaded) -> Result<HostStatus, Error> {
        let drivers: Drivers = host::drivers(loaded, &self.config.options)?;
        if self.session.is_none() {
            let session = Arc::new((self.connect)().await?);
            self.keeper = Some(Keeper::start(
                session.clone(),
                self.memory.rollouts.holdings.clone(),
                self.config.options.site.clone(),
                self.config.options.host.clone(),
            ));
            self.session = Some(session);
        }
        let Some(session) = self.session.clone() else {
            unreachable!("connected above");
        };
        let before = session.requests();
        let wall = SystemTime::now();
        let deferred = self.backoff.deferred(wall);
        let mut options = self.config.options.clone();
        options.deferred.clone_from(&deferred);
        let observed = host::observe(loaded, &options, &drivers, &session, &mut self.memory).await;
        self.metrics.record_requests(u64::from(session.requests()));
        let observation = observed?;
        for p in &observation.problems {
            warn!(problem = %p, "desired state problem");
        }
        let (observation, status) = if observation.plan.programs() {
            let scope = Scope::Host(options.host.clone());
            let lease_options = LeaseOptions {
                operation: "watch".into(),
                ..self
                    .config
                    .lease
                    .with_commit(loaded.desired.commit.as_deref())
            };
            let (stop, previous, memory) = (&self.stop, self.previous.as_ref(), &mut self.memory);
            let session = &*session;
            let done = lease::with_lease(
                session,
                &scope,
                &lease_options,
                &log_lease,
                &|| stop.load(Ordering::SeqCst),
                async |held| {
                    // Read again under the lease: another run may have programmed meanwhile.
                    // The rollouts' units taken by the first read are remembered, not taken
                    // again.
                    let observation =
                        host::observe(loaded, &options, &drivers, session, memory).await?;
                    let status = host::execute(
                        session,
                        loaded,
                        &options,
                        &drivers,
                        &observation,
                        previous,
                        stop,
                        &|| held.lost(),
                        &LogReporter,
                        memory,
                    )
                    .await;
                    Ok((observation, status))
                },
            )
            .await;
            self.metrics.record_requests(u64::from(session.requests()));
            done?
        } else {
            let status = host::execute(
                &session,
                loaded,
                &options,
                &drivers,
                &observation,
                self.previous.as_ref(),
                &self.stop,
                &|| None,
                &LogReporter,
                &self.memory,
            )
            .await;
            (observation, status)
        };
        self.metrics.record_requests(u64::from(session.requests()));
        self.requests = session.requests().saturating_sub(before);
        let waiting = observation
            .gates
            .iter()
            .filter(|(_, (_, g))| matches!(g, crate::host::plan::rollout::Gate::Wait { .. }))
            .map(|(group, _)| group.clone())
            .collect();
        self.metrics.record_rollouts(
            self.memory.rollouts.units_held().await,
            &waiting,
            &rollout::halted(&self.memory.rollouts),
        );
        self.backoff.record(
            &status,
            &deferred,
            SystemTime::now(),
            self.config.backoff_base(),
            self.config.max_backoff,
        );
        Ok(status)
    }

    fn failed(&mut self, trigger: Trigger, started: Instant, e: &Error) -> Outcome {
        let transient = e.is_transient();
        let fatal = e.is_fatal();
        let message = e.one_line();
        let version = self
            .bad_version
            .clone()
            .or_else(|| self.version.clone())
            .unwrap_or_default();
        let key = format!("{version}\n{message}");
        if fatal {
            error!(
                trigger = trigger.name(),
                error = %message,
                "the agent's configuration is wrong; exiting so that the service manager restarts it with backoff"
            );
        } else if transient || self.reported.as_ref() != Some(&key) {
            error!(
                trigger = trigger.name(),
                transient,
                error = %message,
                "pass failed{}",
                if transient { "; retrying with backoff" } else { "; waiting for a change of the repository" }
            );
        } else {
            debug!(trigger = trigger.name(), error = %message, "pass failed again, as reported");
        }
        if !transient {
            self.reported = Some(key);
        }
        let mut status = self.previous.clone().unwrap_or_else(|| HostStatus {
            host: self.config.options.host.clone(),
            commit: None,
            finished_at: 0,
            error: None,
            slots: Vec::new(),
            removals: Vec::new(),
        });
        status.finished_at = now();
        status.error = Some(message.clone());
        self.metrics
            .record_failure(&message, self.version.as_deref());
        self.finish(trigger, started, status);
        if fatal {
            return Outcome::Fatal;
        }
        Outcome::Failed { transient }
    }

    fn finish(&mut self, trigger: Trigger, started: Instant, status: HostStatus) {
        self.passes += 1;
        let mut shown = status.clone();
        if shown.error.is_none() {
            shown.error.clone_from(&self.held_back);
        }
        let file = WatchStatus {
            status: shown,
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

    /// When the earliest slot backoff ends, on the loop's clock.
    fn backoff_end(&self) -> Option<Instant> {
        self.backoff
            .next_end()
            .map(|t| Instant::now() + t.duration_since(SystemTime::now()).unwrap_or_default())
    }
}

impl<C, F> Pass for Agent<C>
where
    C: FnMut() -> F,
    F: Future<Output = Result<Session, Error>>,
{
    async fn run_once(&mut self, trigger: Trigger) -> Outcome {
        let started = Instant::now();
        if trigger.rereads() || self.loaded.is_none() {
            match self.reread(trigger) {
                Ok(true) => {}
                Ok(false) => return Outcome::Unchanged,
                Err(e) => {
                    if let Error::Desired(_) = &e
                        && self.loaded.is_some()
                    {
                        self.held_back = Some(format!(
                            "{}; still reconciling the last good version",
                            e.one_line()
                        ));
                    }
                    return self.failed(trigger, started, &e);
                }
            }
        }
        let Some(loaded) = self.loaded.clone() else {
            return Outcome::Unchanged;
        };
        let status = match self.pass(&loaded).await {
            Ok(status) => status,
            Err(e) => return self.failed(trigger, started, &e),
        };
        // While the repository's version is held back, its failure stays reported.
        if self.bad_version.is_none() {
            self.reported = None;
        }
        let count = |state: SlotState| status.slots.iter().filter(|s| s.state == state).count();
        info!(
            trigger = trigger.name(),
            commit = status.commit.as_deref().unwrap_or("(files on disk)"),
            duration_ms = started.elapsed().as_millis() as u64,
            slots = status.slots.len(),
            programmed = status.slots.iter().filter(|s| s.programmed).count(),
            verified = count(SlotState::Verified),
            failed = count(SlotState::Failed),
            blocked = count(SlotState::Blocked),
            pending = count(SlotState::Pending),
            removals = status.removals.len(),
            cloud_requests = self.requests,
            "pass finished"
        );
        if let Some(e) = &status.error {
            error!(trigger = trigger.name(), error = %e, "pass left a slot offered that its card does not carry");
        }
        self.metrics
            .record_pass(&status, self.previous.as_ref(), self.version.as_deref());
        self.finish(trigger, started, status);
        Outcome::Ran {
            backoff_end: self.backoff_end(),
        }
    }
}

/// Logs what happens to the host's lease.
fn log_lease(event: &Event<'_>) {
    let message = event.message();
    match event {
        Event::Waiting { .. } | Event::Broke { .. } => info!("{message}"),
        Event::Taken { .. } | Event::Released { .. } => debug!("{message}"),
        Event::Lost { .. } => error!("{message}"),
        Event::ReleaseFailed { .. } => warn!("{message}"),
    }
}

/// What wakes the loop besides its timers.
pub struct Wakers {
    /// Debounced file-system notifications of a local checkout, if it is watched.
    pub events: Option<mpsc::UnboundedReceiver<()>>,
    /// Woken when `stop` is set.
    pub wake: Arc<Notify>,
    /// Set to stop after the pass under way.
    pub stop: Arc<AtomicBool>,
}

/// How the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Passes that ran.
    pub passes: u64,
    /// Whether it stopped on [`Outcome::Fatal`] (else on a stop or `max_runs`).
    pub fatal: bool,
}

/// Runs passes until `stop` is set (and the pass under way ends), `max_runs` passes ran,
/// or a pass ends [`Outcome::Fatal`]. Polls (with up to 20% jitter) when `timing.poll` is
/// set, and every `fallback_poll` once file notifications end.
pub async fn run(
    pass: &mut impl Pass,
    mut timing: Timing,
    fallback_poll: Duration,
    debounce: Duration,
    mut wakers: Wakers,
    max_runs: Option<u64>,
) -> Ended {
    let jitter = |d: Duration| d.mul_f64(1.0 + rand::random::<f64>() * 0.2);
    let mut schedule = Schedule::start(&timing, Instant::now(), timing.poll.map(jitter));
    let mut pending = Some(Trigger::Startup);
    let mut passes = 0;
    loop {
        if wakers.stop.load(Ordering::SeqCst) {
            break;
        }
        if max_runs.is_some_and(|m| passes >= m) {
            info!(passes, "stopping: --max-runs reached");
            break;
        }
        let trigger = match pending.take() {
            Some(t) => t,
            None => match wait(&schedule, debounce, &mut wakers).await {
                Some(t) => t,
                None => {
                    if wakers.events.is_none() && timing.poll.is_none() {
                        timing.poll = Some(fallback_poll);
                        schedule.poll = Some(Instant::now() + jitter(fallback_poll));
                    }
                    continue;
                }
            },
        };
        let outcome = pass.run_once(trigger).await;
        if outcome != Outcome::Unchanged {
            passes += 1;
        }
        if outcome == Outcome::Fatal {
            error!(passes, "stopped: the agent's configuration must be fixed");
            return Ended {
                passes,
                fatal: true,
            };
        }
        schedule = next_run(
            &schedule,
            trigger,
            &outcome,
            Instant::now(),
            &timing,
            timing.poll.map(jitter),
        );
    }
    info!(passes, "stopped");
    Ended {
        passes,
        fatal: false,
    }
}

/// Waits for the next trigger: the schedule's first timer, or a burst of notifications
/// once the tree has been quiet for `debounce`. `None`: woken to stop, or the
/// notifications ended.
async fn wait(schedule: &Schedule, debounce: Duration, wakers: &mut Wakers) -> Option<Trigger> {
    let (at, timer) = schedule.next();
    tokio::select! {
        () = wakers.wake.notified() => None,
        got = async {
            match wakers.events.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        } => {
            let Some(rx) = wakers.events.as_mut().filter(|_| got.is_some()) else {
                warn!("file notifications ended; re-reading the checkout every --poll instead");
                wakers.events = None;
                return None;
            };
            loop {
                tokio::select! {
                    more = rx.recv() => if more.is_none() { break },
                    () = tokio::time::sleep(debounce) => break,
                    () = wakers.wake.notified() => return None,
                }
            }
            (!wakers.stop.load(Ordering::SeqCst)).then_some(Trigger::Repository)
        }
        () = tokio::time::sleep_until(at) => Some(timer),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A pass that records when it ran and answers from a script (then `Ran`).
    struct Scripted {
        start: Instant,
        outcomes: VecDeque<Outcome>,
        ran: Vec<(Trigger, Duration)>,
    }

    impl Scripted {
        fn new(outcomes: impl IntoIterator<Item = Outcome>) -> Self {
            Scripted {
                start: Instant::now(),
                outcomes: outcomes.into_iter().collect(),
                ran: Vec::new(),
            }
        }

        fn at(&self) -> Vec<(Trigger, u64)> {
            self.ran
                .iter()
                .map(|(t, d)| (*t, d.as_millis() as u64))
                .collect()
        }
    }

    impl Pass for Scripted {
        async fn run_once(&mut self, trigger: Trigger) -> Outcome {
            self.ran.push((trigger, self.start.elapsed()));
            self.outcomes
                .pop_front()
                .unwrap_or(Outcome::Ran { backoff_end: None })
        }
    }

    fn timing() -> Timing {
        Timing {
            poll: None,
            verify_every: Duration::from_secs(60),
            resync_every: Duration::from_secs(600),
            backoff_base: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
        }
    }

    fn wakers(events: Option<mpsc::UnboundedReceiver<()>>) -> Wakers {
        Wakers {
            events,
            wake: Arc::new(Notify::new()),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_retried_10_20_40_s_later_then_the_verify_timer_runs() {
        let failed = Outcome::Failed { transient: true };
        let mut pass = Scripted::new([failed.clone(), failed.clone(), failed.clone()]);
        run(
            &mut pass,
            timing(),
            Duration::from_secs(5),
            Duration::from_millis(500),
            wakers(None),
            Some(6),
        )
        .await;
        use Trigger::*;
        assert_eq!(
            pass.at(),
            [
                (Startup, 0),
                (Retry, 10_000),
                (Retry, 30_000),
                (Retry, 70_000),
                (Verify, 130_000),
                (Verify, 190_000)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fatal_pass_ends_the_loop_at_once() {
        let mut pass = Scripted::new([Outcome::Ran { backoff_end: None }, Outcome::Fatal]);
        let ended = run(
            &mut pass,
            timing(),
            Duration::from_secs(5),
            Duration::from_millis(500),
            wakers(None),
            Some(10),
        )
        .await;
        assert_eq!(
            ended,
            Ended {
                passes: 2,
                fatal: true
            }
        );
        assert_eq!(
            pass.at(),
            [(Trigger::Startup, 0), (Trigger::Verify, 60_000)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_not_retried_only_the_read_back_timer_runs() {
        let mut pass = Scripted::new([Outcome::Failed { transient: false }]);
        run(
            &mut pass,
            timing(),
            Duration::from_secs(5),
            Duration::from_millis(500),
            wakers(None),
            Some(3),
        )
        .await;
        use Trigger::*;
        assert_eq!(
            pass.at(),
            [(Startup, 0), (Verify, 60_000), (Verify, 120_000)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_backoff_ends_into_a_pass_and_resync_rereads_on_time() {
        let t0 = Instant::now();
        let mut pass = Scripted::new([Outcome::Ran {
            backoff_end: Some(t0 + Duration::from_secs(5)),
        }]);
        let timing = Timing {
            verify_every: Duration::from_secs(400),
            ..timing()
        };
        run(
            &mut pass,
            timing,
            Duration::from_secs(5),
            Duration::from_millis(500),
            wakers(None),
            Some(4),
        )
        .await;
        use Trigger::*;
        assert_eq!(
            pass.at(),
            [
                (Startup, 0),
                (Backoff, 5_000),
                (Verify, 405_000),
                (Resync, 600_000)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_notifications_runs_one_pass_once_the_tree_is_quiet() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut pass = Scripted::new([]);
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for _ in 0..5 {
                tx.send(()).unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Keep the channel open.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        run(
            &mut pass,
            timing(),
            Duration::from_secs(5),
            Duration::from_millis(500),
            wakers(Some(rx)),
            Some(3),
        )
        .await;
        sender.abort();
        use Trigger::*;
        // The last event at 1.4 s, quiet for 0.5 s: one pass at 1.9 s.
        assert_eq!(
            pass.at(),
            [(Startup, 0), (Repository, 1_900), (Verify, 61_900)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_remote_is_polled_and_an_unchanged_poll_keeps_the_read_back_timer() {
        let timing = Timing {
            poll: Some(Duration::from_secs(10)),
            ..timing()
        };
        let mut pass = Scripted::new([
            Outcome::Ran { backoff_end: None },
            Outcome::Unchanged,
            Outcome::Unchanged,
            Outcome::Unchanged,
            Outcome::Unchanged,
            Outcome::Unchanged,
        ]);
        run(
            &mut pass,
            timing,
            Duration::from_secs(5),
            Duration::from_millis(500),
            wakers(None),
            Some(2),
        )
        .await;
        let at = pass.at();
        let polls: Vec<_> = at.iter().filter(|(t, _)| *t == Trigger::Poll).collect();
        assert!(polls.len() >= 5, "{at:?}");
        // Each poll 10 to 12 s (20% jitter) after the one before.
        for w in polls.windows(2) {
            let gap = w[1].1 - w[0].1;
            assert!((10_000..=12_000).contains(&gap), "{at:?}");
        }
        assert_eq!(at.last(), Some(&(Trigger::Verify, 60_000)), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_loop_without_another_pass() {
        let w = wakers(None);
        let (stop, wake) = (w.stop.clone(), w.wake.clone());
        let mut pass = Scripted::new([]);
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            stop.store(true, Ordering::SeqCst);
            wake.notify_one();
        });
        let ended = run(
            &mut pass,
            timing(),
            Duration::from_secs(5),
            Duration::from_millis(500),
            w,
            None,
        )
        .await;
        stopper.await.unwrap();
        assert_eq!(
            ended,
            Ended {
                passes: 1,
                fatal: false
            }
        );
        assert_eq!(pass.at(), [(Trigger::Startup, 0)]);
    }
}
