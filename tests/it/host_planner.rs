//! The host planner on plain data: what it decides for each slot from the assignment, what
//! the card reports and what Placement holds. No hardware, no cloud.

use std::collections::{BTreeMap, BTreeSet};

use fpga_sync::cloud::placement::Inventory;
use fpga_sync::desired::host_group::{Backend, Offer, Policy};
use fpga_sync::host::driver::{Busy, DeviceInfo, Loaded, RegionInfo, Slot};
use fpga_sync::host::id::Id128;
use fpga_sync::host::image::{ImageFormat, ImageIdentity};
use fpga_sync::host::plan::assignment::{SlotAssignment, Target};
use fpga_sync::host::plan::provider as report;
use fpga_sync::host::plan::{HostPlan, HostPlanInput, ProviderState, SlotAction, plan_host};
use uuid::Uuid;

const ADDR: &str = "0000:5e:00.0";
const SHELL_UUID: u128 = 0xb1da_f096_461e_4638_a36a_db06_ffec_b638;
const IFACE: Id128 = Id128(0xa108_d99e_87ee_4f7e_a539_a23b_77f2_b433);
const OTHER_IFACE: Id128 = Id128(0x1111);
const AFU: Id128 = Id128(0xedbe_210f_3a15_4660_a8c2_3085_17dc_cabf);

fn aes(requires: Id128) -> Target {
    Target {
        name: "aes".into(),
        bs_uuid: Uuid::from_u128(0x20d0),
        sha256: "9".repeat(64),
        identity: ImageIdentity {
            format: ImageFormat::Gbs,
            id: AFU,
            requires: Some(requires),
        },
        vendor: "Intel".into(),
        function_uuid: Uuid::from_u128(AFU.0),
        region_uuid: Some(Uuid::from_u128(requires.0)),
        shell_id: Some(Uuid::from_u128(SHELL_UUID)),
        topology: Some((2, 2)),
    }
}

fn region_assignment(target: Target, policy: Policy) -> SlotAssignment {
    SlotAssignment {
        slot: Slot::region(ADDR, "0"),
        backend: Backend::Opae,
        group: "g".into(),
        policy,
        bitstream: Some(target),
        shell: None,
        resource_class: Some("CUSTOM_FPGA_INTEL_PF".into()),
        traits: vec!["CUSTOM_ACCELERATOR_CRYPTO".into()],
        offer: Offer::Pf,
    }
}

fn card(loaded: Loaded, busy: Busy) -> DeviceInfo {
    DeviceInfo {
        address: ADDR.into(),
        pci_id: Some("8086:09c4".into()),
        backend: Backend::Opae,
        description: "PAC".into(),
        loaded: Loaded::Unknown("FIM".into()),
        busy: Busy::Free,
        regions: vec![RegionInfo {
            name: "0".into(),
            accepts: vec![IFACE],
            loaded,
            busy,
        }],
        cannot_program: None,
    }
}

struct Case {
    assignments: Vec<SlotAssignment>,
    devices: BTreeMap<Backend, Result<Vec<DeviceInfo>, String>>,
    providers: Vec<ProviderState>,
    force: bool,
    deferred: BTreeMap<Slot, String>,
    programmed: BTreeMap<Slot, String>,
    held: BTreeMap<String, String>,
}

impl Case {
    fn new(a: SlotAssignment, device: DeviceInfo) -> Self {
        Case {
            assignments: vec![a],
            devices: BTreeMap::from([(Backend::Opae, Ok(vec![device]))]),
            providers: Vec::new(),
            force: false,
            deferred: BTreeMap::new(),
            programmed: BTreeMap::new(),
            held: BTreeMap::new(),
        }
    }

    fn plan(&self) -> HostPlan {
        self.plan_with(&BTreeMap::new())
    }

    fn plan_with(&self, targets: &BTreeMap<String, Target>) -> HostPlan {
        let named = BTreeSet::from(["CUSTOM_ACCELERATOR_CRYPTO".to_owned()]);
        plan_host(&HostPlanInput {
            host: "compute-a01",
            assignments: &self.assignments,
            targets,
            devices: &self.devices,
            providers: Some(&self.providers),
            named_traits: &named,
            force: self.force,
            deferred: &self.deferred,
            programmed: &self.programmed,
            held: &self.held,
        })
    }
}

fn provider_from(target: &report::ProviderTarget, allocations: usize) -> ProviderState {
    ProviderState {
        uuid: "p-uuid".into(),
        name: target.name.clone(),
        traits: target.traits.clone(),
        inventories: target.inventories.clone(),
        allocations,
        consumers: Vec::new(),
    }
}

#[test]
fn a_slot_that_carries_its_bitstream_and_is_reported_needs_nothing() {
    let mut case = Case::new(
        region_assignment(aes(IFACE), Policy::Managed),
        card(Loaded::Id(AFU), Busy::Free),
    );
    let first = case.plan();
    assert_eq!(first.slots[0].action, SlotAction::InSync { report: true });
    let want = first.slots[0].on_success.clone().unwrap();
    assert_eq!(want.name, "compute-a01_0000:5e:00.0");
    assert_eq!(
        want.inventories["CUSTOM_FPGA_INTEL_PF"],
        Inventory {
            total: 2,
            reserved: 0,
            min_unit: 1,
            max_unit: 2,
            step_size: 1,
            allocation_ratio: 1.0
        }
    );
    for t in [
        report::OWNER_TRAIT,
        report::VERIFIED_TRAIT,
        "CUSTOM_FPGA_INTEL",
        "CUSTOM_ACCELERATOR_CRYPTO",
        "CUSTOM_FPGA_FUNCTION_ID_INTEL_EDBE210F3A154660A8C2308517DCCABF",
        "CUSTOM_FPGA_REGION_INTEL_A108D99E87EE4F7EA539A23B77F2B433",
    ] {
        assert!(want.traits.contains(t), "{t} in {:?}", want.traits);
    }
    assert!(want.traits.iter().all(|t| {
        t.len() <= 255
            && t.starts_with("CUSTOM_")
            && t[7..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    }));
    // Another writer's trait on the provider does not count as a difference.
    let mut p = provider_from(&want, 0);
    p.traits.insert("CUSTOM_SOMEONE_ELSES".into());
    case.providers = vec![p];
    let second = case.plan();
    assert_eq!(second.slots[0].action, SlotAction::InSync { report: false });
    assert!(!second.has_changes());
}

#[test]
fn a_partial_bitstream_for_another_interface_is_blocked_even_forced() {
    for force in [false, true] {
        let mut case = Case::new(
            region_assignment(aes(OTHER_IFACE), Policy::Managed),
            card(Loaded::Empty, Busy::Free),
        );
        case.force = force;
        let plan = case.plan();
        match &plan.slots[0].action {
            SlotAction::Blocked { reason, .. } => {
                assert!(reason.contains("needs interface"), "{reason}");
                assert!(reason.contains(&IFACE.to_string()), "{reason}");
            }
            other => panic!("force={force}: {other:?}"),
        }
    }
}

#[test]
fn a_busy_region_or_one_with_allocations_is_programmed_only_when_forced() {
    let busy = Case::new(
        region_assignment(aes(IFACE), Policy::Managed),
        card(Loaded::Empty, Busy::InUse("SR-IOV: 2 VFs".into())),
    );
    assert!(
        matches!(&busy.plan().slots[0].action, SlotAction::Blocked { reason, .. } if reason.contains("busy"))
    );
    let mut forced = busy;
    forced.force = true;
    assert_eq!(
        forced.plan().slots[0].action,
        SlotAction::Program {
            drain: false,
            forced: true
        }
    );

    let mut allocated = Case::new(
        region_assignment(aes(IFACE), Policy::Managed),
        card(Loaded::Id(Id128(7)), Busy::Free),
    );
    let want = allocated.plan().slots[0].on_success.clone().unwrap();
    let mut p = provider_from(&want, 1);
    // It was verified for another bitstream: its BS trait is not this target's.
    p.traits
        .retain(|t| !t.starts_with(report::BITSTREAM_TRAIT_PREFIX));
    allocated.providers = vec![p];
    let plan = allocated.plan();
    match &plan.slots[0].action {
        SlotAction::Blocked { reason, .. } => {
            assert!(
                reason.contains("1 consumer(s) hold allocations"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The card carries another bitstream than its assignment: the slot is taken out of
    // scheduling (the consumer keeps its allocation; no new one lands) until it is free to
    // be programmed, and the provider says what the card carries.
    let withdraw = plan.slots[0].withdraw.as_ref().expect("withdrawn");
    assert!(withdraw.traits.contains(report::WITHDRAWN_TRAIT));
    assert!(withdraw.traits.contains(&format!(
        "{}{}",
        report::CARRIES_TRAIT_PREFIX,
        Id128(7).upper()
    )));
    allocated.force = true;
    assert_eq!(
        allocated.plan().slots[0].action,
        SlotAction::Program {
            drain: true,
            forced: true
        }
    );
}

#[test]
fn a_provider_claiming_a_bitstream_the_card_lost_is_withdrawn_before_anything_else() {
    let mut case = Case::new(
        region_assignment(aes(IFACE), Policy::Managed),
        card(Loaded::Empty, Busy::Free),
    );
    let want = case.plan().slots[0].on_success.clone().unwrap();
    case.providers = vec![provider_from(&want, 2)];
    let held = case.plan();
    assert!(
        matches!(held.slots[0].action, SlotAction::Blocked { .. }),
        "in use: {:?}",
        held.slots[0].action
    );
    assert!(held.slots[0].withdraw.is_some(), "withdrawn though in use");
    case.providers = vec![provider_from(&want, 0)];
    let plan = case.plan();
    assert!(
        matches!(
            plan.slots[0].action,
            SlotAction::Program { drain: true, .. }
        ),
        "{:?}",
        plan.slots[0].action
    );
    let first = plan.slots[0].withdraw.as_ref().expect("withdrawn first");
    assert!(first.traits.contains(report::WITHDRAWN_TRAIT));
    assert!(
        first
            .traits
            .contains(&format!("{}NOTHING", report::CARRIES_TRAIT_PREFIX))
    );
    assert!(!first.traits.contains(report::VERIFIED_TRAIT));
    assert!(
        !first
            .traits
            .iter()
            .any(|t| t.starts_with("CUSTOM_FPGA_FUNCTION_ID_")
                || t.starts_with(report::BITSTREAM_TRAIT_PREFIX))
    );
    let inv = &first.inventories["CUSTOM_FPGA_INTEL_PF"];
    assert_eq!(inv.reserved, inv.total);
    assert!(plan.has_changes());

    // Once Placement holds the withdrawal, the next plan does not write it again.
    let mut again = case;
    again.providers = vec![provider_from(first, 0)];
    assert_eq!(again.plan().slots[0].withdraw, None);

    let failure = plan.slots[0].on_failure.as_ref().unwrap();
    assert!(failure.traits.contains(report::FAILED_TRAIT));
    assert!(
        !failure
            .traits
            .iter()
            .any(|t| t.starts_with("CUSTOM_FPGA_FUNCTION_ID_"))
    );
    let inv = &failure.inventories["CUSTOM_FPGA_INTEL_PF"];
    assert_eq!(inv.reserved, inv.total);
}

#[test]
fn manual_slots_are_left_alone_and_deferred_slots_wait() {
    let mut unreported = region_assignment(aes(IFACE), Policy::Manual);
    unreported.bitstream = None;
    unreported.resource_class = None;
    let manual = Case::new(unreported, card(Loaded::Empty, Busy::Free));
    let plan = manual.plan();
    assert_eq!(plan.slots[0].action, SlotAction::Manual { report: false });
    assert_eq!(plan.slots[0].provider_name, None);
    assert!(!plan.has_changes());

    // With a resource class, a manual slot is a claimable provider: one unit, its traits
    // and the manual trait, no function traits; reported once, then left alone.
    let mut claimable = region_assignment(aes(IFACE), Policy::Manual);
    claimable.bitstream = None;
    let mut manual = Case::new(claimable, card(Loaded::Empty, Busy::Free));
    let plan = manual.plan();
    assert_eq!(plan.slots[0].action, SlotAction::Manual { report: true });
    let want = plan.slots[0].on_success.clone().unwrap();
    assert_eq!(want.name, format!("compute-a01_{ADDR}"));
    assert_eq!(
        want.traits,
        BTreeSet::from([
            "CUSTOM_ACCELERATOR_CRYPTO".to_owned(),
            report::MANUAL_TRAIT.to_owned(),
            report::OWNER_TRAIT.to_owned(),
        ])
    );
    assert_eq!(want.inventories["CUSTOM_FPGA_INTEL_PF"].total, 1);
    assert!(plan.slots[0].withdraw.is_none());
    manual.providers = vec![provider_from(&want, 1)];
    let plan = manual.plan();
    assert_eq!(plan.slots[0].action, SlotAction::Manual { report: false });
    assert!(!plan.has_changes());
    assert!(plan.removals.is_empty());

    let mut deferred = Case::new(
        region_assignment(aes(IFACE), Policy::Managed),
        card(Loaded::Empty, Busy::Free),
    );
    deferred.deferred.insert(
        Slot::region(ADDR, "0"),
        "backing off after 3 failures".into(),
    );
    assert!(
        matches!(&deferred.plan().slots[0].action, SlotAction::Blocked { reason, .. } if reason == "backing off after 3 failures")
    );
}

#[test]
fn a_missing_shell_blocks_its_regions_on_a_card_whose_shell_is_flashed() {
    let shell = Target {
        name: "fim".into(),
        bs_uuid: Uuid::from_u128(SHELL_UUID),
        sha256: "5".repeat(64),
        identity: ImageIdentity {
            format: ImageFormat::Opaque,
            id: Id128(0x53de),
            requires: None,
        },
        vendor: "Intel".into(),
        function_uuid: Uuid::from_u128(1),
        region_uuid: None,
        shell_id: None,
        topology: None,
    };
    let mut whole = region_assignment(shell.clone(), Policy::Managed);
    whole.slot = Slot::device(ADDR);
    let mut region = region_assignment(aes(IFACE), Policy::Managed);
    region.shell = Some(shell.clone());
    let mut device = card(Loaded::Empty, Busy::Free);
    // The card offers another interface: another FIM is flashed.
    device.regions[0].accepts = vec![OTHER_IFACE];
    let mut case = Case::new(whole, device);
    case.assignments.push(region);
    let targets = BTreeMap::from([("fim".to_owned(), shell), ("aes".to_owned(), aes(IFACE))]);
    let named = BTreeSet::new();
    let plan = plan_host(&HostPlanInput {
        host: "h",
        assignments: &case.assignments,
        targets: &targets,
        devices: &case.devices,
        providers: Some(&[]),
        named_traits: &named,
        force: true,
        deferred: &BTreeMap::new(),
        programmed: &BTreeMap::new(),
        held: &BTreeMap::new(),
    });
    assert!(
        matches!(&plan.slots[0].action, SlotAction::Blocked { reason, .. } if reason.contains("not the shell `fim`")),
        "{:?}",
        plan.slots[0].action
    );
    assert!(
        matches!(&plan.slots[1].action, SlotAction::Blocked { reason, .. } if reason.contains("shell is not on the device")),
        "{:?}",
        plan.slots[1].action
    );
}

#[test]
fn providers_that_are_not_fpga_syncs_are_never_touched_and_gone_devices_are_removed() {
    let mut case = Case::new(
        region_assignment(aes(IFACE), Policy::Managed),
        card(Loaded::Empty, Busy::Free),
    );
    let want = case.plan().slots[0].on_success.clone().unwrap();
    let mut cyborgs = provider_from(&want, 0);
    cyborgs.traits = BTreeSet::from(["CUSTOM_FPGA_INTEL".into()]);
    let gone = ProviderState {
        uuid: "gone".into(),
        name: "compute-a01_0000:af:00.0".into(),
        traits: BTreeSet::from([report::OWNER_TRAIT.into()]),
        inventories: BTreeMap::new(),
        allocations: 0,
        consumers: Vec::new(),
    };
    let foreign = ProviderState {
        name: "compute-a01_0000:d8:00.0".into(),
        traits: BTreeSet::new(),
        ..gone.clone()
    };
    case.providers = vec![cyborgs, gone, foreign];
    let plan = case.plan();
    assert!(
        matches!(&plan.slots[0].action, SlotAction::Blocked { reason, .. } if reason.contains("fpga-sync did not create it"))
    );
    let removed: Vec<&str> = plan
        .removals
        .iter()
        .map(|r| r.provider.name.as_str())
        .collect();
    assert_eq!(removed, ["compute-a01_0000:af:00.0"]);
}

#[test]
fn a_discovery_that_failed_withdraws_the_slots_it_could_not_read_and_removes_nothing() {
    let mut case = Case::new(
        region_assignment(aes(IFACE), Policy::Managed),
        card(Loaded::Id(AFU), Busy::Free),
    );
    let want = case.plan().slots[0].on_success.clone().unwrap();
    case.providers = vec![provider_from(&want, 0)];
    assert_eq!(case.plan().slots[0].withdraw, None, "verified and true");
    case.devices = BTreeMap::from([(
        Backend::Opae,
        Err("reading afu_id: Device or resource busy".to_owned()),
    )]);
    let plan = case.plan();
    let withdraw = plan.slots[0].withdraw.as_ref().expect("withdrawn");
    assert!(
        withdraw
            .traits
            .contains(&format!("{}UNKNOWN", report::CARRIES_TRAIT_PREFIX))
    );
    assert!(!withdraw.traits.contains(report::VERIFIED_TRAIT));
    assert!(plan.removals.is_empty(), "{:?}", plan.removals);
    assert!(matches!(plan.slots[0].action, SlotAction::Blocked { .. }));
}

#[test]
fn a_legacy_gbs_gets_its_interface_check_and_is_then_refused_even_forced() {
    let legacy = |requires: Id128| {
        let mut t = aes(requires);
        t.identity = ImageIdentity {
            format: ImageFormat::LegacyGbs,
            id: Id128(0x5a256),
            requires: Some(requires),
        };
        t
    };
    for force in [false, true] {
        let mut wrong = Case::new(
            region_assignment(legacy(OTHER_IFACE), Policy::Managed),
            card(Loaded::Empty, Busy::Free),
        );
        wrong.force = force;
        assert!(
            matches!(&wrong.plan().slots[0].action, SlotAction::Blocked { reason, .. }
                if reason.contains("needs interface")),
            "{:?}",
            wrong.plan().slots[0].action
        );
        let mut right = Case::new(
            region_assignment(legacy(IFACE), Policy::Managed),
            card(Loaded::Empty, Busy::Free),
        );
        right.force = force;
        match &right.plan().slots[0].action {
            SlotAction::Blocked { reason, help } => {
                assert!(reason.contains("is a legacy GBS"), "{reason}");
                assert!(reason.contains(&IFACE.to_string()), "{reason}");
                assert!(
                    help.contains("`--allow-busy` does not override this"),
                    "{help}"
                );
            }
            other => panic!("force={force}: {other:?}"),
        }
    }
}

#[test]
fn a_region_listing_several_interfaces_accepts_an_image_built_for_any_of_them() {
    let second = Id128(0xc7a9);
    let mut device = card(Loaded::Empty, Busy::Free);
    device.regions[0].accepts = vec![IFACE, second];
    let case = Case::new(
        region_assignment(aes(second), Policy::Managed),
        device.clone(),
    );
    let plan = case.plan();
    assert_eq!(
        plan.slots[0].action,
        SlotAction::Program {
            drain: false,
            forced: false
        }
    );
    assert_eq!(plan.slots[0].accepts, [IFACE, second]);
    let mut neither = Case::new(region_assignment(aes(OTHER_IFACE), Policy::Managed), device);
    neither.force = true;
    match &neither.plan().slots[0].action {
        SlotAction::Blocked { reason, .. } => assert!(
            reason.contains(&format!("accepts any of {IFACE}, {second}")),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_port_released_to_a_vf_is_never_programmed_and_the_plan_says_whose_it_is() {
    let released = Busy::Released {
        vf: Some("0000:5e:00.1".into()),
        driver: Some("vfio-pci".into()),
    };
    for force in [false, true] {
        let mut case = Case::new(
            region_assignment(aes(IFACE), Policy::Managed),
            card(Loaded::Unknown("not visible".into()), released.clone()),
        );
        case.force = force;
        match &case.plan().slots[0].action {
            SlotAction::Blocked { reason, help } => {
                assert!(
                    reason.contains(
                        "assigned to VF 0000:5e:00.1 (bound to vfio-pci: passed to a VM)"
                    ),
                    "{reason}"
                );
                assert!(
                    help.contains("`--allow-busy` does not override this"),
                    "{help}"
                );
            }
            other => panic!("force={force}: {other:?}"),
        }
    }
    // A VF the host drives that carries the assignment is in sync: nothing to program.
    let carried = Case::new(
        region_assignment(aes(IFACE), Policy::Managed),
        card(Loaded::Id(AFU), released),
    );
    assert_eq!(
        carried.plan().slots[0].action,
        SlotAction::InSync { report: true }
    );
}

/// An FPGA manager without a PCI device, `fpga0`, carrying `loaded`.
fn soc(loaded: Loaded, cannot_program: Option<&str>) -> (SlotAssignment, DeviceInfo) {
    let mut a = region_assignment(aes(IFACE), Policy::Managed);
    a.slot = Slot::device("fpga0");
    a.backend = Backend::FpgaManager;
    let device = DeviceInfo {
        address: "fpga0".into(),
        pci_id: None,
        backend: Backend::FpgaManager,
        description: "Xilinx ZynqMP FPGA Manager".into(),
        loaded,
        busy: Busy::Free,
        regions: Vec::new(),
        cannot_program: cannot_program.map(str::to_owned),
    };
    (a, device)
}

fn soc_case(a: SlotAssignment, device: DeviceInfo) -> Case {
    let mut case = Case::new(a, device);
    case.devices = BTreeMap::from([(
        Backend::FpgaManager,
        case.devices.remove(&Backend::Opae).unwrap(),
    )]);
    case
}

#[test]
fn an_fpga_manager_is_named_by_its_manager_and_trusted_through_its_ledger() {
    let (a, device) = soc(Loaded::Unknown("not loaded by fpga-sync".into()), None);
    let plan = soc_case(a.clone(), device).plan();
    assert_eq!(
        plan.slots[0].provider_name.as_deref(),
        Some("compute-a01_fpga0")
    );
    assert!(
        matches!(plan.slots[0].action, SlotAction::Program { .. }),
        "{:?}",
        plan.slots[0].action
    );
    // What the ledger recorded counts as carried (the manager cannot say), and the plan
    // shows where it came from.
    let (_, device) = soc(Loaded::Recorded(AFU), None);
    let plan = soc_case(a, device).plan();
    assert_eq!(plan.slots[0].action, SlotAction::InSync { report: true });
    assert!(
        plan.slots[0]
            .current
            .to_string()
            .contains("from fpga-sync's ledger")
    );
}

#[test]
fn a_manager_without_a_loader_is_blocked_with_the_hint_to_use_exec() {
    let why = "no `firmware` attribute (a mainline kernel has no userspace loader); use exec";
    let (a, device) = soc(Loaded::Unknown("-".into()), Some(why));
    let mut case = soc_case(a, device);
    case.force = true;
    match &case.plan().slots[0].action {
        SlotAction::Blocked { reason, help } => {
            assert!(
                reason.contains(&format!("fpga0 cannot be programmed: {why}")),
                "{reason}"
            );
            assert!(help.contains("`exec` backend"), "{help}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_builds_with_one_id_are_told_apart_by_what_fpga_sync_recorded() {
    // Builds 1.0 and 1.1 of one AFU: their GBS headers give the same accelerator id.
    let old = aes(IFACE);
    let mut new = aes(IFACE);
    new.name = "aes-1.1".into();
    new.sha256 = "11".repeat(32);
    let mut case = Case::new(
        region_assignment(new.clone(), Policy::Managed),
        card(Loaded::Id(AFU), Busy::Free),
    );
    let targets = BTreeMap::from([
        (old.name.clone(), old.clone()),
        (new.name.clone(), new.clone()),
    ]);
    let slot = case.assignments[0].slot.clone();
    let plan = case.plan_with(&targets);
    assert!(
        matches!(plan.slots[0].action, SlotAction::Program { .. }),
        "no record: the card cannot say which build it carries: {:?}",
        plan.slots[0].action
    );
    let note = plan.slots[0].note.as_deref().unwrap();
    assert!(
        note.contains("no record") && note.contains(&old.name),
        "{note}"
    );

    case.programmed = BTreeMap::from([(slot.clone(), old.sha256.clone())]);
    let plan = case.plan_with(&targets);
    assert!(matches!(plan.slots[0].action, SlotAction::Program { .. }));
    assert!(
        plan.slots[0]
            .note
            .as_deref()
            .unwrap()
            .contains(&format!("it loaded `{}`", old.name)),
        "{:?}",
        plan.slots[0].note
    );

    case.programmed = BTreeMap::from([(slot, new.sha256.clone())]);
    let plan = case.plan_with(&targets);
    assert!(
        matches!(plan.slots[0].action, SlotAction::InSync { .. }),
        "{:?}",
        plan.slots[0].action
    );
    assert_eq!(plan.slots[0].note, None);
}

/// `aes` 1.1: another build, another id, same interface.
fn aes_next() -> Target {
    Target {
        name: "aes-1.1".into(),
        bs_uuid: Uuid::from_u128(0x20d1),
        sha256: "8".repeat(64),
        identity: ImageIdentity {
            id: Id128(0x1234),
            ..aes(IFACE).identity
        },
        function_uuid: Uuid::from_u128(0x1234),
        ..aes(IFACE)
    }
}

#[test]
fn a_slot_its_rollout_holds_back_keeps_offering_the_bitstream_its_card_carries() {
    // The repository moved the slot to aes-1.1; the card carries aes (1.0), verified and
    // reported.
    let old = aes(IFACE);
    let targets = BTreeMap::from([
        ("aes".to_owned(), old.clone()),
        ("aes-1.1".to_owned(), aes_next()),
    ]);
    let mut case = Case::new(
        region_assignment(aes_next(), Policy::Managed),
        card(Loaded::Id(AFU), Busy::Free),
    );
    let verified_old = report::verified(
        "compute-a01_0000:5e:00.0",
        &region_assignment(old.clone(), Policy::Managed),
        &old,
    );
    case.providers = vec![provider_from(&verified_old, 0)];
    let free = case.plan_with(&targets);
    assert!(matches!(
        free.slots[0].action,
        SlotAction::Program { drain: true, .. }
    ));
    assert!(
        free.slots[0].withdraw.is_some(),
        "unheld, it is withdrawn first"
    );
    assert!(free.slots[0].drains);

    // Held: in sync with the wave it is in. Nothing is withdrawn, nothing programmed, and
    // Placement keeps exactly what it holds (aes, read back).
    case.held = BTreeMap::from([(
        "g".to_owned(),
        "wave 2: waiting for 1 of 1 canary to verify `aes-1.1`".to_owned(),
    )]);
    let held = case.plan_with(&targets);
    let slot = &held.slots[0];
    assert_eq!(slot.action, SlotAction::InSync { report: false });
    assert!(slot.withdraw.is_none());
    assert!(!held.has_changes());
    let hold = slot.hold.as_ref().expect("held");
    assert_eq!(
        (hold.assigned.as_str(), hold.keeps.as_deref()),
        ("aes-1.1", Some("aes"))
    );
    assert_eq!(slot.on_success.as_ref(), Some(&verified_old));

    // A card that carries nothing of the repository's offers nothing while it waits: it is
    // withdrawn (never offered for a function it does not carry), not programmed.
    case.devices = BTreeMap::from([(
        Backend::Opae,
        Ok(vec![card(Loaded::Id(Id128(0x77)), Busy::Free)]),
    )]);
    let unknown = case.plan_with(&targets);
    let slot = &unknown.slots[0];
    assert!(matches!(&slot.action, SlotAction::Wait { reason } if reason.starts_with("wave 2")));
    assert!(slot.withdraw.is_some());
    assert_eq!(slot.hold.as_ref().and_then(|h| h.keeps.clone()), None);

    // A group the rollout does not hold goes ahead.
    case.held = BTreeMap::from([("other".to_owned(), "paused".to_owned())]);
    assert!(matches!(
        case.plan_with(&targets).slots[0].action,
        SlotAction::Program { .. }
    ));
}
