//! What one host's planner observes, as plain data that serialises both ways: what each
//! driver backend found (or why it could not look), the device providers Placement holds
//! under the host's compute node, and the two options of a pass that change decisions
//! (`--allow-busy`, the slots `watch` is backing off). [`plan`] turns it and the desired state
//! into the host's plan: the same pure step for a live pass (`reconcile::host::observe`)
//! and for an observation saved as JSON and replayed offline (`tests/scenarios`). Pure: no
//! I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::assignment::{self, Target};
use super::rollout::{self, Facts, Gate, Work};
use super::{HostPlan, HostPlanInput, ProviderState, plan_host, provider};
use crate::desired::Desired;
use crate::desired::host_group::Backend;
use crate::host::driver::{DeviceInfo, Slot};

/// What each backend found, or why it could not list devices, as the planner reads it.
pub type Discoveries = BTreeMap<Backend, Result<Vec<DeviceInfo>, String>>;

/// One host as its planner sees it.
///
/// In JSON, `devices` maps each backend to what `fpga-sync devices --format json` prints
/// for it (`{"devices": [...]}`, or `{"error": "..."}` when it could not list them), and
/// `deferred` is a list of `{"address", "region", "reason"}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostObserved {
    /// The host, as the repository names it.
    pub host: String,
    /// What each backend found, or why it could not list devices.
    #[serde(with = "discoveries")]
    pub devices: Discoveries,
    /// The device providers under the host's compute node, by name.
    pub providers: Vec<ProviderState>,
    /// Program slots that are in use.
    #[serde(default)]
    pub force: bool,
    /// Slots not to program this time, and why.
    #[serde(default, with = "deferred")]
    pub deferred: BTreeMap<Slot, String>,
    /// What fpga-sync last programmed and read back in each slot: the file's sha256.
    #[serde(default, with = "programmed")]
    pub programmed: BTreeMap<Slot, String>,
    /// What the rollouts this pass takes part in look like, by host group: the budget,
    /// the canaries, the fleet's verified and failing hosts (see [`rollout::Facts`]). Read
    /// only for groups with a rollout in which the host has a slot to drain.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rollouts: BTreeMap<String, Facts>,
}

/// A host's plan with its rollouts' gates.
#[derive(Clone, Debug)]
pub struct Gated {
    /// The plan: slots of groups whose gate says wait are held back.
    pub plan: HostPlan,
    /// The problems met on the way.
    pub problems: Vec<String>,
    /// Each rollout the host takes part in this pass, and its gate.
    pub gates: BTreeMap<String, (Work, Gate)>,
}

/// Plans the observed host: its slots from the desired state, resolved against the devices
/// found ([`assignment::for_host`]), then [`plan_host`]. `targets` holds every bitstream
/// whose file was identified, by name. Also returns the problems met on the way (a slot
/// assigned twice, a bitstream without a usable file), each as ``host group `g`: ...``.
pub fn plan(
    desired: &Desired,
    targets: &BTreeMap<String, Target>,
    observed: &HostObserved,
) -> (HostPlan, Vec<String>) {
    let g = plan_gated(desired, targets, observed);
    (g.plan, g.problems)
}

/// The rollouts the host takes part in this pass: the plan made without holds, and the
/// groups with a rollout in which it drains a slot.
pub fn rollout_work(
    desired: &Desired,
    targets: &BTreeMap<String, Target>,
    observed: &HostObserved,
) -> BTreeMap<String, Work> {
    let (plan, _) = plan_held(desired, targets, observed, &BTreeMap::new());
    rollout::work(desired, &plan)
}

/// Plans the observed host with its rollouts' gates: a group whose gate says wait (or
/// whose rollout was not read) is held back; the others go ahead.
pub fn plan_gated(
    desired: &Desired,
    targets: &BTreeMap<String, Target>,
    observed: &HostObserved,
) -> Gated {
    let (free, problems) = plan_held(desired, targets, observed, &BTreeMap::new());
    let mut gates = BTreeMap::new();
    let mut held = BTreeMap::new();
    for (group, work) in rollout::work(desired, &free) {
        let gate = match observed.rollouts.get(&group) {
            Some(facts) => rollout::gate(&work.policy, &observed.host, &work.targets, facts),
            None => Gate::Wait {
                reason: "the rollout's state in Placement was not read".to_owned(),
                halted: false,
            },
        };
        if let Gate::Wait { reason, .. } = &gate {
            held.insert(group.clone(), reason.clone());
        }
        gates.insert(group, (work, gate));
    }
    let plan = if held.is_empty() {
        free
    } else {
        plan_held(desired, targets, observed, &held).0
    };
    Gated {
        plan,
        problems,
        gates,
    }
}

fn plan_held(
    desired: &Desired,
    targets: &BTreeMap<String, Target>,
    observed: &HostObserved,
    held: &BTreeMap<String, String>,
) -> (HostPlan, Vec<String>) {
    let found: BTreeMap<Backend, Vec<DeviceInfo>> = observed
        .devices
        .iter()
        .filter_map(|(b, r)| Some((*b, r.as_ref().ok()?.clone())))
        .collect();
    let (assignments, problems) = assignment::for_host(desired, &observed.host, targets, &found);
    let named = provider::named_traits(desired);
    let plan = plan_host(&HostPlanInput {
        host: &observed.host,
        assignments: &assignments,
        targets,
        devices: &observed.devices,
        providers: Some(&observed.providers),
        named_traits: &named,
        force: observed.force,
        deferred: &observed.deferred,
        programmed: &observed.programmed,
        held,
    });
    let problems = problems
        .into_iter()
        .map(|p| format!("host group `{}`: {}", p.group, p.message))
        .collect();
    (plan, problems)
}

/// `devices` as `fpga-sync devices --format json` writes each backend.
mod discoveries {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize)]
    #[serde(rename_all = "lowercase")]
    enum Shown<'a> {
        Devices(&'a [DeviceInfo]),
        Error(&'a str),
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase", deny_unknown_fields)]
    enum Read {
        Devices(Vec<DeviceInfo>),
        Error(String),
    }

    pub(super) fn serialize<S: Serializer>(devices: &Discoveries, s: S) -> Result<S::Ok, S::Error> {
        let shown: BTreeMap<Backend, Shown<'_>> = devices
            .iter()
            .map(|(b, r)| {
                let shown = match r {
                    Ok(d) => Shown::Devices(d),
                    Err(e) => Shown::Error(e),
                };
                (*b, shown)
            })
            .collect();
        shown.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Discoveries, D::Error> {
        Ok(BTreeMap::<Backend, Read>::deserialize(d)?
            .into_iter()
            .map(|(b, r)| match r {
                Read::Devices(d) => (b, Ok(d)),
                Read::Error(e) => (b, Err(e)),
            })
            .collect())
    }
}

/// A map from slots to text, written as a list of `{"address", "region", "<field>"}`:
/// JSON object keys cannot be slots. `deferred` names the text `reason`, `programmed`
/// names it `sha256`.
macro_rules! slot_list {
    ($module:ident, $field:ident) => {
        mod $module {
            use super::*;
            use serde::{Deserializer, Serializer};

            #[derive(Serialize, Deserialize)]
            struct Entry {
                #[serde(flatten)]
                slot: Slot,
                $field: String,
            }

            pub(super) fn serialize<S: Serializer>(
                map: &BTreeMap<Slot, String>,
                s: S,
            ) -> Result<S::Ok, S::Error> {
                let entries: Vec<Entry> = map
                    .iter()
                    .map(|(slot, text)| Entry {
                        slot: slot.clone(),
                        $field: text.clone(),
                    })
                    .collect();
                entries.serialize(s)
            }

            pub(super) fn deserialize<'de, D: Deserializer<'de>>(
                d: D,
            ) -> Result<BTreeMap<Slot, String>, D::Error> {
                Ok(Vec::<Entry>::deserialize(d)?
                    .into_iter()
                    .map(|e| (e.slot, e.$field))
                    .collect())
            }
        }
    };
}

slot_list!(deferred, reason);
slot_list!(programmed, sha256);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::host::driver::{Busy, Loaded, RegionInfo};

    #[test]
    fn a_host_observation_reads_back_what_it_writes_in_the_devices_command_s_shape() {
        let card = DeviceInfo {
            address: "0000:5e:00.0".into(),
            pci_id: Some("8086:09c4".into()),
            backend: Backend::Opae,
            description: "DFL FME FPGA Manager".into(),
            loaded: Loaded::Unknown("FIM bitstream_id 0x1".into()),
            busy: Busy::Free,
            cannot_program: None,
            regions: vec![RegionInfo {
                name: "0".into(),
                accepts: Vec::new(),
                loaded: Loaded::Empty,
                busy: Busy::InUse("SR-IOV: 2 VFs enabled".into()),
            }],
        };
        let observed = HostObserved {
            host: "compute-a01".into(),
            devices: BTreeMap::from([
                (Backend::Opae, Ok(vec![card])),
                (Backend::FpgaManager, Err("no class folder".into())),
            ]),
            providers: vec![ProviderState {
                uuid: "9b0c5a52-1f3c-4a34-8d51-2f8e3b7f5d10".into(),
                name: "compute-a01_0000:5e:00.0".into(),
                traits: BTreeSet::from([provider::OWNER_TRAIT.to_owned()]),
                inventories: BTreeMap::new(),
                allocations: 1,
                consumers: vec![crate::host::plan::consumer::Consumer::id("c-1")],
            }],
            force: true,
            deferred: BTreeMap::from([(
                Slot::region("0000:5e:00.0", "0"),
                "backing off after 3 failures".into(),
            )]),
            programmed: BTreeMap::from([(Slot::region("0000:5e:00.0", "0"), "ab".repeat(32))]),
            rollouts: BTreeMap::new(),
        };
        let json = serde_json::to_value(&observed).unwrap();
        assert_eq!(
            json["devices"]["opae"]["devices"][0]["address"],
            "0000:5e:00.0"
        );
        assert_eq!(json["devices"]["fpga-manager"]["error"], "no class folder");
        assert_eq!(
            json["deferred"],
            serde_json::json!([{"address": "0000:5e:00.0", "region": "0", "reason": "backing off after 3 failures"}])
        );
        let back: HostObserved = serde_json::from_value(json).unwrap();
        assert_eq!(back, observed);
    }
}
