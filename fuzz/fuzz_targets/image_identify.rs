//! The bitstream header readers (GBS, legacy GBS, xclbin with its partition metadata, raw
//! bitstreams) on arbitrary bytes: an identity or an error, never a panic.
#![no_main]

use fpga_sync::host::image::identify;
use libfuzzer_sys::fuzz_target;

const SHA256: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

fuzz_target!(|data: &[u8]| {
    if let Ok(identity) = identify(data, SHA256) {
        let _ = identity.unprogrammable();
    }
});
