//! The 128-bit id reader as sysfs attributes and tools feed it (any case, dashes, `0x`,
//! whitespace and NUL padding): never a panic, and an id read back from any of its written
//! forms is the same id.
#![no_main]

use fpga_sync::host::discover::backends::sysfs::trim;
use fpga_sync::host::id::Id128;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for candidate in [text.as_ref(), trim(&text)] {
        if let Ok(id) = candidate.parse::<Id128>() {
            for form in [id.to_string(), id.dashed(), id.upper()] {
                assert_eq!(form.parse::<Id128>().ok(), Some(id), "{form}");
            }
        }
    }
});
