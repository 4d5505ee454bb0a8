//! Content digests of bitstream files, cached so that a plan with nothing to do does not
//! read gigabytes: in a git commit the key is the blob id (content-addressed, so the cache
//! can never be stale); in a folder it is path, size and modification time. I/O: the
//! repository and the cache folder (`<cache>/digests/`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::folder::{hex, sha256_of};
use super::{Reader, Snapshot};

pub use crate::desired::files::FileDigest;

/// Where digests are cached.
pub struct DigestCache {
    dir: PathBuf,
}

impl DigestCache {
    /// A cache under `cache_dir/digests`.
    pub fn new(cache_dir: &Path) -> Self {
        DigestCache {
            dir: cache_dir.join("digests"),
        }
    }

    fn get(&self, key: &str) -> Option<FileDigest> {
        let text = std::fs::read_to_string(self.dir.join(key)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn put(&self, key: &str, digest: &FileDigest) {
        // A cache that cannot be written only costs a re-read next time.
        let _ = crate::atomic::write_json(&self.dir.join(key), digest);
    }
}

impl Snapshot {
    /// The digest of the bitstream file at `path` (relative to the state folder), from the
    /// cache when the key is known. `None` when the file is not there.
    pub fn digest(&self, path: &str, cache: &DigestCache) -> Option<FileDigest> {
        match &self.reader {
            Reader::Git(tree) => {
                let (oid, size) = tree.blob(path)?;
                let key = format!("git-{oid}");
                if let Some(d) = cache.get(&key) {
                    return Some(d);
                }
                let content = tree.blob_content(path)?;
                let digest = FileDigest {
                    sha256: hex(&Sha256::digest(&content)),
                    size,
                };
                cache.put(&key, &digest);
                Some(digest)
            }
            Reader::Folder(root) => {
                let full = root.join(path);
                let meta = std::fs::metadata(&full).ok()?;
                let mtime = meta
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_nanos();
                let key = format!(
                    "file-{}",
                    hex(&Sha256::digest(
                        format!("{}\0{}\0{mtime}", full.display(), meta.len()).as_bytes()
                    ))
                );
                if let Some(d) = cache.get(&key) {
                    return Some(d);
                }
                let digest = FileDigest {
                    sha256: sha256_of(&full).ok()?,
                    size: meta.len(),
                };
                cache.put(&key, &digest);
                Some(digest)
            }
        }
    }

    /// The first `max` bytes of the bitstream file at `path`, for its header.
    pub fn header(&self, path: &str, max: usize) -> Option<Vec<u8>> {
        match &self.reader {
            Reader::Git(tree) => {
                let mut content = tree.blob_content(path)?;
                content.truncate(max);
                Some(content)
            }
            Reader::Folder(root) => {
                use std::io::Read;
                let mut out = Vec::new();
                std::fs::File::open(root.join(path))
                    .ok()?
                    .take(max as u64)
                    .read_to_end(&mut out)
                    .ok()?;
                Some(out)
            }
        }
    }

    /// Writes the bitstream file at `path` to `dest` (for an upload from a git commit), or
    /// returns the file's own path in a folder.
    pub fn materialise(&self, path: &str, scratch: &Path) -> std::io::Result<PathBuf> {
        match &self.reader {
            Reader::Folder(root) => Ok(root.join(path)),
            Reader::Git(tree) => {
                let content = tree.blob_content(path).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("`{path}` is not in the commit"),
                    )
                })?;
                let dest = scratch.join(hex(&Sha256::digest(path.as_bytes())));
                std::fs::write(&dest, content)?;
                Ok(dest)
            }
        }
    }
}
