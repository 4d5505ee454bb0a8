//! The host agent: what runs on a compute host to keep its FPGAs and their Placement
//! records converged. `driver` is the interface every backend implements and `backends`
//! the implementations (sysfs and vendor tools: the only code here that touches
//! hardware); `image` reads bitstream headers; the rest plans and carries out one host's
//! part.

pub mod agent;
pub mod assignment;
pub mod backends;
pub mod driver;
pub mod execute;
pub mod fetch;
pub mod fleet;
pub mod id;
pub mod image;
pub mod placement_sync;
pub mod plan;
pub mod render;
pub mod report;
pub mod status;
pub mod targets;
pub mod watch;
