//! The central view of rollouts (`fpga-sync rollout status`, and the end of the central
//! `plan`): per rollout, the transition (`aes-1.0 → aes-1.1`), its hosts as verified,
//! waiting, in progress or failed, the wave, the budget, and whether it is paused or
//! halted and why; rendered for people, as Markdown or as JSON. Made from the fleet's
//! providers (what the host agents reported) and the rollouts' budgets. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::desired::Desired;
use crate::host::plan::assignment::Target;
use crate::host::plan::fleet::{self, FleetState};
use crate::host::plan::provider::{self, trait_part};
use crate::host::plan::rollout::{self, Budget, Policy, UnitId};
use crate::observed::ObservedProvider;

/// One bitstream change of a rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Transition {
    /// What the hosts not yet verified carry now (bitstreams of the repository, verified).
    pub from: Vec<String>,
    /// What the repository assigns.
    pub to: String,
}

/// One rollout as the fleet reports it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RolloutView {
    /// The host group.
    pub group: String,
    /// The rollout (`group`, or `group/overrides[i]`).
    pub rollout: String,
    /// The bitstream changes under way (none: every host is verified).
    pub transitions: Vec<Transition>,
    /// Hosts whose slots are all verified with their assignment.
    pub verified: Vec<String>,
    /// Hosts that have not started (holding the old bitstream, or not reported yet).
    pub waiting: Vec<String>,
    /// Hosts holding a unit of the budget and not failing: drained and being programmed.
    pub in_progress: Vec<String>,
    /// Hosts whose program or read-back failed.
    pub failed: Vec<String>,
    /// The canaries.
    pub canaries: Vec<String>,
    /// 1 while the canaries have not all verified (when there are canaries), else 2; 0 when
    /// every host is verified.
    pub wave: u8,
    /// Units held and in the budget (`None`: no budget in Placement yet).
    pub budget: Option<(u32, u32)>,
    /// `paused: true` in the repository.
    pub paused: bool,
    /// Why it is halted, when it is.
    pub halted: Option<String>,
}

/// The view of every rollout of `desired`, from the fleet's `providers` and each
/// rollout's budget (by rollout key; absent when it has none yet).
pub fn views(
    desired: &Desired,
    targets: &BTreeMap<String, Target>,
    providers: &[ObservedProvider],
    budgets: &BTreeMap<String, Budget>,
    site: &str,
) -> Vec<RolloutView> {
    let slots = fleet::fleet(desired, targets, providers, &BTreeMap::new());
    let by_uuid: BTreeMap<String, &Target> = targets
        .values()
        .map(|t| (format!("{:032X}", t.bs_uuid.as_u128()), t))
        .collect();
    let mut out = Vec::new();
    for g in desired.host_groups.values().map(|g| &g.spec) {
        let mut units: Vec<(UnitId, Policy)> = Vec::new();
        if let Some(r) = &g.rollout {
            units.push((
                UnitId {
                    group: g.name.clone(),
                    override_index: None,
                },
                Policy::of(r),
            ));
        }
        for (i, o) in g.overrides.iter().enumerate() {
            if let Some(r) = &o.rollout {
                units.push((
                    UnitId {
                        group: g.name.clone(),
                        override_index: Some(i),
                    },
                    Policy::of(r),
                ));
            }
        }
        for (unit, policy) in units {
            let mine: Vec<&fleet::FleetSlot> = slots
                .iter()
                .filter(|s| rollout::covers(g, &unit, &s.host))
                .filter(|s| {
                    desired
                        .host_groups
                        .get(&g.name)
                        .is_some_and(|_| group_assigns(g, &s.host, &s.bitstream))
                })
                .collect();
            let budget = budgets.get(&unit.key());
            let holders: BTreeSet<&str> = budget
                .map(|b| b.holders.iter().map(|h| h.consumer.as_str()).collect())
                .unwrap_or_default();
            let mut hosts: BTreeMap<&str, Vec<&fleet::FleetSlot>> = BTreeMap::new();
            for s in &mine {
                hosts.entry(s.host.as_str()).or_default().push(s);
            }
            let (mut verified, mut waiting, mut in_progress, mut failed) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (host, host_slots) in &hosts {
                let holds = holders.contains(rollout::holder_consumer(site, &unit, host).as_str());
                let list = if host_slots.iter().any(|s| s.state == FleetState::Failed) {
                    &mut failed
                } else if host_slots.iter().all(|s| s.state == FleetState::Verified) {
                    &mut verified
                } else if holds {
                    &mut in_progress
                } else {
                    &mut waiting
                };
                list.push((*host).to_owned());
            }
            let mut transitions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for s in mine.iter().filter(|s| s.state != FleetState::Verified) {
                let from = transitions.entry(s.bitstream.clone()).or_default();
                if let Some(p) = providers.iter().find(|p| p.name == s.provider)
                    && p.traits.contains(provider::VERIFIED_TRAIT)
                {
                    from.extend(
                        p.traits
                            .iter()
                            .filter_map(|t| t.strip_prefix(provider::BITSTREAM_TRAIT_PREFIX))
                            .filter_map(|id| by_uuid.get(id))
                            .map(|t| t.name.clone()),
                    );
                }
            }
            let canary_parts: BTreeSet<String> = match budget
                .and_then(|b| rollout::read_record(&b.traits, b.total).map(|(_, r)| r.canaries))
            {
                Some(c) => c,
                None => match &policy.canary {
                    crate::desired::host_group::Canary::Hosts(h) => {
                        h.iter().map(|h| trait_part(h)).collect()
                    }
                    crate::desired::host_group::Canary::Count(_) => BTreeSet::new(),
                },
            };
            let canaries: Vec<String> = hosts
                .keys()
                .filter(|h| canary_parts.contains(&trait_part(h)))
                .map(|h| (*h).to_owned())
                .collect();
            let wave = if transitions.is_empty() {
                0
            } else if !canaries.is_empty() && canaries.iter().any(|c| !verified.contains(c)) {
                1
            } else {
                2
            };
            let halted =
                (failed.len() >= policy.max_failures as usize && !failed.is_empty()).then(|| {
                    format!(
                        "{} failure{} ({}); max_failures {}",
                        failed.len(),
                        if failed.len() == 1 { "" } else { "s" },
                        failed.join(", "),
                        policy.max_failures
                    )
                });
            out.push(RolloutView {
                group: g.name.clone(),
                rollout: unit.key(),
                transitions: transitions
                    .into_iter()
                    .map(|(to, from)| Transition {
                        from: from.into_iter().collect(),
                        to,
                    })
                    .collect(),
                verified,
                waiting,
                in_progress,
                failed,
                canaries,
                wave,
                budget: budget.and_then(|b| {
                    Some((u32::try_from(b.holders.len()).unwrap_or(u32::MAX), b.total?))
                }),
                paused: policy.paused,
                halted,
            });
        }
    }
    out
}

/// Whether `group` assigns `bitstream` to `host` (the fleet view lists every group's).
fn group_assigns(group: &crate::desired::HostGroup, host: &str, bitstream: &str) -> bool {
    let (_, entries) = crate::desired::host_group::resolve_for_host(
        group,
        host,
        crate::desired::host_entry_matches,
    );
    entries
        .iter()
        .any(|e| e.bitstream.as_deref() == Some(bitstream))
}

fn transition_text(t: &Transition) -> String {
    if t.from.is_empty() {
        format!("→ `{}`", t.to)
    } else {
        format!(
            "{} → `{}`",
            t.from
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", "),
            t.to
        )
    }
}

fn state_text(v: &RolloutView) -> String {
    if let Some(h) = &v.halted {
        format!("HALTED: {h}")
    } else if v.paused {
        "paused".to_owned()
    } else if v.wave == 0 {
        "done".to_owned()
    } else {
        format!("wave {}", v.wave)
    }
}

fn hosts_text(hosts: &[String]) -> String {
    if hosts.is_empty() {
        "-".to_owned()
    } else {
        hosts.join(", ")
    }
}

/// The views for people; `markdown` for a merge-request comment.
pub fn render(views: &[RolloutView], markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        let _ = writeln!(
            out,
            "\n### Rollouts\n\n| rollout | transition | state | verified | in progress | waiting | failed | budget |\n|---|---|---|---|---|---|---|---|"
        );
        for v in views {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                v.rollout,
                transitions_text(v),
                state_text(v),
                v.verified.len(),
                v.in_progress.len(),
                v.waiting.len(),
                v.failed.len(),
                budget_text(v)
            );
        }
        return out;
    }
    let _ = writeln!(out, "\nRollouts:");
    for v in views {
        let total = v.verified.len() + v.in_progress.len() + v.waiting.len() + v.failed.len();
        let _ = writeln!(
            out,
            "  {}: {} — {}; {}/{total} verified, {} in progress, {} waiting, {} failed; budget {}",
            v.rollout,
            transitions_text(v),
            state_text(v),
            v.verified.len(),
            v.in_progress.len(),
            v.waiting.len(),
            v.failed.len(),
            budget_text(v)
        );
        if !v.canaries.is_empty() {
            let _ = writeln!(out, "      canaries:    {}", v.canaries.join(", "));
        }
        for (label, hosts) in [
            ("in progress", &v.in_progress),
            ("failed", &v.failed),
            ("waiting", &v.waiting),
        ] {
            if !hosts.is_empty() {
                let _ = writeln!(out, "      {label:<12} {}", hosts_text(hosts));
            }
        }
    }
    out
}

fn transitions_text(v: &RolloutView) -> String {
    if v.transitions.is_empty() {
        "no change under way".to_owned()
    } else {
        v.transitions
            .iter()
            .map(transition_text)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn budget_text(v: &RolloutView) -> String {
    match v.budget {
        Some((used, total)) => format!("{used}/{total} units held"),
        None => "not in Placement yet".to_owned(),
    }
}

/// The views as JSON (`rollout status --format json`): `{"format_version": 1, "rollouts":
/// [{"group", "rollout", "transitions": [{"from", "to"}], "verified", "waiting",
/// "in_progress", "failed", "canaries", "wave", "budget": [held, total] | null, "paused",
/// "halted": reason | null}]}`.
pub fn json(views: &[RolloutView]) -> RolloutReport {
    RolloutReport {
        format_version: 1,
        rollouts: views.to_vec(),
    }
}

/// `rollout status --format json` (`schema/rollout.schema.json`).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RolloutReport {
    /// The format's version: 1.
    pub format_version: u32,
    /// Every rollout of the desired state.
    pub rollouts: Vec<RolloutView>,
}
