//! The `fpga-manager` backend: the Linux FPGA manager class, loading through the writable
//! `firmware` and `flags` attributes of vendor kernels (linux-xlnx, Ubuntu/Kria). I/O:
//! reads below `sysfs_root` and `proc_root`, writes the manager's `flags` and `firmware`,
//! copies images into `<firmware_dir>/fpga-sync/`, and keeps a ledger below
//! `<state_dir>/fpga-manager/`. Formats: `tests/fixtures/hw/SOURCES.md` §6.5–6.6.
//!
//! Devices are the managers of `<sysfs>/class/fpga_manager/*`. One below a PCI device is
//! addressed by that PCI address; one with no PCI device above it (a SoC's platform
//! device, e.g. `…/firmware:zynqmp-firmware:pcap/fpga_manager/fpga0`) by its class name,
//! `fpga0`, which host groups name with `manager:`. A manager without a `firmware`
//! attribute (mainline kernels have only `name`, `state`, `status`; DFL's manager among
//! them) is listed with why it cannot be programmed ([`DeviceInfo::cannot_program`]).
//! Only the whole device is offered. An image's `requires` is not checked: a manager
//! reports no interface id.
//!
//! Programming copies the image atomically to `<firmware_dir>/fpga-sync/<sha256>.bin`,
//! writes `flags` where the attribute exists — `1` (`FPGA_MGR_PARTIAL_RECONFIG`) for a
//! partial bitstream, `0` for a full one; a partial one on a manager without `flags` is
//! refused — then writes `fpga-sync/<sha256>.bin` to `firmware` (the kernel loads
//! synchronously, so a failed write is a failed load), then requires `state` to be
//! `operating` and `status` empty. Loads are serialised process-wide. A manager cannot say
//! what it carries (the kernel has no read-back of the loaded image), so after a
//! successful load the image's id and the boot id are written to the ledger
//! `<state_dir>/fpga-manager/<address>.json`; `read_back` reports it as
//! [`Loaded::Recorded`], and only in the same boot while the manager is `operating`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::DriverConfig;
use super::preflight;
use super::sysfs::{
    attr, canonical, file_name, io_error, list_prefix, pci_device_dir, pci_id, write_atomic,
    write_attr,
};
use crate::desired::host_group::Backend;
use crate::host::driver::{
    Busy, DeviceInfo, Driver, DriverError, Loaded, ProgramReport, ProgramRequest, Slot,
};
use crate::host::id::Id128;

// Loads go through the kernel's firmware loader; one at a time in this process.
static LOAD_LOCK: Mutex<()> = Mutex::new(());

/// The `fpga-manager` backend.
pub struct FpgaManager {
    sysfs: PathBuf,
    firmware: PathBuf,
    proc: PathBuf,
    state: PathBuf,
}

/// What the ledger remembers about a device.
#[derive(Debug, Serialize, Deserialize)]
struct Ledger {
    id: Id128,
    boot_id: String,
}

/// A manager state, normalised: `_` as space, `err` as `error`, lower case.
fn normal_state(raw: &str) -> String {
    let s = raw.trim().to_ascii_lowercase().replace('_', " ");
    match s.strip_suffix(" err") {
        Some(stem) => format!("{stem} error"),
        None => s,
    }
}

/// Whether a normalised state is a load in progress.
fn transitional(state: &str) -> bool {
    matches!(
        state,
        "power up"
            | "reset"
            | "firmware request"
            | "parse header"
            | "write init"
            | "write"
            | "write complete"
    )
}

/// Why the manager at `mgr` cannot be programmed from userspace, if it cannot.
fn cannot_program(mgr: &Path) -> Option<String> {
    if mgr.join("firmware").exists() {
        return None;
    }
    let dfl = canonical(mgr).is_some_and(|p| p.to_string_lossy().contains("/dfl-fme."));
    Some(if dfl {
        "no `firmware` attribute (a DFL card's FPGA manager); use the opae backend".to_owned()
    } else {
        "no `firmware` attribute (a mainline kernel has no userspace loader); use exec".to_owned()
    })
}

impl FpgaManager {
    /// A backend configured by `config` (uses `sysfs_root`, `firmware_dir`, `proc_root`,
    /// `state_dir`).
    pub fn new(config: &DriverConfig) -> Self {
        FpgaManager {
            sysfs: config.sysfs_root.clone(),
            firmware: config.firmware_dir.clone(),
            proc: config.proc_root.clone(),
            state: config.state_dir.clone(),
        }
    }

    /// Every manager: its address (PCI address, else its class name), its PCI device dir
    /// when it has one, and its directory.
    fn managers(&self) -> Vec<(String, Option<PathBuf>, PathBuf)> {
        let mut out: Vec<(String, Option<PathBuf>, PathBuf)> = Vec::new();
        for mgr in list_prefix(&self.sysfs.join("class/fpga_manager"), "") {
            let pci = pci_device_dir(&mgr);
            let address = match &pci {
                Some(pci) => file_name(pci).to_ascii_lowercase(),
                None => file_name(&mgr),
            };
            if out.iter().all(|(a, _, _)| *a != address) {
                out.push((address, pci, mgr));
            }
        }
        out
    }

    /// The manager of a whole-device slot that can be programmed.
    fn manager(&self, slot: &Slot) -> Result<PathBuf, DriverError> {
        if slot.region.is_some() {
            return Err(DriverError::NotFound(slot.clone()));
        }
        let address = slot.address.to_ascii_lowercase();
        let mgr = self
            .managers()
            .into_iter()
            .find(|(a, _, _)| *a == address)
            .map(|(_, _, m)| m)
            .ok_or_else(|| DriverError::NotFound(slot.clone()))?;
        match cannot_program(&mgr) {
            Some(why) => Err(DriverError::Unsupported(format!("{slot}: {why}"))),
            None => Ok(mgr),
        }
    }

    fn ledger_path(&self, address: &str) -> PathBuf {
        self.state
            .join("fpga-manager")
            .join(format!("{}.json", address.to_ascii_lowercase()))
    }

    fn boot_id(&self) -> Option<String> {
        attr(&self.proc.join("sys/kernel/random/boot_id")).filter(|b| !b.is_empty())
    }

    fn state_of(mgr: &Path) -> String {
        attr(&mgr.join("state")).map_or_else(|| "unknown".into(), |s| normal_state(&s))
    }

    fn busy(mgr: &Path) -> Busy {
        let state = Self::state_of(mgr);
        if transitional(&state) {
            Busy::InUse(format!("the FPGA manager is loading (state `{state}`)"))
        } else {
            Busy::Free
        }
    }

    fn loaded(&self, address: &str, mgr: &Path) -> Loaded {
        let path = self.ledger_path(address);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Loaded::Unknown(
                "an FPGA manager cannot report what it carries, and fpga-sync has not loaded it"
                    .into(),
            );
        };
        let Ok(ledger) = serde_json::from_str::<Ledger>(&text) else {
            return Loaded::Unknown(format!("{} does not parse", path.display()));
        };
        if self.boot_id().as_deref() != Some(ledger.boot_id.as_str()) {
            return Loaded::Unknown("the host rebooted since fpga-sync loaded it".into());
        }
        let state = Self::state_of(mgr);
        if state != "operating" {
            return Loaded::Unknown(format!(
                "the FPGA manager is in state `{state}`, not `operating`"
            ));
        }
        Loaded::Recorded(ledger.id)
    }

    /// Copies `image` to `<firmware_dir>/fpga-sync/<sha256>.bin` atomically; returns the
    /// sha256.
    fn stage(&self, image: &Path) -> Result<String, DriverError> {
        let dir = self.firmware.join("fpga-sync");
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
        let mut src = std::fs::File::open(image).map_err(|e| io_error(image, &e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| io_error(&dir, &e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = src.read(&mut buf).map_err(|e| io_error(image, &e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .map_err(|e| io_error(tmp.path(), &e))?;
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| io_error(tmp.path(), &e))?;
        let sha: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let target = dir.join(format!("{sha}.bin"));
        tmp.persist(&target)
            .map_err(|e| io_error(&target, &e.error))?;
        Ok(sha)
    }
}

impl Driver for FpgaManager {
    fn backend(&self) -> Backend {
        Backend::FpgaManager
    }

    fn discover(&self) -> Result<Vec<DeviceInfo>, DriverError> {
        preflight::driver_class(
            "fpga-manager",
            &self.sysfs,
            &[("class/fpga_manager", "the Linux FPGA manager")],
        )?;
        preflight::directory(
            "fpga-manager",
            &self.firmware,
            "the firmware folder",
            preflight::FIRMWARE_DIR,
        )?;
        Ok(self
            .managers()
            .into_iter()
            .map(|(address, pci, mgr)| DeviceInfo {
                pci_id: pci.as_deref().and_then(pci_id),
                cannot_program: cannot_program(&mgr),
                backend: Backend::FpgaManager,
                description: attr(&mgr.join("name"))
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "FPGA manager".into()),
                loaded: self.loaded(&address, &mgr),
                busy: Self::busy(&mgr),
                regions: Vec::new(),
                address,
            })
            .collect())
    }

    fn program(&self, request: &ProgramRequest<'_>) -> Result<ProgramReport, DriverError> {
        let slot = request.slot;
        let mgr = self.manager(slot)?;
        if let Busy::InUse(holder) = Self::busy(&mgr)
            && !request.force
        {
            return Err(DriverError::Busy {
                slot: slot.clone(),
                holder,
            });
        }
        let flags = mgr.join("flags");
        if request.partial && !flags.exists() {
            return Err(DriverError::Unsupported(format!(
                "{slot}: the FPGA manager has no `flags` attribute, so a partial bitstream cannot be marked as one (FPGA_MGR_PARTIAL_RECONFIG); nothing was loaded"
            )));
        }
        let _guard = LOAD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let ledger = self.ledger_path(&slot.address);
        match std::fs::remove_file(&ledger) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error(&ledger, &e));
            }
            _ => {}
        }
        let sha = self.stage(request.image)?;
        let staged = self.firmware.join("fpga-sync").join(format!("{sha}.bin"));
        let identity = crate::host::discover::targets::identify_file(&staged, &sha)
            .map_err(|e| io_error(&staged, &e))?
            .map_err(|reason| DriverError::Parse {
                source: request.image.display().to_string(),
                reason,
            })?;
        let name = format!("fpga-sync/{sha}.bin");
        let mut command = Vec::new();
        if flags.exists() {
            // flags_store parses hex; bit 0 is FPGA_MGR_PARTIAL_RECONFIG.
            let value = if request.partial { "1" } else { "0" };
            write_attr(&flags, value)?;
            command.push(format!("echo {value} > {}", flags.display()));
        }
        write_attr(&mgr.join("firmware"), &name)?;
        command.push(format!("echo {name} > {}", mgr.join("firmware").display()));
        let state = Self::state_of(&mgr);
        let status = attr(&mgr.join("status")).unwrap_or_default();
        if state != "operating" || !status.is_empty() {
            return Err(DriverError::Io {
                path: mgr,
                error: format!(
                    "after loading {name} the FPGA manager is in state `{state}`{}, not \
                     `operating`",
                    if status.is_empty() {
                        String::new()
                    } else {
                        format!(" with status `{}`", status.replace('\n', "; "))
                    }
                ),
            });
        }
        if let Some(boot_id) = self.boot_id() {
            let record = Ledger {
                id: identity.id,
                boot_id,
            };
            let text = serde_json::to_string(&record).map_err(|e| DriverError::Parse {
                source: ledger.display().to_string(),
                reason: e.to_string(),
            })?;
            write_atomic(&ledger, text.as_bytes())?;
        }
        Ok(ProgramReport {
            command,
            output: format!("state `{state}`"),
        })
    }

    fn read_back(&self, slot: &Slot) -> Result<Loaded, DriverError> {
        let mgr = self.manager(slot)?;
        Ok(self.loaded(&slot.address, &mgr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_parsed_tolerantly() {
        assert_eq!(normal_state("write_err\n"), "write error");
        assert_eq!(
            normal_state("Firmware_Request_Err"),
            "firmware request error"
        );
        assert_eq!(normal_state("operating"), "operating");
        assert!(transitional(&normal_state("write_init")));
        assert!(!transitional(&normal_state("write error")));
    }
}
