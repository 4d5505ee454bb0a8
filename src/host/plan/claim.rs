//! Which slot a claim gets (`fpga-sync claim`, the seed's claim API for FPGA developers and
//! tools that are not Nova): among the host's slots that fpga-sync reports to Placement,
//! those whose provider offers the resource class and every trait asked for; of those, the
//! ones that may carry what is asked (a managed slot only when it is verified with that
//! bitstream, or a bitstream of that function: a claim never reprograms what the
//! reconciler owns; a `manual` slot when the bitstream fits its region, and it is
//! programmed); of those, the ones Placement offers now (allocation candidates below the
//! host's compute node). Slots that need no programming come first, then by provider name.
//! A claim that cannot be met says why: no such slot, none may carry it (incompatible
//! shell, managed with another bitstream), or all are held (and by whom). Pure: no I/O.

use std::collections::BTreeMap;

use super::assignment::{SlotAssignment, Target};
use super::observed::Discoveries;
use super::{ProviderState, format_refusal, interface_refusal, provider, released_refusal};
use crate::desired::host_group::{Backend, Policy};
use crate::host::driver::{Busy, Slot};

/// What a claim asks for.
#[derive(Clone, Debug, Default)]
pub struct ClaimRequest {
    /// The resource class to allocate one unit of; `None`: any class a matching slot
    /// reports.
    pub resource_class: Option<String>,
    /// Traits the slot's provider must have.
    pub traits: Vec<String>,
    /// The bitstreams the slot must carry (one for `--bitstream`; every bitstream of the
    /// function for `--function`); empty: whatever it carries, and nothing is programmed.
    pub bitstreams: Vec<Target>,
    /// What was asked, for messages: ``bitstream `x` ``, ``function `aes-128` ``.
    pub asked: Option<String>,
}

/// What the claim is decided from.
pub struct ClaimInput<'a> {
    /// The host, as the repository names it.
    pub host: &'a str,
    /// Its slots, from the repository.
    pub assignments: &'a [SlotAssignment],
    /// The providers below its compute node.
    pub providers: &'a [ProviderState],
    /// What its backends found.
    pub devices: &'a Discoveries,
    /// What Placement offers now, from allocation candidates restricted to the host's
    /// tree: provider uuid → the resource class it would allocate.
    pub offered: &'a BTreeMap<String, String>,
}

/// The slot a claim gets.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimChoice {
    /// The device or region.
    pub slot: Slot,
    /// Its backend.
    pub backend: Backend,
    /// Its provider's uuid.
    pub provider_uuid: String,
    /// Its provider's name.
    pub provider_name: String,
    /// The resource class allocated (one unit).
    pub resource_class: String,
    /// The bitstream to program first (a `manual` slot); `None`: nothing is programmed.
    pub program: Option<Target>,
    /// The asked bitstream a managed slot is verified with (read back to confirm).
    pub carries: Option<Target>,
}

/// Why a claim cannot be met, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRefusal {
    /// Why.
    pub message: String,
    /// What to do.
    pub help: String,
}

fn refuse(message: impl Into<String>, help: impl Into<String>) -> ClaimRefusal {
    ClaimRefusal {
        message: message.into(),
        help: help.into(),
    }
}

/// A slot whose provider offers the class and traits asked for.
#[derive(Clone, Debug)]
pub struct Matching<'a> {
    /// Its provider.
    pub provider: &'a ProviderState,
    /// Its assignment.
    pub assignment: &'a SlotAssignment,
    /// The resource class a claim would allocate there.
    pub resource_class: String,
}

/// The host's slots whose provider (one of fpga-sync's) offers the class and every trait
/// asked for, whether or not they are free.
pub fn matching<'a>(input: &ClaimInput<'a>, request: &ClaimRequest) -> Vec<Matching<'a>> {
    super::reported_providers(input.host, input.assignments)
        .into_iter()
        .filter_map(|(name, assignment)| {
            let provider = input
                .providers
                .iter()
                .find(|p| p.name == name && p.traits.contains(provider::OWNER_TRAIT))?;
            let resource_class = match &request.resource_class {
                Some(rc) => provider.inventories.contains_key(rc).then(|| rc.clone())?,
                None => provider.inventories.keys().next()?.clone(),
            };
            request
                .traits
                .iter()
                .all(|t| provider.traits.contains(t))
                .then_some(Matching {
                    provider,
                    assignment,
                    resource_class,
                })
        })
        .collect()
}

/// The slot a claim gets, or why there is none.
pub fn choose(input: &ClaimInput<'_>, request: &ClaimRequest) -> Result<ClaimChoice, ClaimRefusal> {
    let found = matching(input, request);
    if found.is_empty() {
        return Err(no_such_slot(input, request));
    }
    let mut eligible = Vec::new();
    let mut unfit = Vec::new();
    for m in &found {
        match eligibility(input, request, m) {
            Ok((program, carries)) => eligible.push((m, program, carries)),
            Err(why) => unfit.push(why),
        }
    }
    if eligible.is_empty() {
        let asked = request.asked.as_deref().unwrap_or("it");
        return Err(refuse(
            format!(
                "no matching slot on host `{}` may carry {asked}: {}",
                input.host,
                unfit.join("; ")
            ),
            "a claim programs only `policy: manual` slots whose region accepts the bitstream's interface; a managed slot must already carry it (change its assignment in the repository and let the host agent program it)",
        ));
    }
    let mut free: Vec<_> = eligible
        .iter()
        .filter(|(m, _, _)| input.offered.get(&m.provider.uuid) == Some(&m.resource_class))
        .collect();
    if free.is_empty() {
        let held: Vec<String> = eligible.iter().map(|(m, _, _)| held_text(m)).collect();
        return Err(refuse(
            format!(
                "every matching slot on host `{}` is taken: {}",
                input.host,
                held.join("; ")
            ),
            "release a claim (`fpga-sync release --consumer ID`), wait until the servers using them are deleted, or claim on another host",
        ));
    }
    free.sort_by(|a, b| {
        (a.1.is_some(), &a.0.provider.name).cmp(&(b.1.is_some(), &b.0.provider.name))
    });
    let (m, program, carries) = free.remove(0);
    Ok(ClaimChoice {
        slot: m.assignment.slot.clone(),
        backend: m.assignment.backend,
        provider_uuid: m.provider.uuid.clone(),
        provider_name: m.provider.name.clone(),
        resource_class: m.resource_class.clone(),
        program: program.clone(),
        carries: carries.clone(),
    })
}

fn no_such_slot(input: &ClaimInput<'_>, request: &ClaimRequest) -> ClaimRefusal {
    let class = request
        .resource_class
        .as_deref()
        .map_or("a resource class".to_owned(), |rc| format!("`{rc}`"));
    let traits = if request.traits.is_empty() {
        String::new()
    } else {
        format!(" with trait(s) {}", request.traits.join(", "))
    };
    let there: Vec<String> = super::reported_providers(input.host, input.assignments)
        .into_iter()
        .filter_map(|(name, _)| input.providers.iter().find(|p| p.name == name))
        .map(|p| {
            let classes: Vec<&str> = p.inventories.keys().map(String::as_str).collect();
            let missing: Vec<&str> = request
                .traits
                .iter()
                .filter(|t| !p.traits.contains(*t))
                .map(String::as_str)
                .collect();
            let mut text = format!("`{}` reports {}", p.name, classes.join(", "));
            if !missing.is_empty() {
                text.push_str(&format!(" without {}", missing.join(", ")));
            }
            text
        })
        .collect();
    let help = if there.is_empty() {
        format!(
            "host `{}` reports no FPGA slot to Placement yet: give a device entry a `resource_class` (a `policy: manual` one makes a claimable developer slot) and run `fpga-sync apply --host {}`",
            input.host, input.host
        )
    } else {
        format!("what host `{}` reports: {}", input.host, there.join("; "))
    };
    refuse(
        format!("no slot on host `{}` reports {class}{traits}", input.host),
        help,
    )
}

/// Whether a matching slot may carry what is asked: `Ok((program, carries))`, or why not.
fn eligibility(
    input: &ClaimInput<'_>,
    request: &ClaimRequest,
    m: &Matching<'_>,
) -> Result<(Option<Target>, Option<Target>), String> {
    if request.bitstreams.is_empty() {
        return Ok((None, None));
    }
    let a = m.assignment;
    let name = &m.provider.name;
    match a.policy {
        Policy::Managed => {
            let verified = m.provider.traits.contains(provider::VERIFIED_TRAIT);
            let carried = request.bitstreams.iter().find(|t| {
                verified
                    && m.provider.traits.contains(&format!(
                        "{}{:032X}",
                        provider::BITSTREAM_TRAIT_PREFIX,
                        t.bs_uuid.as_u128()
                    ))
            });
            match carried {
                Some(t) => Ok((None, Some(t.clone()))),
                None => Err(format!(
                    "`{name}` is managed by host group `{}`{}",
                    a.group,
                    a.bitstream.as_ref().map_or(String::new(), |t| {
                        if verified {
                            format!(" and carries `{}`", t.name)
                        } else {
                            format!(" and does not carry its `{}` yet", t.name)
                        }
                    })
                )),
            }
        }
        Policy::Manual => {
            let device = input
                .devices
                .get(&a.backend)
                .and_then(|r| r.as_ref().ok())
                .and_then(|ds| ds.iter().find(|d| d.address == a.slot.address));
            let Some(device) = device else {
                return Err(format!("the backend sees no FPGA at {}", a.slot.address));
            };
            if let Some(why) = &device.cannot_program {
                return Err(format!("{} cannot be programmed: {why}", a.slot.address));
            }
            let Some((_, accepts, busy)) = device.slot_state(&a.slot) else {
                return Err(format!("{} has no such region", a.slot));
            };
            if let Some((reason, _)) = released_refusal(&a.slot, &busy) {
                return Err(reason);
            }
            if let Busy::InUse(holder) = &busy {
                return Err(format!("{} is busy ({holder})", a.slot));
            }
            let mut why = Vec::new();
            for t in &request.bitstreams {
                if let Some((reason, _)) = format_refusal(&t.name, &t.identity) {
                    why.push(reason);
                    continue;
                }
                match interface_refusal(&t.name, &a.slot, t.requires(), &accepts) {
                    Some((reason, _)) => why.push(format!("incompatible shell: {reason}")),
                    None => return Ok((Some(t.clone()), None)),
                }
            }
            Err(format!("`{name}`: {}", why.join("; ")))
        }
    }
}

fn held_text(m: &Matching<'_>) -> String {
    let p = m.provider;
    let withdrawn = p
        .inventories
        .get(&m.resource_class)
        .is_some_and(|i| i.reserved >= i.total);
    if withdrawn {
        format!(
            "`{}` is withdrawn from scheduling ({})",
            p.name,
            provider::provider_state(&p.traits)
        )
    } else if p.allocations > 0 || !p.consumers.is_empty() {
        format!("`{}`: {} allocations", p.name, p.holders())
    } else {
        format!("`{}` has no free `{}`", p.name, m.resource_class)
    }
}
