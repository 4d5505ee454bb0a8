//! Planning rules for flavors. A flavor is its name. Nova cannot change a flavor's sizes,
//! so a size change is a replace that says which field forces it; the description and
//! extra specs change in place. Only flavors with fpga-sync's mark are changed or deleted.
//! Pure.

use std::collections::BTreeMap;

use super::{
    Change, Draft, FingerprintKey, FlavorSpec, Kind, ObjectType, Operation, PlanInput, Problem,
    Tally, Why, flavor_fingerprint,
};
use crate::desired::DesiredFlavor;
use crate::markers::{self, FLAVOR_OWNER_SPEC};
use crate::observed::{FlavorId, FlavorShape, Observed, ObservedFlavor};

/// The id of the flavor named `name`, or `none`, for fingerprints.
pub(super) fn id_named(observed: &Observed, name: &str) -> String {
    observed
        .flavors
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.id.to_string())
        .or_else(|| observed.other_flavors.get(name).map(FlavorId::to_string))
        .unwrap_or_else(|| "none".into())
}

fn spec(f: &DesiredFlavor, site: &str) -> FlavorSpec {
    let mut extra_specs = f.extra_specs.clone();
    extra_specs.insert(FLAVOR_OWNER_SPEC.into(), site.into());
    let d = &f.flavor;
    FlavorSpec {
        id: Some(markers::flavor_id(site, &d.name)),
        name: d.name.clone(),
        shape: FlavorShape {
            vcpus: d.vcpus,
            ram: d.ram,
            disk: d.disk,
            ephemeral: d.ephemeral,
            swap: d.swap,
            is_public: d.is_public,
            description: d.description.clone(),
        },
        extra_specs,
    }
}

/// The fields Nova cannot change in place, old and new, where they differ.
fn fixed_changes(spec: &FlavorSpec, o: &ObservedFlavor) -> Vec<Change> {
    let fields = [
        (
            "vcpus",
            o.shape.vcpus.to_string(),
            spec.shape.vcpus.to_string(),
        ),
        ("ram", o.shape.ram.to_string(), spec.shape.ram.to_string()),
        (
            "disk",
            o.shape.disk.to_string(),
            spec.shape.disk.to_string(),
        ),
        (
            "ephemeral",
            o.shape.ephemeral.to_string(),
            spec.shape.ephemeral.to_string(),
        ),
        (
            "swap",
            o.shape.swap.to_string(),
            spec.shape.swap.to_string(),
        ),
        (
            "is_public",
            o.shape.is_public.to_string(),
            spec.shape.is_public.to_string(),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(field, old, new)| Change {
            field: field.into(),
            old: Some(old),
            new: Some(new),
        })
        .collect()
}

fn spec_changes(
    spec: &FlavorSpec,
    o: &ObservedFlavor,
) -> (Vec<Change>, BTreeMap<String, String>, Vec<String>) {
    let mut changes = Vec::new();
    let mut set = BTreeMap::new();
    let mut unset = Vec::new();
    for (k, v) in &spec.extra_specs {
        if o.extra_specs.get(k) != Some(v) {
            changes.push(Change {
                field: format!("extra_specs.{k}"),
                old: o.extra_specs.get(k).cloned(),
                new: Some(v.clone()),
            });
            set.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in &o.extra_specs {
        if !spec.extra_specs.contains_key(k) {
            changes.push(Change {
                field: format!("extra_specs.{k}"),
                old: Some(v.clone()),
                new: None,
            });
            unset.push(k.clone());
        }
    }
    (changes, set, unset)
}

pub(super) fn plan(
    input: &PlanInput<'_>,
    drafts: &mut Vec<Draft>,
    problems: &mut Vec<Problem>,
    fingerprints: &mut BTreeMap<FingerprintKey, String>,
    not_pruned: &mut Vec<String>,
) -> Tally {
    let observed = input.observed;
    let owned: Vec<&ObservedFlavor> = observed
        .flavors
        .iter()
        .filter(|f| markers::flavor_site(&f.extra_specs) == Some(input.settings.site.as_str()))
        .collect();
    let mut tally = Tally {
        owned: owned.len(),
        unchanged: 0,
    };
    for (name, declared) in &input.desired.flavors {
        let spec = spec(&declared.spec, &input.settings.site);
        fingerprints.insert(
            FingerprintKey::FlavorNamed(name.clone()),
            id_named(observed, name),
        );
        let needs: Vec<String> = spec
            .extra_specs
            .keys()
            .filter_map(|k| k.split_once(':').map(|(_, n)| n.to_owned()))
            .collect();
        let draft = |kind, reason, changes, operation| Draft {
            kind,
            object: ObjectType::Flavor,
            name: name.clone(),
            reason,
            changes,
            operation,
            needs: needs.clone(),
            used_by: vec![],
        };
        let existing = observed.flavors.iter().find(|f| &f.name == name);
        let Some(existing) = existing else {
            let own_id = markers::flavor_id(&input.settings.site, name);
            if let Some(id) = observed
                .other_flavors
                .get(name)
                .filter(|id| id.as_str() == own_id)
            {
                // fpga-sync created it (its id says so) but was stopped before marking
                // it: its sizes are not known, so it is created again.
                fingerprints.insert(FingerprintKey::Flavor(id.clone()), "unmarked".into());
                drafts.push(draft(
                    Kind::Replace,
                    Some(Why::InterruptedFlavor { id: id.clone() }),
                    vec![],
                    Operation::ReplaceFlavor {
                        old_id: id.clone(),
                        flavor: spec,
                    },
                ));
            } else if let Some(id) = observed
                .other_flavors
                .get(name)
                .filter(|_| !declared.spec.flavor.adopt)
            {
                problems.push(Problem {
                    message: format!("flavor `{name}` ({}) collides with flavor {id} that fpga-sync does not manage", declared.origin()),
                    help: "to take it over, add `adopt: true` to the Flavor; or choose another name".into(),
                });
            } else if let Some(id) = observed.other_flavors.get(name) {
                // Adopting a flavor without FPGA extra specs: bring it in line in place where
                // Nova allows, else replace it.
                let o = ObservedFlavor {
                    id: id.clone(),
                    name: name.clone(),
                    shape: crate::observed::FlavorShape {
                        vcpus: 0,
                        ram: 0,
                        disk: 0,
                        ephemeral: 0,
                        swap: 0,
                        is_public: spec.shape.is_public,
                        description: None,
                    },
                    extra_specs: BTreeMap::new(),
                };
                drafts.push(draft(
                    Kind::Replace,
                    Some(Why::AdoptFlavor { id: id.clone() }),
                    fixed_changes(&spec, &o),
                    Operation::ReplaceFlavor {
                        old_id: id.clone(),
                        flavor: spec,
                    },
                ));
            } else {
                let what = Some(Why::NewFlavor {
                    vcpus: spec.shape.vcpus,
                    ram: spec.shape.ram,
                    disk: spec.shape.disk,
                });
                let specs = spec
                    .extra_specs
                    .iter()
                    .filter(|(k, _)| *k != FLAVOR_OWNER_SPEC)
                    .map(|(k, v)| Change {
                        field: format!("extra_specs.{k}"),
                        old: None,
                        new: Some(v.clone()),
                    })
                    .collect();
                drafts.push(draft(
                    Kind::Create,
                    what,
                    specs,
                    Operation::CreateFlavor { flavor: spec },
                ));
            }
            continue;
        };
        fingerprints.insert(
            FingerprintKey::Flavor(existing.id.clone()),
            flavor_fingerprint(existing),
        );
        if markers::flavor_site(&existing.extra_specs) != Some(input.settings.site.as_str())
            && !declared.spec.flavor.adopt
        {
            problems.push(Problem {
                message: format!(
                    "flavor `{name}` ({}) collides with flavor {} that fpga-sync does not manage",
                    declared.origin(),
                    existing.id
                ),
                help: "to take it over, add `adopt: true` to the Flavor; or choose another name"
                    .into(),
            });
            continue;
        }
        let fixed = fixed_changes(&spec, existing);
        if !fixed.is_empty() {
            let why = Why::FixedFields(fixed.clone());
            let mut changes = fixed;
            changes.extend(spec_changes(&spec, existing).0);
            drafts.push(draft(
                Kind::Replace,
                Some(why),
                changes,
                Operation::ReplaceFlavor {
                    old_id: existing.id.clone(),
                    flavor: spec,
                },
            ));
            continue;
        }
        let (mut changes, set_specs, unset_specs) = spec_changes(&spec, existing);
        let description = (existing.shape.description != spec.shape.description).then(|| {
            changes.insert(
                0,
                Change {
                    field: "description".into(),
                    old: existing.shape.description.clone(),
                    new: spec.shape.description.clone(),
                },
            );
            spec.shape.description.clone()
        });
        if changes.is_empty() {
            tally.unchanged += 1;
        } else {
            drafts.push(draft(
                Kind::Update,
                None,
                changes,
                Operation::UpdateFlavor {
                    id: existing.id.clone(),
                    description,
                    set_specs,
                    unset_specs,
                },
            ));
        }
    }
    for f in owned
        .iter()
        .filter(|f| !input.desired.flavors.contains_key(&f.name))
    {
        fingerprints.insert(FingerprintKey::Flavor(f.id.clone()), flavor_fingerprint(f));
        if input.settings.prune {
            drafts.push(Draft {
                kind: Kind::Delete,
                object: ObjectType::Flavor,
                name: f.name.clone(),
                reason: Some(Why::PrunedFlavor { id: f.id.clone() }),
                changes: vec![],
                operation: Operation::DeleteFlavor { id: f.id.clone() },
                needs: vec![],
                used_by: vec![],
            });
        } else {
            not_pruned.push(format!("flavor {} ({})", f.name, f.id));
        }
    }
    tally
}
