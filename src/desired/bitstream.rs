//! The `Bitstream` kind: one Glance image that fpga-sync keeps, with its file, tags and the
//! bitstream metadata of the Cyborg spec. Plain data and the checks that need only the
//! document itself. Pure: no I/O.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::topology::Topology;

/// The tag every bitstream image carries; it tells bitstreams from VM images.
pub const FPGA_TAG: &str = "FPGA";

/// A bitstream: one Glance image that fpga-sync keeps, with its file and metadata.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bitstream {
    /// Name of the Glance image. Unique among bitstreams; host groups refer to it.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Path of the bitstream file, relative to the desired-state folder (the repository
    /// root, or `--dir`), with `/` separators (e.g. `bitstreams/intel/aes128.gbs`); it must
    /// stay inside that folder. Give exactly one of `file` and `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub file: Option<String>,
    /// `https://` URL of a bitstream kept outside git. Needs `sha256`. Give exactly one of
    /// `file` and `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https://\S+$"))]
    pub url: Option<String>,
    /// sha256 of the file content: 64 lower-case hex digits. Optional with `file` (checked
    /// when given), required with `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
    /// Who may see the image in Glance.
    #[serde(default)]
    pub visibility: Visibility,
    /// Glance tags besides `FPGA`, which every bitstream image carries anyway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 255)))]
    pub tags: Vec<String>,
    /// The bitstream metadata of the Cyborg spec, stored as Glance image properties.
    pub metadata: BitstreamMetadata,
    /// Take over an image of the same `bs-uuid` (or name) that fpga-sync did not create,
    /// such as one uploaded by hand with the `openstack` CLI: its content is checked
    /// against `file` first, then fpga-sync's marks are added.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// Further Glance image properties, such as `type: crypto`. Values are strings. Names
    /// hold at most 255 characters, values at most 65,535 bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// Glance image visibility.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Only the owning project sees it (Glance's default).
    #[default]
    Private,
    /// Every project sees it.
    Public,
    /// The owner and the projects it is shared with.
    Shared,
    /// Every project may use it; it is not listed by default.
    Community,
}

/// The bitstream metadata keys of the Cyborg "FPGA bitstream metadata" spec, under the
/// spec's own names. Keys the spec allows to be null may be left out or set to `null`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BitstreamMetadata {
    /// Bitstream name, e.g. `aes-128`. Need not be unique.
    #[serde(rename = "bs-name")]
    #[schemars(length(min = 1, max = 255))]
    pub bs_name: String,
    /// The bitstream's identity: the uuid generated when it was synthesised. Unique.
    #[serde(rename = "bs-uuid")]
    pub bs_uuid: Uuid,
    /// Card vendor, e.g. `Intel` or `Xilinx`.
    #[schemars(length(min = 1, max = 255))]
    pub vendor: String,
    /// Board type the bitstream loads on, e.g. `PAC-A10` or `U250`.
    #[schemars(length(min = 1, max = 255))]
    pub board: String,
    /// `bs-uuid` of the shell this partial bitstream needs. Null or absent: this bitstream
    /// is itself a shell.
    #[serde(default)]
    pub shell_id: Option<Uuid>,
    /// Version of the bitstream. A string: quote it (`"1.0"`), so `1.10` stays `1.10`.
    #[schemars(length(min = 1, max = 255))]
    pub version: String,
    /// Driver type for this bitstream, e.g. `OPAE` or `XRT`.
    #[serde(default)]
    #[schemars(length(max = 255))]
    pub driver: Option<String>,
    /// Version of the driver. A string: quote it.
    #[schemars(length(min = 1, max = 255))]
    pub driver_ver: String,
    /// Where the host fetches the driver's binaries or scripts from.
    #[schemars(length(min = 1, max = 255))]
    pub driver_path: String,
    /// The physical and virtual functions the loaded bitstream exposes. Stored in Glance as
    /// a JSON string. The spec allows leaving it out when the driver can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
    /// Free description.
    #[serde(default)]
    #[schemars(length(max = 255))]
    pub description: Option<String>,
    /// uuid of the region type this bitstream needs (generated when the shell was
    /// synthesised).
    #[serde(default)]
    pub region_uuid: Option<Uuid>,
    /// uuid of the function type; lets the scheduler match traits to a bitstream.
    pub function_uuid: Uuid,
    /// Function name, e.g. `nic-40` or `aes-128`.
    #[serde(default)]
    #[schemars(length(max = 255))]
    pub function_name: Option<String>,
}

impl Bitstream {
    /// Whether this bitstream is a shell (static region) rather than a partial one.
    pub fn is_shell(&self) -> bool {
        self.metadata.shell_id.is_none()
    }

    /// Every tag the Glance image carries: `FPGA` first, then the declared ones, once each.
    pub fn image_tags(&self) -> Vec<String> {
        let mut tags = vec![FPGA_TAG.to_owned()];
        for tag in &self.tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        tags
    }

    /// The spec's metadata as Glance image properties: every key set, nullable ones left out
    /// when null, `topology` as compact JSON.
    pub fn metadata_properties(&self) -> BTreeMap<&'static str, String> {
        let m = &self.metadata;
        let mut out = BTreeMap::new();
        out.insert("bs-name", m.bs_name.clone());
        out.insert("bs-uuid", m.bs_uuid.to_string());
        out.insert("vendor", m.vendor.clone());
        out.insert("board", m.board.clone());
        out.insert("version", m.version.clone());
        out.insert("driver_ver", m.driver_ver.clone());
        out.insert("driver_path", m.driver_path.clone());
        out.insert("function_uuid", m.function_uuid.to_string());
        let optional = [
            ("shell_id", m.shell_id.map(|u| u.to_string())),
            ("driver", m.driver.clone()),
            ("description", m.description.clone()),
            ("region_uuid", m.region_uuid.map(|u| u.to_string())),
            ("function_name", m.function_name.clone()),
            (
                "topology",
                m.topology.as_ref().map(Topology::to_glance_json),
            ),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                out.insert(key, value);
            }
        }
        out
    }
}

/// The metadata keys of the spec, in the spec's order.
pub const METADATA_KEYS: [&str; 14] = [
    "bs-name",
    "bs-uuid",
    "vendor",
    "board",
    "shell_id",
    "version",
    "driver",
    "driver_ver",
    "driver_path",
    "topology",
    "description",
    "region_uuid",
    "function_uuid",
    "function_name",
];

/// Image properties Glance owns or reserves; a bitstream's `properties` may not set them.
pub const GLANCE_RESERVED_PROPERTIES: [&str; 24] = [
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "size",
    "virtual_size",
    "container_format",
    "disk_format",
    "created_at",
    "updated_at",
    "tags",
    "direct_url",
    "locations",
    "self",
    "file",
    "schema",
    "min_disk",
    "min_ram",
];

/// Prefix of the image properties fpga-sync writes to mark what it owns.
pub const OWNER_PROPERTY_PREFIX: &str = "fpga_sync_";

/// How many ownership marker properties fpga-sync reserves room for on each image.
pub const OWNER_PROPERTY_COUNT: usize = 8;

/// Glance's default `image_property_quota`.
pub const MAX_IMAGE_PROPERTIES: usize = 128;

/// Glance's default `image_tag_quota`.
pub const MAX_IMAGE_TAGS: usize = 128;

/// The most a property value may hold: a MySQL `TEXT` column, which Glance uses.
pub const MAX_PROPERTY_VALUE_BYTES: usize = 65_535;
