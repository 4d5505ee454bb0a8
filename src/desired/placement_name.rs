//! The `Trait` and `ResourceClass` kinds, and the rules for Placement names: which are
//! custom (`CUSTOM_*`, declared in the repo) and which are standard (known to every
//! Placement). Pure: no I/O.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The pattern of a custom Placement trait or resource class name.
pub const CUSTOM_NAME_PATTERN: &str = "^CUSTOM_[A-Z0-9_]+$";

/// The longest Placement name.
pub const MAX_NAME_LEN: usize = 255;

/// A custom Placement trait that fpga-sync makes sure exists.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Trait {
    /// The trait: `CUSTOM_` then upper-case letters, digits and underscores, at most 255
    /// characters, e.g. `CUSTOM_ACCELERATOR_CRYPTO`.
    #[schemars(regex(pattern = r"^CUSTOM_[A-Z0-9_]+$"), length(max = 255))]
    pub name: String,
    /// What the trait means, for the people who read the repo (Placement keeps no
    /// description).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A custom Placement resource class that fpga-sync makes sure exists.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceClass {
    /// The resource class: `CUSTOM_` then upper-case letters, digits and underscores, at
    /// most 255 characters, e.g. `CUSTOM_FPGA_INTEL_PF`.
    #[schemars(regex(pattern = r"^CUSTOM_[A-Z0-9_]+$"), length(max = 255))]
    pub name: String,
    /// What the resource class counts, for the people who read the repo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Whether `name` is a well-formed custom Placement name.
pub fn is_custom_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && name.strip_prefix("CUSTOM_").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// The standard resource classes of `os-resource-classes`, which every Placement knows.
pub const STANDARD_RESOURCE_CLASSES: [&str; 22] = [
    "VCPU",
    "MEMORY_MB",
    "DISK_GB",
    "PCI_DEVICE",
    "SRIOV_NET_VF",
    "NUMA_SOCKET",
    "NUMA_CORE",
    "NUMA_THREAD",
    "NUMA_MEMORY_MB",
    "IPV4_ADDRESS",
    "VGPU",
    "VGPU_DISPLAY_HEAD",
    "NET_BW_EGR_KILOBIT_PER_SEC",
    "NET_BW_IGR_KILOBIT_PER_SEC",
    "PCPU",
    "MEM_ENCRYPTION_CONTEXT",
    "FPGA",
    "PGPU",
    "NET_PACKET_RATE_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
    "ACCELERATOR_CONTEXT",
];

/// The namespaces of the standard traits of `os-traits`. A trait outside `CUSTOM_` is
/// accepted when it is well formed and starts with one of these; the exact list is the
/// Placement's to judge.
pub const STANDARD_TRAIT_PREFIXES: [&str; 7] = [
    "COMPUTE_",
    "HW_",
    "STORAGE_",
    "MISC_",
    "OWNER_",
    "HW_NIC_",
    "ACCELERATOR_",
];

/// Whether `name` reads as a standard `os-traits` trait.
pub fn is_standard_trait(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && STANDARD_TRAIT_PREFIXES.iter().any(|p| name.starts_with(p))
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_names() {
        assert!(is_custom_name("CUSTOM_FPGA_INTEL_PF"));
        assert!(!is_custom_name("CUSTOM_"));
        assert!(!is_custom_name("CUSTOM_fpga"));
        assert!(!is_custom_name("FPGA"));
        assert!(!is_custom_name(&format!("CUSTOM_{}", "A".repeat(249))));
        assert!(is_custom_name(&format!("CUSTOM_{}", "A".repeat(248))));
    }

    #[test]
    fn standard_traits() {
        assert!(is_standard_trait("HW_CPU_X86_AVX2"));
        assert!(is_standard_trait("COMPUTE_ACCELERATORS"));
        assert!(!is_standard_trait("CUSTOM_X"));
        assert!(!is_standard_trait("hw_cpu"));
    }
}
