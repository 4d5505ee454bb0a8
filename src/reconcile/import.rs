//! `fpga-sync import` as an operation: observe the cloud, choose what to import
//! ([`crate::import::select`]), download the chosen images (streamed, checked against
//! Glance's hash) into a staging folder inside `--to`, then move them into place and write
//! the YAML files and the schema. Existing files are not overwritten without `force`;
//! nothing is written unless every download worked. Progress and warnings go to the
//! caller's callbacks. I/O: the cloud (reads, image downloads), files under `--to`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use globset::GlobSet;

use super::{Error, Needs};
use crate::cloud::CloudError;
use crate::cloud::glance::Glance;
use crate::cloud::session::Session;
use crate::diagnostic::Diagnostic;
use crate::import::*;

/// Downloads running at once (the session's own limit still applies).
const PARALLEL_DOWNLOADS: usize = 4;

/// What to import, and where.
pub struct ImportOptions<'a> {
    /// The cloud (`--os-cloud`).
    pub os_cloud: Option<&'a str>,
    /// The folder to write into.
    pub to: PathBuf,
    /// Overwrite files that exist.
    pub force: bool,
    /// Only objects whose names match.
    pub filter: Option<GlobSet>,
}

/// What an import wrote.
pub struct Imported {
    /// The files written.
    pub written: Vec<String>,
    /// How many bitstreams, traits, resource classes and flavors.
    pub counts: (usize, usize, usize, usize),
}

/// Observes, downloads and writes; returns the files written. Warnings (objects left out
/// or incomplete) go to `warn`, progress and notes to `note`.
pub async fn import(
    options: &ImportOptions<'_>,
    warn: &(dyn Fn(&str) + Sync),
    note: &(dyn Fn(&str) + Sync),
) -> Result<Imported, Error> {
    let session = super::connect(options.os_cloud, Needs::Cloud, warn).await?;
    let observed = crate::cloud::observe::observe(&session).await?;
    let mut selection = select(&observed, options.filter.as_ref());
    for line in &selection.notes {
        match line.strip_prefix("warning: ") {
            Some(w) => warn(w),
            None => note(line),
        }
    }
    let dir = &options.to;
    if !options.force {
        refuse_existing(dir, &selection).map_err(Error::other)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::other(io_error(dir, &e)))?;
    // Downloads land here first, so that a failed import leaves nothing behind.
    let staging = tempfile::Builder::new()
        .prefix(".fpga-sync-import-")
        .tempdir_in(dir)
        .map_err(|e| Error::other(io_error(dir, &e)))?;
    let digests = download_all(&session, &mut selection, staging.path(), warn, note).await?;
    let written = write_out(
        dir,
        staging.path(),
        session.cloud_name(),
        &selection,
        &digests,
        warn,
    )
    .map_err(Error::other)?;
    Ok(Imported {
        written,
        counts: (
            selection.images.len(),
            selection.traits.len(),
            selection.resource_classes.len(),
            selection.flavors.len(),
        ),
    })
}

/// Moves the downloaded files into place and writes the YAML files and the schema;
/// returns the paths written.
fn write_out(
    dir: &Path,
    staging: &Path,
    cloud: &str,
    selection: &Selection,
    digests: &BTreeMap<String, String>,
    warn: &(dyn Fn(&str) + Sync),
) -> Result<Vec<String>, Diagnostic> {
    let mut header = format!(
        "# Written by `fpga-sync import` from cloud `{}`; review, then commit.\n",
        one_line(cloud)
    );
    if selection.filtered {
        header.push_str("# Only the images and flavors `--match` names, and the traits and resource classes those flavors use.\n");
    }
    let (bitstreams, todos) = bitstreams_file(&header, &selection.images, digests);
    for (image, issues) in &todos {
        warn(&format!(
            "image `{}` ({}) is incomplete: {}; see the TODO comments in {BITSTREAMS_FILE}",
            one_line(image.name.as_deref().unwrap_or_default()),
            image.id,
            issues.join("; ")
        ));
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

fn io_error(path: &Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic::error(
        "fpga_sync::import_io",
        format!("cannot write `{}`: {e}", path.display()),
    )
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
    .help("import into an empty folder, or pass `--overwrite` to overwrite"))
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
    warn: &(dyn Fn(&str) + Sync),
    note: &(dyn Fn(&str) + Sync),
) -> Result<BTreeMap<String, String>, Error> {
    let results: Vec<(String, Result<Fetched, CloudError>)> =
        futures_util::stream::iter(selection.images.iter())
            .map(|image| async move {
                let result = download(session, image, staging, warn, note).await;
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
        return Err(Error::Desired(errors));
    }
    selection.images.retain(|i| !gone.contains(i.id.as_str()));
    Ok(digests)
}

async fn download(
    session: &Session,
    image: &SelectedImage,
    staging: &Path,
    warn: &(dyn Fn(&str) + Sync),
    note: &(dyn Fn(&str) + Sync),
) -> Result<Fetched, CloudError> {
    let name = one_line(image.name.as_deref().unwrap_or_default());
    let dest = staging.join(file_name_of(&image.file));
    match Glance::new(session)
        .download(image.id.as_str(), &dest, None)
        .await
    {
        Ok(d) => {
            note(&format!(
                "downloaded image `{name}` ({}): {} bytes, sha256 {}",
                image.id, d.size, d.sha256
            ));
            Ok(Fetched::Done(d.sha256))
        }
        Err(CloudError::Status { status: 404, .. }) => {
            warn(&format!(
                "image `{name}` ({}) was deleted during the import; not imported",
                image.id
            ));
            Ok(Fetched::Gone)
        }
        Err(e) => Err(e),
    }
}
