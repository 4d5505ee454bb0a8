//! `fpga-sync schema`: prints the JSON Schema of desired-state documents. I/O: stdout.

use std::io::Write;

use crate::desired::schema::document_schema_text;

/// Prints the schema.
pub fn run() -> std::io::Result<()> {
    std::io::stdout().write_all(document_schema_text().as_bytes())
}
