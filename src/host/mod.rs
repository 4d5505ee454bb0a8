//! The host agent: what runs on a compute host to keep its FPGAs and their Placement
//! records converged. Its pipeline shows in its folders:
//!
//! - `discover`: which driver backends the host's groups use, what they see on the card
//!   (the only code that touches hardware: sysfs and vendor tools), and what the
//!   repository's bitstream files say about themselves. I/O.
//! - `plan`: the pure host planner (per slot: program, verify, withdraw, refuse), the
//!   provider records Placement should hold, the fleet view and the renderings. Pure.
//! - `execute`: carries a host plan out (withdraw, fetch, drain, program, read back,
//!   report), telling a [`execute::Reporter`]. I/O.
//! - `report`: every Placement read and write of the host side, and the status file. I/O.
//! - `watch`: the service loop that runs the pipeline on every trigger. I/O.
//!
//! `driver`, `id` and `image` are the plain data and parsers the stages share. The
//! operation that strings the stages together is [`crate::reconcile::host`].

pub mod discover;
pub mod driver;
pub mod execute;
pub mod id;
pub mod image;
pub mod plan;
pub mod report;
pub mod status;
