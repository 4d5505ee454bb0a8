//! What the cloud holds that fpga-sync cares about, as plain data: FPGA-tagged images,
//! custom traits and resource classes, FPGA device providers with their inventories and
//! traits, and flavors that ask for FPGA resources. Built by `cloud::observe`; read by the
//! planner and by `fpga-sync observe`. Pure: no I/O here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use crate::cloud::glance::ImageStatus;
use crate::cloud::placement::Inventory;

/// An id newtype: a string the cloud assigned, kept apart from names and from other kinds
/// of ids so that one is never passed for another. Written as the plain string.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Serialize, PartialEq)]
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
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ObservedFlavor {
    /// Its id.
    pub id: FlavorId,
    /// Its name.
    pub name: String,
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
    /// Extra specs, all of them.
    pub extra_specs: BTreeMap<String, String>,
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
}
