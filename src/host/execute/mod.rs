//! Carries out a host plan. First, before anything that can fail, it withdraws from
//! scheduling every provider whose slot read back something other than its assignment
//! (everything reserved, function traits withdrawn): a failed download or a crash later in
//! the pass can no longer leave Placement offering a function the card does not carry.
//! Then slot by slot in the plan's order: for a slot to program, fetch the image into the
//! verified cache, check its header is what the repository said, check nobody took the
//! drained slot meanwhile, program, read back, and only then report the bitstream to
//! Placement; a failure leaves the provider reserved and marked failed. It decides nothing: what to do comes from the plan; it only refuses to
//! go on when a check it was told to make fails. A stop request, or the loss of the lease
//! the pass runs under (`docs/locking.md`), is honoured between slots, never during
//! programming. I/O: the drivers, Glance, Placement, the bitstream cache.

pub mod fetch;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cloud::CloudError;
use crate::cloud::glance::Glance;
use crate::cloud::placement::Placement;
use crate::desired::host_group::Backend;
use crate::host::driver::{Driver, Loaded, ProgramRequest, Slot};
use crate::host::plan::assignment::Target;
use crate::host::plan::provider::{self, ProviderTarget};
use crate::host::plan::{HostPlan, SlotAction, SlotPlan};
use crate::host::report::ledger::Ledger;
use crate::host::report::status::{SlotState, SlotStatus};
use crate::host::report::{self, Removal as Removed};
use fetch::BitstreamCache;

/// Everything the executor talks to.
pub struct HostExecutor<'a> {
    /// A driver for each backend the plan uses.
    pub drivers: &'a BTreeMap<Backend, Box<dyn Driver>>,
    /// Placement.
    pub placement: &'a Placement<'a>,
    /// Glance.
    pub glance: &'a Glance<'a>,
    /// The verified bitstream cache.
    pub cache: &'a BitstreamCache,
    /// The fpga-sync site whose images are used.
    pub site: &'a str,
    /// The host's compute-node provider.
    pub compute_node: &'a str,
    /// Traits the desired state names (removable from fpga-sync's providers).
    pub named_traits: &'a BTreeSet<String>,
    /// How long a program call may take.
    pub timeout: Duration,
    /// Set to stop after the current slot.
    pub stop: &'a AtomicBool,
    /// Why to stop after the current slot, if it must: the lease the pass runs under was
    /// lost (broken by someone, or not renewed for its TTL).
    pub halted: &'a (dyn Fn() -> Option<String> + Sync),
    /// Told what happens, as it happens.
    pub reporter: &'a dyn Reporter,
    /// Where what was programmed is recorded.
    pub ledger: &'a Ledger,
}

/// What the executor tells as it goes: `watch` and `apply --host` log it.
pub trait Reporter: Sync {
    /// A slot's provider was withdrawn from scheduling (`error`: the write failed, and
    /// Placement may still offer a function the card does not carry).
    fn withdrawn(&self, slot: &SlotPlan, error: Option<&CloudError>);
    /// A slot is done, whatever its result.
    fn slot_done(&self, status: &SlotStatus);
    /// What happened to the provider of a device that is gone.
    fn removal(&self, provider: &str, what: &str);
}

/// Tells everything to `tracing`: failed and blocked slots as warnings, a failed
/// withdrawal as an error.
pub struct LogReporter;

impl Reporter for LogReporter {
    fn withdrawn(&self, slot: &SlotPlan, error: Option<&CloudError>) {
        let provider = slot.provider_name.as_deref().unwrap_or("");
        match error {
            None => tracing::warn!(
                slot = %slot.assignment.slot,
                provider,
                carries = %slot.current,
                "withdrawn from scheduling: the card does not carry its assignment"
            ),
            Some(e) => tracing::error!(
                slot = %slot.assignment.slot,
                provider,
                error = %e,
                "could not withdraw the provider from scheduling: Placement may still offer a function the card does not carry"
            ),
        }
    }

    fn slot_done(&self, s: &SlotStatus) {
        let bitstream = s.bitstream.as_deref().unwrap_or("");
        match s.state {
            SlotState::Failed | SlotState::Blocked => {
                tracing::warn!(slot = %s.slot, bitstream, state = ?s.state, programmed = s.programmed, "{}", s.message)
            }
            _ => {
                tracing::info!(slot = %s.slot, bitstream, state = ?s.state, programmed = s.programmed, "{}", s.message)
            }
        }
    }

    fn removal(&self, provider: &str, what: &str) {
        if what.starts_with("could not") || what.contains("failed") {
            tracing::warn!(provider, "{what}");
        } else {
            tracing::info!(provider, "{what}");
        }
    }
}

fn status(plan: &SlotPlan, state: SlotState, message: impl Into<String>) -> SlotStatus {
    SlotStatus {
        slot: plan.assignment.slot.clone(),
        bitstream: plan.assignment.bitstream.as_ref().map(|t| t.name.clone()),
        state,
        message: message.into(),
        provider: plan.provider_name.clone(),
        programmed: false,
        failures: 0,
    }
}

/// What carrying out a host plan did.
pub struct Executed {
    /// Each slot's result, in the plan's order.
    pub slots: Vec<SlotStatus>,
    /// What happened to providers of devices that are gone.
    pub removals: Vec<String>,
    /// Providers that could not be withdrawn from scheduling: Placement may still offer a
    /// function their card does not carry. The next pass retries them first.
    pub unwithdrawn: Vec<String>,
    /// Why the executor stopped before the end of the plan, when the lease was lost.
    pub halted: Option<String>,
}

impl HostExecutor<'_> {
    /// Carries out `plan`.
    pub async fn run(&self, plan: &HostPlan) -> Executed {
        let mut unwithdrawn: BTreeMap<&Slot, CloudError> = BTreeMap::new();
        for slot in &plan.slots {
            let Some(want) = &slot.withdraw else {
                continue;
            };
            match self.write(slot, want).await {
                Ok(_) => self.reporter.withdrawn(slot, None),
                Err(e) => {
                    self.reporter.withdrawn(slot, Some(&e));
                    unwithdrawn.insert(&slot.assignment.slot, e);
                }
            }
        }
        let mut out = Vec::new();
        let mut halted = None;
        // Devices whose whole-device image (shell) failed to load: their regions wait.
        let mut failed_devices = BTreeSet::new();
        for slot in &plan.slots {
            let address = &slot.assignment.slot.address;
            if let Some(e) = unwithdrawn.get(&slot.assignment.slot) {
                out.push(status(
                    slot,
                    SlotState::Failed,
                    format!(
                        "the card carries {}, not its assignment, and withdrawing provider `{}` from scheduling failed: {e}; nothing else was tried, the next run retries it first",
                        slot.current,
                        slot.provider_name.as_deref().unwrap_or("")
                    ),
                ));
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                out.push(status(slot, SlotState::Pending, "stopped before its turn"));
                continue;
            }
            if let Some(why) = (self.halted)() {
                out.push(status(
                    slot,
                    SlotState::Pending,
                    format!("not started: {why}"),
                ));
                halted.get_or_insert(why);
                continue;
            }
            if slot.assignment.slot.region.is_some() && failed_devices.contains(address) {
                out.push(status(
                    slot,
                    SlotState::Blocked,
                    "its device's whole-device image did not load, so its regions wait",
                ));
                continue;
            }
            let result = crate::host::plan::render::with_hold(slot, self.slot(slot).await);
            if slot.assignment.slot.region.is_none() && result.state == SlotState::Failed {
                failed_devices.insert(address.clone());
            }
            self.reporter.slot_done(&result);
            out.push(result);
        }
        let mut removals = Vec::new();
        for r in &plan.removals {
            let p = &r.provider;
            if let Some(why) = (self.halted)() {
                removals.push(format!("did not remove provider `{}`: {why}", p.name));
                halted.get_or_insert(why);
                continue;
            }
            let line = match report::remove_device_provider(self.placement, p).await {
                Ok(Removed::Removed) => format!(
                    "removed provider `{}`: its device is gone or no longer assigned",
                    p.name
                ),
                Ok(Removed::InUse { consumers }) => {
                    let holders = if p.consumers.len() == consumers {
                        p.holders()
                    } else {
                        format!("{consumers} consumer(s) hold")
                    };
                    match report::reserve_all(self.placement, &p.uuid).await {
                        Ok(()) => format!(
                            "kept provider `{}` (device gone or unassigned): {holders} allocations; everything reserved",
                            p.name
                        ),
                        Err(e) => format!(
                            "kept provider `{}`: {holders} allocations; reserving failed: {e}",
                            p.name
                        ),
                    }
                }
                Err(e) => format!("could not remove provider `{}`: {e}", p.name),
            };
            self.reporter.removal(&p.name, &line);
            removals.push(line);
        }
        Executed {
            slots: out,
            removals,
            unwithdrawn: unwithdrawn
                .iter()
                .map(|(slot, e)| format!("{slot}: {e}"))
                .collect(),
            halted,
        }
    }

    async fn slot(&self, plan: &SlotPlan) -> SlotStatus {
        let name = plan
            .assignment
            .bitstream
            .as_ref()
            .map_or(String::new(), |t| format!("`{}`", t.name));
        match &plan.action {
            SlotAction::Manual { report } => {
                if *report && let Some(want) = &plan.on_success {
                    if let Err(e) = self.write(plan, want).await {
                        return status(
                            plan,
                            SlotState::Failed,
                            format!(
                                "policy: manual; reporting it as a claimable provider failed: {e}"
                            ),
                        );
                    }
                    return status(
                        plan,
                        SlotState::Manual,
                        format!(
                            "policy: manual; left alone; reported as claimable provider `{}`",
                            want.name
                        ),
                    );
                }
                status(plan, SlotState::Manual, "policy: manual; left alone")
            }
            SlotAction::ShellChecked { proven: true } => status(
                plan,
                SlotState::Verified,
                format!("shell {name} is on the card"),
            ),
            SlotAction::ShellChecked { proven: false } => status(
                plan,
                SlotState::Verified,
                format!(
                    "shell {name} cannot be read back by this backend; its regions' interface checks guard them"
                ),
            ),
            SlotAction::InSync { report } => {
                if *report && let Some(want) = &plan.on_success {
                    if let Err(e) = self.write(plan, want).await {
                        return status(
                            plan,
                            SlotState::Failed,
                            format!("carries {name}, but reporting it to Placement failed: {e}"),
                        );
                    }
                    return status(
                        plan,
                        SlotState::Verified,
                        format!("carries {name} (read back); Placement updated"),
                    );
                }
                status(
                    plan,
                    SlotState::Verified,
                    format!("carries {name} (read back)"),
                )
            }
            SlotAction::Wait { reason } => status(plan, SlotState::Waiting, reason.clone()),
            SlotAction::Blocked { reason, help } => {
                let mut message = format!("{reason}; {help}");
                if plan.withdraw.is_some() {
                    message = format!(
                        "{message} (the card carries {}: its provider is withdrawn from scheduling)",
                        plan.current
                    );
                }
                status(plan, SlotState::Blocked, message)
            }
            SlotAction::Program { drain, forced } => {
                let target = plan
                    .assignment
                    .bitstream
                    .as_ref()
                    .expect("the planner programs assigned slots");
                self.program(plan, target, *drain, *forced).await
            }
        }
    }

    async fn program(
        &self,
        plan: &SlotPlan,
        target: &Target,
        drain: bool,
        forced: bool,
    ) -> SlotStatus {
        let name = &target.name;
        let failed = |message: String| status(plan, SlotState::Failed, message);
        let file = match self.fetch(target).await {
            Ok(file) => file,
            Err(e) => return failed(format!("`{name}` was not programmed: {e}")),
        };
        match crate::host::discover::targets::identify_file(&file, &target.sha256) {
            Ok(Ok(identity)) if identity == target.identity => {}
            Ok(Ok(identity)) => {
                return failed(format!(
                    "`{name}` was not programmed: the fetched file says id {} / interface {:?}, the repository's says {} / {:?}",
                    identity.id,
                    identity.requires.map(|i| i.to_string()),
                    target.identity.id,
                    target.identity.requires.map(|i| i.to_string())
                ));
            }
            Ok(Err(e)) => return failed(format!("`{name}` was not programmed: its header: {e}")),
            Err(e) => {
                return failed(format!(
                    "`{name}` was not programmed: reading {}: {e}",
                    file.display()
                ));
            }
        }
        // The provider was withdrawn at the start of the pass; a consumer that was placed
        // just before that holds it now.
        if drain
            && !forced
            && let Some(p) = &plan.provider
        {
            match report::consumers(self.placement, &p.uuid).await {
                Ok(ids) if !ids.is_empty() => {
                    let named: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
                    return status(
                        plan,
                        SlotState::Blocked,
                        format!(
                            "`{name}` was not programmed: consumer(s) {} took allocations while it was being drained; it stays reserved until they leave",
                            named.join(", ")
                        ),
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    return failed(format!(
                        "`{name}` was not programmed: reading allocations: {e}"
                    ));
                }
            }
        }
        let Some(driver) = self.drivers.get(&plan.assignment.backend) else {
            return failed(format!(
                "no driver for the {:?} backend",
                plan.assignment.backend
            ));
        };
        let request = ProgramRequest {
            slot: &plan.assignment.slot,
            image: &file,
            expected: target.identity.id,
            requires: target.requires(),
            partial: !target.is_shell(),
            force: forced,
            timeout: self.timeout,
        };
        let programmed = tokio::task::block_in_place(|| driver.program(&request));
        let verdict = match programmed {
            Err(e) => Err(format!("programming `{name}` failed: {e}")),
            Ok(_) => {
                match tokio::task::block_in_place(|| driver.read_back(&plan.assignment.slot)) {
                    Ok(loaded) if loaded.id() == Some(target.identity.id) => Ok(()),
                    Ok(Loaded::Id(id) | Loaded::Recorded(id)) => Err(format!(
                        "programmed `{name}`, but the card reads back {id}, not {}",
                        target.identity.id
                    )),
                    Ok(other) => Err(format!(
                        "programmed `{name}`, but the card reads back {other}, not {}",
                        target.identity.id
                    )),
                    Err(e) => Err(format!(
                        "programmed `{name}`, but reading it back failed: {e}"
                    )),
                }
            }
        };
        match verdict {
            Ok(()) => {
                // A repair of drift (a power cycle, a card loaded by hand) says what it
                // undid.
                let mut done = status(
                    plan,
                    SlotState::Verified,
                    format!(
                        "programmed `{name}` and read it back (the card carried {} before)",
                        plan.current
                    ),
                );
                done.programmed = true;
                // Without the record a later pass cannot tell this build from another of
                // the same id: it would program the slot again, never wrongly keep it.
                if let Err(e) =
                    self.ledger
                        .record(&plan.assignment.slot, &target.sha256, target.identity.id)
                {
                    tracing::warn!(slot = %plan.assignment.slot, error = %e, "cannot record what was programmed");
                }
                if let Some(want) = &plan.on_success
                    && let Err(e) = self.write(plan, want).await
                {
                    done.state = SlotState::Failed;
                    done.message = format!(
                        "programmed `{name}` and read it back, but reporting it to Placement failed: {e}"
                    );
                }
                done
            }
            Err(message) => {
                let mut done = failed(message);
                done.programmed = true;
                if let Some(want) = &plan.on_failure
                    && let Err(e) = self.write(plan, want).await
                {
                    done.message = format!(
                        "{}; marking its provider failed also failed: {e}",
                        done.message
                    );
                }
                done
            }
        }
    }

    async fn fetch(&self, target: &Target) -> Result<PathBuf, fetch::FetchError> {
        if let Some(path) = self.cache.cached(&target.sha256).await {
            return Ok(path);
        }
        let image = fetch::find_image(
            self.glance,
            self.site,
            &target.bs_uuid.to_string(),
            &target.sha256,
        )
        .await?;
        self.cache.fetch(self.glance, &image, &target.sha256).await
    }

    async fn write(&self, plan: &SlotPlan, want: &ProviderTarget) -> Result<String, CloudError> {
        report::write_device_provider(
            self.placement,
            self.compute_node,
            plan.provider.as_ref(),
            want,
            provider::owned_traits(self.named_traits),
        )
        .await
    }
}
