//! The central view of every rollout (`fpga-sync rollout status`, and the end of the
//! central `plan`): the desired state read, the fleet's device providers found by their
//! traits (a handful of listings whatever the fleet's size: every provider fpga-sync
//! manages, the failed ones, the withdrawn ones, and those verified with each bitstream),
//! and each rollout's budget → [`crate::host::plan::rollout_view::views`] (pure). I/O: the
//! repository, Placement.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::try_join_all;

use super::super::{Error, Loaded, Needs};
use crate::cloud::CloudError;
use crate::cloud::placement::Placement;
use crate::desired::Desired;
use crate::host::plan::assignment::Target;
use crate::host::plan::provider::{
    self, FAILED_TRAIT, OWNER_TRAIT, VERIFIED_TRAIT, WITHDRAWN_TRAIT,
};
use crate::host::plan::rollout::{self, Budget, UnitId};
use crate::host::plan::rollout_view::{self, RolloutView};
use crate::host::report::budget;
use crate::observed::ObservedProvider;
use crate::source::RepoSpec;

/// Every rollout of the desired state, as the fleet reports it.
pub struct Status {
    /// The desired state.
    pub loaded: Loaded,
    /// The cloud's name.
    pub cloud: String,
    /// The rollouts.
    pub views: Vec<RolloutView>,
}

/// Reads the desired state and Placement, and views every rollout.
pub async fn status(
    spec: &RepoSpec,
    os_cloud: Option<&str>,
    site: &str,
    warn: impl Fn(&str),
) -> Result<Status, Error> {
    let loaded = super::super::load(spec)?;
    let session = super::super::connect(os_cloud, Needs::Placement, warn).await?;
    let placement = Placement::new(&session);
    let targets = super::super::host::targets_of(&loaded, &spec.cache_dir);
    let providers = fleet_providers(&placement, &targets).await?;
    let budgets = budgets(&placement, &loaded.desired, site).await?;
    let views = rollout_view::views(&loaded.desired, &targets, &providers, &budgets, site);
    Ok(Status {
        loaded,
        cloud: session.cloud_name().to_owned(),
        views,
    })
}

/// The budget of every rollout of `desired` that has one in Placement, by rollout key.
pub async fn budgets(
    placement: &Placement<'_>,
    desired: &Desired,
    site: &str,
) -> Result<BTreeMap<String, Budget>, CloudError> {
    let mut units = Vec::new();
    for g in desired.host_groups.values().map(|g| &g.spec) {
        if g.rollout.is_some() {
            units.push(UnitId {
                group: g.name.clone(),
                override_index: None,
            });
        }
        for (i, o) in g.overrides.iter().enumerate() {
            if o.rollout.is_some() {
                units.push(UnitId {
                    group: g.name.clone(),
                    override_index: Some(i),
                });
            }
        }
    }
    let mut out = BTreeMap::new();
    for unit in units {
        if let Some(p) = budget::find(placement, &rollout::budget_name(site, &unit)).await? {
            out.insert(unit.key(), budget::read(placement, &p.uuid).await?);
        }
    }
    Ok(out)
}

/// The device providers fpga-sync manages, with the traits the view reads (ownership,
/// verified with which bitstream, failed, withdrawn), found by trait: a few listings
/// instead of reading every provider.
async fn fleet_providers(
    placement: &Placement<'_>,
    targets: &BTreeMap<String, Target>,
) -> Result<Vec<ObservedProvider>, CloudError> {
    let list =
        |traits: Vec<String>| async move { budget::providers_with(placement, &traits).await };
    let owned = list(vec![OWNER_TRAIT.to_owned()]).await?;
    let failed: BTreeSet<String> = list(vec![OWNER_TRAIT.to_owned(), FAILED_TRAIT.to_owned()])
        .await?
        .into_iter()
        .collect();
    let withdrawn: BTreeSet<String> =
        list(vec![OWNER_TRAIT.to_owned(), WITHDRAWN_TRAIT.to_owned()])
            .await?
            .into_iter()
            .collect();
    let partials: Vec<&Target> = targets.values().filter(|t| !t.is_shell()).collect();
    let verified = try_join_all(partials.iter().map(|t| {
        list(vec![
            OWNER_TRAIT.to_owned(),
            VERIFIED_TRAIT.to_owned(),
            provider::bitstream_trait(t),
        ])
    }))
    .await?;
    Ok(owned
        .into_iter()
        .map(|name| {
            let mut traits = BTreeSet::from([OWNER_TRAIT.to_owned()]);
            if failed.contains(&name) {
                traits.insert(FAILED_TRAIT.to_owned());
            }
            if withdrawn.contains(&name) {
                traits.insert(WITHDRAWN_TRAIT.to_owned());
            }
            for (t, names) in partials.iter().zip(&verified) {
                if names.contains(&name) {
                    traits.insert(VERIFIED_TRAIT.to_owned());
                    traits.insert(provider::bitstream_trait(t));
                }
            }
            ObservedProvider {
                uuid: String::new(),
                name,
                generation: 0,
                parent: None,
                inventories: BTreeMap::new(),
                traits,
            }
        })
        .collect())
}
