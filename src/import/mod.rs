//! What `fpga-sync import` writes for what a cloud already holds, so that an operator who
//! did the seed's manual steps moves to fpga-sync in one command (the flow, with its I/O,
//! is [`crate::reconcile::import`]). Into `--to DIR`:
//!
//! - `bitstreams.yaml`: one Bitstream per active FPGA-tagged image, with its data downloaded
//!   into `bitstreams/files/` (streamed, checked against Glance's hash), its sha256 pinned,
//!   the spec's metadata (the `topology` JSON turned back into structured YAML), the other
//!   properties, and `adopt: true` so the first apply takes the image over;
//! - `placement.yaml`: the custom traits and resource classes;
//! - `flavors.yaml`: the flavors with FPGA requests, extra specs included, `adopt: true`;
//! - `fpga-sync.schema.json`, which each YAML file's modeline names for editors.
//!
//! fpga-sync's own marks (`fpga_sync_*` properties, the `fpga_sync:site` extra spec) are
//! left out, and so are the `owner_specified.*` checksums openstacksdk adds to its uploads.
//! Metadata the spec needs but an image lacks is never made up: the document gets `# TODO`
//! comments, a warning is printed, and `validate` points at the gap. Existing files are not
//! overwritten without `--overwrite`; nothing is written unless every download worked.
//! `--match` takes the images and flavors it names and the custom traits and resource
//! classes those flavors ask for.
//!
//! Pure: choosing what to import ([`select`]), naming the files, and rendering the YAML
//! ([`bitstreams_file`], [`placement_file`], [`flavors_file`]); no I/O here.

use std::collections::{BTreeMap, BTreeSet};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::desired::bitstream::{
    FPGA_TAG, GLANCE_RESERVED_PROPERTIES, METADATA_KEYS, OWNER_PROPERTY_PREFIX,
};
use crate::desired::topology::{PhysicalFunction, Topology, VirtualFunction};
use crate::desired::{API_VERSION, Kind};
use crate::diagnostic::Diagnostic;
use crate::markers::{self, FLAVOR_OWNER_SPEC};
use crate::observed::{Observed, ObservedFlavor, ObservedImage};

mod documents;
mod select;
mod yaml;

pub use documents::*;
pub use select::*;
pub use yaml::*;

/// The file of the Bitstream documents, in `--to`.
pub const BITSTREAMS_FILE: &str = "bitstreams.yaml";
/// The file of the Trait and ResourceClass documents.
pub const PLACEMENT_FILE: &str = "placement.yaml";
/// The file of the Flavor documents.
pub const FLAVORS_FILE: &str = "flavors.yaml";
/// The JSON Schema the YAML files' modelines name.
pub const SCHEMA_FILE: &str = "fpga-sync.schema.json";
/// Where the downloaded bitstream files go, relative to `--to`.
pub const FILES_DIR: &str = "bitstreams/files";

/// The longest file name stem written, in bytes (file systems allow 255 for the whole name).
const MAX_STEM: usize = 200;
/// Metadata keys the spec requires.
const REQUIRED_KEYS: [&str; 8] = [
    "bs-name",
    "bs-uuid",
    "vendor",
    "board",
    "version",
    "driver_ver",
    "driver_path",
    "function_uuid",
];
/// Metadata keys that hold a uuid.
const UUID_KEYS: [&str; 4] = ["bs-uuid", "shell_id", "region_uuid", "function_uuid"];
/// File name suffixes kept from an image name.
const BITSTREAM_SUFFIXES: [&str; 3] = [".gbs", ".xclbin", ".bin"];

/// The `--match` patterns as one set; `None` imports everything.
pub fn name_filter(patterns: &[String]) -> Result<Option<GlobSet>, Diagnostic> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let glob = Glob::new(p).map_err(|e| {
            Diagnostic::error(
                "fpga_sync::bad_pattern",
                format!("`--match {p}` is not a valid glob: {e}"),
            )
            .help("write a glob such as `fpga.*` or `*-crypto-*`; quote it for the shell")
        })?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| Diagnostic::error("fpga_sync::bad_pattern", format!("`--match`: {e}")))
}

/// Every path the import writes, relative to `--to`.
pub fn targets(selection: &Selection) -> Vec<String> {
    [BITSTREAMS_FILE, PLACEMENT_FILE, FLAVORS_FILE, SCHEMA_FILE]
        .into_iter()
        .map(str::to_owned)
        .chain(selection.images.iter().map(|i| i.file.clone()))
        .collect()
}

/// The last component of a path relative to `--to`.
pub fn file_name_of(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

#[cfg(test)]
mod tests;
