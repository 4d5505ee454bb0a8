//! The binary: exit codes, rendered diagnostics, `--format json`, `--help` texts.

use crate::support::{FLAVORS, valid_site};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn valid_site_exits_0_with_a_summary() {
    let site = valid_site();
    let out = site.run(&["validate", "--repo", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "valid: 7 documents (2 Bitstream, 1 Flavor, 1 HostGroup, 1 ResourceClass, 2 Trait)\n"
    );
    assert_eq!(
        text(&out.stderr),
        "read `.` as it is on disk: no commit pinned\n"
    );
}

#[test]
fn invalid_site_exits_1_with_rendered_diagnostics() {
    let site = valid_site();
    site.write(
        "flavors.yaml",
        FLAVORS
            .replace("ram: 8192", "ram: 8192\nram: 4096")
            .replace("vcpus: 4", "vcpus: -1"),
    );
    let out = site.run(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    insta::assert_snapshot!(stderr, @r"
    fpga_sync::yaml

      × duplicate key `ram`
       ╭─[flavors.yaml:6:1]
     4 │ vcpus: -1
     5 │ ram: 8192
       · ─┬─
       ·  ╰── first defined here
     6 │ ram: 4096
       · ─┬─
       ·  ╰── defined again here
     7 │ disk: 40
       ╰────
      help: a mapping may hold `ram` once; remove one of the two or merge them
    read `.` as it is on disk: no commit pinned
    invalid: 1 error(s)
    ");
}

#[test]
fn json_format_lists_every_diagnostic_with_positions() {
    let site = valid_site();
    site.write(
        "flavors.yaml",
        FLAVORS
            .replace("vcpus: 4", "vcpus: 0")
            .replace("disk: 40", "disk: 40\nswapp: 2"),
    );
    let out = site.run(&["validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["valid"], false);
    assert_eq!(report["source"]["commit"], serde_json::Value::Null);
    let diagnostics = report["diagnostics"].as_array().unwrap();
    let brief: Vec<String> = diagnostics
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{}-{}:{} {} {}",
                d["file"].as_str().unwrap(),
                d["line"],
                d["column"],
                d["end_line"],
                d["end_column"],
                d["code"].as_str().unwrap(),
                d["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            "flavors.yaml:4:8-4:9 fpga_sync::out_of_range `vcpus` must be at least 1",
            "flavors.yaml:7:1-7:6 fpga_sync::unknown_field unknown field `swapp` in a Flavor",
        ]
    );
    assert_eq!(diagnostics[1]["help"], "did you mean `swap`?");
    assert!(
        out.stderr.is_empty(),
        "JSON mode writes nothing else: {}",
        text(&out.stderr)
    );
}

#[test]
fn json_format_of_a_valid_site_counts_documents() {
    let out = valid_site().run(&["validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["documents"]["Bitstream"], 2);
    assert_eq!(report["diagnostics"], serde_json::json!([]));
}

#[test]
fn unreadable_source_exits_1_and_says_why() {
    let site = valid_site();
    let out = site.run(&["validate", "--repo", "no/such/folder"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`no/such/folder` is not a folder"),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: give `--repo` a local folder or git checkout"),
        "{stderr}"
    );
}

#[test]
fn every_subcommand_has_help() {
    let site = valid_site();
    for (args, expected) in [
        (
            vec!["--help"],
            "Declarative GitOps reconciler for FPGA clouds on OpenStack",
        ),
        (vec!["validate", "--help"], "--worktree"),
        (vec!["schema", "--help"], "yaml-language-server"),
    ] {
        let out = site.run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            text(&out.stdout).contains(expected),
            "{args:?}: {}",
            text(&out.stdout)
        );
    }
    let out = site.run(&["validate", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_itself() {
    let site = valid_site();
    for (shell, marker) in [
        ("bash", "complete -F _fpga__sync"),
        ("zsh", "#compdef fpga-sync"),
        ("fish", "complete -c fpga-sync"),
    ] {
        let out = site.run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        for word in ["rollout", "watch", "verify-every", "metrics-address"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let out = site.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));

    let out = site.run(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH fpga-sync 1"), "{page}");
    assert!(page.contains("Declarative GitOps reconciler"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let out = site.run(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let watch = std::fs::read_to_string(dir.path().join("fpga-sync-watch.1")).unwrap();
    assert!(watch.contains("FPGA_SYNC_VERIFY_EVERY"), "{watch}");
    for page in [
        "fpga-sync.1",
        "fpga-sync-rollout-status.1",
        "fpga-sync-plan.1",
    ] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
}

#[test]
fn an_agent_configuration_file_with_a_typo_is_refused_with_its_line() {
    let site = valid_site();
    site.write(
        "agent.conf",
        "# the agent\nFPGA_SYNC_HOST=compute-a01\nFPGA_SYNC_VERIFY_EVRY=5\n",
    );
    let out = site.run(&["watch", "--config", "agent.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: agent.conf:3: no option reads `FPGA_SYNC_VERIFY_EVRY`\n  help: did you mean `FPGA_SYNC_VERIFY_EVERY`?\n"
    );
    // The packaged default: every key an option reads; `--help` runs through it.
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd/agent.conf");
    let out = site.run(&["watch", "--config", shipped.to_str().unwrap(), "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
