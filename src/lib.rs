//! fpga-sync: a declarative GitOps reconciler for FPGA clouds on OpenStack.
//!
//! The pipeline: `source` reads desired-state files from a git commit or a folder (I/O),
//! `desired` turns them into validated plain data (pure), and the binary's commands drive
//! it from the command line.

pub mod apply;
pub mod cli;
pub mod cloud;
pub mod commands;
pub mod desired;
pub mod diagnostic;
pub mod host;
pub mod markers;
pub mod observed;
pub mod plan;
pub mod reconcile;
pub mod source;
pub mod text;
pub mod yaml;
