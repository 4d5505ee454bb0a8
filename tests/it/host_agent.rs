//! The host agent end to end, through the binary, against the real local Placement and
//! Glance: `apply --host` on fake DFL trees driven by the fake `fpgaconf`, and on the `sim`
//! backend for two hosts; on the SR-IOV trees of `tests/fixtures/hw` (a port released to a
//! VF is never programmed) and on its ZynqMP tree (an FPGA manager named `fpga0`, loaded
//! through `firmware`, reported as `<host>_fpga0`). What it must never do is asserted from
//! the fake tools' call log and the sim's: program a card that already carries its
//! bitstream, an image for another interface (even forced), a busy card, a port held by a
//! VF, a corrupt download; what it must leave behind after a failed program or a wrong
//! read-back is read from Placement.

use std::collections::BTreeSet;

use fpga_sync::cloud::placement::Placement;
use fpga_sync::host::discover::backends::sim;
use fpga_sync::host::driver::Slot;
use fpga_sync::host::id::Id128;
use fpga_sync::host::plan::provider as report;

use crate::host_cloud::{allocate, free};
use crate::support::cloud::{NOAUTH, local_cloud};
use crate::support::fake_host::FakeHost;
use crate::support::host_site::*;

#[tokio::test(flavor = "multi_thread")]
async fn opae_host_is_programmed_verified_and_reported_once_then_left_alone() {
    let site = HostSite::new("opae", &["-h1"]);
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let (host, node, fake, dirs) = one_dfl_card(&site, &placement).await;
    fake.add_dfl_card(MANUAL_ADDR, "8086:09c4", IFACE, Some(Id128(0x1234)));

    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    let lines = fake.call_lines();
    assert_eq!(lines.len(), 1, "{lines:?}\n{out}");
    assert!(
        lines[0].starts_with("fpgaconf -S 0x0000 -B 0x5e -D 0x00 -F 0x0 ")
            || lines[0].contains("-B 0x5e -D 0x00 -F 0x0"),
        "{lines:?}"
    );
    assert!(!lines[0].contains("--force"), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("0x3b")),
        "the manual card was touched: {lines:?}"
    );
    assert_eq!(
        fake.read(fake.dfl_port(ADDR).join("afu_id"))
            .trim()
            .parse::<Id128>()
            .unwrap(),
        site.afu[0]
    );
    let name = format!("{host}_{ADDR}");
    let (_, traits, inventory, parent) = provider_of(&placement, &name).await;
    assert_eq!(
        parent.as_deref(),
        Some(node.as_str()),
        "nested under the compute node"
    );
    for t in [
        report::OWNER_TRAIT.to_owned(),
        report::VERIFIED_TRAIT.to_owned(),
        function_trait(site.afu[0]),
        format!("CUSTOM_FPGA_REGION_INTEL_{}", IFACE.upper()),
        format!("CUSTOM_{}_CRYPTO", site.token),
    ] {
        assert!(traits.contains(&t), "{t} missing: {traits:?}");
    }
    assert_eq!(
        (inventory.total, inventory.reserved, inventory.max_unit),
        (2, 0, 2)
    );
    assert!(
        placement
            .providers(Some(&format!("{host}_{MANUAL_ADDR}")), None)
            .await
            .unwrap()
            .is_empty(),
        "a manual device is not reported"
    );

    // The central plan reads the report back as the fleet view.
    let (code, out) = site.run(&["plan", "--repo", "."], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("verified {name}")), "{out}");

    // Again: the card carries it, Placement says so. No program call, no change.
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Nothing to program or report"), "{out}");
    let mut args = vec!["plan", "--repo", ".", "--host", &host, "--format", "json"];
    args.push("--detailed-exitcode");
    let (code, out) = site.run(&args, &dirs.env());
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = json["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["manual", "shell-checked", "in-sync"], "{out}");
    assert_eq!(
        json["slots"][2]["current"]["detail"],
        site.afu[0].to_string()
    );
    // The region's interfaces are a list; the image is what its header says.
    assert_eq!(
        json["slots"][2]["accepts"],
        serde_json::json!([IFACE.to_string()])
    );
    assert_eq!(json["slots"][2]["image"]["format"], "gbs");
    assert_eq!(json["slots"][2]["image"]["requires"], IFACE.to_string());
    assert_eq!(fake.calls().len(), 1, "{:?}", fake.call_lines());

    // A developer forces another build onto the managed region: the provider is drained
    // first, and the next reconcile puts the assigned bitstream back and reports it.
    let other = Id128(site.afu[0].0 ^ 0xf0);
    std::fs::write(site.path().join("dev.gbs"), gbs(IFACE, other, "dev")).unwrap();
    let mut args = vec!["program", "--repo", ".", "--host", &host, "--device", ADDR];
    args.extend(["--region", "0", "--bitstream", "dev.gbs", "--force"]);
    let (code, out) = site.run(&args, &dirs.env());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("drained provider"), "{out}");
    let (_, traits, inventory, _) = provider_of(&placement, &name).await;
    assert_eq!(inventory.reserved, inventory.total, "{traits:?}");
    assert!(!traits.contains(&function_trait(site.afu[0])), "{traits:?}");
    assert_eq!(fpgaconf_calls(&fake), 2);
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(fpgaconf_calls(&fake), 3);
    let (_, traits, inventory, _) = provider_of(&placement, &name).await;
    assert_eq!(inventory.reserved, 0);
    assert!(traits.contains(&function_trait(site.afu[0])), "{traits:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mismatched_busy_and_corrupt_images_are_never_programmed() {
    let site = HostSite::new("opae", &["-h1"]);
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let (host, _, fake, dirs) = one_dfl_card(&site, &placement).await;

    // Built for another interface: refused before any tool runs, forced or not.
    site.assign("x");
    for extra in [&[][..], &["--force"][..]] {
        let (code, out) = site.apply_host(&host, &dirs, extra);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains(&format!("needs interface {OTHER_IFACE}")),
            "{out}"
        );
        assert!(
            out.contains("`--allow-busy` does not override this"),
            "{out}"
        );
    }
    assert_eq!(fpgaconf_calls(&fake), 0, "{:?}", fake.call_lines());

    // Busy: its PF has SR-IOV virtual functions handed to VMs.
    site.assign("a");
    fake.set_sriov(ADDR, 2);
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is busy"), "{out}");
    assert_eq!(fpgaconf_calls(&fake), 0, "{:?}", fake.call_lines());
    fake.set_sriov(ADDR, 0);

    // A corrupt copy in Glance's store: the download is refused and nothing programmed.
    let glance = fpga_sync::cloud::glance::Glance::new(&session);
    let image = glance
        .images(&["FPGA"])
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name.as_deref() == Some(format!("aes-a-{}", site.lower).as_str()))
        .unwrap();
    let stored = local_cloud()
        .state
        .join("noauth-glance/images")
        .join(&image.id);
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED"), "{out}");
    assert!(out.contains("did not match"), "{out}");
    assert_eq!(fpgaconf_calls(&fake), 0, "{:?}", fake.call_lines());
    let cache = dirs.state.join("cache/bitstreams");
    let cached: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(cached.is_empty(), "nothing kept in the cache: {cached:?}");
    bytes[100] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_program_or_wrong_read_back_leaves_the_device_reserved_and_withdrawn() {
    let site = HostSite::new("opae", &["-h1"]);
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let (host, _, fake, dirs) = one_dfl_card(&site, &placement).await;
    let name = format!("{host}_{ADDR}");
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    // Another writer's trait on our provider.
    let (uuid, _, _, _) = provider_of(&placement, &name).await;
    let theirs = format!("CUSTOM_{}_OTHER_WRITER", site.token);
    placement.ensure_trait(&theirs).await.unwrap();
    placement
        .update_provider_traits(&uuid, &BTreeSet::from([theirs.clone()]), &BTreeSet::new())
        .await
        .unwrap();

    site.assign("b");
    for (knob, contents, expect) in [
        ("exit_code", "5", "programming `aes-b"),
        ("noop", "1", "reads back"),
    ] {
        fake.fault(knob, contents);
        let before = fpgaconf_calls(&fake);
        let (code, out) = site.apply_host(&host, &dirs, &[]);
        assert_eq!(code, 1, "{knob}: {out}");
        assert!(out.contains(expect), "{knob}: {out}");
        assert_eq!(fpgaconf_calls(&fake), before + 1, "{knob}: one attempt");
        let (_, traits, inventory, _) = provider_of(&placement, &name).await;
        assert_eq!(inventory.reserved, inventory.total, "{knob}: reserved");
        assert!(traits.contains(report::FAILED_TRAIT), "{knob}: {traits:?}");
        assert!(
            !traits.contains(report::VERIFIED_TRAIT),
            "{knob}: {traits:?}"
        );
        assert!(
            !traits
                .iter()
                .any(|t| t.starts_with("CUSTOM_FPGA_FUNCTION_ID_") || t.contains("CRYPTO")),
            "{knob}: function traits withdrawn: {traits:?}"
        );
        assert!(
            traits.contains(&theirs),
            "{knob}: another writer's trait kept: {traits:?}"
        );
        let (_, fleet) = site.run(&["plan", "--repo", "."], &[]);
        assert!(
            fleet.contains(&format!("FAILED   {name}")),
            "{knob}: {fleet}"
        );
        std::fs::remove_file(fake.path().join("faults").join(knob)).unwrap();
    }

    // Fixed: programmed, verified, reported; the other writer's trait is still there.
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    let (_, traits, inventory, _) = provider_of(&placement, &name).await;
    assert_eq!(inventory.reserved, 0);
    assert!(traits.contains(&function_trait(site.afu[1])), "{traits:?}");
    assert!(!traits.contains(&function_trait(site.afu[0])), "{traits:?}");
    assert!(!traits.contains(report::FAILED_TRAIT), "{traits:?}");
    assert!(traits.contains(&theirs), "{traits:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sim_hosts_report_nested_providers_and_an_allocated_one_is_not_reprogrammed() {
    let site = HostSite::new("sim", &["-h1", "-h2"]);
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let mut hosts = Vec::new();
    for n in [1, 2] {
        let host = site.host(n);
        let node = compute_node(&placement, &host).await;
        let fake = FakeHost::new();
        let sim_root = fake.config().sim_root;
        sim::add_device(&sim_root, ADDR, "8086:09c4", "simulated PAC", None).unwrap();
        sim::add_region(&sim_root, ADDR, "0", Some(IFACE), None).unwrap();
        sim::add_device(&sim_root, MANUAL_ADDR, "8086:09c4", "developer card", None).unwrap();
        sim::add_region(&sim_root, MANUAL_ADDR, "0", Some(IFACE), None).unwrap();
        hosts.push((host, node, fake));
    }
    for (host, node, fake) in &hosts {
        let (code, out) = site.apply_host(host, &HostDirs::of(fake), &[]);
        assert_eq!(code, 0, "{host}: {out}");
        let (_, traits, inventory, parent) =
            provider_of(&placement, &format!("{host}_{ADDR}")).await;
        assert_eq!(parent.as_deref(), Some(node.as_str()));
        assert!(traits.contains(&function_trait(site.afu[0])), "{traits:?}");
        assert!(traits.contains(report::VERIFIED_TRAIT), "{traits:?}");
        assert_eq!(
            (
                inventory.total,
                inventory.reserved,
                inventory.min_unit,
                inventory.max_unit,
                inventory.step_size,
                inventory.allocation_ratio
            ),
            (2, 0, 1, 2, 1, 1.0)
        );
        let calls = sim::calls(&fake.config().sim_root);
        assert_eq!(calls.len(), 1, "{host}: {calls:?}");
    }

    // h2's device is in use by an instance; h1's carries another writer's trait.
    let (h1_uuid, _, _, _) = provider_of(&placement, &format!("{}_{ADDR}", hosts[0].0)).await;
    let (h2_uuid, _, _, _) = provider_of(&placement, &format!("{}_{ADDR}", hosts[1].0)).await;
    let theirs = format!("CUSTOM_{}_OTHER_WRITER", site.token);
    placement.ensure_trait(&theirs).await.unwrap();
    placement
        .update_provider_traits(
            &h1_uuid,
            &BTreeSet::from([theirs.clone()]),
            &BTreeSet::new(),
        )
        .await
        .unwrap();
    let consumer = uuid::Uuid::from_u128(rand::random::<u128>()).to_string();
    allocate(
        &session,
        &consumer,
        &h2_uuid,
        &format!("CUSTOM_{}_PF", site.token),
        1,
    )
    .await;

    site.assign("b");
    // Until the agents catch up, the fleet view shows both hosts pending.
    let (code, fleet) = site.run(&["plan", "--repo", "."], &[]);
    assert_eq!(code, 0, "{fleet}");
    for (host, _, _) in &hosts {
        assert!(
            fleet.contains(&format!("pending  {host}_{ADDR}")),
            "{host}: {fleet}"
        );
    }
    assert!(
        fleet.contains("0 verified, 2 pending, 0 withdrawn, 0 failed"),
        "{fleet}"
    );
    let (code, out) = site.apply_host(&hosts[0].0, &HostDirs::of(&hosts[0].2), &[]);
    assert_eq!(code, 0, "h1: {out}");
    let (_, traits, _, _) = provider_of(&placement, &format!("{}_{ADDR}", hosts[0].0)).await;
    assert!(traits.contains(&function_trait(site.afu[1])), "{traits:?}");
    assert!(
        traits.contains(&theirs),
        "another writer's trait survives: {traits:?}"
    );

    let (code, out) = site.apply_host(&hosts[1].0, &HostDirs::of(&hosts[1].2), &[]);
    assert_eq!(code, 1, "h2: {out}");
    assert!(
        out.contains(&format!("consumer `{consumer}` holds allocations")),
        "named by its id (Nova has no such server): {out}"
    );
    let h2_root = hosts[1].2.config().sim_root;
    assert_eq!(sim::calls(&h2_root).len(), 1, "not reprogrammed");
    let loaded =
        std::fs::read_to_string(h2_root.join(format!("devices/{ADDR}/regions/0/afu_id"))).unwrap();
    assert_eq!(loaded.trim().parse::<Id128>().unwrap(), site.afu[0]);
    // The card does not carry its new assignment: no new consumer may land on it while the
    // old one finishes, and Placement says what it carries.
    let (_, traits, inventory, _) =
        provider_of(&placement, &format!("{}_{ADDR}", hosts[1].0)).await;
    assert!(
        !traits.contains(&function_trait(site.afu[0])) && !traits.contains(report::VERIFIED_TRAIT),
        "withdrawn: {traits:?}"
    );
    assert!(
        traits.contains(&format!(
            "{}{}",
            report::CARRIES_TRAIT_PREFIX,
            site.afu[0].upper()
        )),
        "{traits:?}"
    );
    assert_eq!(inventory.reserved, inventory.total);
    let (code, fleet) = site.run(&["plan", "--repo", "."], &[]);
    assert_eq!(code, 0, "{fleet}");
    assert!(
        fleet.contains(&format!("withdrawn {}_{ADDR}", hosts[1].0))
            && fleet.contains(&format!(
                "carries `aes-a-{l}` (expected `aes-b-{l}`)",
                l = site.lower
            )),
        "{fleet}"
    );

    // Once the instance is gone, the next apply programs it.
    free(&session, &consumer).await;
    let (code, out) = site.apply_host(&hosts[1].0, &HostDirs::of(&hosts[1].2), &[]);
    assert_eq!(code, 0, "h2: {out}");
    assert_eq!(sim::calls(&h2_root).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_provider_of_a_device_that_is_gone_is_removed_only_without_allocations() {
    let site = HostSite::new("sim", &["-h1"]);
    let host = site.host(1);
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    compute_node(&placement, &host).await;
    let fake = FakeHost::new();
    let root = fake.config().sim_root;
    sim::add_device(&root, ADDR, "8086:09c4", "simulated PAC", None).unwrap();
    sim::add_region(&root, ADDR, "0", Some(IFACE), None).unwrap();
    let dirs = HostDirs::of(&fake);
    let name = format!("{host}_{ADDR}");
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    let (uuid, _, _, _) = provider_of(&placement, &name).await;

    // The card vanishes (pulled, or its driver unbound) while an instance holds it.
    sim::set_fault(&root, &Slot::device(ADDR), sim::Fault::Vanished, true).unwrap();
    let consumer = uuid::Uuid::from_u128(rand::random::<u128>()).to_string();
    allocate(
        &session,
        &consumer,
        &uuid,
        &format!("CUSTOM_{}_PF", site.token),
        1,
    )
    .await;
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 1, "the assigned device is missing: {out}");
    assert!(out.contains("sees no FPGA at"), "{out}");
    assert!(out.contains(&format!("kept provider `{name}`")), "{out}");
    let (_, _, inventory, _) = provider_of(&placement, &name).await;
    assert_eq!(inventory.reserved, inventory.total, "kept, fully reserved");

    // Once nothing is allocated, the next run removes it.
    free(&session, &consumer).await;
    let (_, out) = site.apply_host(&host, &dirs, &[]);
    assert!(out.contains(&format!("removed provider `{name}`")), "{out}");
    assert!(
        placement
            .providers(Some(&name), None)
            .await
            .unwrap()
            .is_empty(),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_released_to_a_vf_is_never_programmed_and_the_plan_says_why() {
    let site = HostSite::new("opae", &["-h1"]);
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let host = site.host(1);
    compute_node(&placement, &host).await;
    for scenario in [
        "dfl-d5005-sriov",
        "dfl-d5005-sriov-vfio",
        "intel-fpga-legacy-sriov",
    ] {
        let fake = FakeHost::from_fixture(scenario);
        let expect = fake.fixture()["expect"].clone();
        assert_eq!(expect["pci"], ADDR, "{scenario}: the site's device");
        // The card's interface becomes the site's, so only the VF stands in the way.
        let interface = match expect.get("pr_region") {
            Some(region) => fake.path().join(region.as_str().unwrap()).join("compat_id"),
            None => fake
                .path()
                .join(expect["interface_id_path"].as_str().unwrap()),
        };
        std::fs::write(&interface, format!("{IFACE}\n")).unwrap();
        let dirs = HostDirs::of(&fake);
        let vf = expect["sriov"]["vf"].as_str().unwrap();
        for extra in [&[][..], &["--force"][..]] {
            let (code, out) = site.apply_host(&host, &dirs, extra);
            assert_eq!(code, 1, "{scenario} {extra:?}: {out}");
            assert!(
                out.contains(&format!("assigned to VF {vf}")),
                "{scenario}: {out}"
            );
            assert!(
                out.contains("`--allow-busy` does not override this"),
                "{out}"
            );
        }
        assert_eq!(
            fpgaconf_calls(&fake),
            0,
            "{scenario}: {:?}",
            fake.call_lines()
        );
        let args = ["plan", "--repo", ".", "--host", &host, "--format", "json"];
        let (_, out) = site.run(&args, &dirs.env());
        let json: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        let region = json["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["slot"]["region"] == "0")
            .unwrap_or_else(|| panic!("{scenario}: {json}"));
        assert_eq!(region["action"]["action"], "blocked", "{scenario}: {json}");
        let reason = region["action"]["reason"].as_str().unwrap();
        assert!(reason.contains(&format!("assigned to VF {vf}")), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zynqmp_manager_is_loaded_through_firmware_and_reported_as_host_manager() {
    let site = HostSite::soc();
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let host = site.host(1);
    let node = compute_node(&placement, &host).await;
    let fake = FakeHost::from_fixture("soc-zynqmp-xlnx");
    let mgr = fake
        .path()
        .join(fake.fixture()["expect"]["device_path"].as_str().unwrap());
    let dirs = HostDirs::of(&fake);

    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    // A partial bitstream (it has a shell): flags 1, then its name to `firmware`, staged in
    // the firmware search path.
    assert_eq!(std::fs::read_to_string(mgr.join("flags")).unwrap(), "1");
    let firmware = std::fs::read_to_string(mgr.join("firmware")).unwrap();
    assert!(firmware.starts_with("fpga-sync/"), "{firmware}");
    assert_eq!(
        std::fs::read(dirs.firmware.join(&firmware)).unwrap(),
        std::fs::read(site.path().join("files/aes.bit.bin")).unwrap()
    );
    let name = format!("{host}_fpga0");
    let (_, traits, inventory, parent) = provider_of(&placement, &name).await;
    assert_eq!(parent.as_deref(), Some(node.as_str()));
    assert!(traits.contains(report::VERIFIED_TRAIT), "{traits:?}");
    assert!(
        traits.contains(&format!("CUSTOM_FPGA_REGION_XILINX_{}", IFACE.upper())),
        "{traits:?}"
    );
    assert_eq!((inventory.total, inventory.reserved), (1, 0));

    // Again: the ledger says it carries it (the manager cannot), so nothing is loaded, and
    // the plan says where the id comes from.
    std::fs::write(mgr.join("firmware"), "").unwrap();
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Nothing to program or report"), "{out}");
    assert_eq!(std::fs::read_to_string(mgr.join("firmware")).unwrap(), "");
    let args = ["plan", "--repo", ".", "--host", &host, "--format", "json"];
    let (_, out) = site.run(&args, &dirs.env());
    let json: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let slot = &json["slots"][0];
    assert_eq!(slot["slot"]["address"], "fpga0", "{json}");
    assert_eq!(slot["current"]["state"], "recorded", "{json}");
    assert_eq!(slot["current"]["detail"], site.afu[0].to_string(), "{json}");
    let (_, table) = site.run(&["devices", "--host", &host, "--repo", "."], &dirs.env());
    assert!(
        table.contains(&format!(
            "fpga0  -  Xilinx ZynqMP FPGA Manager  carries {} (from fpga-sync's ledger",
            site.afu[0]
        )),
        "{table}"
    );

    // The central plan's fleet view reads the provider back.
    let (code, fleet) = site.run(&["plan", "--repo", "."], &[]);
    assert_eq!(code, 0, "{fleet}");
    assert!(fleet.contains(&format!("verified {name}")), "{fleet}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_build_with_the_same_accelerator_id_is_programmed_and_recorded() {
    let site = HostSite::new("sim", &["-h1"]);
    // Rebuild `aes-b` with `aes-a`'s accelerator id (a new build of the same AFU), and
    // upload it.
    std::fs::write(
        site.path().join("files/b.gbs"),
        gbs(IFACE, site.afu[0], "second build"),
    )
    .unwrap();
    let (code, out) = site.run(&["apply", "--repo", ".", "--auto-approve"], &[]);
    assert_eq!(code, 0, "central apply: {out}");
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let host = site.host(1);
    compute_node(&placement, &host).await;
    let fake = FakeHost::new();
    let root = fake.config().sim_root;
    sim::add_device(&root, ADDR, "8086:09c4", "simulated PAC", None).unwrap();
    sim::add_region(&root, ADDR, "0", Some(IFACE), None).unwrap();
    let dirs = HostDirs::of(&fake);
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sim::calls(&root).len(), 1);

    site.assign("b");
    let mut args = vec!["plan", "--repo", ".", "--host", &host];
    args.push("--detailed-exitcode");
    let (code, out) = site.run(&args, &dirs.env());
    assert_eq!(
        code, 2,
        "the card reads back the same id, yet it is not this build: {out}"
    );
    assert!(
        out.contains(&format!("it loaded `aes-a-{}`", site.lower)),
        "{out}"
    );
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sim::calls(&root).len(), 2, "programmed: {out}");
    let bs_b = |traits: &BTreeSet<String>| {
        traits.iter().any(|t| {
            t == &format!(
                "{}{}",
                report::BITSTREAM_TRAIT_PREFIX,
                Id128(site.afu[1].0 ^ 0xff).upper()
            )
        })
    };
    let (_, traits, _, _) = provider_of(&placement, &format!("{host}_{ADDR}")).await;
    assert!(bs_b(&traits), "reported as `aes-b`: {traits:?}");

    // Recorded: the next pass leaves it alone.
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sim::calls(&root).len(), 2, "{out}");
    let record = std::fs::read_to_string(dirs.state.join("programmed.json")).unwrap();
    assert!(record.contains("\"region\": \"0\""), "{record}");
}
