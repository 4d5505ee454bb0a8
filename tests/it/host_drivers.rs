//! The driver backends against fake sysfs trees and fake vendor tools (`FakeHost`), and
//! the simulated backend: discovery, argv fidelity, the compatibility and busy gates,
//! tool failures and timeouts, read-back. The third-party trees and images of
//! `tests/fixtures/hw` (see its SOURCES.md) check the real formats: GBS and xclbin files
//! identified as OPAE and xocl identify them (against `images/FIXTURE.json`), an XRT shell
//! with two interfaces, ports released to SR-IOV VFs, SoC FPGA managers.

use std::path::Path;
use std::time::{Duration, Instant};

use fpga_sync::desired::host_group::{Backend, ExecCommands};
use fpga_sync::host::discover::backends::{self, sim};
use fpga_sync::host::driver::{Busy, Driver, DriverError, Loaded, ProgramRequest, Slot};
use fpga_sync::host::id::Id128;
use fpga_sync::host::image::{self, ImageFormat};
use sha2::Digest;

use crate::support::fake_host::{FakeHost, hw_images};

const IFACE: Id128 = Id128(0xa5d72a3c_c8b04939_912cf715_e5dc10ca);
const OTHER_IFACE: Id128 = Id128(0x9346116d_a52d5ca8_b06aa9a3_89ef7c8d);
const AFU: Id128 = Id128(0x9aeffe5f_84570612_c000c966_0d824272);
const NEW_AFU: Id128 = Id128(0xf7df405c_bd7acf72_22f144b0_b93acd18);
const DFL: &str = "0000:5e:00.0";
const XRT: &str = "0000:b3:00.1";

fn driver(backend: Backend, host: &FakeHost) -> Box<dyn Driver> {
    backends::driver(backend, &host.config()).expect("driver")
}

fn request<'a>(
    slot: &'a Slot,
    image: &'a Path,
    expected: Id128,
    requires: Option<Id128>,
    force: bool,
) -> ProgramRequest<'a> {
    ProgramRequest {
        slot,
        image,
        expected,
        requires,
        partial: false,
        force,
        timeout: Duration::from_secs(30),
    }
}

// ---------------------------------------------------------------- opae

#[test]
fn opae_discovers_dfl_cards_through_the_class_symlinks() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    host.add_dfl_card("0000:86:00.0", "8086:09c4", OTHER_IFACE, None);
    let devices = driver(Backend::Opae, &host).discover().unwrap();
    assert_eq!(devices.len(), 2, "{devices:#?}");
    let d = &devices[0];
    assert_eq!(d.address, DFL);
    assert_eq!(d.pci_id.as_deref(), Some("8086:0b2b"));
    assert_eq!(d.description, "DFL FME FPGA Manager");
    assert_eq!(
        d.loaded,
        Loaded::Unknown("FIM bitstream_id 0x202000200000237".into())
    );
    assert_eq!(d.regions.len(), 1);
    let r = &d.regions[0];
    assert_eq!(
        (r.name.as_str(), r.accepts.clone(), &r.loaded, &r.busy),
        ("0", vec![IFACE], &Loaded::Id(AFU), &Busy::Free)
    );
    let e = &devices[1];
    assert_eq!(e.address, "0000:86:00.0");
    assert_eq!(e.regions[0].loaded, Loaded::Empty);
    assert_eq!(e.regions[0].accepts, [OTHER_IFACE]);
}

#[test]
fn opae_reports_sriov_as_busy_and_a_missing_afu_id_as_unknown() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    host.set_sriov(DFL, 4);
    std::fs::remove_file(host.dfl_port(DFL).join("afu_id")).unwrap();
    let devices = driver(Backend::Opae, &host).discover().unwrap();
    let r = &devices[0].regions[0];
    assert_eq!(
        r.busy,
        Busy::InUse("SR-IOV: 4 virtual functions enabled".into())
    );
    assert!(matches!(&r.loaded, Loaded::Unknown(why) if why.contains("afu_id")));
}

#[test]
fn opae_programs_with_hex_bdf_arguments_and_reads_back_the_afu() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    let gbs = host.gbs("aes.gbs", IFACE, NEW_AFU);
    let d = driver(Backend::Opae, &host);
    let slot = Slot::region(DFL, "0");
    let report = d
        .program(&request(&slot, &gbs, NEW_AFU, Some(IFACE), false))
        .unwrap();
    assert_eq!(
        host.call_lines(),
        [format!(
            "fpgaconf -S 0x0000 -B 0x5e -D 0x00 -F 0x0 {}",
            gbs.display()
        )]
    );
    assert_eq!(report.command[1..5], ["-S", "0x0000", "-B", "0x5e"]);
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(NEW_AFU));
}

#[test]
fn opae_refuses_an_incompatible_image_without_running_fpgaconf_even_forced() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    let gbs = host.gbs("other.gbs", OTHER_IFACE, NEW_AFU);
    let d = driver(Backend::Opae, &host);
    let slot = Slot::region(DFL, "0");
    for force in [false, true] {
        let err = d
            .program(&request(&slot, &gbs, NEW_AFU, Some(OTHER_IFACE), force))
            .unwrap_err();
        assert!(
            matches!(&err, DriverError::Incompatible { accepts, requires, .. }
                if *accepts == [IFACE] && *requires == OTHER_IFACE),
            "{err:?}"
        );
    }
    assert!(host.calls().is_empty(), "{:?}", host.call_lines());
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(AFU));
}

#[test]
fn opae_refuses_a_busy_port_unless_forced_and_then_passes_force() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    host.set_sriov(DFL, 2);
    let gbs = host.gbs("aes.gbs", IFACE, NEW_AFU);
    let d = driver(Backend::Opae, &host);
    let slot = Slot::region(DFL, "0");
    let err = d
        .program(&request(&slot, &gbs, NEW_AFU, Some(IFACE), false))
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::Busy { holder, .. } if holder.contains("SR-IOV")),
        "{err:?}"
    );
    assert!(host.calls().is_empty());
    d.program(&request(&slot, &gbs, NEW_AFU, Some(IFACE), true))
        .unwrap();
    assert_eq!(
        host.call_lines(),
        [format!(
            "fpgaconf --force -S 0x0000 -B 0x5e -D 0x00 -F 0x0 {}",
            gbs.display()
        )]
    );
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(NEW_AFU));
}

#[test]
fn opae_surfaces_fpgaconf_exit_code_4_with_its_message() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    // The image claims nothing about its interface (requires None), so the backend lets
    // fpgaconf decide, which compares the GBS interface with compat_id itself.
    let gbs = host.gbs("other.gbs", OTHER_IFACE, NEW_AFU);
    let err = driver(Backend::Opae, &host)
        .program(&request(
            &Slot::region(DFL, "0"),
            &gbs,
            NEW_AFU,
            None,
            false,
        ))
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::ToolFailed { code: Some(4), output, .. }
            if output == "No suitable slots found."),
        "{err:?}"
    );
    assert_eq!(host.calls().len(), 1);
}

#[test]
fn opae_read_back_shows_the_old_id_when_fpgaconf_succeeds_without_loading() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    host.fault("noop", "");
    let gbs = host.gbs("aes.gbs", IFACE, NEW_AFU);
    let d = driver(Backend::Opae, &host);
    let slot = Slot::region(DFL, "0");
    d.program(&request(&slot, &gbs, NEW_AFU, Some(IFACE), false))
        .unwrap();
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(AFU));
}

#[test]
fn opae_kills_a_hung_fpgaconf_at_the_timeout() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    host.fault("hang", "");
    let gbs = host.gbs("aes.gbs", IFACE, NEW_AFU);
    let slot = Slot::region(DFL, "0");
    let mut req = request(&slot, &gbs, NEW_AFU, Some(IFACE), false);
    req.timeout = Duration::from_millis(800);
    let start = Instant::now();
    let err = driver(Backend::Opae, &host).program(&req).unwrap_err();
    assert!(matches!(err, DriverError::Timeout { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn opae_does_not_program_the_fim_and_says_why() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    let img = host.image("fim.bin", b"fim");
    let slot = Slot::device(DFL);
    let err = driver(Backend::Opae, &host)
        .program(&request(&slot, &img, AFU, None, true))
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::Unsupported(why) if why.contains("fpgasupdate")),
        "{err:?}"
    );
    assert!(host.calls().is_empty());
    let err = driver(Backend::Opae, &host)
        .read_back(&Slot::region("0000:99:00.0", "0"))
        .unwrap_err();
    assert!(matches!(err, DriverError::NotFound(_)), "{err:?}");
}

const LEGACY: &str = "0000:be:00.0";

#[test]
fn opae_discovers_a_legacy_intel_fpga_card_through_class_fpga() {
    let host = FakeHost::new();
    host.add_legacy_intel_card(LEGACY, "8086:09c4", IFACE, Some(AFU));
    let devices = driver(Backend::Opae, &host).discover().unwrap();
    assert_eq!(devices.len(), 1, "{devices:#?}");
    let d = &devices[0];
    assert_eq!(d.address, LEGACY);
    assert_eq!(d.pci_id.as_deref(), Some("8086:09c4"));
    assert_eq!(d.description, "Intel FPGA (intel-fpga)");
    assert_eq!(
        d.loaded,
        Loaded::Unknown("FIM bitstream_id 0x123000200000185".into())
    );
    assert_eq!(d.regions.len(), 1);
    let r = &d.regions[0];
    assert_eq!(
        (r.name.as_str(), r.accepts.clone(), &r.loaded, &r.busy),
        ("0", vec![IFACE], &Loaded::Id(AFU), &Busy::Free)
    );
}

#[test]
fn opae_names_a_legacy_port_by_its_id_else_its_number_and_reports_sriov() {
    let host = FakeHost::new();
    host.add_legacy_intel_card(LEGACY, "8086:09c4", IFACE, None);
    let port = host.legacy_port(LEGACY);
    std::fs::write(port.join("id"), "3\n").unwrap();
    host.set_sriov(LEGACY, 1);
    let d = driver(Backend::Opae, &host);
    let r = &d.discover().unwrap()[0].regions[0];
    assert_eq!(r.name, "3");
    assert_eq!(r.loaded, Loaded::Empty);
    assert_eq!(
        r.busy,
        Busy::InUse("SR-IOV: 1 virtual functions enabled".into())
    );
    std::fs::remove_file(port.join("id")).unwrap();
    let n = port
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("intel-fpga-port.")
        .to_owned();
    assert_eq!(d.discover().unwrap()[0].regions[0].name, n);
}

#[test]
fn opae_programs_a_legacy_card_with_fpgaconf_and_reads_back_the_afu() {
    let host = FakeHost::new();
    host.add_legacy_intel_card(LEGACY, "8086:09c4", IFACE, Some(AFU));
    let gbs = host.gbs("aes.gbs", IFACE, NEW_AFU);
    let d = driver(Backend::Opae, &host);
    let slot = Slot::region(LEGACY, "0");
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(AFU));
    d.program(&request(&slot, &gbs, NEW_AFU, Some(IFACE), false))
        .unwrap();
    assert_eq!(
        host.call_lines(),
        [format!(
            "fpgaconf -S 0x0000 -B 0xbe -D 0x00 -F 0x0 {}",
            gbs.display()
        )]
    );
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(NEW_AFU));
    assert_eq!(
        std::fs::read_to_string(host.legacy_port(LEGACY).join("afu_id"))
            .unwrap()
            .trim(),
        NEW_AFU.to_string()
    );
}

#[test]
fn opae_refuses_an_incompatible_image_on_a_legacy_card_without_fpgaconf() {
    let host = FakeHost::new();
    host.add_legacy_intel_card(LEGACY, "8086:09c4", IFACE, Some(AFU));
    let gbs = host.gbs("other.gbs", OTHER_IFACE, NEW_AFU);
    let d = driver(Backend::Opae, &host);
    let slot = Slot::region(LEGACY, "0");
    let err = d
        .program(&request(&slot, &gbs, NEW_AFU, Some(OTHER_IFACE), true))
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::Incompatible { accepts, requires, .. }
            if *accepts == [IFACE] && *requires == OTHER_IFACE),
        "{err:?}"
    );
    assert!(host.calls().is_empty(), "{:?}", host.call_lines());
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(AFU));
}

#[test]
fn fake_fpgaconf_checks_the_legacy_interface_id_itself() {
    let host = FakeHost::new();
    host.add_legacy_intel_card(LEGACY, "8086:09c4", IFACE, Some(AFU));
    let gbs = host.gbs("other.gbs", OTHER_IFACE, NEW_AFU);
    let err = driver(Backend::Opae, &host)
        .program(&request(
            &Slot::region(LEGACY, "0"),
            &gbs,
            NEW_AFU,
            None,
            false,
        ))
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::ToolFailed { code: Some(4), .. }),
        "{err:?}"
    );
}

#[test]
fn opae_lists_an_upstream_and_a_legacy_card_and_a_card_in_both_layouts_once() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    host.add_legacy_intel_card(LEGACY, "8086:09c4", OTHER_IFACE, None);
    let d = driver(Backend::Opae, &host);
    let devices = d.discover().unwrap();
    let seen: Vec<_> = devices
        .iter()
        .map(|d| (d.address.as_str(), d.regions[0].accepts.clone()))
        .collect();
    assert_eq!(seen, [(DFL, vec![IFACE]), (LEGACY, vec![OTHER_IFACE])]);
    // The upstream card also appears under class/fpga: still one device, its DFL entry.
    host.add_legacy_intel_card(DFL, "8086:0b2b", OTHER_IFACE, None);
    let devices = d.discover().unwrap();
    assert_eq!(devices.len(), 2, "{devices:#?}");
    assert_eq!(devices[0].address, DFL);
    assert_eq!(devices[0].description, "DFL FME FPGA Manager");
    assert_eq!(devices[0].regions.len(), 1);
    assert_eq!(devices[0].regions[0].accepts, [IFACE]);
    assert_eq!(devices[0].regions[0].loaded, Loaded::Id(AFU));
}

#[test]
fn fake_fpgaconf_rejects_bare_hex_like_the_real_one() {
    let host = FakeHost::new();
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, Some(AFU));
    let gbs = host.gbs("aes.gbs", IFACE, NEW_AFU);
    let out = std::process::Command::new(&host.config().fpgaconf)
        .args(["-B", "5e"])
        .arg(&gbs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid bus: 5e"));
}

// ---------------------------------------------------------------- xrt

#[test]
fn xrt_discovers_user_functions_with_an_xclbinuuid() {
    let host = FakeHost::new();
    host.add_xrt_card(XRT, IFACE, Some(AFU));
    host.add_dfl_card(DFL, "8086:0b2b", IFACE, None);
    host.set_contexts(XRT, 2);
    let devices = driver(Backend::Xrt, &host).discover().unwrap();
    assert_eq!(devices.len(), 1, "{devices:#?}");
    let d = &devices[0];
    assert_eq!(d.address, XRT);
    assert_eq!(d.pci_id.as_deref(), Some("10ee:5021"));
    assert_eq!(d.description, "u250");
    assert_eq!(
        d.loaded,
        Loaded::Id("e6a7bd8f6cf9e5b1bb3a3d50ba4a1c9f".parse().unwrap())
    );
    let r = &d.regions[0];
    assert_eq!(
        (r.name.as_str(), r.accepts.clone(), &r.loaded, &r.busy),
        (
            "0",
            vec![IFACE],
            &Loaded::Id(AFU),
            &Busy::InUse("2 open contexts".into())
        )
    );
}

#[test]
fn xrt_programs_with_xrt_smi_and_a_dotted_bdf_then_reads_back() {
    let host = FakeHost::new();
    host.add_xrt_card(XRT, IFACE, None);
    let x = host.xclbin("k.xclbin", IFACE, NEW_AFU);
    let d = driver(Backend::Xrt, &host);
    let slot = Slot::region(XRT, "0");
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Empty);
    d.program(&request(&slot, &x, NEW_AFU, Some(IFACE), false))
        .unwrap();
    assert_eq!(
        host.call_lines(),
        [format!(
            "xrt-smi program --device 0000:b3:00.1 --user {}",
            x.display()
        )]
    );
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(NEW_AFU));
}

#[test]
fn xrt_falls_back_to_xbutil_and_tolerates_its_banner() {
    let mut host = FakeHost::new();
    host.without_xrt_smi();
    host.add_xrt_card(XRT, IFACE, None);
    let x = host.xclbin("k.xclbin", IFACE, NEW_AFU);
    let d = driver(Backend::Xrt, &host);
    let slot = Slot::region(XRT, "0");
    let report = d
        .program(&request(&slot, &x, NEW_AFU, Some(IFACE), false))
        .unwrap();
    assert!(report.output.contains("renamed"), "{}", report.output);
    assert_eq!(
        host.call_lines(),
        [format!(
            "xbutil program --device 0000:b3:00.1 --user {}",
            x.display()
        )]
    );
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(NEW_AFU));
}

#[test]
fn xrt_refuses_incompatible_and_busy_without_running_the_tool() {
    let host = FakeHost::new();
    host.add_xrt_card(XRT, IFACE, Some(AFU));
    let d = driver(Backend::Xrt, &host);
    let slot = Slot::region(XRT, "0");
    let bad = host.xclbin("bad.xclbin", OTHER_IFACE, NEW_AFU);
    for force in [false, true] {
        let err = d
            .program(&request(&slot, &bad, NEW_AFU, Some(OTHER_IFACE), force))
            .unwrap_err();
        assert!(matches!(err, DriverError::Incompatible { .. }), "{err:?}");
    }
    host.set_contexts(XRT, 1);
    let good = host.xclbin("good.xclbin", IFACE, NEW_AFU);
    for force in [false, true] {
        let err = d
            .program(&request(&slot, &good, NEW_AFU, Some(IFACE), force))
            .unwrap_err();
        assert!(
            matches!(&err, DriverError::Busy { holder, .. } if holder.contains("1 open contexts")),
            "{err:?}"
        );
        if force {
            assert!(err.to_string().contains("even when forced"), "{err}");
        }
    }
    assert!(host.calls().is_empty(), "{:?}", host.call_lines());
}

#[test]
fn xrt_tool_failure_and_unchanged_tree_are_visible() {
    let host = FakeHost::new();
    host.add_xrt_card(XRT, IFACE, Some(AFU));
    let x = host.xclbin("k.xclbin", IFACE, NEW_AFU);
    let d = driver(Backend::Xrt, &host);
    let slot = Slot::region(XRT, "0");
    host.fault("exit_code", "3");
    let err = d
        .program(&request(&slot, &x, NEW_AFU, Some(IFACE), false))
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::ToolFailed { code: Some(3), output, .. } if output == "injected failure"),
        "{err:?}"
    );
    std::fs::remove_file(host.path().join("faults/exit_code")).unwrap();
    host.fault("noop", "");
    d.program(&request(&slot, &x, NEW_AFU, Some(IFACE), false))
        .unwrap();
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(AFU));
}

#[test]
fn xrt_read_back_uses_examine_json_from_the_output_file() {
    let host = FakeHost::new();
    host.add_xrt_card(XRT, IFACE, Some(AFU));
    host.drop_xclbinuuid(XRT);
    let loaded = driver(Backend::Xrt, &host)
        .read_back(&Slot::region(XRT, "0"))
        .unwrap();
    assert_eq!(loaded, Loaded::Id(AFU));
    let lines = host.call_lines();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with(
            "xrt-smi examine --device 0000:b3:00.1 --report dynamic-regions --format JSON --output "
        ),
        "{lines:?}"
    );
}

#[test]
fn fake_xrt_smi_needs_an_output_file_for_json_and_will_not_overwrite() {
    let host = FakeHost::new();
    host.add_xrt_card(XRT, IFACE, Some(AFU));
    let tool = host.config().xrt_smi;
    let out = std::process::Command::new(&tool)
        .args(["examine", "-d", XRT, "-f", "JSON"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Please specify an output file"));
    let file = host.path().join("exists.json");
    std::fs::write(&file, "").unwrap();
    let out = std::process::Command::new(&tool)
        .args(["examine", "-d", XRT, "-f", "JSON", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

// ---------------------------------------------------------------- fpga-manager

#[test]
fn fpga_manager_programs_keeps_a_ledger_and_forgets_it_on_reboot() {
    let host = FakeHost::new();
    let mgr = host.add_fpga_manager(
        "0000:03:00.0",
        "10ee:9038",
        "Xilinx FPGA Manager",
        "operating",
    );
    let d = driver(Backend::FpgaManager, &host);
    let devices = d.discover().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].address, "0000:03:00.0");
    assert_eq!(devices[0].pci_id.as_deref(), Some("10ee:9038"));
    assert_eq!(devices[0].description, "Xilinx FPGA Manager");
    assert!(devices[0].regions.is_empty());
    assert!(matches!(devices[0].loaded, Loaded::Unknown(_)));

    let img = host.image("full.bit.bin", b"a full bitstream");
    let slot = Slot::device("0000:03:00.0");
    d.program(&request(&slot, &img, AFU, None, false)).unwrap();
    let firmware = std::fs::read_to_string(mgr.join("firmware")).unwrap();
    assert!(
        firmware.starts_with("fpga-sync/") && firmware.ends_with(".bin"),
        "{firmware}"
    );
    let staged = host.path().join("firmware").join(&firmware);
    assert_eq!(std::fs::read(&staged).unwrap(), b"a full bitstream");
    assert_eq!(std::fs::read_to_string(mgr.join("flags")).unwrap(), "0");
    // The id is the first 128 bits of the content's sha256, which names the copy.
    let digest = &firmware["fpga-sync/".len().."fpga-sync/".len() + 32];
    let id: Id128 = digest.parse().unwrap();
    // The manager cannot report it: the id is the ledger's, and says so.
    let read = d.read_back(&slot).unwrap();
    assert_eq!(read, Loaded::Recorded(id));
    assert!(
        read.to_string().contains("from fpga-sync's ledger"),
        "{read}"
    );

    std::fs::write(mgr.join("state"), "write_err\n").unwrap();
    assert!(
        matches!(d.read_back(&slot).unwrap(), Loaded::Unknown(why) if why.contains("write error"))
    );
    std::fs::write(mgr.join("state"), "operating\n").unwrap();
    host.set_boot_id("11111111-2222-4333-8444-555555555555");
    assert!(
        matches!(d.read_back(&slot).unwrap(), Loaded::Unknown(why) if why.contains("rebooted"))
    );
}

#[test]
fn fpga_manager_load_failure_and_busy_state_are_reported() {
    let host = FakeHost::new();
    let mgr = host.add_fpga_manager("0000:03:00.0", "10ee:9038", "mgr", "write error");
    std::fs::write(mgr.join("status"), "reconfig CRC error\n").unwrap();
    let d = driver(Backend::FpgaManager, &host);
    let img = host.image("full.bit.bin", b"bits");
    let slot = Slot::device("0000:03:00.0");
    let err = d
        .program(&request(&slot, &img, AFU, None, false))
        .unwrap_err();
    assert!(err.to_string().contains("reconfig CRC error"), "{err}");
    assert!(matches!(d.read_back(&slot).unwrap(), Loaded::Unknown(_)));

    std::fs::write(mgr.join("state"), "write init\n").unwrap();
    assert!(matches!(d.discover().unwrap()[0].busy, Busy::InUse(_)));
    let err = d
        .program(&request(&slot, &img, AFU, None, false))
        .unwrap_err();
    assert!(matches!(err, DriverError::Busy { .. }), "{err:?}");
    let err = d
        .program(&request(
            &Slot::region("0000:03:00.0", "0"),
            &img,
            AFU,
            None,
            false,
        ))
        .unwrap_err();
    assert!(matches!(err, DriverError::NotFound(_)), "{err:?}");
}

#[test]
fn fpga_manager_lists_a_dfl_cards_manager_as_not_programmable_by_it() {
    let host = FakeHost::from_fixture("dfl-n3000");
    let d = driver(Backend::FpgaManager, &host);
    let devices = d.discover().unwrap();
    assert_eq!(devices.len(), 1, "{devices:#?}");
    assert_eq!(devices[0].address, "0000:5e:00.0", "below its PCI device");
    assert_eq!(devices[0].description, "DFL FME FPGA Manager");
    let why = devices[0].cannot_program.as_deref().unwrap();
    assert!(
        why.contains("no `firmware` attribute") && why.contains("opae"),
        "{why}"
    );
    let img = host.image("full.bit.bin", b"bits");
    let err = d
        .program(&request(
            &Slot::device("0000:5e:00.0"),
            &img,
            AFU,
            None,
            true,
        ))
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::Unsupported(w) if w.contains("firmware")),
        "{err:?}"
    );
}

/// The manager directory of a SoC fixture host, from its manifest.
fn soc_manager(host: &FakeHost) -> std::path::PathBuf {
    host.path()
        .join(host.fixture()["expect"]["device_path"].as_str().unwrap())
}

#[test]
fn fpga_manager_finds_a_zynqmp_manager_by_name_and_loads_with_the_right_flags() {
    for (scenario, flags_before) in [("soc-zynqmp-xlnx", "0"), ("soc-zynqmp-xlnx-partial", "1")] {
        let host = FakeHost::from_fixture(scenario);
        let expect = host.fixture()["expect"].clone();
        let mgr = soc_manager(&host);
        assert_eq!(
            std::fs::read_to_string(mgr.join("flags")).unwrap().trim(),
            flags_before
        );
        let d = driver(Backend::FpgaManager, &host);
        let devices = d.discover().unwrap();
        assert_eq!(devices.len(), 1, "{scenario}: {devices:#?}");
        let dev = &devices[0];
        assert_eq!(
            dev.address, "fpga0",
            "{scenario}: no PCI device, named by its manager"
        );
        assert_eq!(dev.pci_id, None);
        assert_eq!(dev.description, expect["name"], "{scenario}");
        assert_eq!(dev.cannot_program, None, "{scenario}");
        assert!(
            matches!(&dev.loaded, Loaded::Unknown(_)),
            "{scenario}: {:?}",
            dev.loaded
        );
        let slot = Slot::device("fpga0");
        // A full bitstream: flags 0; a partial one: flags 1 (FPGA_MGR_PARTIAL_RECONFIG).
        for (partial, flags, content) in
            [(false, "0", &b"full design"[..]), (true, "1", b"partial")]
        {
            let img = host.image("design.bit.bin", content);
            let mut req = request(&slot, &img, AFU, None, false);
            req.partial = partial;
            let report = d.program(&req).unwrap();
            assert_eq!(
                std::fs::read_to_string(mgr.join("flags")).unwrap(),
                flags,
                "{scenario}"
            );
            let firmware = std::fs::read_to_string(mgr.join("firmware")).unwrap();
            assert!(firmware.starts_with("fpga-sync/"), "{firmware}");
            assert_eq!(
                std::fs::read(host.path().join("lib/firmware").join(&firmware)).unwrap(),
                content,
                "{scenario}: staged in the firmware search path"
            );
            let class = host.sysfs().join("class/fpga_manager/fpga0");
            assert_eq!(
                report.command,
                [
                    format!("echo {flags} > {}", class.join("flags").display()),
                    format!("echo {firmware} > {}", class.join("firmware").display()),
                ]
            );
            let id: Id128 = firmware["fpga-sync/".len().."fpga-sync/".len() + 32]
                .parse()
                .unwrap();
            assert_eq!(
                d.read_back(&slot).unwrap(),
                Loaded::Recorded(id),
                "{scenario}"
            );
        }
        assert!(
            matches!(d.discover().unwrap()[0].loaded, Loaded::Recorded(_)),
            "{scenario}: devices shows the ledger's id as such"
        );
    }
}

#[test]
fn fpga_manager_shows_a_mainline_manager_as_not_programmable_and_says_use_exec() {
    for scenario in ["soc-zynqmp-mainline", "soc-socfpga-mainline"] {
        let host = FakeHost::from_fixture(scenario);
        let expect = host.fixture()["expect"].clone();
        let d = driver(Backend::FpgaManager, &host);
        let devices = d.discover().unwrap();
        assert_eq!(devices.len(), 1, "{scenario}");
        assert_eq!(devices[0].address, "fpga0", "{scenario}");
        assert_eq!(devices[0].description, expect["name"], "{scenario}");
        let why = devices[0].cannot_program.as_deref().unwrap();
        assert!(
            why.contains("no `firmware` attribute") && why.contains("use exec"),
            "{why}"
        );
        let img = host.image("full.bit.bin", b"bits");
        let err = d
            .program(&request(&Slot::device("fpga0"), &img, AFU, None, true))
            .unwrap_err();
        assert!(
            matches!(&err, DriverError::Unsupported(w) if w.contains("use exec")),
            "{err:?}"
        );
        assert!(
            !host.config().firmware_dir.join("fpga-sync").exists(),
            "{scenario}: nothing staged"
        );
    }
}

#[test]
fn fpga_manager_refuses_a_partial_image_where_there_is_no_flags_attribute() {
    let host = FakeHost::from_fixture("soc-zynqmp-xlnx");
    let mgr = soc_manager(&host);
    std::fs::remove_file(mgr.join("flags")).unwrap();
    let img = host.image("partial.bit.bin", b"partial");
    let slot = Slot::device("fpga0");
    let mut req = request(&slot, &img, AFU, None, false);
    req.partial = true;
    let err = driver(Backend::FpgaManager, &host)
        .program(&req)
        .unwrap_err();
    assert!(err.to_string().contains("no `flags` attribute"), "{err}");
    assert_eq!(
        std::fs::read_to_string(mgr.join("firmware")).unwrap(),
        "",
        "nothing loaded"
    );
}

// ---------------------------------------------------------------- sim

fn sim_host() -> (FakeHost, Box<dyn Driver>) {
    let host = FakeHost::new();
    let root = host.config().sim_root;
    sim::add_device(&root, DFL, "8086:09c4", "PAC A10", Some(AFU)).unwrap();
    sim::add_region(&root, DFL, "0", Some(IFACE), None).unwrap();
    let d = driver(Backend::Sim, &host);
    (host, d)
}

#[test]
fn sim_discovers_programs_and_records_calls() {
    let (host, d) = sim_host();
    let root = host.config().sim_root;
    let devices = d.discover().unwrap();
    assert_eq!(devices.len(), 1);
    let dev = &devices[0];
    assert_eq!(
        (dev.pci_id.as_deref(), dev.description.as_str(), &dev.loaded),
        (Some("8086:09c4"), "PAC A10", &Loaded::Id(AFU))
    );
    assert_eq!(dev.regions[0].accepts, [IFACE]);
    assert_eq!(dev.regions[0].loaded, Loaded::Empty);

    let gbs = host.gbs("aes.gbs", IFACE, NEW_AFU);
    let slot = Slot::region(DFL, "0");
    d.program(&request(&slot, &gbs, NEW_AFU, Some(IFACE), false))
        .unwrap();
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(NEW_AFU));

    let bad = host.gbs("bad.gbs", OTHER_IFACE, NEW_AFU);
    let err = d
        .program(&request(&slot, &bad, NEW_AFU, Some(OTHER_IFACE), true))
        .unwrap_err();
    assert!(matches!(err, DriverError::Incompatible { .. }), "{err:?}");

    let calls = sim::calls(&root);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].slot, "0000:5e:00.0 region 0");
    assert_eq!(calls[0].result, "ok");
    assert!(calls[1].force && calls[1].result.contains("accepts interface"));

    // A whole-device opaque image is known by its digest.
    let full = host.image("full.bin", b"raw bits");
    d.program(&request(&Slot::device(DFL), &full, AFU, None, false))
        .unwrap();
    let digest = sha2::Sha256::digest(b"raw bits");
    let expected = Id128(u128::from_be_bytes(digest[..16].try_into().unwrap()));
    assert_eq!(
        d.read_back(&Slot::device(DFL)).unwrap(),
        Loaded::Id(expected)
    );
}

#[test]
fn sim_faults_and_power_cycle() {
    let (host, d) = sim_host();
    let root = host.config().sim_root;
    let slot = Slot::region(DFL, "0");
    let gbs = host.gbs("aes.gbs", IFACE, NEW_AFU);
    let req = |force| request(&slot, &gbs, NEW_AFU, Some(IFACE), force);

    sim::set_fault(&root, &slot, sim::Fault::ProgramFails, true).unwrap();
    let err = d.program(&req(false)).unwrap_err();
    assert!(
        matches!(&err, DriverError::ToolFailed { code: Some(1), output, .. }
            if output == "simulated programming failure"),
        "{err:?}"
    );
    sim::set_fault(&root, &slot, sim::Fault::ProgramFails, false).unwrap();

    sim::set_fault(&root, &slot, sim::Fault::Busy, true).unwrap();
    assert!(matches!(
        d.discover().unwrap()[0].regions[0].busy,
        Busy::InUse(_)
    ));
    assert!(matches!(
        d.program(&req(false)).unwrap_err(),
        DriverError::Busy { .. }
    ));
    sim::set_fault(&root, &slot, sim::Fault::Busy, false).unwrap();
    sim::set_busy(&root, &slot, true).unwrap();
    assert!(matches!(
        d.program(&req(false)).unwrap_err(),
        DriverError::Busy { .. }
    ));

    sim::set_fault(&root, &slot, sim::Fault::ReadbackDiffers, true).unwrap();
    d.program(&req(true)).unwrap();
    assert_eq!(
        d.read_back(&slot).unwrap(),
        Loaded::Id(Id128(NEW_AFU.0 ^ 1))
    );
    sim::set_fault(&root, &slot, sim::Fault::ReadbackDiffers, false).unwrap();
    sim::set_busy(&root, &slot, false).unwrap();
    d.program(&req(false)).unwrap();
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(NEW_AFU));

    sim::power_cycle(&root).unwrap();
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Empty);
    assert_eq!(d.read_back(&Slot::device(DFL)).unwrap(), Loaded::Id(AFU));

    sim::set_fault(&root, &Slot::device(DFL), sim::Fault::Vanished, true).unwrap();
    assert!(d.discover().unwrap().is_empty());
    assert!(matches!(
        d.program(&req(true)).unwrap_err(),
        DriverError::NotFound(_)
    ));
    let results: Vec<String> = sim::calls(&root).into_iter().map(|c| c.result).collect();
    assert_eq!(results.len(), 6, "{results:?}");
    assert_eq!(
        results.iter().filter(|r| *r == "ok").count(),
        2,
        "{results:?}"
    );
}

// ---------------------------------------------------------------- exec

fn exec_host(discover_json: &str) -> (FakeHost, Box<dyn Driver>) {
    let host = FakeHost::new();
    let dir = host.path();
    std::fs::write(dir.join("devices.json"), discover_json).unwrap();
    let script = |name: &str, body: &str| {
        let p = dir.join("bin").join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    };
    let d = dir.display();
    let discover = script("discover", &format!("cat {d}/devices.json"));
    let program = script(
        "program",
        &format!(
            "printf '%s\\n' \"$*\" >> {d}/exec-calls.txt\n\
             [ -f {d}/fail ] && {{ echo 'card said no' >&2; exit 7; }}\n\
             echo \"$4\" > {d}/loaded-$1-$2"
        ),
    );
    let read_back = script(
        "read_back",
        &format!("cat {d}/loaded-$1-$2 2>/dev/null || true"),
    );
    let mut config = host.config();
    config.exec = Some(ExecCommands {
        discover: vec![discover],
        program: vec![
            program,
            "{address}".into(),
            "r{region}".into(),
            "{image}".into(),
            "{expected}".into(),
            "{force}".into(),
        ],
        read_back: vec![read_back, "{address}".into(), "r{region}".into()],
        timeout_seconds: Some(20),
    });
    let driver = backends::driver(Backend::Exec, &config).unwrap();
    (host, driver)
}

const EXEC_DEVICES: &str = r#"[
  {"address": "0000:5E:00.0", "pci_id": "8086:0B2B", "description": "site card",
   "loaded": null, "busy": false,
   "regions": [
     {"name": "0", "accepts": "A5D72A3C-C8B0-4939-912C-F715E5DC10CA",
      "loaded": "00000000000000000000000000000000", "busy": false},
     {"name": "1", "accepts": "a5d72a3cc8b04939912cf715e5dc10ca", "loaded": null,
      "busy": "2 open contexts"}]}]"#;

#[test]
fn exec_parses_discover_json() {
    let (_host, d) = exec_host(EXEC_DEVICES);
    let devices = d.discover().unwrap();
    let dev = &devices[0];
    assert_eq!(dev.address, DFL);
    assert_eq!(dev.pci_id.as_deref(), Some("8086:0b2b"));
    assert_eq!(dev.loaded, Loaded::Empty);
    assert_eq!(dev.regions[0].accepts, [IFACE]);
    assert_eq!(dev.regions[0].loaded, Loaded::Empty);
    assert_eq!(dev.regions[1].busy, Busy::InUse("2 open contexts".into()));
}

#[test]
fn exec_substitutes_placeholders_and_gates_incompatible_and_busy() {
    let (host, d) = exec_host(EXEC_DEVICES);
    let dir = host.path();
    let img = host.image("x.gbs", b"whatever");
    let slot = Slot::region(DFL, "0");
    d.program(&request(&slot, &img, NEW_AFU, Some(IFACE), false))
        .unwrap();
    assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(NEW_AFU));
    assert_eq!(d.read_back(&Slot::region(DFL, "1")).unwrap(), Loaded::Empty);

    let err = d
        .program(&request(&slot, &img, NEW_AFU, Some(OTHER_IFACE), true))
        .unwrap_err();
    assert!(matches!(err, DriverError::Incompatible { .. }), "{err:?}");
    let busy = Slot::region(DFL, "1");
    let err = d
        .program(&request(&busy, &img, NEW_AFU, Some(IFACE), false))
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::Busy { holder, .. } if holder == "2 open contexts"),
        "{err:?}"
    );
    d.program(&request(&busy, &img, NEW_AFU, Some(IFACE), true))
        .unwrap();
    let calls = std::fs::read_to_string(dir.join("exec-calls.txt")).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            format!("{DFL} r0 {} {NEW_AFU}", img.display()),
            format!("{DFL} r1 {} {NEW_AFU} force", img.display()),
        ]
    );

    std::fs::write(dir.join("fail"), "").unwrap();
    let err = d
        .program(&request(&slot, &img, NEW_AFU, Some(IFACE), false))
        .unwrap_err();
    assert!(
        matches!(&err, DriverError::ToolFailed { code: Some(7), output, .. } if output == "card said no"),
        "{err:?}"
    );
}

#[test]
fn exec_discover_gives_accepts_as_one_id_or_a_list() {
    let (_host, d) = exec_host(
        r#"[{"address": "0000:b3:00.1", "regions": [
            {"name": "0", "accepts": ["A5D72A3C-C8B0-4939-912C-F715E5DC10CA",
                                      "9346116da52d5ca8b06aa9a389ef7c8d"]},
            {"name": "1", "accepts": null}]}]"#,
    );
    let devices = d.discover().unwrap();
    assert_eq!(devices[0].regions[0].accepts, [IFACE, OTHER_IFACE]);
    assert!(devices[0].regions[1].accepts.is_empty());
}

#[test]
fn exec_reports_bad_discover_output_as_a_parse_error() {
    let (_host, d) = exec_host("not json");
    assert!(matches!(
        d.discover().unwrap_err(),
        DriverError::Parse { .. }
    ));
}

// ---------------------------------------------------------------- images (tests/fixtures/hw)

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn images_manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(hw_images().join("FIXTURE.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn id(value: &serde_json::Value) -> Id128 {
    value.as_str().unwrap().parse().unwrap()
}

#[test]
fn gbs_files_are_identified_as_opae_identifies_them_and_refused_where_it_refuses() {
    // What each refused file's message must name: the check OPAE makes.
    let refusals = [
        ("refused-wrong-guid.gbs", "GBS guid is invalid"),
        ("refused-length-beyond-file.gbs", "invalid metadata length"),
        ("refused-no-metadata.gbs", "the metadata is empty"),
        ("refused-not-an-object.gbs", "no `version` key"),
        ("refused-not-json.gbs", "invalid JSON metadata"),
        ("refused-wrong-magic-no.gbs", "invalid GBS magic"),
        (
            "refused-magic-no-string.gbs",
            "`afu-image.magic-no` is \"488605312\", not a JSON integer",
        ),
        ("refused-version-2.gbs", "unsupported `version` 2"),
        ("refused-undashed-interface-uuid.gbs", "uuid_parse"),
        (
            "refused-no-clusters.gbs",
            "no `afu-image.accelerator-clusters` list",
        ),
        (
            "n3000-empty-clusters.gbs",
            "No accelerator-type-uuid in JSON metadata",
        ),
    ];
    let manifest = images_manifest();
    let files = manifest["expect"]["gbs"].as_object().unwrap();
    let mut checked = 0;
    for (file, expect) in files {
        let bytes = std::fs::read(hw_images().join(file)).unwrap();
        let sha = sha256_hex(&bytes);
        let got = image::identify(&bytes, &sha);
        let accepted =
            expect["libbitstream"] == "FPGA_OK" && expect["xfpga_reconfigure"] == "accepted";
        if accepted {
            let got = got.unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(got.format, ImageFormat::Gbs, "{file}");
            assert_eq!(got.requires, Some(id(&expect["interface_id"])), "{file}");
            assert_eq!(got.id, id(&expect["accelerator_type_uuids"][0]), "{file}");
        } else if expect["legacy"] == true {
            let got = got.unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(got.format, ImageFormat::LegacyGbs, "{file}");
            assert_eq!(got.requires, Some(id(&expect["interface_id"])), "{file}");
            assert_eq!(
                got.id.to_string(),
                sha[..32],
                "{file}: known by its content"
            );
            assert!(got.unprogrammable().unwrap().contains("fpgaconf exits 5"));
        } else {
            let err = got.expect_err(file);
            let (_, needle) = refusals
                .iter()
                .find(|(f, _)| f == file)
                .unwrap_or_else(|| panic!("{file} is refused by OPAE; say what check: {err}"));
            assert!(err.contains(needle), "{file}: {err}");
        }
        checked += 1;
    }
    assert_eq!(checked, 23, "every GBS of the manifest");
}

#[test]
fn opae_block_metadata_is_refused_by_a_strict_json_parser_but_not_by_fpga_sync() {
    // OPAE's test platform blocks end with `"\n` after the object; json-c ignores it.
    let bytes = std::fs::read(hw_images().join("opae-mdata-dfl-d5005.gbs")).unwrap();
    let len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let strict = serde_json::from_slice::<serde_json::Value>(&bytes[20..20 + len]);
    assert!(
        strict
            .unwrap_err()
            .to_string()
            .contains("trailing characters")
    );
    let got = image::identify(&bytes, &sha256_hex(&bytes)).unwrap();
    assert_eq!(
        got.id,
        "f7df405c-bd7a-cf72-22f1-44b0b93acd18".parse().unwrap()
    );
    assert_eq!(
        got.requires,
        Some("9346116da52d5ca8b06aa9a389ef7c8d".parse().unwrap())
    );
}

#[test]
fn opae_programs_nul_padded_and_trailing_garbage_gbs_files_on_a_d5005() {
    let host = FakeHost::from_fixture("dfl-d5005");
    let expect = host.fixture()["expect"].clone();
    let address = expect["pci"].as_str().unwrap();
    let compat = id(&expect["compat_id"]);
    let afu = id(&expect["ports"][0]["afu_id"]);
    let port = host
        .path()
        .join(expect["ports"][0]["path"].as_str().unwrap());
    let d = driver(Backend::Opae, &host);
    let slot = Slot::region(address, "0");
    for file in [
        "d5005-nlb0-nul-padded.gbs",
        "d5005-nlb0-trailing-garbage.gbs",
    ] {
        std::fs::write(port.join("afu_id"), format!("{}\n", Id128(0))).unwrap();
        assert_eq!(d.read_back(&slot).unwrap(), Loaded::Empty);
        let gbs = hw_images().join(file);
        d.program(&request(&slot, &gbs, afu, Some(compat), false))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(afu), "{file}");
    }
    assert_eq!(host.calls().len(), 2, "{:?}", host.call_lines());
}

#[test]
fn a_legacy_gbs_is_refused_before_fpgaconf_and_fake_fpgaconf_exits_5_on_it() {
    let host = FakeHost::from_fixture("dfl-n3000");
    let expect = host.fixture()["expect"].clone();
    let address = expect["pci"].as_str().unwrap();
    let legacy = hw_images().join("n3000-legacy.gbs");
    let slot = Slot::region(address, "0");
    let d = driver(Backend::Opae, &host);
    for force in [false, true] {
        let err = d
            .program(&request(
                &slot,
                &legacy,
                AFU,
                Some(id(&expect["compat_id"])),
                force,
            ))
            .unwrap_err();
        assert!(
            matches!(&err, DriverError::Unsupported(why) if why.contains("legacy GBS")),
            "{err:?}"
        );
    }
    assert!(host.calls().is_empty(), "{:?}", host.call_lines());
    // The real tool finds the slot by the reversed interface id, then
    // fpgaReconfigureSlot refuses the file: exit 5 (SOURCES.md §6.2).
    let out = std::process::Command::new(&host.config().fpgaconf)
        .args(["-B", "0x5e"])
        .arg(&legacy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("legacy GBS"));
}

// ---------------------------------------------------------------- xrt on tests/fixtures/hw

fn xclbin_identity(file: &str) -> Result<image::ImageIdentity, String> {
    let bytes = std::fs::read(hw_images().join(file)).unwrap();
    image::identify(&bytes, &sha256_hex(&bytes))
}

#[test]
fn xclbin_files_are_identified_as_xocl_reads_them() {
    let manifest = images_manifest();
    for (file, expect) in manifest["expect"]["xclbin"].as_object().unwrap() {
        let got = xclbin_identity(file);
        let xocl = expect["xocl"].as_str().unwrap();
        match file.as_str() {
            "xrt-bad-magic.xclbin" => {
                assert!(
                    got.unwrap_err().contains("invalid xclbin magic string"),
                    "{file}"
                );
            }
            "xrt-null-uuid.xclbin" => {
                assert!(got.unwrap_err().contains("invalid xclbin uuid"), "{file}");
            }
            "xrt-upper-case-interface.xclbin" => {
                assert!(got.unwrap_err().contains("exact string"), "{file}");
            }
            _ => {
                let got = got.unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(got.format, ImageFormat::Xclbin, "{file}");
                assert_eq!(got.id, id(&expect["uuid"]), "{file}");
                let interfaces: Vec<Id128> = expect["interfaces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(id)
                    .collect();
                assert_eq!(
                    got.requires.into_iter().collect::<Vec<_>>(),
                    interfaces,
                    "{file}: {xocl}"
                );
            }
        }
    }
}

#[test]
fn xrt_region_accepts_every_listed_interface_and_programs_an_xclbin_for_the_second() {
    let host = FakeHost::from_fixture("xrt-u250");
    let expect = host.fixture()["expect"].clone();
    let user = expect["user_pf"].as_str().unwrap();
    let lines: Vec<Id128> = expect["interface_uuids"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(lines.len(), 2, "{expect}");
    let d = driver(Backend::Xrt, &host);
    let devices = d.discover().unwrap();
    assert_eq!(devices.len(), 1, "{devices:#?}");
    assert_eq!(devices[0].address, user);
    assert_eq!(devices[0].regions[0].accepts, lines);
    let slot = Slot::region(user, "0");
    // First the BLP's interface (first line), then the PLP's (second line).
    for file in ["xrt-match-blp.xclbin", "xrt-match-plp.xclbin"] {
        let identity = xclbin_identity(file).unwrap();
        let path = hw_images().join(file);
        d.program(&request(
            &slot,
            &path,
            identity.id,
            identity.requires,
            false,
        ))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            d.read_back(&slot).unwrap(),
            Loaded::Id(identity.id),
            "{file}"
        );
    }
    // The PLP xclbin is built for the second line only.
    assert_eq!(
        xclbin_identity("xrt-match-plp.xclbin").unwrap().requires,
        Some(lines[1])
    );
    assert_eq!(
        host.call_lines(),
        ["xrt-match-blp.xclbin", "xrt-match-plp.xclbin"].map(|f| format!(
            "xrt-smi program --device {user} --user {}",
            hw_images().join(f).display()
        ))
    );

    // Built for neither: refused before any tool runs, forced or not.
    let mismatch = xclbin_identity("xrt-mismatch.xclbin").unwrap();
    for force in [false, true] {
        let err = d
            .program(&request(
                &slot,
                &hw_images().join("xrt-mismatch.xclbin"),
                mismatch.id,
                mismatch.requires,
                force,
            ))
            .unwrap_err();
        assert!(
            matches!(&err, DriverError::Incompatible { accepts, .. } if *accepts == lines),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("accepts interface any of"),
            "{err}"
        );
    }
    assert_eq!(host.calls().len(), 2, "{:?}", host.call_lines());
}

#[test]
fn fake_xrt_smi_checks_partition_metadata_interfaces_as_xocl_does() {
    let host = FakeHost::from_fixture("xrt-u250-empty");
    let user = host.fixture()["expect"]["user_pf"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = |file: &str| {
        std::process::Command::new(&host.config().xrt_smi)
            .args(["program", "--device", &user, "--user"])
            .arg(hw_images().join(file))
            .output()
            .unwrap()
    };
    for (file, said) in [
        ("xrt-mismatch.xclbin", "interface uuids do not match"),
        (
            "xrt-upper-case-interface.xclbin",
            "interface uuids do not match",
        ),
        ("xrt-bad-magic.xclbin", "invalid xclbin magic string"),
        ("xrt-null-uuid.xclbin", "invalid xclbin uuid"),
    ] {
        let out = run(file);
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(said),
            "{file}: {out:?}"
        );
    }
    let out = run("xrt-no-partition-metadata.xclbin");
    assert!(
        out.status.success(),
        "no PARTITION_METADATA: no interface check: {out:?}"
    );
}

// ---------------------------------------------------------------- SR-IOV (tests/fixtures/hw)

#[test]
fn opae_shows_a_port_released_to_a_vf_as_the_vfs_and_never_programs_it() {
    for (scenario, loaded_visible) in [
        ("dfl-d5005-sriov", true),
        ("dfl-d5005-sriov-vfio", false),
        ("intel-fpga-legacy-sriov", true),
    ] {
        let host = FakeHost::from_fixture(scenario);
        let expect = host.fixture()["expect"].clone();
        let pf = expect["pci"].as_str().unwrap();
        let sriov = &expect["sriov"];
        let vf = sriov["vf"].as_str().unwrap().to_owned();
        let vf_driver = sriov["vf_driver"].as_str().unwrap().to_owned();
        let d = driver(Backend::Opae, &host);
        let devices = d.discover().unwrap();
        assert_eq!(
            devices.len(),
            1,
            "{scenario}: the VF is not a card: {devices:#?}"
        );
        assert_eq!(devices[0].address, pf, "{scenario}");
        assert_eq!(devices[0].regions.len(), 1, "{scenario}: {devices:#?}");
        let r = &devices[0].regions[0];
        assert_eq!(r.name, "0", "{scenario}: the card's port 0");
        assert_eq!(
            r.busy,
            Busy::Released {
                vf: Some(vf.clone()),
                driver: Some(vf_driver.clone())
            },
            "{scenario}"
        );
        let interface = expect
            .get("compat_id")
            .or(expect.get("interface_id"))
            .map(id)
            .unwrap();
        assert_eq!(r.accepts, [interface], "{scenario}");
        let slot = Slot::region(pf, "0");
        if loaded_visible {
            let afu = id(&expect["ports"][0]["afu_id"]);
            assert_eq!(r.loaded, Loaded::Id(afu), "{scenario}: read on the VF");
            assert_eq!(d.read_back(&slot).unwrap(), Loaded::Id(afu), "{scenario}");
        } else {
            assert!(
                matches!(&r.loaded, Loaded::Unknown(why) if why.contains("vfio-pci")),
                "{scenario}: {:?}",
                r.loaded
            );
        }
        assert!(r.busy.to_string().contains(&vf), "{}", r.busy);
        let gbs = host.gbs("other.gbs", interface, NEW_AFU);
        for force in [false, true] {
            let err = d
                .program(&request(&slot, &gbs, NEW_AFU, Some(interface), force))
                .unwrap_err();
            assert!(
                matches!(&err, DriverError::Busy { holder, .. }
                    if holder.contains(&vf) && holder.contains("forced or not")),
                "{scenario}: {err:?}"
            );
        }
        assert!(
            host.calls().is_empty(),
            "{scenario}: {:?}",
            host.call_lines()
        );
    }
}

#[test]
fn opae_on_a_card_without_sriov_lists_its_pf_port_as_before() {
    for scenario in ["dfl-n3000", "dfl-d5005", "intel-fpga-legacy"] {
        let host = FakeHost::from_fixture(scenario);
        let expect = host.fixture()["expect"].clone();
        let devices = driver(Backend::Opae, &host).discover().unwrap();
        assert_eq!(devices.len(), 1, "{scenario}");
        assert_eq!(devices[0].address, expect["pci"], "{scenario}");
        assert_eq!(devices[0].pci_id.as_deref(), expect["pci_id"].as_str());
        let r = &devices[0].regions;
        assert_eq!(r.len(), 1, "{scenario}: {r:#?}");
        assert_eq!(r[0].busy, Busy::Free, "{scenario}");
        assert_eq!(
            r[0].loaded,
            Loaded::Id(id(&expect["ports"][0]["afu_id"])),
            "{scenario}"
        );
    }
}
