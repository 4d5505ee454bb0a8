//! The marks fpga-sync leaves on what it creates, so that ownership needs no state file:
//! image properties naming the owning site, the source file, its content digest, the
//! commit, the upload's state and the lease it was uploaded under; an extra spec on
//! flavors. A *site* is one desired-state
//! repository (`--site`, default `default`), so several repositories can share a cloud
//! without touching each other's objects. Objects without the site's mark are never
//! changed or deleted. Pure: constants and predicates.

use std::collections::BTreeMap;

/// Image property: the fpga-sync site that manages the image.
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
/// Image property: the id of the lease (`docs/locking.md`) under which the image's upload
/// runs, set with the [`STATE_UPLOADING`] mark and left as a record once it is
/// [`STATE_COMPLETE`]. An upload marked with the lease a live runner holds is that
/// runner's, in progress; one marked with any other lease, or with none (made before
/// leases), was interrupted.
pub const IMAGE_LEASE: &str = "fpga_sync_lease";
/// The resource class of the lease providers' one unit (`docs/locking.md`): fpga-sync's
/// own, never part of a desired state.
pub const LEASE_CLASS: &str = "CUSTOM_FPGA_SYNC_LEASE";
/// The site of a repository that names none.
pub const DEFAULT_SITE: &str = "default";
/// Upload not verified yet.
pub const STATE_UPLOADING: &str = "uploading";
/// Upload verified.
pub const STATE_COMPLETE: &str = "complete";

/// Flavor extra spec naming the fpga-sync site that manages the flavor. Nova ignores keys
/// in unknown namespaces, and no scheduler filter reads this one.
pub const FLAVOR_OWNER_SPEC: &str = "fpga_sync:site";

/// The site whose mark an image carries, if any.
pub fn image_site(properties: &BTreeMap<String, String>) -> Option<&str> {
    properties.get(IMAGE_OWNER).map(String::as_str)
}

/// The site whose mark a flavor carries, if any.
pub fn flavor_site(extra_specs: &BTreeMap<String, String>) -> Option<&str> {
    extra_specs.get(FLAVOR_OWNER_SPEC).map(String::as_str)
}

/// The lease an image's upload runs under, if it is marked `uploading` and records one.
pub fn upload_lease(properties: &BTreeMap<String, String>) -> Option<&str> {
    (properties.get(IMAGE_STATE).map(String::as_str) == Some(STATE_UPLOADING))
        .then(|| properties.get(IMAGE_LEASE).map(String::as_str))
        .flatten()
}
