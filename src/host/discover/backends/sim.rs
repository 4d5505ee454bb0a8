//! The `sim` backend: a simulated host whose devices are plain files below `sim_root`,
//! for the demo, the end-to-end tests and the benchmarks, with fault injection. Plus the
//! helpers that lay such a tree out. I/O: reads and writes only below `sim_root`, and
//! reads the image files it programs.
//!
//! Layout (others write against it; keep it stable):
//!
//! ```text
//! <sim_root>/devices/<address>/vendor        "0x8086"
//! <sim_root>/devices/<address>/device        "0x09c4"
//! <sim_root>/devices/<address>/description   free text (optional)
//! <sim_root>/devices/<address>/bitstream_id  what the whole device carries: 32 hex, empty = Empty
//! <sim_root>/devices/<address>/busy          "1" = in use (absent/"0" = free)
//! <sim_root>/devices/<address>/regions/<name>/compat_id  interface id the region accepts
//! <sim_root>/devices/<address>/regions/<name>/afu_id     what it carries; empty/zeros = Empty
//! <sim_root>/devices/<address>/regions/<name>/busy       "1" = in use
//! <sim_root>/faults/<address>[@<region>]/<fault>  file present = fault active
//! <sim_root>/calls.jsonl   one JSON line per program call
//! ```
//!
//! Faults: `program_fails`, `readback_differs`, `busy`, `vanished`, `slow`. A fault set on
//! `<address>` applies to the device and all its regions; one on `<address>@<region>`
//! only to that region. An empty `program_fails` or `readback_differs` file applies to
//! every image; one that lists ids (32 hex digits, whitespace-separated) only to images
//! with one of those ids (a bad build, not a bad card). `slow` and `program_delay_ms`
//! (its content a number) hold milliseconds that each program call takes before it changes
//! anything, as real tools take seconds to minutes (the fleet tests watch drained slots,
//! the crash-loop tests kill the agent inside that window).
//!
//! Programming: vanished → `NotFound`; a region whose `compat_id` differs from the
//! image's `requires` → `Incompatible` (forced or not); busy and not forced → `Busy`;
//! `program_fails` → `ToolFailed` (code 1); else the image is identified
//! ([`crate::host::discover::targets::identify_file`]) and its id written atomically to `afu_id` (region) or
//! `bitstream_id` (device) — with `readback_differs`, that id with its lowest bit flipped.
//! Every call, refused ones included, is appended to `calls.jsonl` as
//! `{"slot", "image", "force", "result": "ok" | "<error text>"}`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::DriverConfig;
use super::preflight;
use super::sysfs::{attr, file_name, io_error, write_atomic};
use crate::desired::host_group::Backend;
use crate::host::driver::{
    Busy, DeviceInfo, Driver, DriverError, Loaded, ProgramReport, ProgramRequest, RegionInfo, Slot,
    interface_fits,
};
use crate::host::id::Id128;

/// The `sim` backend.
pub struct Sim {
    root: PathBuf,
}

/// A fault to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Programming fails (`ToolFailed`, code 1).
    ProgramFails,
    /// Programming "succeeds" but the slot then carries a different id.
    ReadbackDiffers,
    /// The slot is in use.
    Busy,
    /// The device or region disappears (discover omits it; programming says `NotFound`).
    Vanished,
    /// Programming takes the milliseconds the file holds.
    Slow,
}

impl Fault {
    /// Its file name below `faults/<slot>/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Fault::ProgramFails => "program_fails",
            Fault::ReadbackDiffers => "readback_differs",
            Fault::Busy => "busy",
            Fault::Vanished => "vanished",
            Fault::Slow => "slow",
        }
    }
}

/// One line of `calls.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCall {
    /// The slot, as [`Slot`] displays it (`0000:5e:00.0` or `0000:5e:00.0 region 0`).
    pub slot: String,
    /// The image path.
    pub image: String,
    /// Whether it was forced.
    pub force: bool,
    /// `ok` or the error text.
    pub result: String,
}

// Appends to calls.jsonl from several threads must not interleave.
static CALLS_LOCK: Mutex<()> = Mutex::new(());

impl Sim {
    /// A backend configured by `config` (uses `sim_root`).
    pub fn new(config: &DriverConfig) -> Self {
        Sim {
            root: config.sim_root.clone(),
        }
    }

    fn device_dir(&self, address: &str) -> PathBuf {
        device_dir(&self.root, address)
    }

    fn fault(&self, slot: &Slot, fault: Fault) -> bool {
        fault_active(&self.root, slot, fault)
    }

    fn region_info(&self, address: &str, dir: &Path) -> Result<RegionInfo, DriverError> {
        let name = file_name(dir);
        let slot = Slot::region(address, &name);
        Ok(RegionInfo {
            accepts: read_id(&dir.join("compat_id"))?.into_iter().collect(),
            loaded: loaded(read_id(&dir.join("afu_id"))?),
            busy: self.busy(&slot, dir),
            name,
        })
    }

    fn busy(&self, slot: &Slot, dir: &Path) -> Busy {
        if self.fault(slot, Fault::Busy) {
            Busy::InUse("simulated busy fault".into())
        } else if attr(&dir.join("busy")).is_some_and(|b| b == "1") {
            Busy::InUse("simulated: in use".into())
        } else {
            Busy::Free
        }
    }

    fn device_info(&self, dir: &Path) -> Result<DeviceInfo, DriverError> {
        let address = file_name(dir);
        let slot = Slot::device(&address);
        let strip = |s: String| {
            let s = s.to_ascii_lowercase();
            s.strip_prefix("0x").map(str::to_owned).unwrap_or(s)
        };
        let pci_id = match (attr(&dir.join("vendor")), attr(&dir.join("device"))) {
            (Some(v), Some(d)) => Some(format!("{}:{}", strip(v), strip(d))),
            _ => None,
        };
        let mut regions = Vec::new();
        for r in super::sysfs::list_prefix(&dir.join("regions"), "") {
            let rslot = Slot::region(&address, &file_name(&r));
            if !r.is_dir() || self.fault(&rslot, Fault::Vanished) {
                continue;
            }
            regions.push(self.region_info(&address, &r)?);
        }
        Ok(DeviceInfo {
            pci_id,
            backend: Backend::Sim,
            description: attr(&dir.join("description"))
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "simulated FPGA".into()),
            loaded: loaded(read_id(&dir.join("bitstream_id"))?),
            busy: self.busy(&slot, dir),
            regions,
            cannot_program: None,
            address,
        })
    }

    /// The directory of `slot`, or `NotFound`.
    fn slot_dir(&self, slot: &Slot) -> Result<PathBuf, DriverError> {
        let dev = self.device_dir(&slot.address);
        let dir = match &slot.region {
            None => dev.clone(),
            Some(r) => dev.join("regions").join(r),
        };
        if !dev.is_dir() || !dir.is_dir() || self.fault(slot, Fault::Vanished) {
            return Err(DriverError::NotFound(slot.clone()));
        }
        Ok(dir)
    }

    fn try_program(&self, req: &ProgramRequest<'_>) -> Result<ProgramReport, DriverError> {
        let slot = req.slot;
        let dir = self.slot_dir(slot)?;
        if slot.region.is_some() {
            let accepts: Vec<Id128> = read_id(&dir.join("compat_id"))?.into_iter().collect();
            if let Some(requires) = req.requires
                && !interface_fits(Some(requires), &accepts)
            {
                return Err(DriverError::Incompatible {
                    slot: slot.clone(),
                    requires,
                    accepts,
                });
            }
        }
        if let Busy::InUse(holder) = self.busy(slot, &dir)
            && !req.force
        {
            return Err(DriverError::Busy {
                slot: slot.clone(),
                holder,
            });
        }
        let command = vec![
            "sim-program".to_owned(),
            slot.to_string(),
            req.image.display().to_string(),
        ];
        if let Some(ms) = fault_content(&self.root, slot, Fault::Slow)
            .and_then(|ms| ms.trim().parse::<u64>().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let sha = crate::source::sha256_of(req.image).map_err(|e| io_error(req.image, &e))?;
        let identity = crate::host::discover::targets::identify_file(req.image, &sha)
            .map_err(|e| io_error(req.image, &e))?
            .map_err(|reason| DriverError::Parse {
                source: req.image.display().to_string(),
                reason,
            })?;
        if fault_applies(&self.root, slot, Fault::ProgramFails, identity.id) {
            return Err(DriverError::ToolFailed {
                command,
                code: Some(1),
                output: "simulated programming failure".into(),
            });
        }
        let mut id = identity.id;
        if fault_applies(&self.root, slot, Fault::ReadbackDiffers, identity.id) {
            id = Id128(id.0 ^ 1);
        }
        let target = dir.join(if slot.region.is_some() {
            "afu_id"
        } else {
            "bitstream_id"
        });
        write_atomic(&target, format!("{id}\n").as_bytes())?;
        Ok(ProgramReport {
            command,
            output: format!("simulated: {slot} now carries {id}"),
        })
    }
}

impl Driver for Sim {
    fn backend(&self) -> Backend {
        Backend::Sim
    }

    fn discover(&self) -> Result<Vec<DeviceInfo>, DriverError> {
        preflight::directory(
            "sim",
            &self.root.join("devices"),
            "the simulated host's device folder",
            preflight::SIM_ROOT,
        )?;
        let mut out = Vec::new();
        for dir in super::sysfs::list_prefix(&self.root.join("devices"), "") {
            let address = file_name(&dir);
            if !dir.is_dir() || self.fault(&Slot::device(&address), Fault::Vanished) {
                continue;
            }
            out.push(self.device_info(&dir)?);
        }
        Ok(out)
    }

    fn program(&self, request: &ProgramRequest<'_>) -> Result<ProgramReport, DriverError> {
        if let Some(ms) = fault_dirs(&self.root, request.slot)
            .iter()
            .find_map(|d| std::fs::read_to_string(d.join(DELAY_FILE)).ok())
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let result = self.try_program(request);
        let call = SimCall {
            slot: request.slot.to_string(),
            image: request.image.display().to_string(),
            force: request.force,
            result: match &result {
                Ok(_) => "ok".into(),
                Err(e) => e.to_string(),
            },
        };
        append_call(&self.root, &call)?;
        result
    }

    fn read_back(&self, slot: &Slot) -> Result<Loaded, DriverError> {
        let dir = self.slot_dir(slot)?;
        let name = if slot.region.is_some() {
            "afu_id"
        } else {
            "bitstream_id"
        };
        Ok(loaded(read_id(&dir.join(name))?))
    }
}

fn loaded(id: Option<Id128>) -> Loaded {
    match id {
        Some(id) if !id.is_zero() => Loaded::Id(id),
        _ => Loaded::Empty,
    }
}

fn read_id(path: &Path) -> Result<Option<Id128>, DriverError> {
    super::sysfs::read_id(path)
}

fn device_dir(root: &Path, address: &str) -> PathBuf {
    root.join("devices").join(address.to_ascii_lowercase())
}

fn fault_dirs(root: &Path, slot: &Slot) -> Vec<PathBuf> {
    let faults = root.join("faults");
    let address = slot.address.to_ascii_lowercase();
    let mut dirs = vec![faults.join(&address)];
    if let Some(r) = &slot.region {
        dirs.push(faults.join(format!("{address}@{r}")));
    }
    dirs
}

/// The file whose content delays each program call, in milliseconds.
const DELAY_FILE: &str = "program_delay_ms";

/// Makes each program call of `slot` take `ms` milliseconds before it changes anything
/// (`None`: no delay).
pub fn set_program_delay(root: &Path, slot: &Slot, ms: Option<u64>) -> std::io::Result<()> {
    let dir = fault_dirs(root, slot)
        .pop()
        .unwrap_or_else(|| root.join("faults"));
    match ms {
        Some(ms) => {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(DELAY_FILE), ms.to_string())
        }
        None => match std::fs::remove_file(dir.join(DELAY_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

fn fault_active(root: &Path, slot: &Slot, fault: Fault) -> bool {
    fault_dirs(root, slot)
        .iter()
        .any(|d| d.join(fault.file_name()).exists())
}

/// What the first fault file of `slot` for `fault` holds, when there is one.
fn fault_content(root: &Path, slot: &Slot, fault: Fault) -> Option<String> {
    fault_dirs(root, slot)
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join(fault.file_name())).ok())
}

/// Whether `fault` is set for `slot` and applies to an image with `id`: an empty file
/// applies to every image, one that lists ids to those.
fn fault_applies(root: &Path, slot: &Slot, fault: Fault, id: Id128) -> bool {
    fault_content(root, slot, fault).is_some_and(|text| {
        let ids: Vec<Id128> = text
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        ids.is_empty() || ids.contains(&id)
    })
}

fn append_call(root: &Path, call: &SimCall) -> Result<(), DriverError> {
    let path = root.join("calls.jsonl");
    let mut line = serde_json::to_string(call).map_err(|e| DriverError::Parse {
        source: "calls.jsonl".into(),
        reason: e.to_string(),
    })?;
    line.push('\n');
    let _guard = CALLS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| io_error(&path, &e))
}

fn id_text(id: Option<Id128>) -> String {
    id.map(|i| format!("{i}\n")).unwrap_or_default()
}

/// Adds (or replaces the attributes of) a simulated device. `pci_id` is `vendor:device`
/// (`"8086:09c4"`); `loaded` is what the whole device carries.
pub fn add_device(
    root: &Path,
    address: &str,
    pci_id: &str,
    description: &str,
    loaded: Option<Id128>,
) -> std::io::Result<()> {
    let dir = device_dir(root, address);
    std::fs::create_dir_all(dir.join("regions"))?;
    let (vendor, device) = pci_id.split_once(':').unwrap_or((pci_id, ""));
    std::fs::write(dir.join("vendor"), format!("0x{vendor}\n"))?;
    std::fs::write(dir.join("device"), format!("0x{device}\n"))?;
    std::fs::write(dir.join("description"), format!("{description}\n"))?;
    std::fs::write(dir.join("bitstream_id"), id_text(loaded))?;
    std::fs::write(dir.join("busy"), "0\n")
}

/// Adds (or replaces) region `region` of the simulated device at `address`.
pub fn add_region(
    root: &Path,
    address: &str,
    region: &str,
    accepts: Option<Id128>,
    loaded: Option<Id128>,
) -> std::io::Result<()> {
    let dir = device_dir(root, address).join("regions").join(region);
    std::fs::create_dir_all(&dir)?;
    match accepts {
        Some(a) => std::fs::write(dir.join("compat_id"), format!("{a}\n"))?,
        None => match std::fs::remove_file(dir.join("compat_id")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        },
    }
    std::fs::write(dir.join("afu_id"), id_text(loaded))?;
    std::fs::write(dir.join("busy"), "0\n")
}

/// Turns `fault` on or off for `slot`.
pub fn set_fault(root: &Path, slot: &Slot, fault: Fault, on: bool) -> std::io::Result<()> {
    let dir = fault_dirs(root, slot)
        .pop()
        .unwrap_or_else(|| root.join("faults"));
    let file = dir.join(fault.file_name());
    if on {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(file, "")
    } else {
        match std::fs::remove_file(file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Sets `fault` for `slot` with `content`: the ids of the images it applies to (for
/// `program_fails` and `readback_differs`), or the milliseconds of `slow`.
pub fn set_fault_content(
    root: &Path,
    slot: &Slot,
    fault: Fault,
    content: &str,
) -> std::io::Result<()> {
    let dir = fault_dirs(root, slot)
        .pop()
        .unwrap_or_else(|| root.join("faults"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(fault.file_name()), content)
}

/// Marks `slot` in use (or free) through its `busy` file.
pub fn set_busy(root: &Path, slot: &Slot, busy: bool) -> std::io::Result<()> {
    let mut dir = device_dir(root, &slot.address);
    if let Some(r) = &slot.region {
        dir = dir.join("regions").join(r);
    }
    std::fs::write(dir.join("busy"), if busy { "1\n" } else { "0\n" })
}

/// A power cycle: every region loses its partial bitstream (`afu_id` emptied); what the
/// devices load from flash (`bitstream_id`) stays.
pub fn power_cycle(root: &Path) -> std::io::Result<()> {
    let Ok(devices) = std::fs::read_dir(root.join("devices")) else {
        return Ok(());
    };
    for dev in devices {
        let Ok(regions) = std::fs::read_dir(dev?.path().join("regions")) else {
            continue;
        };
        for region in regions {
            let afu = region?.path().join("afu_id");
            if afu.exists() {
                std::fs::write(afu, "")?;
            }
        }
    }
    Ok(())
}

/// Every program call recorded so far, oldest first (lines that do not parse are
/// skipped; none when the log does not exist).
pub fn calls(root: &Path) -> Vec<SimCall> {
    std::fs::read_to_string(root.join("calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
