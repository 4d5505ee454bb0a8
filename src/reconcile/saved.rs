//! Saved plans (`plan --out FILE`, `apply FILE`): the plan with where it came from, read
//! back with a clear refusal for a file that is not one or is of another version. I/O: the
//! plan file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;

/// A plan saved by `plan --out`, with what `apply FILE` needs to carry it out later.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SavedPlan {
    /// The saved-plan format version.
    pub format_version: u32,
    /// The repository (`--repo`).
    pub repo: String,
    /// The desired-state folder (`--dir`).
    pub dir: Option<String>,
    /// Whether the files were read from disk rather than a commit.
    pub worktree: bool,
    /// The cloud's name.
    pub cloud: String,
    /// The site the plan was made for (`--site`): `apply FILE` takes that site's lease.
    /// Absent in plans saved before leases, which use `--site`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The plan.
    pub plan: crate::plan::Plan,
    /// The fleet view: each host's slots as Placement holds them, with who holds the slots
    /// that are not verified. Informational (`apply` does not read it); absent in plans
    /// saved before it existed, and in a plan without host groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<Vec<crate::host::plan::fleet::FleetSlot>>,
    /// How many slots Placement can give each FPGA flavor now. Informational; absent in
    /// plans saved before it existed, and in a plan without FPGA flavors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedulable: Option<Vec<crate::plan::schedulable::FlavorSlots>>,
    /// The observed images and flavors whose fingerprints the plan records, as they were:
    /// a stale plan's refusal says what changed. Absent in plans saved before it was
    /// added (their refusals show the fingerprints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<crate::plan::stale::Seen>,
}

impl SavedPlan {
    /// Reads a saved plan.
    pub fn read(path: &Path) -> Result<SavedPlan, Diagnostic> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Diagnostic::error(
                "fpga_sync::saved_plan",
                format!("cannot read the saved plan `{}`: {e}", path.display()),
            )
        })?;
        let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
            Diagnostic::error(
                "fpga_sync::saved_plan",
                format!("`{}` is not a saved plan: {e}", path.display()),
            )
            .help("make one with `fpga-sync plan --out FILE`")
        })?;
        if saved.format_version != crate::plan::FORMAT_VERSION {
            return Err(Diagnostic::error(
                "fpga_sync::saved_plan",
                format!(
                    "`{}` is a version {} plan; this fpga-sync applies version {}",
                    path.display(),
                    saved.format_version,
                    crate::plan::FORMAT_VERSION
                ),
            )
            .help("make the plan again with this fpga-sync"));
        }
        Ok(saved)
    }
}
