//! `FakeHost`: a temporary directory laid out like a compute host's sysfs, with the fake
//! vendor tools of `tests/fixtures/fake-fpga/` installed, for testing the driver backends
//! (and anything above them) without hardware.
//!
//! Layout of the temporary directory:
//!
//! ```text
//! bin/{fpgaconf,xrt-smi,xbutil}   the fakes (copies; they find everything from here)
//! root/                           the sysfs root (DriverConfig.sysfs_root)
//! dev/  firmware/  proc/  state/  sim/  images/
//! faults/<knob>                   fault knobs of the fakes: exit_code (its content),
//!                                 hang, noop, wrong_id
//! calls.jsonl                     one {"tool", "argv"} line per fake tool call
//! ```
//!
//! [`FakeHost::from_fixture`] lays out one of the third-party trees of `tests/fixtures/hw`
//! instead (built by its `build.py`), with the same tools and folders.
//!
//! Typical use:
//!
//! ```ignore
//! let host = FakeHost::new();
//! host.add_dfl_card("0000:5e:00.0", "8086:0b2b", IFACE, Some(AFU));
//! let driver = fpga_sync::host::discover::backends::driver(Backend::Opae, &host.config()).unwrap();
//! let gbs = host.gbs("aes.gbs", IFACE, NEW_AFU);
//! // ... program, then host.calls() lists what the fake tools were asked to do.
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fpga_sync::host::discover::backends::DriverConfig;
use fpga_sync::host::id::Id128;
use tempfile::TempDir;

/// The boot id a new `FakeHost` starts with.
pub const BOOT_ID: &str = "6a1c2b3d-0000-4000-8000-00000000b007";

/// Adds owner write permission to every readable regular file below `dir` (links not
/// followed); unreadable attributes (mode 0000, or 0200 write-only) stay as they are.
fn make_owner_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let meta = std::fs::symlink_metadata(entry.path()).expect("stat");
        if meta.is_dir() {
            make_owner_writable(&entry.path());
        } else if meta.is_file() && meta.permissions().mode() & 0o400 != 0 {
            let mode = meta.permissions().mode() | 0o200;
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))
                .expect("chmod");
        }
    }
}

/// `tests/fixtures/hw/images`: the third-party GBS and xclbin files, with `FIXTURE.json`
/// saying how OPAE and xocl identify each.
pub fn hw_images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hw/images")
}

/// A fake compute host in a temporary directory.
pub struct FakeHost {
    pub dir: TempDir,
    /// The config `config()` returns; edit it to change tool paths or the timeout.
    pub config: DriverConfig,
    cards: AtomicUsize,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn symlink(target: &Path, link: &Path) {
    std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

fn hex(s: &str) -> String {
    format!("0x{s}")
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    /// An empty host with the fake tools installed and boot id [`BOOT_ID`].
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-fpga");
        std::fs::create_dir_all(p.join("bin")).expect("bin");
        for tool in ["fpgaconf", "xrt-smi", "xbutil"] {
            std::fs::copy(fixtures.join(tool), p.join("bin").join(tool)).expect("copy fake");
        }
        for d in [
            "root/class",
            "root/devices",
            "root/bus/pci/devices",
            "dev",
            "firmware",
            "state",
            "sim",
            "images",
            "faults",
        ] {
            std::fs::create_dir_all(p.join(d)).expect("mkdir");
        }
        write(
            &p.join("proc/sys/kernel/random/boot_id"),
            &format!("{BOOT_ID}\n"),
        );
        let config = DriverConfig {
            sysfs_root: p.join("root"),
            dev_root: p.join("dev"),
            firmware_dir: p.join("firmware"),
            proc_root: p.join("proc"),
            state_dir: p.join("state"),
            fpgaconf: p.join("bin/fpgaconf"),
            xrt_smi: p.join("bin/xrt-smi"),
            xbutil: p.join("bin/xbutil"),
            sim_root: p.join("sim"),
            exec: None,
            timeout: Duration::from_secs(30),
        };
        FakeHost {
            dir,
            config,
            cards: AtomicUsize::new(0),
        }
    }

    /// A host whose sysfs tree is the third-party fixture `scenario` of
    /// `tests/fixtures/hw` (see its SOURCES.md), built by its `build.py` into this
    /// directory: `sys/` (linked from `root`, where the fake tools look), `dev/`,
    /// `lib/firmware/` for the SoC scenarios, and `FIXTURE.json` ([`Self::fixture`]).
    pub fn from_fixture(scenario: &str) -> Self {
        let mut host = FakeHost::new();
        let p = host.path().to_owned();
        std::fs::remove_dir_all(p.join("root")).expect("rm root");
        let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hw/build.py");
        let out = std::process::Command::new("python3")
            .arg(&build)
            .arg(scenario)
            .arg(&p)
            .output()
            .expect("python3 runs build.py");
        assert!(
            out.status.success(),
            "build.py {scenario}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::os::unix::fs::symlink("sys", p.join("root")).expect("root -> sys");
        // The fakes (and tests) write read-only attributes such as `afu_id` in place of
        // the kernel; root ignores the modes, an unprivileged test run would not.
        make_owner_writable(&p.join("sys"));
        if p.join("lib/firmware").is_dir() {
            host.config.firmware_dir = p.join("lib/firmware");
        }
        host
    }

    /// The manifest of a host made by [`Self::from_fixture`]: `expect`, `unreadable`.
    pub fn fixture(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path().join("FIXTURE.json")).expect("FIXTURE.json");
        serde_json::from_str(&text).expect("FIXTURE.json parses")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The sysfs root.
    pub fn sysfs(&self) -> PathBuf {
        self.path().join("root")
    }

    /// A `DriverConfig` pointing at this host's trees and fake tools.
    pub fn config(&self) -> DriverConfig {
        self.config.clone()
    }

    /// Makes `xrt-smi` absent from the config (so the backend falls back to `xbutil`).
    pub fn without_xrt_smi(&mut self) {
        self.config.xrt_smi = self.path().join("bin/absent/xrt-smi");
    }

    fn pci_dir(&self, bdf: &str, pci_id: &str) -> PathBuf {
        let n = self.cards.fetch_add(1, Ordering::SeqCst);
        let dir = self
            .sysfs()
            .join(format!("devices/pci0000:00/0000:00:{:02x}.0/{bdf}", n + 2));
        let (vendor, device) = pci_id.split_once(':').expect("vendor:device");
        write(&dir.join("vendor"), &format!("{}\n", hex(vendor)));
        write(&dir.join("device"), &format!("{}\n", hex(device)));
        write(&dir.join("sriov_numvfs"), "0\n");
        symlink(&dir, &self.pci_device(bdf));
        dir
    }

    /// An Intel DFL card at `bdf` (`"0000:5e:00.0"`) with one port (`dfl-port.N`, `id`
    /// 0), the PR region accepting `compat_id`, the port carrying `afu_id` (None: all
    /// zeros). Returns the PCI device directory. Also the class symlinks
    /// `class/fpga_region/region{2N,2N+1}` and the regular files `dev/dfl-{fme,port}.N`.
    pub fn add_dfl_card(
        &self,
        bdf: &str,
        pci_id: &str,
        compat_id: Id128,
        afu_id: Option<Id128>,
    ) -> PathBuf {
        let n = self.cards.load(Ordering::SeqCst);
        let pci = self.pci_dir(bdf, pci_id);
        let base = pci.join(format!("fpga_region/region{}", 2 * n));
        let fme = base.join(format!("dfl-fme.{n}"));
        write(&fme.join("bitstream_id"), "0x202000200000237\n");
        write(&fme.join("bitstream_metadata"), "0x2019040417\n");
        write(&fme.join("ports_num"), "1\n");
        write(&fme.join("socket_id"), "0\n");
        let mgr = fme.join(format!("dfl-fme-mgr.{n}/fpga_manager/fpga{n}"));
        write(&mgr.join("name"), "DFL FME FPGA Manager\n");
        write(&mgr.join("state"), "unknown\n");
        write(&mgr.join("status"), "");
        write(
            &fme.join(format!("dfl-fme-bridge.{n}.auto/fpga_bridge/br{n}/state")),
            "enabled\n",
        );
        let pr = fme.join(format!(
            "dfl-fme-region.{n}/fpga_region/region{}",
            2 * n + 1
        ));
        write(&pr.join("compat_id"), &format!("{compat_id}\n"));
        let port = base.join(format!("dfl-port.{n}"));
        write(&port.join("id"), "0\n");
        write(
            &port.join("afu_id"),
            &format!("{}\n", afu_id.unwrap_or(Id128(0))),
        );
        let class = self.sysfs().join("class/fpga_region");
        symlink(&base, &class.join(format!("region{}", 2 * n)));
        symlink(&pr, &class.join(format!("region{}", 2 * n + 1)));
        write(&self.path().join(format!("dev/dfl-fme.{n}")), "");
        write(&self.path().join(format!("dev/dfl-port.{n}")), "");
        pci
    }

    /// An Intel card at `bdf` under the legacy out-of-tree `intel-fpga` driver:
    /// `<pci>/fpga/intel-fpga-dev.N/` holding `intel-fpga-fme.N/{bitstream_id,
    /// bitstream_metadata,ports_num,socket_id,pr/interface_id}` and one
    /// `intel-fpga-port.N/{id=0,afu_id}` (`afu_id` None: all zeros); the class symlink
    /// `class/fpga/intel-fpga-dev.N` and the regular files `dev/intel-fpga-{fme,port}.N`.
    /// When `bdf` already exists (e.g. from `add_dfl_card`) the tree goes below that PCI
    /// device, so a card can be seen in both layouts. Returns the PCI device directory.
    pub fn add_legacy_intel_card(
        &self,
        bdf: &str,
        pci_id: &str,
        interface_id: Id128,
        afu_id: Option<Id128>,
    ) -> PathBuf {
        let (n, pci) = match std::fs::canonicalize(self.pci_device(bdf)) {
            Ok(pci) => (self.cards.fetch_add(1, Ordering::SeqCst), pci),
            Err(_) => (self.cards.load(Ordering::SeqCst), self.pci_dir(bdf, pci_id)),
        };
        let dev = pci.join(format!("fpga/intel-fpga-dev.{n}"));
        let fme = dev.join(format!("intel-fpga-fme.{n}"));
        write(&fme.join("bitstream_id"), "0x123000200000185\n");
        write(&fme.join("bitstream_metadata"), "0x1801020\n");
        write(&fme.join("ports_num"), "1\n");
        write(&fme.join("socket_id"), "0\n");
        write(&fme.join("pr/interface_id"), &format!("{interface_id}\n"));
        let port = dev.join(format!("intel-fpga-port.{n}"));
        write(&port.join("id"), "0\n");
        write(
            &port.join("afu_id"),
            &format!("{}\n", afu_id.unwrap_or(Id128(0))),
        );
        symlink(
            &dev,
            &self.sysfs().join(format!("class/fpga/intel-fpga-dev.{n}")),
        );
        write(&self.path().join(format!("dev/intel-fpga-fme.{n}")), "");
        write(&self.path().join(format!("dev/intel-fpga-port.{n}")), "");
        pci
    }

    /// The port directory of the legacy `intel-fpga` card at `bdf`.
    pub fn legacy_port(&self, bdf: &str) -> PathBuf {
        let pci = std::fs::canonicalize(self.pci_device(bdf)).expect("pci dir");
        for dev in std::fs::read_dir(pci.join("fpga")).expect("fpga dir") {
            for e in std::fs::read_dir(dev.expect("entry").path()).expect("dev") {
                let p = e.expect("entry").path();
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("intel-fpga-port.")
                {
                    return p;
                }
            }
        }
        panic!("no legacy card {bdf}")
    }

    /// The port directory of the DFL card at `bdf`.
    pub fn dfl_port(&self, bdf: &str) -> PathBuf {
        let class = self.sysfs().join("class/fpga_region");
        for entry in std::fs::read_dir(&class).expect("class dir") {
            let real = std::fs::canonicalize(entry.expect("entry").path()).expect("link");
            if real.to_string_lossy().contains(bdf) {
                for e in std::fs::read_dir(&real).expect("region") {
                    let p = e.expect("entry").path();
                    if p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("dfl-port.")
                    {
                        return p;
                    }
                }
            }
        }
        panic!("no DFL card {bdf}")
    }

    /// Sets `sriov_numvfs` of the PCI device `bdf` (any backend's card).
    pub fn set_sriov(&self, bdf: &str, vfs: u32) {
        let dir = std::fs::canonicalize(self.pci_device(bdf)).expect("pci dir");
        write(&dir.join("sriov_numvfs"), &format!("{vfs}\n"));
    }

    fn pci_device(&self, bdf: &str) -> PathBuf {
        self.sysfs().join("bus/pci/devices").join(bdf)
    }

    /// An XRT user function at `bdf` (`"0000:b3:00.1"`, pci id `10ee:5021`) whose shell
    /// offers `interface` and carries `xclbin` (None: empty), no open contexts; plus its
    /// management function at function 0. Linked from `bus/pci/devices/`.
    pub fn add_xrt_card(&self, bdf: &str, interface: Id128, xclbin: Option<Id128>) -> PathBuf {
        let dir = self.pci_dir(bdf, "10ee:5021");
        let xclbin = xclbin
            .map(|x| format!("{}\n", x.dashed()))
            .unwrap_or_default();
        write(&dir.join("xclbinuuid"), &xclbin);
        write(&dir.join("interface_uuids"), &format!("{}\n", interface));
        write(
            &dir.join("logic_uuids"),
            "e6a7bd8f6cf9e5b1bb3a3d50ba4a1c9f\n",
        );
        write(&dir.join("board_name"), "u250\n");
        write(&dir.join("ready"), "0x1\n");
        self.set_contexts_at(&dir, 0);
        let mgmt_bdf = format!("{}0", &bdf[..bdf.len() - 1]);
        let mgmt = dir.parent().expect("parent").join(&mgmt_bdf);
        write(&mgmt.join("vendor"), "0x10ee\n");
        write(&mgmt.join("device"), "0x5020\n");
        symlink(&mgmt, &self.pci_device(&mgmt_bdf));
        dir
    }

    fn set_contexts_at(&self, dir: &Path, n: u32) {
        write(
            &dir.join("kdsstat"),
            &format!(
                "xclbin:\t\t\t00000000-0000-0000-0000-000000000000\noutstanding execs:\t0\n\
                 total execs:\t\t0\ncontexts:\t\t{n}\nclient pid:\n"
            ),
        );
    }

    /// Sets the `contexts:` count in `kdsstat` of the XRT card `bdf`.
    pub fn set_contexts(&self, bdf: &str, n: u32) {
        self.set_contexts_at(&self.pci_device(bdf), n);
    }

    /// Removes the `xclbinuuid` attribute of the XRT card `bdf`, keeping what it carries
    /// in the fake-only `.xclbin` file that the fake `examine` reports. (Discovery then no
    /// longer lists the card; `read_back` falls back to `examine`.)
    pub fn drop_xclbinuuid(&self, bdf: &str) {
        let dir = self.pci_device(bdf);
        let current = std::fs::read_to_string(dir.join("xclbinuuid")).unwrap_or_default();
        std::fs::write(dir.join(".xclbin"), current).expect("write");
        std::fs::remove_file(dir.join("xclbinuuid")).expect("remove");
    }

    /// A vendor-kernel FPGA manager below the PCI device `bdf`, with `name`, `state`,
    /// empty `status`, `flags` 0 and a `firmware` attribute (a plain file: nothing
    /// loads, so set `state` to what the "kernel" should report after a load). Linked
    /// from `class/fpga_manager/fpgaN`. Returns the manager directory.
    pub fn add_fpga_manager(&self, bdf: &str, pci_id: &str, name: &str, state: &str) -> PathBuf {
        let n = self.cards.load(Ordering::SeqCst);
        let pci = self.pci_dir(bdf, pci_id);
        let mgr = pci.join(format!("fpga_manager/fpga{n}"));
        write(&mgr.join("name"), &format!("{name}\n"));
        write(&mgr.join("state"), &format!("{state}\n"));
        write(&mgr.join("status"), "");
        write(&mgr.join("flags"), "0\n");
        write(&mgr.join("firmware"), "");
        write(&mgr.join("key"), "");
        symlink(
            &mgr,
            &self.sysfs().join(format!("class/fpga_manager/fpga{n}")),
        );
        mgr
    }

    /// Sets `/proc/sys/kernel/random/boot_id` (a "reboot").
    pub fn set_boot_id(&self, id: &str) {
        write(
            &self.path().join("proc/sys/kernel/random/boot_id"),
            &format!("{id}\n"),
        );
    }

    /// Turns a fault knob of the fake tools on with `contents` (`exit_code`: the code;
    /// `hang`, `noop`, `wrong_id`: anything).
    pub fn fault(&self, knob: &str, contents: &str) {
        write(&self.path().join("faults").join(knob), contents);
    }

    /// Every fake tool call so far: `{"tool": "fpgaconf", "argv": [...]}`.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path().join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("calls.jsonl line"))
            .collect()
    }

    /// Every call's argv joined with spaces, prefixed with the tool name.
    pub fn call_lines(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|c| {
                let argv: Vec<&str> = c["argv"]
                    .as_array()
                    .expect("argv")
                    .iter()
                    .map(|a| a.as_str().expect("str"))
                    .collect();
                format!("{} {}", c["tool"].as_str().expect("tool"), argv.join(" "))
            })
            .collect()
    }

    /// Writes a GBS image needing `interface` and carrying accelerator `afu` to
    /// `images/<name>`.
    pub fn gbs(&self, name: &str, interface: Id128, afu: Id128) -> PathBuf {
        let meta = serde_json::json!({"version": 1, "platform-name": "DCP", "afu-image": {
            "magic-no": 488605312u64, "interface-uuid": interface.dashed().to_uppercase(),
            "accelerator-clusters": [{"name": "fake", "total-contexts": 1,
                "accelerator-type-uuid": afu.dashed().to_uppercase()}]}})
        .to_string();
        let mut bytes = b"XeonFPGA\xb7GBSv001".to_vec();
        bytes.extend((meta.len() as u32).to_le_bytes());
        bytes.extend(meta.as_bytes());
        bytes.extend([0u8; 256]);
        self.image(name, &bytes)
    }

    /// Writes an xclbin (AXLF header only) with `uuid`, needing `interface`.
    pub fn xclbin(&self, name: &str, interface: Id128, uuid: Id128) -> PathBuf {
        let mut bytes = vec![0u8; 1024];
        bytes[..8].copy_from_slice(b"xclbin2\0");
        bytes[336..352].copy_from_slice(&interface.0.to_be_bytes());
        bytes[416..432].copy_from_slice(&uuid.0.to_be_bytes());
        self.image(name, &bytes)
    }

    /// Writes `bytes` to `images/<name>`.
    pub fn image(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path().join("images").join(name);
        std::fs::write(&path, bytes).expect("write image");
        path
    }

    /// The trimmed text of `rel` below the temporary directory.
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        std::fs::read_to_string(self.path().join(rel))
            .expect("read")
            .trim()
            .to_owned()
    }
}
