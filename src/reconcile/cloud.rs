//! The central pipeline, as `plan` and `apply` run it: the desired state at a commit → the
//! cloud observed (Glance, Placement, Nova) → [`crate::plan::plan`] (pure) →
//! [`crate::apply::apply`], which tells a reporter. Also the fleet view the central plan
//! ends with, and saved plans: checked for staleness against a fresh observation before
//! they are carried out. I/O: the repository, the cloud, the header cache, the plan file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use futures_util::future::join_all;

use super::{Error, Loaded, Needs, SavedPlan, SnapshotFiles};
use crate::apply::{self, Applied, Reporter};
use crate::cloud::placement::Placement;
use crate::cloud::session::Session;
use crate::host::plan::consumer::Consumer;
use crate::host::plan::fleet::{self, FleetSlot, FleetState};
use crate::observed::{Observed, ObservedProvider};
use crate::plan::schedulable::{self, FlavorSlots};
use crate::plan::{self, Plan, PlanInput, PlanSettings, stale};
use crate::source::RepoSpec;

/// The cloud planned against the desired state.
pub struct Planned {
    /// The desired state.
    pub loaded: Loaded,
    /// The session it was observed through.
    pub session: Session,
    /// What the cloud holds.
    pub observed: Observed,
    /// The plan.
    pub plan: Plan,
}

impl Planned {
    /// The plan as `plan --out` saves it, with where it came from (and without the
    /// informational sections: see [`Planned::views`]).
    pub fn saved(&self, spec: &RepoSpec, repo: &str) -> SavedPlan {
        SavedPlan {
            format_version: plan::FORMAT_VERSION,
            repo: repo.to_owned(),
            dir: spec.dir.clone(),
            worktree: spec.worktree,
            cloud: self.session.cloud_name().to_owned(),
            plan: self.plan.clone(),
            fleet: None,
            schedulable: None,
        }
    }

    /// The line above a plan: what was read, and which cloud.
    pub fn header(&self) -> String {
        format!(
            "fpga-sync plan: {} → cloud `{}`",
            self.loaded.snapshot.describe(),
            self.session.cloud_name()
        )
    }

    /// The fleet view: each host's slots as its agent reported them to Placement, against
    /// what the repository assigns (header identities from `cache_dir`), with who holds
    /// each slot that is not verified (a server on a withdrawn slot, a claim): their
    /// allocations are read and the consumers looked up
    /// ([`super::consumers`]). Empty without host groups.
    pub async fn fleet(&self, cache_dir: &Path) -> Vec<FleetSlot> {
        if self.loaded.desired.host_groups.is_empty() {
            return Vec::new();
        }
        let targets = super::host::targets_of(&self.loaded, cache_dir);
        let (desired, providers) = (&self.loaded.desired, &self.observed.providers);
        let first = fleet::fleet(desired, &targets, providers, &BTreeMap::new());
        let placement = Placement::new(&self.session);
        let unverified: Vec<&ObservedProvider> = first
            .iter()
            .filter(|s| s.state != FleetState::Verified)
            .filter_map(|s| providers.iter().find(|p| p.name == s.provider))
            .collect();
        let read = join_all(unverified.iter().map(|p| placement.allocations(&p.uuid))).await;
        let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (p, allocations) in unverified.iter().zip(read) {
            match allocations {
                Ok(a) if !a.is_empty() => {
                    held.insert(p.name.clone(), a.into_keys().collect());
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(provider = %p.name, error = %e, "reading allocations"),
            }
        }
        if held.is_empty() {
            return first;
        }
        let ids: BTreeSet<String> = held.values().flatten().cloned().collect();
        let described = super::consumers::describe(&self.session, &ids).await;
        let consumers: BTreeMap<String, Vec<Consumer>> = held
            .into_iter()
            .map(|(name, ids)| {
                let named = ids
                    .iter()
                    .map(|id| {
                        described
                            .get(id)
                            .cloned()
                            .unwrap_or_else(|| Consumer::id(id))
                    })
                    .collect();
                (name, named)
            })
            .collect();
        fleet::fleet(desired, &targets, providers, &consumers)
    }

    /// How many slots Placement can give each of the repository's FPGA flavors now: its
    /// FPGA request ([`schedulable::fpga_request`]) asked as allocation candidates. A
    /// flavor Placement could not be asked about says why; the plan goes on.
    pub async fn schedulable(&self) -> Vec<FlavorSlots> {
        let offers = schedulable::offers(&self.loaded.desired);
        let requests: Vec<_> = self
            .loaded
            .desired
            .flavors
            .values()
            .filter_map(|f| {
                schedulable::fpga_request(&f.spec.flavor.name, &f.spec.extra_specs, &offers)
            })
            .collect();
        let names: BTreeMap<String, String> = self
            .observed
            .providers
            .iter()
            .map(|p| (p.uuid.clone(), p.name.clone()))
            .collect();
        let placement = Placement::new(&self.session);
        let asked = join_all(requests.iter().map(|r| {
            let query = schedulable::candidate_query(r);
            let placement = &placement;
            async move {
                let found = placement.allocation_candidates(&query).await;
                (query, found)
            }
        }))
        .await;
        requests
            .iter()
            .zip(asked)
            .map(|(r, (query, found))| {
                let request = schedulable::query_text(&query);
                match found {
                    Ok(candidates) => {
                        let providers = schedulable::count(r, &candidates, &names);
                        FlavorSlots {
                            flavor: r.flavor.clone(),
                            request,
                            slots: Some(providers.len()),
                            providers,
                            error: None,
                        }
                    }
                    Err(e) => FlavorSlots {
                        flavor: r.flavor.clone(),
                        request,
                        slots: None,
                        providers: Vec::new(),
                        error: Some(e.to_string()),
                    },
                }
            })
            .collect()
    }

    /// The plan with its informational sections: the fleet view and the FPGA flavors'
    /// slots (`plan --format json` prints it).
    pub async fn views(&self, spec: &RepoSpec, repo: &str) -> SavedPlan {
        let mut saved = self.saved(spec, repo);
        let fleet = self.fleet(&spec.cache_dir).await;
        let flavors = self.schedulable().await;
        saved.fleet = (!self.loaded.desired.host_groups.is_empty()).then_some(fleet);
        saved.schedulable = (!flavors.is_empty()).then_some(flavors);
        saved
    }
}

/// Observes the cloud and plans against `loaded`.
pub async fn plan_loaded(
    loaded: Loaded,
    os_cloud: Option<&str>,
    settings: PlanSettings,
    warn: impl Fn(&str),
) -> Result<Planned, Error> {
    let session = super::connect(os_cloud, Needs::Cloud, warn).await?;
    let observed = crate::cloud::observe::observe(&session).await?;
    let input = PlanInput {
        desired: &loaded.desired,
        digests: &loaded.digests,
        observed: &observed,
        settings,
    };
    let plan = plan::plan(&input).map_err(Error::Plan)?;
    Ok(Planned {
        loaded,
        session,
        observed,
        plan,
    })
}

/// Reads the desired state, observes the cloud and plans: everything `plan` and `apply`
/// do before they diverge.
pub async fn plan(
    spec: &RepoSpec,
    os_cloud: Option<&str>,
    settings: PlanSettings,
    warn: impl Fn(&str),
) -> Result<Planned, Error> {
    let loaded = super::load(spec)?;
    plan_loaded(loaded, os_cloud, settings, warn).await
}

/// A saved plan made ready to apply: its commit read again and the cloud observed; an
/// error naming what moved when any object it was computed from changed since.
pub async fn from_saved(
    path: &Path,
    saved: SavedPlan,
    spec: &RepoSpec,
    os_cloud: Option<&str>,
    warn: impl Fn(&str),
) -> Result<Planned, Error> {
    let mut source = spec.clone();
    source.repo = saved.repo.clone();
    source.dir = saved.dir.clone();
    source.worktree = saved.worktree;
    source.reference = saved.plan.commit.clone();
    let loaded = super::load(&source)?;
    let cloud = os_cloud.unwrap_or(&saved.cloud);
    let session = super::connect(Some(cloud), Needs::Cloud, warn).await?;
    let observed = crate::cloud::observe::observe(&session).await?;
    let changes = stale::changes(&saved.plan.fingerprints, &observed);
    if !changes.is_empty() {
        return Err(Error::StalePlan {
            path: path.display().to_string(),
            changes,
        });
    }
    Ok(Planned {
        loaded,
        session,
        observed,
        plan: saved.plan,
    })
}

/// Carries out a plan: the bitstream files come from the desired state's snapshot (blobs
/// written to a scratch folder), `concurrency` bounds the actions of one phase in flight.
pub async fn apply(
    planned: &Planned,
    reporter: &dyn Reporter,
    concurrency: usize,
) -> std::io::Result<Applied> {
    let scratch = tempfile::tempdir()?;
    let files = SnapshotFiles {
        snapshot: &planned.loaded.snapshot,
        scratch: scratch.path().to_owned(),
    };
    Ok(apply::apply(
        &planned.plan,
        &planned.session,
        &files,
        reporter,
        concurrency,
    )
    .await)
}
