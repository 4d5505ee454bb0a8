//! The end user's flow, end to end, on the compute profile of the local cloud: a real
//! nova-scheduler, nova-conductor and one nova-compute (fake virt driver) per simulated
//! host beside Keystone, Placement and Glance. fpga-sync uploads the site (images, traits,
//! the resource class, three flavors each asking for one function), and the host agent
//! programs `fn-a` on the first host's simulated card and `fn-b` on the second's, reports
//! them under the compute nodes nova-compute registered; then:
//!
//! - a server with the `fn-a` flavor is ACTIVE on the first host, its allocation on that
//!   host's FPGA provider; one asking for `fn-c`, which no verified slot carries, ends in
//!   ERROR (No valid host), `validate` warns about that flavor with its file and line, and
//!   `plan` counts 0 slots for it;
//! - the first host is reassigned to `fn-c`: its slot, held by the server, is not
//!   reprogrammed but withdrawn (the server keeps running), `plan --host`, `apply --host`
//!   and the fleet view name the server (name, id, project), and `release` refuses it;
//! - once the server is deleted, the next pass programs `fn-c`, and a server asking for it
//!   lands there;
//! - after the second host's nova-compute restarted (while the rest goes on) and both
//!   updated twice, fpga-sync's providers, inventories and traits are as it wrote them,
//!   and the compute nodes' own traits are what nova-compute set, none of fpga-sync's.
//!
//! The hosts are the profile's (`FPGA_SYNC_CLOUD_COMPUTES`, two at least). Boot times are
//! printed for the record, not asserted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use fpga_sync::cloud::nova::Nova;
use fpga_sync::cloud::placement::Placement;
use fpga_sync::host::discover::backends::sim;
use fpga_sync::host::id::Id128;
use fpga_sync::host::plan::consumer::CLAIM_CONSUMER_TYPE;
use fpga_sync::host::plan::provider as report;
use serde_json::Value;

use crate::support::cloud::{KEYSTONE, local_cloud, unique};
use crate::support::fake_host::FakeHost;
use crate::support::host_site::{HostDirs, IFACE, gbs};
use crate::support::servers;

/// The site: a shell, `fn-a`, `fn-b` and `fn-c` for its interface (2 PFs each), one
/// host group over both hosts (`fn-a` in region 0, `fn-b` on the second host by
/// override), and one flavor per function asking for its function-id trait.
struct E2eSite {
    dir: tempfile::TempDir,
    token: String,
    lower: String,
    afu: [Id128; 3],
    address: String,
    hosts: [String; 2],
}

impl E2eSite {
    fn new(hosts: [String; 2]) -> E2eSite {
        let token = unique("NOVA");
        let lower = token.to_ascii_lowercase().replace('_', "-");
        let n = u128::from_str_radix(&token[token.len() - 12..], 16).unwrap();
        let afu = [
            Id128(n << 8 | 0xa),
            Id128(n << 8 | 0xb),
            Id128(n << 8 | 0xc),
        ];
        // A bus of its own, so that nothing an earlier run left under the shared compute
        // nodes is taken for this run's card.
        let address = format!("0000:{:02x}:00.0", 0x10 + (n % 0xd0) as u8);
        let site = E2eSite {
            dir: tempfile::tempdir().unwrap(),
            token,
            lower,
            afu,
            address,
            hosts,
        };
        std::fs::create_dir_all(site.path().join("files")).unwrap();
        std::fs::write(site.path().join("files/shell.bin"), format!("shell {n}")).unwrap();
        let shell = Id128(n << 8 | 0x5);
        let mut docs = format!(
            "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: shell-{l}\nfile: files/shell.bin\nmetadata:\n  bs-name: fim\n  bs-uuid: {}\n  vendor: Intel\n  board: PAC-A10\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {}\n---\n",
            shell.dashed(),
            Id128(n << 8 | 0x6).dashed(),
            l = site.lower
        );
        let mut flavors = String::new();
        for (i, f) in ["a", "b", "c"].iter().enumerate() {
            let id = afu[i];
            std::fs::write(
                site.path().join(format!("files/{f}.gbs")),
                gbs(IFACE, id, f),
            )
            .unwrap();
            docs.push_str(&format!(
                "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: fn-{f}-{l}\nfile: files/{f}.gbs\nmetadata:\n  bs-name: fn-{f}\n  bs-uuid: {bs}\n  vendor: Intel\n  board: PAC-A10\n  shell_id: {shell}\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  topology: {{pf_num: 2, vf_num: 0, pf: [{{name: pf_1, pci_offset: 0}}, {{name: pf_2, pci_offset: 1}}]}}\n  region_uuid: {iface}\n  function_uuid: {fid}\n  function_name: fn-{f}-{l}\n---\napiVersion: fpga-sync/v1\nkind: Trait\nname: {function}\n---\n",
                l = site.lower,
                bs = Id128(id.0 ^ 0xff).dashed(),
                shell = shell.dashed(),
                iface = IFACE.dashed(),
                fid = id.dashed(),
                function = site.function_trait(i),
            ));
            // One flavor per function; the comment keeps the `resources` key's line
            // apart from the document's first line.
            flavors.push_str(&format!(
                "apiVersion: fpga-sync/v1\nkind: Flavor\nname: {name}\nvcpus: 1\nram: 128\ndisk: 1\n# one PF with function fn-{f}\nextra_specs:\n  resources:CUSTOM_{t}_PF: 1\n  trait:{function}: required\n---\n",
                name = site.flavor(f),
                t = site.token,
                function = site.function_trait(i),
            ));
        }
        docs.push_str(&format!(
            "apiVersion: fpga-sync/v1\nkind: ResourceClass\nname: CUSTOM_{t}_PF\n",
            t = site.token
        ));
        std::fs::write(site.path().join("site.yaml"), docs).unwrap();
        std::fs::write(site.path().join("flavors.yaml"), flavors).unwrap();
        site.assign_first("a");
        site
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn function_trait(&self, i: usize) -> String {
        format!("CUSTOM_FPGA_FUNCTION_ID_INTEL_{}", self.afu[i].upper())
    }

    fn flavor(&self, f: &str) -> String {
        format!("fpga-sync-e2e-{f}-{}", self.lower)
    }

    fn provider(&self, host: usize) -> String {
        format!("{}_{}", self.hosts[host], self.address)
    }

    /// The host group: the first host's region 0 carries `fn-<first>`, the second's
    /// `fn-b`.
    fn assign_first(&self, first: &str) {
        let l = &self.lower;
        let group = format!(
            "apiVersion: fpga-sync/v1\nkind: HostGroup\nname: e2e-{l}\nhosts: [{h1}, {h2}]\nbackend: sim\ndevices:\n  - address: \"{a}\"\n    bitstream: shell-{l}\n  - address: \"{a}\"\n    region: \"0\"\n    bitstream: fn-{first}-{l}\n    resource_class: CUSTOM_{t}_PF\noverrides:\n  - hosts: [{h2}]\n    devices:\n      - address: \"{a}\"\n        region: \"0\"\n        bitstream: fn-b-{l}\n        resource_class: CUSTOM_{t}_PF\n",
            h1 = self.hosts[0],
            h2 = self.hosts[1],
            a = self.address,
            t = self.token,
        );
        std::fs::write(self.path().join("hosts.yaml"), group).unwrap();
    }

    fn run(&self, args: &[&str], extra_env: &[(&str, String)]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
            .args(args)
            .current_dir(self.path())
            .envs(local_cloud().os_env())
            .env("OS_CLOUD", KEYSTONE)
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

    fn apply_host(&self, host: usize, dirs: &HostDirs) -> (i32, String) {
        self.run(
            &[
                "apply",
                "--repo",
                ".",
                "--auto-approve",
                "--host",
                &self.hosts[host],
            ],
            &dirs.env(),
        )
    }
}

/// A provider as Placement holds it: parent, traits, inventories.
async fn snapshot(
    placement: &Placement<'_>,
    name: &str,
) -> (Option<String>, BTreeSet<String>, String) {
    let p = placement
        .providers(Some(name), None)
        .await
        .unwrap()
        .pop()
        .unwrap_or_else(|| panic!("no provider {name}"));
    let (_, traits) = placement.provider_traits(&p.uuid).await.unwrap();
    let (_, inventories) = placement.inventories(&p.uuid).await.unwrap();
    (p.parent_provider_uuid, traits, format!("{inventories:?}"))
}

/// How many periodic resource updates nova-compute of `host` has logged.
fn updates(host: &str) -> usize {
    let log = local_cloud()
        .state
        .join(format!("nova-compute-{host}/nova-compute-{host}.log"));
    std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
        .matches(&format!("Compute_service record updated for {host}"))
        .count()
}

fn json_of(out: &str) -> Value {
    let start = out.find('{').unwrap_or_else(|| panic!("no JSON in {out}"));
    serde_json::from_str(&out[start..=out.rfind('}').unwrap()])
        .unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn fpga_flavors_land_on_verified_hosts_and_a_held_slot_waits_for_its_server() {
    let cloud = local_cloud();
    let computes = cloud.computes();
    assert!(
        computes.len() >= 2,
        "the compute profile must run two nova-computes at least: {computes:?}"
    );
    let session = cloud.session(KEYSTONE).await;
    let placement = Placement::new(&session);
    servers::delete_named(&session, "fpga-sync-e2e-").await;
    let site = E2eSite::new([computes[0].clone(), computes[1].clone()]);
    let (h1, h2) = (site.hosts[0].clone(), site.hosts[1].clone());
    let mut roots = BTreeMap::new();
    for h in &site.hosts {
        let root = placement.providers(Some(h), None).await.unwrap().pop();
        let root = root.unwrap_or_else(|| panic!("nova-compute registered no provider for {h}"));
        let (_, traits) = placement.provider_traits(&root.uuid).await.unwrap();
        roots.insert(h.clone(), (root.uuid, traits));
    }

    let (code, out) = site.run(&["apply", "--repo", ".", "--auto-approve"], &[]);
    assert_eq!(code, 0, "central apply: {out}");
    let fakes = [FakeHost::new(), FakeHost::new()];
    for fake in &fakes {
        let root = fake.config().sim_root;
        sim::add_device(&root, &site.address, "8086:09c4", "simulated PAC", None).unwrap();
        sim::add_region(&root, &site.address, "0", Some(IFACE), None).unwrap();
    }
    let dirs = [HostDirs::of(&fakes[0]), HostDirs::of(&fakes[1])];
    for i in 0..2 {
        let (code, out) = site.apply_host(i, &dirs[i]);
        assert_eq!(code, 0, "{}: {out}", site.hosts[i]);
        let (parent, traits, _) = snapshot(&placement, &site.provider(i)).await;
        assert_eq!(
            parent.as_ref(),
            Some(&roots[&site.hosts[i]].0),
            "under nova's node"
        );
        assert!(traits.contains(&site.function_trait(i)), "{traits:?}");
    }
    // The second host's nova-compute restarts while the flow goes on (its slot is left as
    // it is from here on): at the end, its provider must be as fpga-sync wrote it.
    let h2_before = snapshot(&placement, &site.provider(1)).await;
    let restarted = {
        let h2 = h2.clone();
        tokio::task::spawn_blocking(move || {
            local_cloud().restart_compute(&h2);
            updates(&h2)
        })
    };
    let flavors: BTreeMap<String, String> = Nova::new(&session)
        .flavors()
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.id))
        .collect();
    let image = servers::boot_image(&session, &format!("fpga-sync-e2e-{}", site.lower)).await;
    let (project, _) = session.token_owner().await.unwrap();
    let project = project.expect("a project-scoped token");

    // fn-a: ACTIVE on the first host, allocated on its FPGA provider.
    let a_name = format!("fpga-sync-e2e-a-{}", site.lower);
    let a = servers::boot(&session, &a_name, &flavors[&site.flavor("a")], &image).await;
    let (server, took) = servers::settled(&session, &a).await;
    eprintln!("boot → ACTIVE (fn-a): {:.1} s", took.as_secs_f64());
    assert_eq!(server["status"], "ACTIVE", "{server}");
    assert_eq!(server["OS-EXT-SRV-ATTR:host"], h1.as_str(), "{server}");
    let (h1_fpga, _, _, _) =
        crate::support::host_site::provider_of(&placement, &site.provider(0)).await;
    let held = placement.consumer(&a).await.unwrap();
    assert_eq!(
        held.allocations
            .get(&h1_fpga)
            .map(|r| r.resources[&format!("CUSTOM_{}_PF", site.token)]),
        Some(1),
        "{held:?}"
    );
    assert_ne!(held.consumer_type.as_deref(), Some(CLAIM_CONSUMER_TYPE));

    // fn-c: no verified slot carries it.
    let c = servers::boot(
        &session,
        &format!("fpga-sync-e2e-c0-{}", site.lower),
        &flavors[&site.flavor("c")],
        &image,
    )
    .await;
    let (server, took) = servers::settled(&session, &c).await;
    eprintln!("boot → ERROR (fn-c, nowhere): {:.1} s", took.as_secs_f64());
    assert_eq!(server["status"], "ERROR", "{server}");
    assert!(
        server["fault"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("No valid host"),
        "{server}"
    );
    servers::delete(&session, &c).await;
    let (code, out) = site.run(&["validate", "--repo", ".", "--format", "json"], &[]);
    assert_eq!(code, 0, "a warning is not an error: {out}");
    let report = json_of(&out);
    let warned: Vec<&Value> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "fpga_sync::unschedulable")
        .collect();
    assert_eq!(warned.len(), 1, "{out}");
    assert_eq!(warned[0]["severity"], "warning");
    assert_eq!(warned[0]["file"], "flavors.yaml");
    assert_eq!(
        warned[0]["line"], 31,
        "the `resources` key of the third flavor: {out}"
    );
    assert!(
        warned[0]["message"]
            .as_str()
            .unwrap()
            .contains(&site.flavor("c")),
        "{out}"
    );
    let (code, out) = site.run(&["plan", "--repo", ".", "--format", "json"], &[]);
    assert_eq!(code, 0, "{out}");
    let slots: BTreeMap<String, Value> = json_of(&out)["schedulable"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"))
        .iter()
        .map(|f| (f["flavor"].as_str().unwrap().to_owned(), f["slots"].clone()))
        .collect();
    assert_eq!(
        slots[&site.flavor("a")],
        1,
        "one PF of the first host left: {out}"
    );
    assert_eq!(slots[&site.flavor("b")], 1, "{out}");
    assert_eq!(slots[&site.flavor("c")], 0, "{out}");

    // The first host gets fn-c: the server holds its slot, which is withdrawn, not
    // reprogrammed, and named wherever it shows.
    site.assign_first("c");
    let held_by = format!("server `{a_name}` (id {a}, project {project})");
    let (code, out) = site.run(&["plan", "--repo", ".", "--host", &h1], &dirs[0].env());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{held_by} holds allocations")),
        "{out}"
    );
    let (code, out) = site.apply_host(0, &dirs[0]);
    assert_eq!(code, 1, "a blocked slot fails the pass: {out}");
    assert!(out.contains(&held_by), "{out}");
    assert_eq!(
        sim::calls(&fakes[0].config().sim_root).len(),
        1,
        "not reprogrammed: {out}"
    );
    let (_, traits, inventory) = snapshot(&placement, &site.provider(0)).await;
    assert!(traits.contains(report::WITHDRAWN_TRAIT), "{traits:?}");
    assert!(inventory.contains("reserved: 2"), "{inventory}");
    let (server, _) = servers::settled(&session, &a).await;
    assert_eq!(server["status"], "ACTIVE", "the server keeps running");
    let (code, out) = site.run(&["plan", "--repo", "."], &[]);
    assert_eq!(code, 0, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains(&site.provider(0)))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("withdrawn") && line.contains(&format!("held by {held_by}")),
        "{line}"
    );
    let (code, out) = site.run(&["release", "--consumer", &a], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("is not an fpga-sync claim")
            && out.contains(&format!("it is Nova's {held_by}")),
        "{out}"
    );

    // The server gone, the slot is reprogrammed, and fn-c lands there.
    servers::delete(&session, &a).await;
    let (code, out) = site.apply_host(0, &dirs[0]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sim::calls(&fakes[0].config().sim_root).len(), 2, "{out}");
    let h1_before = snapshot(&placement, &site.provider(0)).await;
    let h1_seen = updates(&h1);
    let c = servers::boot(
        &session,
        &format!("fpga-sync-e2e-c-{}", site.lower),
        &flavors[&site.flavor("c")],
        &image,
    )
    .await;
    let (server, took) = servers::settled(&session, &c).await;
    eprintln!(
        "boot → ACTIVE (fn-c, reprogrammed): {:.1} s",
        took.as_secs_f64()
    );
    assert_eq!(server["status"], "ACTIVE", "{server}");
    assert_eq!(server["OS-EXT-SRV-ATTR:host"], h1.as_str(), "{server}");
    assert!(
        placement
            .consumer(&c)
            .await
            .unwrap()
            .allocations
            .contains_key(&h1_fpga)
    );

    // nova-compute (the second host's restarted) updated twice since: fpga-sync's
    // providers are as it wrote them, and the compute nodes' traits are nova's own.
    let h2_seen = restarted.await.expect("restart-compute");
    let start = std::time::Instant::now();
    while updates(&h1) < h1_seen + 2 || updates(&h2) < h2_seen + 2 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "nova-compute did not update twice in two minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(
        snapshot(&placement, &site.provider(0)).await,
        h1_before,
        "nova-compute changed fpga-sync's provider on {h1}"
    );
    assert_eq!(
        snapshot(&placement, &site.provider(1)).await,
        h2_before,
        "the restarted nova-compute changed fpga-sync's provider on {h2}"
    );
    for (h, (uuid, traits)) in &roots {
        let (_, now) = placement.provider_traits(uuid).await.unwrap();
        assert_eq!(
            &now, traits,
            "{h}: the compute node's traits are nova-compute's"
        );
        assert!(
            !now.iter().any(|t| t.starts_with("CUSTOM_")),
            "{h}: none of fpga-sync's traits on the compute node: {now:?}"
        );
    }

    servers::delete(&session, &c).await;
    servers::delete_image(&session, &image).await;
}
