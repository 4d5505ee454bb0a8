//! The committed JSON Schema is the one the types generate, and it describes the real
//! format: the example site's documents pass it, a bad document fails it.

use std::path::Path;

use fpga_sync::desired::schema::document_schema_text;

const COMMITTED: &str = "schema/fpga-sync.schema.json";

#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == document_schema_text(),
        "{COMMITTED} is stale: run `cargo run -- schema > {COMMITTED}` and commit it"
    );
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = crate::support::fpga_sync(&["schema"], Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        document_schema_text()
    );
}

#[test]
fn schema_accepts_good_and_rejects_bad_documents_on_its_own() {
    // What an editor does with the file: validate a document with a stock validator.
    let schema: serde_json::Value = serde_json::from_str(&document_schema_text()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let good = serde_json::json!({
        "apiVersion": "fpga-sync/v1", "kind": "Flavor", "name": "f", "vcpus": 1, "ram": 512, "disk": 1,
        "extra_specs": {"resources:CUSTOM_FPGA_INTEL_PF": 2, "trait:CUSTOM_FPGA": "required"}
    });
    assert!(validator.is_valid(&good));
    let typo = serde_json::json!({"apiVersion": "fpga-sync/v1", "kind": "Trait", "name": "CUSTOM_X", "nmae": "y"});
    assert!(!validator.is_valid(&typo));
    let bad_name = serde_json::json!({"apiVersion": "fpga-sync/v1", "kind": "ResourceClass", "name": "FPGA_X"});
    assert!(!validator.is_valid(&bad_name));
    let bad_kind = serde_json::json!({"apiVersion": "fpga-sync/v1", "kind": "Nope"});
    assert!(!validator.is_valid(&bad_kind));
}
