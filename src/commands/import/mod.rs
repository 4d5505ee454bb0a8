//! `fpga-sync import`: writes desired-state YAML for what a cloud already holds, so that an
//! operator who did the seed's manual steps moves to fpga-sync in one command. It observes
//! the cloud and writes into `--to DIR`:
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
//! left out. Metadata the spec needs but an image lacks is never made up: the document gets
//! `# TODO` comments, a warning is printed, and `validate` points at the gap. Existing files
//! are not overwritten without `--force`; nothing is written unless every download worked.
//!
//! I/O: the cloud (reads, image downloads), files under `--to`, stdout (the files written)
//! and stderr (progress, warnings, errors). Choosing what to import ([`select`]) and
//! rendering the YAML ([`bitstreams_file`], [`placement_file`], [`flavors_file`]) are pure.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use futures_util::StreamExt;
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::cli::ImportArgs;
use crate::cloud::CloudError;
use crate::cloud::glance::Glance;
use crate::cloud::session::Session;
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

/// Downloads running at once (the session's own limit still applies).
const PARALLEL_DOWNLOADS: usize = 4;
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

/// Runs `import`; returns the exit code: 0 written, 1 failed, 2 bad `--match` pattern.
pub fn run(args: &ImportArgs, color: bool) -> std::io::Result<u8> {
    let filter = match name_filter(&args.matching) {
        Ok(f) => f,
        Err(d) => {
            eprint!("{}", d.render(color));
            return Ok(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    match runtime.block_on(import(args, filter.as_ref())) {
        Ok(written) => {
            let mut out = std::io::stdout().lock();
            for path in written {
                writeln!(out, "{path}")?;
            }
            Ok(0)
        }
        Err(diagnostics) => {
            for d in diagnostics {
                eprint!("{}", d.render(color));
            }
            Ok(1)
        }
    }
}

/// Observes, downloads and writes; returns the files written.
async fn import(
    args: &ImportArgs,
    filter: Option<&GlobSet>,
) -> Result<Vec<String>, Vec<Diagnostic>> {
    let session = crate::reconcile::connect(
        args.cloud.os_cloud.as_deref(),
        crate::reconcile::Needs::Cloud,
        super::warn,
    )
    .await
    .map_err(|e| e.diagnostics())?;
    let observed = crate::cloud::observe::observe(&session)
        .await
        .map_err(|e| vec![e.into()])?;
    let mut selection = select(&observed, filter);
    for note in &selection.notes {
        eprintln!("{note}");
    }
    let dir = &args.to;
    if !args.force {
        refuse_existing(dir, &selection).map_err(|d| vec![d])?;
    }
    std::fs::create_dir_all(dir).map_err(|e| vec![io_error(dir, &e)])?;
    // Downloads land here first, so that a failed import leaves nothing behind.
    let staging = tempfile::Builder::new()
        .prefix(".fpga-sync-import-")
        .tempdir_in(dir)
        .map_err(|e| vec![io_error(dir, &e)])?;
    let digests = download_all(&session, &mut selection, staging.path()).await?;
    let written = write_out(
        dir,
        staging.path(),
        session.cloud_name(),
        &selection,
        &digests,
    )
    .map_err(|d| vec![d])?;
    eprintln!(
        "Imported {} bitstream(s), {} trait(s), {} resource class(es) and {} flavor(s) into `{}`.\nNext: `fpga-sync validate --worktree --repo {}`, then `fpga-sync plan`: the first apply adopts the images and flavors.",
        selection.images.len(),
        selection.traits.len(),
        selection.resource_classes.len(),
        selection.flavors.len(),
        dir.display(),
        dir.display()
    );
    Ok(written)
}

/// Moves the downloaded files into place and writes the YAML files and the schema;
/// returns the paths written.
fn write_out(
    dir: &Path,
    staging: &Path,
    cloud: &str,
    selection: &Selection,
    digests: &BTreeMap<String, String>,
) -> Result<Vec<String>, Diagnostic> {
    let header = format!(
        "# Written by `fpga-sync import` from cloud `{}`; review, then commit.\n",
        one_line(cloud)
    );
    let (bitstreams, todos) = bitstreams_file(&header, &selection.images, digests);
    for (image, issues) in &todos {
        eprintln!(
            "warning: image `{}` ({}) is incomplete: {}; see the TODO comments in {BITSTREAMS_FILE}",
            one_line(image.name.as_deref().unwrap_or_default()),
            image.id,
            issues.join("; ")
        );
    }
    let files_dir = dir.join(FILES_DIR);
    std::fs::create_dir_all(&files_dir).map_err(|e| io_error(&files_dir, &e))?;
    let mut written = Vec::new();
    for image in &selection.images {
        let to = dir.join(&image.file);
        std::fs::rename(staging.join(file_name_of(&image.file)), &to)
            .map_err(|e| io_error(&to, &e))?;
        written.push(to.display().to_string());
    }
    let files = [
        (BITSTREAMS_FILE, bitstreams),
        (PLACEMENT_FILE, placement_file(&header, selection)),
        (FLAVORS_FILE, flavors_file(&header, &selection.flavors)),
        (SCHEMA_FILE, crate::desired::schema::document_schema_text()),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| io_error(&path, &e))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// The `--match` patterns as one set; `None` imports everything.
fn name_filter(patterns: &[String]) -> Result<Option<GlobSet>, Diagnostic> {
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

fn io_error(path: &Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic::error(
        "fpga_sync::import_io",
        format!("cannot write `{}`: {e}", path.display()),
    )
}

/// Every path the import writes, relative to `--to`.
fn targets(selection: &Selection) -> Vec<String> {
    [BITSTREAMS_FILE, PLACEMENT_FILE, FLAVORS_FILE, SCHEMA_FILE]
        .into_iter()
        .map(str::to_owned)
        .chain(selection.images.iter().map(|i| i.file.clone()))
        .collect()
}

/// An error naming the files that exist already, if any.
fn refuse_existing(dir: &Path, selection: &Selection) -> Result<(), Diagnostic> {
    let existing: Vec<String> = targets(selection)
        .into_iter()
        .filter(|rel| dir.join(rel).symlink_metadata().is_ok())
        .collect();
    let Some(first) = existing.first() else {
        return Ok(());
    };
    let others = match existing.len() - 1 {
        0 => String::new(),
        n => format!(" and {n} other file(s) the import writes"),
    };
    Err(Diagnostic::error(
        "fpga_sync::import_exists",
        format!(
            "refusing to overwrite `{}`{others}",
            dir.join(first).display()
        ),
    )
    .help("import into an empty folder, or pass `--force` to overwrite"))
}

/// What a finished download gave.
enum Fetched {
    /// sha256 of the data.
    Done(String),
    /// The image was deleted after it was observed.
    Gone,
}

/// Downloads every selected image into `staging`, verified. Images deleted meanwhile are
/// dropped from `selection` with a warning; returns sha256 by image id.
async fn download_all(
    session: &Session,
    selection: &mut Selection,
    staging: &Path,
) -> Result<BTreeMap<String, String>, Vec<Diagnostic>> {
    let results: Vec<(String, Result<Fetched, CloudError>)> =
        futures_util::stream::iter(selection.images.iter())
            .map(|image| async move {
                let result = download(session, image, staging).await;
                (image.id.to_string(), result)
            })
            .buffered(PARALLEL_DOWNLOADS)
            .collect()
            .await;
    let mut digests = BTreeMap::new();
    let mut gone = BTreeSet::new();
    let mut errors = Vec::new();
    for (id, result) in results {
        match result {
            Ok(Fetched::Done(sha256)) => {
                digests.insert(id, sha256);
            }
            Ok(Fetched::Gone) => {
                gone.insert(id);
            }
            Err(e) => errors.push(Diagnostic::from(e)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    selection.images.retain(|i| !gone.contains(i.id.as_str()));
    Ok(digests)
}

async fn download(
    session: &Session,
    image: &SelectedImage,
    staging: &Path,
) -> Result<Fetched, CloudError> {
    let name = one_line(image.name.as_deref().unwrap_or_default());
    let dest = staging.join(file_name_of(&image.file));
    match Glance::new(session)
        .download(image.id.as_str(), &dest, None)
        .await
    {
        Ok(d) => {
            eprintln!(
                "downloaded image `{name}` ({}): {} bytes, sha256 {}",
                image.id, d.size, d.sha256
            );
            Ok(Fetched::Done(d.sha256))
        }
        Err(CloudError::Status { status: 404, .. }) => {
            eprintln!(
                "warning: image `{name}` ({}) was deleted during the import; not imported",
                image.id
            );
            Ok(Fetched::Gone)
        }
        Err(e) => Err(e),
    }
}

fn file_name_of(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

#[cfg(test)]
mod tests;
