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
    let session = super::connect(&args.cloud).await.map_err(|d| vec![d])?;
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
                (image.id.clone(), result)
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
    selection.images.retain(|i| !gone.contains(&i.id));
    Ok(digests)
}

async fn download(
    session: &Session,
    image: &SelectedImage,
    staging: &Path,
) -> Result<Fetched, CloudError> {
    let name = one_line(image.name.as_deref().unwrap_or_default());
    let dest = staging.join(file_name_of(&image.file));
    match Glance::new(session).download(&image.id, &dest, None).await {
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

/// What an import takes from the cloud.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// Images to import, by name; `file` holds the path the data goes to.
    pub images: Vec<SelectedImage>,
    /// Custom traits, sorted.
    pub traits: Vec<String>,
    /// Custom resource classes, sorted.
    pub resource_classes: Vec<String>,
    /// Flavors with FPGA requests, by name.
    pub flavors: Vec<ObservedFlavor>,
    /// Lines for stderr: images left out and why, objects another site manages.
    pub notes: Vec<String>,
}

/// An image to import and where its data goes.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectedImage {
    /// The image as observed.
    pub image: ObservedImage,
    /// Path of its data file relative to `--to`, `/`-separated.
    pub file: String,
}

impl std::ops::Deref for SelectedImage {
    type Target = ObservedImage;
    fn deref(&self) -> &ObservedImage {
        &self.image
    }
}

/// Chooses what to import: active, named images (the first of several with one name),
/// custom traits and resource classes, FPGA flavors; with `filter`, only names it matches.
/// Pure.
pub fn select(observed: &Observed, filter: Option<&GlobSet>) -> Selection {
    let wanted = |name: &str| filter.is_none_or(|f| f.is_match(name));
    let mut out = Selection::default();
    select_images(observed, &wanted, &mut out);
    out.traits = sorted(observed.traits.iter().filter(|t| wanted(t)));
    out.resource_classes = sorted(observed.resource_classes.iter().filter(|r| wanted(r)));
    let mut flavors: Vec<ObservedFlavor> = observed
        .flavors
        .iter()
        .filter(|f| wanted(&f.name))
        .cloned()
        .collect();
    flavors.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    for f in &flavors {
        if let Some(site) = markers::flavor_site(&f.extra_specs) {
            out.notes
                .push(site_note("flavor", &one_line(&f.name), &f.id, site));
        }
    }
    out.flavors = flavors;
    out
}

/// The images of [`select`], each with an unused file name, and notes on those left out.
fn select_images(observed: &Observed, wanted: &dyn Fn(&str) -> bool, out: &mut Selection) {
    let mut first_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut files = BTreeSet::new();
    let mut images: Vec<&ObservedImage> = observed.images.iter().collect();
    images.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    for image in images {
        let Some(name) = image.name.as_deref().filter(|n| !n.is_empty()) else {
            out.notes.push(format!(
                "warning: image {} has no name, so it cannot be a Bitstream; not imported",
                image.id
            ));
            continue;
        };
        if !wanted(name) {
            continue;
        }
        let shown = one_line(name);
        if image.status != "active" {
            out.notes.push(format!(
                "warning: image `{shown}` ({}) is `{}`: it has no data to import; not imported",
                image.id, image.status
            ));
            continue;
        }
        if let Some(first) = first_of.get(name) {
            out.notes.push(format!(
                "warning: image `{shown}` ({}) has the same name as image {first}, which is imported; bitstream names are unique, so rename or delete one by hand",
                image.id
            ));
            continue;
        }
        first_of.insert(name, &image.id);
        if let Some(site) = markers::image_site(&image.properties) {
            out.notes.push(site_note("image", &shown, &image.id, site));
        }
        out.images.push(SelectedImage {
            image: image.clone(),
            file: format!("{FILES_DIR}/{}", file_name(name, &image.id, &mut files)),
        });
    }
}

fn sorted<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = names.cloned().collect();
    v.sort();
    v
}

fn site_note(what: &str, name: &str, id: &str, site: &str) -> String {
    format!(
        "note: {what} `{name}` ({id}) is managed by fpga-sync site `{}`: plan with `--site {}` to keep it there (with another site, `adopt: true` takes it over)",
        one_line(site),
        one_line(site)
    )
}

/// A safe, unused file name for an image's data: the name's `.gbs`, `.xclbin` or `.bin`
/// suffix kept (else `.bin` added), other characters than letters, digits, `.`, `-` and
/// `_` replaced by `_`, and the image id's start added when the name is taken. Pure.
pub fn file_name(image_name: &str, id: &str, taken: &mut BTreeSet<String>) -> String {
    let lower = image_name.to_ascii_lowercase();
    let (stem, ext) = match BITSTREAM_SUFFIXES.iter().find(|s| lower.ends_with(*s)) {
        Some(s) => (
            &image_name[..image_name.len() - s.len()],
            &image_name[image_name.len() - s.len()..],
        ),
        None => (image_name, ".bin"),
    };
    let mut safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    safe = safe.trim_start_matches('.').to_owned();
    safe.truncate(MAX_STEM);
    if safe.is_empty() {
        safe = "image".into();
    }
    let short_id: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let mut name = format!("{safe}{ext}");
    let mut n = 1;
    while taken.contains(&name.to_ascii_lowercase()) {
        name = match n {
            1 => format!("{safe}-{short_id}{ext}"),
            _ => format!("{safe}-{short_id}-{n}{ext}"),
        };
        n += 1;
    }
    taken.insert(name.to_ascii_lowercase());
    name
}

/// A YAML value to write.
#[derive(Clone, Debug, PartialEq)]
pub enum Yaml {
    /// A string, always double-quoted.
    Str(String),
    /// An integer, plain.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// A block mapping.
    Map(Vec<(Key, Yaml)>),
    /// A block sequence.
    Seq(Vec<Yaml>),
}

/// A mapping key.
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    /// A field name of the format, written plain.
    Field(&'static str),
    /// Any other name (a property, an extra spec), double-quoted.
    Free(String),
}

/// One document: comment lines above it, then its fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Doc {
    /// Comment lines, without `#`.
    pub comments: Vec<String>,
    /// The fields, in order.
    pub fields: Vec<(Key, Yaml)>,
}

/// `s` as a YAML double-quoted scalar: `"` and `\` escaped, and every character YAML
/// would not keep as written (control characters, line and paragraph separators, the byte
/// order mark, non-characters) as an escape. Pure.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}'
                ) =>
            {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a comment or a message: one line, control characters as spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn key_text(key: &Key) -> String {
    match key {
        Key::Field(f) => (*f).to_owned(),
        Key::Free(s) => quote(s),
    }
}

/// A scalar or empty collection as written after `key: `; `None` for a block.
fn inline(value: &Yaml) -> Option<String> {
    match value {
        Yaml::Str(s) => Some(quote(s)),
        Yaml::Int(i) => Some(i.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Map(m) if m.is_empty() => Some("{}".into()),
        Yaml::Seq(s) if s.is_empty() => Some("[]".into()),
        Yaml::Map(_) | Yaml::Seq(_) => None,
    }
}

/// `value` as lines indented by `indent` spaces.
fn block(value: &Yaml, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Yaml::Map(entries) if !entries.is_empty() => {
            for (key, v) in entries {
                out.push_str(&pad);
                out.push_str(&key_text(key));
                out.push(':');
                match inline(v) {
                    Some(text) => {
                        out.push(' ');
                        out.push_str(&text);
                        out.push('\n');
                    }
                    None => {
                        out.push('\n');
                        block(v, indent + 2, out);
                    }
                }
            }
        }
        Yaml::Seq(items) if !items.is_empty() => {
            for item in items {
                // The item as a block two columns further in, its first indent turned into `- `.
                let mut text = String::new();
                block(item, indent + 2, &mut text);
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&text[indent + 2..]);
            }
        }
        scalar => {
            out.push_str(&pad);
            out.push_str(&inline(scalar).unwrap_or_default());
            out.push('\n');
        }
    }
}

/// A YAML file: the schema modeline, `header`, then the documents separated by `---`
/// (or a comment saying there is none of `what`). Pure.
pub fn render_file(header: &str, docs: &[Doc], what: &str) -> String {
    let mut out = format!("# yaml-language-server: $schema=./{SCHEMA_FILE}\n{header}");
    if docs.is_empty() {
        out.push_str(&format!("# The cloud holds no {what} to import.\n"));
    }
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        for line in &doc.comments {
            out.push_str("# ");
            out.push_str(&one_line(line));
            out.push('\n');
        }
        block(&Yaml::Map(doc.fields.clone()), 0, &mut out);
    }
    out
}

fn head(kind: Kind, name: &str) -> Vec<(Key, Yaml)> {
    vec![
        (Key::Field("apiVersion"), Yaml::Str(API_VERSION.into())),
        (Key::Field("kind"), Yaml::Str(kind.name().into())),
        (Key::Field("name"), Yaml::Str(name.into())),
    ]
}

/// `bitstreams.yaml` for `images`, with the sha256 of each image's data (by id); also the
/// problems of each image that got TODO comments. Pure.
pub fn bitstreams_file<'a>(
    header: &str,
    images: &'a [SelectedImage],
    sha256: &BTreeMap<String, String>,
) -> (String, Vec<(&'a ObservedImage, Vec<String>)>) {
    let mut docs = Vec::new();
    let mut todos = Vec::new();
    for image in images {
        let digest = sha256.get(&image.id).map_or("", String::as_str);
        let (doc, issues) = bitstream_doc(image, &image.file, digest);
        if !issues.is_empty() {
            todos.push((&image.image, issues));
        }
        docs.push(doc);
    }
    (render_file(header, &docs, "FPGA-tagged images"), todos)
}

/// The Bitstream document of an image, and what it lacks (each also a `# TODO` comment).
/// Pure.
pub fn bitstream_doc(image: &ObservedImage, file: &str, sha256: &str) -> (Doc, Vec<String>) {
    let name = image.name.clone().unwrap_or_default();
    let mut fields = head(Kind::Bitstream, &name);
    fields.push((Key::Field("file"), Yaml::Str(file.into())));
    fields.push((Key::Field("sha256"), Yaml::Str(sha256.into())));
    let mut issues = Vec::new();
    match image.visibility.as_deref() {
        Some(v @ ("private" | "public" | "shared" | "community")) => {
            fields.push((Key::Field("visibility"), Yaml::Str(v.into())));
        }
        other => issues.push(format!(
            "visibility `{}` is not one fpga-sync knows: set `visibility`",
            other.unwrap_or("none")
        )),
    }
    let tags: Vec<Yaml> = image
        .tags
        .iter()
        .filter(|t| t.as_str() != FPGA_TAG)
        .map(|t| Yaml::Str(t.clone()))
        .collect();
    if !tags.is_empty() {
        fields.push((Key::Field("tags"), Yaml::Seq(tags)));
    }
    fields.push((Key::Field("adopt"), Yaml::Bool(true)));
    let (metadata, metadata_issues) = metadata(&image.properties);
    issues.extend(metadata_issues);
    fields.push((Key::Field("metadata"), Yaml::Map(metadata)));
    let (properties, property_issues) = other_properties(&image.properties);
    issues.extend(property_issues);
    if !properties.is_empty() {
        fields.push((Key::Field("properties"), Yaml::Map(properties)));
    }
    let mut comments = vec![format!("Glance image {}", image.id)];
    if let Some(site) = markers::image_site(&image.properties) {
        comments.push(format!("managed by fpga-sync site `{site}` until now"));
    }
    comments.extend(issues.iter().map(|i| format!("TODO: {i}")));
    (Doc { comments, fields }, issues)
}

/// The spec's metadata keys of an image's properties, in the spec's order, and what is
/// missing or malformed.
fn metadata(properties: &BTreeMap<String, String>) -> (Vec<(Key, Yaml)>, Vec<String>) {
    let mut out = Vec::new();
    let missing: Vec<String> = REQUIRED_KEYS
        .iter()
        .filter(|k| !properties.contains_key(**k))
        .map(|k| format!("`{k}`"))
        .collect();
    let mut issues = Vec::new();
    if !missing.is_empty() {
        issues.push(format!(
            "metadata {} missing (the bitstream metadata spec requires it): fill in the real values",
            missing.join(", ")
        ));
    }
    for key in METADATA_KEYS {
        let Some(value) = properties.get(key) else {
            continue;
        };
        if key == "topology" {
            match parse_topology(value) {
                Ok(t) => out.push((Key::Field(key), topology_yaml(&t))),
                Err(why) => {
                    issues.push(format!(
                        "metadata `topology` is not the spec's JSON ({why}): write it as structured YAML"
                    ));
                    out.push((Key::Field(key), Yaml::Str(value.clone())));
                }
            }
            continue;
        }
        if UUID_KEYS.contains(&key) && !is_uuid(value) {
            issues.push(format!("metadata `{key}` is not a uuid"));
        } else if REQUIRED_KEYS.contains(&key) && value.is_empty() {
            issues.push(format!("metadata `{key}` is empty"));
        }
        out.push((Key::Field(key), Yaml::Str(value.clone())));
    }
    (out, issues)
}

/// The properties that are neither metadata nor fpga-sync's marks, and the ones left out
/// because their names are reserved.
fn other_properties(properties: &BTreeMap<String, String>) -> (Vec<(Key, Yaml)>, Vec<String>) {
    let mut out = Vec::new();
    let mut issues = Vec::new();
    for (k, v) in properties {
        if METADATA_KEYS.contains(&k.as_str()) || k.starts_with(OWNER_PROPERTY_PREFIX) {
            continue;
        }
        if k.starts_with("os_") || GLANCE_RESERVED_PROPERTIES.contains(&k.as_str()) {
            issues.push(format!(
                "property `{k}` is not imported (fpga-sync reserves the name); the first apply removes it from the image"
            ));
            continue;
        }
        out.push((Key::Free(k.clone()), Yaml::Str(v.clone())));
    }
    (out, issues)
}

/// Whether `s` is a uuid written 8-4-4-4-12.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The spec's topology JSON (numbers or number strings, as the spec writes them) as a
/// [`Topology`]; unknown keys are refused rather than dropped.
fn parse_topology(json: &str) -> Result<Topology, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let obj = object(&value, &["pf_num", "vf_num", "pf"])?;
    Ok(Topology {
        pf_num: whole(obj, "pf_num")?,
        vf_num: whole(obj, "vf_num")?,
        pf: list(obj, "pf")?
            .iter()
            .map(|pf| {
                let o = object(pf, &["name", "capability", "kpi", "pci_offset", "vf"])?;
                Ok(PhysicalFunction {
                    name: text(o, "name", true)?,
                    capability: text(o, "capability", false)?,
                    kpi: text(o, "kpi", false)?,
                    pci_offset: whole(o, "pci_offset")?,
                    vf: list(o, "vf")?
                        .iter()
                        .map(|vf| {
                            let o = object(vf, &["name", "pci_offset"])?;
                            Ok(VirtualFunction {
                                name: text(o, "name", true)?,
                                pci_offset: whole(o, "pci_offset")?,
                            })
                        })
                        .collect::<Result<_, String>>()?,
                })
            })
            .collect::<Result<_, String>>()?,
    })
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

fn object<'a>(value: &'a serde_json::Value, keys: &[&str]) -> Result<&'a JsonObject, String> {
    let obj = value.as_object().ok_or("an entry is not a JSON object")?;
    match obj.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown key `{k}`")),
        None => Ok(obj),
    }
}

fn whole(obj: &JsonObject, key: &str) -> Result<u32, String> {
    let n = match obj.get(key) {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("`{key}` is not a whole number"))
}

fn text(obj: &JsonObject, key: &str, required: bool) -> Result<String, String> {
    match obj.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        None | Some(serde_json::Value::Null) if !required => Ok(String::new()),
        _ => Err(format!("`{key}` is not a string")),
    }
}

fn list<'a>(obj: &'a JsonObject, key: &str) -> Result<&'a [serde_json::Value], String> {
    match obj.get(key) {
        Some(serde_json::Value::Array(items)) => Ok(items),
        None | Some(serde_json::Value::Null) => Ok(&[]),
        _ => Err(format!("`{key}` is not a list")),
    }
}

fn topology_yaml(t: &Topology) -> Yaml {
    let pf =
        t.pf.iter()
            .map(|pf| {
                let mut fields = vec![(Key::Field("name"), Yaml::Str(pf.name.clone()))];
                if !pf.capability.is_empty() {
                    fields.push((Key::Field("capability"), Yaml::Str(pf.capability.clone())));
                }
                if !pf.kpi.is_empty() {
                    fields.push((Key::Field("kpi"), Yaml::Str(pf.kpi.clone())));
                }
                fields.push((Key::Field("pci_offset"), Yaml::Int(pf.pci_offset.into())));
                let vf: Vec<Yaml> = pf
                    .vf
                    .iter()
                    .map(|vf| {
                        Yaml::Map(vec![
                            (Key::Field("name"), Yaml::Str(vf.name.clone())),
                            (Key::Field("pci_offset"), Yaml::Int(vf.pci_offset.into())),
                        ])
                    })
                    .collect();
                if !vf.is_empty() {
                    fields.push((Key::Field("vf"), Yaml::Seq(vf)));
                }
                Yaml::Map(fields)
            })
            .collect();
    Yaml::Map(vec![
        (Key::Field("pf_num"), Yaml::Int(t.pf_num.into())),
        (Key::Field("vf_num"), Yaml::Int(t.vf_num.into())),
        (Key::Field("pf"), Yaml::Seq(pf)),
    ])
}

/// `placement.yaml`: a Trait per custom trait, then a ResourceClass per custom resource
/// class. Pure.
pub fn placement_file(header: &str, selection: &Selection) -> String {
    let docs: Vec<Doc> = selection
        .traits
        .iter()
        .map(|t| (Kind::Trait, t))
        .chain(
            selection
                .resource_classes
                .iter()
                .map(|r| (Kind::ResourceClass, r)),
        )
        .map(|(kind, name)| Doc {
            comments: vec![],
            fields: head(kind, name),
        })
        .collect();
    render_file(header, &docs, "custom traits or resource classes")
}

/// `flavors.yaml`: a Flavor per flavor, with `adopt: true` and its extra specs but
/// fpga-sync's site mark. Pure.
pub fn flavors_file(header: &str, flavors: &[ObservedFlavor]) -> String {
    let docs: Vec<Doc> = flavors.iter().map(flavor_doc).collect();
    render_file(header, &docs, "flavors with FPGA requests")
}

/// The Flavor document of a flavor. Pure.
pub fn flavor_doc(f: &ObservedFlavor) -> Doc {
    let mut fields = head(Kind::Flavor, &f.name);
    for (key, value) in [
        ("vcpus", f.vcpus),
        ("ram", f.ram),
        ("disk", f.disk),
        ("ephemeral", f.ephemeral),
        ("swap", f.swap),
    ] {
        fields.push((Key::Field(key), Yaml::Int(value.into())));
    }
    fields.push((Key::Field("is_public"), Yaml::Bool(f.is_public)));
    if let Some(d) = &f.description {
        fields.push((Key::Field("description"), Yaml::Str(d.clone())));
    }
    fields.push((Key::Field("adopt"), Yaml::Bool(true)));
    let specs: Vec<(Key, Yaml)> = f
        .extra_specs
        .iter()
        .filter(|(k, _)| k.as_str() != FLAVOR_OWNER_SPEC)
        .map(|(k, v)| (Key::Free(k.clone()), spec_value(v)))
        .collect();
    if !specs.is_empty() {
        fields.push((Key::Field("extra_specs"), Yaml::Map(specs)));
    }
    let mut comments = vec![format!("Nova flavor {}", f.id)];
    if let Some(site) = markers::flavor_site(&f.extra_specs) {
        comments.push(format!("managed by fpga-sync site `{site}` until now"));
    }
    Doc { comments, fields }
}

/// An extra spec value: an integer when it is one written canonically (so it reads back
/// as the same text), else a string.
fn spec_value(v: &str) -> Yaml {
    match v.parse::<i64>() {
        Ok(n) if n.to_string() == v => Yaml::Int(n),
        _ => Yaml::Str(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{Parsed, RawContent, RawFile, parse};

    const TOPOLOGY: &str = r#"{"pf_num":2,"vf_num":2,"pf":[{"name":"pf_1","capability":"","kpi":"","pci_offset":"0","vf":[{"name":"vf_1","pci_offset":"1"}]},{"name":"pf_2","capability":"","kpi":"","pci_offset":"2","vf":[{"name":"vf_2","pci_offset":"3"}]}]}"#;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn image(name: &str, properties: BTreeMap<String, String>) -> ObservedImage {
        ObservedImage {
            id: format!("id-{name}"),
            name: Some(name.into()),
            status: "active".into(),
            visibility: Some("public".into()),
            tags: vec!["FPGA".into(), "crypto".into()],
            size: Some(3),
            os_hash_algo: None,
            os_hash_value: None,
            updated_at: None,
            properties,
        }
    }

    fn full_metadata() -> Vec<(&'static str, &'static str)> {
        vec![
            ("bs-name", "aes-128"),
            ("bs-uuid", "5e4f3a2b-1c0d-4e8f-9a7b-6c5d4e3f2a1b"),
            ("vendor", "Intel"),
            ("board", "PAC-A10"),
            ("shell_id", "0b7d2b4e-8f0c-4d1a-9e55-3c2f6a1d7e01"),
            ("version", "1.10"),
            ("driver", "OPAE"),
            ("driver_ver", "2.1"),
            ("driver_path", "/opt/opae"),
            ("topology", TOPOLOGY),
            ("region_uuid", "9c8b7a69-5847-4362-a514-0f1e2d3c4b5a"),
            ("function_uuid", "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"),
            ("function_name", "aes-128"),
        ]
    }

    /// Strings a careless emitter would turn into other types or break.
    const TRICKY: [(&str, &str); 12] = [
        ("yes", "yes"),
        ("version-like", "1.10"),
        ("mapping-like", "a: b"),
        ("quoted", "\"quoted\""),
        ("backslash", "C:\\path\\"),
        ("comment-like", "# not a comment"),
        ("empty", ""),
        ("null-like", "null"),
        ("multi-line", "two\nlines\tand\r\u{7}bell"),
        ("separators", "a\u{2028}b\u{85}c\u{feff}"),
        ("unicode", "ünïcödé ✓"),
        ("key: with \"odd\" #chars", "- [x]"),
    ];

    fn read_back(path: &str, text: &str) -> Parsed {
        let parsed = parse(vec![RawFile {
            path: path.into(),
            content: RawContent::Bytes(text.as_bytes().to_vec()),
        }]);
        assert!(
            parsed.diagnostics.is_empty(),
            "{text}\n{:#?}",
            parsed.diagnostics
        );
        parsed
    }

    #[test]
    fn quoting_keeps_tricky_strings_strings() {
        assert_eq!(quote("yes"), r#""yes""#);
        assert_eq!(quote("1.10"), r#""1.10""#);
        assert_eq!(quote("a: b"), r#""a: b""#);
        assert_eq!(quote("\"quoted\""), r#""\"quoted\"""#);
        assert_eq!(quote("a\\b\n\u{7}"), r#""a\\b\n\u0007""#);
    }

    #[test]
    fn a_bitstream_reads_back_as_the_image_it_came_from() {
        let mut p = props(&full_metadata());
        p.extend(props(&TRICKY));
        p.insert("fpga_sync_owner".into(), "other".into());
        let image = image("aes-128.gbs", p);
        let selected = [SelectedImage {
            image: image.clone(),
            file: "bitstreams/files/aes-128.gbs".into(),
        }];
        let sha = "ab".repeat(32);
        let digests = BTreeMap::from([(image.id.clone(), sha.clone())]);
        let (text, todos) = bitstreams_file("# header\n", &selected, &digests);
        assert!(todos.is_empty(), "{todos:?}");
        assert!(text.starts_with("# yaml-language-server: $schema=./fpga-sync.schema.json\n# header\n# Glance image id-aes-128.gbs\n"), "{text}");
        assert!(text.contains("    pf_num: 2\n    vf_num: 2\n    pf:\n      - name: \"pf_1\"\n        pci_offset: 0\n        vf:\n          - name: \"vf_1\"\n            pci_offset: 1\n"), "{text}");
        let parsed = read_back("bitstreams.yaml", &text);
        let b = &parsed.documents.bitstreams[0].spec;
        assert_eq!(b.name, "aes-128.gbs");
        assert_eq!(b.file.as_deref(), Some("bitstreams/files/aes-128.gbs"));
        assert_eq!(b.sha256.as_deref(), Some(sha.as_str()));
        assert!(b.adopt);
        assert_eq!(b.tags, ["crypto"]);
        assert_eq!(b.properties, props(&TRICKY), "no marks, no metadata");
        let metadata: BTreeMap<String, String> = b
            .metadata_properties()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(
            metadata,
            props(&full_metadata()),
            "round trip, topology included"
        );
    }

    #[test]
    fn missing_and_malformed_metadata_get_todos_not_inventions() {
        let p = props(&[
            ("bs-name", "half"),
            ("bs-uuid", "not-a-uuid"),
            ("topology", "{\"pf_num\": 1, \"extra\": 2}"),
            ("os_distro", "fpga"),
        ]);
        let (doc, issues) = bitstream_doc(&image("half", p), "bitstreams/files/half.bin", "");
        let text = render_file("", &[doc], "");
        assert!(text.contains("# TODO: metadata `vendor`, `board`, `version`, `driver_ver`, `driver_path`, `function_uuid` missing (the bitstream metadata spec requires it): fill in the real values\n"), "{text}");
        assert!(
            text.contains("# TODO: metadata `bs-uuid` is not a uuid\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# TODO: metadata `topology` is not the spec's JSON (unknown key `extra`)"
            ),
            "{text}"
        );
        assert!(
            text.contains("  topology: \"{\\\"pf_num\\\": 1, \\\"extra\\\": 2}\"\n"),
            "kept as found: {text}"
        );
        assert!(
            text.contains("# TODO: property `os_distro` is not imported"),
            "{text}"
        );
        assert!(!text.contains("vendor:"), "{text}");
        assert_eq!(issues.len(), 4, "{issues:?}");
    }

    #[test]
    fn flavors_read_back_with_their_extra_specs_but_the_site_mark() {
        let flavor = ObservedFlavor {
            id: "f1".into(),
            name: "fpga.aes: \"medium\"".into(),
            vcpus: 4,
            ram: 8192,
            disk: 0,
            ephemeral: 0,
            swap: 512,
            is_public: false,
            description: Some("yes".into()),
            extra_specs: props(&[
                ("resources:CUSTOM_FPGA_INTEL_PF", "2"),
                ("trait:CUSTOM_ACCELERATOR_CRYPTO", "required"),
                ("hw:cpu_realtime", "true"),
                ("hw:odd", "007"),
                ("hw:ratio", "1.5"),
                ("fpga_sync:site", "default"),
            ]),
        };
        let text = flavors_file("", std::slice::from_ref(&flavor));
        assert!(
            text.contains("  \"resources:CUSTOM_FPGA_INTEL_PF\": 2\n"),
            "{text}"
        );
        assert!(text.contains("  \"hw:odd\": \"007\"\n"), "{text}");
        let parsed = read_back("flavors.yaml", &text);
        let f = &parsed.documents.flavors[0].spec;
        assert_eq!(
            (
                f.name.as_str(),
                f.vcpus,
                f.ram,
                f.disk,
                f.swap,
                f.is_public,
                f.adopt
            ),
            (flavor.name.as_str(), 4, 8192, 0, 512, false, true)
        );
        assert_eq!(f.description.as_deref(), Some("yes"));
        let specs: BTreeMap<String, String> = f
            .extra_specs
            .iter()
            .map(|(k, v)| (k.clone(), v.as_nova_string()))
            .collect();
        let mut want = flavor.extra_specs.clone();
        want.remove("fpga_sync:site");
        assert_eq!(specs, want);
    }

    #[test]
    fn placement_file_is_exactly_this() {
        let selection = Selection {
            traits: vec!["CUSTOM_A".into()],
            resource_classes: vec!["CUSTOM_B".into()],
            ..Selection::default()
        };
        assert_eq!(
            placement_file("", &selection),
            "# yaml-language-server: $schema=./fpga-sync.schema.json\napiVersion: \"fpga-sync/v1\"\nkind: \"Trait\"\nname: \"CUSTOM_A\"\n---\napiVersion: \"fpga-sync/v1\"\nkind: \"ResourceClass\"\nname: \"CUSTOM_B\"\n"
        );
        assert!(
            placement_file("", &Selection::default())
                .ends_with("# The cloud holds no custom traits or resource classes to import.\n")
        );
    }

    #[test]
    fn file_names_keep_the_suffix_and_stay_safe_and_unique() {
        let mut taken = BTreeSet::new();
        let mut name = |n: &str, id: &str| file_name(n, id, &mut taken);
        assert_eq!(name("aes.gbs", "1234abcd-ef"), "aes.gbs");
        assert_eq!(name("kernel.XCLBIN", "1"), "kernel.XCLBIN");
        assert_eq!(name("shell", "1"), "shell.bin");
        assert_eq!(name("../etc/passwd", "2"), "_etc_passwd.bin");
        assert_eq!(name("..", "3"), "image.bin");
        assert_eq!(name("AES.gbs", "99887766-5544"), "AES-99887766.gbs");
        assert_eq!(name("a b", "x"), "a_b.bin");
        assert_eq!(name("a/b", "x"), "a_b-x.bin");
        assert_eq!(name("a:b", "x"), "a_b-x-2.bin");
    }

    #[test]
    fn selection_skips_what_cannot_be_a_bitstream_and_honours_the_filter() {
        let mut queued = image("queued", BTreeMap::new());
        queued.status = "queued".into();
        let mut twin = image("twin", BTreeMap::new());
        twin.id = "id-twin-2".into();
        let mut nameless = image("x", BTreeMap::new());
        nameless.name = None;
        let observed = Observed {
            images: vec![
                twin,
                image("twin", BTreeMap::new()),
                queued,
                nameless,
                image("other", BTreeMap::new()),
            ],
            traits: vec!["CUSTOM_TWIN".into(), "CUSTOM_X".into()],
            ..Observed::default()
        };
        let all = select(&observed, None);
        let names: Vec<&str> = all.images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(names, ["id-other", "id-twin"]);
        assert_eq!(all.notes.len(), 3, "{:?}", all.notes);
        assert!(all.notes.iter().any(|n| n.contains("is `queued`")));
        assert!(
            all.notes
                .iter()
                .any(|n| n.contains("same name as image id-twin"))
        );
        let filter = name_filter(&["*twin*".into(), "*TWIN".into()]).unwrap();
        let some = select(&observed, filter.as_ref());
        assert_eq!(some.images.len(), 1);
        assert_eq!(some.traits, ["CUSTOM_TWIN"]);
        assert!(name_filter(&["[".into()]).is_err());
    }
}
