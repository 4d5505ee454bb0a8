//! Which slot a claim gets, on plain data (`host::plan::claim::choose`): the class and
//! traits filter, what may carry the bitstream asked for (a managed slot verified with it,
//! a manual slot whose region accepts it), what Placement offers, the preference for a
//! slot that needs no programming, and why a claim that cannot be met fails. No cloud.

use std::collections::{BTreeMap, BTreeSet};

use fpga_sync::cloud::placement::Inventory;
use fpga_sync::desired::host_group::{Backend, Offer, Policy};
use fpga_sync::host::driver::{Busy, DeviceInfo, Loaded, RegionInfo, Slot};
use fpga_sync::host::id::Id128;
use fpga_sync::host::image::{ImageFormat, ImageIdentity};
use fpga_sync::host::plan::ProviderState;
use fpga_sync::host::plan::assignment::{SlotAssignment, Target};
use fpga_sync::host::plan::claim::{ClaimInput, ClaimRequest, choose};
use fpga_sync::host::plan::consumer::{CLAIM_CONSUMER_TYPE, Consumer, Server};
use fpga_sync::host::plan::observed::Discoveries;
use fpga_sync::host::plan::provider as report;
use uuid::Uuid;

const HOST: &str = "h1";
const MANAGED: &str = "0000:5e:00.0";
const MANUAL: &str = "0000:3b:00.0";
const IFACE: Id128 = Id128(0xa108);
const OTHER_IFACE: Id128 = Id128(0x5555);

fn target(name: &str, id: u128, requires: Id128) -> Target {
    Target {
        name: name.into(),
        bs_uuid: Uuid::from_u128(id ^ 0xff),
        sha256: "9".repeat(64),
        identity: ImageIdentity {
            format: ImageFormat::Gbs,
            id: Id128(id),
            requires: Some(requires),
        },
        vendor: "Intel".into(),
        function_uuid: Uuid::from_u128(id),
        region_uuid: Some(Uuid::from_u128(requires.0)),
        shell_id: Some(Uuid::from_u128(0x5)),
        topology: Some((2, 0)),
    }
}

fn slot(address: &str, policy: Policy, bitstream: Option<Target>, rc: &str) -> SlotAssignment {
    SlotAssignment {
        slot: Slot::region(address, "0"),
        backend: Backend::Sim,
        group: "g".into(),
        policy,
        bitstream,
        shell: None,
        resource_class: Some(rc.into()),
        traits: vec!["CUSTOM_CRYPTO".into()],
        offer: Offer::Pf,
    }
}

fn provider(name: &str, want: &report::ProviderTarget) -> ProviderState {
    ProviderState {
        uuid: format!("uuid-{name}"),
        name: name.into(),
        traits: want.traits.clone(),
        inventories: want.inventories.clone(),
        allocations: 0,
        consumers: Vec::new(),
    }
}

fn card(address: &str, accepts: Id128) -> DeviceInfo {
    DeviceInfo {
        address: address.into(),
        pci_id: Some("8086:09c4".into()),
        backend: Backend::Sim,
        description: "PAC".into(),
        loaded: Loaded::Empty,
        busy: Busy::Free,
        regions: vec![RegionInfo {
            name: "0".into(),
            accepts: vec![accepts],
            loaded: Loaded::Empty,
            busy: Busy::Free,
        }],
        cannot_program: None,
    }
}

/// A host with a managed slot verified with `aes-a` (2 units of `PF`) and a claimable
/// manual slot (1 unit of `DEV`), both offered by Placement.
struct Host {
    assignments: Vec<SlotAssignment>,
    providers: Vec<ProviderState>,
    devices: Discoveries,
    offered: BTreeMap<String, String>,
}

impl Host {
    fn new() -> Host {
        let a = target("aes-a", 0xa, IFACE);
        let managed = slot(MANAGED, Policy::Managed, Some(a.clone()), "PF");
        let manual = slot(MANUAL, Policy::Manual, None, "DEV");
        let managed_name = format!("{HOST}_{MANAGED}");
        let manual_name = format!("{HOST}_{MANUAL}");
        let providers = vec![
            provider(
                &managed_name,
                &report::verified(&managed_name, &managed, &a),
            ),
            provider(&manual_name, &report::manual(&manual_name, &manual)),
        ];
        let offered = BTreeMap::from([
            (format!("uuid-{managed_name}"), "PF".to_owned()),
            (format!("uuid-{manual_name}"), "DEV".to_owned()),
        ]);
        Host {
            assignments: vec![managed, manual],
            providers,
            devices: BTreeMap::from([(
                Backend::Sim,
                Ok(vec![card(MANAGED, IFACE), card(MANUAL, IFACE)]),
            )]),
            offered,
        }
    }

    fn choose(&self, request: &ClaimRequest) -> Result<(String, Option<String>), String> {
        choose(
            &ClaimInput {
                host: HOST,
                assignments: &self.assignments,
                providers: &self.providers,
                devices: &self.devices,
                offered: &self.offered,
            },
            request,
        )
        .map(|c| (c.slot.address, c.program.map(|t| t.name)))
        .map_err(|r| format!("{} | help: {}", r.message, r.help))
    }
}

fn asking(bitstreams: Vec<Target>) -> ClaimRequest {
    ClaimRequest {
        asked: bitstreams
            .first()
            .map(|t| format!("bitstream `{}`", t.name)),
        bitstreams,
        ..ClaimRequest::default()
    }
}

#[test]
fn a_slot_that_needs_no_programming_comes_first_and_a_manual_one_is_programmed() {
    let host = Host::new();
    assert_eq!(
        host.choose(&ClaimRequest::default()),
        Ok((MANUAL.to_owned(), None)),
        "nothing asked: the first slot by provider name (`h1_0000:3b…`)"
    );
    assert_eq!(
        host.choose(&asking(vec![target("aes-a", 0xa, IFACE)])),
        Ok((MANAGED.to_owned(), None)),
        "the managed slot verified with it"
    );
    assert_eq!(
        host.choose(&asking(vec![target("aes-b", 0xb, IFACE)])),
        Ok((MANUAL.to_owned(), Some("aes-b".to_owned()))),
        "only the manual slot may take another bitstream"
    );
    let dev = ClaimRequest {
        resource_class: Some("DEV".into()),
        traits: vec!["CUSTOM_CRYPTO".into()],
        ..ClaimRequest::default()
    };
    assert_eq!(host.choose(&dev), Ok((MANUAL.to_owned(), None)));
}

#[test]
fn a_claim_that_cannot_be_met_says_why() {
    let mut host = Host::new();
    let nobody = ClaimRequest {
        traits: vec!["CUSTOM_NOBODY".into()],
        ..ClaimRequest::default()
    };
    let why = host.choose(&nobody).unwrap_err();
    assert!(
        why.starts_with(
            "no slot on host `h1` reports a resource class with trait(s) CUSTOM_NOBODY"
        ),
        "{why}"
    );
    assert!(
        why.contains(&format!(
            "`{HOST}_{MANUAL}` reports DEV without CUSTOM_NOBODY"
        )),
        "{why}"
    );

    let why = host
        .choose(&asking(vec![target("aes-x", 0xc, OTHER_IFACE)]))
        .unwrap_err();
    assert!(why.contains("incompatible shell"), "{why}");
    assert!(
        why.contains(&format!(
            "`{HOST}_{MANAGED}` is managed by host group `g` and carries `aes-a`"
        )),
        "{why}"
    );

    // The manual slot held by a claim, the managed one withdrawn: nothing is offered.
    host.offered.clear();
    host.providers[1].allocations = 1;
    host.providers[1].consumers = vec![Consumer {
        id: "c1".into(),
        server: None,
        kind: Some(CLAIM_CONSUMER_TYPE.into()),
    }];
    let why = host
        .choose(&asking(vec![target("aes-b", 0xb, IFACE)]))
        .unwrap_err();
    assert!(
        why.starts_with("every matching slot on host `h1` is taken")
            && why.contains("fpga-sync claim `c1` holds allocations"),
        "{why}"
    );
    let inventory: &mut Inventory = host.providers[0].inventories.get_mut("PF").unwrap();
    inventory.reserved = inventory.total;
    host.providers[0].consumers = vec![Consumer {
        id: "s1".into(),
        server: Some(Server {
            name: "web-1".into(),
            project: "p1".into(),
        }),
        kind: None,
    }];
    host.providers[0].allocations = 1;
    let why = host.choose(&ClaimRequest::default()).unwrap_err();
    assert!(
        why.contains(&format!("`{HOST}_{MANAGED}` is withdrawn from scheduling")),
        "{why}"
    );
}

#[test]
fn only_fpga_syncs_providers_and_the_asked_class_count() {
    let mut host = Host::new();
    // A provider of the same name that fpga-sync does not own (Cyborg's) is not claimed.
    host.providers[0].traits = BTreeSet::from(["CUSTOM_CRYPTO".to_owned()]);
    let pf = ClaimRequest {
        resource_class: Some("PF".into()),
        ..ClaimRequest::default()
    };
    let why = host.choose(&pf).unwrap_err();
    assert!(why.contains("reports `PF`"), "{why}");
}
