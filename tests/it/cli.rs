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

/// Runs the binary in `site` with extra environment variables.
fn run_env(
    site: &crate::support::Site,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args(args)
        .current_dir(site.path())
        .env("NO_COLOR", "1")
        .env_remove("FPGA_SYNC_CACHE_DIR")
        .env_remove("FPGA_SYNC_HOST")
        .env_remove("OS_CLOUD")
        .envs(env.iter().copied())
        .output()
        .expect("run fpga-sync")
}

/// Point 1: combinations that would silently ignore a flag are refused by the parser
/// (exit 2, nothing read or changed), each saying which flag and why.
#[test]
fn flags_that_would_be_ignored_are_refused() {
    let site = valid_site();
    site.write("plan.json", "{}");
    for (args, says) in [
        (
            &["plan", "--host", "h", "--out", "f.json"][..],
            "`--out` is for the cloud-wide plan, and `--host` plans one host's part",
        ),
        (
            &["plan", "--host", "h", "--prune"][..],
            "`--prune` is for the cloud-wide plan",
        ),
        (
            &["plan", "--host", "h", "--format", "markdown"][..],
            "`--format markdown` is for the cloud-wide plan",
        ),
        (
            &["apply", "plan.json", "--host", "h"][..],
            "a saved plan FILE is a cloud-wide plan, and `--host` applies one host's part",
        ),
        (
            &["apply", "plan.json", "--prune"][..],
            "`--prune` cannot be used with a saved plan FILE",
        ),
        (
            &["apply", "plan.json", "--ref", "main"][..],
            "`--ref` cannot be used with a saved plan FILE",
        ),
        (
            &["apply", "plan.json", "--site", "other"][..],
            "`--site` cannot be used with a saved plan FILE",
        ),
        (
            &["apply", "--host", "h", "--parallel", "8"][..],
            "`--parallel` is for the cloud-wide apply",
        ),
        (
            &["plan", "--sysfs-root", "/x"][..],
            "`--sysfs-root` is a host agent flag: it needs `--host NAME`",
        ),
        (
            &["apply", "--allow-busy"][..],
            "`--allow-busy` is a host agent flag",
        ),
        (
            &["devices"][..],
            "the following required arguments were not provided",
        ),
        (
            &["program", "--device", "5e:00.0", "--bitstream", "x"][..],
            "--host <NAME>",
        ),
        (
            &["validate", "--quiet", "--verbose"][..],
            "cannot be used with",
        ),
    ] {
        let out = run_env(&site, args, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(
        !site.path().join("f.json").exists(),
        "a refused plan writes no file"
    );
    // `--host` from FPGA_SYNC_HOST counts too, and says where it came from.
    let out = run_env(
        &site,
        &["plan", "--out", "f.json"],
        &[("FPGA_SYNC_HOST", "h")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`--host` (from FPGA_SYNC_HOST) plans one host's part"),
        "{}",
        text(&out.stderr)
    );
    // Settings from the environment are not refused with a saved plan (CI sets them).
    let out = run_env(
        &site,
        &["apply", "plan.json"],
        &[("FPGA_SYNC_SITE", "ci"), ("FPGA_SYNC_REPO", ".")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not a saved plan"));
}

/// Point 7: one grammar — `--format human|json` everywhere (`table` still accepted,
/// without a warning), short flags, `-V` with the commit, environment variables shown in
/// `--help`.
#[test]
fn one_grammar_across_commands() {
    let site = valid_site();
    for args in [
        &["validate", "--format", "table"][..],
        &["validate", "--format", "human", "-q"][..],
        &["validate", "--format=json"][..],
    ] {
        let out = run_env(&site, args, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("warning"), "{args:?}");
    }
    // `-q` leaves out the notes; the summary on stdout stays.
    let out = run_env(&site, &["validate", "-q"], &[]);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("valid: 7 documents"));
    for (cmd, formats) in [
        ("plan", "human, json, markdown"),
        ("observe", "human, json"),
        ("apply", "human, json"),
        ("import", "human, json"),
        ("program", "human, json"),
        ("devices", "human, json"),
        ("status", "human, json"),
    ] {
        let out = run_env(&site, &[cmd, "-h"], &[]);
        let help = text(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            help.contains(&format!("[possible values: {formats}]")),
            "{cmd}: {help}"
        );
    }
    let help = text(&run_env(&site, &["plan", "--help"], &[]).stdout);
    for wanted in [
        "-o, --out <FILE>",
        "[env: OS_CLOUD=",
        "[env: FPGA_SYNC_REPO]",
        "-q, --quiet",
        "-v, --verbose",
    ] {
        assert!(help.contains(wanted), "plan --help lacks {wanted}:\n{help}");
    }
    // The host agent's hardware flags do not crowd the cloud-wide help; `watch` lists them.
    assert!(!help.contains("--sysfs-root <DIR>"), "{help}");
    assert!(help.contains("Host agent (one host's part"), "{help}");
    let apply_help = text(&run_env(&site, &["apply", "--help"], &[]).stdout);
    assert!(apply_help.contains("-y, --auto-approve"), "{apply_help}");
    assert!(!apply_help.contains("--fpgaconf <PATH>"), "{apply_help}");
    let watch_help = text(&run_env(&site, &["watch", "--help"], &[]).stdout);
    assert!(watch_help.contains("--sysfs-root <DIR>"), "{watch_help}");
    // `-V` names the commit the binary was built from, when it was built in git.
    let out = run_env(&site, &["-V"], &[]);
    let version = text(&out.stdout);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_owned());
    match head {
        Some(commit) => assert_eq!(
            version,
            format!(
                "fpga-sync {} (commit {commit})\n",
                env!("CARGO_PKG_VERSION")
            )
        ),
        None => assert_eq!(
            version,
            format!("fpga-sync {}\n", env!("CARGO_PKG_VERSION"))
        ),
    }
    // Old spellings still work, unlisted: `--force` of `import` is `--overwrite`.
    let import_help = text(&run_env(&site, &["import", "--help"], &[]).stdout);
    assert!(import_help.contains("--overwrite") && !import_help.contains("--force"));
}

/// Every flag of `watch` (and so of the host agent) has an `FPGA_SYNC_*` (or `OS_CLOUD`)
/// environment variable, so that an agent's configuration can live outside its command
/// line.
#[test]
fn every_watch_flag_has_an_environment_variable() {
    let cmd = fpga_sync::cli::command();
    let watch = cmd.find_subcommand("watch").unwrap();
    let mut missing = Vec::new();
    for arg in watch.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set()
            || arg.is_global_set()
            || matches!(id, "help" | "version" | "color" | "quiet" | "verbose")
        {
            continue;
        }
        match arg.get_env().and_then(|e| e.to_str()) {
            Some(env) if env.starts_with("FPGA_SYNC_") || env == "OS_CLOUD" => {}
            other => missing.push(format!("--{} ({other:?})", arg.get_long().unwrap_or(id))),
        }
    }
    assert!(
        missing.is_empty(),
        "watch flags without a variable: {missing:?}"
    );
}

/// Point 2: `watch` with a cloud that cannot be resolved exits 1 at once (a service
/// manager restarts it with backoff) with a "did you mean" (point 9), instead of retrying
/// forever while it looks healthy.
#[test]
fn watch_exits_non_zero_on_a_cloud_it_cannot_resolve() {
    let site = valid_site();
    site.write(
        "clouds.yaml",
        "clouds:\n  prod:\n    auth_type: none\n    placement_endpoint_override: http://127.0.0.1:9\n",
    );
    let clouds = site.path().join("clouds.yaml");
    let out = run_env(
        &site,
        &[
            "watch",
            "--host",
            "compute-a01",
            "--repo",
            ".",
            "--max-runs",
            "3",
        ],
        &[
            ("OS_CLOUD", "prd"),
            ("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap()),
            (
                "FPGA_SYNC_STATE_DIR",
                site.path().join("state").to_str().unwrap(),
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let log = text(&out.stderr);
    assert!(
        log.contains("cloud `prd` (`--os-cloud` or OS_CLOUD) is not in"),
        "{log}"
    );
    assert!(log.contains("did you mean `prod`?"), "{log}");
    assert!(log.contains("ERROR"), "{log}");
    // The same mistake in a one-shot command: the error and its help.
    let out = run_env(
        &site,
        &["observe", "--os-cloud", "prd"],
        &[("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("help: did you mean `prod`? The clouds there are: `prod`"),
        "{}",
        text(&out.stderr)
    );
}

/// Point 6: with `--format json`, a command that fails prints the error object on stdout
/// (and nothing else), exit 1.
#[test]
fn json_errors_are_json() {
    let site = valid_site();
    site.write("clouds.yaml", "clouds:\n  prod:\n    auth_type: none\n");
    let clouds = site.path().join("clouds.yaml");
    let env = [("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap())];
    for args in [
        &["plan", "--format", "json", "--os-cloud", "prd"][..],
        &["observe", "--format", "json", "--os-cloud", "prd"][..],
        &["apply", "--format", "json", "-y", "--os-cloud", "prd"][..],
    ] {
        let out = run_env(&site, args, &env);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        let value: serde_json::Value = if args[0] == "apply" {
            serde_json::from_str(last).unwrap()
        } else {
            serde_json::from_str(&stdout).unwrap()
        };
        crate::json_output::assert_valid(
            if args[0] == "apply" { "apply" } else { "error" },
            &value,
        );
        assert_eq!(value["ok"], false, "{value}");
        let d = &value["diagnostics"][0];
        assert_eq!(d["code"], "fpga_sync::cloud", "{value}");
        assert!(
            d["message"].as_str().unwrap().contains("cloud `prd`"),
            "{value}"
        );
        assert!(
            d["help"]
                .as_str()
                .unwrap()
                .starts_with("did you mean `prod`?"),
            "{value}"
        );
    }
    // An invalid desired state: every diagnostic, with file and line.
    site.write("flavors.yaml", FLAVORS.replace("vcpus: 4", "vcpus: 0"));
    let out = run_env(&site, &["plan", "--format", "json"], &env);
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    crate::json_output::assert_valid("error", &value);
    assert_eq!(value["diagnostics"][0]["file"], "flavors.yaml");
    assert_eq!(value["diagnostics"][0]["line"], 4);
}

/// A saved plan goes to the cloud it was made for: `OS_CLOUD` in the environment does not
/// redirect it, `--os-cloud` on the command line does.
#[test]
fn a_saved_plan_keeps_its_cloud_unless_os_cloud_is_given() {
    let site = valid_site();
    site.write("clouds.yaml", "clouds:\n  prod:\n    auth:\n      username: x\n")
        .write(
            "plan.json",
            r#"{"format_version":1,"repo":".","dir":null,"worktree":true,"cloud":"prod","plan":{"format_version":1,"commit":null,"actions":[],"unchanged":0,"fingerprints":{},"not_pruned":[]}}"#,
        );
    let clouds = site.path().join("clouds.yaml");
    let env = [
        ("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap()),
        ("OS_CLOUD", "staging"),
    ];
    let out = run_env(&site, &["apply", "plan.json"], &env);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cloud `prod` (auth_type `password`) has no `auth_url`"),
        "{err}"
    );
    let out = run_env(
        &site,
        &["apply", "plan.json", "--os-cloud", "staging"],
        &env,
    );
    assert!(
        text(&out.stderr).contains("cloud `staging` (`--os-cloud` or OS_CLOUD) is not in"),
        "{}",
        text(&out.stderr)
    );
}
