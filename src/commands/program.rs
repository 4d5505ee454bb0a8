//! `fpga-sync program`: the seed's independent program API for FPGA developers. Loads a
//! repository bitstream (fetched from Glance into the verified cache) or a local file into
//! one device or region and reads it back. The repository's host groups decide whether the
//! device may be touched: `manual` devices may; managed ones only with `--force` (the next
//! reconcile puts the assigned bitstream back, and until then its provider is drained).
//! The interface check is never skipped. A manual device's provider is never written.
//! I/O: source, Glance and Placement, the drivers, the bitstream cache, stderr.

use std::path::Path;

use crate::cli::ProgramArgs;
use crate::cloud::glance::Glance;
use crate::desired::host_group::Policy;
use crate::host::agent;
use crate::host::assignment;
use crate::host::driver::{Busy, Loaded, ProgramRequest, Slot};
use crate::host::fetch::{self, BitstreamCache};
use crate::host::image::{self, ImageIdentity};
use crate::reconcile;

/// Runs `program`; returns the exit code.
pub fn run(args: &ProgramArgs, color: bool) -> std::io::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(program(args)) {
        Ok(message) => {
            eprintln!("{message}");
            Ok(0)
        }
        Err((message, help)) => {
            let d = crate::diagnostic::Diagnostic::error("fpga_sync::program", message).help(help);
            super::plan::report(&[d], color);
            Ok(1)
        }
    }
}

type Failure = (String, String);

fn fail(message: impl Into<String>, help: impl Into<String>) -> Failure {
    (message.into(), help.into())
}

async fn program(args: &ProgramArgs) -> Result<String, Failure> {
    let slot = Slot {
        address: args.device.to_ascii_lowercase(),
        region: args.region.clone(),
    };
    let Some(host) = &args.host else {
        return Err(fail(
            "`program` needs `--host` (or FPGA_SYNC_HOST): the repository's host groups say whether the device may be programmed by hand",
            "give the name the repository uses for this host",
        ));
    };
    let loaded = reconcile::load(&super::repo_spec(&args.source)).map_err(|d| {
        let first = d.first().map_or(String::new(), |d| d.message.clone());
        fail(
            format!("the desired state could not be read: {first}"),
            "run `fpga-sync validate` on the repository",
        )
    })?;
    let options = super::host::agent_options(host, &args.site.name, args.force, &args.driver);
    let drivers = agent::host_drivers(&loaded.desired, host, &options.drivers)
        .map_err(|e| fail(e, "check the host group's backend"))?;
    let targets = agent::targets_of(&loaded, &options.cache_dir);
    let seen = agent::discover(&drivers);
    if let Some(e) = agent::unavailable(&seen) {
        return Err(fail(
            e.to_string(),
            "fix the backend's setup, then try again",
        ));
    }
    let found = seen
        .iter()
        .filter_map(|(b, r)| Some((*b, r.as_ref().ok()?.clone())))
        .collect();
    let (assignments, _) = assignment::for_host(&loaded.desired, host, &targets, &found);
    let assigned = assignments.iter().find(|a| a.slot == slot);
    let backend = match (args.backend, assigned) {
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
    if let Some(a) = assigned.filter(|a| a.policy == Policy::Managed)
        && !args.force
    {
        {
            return Err(fail(
                format!(
                    "{slot} is managed by host group `{}`{}",
                    a.group,
                    a.bitstream
                        .as_ref()
                        .map_or(String::new(), |t| format!(" (it carries `{}`)", t.name))
                ),
                "give it `policy: manual` in the repository to program it by hand, or `--force` (the next reconcile programs its assigned bitstream again)",
            ));
        }
    }
    let driver = match drivers.get(&backend) {
        Some(d) => d,
        None => {
            return Err(fail(
                format!("host `{host}` runs no {backend:?} backend"),
                "give `--backend`",
            ));
        }
    };
    let device = seen
        .get(&backend)
        .and_then(|r| r.as_ref().ok())
        .and_then(|ds| ds.iter().find(|d| d.address == slot.address))
        .ok_or_else(|| {
            fail(
                format!("the backend sees no FPGA at {}", slot.address),
                "list them with `fpga-sync devices`",
            )
        })?;
    let (_, accepts, busy) = device.slot_state(&slot).ok_or_else(|| {
        fail(
            format!(
                "{} has no region `{}`",
                slot.address,
                slot.region.as_deref().unwrap_or("")
            ),
            "list them with `fpga-sync devices`",
        )
    })?;
    let (file, identity, name) = image_for(args, &loaded, &targets, &options.cache_dir).await?;
    if let (Some(requires), Some(accepts)) = (identity.requires, accepts)
        && requires != accepts
    {
        return Err(fail(
            format!("`{name}` needs interface {requires}, but {slot} accepts {accepts}"),
            "build the bitstream for the shell on this card; `--force` does not override this",
        ));
    }
    if let (Busy::InUse(who), false) = (&busy, args.force) {
        return Err(fail(
            format!("{slot} is busy ({who})"),
            "stop what uses it, or add `--force`",
        ));
    }
    let request = ProgramRequest {
        slot: &slot,
        image: &file,
        expected: identity.id,
        requires: identity.requires,
        force: args.force,
        timeout: options.timeout,
    };
    let managed = assigned.is_some_and(|a| a.policy == Policy::Managed);
    if managed {
        withdraw(
            args,
            &loaded,
            &options,
            &drivers,
            &slot,
            &Loaded::Id(identity.id),
        )
        .await?;
    }
    tokio::task::block_in_place(|| driver.program(&request)).map_err(|e| {
        fail(
            format!("programming {slot} failed: {e}"),
            "see the tool's message above",
        )
    })?;
    match tokio::task::block_in_place(|| driver.read_back(&slot)) {
        Ok(Loaded::Id(id)) if id == identity.id => Ok(format!(
            "programmed `{name}` into {slot} and read it back: {id}"
        )),
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

/// Before a managed slot is programmed by hand, its provider is drained (everything
/// reserved, function traits withdrawn), as the host agent does: the scheduler must not
/// see the assigned bitstream's traits while the card carries something else. The next
/// reconcile programs the assigned bitstream again and reports it.
async fn withdraw(
    args: &ProgramArgs,
    loaded: &reconcile::Loaded,
    options: &crate::host::agent::AgentOptions,
    drivers: &std::collections::BTreeMap<
        crate::desired::host_group::Backend,
        Box<dyn crate::host::driver::Driver>,
    >,
    slot: &Slot,
    programming: &Loaded,
) -> Result<(), Failure> {
    let not_programmed = "not programmed: the provider of a managed device must be drained first";
    let session = super::connect(&args.cloud).await.map_err(|d| {
        fail(
            format!("{}; {not_programmed}", d.message),
            "check `--os-cloud` / OS_CLOUD",
        )
    })?;
    let placement = crate::cloud::placement::Placement::new(&session);
    let observation = agent::observe(loaded, options, drivers, &placement)
        .await
        .map_err(|e| {
            fail(
                format!("{e}; {not_programmed}"),
                "check that the host's compute node is in Placement",
            )
        })?;
    let Some(plan) = observation
        .plan
        .slots
        .iter()
        .find(|s| &s.assignment.slot == slot)
    else {
        return Ok(());
    };
    let (Some(provider), Some(name), Some(target)) = (
        &plan.provider,
        &plan.provider_name,
        plan.assignment.bitstream.as_ref(),
    ) else {
        return Ok(());
    };
    let draining = crate::host::report::withdrawn(
        name,
        &plan.assignment,
        target,
        crate::host::report::Withdrawal::ReadBack(programming),
        false,
    );
    crate::host::placement_sync::write_device_provider(
        &placement,
        &observation.compute_node,
        Some(provider),
        &draining.name,
        &draining.traits,
        &draining.inventories,
        crate::host::report::owned_traits(&observation.named_traits),
    )
    .await
    .map_err(|e| {
        fail(
            format!(
                "draining provider `{}` failed: {e}; {not_programmed}",
                provider.name
            ),
            "try again",
        )
    })?;
    eprintln!(
        "drained provider `{}`: reserved, function traits withdrawn until the next reconcile",
        provider.name
    );
    Ok(())
}

/// The local file to program, what it says about itself, and its name for messages.
async fn image_for(
    args: &ProgramArgs,
    loaded: &reconcile::Loaded,
    targets: &std::collections::BTreeMap<String, assignment::Target>,
    cache_dir: &Path,
) -> Result<(std::path::PathBuf, ImageIdentity, String), Failure> {
    let as_file = Path::new(&args.bitstream);
    if as_file.is_file() && !loaded.desired.bitstreams.contains_key(&args.bitstream) {
        let sha256 = crate::source::sha256_of(as_file).map_err(|e| {
            fail(
                format!("reading `{}`: {e}", as_file.display()),
                "check the path",
            )
        })?;
        let identity = image::identify_file(as_file, &sha256)
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
        return Ok((as_file.to_owned(), identity, as_file.display().to_string()));
    }
    let Some(target) = targets.get(&args.bitstream) else {
        return Err(fail(
            format!(
                "`{}` is neither a file nor a Bitstream of the repository",
                args.bitstream
            ),
            "give a Bitstream name from the repository or a path to a bitstream file",
        ));
    };
    let session = super::connect(&args.cloud)
        .await
        .map_err(|d| fail(d.message, "check `--os-cloud` / OS_CLOUD"))?;
    let glance = Glance::new(&session);
    let cache = BitstreamCache::new(cache_dir.join("bitstreams"));
    let file = match cache.cached(&target.sha256).await {
        Some(f) => f,
        None => {
            let image = fetch::find_image(
                &glance,
                &args.site.name,
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
            cache
                .fetch(&glance, &image, &target.sha256)
                .await
                .map_err(|e| {
                    fail(
                        e.to_string(),
                        "try again; a corrupt download is never programmed",
                    )
                })?
        }
    };
    Ok((file, target.identity, target.name.clone()))
}
