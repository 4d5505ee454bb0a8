//! Host plans and results for people: one line per slot in the order they are carried
//! out, with what the card carries, what happens and what Placement will hold, and a
//! summary line. Pure: strings only.

use std::fmt::Write;

use crate::host::plan::{HostPlan, SlotAction, SlotPlan, consumer};
use crate::host::status::{HostStatus, SlotState, SlotStatus};

fn bitstream(s: &SlotPlan) -> String {
    s.assignment
        .bitstream
        .as_ref()
        .map_or("-".into(), |t| format!("`{}`", t.name))
}

/// The plan, with the problems found on the way.
pub fn human(plan: &HostPlan, problems: &[String], head: &str) -> String {
    let mut out = format!("{head}\n\n");
    for p in problems {
        let _ = writeln!(out, "warning: {p}");
    }
    let (mut program, mut report, mut blocked, mut in_sync, mut waiting) = (0, 0, 0, 0, 0);
    for s in &plan.slots {
        let slot = s.assignment.slot.to_string();
        let line = match &s.action {
            SlotAction::Manual { report: false } => "  manual: left alone".to_owned(),
            SlotAction::Manual { report: true } => {
                report += 1;
                format!(
                    "~ manual: left alone; report it as claimable: provider `{}`",
                    s.provider_name.as_deref().unwrap_or("")
                )
            }
            SlotAction::ShellChecked { proven } => {
                in_sync += 1;
                if *proven {
                    format!("= shell {} is on the card", bitstream(s))
                } else {
                    format!(
                        "= shell {}: this backend cannot read it back; the regions' interface checks guard them",
                        bitstream(s)
                    )
                }
            }
            SlotAction::InSync { report: false } if s.hold.is_some() => {
                waiting += 1;
                held(
                    s,
                    format!("= carries {} and keeps offering it", bitstream(s)),
                )
            }
            SlotAction::InSync { report: true } if s.hold.is_some() => {
                waiting += 1;
                held(
                    s,
                    format!(
                        "~ carries {} and keeps offering it; report it: provider `{}`",
                        bitstream(s),
                        s.provider_name.as_deref().unwrap_or("")
                    ),
                )
            }
            SlotAction::InSync { report: false } => {
                in_sync += 1;
                format!("= carries {}", bitstream(s))
            }
            SlotAction::InSync { report: true } => {
                report += 1;
                format!(
                    "~ carries {}; report it: provider `{}`",
                    bitstream(s),
                    s.provider_name.as_deref().unwrap_or("")
                )
            }
            SlotAction::Program { drain, forced } => {
                program += 1;
                let mut steps = Vec::new();
                if s.withdraw.is_some() {
                    steps.push("withdraw provider");
                }
                steps.push("fetch + verify");
                if *drain {
                    steps.push("check allocations");
                }
                steps.extend(["program", "read back"]);
                if s.provider_name.is_some() {
                    steps.push("report");
                }
                let forced = match (forced, s.provider.as_ref()) {
                    (false, _) => String::new(),
                    (true, Some(p)) if !p.consumers.is_empty() => format!(
                        " [forced: in use by {}]",
                        consumer::holders(&p.consumers, p.allocations)
                    ),
                    (true, _) => " [forced: in use]".to_owned(),
                };
                format!(
                    "+ program {} (carries {}): {}{forced}",
                    bitstream(s),
                    s.current,
                    steps.join(" → "),
                )
            }
            SlotAction::Blocked { reason, help } => {
                blocked += 1;
                let mut text = format!("! blocked {}: {reason}\n      help: {help}", bitstream(s));
                if s.withdraw.is_some() {
                    let _ = write!(
                        text,
                        "\n      the card carries {}: withdraw its provider from scheduling (reserve it, remove its function traits)",
                        s.current
                    );
                }
                text
            }
            SlotAction::Wait { .. } => {
                waiting += 1;
                let mut text = held(s, format!("… carries {}", s.current));
                if s.withdraw.is_some() {
                    text.push_str(
                        "\n      nothing it can offer: withdraw its provider from scheduling (reserve it, remove its function traits)",
                    );
                }
                text
            }
        };
        let _ = writeln!(out, "  {slot:<24} {line}");
        if let Some(note) = &s.note {
            let _ = writeln!(out, "      note: {note}");
        }
    }
    for r in &plan.removals {
        let p = &r.provider;
        let what = if p.allocations > 0 {
            format!("keep and reserve: {} allocations", p.holders())
        } else {
            "remove".to_owned()
        };
        let _ = writeln!(
            out,
            "  - provider `{}` (device gone or unassigned): {what}",
            p.name
        );
    }
    let _ = writeln!(
        out,
        "\nHost {}: {program} to program, {report} to report, {} provider(s) to remove, {blocked} blocked, {in_sync} in sync{}.",
        plan.host,
        plan.removals.len(),
        if waiting > 0 {
            format!(", {waiting} waiting for their rollout")
        } else {
            String::new()
        }
    );
    out
}

/// A held slot's line: what happens now, then what it waits for.
fn held(s: &SlotPlan, now: String) -> String {
    let Some(h) = &s.hold else { return now };
    format!("{now}\n      waits for `{}`: {}", h.assigned, h.reason)
}

/// The status of a slot its rollout holds back, from what the pass did: `waiting`, with
/// the bitstream it is assigned and what it keeps offering meanwhile. A failure (say, the
/// report of what it carries) stays a failure.
pub fn with_hold(plan: &SlotPlan, mut status: SlotStatus) -> SlotStatus {
    let Some(h) = &plan.hold else { return status };
    if status.state == SlotState::Failed {
        return status;
    }
    status.state = SlotState::Waiting;
    status.message = match &h.keeps {
        Some(keeps) => format!(
            "carries `{keeps}` and keeps offering it until its turn: {}",
            h.reason
        ),
        None => format!(
            "carries {}, nothing it can offer; waits for its turn: {}",
            plan.current, h.reason
        ),
    };
    status.bitstream = Some(h.assigned.clone());
    status
}

/// The plan as JSON (`plan --host --format json`): `{"format_version": 1, "host",
/// "slots": [{"slot", "backend", "bitstream", "image", "current", "accepts", "provider",
/// "withdraw", "consumers", "action"}], "removals": [provider names], "problems": [...]}`;
/// `consumers` lists who holds allocations on the slot's provider (`{"id", "server":
/// {"name", "project"}, "kind"}`, `server` and `kind` when known); `image` is
/// what the bitstream's file says (`{"format": "gbs" | "gbs-legacy" | "xclbin" | "opaque",
/// "id", "requires"}`, null without a usable file); `accepts` is the list of interface ids
/// the slot accepts (empty when it does not say); `withdraw` says whether
/// the provider is first taken out of scheduling (the card does not carry the assignment);
/// `action` is tagged by `action`: `manual` (`report` when a claimable provider is
/// written), `in-sync` (`report`), `shell-checked` (`proven`), `program` (`drain`,
/// `forced`), `blocked` (`reason`, `help`), `wait` (`reason`); `hold` is `null`, or for a
/// slot its rollout holds back `{"reason", "assigned", "keeps"}` (it is then planned
/// against `keeps`, what its card carries).
pub fn json(plan: &HostPlan, problems: &[String]) -> serde_json::Value {
    let slots: Vec<serde_json::Value> = plan
        .slots
        .iter()
        .map(|s| {
            serde_json::json!({
                "slot": s.assignment.slot,
                "backend": s.assignment.backend,
                "bitstream": s.assignment.bitstream.as_ref().map(|t| &t.name),
                "image": s.assignment.bitstream.as_ref().map(|t| t.identity),
                "current": s.current,
                "accepts": s.accepts,
                "provider": s.provider_name,
                "withdraw": s.withdraw.is_some(),
                "consumers": s.provider.as_ref().map_or(&[][..], |p| &p.consumers[..]),
                "note": s.note,
                "hold": s.hold,
                "action": s.action,
            })
        })
        .collect();
    serde_json::json!({
        "format_version": 1,
        "host": plan.host,
        "slots": slots,
        "removals": plan.removals.iter().map(|r| &r.provider.name).collect::<Vec<_>>(),
        "problems": problems,
    })
}

/// The statuses of a plan that needs no change.
pub fn statuses(plan: &HostPlan) -> Vec<SlotStatus> {
    plan.slots
        .iter()
        .map(|s| {
            let (state, message) = match &s.action {
                SlotAction::Manual { .. } => {
                    (SlotState::Manual, "policy: manual; left alone".to_owned())
                }
                SlotAction::ShellChecked { .. } | SlotAction::InSync { .. } => {
                    (SlotState::Verified, format!("carries {}", bitstream(s)))
                }
                SlotAction::Program { .. } => (SlotState::Pending, "to program".to_owned()),
                SlotAction::Blocked { reason, help, .. } => {
                    (SlotState::Blocked, format!("{reason}; {help}"))
                }
                SlotAction::Wait { reason } => (SlotState::Waiting, reason.clone()),
            };
            let status = SlotStatus {
                slot: s.assignment.slot.clone(),
                bitstream: s.assignment.bitstream.as_ref().map(|t| t.name.clone()),
                state,
                message,
                provider: s.provider_name.clone(),
                programmed: false,
                failures: 0,
            };
            with_hold(s, status)
        })
        .collect()
}

/// What an apply did.
pub fn results(status: &HostStatus) -> String {
    let mut out = String::from("\n");
    for s in &status.slots {
        let mark = match s.state {
            SlotState::Verified => "ok     ",
            SlotState::Manual => "manual ",
            SlotState::Pending => "pending",
            SlotState::Blocked => "BLOCKED",
            SlotState::Failed => "FAILED ",
            SlotState::Waiting => "waiting",
        };
        let _ = writeln!(out, "{mark} {:<24} {}", s.slot.to_string(), s.message);
    }
    for r in &status.removals {
        let _ = writeln!(out, "        {r}");
    }
    if let Some(e) = &status.error {
        let _ = writeln!(out, "\nerror: {e}");
    }
    let programmed = status.slots.iter().filter(|s| s.programmed).count();
    let bad = status
        .slots
        .iter()
        .filter(|s| matches!(s.state, SlotState::Failed | SlotState::Blocked))
        .count();
    let _ = writeln!(
        out,
        "\nHost {}: {programmed} programmed, {bad} failed or blocked.",
        status.host
    );
    out
}
