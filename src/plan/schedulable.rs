//! Whether the repository's FPGA flavors can be scheduled. A flavor's FPGA request is each
//! request group of its extra specs that asks for an FPGA resource class (`FPGA`,
//! `CUSTOM_FPGA*`, or a class some host-group entry reports), with that group's required
//! and forbidden traits; in the unnumbered group, which Nova also fills with VCPU, memory
//! and disk from the compute node, only the FPGA classes count, and a required standard
//! trait that no entry reports is left to the compute node.
//!
//! - [`unschedulable`] (for `validate`): a warning, at the flavor's `resources…` key, for
//!   every FPGA class of a group that no host-group entry of the repository can ever serve:
//!   none reports that class with all those traits (its `traits`, plus the traits
//!   fpga-sync derives from its verified bitstream, see
//!   [`crate::host::plan::provider::verified`]) in the amount asked for (the bitstream's
//!   topology). Repositories without host groups are not checked: their hosts report
//!   through something else (Cyborg).
//! - [`fpga_request`] and [`candidate_query`] (for `plan`): the Placement
//!   allocation-candidates query of a flavor's FPGA request, and [`count`] of the slots
//!   that can serve it now, rendered by [`render`].
//!
//! Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::desired::host_group::{DeviceAssignment, Policy};
use crate::desired::{Desired, DesiredFlavor};
use crate::diagnostic::Diagnostic;
use crate::host::driver::Slot;
use crate::host::id::Id128;
use crate::host::image::{ImageFormat, ImageIdentity};
use crate::host::plan::assignment::{SlotAssignment, Target};
use crate::host::plan::provider;
use crate::observed::is_fpga_resource_class;

/// One request group of a flavor: `resources{suffix}:RC` and `trait{suffix}:T`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// The group's suffix: empty for the unnumbered group, `1`, `_NAME`.
    pub suffix: String,
    /// Resource class → amount.
    pub resources: BTreeMap<String, u64>,
    /// Required traits.
    pub required: BTreeSet<String>,
    /// Forbidden traits.
    pub forbidden: BTreeSet<String>,
}

/// The request groups of normalised extra specs (`requiredN` already rewritten), by suffix.
pub fn request_groups(specs: &BTreeMap<String, String>) -> BTreeMap<String, Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (key, value) in specs {
        let Some((group, name)) = key.split_once(':') else {
            continue;
        };
        if let Some(suffix) = group.strip_prefix("resources") {
            if let Ok(n) = value.parse::<u64>() {
                let g = groups.entry(suffix.to_owned()).or_default();
                g.suffix = suffix.to_owned();
                g.resources.insert(name.to_owned(), n);
            }
        } else if let Some(suffix) = group.strip_prefix("trait") {
            let g = groups.entry(suffix.to_owned()).or_default();
            g.suffix = suffix.to_owned();
            match value.as_str() {
                "required" => g.required.insert(name.to_owned()),
                "forbidden" => g.forbidden.insert(name.to_owned()),
                _ => false,
            };
        }
    }
    groups
}

/// What one host-group entry's slot reports to Placement once its bitstream is verified.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    /// The host group.
    pub group: String,
    /// The bitstream assigned (`None`: a `manual` claimable slot).
    pub bitstream: Option<String>,
    /// Its resource class.
    pub resource_class: String,
    /// How many units (the bitstream's topology).
    pub units: u64,
    /// Every trait it reports.
    pub traits: BTreeSet<String>,
}

/// What every entry of the repository's host groups (overrides included) reports once
/// verified: managed entries with a partial bitstream, and `manual` entries with a
/// `resource_class` (claimable slots).
pub fn offers(desired: &Desired) -> Vec<Offer> {
    let mut out = Vec::new();
    for g in desired.host_groups.values().map(|g| &g.spec) {
        let entries = g
            .devices
            .iter()
            .chain(g.overrides.iter().flat_map(|o| &o.devices));
        for e in entries {
            if let Some(offer) = offer(desired, &g.name, g.backend, e) {
                out.push(offer);
            }
        }
    }
    out
}

fn offer(
    desired: &Desired,
    group: &str,
    backend: crate::desired::host_group::Backend,
    e: &DeviceAssignment,
) -> Option<Offer> {
    let bitstream = match e.policy {
        Policy::Manual => None,
        Policy::Managed => {
            let b = &desired.bitstreams.get(e.bitstream.as_ref()?)?.spec;
            let identity = ImageIdentity {
                format: ImageFormat::Opaque,
                id: Id128::from_uuid(b.metadata.function_uuid),
                requires: None,
            };
            // The region trait comes from `region_uuid` here: the header, which the host
            // reads, names the same interface.
            let target = Target::new(b, "", identity);
            if target.is_shell() {
                return None;
            }
            Some(target)
        }
    };
    if bitstream.is_none() && e.resource_class.is_none() {
        return None;
    }
    let assignment = SlotAssignment {
        slot: Slot::device("0000:00:00.0"),
        backend,
        group: group.to_owned(),
        policy: e.policy,
        bitstream: bitstream.clone(),
        shell: None,
        resource_class: e.resource_class.clone(),
        traits: e.traits.clone(),
        offer: e.offer,
    };
    let reported = match &bitstream {
        Some(t) => provider::verified("", &assignment, t),
        None => provider::manual("", &assignment),
    };
    let (resource_class, inventory) = reported.inventories.into_iter().next()?;
    Some(Offer {
        group: group.to_owned(),
        bitstream: bitstream.map(|t| t.name),
        resource_class,
        units: inventory.total,
        traits: reported.traits,
    })
}

/// A flavor's FPGA request: the groups that ask for an FPGA class, as Placement is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FpgaRequest {
    /// The flavor.
    pub flavor: String,
    /// The groups, each with only its FPGA classes (the unnumbered group) and the traits
    /// that count.
    pub groups: Vec<Group>,
    /// The flavor's `group_policy`, if any.
    pub group_policy: Option<String>,
}

/// Whether `rc` counts FPGAs for the repository: `FPGA`, `CUSTOM_FPGA*`, or a class an
/// entry reports.
fn is_fpga_class(rc: &str, offers: &[Offer]) -> bool {
    is_fpga_resource_class(rc) || offers.iter().any(|o| o.resource_class == rc)
}

/// The FPGA request of a flavor, `None` when it asks for no FPGA class (or is Cyborg's:
/// `accel:device_profile`).
pub fn fpga_request(
    name: &str,
    specs: &BTreeMap<String, String>,
    offers: &[Offer],
) -> Option<FpgaRequest> {
    if specs.contains_key("accel:device_profile") {
        return None;
    }
    let reported: BTreeSet<&str> = offers
        .iter()
        .flat_map(|o| o.traits.iter().map(String::as_str))
        .collect();
    let groups: Vec<Group> = request_groups(specs)
        .into_values()
        .filter(|g| g.resources.keys().any(|rc| is_fpga_class(rc, offers)))
        .map(|mut g| {
            if g.suffix.is_empty() {
                g.resources.retain(|rc, _| is_fpga_class(rc, offers));
                g.required
                    .retain(|t| t.starts_with("CUSTOM_") || reported.contains(t.as_str()));
            }
            g
        })
        .collect();
    (!groups.is_empty()).then(|| FpgaRequest {
        flavor: name.to_owned(),
        groups,
        group_policy: specs.get("group_policy").cloned(),
    })
}

fn serves(offer: &Offer, group: &Group, rc: &str, amount: u64) -> bool {
    offer.resource_class == rc
        && amount <= offer.units
        && group.required.is_subset(&offer.traits)
        && offer.traits.is_disjoint(&group.forbidden)
}

/// A warning for each FPGA class of each flavor's request that no host-group entry can
/// ever serve, at the flavor's `resources…` key.
pub fn unschedulable(desired: &Desired) -> Vec<Diagnostic> {
    if desired.host_groups.is_empty() {
        return Vec::new();
    }
    let offers = offers(desired);
    let mut out = Vec::new();
    for f in desired.flavors.values() {
        let Some(request) = fpga_request(&f.spec.flavor.name, &f.spec.extra_specs, &offers) else {
            continue;
        };
        for g in &request.groups {
            for (rc, amount) in &g.resources {
                if offers.iter().any(|o| serves(o, g, rc, *amount)) {
                    continue;
                }
                out.push(warning(f, g, rc, *amount, &offers));
            }
        }
    }
    out.sort_by_key(|d| {
        d.location
            .as_ref()
            .map(|l| (l.source.path.clone(), l.span.start))
    });
    out
}

fn warning(
    f: &crate::desired::Declared<DesiredFlavor>,
    g: &Group,
    rc: &str,
    amount: u64,
    offers: &[Offer],
) -> Diagnostic {
    let key = format!("resources{}:{rc}", g.suffix);
    let mut asked = format!("{amount} `{rc}`");
    if !g.required.is_empty() {
        let traits: Vec<&str> = g.required.iter().map(String::as_str).collect();
        let _ = write!(asked, " with {}", traits.join(", "));
    }
    if !g.forbidden.is_empty() {
        let traits: Vec<&str> = g.forbidden.iter().map(String::as_str).collect();
        let _ = write!(asked, " without {}", traits.join(", "));
    }
    let same_class: Vec<&Offer> = offers.iter().filter(|o| o.resource_class == rc).collect();
    let why = if same_class.is_empty() {
        let mut classes: Vec<&str> = offers.iter().map(|o| o.resource_class.as_str()).collect();
        classes.sort_unstable();
        classes.dedup();
        format!(
            "no host-group entry reports `{rc}` (they report {})",
            if classes.is_empty() {
                "nothing".to_owned()
            } else {
                classes.join(", ")
            }
        )
    } else {
        let closest = same_class
            .iter()
            .min_by_key(|o| {
                (
                    g.required.difference(&o.traits).count()
                        + g.forbidden.intersection(&o.traits).count(),
                    u64::from(amount > o.units),
                )
            })
            .expect("not empty");
        let missing: Vec<&str> = g
            .required
            .difference(&closest.traits)
            .map(String::as_str)
            .collect();
        let unwanted: Vec<&str> = g
            .forbidden
            .intersection(&closest.traits)
            .map(String::as_str)
            .collect();
        let what = closest
            .bitstream
            .as_ref()
            .map_or("a manual slot".to_owned(), |b| format!("`{b}`"));
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("lacks {}", missing.join(", ")));
        }
        if !unwanted.is_empty() {
            parts.push(format!("has {}", unwanted.join(", ")));
        }
        if amount > closest.units {
            parts.push(format!("offers {} unit(s)", closest.units));
        }
        format!(
            "the closest entry, host group `{}` with {what}, {}",
            closest.group,
            parts.join(" and ")
        )
    };
    let pointer = format!("/extra_specs/{}", crate::yaml::escape(&key));
    let ctx = &f.context;
    Diagnostic::warning(
        "fpga_sync::unschedulable",
        format!(
            "flavor `{}` can never be scheduled: it asks for {asked}{}, and {why}",
            f.spec.flavor.name,
            if g.suffix.is_empty() {
                String::new()
            } else {
                format!(" in group `{}`", g.suffix)
            }
        ),
    )
    .at(&ctx.source, ctx.index.key(&pointer))
    .help(
        "a slot reports its entry's `resource_class` and `traits`, and once its bitstream is verified CUSTOM_FPGA_<VENDOR>, CUSTOM_FPGA_FUNCTION_ID_<VENDOR>_<function_uuid>, CUSTOM_FPGA_REGION_<VENDOR>_<region_uuid>, CUSTOM_FPGA_SYNC_BS_<bs-uuid> and CUSTOM_FPGA_SYNC_VERIFIED, with pf_num (or vf_num) units; assign a bitstream that gives the flavor what it asks, or change the flavor",
    )
}

/// The allocation-candidates query of an FPGA request (`resources{N}`, `required{N}` with
/// `!` for forbidden traits, `group_policy` when several numbered groups ask).
pub fn candidate_query(request: &FpgaRequest) -> Vec<(String, String)> {
    let mut query = Vec::new();
    for g in &request.groups {
        let resources: Vec<String> = g
            .resources
            .iter()
            .map(|(rc, n)| format!("{rc}:{n}"))
            .collect();
        query.push((format!("resources{}", g.suffix), resources.join(",")));
        let traits: Vec<String> = g
            .required
            .iter()
            .cloned()
            .chain(g.forbidden.iter().map(|t| format!("!{t}")))
            .collect();
        if !traits.is_empty() {
            query.push((format!("required{}", g.suffix), traits.join(",")));
        }
    }
    let numbered = request
        .groups
        .iter()
        .filter(|g| !g.suffix.is_empty())
        .count();
    if numbered > 1 || request.group_policy.is_some() {
        query.push((
            "group_policy".to_owned(),
            request
                .group_policy
                .clone()
                .unwrap_or_else(|| "none".to_owned()),
        ));
    }
    query
}

/// How many slots can serve one FPGA flavor now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FlavorSlots {
    /// The flavor.
    pub flavor: String,
    /// The allocation-candidates query asked (`resources=…&required=…`).
    pub request: String,
    /// How many distinct providers Placement offers the FPGA classes from; `None` when
    /// Placement could not be asked.
    pub slots: Option<usize>,
    /// Their names (uuids when they are not among the observed FPGA providers).
    pub providers: Vec<String>,
    /// Why Placement could not be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The query as text, for people.
pub fn query_text(query: &[(String, String)]) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The distinct providers that the candidates take the request's FPGA classes from, by
/// name (`names`: uuid → name; unknown uuids are kept as they are), sorted.
pub fn count(
    request: &FpgaRequest,
    candidates: &[BTreeMap<String, BTreeMap<String, u64>>],
    names: &BTreeMap<String, String>,
) -> Vec<String> {
    let classes: BTreeSet<&str> = request
        .groups
        .iter()
        .flat_map(|g| g.resources.keys().map(String::as_str))
        .collect();
    let mut out: Vec<String> = candidates
        .iter()
        .flat_map(|c| c.iter())
        .filter(|(_, r)| r.keys().any(|rc| classes.contains(rc.as_str())))
        .map(|(uuid, _)| names.get(uuid).cloned().unwrap_or_else(|| uuid.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The section of `plan` for people (`markdown` for a merge-request comment).
pub fn render(flavors: &[FlavorSlots], markdown: bool) -> String {
    let mut out = String::new();
    if flavors.is_empty() {
        return out;
    }
    if markdown {
        let _ = writeln!(
            out,
            "\n### FPGA flavors (slots Placement offers now)\n\n| flavor | slots | providers | request |\n|---|---|---|---|"
        );
        for f in flavors {
            let slots = f.slots.map_or_else(
                || format!("unknown: {}", f.error.as_deref().unwrap_or("")),
                |n| n.to_string(),
            );
            let providers: Vec<String> = f.providers.iter().map(|p| format!("`{p}`")).collect();
            let _ = writeln!(
                out,
                "| `{}` | {}{} | {} | `{}` |",
                f.flavor,
                slots,
                if f.slots == Some(0) { " ⚠" } else { "" },
                providers.join(", "),
                f.request
            );
        }
    } else {
        let _ = writeln!(out, "\nFPGA flavors, as Placement can place them now:");
        for f in flavors {
            let line = match f.slots {
                None => format!("unknown: {}", f.error.as_deref().unwrap_or("")),
                Some(0) => format!("0 slots: nothing offers {}", f.request),
                Some(n) => format!("{n} slot(s): {}", f.providers.join(", ")),
            };
            let _ = writeln!(out, "  {:<28} {line}", f.flavor);
        }
    }
    out
}
