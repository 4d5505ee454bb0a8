//! The host agent's record of each slot's last result: what a pass did to each slot and
//! why. Written as one JSON file after every reconcile (see `report::status`) that
//! monitoring (or a person with `jq`) reads, and that `watch` uses for its per-device
//! backoff. Pure: types only.

use serde::{Deserialize, Serialize};

use crate::host::driver::Slot;

/// The state of one slot after a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    /// It carries its bitstream, read back from the card, and Placement says so.
    Verified,
    /// Not yet done (a dry run, or stopped before its turn).
    Pending,
    /// Refused before touching the card (in use, incompatible, shell missing, ...).
    Blocked,
    /// Fetching, programming, read-back or reporting failed.
    Failed,
    /// `policy: manual`: left alone.
    Manual,
    /// Held back by its group's rollout until its turn; it keeps offering what its card
    /// carries, when that is one of the repository's bitstreams.
    Waiting,
}

/// One slot's last result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SlotStatus {
    /// The slot.
    pub slot: Slot,
    /// The bitstream assigned to it.
    pub bitstream: Option<String>,
    /// Its state.
    pub state: SlotState,
    /// What happened, for people.
    pub message: String,
    /// Its provider, when it reports one.
    pub provider: Option<String>,
    /// Whether this reconcile programmed it.
    pub programmed: bool,
    /// Consecutive failed reconciles (drives the backoff).
    #[serde(default)]
    pub failures: u32,
}

/// One host's last reconcile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostStatus {
    /// The host.
    pub host: String,
    /// The commit reconciled (`None`: files on disk).
    pub commit: Option<String>,
    /// When it finished, seconds since the Unix epoch.
    pub finished_at: u64,
    /// Why the reconcile as a whole failed (reading the repository, reaching Placement),
    /// if it did.
    pub error: Option<String>,
    /// Each slot.
    pub slots: Vec<SlotStatus>,
    /// Providers removed or kept for devices that are gone.
    #[serde(default)]
    pub removals: Vec<String>,
}
