//! What Placement should hold for one FPGA device provider: its name, traits and
//! inventory, derived from the assignment and the bitstream verified on the card. Trait
//! names follow Cyborg's (`CUSTOM_FPGA_<VENDOR>`, `CUSTOM_FPGA_REGION_<VENDOR>_<id>`,
//! `CUSTOM_FPGA_FUNCTION_ID_<VENDOR>_<id>`) so existing device profiles and flavors
//! match, made valid for Placement (`^CUSTOM_[A-Z0-9_]+$`, which Cyborg's own names are
//! not). fpga-sync adds its ownership and state traits. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use crate::desired::host_group::Offer;
use crate::host::driver::Loaded;
use crate::host::id::Id128;
use crate::host::plan::assignment::{SlotAssignment, Target};
use crate::observed::Inventory;

/// On every provider fpga-sync manages; providers without it are never touched.
pub const OWNER_TRAIT: &str = "CUSTOM_FPGA_SYNC_MANAGED";
/// The assigned bitstream was programmed (or found) and read back from the card.
pub const VERIFIED_TRAIT: &str = "CUSTOM_FPGA_SYNC_VERIFIED";
/// The last program or read-back failed: the device is reserved, its function withdrawn.
pub const FAILED_TRAIT: &str = "CUSTOM_FPGA_SYNC_FAILED";
/// The card does not carry the slot's assignment (read back at the start of a pass): the
/// device is reserved and its function withdrawn until a read-back matches again.
pub const WITHDRAWN_TRAIT: &str = "CUSTOM_FPGA_SYNC_WITHDRAWN";
/// Prefix of the trait saying what a withdrawn slot read back: `NOTHING`, `UNKNOWN`, or
/// the 32 upper-case hex digits of the id it carries.
pub const CARRIES_TRAIT_PREFIX: &str = "CUSTOM_FPGA_SYNC_CARRIES_";
/// A `policy: manual` slot reported so that it can be claimed (`fpga-sync claim`): one
/// unit, no function traits, never programmed by the reconciler.
pub const MANUAL_TRAIT: &str = "CUSTOM_FPGA_SYNC_MANUAL";
/// Prefix of the trait naming the verified bitstream's `bs-uuid`.
pub const BITSTREAM_TRAIT_PREFIX: &str = "CUSTOM_FPGA_SYNC_BS_";
/// Prefix of the trait of a failed slot naming the `bs-uuid` whose program or read-back
/// failed, so a rollout counts its failures across the fleet.
pub const TRIED_TRAIT_PREFIX: &str = "CUSTOM_FPGA_SYNC_TRIED_";

/// The trait naming `target` on a provider verified with it.
pub fn bitstream_trait(target: &Target) -> String {
    format!("{BITSTREAM_TRAIT_PREFIX}{:032X}", target.bs_uuid.as_u128())
}

/// The trait naming `target` on a provider whose program or read-back of it failed.
pub fn tried_trait(target: &Target) -> String {
    format!("{TRIED_TRAIT_PREFIX}{:032X}", target.bs_uuid.as_u128())
}
/// The resource class reported when an assignment names none (Cyborg's).
pub const DEFAULT_RESOURCE_CLASS: &str = "FPGA";

/// What a device provider should hold.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderTarget {
    /// Provider name, `<host>_<pci address>` or `<host>_<manager>` (plus `_<region>` when a
    /// device reports several regions).
    pub name: String,
    /// Every trait fpga-sync sets on it.
    pub traits: BTreeSet<String>,
    /// Its inventories, all six fields.
    pub inventories: BTreeMap<String, Inventory>,
}

/// A Placement trait name from free text: upper case, every other character `_`.
pub fn trait_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The vendor trait, e.g. `CUSTOM_FPGA_INTEL`.
pub fn vendor_trait(vendor: &str) -> String {
    format!("CUSTOM_FPGA_{}", trait_part(vendor))
}

/// The traits a verified `target` brings: vendor, region (the interface it needs),
/// function id and bitstream id.
pub fn bitstream_traits(target: &Target) -> BTreeSet<String> {
    let vendor = trait_part(&target.vendor);
    let mut out = BTreeSet::from([
        vendor_trait(&target.vendor),
        format!(
            "CUSTOM_FPGA_FUNCTION_ID_{vendor}_{:032X}",
            target.function_uuid.as_u128()
        ),
        bitstream_trait(target),
    ]);
    if let Some(requires) = target.requires() {
        out.insert(format!("CUSTOM_FPGA_REGION_{vendor}_{}", requires.upper()));
    }
    out
}

/// Whether fpga-sync owns `name` on a provider it manages: its own traits and the ones it
/// derives from bitstreams. Traits of the assignment are owned too, but only the ones a
/// desired state names (see [`owned_traits`]); anything else is another writer's.
pub fn is_derived_trait(name: &str) -> bool {
    name.starts_with("CUSTOM_FPGA_SYNC_")
        || name.starts_with("CUSTOM_FPGA_FUNCTION_ID_")
        || name.starts_with("CUSTOM_FPGA_REGION_")
}

/// The provider name of a slot: `<host>_<address>` as Cyborg names deployables (the
/// address is the PCI address, or the FPGA manager's name `fpgaN` for a manager with no
/// PCI device: `<host>_fpga0`), with `_<region>` when the device reports more than one
/// slot.
pub fn provider_name(host: &str, assignment: &SlotAssignment, several: bool) -> String {
    match (&assignment.slot.region, several) {
        (Some(region), true) => format!("{host}_{}_{region}", assignment.slot.address),
        _ => format!("{host}_{}", assignment.slot.address),
    }
}

/// How many units the slot offers: `pf_num` or `vf_num` of the topology, 1 without one.
pub fn units(assignment: &SlotAssignment, target: &Target) -> u64 {
    match (target.topology, assignment.offer) {
        (Some((pf, _)), Offer::Pf) => u64::from(pf.max(1)),
        (Some((_, vf)), Offer::Vf) => u64::from(vf),
        (None, _) => 1,
    }
}

fn inventory(rc: &str, total: u64, reserved: u64) -> BTreeMap<String, Inventory> {
    BTreeMap::from([(
        rc.to_owned(),
        Inventory {
            total,
            reserved,
            min_unit: 1,
            max_unit: total.max(1),
            step_size: 1,
            allocation_ratio: 1.0,
        },
    )])
}

fn resource_class(assignment: &SlotAssignment) -> &str {
    assignment
        .resource_class
        .as_deref()
        .unwrap_or(DEFAULT_RESOURCE_CLASS)
}

/// The provider of a slot whose assigned bitstream is verified on the card: schedulable,
/// with the assignment's traits and the bitstream's.
pub fn verified(name: &str, assignment: &SlotAssignment, target: &Target) -> ProviderTarget {
    let mut traits = bitstream_traits(target);
    traits.extend(assignment.traits.iter().cloned());
    traits.extend([OWNER_TRAIT.to_owned(), VERIFIED_TRAIT.to_owned()]);
    let total = units(assignment, target);
    ProviderTarget {
        name: name.to_owned(),
        traits,
        inventories: inventory(resource_class(assignment), total, 0),
    }
}

/// The provider of a `policy: manual` slot that names a `resource_class`: one unit of it,
/// schedulable, with the entry's traits and [`MANUAL_TRAIT`], and no function or
/// bitstream trait (what the card carries is its user's business).
pub fn manual(name: &str, assignment: &SlotAssignment) -> ProviderTarget {
    let mut traits: BTreeSet<String> = assignment.traits.iter().cloned().collect();
    traits.extend([OWNER_TRAIT.to_owned(), MANUAL_TRAIT.to_owned()]);
    ProviderTarget {
        name: name.to_owned(),
        traits,
        inventories: inventory(resource_class(assignment), 1, 0),
    }
}

/// The trait that records what a withdrawn slot read back.
pub fn carries_trait(loaded: &Loaded) -> String {
    match loaded {
        Loaded::Empty => format!("{CARRIES_TRAIT_PREFIX}NOTHING"),
        Loaded::Id(id) | Loaded::Recorded(id) => format!("{CARRIES_TRAIT_PREFIX}{}", id.upper()),
        Loaded::Unknown(_) => format!("{CARRIES_TRAIT_PREFIX}UNKNOWN"),
    }
}

/// What a withdrawn provider's carries trait says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// The card read back empty.
    Nothing,
    /// The card could not tell.
    Unknown,
    /// This id.
    Id(Id128),
}

/// Reads the carries trait among `traits`, if there is one.
pub fn carried(traits: &BTreeSet<String>) -> Option<Carried> {
    traits.iter().find_map(|t| {
        let rest = t.strip_prefix(CARRIES_TRAIT_PREFIX)?;
        Some(match rest {
            "NOTHING" => Carried::Nothing,
            "UNKNOWN" => Carried::Unknown,
            hex => Carried::Id(hex.parse().ok()?),
        })
    })
}

/// A provider's state as its traits tell it, for people who see no desired state
/// (`fpga-sync observe`): `verified`, `withdrawn: carries nothing`, `FAILED`, `-` (not
/// fpga-sync's, or not reported yet).
pub fn provider_state(traits: &BTreeSet<String>) -> String {
    let carries = || match carried(traits) {
        Some(Carried::Nothing) => ": carries nothing".to_owned(),
        Some(Carried::Unknown) => ": carries an image the card cannot identify".to_owned(),
        Some(Carried::Id(id)) => format!(": carries {id}"),
        None => String::new(),
    };
    if !traits.contains(OWNER_TRAIT) {
        "-".to_owned()
    } else if traits.contains(MANUAL_TRAIT) {
        "manual (claimable)".to_owned()
    } else if traits.contains(FAILED_TRAIT) {
        format!("FAILED{}", carries())
    } else if traits.contains(WITHDRAWN_TRAIT) {
        format!("withdrawn{}", carries())
    } else if traits.contains(VERIFIED_TRAIT) {
        "verified".to_owned()
    } else {
        "-".to_owned()
    }
}

/// Why a slot's provider is taken out of scheduling.
#[derive(Clone, Debug, PartialEq)]
pub enum Withdrawal<'a> {
    /// Read back at the start of a pass: the card carries this, not the assignment.
    ReadBack(&'a Loaded),
    /// A program or read-back of this pass failed: marked failed.
    Failed,
}

/// The provider of a slot that does not carry its assignment: everything reserved, every
/// function trait withdrawn, so nothing is scheduled onto a card that does not carry what
/// its traits would say. A slot withdrawn on its read-back says what it carries (and stays
/// marked failed if `was_failed`); one whose program or read-back failed is marked failed,
/// with the bitstream it tried.
pub fn withdrawn(
    name: &str,
    assignment: &SlotAssignment,
    target: &Target,
    why: Withdrawal<'_>,
    was_failed: bool,
) -> ProviderTarget {
    let mut traits = BTreeSet::from([OWNER_TRAIT.to_owned(), vendor_trait(&target.vendor)]);
    match why {
        Withdrawal::ReadBack(loaded) => {
            traits.insert(WITHDRAWN_TRAIT.to_owned());
            traits.insert(carries_trait(loaded));
            if was_failed {
                traits.insert(FAILED_TRAIT.to_owned());
            }
        }
        Withdrawal::Failed => {
            traits.insert(FAILED_TRAIT.to_owned());
            traits.insert(tried_trait(target));
        }
    }
    let total = units(assignment, target);
    ProviderTarget {
        name: name.to_owned(),
        traits,
        inventories: inventory(resource_class(assignment), total, total),
    }
}

/// Every trait fpga-sync may remove from its providers: its own and derived traits, and
/// `named`: the traits the desired state's assignments name and the vendor traits of its
/// bitstreams. Any other trait on a provider is another writer's and stays.
pub fn owned_traits(named: &BTreeSet<String>) -> impl Fn(&str) -> bool + '_ {
    move |name| is_derived_trait(name) || named.contains(name)
}

/// The traits fpga-sync may remove from its providers: those the assignments name and the
/// vendor traits of the bitstreams.
pub fn named_traits(desired: &crate::desired::Desired) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = desired
        .bitstreams
        .values()
        .map(|b| vendor_trait(&b.spec.metadata.vendor))
        .collect();
    for g in desired.host_groups.values().map(|g| &g.spec) {
        let entries = g
            .devices
            .iter()
            .chain(g.overrides.iter().flat_map(|o| &o.devices));
        out.extend(entries.flat_map(|d| d.traits.iter().cloned()));
    }
    out
}
