//! The central pipeline, as `plan` and `apply` run it: the desired state at a commit → the
//! cloud observed (Glance, Placement, Nova) → [`crate::plan::plan`] (pure) →
//! [`crate::apply::apply_under`], which tells a reporter. `apply` runs under the site's
//! lease ([`super::lease`]): it takes the lease, then observes and plans (or checks a saved
//! plan for staleness), carries the plan out and gives the lease back; `plan` takes no
//! lease and only reads who holds it, so it leaves a live run's uploads alone. Also the
//! fleet view the central plan ends with. I/O: the repository, the cloud, the header
//! cache, the plan file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::join_all;

use super::lease::{self, Events, Held, LeaseOptions, Scope};
use super::{Error, Loaded, Needs, SavedPlan, SnapshotFiles};
use crate::apply::{self, Applied, Reporter, Under};
use crate::cloud::placement::Placement;
use crate::cloud::session::Session;
use crate::host::plan::consumer::Consumer;
use crate::host::plan::fleet::{self, FleetSlot, FleetState};
use crate::host::plan::rollout_view::{self, RolloutView};
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
    /// The site it is for.
    pub site: String,
    /// Who held the site's lease when it was observed (another run's, for `plan`; this
    /// run's own, for `apply`).
    pub lease: Option<Held>,
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
            site: Some(self.site.clone()),
            plan: self.plan.clone(),
            fleet: None,
            schedulable: None,
            seen: Some(stale::Seen::of(&self.plan.fingerprints, &self.observed)),
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

    /// The rollouts of the fleet view: each group with a `rollout:` as its hosts reported
    /// it, with its budget read from Placement. Empty when no group has one.
    pub async fn rollouts(&self, cache_dir: &Path, site: &str) -> Result<Vec<RolloutView>, Error> {
        let desired = &self.loaded.desired;
        let any = desired.host_groups.values().any(|g| {
            g.spec.rollout.is_some() || g.spec.overrides.iter().any(|o| o.rollout.is_some())
        });
        if !any {
            return Ok(Vec::new());
        }
        let targets = super::host::targets_of(&self.loaded, cache_dir);
        let placement = crate::cloud::placement::Placement::new(&self.session);
        let budgets = super::rollout::status::budgets(&placement, desired, site).await?;
        Ok(rollout_view::views(
            desired,
            &targets,
            &self.observed.providers,
            &budgets,
            site,
        ))
    }
}

/// Observes the cloud and plans against `loaded`, without the lease: the site's lease is
/// only read, so that uploads of the run holding it are left alone.
pub async fn plan_loaded(
    loaded: Loaded,
    os_cloud: Option<&str>,
    settings: PlanSettings,
    warn: impl Fn(&str),
) -> Result<Planned, Error> {
    let session = super::connect(os_cloud, Needs::Cloud, warn).await?;
    let scope = Scope::Site(settings.site.clone());
    let (observed, status) = tokio::join!(
        crate::cloud::observe::observe(&session),
        lease::status(&session, &scope)
    );
    let observed = observed?;
    let held = match status {
        Ok(s) => s.held,
        // A Placement older than the lease's microversion: no run can hold a lease there.
        Err(e) if e.status() == Some(406) => None,
        Err(e) => return Err(e.into()),
    };
    let site = settings.site.clone();
    let live = held.as_ref().map(|h| h.id.clone());
    let plan = plan_with(&loaded, &observed, settings, live.as_deref())?;
    Ok(Planned {
        loaded,
        session,
        observed,
        plan,
        site,
        lease: held,
    })
}

fn plan_with(
    loaded: &Loaded,
    observed: &Observed,
    settings: PlanSettings,
    live_lease: Option<&str>,
) -> Result<Plan, Error> {
    let input = PlanInput {
        desired: &loaded.desired,
        digests: &loaded.digests,
        observed,
        settings,
        live_lease,
    };
    plan::plan(&input).map_err(Error::Plan)
}

/// Reads the desired state, observes the cloud and plans: what `plan` does.
pub async fn plan(
    spec: &RepoSpec,
    os_cloud: Option<&str>,
    settings: PlanSettings,
    warn: impl Fn(&str),
) -> Result<Planned, Error> {
    let loaded = super::load(spec)?;
    plan_loaded(loaded, os_cloud, settings, warn).await
}

/// Where `apply` gets its plan.
pub enum ApplyFrom<'a> {
    /// Planned now, under the lease, from the desired state at `spec`.
    Fresh {
        /// The desired state.
        spec: &'a RepoSpec,
        /// The planner's settings (the site among them).
        settings: PlanSettings,
    },
    /// A plan saved by `plan --out`: its commit read again, and the cloud observed under
    /// the lease and compared with the plan's fingerprints.
    Saved {
        /// The plan file.
        path: &'a Path,
        /// Its content.
        saved: Box<SavedPlan>,
        /// Source options (the cache folder) for reading its commit.
        spec: &'a RepoSpec,
        /// The site, for a plan saved before plans named theirs.
        site: String,
    },
}

/// How an `apply` ended.
pub enum ApplyOutcome {
    /// The plan was shown and not approved.
    Declined(Box<Planned>),
    /// The plan was carried out (an empty plan: nothing was done).
    Done(Box<Planned>, Applied),
}

/// What an `apply` runs with besides its plan.
pub struct ApplyContext<'a> {
    /// The cloud (`--os-cloud`; for a saved plan, its cloud unless given).
    pub os_cloud: Option<&'a str>,
    /// The lease's TTL and wait (the operation and commit are filled in).
    pub lease: LeaseOptions,
    /// Told what happens to the lease.
    pub events: Events<'a>,
    /// Told what happens to each action.
    pub reporter: &'a dyn Reporter,
    /// Actions of one phase in flight.
    pub concurrency: usize,
    /// Set to stop (Ctrl-C, SIGTERM): the wait for the lease ends, no further action
    /// starts, and the lease is given back.
    pub stop: &'a AtomicBool,
}

/// `apply`: takes the site's lease, then plans (or checks the saved plan against what
/// the cloud holds now), asks `review` (shown the fresh plan; `false`: not applied),
/// carries the plan out under the lease and gives the lease back. A saved plan whose
/// objects moved is refused ([`Error::StalePlan`]) before anything changes.
pub async fn apply_locked(
    from: ApplyFrom<'_>,
    context: &ApplyContext<'_>,
    review: impl FnOnce(&Planned) -> Result<bool, Error>,
    warn: impl Fn(&str),
) -> Result<ApplyOutcome, Error> {
    let (loaded, cloud, site, settings, saved) = match from {
        ApplyFrom::Fresh { spec, settings } => (
            super::load(spec)?,
            context.os_cloud.map(str::to_owned),
            settings.site.clone(),
            Some(settings),
            None,
        ),
        ApplyFrom::Saved {
            path,
            saved,
            spec,
            site,
        } => {
            let mut source = spec.clone();
            source.repo = saved.repo.clone();
            source.dir = saved.dir.clone();
            source.worktree = saved.worktree;
            source.reference = saved.plan.commit.clone();
            let cloud = context
                .os_cloud
                .map_or_else(|| saved.cloud.clone(), str::to_owned);
            let site = saved.site.clone().unwrap_or(site);
            (
                super::load(&source)?,
                Some(cloud),
                site,
                None,
                Some((path, *saved)),
            )
        }
    };
    let session = super::connect(cloud.as_deref(), Needs::Cloud, warn).await?;
    let scope = Scope::Site(site.clone());
    let options = LeaseOptions {
        operation: if saved.is_some() {
            "apply FILE".into()
        } else {
            "apply".into()
        },
        ..context.lease.with_commit(loaded.desired.commit.as_deref())
    };
    let fresh = settings.is_some();
    let stop = || context.stop.load(Ordering::SeqCst);
    let lease = lease::acquire(&session, &scope, &options, context.events, &stop).await?;
    let outcome = async {
        let observed = crate::cloud::observe::observe(&session).await?;
        let plan = match (settings, saved) {
            (Some(settings), _) => plan_with(&loaded, &observed, settings, Some(lease.id()))?,
            (None, Some((path, saved))) => {
                let changes = stale::changes(&saved.plan.fingerprints, &observed);
                if !changes.is_empty() {
                    let explained = changes
                        .iter()
                        .map(|c| stale::explain(c, saved.seen.as_ref(), &observed))
                        .collect();
                    return Err(Error::StalePlan {
                        path: path.display().to_string(),
                        changes,
                        explained,
                    });
                }
                saved.plan
            }
            (None, None) => unreachable!("a fresh apply has settings"),
        };
        let planned = Planned {
            loaded,
            session,
            observed,
            plan,
            site,
            lease: None,
        };
        if fresh && !review(&planned)? {
            return Ok(ApplyOutcome::Declined(Box::new(planned)));
        }
        if !planned.plan.has_changes() {
            return Ok(ApplyOutcome::Done(Box::new(planned), Applied::default()));
        }
        let scratch =
            tempfile::tempdir().map_err(Error::io("making a scratch folder for uploads"))?;
        let files = SnapshotFiles {
            snapshot: &planned.loaded.snapshot,
            scratch: scratch.path().to_owned(),
        };
        let halted = || {
            if stop() {
                return Some("interrupted".to_owned());
            }
            lease.lost()
        };
        let under = Under {
            lease: Some(lease.id()),
            halted: &halted,
        };
        let applied = apply::apply_under(
            &planned.plan,
            &planned.session,
            &files,
            context.reporter,
            context.concurrency,
            &under,
        )
        .await;
        Ok(ApplyOutcome::Done(Box::new(planned), applied))
    }
    .await;
    lease::finish(lease, context.events).await;
    outcome
}
