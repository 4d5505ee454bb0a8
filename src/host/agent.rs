//! One reconcile of one host, as `plan --host`, `apply --host` and `watch` run it: read
//! the desired state at a commit, find what the host's backends see and what Placement
//! holds for it, plan, and (unless planning only) carry the plan out and record the
//! result. I/O: the repository, the drivers, Placement, Glance, the status file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::assignment::{self, Target};
use super::backends::{self, DriverConfig};
use super::driver::{DeviceInfo, Driver, DriverError};
use super::execute::HostExecutor;
use super::fetch::BitstreamCache;
use super::placement_sync;
use super::plan::{self, HostPlan, HostPlanInput, ProviderState};
use super::report;
use super::status::{HostStatus, SlotState, SlotStatus, now};
use super::targets;
use crate::cloud::glance::Glance;
use crate::cloud::placement::Placement;
use crate::cloud::session::Session;
use crate::desired::host_group::{Backend, resolve_for_host};
use crate::desired::{Desired, host_entry_matches};
use crate::reconcile::Loaded;

/// How the agent runs on this host.
#[derive(Clone, Debug)]
pub struct AgentOptions {
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
    pub deferred: BTreeMap<super::driver::Slot, String>,
}

/// What one reconcile saw and decided.
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
}

/// The backends the host's groups use, with the `exec` commands of the group that names
/// them.
pub fn host_drivers(
    desired: &Desired,
    host: &str,
    config: &DriverConfig,
) -> Result<BTreeMap<Backend, Box<dyn Driver>>, String> {
    let mut out = BTreeMap::new();
    for group in desired.host_groups.values().map(|g| &g.spec) {
        if !group.hosts.iter().any(|h| host_entry_matches(h, host)) {
            continue;
        }
        let (backend, _) = resolve_for_host(group, host, host_entry_matches);
        if out.contains_key(&backend) {
            continue;
        }
        let mut config = config.clone();
        if backend == Backend::Exec {
            config.exec.clone_from(&group.exec);
            if let Some(secs) = group.exec.as_ref().and_then(|e| e.timeout_seconds) {
                config.timeout = Duration::from_secs(secs);
            }
        }
        out.insert(backend, backends::driver(backend, &config)?);
    }
    Ok(out)
}

/// What each driver sees (blocking sysfs reads and tool runs, off the async threads).
pub fn discover(
    drivers: &BTreeMap<Backend, Box<dyn Driver>>,
) -> BTreeMap<Backend, Result<Vec<DeviceInfo>, DriverError>> {
    drivers
        .iter()
        .map(|(b, d)| (*b, tokio::task::block_in_place(|| d.discover())))
        .collect()
}

/// The first backend that cannot run at all, as an error for the whole pass: nothing is
/// read back, written or removed on the strength of a discovery that could not look.
pub fn unavailable(
    seen: &BTreeMap<Backend, Result<Vec<DeviceInfo>, DriverError>>,
) -> Option<&DriverError> {
    seen.values()
        .find_map(|r| r.as_ref().err())
        .filter(|e| matches!(e, DriverError::Unavailable { .. }))
}

/// The traits fpga-sync may remove from its providers: those the assignments name and the
/// vendor traits of the bitstreams.
pub fn named_traits(desired: &Desired) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = desired
        .bitstreams
        .values()
        .map(|b| report::vendor_trait(&b.spec.metadata.vendor))
        .collect();
    for g in desired.host_groups.values().map(|g| &g.spec) {
        let entries = g
            .devices
            .iter()
            .chain(g.overrides.iter().flat_map(|o| &o.devices));
        out.extend(entries.flat_map(|d| d.traits.iter().cloned()));
    }
    out
}

/// Reads everything and plans the host.
pub async fn observe(
    loaded: &Loaded,
    options: &AgentOptions,
    drivers: &BTreeMap<Backend, Box<dyn Driver>>,
    placement: &Placement<'_>,
) -> Result<Observation, String> {
    let (targets, mut problems) = targets::targets(loaded, &options.cache_dir);
    let seen = discover(drivers);
    if let Some(e) = unavailable(&seen) {
        return Err(e.to_string());
    }
    let seen: BTreeMap<Backend, Result<Vec<DeviceInfo>, String>> = seen
        .into_iter()
        .map(|(b, r)| (b, r.map_err(|e| e.to_string())))
        .collect();
    let found: BTreeMap<Backend, Vec<DeviceInfo>> = seen
        .iter()
        .filter_map(|(b, r)| Some((*b, r.as_ref().ok()?.clone())))
        .collect();
    let (assignments, assignment_problems) =
        assignment::for_host(&loaded.desired, &options.host, &targets, &found);
    problems.extend(
        assignment_problems
            .into_iter()
            .map(|p| format!("host group `{}`: {}", p.group, p.message)),
    );
    let compute = placement_sync::find_compute_node(placement, &options.host)
        .await
        .map_err(|e| match e.help() {
            Some(help) => format!("{e}\n  help: {help}"),
            None => e.to_string(),
        })?;
    let providers: Vec<ProviderState> = placement_sync::device_providers(placement, &compute.uuid)
        .await
        .map_err(|e| e.to_string())?;
    let named = named_traits(&loaded.desired);
    let plan = plan::plan_host(&HostPlanInput {
        host: &options.host,
        assignments: &assignments,
        targets: &targets,
        devices: &seen,
        providers: Some(&providers),
        named_traits: &named,
        force: options.force,
        deferred: &options.deferred,
    });
    Ok(Observation {
        plan,
        problems,
        compute_node: compute.uuid,
        named_traits: named,
    })
}

/// Carries out an observed plan and returns the host's status. `previous` carries the
/// failure counts forward.
pub async fn execute(
    session: &Session,
    loaded: &Loaded,
    options: &AgentOptions,
    drivers: &BTreeMap<Backend, Box<dyn Driver>>,
    observation: &Observation,
    previous: Option<&HostStatus>,
    stop: &AtomicBool,
) -> HostStatus {
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
    };
    let executed = executor.run(&observation.plan).await;
    let mut slots = executed.slots;
    carry_failures(&mut slots, previous);
    HostStatus {
        host: options.host.clone(),
        commit: loaded.desired.commit.clone(),
        finished_at: now(),
        error: (!executed.unwithdrawn.is_empty()).then(|| {
            format!(
                "could not withdraw from scheduling: {}",
                executed.unwithdrawn.join("; ")
            )
        }),
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

/// The targets by name, for commands that need one bitstream.
pub fn targets_of(loaded: &Loaded, cache_dir: &std::path::Path) -> BTreeMap<String, Target> {
    targets::targets(loaded, cache_dir).0
}
