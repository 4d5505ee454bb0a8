//! `program`, the seed's independent program API for FPGA developers: load a repository
//! bitstream (fetched from Glance into the verified cache) or a local file into one device
//! or region, and read it back. Whether the slot may be touched and whether the image fits
//! are the host planner's rules ([`crate::host::plan::manual`]); a managed slot programmed
//! with `--allow-managed` has its provider withdrawn from scheduling first, as the host agent does,
//! and the next reconcile puts the assigned bitstream back. I/O: the repository, the
//! drivers, Glance and Placement, the bitstream cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::host::{self, HostOptions};
use super::{Error, Loaded, Needs};
use crate::cloud::glance::Glance;
use crate::cloud::placement::Placement;
use crate::desired::host_group::Backend;
use crate::diagnostic::Diagnostic;
use crate::host::discover;
use crate::host::driver::{Loaded as Carries, ProgramRequest, Slot};
use crate::host::execute::fetch::{self, BitstreamCache};
use crate::host::image::ImageIdentity;
use crate::host::plan::assignment::{self, Target};
use crate::host::plan::manual::{self, Refusal};
use crate::host::plan::provider::{self, Withdrawal};
use crate::host::report;
use crate::host::report::ledger::Ledger;
use crate::source::RepoSpec;

/// What to program, and where.
pub struct ProgramOptions<'a> {
    /// The slot.
    pub slot: Slot,
    /// A Bitstream of the repository (by name), or a local bitstream file.
    pub bitstream: &'a str,
    /// The backend that drives the device (default: the one the repository assigns).
    pub backend: Option<Backend>,
    /// Program a slot the repository manages (`--allow-managed`): its provider is drained
    /// first.
    pub allow_managed: bool,
    /// The agent's options (host, site, `force`: program a busy slot, drivers, caches).
    pub host: HostOptions,
    /// The cloud (`--os-cloud`).
    pub os_cloud: Option<&'a str>,
}

fn refused(r: Refusal) -> Error {
    fail(r.message, r.help)
}

fn fail(message: impl Into<String>, help: impl Into<String>) -> Error {
    Error::other(Diagnostic::error("fpga_sync::program", message).help(help))
}

/// Programs and reads back; returns what to tell the user. `notice` is told when a
/// provider was drained.
pub async fn program(
    spec: &RepoSpec,
    options: &ProgramOptions<'_>,
    notice: impl Fn(&str),
) -> Result<String, Error> {
    let slot = &options.slot;
    let host = &options.host.host;
    let loaded = super::load(spec).map_err(|d| {
        let first = d.first().map_or(String::new(), |d| d.message.clone());
        fail(
            format!("the desired state could not be read: {first}"),
            "run `fpga-sync validate` on the repository",
        )
    })?;
    let drivers = discover::host_drivers(&loaded.desired, host, &options.host.drivers)?;
    let targets = host::targets_of(&loaded, &options.host.cache_dir);
    let seen = discover::discover(&drivers);
    if let Some(e) = discover::unavailable(&seen) {
        return Err(e.clone().into());
    }
    let found = seen
        .iter()
        .filter_map(|(b, r)| Some((*b, r.as_ref().ok()?.clone())))
        .collect();
    let (assignments, _) = assignment::for_host(&loaded.desired, host, &targets, &found);
    let assigned = assignments.iter().find(|a| &a.slot == slot);
    let backend = match (options.backend, assigned) {
        (Some(b), _) => b,
        (None, Some(a)) => a.backend,
        (None, None) if drivers.len() == 1 => *drivers.keys().next().expect("one"),
        (None, None) => {
            return Err(fail(
                format!("no host group assigns {slot} on host `{host}`, so its backend is unknown"),
                "give `--backend`",
            ));
        }
    };
    let decision = manual::may_program(slot, assigned, options.allow_managed).map_err(refused)?;
    let driver = drivers.get(&backend).ok_or_else(|| {
        fail(
            format!("host `{host}` runs no {backend:?} backend"),
            "give `--backend`",
        )
    })?;
    let device = seen
        .get(&backend)
        .and_then(|r| r.as_ref().ok())
        .and_then(|ds| ds.iter().find(|d| d.address == slot.address));
    let (file, identity, name, sha256) = image_for(options, &loaded, &targets).await?;
    // A repository bitstream is partial when it has a shell; a local file when its header
    // names the interface it needs.
    let partial = targets
        .get(&name)
        .map_or(identity.requires.is_some(), |t| !t.is_shell());
    manual::fits(slot, device, &name, &identity, options.host.force).map_err(refused)?;
    if decision.drain {
        withdraw(
            options,
            &loaded,
            &drivers,
            &Carries::Id(identity.id),
            &notice,
        )
        .await?;
    }
    let request = ProgramRequest {
        slot,
        image: &file,
        expected: identity.id,
        requires: identity.requires,
        partial,
        force: options.host.force,
        timeout: options.host.timeout,
    };
    tokio::task::block_in_place(|| driver.program(&request)).map_err(|e| {
        fail(
            format!("programming {slot} failed: {e}"),
            "see the tool's message above",
        )
    })?;
    match tokio::task::block_in_place(|| driver.read_back(slot)) {
        Ok(read) if read.id() == Some(identity.id) => {
            // The next reconcile must know which build this is (another may share its id).
            let ledger = Ledger::new(&options.host.drivers.state_dir);
            if let Err(e) = ledger.record(slot, &sha256, identity.id) {
                notice(&format!("warning: cannot record what was programmed: {e}"));
            }
            Ok(format!(
                "programmed `{name}` into {slot} and read it back: {read}"
            ))
        }
        Ok(other) => Err(fail(
            format!(
                "programmed `{name}` into {slot}, but it reads back {other}, not {}",
                identity.id
            ),
            "the card did not take the image; check the driver's log (dmesg)",
        )),
        Err(e) => Err(fail(
            format!("programmed `{name}` into {slot}, but reading it back failed: {e}"),
            "check the driver",
        )),
    }
}

/// Before a managed slot is programmed by hand, its provider is withdrawn from scheduling
/// (everything reserved, function traits withdrawn, what the card will carry recorded),
/// as the host agent does: the scheduler must not see the assigned bitstream's traits
/// while the card carries something else.
async fn withdraw(
    options: &ProgramOptions<'_>,
    loaded: &Loaded,
    drivers: &host::Drivers,
    programming: &Carries,
    notice: &impl Fn(&str),
) -> Result<(), Error> {
    let not_programmed = "not programmed: the provider of a managed device must be drained first";
    let wrap = |e: Error, help: &str| {
        let first = e
            .diagnostics()
            .first()
            .map(|d| d.message.clone())
            .unwrap_or_default();
        fail(format!("{first}; {not_programmed}"), help)
    };
    let session = super::connect(options.os_cloud, Needs::Placement, |_| {})
        .await
        .map_err(|e| wrap(e, "check `--os-cloud` / OS_CLOUD"))?;
    let placement = Placement::new(&session);
    let observation = host::observe(
        loaded,
        &options.host,
        drivers,
        &session,
        &mut host::HostMemory::default(),
    )
    .await
    .map_err(|e| wrap(e, "check that the host's compute node is in Placement"))?;
    let Some(plan) = observation
        .plan
        .slots
        .iter()
        .find(|s| s.assignment.slot == options.slot)
    else {
        return Ok(());
    };
    let (Some(existing), Some(name), Some(target)) = (
        &plan.provider,
        &plan.provider_name,
        plan.assignment.bitstream.as_ref(),
    ) else {
        return Ok(());
    };
    let draining = provider::withdrawn(
        name,
        &plan.assignment,
        target,
        Withdrawal::ReadBack(programming),
        false,
    );
    report::write_device_provider(
        &placement,
        &observation.compute_node,
        Some(existing),
        &draining,
        provider::owned_traits(&observation.named_traits),
    )
    .await
    .map_err(|e| {
        fail(
            format!(
                "draining provider `{}` failed: {e}; {not_programmed}",
                existing.name
            ),
            "try again",
        )
    })?;
    notice(&format!(
        "drained provider `{}`: reserved, function traits withdrawn until the next reconcile",
        existing.name
    ));
    Ok(())
}

/// The local file to program, what it says about itself, its name for messages and its
/// sha256.
async fn image_for(
    options: &ProgramOptions<'_>,
    loaded: &Loaded,
    targets: &BTreeMap<String, Target>,
) -> Result<(PathBuf, ImageIdentity, String, String), Error> {
    let as_file = Path::new(options.bitstream);
    if as_file.is_file() && !loaded.desired.bitstreams.contains_key(options.bitstream) {
        let sha256 = crate::source::sha256_of(as_file).map_err(|e| {
            fail(
                format!("reading `{}`: {e}", as_file.display()),
                "check the path",
            )
        })?;
        let identity = crate::host::discover::targets::identify_file(as_file, &sha256)
            .map_err(|e| {
                fail(
                    format!("reading `{}`: {e}", as_file.display()),
                    "check the path",
                )
            })?
            .map_err(|e| {
                fail(
                    format!("`{}`: {e}", as_file.display()),
                    "give a complete bitstream file",
                )
            })?;
        return Ok((
            as_file.to_owned(),
            identity,
            as_file.display().to_string(),
            sha256,
        ));
    }
    let Some(target) = targets.get(options.bitstream) else {
        return Err(fail(
            format!(
                "`{}` is neither a file nor a Bitstream of the repository",
                options.bitstream
            ),
            "give a Bitstream name from the repository or a path to a bitstream file",
        ));
    };
    let cache = BitstreamCache::new(options.host.cache_dir.join("bitstreams"));
    if let Some(file) = cache.cached(&target.sha256).await {
        return Ok((
            file,
            target.identity,
            target.name.clone(),
            target.sha256.clone(),
        ));
    }
    let session = super::connect(options.os_cloud, Needs::Cloud, |_| {})
        .await
        .map_err(|e| {
            let first = e
                .diagnostics()
                .first()
                .map(|d| d.message.clone())
                .unwrap_or_default();
            fail(first, "check `--os-cloud` / OS_CLOUD")
        })?;
    let glance = Glance::new(&session);
    let found = fetch::find_image(
        &glance,
        &options.host.site,
        &target.bs_uuid.to_string(),
        &target.sha256,
    )
    .await
    .map_err(|e| {
        fail(
            e.to_string(),
            "upload it first: `fpga-sync apply` on the repository",
        )
    })?;
    let file = cache
        .fetch(&glance, &found, &target.sha256)
        .await
        .map_err(|e| {
            fail(
                e.to_string(),
                "try again; a corrupt download is never programmed",
            )
        })?;
    Ok((
        file,
        target.identity,
        target.name.clone(),
        target.sha256.clone(),
    ))
}
