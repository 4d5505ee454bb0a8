//! One compute host's pipeline, as `plan --host`, `apply --host`, `program` and each
//! `watch` pass run it: the desired state at a commit → the host's drivers and what they
//! see, the repository's bitstream headers and what Placement holds for the host (a
//! [`HostObserved`]) → [`crate::host::plan::observed::plan`] (pure) →
//! [`crate::host::execute::HostExecutor`], which tells a reporter and returns the host's
//! status. `apply --host` observes, plans and executes under the host's lease
//! ([`super::lease`]); `plan --host` takes none. I/O: the repository, the drivers,
//! Placement, Glance, the bitstream and header caches.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::lease::{self, Events, LeaseOptions, Scope};
use super::rollout::{self, Keeper, Mode};
use super::{Error, Loaded, Needs};
use crate::cloud::glance::Glance;
use crate::cloud::placement::Placement;
use crate::cloud::session::Session;
use crate::desired::host_group::Backend;
use crate::host::discover::backends::DriverConfig;
use crate::host::discover::{self, targets};
use crate::host::driver::{Driver, Slot};
use crate::host::execute::fetch::BitstreamCache;
use crate::host::execute::{HostExecutor, Reporter};
use crate::host::plan::assignment::Target;
use crate::host::plan::observed::{self, HostObserved};
use crate::host::plan::rollout::{Gate, Work};
use crate::host::plan::{HostPlan, SlotAction, provider, render};
use crate::host::report::status::{HostStatus, SlotState, SlotStatus, now};
use crate::host::report::{self, ledger::Ledger};
use crate::source::RepoSpec;

/// How the agent runs on this host.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// The host, as the repository names it.
    pub host: String,
    /// The fpga-sync site whose images it uses.
    pub site: String,
    /// Program slots that are in use.
    pub force: bool,
    /// Where the drivers find hardware and tools.
    pub drivers: DriverConfig,
    /// Where fetched bitstreams and header identities are kept.
    pub cache_dir: PathBuf,
    /// How long a program call may take.
    pub timeout: Duration,
    /// Slots not to program this time, and why (`watch`'s backoff).
    pub deferred: BTreeMap<Slot, String>,
    /// Whether the pass takes rollout units (and gives them back) or only reads.
    pub rollouts: Mode,
}

/// What a host agent keeps from one pass to the next: its compute node, the providers it
/// read (by generation, so an idle pass asks Placement once), and its rollouts.
#[derive(Debug, Default)]
pub struct HostMemory {
    /// The compute-node provider's uuid, once found.
    pub compute_node: Option<String>,
    /// The device providers read, by generation.
    pub providers: report::ProviderCache,
    /// The rollouts.
    pub rollouts: rollout::Memory,
}

impl HostMemory {
    /// A memory whose rollout part is the one saved in `state_dir`.
    pub fn load(state_dir: &Path) -> HostMemory {
        HostMemory {
            rollouts: rollout::Memory::load(state_dir),
            ..HostMemory::default()
        }
    }
}

/// A driver for each backend the host's groups use.
pub type Drivers = BTreeMap<Backend, Box<dyn Driver>>;

/// What one observation of the host saw and decided.
pub struct Observation {
    /// The plan.
    pub plan: HostPlan,
    /// Problems that do not stop the plan (a bitstream whose header is broken, a slot
    /// assigned twice).
    pub problems: Vec<String>,
    /// The compute-node provider's uuid.
    pub compute_node: String,
    /// Traits the desired state names.
    pub named_traits: BTreeSet<String>,
    /// The rollouts the host takes part in this pass, by host group, and their gates.
    pub gates: BTreeMap<String, (Work, Gate)>,
}

/// The drivers of the backends the host's groups use; an error when no group names the
/// host.
pub fn drivers(loaded: &Loaded, options: &HostOptions) -> Result<Drivers, Error> {
    let drivers = discover::host_drivers(&loaded.desired, &options.host, &options.drivers)?;
    if drivers.is_empty() {
        return Err(Error::UnknownHost {
            host: options.host.clone(),
        });
    }
    Ok(drivers)
}

/// The repository's bitstreams as hosts need them, by name (broken headers left out).
pub fn targets_of(loaded: &Loaded, cache_dir: &Path) -> BTreeMap<String, Target> {
    targets::targets(
        &loaded.desired,
        &loaded.digests,
        &loaded.snapshot,
        cache_dir,
    )
    .0
}

/// Reads the cards, the bitstream headers and Placement, and plans the host. A backend
/// that cannot run fails the whole observation: nothing is planned on the strength of a
/// discovery that could not look. The compute node and the providers come from `memory`
/// when Placement says they did not change; the rollouts the host takes part in are read
/// and gated (see [`rollout::plan`]). When the plan leaves a slot alone because consumers
/// hold it (or programs it over them, forced), who they are is looked up
/// ([`super::consumers`]: an fpga-sync claim, or a Nova server's name and project) and the
/// host planned again, so that its messages name them.
pub async fn observe(
    loaded: &Loaded,
    options: &HostOptions,
    drivers: &Drivers,
    session: &Session,
    memory: &mut HostMemory,
) -> Result<Observation, Error> {
    let placement = &Placement::new(session);
    let (targets, mut problems) = targets::targets(
        &loaded.desired,
        &loaded.digests,
        &loaded.snapshot,
        &options.cache_dir,
    );
    let seen = discover::discover(drivers);
    if let Some(e) = discover::unavailable(&seen) {
        return Err(e.clone().into());
    }
    let (compute_node, providers) = host_providers(placement, &options.host, memory).await?;
    let mut observed = HostObserved {
        host: options.host.clone(),
        devices: discover::for_planner(&seen),
        providers,
        force: options.force,
        deferred: options.deferred.clone(),
        programmed: Ledger::new(&options.drivers.state_dir).current(&seen),
        rollouts: BTreeMap::new(),
    };
    let pass = rollout::Pass {
        host: &options.host,
        site: &options.site,
        mode: options.rollouts,
    };
    let mut gated = rollout::plan(
        placement,
        &loaded.desired,
        &targets,
        &mut observed,
        &mut memory.rollouts,
        &pass,
    )
    .await?;
    let held = held_consumers(&gated.plan);
    if !held.is_empty() {
        let described = super::consumers::describe(session, &held).await;
        super::consumers::fill(&mut observed.providers, &described);
        // Planned again with the same rollout facts: nothing is taken twice.
        gated.plan = observed::plan_gated(&loaded.desired, &targets, &observed).plan;
    }
    problems.extend(gated.problems);
    let named = provider::named_traits(&loaded.desired);
    Ok(Observation {
        plan: gated.plan,
        problems,
        compute_node,
        named_traits: named,
        gates: gated.gates,
    })
}

/// The compute node's uuid and its device providers: the node found once and kept, the
/// providers read through the cache; a node that is gone is looked for again.
async fn host_providers(
    placement: &Placement<'_>,
    host: &str,
    memory: &mut HostMemory,
) -> Result<(String, Vec<crate::host::plan::ProviderState>), Error> {
    if let Some(uuid) = memory.compute_node.clone()
        && let Some(providers) =
            report::device_providers_cached(placement, &uuid, &mut memory.providers).await?
    {
        return Ok((uuid, providers));
    }
    let compute = report::find_compute_node(placement, host).await?;
    memory.compute_node = Some(compute.uuid.clone());
    let providers =
        report::device_providers_cached(placement, &compute.uuid, &mut memory.providers)
            .await?
            .unwrap_or_default();
    Ok((compute.uuid, providers))
}

/// The consumers of the providers a plan leaves alone because of them (or programs over
/// them, forced), and of the providers it keeps because of them.
fn held_consumers(plan: &HostPlan) -> BTreeSet<String> {
    let held = plan
        .slots
        .iter()
        .filter(|s| {
            matches!(
                s.action,
                SlotAction::Blocked { .. } | SlotAction::Program { forced: true, .. }
            )
        })
        .filter_map(|s| s.provider.as_ref());
    let kept = plan.removals.iter().map(|r| &r.provider);
    held.chain(kept)
        .flat_map(|p| p.consumers.iter().map(|c| c.id.clone()))
        .collect()
}

/// Carries out an observed plan and returns the host's status. `previous` carries the
/// failure counts forward. A plan without changes is not executed: its status says what
/// the cards carry. `halted` says why to start no further slot (the lease was lost); the
/// status's `error` then says so.
/// The units of rollouts whose slots all verified are given back (see
/// [`rollout::settle`]).
#[allow(clippy::too_many_arguments, reason = "the pass's whole context")]
pub async fn execute(
    session: &Session,
    loaded: &Loaded,
    options: &HostOptions,
    drivers: &Drivers,
    observation: &Observation,
    previous: Option<&HostStatus>,
    stop: &AtomicBool,
    halted: &(dyn Fn() -> Option<String> + Sync),
    reporter: &dyn Reporter,
    memory: &HostMemory,
) -> HostStatus {
    let status = carry_out(
        session,
        loaded,
        options,
        drivers,
        observation,
        previous,
        stop,
        halted,
        reporter,
    )
    .await;
    if options.rollouts == Mode::Act {
        rollout::settle(
            &Placement::new(session),
            &observation.plan,
            &status,
            &memory.rollouts,
        )
        .await;
        memory.rollouts.save().await;
    }
    status
}

#[allow(clippy::too_many_arguments, reason = "the pass's whole context")]
async fn carry_out(
    session: &Session,
    loaded: &Loaded,
    options: &HostOptions,
    drivers: &Drivers,
    observation: &Observation,
    previous: Option<&HostStatus>,
    stop: &AtomicBool,
    halted: &(dyn Fn() -> Option<String> + Sync),
    reporter: &dyn Reporter,
) -> HostStatus {
    if !observation.plan.has_changes() {
        let mut slots = render::statuses(&observation.plan);
        carry_failures(&mut slots, previous);
        return HostStatus {
            host: options.host.clone(),
            commit: loaded.desired.commit.clone(),
            finished_at: now(),
            error: None,
            slots,
            removals: Vec::new(),
        };
    }
    let placement = Placement::new(session);
    let glance = Glance::new(session);
    let cache = BitstreamCache::new(options.cache_dir.join("bitstreams"));
    let executor = HostExecutor {
        drivers,
        placement: &placement,
        glance: &glance,
        cache: &cache,
        site: &options.site,
        compute_node: &observation.compute_node,
        named_traits: &observation.named_traits,
        timeout: options.timeout,
        stop,
        halted,
        reporter,
        ledger: &Ledger::new(&options.drivers.state_dir),
    };
    let executed = executor.run(&observation.plan).await;
    let mut slots = executed.slots;
    carry_failures(&mut slots, previous);
    let unwithdrawn = (!executed.unwithdrawn.is_empty()).then(|| {
        format!(
            "could not withdraw from scheduling: {}",
            executed.unwithdrawn.join("; ")
        )
    });
    let halted = executed
        .halted
        .map(|why| format!("{why}; the slots after it were not started"));
    let error = match (unwithdrawn, halted) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    HostStatus {
        host: options.host.clone(),
        commit: loaded.desired.commit.clone(),
        finished_at: now(),
        error,
        slots,
        removals: executed.removals,
    }
}

/// Counts consecutive failures per slot from the previous status.
pub fn carry_failures(slots: &mut [SlotStatus], previous: Option<&HostStatus>) {
    for s in slots {
        let before = previous
            .and_then(|p| p.slots.iter().find(|o| o.slot == s.slot))
            .map_or(0, |o| o.failures);
        s.failures = match s.state {
            SlotState::Failed | SlotState::Blocked => before + 1,
            _ => 0,
        };
    }
}

/// A host observed: what `plan --host` shows and `apply --host` carries out.
pub struct Prepared {
    /// The desired state.
    pub loaded: Loaded,
    /// The host's drivers.
    pub drivers: Drivers,
    /// The cloud session.
    pub session: Arc<Session>,
    /// The plan and what it was made from.
    pub observation: Observation,
    /// What the observation remembered (the rollouts' state).
    pub memory: HostMemory,
}

/// Everything `plan --host` and `apply --host` do before they diverge: read the desired
/// state, set up the drivers, connect (Placement only, see [`Needs::Placement`]), observe
/// and plan.
pub async fn prepare(
    spec: &RepoSpec,
    os_cloud: Option<&str>,
    options: &HostOptions,
    warn: impl Fn(&str),
) -> Result<Prepared, Error> {
    let loaded = super::load(spec)?;
    let drivers = drivers(&loaded, options)?;
    let session = Arc::new(super::connect(os_cloud, Needs::Placement, warn).await?);
    let mut memory = HostMemory::load(&options.drivers.state_dir);
    let observation = observe(&loaded, options, &drivers, &session, &mut memory).await?;
    Ok(Prepared {
        loaded,
        drivers,
        session,
        observation,
        memory,
    })
}

/// What `apply --host` runs with besides the host's options.
pub struct HostApplyContext<'a> {
    /// The cloud (`--os-cloud`).
    pub os_cloud: Option<&'a str>,
    /// The lease's TTL and wait (the operation and commit are filled in).
    pub lease: LeaseOptions,
    /// Told what happens to the lease.
    pub events: Events<'a>,
    /// Told what happens to each slot.
    pub reporter: &'a dyn Reporter,
    /// The status of the previous run, for the failure counts.
    pub previous: Option<&'a HostStatus>,
    /// Set to stop (Ctrl-C, SIGTERM): the wait for the lease ends, no further slot
    /// starts, and the lease is given back.
    pub stop: &'a AtomicBool,
}

/// `apply --host`: reads the desired state and sets up the drivers, takes the host's
/// lease, observes and plans under it, asks `review` (`false`: not carried out), carries
/// the plan out and gives the lease back. `None` when not approved.
pub async fn apply_locked(
    spec: &RepoSpec,
    options: &HostOptions,
    context: &HostApplyContext<'_>,
    review: impl FnOnce(&Prepared) -> Result<bool, Error>,
    warn: impl Fn(&str),
) -> Result<(Prepared, Option<HostStatus>), Error> {
    let loaded = super::load(spec)?;
    let drivers = drivers(&loaded, options)?;
    let session = Arc::new(super::connect(context.os_cloud, Needs::Placement, warn).await?);
    let scope = Scope::Host(options.host.clone());
    let lease_options = LeaseOptions {
        operation: "apply --host".into(),
        ..context.lease.with_commit(loaded.desired.commit.as_deref())
    };
    let cancelled = || context.stop.load(std::sync::atomic::Ordering::SeqCst);
    let lease =
        lease::acquire(&session, &scope, &lease_options, context.events, &cancelled).await?;
    let outcome = async {
        let mut memory = HostMemory::load(&options.drivers.state_dir);
        let observation = observe(&loaded, options, &drivers, &session, &mut memory).await?;
        let mut prepared = Prepared {
            loaded,
            drivers,
            session,
            observation,
            memory,
        };
        if !review(&prepared)? {
            return Ok((prepared, None));
        }
        // Approved up front (`options.rollouts` is `Act`), the observation took its
        // rollouts' units; else they are taken only now that the plan is approved.
        let mut options = options.clone();
        if options.rollouts != Mode::Act && !prepared.observation.gates.is_empty() {
            options.rollouts = Mode::Act;
            prepared.observation = observe(
                &prepared.loaded,
                &options,
                &prepared.drivers,
                &prepared.session,
                &mut prepared.memory,
            )
            .await?;
        }
        // Units taken are renewed while the slots are programmed.
        let _keeper = Keeper::start(
            prepared.session.clone(),
            prepared.memory.rollouts.holdings.clone(),
            options.site.clone(),
            options.host.clone(),
        );
        let status = execute(
            &prepared.session,
            &prepared.loaded,
            &options,
            &prepared.drivers,
            &prepared.observation,
            context.previous,
            context.stop,
            &|| lease.lost(),
            context.reporter,
            &prepared.memory,
        )
        .await;
        Ok((prepared, Some(status)))
    }
    .await;
    lease::finish(lease, context.events).await;
    outcome
}

/// What the backends see: those named, or those the repository's groups give `host`. The
/// discovery runs off the async threads; a backend that cannot run says so in its entry.
pub fn devices(
    spec: &RepoSpec,
    host: Option<&str>,
    backends: &[Backend],
    config: &DriverConfig,
) -> Result<discover::Seen, Error> {
    let drivers: Drivers = match host {
        Some(host) if backends.is_empty() => {
            let loaded = super::load(spec)?;
            let drivers = discover::host_drivers(&loaded.desired, host, config)?;
            if drivers.is_empty() {
                return Err(Error::other(
                    crate::diagnostic::Diagnostic::error(
                        "fpga_sync::host",
                        format!("no host group of the repository names host `{host}`"),
                    )
                    .help("give `--backend` to list what a backend sees anyway"),
                ));
            }
            drivers
        }
        _ => backends
            .iter()
            .map(|b| Ok((*b, crate::host::discover::backends::driver(*b, config)?)))
            .collect::<Result<_, Error>>()?,
    };
    Ok(discover::discover(&drivers))
}
