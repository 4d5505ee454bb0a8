//! `devices` and `program` on the `sim` backend, `devices` on the third-party trees of
//! `tests/fixtures/hw` (XRT interface sets, SR-IOV VFs, mainline FPGA managers), `program`
//! of its GBS files, and the `exec` backend's missing commands as bad input: no cloud
//! needed (`program` of a local file never connects).

use std::path::Path;
use std::process::Command;

use fpga_sync::host::discover::backends::sim;
use fpga_sync::host::id::Id128;

const IFACE: Id128 = Id128(0xa108_d99e_87ee_4f7e_a539_a23b_77f2_b433);
const OTHER: Id128 = Id128(0x77);
const MANAGED: &str = "0000:5e:00.0";
const MANUAL: &str = "0000:3b:00.0";

fn gbs(interface: Id128, afu: Id128) -> Vec<u8> {
    let meta = serde_json::json!({"version": 1, "afu-image": {"magic-no": 488_605_312u64,
        "interface-uuid": interface.dashed(),
        "accelerator-clusters": [{"name": "x", "total-contexts": 1,
            "accelerator-type-uuid": afu.dashed()}]}})
    .to_string();
    let mut out = b"XeonFPGA\xb7GBSv001".to_vec();
    out.extend((meta.len() as u32).to_le_bytes());
    out.extend(meta.as_bytes());
    out.extend([7u8; 512]);
    out
}

/// A site with a managed and a manual device on host `dev-01`, and a sim tree.
fn bench() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("repo/files")).unwrap();
    std::fs::write(p.join("repo/files/shell.bin"), "shell").unwrap();
    std::fs::write(p.join("repo/files/aes.gbs"), gbs(IFACE, Id128(0xaa))).unwrap();
    std::fs::write(p.join("mine.gbs"), gbs(IFACE, Id128(0xbb))).unwrap();
    std::fs::write(p.join("wrong.gbs"), gbs(OTHER, Id128(0xcc))).unwrap();
    let meta = |uuid: &str, shell: &str, extra: &str| {
        format!(
            "metadata:\n  bs-name: x\n  bs-uuid: {uuid}\n  vendor: Intel\n  board: PAC\n{shell}  version: \"1\"\n  driver_ver: \"1\"\n  driver_path: /opt\n  function_uuid: 00000000-0000-4000-8000-0000000000aa\n{extra}"
        )
    };
    let docs = format!(
        "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: shell\nfile: files/shell.bin\n{}---\napiVersion: fpga-sync/v1\nkind: Bitstream\nname: aes\nfile: files/aes.gbs\n{}---\napiVersion: fpga-sync/v1\nkind: HostGroup\nname: bench\nhosts: [dev-01]\nbackend: sim\ndevices:\n  - address: \"{MANAGED}\"\n    bitstream: shell\n  - address: \"{MANAGED}\"\n    region: \"0\"\n    bitstream: aes\n  - address: \"{MANUAL}\"\n    policy: manual\n",
        meta("11111111-0000-4000-8000-000000000001", "", ""),
        meta(
            "11111111-0000-4000-8000-000000000002",
            "  shell_id: 11111111-0000-4000-8000-000000000001\n",
            &format!("  region_uuid: {}\n", IFACE.dashed())
        ),
    );
    std::fs::write(p.join("repo/site.yaml"), docs).unwrap();
    let root = p.join("sim");
    for address in [MANAGED, MANUAL] {
        sim::add_device(&root, address, "8086:09c4", "sim PAC", None).unwrap();
        sim::add_region(&root, address, "0", Some(IFACE), None).unwrap();
    }
    dir
}

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args(args)
        .args([
            "--repo",
            "repo",
            "--sim-root",
            "sim",
            "--state-dir",
            "state",
        ])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("FPGA_SYNC_CACHE_DIR", dir.join("cache"))
        .env_remove("FPGA_SYNC_HOST")
        .env_remove("OS_CLOUD")
        .env("OS_CLIENT_CONFIG_FILE", dir.join("no-clouds.yaml"))
        .env("OS_CLIENT_SECURE_FILE", dir.join("no-secure.yaml"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn afu(dir: &Path, address: &str) -> String {
    std::fs::read_to_string(dir.join(format!("sim/devices/{address}/regions/0/afu_id")))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn devices_lists_what_the_backend_sees() {
    let dir = bench();
    let (code, out) = run(
        dir.path(),
        &["devices", "--host", "dev-01", "--format", "json"],
    );
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let devices = json["sim"]["devices"].as_array().unwrap();
    let addresses: Vec<&str> = devices
        .iter()
        .map(|d| d["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, [MANUAL, MANAGED]);
    assert_eq!(devices[1]["pci_id"], "8086:09c4");
    // A set: a JSON array even for one interface.
    assert_eq!(
        devices[1]["regions"][0]["accepts"],
        serde_json::json!([IFACE.to_string()])
    );
    assert_eq!(devices[1]["regions"][0]["loaded"]["state"], "empty");

    let (code, out) = run(dir.path(), &["devices"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--backend"), "{out}");
}

#[test]
fn program_loads_a_manual_device_and_refuses_managed_or_incompatible_ones() {
    let dir = bench();
    let d = dir.path();
    let (code, out) = run(
        d,
        &[
            "program",
            "--host",
            "dev-01",
            "--device",
            MANUAL,
            "--region",
            "0",
            "--bitstream",
            "mine.gbs",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("read it back"), "{out}");
    assert_eq!(afu(d, MANUAL), Id128(0xbb).to_string());

    let (code, out) = run(
        d,
        &[
            "program",
            "--host",
            "dev-01",
            "--device",
            MANAGED,
            "--region",
            "0",
            "--bitstream",
            "mine.gbs",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is managed by host group `bench`"), "{out}");
    assert!(out.contains("policy: manual"), "{out}");
    assert!(out.contains("`--allow-managed`"), "{out}");
    assert_eq!(afu(d, MANAGED), "");

    let calls = sim::calls(&d.join("sim")).len();
    for device in [MANUAL, MANAGED] {
        let (code, out) = run(
            d,
            &[
                "program",
                "--host",
                "dev-01",
                "--device",
                device,
                "--region",
                "0",
                "--bitstream",
                "wrong.gbs",
                "--force",
            ],
        );
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("needs interface"), "{out}");
    }
    assert_eq!(
        sim::calls(&d.join("sim")).len(),
        calls,
        "no program call for an incompatible image"
    );

    let (code, out) = run(
        d,
        &[
            "program",
            "--host",
            "dev-01",
            "--device",
            MANAGED,
            "--region",
            "0",
            "--bitstream",
            "mine.gbs",
            "--allow-managed",
        ],
    );
    // Allowed on a managed device, its provider must be drained first: no cloud, no
    // program.
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("must be drained first"), "{out}");
    assert_eq!(afu(d, MANAGED), "");
    assert_eq!(sim::calls(&d.join("sim")).len(), calls);

    let (code, out) = run(
        d,
        &["program", "--device", MANUAL, "--bitstream", "mine.gbs"],
    );
    assert_eq!(code, 2, "a usage error: {out}");
    assert!(
        out.contains("the following required arguments were not provided:\n  --host <NAME>"),
        "{out}"
    );
}

#[test]
fn an_exec_group_without_commands_is_bad_input() {
    let dir = bench();
    let path = dir.path().join("repo/site.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("backend: sim", "backend: exec")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args(["validate", "--repo", "repo"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("FPGA_SYNC_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the `exec` backend needs an `exec:` section"),
        "{err}"
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("backend:"))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("site.yaml:{line}:10")), "{err}");
    assert!(err.contains("help: add `exec: {discover:"), "{err}");
}

#[test]
fn program_reads_gbs_files_as_opae_does_and_refuses_what_it_refuses_naming_file_and_check() {
    let dir = bench();
    let d = dir.path();
    let images = crate::support::fake_host::hw_images();
    // Regions of the manual card built for the D5005 and N3000 interfaces of the images.
    let d5005: Id128 = "9346116da52d5ca8b06aa9a389ef7c8d".parse().unwrap();
    let n3000: Id128 = "a5d72a3cc8b04939912cf715e5dc10ca".parse().unwrap();
    sim::add_region(&d.join("sim"), MANUAL, "1", Some(d5005), None).unwrap();
    sim::add_region(&d.join("sim"), MANUAL, "2", Some(n3000), None).unwrap();
    let program = |region: &str, file: &str| {
        let path = images.join(file).display().to_string();
        run(
            d,
            &[
                "program",
                "--host",
                "dev-01",
                "--device",
                MANUAL,
                "--region",
                region,
                "--bitstream",
                &path,
            ],
        )
    };
    let afu_of = |region: &str| {
        std::fs::read_to_string(d.join(format!("sim/devices/{MANUAL}/regions/{region}/afu_id")))
            .unwrap()
            .trim()
            .to_owned()
    };

    // Metadata with NUL padding, or a stray `"` and newline after the object (OPAE's own
    // test blocks): programmed, and the card reads back the accelerator id.
    for file in ["d5005-nlb0-nul-padded.gbs", "opae-mdata-dfl-d5005.gbs"] {
        let (code, out) = program("1", file);
        assert_eq!(code, 0, "{file}: {out}");
        assert_eq!(afu_of("1"), "f7df405cbd7acf7222f144b0b93acd18", "{file}");
    }
    let calls = sim::calls(&d.join("sim")).len();
    assert_eq!(calls, 2);

    // A file OPAE refuses: refused, naming the file and the check; nothing runs.
    let (code, out) = program("1", "refused-wrong-magic-no.gbs");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused-wrong-magic-no.gbs`: GBS metadata check"),
        "{out}"
    );
    assert!(out.contains("invalid GBS magic"), "{out}");

    // A legacy GBS gets its interface check, then is refused as legacy, forced or not.
    let (code, out) = program("1", "n3000-legacy.gbs");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("needs interface {n3000}")), "{out}");
    let (code, out) = program("2", "n3000-legacy.gbs");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is a legacy GBS"), "{out}");
    assert!(
        out.contains("`--allow-busy` does not override this"),
        "{out}"
    );
    assert_eq!(sim::calls(&d.join("sim")).len(), calls, "no program call");
}

#[test]
fn devices_shows_every_interface_an_xrt_shell_accepts() {
    let host = crate::support::fake_host::FakeHost::from_fixture("xrt-u250");
    let expect = host.fixture()["expect"].clone();
    let devices = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
            .args(["devices", "--backend", "xrt", "--format", format])
            .arg("--sysfs-root")
            .arg(host.sysfs())
            .arg("--xrt-smi")
            .arg(host.config().xrt_smi)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let json: serde_json::Value = serde_json::from_str(&devices("json")).unwrap();
    let region = &json["xrt"]["devices"][0]["regions"][0];
    assert_eq!(region["accepts"], expect["interface_uuids"], "{json}");
    let table = devices("table");
    let lines = expect["interface_uuids"].as_array().unwrap();
    assert!(
        table.contains(&format!(
            "accepts any of {}, {}",
            lines[0].as_str().unwrap(),
            lines[1].as_str().unwrap()
        )),
        "{table}"
    );
}

#[test]
fn devices_shows_a_port_released_to_a_vf_as_in_use_by_that_vf() {
    for (scenario, said) in [
        (
            "dfl-d5005-sriov-vfio",
            "assigned to VF 0000:5e:00.1 (bound to vfio-pci: passed to a VM)",
        ),
        (
            "dfl-d5005-sriov",
            "assigned to VF 0000:5e:00.1 (bound to dfl-pci on the host)",
        ),
        (
            "intel-fpga-legacy-sriov",
            "assigned to VF 0000:5e:00.1 (bound to intel-fpga-pci on the host)",
        ),
    ] {
        let host = crate::support::fake_host::FakeHost::from_fixture(scenario);
        let out = Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
            .args(["devices", "--backend", "opae"])
            .arg("--sysfs-root")
            .arg(host.sysfs())
            .arg("--fpgaconf")
            .arg(host.config().fpgaconf)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{scenario}: {out:?}");
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with("region 0"))
            .unwrap_or_else(|| panic!("{scenario}: {table}"));
        assert!(line.contains(said), "{scenario}: {table}");
    }
}

#[test]
fn devices_shows_a_mainline_fpga_manager_as_not_programmable() {
    let host = crate::support::fake_host::FakeHost::from_fixture("soc-zynqmp-mainline");
    let out = Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args(["devices", "--backend", "fpga-manager"])
        .arg("--sysfs-root")
        .arg(host.sysfs())
        .arg("--firmware-dir")
        .arg(&host.config().firmware_dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        table.contains("  fpga0  -  Xilinx ZynqMP FPGA Manager"),
        "{table}"
    );
    assert!(
        table.contains("cannot program: no `firmware` attribute (a mainline kernel has no userspace loader); use exec"),
        "{table}"
    );
}
