//! fpga-sync's record of what it programmed where: for each slot, the sha256 of the file
//! it loaded and the id the card read back afterwards. Cards report an id, and two builds
//! of one AFU share it; this record tells the planner which build a card carries. An entry
//! counts only while the card still reads back its id (a power cycle or a load by hand
//! makes it void). I/O: `<state-dir>/programmed.json`, replaced atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::host::discover::Seen;
use crate::host::driver::Slot;
use crate::host::id::Id128;

/// One slot's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The slot.
    #[serde(flatten)]
    pub slot: Slot,
    /// sha256 of the file programmed.
    pub sha256: String,
    /// The id the card read back once it was loaded.
    pub id: Id128,
}

/// The record in a host's state folder.
#[derive(Clone, Debug)]
pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    /// The record below `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Ledger {
            path: state_dir.join("programmed.json"),
        }
    }

    fn read(&self) -> Vec<Entry> {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// The sha256 programmed in each slot whose card still reads back the id recorded.
    pub fn current(&self, seen: &Seen) -> BTreeMap<Slot, String> {
        let reads = |slot: &Slot| {
            seen.values()
                .filter_map(|r| r.as_ref().ok())
                .flatten()
                .find(|d| d.address == slot.address)
                .and_then(|d| d.slot_state(slot))
                .and_then(|(loaded, _, _)| loaded.id())
        };
        self.read()
            .into_iter()
            .filter(|e| reads(&e.slot) == Some(e.id))
            .map(|e| (e.slot, e.sha256))
            .collect()
    }

    /// Records that `slot` was programmed with the file `sha256` and reads back `id`.
    pub fn record(&self, slot: &Slot, sha256: &str, id: Id128) -> std::io::Result<()> {
        let mut entries = self.read();
        entries.retain(|e| &e.slot != slot);
        entries.push(Entry {
            slot: slot.clone(),
            sha256: sha256.to_owned(),
            id,
        });
        entries.sort_by(|a, b| a.slot.cmp(&b.slot));
        crate::atomic::write_json(&self.path, &entries)
    }
}
