//! The desired state: the document kinds of an fpga-sync repository, how they are read
//! and checked, and the validated plain data the planner works on.
//!
//! Reading is two pure steps around one I/O step: [`parse`] turns files into typed
//! documents; the caller (the `source` module) gathers facts about the bitstream files they
//! name ([`Parsed::file_requests`]); [`finish`] runs the cross-document and file checks and
//! builds [`Desired`]. Pure: no I/O in this module.

pub mod bitstream;
mod checks;
mod document;
pub mod extra_specs;
pub mod files;
pub mod flavor;
pub mod host_group;
mod kind;
mod parse;
pub mod placement_name;
pub mod schema;
mod schema_errors;
pub mod suggest;
pub mod topology;

use std::collections::BTreeMap;

pub use bitstream::Bitstream;
pub use checks::host_entry_matches;
pub use document::{Declared, DocContext};
pub use files::{FileFact, FileRequest};
pub use flavor::Flavor;
pub use host_group::HostGroup;
pub use kind::{API_VERSION, Kind};
pub use parse::{Broken, Documents, MAX_FILE_BYTES, Parsed, RawContent, RawFile, parse};
pub use placement_name::{ResourceClass, Trait};

use crate::diagnostic::{Diagnostic, Severity};

/// A flavor with its extra specs in the spelling Nova will hold.
#[derive(Clone, Debug)]
pub struct DesiredFlavor {
    /// The flavor as written.
    pub flavor: Flavor,
    /// Extra specs, normalised (`requiredN` rewritten to `traitN:X`).
    pub extra_specs: BTreeMap<String, String>,
}

/// The validated desired state, keyed by name. Built only when no error was found.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    /// The commit it was read from; `None` when read from files on disk.
    pub commit: Option<String>,
    /// Bitstream images, by image name.
    pub bitstreams: BTreeMap<String, Declared<Bitstream>>,
    /// Custom traits, by name.
    pub traits: BTreeMap<String, Declared<Trait>>,
    /// Custom resource classes, by name.
    pub resource_classes: BTreeMap<String, Declared<ResourceClass>>,
    /// Flavors, by name.
    pub flavors: BTreeMap<String, Declared<DesiredFlavor>>,
    /// Host groups, by name.
    pub host_groups: BTreeMap<String, Declared<HostGroup>>,
}

/// The outcome of reading and checking a repository.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The desired state, when there is no error.
    pub desired: Option<Desired>,
    /// Every error and warning, errors first, each group in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// How many fpga-sync documents were read.
    pub documents: usize,
    /// Documents that are not fpga-sync's, by file.
    pub foreign: Vec<(String, usize)>,
}

impl Outcome {
    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

impl Parsed {
    /// The bitstream files whose facts [`finish`] needs.
    pub fn file_requests(&self) -> Vec<FileRequest> {
        files::requests(&self.documents.bitstreams)
    }
}

/// Runs the cross-document checks and the file checks (against `facts`, gathered by the
/// source for [`Parsed::file_requests`]) and builds the desired state when nothing is wrong.
pub fn finish(parsed: Parsed, facts: &BTreeMap<String, FileFact>) -> Outcome {
    let Parsed {
        documents,
        mut diagnostics,
        foreign,
        failed,
        broken,
    } = parsed;
    diagnostics.extend(checks::check(&documents, &broken));
    diagnostics.extend(files::check(&documents.bitstreams, facts));
    if documents.is_empty() && failed == 0 {
        let message = if foreign.is_empty() {
            "no fpga-sync documents found: the folder holds no YAML files".to_owned()
        } else {
            format!(
                "no fpga-sync documents found: {} YAML file(s) hold only other documents",
                foreign.len()
            )
        };
        diagnostics.push(Diagnostic::error("fpga_sync::no_documents", message).help(format!(
            "fpga-sync reads `*.yaml` and `*.yml` files whose documents start with `apiVersion: {API_VERSION}` and a `kind`; check `--repo`, `--ref` and `--dir`"
        )));
    }
    // A stable order: errors before warnings, then by file and position.
    diagnostics.sort_by_key(|d| {
        let place = d
            .location
            .as_ref()
            .map(|l| (l.source.path.clone(), l.span.start));
        (d.severity, place.is_some(), place)
    });
    let document_count = documents.len();
    let desired =
        (!diagnostics.iter().any(|d| d.severity == Severity::Error)).then(|| build(documents));
    Outcome {
        desired,
        diagnostics,
        documents: document_count,
        foreign,
    }
}

fn build(documents: Documents) -> Desired {
    let by_name = |name: &str| name.to_owned();
    Desired {
        commit: None,
        bitstreams: documents
            .bitstreams
            .into_iter()
            .map(|d| (by_name(&d.spec.name), d))
            .collect(),
        traits: documents
            .traits
            .into_iter()
            .map(|d| (by_name(&d.spec.name), d))
            .collect(),
        resource_classes: documents
            .resource_classes
            .into_iter()
            .map(|d| (by_name(&d.spec.name), d))
            .collect(),
        flavors: documents
            .flavors
            .into_iter()
            .map(|d| {
                let extra_specs = extra_specs::read(&d.spec.extra_specs).specs;
                let flavor = Declared {
                    spec: DesiredFlavor {
                        flavor: d.spec,
                        extra_specs,
                    },
                    context: d.context,
                };
                (flavor.spec.flavor.name.clone(), flavor)
            })
            .collect(),
        host_groups: documents
            .host_groups
            .into_iter()
            .map(|d| (by_name(&d.spec.name), d))
            .collect(),
    }
}
