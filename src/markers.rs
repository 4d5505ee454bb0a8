//! The marks fpga-sync leaves on what it creates, so that ownership needs no state file:
//! image properties naming the owner, the source file, its content digest, the commit and
//! the upload's state; an extra spec on flavors. Objects without them are never changed or
//! deleted. Pure: constants and predicates.

use std::collections::BTreeMap;

/// Image property: who manages the image. Value [`OWNER`].
pub const IMAGE_OWNER: &str = "fpga_sync_owner";
/// Image property: the bitstream file's path in the repository.
pub const IMAGE_SOURCE: &str = "fpga_sync_source";
/// Image property: sha256 of the uploaded content.
pub const IMAGE_SHA256: &str = "fpga_sync_sha256";
/// Image property: the commit that last wrote the image (`worktree` when none).
pub const IMAGE_COMMIT: &str = "fpga_sync_commit";
/// Image property: [`STATE_UPLOADING`] from creation until the upload is verified, then
/// [`STATE_COMPLETE`].
pub const IMAGE_STATE: &str = "fpga_sync_state";
/// The owner value.
pub const OWNER: &str = "fpga-sync";
/// Upload not verified yet.
pub const STATE_UPLOADING: &str = "uploading";
/// Upload verified.
pub const STATE_COMPLETE: &str = "complete";

/// Flavor extra spec that marks a flavor as fpga-sync's. Nova ignores keys in unknown
/// namespaces, and no scheduler filter reads this one.
pub const FLAVOR_OWNER_SPEC: &str = "fpga_sync:managed";

/// Whether image properties carry fpga-sync's owner mark.
pub fn image_is_owned(properties: &BTreeMap<String, String>) -> bool {
    properties.get(IMAGE_OWNER).map(String::as_str) == Some(OWNER)
}

/// Whether flavor extra specs carry fpga-sync's owner mark.
pub fn flavor_is_owned(extra_specs: &BTreeMap<String, String>) -> bool {
    extra_specs.get(FLAVOR_OWNER_SPEC).map(String::as_str) == Some("true")
}
