//! A small YAML writer for the documents `import` produces: every string double-quoted and
//! escaped, so no value can change meaning (`yes`, `1.10`, `a: b`). Pure.

use super::*;

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
pub fn one_line(s: &str) -> String {
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

pub(super) fn key_text(key: &Key) -> String {
    match key {
        Key::Field(f) => (*f).to_owned(),
        Key::Free(s) => quote(s),
    }
}

/// A scalar or empty collection as written after `key: `; `None` for a block.
pub(super) fn inline(value: &Yaml) -> Option<String> {
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
pub(super) fn block(value: &Yaml, indent: usize, out: &mut String) {
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
        out.push_str(&format!("# No {what} to import.\n"));
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
