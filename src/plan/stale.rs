//! Whether a saved plan still holds: the fingerprints it recorded of every observed
//! object it depends on, recomputed from a fresh observation, and what moved — said as a
//! person would (`image myaes-1.0: property type changed (crypto → compression) since the
//! plan was made`) from what the plan saw of each object ([`Seen`]) and what is there
//! now. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{FingerprintKey, flavor_fingerprint, flavors, image_fingerprint, images, presence};
use crate::observed::{Observed, ObservedFlavor, ObservedImage};

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

/// What a plan saw of the images and flavors it fingerprinted, kept in the saved plan so
/// that a refusal can say what changed since.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Seen {
    /// The fingerprinted images, as observed.
    pub images: Vec<ObservedImage>,
    /// The fingerprinted flavors, as observed.
    pub flavors: Vec<ObservedFlavor>,
}

impl Seen {
    /// The objects of `observed` whose fingerprints `recorded` holds.
    pub fn of(recorded: &BTreeMap<FingerprintKey, String>, observed: &Observed) -> Seen {
        Seen {
            images: observed
                .images
                .iter()
                .filter(|i| recorded.contains_key(&FingerprintKey::Image(i.id.clone())))
                .cloned()
                .collect(),
            flavors: observed
                .flavors
                .iter()
                .filter(|f| recorded.contains_key(&FingerprintKey::Flavor(f.id.clone())))
                .cloned()
                .collect(),
        }
    }
}

const SINCE: &str = "since the plan was made";

/// A value for a message: at most 40 characters.
fn shown(value: &str) -> String {
    match value.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &value[..i]),
        None => value.to_owned(),
    }
}

/// The differences between two maps: `what k changed (a → b)`, `what k added (v)`,
/// `what k removed (was v)`.
fn map_changes(
    what: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    out: &mut Vec<String>,
) {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for k in keys {
        match (before.get(k), after.get(k)) {
            (Some(a), Some(b)) if a != b => {
                out.push(format!("{what} {k} changed ({} → {})", shown(a), shown(b)));
            }
            (None, Some(b)) => out.push(format!("{what} {k} added ({})", shown(b))),
            (Some(a), None) => out.push(format!("{what} {k} removed (was {})", shown(a))),
            _ => {}
        }
    }
}

fn field_change<T: PartialEq + fmt::Display>(field: &str, a: T, b: T, out: &mut Vec<String>) {
    if a != b {
        out.push(format!("{field} changed ({a} → {b})"));
    }
}

fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

/// What differs between two observations of one image.
fn image_changes(a: &ObservedImage, b: &ObservedImage) -> Vec<String> {
    let mut out = Vec::new();
    field_change(
        "name",
        or_dash(a.name.as_deref()),
        or_dash(b.name.as_deref()),
        &mut out,
    );
    field_change("status", &a.status, &b.status, &mut out);
    field_change(
        "visibility",
        or_dash(a.visibility.as_deref()),
        or_dash(b.visibility.as_deref()),
        &mut out,
    );
    if a.os_hash_value != b.os_hash_value {
        let short =
            |h: Option<&str>| h.map_or("-".to_owned(), |h| format!("{}…", &h[..h.len().min(12)]));
        out.push(format!(
            "content changed (hash {} → {})",
            short(a.os_hash_value.as_deref()),
            short(b.os_hash_value.as_deref())
        ));
    }
    for t in b.tags.iter().filter(|t| !a.tags.contains(t)) {
        out.push(format!("tag {t} added"));
    }
    for t in a.tags.iter().filter(|t| !b.tags.contains(t)) {
        out.push(format!("tag {t} removed"));
    }
    map_changes("property", &a.properties, &b.properties, &mut out);
    if out.is_empty() && a.updated_at != b.updated_at {
        out.push(format!(
            "updated at {} (nothing fpga-sync reads changed)",
            or_dash(b.updated_at.as_deref())
        ));
    }
    out
}

/// What differs between two observations of one flavor.
fn flavor_changes(a: &ObservedFlavor, b: &ObservedFlavor) -> Vec<String> {
    let mut out = Vec::new();
    field_change("name", &a.name, &b.name, &mut out);
    let (x, y) = (&a.shape, &b.shape);
    field_change("vcpus", x.vcpus, y.vcpus, &mut out);
    field_change("ram", x.ram, y.ram, &mut out);
    field_change("disk", x.disk, y.disk, &mut out);
    field_change("ephemeral", x.ephemeral, y.ephemeral, &mut out);
    field_change("swap", x.swap, y.swap, &mut out);
    field_change("is_public", x.is_public, y.is_public, &mut out);
    field_change(
        "description",
        shown(or_dash(x.description.as_deref())),
        shown(or_dash(y.description.as_deref())),
        &mut out,
    );
    map_changes("extra spec", &a.extra_specs, &b.extra_specs, &mut out);
    out
}

fn image_label(id: &str, image: Option<&ObservedImage>) -> String {
    match image.and_then(|i| i.name.as_deref()) {
        Some(name) => format!("image {name}"),
        None => format!("image {id}"),
    }
}

/// `id (name)` of an image, as found in either observation.
fn image_ref(id: &str, seen: Option<&Seen>, now: &Observed) -> String {
    let name = now
        .images
        .iter()
        .chain(seen.iter().flat_map(|s| s.images.iter()))
        .find(|i| i.id.as_str() == id)
        .and_then(|i| i.name.clone());
    match name {
        Some(n) => format!("{n} ({id})"),
        None => id.to_owned(),
    }
}

fn id_list(text: &str) -> BTreeSet<&str> {
    text.split(',')
        .filter(|s| !s.is_empty() && *s != "none")
        .collect()
}

/// `moved` said as a person would: the object by name, and what changed. The images and
/// flavors come from `seen` (what the plan saw, `None` for plans saved before it was
/// recorded: their fingerprints are shown as they are) and `now`.
pub fn explain(moved: &Moved, seen: Option<&Seen>, now: &Observed) -> String {
    let (old, new) = (moved.old.as_str(), moved.new.as_str());
    let created_or_deleted = |what: String| match (old, new) {
        ("absent", "present") => format!("{what} was created {SINCE}"),
        ("present", "absent") => format!("{what} was deleted {SINCE}"),
        _ => moved.to_string(),
    };
    match &moved.key {
        FingerprintKey::Trait(name) => created_or_deleted(format!("trait {name}")),
        FingerprintKey::ResourceClass(name) => created_or_deleted(format!("resource class {name}")),
        FingerprintKey::Image(id) => {
            let after = now.images.iter().find(|i| &i.id == id);
            let Some(seen) = seen else {
                return match after {
                    None => format!("{} was deleted {SINCE}", image_label(id.as_str(), None)),
                    Some(_) => moved.to_string(),
                };
            };
            let before = seen.images.iter().find(|i| &i.id == id);
            match (before, after) {
                (_, None) => format!(
                    "{} ({id}) was deleted {SINCE}",
                    image_label(id.as_str(), before)
                ),
                (None, Some(a)) => format!(
                    "{} ({id}) appeared {SINCE}",
                    image_label(id.as_str(), Some(a))
                ),
                (Some(b), Some(a)) => {
                    let changes = image_changes(b, a);
                    format!(
                        "{}: {} {SINCE}",
                        image_label(id.as_str(), Some(b)),
                        changes.join(", ")
                    )
                }
            }
        }
        FingerprintKey::ImagesOf(uuid) => {
            let (before, after) = (id_list(old), id_list(new));
            let mut parts = Vec::new();
            for id in after.difference(&before) {
                parts.push(format!("image {} appeared", image_ref(id, seen, now)));
            }
            for id in before.difference(&after) {
                parts.push(format!("image {} is gone", image_ref(id, seen, now)));
            }
            format!("images with bs-uuid {uuid}: {} {SINCE}", parts.join(", "))
        }
        FingerprintKey::Flavor(id) => {
            let after = now.flavors.iter().find(|f| &f.id == id);
            let before = seen.and_then(|s| s.flavors.iter().find(|f| &f.id == id));
            let label = |f: Option<&ObservedFlavor>| {
                f.map_or_else(|| format!("flavor {id}"), |f| format!("flavor {}", f.name))
            };
            match (before, after) {
                (_, None) => format!("{} ({id}) was deleted {SINCE}", label(before)),
                (Some(b), Some(a)) => {
                    format!(
                        "{}: {} {SINCE}",
                        label(Some(b)),
                        flavor_changes(b, a).join(", ")
                    )
                }
                (None, Some(_)) => moved.to_string(),
            }
        }
        FingerprintKey::FlavorNamed(name) => match (old, new) {
            ("none", id) => format!("a flavor named {name} was created {SINCE} (id {id})"),
            (id, "none") => format!("flavor {name} ({id}) was deleted {SINCE}"),
            (a, b) => format!("flavor {name} was replaced {SINCE} (id {a} → {b})"),
        },
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
