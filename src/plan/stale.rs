//! Whether a saved plan still holds: the fingerprints it recorded of every observed
//! object it depends on, recomputed from a fresh observation, and what moved. Pure.

use std::collections::BTreeMap;
use std::fmt;

use super::{FingerprintKey, flavor_fingerprint, flavors, image_fingerprint, images, presence};
use crate::observed::Observed;

/// An object whose fingerprint moved since a plan recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    /// What it is.
    pub key: FingerprintKey,
    /// Its fingerprint when the plan was made.
    pub old: String,
    /// Its fingerprint now.
    pub new: String,
}

impl fmt::Display for Moved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: was {}, now {}", self.key, self.old, self.new)
    }
}

/// The fingerprint of `key` in `observed`, computed as `plan` records it.
pub fn current(key: &FingerprintKey, observed: &Observed) -> String {
    match key {
        FingerprintKey::Trait(name) => presence(observed.traits.contains(name)),
        FingerprintKey::ResourceClass(name) => presence(observed.resource_classes.contains(name)),
        FingerprintKey::Image(id) => observed
            .images
            .iter()
            .find(|i| &i.id == id)
            .map_or_else(|| "absent".into(), image_fingerprint),
        FingerprintKey::ImagesOf(uuid) => images::ids_of(observed, uuid),
        FingerprintKey::Flavor(id) => observed
            .flavors
            .iter()
            .find(|f| &f.id == id)
            .map_or_else(|| "absent".into(), flavor_fingerprint),
        FingerprintKey::FlavorNamed(name) => flavors::id_named(observed, name),
    }
}

/// Recomputes the fingerprints `plan` recorded from a fresh observation, for a saved
/// plan's staleness check: every key of `recorded`, as it is now.
pub fn current_fingerprints(
    recorded: &BTreeMap<FingerprintKey, String>,
    observed: &Observed,
) -> BTreeMap<FingerprintKey, String> {
    recorded
        .keys()
        .map(|key| (key.clone(), current(key, observed)))
        .collect()
}

/// What moved since a plan recorded `recorded`, in key order.
pub fn changes(recorded: &BTreeMap<FingerprintKey, String>, observed: &Observed) -> Vec<Moved> {
    recorded
        .iter()
        .filter_map(|(key, old)| {
            let new = current(key, observed);
            (&new != old).then(|| Moved {
                key: key.clone(),
                old: old.clone(),
                new,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::{ObservedFlavor, ObservedImage};

    fn observed() -> Observed {
        Observed {
            images: vec![ObservedImage {
                id: "img-1".into(),
                name: Some("aes".into()),
                status: "active".into(),
                visibility: Some("private".into()),
                tags: vec!["FPGA".into()],
                size: Some(1),
                os_hash_algo: None,
                os_hash_value: None,
                updated_at: None,
                properties: BTreeMap::from([("bs-uuid".into(), "u-1".into())]),
            }],
            traits: vec!["CUSTOM_A".into()],
            resource_classes: vec![],
            flavors: vec![ObservedFlavor {
                id: "fl-1".into(),
                name: "fpga.aes".into(),
                shape: crate::observed::FlavorShape {
                    vcpus: 1,
                    ram: 1,
                    disk: 1,
                    ephemeral: 0,
                    swap: 0,
                    is_public: true,
                    description: None,
                },
                extra_specs: BTreeMap::new(),
            }],
            other_flavors: BTreeMap::from([("m1.small".into(), "fl-2".into())]),
            ..Observed::default()
        }
    }

    #[test]
    fn every_kind_of_key_is_recomputed_and_only_what_moved_is_reported() {
        let observed = observed();
        let key = |k: &str| k.parse::<FingerprintKey>().unwrap();
        let recorded: BTreeMap<FingerprintKey, String> = [
            ("trait:CUSTOM_A", "present"),
            ("trait:CUSTOM_B", "present"),
            ("resource_class:CUSTOM_R", "absent"),
            ("image:img-1", "stale"),
            ("image:img-9", "absent"),
            ("images_of:u-1", "img-1"),
            ("images_of:u-2", "img-7"),
            ("flavor:fl-1", "stale"),
            ("flavor_named:fpga.aes", "fl-1"),
            ("flavor_named:m1.small", "fl-2"),
            ("flavor_named:gone", "fl-3"),
        ]
        .into_iter()
        .map(|(k, v)| (key(k), v.to_owned()))
        .collect();
        let now = current_fingerprints(&recorded, &observed);
        assert_eq!(
            now[&key("image:img-1")],
            image_fingerprint(&observed.images[0])
        );
        assert_eq!(
            now[&key("flavor:fl-1")],
            flavor_fingerprint(&observed.flavors[0])
        );
        let moved = changes(&recorded, &observed);
        let keys: Vec<String> = moved.iter().map(|m| m.key.to_string()).collect();
        assert_eq!(
            keys,
            [
                "flavor:fl-1",
                "flavor_named:gone",
                "image:img-1",
                "images_of:u-2",
                "trait:CUSTOM_B"
            ]
        );
        let gone = &moved[1];
        assert_eq!((gone.old.as_str(), gone.new.as_str()), ("fl-3", "none"));
        assert_eq!(gone.to_string(), "flavor_named:gone: was fl-3, now none");
        assert_eq!(
            moved[4].to_string(),
            "trait:CUSTOM_B: was present, now absent"
        );
        assert!(changes(&now, &observed).is_empty());
    }
}
