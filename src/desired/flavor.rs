//! The `Flavor` kind: a Nova flavor with its sizes and extra specs, FPGA requests included.
//! Pure: no I/O.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A Nova flavor that fpga-sync keeps.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Flavor {
    /// Flavor name, unique among flavors, e.g. `fpga.aes.medium`.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Number of virtual CPUs.
    #[schemars(range(min = 1))]
    pub vcpus: u32,
    /// Memory in MiB.
    #[schemars(range(min = 1))]
    pub ram: u32,
    /// Root disk in GiB; 0 boots from a volume or the image's size.
    pub disk: u32,
    /// Ephemeral disk in GiB.
    #[serde(default)]
    pub ephemeral: u32,
    /// Swap in MiB.
    #[serde(default)]
    pub swap: u32,
    /// Whether every project may use the flavor.
    #[serde(default = "default_true")]
    pub is_public: bool,
    /// Free description (Nova keeps it from API 2.55 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65535))]
    pub description: Option<String>,
    /// Take over a flavor of this name that fpga-sync did not create: it gets fpga-sync's
    /// mark, then is brought in line like any other.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// Nova extra specs. FPGA requests read `resources:CUSTOM_FPGA_INTEL_PF: 2`,
    /// `trait:CUSTOM_ACCELERATOR_CRYPTO: required`, granular groups `resources1:...` and
    /// `trait1:...`, or `accel:device_profile: NAME`. The seed's `required1: A,B` is accepted
    /// and rewritten to `trait1:A: required` and `trait1:B: required`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_specs: BTreeMap<String, ExtraSpecValue>,
}

fn default_true() -> bool {
    true
}

/// An extra spec value as written: Nova stores strings, and numbers or booleans are read as
/// the string they spell.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ExtraSpecValue {
    /// A string.
    Str(String),
    /// An integer, e.g. a resource amount.
    Int(i64),
    /// A boolean, e.g. `hw:cpu_realtime: true`.
    Bool(bool),
}

impl ExtraSpecValue {
    /// The value as Nova stores it.
    pub fn as_nova_string(&self) -> String {
        match self {
            ExtraSpecValue::Str(s) => s.clone(),
            ExtraSpecValue::Int(i) => i.to_string(),
            ExtraSpecValue::Bool(b) => b.to_string(),
        }
    }
}

impl JsonSchema for ExtraSpecValue {
    fn schema_name() -> Cow<'static, str> {
        "ExtraSpecValue".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An extra spec value; numbers and booleans are stored as the string they spell.",
            "type": ["string", "integer", "boolean"],
            "maxLength": 255
        })
    }
}
