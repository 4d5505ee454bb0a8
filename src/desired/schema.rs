//! The JSON Schema of the desired-state format, generated from the Rust types (so it
//! cannot drift from what the loader accepts), and the per-kind validators the loader
//! runs. Draft-07, which editors (yaml-language-server) and the validator both support.
//! Pure: no I/O.

use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::bitstream::Bitstream;
use super::flavor::Flavor;
use super::host_group::HostGroup;
use super::kind::{API_VERSION, Kind};
use super::placement_name::{ResourceClass, Trait};

/// The pattern added beside every `"format": "uuid"`, so that validators that skip
/// formats in draft-07 still check uuids.
pub const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// The schema of one desired-state document of any kind, as committed in
/// `schema/fpga-sync.schema.json`.
pub fn document_schema() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    for kind in Kind::ALL {
        match kind {
            Kind::Bitstream => generator.subschema_for::<Bitstream>(),
            Kind::Trait => generator.subschema_for::<Trait>(),
            Kind::ResourceClass => generator.subschema_for::<ResourceClass>(),
            Kind::Flavor => generator.subschema_for::<Flavor>(),
            Kind::HostGroup => generator.subschema_for::<HostGroup>(),
        };
    }
    let mut definitions = generator.take_definitions(true);
    for kind in Kind::ALL {
        let Some(Value::Object(def)) = definitions.get_mut(kind.name()) else {
            continue;
        };
        // Every kind's fields sit beside `apiVersion` and `kind`, which its own schema must
        // allow because the kinds forbid unknown fields.
        let properties = def.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(properties) = properties {
            let mut with_header = serde_json::Map::new();
            with_header.insert(
                "apiVersion".into(),
                json!({"description": "The format version.", "const": API_VERSION}),
            );
            with_header.insert(
                "kind".into(),
                json!({"description": "The kind of document.", "const": kind.name()}),
            );
            with_header.append(properties);
            *properties = with_header;
        }
        let required = def.entry("required").or_insert_with(|| json!([]));
        if let Value::Array(required) = required {
            required.splice(0..0, [json!("apiVersion"), json!("kind")]);
        }
    }
    let mut definitions = Value::Object(definitions);
    add_uuid_patterns(&mut definitions);
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    let branches: Vec<Value> = Kind::ALL
        .iter()
        .map(|k| {
            json!({
                "if": {"properties": {"kind": {"const": k.name()}}, "required": ["kind"]},
                "then": {"$ref": format!("#/definitions/{}", k.name())}
            })
        })
        .collect();
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "fpga-sync desired-state document",
        "description": "One YAML document of an fpga-sync repository: a Bitstream, Trait, ResourceClass, Flavor or HostGroup.",
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"enum": kinds}
        },
        "allOf": branches,
        "definitions": definitions,
    })
}

fn add_uuid_patterns(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("format").and_then(Value::as_str) == Some("uuid") {
                map.insert("pattern".into(), json!(UUID_PATTERN));
            }
            map.values_mut().for_each(add_uuid_patterns);
        }
        Value::Array(items) => items.iter_mut().for_each(add_uuid_patterns),
        _ => {}
    }
}

/// The committed schema text: pretty JSON with a final newline.
pub fn document_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&document_schema()).expect("schema serialises");
    text.push('\n');
    text
}

/// The schema and compiled validator of each kind, built once.
pub struct KindSchemas {
    /// The whole document schema; `definitions` holds each kind.
    pub root: Value,
    validators: Vec<(Kind, jsonschema::Validator)>,
}

impl KindSchemas {
    /// The schemas, compiled on first use.
    pub fn get() -> &'static KindSchemas {
        static SCHEMAS: OnceLock<KindSchemas> = OnceLock::new();
        SCHEMAS.get_or_init(|| {
            let root = document_schema();
            let validators = Kind::ALL
                .iter()
                .map(|&kind| {
                    let schema = json!({
                        "$schema": "http://json-schema.org/draft-07/schema#",
                        "definitions": root["definitions"],
                        "allOf": [{"$ref": format!("#/definitions/{}", kind.name())}],
                    });
                    let validator = jsonschema::options()
                        .should_validate_formats(true)
                        .build(&schema)
                        .expect("the generated schema compiles");
                    (kind, validator)
                })
                .collect();
            KindSchemas { root, validators }
        })
    }

    /// The validator of `kind`.
    pub fn validator(&self, kind: Kind) -> &jsonschema::Validator {
        &self
            .validators
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("every kind has a validator")
            .1
    }

    /// The schema of `kind`'s document.
    pub fn definition(&self, kind: Kind) -> &Value {
        &self.root["definitions"][kind.name()]
    }

    /// The schema that applies at `path` (JSON pointer segments) inside a `kind` document,
    /// following `$ref`, `properties`, `items`, `additionalProperties` and the non-null
    /// branch of an optional value.
    pub fn at(&self, kind: Kind, path: &[&str]) -> Option<&Value> {
        let mut schema = self.resolve(self.definition(kind));
        for segment in path {
            schema = if let Some(s) = schema.get("properties").and_then(|p| p.get(*segment)) {
                self.resolve(s)
            } else if let (Some(items), true) =
                (schema.get("items"), segment.parse::<usize>().is_ok())
            {
                self.resolve(items)
            } else if let Some(s @ Value::Object(_)) = schema.get("additionalProperties") {
                self.resolve(s)
            } else {
                return None;
            };
        }
        Some(schema)
    }

    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..16 {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                let name = reference.trim_start_matches("#/definitions/");
                schema = &self.root["definitions"][name];
            } else if let Some(Value::Array(parts)) = schema
                .get("allOf")
                .filter(|p| p.as_array().is_some_and(|p| p.len() == 1))
            {
                schema = &parts[0];
            } else if let Some(Value::Array(branches)) = schema.get("anyOf").or(schema.get("oneOf"))
            {
                match branches
                    .iter()
                    .find(|b| b.get("type") != Some(&json!("null")))
                {
                    Some(branch) => schema = branch,
                    None => return schema,
                }
            } else {
                return schema;
            }
        }
        schema
    }

    /// The field names a mapping at `path` may hold.
    pub fn fields_at(&self, kind: Kind, path: &[&str]) -> Vec<&str> {
        self.at(kind, path)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}
