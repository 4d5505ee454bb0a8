//! The bitstreams of the desired state as hosts need them: each file's sha256 and what its
//! header says (the id a slot reports once loaded, the interface it needs). Headers are
//! read from the repository once per content and cached by sha256, so a reconcile with
//! nothing to do reads no bitstream file. I/O: the repository and `<cache>/identities-v2/`
//! (`v2`: the GBS reading of issue 11; identities cached by earlier versions are not
//! reused).

use std::collections::BTreeMap;
use std::path::Path;

use crate::desired::Desired;
use crate::host::image::{self, ImageIdentity};
use crate::host::plan::assignment::Target;
use crate::source::{FileDigest, Snapshot};

/// Every bitstream of `desired` with a file, by name, and the problems of those whose
/// header is broken; `digests` are the files' (by bitstream name), read from `snapshot`.
pub fn targets(
    desired: &Desired,
    digests: &BTreeMap<String, FileDigest>,
    snapshot: &Snapshot,
    cache_dir: &Path,
) -> (BTreeMap<String, Target>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for b in desired.bitstreams.values().map(|b| &b.spec) {
        let (Some(file), Some(digest)) = (b.file.as_deref(), digests.get(&b.name)) else {
            continue;
        };
        match identity(snapshot, file, &digest.sha256, cache_dir) {
            Ok(identity) => {
                out.insert(b.name.clone(), Target::new(b, &digest.sha256, identity));
            }
            Err(e) => problems.push(format!("bitstream `{}` ({file}): {e}", b.name)),
        }
    }
    (out, problems)
}

fn identity(
    snapshot: &Snapshot,
    file: &str,
    sha256: &str,
    cache_dir: &Path,
) -> Result<ImageIdentity, String> {
    let dir = cache_dir.join("identities-v2");
    let path = dir.join(sha256);
    // A cache folder others can write could lie about a bitstream's interface: not used.
    let private = crate::private_dir::ensure(&dir).is_ok();
    if let Some(cached) = std::fs::read_to_string(&path)
        .ok()
        .filter(|_| private)
        .and_then(|t| serde_json::from_str::<ImageIdentity>(&t).ok())
    {
        return Ok(cached);
    }
    let header = snapshot
        .header(file, image::MAX_HEADER)
        .ok_or("the file cannot be read")?;
    let identity = image::identify(&header, sha256)?;
    // A cache that cannot be written only costs a header read next time.
    if private {
        let _ = crate::atomic::write_json(&path, &identity);
    }
    Ok(identity)
}

/// Reads the header of the file at `path` and identifies it.
pub fn identify_file(path: &Path, sha256: &str) -> std::io::Result<Result<ImageIdentity, String>> {
    use std::io::Read;
    let mut header = Vec::new();
    std::fs::File::open(path)?
        .take(image::MAX_HEADER as u64)
        .read_to_end(&mut header)?;
    Ok(image::identify(&header, sha256))
}
