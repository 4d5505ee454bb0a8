//! Whether a saved plan still holds: the fingerprints it recorded of every observed
//! object it depends on, recomputed from a fresh observation, and what moved. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::{flavor_fingerprint, flavors, image_fingerprint, images, presence};
use crate::observed::Observed;

/// Recomputes the fingerprints `plan` recorded from a fresh observation, for a saved
/// plan's staleness check: every key of `recorded`, as it is now.
pub fn current_fingerprints(
    recorded: &BTreeMap<String, String>,
    observed: &Observed,
) -> BTreeMap<String, String> {
    let traits: BTreeSet<&str> = observed.traits.iter().map(String::as_str).collect();
    let classes: BTreeSet<&str> = observed
        .resource_classes
        .iter()
        .map(String::as_str)
        .collect();
    recorded
        .keys()
        .map(|key| {
            let (kind, name) = key.split_once(':').unwrap_or((key, ""));
            let now = match kind {
                "trait" => presence(traits.contains(name)),
                "resource_class" => presence(classes.contains(name)),
                "image" => observed
                    .images
                    .iter()
                    .find(|i| i.id.as_str() == name)
                    .map_or_else(|| "absent".into(), image_fingerprint),
                "images_of" => images::ids_of(observed, name),
                "flavor" => observed
                    .flavors
                    .iter()
                    .find(|f| f.id.as_str() == name)
                    .map_or_else(|| "absent".into(), flavor_fingerprint),
                "flavor_named" => flavors::id_named(observed, name),
                _ => "unknown".into(),
            };
            (key.clone(), now)
        })
        .collect()
}

/// What changed since a plan recorded `recorded`: one line per object, for people.
pub fn changes(recorded: &BTreeMap<String, String>, observed: &Observed) -> Vec<String> {
    let now = current_fingerprints(recorded, observed);
    recorded
        .iter()
        .filter(|(k, v)| now.get(*k) != Some(*v))
        .map(|(k, v)| {
            format!(
                "{k}: was {v}, now {}",
                now.get(k).map_or("unknown", String::as_str)
            )
        })
        .collect()
}
