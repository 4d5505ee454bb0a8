//! The one small interface every FPGA driver backend implements (discover devices and
//! regions; read what a slot carries, what interface it accepts and whether it is busy;
//! program a slot from a local file; read back), and the plain data it returns. Backends
//! are mechanism only: the host planner decides what to program and when. They still
//! refuse an image whose interface id the region does not accept, forced or not, as a
//! second line of defence. Pure: types only; the I/O lives in `backends/`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::desired::host_group::Backend;
use crate::host::id::Id128;

/// A device (`region: None`, where a shell or full bitstream goes) or one reconfigurable
/// region of it.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Slot {
    /// The device: its PCI address `dddd:bb:dd.f` (lower case), or, for an FPGA manager
    /// with no PCI device (a SoC's), the manager's class name, e.g. `fpga0`
    /// ([`Slot::is_pci`] tells which).
    pub address: String,
    /// The region (port) name, e.g. `"0"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl Slot {
    /// The whole device at `address`.
    pub fn device(address: &str) -> Self {
        Slot {
            address: address.to_ascii_lowercase(),
            region: None,
        }
    }

    /// Region `region` of the device at `address`.
    pub fn region(address: &str, region: &str) -> Self {
        Slot {
            address: address.to_ascii_lowercase(),
            region: Some(region.to_owned()),
        }
    }

    /// Whether the device is addressed by PCI address (else by an FPGA manager's name).
    pub fn is_pci(&self) -> bool {
        is_pci_address(&self.address)
    }
}

/// Whether `text` is a PCI address `dddd:bb:dd.f` (hex, any case).
pub fn is_pci_address(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && text
            .char_indices()
            .all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_hexdigit())
}

/// Whether `text` names an FPGA manager class device, `fpga<N>` (`fpga_mgr_register`
/// names them `fpga%d`).
pub fn is_manager_name(text: &str) -> bool {
    text.strip_prefix("fpga")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.region {
            Some(r) => write!(f, "{} region {r}", self.address),
            None => f.write_str(&self.address),
        }
    }
}

/// What a slot carries, as the hardware reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "lowercase")]
pub enum Loaded {
    /// Nothing (an all-zero or empty id).
    Empty,
    /// This id: the accelerator id (`afu_id`), xclbin uuid, or the identity of a full image.
    Id(Id128),
    /// This id as fpga-sync's ledger recorded it when it loaded the device, in this boot
    /// and with the device still operating: the device itself cannot report what it
    /// carries (an FPGA manager has no read-back of the loaded image).
    Recorded(Id128),
    /// The driver cannot tell, and why (e.g. an fpga-manager after a reboot).
    Unknown(String),
}

impl Loaded {
    /// The id it carries, read from the card or recorded by the ledger.
    pub fn id(&self) -> Option<Id128> {
        match self {
            Loaded::Id(id) | Loaded::Recorded(id) => Some(*id),
            Loaded::Empty | Loaded::Unknown(_) => None,
        }
    }
}

impl fmt::Display for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loaded::Empty => f.write_str("nothing"),
            Loaded::Id(id) => write!(f, "{id}"),
            Loaded::Recorded(id) => write!(
                f,
                "{id} (from fpga-sync's ledger: the device cannot report what it carries)"
            ),
            Loaded::Unknown(why) => write!(f, "unknown ({why})"),
        }
    }
}

/// Whether something uses a slot right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "lowercase")]
pub enum Busy {
    /// Nothing holds it.
    Free,
    /// In use, and by what (e.g. `2 open contexts`, `SR-IOV: 4 VFs enabled`).
    InUse(String),
    /// The driver cannot tell, and why.
    Unknown(String),
    /// An SR-IOV port released from the physical function to a virtual function (DFL
    /// `DFL_FPGA_FME_PORT_RELEASE`): it belongs to whoever holds the VF — a VM when the VF
    /// is bound to `vfio-pci`. Only the PF's FME reprograms a port, so it is never
    /// programmed from the host, forced or not, until it is assigned back to the PF.
    Released {
        /// The VF's PCI address; `None` when no VF holds the released port.
        vf: Option<String>,
        /// The driver the VF is bound to (`vfio-pci`, `dfl-pci`), if any.
        driver: Option<String>,
    },
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Busy::Free => f.write_str("free"),
            Busy::InUse(who) => write!(f, "in use ({who})"),
            Busy::Unknown(why) => write!(f, "busy unknown ({why})"),
            Busy::Released { vf: None, .. } => {
                f.write_str("released from the PF to SR-IOV, and no VF holds it")
            }
            Busy::Released {
                vf: Some(vf),
                driver,
            } => match driver.as_deref() {
                Some("vfio-pci") => {
                    write!(f, "assigned to VF {vf} (bound to vfio-pci: passed to a VM)")
                }
                Some(d) => write!(f, "assigned to VF {vf} (bound to {d} on the host)"),
                None => write!(f, "assigned to VF {vf} (no driver bound)"),
            },
        }
    }
}

/// One reconfigurable region of a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionInfo {
    /// Its name, e.g. `"0"` for DFL port 0 or the XRT user region.
    pub name: String,
    /// The interface ids the region accepts, in the order the driver lists them: an image
    /// built for any of them loads. DFL `compat_id` (one), XRT `interface_uuids` (one per
    /// line; a 2RP shell lists two). Empty: the driver does not say.
    pub accepts: Vec<Id128>,
    /// What it carries.
    pub loaded: Loaded,
    /// Whether it is in use.
    pub busy: Busy,
}

/// One FPGA device as a backend sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// PCI address, `dddd:bb:dd.f`, lower case; for an FPGA manager with no PCI device, the
    /// manager's class name (`fpga0`), as in [`Slot::address`].
    pub address: String,
    /// PCI `vendor:device` id, lower-case hex without `0x`, e.g. `8086:09c4`.
    pub pci_id: Option<String>,
    /// The backend that sees it.
    pub backend: Backend,
    /// What it is, for people: e.g. `DFL FME FPGA Manager`, the XRT platform name.
    pub description: String,
    /// What the whole device reports carrying (a full image, or the shell's id), when the
    /// backend can read one.
    pub loaded: Loaded,
    /// Whether the whole device is in use.
    pub busy: Busy,
    /// Its reconfigurable regions.
    pub regions: Vec<RegionInfo>,
    /// Why the backend cannot program this device at all, when it cannot (e.g. an FPGA
    /// manager of a mainline kernel, which has no `firmware` attribute to load through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cannot_program: Option<String>,
}

impl DeviceInfo {
    /// The region named `name`.
    pub fn region(&self, name: &str) -> Option<&RegionInfo> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// What `slot` (of this device) carries, accepts and whether it is busy.
    pub fn slot_state(&self, slot: &Slot) -> Option<(Loaded, Vec<Id128>, Busy)> {
        match &slot.region {
            None => Some((self.loaded.clone(), Vec::new(), self.busy.clone())),
            Some(r) => self
                .region(r)
                .map(|r| (r.loaded.clone(), r.accepts.clone(), r.busy.clone())),
        }
    }
}

/// A request to program a slot.
#[derive(Clone, Debug)]
pub struct ProgramRequest<'a> {
    /// What to program.
    pub slot: &'a Slot,
    /// The verified, read-only image in the local cache.
    pub image: &'a Path,
    /// The id the slot reports once the image is loaded.
    pub expected: Id128,
    /// The interface id the image needs, for partial images.
    pub requires: Option<Id128>,
    /// Whether it is a partial bitstream (one built for a shell, with a `shell_id`): the
    /// fpga-manager backend loads it with `flags` 1 (`FPGA_MGR_PARTIAL_RECONFIG`), a full
    /// image with `flags` 0.
    pub partial: bool,
    /// Program although the backend sees the slot in use (never skips the interface check).
    pub force: bool,
    /// How long the tool may take before it is killed.
    pub timeout: Duration,
}

/// A set of accepted interface ids for people: `a`, `any of a, b`, or `-` when empty.
pub fn interfaces_text(accepts: &[Id128]) -> String {
    let list: Vec<String> = accepts.iter().map(Id128::to_string).collect();
    match list.as_slice() {
        [] => "-".to_owned(),
        [one] => one.clone(),
        _ => format!("any of {}", list.join(", ")),
    }
}

/// Whether an image that needs `requires` may load into a region that accepts
/// `accepts`: it needs nothing, or one of them (the check every backend repeats before it
/// runs a tool; a region that does not say accepts nothing that needs an interface).
pub fn interface_fits(requires: Option<Id128>, accepts: &[Id128]) -> bool {
    requires.is_none_or(|r| accepts.contains(&r))
}

/// What a program call did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramReport {
    /// The command that ran (argv), or a description of the sysfs writes.
    pub command: Vec<String>,
    /// Its output, trimmed.
    pub output: String,
}

/// Why a driver call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriverError {
    /// No such device or region.
    NotFound(Slot),
    /// The image needs an interface the region does not accept.
    Incompatible {
        /// The slot.
        slot: Slot,
        /// What the image needs.
        requires: Id128,
        /// What the region accepts (empty: it does not say).
        accepts: Vec<Id128>,
    },
    /// The slot is in use.
    Busy {
        /// The slot.
        slot: Slot,
        /// By what.
        holder: String,
    },
    /// A tool exited non-zero.
    ToolFailed {
        /// Its argv.
        command: Vec<String>,
        /// Its exit code (None: killed by a signal).
        code: Option<i32>,
        /// What it said (stderr, else stdout), trimmed.
        output: String,
    },
    /// A tool ran past its timeout and was killed.
    Timeout {
        /// Its argv.
        command: Vec<String>,
        /// The timeout.
        after: Duration,
    },
    /// The backend cannot do this (e.g. flash a DFL FIM, which needs a power cycle).
    Unsupported(String),
    /// The backend cannot run on this host: a root or tool it needs is missing, not
    /// executable or not readable. A configuration problem, never "no devices".
    Unavailable {
        /// The backend, e.g. `xrt`.
        backend: String,
        /// The path at fault.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// How to fix it (the flag or setting).
        fix: String,
    },
    /// A file or attribute could not be read or written.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        error: String,
    },
    /// Output or an attribute that does not parse.
    Parse {
        /// Where it came from (a path, or a command).
        source: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::NotFound(slot) => {
                write!(f, "no FPGA device or region {slot} on this host")
            }
            DriverError::Incompatible {
                slot,
                requires,
                accepts,
            } => match accepts.as_slice() {
                [] => write!(
                    f,
                    "{slot} reports no interface id, and the image needs interface {requires}"
                ),
                _ => write!(
                    f,
                    "{slot} accepts interface {}, but the image needs interface {requires}",
                    interfaces_text(accepts)
                ),
            },
            DriverError::Busy { slot, holder } => write!(f, "{slot} is in use ({holder})"),
            DriverError::ToolFailed {
                command,
                code,
                output,
            } => {
                let code = code.map_or("a signal".to_owned(), |c| format!("exit code {c}"));
                write!(f, "`{}` failed with {code}: {output}", command.join(" "))
            }
            DriverError::Timeout { command, after } => write!(
                f,
                "`{}` did not finish within {} s and was killed",
                command.join(" "),
                after.as_secs()
            ),
            DriverError::Unsupported(what) => f.write_str(what),
            DriverError::Unavailable {
                backend,
                path,
                problem,
                fix,
            } => write!(
                f,
                "the {backend} backend cannot run: `{}` {problem}; {fix}",
                path.display()
            ),
            DriverError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            DriverError::Parse { source, reason } => write!(f, "{source}: {reason}"),
        }
    }
}

impl std::error::Error for DriverError {}

/// An FPGA driver backend.
pub trait Driver: Send + Sync {
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// Every FPGA device it sees, with its regions, what they carry, accept and whether
    /// they are busy.
    fn discover(&self) -> Result<Vec<DeviceInfo>, DriverError>;
    /// Programs a slot. Refuses (without running any tool) an image whose `requires` the
    /// region does not accept, and a busy slot unless `force`.
    fn program(&self, request: &ProgramRequest<'_>) -> Result<ProgramReport, DriverError>;
    /// What the slot carries now, read from the hardware (not from any record of ours).
    fn read_back(&self, slot: &Slot) -> Result<Loaded, DriverError>;
}
