//! The desired-state loader on arbitrary bytes: one YAML file parsed and checked as the
//! loader checks a commit (no bitstream file is present), every diagnostic rendered. It
//! must never panic, and every located diagnostic must point inside its file.
#![no_main]

use std::collections::BTreeMap;

use fpga_sync::desired::{self, RawContent, RawFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = RawFile {
        path: "site.yaml".into(),
        content: RawContent::Bytes(data.to_vec()),
    };
    let parsed = desired::parse(vec![file]);
    let outcome = desired::finish(parsed, &BTreeMap::new());
    for d in outcome.diagnostics.iter().take(8) {
        let json = d.to_json();
        if let Some(line) = json.line {
            assert!(line >= 1, "{json:?}");
        }
        let _ = d.render(false);
    }
});
