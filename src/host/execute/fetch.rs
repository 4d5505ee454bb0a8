//! The host's bitstream cache: fetches a bitstream image from Glance into a
//! content-addressed local directory, verified against the repository's sha256 and
//! Glance's own hash; a file in the cache is complete and verified or absent. I/O: Glance
//! over HTTP, the cache directory.
//!
//! A cached file is `<dir>/<sha256>`, read-only. Downloads go to a temporary file beside
//! it and are renamed into place only once verified ([`Glance::download`]); a cached file
//! is hashed again whenever it is asked for, and deleted when it no longer matches, so a
//! file changed between fetch and programming is caught. The cache folder is made `0700`
//! and used only while it is the agent's alone (its own user's, not writable by others,
//! not a symlink, nor its parent); a cached entry that is a symlink is never followed.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::cloud::error::CloudError;
use crate::cloud::glance::{Glance, Image, ImageStatus};
use crate::desired::bitstream::FPGA_TAG;
use crate::markers::{IMAGE_OWNER, IMAGE_SHA256, IMAGE_STATE, STATE_COMPLETE};

/// The image property naming the bitstream's uuid.
pub const BS_UUID_PROPERTY: &str = "bs-uuid";

/// What went wrong fetching a bitstream.
#[derive(Debug)]
pub enum FetchError {
    /// No complete image of the site carries the bitstream.
    NotInGlance {
        /// The bitstream's uuid.
        bs_uuid: String,
        /// Its sha256.
        sha256: String,
        /// The site.
        site: String,
    },
    /// The text given as a sha256 is not one (64 lower-case hex digits).
    BadDigest {
        /// The text.
        sha256: String,
    },
    /// The downloaded data did not match its digests; nothing was kept.
    Corrupt {
        /// The image.
        image: String,
        /// What did not match.
        detail: String,
    },
    /// Glance failed.
    Cloud(CloudError),
    /// The cache folder is not the agent's alone (see [`crate::private_dir`]).
    NotPrivate(crate::private_dir::NotPrivate),
    /// The cache directory could not be written.
    Io {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NotInGlance {
                bs_uuid,
                sha256,
                site,
            } => write!(
                f,
                "bitstream {bs_uuid} (sha256 {sha256}) is not in Glance: no active image tagged \
                 `{FPGA_TAG}` with `{BS_UUID_PROPERTY}` = {bs_uuid}, `{IMAGE_OWNER}` = {site}, \
                 `{IMAGE_SHA256}` = {sha256} and `{IMAGE_STATE}` = {STATE_COMPLETE}; \
                 `fpga-sync apply` (central) uploads it"
            ),
            FetchError::BadDigest { sha256 } => {
                write!(f, "`{sha256}` is not a sha256 (64 lower-case hex digits)")
            }
            FetchError::Corrupt { image, detail } => write!(
                f,
                "the download of image {image} did not match and was discarded: {detail}"
            ),
            FetchError::Cloud(e) => write!(f, "{e}"),
            FetchError::NotPrivate(e) => write!(f, "the bitstream cache is refused: {e}"),
            FetchError::Io { path, reason } => write!(f, "{path}: {reason}"),
        }
    }
}

impl std::error::Error for FetchError {}

impl From<CloudError> for FetchError {
    fn from(e: CloudError) -> Self {
        FetchError::Cloud(e)
    }
}

impl From<FetchError> for crate::diagnostic::Diagnostic {
    fn from(e: FetchError) -> Self {
        crate::diagnostic::Diagnostic::error("fpga_sync::host", e.to_string())
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The active, complete image of `site` that carries bitstream `bs_uuid` with content
/// `sha256`: tagged `FPGA`, with `bs-uuid`, `fpga_sync_owner`, `fpga_sync_sha256` and
/// `fpga_sync_state` = `complete`. When several match (same content), the most recently
/// updated one.
///
/// The listing asks Glance for the `FPGA` tag only and filters the properties here: the
/// Glance client has no property-filtered listing (Glance itself would filter on custom
/// properties, `GET /v2/images?bs-uuid=...`).
pub async fn find_image(
    glance: &Glance<'_>,
    site: &str,
    bs_uuid: &str,
    sha256: &str,
) -> Result<Image, FetchError> {
    let wanted = [
        (BS_UUID_PROPERTY, bs_uuid),
        (IMAGE_OWNER, site),
        (IMAGE_SHA256, sha256),
        (IMAGE_STATE, STATE_COMPLETE),
    ];
    let mut matching: Vec<Image> = glance
        .images(&[FPGA_TAG])
        .await?
        .into_iter()
        .filter(|i| i.status == ImageStatus::Active && i.tags.iter().any(|t| t == FPGA_TAG))
        .filter(|i| {
            let props = i.properties();
            wanted
                .iter()
                .all(|(k, v)| props.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    matching.sort_by(|a, b| (&a.updated_at, &a.id).cmp(&(&b.updated_at, &b.id)));
    matching.pop().ok_or_else(|| FetchError::NotInGlance {
        bs_uuid: bs_uuid.to_owned(),
        sha256: sha256.to_owned(),
        site: site.to_owned(),
    })
}

/// The content-addressed bitstream cache of a host.
#[derive(Clone, Debug)]
pub struct BitstreamCache {
    dir: PathBuf,
}

impl BitstreamCache {
    /// The cache in `dir` (created on the first fetch).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BitstreamCache { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the cache folder and its parent are the agent's alone.
    fn private(&self) -> Result<(), crate::private_dir::NotPrivate> {
        crate::private_dir::check(&self.dir)?;
        match self.dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => crate::private_dir::check(parent),
            _ => Ok(()),
        }
    }

    /// Where the file of content `sha256` lives: `<dir>/<sha256>`. Only meaningful for a
    /// real sha256 (64 lower-case hex digits); [`Self::cached`] and [`Self::fetch`] check.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    /// The cached file of content `sha256`, when it is there and its content still hashes
    /// to `sha256`. A file that does not (changed since it was fetched) is deleted and
    /// reported absent. Hashing streams the file in 1 MiB chunks, off the async threads.
    pub async fn cached(&self, sha256: &str) -> Option<PathBuf> {
        if !is_sha256(sha256) {
            return None;
        }
        if self.private().is_err() {
            return None;
        }
        let path = self.path(sha256);
        let sha256 = sha256.to_owned();
        tokio::task::spawn_blocking(move || {
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_file() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    // Planted, not fetched: never followed, and gone.
                    let _ = std::fs::remove_file(&path);
                    return None;
                }
                _ => return None,
            }
            match crate::source::sha256_of(&path) {
                Ok(actual) if actual == sha256 => Some(path),
                _ => {
                    let _ = std::fs::remove_file(&path);
                    None
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// The verified local file of `image`, whose content is `sha256`: from the cache, or
    /// downloaded from Glance into it (verified against `sha256` and Glance's
    /// `os_hash_value` before it is renamed into place), then made read-only. A download
    /// that does not match leaves no file at [`Self::path`].
    pub async fn fetch(
        &self,
        glance: &Glance<'_>,
        image: &Image,
        sha256: &str,
    ) -> Result<PathBuf, FetchError> {
        if !is_sha256(sha256) {
            return Err(FetchError::BadDigest {
                sha256: sha256.to_owned(),
            });
        }
        if let Some(path) = self.cached(sha256).await {
            return Ok(path);
        }
        let io = |path: &Path, e: std::io::Error| FetchError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        crate::private_dir::ensure(&self.dir).map_err(FetchError::NotPrivate)?;
        self.private().map_err(FetchError::NotPrivate)?;
        let path = self.path(sha256);
        match glance.download(&image.id, &path, Some(sha256)).await {
            Ok(_) => {}
            Err(CloudError::Integrity {
                what,
                expected,
                actual,
            }) => {
                return Err(FetchError::Corrupt {
                    image: image.id.clone(),
                    detail: format!("{what}: expected {expected}, got {actual}"),
                });
            }
            Err(e) => return Err(e.into()),
        }
        set_read_only(&path).await.map_err(|e| io(&path, e))?;
        Ok(path)
    }
}

#[cfg(unix)]
async fn set_read_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).await
}

#[cfg(not(unix))]
async fn set_read_only(path: &Path) -> std::io::Result<()> {
    let mut permissions = tokio::fs::metadata(path).await?.permissions();
    permissions.set_readonly(true);
    tokio::fs::set_permissions(path, permissions).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lower_case_sha256_names_the_cache() {
        assert!(is_sha256(&"a".repeat(64)));
        assert!(!is_sha256(&"A".repeat(64)));
        assert!(!is_sha256("../etc/passwd"));
        assert!(!is_sha256(&"a".repeat(63)));
    }

    #[tokio::test]
    async fn a_changed_cached_file_is_deleted_and_absent() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BitstreamCache::new(dir.path().join("bitstreams"));
        crate::private_dir::ensure(cache.dir()).unwrap();
        // sha256("abc")
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        std::fs::write(cache.path(abc), b"abc").unwrap();
        assert_eq!(cache.cached(abc).await, Some(cache.path(abc)));
        std::fs::write(cache.path(abc), b"abd").unwrap();
        assert_eq!(cache.cached(abc).await, None);
        assert!(!cache.path(abc).exists());
        assert_eq!(cache.cached("../x").await, None);
    }

    #[tokio::test]
    async fn a_planted_symlink_or_a_shared_folder_is_never_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = BitstreamCache::new(dir.path().join("bitstreams"));
        crate::private_dir::ensure(cache.dir()).unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        // A file with the right content elsewhere, linked in under its digest.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, b"abc").unwrap();
        std::os::unix::fs::symlink(&elsewhere, cache.path(abc)).unwrap();
        assert_eq!(cache.cached(abc).await, None, "a symlink is not followed");
        assert!(
            std::fs::symlink_metadata(cache.path(abc)).is_err(),
            "and removed"
        );
        assert!(elsewhere.exists(), "its target untouched");

        std::fs::write(cache.path(abc), b"abc").unwrap();
        assert_eq!(cache.cached(abc).await, Some(cache.path(abc)));
        std::fs::set_permissions(cache.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            cache.cached(abc).await,
            None,
            "a folder others can write is not used"
        );
    }
}
