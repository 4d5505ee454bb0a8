//! YAML reading for desired-state files: a spanned node tree built from saphyr-parser's
//! event stream, with the limits that make hostile input safe (nesting depth, alias
//! expansion budget), duplicate-key detection, merge keys, and the conversion to JSON that
//! schema validation and typed decoding work on. Pure: no I/O.

mod json;
mod load;
mod node;
mod scalar;

pub use json::{Pointer, SpanIndex, escape, to_json};
pub use load::{Limits, YamlError, load_documents};
pub use node::{Node, Value};
