//! One host's part of the desired state: the slots its host groups assign, with the
//! bitstream each must carry, resolved against the devices the host's backends found
//! (`pci_id` entries become one slot per matching device; `address` and `manager` entries
//! name one device, by PCI address or FPGA manager name). Pure: no I/O.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::desired::host_group::{Backend, Offer, Policy, resolve_for_host};
use crate::desired::{Bitstream, Desired, host_entry_matches};
use crate::host::driver::{DeviceInfo, Slot};
use crate::host::id::Id128;
use crate::host::image::ImageIdentity;

/// A bitstream as a host needs it: where to find it and how the card will report it.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The Bitstream's (and Glance image's) name.
    pub name: String,
    /// Its `bs-uuid`.
    pub bs_uuid: Uuid,
    /// sha256 of its file, from the repository.
    pub sha256: String,
    /// What its file's header says: the id the slot reports once loaded, the interface it
    /// needs.
    pub identity: ImageIdentity,
    /// Its vendor.
    pub vendor: String,
    /// Its `function_uuid`.
    pub function_uuid: Uuid,
    /// Its `region_uuid`.
    pub region_uuid: Option<Uuid>,
    /// The `bs-uuid` of its shell; `None` for a shell.
    pub shell_id: Option<Uuid>,
    /// `pf_num` and `vf_num` of its topology.
    pub topology: Option<(u32, u32)>,
}

impl Target {
    /// A target from a bitstream, its file's sha256 and header identity.
    pub fn new(bitstream: &Bitstream, sha256: &str, identity: ImageIdentity) -> Self {
        let m = &bitstream.metadata;
        Target {
            name: bitstream.name.clone(),
            bs_uuid: m.bs_uuid,
            sha256: sha256.to_owned(),
            identity,
            vendor: m.vendor.clone(),
            function_uuid: m.function_uuid,
            region_uuid: m.region_uuid,
            shell_id: m.shell_id,
            topology: m.topology.as_ref().map(|t| (t.pf_num, t.vf_num)),
        }
    }

    /// Whether it is a shell (no `shell_id`).
    pub fn is_shell(&self) -> bool {
        self.shell_id.is_none()
    }

    /// The interface id it needs: from its header, else its `region_uuid` (partial
    /// bitstreams only).
    pub fn requires(&self) -> Option<Id128> {
        if self.is_shell() {
            return None;
        }
        self.identity
            .requires
            .or(self.region_uuid.map(Id128::from_uuid))
    }
}

/// One slot of the host and what it must carry.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotAssignment {
    /// The device or region.
    pub slot: Slot,
    /// The backend that drives it.
    pub backend: Backend,
    /// The host group that assigns it.
    pub group: String,
    /// `managed` or `manual`.
    pub policy: Policy,
    /// What it must carry (managed slots).
    pub bitstream: Option<Target>,
    /// The shell that must be on the device under a partial bitstream: the entry's `shell`,
    /// else the whole-device entry's bitstream, else the bitstream's `shell_id`.
    pub shell: Option<Target>,
    /// The resource class it reports.
    pub resource_class: Option<String>,
    /// The traits it reports besides the derived ones.
    pub traits: Vec<String>,
    /// PFs or VFs.
    pub offer: Offer,
}

/// Why an entry could not become a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignmentProblem {
    /// The host group.
    pub group: String,
    /// What is wrong.
    pub message: String,
}

/// The slots `host` is assigned, in the safe order: by device address, the whole device
/// (where the shell is) before its regions. `targets` holds every bitstream by name (those
/// whose file could not be identified are absent), `devices` what each backend found.
pub fn for_host(
    desired: &Desired,
    host: &str,
    targets: &BTreeMap<String, Target>,
    devices: &BTreeMap<Backend, Vec<DeviceInfo>>,
) -> (Vec<SlotAssignment>, Vec<AssignmentProblem>) {
    let mut slots: BTreeMap<Slot, SlotAssignment> = BTreeMap::new();
    let mut problems = Vec::new();
    for group in desired.host_groups.values().map(|g| &g.spec) {
        if !group.hosts.iter().any(|h| host_entry_matches(h, host)) {
            continue;
        }
        let (backend, entries) = resolve_for_host(group, host, host_entry_matches);
        let seen = devices.get(&backend).map(Vec::as_slice).unwrap_or_default();
        for entry in &entries {
            let addresses: Vec<String> = match (entry.device(), &entry.pci_id) {
                (Some(a), _) => vec![a],
                (None, Some(id)) => seen
                    .iter()
                    .filter(|d| d.pci_id.as_deref() == Some(&id.to_ascii_lowercase()))
                    .map(|d| d.address.clone())
                    .collect(),
                (None, None) => Vec::new(),
            };
            let lookup = |name: &Option<String>, what: &str, problems: &mut Vec<_>| {
                let name = name.as_ref()?;
                let found = targets.get(name).cloned();
                if found.is_none() {
                    problems.push(AssignmentProblem {
                        group: group.name.clone(),
                        message: format!("{what} `{name}` has no usable file, so it cannot be programmed or checked"),
                    });
                }
                found
            };
            let bitstream = lookup(&entry.bitstream, "bitstream", &mut problems);
            let shell = lookup(&entry.shell, "shell", &mut problems);
            for address in addresses {
                let slot = Slot {
                    address,
                    region: entry.region.clone(),
                };
                let assignment = SlotAssignment {
                    slot: slot.clone(),
                    backend,
                    group: group.name.clone(),
                    policy: entry.policy,
                    bitstream: bitstream.clone(),
                    shell: shell.clone(),
                    resource_class: entry.resource_class.clone(),
                    traits: entry.traits.clone(),
                    offer: entry.offer,
                };
                if let Some(first) = slots.get(&slot) {
                    problems.push(AssignmentProblem {
                        group: group.name.clone(),
                        message: format!(
                            "{slot} is also assigned by host group `{}`; that assignment is kept",
                            first.group
                        ),
                    });
                    continue;
                }
                slots.insert(slot, assignment);
            }
        }
    }
    // The shell of a partial: the whole-device entry's bitstream, else its `shell_id`.
    let whole: BTreeMap<String, Target> = slots
        .values()
        .filter(|a| a.slot.region.is_none())
        .filter_map(|a| Some((a.slot.address.clone(), a.bitstream.clone()?)))
        .filter(|(_, t)| t.is_shell())
        .collect();
    for a in slots.values_mut() {
        if a.slot.region.is_none() || a.shell.is_some() {
            continue;
        }
        a.shell = whole.get(&a.slot.address).cloned().or_else(|| {
            let id = a.bitstream.as_ref()?.shell_id?;
            targets.values().find(|t| t.bs_uuid == id).cloned()
        });
    }
    // BTreeMap order puts `region: None` before `Some(_)` for the same address.
    (slots.into_values().collect(), problems)
}

/// The interface ids a shell offers its regions: the interface each partial bitstream
/// built for it needs.
pub fn interfaces_of_shell(shell: &Target, targets: &BTreeMap<String, Target>) -> Vec<Id128> {
    let mut out: Vec<Id128> = targets
        .values()
        .filter(|t| t.shell_id == Some(shell.bs_uuid))
        .filter_map(Target::requires)
        .collect();
    out.sort();
    out.dedup();
    out
}
