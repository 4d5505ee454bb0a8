//! The central pipeline, as `plan` and `apply` run it: the desired state at a commit → the
//! cloud observed (Glance, Placement, Nova) → [`crate::plan::plan`] (pure) →
//! [`crate::apply::apply`], which tells a reporter. Also the fleet view the central plan
//! ends with, and saved plans: checked for staleness against a fresh observation before
//! they are carried out. I/O: the repository, the cloud, the header cache, the plan file.

use std::path::Path;

use super::{Error, Loaded, Needs, SavedPlan, SnapshotFiles};
use crate::apply::{self, Applied, Reporter};
use crate::cloud::session::Session;
use crate::host::plan::fleet::{self, FleetSlot};
use crate::host::plan::rollout_view::{self, RolloutView};
use crate::observed::Observed;
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
    /// The plan as `plan --out` saves it, with where it came from.
    pub fn saved(&self, spec: &RepoSpec, repo: &str) -> SavedPlan {
        SavedPlan {
            format_version: plan::FORMAT_VERSION,
            repo: repo.to_owned(),
            dir: spec.dir.clone(),
            worktree: spec.worktree,
            cloud: self.session.cloud_name().to_owned(),
            plan: self.plan.clone(),
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
    /// what the repository assigns (header identities from `cache_dir`). Empty without
    /// host groups.
    pub fn fleet(&self, cache_dir: &Path) -> Vec<FleetSlot> {
        if self.loaded.desired.host_groups.is_empty() {
            return Vec::new();
        }
        let targets = super::host::targets_of(&self.loaded, cache_dir);
        fleet::fleet(&self.loaded.desired, &targets, &self.observed.providers)
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
