//! Turns JSON Schema violations into diagnostics that speak the user's language: the
//! field at fault underlined, and a help line that says how to fix it (the field's
//! description, the allowed names with a "did you mean", how to quote a version).
//! Pure: no I/O.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::document::DocContext;
use super::schema::{KindSchemas, UUID_PATTERN};
use super::suggest::closest;
use crate::diagnostic::Diagnostic;

/// Every violation of `value` against its kind's schema, as diagnostics.
pub fn check(ctx: &DocContext, value: &Value) -> Vec<Diagnostic> {
    let schemas = KindSchemas::get();
    let errors: Vec<ValidationError<'_>> = schemas.validator(ctx.kind).iter_errors(value).collect();
    // A misspelt required field shows up twice: as unknown and as missing. The unknown one
    // with its "did you mean" says it all.
    let misspelt: Vec<(String, String)> = errors
        .iter()
        .filter_map(|e| match e.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => Some((e, unexpected)),
            _ => None,
        })
        .flat_map(|(e, unexpected)| {
            let pointer = e.instance_path().as_str().to_owned();
            let path = segments(&pointer);
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let allowed = schemas.fields_at(ctx.kind, &path);
            unexpected
                .iter()
                .filter_map(|name| {
                    closest(name, allowed.iter().copied()).map(|s| (pointer.clone(), s.to_owned()))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    errors
        .iter()
        .filter(|e| match e.kind() {
            ValidationErrorKind::Required { property } => {
                let key = (
                    e.instance_path().as_str().to_owned(),
                    property.as_str().unwrap_or_default().to_owned(),
                );
                !misspelt.contains(&key)
            }
            _ => true,
        })
        .flat_map(|error| diagnose(ctx, schemas, error))
        .collect()
}

fn segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// `devices[0].address` for `/devices/0/address`.
pub fn field_name(pointer: &str) -> String {
    let mut out = String::new();
    for segment in segments(pointer) {
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    if out.is_empty() {
        "document".into()
    } else {
        out
    }
}

fn diagnose(
    ctx: &DocContext,
    schemas: &KindSchemas,
    error: &ValidationError<'_>,
) -> Vec<Diagnostic> {
    let pointer = error.instance_path().as_str().to_owned();
    let path = segments(&pointer);
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let field = field_name(&pointer);
    let instance = error.instance();
    let kind = ctx.kind;
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| {
                let allowed = schemas.fields_at(kind, &path);
                let at = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
                let place = if path.is_empty() { format!("a {kind}") } else { format!("`{field}`") };
                let help = match closest(name, allowed.iter().copied()) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => format!("the fields here are: {}", list(&allowed)),
                };
                ctx.error_at_key(&at, "fpga_sync::unknown_field", format!("unknown field `{name}` in {place}"))
                    .label("not a field here")
                    .help(help)
            })
            .collect(),
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let description = schemas
                .at(kind, &path)
                .and_then(|s| s.get("properties"))
                .and_then(|p| p.get(name))
                .and_then(|p| p.get("description"))
                .and_then(Value::as_str)
                .map(|d| format!(": {}", first_sentence(d)))
                .unwrap_or_default();
            let place = if path.is_empty() { format!("this {kind}") } else { format!("`{field}`") };
            vec![
                ctx.error_at_key(&pointer, "fpga_sync::missing_field", format!("missing field `{name}` in {place}"))
                    .label(format!("`{name}` is required here"))
                    .help(format!("add `{name}`{description}")),
            ]
        }
        ValidationErrorKind::Type { kind: expected } => {
            // An optional field also takes null; saying so helps nobody who wrote a value.
            let expected = match expected {
                TypeKind::Single(t) => json_type_name(&t.to_string()),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .filter(|t| t != "null" || instance.is_null())
                    .map(|t| json_type_name(&t))
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            let found = found_name(instance);
            let written = ctx.source.text.get(ctx.span(&pointer).start..ctx.span(&pointer).end).unwrap_or_default();
            let help = if expected.contains("string") && instance.is_number() {
                format!("quote it so YAML keeps it as written: `\"{written}\"`")
            } else if expected.contains("boolean") && instance.is_string() {
                "write `true` or `false`".to_owned()
            } else if instance.is_null() {
                format!("give `{field}` a value, or remove the line")
            } else {
                format!("write {expected} here")
            };
            vec![
                ctx.error_at(&pointer, "fpga_sync::wrong_type", format!("`{field}` must be {expected}, not {found}"))
                    .label(format!("expected {expected}"))
                    .help(help),
            ]
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<&str> = options.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            vec![enum_error(ctx, &pointer, &field, instance, &options)]
        }
        ValidationErrorKind::Constant { expected_value } => {
            let got = instance.as_str().map_or_else(|| instance.to_string(), str::to_owned);
            let expected = expected_value.as_str().unwrap_or_default();
            vec![
                ctx.error_at(&pointer, "fpga_sync::invalid_value", format!("`{field}` is `{got}`, expected `{expected}`"))
                    .help(format!("write `{field}: {expected}`")),
            ]
        }
        ValidationErrorKind::Pattern { pattern } => vec![pattern_error(ctx, &pointer, &field, instance, pattern)],
        ValidationErrorKind::Format { format } if format == "uuid" => {
            vec![pattern_error(ctx, &pointer, &field, instance, UUID_PATTERN)]
        }
        ValidationErrorKind::MinLength { limit: 1 } => vec![
            ctx.error_at(&pointer, "fpga_sync::empty_value", format!("`{field}` is empty"))
                .help(format!("give `{field}` a value")),
        ],
        ValidationErrorKind::MaxLength { limit } => vec![
            ctx.error_at(&pointer, "fpga_sync::too_long", format!("`{field}` is longer than {limit} characters"))
                .help(format!("shorten it to at most {limit} characters")),
        ],
        ValidationErrorKind::MinItems { limit } => vec![
            ctx.error_at(&pointer, "fpga_sync::empty_list", format!("`{field}` needs at least {limit} entry"))
                .help(format!("list at least {limit} entry under `{field}`")),
        ],
        ValidationErrorKind::Minimum { limit } => vec![
            ctx.error_at(&pointer, "fpga_sync::out_of_range", format!("`{field}` must be at least {limit}"))
                .help(format!("set `{field}` to {limit} or more")),
        ],
        ValidationErrorKind::Maximum { limit } => vec![
            ctx.error_at(&pointer, "fpga_sync::out_of_range", format!("`{field}` must be at most {limit}"))
                .help(format!("set `{field}` to {limit} or less")),
        ],
        ValidationErrorKind::OneOfNotValid { context } if context.iter().all(|b| matches!(b.as_slice(), [e] if matches!(e.kind(), ValidationErrorKind::Constant { .. }))) => {
            // An enum whose variants carry descriptions: one `const` per branch.
            let options: Vec<String> = context
                .iter()
                .filter_map(|b| match b[0].kind() {
                    ValidationErrorKind::Constant { expected_value } => expected_value.as_str().map(str::to_owned),
                    _ => None,
                })
                .collect();
            let options: Vec<&str> = options.iter().map(String::as_str).collect();
            vec![enum_error(ctx, &pointer, &field, instance, &options)]
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // An optional value: the branch that is not "null" holds the real errors.
            let branches: Vec<_> = context
                .iter()
                .filter(|branch| {
                    !branch.iter().all(|e| matches!(e.kind(), ValidationErrorKind::Type { .. }) && e.instance_path().as_str() == pointer)
                })
                .collect();
            match branches.as_slice() {
                [only] => only.iter().flat_map(|e| diagnose(ctx, schemas, e)).collect(),
                // A value of none of the types the field takes (a count or a percentage, a
                // count or a list): name them.
                [] => {
                    let expected: Vec<String> = context
                        .iter()
                        .flatten()
                        .filter_map(|e| match e.kind() {
                            ValidationErrorKind::Type { kind: TypeKind::Single(t) } if t.to_string() != "null" => Some(json_type_name(&t.to_string())),
                            _ => None,
                        })
                        .collect();
                    let expected = expected.join(" or ");
                    vec![
                        ctx.error_at(&pointer, "fpga_sync::wrong_type", format!("`{field}` must be {expected}, not {}", found_name(instance)))
                            .label(format!("expected {expected}"))
                            .help(format!("write {expected} here")),
                    ]
                }
                _ => vec![ctx.error_at(&pointer, "fpga_sync::invalid_value", format!("`{field}` is not valid: {error}"))],
            }
        }
        _ => vec![ctx.error_at(&pointer, "fpga_sync::invalid_value", format!("`{field}` is not valid: {error}"))],
    }
}

fn enum_error(
    ctx: &DocContext,
    pointer: &str,
    field: &str,
    instance: &Value,
    options: &[&str],
) -> crate::diagnostic::Diagnostic {
    let got = instance
        .as_str()
        .map_or_else(|| instance.to_string(), str::to_owned);
    let help = match closest(&got, options.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("use one of {}", list(options)),
    };
    ctx.error_at(
        pointer,
        "fpga_sync::invalid_value",
        format!("`{got}` is not a valid `{field}`"),
    )
    .label(format!("one of {}", list(options)))
    .help(help)
}

fn pattern_error(
    ctx: &DocContext,
    pointer: &str,
    field: &str,
    instance: &Value,
    pattern: &str,
) -> crate::diagnostic::Diagnostic {
    let got = instance.as_str().unwrap_or_default();
    let (message, help) = match pattern {
        UUID_PATTERN => (
            format!("`{got}` in `{field}` is not a UUID"),
            "write 32 hex digits as 8-4-4-4-12, e.g. `9a1c3e0b-5f7d-4e8a-b2c6-0d4f1a7e3b95`; `uuidgen` makes one".to_owned(),
        ),
        r"^CUSTOM_[A-Z0-9_]+$" => (
            format!("`{got}` is not a custom Placement name"),
            format!("custom names are `CUSTOM_` then upper-case letters, digits and `_`: `{}`", custom_spelling(got)),
        ),
        r"^[A-Z0-9_]+$" => (
            format!("`{got}` in `{field}` is not a Placement name"),
            format!("Placement names are upper-case letters, digits and `_`, e.g. `{}`", custom_spelling(got)),
        ),
        r"^[0-9a-f]{64}$" => (
            format!("`{got}` in `{field}` is not a sha256 digest"),
            "write the 64 lower-case hex digits that `sha256sum FILE` prints".to_owned(),
        ),
        r"^https://\S+$" => (
            format!("`{got}` in `{field}` is not an https URL"),
            "bitstreams are fetched over https only; write `https://...` or keep the file in the repo with `file:`".to_owned(),
        ),
        r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$" => (
            format!("`{got}` in `{field}` is not a PCI address"),
            "write domain:bus:device.function in hex and quote it, e.g. `\"0000:5e:00.0\"`".to_owned(),
        ),
        r"^fpga[0-9]+$" => (
            format!("`{got}` in `{field}` is not an FPGA manager name"),
            "write the manager's class name as in `/sys/class/fpga_manager/`, e.g. `fpga0` (`fpga-sync devices --backend fpga-manager` lists them)".to_owned(),
        ),
        r"^[0-9]{1,3}%$" => (
            format!("`{got}` in `{field}` is neither a count nor a percentage"),
            "write a number of hosts such as `2`, or a share such as `\"25%\"`".to_owned(),
        ),
        r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$" => (
            format!("`{got}` in `{field}` is not a PCI vendor:device id"),
            "write two 4-digit hex ids and quote them, e.g. `\"8086:09c4\"`".to_owned(),
        ),
        _ => (format!("`{got}` in `{field}` does not match `{pattern}`"), format!("write a value that matches `{pattern}`")),
    };
    ctx.error_at(pointer, "fpga_sync::invalid_value", message)
        .help(help)
}

/// A likely intended custom name: upper-case, invalid characters as `_`, `CUSTOM_` prefix.
fn custom_spelling(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if upper.starts_with("CUSTOM_") {
        upper
    } else {
        format!("CUSTOM_{upper}")
    }
}

fn json_type_name(t: &str) -> String {
    match t {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean (`true` or `false`)",
        "array" => "a list",
        "object" => "a mapping",
        "null" => "null",
        other => other,
    }
    .to_owned()
}

fn found_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first sentence of a description, lower-cased for a help line: up to the first
/// `. ` that ends a sentence (not the one of `e.g. ` or `i.e. `).
fn first_sentence(text: &str) -> String {
    let text = text.replace('\n', " ");
    let mut end = text.len();
    let mut from = 0;
    while let Some(i) = text[from..].find(". ").map(|i| from + i) {
        let before = &text[..i];
        if before.ends_with("e.g") || before.ends_with("i.e") {
            from = i + 2;
            continue;
        }
        end = i;
        break;
    }
    let text = &text[..end];
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::first_sentence;

    #[test]
    fn a_help_line_is_the_whole_first_sentence() {
        assert_eq!(
            first_sentence("Bitstream name, e.g. `aes-128`. Shown to users."),
            "bitstream name, e.g. `aes-128`"
        );
        assert_eq!(first_sentence("One. Two."), "one");
        assert_eq!(first_sentence("Only one."), "only one");
    }
}
