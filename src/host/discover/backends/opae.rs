//! The `opae` backend: Intel FPGA cards under the upstream DFL driver or the legacy
//! out-of-tree `intel-fpga` driver, read from sysfs and programmed with OPAE `fpgaconf`.
//! I/O: reads below `sysfs_root`, opens `<dev_root>/dfl-port.M` or
//! `<dev_root>/intel-fpga-port.M` (an `O_EXCL` probe, closed at once) and runs `fpgaconf`.
//!
//! A card is a base region `<sysfs>/class/fpga_region/region*` holding a `dfl-fme.N`; its
//! address is the PCI device the region sits below. Each `dfl-port.M` of it is a region
//! named by the port's `id` attribute. A region accepts the `compat_id` of
//! `dfl-fme.N/dfl-fme-region.*/fpga_region/region*` and carries the port's `afu_id`. A
//! region is busy when the PCI function has SR-IOV virtual functions enabled or when the
//! port's character device cannot be opened exclusively (forcing overrides both).
//!
//! SR-IOV (`tests/fixtures/hw/SOURCES.md` §6.4): a port released to a virtual function
//! leaves the PF. It is still listed as a region of the card (the FME's `ports_num` counts
//! it), found under the VF (`virtfnN` → `fpga_region/region*/dfl-port.*`, legacy
//! `fpga/intel-fpga-dev.*/intel-fpga-port.*`) when the host drives that VF, with its
//! `afu_id`; or not found at all when the VF is bound to `vfio-pci`. Such a region is
//! [`Busy::Released`] with the VF's address and driver, and is never programmed, forced
//! or not: only the PF's FME reprograms a port, once it is assigned back to the PF.
//! `fpgaconf` is also never run for a legacy GBS, which OPAE refuses to program.
//!
//! The whole-device slot (the FIM) is only reported (`bitstream_id`, 64 bits, so
//! `Loaded::Unknown`): it is flashed with `fpgasupdate` and loaded by an `rsu` power
//! cycle, which fpga-sync does not do.
//!
//! Legacy `intel-fpga` layout (older PAC deployments; what OpenStack Cyborg reads): a card
//! is a class entry `<sysfs>/class/fpga/intel-fpga-dev.N` (a symlink to
//! `<pci device>/fpga/intel-fpga-dev.N`) holding an `intel-fpga-fme.N`; each
//! `intel-fpga-port.M` of it is a region named by its `id` attribute, else by M. A region
//! accepts `intel-fpga-fme.N/pr/interface_id` and carries the port's `afu_id`; busy as
//! above. A card seen in both layouts is listed once, as its upstream entry.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::DriverConfig;
use super::preflight;
use super::sysfs::{
    attr, canonical, file_name, list_prefix, pci_device_dir, pci_id, read_attr, read_id,
};
use super::tool;
use crate::desired::host_group::Backend;
use crate::host::driver::{
    Busy, DeviceInfo, Driver, DriverError, Loaded, ProgramReport, ProgramRequest, RegionInfo, Slot,
    interface_fits,
};
use crate::host::id::Id128;

/// The `opae` backend.
pub struct Opae {
    sysfs: PathBuf,
    dev: PathBuf,
    fpgaconf: PathBuf,
}

/// Which driver's sysfs layout a card was found in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Upstream DFL: `class/fpga_region`, `dfl-fme.N`, `dfl-port.M`.
    Dfl,
    /// Legacy out-of-tree `intel-fpga`: `class/fpga`, `intel-fpga-fme.N`,
    /// `intel-fpga-port.M`.
    Legacy,
}

/// One DFL card as found in sysfs.
struct Card {
    layout: Layout,
    address: String,
    pci_dir: PathBuf,
    fme: PathBuf,
    ports: Vec<Port>,
}

/// One port (region) of a card.
struct Port {
    /// The region name: the port's `id`.
    name: String,
    /// Its sysfs directory, when the host sees it (on the PF, or on a VF the host drives).
    dir: Option<PathBuf>,
    /// Released to SR-IOV: `Busy::Released`; `None` on the PF.
    released: Option<Busy>,
}

/// A virtual function of a card: its address, driver and the ports the host sees on it.
struct Vf {
    address: String,
    driver: Option<String>,
    ports: Vec<(String, PathBuf)>,
}

impl Opae {
    /// A backend configured by `config` (uses `sysfs_root`, `dev_root`, `fpgaconf`).
    pub fn new(config: &DriverConfig) -> Self {
        Opae {
            sysfs: config.sysfs_root.clone(),
            dev: config.dev_root.clone(),
            fpgaconf: config.fpgaconf.clone(),
        }
    }

    fn cards(&self) -> Vec<Card> {
        let mut cards: Vec<Card> = Vec::new();
        for region in list_prefix(&self.sysfs.join("class/fpga_region"), "region") {
            let Some(fme) = list_prefix(&region, "dfl-fme.").into_iter().next() else {
                continue;
            };
            let Some(pci_dir) = pci_device_dir(&region) else {
                continue;
            };
            let address = file_name(&pci_dir).to_ascii_lowercase();
            if cards.iter().any(|c| c.address == address) {
                continue;
            }
            let ports = with_released(&pci_dir, &fme, ports(&region, "dfl-port."));
            cards.push(Card {
                layout: Layout::Dfl,
                address,
                pci_dir,
                fme,
                ports,
            });
        }
        for dev in list_prefix(&self.sysfs.join("class/fpga"), "intel-fpga-dev.") {
            let Some(fme) = list_prefix(&dev, "intel-fpga-fme.").into_iter().next() else {
                continue;
            };
            let Some(pci_dir) = pci_device_dir(&dev) else {
                continue;
            };
            let address = file_name(&pci_dir).to_ascii_lowercase();
            if cards.iter().any(|c| c.address == address) {
                continue;
            }
            let ports = with_released(&pci_dir, &fme, ports(&dev, "intel-fpga-port."));
            cards.push(Card {
                layout: Layout::Legacy,
                address,
                pci_dir,
                fme,
                ports,
            });
        }
        cards
    }

    fn card(&self, address: &str) -> Option<Card> {
        let address = address.to_ascii_lowercase();
        self.cards().into_iter().find(|c| c.address == address)
    }

    /// The card's PR interface id, as a set of at most one.
    fn accepts(&self, card: &Card) -> Result<Vec<Id128>, DriverError> {
        if card.layout == Layout::Legacy {
            return Ok(read_id(&card.fme.join("pr/interface_id"))?
                .into_iter()
                .collect());
        }
        for region in list_prefix(&card.fme, "dfl-fme-region.") {
            for r in list_prefix(&region.join("fpga_region"), "region") {
                if let Some(id) = read_id(&r.join("compat_id"))? {
                    return Ok(vec![id]);
                }
            }
        }
        Ok(Vec::new())
    }

    fn sriov(&self, card: &Card) -> Option<String> {
        let n: u32 = attr(&card.pci_dir.join("sriov_numvfs"))?.parse().ok()?;
        (n > 0).then(|| format!("SR-IOV: {n} virtual functions enabled"))
    }

    fn port_busy(&self, card: &Card, port: &Port) -> Busy {
        if let Some(released) = &port.released {
            return released.clone();
        }
        if let Some(holder) = self.sriov(card) {
            return Busy::InUse(holder);
        }
        match &port.dir {
            Some(dir) => probe_exclusive(&self.dev.join(file_name(dir))),
            None => Busy::Free,
        }
    }

    /// What a port carries: its `afu_id`, or why the host cannot read it.
    fn loaded_of(port: &Port) -> Loaded {
        match (&port.dir, &port.released) {
            (Some(dir), _) => Self::port_loaded(dir),
            (None, Some(released)) => Loaded::Unknown(format!(
                "the port is {released}; the host does not see its afu_id"
            )),
            (None, None) => Loaded::Unknown("the port is not visible".into()),
        }
    }

    fn port_loaded(port: &Path) -> Loaded {
        let path = port.join("afu_id");
        // afu_id answers EBUSY while the port is disabled during a reconfiguration.
        let mut last = None;
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
            match read_id(&path) {
                Ok(Some(id)) if id.is_zero() => return Loaded::Empty,
                Ok(Some(id)) => return Loaded::Id(id),
                Ok(None) if path.exists() => return Loaded::Empty,
                Ok(None) => {
                    return Loaded::Unknown(format!("{} has no afu_id attribute", file_name(port)));
                }
                Err(e @ DriverError::Parse { .. }) => return Loaded::Unknown(e.to_string()),
                Err(e) => last = Some(e),
            }
        }
        Loaded::Unknown(last.map(|e| e.to_string()).unwrap_or_default())
    }

    fn fim(card: &Card) -> Loaded {
        match attr(&card.fme.join("bitstream_id")) {
            Some(id) => Loaded::Unknown(format!("FIM bitstream_id {id}")),
            None => Loaded::Unknown("the FME reports no bitstream_id".into()),
        }
    }

    fn info(&self, card: &Card) -> Result<DeviceInfo, DriverError> {
        let accepts = self.accepts(card)?;
        let regions = card
            .ports
            .iter()
            .map(|port| RegionInfo {
                name: port.name.clone(),
                accepts: accepts.clone(),
                loaded: Self::loaded_of(port),
                busy: self.port_busy(card, port),
            })
            .collect();
        let manager = list_prefix(&card.fme, "dfl-fme-mgr.")
            .into_iter()
            .map(|m| m.join("fpga_manager"))
            .chain([card.fme.join("fpga_manager")])
            .flat_map(|d| list_prefix(&d, "fpga"))
            .find_map(|m| attr(&m.join("name")));
        Ok(DeviceInfo {
            address: card.address.clone(),
            pci_id: pci_id(&card.pci_dir),
            backend: Backend::Opae,
            description: manager.unwrap_or_else(|| match card.layout {
                Layout::Dfl => "Intel FPGA (DFL)".into(),
                Layout::Legacy => "Intel FPGA (intel-fpga)".into(),
            }),
            loaded: Self::fim(card),
            busy: self.sriov(card).map_or(Busy::Free, Busy::InUse),
            regions,
            cannot_program: None,
        })
    }
}

/// The ports (`<prefix>M` entries) of the card directory `dir`, each named by its `id`
/// attribute, else by M.
fn ports(dir: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    list_prefix(dir, prefix)
        .into_iter()
        .map(|p| {
            let name = attr(&p.join("id"))
                .unwrap_or_else(|| file_name(&p).trim_start_matches(prefix).to_owned());
            (name, p)
        })
        .collect()
}

/// The card's ports with those released to SR-IOV added (`dfl.rst` "FPGA
/// virtualization - PCIe SRIOV"; `tests/fixtures/hw/SOURCES.md` §6.4): a released port
/// disappears from the PF and appears under the VF that holds it when the host drives
/// that VF, or not at all when the VF is bound to `vfio-pci`. The FME's `ports_num` tells
/// how many ports the card has; the ids missing from the PF are the released ones. A VF's
/// port takes the missing id its own `id` names, else the first one left (the legacy
/// driver's VF port ids are not confirmed), then each VF without a visible port takes the
/// next; ids still left are released with no VF holding them.
fn with_released(pci_dir: &Path, fme: &Path, pf_ports: Vec<(String, PathBuf)>) -> Vec<Port> {
    let total: usize = attr(&fme.join("ports_num"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(pf_ports.len());
    let mut free: Vec<String> = (0..total)
        .map(|i| i.to_string())
        .filter(|id| pf_ports.iter().all(|(n, _)| n != id))
        .collect();
    let mut out: Vec<Port> = pf_ports
        .into_iter()
        .map(|(name, dir)| Port {
            name,
            dir: Some(dir),
            released: None,
        })
        .collect();
    let vfs = vfs(pci_dir);
    let released = |vf: &Vf| {
        Some(Busy::Released {
            vf: Some(vf.address.clone()),
            driver: vf.driver.clone(),
        })
    };
    for vf in vfs.iter().filter(|v| !v.ports.is_empty()) {
        for (id, dir) in &vf.ports {
            let name = match free.iter().position(|f| f == id) {
                Some(i) => free.remove(i),
                None if !free.is_empty() => free.remove(0),
                None => id.clone(),
            };
            out.push(Port {
                name,
                dir: Some(dir.clone()),
                released: released(vf),
            });
        }
    }
    for vf in vfs.iter().filter(|v| v.ports.is_empty()) {
        if free.is_empty() {
            break;
        }
        out.push(Port {
            name: free.remove(0),
            dir: None,
            released: released(vf),
        });
    }
    out.extend(free.into_iter().map(|name| Port {
        name,
        dir: None,
        released: Some(Busy::Released {
            vf: None,
            driver: None,
        }),
    }));
    out
}

/// The virtual functions of the PCI device `pci_dir` (`virtfnN` links), in order, with
/// the ports the host sees on each: DFL `fpga_region/region*/dfl-port.*` or legacy
/// `fpga/intel-fpga-dev.*/intel-fpga-port.*`.
fn vfs(pci_dir: &Path) -> Vec<Vf> {
    list_prefix(pci_dir, "virtfn")
        .into_iter()
        .filter_map(|link| canonical(&link))
        .map(|dir| {
            let mut ports = Vec::new();
            for region in list_prefix(&dir.join("fpga_region"), "region") {
                ports.extend(self::ports(&region, "dfl-port."));
            }
            for dev in list_prefix(&dir.join("fpga"), "intel-fpga-dev.") {
                ports.extend(self::ports(&dev, "intel-fpga-port."));
            }
            Vf {
                address: file_name(&dir).to_ascii_lowercase(),
                driver: std::fs::read_link(dir.join("driver"))
                    .ok()
                    .map(|d| file_name(&d)),
                ports,
            }
        })
        .collect()
}

/// Whether the character device at `node` can be opened exclusively (OPAE's own "in use"
/// test). Not a character device (or missing) → `Free`: nothing to probe.
fn probe_exclusive(node: &Path) -> Busy {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let Ok(meta) = std::fs::metadata(node) else {
        return Busy::Free;
    };
    if !meta.file_type().is_char_device() {
        return Busy::Free;
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(node)
    {
        Ok(_) => Busy::Free,
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            Busy::InUse(format!("{} is open", node.display()))
        }
        Err(e) => Busy::Unknown(format!("cannot probe {}: {e}", node.display())),
    }
}

/// Refuses a legacy GBS (first u32 `0x1d1f8680`): OPAE finds its slot but
/// `fpgaReconfigureSlot` refuses it (`fpgaconf` exit 5), so fpgaconf is not run.
fn legacy_refusal(image: &Path) -> Result<(), DriverError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(image).map_err(|e| super::sysfs::io_error(image, &e))?;
    if file.read_exact(&mut magic).is_ok() && u32::from_le_bytes(magic) == 0x1d1f_8680 {
        return Err(DriverError::Unsupported(format!(
            "{}: a legacy GBS (magic 0x1d1f8680, no metadata) carries no accelerator id and OPAE's fpgaReconfigureSlot refuses it; fpgaconf was not run",
            image.display()
        )));
    }
    Ok(())
}

/// `dddd:bb:dd.f` → the `-S -B -D -F` arguments, hex with `0x` (fpgaconf parses numbers
/// with C base-0 rules, so bare `5e` is refused).
fn bdf_args(address: &str) -> Option<Vec<String>> {
    let (seg, rest) = address.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (dev, func) = rest.split_once('.')?;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let (seg, bus, dev, func) = (hex(seg)?, hex(bus)?, hex(dev)?, hex(func)?);
    Some(vec![
        "-S".into(),
        format!("0x{seg:04x}"),
        "-B".into(),
        format!("0x{bus:02x}"),
        "-D".into(),
        format!("0x{dev:02x}"),
        "-F".into(),
        format!("0x{func:x}"),
    ])
}

impl Driver for Opae {
    fn backend(&self) -> Backend {
        Backend::Opae
    }

    fn discover(&self) -> Result<Vec<DeviceInfo>, DriverError> {
        preflight::driver_class(
            "opae",
            &self.sysfs,
            &[
                ("class/fpga_region", "the upstream dfl driver"),
                ("class/fpga", "the out-of-tree intel-fpga driver"),
            ],
        )?;
        preflight::tool("opae", &self.fpgaconf, "fpgaconf", preflight::FPGACONF)?;
        self.cards().iter().map(|c| self.info(c)).collect()
    }

    fn program(&self, request: &ProgramRequest<'_>) -> Result<ProgramReport, DriverError> {
        let slot = request.slot;
        let card = self
            .card(&slot.address)
            .ok_or_else(|| DriverError::NotFound(slot.clone()))?;
        let Some(region) = &slot.region else {
            return Err(DriverError::Unsupported(format!(
                "{slot}: the FIM of a DFL card is flashed with fpgasupdate and loaded by an rsu \
                 power cycle; fpga-sync only checks it"
            )));
        };
        let port = card
            .ports
            .iter()
            .find(|p| &p.name == region)
            .ok_or_else(|| DriverError::NotFound(slot.clone()))?;
        if let Some(released) = &port.released {
            return Err(DriverError::Busy {
                slot: slot.clone(),
                holder: format!(
                    "{released}; a port is reprogrammed only through the PF's FME once it is assigned back to the PF, so fpgaconf was not run, forced or not"
                ),
            });
        }
        let accepts = self.accepts(&card)?;
        if let Some(requires) = request.requires
            && !interface_fits(Some(requires), &accepts)
        {
            return Err(DriverError::Incompatible {
                slot: slot.clone(),
                requires,
                accepts,
            });
        }
        legacy_refusal(request.image)?;
        if let Busy::InUse(holder) = self.port_busy(&card, port)
            && !request.force
        {
            return Err(DriverError::Busy {
                slot: slot.clone(),
                holder,
            });
        }
        let mut argv = vec![self.fpgaconf.display().to_string()];
        if request.force {
            argv.push("--force".into());
        }
        argv.extend(bdf_args(&card.address).ok_or_else(|| DriverError::Parse {
            source: slot.to_string(),
            reason: format!("`{}` is not a PCI address", card.address),
        })?);
        argv.push(request.image.display().to_string());
        let out = tool::run(&argv, request.timeout)?;
        Ok(ProgramReport {
            command: argv,
            output: out.combined(),
        })
    }

    fn read_back(&self, slot: &Slot) -> Result<Loaded, DriverError> {
        let card = self
            .card(&slot.address)
            .ok_or_else(|| DriverError::NotFound(slot.clone()))?;
        let Some(region) = &slot.region else {
            return Ok(Self::fim(&card));
        };
        let port = card
            .ports
            .iter()
            .find(|p| &p.name == region)
            .ok_or_else(|| DriverError::NotFound(slot.clone()))?;
        let Some(dir) = &port.dir else {
            return Ok(Self::loaded_of(port));
        };
        match Self::port_loaded(dir) {
            Loaded::Unknown(why) if dir.join("afu_id").exists() => {
                // A read error that outlived the retries: report it as such.
                match read_attr(&dir.join("afu_id")) {
                    Err(e) => Err(e),
                    Ok(_) => Ok(Loaded::Unknown(why)),
                }
            }
            other => Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdf_arguments_are_hex_with_0x() {
        assert_eq!(
            bdf_args("0000:5e:00.0").unwrap().join(" "),
            "-S 0x0000 -B 0x5e -D 0x00 -F 0x0"
        );
        assert_eq!(
            bdf_args("0001:B3:1f.7").unwrap().join(" "),
            "-S 0x0001 -B 0xb3 -D 0x1f -F 0x7"
        );
        assert!(bdf_args("5e:00.0").is_none());
    }

    #[test]
    fn a_regular_file_is_not_probed() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("dfl-port.0");
        std::fs::write(&node, "").unwrap();
        assert_eq!(probe_exclusive(&node), Busy::Free);
    }
}
