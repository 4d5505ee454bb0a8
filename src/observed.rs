//! What the cloud holds that fpga-sync cares about, as plain data: FPGA-tagged images,
//! custom traits and resource classes, FPGA device providers with their inventories and
//! traits, and flavors that ask for FPGA resources. Built by `cloud::observe`; read by the
//! planner and by `fpga-sync observe`. It serialises both ways: the JSON `fpga-sync
//! observe --format json` prints reads back into an [`Observed`] (its extra
//! `format_version` and `cloud` keys are ignored), so a plan can be replayed offline
//! (`tests/scenarios`). Pure: no I/O here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// An id newtype: a string the cloud assigned, kept apart from names and from other kinds
/// of ids so that one is never passed for another. Written as the plain string.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            schemars::JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as the service writes it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A Glance image's id (never its name).
    ImageId
);
id_type!(
    /// A Nova flavor's id (never its name).
    FlavorId
);

/// A snapshot of the cloud.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Observed {
    /// Images tagged `FPGA`, by name then id.
    pub images: Vec<ObservedImage>,
    /// Custom traits, sorted.
    pub traits: Vec<String>,
    /// Custom resource classes, sorted.
    pub resource_classes: Vec<String>,
    /// Nested providers with FPGA inventories or traits, by name.
    pub providers: Vec<ObservedProvider>,
    /// Flavors whose extra specs ask for FPGA resources or traits, or that fpga-sync owns,
    /// by name.
    pub flavors: Vec<ObservedFlavor>,
    /// Every other flavor, name → id: only to tell a desired flavor that its name is taken.
    pub other_flavors: BTreeMap<String, FlavorId>,
}

/// An FPGA image in Glance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ObservedImage {
    /// Its id.
    pub id: ImageId,
    /// Its name.
    pub name: Option<String>,
    /// `active`, `queued`, ...
    pub status: ImageStatus,
    /// Visibility.
    pub visibility: Option<String>,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// Multihash algorithm.
    pub os_hash_algo: Option<String>,
    /// Multihash.
    pub os_hash_value: Option<String>,
    /// Last change.
    pub updated_at: Option<String>,
    /// Custom properties: the bitstream metadata among them.
    pub properties: BTreeMap<String, String>,
}

/// An FPGA device (or region) resource provider.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ObservedProvider {
    /// Its uuid.
    pub uuid: String,
    /// Its name (Cyborg and fpga-sync: `<host>_<pci address>`).
    pub name: String,
    /// Its generation.
    pub generation: u64,
    /// Its parent's uuid.
    pub parent: Option<String>,
    /// Inventories by resource class.
    pub inventories: BTreeMap<String, Inventory>,
    /// Traits.
    pub traits: BTreeSet<String>,
}

/// A flavor with FPGA requests.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ObservedFlavor {
    /// Its id.
    pub id: FlavorId,
    /// Its name.
    pub name: String,
    /// Its sizes, visibility and description.
    #[serde(flatten)]
    pub shape: FlavorShape,
    /// Extra specs, all of them.
    pub extra_specs: BTreeMap<String, String>,
}

/// A flavor's fields besides its id, name and extra specs, as Nova holds them: what the
/// planner compares, the executor creates and the observation reads — one shape for all.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct FlavorShape {
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory, MiB.
    pub ram: u32,
    /// Root disk, GiB.
    pub disk: u32,
    /// Ephemeral disk, GiB.
    pub ephemeral: u32,
    /// Swap, MiB.
    pub swap: u32,
    /// Public or not.
    pub is_public: bool,
    /// Description.
    pub description: Option<String>,
}

/// Whether a resource class counts FPGAs.
pub fn is_fpga_resource_class(name: &str) -> bool {
    name == "FPGA" || name.starts_with("CUSTOM_FPGA")
}

/// Whether a trait is about FPGAs or accelerators.
pub fn is_fpga_trait(name: &str) -> bool {
    name.starts_with("CUSTOM_FPGA") || name.starts_with("CUSTOM_ACCELERATOR")
}

/// Whether an extra spec asks for FPGA resources, FPGA traits or a Cyborg device profile.
pub fn is_fpga_extra_spec(key: &str) -> bool {
    if key.starts_with("accel:") {
        return true;
    }
    match key.split_once(':') {
        Some((group, name)) if group.starts_with("resources") => is_fpga_resource_class(name),
        Some((group, name)) if group.starts_with("trait") => is_fpga_trait(name),
        _ => false,
    }
}

/// One resource class's inventory on a provider: all six fields.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Inventory {
    /// How many there are.
    pub total: u64,
    /// How many are held back from scheduling.
    pub reserved: u64,
    /// The smallest allocation.
    pub min_unit: u64,
    /// The largest allocation.
    pub max_unit: u64,
    /// Allocations are multiples of this.
    pub step_size: u64,
    /// Overcommit ratio.
    pub allocation_ratio: f64,
}

/// An image's status, as Glance names it. Reads and writes the same strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ImageStatus {
    /// A record without data.
    Queued,
    /// Data is being uploaded (the upload call).
    Saving,
    /// Data is being staged (the import call).
    Uploading,
    /// Staged data is being imported.
    Importing,
    /// Data stored and usable.
    Active,
    /// Data not downloadable by non-admins.
    Deactivated,
    /// An upload failed.
    Killed,
    /// Deleted, the record kept.
    Deleted,
    /// Deleted, the data not removed yet.
    PendingDelete,
    /// Any other status, as Glance wrote it.
    Other(String),
}

impl ImageStatus {
    /// The name Glance uses.
    pub fn as_str(&self) -> &str {
        match self {
            ImageStatus::Queued => "queued",
            ImageStatus::Saving => "saving",
            ImageStatus::Uploading => "uploading",
            ImageStatus::Importing => "importing",
            ImageStatus::Active => "active",
            ImageStatus::Deactivated => "deactivated",
            ImageStatus::Killed => "killed",
            ImageStatus::Deleted => "deleted",
            ImageStatus::PendingDelete => "pending_delete",
            ImageStatus::Other(s) => s,
        }
    }
}

impl From<&str> for ImageStatus {
    fn from(s: &str) -> Self {
        match s {
            "queued" => ImageStatus::Queued,
            "saving" => ImageStatus::Saving,
            "uploading" => ImageStatus::Uploading,
            "importing" => ImageStatus::Importing,
            "active" => ImageStatus::Active,
            "deactivated" => ImageStatus::Deactivated,
            "killed" => ImageStatus::Killed,
            "deleted" => ImageStatus::Deleted,
            "pending_delete" => ImageStatus::PendingDelete,
            other => ImageStatus::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for ImageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ImageStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ImageStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ImageStatus::from(String::deserialize(d)?.as_str()))
    }
}

impl schemars::JsonSchema for ImageStatus {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ImageStatus".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The image's status as Glance names it: queued, saving, uploading, importing, active, deactivated, killed, deleted, pending_delete, or any other string Glance writes.",
            "type": "string"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fpga_extra_specs_are_recognised() {
        assert!(is_fpga_extra_spec("resources1:CUSTOM_FPGA_INTEL_PF"));
        assert!(is_fpga_extra_spec("resources:FPGA"));
        assert!(is_fpga_extra_spec("trait:CUSTOM_ACCELERATOR_CRYPTO"));
        assert!(is_fpga_extra_spec("accel:device_profile"));
        assert!(!is_fpga_extra_spec("resources:VCPU"));
        assert!(!is_fpga_extra_spec("hw:cpu_policy"));
    }

    #[test]
    fn what_observe_prints_reads_back_unchanged() {
        let printed = serde_json::json!({
            "format_version": 1,
            "cloud": "local-noauth",
            "images": [{
                "id": "6a1f2b9e-0c1d-4f5e-9a8b-7c6d5e4f3a2b",
                "name": "aes-128",
                "status": "active",
                "visibility": "private",
                "tags": ["FPGA"],
                "size": 14,
                "os_hash_algo": "sha512",
                "os_hash_value": "ab".repeat(64),
                "updated_at": "2025-01-15T10:00:00Z",
                "properties": {"bs-uuid": "20d0ca1f-9329-4be1-a1b6-d7e9ab7d2fee"}
            }],
            "traits": ["CUSTOM_FPGA"],
            "resource_classes": ["CUSTOM_FPGA_INTEL_PF"],
            "providers": [{
                "uuid": "9b0c5a52-1f3c-4a34-8d51-2f8e3b7f5d10",
                "name": "compute-a01_0000:5e:00.0",
                "generation": 3,
                "parent": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
                "inventories": {"CUSTOM_FPGA_INTEL_PF": {
                    "total": 2, "reserved": 0, "min_unit": 1, "max_unit": 2,
                    "step_size": 1, "allocation_ratio": 1.0
                }},
                "traits": ["CUSTOM_FPGA_SYNC_MANAGED"]
            }],
            "flavors": [{
                "id": "5d0f3c1e-2b4a-4c6d-8e9f-0a1b2c3d4e5f",
                "name": "fpga.aes",
                "vcpus": 4, "ram": 8192, "disk": 40, "ephemeral": 0, "swap": 0,
                "is_public": true,
                "description": null,
                "extra_specs": {"resources:CUSTOM_FPGA_INTEL_PF": "2"}
            }],
            "other_flavors": {"m1.small": "2"}
        });
        let observed: Observed = serde_json::from_value(printed.clone()).unwrap();
        let mut again = serde_json::to_value(&observed).unwrap();
        let again = again.as_object_mut().unwrap();
        let mut printed = printed.as_object().unwrap().clone();
        printed.remove("format_version");
        printed.remove("cloud");
        assert_eq!(again, &printed);
    }
}
