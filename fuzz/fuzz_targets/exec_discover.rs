//! The `exec` backend's discover output (its JSON device list) on arbitrary text: devices
//! or a parse error naming the command, never a panic.
#![no_main]

use fpga_sync::host::discover::backends::exec::parse_devices;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(devices) = parse_devices(text, "fuzz-discover") {
            for d in devices {
                assert_eq!(d.address, d.address.to_ascii_lowercase());
            }
        }
    }
});
