//! The fleet view of the central `plan`: each host's FPGA slots as verified, pending,
//! withdrawn or failed, from what Placement holds (the providers the host agents report) against what
//! the repository assigns. The host agents are the ones that program; this only reads
//! their reports. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::desired::host_group::{Policy, resolve_for_host};
use crate::desired::{Desired, host_entry_matches};
use crate::host::driver::{is_manager_name, is_pci_address};
use crate::host::plan::assignment::Target;
use crate::host::plan::consumer::{self, Consumer};
use crate::host::plan::provider;
use crate::observed::ObservedProvider;

/// A slot's state as Placement tells it.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum FleetState {
    /// The host agent read the assigned bitstream back and reported it.
    Verified,
    /// Not reported yet, or reported for another bitstream (the agent has not caught up).
    Pending,
    /// The agent read back something other than the assignment: reserved, function
    /// withdrawn until a read-back matches.
    Withdrawn,
    /// The agent's last program or read-back failed: reserved, function withdrawn.
    Failed,
}

/// One reported or expected device provider.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct FleetSlot {
    /// The host.
    pub host: String,
    /// The provider name (`<host>_<address>[_<region>]`, `<host>_<manager>`).
    pub provider: String,
    /// The bitstream assigned.
    pub bitstream: String,
    /// Its state.
    pub state: FleetState,
    /// Why, for people.
    pub detail: String,
    /// Who holds allocations on a slot that is not verified (a server keeps running on a
    /// withdrawn slot until it is moved or deleted; a claim until it is released), when
    /// they were looked up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<Consumer>,
}

/// The host and device address a provider name carries: `<host>_<dddd:bb:dd.f>[_<region>]`,
/// or `<host>_fpga<N>` for an FPGA manager without a PCI device (no regions).
pub fn parse_provider_name(name: &str) -> Option<(&str, &str, Option<&str>)> {
    if let Some(i) = name.rfind('_')
        && i > 0
        && is_manager_name(&name[i + 1..])
    {
        return Some((&name[..i], &name[i + 1..], None));
    }
    let is_pci = is_pci_address;
    let mut at = name.len();
    while let Some(i) = name[..at].rfind('_') {
        let rest = &name[i + 1..];
        let (address, region) = match rest.get(12..) {
            Some("") => (rest, None),
            Some(r) if r.starts_with('_') => (&rest[..12], Some(&r[1..])),
            _ => {
                at = i;
                continue;
            }
        };
        if is_pci(address) {
            return Some((&name[..i], address, region));
        }
        at = i;
    }
    None
}

/// The state of every slot that reports a provider, for hosts named explicitly (reported
/// or not) and hosts matched by pattern that have reported. `consumers` holds who holds
/// allocations on providers, by provider name (those looked up: see
/// [`FleetSlot::consumers`]).
pub fn fleet(
    desired: &Desired,
    targets: &BTreeMap<String, Target>,
    providers: &[ObservedProvider],
    consumers: &BTreeMap<String, Vec<Consumer>>,
) -> Vec<FleetSlot> {
    let owned: BTreeMap<&str, &ObservedProvider> = providers
        .iter()
        .filter(|p| p.traits.contains(provider::OWNER_TRAIT))
        .map(|p| (p.name.as_str(), p))
        .collect();
    let mut hosts: BTreeMap<String, ()> = BTreeMap::new();
    for g in desired.host_groups.values().map(|g| &g.spec) {
        for h in g
            .hosts
            .iter()
            .filter(|h| !crate::desired::host_group::is_pattern(h))
        {
            hosts.insert(h.clone(), ());
        }
        for name in owned.keys() {
            if let Some((host, _, _)) = parse_provider_name(name)
                && g.hosts.iter().any(|h| host_entry_matches(h, host))
            {
                hosts.insert(host.to_owned(), ());
            }
        }
    }
    let mut out = Vec::new();
    for host in hosts.keys() {
        for g in desired.host_groups.values().map(|g| &g.spec) {
            if !g.hosts.iter().any(|h| host_entry_matches(h, host)) {
                continue;
            }
            let (_, entries) = resolve_for_host(g, host, host_entry_matches);
            let reporting: Vec<_> = entries
                .iter()
                .filter(|e| e.policy == Policy::Managed)
                .filter_map(|e| Some((e, targets.get(e.bitstream.as_ref()?)?)))
                .filter(|(_, t)| !t.is_shell())
                .collect();
            for (entry, target) in &reporting {
                let several = |address: &str| {
                    reporting
                        .iter()
                        .filter(|(e, _)| e.device().as_deref() == Some(address))
                        .count()
                        > 1
                };
                let names: Vec<String> = match (entry.device(), &entry.pci_id) {
                    (Some(a), _) => {
                        vec![match (&entry.region, several(&a)) {
                            (Some(r), true) => format!("{host}_{a}_{r}"),
                            _ => format!("{host}_{a}"),
                        }]
                    }
                    // Which devices a `pci_id` selects only the host knows: its reports.
                    (None, Some(_)) => owned
                        .keys()
                        .filter(|n| parse_provider_name(n).is_some_and(|(h, _, _)| h == host))
                        .map(|n| (*n).to_owned())
                        .collect(),
                    (None, None) => Vec::new(),
                };
                for name in names {
                    let bs_trait = format!(
                        "{}{:032X}",
                        provider::BITSTREAM_TRAIT_PREFIX,
                        target.bs_uuid.as_u128()
                    );
                    let carried = owned
                        .get(name.as_str())
                        .and_then(|p| provider::carried(&p.traits))
                        .map(|c| carried_text(c, targets, target));
                    let (state, detail) = match owned.get(name.as_str()) {
                        None => (FleetState::Pending, "not reported yet".to_owned()),
                        Some(p) if p.traits.contains(provider::FAILED_TRAIT) => (
                            FleetState::Failed,
                            match carried {
                                Some(c) => format!(
                                    "the host agent's last program or read-back failed; reserved; {c}"
                                ),
                                None => {
                                    "the host agent's last program or read-back failed; reserved"
                                        .to_owned()
                                }
                            },
                        ),
                        Some(p) if p.traits.contains(provider::WITHDRAWN_TRAIT) => (
                            FleetState::Withdrawn,
                            carried.unwrap_or_else(|| format!("does not carry `{}`", target.name)),
                        ),
                        Some(p)
                            if p.traits.contains(provider::VERIFIED_TRAIT)
                                && p.traits.contains(&bs_trait) =>
                        {
                            (FleetState::Verified, "read back and reported".to_owned())
                        }
                        Some(_) => (
                            FleetState::Pending,
                            "reported, but not yet for this bitstream".to_owned(),
                        ),
                    };
                    let holders = consumers.get(&name).cloned().unwrap_or_default();
                    let detail = if holders.is_empty() || state == FleetState::Verified {
                        detail
                    } else {
                        format!(
                            "{detail}; held by {}",
                            consumer::holders(&holders, holders.len())
                        )
                    };
                    out.push(FleetSlot {
                        host: host.clone(),
                        provider: name,
                        bitstream: target.name.clone(),
                        state,
                        detail,
                        consumers: if state == FleetState::Verified {
                            Vec::new()
                        } else {
                            holders
                        },
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.host, &a.provider).cmp(&(&b.host, &b.provider)));
    out.dedup_by(|a, b| a.provider == b.provider);
    out
}

/// What a withdrawn slot carries, for people: `carries nothing (expected `aes-1.1`)`.
fn carried_text(
    c: provider::Carried,
    targets: &BTreeMap<String, Target>,
    expected: &Target,
) -> String {
    let what = match c {
        provider::Carried::Nothing => "nothing".to_owned(),
        provider::Carried::Unknown => "an image the card cannot identify".to_owned(),
        provider::Carried::Id(id) => match targets.values().find(|t| t.identity.id == id) {
            Some(t) => format!("`{}`", t.name),
            None => format!("{id}"),
        },
    };
    format!("carries {what} (expected `{}`)", expected.name)
}

/// The fleet view for people (`markdown` for a merge-request comment).
pub fn render(slots: &[FleetSlot], markdown: bool) -> String {
    let mut out = String::new();
    let count = |s: FleetState| slots.iter().filter(|x| x.state == s).count();
    if markdown {
        let _ = writeln!(
            out,
            "\n### Host devices (from Placement)\n\n| host | provider | bitstream | state | detail |\n|---|---|---|---|---|"
        );
        for s in slots {
            let _ = writeln!(
                out,
                "| {} | `{}` | `{}` | {:?} | {} |",
                s.host, s.provider, s.bitstream, s.state, s.detail
            );
        }
    } else {
        let _ = writeln!(
            out,
            "\nHost devices, as the host agents reported them to Placement:"
        );
        for s in slots {
            let mark = match s.state {
                FleetState::Verified => "verified",
                FleetState::Pending => "pending ",
                FleetState::Withdrawn => "withdrawn",
                FleetState::Failed => "FAILED  ",
            };
            let _ = writeln!(
                out,
                "  {mark} {:<40} `{}`: {}",
                s.provider, s.bitstream, s.detail
            );
        }
    }
    let _ = writeln!(
        out,
        "\nDevices: {} verified, {} pending, {} withdrawn, {} failed.",
        count(FleetState::Verified),
        count(FleetState::Pending),
        count(FleetState::Withdrawn),
        count(FleetState::Failed)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::parse_provider_name;

    #[test]
    fn provider_names_give_host_address_and_region() {
        assert_eq!(
            parse_provider_name("compute_a01.example.org_0000:5e:00.0"),
            Some(("compute_a01.example.org", "0000:5e:00.0", None))
        );
        assert_eq!(
            parse_provider_name("h1_0000:5e:00.0_1"),
            Some(("h1", "0000:5e:00.0", Some("1")))
        );
        assert_eq!(
            parse_provider_name("kria_01.example.org_fpga0"),
            Some(("kria_01.example.org", "fpga0", None))
        );
        assert_eq!(parse_provider_name("_fpga0"), None);
        assert_eq!(parse_provider_name("h_fpgax"), None);
        assert_eq!(parse_provider_name("compute-01"), None);
        assert_eq!(parse_provider_name("h_0000:5e:00"), None);
    }
}
