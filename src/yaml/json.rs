//! Converts a node tree to `serde_json::Value` for schema validation and typed decoding,
//! and keeps, for every JSON pointer, the spans of the value and of its key, so that an
//! error found on the JSON side is reported at the right place in the YAML. Pure: no I/O.

use std::collections::HashMap;

use serde_json::{Map, Number};

use super::node::{Node, Value};
use crate::text::Span;

/// A JSON pointer (`/devices/0/address`), as RFC 6901 spells it.
pub type Pointer = String;

/// Where each JSON pointer of a converted document stands in its YAML file.
#[derive(Clone, Debug, Default)]
pub struct SpanIndex {
    values: HashMap<Pointer, Span>,
    keys: HashMap<Pointer, Span>,
}

impl SpanIndex {
    /// The span of the value at `pointer`, or of its nearest ancestor that exists.
    pub fn value(&self, pointer: &str) -> Span {
        let mut p = pointer;
        loop {
            if let Some(span) = self.values.get(p) {
                return *span;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Span::default(),
            }
        }
    }

    /// The span of the key naming the value at `pointer`, falling back to the value.
    pub fn key(&self, pointer: &str) -> Span {
        self.keys
            .get(pointer)
            .copied()
            .unwrap_or_else(|| self.value(pointer))
    }

    /// The span of the key when the pointer names a mapping entry, else of the value: the
    /// best place to underline "this field".
    pub fn field(&self, pointer: &str) -> Span {
        self.key(pointer)
    }
}

/// Escapes one pointer segment (`~` → `~0`, `/` → `~1`).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Converts `node` to JSON and indexes the span of every value under `pointer`.
pub fn to_json(node: &Node) -> (serde_json::Value, SpanIndex) {
    let mut index = SpanIndex::default();
    let mut pointer = String::new();
    let value = convert(node, &mut pointer, &mut index);
    (value, index)
}

fn convert(node: &Node, pointer: &mut String, index: &mut SpanIndex) -> serde_json::Value {
    index.values.insert(pointer.clone(), node.span);
    match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::Number((*i).into()),
        // JSON has no NaN or infinity; as a string the schema reports a type error.
        Value::Float(f) => Number::from_f64(*f).map_or_else(
            || serde_json::Value::String(f.to_string()),
            serde_json::Value::Number,
        ),
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Seq(items) => {
            let len = pointer.len();
            let out = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    let v = convert(item, pointer, index);
                    pointer.truncate(len);
                    v
                })
                .collect();
            serde_json::Value::Array(out)
        }
        Value::Map(entries) => {
            let len = pointer.len();
            let mut out = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let key = k.as_str().unwrap_or_default().to_owned();
                pointer.push('/');
                pointer.push_str(&escape(&key));
                index.keys.insert(pointer.clone(), k.span);
                let value = convert(v, pointer, index);
                pointer.truncate(len);
                out.insert(key, value);
            }
            serde_json::Value::Object(out)
        }
    }
}
