//! Placement I/O of the host agent: finds the host's compute-node provider, reads the FPGA
//! device providers under it, and writes one device provider's traits and inventories.
//! I/O: Placement over HTTP.
//!
//! The tree has Cyborg's shape: the compute node that nova-compute registered is the root,
//! and each device is a child provider of it (named `<host>_<BDF>` by Cyborg). Writes merge
//! with what other writers put there and retry on generation conflicts (the client's
//! [`Placement::update_provider_traits`] and [`Placement::update_inventories`]).

pub mod budget;
pub mod ledger;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use futures_util::future::{try_join_all, try_join3};

use crate::cloud::error::CloudError;
use crate::cloud::placement::{CONFLICT_RETRIES, Inventory, Placement, Provider};
use crate::host::plan::ProviderState;
use crate::host::plan::consumer::Consumer;
use crate::host::plan::provider::ProviderTarget;

/// The compute-node provider of a host could not be chosen.
#[derive(Debug)]
pub enum ComputeNodeError {
    /// No provider matches the host.
    NotFound {
        /// The host name given.
        host: String,
        /// What was tried, in order, for the message.
        tried: Vec<String>,
    },
    /// Several root providers match the host's short name.
    Ambiguous {
        /// The host name given.
        host: String,
        /// The candidates: name and uuid.
        candidates: Vec<(String, String)>,
    },
    /// Placement could not be read.
    Cloud(CloudError),
}

impl ComputeNodeError {
    /// Whether asking again may find it: nova-compute may not have registered the node
    /// yet, or Placement was down.
    pub fn is_transient(&self) -> bool {
        match self {
            ComputeNodeError::NotFound { .. } => true,
            ComputeNodeError::Ambiguous { .. } => false,
            ComputeNodeError::Cloud(e) => e.is_transient(),
        }
    }

    /// How to fix it, when something can be said.
    pub fn help(&self) -> Option<String> {
        match self {
            ComputeNodeError::NotFound { .. } => Some(
                "the host's nova-compute must have registered its compute node in Placement; \
                 otherwise pass `--host` with the name `openstack resource provider list` shows"
                    .into(),
            ),
            ComputeNodeError::Ambiguous { .. } => Some(
                "pass `--host` with the exact name `openstack resource provider list` shows".into(),
            ),
            ComputeNodeError::Cloud(e) => e.help(),
        }
    }
}

impl fmt::Display for ComputeNodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeNodeError::NotFound { host, tried } => write!(
                f,
                "no compute-node resource provider for host `{host}` in Placement (tried {}); \
                 the host's nova-compute must have registered it, or pass `--host` with the name \
                 `openstack resource provider list` shows",
                tried.join(", ")
            ),
            ComputeNodeError::Ambiguous { host, candidates } => {
                let list: Vec<String> = candidates
                    .iter()
                    .map(|(name, uuid)| format!("`{name}` ({uuid})"))
                    .collect();
                write!(
                    f,
                    "host `{host}` matches several root resource providers in Placement: {}; \
                     pass `--host` with the exact name",
                    list.join(", ")
                )
            }
            ComputeNodeError::Cloud(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ComputeNodeError {}

impl From<CloudError> for ComputeNodeError {
    fn from(e: CloudError) -> Self {
        ComputeNodeError::Cloud(e)
    }
}

impl From<ComputeNodeError> for crate::diagnostic::Diagnostic {
    fn from(e: ComputeNodeError) -> Self {
        let d = crate::diagnostic::Diagnostic::error("fpga_sync::host", e.to_string());
        match e.help() {
            Some(help) => d.help(help),
            None => d,
        }
    }
}

/// The part of a host name before its first dot.
fn short_name(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// The host's compute-node provider: the provider named exactly `host`; else, when `host`
/// has dots, the one named by its short name; else the one root provider (no parent) whose
/// name's short form equals `host`'s short form, ignoring ASCII case (nova-compute may
/// register `compute-01.example.org` while the operator says `compute-01`, or the reverse).
pub async fn find_compute_node(
    placement: &Placement<'_>,
    host: &str,
) -> Result<Provider, ComputeNodeError> {
    let mut tried = vec![format!("the name `{host}`")];
    if let Some(p) = placement
        .providers(Some(host), None)
        .await?
        .into_iter()
        .next()
    {
        return Ok(p);
    }
    let short = short_name(host);
    if short != host && !short.is_empty() {
        tried.push(format!("the short name `{short}`"));
        if let Some(p) = placement
            .providers(Some(short), None)
            .await?
            .into_iter()
            .next()
        {
            return Ok(p);
        }
    }
    tried.push(format!("root providers whose short name is `{short}`"));
    let mut candidates: Vec<Provider> = placement
        .providers(None, None)
        .await?
        .into_iter()
        .filter(|p| p.parent_provider_uuid.is_none())
        .filter(|p| short_name(&p.name).eq_ignore_ascii_case(short))
        .collect();
    candidates.sort_by(|a, b| a.name.cmp(&b.name));
    match candidates.len() {
        0 => Err(ComputeNodeError::NotFound {
            host: host.to_owned(),
            tried,
        }),
        1 => Ok(candidates.remove(0)),
        _ => Err(ComputeNodeError::Ambiguous {
            host: host.to_owned(),
            candidates: candidates.into_iter().map(|p| (p.name, p.uuid)).collect(),
        }),
    }
}

/// Every provider in the compute node's tree except the compute node itself, with its
/// traits, inventories and consumers (by id only: who they are is
/// `reconcile::consumers`' to find out), sorted by name. The reads run
/// concurrently (the session bounds how many are in flight).
pub async fn device_providers(
    placement: &Placement<'_>,
    compute_node_uuid: &str,
) -> Result<Vec<ProviderState>, CloudError> {
    let tree = placement.providers(None, Some(compute_node_uuid)).await?;
    let reads = tree
        .into_iter()
        .filter(|p| p.uuid != compute_node_uuid)
        .map(|p| async move {
            let read = try_join3(
                placement.provider_traits(&p.uuid),
                placement.inventories(&p.uuid),
                placement.allocations(&p.uuid),
            )
            .await;
            let (traits, inventories, allocations) = match read {
                Ok(r) => r,
                // Deleted between the listing and this read: it is not there any more.
                Err(e) if e.status() == Some(404) => return Ok(None),
                Err(e) => return Err(e),
            };
            Ok::<_, CloudError>(Some(ProviderState {
                uuid: p.uuid,
                name: p.name,
                traits: traits.1,
                inventories: inventories.1,
                allocations: allocations.len(),
                consumers: allocations.into_keys().map(Consumer::id).collect(),
            }))
        });
    let mut devices: Vec<ProviderState> =
        try_join_all(reads).await?.into_iter().flatten().collect();
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(devices)
}

/// The device providers read on earlier passes, with the provider generation they were
/// read at. Placement bumps a provider's generation on every change of its traits,
/// inventories or allocations, so an unchanged generation means an unchanged provider.
#[derive(Clone, Debug, Default)]
pub struct ProviderCache {
    entries: BTreeMap<String, (u64, ProviderState)>,
}

/// [`device_providers`] through a cache: one request lists the compute node's tree with
/// every provider's generation, and only the providers whose generation moved (or that are
/// new) are read again. `None` when the tree is empty: the compute node is gone (deleted,
/// or registered again under another uuid).
pub async fn device_providers_cached(
    placement: &Placement<'_>,
    compute_node_uuid: &str,
    cache: &mut ProviderCache,
) -> Result<Option<Vec<ProviderState>>, CloudError> {
    let tree = placement.providers(None, Some(compute_node_uuid)).await?;
    if tree.is_empty() {
        cache.entries.clear();
        return Ok(None);
    }
    let stale: Vec<Provider> = tree
        .iter()
        .filter(|p| p.uuid != compute_node_uuid)
        .filter(|p| {
            cache
                .entries
                .get(&p.uuid)
                .is_none_or(|(g, _)| *g != p.generation)
        })
        .cloned()
        .collect();
    let reads = stale.into_iter().map(|p| async move {
        match read_provider(placement, &p).await {
            Ok(state) => Ok(state.map(|s| (p.uuid.clone(), (p.generation, s)))),
            Err(e) => Err(e),
        }
    });
    for (uuid, entry) in try_join_all(reads).await?.into_iter().flatten() {
        cache.entries.insert(uuid, entry);
    }
    let live: BTreeSet<&str> = tree.iter().map(|p| p.uuid.as_str()).collect();
    cache.entries.retain(|uuid, _| live.contains(uuid.as_str()));
    let mut devices: Vec<ProviderState> = cache.entries.values().map(|(_, s)| s.clone()).collect();
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(devices))
}

/// One provider's traits, inventories and consumers; `None` when it was deleted meanwhile.
async fn read_provider(
    placement: &Placement<'_>,
    p: &Provider,
) -> Result<Option<ProviderState>, CloudError> {
    let read = try_join3(
        placement.provider_traits(&p.uuid),
        placement.inventories(&p.uuid),
        placement.allocations(&p.uuid),
    )
    .await;
    let (traits, inventories, allocations) = match read {
        Ok(r) => r,
        Err(e) if e.status() == Some(404) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(ProviderState {
        uuid: p.uuid.clone(),
        name: p.name.clone(),
        traits: traits.1,
        inventories: inventories.1,
        allocations: allocations.len(),
        consumers: allocations.into_keys().map(Consumer::id).collect(),
    }))
}

/// Writes one device provider: creates it under `parent_uuid` when `existing` is `None`,
/// creates the missing custom traits and resource classes, then converges it on `traits`
/// and `inventories`. Every current trait for which `owned` is true and that is not in
/// `traits` is removed; other writers' traits stay. Inventories are set to exactly
/// `inventories` (all six fields), and resource classes not in it are removed: the
/// provider is ours. Returns the provider's uuid.
///
/// The order is fixed so that the scheduler never sees a trait for something that is not
/// loaded or has no inventory: (1) traits to remove go first, so the old function stops
/// attracting new instances before anything else changes; (2) then the inventories; (3)
/// the new traits go last, once what they advertise is in place. Between steps the
/// provider advertises less than it has, never more.
///
/// A provider of that name outside `parent_uuid` (Placement names are global) is an
/// error naming it; one already under `parent_uuid` (created after `existing` was read) is
/// adopted.
pub async fn write_device_provider(
    placement: &Placement<'_>,
    parent_uuid: &str,
    existing: Option<&ProviderState>,
    want: &ProviderTarget,
    owned: impl Fn(&str) -> bool,
) -> Result<String, CloudError> {
    let (name, traits, inventories) = (&want.name, &want.traits, &want.inventories);
    let uuid = match existing {
        Some(p) => p.uuid.clone(),
        None => create_under(placement, parent_uuid, name).await?,
    };
    for t in traits.iter().filter(|t| t.starts_with("CUSTOM_")) {
        placement.ensure_trait(t).await?;
    }
    for rc in inventories.keys().filter(|rc| rc.starts_with("CUSTOM_")) {
        placement.ensure_resource_class(rc).await?;
    }

    // (1) Our traits that are no longer wanted.
    let (_, current) = placement.provider_traits(&uuid).await?;
    let remove: BTreeSet<String> = current
        .iter()
        .filter(|t| owned(t) && !traits.contains(*t))
        .cloned()
        .collect();
    if !remove.is_empty() {
        placement
            .update_provider_traits(&uuid, &BTreeSet::new(), &remove)
            .await?;
    }

    // (2) Inventories: exactly the given ones.
    let (_, current) = placement.inventories(&uuid).await?;
    let stale: BTreeSet<String> = current
        .keys()
        .filter(|rc| !inventories.contains_key(*rc))
        .cloned()
        .collect();
    placement
        .update_inventories(&uuid, inventories, &stale)
        .await?;

    // (3) The wanted traits.
    if !traits.is_empty() {
        placement
            .update_provider_traits(&uuid, traits, &BTreeSet::new())
            .await?;
    }
    Ok(uuid)
}

/// Creates `name` under `parent_uuid`, or adopts it when it is already there.
async fn create_under(
    placement: &Placement<'_>,
    parent_uuid: &str,
    name: &str,
) -> Result<String, CloudError> {
    let err = match placement
        .create_provider(name, None, Some(parent_uuid))
        .await
    {
        Ok(p) => return Ok(p.uuid),
        Err(e) if e.status() == Some(409) => e,
        Err(e) => return Err(e),
    };
    let holder = placement
        .providers(Some(name), None)
        .await?
        .into_iter()
        .next();
    if let Some(p) = &holder
        && p.parent_provider_uuid.as_deref() == Some(parent_uuid)
    {
        return Ok(p.uuid.clone());
    }
    let where_ = match holder {
        Some(p) => match p.parent_provider_uuid {
            Some(parent) => format!("as {} under provider {parent}", p.uuid),
            None => format!("as root provider {}", p.uuid),
        },
        None => "elsewhere".to_owned(),
    };
    Err(match err {
        CloudError::Status {
            service,
            request,
            status,
            message,
            request_id,
        } => CloudError::Status {
            service,
            request,
            status,
            message: format!(
                "resource provider `{name}` exists already {where_}, not under this host's compute node {parent_uuid}: {message}"
            ),
            request_id,
        },
        other => other,
    })
}

/// The consumers that hold allocations against a provider now, by id.
pub async fn consumers(placement: &Placement<'_>, uuid: &str) -> Result<Vec<String>, CloudError> {
    Ok(placement.allocations(uuid).await?.into_keys().collect())
}

/// Sets `reserved = total` on every inventory of the provider, so that nothing new is
/// scheduled there while it is being programmed. Merges with the current inventories (a
/// concurrent change of a total is kept) and retries on generation conflicts.
pub async fn reserve_all(placement: &Placement<'_>, uuid: &str) -> Result<(), CloudError> {
    let mut attempt = 0;
    loop {
        let (generation, current) = placement.inventories(uuid).await?;
        let wanted: BTreeMap<String, Inventory> = current
            .iter()
            .map(|(rc, inv)| {
                (
                    rc.clone(),
                    Inventory {
                        reserved: inv.total,
                        ..*inv
                    },
                )
            })
            .collect();
        if wanted == current {
            return Ok(());
        }
        match placement.set_inventories(uuid, generation, &wanted).await {
            Err(e) if e.status() == Some(409) && attempt < CONFLICT_RETRIES => attempt += 1,
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
}

/// What [`remove_device_provider`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The provider is gone (or already was).
    Removed,
    /// Consumers hold allocations against it: it stays.
    InUse {
        /// How many.
        consumers: usize,
    },
}

/// Deletes a device provider unless a consumer holds an allocation against it. The
/// allocations are read again (the caller's view may be old); an allocation made between
/// that read and the delete makes Placement refuse with 409, which is also
/// [`Removal::InUse`].
pub async fn remove_device_provider(
    placement: &Placement<'_>,
    provider: &ProviderState,
) -> Result<Removal, CloudError> {
    let consumers = match placement.allocations(&provider.uuid).await {
        Ok(a) => a.len(),
        Err(e) if e.status() == Some(404) => return Ok(Removal::Removed),
        Err(e) => return Err(e),
    };
    if consumers > 0 {
        return Ok(Removal::InUse { consumers });
    }
    match placement.delete_provider(&provider.uuid).await {
        Ok(()) => Ok(Removal::Removed),
        Err(e) if e.status() == Some(404) => Ok(Removal::Removed),
        Err(e) if e.status() == Some(409) => {
            let consumers = placement.allocations(&provider.uuid).await?.len();
            if consumers > 0 {
                Ok(Removal::InUse { consumers })
            } else {
                // Not allocations (children, say): say what Placement said.
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}
