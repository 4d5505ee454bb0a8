//! The `sim` backend (being written).

use super::DriverConfig;
use crate::desired::host_group::Backend;
use crate::host::driver::{
    DeviceInfo, Driver, DriverError, Loaded, ProgramReport, ProgramRequest, Slot,
};

/// The `sim` backend.
pub struct Sim;

impl Sim {
    /// A backend configured by `config`.
    pub fn new(_config: &DriverConfig) -> Self {
        Sim
    }
}

impl Driver for Sim {
    fn backend(&self) -> Backend {
        Backend::Sim
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
