//! The marks fpga-sync leaves on what it creates, so that ownership needs no state file:
//! image properties naming the owning site, the source file, its content digest, the
//! commit, the upload's state and the lease it was uploaded under; an extra spec on
//! flavors, and the id a flavor is created with (derived from the site and its name, so a
//! creation interrupted before its extra specs were set is still known as fpga-sync's). A
//! *site* is one desired-state
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

/// The id fpga-sync creates the flavor `name` of `site` with: a UUID (version 8, RFC 9562)
/// from the sha256 of both. Nova keeps the id it is given, so a flavor created but killed
/// before its extra specs (and so the site's mark) were set is recognised by it.
pub fn flavor_id(site: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("fpga-sync flavor\n{site}\n{name}").as_bytes());
    let mut b: [u8; 16] = digest[..16].try_into().expect("a sha256 has 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
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
