//! fpga-sync: a declarative GitOps reconciler for FPGA clouds on OpenStack.
//!
//! The pipeline: `source` reads desired-state files from a git commit or a folder (I/O),
//! `desired` turns them into validated plain data (pure); `cloud` observes the cloud into
//! `observed` (plain data), the pure `plan` decides and `apply` carries it out; `host` does
//! the same for one compute host's cards. `reconcile` strings each pipeline together as
//! one operation, and the binary's thin `commands` call it. See ARCHITECTURE.md.

pub mod agent_config;
pub mod apply;
pub mod atomic;
pub mod backoff;
pub mod cli;
pub mod cloud;
pub mod commands;
pub mod desired;
pub mod diagnostic;
pub mod host;
pub mod import;
pub mod markers;
pub mod observed;
pub mod output;
pub mod plan;
pub mod private_dir;
pub mod reconcile;
pub mod source;
pub mod text;
pub mod yaml;
