//! The host agent: what runs on a compute host to keep its FPGAs and their Placement
//! records converged. `driver` is the interface every backend implements and `backends`
//! the implementations (sysfs and vendor tools: the only code here that touches
//! hardware); `image` reads bitstream headers; the rest plans and carries out one host's
//! part.

pub mod backends;
pub mod driver;
pub mod id;
pub mod image;
