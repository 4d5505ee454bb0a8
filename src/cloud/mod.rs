//! The OpenStack side: cloud configuration, Keystone authentication, and clients for
//! Glance, Placement and Nova. I/O: HTTP to the cloud, and reading clouds.yaml.

pub mod config;
pub mod error;
pub mod microversion;
pub mod retry;
pub mod secret;

pub use error::{CloudError, Service};
