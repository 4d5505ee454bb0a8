//! Builds spanned node trees from saphyr-parser events. Enforces the limits that keep
//! hostile input bounded (nesting depth, alias expansion), reports duplicate keys, and
//! applies `<<` merge keys. Pure: no I/O.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YamlSpan, Tag};

use super::node::{Node, Value};
use super::scalar::resolve_plain;
use crate::text::{SourceText, Span};

/// Bounds on what one file may make the reader do.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest nesting of lists and mappings.
    pub max_depth: usize,
    /// Most nodes that aliases may copy in one file (billion-laughs guard).
    pub max_alias_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_alias_nodes: 100_000,
        }
    }
}

/// A problem found while reading YAML.
#[derive(Clone, Debug, PartialEq)]
pub struct YamlError {
    /// What is wrong, one line.
    pub message: String,
    /// Where.
    pub span: Span,
    /// How to fix it.
    pub help: Option<String>,
    /// A second place that explains the first (the earlier key of a duplicate).
    pub related: Option<(Span, String)>,
}

impl YamlError {
    fn new(message: impl Into<String>, span: Span) -> Self {
        YamlError {
            message: message.into(),
            span,
            help: None,
            related: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Reads every document of `source`. Returns the documents that could be built and every
/// error found; a syntax error or a broken limit ends the file, duplicate keys do not.
pub fn load_documents(source: &SourceText, limits: Limits) -> (Vec<Node>, Vec<YamlError>) {
    let mut builder = Builder {
        source,
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_nodes: 0,
        documents: Vec::new(),
        errors: Vec::new(),
    };
    let mut parser = Parser::new_from_str(&source.text);
    while let Some(event) = parser.next_event() {
        let outcome = match event {
            Ok((event, span)) => builder.on_event(event, span),
            Err(scan) if scan.info() == "recursion limit exceeded" => {
                let at = source.offset_of(scan.marker().line(), scan.marker().col());
                Err(YamlError::new(
                    "nesting is deeper than the YAML reader allows",
                    Span::new(at, at + 1),
                )
                .help(NESTING_HELP))
            }
            Err(scan) if scan.info().contains("tab") => {
                // The scanner reports where the token it was reading began, which can be a
                // line before the tab; point at the tab itself.
                let at = source.offset_of(scan.marker().line(), scan.marker().col());
                let tab = source.text[at.min(source.text.len())..]
                    .find('\t')
                    .map_or(at, |i| at + i);
                Err(YamlError::new(
                    format!("invalid YAML: {}", scan.info()),
                    Span::new(tab, tab + 1),
                )
                .help("YAML does not allow tabs for indentation: indent with spaces"))
            }
            Err(scan) => {
                let at = source.offset_of(scan.marker().line(), scan.marker().col());
                Err(YamlError::new(
                    format!("invalid YAML: {}", scan.info()),
                    Span::new(at, at + 1),
                )
                .help("fix the YAML syntax at this position; a YAML linter shows the same spot"))
            }
        };
        if let Err(error) = outcome {
            builder.errors.push(error);
            break;
        }
    }
    (builder.documents, builder.errors)
}

const NESTING_HELP: &str = "fpga-sync documents need only a few levels; flatten this structure";

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        merges: Vec<Node>,
    },
}

struct Builder<'a> {
    source: &'a SourceText,
    limits: Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    alias_nodes: usize,
    documents: Vec<Node>,
    errors: Vec<YamlError>,
}

impl Builder<'_> {
    fn span(&self, span: YamlSpan) -> Span {
        let start = self.source.offset_of(span.start.line(), span.start.col());
        let end = self.source.offset_of(span.end.line(), span.end.col());
        Span::new(start, end)
    }

    fn on_event(&mut self, event: Event<'_>, raw: YamlSpan) -> Result<(), YamlError> {
        let span = self.span(raw);
        match event {
            Event::DocumentStart(_) => self.anchors.clear(),
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar_value(&text, style, tag.as_deref(), span)?;
                self.complete(Node { value, span }, anchor)?;
            }
            Event::Alias(id) => {
                let Some((node, count)) = self.anchors.get(&id) else {
                    return Err(YamlError::new(
                        "alias refers to an anchor that is not complete",
                        span,
                    )
                    .help("an alias cannot point into the node that defines its anchor"));
                };
                self.alias_nodes += count;
                if self.alias_nodes > self.limits.max_alias_nodes {
                    return Err(YamlError::new(
                        format!(
                            "aliases in this file expand to more than {} nodes",
                            self.limits.max_alias_nodes
                        ),
                        span,
                    )
                    .help("this looks like an alias bomb (\"billion laughs\"); write the values out or use fewer nested aliases"));
                }
                let mut copy = node.clone();
                copy.span = span;
                self.complete(copy, 0)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= self.limits.max_depth {
                    return Err(YamlError::new(
                        format!("nesting is deeper than {} levels", self.limits.max_depth),
                        span,
                    )
                    .help(NESTING_HELP));
                }
                let start = span.start;
                self.stack
                    .push(if matches!(event, Event::SequenceStart(..)) {
                        Frame::Seq {
                            start,
                            anchor,
                            items: Vec::new(),
                        }
                    } else {
                        Frame::Map {
                            start,
                            anchor,
                            entries: Vec::new(),
                            key: None,
                            merges: Vec::new(),
                        }
                    });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    start,
                    anchor,
                    items,
                }) = self.stack.pop()
                {
                    let node = Node {
                        value: Value::Seq(items),
                        span: Span::new(start, span.end.max(start)),
                    };
                    self.complete(node, anchor)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    start,
                    anchor,
                    mut entries,
                    merges,
                    ..
                }) = self.stack.pop()
                {
                    apply_merges(&mut entries, merges);
                    let node = Node {
                        value: Value::Map(entries),
                        span: Span::new(start, span.end.max(start)),
                    };
                    self.complete(node, anchor)?;
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    /// Hands a finished node to its parent, or ends the document when there is none.
    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            let count = node.count();
            self.anchors.insert(anchor, (node.clone(), count));
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                key,
                merges,
                ..
            }) => match key.take() {
                None => {
                    if !matches!(
                        node.value,
                        Value::Str(_) | Value::Int(_) | Value::Bool(_) | Value::Null
                    ) {
                        return Err(YamlError::new(
                            format!(
                                "a mapping key must be a plain value, not {}",
                                node.value.type_name()
                            ),
                            node.span,
                        )
                        .help("use a string key"));
                    }
                    *key = Some(Node {
                        value: Value::Str(key_text(&node.value)),
                        span: node.span,
                    });
                }
                Some(k) => {
                    if k.as_str() == Some("<<") && is_merge_source(&node) {
                        merges.push(node);
                        return Ok(());
                    }
                    if let Some((first, _)) = entries.iter().find(|(e, _)| e.value == k.value) {
                        let name = k.as_str().unwrap_or_default();
                        self.errors.push(YamlError {
                            message: format!("duplicate key `{name}`"),
                            span: k.span,
                            help: Some(format!(
                                "a mapping may hold `{name}` once; remove one of the two or merge them"
                            )),
                            related: Some((first.span, "first defined here".into())),
                        });
                        return Ok(());
                    }
                    entries.push((k, node));
                }
            },
        }
        Ok(())
    }
}

fn key_text(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "null".into(),
    }
}

fn is_merge_source(node: &Node) -> bool {
    match &node.value {
        Value::Map(_) => true,
        Value::Seq(items) => items.iter().all(|i| matches!(i.value, Value::Map(_))),
        _ => false,
    }
}

/// YAML merge keys (`<<: *defaults`): keys written in the mapping win over merged ones, and
/// earlier merge sources win over later ones.
fn apply_merges(entries: &mut Vec<(Node, Node)>, merges: Vec<Node>) {
    for source in merges {
        let maps = match source.value {
            Value::Map(map) => vec![map],
            Value::Seq(items) => items
                .into_iter()
                .filter_map(|i| match i.value {
                    Value::Map(map) => Some(map),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for (k, v) in maps.into_iter().flatten() {
            if !entries.iter().any(|(e, _)| e.value == k.value) {
                entries.push((k, v));
            }
        }
    }
}

fn scalar_value(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    span: Span,
) -> Result<Value, YamlError> {
    let plain = || {
        if style == ScalarStyle::Plain {
            resolve_plain(text)
        } else {
            Value::Str(text.to_owned())
        }
    };
    let Some(tag) = tag else {
        return Ok(plain());
    };
    if !tag.is_yaml_core_schema() {
        if tag.handle == "!" && tag.suffix.is_empty() {
            return Ok(Value::Str(text.to_owned()));
        }
        return Err(YamlError::new(
            format!("unsupported tag `{}{}`", tag.handle, tag.suffix),
            span,
        )
        .help("fpga-sync reads plain YAML; remove the tag"));
    }
    let wrong = |what: &str| {
        YamlError::new(format!("`{text}` is not {what}"), span)
            .help("remove the tag or fix the value")
    };
    match tag.suffix.as_str() {
        "str" => Ok(Value::Str(text.to_owned())),
        "int" => match resolve_plain(text) {
            v @ Value::Int(_) => Ok(v),
            _ => Err(wrong("an integer")),
        },
        "float" => match resolve_plain(text) {
            Value::Int(i) => Ok(Value::Float(i as f64)),
            v @ Value::Float(_) => Ok(v),
            _ => Err(wrong("a number")),
        },
        "bool" => match resolve_plain(text) {
            v @ Value::Bool(_) => Ok(v),
            _ => Err(wrong("a boolean")),
        },
        "null" => match resolve_plain(text) {
            Value::Null => Ok(Value::Null),
            _ => Err(wrong("null")),
        },
        _ => Ok(plain()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Vec<Node>, Vec<YamlError>) {
        load_documents(&SourceText::new("t.yaml", text), Limits::default())
    }

    #[test]
    fn reads_several_documents_with_spans() {
        let text = "a: 1\n---\nb: [x, 'y']\n";
        let (docs, errors) = load(text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(docs.len(), 2);
        let b = docs[1].get("b").unwrap();
        let Value::Seq(items) = &b.value else {
            panic!()
        };
        assert_eq!(&text[items[0].span.start..items[0].span.end], "x");
        assert_eq!(items[1].as_str(), Some("y"));
    }

    #[test]
    fn duplicate_key_points_at_both() {
        let text = "name: a\nkind: x\nname: b\n";
        let (_, errors) = load(text);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "duplicate key `name`");
        assert_eq!(errors[0].span.start, 16);
        assert_eq!(errors[0].related.as_ref().unwrap().0.start, 0);
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let refs = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let (docs, errors) = load(&text);
        assert!(docs.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.contains("expand to more than"),
            "{:?}",
            errors[0]
        );
    }

    #[test]
    fn deep_flow_nesting_is_refused_without_recursion() {
        let text = "[".repeat(100_000);
        let (_, errors) = load(&text);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.starts_with("nesting is deeper than"),
            "{errors:?}"
        );
    }

    #[test]
    fn deep_block_nesting_is_refused_at_the_limit() {
        let text: String = (0..70)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let (_, errors) = load(&text);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "nesting is deeper than 64 levels");
        let line = SourceText::new("t", text.as_str())
            .line_col(errors[0].span.start)
            .0;
        assert_eq!(line, 65, "the 65th mapping opens on line 65");
    }

    #[test]
    fn merge_keys_fill_missing_entries() {
        let (docs, errors) = load("d: &d {a: 1, b: 2}\ne:\n  <<: *d\n  b: 3\n");
        assert!(errors.is_empty(), "{errors:?}");
        let e = docs[0].get("e").unwrap();
        assert_eq!(e.get("a").unwrap().value, Value::Int(1));
        assert_eq!(e.get("b").unwrap().value, Value::Int(3));
    }
}
