//! The OpenStack side: cloud configuration, Keystone authentication, and clients for
//! Glance, Placement and Nova. I/O: HTTP to the cloud, and reading clouds.yaml.

pub mod auth;
pub mod config;
pub mod error;
pub mod glance;
pub mod hashing;
pub mod microversion;
pub mod nova;
pub mod observe;
pub mod placement;
pub mod retry;
pub mod secret;
pub mod session;

pub use error::{CloudError, Service};
