//! Reads a flavor's extra specs: checks the FPGA request keys (`resourcesN:RC`,
//! `traitN:TRAIT`, `accel:device_profile`, `group_policy`), rewrites the seed's
//! `requiredN: A,B` spelling to today's `traitN:A=required`, and lists the traits and
//! resource classes they name so that references can be resolved. Pure: no I/O.

use std::collections::BTreeMap;

use super::flavor::ExtraSpecValue;

/// What a flavor's extra specs become.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExtraSpecs {
    /// The specs as Nova will hold them, in today's spelling.
    pub specs: BTreeMap<String, String>,
    /// Problems, each with the key as written.
    pub problems: Vec<SpecProblem>,
    /// Trait names used, each with the key as written.
    pub traits: Vec<(String, String)>,
    /// Resource class names used, each with the key as written.
    pub resource_classes: Vec<(String, String)>,
}

/// A problem with one extra spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecProblem {
    /// The key as written in the document.
    pub key: String,
    /// Whether the problem is in the value rather than the key.
    pub in_value: bool,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

/// The request-group suffix after `resources`, `trait` or `required`: empty, digits, or
/// `_` and a name of up to 64 letters, digits, `_` or `-`.
fn is_group_suffix(suffix: &str) -> bool {
    suffix.is_empty()
        || suffix.bytes().all(|b| b.is_ascii_digit())
        || suffix.strip_prefix('_').is_some_and(|name| {
            (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Reads `specs` as written in a flavor document.
pub fn read(specs: &BTreeMap<String, ExtraSpecValue>) -> ExtraSpecs {
    let mut out = ExtraSpecs::default();
    // Which written key produced each normalised key, to report two spellings of one spec.
    let mut written_as: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |out: &mut ExtraSpecs, written: &str, key: String, value: String| {
        if let Some(first) = written_as.get(&key) {
            if out.specs.get(&key) != Some(&value) {
                out.problems.push(SpecProblem {
                    key: written.to_owned(),
                    in_value: false,
                    message: format!("`{written}` sets `{key}` to `{value}`, but `{first}` already sets it to `{}`", out.specs[&key]),
                    help: "keep one of the two".into(),
                });
            }
            return;
        }
        written_as.insert(key.clone(), written.to_owned());
        out.specs.insert(key, value);
    };
    for (key, value) in specs {
        let text = value.as_nova_string();
        let problem = |message: String, help: &str, in_value: bool| SpecProblem {
            key: key.clone(),
            in_value,
            message,
            help: help.to_owned(),
        };
        if let Some((group, class)) = key
            .split_once(':')
            .filter(|(g, _)| g.starts_with("resources"))
        {
            if !is_group_suffix(&group["resources".len()..]) {
                out.problems.push(problem(
                    format!("`{group}` is not a request group"),
                    "write `resources:`, `resourcesN:` with a number, or `resources_NAME:`",
                    false,
                ));
                continue;
            }
            match text.parse::<u64>() {
                Ok(n) if n > 0 => {
                    out.resource_classes.push((key.clone(), class.to_owned()));
                    put(&mut out, key, key.clone(), n.to_string());
                }
                _ => out.problems.push(problem(
                    format!("`{key}` asks for `{text}`, which is not a positive whole amount"),
                    "write the amount as a positive integer, e.g. `2`",
                    true,
                )),
            }
        } else if let Some((group, name)) =
            key.split_once(':').filter(|(g, _)| g.starts_with("trait"))
        {
            if !is_group_suffix(&group["trait".len()..]) {
                out.problems.push(problem(
                    format!("`{group}` is not a request group"),
                    "write `trait:`, `traitN:` with a number, or `trait_NAME:`",
                    false,
                ));
                continue;
            }
            if text != "required" && text != "forbidden" {
                out.problems.push(problem(
                    format!("`{key}` is `{text}`, but a trait is `required` or `forbidden`"),
                    "write `required` or `forbidden`",
                    true,
                ));
                continue;
            }
            out.traits.push((key.clone(), name.to_owned()));
            put(&mut out, key, key.clone(), text);
        } else if let Some(suffix) = key.strip_prefix("required").filter(|s| is_group_suffix(s)) {
            // The seed's spelling: `required1: CUSTOM_A,!CUSTOM_B`.
            for item in text.split(',').map(str::trim) {
                let (name, how) = match item.strip_prefix('!') {
                    Some(name) => (name, "forbidden"),
                    None => (item, "required"),
                };
                if name.is_empty() || name.contains(':') {
                    out.problems.push(problem(
                        format!("`{item}` in `{key}` is not a trait name"),
                        "list trait names separated by commas, e.g. `CUSTOM_HW_INTEL,CUSTOM_HW_CRYPTO`",
                        true,
                    ));
                    continue;
                }
                out.traits.push((key.clone(), name.to_owned()));
                put(
                    &mut out,
                    key,
                    format!("trait{suffix}:{name}"),
                    how.to_owned(),
                );
            }
        } else if key == "accel:device_profile" {
            if text.trim().is_empty() {
                out.problems.push(problem(
                    "`accel:device_profile` is empty".into(),
                    "name the Cyborg device profile, or remove the key",
                    true,
                ));
                continue;
            }
            put(&mut out, key, key.clone(), text);
        } else if key == "group_policy" {
            if text != "none" && text != "isolate" {
                out.problems.push(problem(
                    format!("`group_policy` is `{text}`, but it is `none` or `isolate`"),
                    "write `none` or `isolate`",
                    true,
                ));
                continue;
            }
            put(&mut out, key, key.clone(), text);
        } else {
            put(&mut out, key, key.clone(), text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(pairs: &[(&str, ExtraSpecValue)]) -> BTreeMap<String, ExtraSpecValue> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn s(v: &str) -> ExtraSpecValue {
        ExtraSpecValue::Str(v.into())
    }

    #[test]
    fn seed_spelling_is_normalised() {
        let read = read(&specs(&[
            ("resources1:CUSTOM_FPGA_INTEL_PF", ExtraSpecValue::Int(2)),
            ("required1", s("CUSTOM_HW_INTEL, !CUSTOM_HW_CRYPTO")),
            ("hw:cpu_policy", s("dedicated")),
        ]));
        assert_eq!(read.problems, vec![]);
        let got: Vec<(&str, &str)> = read
            .specs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("hw:cpu_policy", "dedicated"),
                ("resources1:CUSTOM_FPGA_INTEL_PF", "2"),
                ("trait1:CUSTOM_HW_CRYPTO", "forbidden"),
                ("trait1:CUSTOM_HW_INTEL", "required"),
            ]
        );
        assert_eq!(
            read.resource_classes,
            [(
                "resources1:CUSTOM_FPGA_INTEL_PF".to_owned(),
                "CUSTOM_FPGA_INTEL_PF".to_owned()
            )]
        );
        assert_eq!(read.traits.len(), 2);
    }

    #[test]
    fn bad_values_and_conflicting_spellings_are_problems() {
        let read = read(&specs(&[
            ("resources:CUSTOM_X", s("two")),
            ("trait:CUSTOM_Y", s("yes")),
            ("required", s("CUSTOM_Z")),
            ("trait:CUSTOM_Z", s("forbidden")),
            ("resourcesX:VCPU", ExtraSpecValue::Int(1)),
        ]));
        let messages: Vec<&str> = read.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`resources:CUSTOM_X` asks for `two`, which is not a positive whole amount",
                "`resourcesX` is not a request group",
                "`trait:CUSTOM_Y` is `yes`, but a trait is `required` or `forbidden`",
                "`trait:CUSTOM_Z` sets `trait:CUSTOM_Z` to `forbidden`, but `required` already sets it to `required`",
            ]
        );
    }
}
