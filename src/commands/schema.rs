//! `fpga-sync schema`: prints the JSON Schema of desired-state documents, or of one of the
//! JSON outputs. I/O: stdout.

use std::io::Write;

use crate::cli::{SchemaArgs, SchemaKind};
use crate::desired::schema::document_schema_text;

/// Prints the schema.
pub fn run(args: &SchemaArgs) -> std::io::Result<()> {
    let name = match args.which {
        SchemaKind::Document => {
            return std::io::stdout().write_all(document_schema_text().as_bytes());
        }
        SchemaKind::Plan => "plan",
        SchemaKind::Observe => "observe",
        SchemaKind::Validate => "validate",
        SchemaKind::Apply => "apply",
        SchemaKind::Status => "status",
        SchemaKind::Rollout => "rollout",
        SchemaKind::Error => "error",
    };
    let text = crate::output::schema_text(name).expect("every kind has a schema");
    std::io::stdout().write_all(text.as_bytes())
}
