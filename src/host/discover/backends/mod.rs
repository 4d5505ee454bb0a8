//! The driver backends and how one is chosen and configured. Each backend reads and
//! writes only below the roots and tools given in [`DriverConfig`], so tests point them at
//! a temporary tree and fake tools instead of `/sys` and `/usr/bin`.

use std::path::PathBuf;
use std::time::Duration;

use crate::desired::host_group::Backend;
use crate::host::driver::{Driver, DriverError};

pub mod exec;
pub mod fpga_manager;
pub mod opae;
pub mod preflight;
pub mod sim;
pub mod sysfs;
pub mod tool;
pub mod xrt;

/// Where a backend finds the hardware and the vendor tools.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// The sysfs root (`/sys`).
    pub sysfs_root: PathBuf,
    /// The device node root (`/dev`).
    pub dev_root: PathBuf,
    /// The firmware search directory the fpga-manager backend copies images into
    /// (`/lib/firmware`).
    pub firmware_dir: PathBuf,
    /// The procfs root (`/proc`), for the boot id.
    pub proc_root: PathBuf,
    /// Where backends keep what the hardware cannot tell (the fpga-manager ledger).
    pub state_dir: PathBuf,
    /// OPAE `fpgaconf`.
    pub fpgaconf: PathBuf,
    /// XRT `xrt-smi`; when it does not exist, `xbutil` is used.
    pub xrt_smi: PathBuf,
    /// XRT `xbutil`, the tool's name before XRT 2.18.
    pub xbutil: PathBuf,
    /// The `sim` backend's device tree.
    pub sim_root: PathBuf,
    /// The `exec` backend's commands.
    pub exec: Option<exec::ExecCommands>,
    /// How long a tool may run.
    pub timeout: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            sysfs_root: "/sys".into(),
            dev_root: "/dev".into(),
            firmware_dir: "/lib/firmware".into(),
            proc_root: "/proc".into(),
            state_dir: "/var/lib/fpga-sync".into(),
            fpgaconf: "/usr/bin/fpgaconf".into(),
            xrt_smi: "/opt/xilinx/xrt/bin/xrt-smi".into(),
            xbutil: "/opt/xilinx/xrt/bin/xbutil".into(),
            sim_root: "/var/lib/fpga-sync/sim".into(),
            exec: None,
            timeout: Duration::from_secs(600),
        }
    }
}

/// The driver for `backend`, configured by `config`.
pub fn driver(backend: Backend, config: &DriverConfig) -> Result<Box<dyn Driver>, DriverError> {
    Ok(match backend {
        Backend::Opae => Box::new(opae::Opae::new(config)),
        Backend::Xrt => Box::new(xrt::Xrt::new(config)),
        Backend::FpgaManager => Box::new(fpga_manager::FpgaManager::new(config)),
        Backend::Sim => Box::new(sim::Sim::new(config)),
        Backend::Exec => Box::new(exec::Exec::new(config.exec.clone().ok_or_else(|| {
            DriverError::Unsupported(
                "the exec backend needs its commands: give the host group an `exec:` section"
                    .into(),
            )
        })?)),
    })
}
