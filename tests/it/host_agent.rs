//! The host agent end to end, through the binary, against the real local Placement and
//! Glance: `apply --host` on fake DFL trees driven by the fake `fpgaconf`, and on the `sim`
//! backend for two hosts. What it must never do is asserted from the fake tools' call log
//! and the sim's: program a card that already carries its bitstream, an image for another
//! interface (even forced), a busy card, a corrupt download; what it must leave behind
//! after a failed program or a wrong read-back is read from Placement.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fpga_sync::cloud::placement::Placement;
use fpga_sync::host::backends::sim;
use fpga_sync::host::driver::Slot;
use fpga_sync::host::id::Id128;
use fpga_sync::host::report;

use crate::host_cloud::{allocate, free};
use crate::support::cloud::{NOAUTH, local_cloud, unique};
use crate::support::fake_host::FakeHost;

const IFACE: Id128 = Id128(0xa108_d99e_87ee_4f7e_a539_a23b_77f2_b433);
const OTHER_IFACE: Id128 = Id128(0x5555_0000_0000_4000_8000_0000_0000_0001);
const ADDR: &str = "0000:5e:00.0";
const MANUAL_ADDR: &str = "0000:3b:00.0";

fn gbs(interface: Id128, afu: Id128, seed: &str) -> Vec<u8> {
    let meta = serde_json::json!({"version": 1, "afu-image": {
        "magic-no": 488_605_312u64, "interface-uuid": interface.dashed().to_uppercase(),
        "accelerator-clusters": [{"name": "afu", "total-contexts": 1,
            "accelerator-type-uuid": afu.dashed()}]}})
    .to_string();
    let mut out = b"XeonFPGA\xb7GBSv001".to_vec();
    out.extend((meta.len() as u32).to_le_bytes());
    out.extend(meta.as_bytes());
    out.extend(seed.as_bytes().repeat(200));
    out
}

/// A site folder whose names carry a token, its bitstreams uploaded by a central apply.
struct HostSite {
    dir: tempfile::TempDir,
    token: String,
    lower: String,
    /// The accelerator ids of `aes-a`, `aes-b` and `aes-x` (built for another interface).
    afu: [Id128; 3],
}

impl HostSite {
    /// A site whose host group names `<token><suffix>` for each of `hosts`.
    fn new(backend: &str, hosts: &[&str]) -> HostSite {
        let token = unique("HOST");
        let lower = token.to_ascii_lowercase().replace('_', "-");
        let dir = tempfile::tempdir().unwrap();
        let n = u128::from_str_radix(&token[token.len() - 12..], 16).unwrap();
        let afu = [
            Id128(n << 8 | 0xa),
            Id128(n << 8 | 0xb),
            Id128(n << 8 | 0xc),
        ];
        let site = HostSite {
            dir,
            token,
            lower,
            afu,
        };
        std::fs::create_dir_all(site.path().join("files")).unwrap();
        std::fs::write(site.path().join("files/a.gbs"), gbs(IFACE, afu[0], "a")).unwrap();
        std::fs::write(site.path().join("files/b.gbs"), gbs(IFACE, afu[1], "b")).unwrap();
        std::fs::write(
            site.path().join("files/x.gbs"),
            gbs(OTHER_IFACE, afu[2], "x"),
        )
        .unwrap();
        let shell_uuid = Id128(n << 8 | 0x5);
        std::fs::write(site.path().join("files/shell.bin"), format!("shell {n}")).unwrap();
        let bitstream = |name: &str, file: &str, id: Id128, iface: Id128| {
            format!(
                "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: {name}-{l}\nfile: files/{file}\nmetadata:\n  bs-name: {name}\n  bs-uuid: {bs}\n  vendor: Intel\n  board: PAC-A10\n  shell_id: {shell}\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  topology: {{pf_num: 2, vf_num: 0, pf: [{{name: pf_1, pci_offset: 0}}, {{name: pf_2, pci_offset: 1}}]}}\n  region_uuid: {iface}\n  function_uuid: {f}\n---\n",
                l = site.lower,
                shell = shell_uuid.dashed(),
                bs = Id128(id.0 ^ 0xff).dashed(),
                iface = iface.dashed(),
                f = id.dashed(),
            )
        };
        let t = &site.token;
        let shell = format!(
            "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: shell-{}\nfile: files/shell.bin\nmetadata:\n  bs-name: fim\n  bs-uuid: {}\n  vendor: Intel\n  board: PAC-A10\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {}\n---\n",
            site.lower,
            shell_uuid.dashed(),
            Id128(n << 8 | 0x6).dashed()
        );
        let docs = format!(
            "{shell}{}{}{}apiVersion: fpga-sync/v1\nkind: Trait\nname: CUSTOM_{t}_CRYPTO\n---\napiVersion: fpga-sync/v1\nkind: ResourceClass\nname: CUSTOM_{t}_PF\n---\napiVersion: fpga-sync/v1\nkind: HostGroup\nname: group-{l}\nhosts: [{hosts}]\nbackend: {backend}\ndevices:\n  - address: \"{ADDR}\"\n    bitstream: shell-{l}\n  - address: \"{ADDR}\"\n    region: \"0\"\n    bitstream: aes-a-{l}\n    resource_class: CUSTOM_{t}_PF\n    traits: [CUSTOM_{t}_CRYPTO]\n  - address: \"{MANUAL_ADDR}\"\n    policy: manual\n",
            bitstream("aes-a", "a.gbs", afu[0], IFACE),
            bitstream("aes-b", "b.gbs", afu[1], IFACE),
            bitstream("aes-x", "x.gbs", afu[2], OTHER_IFACE),
            l = site.lower,
            hosts = hosts
                .iter()
                .map(|h| format!("\"{}{h}\"", site.lower))
                .collect::<Vec<_>>()
                .join(", "),
        );
        std::fs::write(site.path().join("site.yaml"), docs).unwrap();
        let (code, out) = site.run(&["apply", "--repo", ".", "--auto-approve"], &[]);
        assert_eq!(code, 0, "central apply: {out}");
        site
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn host(&self, n: u8) -> String {
        format!("{}-h{n}", self.lower)
    }

    /// Assigns `aes-<which>` to the region.
    fn assign(&self, which: &str) {
        let path = self.path().join("site.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let from = text
            .lines()
            .find(|l| l.trim_start().starts_with("bitstream: aes-"))
            .unwrap()
            .to_owned();
        let to = format!("    bitstream: aes-{which}-{}", self.lower);
        std::fs::write(&path, text.replace(&from, &to)).unwrap();
    }

    fn run(&self, args: &[&str], extra_env: &[(&str, String)]) -> (i32, String) {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
            .args(args)
            .current_dir(self.path())
            .envs(local_cloud().os_env())
            .env("OS_CLOUD", NOAUTH)
            .env("FPGA_SYNC_SITE", &self.token)
            .env("FPGA_SYNC_CACHE_DIR", self.path().join(".cache"))
            .env("NO_COLOR", "1")
            .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// `apply --host` on a fake host's trees and tools.
    fn apply_host(&self, host: &str, fake: &HostDirs, extra: &[&str]) -> (i32, String) {
        let mut args = vec!["apply", "--repo", ".", "--auto-approve", "--host", host];
        args.extend(extra);
        self.run(&args, &fake.env())
    }
}

/// Where a host's trees, tools and state are.
struct HostDirs {
    sysfs: PathBuf,
    fpgaconf: PathBuf,
    sim: PathBuf,
    state: PathBuf,
}

impl HostDirs {
    fn of(fake: &FakeHost) -> HostDirs {
        let c = fake.config();
        HostDirs {
            sysfs: c.sysfs_root,
            fpgaconf: c.fpgaconf,
            sim: c.sim_root,
            state: c.state_dir,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FPGA_SYNC_SYSFS_ROOT", self.sysfs.display().to_string()),
            ("FPGA_SYNC_FPGACONF", self.fpgaconf.display().to_string()),
            ("FPGA_SYNC_SIM_ROOT", self.sim.display().to_string()),
            ("FPGA_SYNC_STATE_DIR", self.state.display().to_string()),
            (
                "FPGA_SYNC_DEV_ROOT",
                self.state.join("dev").display().to_string(),
            ),
        ]
    }
}

/// A root provider standing in for the host's nova-compute.
async fn compute_node(placement: &Placement<'_>, host: &str) -> String {
    placement
        .create_provider(host, None, None)
        .await
        .unwrap()
        .uuid
}

/// Host 1 of `site`: its compute node in Placement, a fake host with one DFL card at
/// `ADDR` that accepts `IFACE` and carries nothing. Returns the host, the node's uuid, the
/// fake host and its directories.
async fn one_dfl_card(
    site: &HostSite,
    placement: &Placement<'_>,
) -> (String, String, FakeHost, HostDirs) {
    let host = site.host(1);
    let node = compute_node(placement, &host).await;
    let fake = FakeHost::new();
    fake.add_dfl_card(ADDR, "8086:09c4", IFACE, None);
    let dirs = HostDirs::of(&fake);
    (host, node, fake, dirs)
}

fn fpgaconf_calls(fake: &FakeHost) -> usize {
    fake.calls()
        .iter()
        .filter(|c| c["tool"] == "fpgaconf")
        .count()
}

fn function_trait(afu: Id128) -> String {
    format!("CUSTOM_FPGA_FUNCTION_ID_INTEL_{}", afu.upper())
}

async fn provider_of(
    placement: &Placement<'_>,
    name: &str,
) -> (
    String,
    BTreeSet<String>,
    fpga_sync::cloud::placement::Inventory,
    Option<String>,
) {
    let p = placement
        .providers(Some(name), None)
        .await
        .unwrap()
        .pop()
        .unwrap_or_else(|| panic!("no provider {name}"));
    let (_, traits) = placement.provider_traits(&p.uuid).await.unwrap();
    let (_, inventories) = placement.inventories(&p.uuid).await.unwrap();
    let inventory = *inventories.values().next().expect("an inventory");
    (p.uuid, traits, inventory, p.parent_provider_uuid)
}

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
        assert!(out.contains("`--force` does not override this"), "{out}");
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
    assert!(fleet.contains("0 verified, 2 pending, 0 failed"), "{fleet}");
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
    assert!(out.contains("1 consumer(s) hold allocations"), "{out}");
    let h2_root = hosts[1].2.config().sim_root;
    assert_eq!(sim::calls(&h2_root).len(), 1, "not reprogrammed");
    let loaded =
        std::fs::read_to_string(h2_root.join(format!("devices/{ADDR}/regions/0/afu_id"))).unwrap();
    assert_eq!(loaded.trim().parse::<Id128>().unwrap(), site.afu[0]);
    let (_, traits, inventory, _) =
        provider_of(&placement, &format!("{}_{ADDR}", hosts[1].0)).await;
    assert!(
        traits.contains(&function_trait(site.afu[0])),
        "still true, still reported: {traits:?}"
    );
    assert_eq!(inventory.reserved, 0);

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
