//! `claim` and `release`, the seed's claim API for FPGA developers and for tools that are
//! not Nova. A claim reads the host's slots (the repository, the drivers, the providers
//! below its compute node), asks Placement which of them can take one more unit now
//! (allocation candidates restricted to the host's tree, `in_tree`, microversion 1.31),
//! lets the pure [`crate::host::plan::claim::choose`] pick one, allocates it for the
//! consumer in one generation-guarded write (`PUT /allocations/{consumer}`, consumer type
//! `FPGA_SYNC_CLAIM`, microversion 1.38), then programs the slot when a bitstream or
//! function is asked for and the slot is a `manual` one ([`super::program`]), and reads it
//! back. Anything that fails after the allocation releases it again, so a failed claim
//! holds nothing. The reconciler leaves a claimed slot alone as it does a server's, and
//! names the claim. `release` frees a claim's allocations, and only a claim's: a server's
//! are Nova's. I/O: the repository, the drivers, Placement, Glance (through `program`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::host::{self, HostOptions};
use super::program::{self, ProgramOptions};
use super::{Error, Needs};
use crate::cloud::CloudError;
use crate::cloud::placement::{
    CANDIDATES_MICROVERSION, CONSUMER_MICROVERSION, ConsumerOwner, Placement,
};
use crate::cloud::session::Session;
use crate::diagnostic::Diagnostic;
use crate::host::discover;
use crate::host::driver::{Loaded as Carries, Slot};
use crate::host::plan::assignment::{self, Target};
use crate::host::plan::claim::{self, ClaimInput, ClaimRequest};
use crate::host::plan::consumer::CLAIM_CONSUMER_TYPE;
use crate::host::report;
use crate::source::RepoSpec;

/// What to claim, and where.
pub struct ClaimOptions<'a> {
    /// The agent's options (host, site, drivers, caches).
    pub host: HostOptions,
    /// The cloud (`--os-cloud`).
    pub os_cloud: Option<&'a str>,
    /// A Bitstream of the repository the slot must carry (programmed into a manual slot).
    pub bitstream: Option<&'a str>,
    /// A function (`function_name` of the repository's bitstreams) the slot must carry.
    pub function: Option<&'a str>,
    /// Traits the slot's provider must have.
    pub traits: Vec<String>,
    /// The resource class to allocate one unit of.
    pub resource_class: Option<String>,
    /// The consumer's uuid; a new one when `None`.
    pub consumer: Option<String>,
}

/// A claim made.
#[derive(Clone, Debug, Serialize)]
pub struct Claimed {
    /// The consumer that holds it: give it to `release`.
    pub consumer: String,
    /// The host.
    pub host: String,
    /// The device's PCI address; `null` for an FPGA manager without one.
    pub pci_address: Option<String>,
    /// The device or region (`{"address", "region"}`).
    pub slot: Slot,
    /// The provider allocated from.
    pub provider: String,
    /// Its uuid.
    pub provider_uuid: String,
    /// The resource class allocated (one unit).
    pub resource_class: String,
    /// The bitstream programmed into it by this claim, if any.
    pub programmed: Option<String>,
    /// The bitstream asked for, which it carries.
    pub bitstream: Option<String>,
    /// What the slot reads back now.
    pub carries: Carries,
}

/// A release done.
#[derive(Clone, Debug, Serialize)]
pub struct Released {
    /// The consumer.
    pub consumer: String,
    /// What it held: provider name → resource class → amount.
    pub freed: BTreeMap<String, BTreeMap<String, u64>>,
}

fn fail(message: impl Into<String>, help: impl Into<String>) -> Error {
    Error::other(Diagnostic::error("fpga_sync::claim", message).help(help))
}

/// A new consumer uuid (version 4).
fn new_consumer() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// Who a claim's allocations belong to: the token's project and user, or fpga-sync for a
/// cloud without Keystone.
async fn owner(session: &Session) -> Result<ConsumerOwner, Error> {
    let (project, user) = session.token_owner().await?;
    Ok(ConsumerOwner {
        project_id: project.unwrap_or_else(|| "fpga-sync".to_owned()),
        user_id: user.unwrap_or_else(|| "fpga-sync".to_owned()),
        consumer_type: CLAIM_CONSUMER_TYPE.to_owned(),
    })
}

/// The bitstreams the claim asks for, and how to name them in messages.
fn asked(
    loaded: &super::Loaded,
    targets: &BTreeMap<String, Target>,
    options: &ClaimOptions<'_>,
) -> Result<(Vec<Target>, Option<String>), Error> {
    if let Some(name) = options.bitstream {
        if !loaded.desired.bitstreams.contains_key(name) {
            return Err(fail(
                format!("`{name}` is not a Bitstream of the repository"),
                "give the name of one of its Bitstreams (`fpga-sync validate` lists them), or program a local file with `fpga-sync program`",
            ));
        }
        let t = targets.get(name).ok_or_else(|| {
            fail(
                format!("the file of Bitstream `{name}` cannot be identified"),
                "run `fpga-sync validate` and fix the bitstream file",
            )
        })?;
        return Ok((vec![t.clone()], Some(format!("bitstream `{name}`"))));
    }
    if let Some(function) = options.function {
        let names: BTreeSet<&str> = loaded
            .desired
            .bitstreams
            .values()
            .filter(|b| b.spec.metadata.function_name.as_deref() == Some(function))
            .map(|b| b.spec.name.as_str())
            .collect();
        if names.is_empty() {
            return Err(fail(
                format!("no Bitstream of the repository has `function_name: {function}`"),
                "give a function name the repository's bitstream metadata uses, or `--bitstream NAME`",
            ));
        }
        let found: Vec<Target> = names
            .iter()
            .filter_map(|n| targets.get(*n).cloned())
            .collect();
        return Ok((found, Some(format!("function `{function}`"))));
    }
    Ok((Vec::new(), None))
}

/// Claims a slot: see the module documentation. `notice` is told what happens on the way.
pub async fn claim(
    spec: &RepoSpec,
    options: &ClaimOptions<'_>,
    notice: impl Fn(&str),
) -> Result<Claimed, Error> {
    let consumer = match &options.consumer {
        Some(c) => uuid::Uuid::parse_str(c)
            .map_err(|_| {
                fail(
                    format!("consumer `{c}` is not a uuid"),
                    "Placement consumers are uuids; leave `--consumer` out to get a new one",
                )
            })?
            .to_string(),
        None => new_consumer(),
    };
    let host_name = &options.host.host;
    let loaded = super::load(spec)?;
    let drivers = host::drivers(&loaded, &options.host)?;
    let targets = host::targets_of(&loaded, &options.host.cache_dir);
    let (bitstreams, asked) = asked(&loaded, &targets, options)?;
    let seen = discover::discover(&drivers);
    if let Some(e) = discover::unavailable(&seen) {
        return Err(e.clone().into());
    }
    let found = seen
        .iter()
        .filter_map(|(b, r)| Some((*b, r.as_ref().ok()?.clone())))
        .collect();
    let (assignments, _) = assignment::for_host(&loaded.desired, host_name, &targets, &found);
    let session = super::connect(options.os_cloud, Needs::Placement, |_| {}).await?;
    let placement = Placement::new(&session);
    placement
        .check_version_at(CONSUMER_MICROVERSION)
        .await
        .map_err(Error::Cloud)?;
    let compute = report::find_compute_node(&placement, host_name).await?;
    let mut providers = report::device_providers(&placement, &compute.uuid).await?;
    let request = ClaimRequest {
        resource_class: options.resource_class.clone(),
        traits: options.traits.clone(),
        bitstreams,
        asked,
    };
    let devices = discover::for_planner(&seen);
    let no_offers = BTreeMap::new();
    let (classes, held) = {
        let input = ClaimInput {
            host: host_name,
            assignments: &assignments,
            providers: &providers,
            devices: &devices,
            offered: &no_offers,
        };
        let matching = claim::matching(&input, &request);
        let classes: BTreeSet<String> = matching.iter().map(|m| m.resource_class.clone()).collect();
        let held: BTreeSet<String> = matching
            .iter()
            .flat_map(|m| m.provider.consumers.iter().map(|c| c.id.clone()))
            .collect();
        (classes, held)
    };
    if !held.is_empty() {
        let described = super::consumers::describe(&session, &held).await;
        super::consumers::fill(&mut providers, &described);
    }
    let mut offered = offers(&placement, &compute.uuid, &classes, &options.traits).await?;
    let owner = owner(&session).await?;
    let choice = loop {
        let input = ClaimInput {
            host: host_name,
            assignments: &assignments,
            providers: &providers,
            devices: &devices,
            offered: &offered,
        };
        let choice = claim::choose(&input, &request).map_err(|r| {
            Error::other(Diagnostic::error("fpga_sync::claim", r.message).help(r.help))
        })?;
        let allocation = BTreeMap::from([(
            choice.provider_uuid.clone(),
            BTreeMap::from([(choice.resource_class.clone(), 1)]),
        )]);
        match placement
            .set_consumer_allocations(&consumer, &allocation, None, &owner)
            .await
        {
            Ok(()) => break choice,
            Err(e) if e.status() == Some(409) && is_consumer_conflict(&e) => {
                return Err(fail(
                    format!("consumer `{consumer}` already holds allocations in Placement: {e}"),
                    "give another `--consumer` (or none, for a new one), or release this one first: `fpga-sync release --consumer ID`",
                ));
            }
            // Taken between the candidates and the write: try the next slot.
            Err(e) if e.status() == Some(409) => {
                notice(&format!(
                    "provider `{}` was taken meanwhile ({e}); trying the next slot",
                    choice.provider_name
                ));
                offered.remove(&choice.provider_uuid);
            }
            Err(e) => return Err(e.into()),
        }
    };
    notice(&format!(
        "allocated 1 {} on provider `{}` for consumer {consumer}",
        choice.resource_class, choice.provider_name
    ));
    let finished = finish(spec, options, &drivers, &choice, &notice).await;
    let (programmed, carries) = match finished {
        Ok(done) => done,
        Err(e) => {
            let undone = match free(&placement, &consumer).await {
                Ok(_) => "the allocation was released again".to_owned(),
                Err(r) => format!(
                    "releasing the allocation failed too ({}): run `fpga-sync release --consumer {consumer}`",
                    r.one_line()
                ),
            };
            let mut d = e
                .diagnostics()
                .into_iter()
                .next()
                .unwrap_or_else(|| Diagnostic::error("fpga_sync::claim", "claim failed"));
            d.message = format!("claim failed: {}; {undone}", d.message);
            return Err(Error::other(d));
        }
    };
    Ok(Claimed {
        consumer,
        host: host_name.clone(),
        pci_address: choice.slot.is_pci().then(|| choice.slot.address.clone()),
        slot: choice.slot,
        provider: choice.provider_name,
        provider_uuid: choice.provider_uuid,
        resource_class: choice.resource_class,
        programmed,
        bitstream: choice.carries.or(choice.program).map(|t| t.name),
        carries,
    })
}

/// After the allocation: program a manual slot when asked, then read the slot back and
/// check it carries what was asked. Returns the bitstream programmed and the read-back.
async fn finish(
    spec: &RepoSpec,
    options: &ClaimOptions<'_>,
    drivers: &host::Drivers,
    choice: &claim::ClaimChoice,
    notice: &impl Fn(&str),
) -> Result<(Option<String>, Carries), Error> {
    let mut programmed = None;
    if let Some(target) = &choice.program {
        let mut host = options.host.clone();
        host.force = false;
        let programming = ProgramOptions {
            slot: choice.slot.clone(),
            bitstream: &target.name,
            backend: Some(choice.backend),
            host,
            os_cloud: options.os_cloud,
            // A claim programs only manual slots (claim::choose): never a managed one.
            allow_managed: false,
        };
        let said = program::program(spec, &programming, |n| notice(n)).await?;
        notice(&said);
        programmed = Some(target.name.clone());
    }
    let driver = drivers.get(&choice.backend).ok_or_else(|| {
        fail(
            format!("no driver for the {:?} backend", choice.backend),
            "check the host group's `backend`",
        )
    })?;
    let read = tokio::task::block_in_place(|| driver.read_back(&choice.slot)).map_err(|e| {
        fail(
            format!("reading {} back failed: {e}", choice.slot),
            "check the driver",
        )
    })?;
    if let Some(t) = choice.carries.as_ref().or(choice.program.as_ref())
        && read.id() != Some(t.identity.id)
    {
        return Err(fail(
            format!(
                "{} reads back {read}, not `{}` ({}) as its provider says",
                choice.slot, t.name, t.identity.id
            ),
            "the host agent withdraws the slot on its next pass (`fpga-sync apply --host`); claim again after it",
        ));
    }
    Ok((programmed, read))
}

/// Whether a 409 from an allocation write is about the consumer (it exists, or changed),
/// not about capacity.
fn is_consumer_conflict(e: &CloudError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("consumer generation") || text.contains("consumer_generation")
}

/// Provider uuid → resource class, for every provider below the compute node that
/// Placement offers one unit of a class from, with `traits`.
async fn offers(
    placement: &Placement<'_>,
    compute_node: &str,
    classes: &BTreeSet<String>,
    traits: &[String],
) -> Result<BTreeMap<String, String>, Error> {
    let mut offered = BTreeMap::new();
    for rc in classes {
        let mut query = vec![
            ("resources".to_owned(), format!("{rc}:1")),
            ("in_tree".to_owned(), compute_node.to_owned()),
        ];
        if !traits.is_empty() {
            query.push(("required".to_owned(), traits.join(",")));
        }
        let candidates = placement.allocation_candidates(&query).await.map_err(|e| {
            if matches!(e, CloudError::Microversion { .. }) {
                Error::Cloud(e)
            } else {
                fail(
                    format!("asking Placement for allocation candidates (microversion {CANDIDATES_MICROVERSION}): {e}"),
                    "check that Placement is reachable",
                )
            }
        })?;
        for c in candidates {
            for (uuid, resources) in c {
                if resources.contains_key(rc) {
                    offered.insert(uuid, rc.clone());
                }
            }
        }
    }
    Ok(offered)
}

/// Frees everything `consumer` holds (re-reading it once after a conflict). Returns what
/// it held, by provider uuid.
async fn free(
    placement: &Placement<'_>,
    consumer: &str,
) -> Result<BTreeMap<String, BTreeMap<String, u64>>, Error> {
    let mut attempt = 0;
    loop {
        let held = placement.consumer(consumer).await?;
        if held.allocations.is_empty() {
            return Ok(BTreeMap::new());
        }
        let owner = ConsumerOwner {
            project_id: held
                .project_id
                .clone()
                .unwrap_or_else(|| "fpga-sync".into()),
            user_id: held.user_id.clone().unwrap_or_else(|| "fpga-sync".into()),
            consumer_type: held
                .consumer_type
                .clone()
                .unwrap_or_else(|| CLAIM_CONSUMER_TYPE.into()),
        };
        match placement
            .set_consumer_allocations(consumer, &BTreeMap::new(), held.consumer_generation, &owner)
            .await
        {
            Ok(()) => {
                return Ok(held
                    .allocations
                    .into_iter()
                    .map(|(p, r)| (p, r.resources))
                    .collect());
            }
            Err(e) if e.status() == Some(409) && attempt < 2 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Frees a claim: everything its consumer holds. A consumer that holds nothing, or that
/// is not an fpga-sync claim (a Nova server's allocations are Nova's), is refused.
pub async fn release(os_cloud: Option<&str>, consumer: &str) -> Result<Released, Error> {
    let session = super::connect(os_cloud, Needs::Placement, |_| {}).await?;
    let placement = Placement::new(&session);
    placement
        .check_version_at(CONSUMER_MICROVERSION)
        .await
        .map_err(Error::Cloud)?;
    let held = placement.consumer(consumer).await?;
    if held.allocations.is_empty() {
        return Err(fail(
            format!("consumer `{consumer}` holds no allocations in Placement: nothing to release"),
            "check the consumer id `fpga-sync claim` printed",
        ));
    }
    if held.consumer_type.as_deref() != Some(CLAIM_CONSUMER_TYPE) {
        let kind = held.consumer_type.as_deref().unwrap_or("unknown");
        let ids = BTreeSet::from([consumer.to_owned()]);
        let who = super::consumers::describe(&session, &ids)
            .await
            .remove(consumer)
            .filter(|c| c.server.is_some())
            .map_or(String::new(), |c| format!("; it is Nova's {c}"));
        return Err(fail(
            format!(
                "consumer `{consumer}` is not an fpga-sync claim (its Placement consumer type is `{kind}`{who}): `release` frees only what `fpga-sync claim` allocated"
            ),
            "delete or move a server through Nova; its allocations go with it",
        ));
    }
    let freed = free(&placement, consumer).await?;
    let mut named = BTreeMap::new();
    for (uuid, resources) in freed {
        let name = match placement.provider(&uuid).await {
            Ok(p) => p.name,
            Err(_) => uuid,
        };
        named.insert(name, resources);
    }
    Ok(Released {
        consumer: consumer.to_owned(),
        freed: named,
    })
}
