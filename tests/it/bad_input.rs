//! Bad desired state: each kind of mistake gets its exact file, line, column, message and
//! help; all mistakes of a run are reported together; a valid site stays valid.

use crate::support::{BITSTREAMS, FLAVORS, HOSTS, findings, help_of, valid_site};

#[test]
fn the_valid_site_is_valid() {
    let outcome = valid_site().load();
    assert_eq!(findings(&outcome), Vec::<String>::new());
    let desired = outcome.desired.expect("valid");
    assert_eq!(desired.bitstreams.len(), 2);
    assert_eq!(desired.traits.len(), 2);
    assert_eq!(
        desired.flavors["fpga.aes"].spec.extra_specs["resources:CUSTOM_FPGA_INTEL_PF"],
        "2"
    );
    assert_eq!(desired.host_groups["rack-a"].spec.devices.len(), 3);
    assert_eq!(outcome.documents, 7);
}

#[test]
fn yaml_syntax_error_is_located() {
    let site = valid_site();
    site.write(
        "flavors.yaml",
        "apiVersion: fpga-sync/v1\nkind: Flavor\nname: [unclosed\n",
    );
    let outcome = site.load();
    assert!(outcome.desired.is_none());
    assert_eq!(findings(&outcome).len(), 1);
    let f = &findings(&outcome)[0];
    assert!(
        f.starts_with("flavors.yaml:4:1: error: invalid YAML:"),
        "{f}"
    );
}

#[test]
fn duplicate_key_names_both_places() {
    let site = valid_site();
    site.write(
        "flavors.yaml",
        FLAVORS.replace("disk: 40\n", "disk: 40\nram: 4096\n"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        ["flavors.yaml:7:1: error: duplicate key `ram`"]
    );
    let related = &outcome.diagnostics[0].related[0];
    assert_eq!(related.position().map(|p| (p.1, p.2)), Some((5, 1)));
}

#[test]
fn misspelt_key_suggests_the_right_one() {
    let site = valid_site();
    site.write(
        "bitstreams.yaml",
        BITSTREAMS.replace("  bs-uuid: 0b7d", "  bs_uuid: 0b7d"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        ["bitstreams.yaml:7:3: error: unknown field `bs_uuid` in `metadata`"]
    );
    assert_eq!(help_of(&outcome, "bs_uuid"), "did you mean `bs-uuid`?");
}

#[test]
fn unknown_top_level_field_lists_the_fields_when_nothing_is_close() {
    let site = valid_site();
    site.write(
        "flavors.yaml",
        FLAVORS.replace("disk: 40\n", "disk: 40\ncolour: blue\n"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        ["flavors.yaml:7:1: error: unknown field `colour` in a Flavor"]
    );
    assert_eq!(
        help_of(&outcome, "colour"),
        "the fields here are: `apiVersion`, `kind`, `name`, `vcpus`, `ram`, `disk`, `ephemeral`, `swap`, `is_public`, `description`, `adopt`, `extra_specs`"
    );
}

#[test]
fn unquoted_version_asks_for_quotes() {
    let site = valid_site();
    site.write(
        "bitstreams.yaml",
        BITSTREAMS.replace("version: \"1.0\"", "version: 1.10"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        ["bitstreams.yaml:26:12: error: `metadata.version` must be a string, not a number"]
    );
    assert_eq!(
        help_of(&outcome, "version"),
        "quote it so YAML keeps it as written: `\"1.10\"`"
    );
}

#[test]
fn bad_uuid_pci_address_and_placement_name() {
    let site = valid_site();
    site.write(
        "bitstreams.yaml",
        BITSTREAMS.replace(
            "function_uuid: 1d2c3b4a-5e6f-4a0b-8c1d-2e3f4a5b6c7d",
            "function_uuid: 1d2c3b4a",
        ),
    );
    site.write(
        "hosts.yaml",
        HOSTS.replace("\"0000:86:00.0\"", "\"86:00.0\""),
    );
    site.write(
        "placement.yaml",
        crate::support::PLACEMENT.replace("name: CUSTOM_FPGA\n", "name: custom-fpga\n"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "bitstreams.yaml:13:18: error: `1d2c3b4a` in `metadata.function_uuid` is not a UUID",
            "hosts.yaml:14:14: error: `86:00.0` in `devices[2].address` is not a PCI address",
            "placement.yaml:3:7: error: `custom-fpga` is not a custom Placement name",
        ]
    );
    assert_eq!(
        help_of(&outcome, "custom-fpga"),
        "custom names are `CUSTOM_` then upper-case letters, digits and `_`: `CUSTOM_FPGA`"
    );
}

#[test]
fn missing_required_field_is_reported_at_its_parent() {
    let site = valid_site();
    site.write("flavors.yaml", FLAVORS.replace("vcpus: 4\n", ""));
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        ["flavors.yaml:1:1: error: missing field `vcpus` in this Flavor"]
    );
    assert_eq!(
        help_of(&outcome, "vcpus"),
        "add `vcpus`: number of virtual CPUs"
    );
}

#[test]
fn duplicate_names_and_bs_uuids_across_files() {
    let site = valid_site();
    site.write(
        "more.yaml",
        "apiVersion: fpga-sync/v1\nkind: Trait\nname: CUSTOM_FPGA\n---\n".to_owned()
            + &BITSTREAMS
                .split("---\n")
                .next()
                .unwrap()
                .replace("name: pac-shell", "name: other-shell"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "more.yaml:11:12: error: bs-uuid `0b7d2b4e-8f0c-4d1a-9e55-3c2f6a1d7e01` is declared twice",
            "placement.yaml:3:7: error: trait `CUSTOM_FPGA` is declared twice",
        ]
    );
    // Files are read in path order, so `more.yaml` holds the first declaration of the trait
    // and `bitstreams.yaml` the first of the bs-uuid.
    let first = outcome.diagnostics[1].related[0].position().unwrap();
    assert_eq!((first.0.as_str(), first.1, first.2), ("more.yaml", 3, 7));
    let first = outcome.diagnostics[0].related[0].position().unwrap();
    assert_eq!(
        (first.0.as_str(), first.1, first.2),
        ("bitstreams.yaml", 7, 12)
    );
}

#[test]
fn flavor_references_must_resolve() {
    let site = valid_site();
    site.write(
        "flavors.yaml",
        FLAVORS.replace(
            "trait:CUSTOM_ACCELERATOR_CRYPTO",
            "trait:CUSTOM_ACCELERATOR_CRYPT",
        ) + "  resources1:CUSTOM_FPGA_XILINX: 1\n  required1: CUSTOM_FPGA,HW_CPU_X86_AVX2\n",
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "flavors.yaml:9:3: error: trait `CUSTOM_ACCELERATOR_CRYPT` is not declared in the repository",
            "flavors.yaml:10:3: error: resource class `CUSTOM_FPGA_XILINX` is not declared in the repository",
        ]
    );
    assert_eq!(
        help_of(&outcome, "CUSTOM_ACCELERATOR_CRYPT`"),
        "did you mean `CUSTOM_ACCELERATOR_CRYPTO`?"
    );
    assert!(
        help_of(&outcome, "CUSTOM_FPGA_XILINX")
            .contains("kind: ResourceClass\n  name: CUSTOM_FPGA_XILINX")
    );
}

#[test]
fn seed_required_spelling_is_normalised() {
    let site = valid_site();
    site.write(
        "flavors.yaml",
        FLAVORS.replace(
            "  trait:CUSTOM_ACCELERATOR_CRYPTO: required\n",
            "  required1: CUSTOM_FPGA, CUSTOM_ACCELERATOR_CRYPTO\n",
        ),
    );
    let desired = site.load().desired.expect("valid");
    let specs: Vec<String> = desired.flavors["fpga.aes"]
        .spec
        .extra_specs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(
        specs,
        [
            "resources:CUSTOM_FPGA_INTEL_PF=2",
            "trait1:CUSTOM_ACCELERATOR_CRYPTO=required",
            "trait1:CUSTOM_FPGA=required"
        ]
    );
}

#[test]
fn assignment_references_and_shell_rules() {
    let site = valid_site();
    site.write(
        "hosts.yaml",
        HOSTS.replace(
            "  - address: \"0000:5e:00.0\"\n    bitstream: pac-shell\n",
            "",
        ) + "  - address: \"0000:af:00.0\"\n    bitstream: aes-218\n",
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "hosts.yaml:9:16: error: partial bitstream `aes-128` needs shell `pac-shell` on this device, and nothing assigns or pins it",
            "hosts.yaml:15:16: error: bitstream `aes-218` is not declared in the repository",
        ]
    );
    assert_eq!(
        help_of(&outcome, "needs shell"),
        "add `shell: pac-shell` to this entry, or an entry for the whole device with `bitstream: pac-shell`"
    );
    assert_eq!(help_of(&outcome, "aes-218"), "did you mean `aes-128`?");
}

#[test]
fn a_pinned_shell_satisfies_a_partial_bitstream() {
    let site = valid_site();
    site.write(
        "hosts.yaml",
        HOSTS
            .replace(
                "  - address: \"0000:5e:00.0\"\n    bitstream: pac-shell\n",
                "",
            )
            .replace(
                "    bitstream: aes-128\n",
                "    bitstream: aes-128\n    shell: pac-shell\n",
            ),
    );
    assert_eq!(findings(&site.load()), Vec::<String>::new());
}

#[test]
fn shell_id_must_name_a_declared_shell() {
    let site = valid_site();
    site.write(
        "bitstreams.yaml",
        BITSTREAMS.replace(
            "shell_id: 0b7d2b4e-8f0c-4d1a-9e55-3c2f6a1d7e01",
            "shell_id: 0b7d2b4e-8f0c-4d1a-9e55-3c2f6a1d7e99",
        ),
    );
    let outcome = site.load();
    assert!(
        findings(&outcome).contains(
            &"bitstreams.yaml:25:13: error: `shell_id` 0b7d2b4e-8f0c-4d1a-9e55-3c2f6a1d7e99 names no shell bitstream of the repository".to_owned()
        ),
        "{:#?}",
        findings(&outcome)
    );
    assert_eq!(
        help_of(&outcome, "names no shell"),
        "the shells declared are: `0b7d2b4e-8f0c-4d1a-9e55-3c2f6a1d7e01` (pac-shell)"
    );
}

#[test]
fn topology_counts_must_match_the_lists() {
    let site = valid_site();
    site.write(
        "bitstreams.yaml",
        BITSTREAMS
            .replace("pf_num: 2", "pf_num: 3")
            .replace("vf_num: 2", "vf_num: 4"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "bitstreams.yaml:31:13: error: `pf_num` is 3 but `pf` lists 2 physical functions",
            "bitstreams.yaml:32:13: error: `vf_num` is 4 but the physical functions list 2 virtual functions",
        ]
    );
}

#[test]
fn bitstream_files_must_exist_stay_inside_and_match_their_digest() {
    let site = valid_site();
    let wrong = "ab".repeat(32);
    site.write(
        "bitstreams.yaml",
        BITSTREAMS
            .replace(
                "file: files/shell.bin",
                &format!("file: files/shell.bin\nsha256: {wrong}"),
            )
            .replace("file: files/aes.gbs", "file: ../outside.gbs"),
    );
    site.write(
        "more.yaml",
        BITSTREAMS
            .split("---\n")
            .next()
            .unwrap()
            .replace("pac-shell", "s2")
            .replace("0b7d2b4e", "0b7d2b4f")
            .replace("files/shell.bin", "files/nothing.bin"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "bitstreams.yaml:5:9: error: `files/shell.bin` does not match its pinned sha256",
            "bitstreams.yaml:19:7: error: `../outside.gbs` is not a path inside the repository: it climbs out with `..`",
            "more.yaml:4:7: error: bitstream file `files/nothing.bin` does not exist in the repository",
        ]
    );
    // sha256 of "shell bitstream", as `printf 'shell bitstream' | sha256sum` prints it.
    let actual = "af216e017bae0732539adb0e8d5b0e9527567b1d17ec1073c2f4ea4e4b061f73";
    assert_eq!(
        help_of(&outcome, "pinned sha256"),
        format!(
            "if the new file is intended, pin it: `sha256: {actual}`; otherwise restore the file"
        )
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_out_of_the_repository_is_refused() {
    let site = valid_site();
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::remove_file(site.path().join("files/aes.gbs")).unwrap();
    std::os::unix::fs::symlink(outside.path(), site.path().join("files/aes.gbs")).unwrap();
    let outcome = site.load();
    let f = findings(&outcome);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        f[0].starts_with("bitstreams.yaml:18:7: error: `files/aes.gbs` is a symlink to `/"),
        "{}",
        f[0]
    );
}

#[test]
fn every_problem_of_every_file_is_reported_in_one_run() {
    let site = valid_site();
    site.write(
        "flavors.yaml",
        FLAVORS
            .replace("vcpus: 4", "vcpus: four")
            .replace("disk: 40", "disk: 40\nswapp: 1"),
    );
    site.write(
        "placement.yaml",
        crate::support::PLACEMENT.replace("CUSTOM_FPGA_INTEL_PF", "CUSTOM_fpga_pf"),
    );
    site.write(
        "hosts.yaml",
        HOSTS.replace("backend: opae", "backend: opea"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "flavors.yaml:4:8: error: `vcpus` must be an integer, not a string",
            "flavors.yaml:7:1: error: unknown field `swapp` in a Flavor",
            "hosts.yaml:5:10: error: `opea` is not a valid `backend`",
            "placement.yaml:11:7: error: `CUSTOM_fpga_pf` is not a custom Placement name",
        ]
    );
    assert_eq!(help_of(&outcome, "opea"), "did you mean `opae`?");
    assert_eq!(help_of(&outcome, "swapp"), "did you mean `swap`?");
}

#[test]
fn two_groups_assigning_one_device_conflict() {
    let site = valid_site();
    site.write(
        "hosts2.yaml",
        "apiVersion: fpga-sync/v1\nkind: HostGroup\nname: rack-b\nhosts: [compute-b07]\nbackend: opae\ndevices:\n  - address: \"0000:5e:00.0\"\n    bitstream: pac-shell\n",
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "hosts2.yaml:3:7: error: host `compute-b07` device `address:0000:5e:00.0` is assigned by both `rack-a` and `rack-b`"
        ]
    );
}

#[test]
fn overrides_replace_by_device_and_must_name_group_hosts() {
    let site = valid_site();
    site.write(
        "hosts.yaml",
        HOSTS.to_owned()
            + "overrides:\n  - hosts: [compute-b03, compute-z9]\n    devices:\n      - address: \"0000:5e:00.0\"\n        region: \"0\"\n        bitstream: aes-128\n        shell: pac-shell\n        traits: [CUSTOM_FPGA]\n",
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "hosts.yaml:17:26: error: override names host `compute-z9`, which the group's `hosts` do not include"
        ]
    );
}

#[test]
fn manual_devices_take_no_bitstream_and_managed_ones_need_one() {
    let site = valid_site();
    site.write(
        "hosts.yaml",
        HOSTS
            .replace(
                "    policy: manual\n",
                "    policy: manual\n    bitstream: aes-128\n",
            )
            .replace(
                "  - address: \"0000:86:00.0\"\n",
                "  - pci_id: \"8086:0b30\"\n  - address: \"0000:86:00.0\"\n",
            ),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "hosts.yaml:14:5: error: a managed device needs `bitstream`",
            "hosts.yaml:17:5: error: a manual device has no assigned bitstream: fpga-sync leaves it alone",
        ]
    );
}

#[test]
fn glance_limits_on_properties_and_tags_are_checked() {
    let site = valid_site();
    let long_name = "p".repeat(256);
    let many: String = (0..110).map(|i| format!("  extra{i}: v\n")).collect();
    let tags: Vec<String> = (0..128).map(|i| format!("t{i}")).collect();
    site.write(
        "bitstreams.yaml",
        BITSTREAMS
            .replace(
                "properties:\n  type: crypto\n",
                &format!("properties:\n  type: crypto\n  {long_name}: x\n{many}"),
            )
            .replace("tags: [crypto]", &format!("tags: [{}]", tags.join(", "))),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "bitstreams.yaml:19:1: error: the image would carry 129 tags, more than the 128 Glance allows",
            "bitstreams.yaml:39:1: error: the image would carry 133 properties, more than the 128 Glance allows",
            "bitstreams.yaml:41:3: error: property `pppppppppppppppppppppppppppppppppppppppp` cannot be stored: its name is longer than the 255 characters Glance accepts",
        ]
    );
}

#[test]
fn an_fpga_manager_entry_needs_a_manager_name() {
    let site = valid_site();
    site.write(
        "hosts.yaml",
        format!("{HOSTS}  - manager: pcap\n    policy: manual\n"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        ["hosts.yaml:16:14: error: `pcap` in `devices[3].manager` is not an FPGA manager name"]
    );
    assert!(help_of(&outcome, "pcap").contains("e.g. `fpga0`"));
}

#[test]
fn an_fpga_manager_entry_names_one_device_and_has_no_region() {
    let site = valid_site();
    site.write(
        "hosts.yaml",
        format!(
            "{HOSTS}  - manager: fpga0\n    policy: manual\n  - manager: fpga1\n    region: \"0\"\n    policy: manual\n  - address: \"0000:3b:00.0\"\n    manager: fpga2\n    policy: manual\n"
        ),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "hosts.yaml:19:5: error: an FPGA manager has no regions: it loads the whole device",
            "hosts.yaml:22:5: error: a device entry has one of `address`, `pci_id` and `manager`, not several",
        ]
    );
    assert!(help_of(&outcome, "has no regions").contains("remove `region`"));
}

#[test]
fn a_rollout_is_checked_with_located_errors() {
    let site = valid_site();
    let rollout = "rollout:\n  max_unavailable: \"150%\"\n  canary: [compute-a01, \"compute-b*\", compute-z9]\n  min_verified_seconds: 60\n  max_failures: 0\n  pasued: true\n";
    site.write("hosts.yaml", format!("{HOSTS}{rollout}"));
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "hosts.yaml:20:17: error: `rollout.max_failures` must be at least 1",
            "hosts.yaml:21:3: error: unknown field `pasued` in `rollout`",
        ]
    );
    assert_eq!(help_of(&outcome, "pasued"), "did you mean `paused`?");
    // The schema passes; the cross-field checks speak next.
    site.write(
        "hosts.yaml",
        format!(
            "{HOSTS}{}",
            rollout.replace("  max_failures: 0\n  pasued: true\n", "")
        ),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "hosts.yaml:17:20: error: `max_unavailable: 150%` is not a share between 1% and 100%",
            "hosts.yaml:18:25: error: canary `compute-b*` is a pattern; canaries are named hosts",
            "hosts.yaml:18:39: error: canary `compute-z9` is not one of the hosts this rollout covers",
        ]
    );
    site.write(
        "hosts.yaml",
        format!("{HOSTS}rollout:\n  max_unavailable: lots\n  canary: true\n"),
    );
    let outcome = site.load();
    assert_eq!(
        findings(&outcome),
        [
            "hosts.yaml:17:20: error: `lots` in `rollout.max_unavailable` is neither a count nor a percentage",
            "hosts.yaml:18:11: error: `rollout.canary` must be an integer or a list, not a boolean",
        ]
    );
    assert_eq!(
        help_of(&outcome, "neither a count"),
        "write a number of hosts such as `2`, or a share such as `\"25%\"`"
    );
    site.write(
        "hosts.yaml",
        format!("{HOSTS}rollout:\n  max_unavailable: 2\n  canary: 1\n  paused: true\n"),
    );
    let outcome = site.load();
    assert_eq!(findings(&outcome), Vec::<String>::new());
    let group = &outcome.desired.unwrap().host_groups["rack-a"].spec;
    assert!(group.rollout.as_ref().is_some_and(|r| r.paused));
}

fn run_binary(site: &crate::support::Site, args: &[&str]) -> (i32, String, String) {
    let out = site.run(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Point 5: the fixes validation used to miss, through the binary.
#[test]
fn a_bitstream_named_by_its_bs_name_gets_a_did_you_mean() {
    let site = valid_site();
    // `pac-a10-fim` is the shell's `bs-name`; the document's name is `pac-shell`.
    site.write(
        "hosts.yaml",
        HOSTS.replace("bitstream: pac-shell", "bitstream: pac-a10-fim"),
    );
    let (code, _, err) = run_binary(&site, &["validate"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("bitstream `pac-a10-fim` is not declared in the repository"),
        "{err}"
    );
    assert!(
        err.contains("help: did you mean `pac-shell`? `pac-a10-fim` is its `bs-name`; host groups name a Bitstream by its `name`"),
        "{err}"
    );
}

#[test]
fn a_file_path_may_start_with_dot_slash() {
    let site = valid_site();
    site.write(
        "bitstreams.yaml",
        BITSTREAMS.replace("file: files/shell.bin", "file: ./files/shell.bin"),
    );
    let (code, out, err) = run_binary(&site, &["validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("valid: 7 documents"), "{out}");
    // A path that does leave the folder still says what it is relative to.
    site.write(
        "bitstreams.yaml",
        BITSTREAMS.replace("file: files/shell.bin", "file: ../shell.bin"),
    );
    let (code, _, err) = run_binary(&site, &["validate"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("write the path relative to the desired-state folder (`--dir`, else the repository root)"),
        "{err}"
    );
}

#[test]
fn with_dir_diagnostics_name_files_from_the_repository_root() {
    let site = valid_site();
    for file in [
        "bitstreams.yaml",
        "placement.yaml",
        "flavors.yaml",
        "hosts.yaml",
        "files/shell.bin",
        "files/aes.gbs",
    ] {
        std::fs::create_dir_all(site.path().join("state/files")).unwrap();
        std::fs::rename(site.path().join(file), site.path().join("state").join(file)).unwrap();
    }
    site.write(
        "state/flavors.yaml",
        FLAVORS.replace("vcpus: 4", "vcpus: 0"),
    );
    let (code, out, _) = run_binary(&site, &["validate", "--dir", "state", "--format", "json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["diagnostics"][0]["file"], "state/flavors.yaml",
        "{report}"
    );
    let (_, _, err) = run_binary(&site, &["validate", "--dir", "state"]);
    assert!(err.contains("╭─[state/flavors.yaml:4:8]"), "{err}");
    // Bitstream files stay relative to the state folder: the valid files are found.
    assert!(!err.contains("does not exist"), "{err}");
}

#[test]
fn a_tab_is_reported_on_its_own_line() {
    let site = valid_site();
    site.write("flavors.yaml", FLAVORS.replace("ram: 8192", "\tram: 8192"));
    let (code, _, err) = run_binary(&site, &["validate"]);
    assert_eq!(code, 1);
    assert!(err.contains("╭─[flavors.yaml:5:1]"), "{err}");
    assert!(
        err.contains("help: YAML does not allow tabs for indentation: indent with spaces"),
        "{err}"
    );
}

#[test]
fn a_help_line_from_a_field_description_is_a_whole_sentence() {
    let site = valid_site();
    site.write(
        "bitstreams.yaml",
        BITSTREAMS.replacen("  bs-name: pac-a10-fim\n", "", 1),
    );
    let (code, _, err) = run_binary(&site, &["validate"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("help: add `bs-name`: bitstream name, e.g. `aes-128`"),
        "{err}"
    );
    assert!(!err.contains("e.g\n"), "{err}");
}

#[test]
fn program_takes_a_device_as_lspci_prints_it() {
    let site = crate::support::Site::new();
    site.write("x.bin", b"a local bitstream").write(
        "hosts.yaml",
        "apiVersion: fpga-sync/v1\nkind: HostGroup\nname: lab\nhosts: [lab-1]\nbackend: sim\ndevices:\n  - address: \"0000:86:00.0\"\n    policy: manual\n",
    );
    let sim = site.path().join("sim");
    std::fs::create_dir_all(sim.join("devices")).unwrap();
    let state = site.path().join("state");
    let base = [
        "program",
        "--host",
        "lab-1",
        "--bitstream",
        "x.bin",
        "--sim-root",
        sim.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--device",
    ];
    let mut args = base.to_vec();
    args.push("3B:00.0");
    let (code, _, err) = run_binary(&site, &args);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("0000:3b:00.0"),
        "the address is read in full: {err}"
    );
    let mut args = base.to_vec();
    args.push("3b:00");
    let (code, _, err) = run_binary(&site, &args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`3b:00` is not a PCI address: write it as `lspci` does"),
        "{err}"
    );
}
