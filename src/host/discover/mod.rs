//! What a host has to work with: the driver backends its host groups name, what each of
//! them sees on the cards, and what the repository's bitstream files say about
//! themselves. A backend that cannot run at all is an error for the whole pass, never "no
//! devices". I/O: the drivers (sysfs, vendor tools) and, in `targets`, the repository and
//! the header cache.

pub mod backends;
pub mod targets;

use std::collections::BTreeMap;
use std::time::Duration;

use backends::DriverConfig;

use crate::desired::host_group::{Backend, resolve_for_host};
use crate::desired::{Desired, host_entry_matches};
use crate::host::driver::{DeviceInfo, Driver, DriverError};

/// What each backend saw, or why it could not look.
pub type Seen = BTreeMap<Backend, Result<Vec<DeviceInfo>, DriverError>>;

/// The backends the host's groups use, with the `exec` commands of the group that names
/// them. Empty when no group names the host.
pub fn host_drivers(
    desired: &Desired,
    host: &str,
    config: &DriverConfig,
) -> Result<BTreeMap<Backend, Box<dyn Driver>>, DriverError> {
    let mut out = BTreeMap::new();
    for group in desired.host_groups.values().map(|g| &g.spec) {
        if !group.hosts.iter().any(|h| host_entry_matches(h, host)) {
            continue;
        }
        let (backend, _) = resolve_for_host(group, host, host_entry_matches);
        if out.contains_key(&backend) {
            continue;
        }
        let mut config = config.clone();
        if backend == Backend::Exec {
            config.exec.clone_from(&group.exec);
            if let Some(secs) = group.exec.as_ref().and_then(|e| e.timeout_seconds) {
                config.timeout = Duration::from_secs(secs);
            }
        }
        out.insert(backend, backends::driver(backend, &config)?);
    }
    Ok(out)
}

/// What each driver sees (blocking sysfs reads and tool runs, off the async threads).
pub fn discover(drivers: &BTreeMap<Backend, Box<dyn Driver>>) -> Seen {
    drivers
        .iter()
        .map(|(b, d)| (*b, tokio::task::block_in_place(|| d.discover())))
        .collect()
}

/// The first backend that cannot run at all, as an error for the whole pass: nothing is
/// read back, written or removed on the strength of a discovery that could not look.
pub fn unavailable(seen: &Seen) -> Option<&DriverError> {
    seen.values()
        .find_map(|r| r.as_ref().err())
        .filter(|e| matches!(e, DriverError::Unavailable { .. }))
}

/// What the planner reads of a discovery: the devices, or why a backend could not list
/// them.
pub fn for_planner(seen: &Seen) -> BTreeMap<Backend, Result<Vec<DeviceInfo>, String>> {
    seen.iter()
        .map(|(b, r)| (*b, r.clone().map_err(|e| e.to_string())))
        .collect()
}
