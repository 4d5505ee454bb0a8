//! The planner: `plan(input) -> Plan`, a pure, deterministic function from the desired
//! state, the bitstream files' digests and the observed cloud to an ordered list of
//! actions. Traits and resource classes come first, then images, then flavors (after the
//! traits and classes they ask for), then deletions, flavors before images. Nothing it
//! does not own is changed or deleted; a desired object whose place is taken by an
//! unowned one is a problem that says how to adopt it. Pure: no I/O, no clock.

pub mod action;
pub mod fingerprint;
mod flavors;
mod images;
pub mod render;
pub mod schedulable;
pub mod stale;
pub mod why;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use action::{
    Action, Change, FlavorSpec, ImagePatch, ImageSpec, Kind, ObjectType, Operation, Phase,
};
pub use fingerprint::FingerprintKey;
pub use why::Why;

use crate::desired::Desired;
use crate::desired::files::FileDigest;
use crate::observed::Observed;

/// The version of saved plans and of `plan --format json`.
pub const FORMAT_VERSION: u32 = 1;

/// Which objects the plan owns and how it may delete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanSettings {
    /// The site: fpga-sync owns the objects carrying this name in its marks.
    pub site: String,
    /// Delete owned images and flavors that left the repository.
    pub prune: bool,
    /// Above this share of the owned objects, deletions need `allow_mass_delete`.
    pub max_delete_share: f64,
    /// Lift that guard.
    pub allow_mass_delete: bool,
}

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings {
            site: crate::markers::DEFAULT_SITE.into(),
            prune: false,
            max_delete_share: 0.5,
            allow_mass_delete: false,
        }
    }
}

/// What the planner reads.
pub struct PlanInput<'a> {
    /// The desired state.
    pub desired: &'a Desired,
    /// Digests of the bitstream files, by bitstream name.
    pub digests: &'a BTreeMap<String, FileDigest>,
    /// The cloud.
    pub observed: &'a Observed,
    /// Deletion settings.
    pub settings: PlanSettings,
    /// The id of the lease held on the site when it was observed (`docs/locking.md`):
    /// uploads marked with it belong to a live runner and are left alone (noted in
    /// [`Plan::in_progress`]); uploads marked with any other lease, or none, were
    /// interrupted. Under the lease (`apply`) it is the planner's own run's.
    pub live_lease: Option<&'a str>,
}

/// A plan: the ordered actions and what they were computed from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    /// The format's version (`FORMAT_VERSION`): 1.
    pub format_version: u32,
    /// The commit the desired state was read from; `None` for files on disk.
    pub commit: Option<String>,
    /// The actions, in the order they run.
    pub actions: Vec<Action>,
    /// Objects of the desired state already as they should be.
    pub unchanged: usize,
    /// Fingerprints of every observed object the plan depends on: an applied saved plan
    /// must find them unchanged.
    pub fingerprints: BTreeMap<FingerprintKey, String>,
    /// Owned objects that left the repository but stay because pruning is off.
    pub not_pruned: Vec<String>,
    /// Images another live run is uploading (marked with the lease it holds), left alone
    /// by this plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_progress: Vec<String>,
}

/// Something that keeps a plan from being made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl Plan {
    /// Counts by kind: (create, update, replace, delete).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let n = |k: Kind| self.actions.iter().filter(|a| a.kind == k).count();
        (
            n(Kind::Create),
            n(Kind::Update),
            n(Kind::Replace),
            n(Kind::Delete),
        )
    }

    /// Whether it changes anything.
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }
}

/// An action before it has its place in the plan.
pub(crate) struct Draft {
    kind: Kind,
    object: ObjectType,
    name: String,
    reason: Option<Why>,
    changes: Vec<Change>,
    operation: Operation,
    /// Trait and resource class names it needs.
    needs: Vec<String>,
    used_by: Vec<String>,
}

/// Plans. Deterministic: the same input gives the same plan.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut drafts = Vec::new();
    let mut fingerprints = BTreeMap::new();
    let mut not_pruned = Vec::new();
    let mut in_progress = Vec::new();
    let observed = input.observed;
    let desired = input.desired;

    let used_by = references(desired);
    let existing_traits: BTreeSet<&str> = observed.traits.iter().map(String::as_str).collect();
    for name in desired.traits.keys() {
        fingerprints.insert(
            FingerprintKey::Trait(name.clone()),
            presence(existing_traits.contains(name.as_str())),
        );
        if !existing_traits.contains(name.as_str()) {
            drafts.push(Draft {
                kind: Kind::Create,
                object: ObjectType::Trait,
                name: name.clone(),
                reason: None,
                changes: vec![],
                operation: Operation::EnsureTrait { name: name.clone() },
                needs: vec![],
                used_by: used_by.get(name).cloned().unwrap_or_default(),
            });
        }
    }
    let existing_classes: BTreeSet<&str> = observed
        .resource_classes
        .iter()
        .map(String::as_str)
        .collect();
    for name in desired.resource_classes.keys() {
        fingerprints.insert(
            FingerprintKey::ResourceClass(name.clone()),
            presence(existing_classes.contains(name.as_str())),
        );
        if !existing_classes.contains(name.as_str()) {
            drafts.push(Draft {
                kind: Kind::Create,
                object: ObjectType::ResourceClass,
                name: name.clone(),
                reason: None,
                changes: vec![],
                operation: Operation::EnsureResourceClass { name: name.clone() },
                needs: vec![],
                used_by: used_by.get(name).cloned().unwrap_or_default(),
            });
        }
    }
    let images = images::plan(
        input,
        &used_by,
        &mut drafts,
        &mut problems,
        &mut fingerprints,
        &mut not_pruned,
        &mut in_progress,
    );
    let flavors = flavors::plan(
        input,
        &mut drafts,
        &mut problems,
        &mut fingerprints,
        &mut not_pruned,
    );

    // The mass-delete guard counts what pruning removes, not leftovers of interrupted runs.
    let pruned = drafts
        .iter()
        .filter(|d| d.reason.as_ref().is_some_and(Why::is_pruning))
        .count();
    let owned = images.owned + flavors.owned;
    if pruned > 0
        && !input.settings.allow_mass_delete
        && (pruned == owned || pruned as f64 / owned as f64 > input.settings.max_delete_share)
    {
        problems.push(Problem {
            message: format!(
                "refusing to delete {pruned} of the {owned} objects fpga-sync manages ({:.0}%, more than the {:.0}% allowed)",
                100.0 * pruned as f64 / owned as f64,
                100.0 * input.settings.max_delete_share
            ),
            help: "check `--repo`, `--ref` and `--dir` first: a wrong folder looks like an empty repository; if the deletions are meant, add `--allow-mass-delete`".into(),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    drafts.sort_by(|a, b| (a.operation.phase(), &a.name).cmp(&(b.operation.phase(), &b.name)));
    let created: BTreeMap<String, usize> = drafts
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            matches!(
                d.operation,
                Operation::EnsureTrait { .. } | Operation::EnsureResourceClass { .. }
            )
        })
        .map(|(i, d)| (d.name.clone(), i))
        .collect();
    let actions = drafts
        .into_iter()
        .enumerate()
        .map(|(id, d)| {
            let mut depends_on: Vec<usize> = d
                .needs
                .iter()
                .filter_map(|n| created.get(n).copied())
                .collect();
            depends_on.sort_unstable();
            depends_on.dedup();
            Action {
                id,
                kind: d.kind,
                object: d.object,
                name: d.name,
                reason: d.reason,
                changes: d.changes,
                depends_on,
                used_by: d.used_by,
                operation: d.operation,
            }
        })
        .collect();
    Ok(Plan {
        format_version: FORMAT_VERSION,
        commit: desired.commit.clone(),
        actions,
        unchanged: images.unchanged + flavors.unchanged,
        fingerprints,
        not_pruned,
        in_progress,
    })
}

pub(crate) fn presence(present: bool) -> String {
    if present {
        "present".into()
    } else {
        "absent".into()
    }
}

/// For each trait, resource class and bitstream name: the desired objects that use it.
fn references(desired: &Desired) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, f) in &desired.flavors {
        for key in f.spec.extra_specs.keys() {
            if let Some((_, target)) = key
                .split_once(':')
                .filter(|(g, _)| g.starts_with("trait") || g.starts_with("resources"))
            {
                out.entry(target.to_owned())
                    .or_default()
                    .insert(format!("flavor {name}"));
            }
        }
    }
    for (name, g) in &desired.host_groups {
        let devices = g
            .spec
            .devices
            .iter()
            .chain(g.spec.overrides.iter().flat_map(|o| o.devices.iter()));
        for d in devices {
            let names = d
                .bitstream
                .iter()
                .chain(d.shell.iter())
                .chain(d.resource_class.iter())
                .chain(d.traits.iter());
            for n in names {
                out.entry(n.clone())
                    .or_default()
                    .insert(format!("host group {name}"));
            }
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect()
}

/// How many owned objects a rule saw and how many needed nothing.
pub(crate) struct Tally {
    owned: usize,
    unchanged: usize,
}

/// The fingerprint of everything the planner reads of an image.
pub fn image_fingerprint(i: &crate::observed::ObservedImage) -> String {
    // `updated_at` has one-second resolution: the name, visibility and properties
    // themselves are part of the fingerprint, digested to keep it short.
    use sha2::Digest;
    let content = serde_json::json!([i.name, i.visibility, i.properties]).to_string();
    let digest: String = sha2::Sha256::digest(content.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}|{}|{}|{}|{digest}",
        i.status,
        i.updated_at.as_deref().unwrap_or("-"),
        i.os_hash_value.as_deref().unwrap_or("-"),
        i.tags.join(",")
    )
}

/// The fingerprint of everything the planner reads of a flavor.
pub fn flavor_fingerprint(f: &crate::observed::ObservedFlavor) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}",
        f.name,
        f.shape.vcpus,
        f.shape.ram,
        f.shape.disk,
        f.shape.ephemeral,
        f.shape.swap,
        f.shape.is_public,
        f.shape.description.as_deref().unwrap_or("-"),
        serde_json::to_string(&f.extra_specs).unwrap_or_default()
    )
}
