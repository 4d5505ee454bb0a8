//! The keys of a plan's fingerprints: which observed object (or question about the cloud)
//! a fingerprint is of. Written as `kind:name` strings, the keys of the saved plan's
//! `fingerprints` map; a key of a kind this fpga-sync does not know is an error when the
//! plan is read. Pure.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::observed::{FlavorId, ImageId};

/// What a fingerprint is of.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FingerprintKey {
    /// `trait:NAME`: whether the trait exists.
    Trait(String),
    /// `resource_class:NAME`: whether the resource class exists.
    ResourceClass(String),
    /// `image:ID`: everything the planner reads of the image.
    Image(ImageId),
    /// `images_of:BS_UUID`: the ids of the images with this `bs-uuid`.
    ImagesOf(String),
    /// `flavor:ID`: everything the planner reads of the flavor.
    Flavor(FlavorId),
    /// `flavor_named:NAME`: the id of the flavor with this name.
    FlavorNamed(String),
}

/// The kinds, as written before the `:`.
const KINDS: [&str; 6] = [
    "trait",
    "resource_class",
    "image",
    "images_of",
    "flavor",
    "flavor_named",
];

impl FingerprintKey {
    /// The kind, as written before the `:`.
    pub fn kind(&self) -> &'static str {
        match self {
            FingerprintKey::Trait(_) => "trait",
            FingerprintKey::ResourceClass(_) => "resource_class",
            FingerprintKey::Image(_) => "image",
            FingerprintKey::ImagesOf(_) => "images_of",
            FingerprintKey::Flavor(_) => "flavor",
            FingerprintKey::FlavorNamed(_) => "flavor_named",
        }
    }

    /// The name, id or uuid after the `:`.
    pub fn name(&self) -> &str {
        match self {
            FingerprintKey::Trait(s)
            | FingerprintKey::ResourceClass(s)
            | FingerprintKey::ImagesOf(s)
            | FingerprintKey::FlavorNamed(s) => s,
            FingerprintKey::Image(id) => id.as_str(),
            FingerprintKey::Flavor(id) => id.as_str(),
        }
    }
}

impl fmt::Display for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.name())
    }
}

/// A fingerprint key that is not `kind:name` with a known kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` is not a fingerprint key: expected `KIND:NAME` with KIND one of {}", KINDS.join(", "))]
pub struct BadFingerprintKey {
    /// The key as written.
    pub key: String,
}

impl FromStr for FingerprintKey {
    type Err = BadFingerprintKey;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        let bad = || BadFingerprintKey {
            key: key.to_owned(),
        };
        let (kind, name) = key.split_once(':').ok_or_else(bad)?;
        let name = name.to_owned();
        Ok(match kind {
            "trait" => FingerprintKey::Trait(name),
            "resource_class" => FingerprintKey::ResourceClass(name),
            "image" => FingerprintKey::Image(name.into()),
            "images_of" => FingerprintKey::ImagesOf(name),
            "flavor" => FingerprintKey::Flavor(name.into()),
            "flavor_named" => FingerprintKey::FlavorNamed(name),
            _ => return Err(bad()),
        })
    }
}

// The order of the keys is the order of the saved plan's `fingerprints` map, which was
// the order of the `kind:name` strings: kind, then name. No kind followed by `:` is a
// prefix of another, so comparing the parts is comparing the strings.
impl Ord for FingerprintKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.kind(), self.name()).cmp(&(other.kind(), other.name()))
    }
}

impl PartialOrd for FingerprintKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for FingerprintKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl schemars::JsonSchema for FingerprintKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FingerprintKey".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "What a fingerprint is of: `trait:NAME`, `resource_class:NAME`, `image:ID`, `images_of:BS_UUID`, `flavor:ID` or `flavor_named:NAME`.",
            "type": "string",
            "pattern": "^(trait|resource_class|image|images_of|flavor|flavor_named):"
        })
    }
}

impl<'de> Deserialize<'de> for FingerprintKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn every_kind() -> Vec<FingerprintKey> {
        vec![
            FingerprintKey::Trait("CUSTOM_FPGA".into()),
            FingerprintKey::ResourceClass("CUSTOM_FPGA_INTEL_PF".into()),
            FingerprintKey::Image("0f3c6a4e-1b2d-4c5e-8f90-a1b2c3d4e5f6".into()),
            FingerprintKey::ImagesOf("5e4f3a2b-1c0d-4e8f-9a7b-6c5d4e3f2a1b".into()),
            FingerprintKey::Flavor("42".into()),
            FingerprintKey::FlavorNamed("fpga.aes:medium".into()),
        ]
    }

    #[test]
    fn keys_are_kind_colon_name_both_ways() {
        let texts: Vec<String> = every_kind().iter().map(|k| k.to_string()).collect();
        assert_eq!(
            texts,
            [
                "trait:CUSTOM_FPGA",
                "resource_class:CUSTOM_FPGA_INTEL_PF",
                "image:0f3c6a4e-1b2d-4c5e-8f90-a1b2c3d4e5f6",
                "images_of:5e4f3a2b-1c0d-4e8f-9a7b-6c5d4e3f2a1b",
                "flavor:42",
                "flavor_named:fpga.aes:medium",
            ]
        );
        for key in every_kind() {
            assert_eq!(key.to_string().parse::<FingerprintKey>(), Ok(key.clone()));
            assert_eq!(KINDS.iter().filter(|k| **k == key.kind()).count(), 1);
        }
    }

    #[test]
    fn a_key_of_an_unknown_kind_is_an_error() {
        for key in ["provider:abc", "image", "", "Trait:CUSTOM_FPGA"] {
            let err = key.parse::<FingerprintKey>().unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.to_string().contains("not a fingerprint key"), "{err}");
        }
        let err = serde_json::from_str::<BTreeMap<FingerprintKey, String>>(
            r#"{"trait:X": "present", "provider:abc": "absent"}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`provider:abc` is not a fingerprint key"),
            "{err}"
        );
    }

    #[test]
    fn as_a_map_the_keys_keep_the_order_and_text_of_the_strings() {
        let keys = every_kind();
        let typed: BTreeMap<FingerprintKey, String> =
            keys.iter().map(|k| (k.clone(), k.kind().into())).collect();
        let strings: BTreeMap<String, String> = keys
            .iter()
            .map(|k| (k.to_string(), k.kind().into()))
            .collect();
        let json = serde_json::to_string_pretty(&typed).unwrap();
        assert_eq!(json, serde_json::to_string_pretty(&strings).unwrap());
        let back: BTreeMap<FingerprintKey, String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, typed);
        // Names that sort differently from their kinds.
        let mut names = [
            FingerprintKey::Flavor("z".into()),
            FingerprintKey::FlavorNamed("a".into()),
            FingerprintKey::Image("zz".into()),
            FingerprintKey::ImagesOf("0".into()),
            FingerprintKey::Image("".into()),
        ];
        names.sort();
        let sorted: Vec<String> = names.iter().map(|k| k.to_string()).collect();
        let mut as_strings = sorted.clone();
        as_strings.sort();
        assert_eq!(sorted, as_strings);
    }
}
