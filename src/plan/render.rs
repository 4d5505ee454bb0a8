//! Plans for people and machines: the terminal text (`+`/`~`/`-/+`/`-` lines, a word-level
//! diff of changed values, the summary line), Markdown for a merge-request comment, and
//! versioned JSON. Taking over an object another fpga-sync site manages is a highlighted
//! warning under its action, not an ordinary change. Colour only when asked. Pure: returns
//! strings.

use similar::{ChangeTag, TextDiff};

use super::{Action, Kind, ObjectType, Plan};
use crate::markers::{FLAVOR_OWNER_SPEC, IMAGE_OWNER};

const RESET: &str = "\x1b[0m";
const WARNING: &str = "\x1b[1;31m";

/// The other fpga-sync site an action takes its object over from, if it does (`adopt:
/// true` on an object that carries another site's mark).
pub fn taken_over_from(a: &Action) -> Option<&str> {
    let field = match a.object {
        ObjectType::Image => format!("properties.{IMAGE_OWNER}"),
        ObjectType::Flavor => format!("extra_specs.{FLAVOR_OWNER_SPEC}"),
        ObjectType::Trait | ObjectType::ResourceClass => return None,
    };
    a.changes
        .iter()
        .find(|c| c.field == field && c.new.is_some() && c.old != c.new)
        .and_then(|c| c.old.as_deref())
}

fn takeover_line(a: &Action, site: &str) -> String {
    format!(
        "! takes {} {} over from fpga-sync site `{site}`: that site's plans will refuse it as unmanaged from now on",
        a.object.label(),
        a.name
    )
}

fn takeovers(plan: &Plan) -> usize {
    plan.actions
        .iter()
        .filter(|a| taken_over_from(a).is_some())
        .count()
}

fn color_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Create => "\x1b[32m",
        Kind::Update => "\x1b[33m",
        Kind::Replace => "\x1b[35m",
        Kind::Delete => "\x1b[31m",
    }
}

/// `Plan: 3 to add, 1 to change, 0 to replace, 0 to destroy.`, and how many objects are
/// taken over from other sites when any are.
pub fn summary(plan: &Plan) -> String {
    let (create, update, replace, delete) = plan.counts();
    let taken = match takeovers(plan) {
        0 => String::new(),
        n => format!(" {n} taken over from another site."),
    };
    format!(
        "Plan: {create} to add, {update} to change, {replace} to replace, {delete} to destroy.{taken}"
    )
}

/// A word-level diff of `old` → `new`: `[-gone-]{+new+}` around what changed.
pub fn word_diff(old: &str, new: &str) -> String {
    let diff = TextDiff::from_words(old, new);
    diff.iter_all_changes()
        .map(|c| match c.tag() {
            ChangeTag::Equal => c.value().to_owned(),
            ChangeTag::Delete => format!("[-{}-]", c.value()),
            ChangeTag::Insert => format!("{{+{}+}}", c.value()),
        })
        .collect::<String>()
        .replace("-][-", "")
        .replace("+}{+", "")
}

fn value_line(c: &super::Change) -> String {
    match (&c.old, &c.new) {
        (None, Some(new)) => format!("+ {}: {new}", c.field),
        (Some(old), None) => format!("- {}: {old}", c.field),
        // Long values made of words (a description, topology JSON) read best as a word diff.
        (Some(old), Some(new)) if old.len() + new.len() > 60 && old.contains([' ', ',']) => {
            format!("~ {}: {}", c.field, word_diff(old, new))
        }
        (Some(old), Some(new)) => format!("~ {}: {old} → {new}", c.field),
        (None, None) => format!("~ {}", c.field),
    }
}

fn action_lines(a: &Action) -> Vec<String> {
    let mut head = format!("{} {} {}", a.kind.symbol(), a.object.label(), a.name);
    if let Some(reason) = &a.reason {
        head.push_str(&format!(" ({reason})"));
    }
    let mut lines = vec![head];
    lines.extend(a.changes.iter().map(|c| format!("    {}", value_line(c))));
    if !a.used_by.is_empty() {
        lines.push(format!("    used by: {}", a.used_by.join(", ")));
    }
    lines
}

/// What a plan without actions says: nothing to do, or only what pruning would remove.
fn nothing_to_do(plan: &Plan) -> &'static str {
    if plan.not_pruned.is_empty() {
        "No changes: the cloud matches the desired state."
    } else {
        "Nothing to create or change. What left the repository stays until a plan with `--prune`:"
    }
}

/// The plan for a terminal; `color` adds ANSI colours to the action lines and the
/// takeover warnings.
pub fn human(plan: &Plan, header: &str, color: bool) -> String {
    let mut out = format!("{header}\n\n");
    if plan.actions.is_empty() {
        out.push_str(nothing_to_do(plan));
        out.push('\n');
    }
    for a in &plan.actions {
        for (i, line) in action_lines(a).into_iter().enumerate() {
            if color && i == 0 {
                out.push_str(&format!("  {}{line}{RESET}\n", color_of(a.kind)));
            } else {
                out.push_str(&format!("  {line}\n"));
            }
            if i == 0
                && let Some(site) = taken_over_from(a)
            {
                let warning = takeover_line(a, site);
                if color {
                    out.push_str(&format!("    {WARNING}{warning}{RESET}\n"));
                } else {
                    out.push_str(&format!("    {warning}\n"));
                }
            }
        }
    }
    for kept in &plan.not_pruned {
        out.push_str(&format!(
            "  note: {kept} is no longer in the repository; `--prune` deletes it\n"
        ));
    }
    for busy in &plan.in_progress {
        out.push_str(&format!("  note: {busy}\n"));
    }
    out.push('\n');
    out.push_str(&summary(plan));
    out.push('\n');
    out
}

/// The plan as Markdown, for a merge-request comment.
pub fn markdown(plan: &Plan, header: &str) -> String {
    let mut out = format!(
        "### fpga-sync plan\n\n{header}\n\n**{}**\n\n",
        summary(plan)
    );
    if plan.actions.is_empty() {
        out.push_str(if plan.not_pruned.is_empty() {
            "No changes."
        } else {
            nothing_to_do(plan)
        });
        out.push('\n');
        for kept in &plan.not_pruned {
            out.push_str(&format!(
                "\n> {kept} is no longer in the repository; `--prune` deletes it\n"
            ));
        }
        for busy in &plan.in_progress {
            out.push_str(&format!("\n> {busy}\n"));
        }
        return out;
    }
    for a in &plan.actions {
        if let Some(site) = taken_over_from(a) {
            out.push_str(&format!(
                "> **Warning:** {}\n\n",
                &takeover_line(a, site)[2..]
            ));
        }
    }
    out.push_str("```diff\n");
    for a in &plan.actions {
        for line in action_lines(a) {
            // `diff` highlighting colours lines by their first character.
            let first = match a.kind {
                Kind::Create => "+",
                Kind::Delete => "-",
                Kind::Update | Kind::Replace => "!",
            };
            if line.starts_with("    ") {
                out.push_str(&format!(" {line}\n"));
            } else {
                out.push_str(&format!("{first} {line}\n"));
            }
        }
    }
    out.push_str("```\n");
    for kept in &plan.not_pruned {
        out.push_str(&format!(
            "\n> {kept} is no longer in the repository; `--prune` deletes it\n"
        ));
    }
    for busy in &plan.in_progress {
        out.push_str(&format!("\n> {busy}\n"));
    }
    out
}

/// The plan as JSON (the saved-plan format too).
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("plans serialise")
}

#[cfg(test)]
mod tests {
    use super::word_diff;

    #[test]
    fn word_diff_marks_only_what_changed() {
        assert_eq!(
            word_diff(
                r#"{"pf_num": 2, "vf_num": 2}"#,
                r#"{"pf_num": 2, "vf_num": 4}"#
            ),
            r#"{"pf_num": 2, "vf_num": [-2}-]{+4}+}"#
        );
    }
}
