//! The `xrt` backend: AMD/Xilinx Alveo cards under XRT's xocl driver, read from sysfs and
//! programmed with `xrt-smi program` (or `xbutil`, its name before XRT 2.18, when
//! `xrt-smi` does not exist). I/O: reads below `sysfs_root`, runs the tool, and for
//! `examine` writes its JSON report to a fresh temporary file it then reads and removes.
//!
//! A card is a user physical function `<sysfs>/bus/pci/devices/<bdf>` with an
//! `xclbinuuid` attribute. It has one region, `"0"`, which accepts every id of
//! `interface_uuids` (one per line: xocl loads an xclbin whose interface is any of the
//! shell's, `tests/fixtures/hw/SOURCES.md` §6.3), carries `xclbinuuid` (empty or zero =
//! nothing) and is busy while `kdsstat` counts open `contexts`. The whole device reports its first `logic_uuids` id
//! (the base/shell), which fpga-sync does not program (that is `xbmgmt` on the management
//! function followed by a cold reboot).

use std::path::{Path, PathBuf};

use super::DriverConfig;
use super::preflight;
use super::sysfs::{attr, file_name, is_pci_address, list_prefix, pci_id, read_attr};
use super::tool;
use crate::desired::host_group::Backend;
use crate::host::driver::{
    Busy, DeviceInfo, Driver, DriverError, Loaded, ProgramReport, ProgramRequest, RegionInfo, Slot,
    interface_fits,
};
use crate::host::id::Id128;

/// The region name of an XRT card's user partition.
pub const REGION: &str = "0";

/// The `xrt` backend.
pub struct Xrt {
    sysfs: PathBuf,
    xrt_smi: PathBuf,
    xbutil: PathBuf,
    timeout: std::time::Duration,
}

impl Xrt {
    /// A backend configured by `config` (uses `sysfs_root`, `xrt_smi`, `xbutil`,
    /// `timeout` for `examine`).
    pub fn new(config: &DriverConfig) -> Self {
        Xrt {
            sysfs: config.sysfs_root.clone(),
            xrt_smi: config.xrt_smi.clone(),
            xbutil: config.xbutil.clone(),
            timeout: config.timeout,
        }
    }

    fn cards(&self) -> Vec<PathBuf> {
        list_prefix(&self.sysfs.join("bus/pci/devices"), "")
            .into_iter()
            .filter(|d| is_pci_address(&file_name(d)) && d.join("xclbinuuid").exists())
            .collect()
    }

    fn card(&self, address: &str) -> Option<PathBuf> {
        let address = address.to_ascii_lowercase();
        list_prefix(&self.sysfs.join("bus/pci/devices"), "")
            .into_iter()
            .find(|d| file_name(d).to_ascii_lowercase() == address)
    }

    fn tool(&self) -> &Path {
        if self.xrt_smi.exists() {
            &self.xrt_smi
        } else {
            &self.xbutil
        }
    }

    fn info(&self, dir: &Path) -> DeviceInfo {
        let busy = contexts(dir);
        let loaded = first_id(attr(&dir.join("logic_uuids")).as_deref()).map_or(
            Loaded::Unknown("no logic_uuids attribute".into()),
            Loaded::Id,
        );
        DeviceInfo {
            address: file_name(dir).to_ascii_lowercase(),
            pci_id: pci_id(dir),
            backend: Backend::Xrt,
            description: attr(&dir.join("board_name"))
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "AMD/Xilinx XRT device".into()),
            loaded,
            busy: busy.clone(),
            regions: vec![RegionInfo {
                name: REGION.into(),
                accepts: accepts(dir),
                loaded: xclbin_loaded(attr(&dir.join("xclbinuuid")).as_deref().unwrap_or("")),
                busy,
            }],
            cannot_program: None,
        }
    }

    /// Reads the loaded xclbin through `examine`, from the JSON file it writes.
    fn examine(&self, address: &str) -> Result<Loaded, DriverError> {
        let dir = tempfile::tempdir().map_err(|e| DriverError::Io {
            path: std::env::temp_dir(),
            error: e.to_string(),
        })?;
        let out = dir.path().join("examine.json");
        let argv: Vec<String> = vec![
            self.tool().display().to_string(),
            "examine".into(),
            "--device".into(),
            address.into(),
            "--report".into(),
            "dynamic-regions".into(),
            "--format".into(),
            "JSON".into(),
            "--output".into(),
            out.display().to_string(),
        ];
        tool::run(&argv, self.timeout)?;
        let text = std::fs::read_to_string(&out).map_err(|e| super::sysfs::io_error(&out, &e))?;
        parse_examine(&text, address).map_err(|reason| DriverError::Parse {
            source: argv.join(" "),
            reason,
        })
    }
}

/// The first id of an `interface_uuids`/`logic_uuids` attribute.
fn first_id(text: Option<&str>) -> Option<Id128> {
    text?
        .split_whitespace()
        .find_map(|t| t.parse::<Id128>().ok())
}

/// Every id of `interface_uuids`: xocl lists each `interface_uuid` of the shell's device
/// tree on its own line, and loads an xclbin built for any of them.
fn accepts(dir: &Path) -> Vec<Id128> {
    let mut out: Vec<Id128> = Vec::new();
    for id in attr(&dir.join("interface_uuids"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|t| t.parse::<Id128>().ok())
    {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// `xclbinuuid`: one line per slot, a uuid or `<slot> <uuid>`; the first line counts.
fn xclbin_loaded(text: &str) -> Loaded {
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Loaded::Empty;
    };
    let token = line.split_whitespace().last().unwrap_or("");
    match token.parse::<Id128>() {
        Ok(id) if id.is_zero() => Loaded::Empty,
        Ok(id) => Loaded::Id(id),
        Err(e) => Loaded::Unknown(format!("xclbinuuid: {e}")),
    }
}

/// `kdsstat`'s `contexts:` count.
fn contexts(dir: &Path) -> Busy {
    let Some(text) = attr(&dir.join("kdsstat")) else {
        return Busy::Unknown("no kdsstat attribute".into());
    };
    let count = text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("contexts:")?;
        rest.trim().parse::<u32>().ok()
    });
    match count {
        Some(0) | None => Busy::Free,
        Some(n) => Busy::InUse(format!("{n} open contexts")),
    }
}

/// `devices[].dynamic_regions[].xclbin_uuid` of the device `address` (or the only device).
fn parse_examine(text: &str, address: &str) -> Result<Loaded, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("examine JSON: {e}"))?;
    let devices = json["devices"]
        .as_array()
        .ok_or("examine JSON has no `devices` list")?;
    let device = devices
        .iter()
        .find(|d| {
            d["device_id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(address))
        })
        .or_else(|| (devices.len() == 1).then(|| &devices[0]))
        .ok_or_else(|| format!("examine JSON does not list {address}"))?;
    let uuid = device["dynamic_regions"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r["xclbin_uuid"].as_str())
        .unwrap_or("");
    Ok(xclbin_loaded(uuid))
}

impl Driver for Xrt {
    fn backend(&self) -> Backend {
        Backend::Xrt
    }

    fn discover(&self) -> Result<Vec<DeviceInfo>, DriverError> {
        preflight::driver_class("xrt", &self.sysfs, &[("bus/pci/devices", "PCI")])?;
        preflight::any_tool(
            "xrt",
            &[
                (&self.xrt_smi, "xrt-smi", preflight::XRT_SMI),
                (&self.xbutil, "xbutil", preflight::XBUTIL),
            ],
        )?;
        Ok(self.cards().iter().map(|d| self.info(d)).collect())
    }

    fn program(&self, request: &ProgramRequest<'_>) -> Result<ProgramReport, DriverError> {
        let slot = request.slot;
        let dir = self
            .card(&slot.address)
            .ok_or_else(|| DriverError::NotFound(slot.clone()))?;
        match slot.region.as_deref() {
            None => {
                return Err(DriverError::Unsupported(format!(
                    "{slot}: an XRT shell is flashed with xbmgmt on the management function and \
                     loaded by a cold reboot; fpga-sync only checks it"
                )));
            }
            Some(REGION) => {}
            Some(_) => return Err(DriverError::NotFound(slot.clone())),
        }
        let accepts = accepts(&dir);
        if let Some(requires) = request.requires
            && !interface_fits(Some(requires), &accepts)
        {
            return Err(DriverError::Incompatible {
                slot: slot.clone(),
                requires,
                accepts,
            });
        }
        if let Busy::InUse(holder) = contexts(&dir) {
            // xocl refuses to replace an xclbin with open contexts (EBUSY) and xrt-smi has
            // no switch to override it, so force cannot help.
            let holder = if request.force {
                format!("{holder}; xocl refuses to replace an xclbin in use even when forced")
            } else {
                holder
            };
            return Err(DriverError::Busy {
                slot: slot.clone(),
                holder,
            });
        }
        let argv = vec![
            self.tool().display().to_string(),
            "program".into(),
            "--device".into(),
            file_name(&dir).to_ascii_lowercase(),
            "--user".into(),
            request.image.display().to_string(),
        ];
        let out = tool::run(&argv, request.timeout)?;
        Ok(ProgramReport {
            command: argv,
            output: out.combined(),
        })
    }

    fn read_back(&self, slot: &Slot) -> Result<Loaded, DriverError> {
        let dir = self
            .card(&slot.address)
            .ok_or_else(|| DriverError::NotFound(slot.clone()))?;
        match slot.region.as_deref() {
            None => Ok(self.info(&dir).loaded),
            Some(REGION) => match read_attr(&dir.join("xclbinuuid"))? {
                Some(text) => Ok(xclbin_loaded(&text)),
                None => self.examine(&file_name(&dir).to_ascii_lowercase()),
            },
            Some(_) => Err(DriverError::NotFound(slot.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xclbinuuid_lines_are_read() {
        let id = "951d9a99-0000-4000-8000-000000000001";
        assert_eq!(
            xclbin_loaded(&format!("0 {id}\n")),
            Loaded::Id(id.parse().unwrap())
        );
        assert_eq!(xclbin_loaded(id), Loaded::Id(id.parse().unwrap()));
        assert_eq!(xclbin_loaded(""), Loaded::Empty);
        assert_eq!(
            xclbin_loaded("00000000-0000-0000-0000-000000000000"),
            Loaded::Empty
        );
    }

    #[test]
    fn examine_json_gives_the_dynamic_region() {
        let text = r#"{"devices":[{"device_id":"0000:b3:00.1","dynamic_regions":[
            {"id":"0","xclbin_uuid":"951D9A99-0000-4000-8000-000000000001"}]}]}"#;
        assert_eq!(
            parse_examine(text, "0000:B3:00.1").unwrap(),
            Loaded::Id("951d9a99000040008000000000000001".parse().unwrap())
        );
        assert!(parse_examine("{}", "0000:b3:00.1").is_err());
    }
}
