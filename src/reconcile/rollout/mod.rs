//! Rollouts on a host (see docs/rollouts.md): before a pass drains a slot of a group with
//! a `rollout:`, read what the rollout looks like in Placement (its budget, its record,
//! the fleet's verified and failing providers), let the pure gate
//! (`host::plan::rollout::gate`) decide, take a unit of the budget for a group that may
//! go, and hold the others back; after the pass, give back the units of groups whose
//! slots all verified. A [`Keeper`] renews the units held, so that only a host whose agent
//! is gone loses them. [`status`] is the central view of every rollout.
//!
//! Nothing here trusts another host's clock: the bake time counts from when this host
//! first saw the canaries verified, and a unit expires when this host has seen its
//! consumer generation unchanged for the lease. I/O: Placement, the rollout state file
//! (`<state-dir>/rollout.json`), tracing events.

pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::cloud::CloudError;
use crate::cloud::placement::Placement;
use crate::cloud::session::Session;
use crate::desired::Desired;
use crate::host::plan::HostPlan;
use crate::host::plan::assignment::Target;
use crate::host::plan::fleet::parse_provider_name;
use crate::host::plan::observed::{self, Gated, HostObserved};
use crate::host::plan::provider::{self, FAILED_TRAIT, OWNER_TRAIT, VERIFIED_TRAIT, trait_part};
use crate::host::plan::rollout::{
    self as gate, CANARY_TRAIT_PREFIX, Facts, Gate, RECORD_TRAIT_PREFIX, Sightings, UnitId, Work,
};
use crate::host::report::budget::{self, Renewed, Taken};
/// Milliseconds since the Unix epoch on this host's clock (only ever compared with itself).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
use crate::host::status::{HostStatus, SlotState};

/// A unit of a rollout's budget this host holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldUnit {
    /// The rollout (`group` or `group/overrides[i]`).
    pub unit: String,
    /// The budget provider's uuid.
    pub budget: String,
    /// The consumer through which it is held.
    pub consumer: String,
    /// Its consumer generation as last written.
    pub generation: u64,
    /// How often it is renewed, in seconds.
    pub renew_every: u64,
    /// When it was last written (taken or renewed), milliseconds on this host's clock.
    pub renewed_at: u64,
}

/// The units this host holds, by host group; shared with the [`Keeper`].
pub type Holdings = Arc<tokio::sync::Mutex<BTreeMap<String, HeldUnit>>>;

/// The part of [`Memory`] kept in the state file across restarts.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    held: BTreeMap<String, HeldUnit>,
    canaries_verified: BTreeMap<String, u64>,
}

/// What a host remembers about its rollouts between passes.
#[derive(Debug, Default)]
pub struct Memory {
    /// The units held.
    pub holdings: Holdings,
    /// When this host first saw every canary of a rollout verified, by
    /// `<rollout>@<revision>`: milliseconds on its clock.
    canaries_verified: BTreeMap<String, u64>,
    /// When it first saw each holder of each budget at its consumer generation.
    sightings: BTreeMap<String, Sightings>,
    /// Budget providers found, name → uuid.
    budgets: BTreeMap<String, String>,
    /// The record each budget provider was seen holding (uuid → key and what it
    /// resolved): a record does not change once published, so it is read once.
    records: BTreeMap<String, (String, gate::Resolved)>,
    /// Where it is saved.
    path: Option<PathBuf>,
    /// The gates of the last pass, by host group.
    pub gates: BTreeMap<String, (Work, Gate)>,
}

impl Memory {
    /// The memory saved in `state_dir` (empty when there is none).
    pub fn load(state_dir: &Path) -> Memory {
        let path = state_dir.join("rollout.json");
        let saved: Saved = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Memory {
            holdings: Arc::new(tokio::sync::Mutex::new(saved.held)),
            canaries_verified: saved.canaries_verified,
            path: Some(path),
            ..Memory::default()
        }
    }

    /// Writes what must outlive the process.
    pub async fn save(&self) {
        let Some(path) = &self.path else { return };
        let saved = Saved {
            held: self.holdings.lock().await.clone(),
            canaries_verified: self.canaries_verified.clone(),
        };
        if saved.held.is_empty() && saved.canaries_verified.is_empty() && !path.exists() {
            return;
        }
        if let Err(e) = crate::atomic::write_json(path, &saved) {
            warn!(path = %path.display(), error = %e, "cannot write the rollout state file");
        }
    }

    /// How many units this host holds.
    pub async fn units_held(&self) -> usize {
        self.holdings.lock().await.len()
    }
}

/// How a pass treats rollouts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Read and decide only (`plan --host`): nothing is taken, given back or published.
    #[default]
    ReadOnly,
    /// Take units, publish records, take back expired units (`apply --host`, `watch`).
    Act,
}

/// Who this pass is.
pub struct Pass<'a> {
    /// The host.
    pub host: &'a str,
    /// The site (the budget's name and the holders' project).
    pub site: &'a str,
    /// Read only, or act.
    pub mode: Mode,
}

/// Plans the observed host with its rollouts: reads the rollouts in which it has a slot to
/// drain into `observed.rollouts`, takes a unit for each whose gate says go (in
/// [`Mode::Act`]), and returns the plan, held back where the gate says wait. A host with
/// nothing to drain under a rollout reads nothing.
pub async fn plan(
    placement: &Placement<'_>,
    desired: &Desired,
    targets: &BTreeMap<String, Target>,
    observed: &mut HostObserved,
    memory: &mut Memory,
    pass: &Pass<'_>,
) -> Result<Gated, CloudError> {
    let work = observed::rollout_work(desired, targets, observed);
    if work.is_empty() {
        memory.gates.clear();
        return Ok(observed::plan_gated(desired, targets, observed));
    }
    for (group, w) in &work {
        let facts = facts(placement, desired, targets, group, w, memory, pass).await?;
        observed.rollouts.insert(group.clone(), facts);
    }
    let mut gated = observed::plan_gated(desired, targets, observed);
    if pass.mode == Mode::Act {
        let mut taken = false;
        for (group, (w, g)) in &gated.gates {
            let Some(facts) = observed.rollouts.get_mut(group) else {
                continue;
            };
            if !matches!(g, Gate::Go { .. }) || facts.holding {
                continue;
            }
            let name = gate::budget_name(pass.site, &w.unit);
            let Some(uuid) = memory.budgets.get(&name).cloned() else {
                continue;
            };
            let consumer = gate::holder_consumer(pass.site, &w.unit, pass.host);
            match budget::take(placement, &uuid, &consumer, &project(pass.site), pass.host).await? {
                Taken::Held(generation) => {
                    info!(group, rollout = %w.unit.key(), "took a unit of the rollout's budget");
                    memory.holdings.lock().await.insert(
                        group.clone(),
                        HeldUnit {
                            unit: w.unit.key(),
                            budget: uuid,
                            consumer,
                            generation,
                            renew_every: w.policy.renew_every_seconds(),
                            renewed_at: now_ms(),
                        },
                    );
                    facts.holding = true;
                    facts.used += 1;
                }
                Taken::Full => facts.used = facts.used.max(facts.total),
            }
            taken = true;
        }
        if taken {
            gated = observed::plan_gated(desired, targets, observed);
        }
    }
    memory.gates.clone_from(&gated.gates);
    Ok(gated)
}

/// The project the holders' allocations name: the site.
fn project(site: &str) -> String {
    format!("fpga-sync:{site}")
}

/// Reads one rollout: finds (or, acting, creates) its budget, follows its record (or
/// resolves and publishes one), sees its holders (and, acting, takes back expired units),
/// and asks the fleet's providers which hosts verified or failed the bitstreams this host
/// is to program.
async fn facts(
    placement: &Placement<'_>,
    desired: &Desired,
    targets: &BTreeMap<String, Target>,
    group: &str,
    work: &Work,
    memory: &mut Memory,
    pass: &Pass<'_>,
) -> Result<Facts, CloudError> {
    let Some(spec) = desired.host_groups.get(group).map(|g| &g.spec) else {
        return Ok(Facts::default());
    };
    let unit = &work.unit;
    let policy = &work.policy;
    let now = now_ms();
    let revision = gate::revision(spec, targets);
    let key = gate::record_key(&revision, policy);
    let name = gate::budget_name(pass.site, unit);
    let uuid = match memory.budgets.get(&name) {
        Some(u) => Some(u.clone()),
        None => match pass.mode {
            Mode::Act => Some(budget::ensure(placement, &name).await?),
            Mode::ReadOnly => budget::find(placement, &name).await?.map(|p| p.uuid),
        },
    };
    let mut facts = Facts::default();
    let mine = gate::holder_consumer(pass.site, unit, pass.host);
    let resolved = match &uuid {
        None => resolve(placement, spec, unit, policy).await?,
        Some(uuid) => {
            memory.budgets.insert(name.clone(), uuid.clone());
            let known = memory
                .records
                .get(uuid)
                .filter(|(k, _)| *k == key)
                .map(|(_, r)| r.clone());
            let (resolved, holders) = match known {
                Some(r) => (r, budget::holders(placement, uuid).await?),
                None => {
                    let b = budget::read(placement, uuid).await?;
                    match gate::read_record(&b.traits, b.total) {
                        Some((k, r)) if k == key => {
                            memory.records.insert(uuid.clone(), (k, r.clone()));
                            (r, b.holders)
                        }
                        _ => {
                            let r = resolve(placement, spec, unit, policy).await?;
                            if pass.mode == Mode::Act {
                                let traits = gate::record_traits(&key, &r);
                                let published = budget::publish(
                                    placement,
                                    uuid,
                                    r.total,
                                    &traits,
                                    &[RECORD_TRAIT_PREFIX, CANARY_TRAIT_PREFIX],
                                )
                                .await?;
                                if published {
                                    info!(group, rollout = %unit.key(), revision, total = r.total, canaries = r.canaries.len(), "published the rollout's record");
                                }
                            }
                            let b = budget::read(placement, uuid).await?;
                            match gate::read_record(&b.traits, b.total) {
                                Some((k, theirs)) if k == key => {
                                    memory.records.insert(uuid.clone(), (k, theirs.clone()));
                                    (theirs, b.holders)
                                }
                                _ => (r, b.holders),
                            }
                        }
                    }
                }
            };
            let sightings = gate::sight(
                memory.sightings.get(uuid).unwrap_or(&Sightings::new()),
                &holders,
                now,
            );
            let mut holders = holders;
            if pass.mode == Mode::Act {
                for h in gate::expired(&sightings, &mine, now, policy.lease_seconds) {
                    if budget::reclaim(placement, &h, &project(pass.site)).await? {
                        warn!(group, rollout = %unit.key(), consumer = %h.consumer, lease_s = policy.lease_seconds, "took back a unit whose holder did not renew it for the lease: its agent is gone");
                        holders.retain(|x| x.consumer != h.consumer);
                    }
                }
            }
            memory.sightings.insert(uuid.clone(), sightings);
            facts.used = u32::try_from(holders.len()).unwrap_or(u32::MAX);
            let held = holders.iter().find(|h| h.consumer == mine);
            facts.holding = held.is_some();
            let mut holdings = memory.holdings.lock().await;
            match (held, holdings.get(group)) {
                (Some(h), None) if pass.mode == Mode::Act => {
                    info!(group, rollout = %unit.key(), "holds a unit of the rollout's budget (taken before a restart)");
                    holdings.insert(
                        group.to_owned(),
                        HeldUnit {
                            unit: unit.key(),
                            budget: uuid.clone(),
                            consumer: mine.clone(),
                            generation: h.generation,
                            renew_every: policy.renew_every_seconds(),
                            renewed_at: now,
                        },
                    );
                }
                (None, Some(_)) => {
                    error!(group, rollout = %unit.key(), "lost its unit of the rollout's budget: another host took it back after the lease ran out without a renewal");
                    holdings.remove(group);
                }
                _ => {}
            }
            resolved
        }
    };
    facts.total = resolved.total;
    facts.canaries = resolved.canaries;
    // The canaries, once seen verified, are not asked about again for this revision.
    let memo = format!("{}@{revision}", unit.key());
    let wave2 = !facts.canaries.is_empty() && !gate::is_canary(&facts, pass.host);
    if wave2 {
        if let Some(since) = memory.canaries_verified.get(&memo) {
            for t in &work.targets {
                facts.verified.insert(t.clone(), facts.canaries.clone());
            }
            facts.canaries_verified_for = Some(now.saturating_sub(*since));
        } else {
            for t in &work.targets {
                let Some(target) = targets.get(t) else {
                    continue;
                };
                let names = budget::providers_with(
                    placement,
                    &[VERIFIED_TRAIT.to_owned(), provider::bitstream_trait(target)],
                )
                .await?;
                let hosts = names
                    .iter()
                    .filter_map(|n| parse_provider_name(n))
                    .map(|(h, _, _)| trait_part(h))
                    .collect();
                facts.verified.insert(t.clone(), hosts);
            }
            if gate::canaries_pending(&facts, &work.targets).is_empty() {
                memory.canaries_verified.insert(memo.clone(), now);
                facts.canaries_verified_for = Some(0);
            }
        }
    }
    for t in &work.targets {
        let Some(target) = targets.get(t) else {
            continue;
        };
        let names = budget::providers_with(
            placement,
            &[FAILED_TRAIT.to_owned(), provider::tried_trait(target)],
        )
        .await?;
        facts.failed.extend(
            names
                .iter()
                .filter_map(|n| parse_provider_name(n))
                .map(|(h, _, _)| h)
                .filter(|h| gate::covers(spec, unit, h))
                .map(str::to_owned),
        );
    }
    Ok(facts)
}

/// What a rollout resolves against: its hosts named exactly, plus, when it needs them,
/// the hosts of the fleet its patterns match that report fpga-sync providers.
async fn resolve(
    placement: &Placement<'_>,
    spec: &crate::desired::HostGroup,
    unit: &UnitId,
    policy: &gate::Policy,
) -> Result<gate::Resolved, CloudError> {
    let mut hosts = gate::named_hosts(spec, unit);
    if gate::needs_fleet_hosts(spec, unit, policy) {
        let names = budget::providers_with(placement, &[OWNER_TRAIT.to_owned()]).await?;
        hosts.extend(
            names
                .iter()
                .filter_map(|n| parse_provider_name(n))
                .map(|(h, _, _)| h)
                .filter(|h| gate::covers(spec, unit, h))
                .map(str::to_owned),
        );
    }
    Ok(gate::resolve(policy, &hosts))
}

/// After a pass: gives back the unit of each group whose slots on this host all ended
/// verified (or left the host); a group with a slot that failed or still waits keeps its
/// unit. A release that fails is retried after the next pass.
pub async fn settle(
    placement: &Placement<'_>,
    plan: &HostPlan,
    status: &HostStatus,
    memory: &Memory,
) {
    let mut holdings = memory.holdings.lock().await;
    let done: Vec<String> = holdings
        .keys()
        .filter(|group| {
            plan.slots
                .iter()
                .filter(|s| &s.assignment.group == *group)
                .all(|s| {
                    status.slots.iter().any(|st| {
                        st.slot == s.assignment.slot
                            && matches!(st.state, SlotState::Verified | SlotState::Manual)
                    })
                })
        })
        .cloned()
        .collect();
    for group in done {
        let Some(unit) = holdings.get(&group) else {
            continue;
        };
        match budget::release(placement, &unit.consumer).await {
            Ok(()) => {
                info!(group, rollout = %unit.unit, "gave the rollout's unit back: its slots are verified and reported");
                holdings.remove(&group);
            }
            Err(e) => {
                warn!(group, rollout = %unit.unit, error = %e, "could not give the rollout's unit back; the next pass retries")
            }
        }
    }
}

/// Renews the units a host holds, every fifth of their lease, for as long as it lives.
pub struct Keeper {
    task: tokio::task::JoinHandle<()>,
}

impl Keeper {
    /// Starts renewing `holdings` through `session`.
    pub fn start(session: Arc<Session>, holdings: Holdings, site: String, host: String) -> Keeper {
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                renew_due(&Placement::new(&session), &holdings, &site, &host).await;
            }
        });
        Keeper { task }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Renews each unit whose renewal is due.
async fn renew_due(placement: &Placement<'_>, holdings: &Holdings, site: &str, host: &str) {
    let mut held = holdings.lock().await;
    let now = now_ms();
    let due: Vec<String> = held
        .iter()
        .filter(|(_, u)| now.saturating_sub(u.renewed_at) >= u.renew_every * 1000)
        .map(|(g, _)| g.clone())
        .collect();
    for group in due {
        let Some(unit) = held.get_mut(&group) else {
            continue;
        };
        match budget::renew(
            placement,
            &unit.budget,
            &unit.consumer,
            unit.generation,
            &project(site),
            host,
        )
        .await
        {
            Ok(Renewed::Held(generation)) => {
                unit.generation = generation;
                unit.renewed_at = now;
            }
            Ok(Renewed::Lost) => {
                error!(group, rollout = %unit.unit, "lost its unit of the rollout's budget: another host took it back after the lease ran out without a renewal");
                held.remove(&group);
            }
            Err(e) => warn!(group, error = %e, "could not renew the rollout's unit; retrying"),
        }
    }
}

/// The host groups whose rollout is halted on failures, from the last pass's gates.
pub fn halted(memory: &Memory) -> BTreeSet<String> {
    memory
        .gates
        .iter()
        .filter(|(_, (_, g))| matches!(g, Gate::Wait { halted: true, .. }))
        .map(|(group, _)| group.clone())
        .collect()
}
