//! Reads desired-state files into typed documents: size, binary and UTF-8 checks, YAML,
//! recognising fpga-sync documents among other YAML, schema validation, typed decoding.
//! Every problem becomes a diagnostic and reading goes on, so one run reports them all.
//! Pure: no I/O; the bytes come from `source`.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::bitstream::Bitstream;
use super::document::{Declared, DocContext};
use super::flavor::Flavor;
use super::host_group::HostGroup;
use super::kind::{API_VERSION, Kind};
use super::placement_name::{ResourceClass, Trait};
use super::schema_errors;
use super::suggest::closest;
use crate::diagnostic::Diagnostic;
use crate::text::{SourceText, Span};
use crate::yaml::{self, Limits, Node, Value as YamlValue};

/// The largest desired-state file read, in bytes. Bigger files are refused unread.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A YAML file handed over by the source.
#[derive(Clone, Debug)]
pub struct RawFile {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// The content, or its size when it is too large to read.
    pub content: RawContent,
}

/// A file's content as the source hands it over.
#[derive(Clone, Debug)]
pub enum RawContent {
    /// The bytes.
    Bytes(Vec<u8>),
    /// Not read: larger than [`MAX_FILE_BYTES`].
    TooLarge {
        /// Size in bytes.
        size: u64,
    },
}

/// The typed documents of a repository, in file order, before cross-document checks.
#[derive(Clone, Debug, Default)]
pub struct Documents {
    /// `Bitstream` documents.
    pub bitstreams: Vec<Declared<Bitstream>>,
    /// `Trait` documents.
    pub traits: Vec<Declared<Trait>>,
    /// `ResourceClass` documents.
    pub resource_classes: Vec<Declared<ResourceClass>>,
    /// `Flavor` documents.
    pub flavors: Vec<Declared<Flavor>>,
    /// `HostGroup` documents.
    pub host_groups: Vec<Declared<HostGroup>>,
}

impl Documents {
    /// How many documents there are.
    pub fn len(&self) -> usize {
        self.bitstreams.len()
            + self.traits.len()
            + self.resource_classes.len()
            + self.flavors.len()
            + self.host_groups.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Names declared by documents that failed to read. References to them are not reported
/// again: the document's own error is the cause.
#[derive(Clone, Debug, Default)]
pub struct Broken {
    /// Kind and `name` of each failed document that has a string `name`.
    pub names: std::collections::BTreeSet<(Kind, String)>,
    /// `metadata.bs-uuid` of each failed Bitstream that has one.
    pub bs_uuids: std::collections::BTreeSet<String>,
    /// Whether a failed Bitstream had no readable `bs-uuid`: then any `shell_id` may name it.
    pub unknown_bs_uuid: bool,
}

impl Broken {
    /// Whether a failed document of `kind` declared `name`.
    pub fn has(&self, kind: Kind, name: &str) -> bool {
        self.names.contains(&(kind, name.to_owned()))
    }

    fn record(&mut self, kind: Kind, node: &Node) {
        if let Some(name) = node.get("name").and_then(Node::as_str) {
            self.names.insert((kind, name.to_owned()));
        }
        if kind == Kind::Bitstream {
            match node
                .get("metadata")
                .and_then(|m| m.get("bs-uuid"))
                .and_then(Node::as_str)
            {
                Some(uuid) => {
                    self.bs_uuids.insert(uuid.to_ascii_lowercase());
                }
                None => self.unknown_bs_uuid = true,
            }
        }
    }
}

/// What reading the files gave.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    /// The documents that read cleanly.
    pub documents: Documents,
    /// Every problem found.
    pub diagnostics: Vec<Diagnostic>,
    /// Documents that are not fpga-sync's (other YAML in the repo), by file.
    pub foreign: Vec<(String, usize)>,
    /// How many documents failed to read (so callers know the set is incomplete).
    pub failed: usize,
    /// What the failed documents declared.
    pub broken: Broken,
}

/// Reads every file. Files are taken in path order so the result is deterministic.
pub fn parse(mut files: Vec<RawFile>) -> Parsed {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut parsed = Parsed::default();
    for file in files {
        parse_file(file, &mut parsed);
    }
    parsed
}

fn parse_file(file: RawFile, parsed: &mut Parsed) {
    let bytes = match file.content {
        RawContent::TooLarge { size } => {
            parsed.failed += 1;
            parsed.diagnostics.push(
                Diagnostic::error(
                    "fpga_sync::file_too_large",
                    format!(
                        "`{}` is {} MiB, more than the {} MiB a desired-state file may hold",
                        file.path,
                        size / (1024 * 1024),
                        MAX_FILE_BYTES / (1024 * 1024)
                    ),
                )
                .help("split it into several files; fpga-sync reads every YAML file under the repository folder"),
            );
            return;
        }
        RawContent::Bytes(bytes) => bytes,
    };
    let Some(source) = text_of(&file.path, &bytes, parsed) else {
        parsed.failed += 1;
        return;
    };
    let (nodes, errors) = yaml::load_documents(&source, Limits::default());
    for e in &errors {
        let mut d = Diagnostic::error("fpga_sync::yaml", e.message.clone()).at(&source, e.span);
        if let Some(help) = &e.help {
            d = d.help(help.clone());
        }
        if let Some((span, label)) = &e.related {
            d = d
                .label("defined again here")
                .related(&source, *span, label.clone());
        }
        parsed.diagnostics.push(d);
    }
    if !errors.is_empty() {
        // The nodes of a file with YAML errors may lack the bad keys; checking them would
        // report consequences, not causes.
        parsed.failed += 1;
        return;
    }
    let mut foreign = 0;
    for node in nodes {
        match classify(&source, &node) {
            Classified::Empty => {}
            Classified::Foreign => foreign += 1,
            Classified::Invalid(d) => {
                parsed.failed += 1;
                parsed.diagnostics.push(d);
            }
            Classified::Ours(kind) => read_document(kind, &source, &node, parsed),
        }
    }
    if foreign > 0 {
        parsed.foreign.push((source.path.clone(), foreign));
    }
}

/// The file's text, or a diagnostic when it is binary or not UTF-8.
fn text_of(path: &str, bytes: &[u8], parsed: &mut Parsed) -> Option<SourceText> {
    let lossy = String::from_utf8_lossy(bytes);
    if let Some(nul) = lossy.find('\0') {
        // Shown with control characters blanked, so the snippet cannot garble a terminal.
        let shown: String = lossy
            .chars()
            .map(|c| {
                if c.is_control() && !matches!(c, '\n' | '\t') {
                    '.'
                } else {
                    c
                }
            })
            .collect();
        let source = SourceText::new(path, shown);
        parsed.diagnostics.push(
            Diagnostic::error("fpga_sync::binary_file", format!("`{path}` is a binary file, not YAML"))
                .at(&source, Span::new(nul, nul + 1))
                .label("NUL byte")
                .help("remove it from the desired-state folder, or rename it so it does not end in `.yaml`/`.yml`"),
        );
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(SourceText::new(path, text)),
        Err(e) => {
            let at = e.valid_up_to();
            let source = SourceText::new(path, lossy.into_owned());
            let bad: Vec<String> = bytes[at..]
                .iter()
                .take(e.error_len().unwrap_or(1))
                .map(|b| format!("0x{b:02x}"))
                .collect();
            parsed.diagnostics.push(
                Diagnostic::error(
                    "fpga_sync::not_utf8",
                    format!(
                        "`{path}` is not valid UTF-8: byte {} cannot start or continue a character",
                        bad.join(" ")
                    ),
                )
                .at(&source, Span::new(at, at + '\u{FFFD}'.len_utf8()))
                .label("invalid byte")
                .help("save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"),
            );
            None
        }
    }
}

enum Classified {
    Empty,
    Foreign,
    Invalid(Diagnostic),
    Ours(Kind),
}

/// Tells fpga-sync documents from other YAML: a document is ours when its `apiVersion`
/// starts with `fpga-sync/` or its `kind` is one of ours.
fn classify(source: &SourceText, node: &Node) -> Classified {
    if node.value == YamlValue::Null {
        return Classified::Empty;
    }
    if !matches!(node.value, YamlValue::Map(_)) {
        return Classified::Foreign;
    }
    let api = node.get("apiVersion");
    let kind = node.get("kind");
    let api_text = api.and_then(Node::as_str);
    let kind_text = kind.and_then(Node::as_str);
    let ours_by_api = api_text.is_some_and(|a| a.starts_with("fpga-sync/"));
    let ours_by_kind = kind_text.and_then(Kind::from_name);
    if !ours_by_api && ours_by_kind.is_none() {
        return Classified::Foreign;
    }
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    match (api, api_text) {
        (None, _) => {
            let key = node.key("kind").map_or(node.span, |k| k.span);
            return Classified::Invalid(
                Diagnostic::error("fpga_sync::missing_field", "missing field `apiVersion`")
                    .at(source, key)
                    .label("this document has a `kind` but no `apiVersion`")
                    .help(format!("add `apiVersion: {API_VERSION}` above `kind`")),
            );
        }
        (Some(a), Some(text)) if text != API_VERSION => {
            return Classified::Invalid(
                Diagnostic::error(
                    "fpga_sync::api_version",
                    format!("unsupported apiVersion `{text}`"),
                )
                .at(source, a.span)
                .help(format!("this fpga-sync reads `{API_VERSION}`")),
            );
        }
        (Some(a), None) => {
            return Classified::Invalid(
                Diagnostic::error("fpga_sync::api_version", "`apiVersion` must be a string")
                    .at(source, a.span)
                    .help(format!("write `apiVersion: {API_VERSION}`")),
            );
        }
        _ => {}
    }
    match (kind, ours_by_kind) {
        (_, Some(k)) => Classified::Ours(k),
        (None, None) => Classified::Invalid(
            Diagnostic::error("fpga_sync::missing_field", "missing field `kind`")
                .at(source, node.key("apiVersion").map_or(node.span, |k| k.span))
                .help(format!("add `kind:` with one of {}", kinds.join(", "))),
        ),
        (Some(k), None) => {
            let written = k.as_str().unwrap_or_default();
            let help = match closest(written, kinds.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the kinds are {}", kinds.join(", ")),
            };
            Classified::Invalid(
                Diagnostic::error(
                    "fpga_sync::unknown_kind",
                    format!("unknown kind `{written}`"),
                )
                .at(source, k.span)
                .help(help),
            )
        }
    }
}

fn read_document(kind: Kind, source: &SourceText, node: &Node, parsed: &mut Parsed) {
    let (mut value, index) = yaml::to_json(node);
    let context = DocContext {
        kind,
        source: source.clone(),
        index,
    };
    let problems = schema_errors::check(&context, &value);
    if !problems.is_empty() {
        parsed.failed += 1;
        parsed.broken.record(kind, node);
        parsed.diagnostics.extend(problems);
        return;
    }
    if let Value::Object(map) = &mut value {
        map.remove("apiVersion");
        map.remove("kind");
    }
    let docs = &mut parsed.documents;
    let outcome = match kind {
        Kind::Bitstream => decode(value, context).map(|mut d: Declared<Bitstream>| {
            // `./bitstreams/x.gbs` names the same file as `bitstreams/x.gbs`.
            if let Some(file) = &mut d.spec.file {
                *file = super::files::normalise(file);
            }
            docs.bitstreams.push(d)
        }),
        Kind::Trait => decode(value, context).map(|d| docs.traits.push(d)),
        Kind::ResourceClass => decode(value, context).map(|d| docs.resource_classes.push(d)),
        Kind::Flavor => decode(value, context).map(|d| docs.flavors.push(d)),
        Kind::HostGroup => decode(value, context).map(|d| docs.host_groups.push(d)),
    };
    if let Err(d) = outcome {
        parsed.failed += 1;
        parsed.broken.record(kind, node);
        parsed.diagnostics.push(d);
    }
}

/// Typed decoding. The schema has already passed, so an error here is a value the schema
/// cannot express (an integer too large for its field).
fn decode<T: DeserializeOwned>(
    value: Value,
    context: DocContext,
) -> Result<Declared<T>, Diagnostic> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(spec) => Ok(Declared { spec, context }),
        Err(e) => {
            let mut pointer = String::new();
            for segment in e.path().iter() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => {
                        pointer.push_str(&format!("/{index}"))
                    }
                    serde_path_to_error::Segment::Map { key } => {
                        pointer.push('/');
                        pointer.push_str(&crate::yaml::escape(key));
                    }
                    _ => {}
                }
            }
            let field = schema_errors::field_name(&pointer);
            Err(context
                .error_at(
                    &pointer,
                    "fpga_sync::invalid_value",
                    format!("`{field}`: {}", e.inner()),
                )
                .help("fix the value; `fpga-sync schema` prints what each field takes"))
        }
    }
}
