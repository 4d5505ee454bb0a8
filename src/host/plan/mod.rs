//! The host planner: what to do with each slot of one host, from what the repository
//! assigns, what the card reports and what Placement holds. Ordered by device, the whole
//! device (its shell) before its regions. A slot is programmed only when it does not carry
//! its bitstream, its shell is there (or goes first), it is not a port released to an
//! SR-IOV virtual function (forced or not), the image's interface is one the region
//! accepts (forced or not), the image is one a backend programs (not a legacy GBS), and
//! nothing uses it (unless forced). Pure and deterministic: no I/O.

pub mod assignment;
pub mod claim;
pub mod consumer;
pub mod fleet;
pub mod manual;
pub mod observed;
pub mod provider;
pub mod render;
pub mod rollout;
pub mod rollout_view;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::desired::host_group::{Backend, Policy};
use crate::host::driver::{Busy, DeviceInfo, Loaded, Slot, interfaces_text};
use crate::host::id::Id128;
use crate::host::image::ImageIdentity;
use crate::host::plan::assignment::{SlotAssignment, Target, interfaces_of_shell};
use crate::observed::Inventory;
use provider::{ProviderTarget, Withdrawal};

/// A device provider as Placement holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderState {
    /// Its uuid.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// Its traits.
    pub traits: BTreeSet<String>,
    /// Its inventories.
    pub inventories: BTreeMap<String, Inventory>,
    /// How many consumers hold allocations against it.
    pub allocations: usize,
    /// Who they are, when observed (a saved observation may give only the number).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<consumer::Consumer>,
}

impl ProviderState {
    /// Who holds allocations on it, for messages, with the verb: `server `a` (…) holds`,
    /// or `2 consumer(s) hold` when only their number is known.
    pub fn holders(&self) -> String {
        let verb = if self.consumers.len() == 1 {
            "holds"
        } else {
            "hold"
        };
        format!(
            "{} {verb}",
            consumer::holders(&self.consumers, self.allocations)
        )
    }
}

/// What the planner works from.
pub struct HostPlanInput<'a> {
    /// The host, as the repository names it.
    pub host: &'a str,
    /// Its slots, in order.
    pub assignments: &'a [SlotAssignment],
    /// Every bitstream by name, for the interfaces a shell offers.
    pub targets: &'a BTreeMap<String, Target>,
    /// What each backend found, or why it could not look.
    pub devices: &'a BTreeMap<Backend, Result<Vec<DeviceInfo>, String>>,
    /// The device providers under the host's compute node; `None` when Placement is not
    /// consulted (`--no-placement`).
    pub providers: Option<&'a [ProviderState]>,
    /// Traits the desired state names (removable from fpga-sync's providers).
    pub named_traits: &'a BTreeSet<String>,
    /// Program slots that are in use.
    pub force: bool,
    /// Slots not to program this time, and why (`watch` backing off a failing device).
    pub deferred: &'a BTreeMap<Slot, String>,
    /// What fpga-sync last programmed and read back in each slot, by the file's sha256:
    /// it tells apart builds whose headers give the same id (a new build of an AFU keeps
    /// its accelerator id), which the card cannot.
    pub programmed: &'a BTreeMap<Slot, String>,
    /// Host groups whose rollout holds this host back this pass, and why: their slots
    /// that would be drained keep offering what their card carries (see [`Hold`]).
    pub held: &'a BTreeMap<String, String>,
}

/// A slot its group's rollout holds back this pass. Its assignment for the pass is what
/// the card carries, when that is a bitstream of the repository: the slot stays in sync
/// with the wave it is in and keeps offering that function, truthfully, read back. A card
/// that carries nothing the repository declares offers nothing and waits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hold {
    /// Why it waits (`wave 2: waiting for 3 canaries to verify `aes-1.1``).
    pub reason: String,
    /// The bitstream the repository assigns, which it gets on its turn.
    pub assigned: String,
    /// The bitstream it carries and keeps offering meanwhile; `None` when it carries none
    /// of the repository's.
    pub keeps: Option<String>,
}

/// What happens to one slot.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum SlotAction {
    /// `policy: manual`: nothing is read or programmed. A manual slot that names a
    /// `resource_class` is reported as a claimable provider (one unit, its traits and
    /// `CUSTOM_FPGA_SYNC_MANUAL`, no function traits: only its user knows what it
    /// carries), so that `fpga-sync claim` can hold it through Placement.
    Manual {
        /// Whether Placement must be rewritten (the claimable provider is missing or
        /// differs).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        report: bool,
    },
    /// It carries its bitstream; Placement is rewritten only when it differs.
    InSync {
        /// Whether Placement must be rewritten.
        report: bool,
    },
    /// The shell is on the device (or cannot be told); nothing to do.
    ShellChecked {
        /// Whether the card proved it (false: the backend reports no id for it).
        proven: bool,
    },
    /// Fetch, drain, program, read back, report.
    Program {
        /// Whether the provider is drained (all reserved, function traits withdrawn)
        /// first.
        drain: bool,
        /// Programming although something uses the slot.
        forced: bool,
    },
    /// Cannot proceed; nothing on the card changes.
    Blocked {
        /// Why.
        reason: String,
        /// What to do about it.
        help: String,
    },
    /// Held back by its group's rollout and carrying nothing it can offer: nothing on the
    /// card changes; it waits for its turn.
    Wait {
        /// Why.
        reason: String,
    },
}

/// One slot's plan.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotPlan {
    /// The assignment.
    pub assignment: SlotAssignment,
    /// What the card carries now.
    pub current: Loaded,
    /// The interface ids the slot accepts, as the backend reports them (empty: a whole
    /// device, or the backend does not say).
    pub accepts: Vec<Id128>,
    /// The provider it reports to, when it reports.
    pub provider_name: Option<String>,
    /// That provider in Placement, when it exists.
    pub provider: Option<ProviderState>,
    /// What to do.
    pub action: SlotAction,
    /// Whether the backend found the device (a provider of a device that is gone is
    /// removed).
    pub device_found: bool,
    /// The first write of the pass, before anything that can fail: the provider of a slot
    /// whose read-back is not its assignment, taken out of scheduling (everything
    /// reserved, function traits withdrawn, what it carries recorded). `None` when there is
    /// no such provider or it is withdrawn already.
    pub withdraw: Option<ProviderTarget>,
    /// What Placement should hold once the bitstream is verified.
    pub on_success: Option<ProviderTarget>,
    /// What Placement holds after a failed program or read-back.
    pub on_failure: Option<ProviderTarget>,
    /// What people should know about how the card was read (two builds of one id).
    pub note: Option<String>,
    /// Held back by its group's rollout this pass.
    pub hold: Option<Hold>,
    /// Whether the slot does not carry its assignment and the pass drains it: programs it,
    /// or takes it out of scheduling until its consumers leave or a failure's backoff
    /// ends. Under a rollout such a slot needs its turn and a unit of the budget.
    pub drains: bool,
}

/// A provider fpga-sync made for a device that is no longer assigned or present.
#[derive(Clone, Debug, PartialEq)]
pub struct Removal {
    /// The provider.
    pub provider: ProviderState,
}

/// One host's plan.
#[derive(Clone, Debug, PartialEq)]
pub struct HostPlan {
    /// The host.
    pub host: String,
    /// Each slot, in the order they are carried out.
    pub slots: Vec<SlotPlan>,
    /// Providers to remove (only when nothing is allocated; else they are reserved).
    pub removals: Vec<Removal>,
}

impl HostPlan {
    /// Whether carrying it out changes anything.
    pub fn has_changes(&self) -> bool {
        !self.removals.is_empty()
            || self.slots.iter().any(|s| {
                s.withdraw.is_some()
                    || match &s.action {
                        SlotAction::InSync { report } | SlotAction::Manual { report } => *report,
                        SlotAction::Program { .. } => true,
                        SlotAction::Blocked { .. }
                        | SlotAction::Wait { .. }
                        | SlotAction::ShellChecked { .. } => false,
                    }
            })
    }

    /// Whether carrying it out programs a card (a `watch` pass takes the host's lease
    /// for these).
    pub fn programs(&self) -> bool {
        self.slots
            .iter()
            .any(|s| matches!(s.action, SlotAction::Program { .. }))
    }

    /// Whether some slot cannot reach its assignment.
    pub fn has_blocked(&self) -> bool {
        self.slots
            .iter()
            .any(|s| matches!(s.action, SlotAction::Blocked { .. }))
    }
}

fn blocked(reason: impl Into<String>, help: impl Into<String>) -> SlotAction {
    SlotAction::Blocked {
        reason: reason.into(),
        help: help.into(),
    }
}

/// Whether a backend can load a whole-device image (a full bitstream or a shell). DFL
/// FIMs and XRT shells are flashed by vendor tools and loaded by a power cycle.
pub fn programs_whole_device(backend: Backend) -> bool {
    matches!(backend, Backend::FpgaManager | Backend::Exec | Backend::Sim)
}

/// The shell verdict for a device, which its regions depend on.
#[derive(Clone, Debug, PartialEq)]
enum ShellVerdict {
    /// On the card, or not knowable: regions go ahead.
    Present,
    /// Will be programmed first; regions will accept these interfaces.
    Pending(Vec<Id128>),
    /// Not there, and not going to be.
    Missing(String),
}

/// What every slot of a host plan shares.
struct Context<'p> {
    providers: &'p [ProviderState],
    reporting: BTreeMap<&'p str, usize>,
    owned: Box<dyn Fn(&str) -> bool + 'p>,
}

/// Plans one host.
pub fn plan_host(input: &HostPlanInput<'_>) -> HostPlan {
    let providers = input.providers.unwrap_or_default();
    // Devices reporting more than one slot name their providers per region.
    let mut reporting: BTreeMap<&str, usize> = BTreeMap::new();
    for a in input.assignments.iter().filter(|a| reports(a)) {
        *reporting.entry(&a.slot.address).or_default() += 1;
    }
    let ctx = Context {
        providers,
        reporting,
        owned: Box::new(provider::owned_traits(input.named_traits)),
    };
    let mut shells: BTreeMap<String, ShellVerdict> = BTreeMap::new();
    let mut slots = Vec::new();
    for a in input.assignments {
        let (mut plan, carries) = plan_slot(a, input, &ctx, &mut shells);
        if !carries
            && plan.drains
            && let Some(reason) = input.held.get(&a.group)
        {
            plan = hold(a, plan, reason, input, &ctx, &mut shells);
        }
        slots.push(plan);
    }
    let kept: BTreeSet<&str> = slots
        .iter()
        .filter(|s| s.device_found)
        .filter_map(|s| s.provider_name.as_deref())
        .collect();
    let removals = providers
        .iter()
        .filter(|p| p.traits.contains(provider::OWNER_TRAIT) && !kept.contains(p.name.as_str()))
        .filter(|p| p.name.starts_with(&format!("{}_", input.host)))
        .map(|p| Removal {
            provider: p.clone(),
        })
        .collect();
    HostPlan {
        host: input.host.to_owned(),
        slots,
        removals,
    }
}

/// A slot its rollout holds back: planned against what its card carries when that is one
/// of the repository's bitstreams (it stays offered, in sync with its wave), else left to
/// wait, withdrawn as any slot that does not carry what it offers.
fn hold(
    a: &SlotAssignment,
    plan: SlotPlan,
    reason: &str,
    input: &HostPlanInput<'_>,
    ctx: &Context<'_>,
    shells: &mut BTreeMap<String, ShellVerdict>,
) -> SlotPlan {
    let assigned = a
        .bitstream
        .as_ref()
        .map_or(String::new(), |t| t.name.clone());
    if let Some(previous) = previous(&plan.current, a, input) {
        let kept = SlotAssignment {
            bitstream: Some(previous.clone()),
            ..a.clone()
        };
        let (mut kept_plan, carries) = plan_slot(&kept, input, ctx, shells);
        if carries {
            kept_plan.hold = Some(Hold {
                reason: reason.to_owned(),
                assigned,
                keeps: Some(previous.name.clone()),
            });
            kept_plan.drains = false;
            return kept_plan;
        }
    }
    SlotPlan {
        action: SlotAction::Wait {
            reason: reason.to_owned(),
        },
        hold: Some(Hold {
            reason: reason.to_owned(),
            assigned,
            keeps: None,
        }),
        drains: false,
        ..plan
    }
}

/// The repository's bitstream a card carries: the one whose id it reads back, or among
/// builds that share the id, the one fpga-sync's record says it loaded there.
fn previous<'t>(
    current: &Loaded,
    a: &SlotAssignment,
    input: &HostPlanInput<'t>,
) -> Option<&'t Target> {
    let id = current.id()?;
    let same: Vec<&Target> = input
        .targets
        .values()
        .filter(|t| t.identity.id == id)
        .collect();
    match same.as_slice() {
        [one] => Some(one),
        _ => {
            let sha = input.programmed.get(&a.slot)?;
            same.into_iter().find(|t| &t.sha256 == sha)
        }
    }
}

/// Plans one slot; also says whether its card carries its assignment.
fn plan_slot(
    a: &SlotAssignment,
    input: &HostPlanInput<'_>,
    ctx: &Context<'_>,
    shells: &mut BTreeMap<String, ShellVerdict>,
) -> (SlotPlan, bool) {
    let owned = &ctx.owned;
    let device = input.devices.get(&a.backend).map(|r| {
        r.as_ref()
            .map(|ds| ds.iter().find(|d| d.address == a.slot.address))
    });
    let provider_name = reports(a).then(|| {
        provider::provider_name(
            input.host,
            a,
            ctx.reporting
                .get(a.slot.address.as_str())
                .copied()
                .unwrap_or(0)
                > 1,
        )
    });
    let provider = provider_name
        .as_ref()
        .and_then(|n| ctx.providers.iter().find(|p| &p.name == n).cloned());
    let target = a.bitstream.as_ref();
    let on_success = match a.policy {
        Policy::Managed => provider_name
            .as_ref()
            .zip(target)
            .map(|(n, t)| provider::verified(n, a, t)),
        Policy::Manual => provider_name.as_ref().map(|n| provider::manual(n, a)),
    };
    let on_failure = provider_name
        .as_ref()
        .zip(target)
        .map(|(n, t)| provider::withdrawn(n, a, t, Withdrawal::Failed, false));
    let mut plan = SlotPlan {
        assignment: a.clone(),
        current: Loaded::Unknown("not read".into()),
        accepts: Vec::new(),
        provider_name,
        provider,
        action: SlotAction::Manual { report: false },
        device_found: true,
        withdraw: None,
        on_success,
        on_failure,
        note: None,
        hold: None,
        drains: false,
    };
    if a.policy == Policy::Manual {
        if let (Some(want), true) = (&plan.on_success, input.providers.is_some()) {
            let foreign = plan
                .provider
                .as_ref()
                .is_some_and(|p| !p.traits.contains(provider::OWNER_TRAIT));
            plan.action = SlotAction::Manual {
                report: !foreign
                    && plan
                        .provider
                        .as_ref()
                        .is_none_or(|p| !provider_matches(p, want, owned)),
            };
        }
        return (plan, true);
    }
    if let Some(p) = plan
        .provider
        .as_ref()
        .filter(|p| !p.traits.contains(provider::OWNER_TRAIT))
    {
        plan.action = blocked(
            format!(
                "provider `{}` exists, but fpga-sync did not create it (Cyborg's, or made by hand)",
                p.name
            ),
            format!(
                "to let fpga-sync manage it, add the trait: `openstack --os-placement-api-version 1.6 resource provider trait set --trait {} ...` with its current traits, or remove the provider",
                provider::OWNER_TRAIT
            ),
        );
        return (plan, true);
    }
    let Some(target) = target else {
        plan.action = blocked(
            "no usable bitstream is assigned",
            "give the entry a `bitstream` whose file is in the repository",
        );
        return (plan, true);
    };
    let device = match device {
        None => {
            plan.action = blocked(
                format!("no `{:?}` backend runs on this host", a.backend),
                "check the host group's `backend`",
            );
            return (plan, true);
        }
        Some(Err(e)) => {
            let reason = format!(
                "the {} backend could not list devices: {e}",
                backend_name(a.backend)
            );
            plan.current = Loaded::Unknown(reason.clone());
            plan.action = blocked(
                reason,
                "fix the driver or its tools on the host; the next run retries",
            );
            plan.withdraw = withdrawal(&plan, target, owned);
            return (plan, false);
        }
        Some(Ok(None)) => {
            plan.device_found = false;
            plan.action = blocked(
                format!(
                    "the {} backend sees no FPGA at {}",
                    backend_name(a.backend),
                    a.slot.address
                ),
                "check the address with `fpga-sync devices`, or remove the entry",
            );
            return (plan, true);
        }
        Some(Ok(Some(d))) => d,
    };
    let Some((loaded, accepts, busy)) = device.slot_state(&a.slot) else {
        let reason = format!(
            "{} has no region `{}`",
            a.slot.address,
            a.slot.region.as_deref().unwrap_or("")
        );
        plan.current = Loaded::Unknown(reason.clone());
        plan.action = blocked(reason, "check the region names with `fpga-sync devices`");
        plan.withdraw = withdrawal(&plan, target, owned);
        return (plan, false);
    };
    plan.current = loaded.clone();
    plan.accepts.clone_from(&accepts);
    let (carries, note) = carries(&loaded, a, target, input);
    plan.note = note;
    (plan.action, plan.drains) = if a.slot.region.is_none() && target.is_shell() {
        let (verdict, action, drains) =
            check_shell(a, target, device, input, &plan, carries, &busy);
        shells.insert(a.slot.address.clone(), verdict);
        (action, drains)
    } else {
        decide(a, target, &plan, carries, accepts, &busy, shells, input)
    };
    if let (SlotAction::Program { .. }, Some(why)) = (&plan.action, &device.cannot_program) {
        plan.action = blocked(
            format!("{} cannot be programmed: {why}", a.slot.address),
            "drive it with the `exec` backend and this board's loader (dfx-mgr, fpgautil, a device-tree overlay), or run a kernel whose FPGA manager has a `firmware` attribute (linux-xlnx)",
        );
        plan.drains = false;
    }
    if let (SlotAction::Program { .. }, Some(why)) = (&plan.action, input.deferred.get(&a.slot)) {
        plan.action = blocked(
            why.clone(),
            "it is retried when the backoff ends, or at once when the repository changes",
        );
    }
    if !carries {
        plan.withdraw = withdrawal(&plan, target, owned);
    }
    if let SlotAction::InSync { report } = &mut plan.action {
        *report = input.providers.is_some()
            && plan.on_success.as_ref().is_some_and(|want| {
                plan.provider
                    .as_ref()
                    .is_none_or(|p| !provider_matches(p, want, owned))
            });
    }
    (plan, carries)
}

/// The first write for a slot whose read-back is not its assignment: its provider (one of
/// ours: others were refused above) withdrawn with what it read back, unless Placement
/// already holds exactly that. A provider that was marked failed stays so until a
/// read-back matches.
fn withdrawal(
    plan: &SlotPlan,
    target: &Target,
    owned: &impl Fn(&str) -> bool,
) -> Option<ProviderTarget> {
    let (name, provider) = (plan.provider_name.as_ref()?, plan.provider.as_ref()?);
    let was_failed = provider.traits.contains(provider::FAILED_TRAIT);
    let mut want = provider::withdrawn(
        name,
        &plan.assignment,
        target,
        Withdrawal::ReadBack(&plan.current),
        was_failed,
    );
    if was_failed {
        // A failure stays attributed to the bitstream that failed, for rollouts to count.
        want.traits.extend(
            provider
                .traits
                .iter()
                .filter(|t| t.starts_with(provider::TRIED_TRAIT_PREFIX))
                .cloned(),
        );
    }
    (!provider_matches(provider, &want, owned)).then_some(want)
}

/// Whether the card carries `target`: it reads back the target's id, and when another
/// bitstream of the repository has the same id (another build of the same AFU), fpga-sync's
/// record of what it programmed there says it was this build. With no record, it is
/// programmed again: the card cannot tell the builds apart.
fn carries(
    loaded: &Loaded,
    a: &SlotAssignment,
    target: &Target,
    input: &HostPlanInput<'_>,
) -> (bool, Option<String>) {
    if loaded.id() != Some(target.identity.id) {
        return (false, None);
    }
    let mut twins: Vec<&str> = input
        .targets
        .values()
        .filter(|t| t.identity.id == target.identity.id && t.sha256 != target.sha256)
        .map(|t| t.name.as_str())
        .collect();
    if twins.is_empty() {
        return (true, None);
    }
    twins.sort_unstable();
    let recorded = input.programmed.get(&a.slot);
    if recorded == Some(&target.sha256) {
        return (true, None);
    }
    let said = match recorded.and_then(|sha| input.targets.values().find(|t| &t.sha256 == sha)) {
        Some(t) => format!("fpga-sync's record says it loaded `{}` there", t.name),
        None => "fpga-sync has no record of which build it loaded there".to_owned(),
    };
    let names: Vec<String> = twins.iter().map(|n| format!("`{n}`")).collect();
    (
        false,
        Some(format!(
            "the card reads back {}, which `{}` shares with {}; {said}",
            target.identity.id,
            target.name,
            names.join(", ")
        )),
    )
}

/// The provider name each slot of `assignments` that reports one is reported as (see
/// [`provider::provider_name`]), in the assignments' order.
pub fn reported_providers<'a>(
    host: &str,
    assignments: &'a [SlotAssignment],
) -> Vec<(String, &'a SlotAssignment)> {
    let mut reporting: BTreeMap<&str, usize> = BTreeMap::new();
    for a in assignments.iter().filter(|a| reports(a)) {
        *reporting.entry(&a.slot.address).or_default() += 1;
    }
    assignments
        .iter()
        .filter(|a| reports(a))
        .map(|a| {
            let several = reporting.get(a.slot.address.as_str()).copied().unwrap_or(0) > 1;
            (provider::provider_name(host, a, several), a)
        })
        .collect()
}

/// Whether a slot reports a provider: managed, carrying a bitstream that is not a shell;
/// or manual with a `resource_class` (a claimable slot).
fn reports(a: &SlotAssignment) -> bool {
    match a.policy {
        Policy::Managed => a.bitstream.as_ref().is_some_and(|t| !t.is_shell()),
        Policy::Manual => a.resource_class.is_some(),
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Opae => "opae",
        Backend::Xrt => "xrt",
        Backend::FpgaManager => "fpga-manager",
        Backend::Exec => "exec",
        Backend::Sim => "sim",
    }
}

/// Whether Placement already holds `want`: every wanted trait there, no other trait of
/// ours, the inventories equal.
fn provider_matches(
    p: &ProviderState,
    want: &ProviderTarget,
    owned: &impl Fn(&str) -> bool,
) -> bool {
    want.traits.is_subset(&p.traits)
        && p.traits
            .iter()
            .all(|t| !owned(t) || want.traits.contains(t))
        && p.inventories == want.inventories
}

fn check_shell(
    a: &SlotAssignment,
    target: &Target,
    device: &DeviceInfo,
    input: &HostPlanInput<'_>,
    plan: &SlotPlan,
    carries: bool,
    busy: &Busy,
) -> (ShellVerdict, SlotAction, bool) {
    let offers = interfaces_of_shell(target, input.targets);
    let accepted: Vec<Id128> = device
        .regions
        .iter()
        .flat_map(|r| r.accepts.iter().copied())
        .collect();
    let proven_by_regions = !offers.is_empty() && accepted.iter().any(|i| offers.contains(i));
    if carries || proven_by_regions {
        return (
            ShellVerdict::Present,
            SlotAction::ShellChecked { proven: true },
            false,
        );
    }
    if accepted.is_empty() || offers.is_empty() {
        // Nothing to tell it by: the regions' own interface checks still guard them.
        if plan.current.id().is_none() || !programs_whole_device(a.backend) {
            return (
                ShellVerdict::Present,
                SlotAction::ShellChecked { proven: false },
                false,
            );
        }
    }
    let found = match &plan.current {
        Loaded::Id(id) | Loaded::Recorded(id) => format!("carries {id}"),
        _ if !accepted.is_empty() => format!("offers interface {}", interfaces_text(&accepted)),
        _ => "carries another image".to_owned(),
    };
    if !programs_whole_device(a.backend) {
        let reason = format!(
            "the device {found}, not the shell `{}` (whose bitstreams need {})",
            target.name,
            offers
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return (
            ShellVerdict::Missing(reason.clone()),
            blocked(
                reason,
                "flash the shell with the vendor's tool (fpgasupdate + rsu, or xbmgmt) and power-cycle the card; fpga-sync checks shells, it does not flash them",
            ),
            false,
        );
    }
    if let Some((reason, help)) = format_refusal(&target.name, &target.identity) {
        return (
            ShellVerdict::Missing(reason.clone()),
            blocked(reason, help),
            false,
        );
    }
    match gate(a, plan, busy, input.force) {
        Some(action) => (
            ShellVerdict::Missing(format!("the shell `{}` is not loaded", target.name)),
            action,
            true,
        ),
        None => (
            ShellVerdict::Pending(offers),
            SlotAction::Program {
                drain: false,
                forced: input.force && in_use(plan, busy),
            },
            true,
        ),
    }
}

fn in_use(plan: &SlotPlan, busy: &Busy) -> bool {
    matches!(busy, Busy::InUse(_)) || plan.provider.as_ref().is_some_and(|p| p.allocations > 0)
}

/// Refuses a slot in use, unless forced.
fn gate(a: &SlotAssignment, plan: &SlotPlan, busy: &Busy, force: bool) -> Option<SlotAction> {
    if force {
        return None;
    }
    if let Some(p) = plan.provider.as_ref().filter(|p| p.allocations > 0) {
        return Some(blocked(
            format!(
                "{} is in use: {} allocations on provider `{}`",
                a.slot,
                p.holders(),
                p.name
            ),
            consumer::holders_help(&p.consumers),
        ));
    }
    busy_refusal(&a.slot, busy).map(|(reason, help)| blocked(reason, help))
}

/// The driver sees the slot in use: why, and what to do. Unforced programming refuses it.
pub fn busy_refusal(slot: &Slot, busy: &Busy) -> Option<(String, String)> {
    match busy {
        Busy::InUse(holder) => Some((
            format!("{slot} is busy ({holder})"),
            "stop what uses it, or run again with `--allow-busy` to program it anyway".to_owned(),
        )),
        Busy::Free | Busy::Unknown(_) | Busy::Released { .. } => None,
    }
}

/// A port released to an SR-IOV virtual function: why it is not programmed, and what to
/// do. Nothing overrides this, `--allow-busy` included.
pub fn released_refusal(slot: &Slot, busy: &Busy) -> Option<(String, String)> {
    matches!(busy, Busy::Released { .. }).then(|| {
        (
            format!(
                "{slot} is {busy}: the port belongs to the VF, and only the PF's FME reprograms a port"
            ),
            "to program it from this host, detach the VF from its VM, set the PF's sriov_numvfs to 0 and assign the port back to the PF (DFL_FPGA_FME_PORT_ASSIGN); `--allow-busy` does not override this".to_owned(),
        )
    })
}

/// An image that needs an interface the region does not accept: why, and what to do.
/// Nothing overrides this, `--allow-busy` included.
///
/// A region that lists several interfaces (an XRT shell's `interface_uuids`) accepts an
/// image built for any of them. A region that does not say is left to the backend.
pub fn interface_refusal(
    image: &str,
    slot: &Slot,
    requires: Option<Id128>,
    accepts: &[Id128],
) -> Option<(String, String)> {
    let requires = requires?;
    (!accepts.is_empty() && !accepts.contains(&requires)).then(|| {
        (
            format!(
                "`{image}` needs interface {requires}, but {slot} accepts {}",
                interfaces_text(accepts)
            ),
            "assign a bitstream built for the shell on this card (its `region_uuid`/GBS interface-uuid must match the region's compat_id); `--allow-busy` does not override this".to_owned(),
        )
    })
}

/// An image no backend programs (a legacy GBS): why, and what to do. Nothing overrides
/// this, `--allow-busy` included.
pub fn format_refusal(image: &str, identity: &ImageIdentity) -> Option<(String, String)> {
    identity.unprogrammable().map(|why| {
        (
            format!("`{image}` is not programmed: {why}"),
            "rebuild or repackage it as a current GBS with OPAE's `packager` (it writes the metadata with the accelerator id) and assign that; `--allow-busy` does not override this".to_owned(),
        )
    })
}

#[allow(
    clippy::too_many_arguments,
    reason = "one decision over the slot's whole state"
)]
fn decide(
    a: &SlotAssignment,
    target: &Target,
    plan: &SlotPlan,
    carries: bool,
    accepts: Vec<Id128>,
    busy: &Busy,
    shells: &BTreeMap<String, ShellVerdict>,
    input: &HostPlanInput<'_>,
) -> (SlotAction, bool) {
    let shell = shells.get(&a.slot.address);
    if let Some(ShellVerdict::Missing(why)) = shell {
        return (
            blocked(
                format!("its shell is not on the device: {why}"),
                "the shell goes first; fix it, then this region follows",
            ),
            false,
        );
    }
    if carries {
        return (SlotAction::InSync { report: false }, false);
    }
    if let Some((reason, help)) = released_refusal(&a.slot, busy) {
        return (blocked(reason, help), false);
    }
    if a.slot.region.is_none() && !programs_whole_device(a.backend) {
        return (
            blocked(
                format!(
                    "the {} backend cannot load a whole-device image",
                    backend_name(a.backend)
                ),
                "assign the bitstream to a region, or use a backend that loads full images",
            ),
            false,
        );
    }
    // The region will accept what the shell that goes first offers.
    let accepts = match shell {
        Some(ShellVerdict::Pending(offers)) if !offers.is_empty() => offers.clone(),
        _ => accepts,
    };
    if let Some((reason, help)) =
        interface_refusal(&target.name, &a.slot, target.requires(), &accepts)
    {
        return (blocked(reason, help), false);
    }
    if let Some((reason, help)) = format_refusal(&target.name, &target.identity) {
        return (blocked(reason, help), false);
    }
    // Refused while in use: it is drained (withdrawn) until its consumers leave.
    if let Some(action) = gate(a, plan, busy, input.force) {
        return (action, true);
    }
    (
        SlotAction::Program {
            drain: plan.provider.is_some(),
            forced: input.force && in_use(plan, busy),
        },
        true,
    )
}
