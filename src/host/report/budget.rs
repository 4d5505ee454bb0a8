//! The Placement side of a rollout (see `host::plan::rollout`): the budget provider of a
//! rollout (a root provider named `fpga-sync-rollout:<site>:<group>` whose inventory of
//! `CUSTOM_FPGA_SYNC_ROLLOUT` holds `max_unavailable` units and whose traits hold the
//! record the first host resolved), the units hosts hold through allocations against it,
//! and the fleet's device providers found by their traits. I/O: Placement over HTTP.
//!
//! Taking a unit is a compare-and-swap: an allocation of one unit for a new consumer
//! (`consumer_generation: null`) that Placement refuses with 409 when the inventory is
//! used up or the consumer exists. A holder renews its unit by writing the same
//! allocation with its consumer generation, which bumps it; another host that sees a
//! consumer generation unchanged for the lease (on its own clock) deletes that
//! allocation, guarded by the generation it saw, so a renewal in between wins.
//! Allocations are read and written at Placement's consumer microversion (1.38, as the
//! lease's and claims' are): consumer generations, and the consumer type
//! `FPGA_SYNC_ROLLOUT` that tells a unit's holder apart from Nova's servers, claims and
//! leases.

use std::collections::{BTreeMap, BTreeSet};

use crate::cloud::error::CloudError;
use crate::cloud::placement::{ConsumerOwner, ConsumerWrite, Inventory, Placement, Provider};
use crate::host::plan::rollout::{Budget, Holder, ROLLOUT_CONSUMER_TYPE, UNIT_CLASS};

/// The budget provider named `name`: found, or created (root provider, the budget trait);
/// returns its uuid.
pub async fn ensure(placement: &Placement<'_>, name: &str) -> Result<String, CloudError> {
    if let Some(p) = placement.providers(Some(name), None).await?.pop() {
        return Ok(p.uuid);
    }
    let uuid = match placement.create_provider(name, None, None).await {
        Ok(p) => p.uuid,
        // Another host created it first.
        Err(e) if e.status() == Some(409) => {
            match placement.providers(Some(name), None).await?.pop() {
                Some(p) => p.uuid,
                None => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    placement.ensure_resource_class(UNIT_CLASS).await?;
    placement.ensure_trait(UNIT_CLASS).await?;
    placement
        .update_provider_traits(
            &uuid,
            &BTreeSet::from([UNIT_CLASS.to_owned()]),
            &BTreeSet::new(),
        )
        .await?;
    Ok(uuid)
}

/// The budget provider named `name`, if it exists.
pub async fn find(placement: &Placement<'_>, name: &str) -> Result<Option<Provider>, CloudError> {
    Ok(placement.providers(Some(name), None).await?.pop())
}

/// Reads a budget provider: its traits, its unit inventory and who holds units.
pub async fn read(placement: &Placement<'_>, uuid: &str) -> Result<Budget, CloudError> {
    let ((_, traits), (_, inventories), holders) = tokio::try_join!(
        placement.provider_traits(uuid),
        placement.inventories(uuid),
        holders(placement, uuid)
    )?;
    Ok(Budget {
        uuid: uuid.to_owned(),
        traits,
        total: inventories
            .get(UNIT_CLASS)
            .map(|i| u32::try_from(i.total).unwrap_or(u32::MAX)),
        holders,
    })
}

/// The consumers holding units of a budget, with their consumer generations.
pub async fn holders(placement: &Placement<'_>, uuid: &str) -> Result<Vec<Holder>, CloudError> {
    Ok(placement
        .provider_consumers(uuid)
        .await?
        .into_iter()
        .filter(|(_, c)| c.resources.get(UNIT_CLASS).is_some_and(|n| *n > 0))
        .map(|(consumer, c)| Holder {
            consumer,
            generation: c.consumer_generation.unwrap_or_default(),
        })
        .collect())
}

/// Publishes a record on a budget provider: the unit inventory's total, then the traits
/// (the record's and the canaries', replacing those of an older record), both guarded
/// by the provider generation. Returns `false` when another host changed the provider
/// first (read it again and follow what is there).
pub async fn publish(
    placement: &Placement<'_>,
    uuid: &str,
    total: u32,
    traits: &BTreeSet<String>,
    record_prefixes: &[&str],
) -> Result<bool, CloudError> {
    for t in traits {
        placement.ensure_trait(t).await?;
    }
    let (generation, mut inventories) = placement.inventories(uuid).await?;
    let wanted = Inventory {
        total: u64::from(total),
        reserved: 0,
        min_unit: 1,
        max_unit: u64::from(total),
        step_size: 1,
        allocation_ratio: 1.0,
    };
    if inventories.get(UNIT_CLASS) != Some(&wanted) {
        inventories.insert(UNIT_CLASS.to_owned(), wanted);
        match placement
            .set_inventories(uuid, generation, &inventories)
            .await
        {
            Err(e) if e.status() == Some(409) => return Ok(false),
            other => {
                other?;
            }
        }
    }
    let (generation, current) = placement.provider_traits(uuid).await?;
    let mut next: BTreeSet<String> = current
        .into_iter()
        .filter(|t| !record_prefixes.iter().any(|p| t.starts_with(p)))
        .collect();
    next.extend(traits.iter().cloned());
    match placement.set_provider_traits(uuid, generation, &next).await {
        Err(e) if e.status() == Some(409) => Ok(false),
        Err(e) => Err(e),
        Ok(_) => Ok(true),
    }
}

/// What taking a unit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Held, at this consumer generation.
    Held(u64),
    /// The budget is used up (or the consumer is taken): not held.
    Full,
}

/// Who holds a unit: the site's project, the host as the user, the rollout's type.
fn owner(project: &str, user: &str) -> ConsumerOwner {
    ConsumerOwner {
        project_id: project.to_owned(),
        user_id: user.to_owned(),
        consumer_type: ROLLOUT_CONSUMER_TYPE.to_owned(),
    }
}

/// One unit of `budget`.
fn one_unit(budget: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    BTreeMap::from([(
        budget.to_owned(),
        BTreeMap::from([(UNIT_CLASS.to_owned(), 1)]),
    )])
}

/// Takes one unit of the budget for `consumer` (`project` and `user` name the site and
/// the host for people reading Placement): Placement's capacity check makes it a
/// compare-and-swap. A request retried after it had in fact succeeded finds the unit
/// held already.
pub async fn take(
    placement: &Placement<'_>,
    budget: &str,
    consumer: &str,
    project: &str,
    user: &str,
) -> Result<Taken, CloudError> {
    match placement
        .set_consumer_allocations(consumer, &one_unit(budget), None, &owner(project, user))
        .await
    {
        Ok(_) => {}
        Err(e) if e.status() == Some(409) => {}
        Err(e) => return Err(e),
    }
    Ok(
        match holders(placement, budget)
            .await?
            .into_iter()
            .find(|h| h.consumer == consumer)
        {
            Some(h) => Taken::Held(h.generation),
            None => Taken::Full,
        },
    )
}

/// What renewing a unit found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewed {
    /// Renewed: the new consumer generation.
    Held(u64),
    /// The unit is gone: another host took it back (the lease ran out without a renewal).
    Lost,
}

/// Renews a unit: the same allocation written with the consumer generation last seen,
/// which bumps it. A 409 means the consumer changed: gone (taken back) or renewed
/// elsewhere; the listing says which.
pub async fn renew(
    placement: &Placement<'_>,
    budget: &str,
    consumer: &str,
    generation: u64,
    project: &str,
    user: &str,
) -> Result<Renewed, CloudError> {
    match placement
        .set_consumer_allocations(
            consumer,
            &one_unit(budget),
            Some(generation),
            &owner(project, user),
        )
        .await
    {
        Ok(_) => Ok(Renewed::Held(generation + 1)),
        Err(e) if e.status() == Some(409) => Ok(
            match holders(placement, budget)
                .await?
                .into_iter()
                .find(|h| h.consumer == consumer)
            {
                Some(h) => Renewed::Held(h.generation),
                None => Renewed::Lost,
            },
        ),
        Err(e) => Err(e),
    }
}

/// Gives a unit back.
pub async fn release(placement: &Placement<'_>, consumer: &str) -> Result<(), CloudError> {
    match placement.delete_consumer(consumer).await {
        Err(e) if e.status() == Some(404) => Ok(()),
        other => other,
    }
}

/// Takes back the unit of a holder whose lease ran out, if it is still at `generation`
/// (deleting its allocations, guarded by that consumer generation). `false`: it renewed
/// meanwhile, or someone else took it back first.
pub async fn reclaim(
    placement: &Placement<'_>,
    holder: &Holder,
    project: &str,
) -> Result<bool, CloudError> {
    let write = ConsumerWrite {
        allocations: BTreeMap::new(),
        consumer_generation: Some(holder.generation),
        project_id: project.to_owned(),
        user_id: "fpga-sync-reclaim".to_owned(),
        consumer_type: ROLLOUT_CONSUMER_TYPE.to_owned(),
    };
    match placement
        .set_consumers(&BTreeMap::from([(holder.consumer.clone(), write)]))
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.status() == Some(409) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The names of the providers that carry every one of `traits`. A trait Placement does not
/// know yet is carried by none.
pub async fn providers_with(
    placement: &Placement<'_>,
    traits: &[String],
) -> Result<Vec<String>, CloudError> {
    match placement
        .providers_matching(&[("required", &traits.join(","))])
        .await
    {
        Ok(p) => Ok(p.into_iter().map(|p| p.name).collect()),
        Err(CloudError::Status {
            status: 400,
            message,
            ..
        }) if message.contains("No such trait") => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
