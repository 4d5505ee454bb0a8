//! Whether flavors can be scheduled, offline: `validate`'s warning for a flavor no
//! host-group entry can serve (class, traits derived from verified bitstreams included,
//! amount, granular groups), with file and line; the allocation-candidates query `plan`
//! asks for each FPGA flavor; counting and rendering the answer.

use std::collections::BTreeMap;

use fpga_sync::plan::schedulable::{
    FlavorSlots, candidate_query, count, fpga_request, offers, query_text, render,
};

use crate::support::{BITSTREAMS, HOSTS, PLACEMENT, Site, examples_dir, findings};

/// The function trait `aes-128` reports once verified.
const AES_FUNCTION: &str = "CUSTOM_FPGA_FUNCTION_ID_INTEL_7A6B5C4D3E2F4A1B9C8D7E6F5A4B3C2D";

fn site_with(flavors: &str, hosts: &str) -> Site {
    let site = Site::new();
    site.write("files/shell.bin", b"shell bitstream")
        .write("files/aes.gbs", b"aes bitstream")
        .write("bitstreams.yaml", BITSTREAMS)
        .write(
            "placement.yaml",
            format!(
                "{PLACEMENT}---\napiVersion: fpga-sync/v1\nkind: Trait\nname: {AES_FUNCTION}\n---\napiVersion: fpga-sync/v1\nkind: Trait\nname: CUSTOM_NOBODY\n---\napiVersion: fpga-sync/v1\nkind: ResourceClass\nname: CUSTOM_FPGA_DEV\n"
            ),
        )
        .write("flavors.yaml", flavors)
        .write("hosts.yaml", hosts);
    site
}

fn flavor(name: &str, specs: &str) -> String {
    format!(
        "apiVersion: fpga-sync/v1\nkind: Flavor\nname: {name}\nvcpus: 1\nram: 512\ndisk: 1\nextra_specs:\n{specs}---\n"
    )
}

#[test]
fn validate_warns_about_each_flavor_no_entry_can_serve_with_file_and_line() {
    let flavors = [
        // Served: the entry's class, its trait and the function trait of its bitstream.
        flavor(
            "served",
            &format!(
                "  resources:CUSTOM_FPGA_INTEL_PF: 2\n  trait:CUSTOM_ACCELERATOR_CRYPTO: required\n  trait:{AES_FUNCTION}: required\n"
            ),
        ),
        // A trait nobody reports.
        flavor(
            "nobody",
            "  resources:CUSTOM_FPGA_INTEL_PF: 1\n  trait:CUSTOM_NOBODY: required\n",
        ),
        // More than the topology's two PFs.
        flavor("too-many", "  resources:CUSTOM_FPGA_INTEL_PF: 3\n"),
        // A granular group, forbidding what the slot has.
        flavor(
            "granular",
            "  resources1:CUSTOM_FPGA_INTEL_PF: 1\n  required1: '!CUSTOM_FPGA'\n",
        ),
        // Served by the manual claimable slot.
        flavor("dev", "  resources:CUSTOM_FPGA_DEV: 1\n"),
        // Cyborg's device profiles are not fpga-sync's to check; nor are non-FPGA ones.
        flavor("cyborg", "  accel:device_profile: gzip\n"),
        flavor("plain", "  hw:cpu_policy: dedicated\n"),
    ]
    .concat();
    let hosts = HOSTS.replace(
        "  - address: \"0000:86:00.0\"\n    policy: manual\n",
        "  - address: \"0000:86:00.0\"\n    policy: manual\n    resource_class: CUSTOM_FPGA_DEV\n",
    );
    assert_ne!(hosts, HOSTS);
    let outcome = site_with(&flavors, &hosts).load();
    assert!(outcome.desired.is_some(), "{:#?}", findings(&outcome));
    let found = findings(&outcome);
    assert_eq!(
        found,
        [
            "flavors.yaml:19:3: warning: flavor `nobody` can never be scheduled: it asks for 1 `CUSTOM_FPGA_INTEL_PF` with CUSTOM_NOBODY, and the closest entry, host group `rack-a` with `aes-128`, lacks CUSTOM_NOBODY",
            "flavors.yaml:29:3: warning: flavor `too-many` can never be scheduled: it asks for 3 `CUSTOM_FPGA_INTEL_PF`, and the closest entry, host group `rack-a` with `aes-128`, offers 2 unit(s)",
            "flavors.yaml:38:3: warning: flavor `granular` can never be scheduled: it asks for 1 `CUSTOM_FPGA_INTEL_PF` without CUSTOM_FPGA in group `1`, and the closest entry, host group `rack-a` with `aes-128`, has CUSTOM_FPGA",
        ],
        "{found:#?}"
    );

    // Without host groups the hosts report through something else: no warning.
    let site = site_with(&flavors, "");
    std::fs::remove_file(site.path().join("hosts.yaml")).unwrap();
    let outcome = site.load();
    assert_eq!(findings(&outcome), Vec::<String>::new());
}

#[test]
fn the_binary_prints_the_warning_and_stays_valid() {
    let site = site_with(
        &flavor(
            "nobody",
            "  resources:CUSTOM_FPGA_INTEL_PF: 1\n  trait:CUSTOM_NOBODY: required\n",
        ),
        HOSTS,
    );
    let out = site.run(&["validate", "--repo", "."]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("flavor `nobody` can never be scheduled")
            && stderr.contains("flavors.yaml:8:3"),
        "{stderr}"
    );
}

#[test]
fn plan_asks_placement_for_the_fpga_part_of_each_flavor() {
    let outcome = Site {
        dir: tempfile::tempdir().unwrap(),
    }
    .load_spec(|spec| spec.repo = examples_dir().to_string_lossy().into_owned());
    let desired = outcome.desired.clone().expect("the examples are valid");
    assert!(
        !outcome
            .diagnostics
            .iter()
            .any(|d| d.code == "fpga_sync::unschedulable"),
        "every example flavor can be served: {:#?}",
        findings(&outcome)
    );
    let offers = offers(&desired);
    let queries: BTreeMap<&str, String> = desired
        .flavors
        .values()
        .filter_map(|f| fpga_request(&f.spec.flavor.name, &f.spec.extra_specs, &offers))
        .map(|r| {
            (
                desired.flavors[&r.flavor].spec.flavor.name.as_str(),
                query_text(&candidate_query(&r)),
            )
        })
        .collect();
    assert_eq!(
        queries,
        BTreeMap::from([
            (
                "fpga.aes128.granular",
                "resources1=CUSTOM_FPGA_INTEL_PF:2&required1=CUSTOM_ACCELERATOR_CRYPTO,CUSTOM_HW_INTEL".to_owned()
            ),
            (
                "fpga.aes128.medium",
                "resources=CUSTOM_FPGA_INTEL_PF:2&required=CUSTOM_ACCELERATOR_CRYPTO,CUSTOM_FPGA,CUSTOM_HW_INTEL".to_owned()
            ),
            (
                "fpga.gzip.u250",
                "resources=CUSTOM_FPGA_XILINX_PF:1&required=CUSTOM_ACCELERATOR_COMPRESSION,CUSTOM_HW_XILINX".to_owned()
            ),
        ])
    );

    let medium = fpga_request(
        "fpga.aes128.medium",
        &desired.flavors["fpga.aes128.medium"].spec.extra_specs,
        &offers,
    )
    .unwrap();
    let candidate =
        |p: &str, rc: &str| BTreeMap::from([(p.to_owned(), BTreeMap::from([(rc.to_owned(), 2)]))]);
    let names = BTreeMap::from([("u1".to_owned(), "sim-lab-01_0000:5e:00.0".to_owned())]);
    let slots = count(
        &medium,
        &[
            candidate("u1", "CUSTOM_FPGA_INTEL_PF"),
            candidate("u2", "CUSTOM_FPGA_INTEL_PF"),
            candidate("root", "VCPU"),
        ],
        &names,
    );
    assert_eq!(slots, ["sim-lab-01_0000:5e:00.0", "u2"]);

    let shown = [
        FlavorSlots {
            flavor: "fpga.aes128.medium".into(),
            request: "resources=CUSTOM_FPGA_INTEL_PF:2".into(),
            slots: Some(2),
            providers: slots,
            error: None,
        },
        FlavorSlots {
            flavor: "fpga.gzip.u250".into(),
            request: "resources=CUSTOM_FPGA_XILINX_PF:1".into(),
            slots: Some(0),
            providers: Vec::new(),
            error: None,
        },
    ];
    let text = render(&shown, false);
    assert!(
        text.contains("fpga.aes128.medium           2 slot(s): sim-lab-01_0000:5e:00.0, u2")
            && text.contains("fpga.gzip.u250               0 slots: nothing offers resources=CUSTOM_FPGA_XILINX_PF:1"),
        "{text}"
    );
    let markdown = render(&shown, true);
    assert!(
        markdown.contains("| `fpga.gzip.u250` | 0 ⚠ |  | `resources=CUSTOM_FPGA_XILINX_PF:1` |"),
        "{markdown}"
    );
}
