//! The `fpga-manager` backend: the Linux FPGA manager class with the writable `firmware`
//! and `flags` attributes of vendor kernels (linux-xlnx, Ubuntu/Kria). I/O: reads below
//! `sysfs_root` and `proc_root`, writes the manager's `flags` and `firmware`, copies images
//! into `<firmware_dir>/fpga-sync/`, and keeps a ledger below `<state_dir>/fpga-manager/`.
//!
//! Devices are `<sysfs>/class/fpga_manager/*` that have a `firmware` attribute (mainline
//! managers, DFL's among them, cannot be driven from userspace) and a PCI device above
//! them: the desired-state format addresses devices by PCI address, so SoC managers
//! without one are skipped. Only the whole device is offered (a full image, `flags` 0);
//! partial reconfiguration through a manager is not supported. An image's `requires` is
//! not checked: a manager reports no interface id, and a full image replaces everything.
//!
//! Programming copies the image atomically to `<firmware_dir>/fpga-sync/<sha256>.bin`,
//! writes `flags`, writes `fpga-sync/<sha256>.bin` to `firmware` (the kernel loads
//! synchronously, so a failed write is a failed load), then requires `state` to be
//! `operating` and `status` empty. Loads are serialised process-wide. A manager cannot say
//! what it carries, so after a successful load the image's id and the boot id are written
//! to the ledger `<state_dir>/fpga-manager/<address>.json`; `read_back` trusts it only in
//! the same boot and while the manager is `operating`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::DriverConfig;
use super::preflight;
use super::sysfs::{
    attr, file_name, io_error, list_prefix, pci_device_dir, pci_id, write_atomic, write_attr,
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

    /// `(address, pci device dir, manager dir)` of every drivable manager.
    fn managers(&self) -> Vec<(String, PathBuf, PathBuf)> {
        let mut out: Vec<(String, PathBuf, PathBuf)> = Vec::new();
        for mgr in list_prefix(&self.sysfs.join("class/fpga_manager"), "") {
            if !mgr.join("firmware").exists() {
                continue;
            }
            let Some(pci) = pci_device_dir(&mgr) else {
                continue;
            };
            let address = file_name(&pci).to_ascii_lowercase();
            if out.iter().all(|(a, _, _)| *a != address) {
                out.push((address, pci, mgr));
            }
        }
        out
    }

    fn manager(&self, slot: &Slot) -> Result<PathBuf, DriverError> {
        if slot.region.is_some() {
            return Err(DriverError::NotFound(slot.clone()));
        }
        let address = slot.address.to_ascii_lowercase();
        self.managers()
            .into_iter()
            .find(|(a, _, _)| *a == address)
            .map(|(_, _, m)| m)
            .ok_or_else(|| DriverError::NotFound(slot.clone()))
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
        Loaded::Id(ledger.id)
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
                pci_id: pci_id(&pci),
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
        write_attr(&mgr.join("flags"), "0")?;
        write_attr(&mgr.join("firmware"), &name)?;
        let state = Self::state_of(&mgr);
        let status = attr(&mgr.join("status")).unwrap_or_default();
        let command = vec![
            format!("echo 0 > {}", mgr.join("flags").display()),
            format!("echo {name} > {}", mgr.join("firmware").display()),
        ];
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
