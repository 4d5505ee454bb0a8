//! The host planner's rules for one program call made by hand (`fpga-sync program`, the
//! seed's program API for FPGA developers): a device the repository manages is refused
//! unless allowed (`--allow-managed`; then its provider is drained first); a device or region the backend
//! does not see is refused; a port released to an SR-IOV virtual function is refused, the
//! interface check is the planner's own, and so is the refusal of an image no backend
//! programs (a legacy GBS): nothing overrides these; a slot the driver sees busy is
//! refused unless allowed (`--allow-busy`). Pure: no I/O.

use super::assignment::SlotAssignment;
use super::{busy_refusal, format_refusal, interface_refusal, released_refusal};
use crate::desired::host_group::Policy;
use crate::host::driver::{DeviceInfo, Slot};
use crate::host::image::ImageIdentity;

/// Why a program call is refused, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub message: String,
    /// What to do.
    pub help: String,
}

fn refuse(message: impl Into<String>, help: impl Into<String>) -> Refusal {
    Refusal {
        message: message.into(),
        help: help.into(),
    }
}

/// What a program call may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualPlan {
    /// The repository manages the slot: its provider is withdrawn from scheduling before
    /// the card changes, and the next reconcile programs the assignment again.
    pub drain: bool,
}

/// Whether the slot may be programmed by hand at all: `manual` and unassigned slots may;
/// managed ones only with `allow_managed`.
pub fn may_program(
    slot: &Slot,
    assigned: Option<&SlotAssignment>,
    allow_managed: bool,
) -> Result<ManualPlan, Refusal> {
    match assigned.filter(|a| a.policy == Policy::Managed) {
        Some(a) if !allow_managed => Err(refuse(
            format!(
                "{slot} is managed by host group `{}`{}",
                a.group,
                a.bitstream
                    .as_ref()
                    .map_or(String::new(), |t| format!(" (it carries `{}`)", t.name))
            ),
            "give it `policy: manual` in the repository to program it by hand, or `--allow-managed` (the next reconcile programs its assigned bitstream again)",
        )),
        Some(_) => Ok(ManualPlan { drain: true }),
        None => Ok(ManualPlan { drain: false }),
    }
}

/// Whether `image` (named `name`) fits the slot as `device` reports it.
pub fn fits(
    slot: &Slot,
    device: Option<&DeviceInfo>,
    name: &str,
    image: &ImageIdentity,
    force: bool,
) -> Result<(), Refusal> {
    let device = device.ok_or_else(|| {
        refuse(
            format!("the backend sees no FPGA at {}", slot.address),
            "list them with `fpga-sync devices`",
        )
    })?;
    if let Some(why) = &device.cannot_program {
        return Err(refuse(
            format!("{} cannot be programmed: {why}", slot.address),
            "list what the backends can do with `fpga-sync devices`",
        ));
    }
    let (_, accepts, busy) = device.slot_state(slot).ok_or_else(|| {
        refuse(
            format!(
                "{} has no region `{}`",
                slot.address,
                slot.region.as_deref().unwrap_or("")
            ),
            "list them with `fpga-sync devices`",
        )
    })?;
    if let Some((message, help)) = released_refusal(slot, &busy) {
        return Err(refuse(message, help));
    }
    if let Some((message, help)) = interface_refusal(name, slot, image.requires, &accepts) {
        return Err(refuse(message, help));
    }
    if let Some((message, help)) = format_refusal(name, image) {
        return Err(refuse(message, help));
    }
    match busy_refusal(slot, &busy) {
        Some((message, help)) if !force => Err(refuse(message, help)),
        _ => Ok(()),
    }
}
