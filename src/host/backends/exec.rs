//! The `exec` backend (being written).

use crate::desired::host_group::Backend;
pub use crate::desired::host_group::ExecCommands;
use crate::host::driver::{
    DeviceInfo, Driver, DriverError, Loaded, ProgramReport, ProgramRequest, Slot,
};

/// The `exec` backend.
pub struct Exec;

impl Exec {
    /// A backend running `commands`.
    pub fn new(_commands: ExecCommands) -> Self {
        Exec
    }
}

impl Driver for Exec {
    fn backend(&self) -> Backend {
        Backend::Exec
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
