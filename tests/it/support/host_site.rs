//! A site for the host-agent tests: a folder of YAML whose names carry a unique token
//! (bitstreams `shell`, `aes-a`, `aes-b` and `aes-x` for another interface, a trait, a
//! resource class and one host group), uploaded by a central apply to the real local
//! cloud — or, with [`HostSite::soc`], a ZynqMP base design and a partial bitstream for an
//! FPGA manager; the fake host folders an agent runs on; and Placement helpers to read
//! what the agent reported.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fpga_sync::cloud::placement::Placement;
use fpga_sync::host::id::Id128;
use sha2::Digest;

use crate::support::cloud::{NOAUTH, local_cloud, unique};
use crate::support::fake_host::FakeHost;

pub const IFACE: Id128 = Id128(0xa108_d99e_87ee_4f7e_a539_a23b_77f2_b433);
pub const OTHER_IFACE: Id128 = Id128(0x5555_0000_0000_4000_8000_0000_0000_0001);
pub const ADDR: &str = "0000:5e:00.0";
pub const MANUAL_ADDR: &str = "0000:3b:00.0";

pub fn gbs(interface: Id128, afu: Id128, seed: &str) -> Vec<u8> {
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
pub struct HostSite {
    pub dir: tempfile::TempDir,
    pub token: String,
    pub lower: String,
    /// The accelerator ids of `aes-a`, `aes-b` and `aes-x` (built for another interface).
    pub afu: [Id128; 3],
}

impl HostSite {
    /// A site whose host group names `<token><suffix>` for each of `hosts`.
    pub fn new(backend: &str, hosts: &[&str]) -> HostSite {
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

    /// A SoC site: a ZynqMP base design (a full bitstream, the "shell" loaded at boot) and
    /// a partial bitstream built for it, assigned to the FPGA manager `fpga0` of host
    /// `<token>-h1` on the `fpga-manager` backend; uploaded by a central apply. `afu[0]` is
    /// the partial's id (raw bitstreams are known by the first 128 bits of their sha256).
    pub fn soc() -> HostSite {
        let token = unique("SOC");
        let lower = token.to_ascii_lowercase().replace('_', "-");
        let dir = tempfile::tempdir().unwrap();
        let n = u128::from_str_radix(&token[token.len() - 12..], 16).unwrap();
        let partial = format!("partial design {n}").repeat(64);
        let digest = sha2::Sha256::digest(partial.as_bytes());
        let id = Id128(u128::from_be_bytes(digest[..16].try_into().unwrap()));
        let site = HostSite {
            dir,
            token,
            lower,
            afu: [id, id, id],
        };
        std::fs::create_dir_all(site.path().join("files")).unwrap();
        std::fs::write(
            site.path().join("files/base.bit.bin"),
            format!("base design {n}"),
        )
        .unwrap();
        std::fs::write(site.path().join("files/aes.bit.bin"), &partial).unwrap();
        let base = Id128(n << 8 | 0x5);
        let bitstream = |name: &str, file: &str, uuid: Id128, extra: &str| {
            format!(
                "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: {name}-{l}\nfile: files/{file}\nmetadata:\n  bs-name: {name}\n  bs-uuid: {uuid}\n  vendor: Xilinx\n  board: KV260\n  version: \"1.0\"\n  driver_ver: \"6.1\"\n  driver_path: /lib/firmware\n  function_uuid: {f}\n{extra}---\n",
                l = site.lower,
                uuid = uuid.dashed(),
                f = Id128(uuid.0 ^ 0xf0).dashed(),
            )
        };
        let docs = format!(
            "{}{}apiVersion: fpga-sync/v1\nkind: HostGroup\nname: kria-{l}\nhosts: [\"{l}-h1\"]\nbackend: fpga-manager\ndevices:\n  - manager: fpga0\n    bitstream: kria-aes-{l}\n    shell: kria-base-{l}\n",
            bitstream("kria-base", "base.bit.bin", base, ""),
            bitstream(
                "kria-aes",
                "aes.bit.bin",
                Id128(n << 8 | 0xa),
                &format!(
                    "  shell_id: {}\n  region_uuid: {}\n",
                    base.dashed(),
                    IFACE.dashed()
                )
            ),
            l = site.lower,
        );
        std::fs::write(site.path().join("site.yaml"), docs).unwrap();
        let (code, out) = site.run(&["apply", "--repo", ".", "--auto-approve"], &[]);
        assert_eq!(code, 0, "central apply: {out}");
        site
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn host(&self, n: u8) -> String {
        format!("{}-h{n}", self.lower)
    }

    /// Assigns `aes-<which>` to the region.
    pub fn assign(&self, which: &str) {
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

    pub fn run(&self, args: &[&str], extra_env: &[(&str, String)]) -> (i32, String) {
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
    pub fn apply_host(&self, host: &str, fake: &HostDirs, extra: &[&str]) -> (i32, String) {
        let mut args = vec!["apply", "--repo", ".", "--auto-approve", "--host", host];
        args.extend(extra);
        self.run(&args, &fake.env())
    }
}

/// Where a host's trees, tools and state are.
pub struct HostDirs {
    pub sysfs: PathBuf,
    pub fpgaconf: PathBuf,
    pub sim: PathBuf,
    pub state: PathBuf,
    pub firmware: PathBuf,
    pub proc: PathBuf,
}

impl HostDirs {
    pub fn of(fake: &FakeHost) -> HostDirs {
        let c = fake.config();
        HostDirs {
            sysfs: c.sysfs_root,
            fpgaconf: c.fpgaconf,
            sim: c.sim_root,
            state: c.state_dir,
            firmware: c.firmware_dir,
            proc: c.proc_root,
        }
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FPGA_SYNC_SYSFS_ROOT", self.sysfs.display().to_string()),
            ("FPGA_SYNC_FPGACONF", self.fpgaconf.display().to_string()),
            ("FPGA_SYNC_SIM_ROOT", self.sim.display().to_string()),
            ("FPGA_SYNC_STATE_DIR", self.state.display().to_string()),
            (
                "FPGA_SYNC_FIRMWARE_DIR",
                self.firmware.display().to_string(),
            ),
            ("FPGA_SYNC_PROC_ROOT", self.proc.display().to_string()),
            (
                "FPGA_SYNC_DEV_ROOT",
                self.state.join("dev").display().to_string(),
            ),
        ]
    }
}

/// A root provider standing in for the host's nova-compute.
pub async fn compute_node(placement: &Placement<'_>, host: &str) -> String {
    placement
        .create_provider(host, None, None)
        .await
        .unwrap()
        .uuid
}

/// Host 1 of `site`: its compute node in Placement, a fake host with one DFL card at
/// `ADDR` that accepts `IFACE` and carries nothing. Returns the host, the node's uuid, the
/// fake host and its directories.
pub async fn one_dfl_card(
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

pub fn fpgaconf_calls(fake: &FakeHost) -> usize {
    fake.calls()
        .iter()
        .filter(|c| c["tool"] == "fpgaconf")
        .count()
}

pub fn function_trait(afu: Id128) -> String {
    format!("CUSTOM_FPGA_FUNCTION_ID_INTEL_{}", afu.upper())
}

pub async fn provider_of(
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
