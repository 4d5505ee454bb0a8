//! `claim` and `release` through the binary, against the real local Placement and Glance,
//! on a simulated host with a managed slot (`aes-a` verified, 2 units) and a developer's
//! `policy: manual` slot made claimable by a `resource_class` (1 unit). A claim returns
//! the PCI address of a free matching slot and its allocation is in Placement with the
//! claim's consumer type; a manual slot is programmed with the bitstream asked for and read
//! back; a claim for a slot that is taken, that carries another bitstream, whose shell
//! does not fit, or with a trait no slot has fails with why; the reconciler does not
//! reprogram a claimed slot after a reassignment and names the claim; `release` frees it
//! (only a claim), and the next pass programs the slot.

use fpga_sync::cloud::placement::Placement;
use fpga_sync::host::discover::backends::sim;
use fpga_sync::host::driver::Slot;
use fpga_sync::host::plan::consumer::CLAIM_CONSUMER_TYPE;
use fpga_sync::host::plan::provider as report;

use crate::support::cloud::{NOAUTH, local_cloud};
use crate::support::fake_host::FakeHost;
use crate::support::host_site::*;

/// The site with its manual entry made claimable: region 0 of `MANUAL_ADDR`, one unit of
/// `CUSTOM_<token>_DEV` with the trait `CUSTOM_<token>_CRYPTO`.
fn claimable_site() -> HostSite {
    let site = HostSite::new("sim", &["-h1"]);
    let path = site.path().join("site.yaml");
    let t = &site.token;
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "    policy: manual\n",
        &format!(
            "    region: \"0\"\n    policy: manual\n    resource_class: CUSTOM_{t}_DEV\n    traits: [CUSTOM_{t}_CRYPTO]\n"
        ),
    );
    let text =
        format!("apiVersion: fpga-sync/v1\nkind: ResourceClass\nname: CUSTOM_{t}_DEV\n---\n{text}");
    std::fs::write(&path, text).unwrap();
    let (code, out) = site.run(&["apply", "--repo", ".", "--auto-approve"], &[]);
    assert_eq!(code, 0, "central apply: {out}");
    site
}

fn json_of(out: &str) -> serde_json::Value {
    let start = out.find('{').unwrap_or_else(|| panic!("no JSON in {out}"));
    let end = out.rfind('}').unwrap();
    serde_json::from_str(&out[start..=end]).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn claim_picks_a_free_slot_programs_a_manual_one_and_release_frees_it() {
    let session = local_cloud().session(NOAUTH).await;
    let placement = Placement::new(&session);
    let site = claimable_site();
    let host = site.host(1);
    compute_node(&placement, &host).await;
    let fake = FakeHost::new();
    let root = fake.config().sim_root;
    for address in [ADDR, MANUAL_ADDR] {
        sim::add_device(&root, address, "8086:09c4", "simulated PAC", None).unwrap();
        sim::add_region(&root, address, "0", Some(IFACE), None).unwrap();
    }
    let dirs = HostDirs::of(&fake);
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    let manual = format!("{host}_{MANUAL_ADDR}");
    let (manual_uuid, traits, inventory, _) = provider_of(&placement, &manual).await;
    assert!(traits.contains(report::MANUAL_TRAIT), "{traits:?}");
    assert_eq!((inventory.total, inventory.reserved), (1, 0));
    assert!(
        !traits
            .iter()
            .any(|t| t.starts_with("CUSTOM_FPGA_FUNCTION_ID_")),
        "{traits:?}"
    );
    let (l, t) = (&site.lower, &site.token);
    let claim = |extra: &[&str]| {
        let mut args = vec!["claim", "--repo", ".", "--host", &host, "--format", "json"];
        args.extend(extra);
        site.run(&args, &dirs.env())
    };

    // No slot has that trait; a bitstream for another shell fits no slot.
    let (code, out) = claim(&["--trait", "CUSTOM_NOBODY_HAS_THIS"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "no slot on host `{host}` reports a resource class with trait(s) CUSTOM_NOBODY_HAS_THIS"
        )),
        "{out}"
    );
    let aes_x = format!("aes-x-{l}");
    let (code, out) = claim(&["--bitstream", &aes_x]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("incompatible shell"), "{out}");
    assert!(
        out.contains(&format!(
            "managed by host group `group-{l}` and carries `aes-a-{l}`"
        )),
        "{out}"
    );

    // The manual slot, programmed with `aes-b` for the claim.
    let aes_b = format!("aes-b-{l}");
    let (code, out) = claim(&["--bitstream", &aes_b]);
    assert_eq!(code, 0, "{out}");
    let first = json_of(&out);
    assert_eq!(first["pci_address"], MANUAL_ADDR, "{out}");
    assert_eq!(first["provider"], manual.as_str());
    assert_eq!(first["programmed"], aes_b.as_str());
    assert_eq!(first["carries"]["detail"], site.afu[1].to_string(), "{out}");
    let c1 = first["consumer"].as_str().unwrap().to_owned();
    let held = placement.consumer(&c1).await.unwrap();
    assert_eq!(held.consumer_type.as_deref(), Some(CLAIM_CONSUMER_TYPE));
    assert_eq!(
        held.allocations[&manual_uuid].resources[&format!("CUSTOM_{t}_DEV")],
        1
    );
    let programmed = sim::calls(&root);
    assert_eq!(
        programmed.last().map(|c| c.slot.clone()),
        Some(Slot::region(MANUAL_ADDR, "0").to_string())
    );

    // Its one unit is taken: the second claim for it fails and says by whom.
    let (code, out) = claim(&["--bitstream", &aes_b]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("every matching slot on host `{host}` is taken"))
            && out.contains(&format!("fpga-sync claim `{c1}` holds allocations")),
        "{out}"
    );

    // The managed slot, by its class and trait, for a consumer of our choosing, shown for
    // people: nothing is programmed.
    let calls = sim::calls(&root).len();
    let c2 = "5b1e3f0a-2c4d-4e6f-8a9b-0c1d2e3f4a5b".to_owned();
    let (code, out) = site.run(
        &[
            "claim",
            "--repo",
            ".",
            "--host",
            &host,
            "--resource-class",
            &format!("CUSTOM_{t}_PF"),
            "--trait",
            &format!("CUSTOM_{t}_CRYPTO"),
            "--consumer",
            &c2,
        ],
        &dirs.env(),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "claimed {ADDR} region 0 on host `{host}` for consumer {c2}"
        )) && out.contains(&format!("PCI address:  {ADDR}"))
            && out.contains("(nothing programmed)")
            && out.contains(&format!("release with: fpga-sync release --consumer {c2}")),
        "{out}"
    );
    assert_eq!(sim::calls(&root).len(), calls, "nothing programmed");
    // The consumer holds its claim: it cannot claim again.
    let (code, out) = claim(&["--consumer", &c2]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("consumer `{c2}` already holds allocations")),
        "{out}"
    );

    // A reassignment does not reprogram the claimed slot, and the plan names the claim.
    site.assign("b");
    let (code, out) = site.run(&["plan", "--repo", ".", "--host", &host], &dirs.env());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("fpga-sync claim `{c2}` holds allocations")),
        "{out}"
    );
    assert!(
        out.contains(&format!("fpga-sync release --consumer {c2}")),
        "{out}"
    );
    let (code, out) = site.run(
        &["plan", "--repo", ".", "--host", &host, "--format", "json"],
        &dirs.env(),
    );
    assert_eq!(code, 0, "{out}");
    let plan = json_of(&out);
    let slot = plan["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == format!("{host}_{ADDR}"))
        .unwrap();
    assert_eq!(slot["consumers"][0]["id"], c2.as_str(), "{out}");
    assert_eq!(slot["consumers"][0]["kind"], CLAIM_CONSUMER_TYPE, "{out}");
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_ne!(code, 0, "a blocked slot fails the pass: {out}");
    assert!(out.contains(&format!("fpga-sync claim `{c2}`")), "{out}");
    assert_eq!(sim::calls(&root).len(), calls, "not reprogrammed: {out}");

    // `release` frees the claim; the next pass programs the slot.
    let (code, out) = site.run(&["release", "--consumer", &c2], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("released consumer {c2}")), "{out}");
    assert!(
        placement
            .consumer(&c2)
            .await
            .unwrap()
            .allocations
            .is_empty()
    );
    let (code, out) = site.apply_host(&host, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sim::calls(&root).len(), calls + 1, "{out}");

    let (code, out) = site.run(&["release", "--consumer", &c1], &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = site.run(&["release", "--consumer", &c1], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("holds no allocations"), "{out}");
}
