//! The `fpga_manager` backend (being written).

use super::DriverConfig;
use crate::desired::host_group::Backend;
use crate::host::driver::{
    DeviceInfo, Driver, DriverError, Loaded, ProgramReport, ProgramRequest, Slot,
};

/// The `fpga_manager` backend.
pub struct FpgaManager;

impl FpgaManager {
    /// A backend configured by `config`.
    pub fn new(_config: &DriverConfig) -> Self {
        FpgaManager
    }
}

impl Driver for FpgaManager {
    fn backend(&self) -> Backend {
        Backend::FpgaManager
    }
    fn discover(&self) -> Result<Vec<DeviceInfo>, DriverError> {
        Err(DriverError::Unsupported("not written yet".into()))
    }
    fn program(&self, _request: &ProgramRequest<'_>) -> Result<ProgramReport, DriverError> {
        Err(DriverError::Unsupported("not written yet".into()))
    }
    fn read_back(&self, _slot: &Slot) -> Result<Loaded, DriverError> {
        Err(DriverError::Unsupported("not written yet".into()))
    }
}
