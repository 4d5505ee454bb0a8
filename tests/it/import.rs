//! `fpga-sync import` against the real local cloud, through the binary: objects made by
//! hand with the clients (an FPGA image with the spec's metadata, topology and data, a
//! custom trait and resource class, an FPGA flavor) come out as YAML that validates, plans
//! as adoption (no collision), applies, and then plans empty; `--match` naming the image
//! and the flavor brings the trait and resource class the flavor asks for; Glance's
//! `owner_specified.*` checksums stay out; existing files are refused without
//! `--overwrite` (`--force` still works); incomplete metadata gets TODO comments and
//! warnings, not made-up values. Other tests share the cloud, so each test imports only its own objects
//! (`--match` on a unique token).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use fpga_sync::cloud::glance::{Glance, Image, NewImage};
use fpga_sync::cloud::hashing::HashAlgo;
use fpga_sync::cloud::nova::Nova;
use fpga_sync::cloud::placement::Placement;
use fpga_sync::cloud::session::Session;
use sha2::{Digest, Sha256};

use crate::support::cloud::{NOAUTH, local_cloud, unique};

/// The spec's topology JSON, as an operator following the seed would have set it.
const TOPOLOGY: &str = r#"{"pf_num":2,"vf_num":2,"pf":[{"name":"pf_1","capability":"","kpi":"","pci_offset":"0","vf":[{"name":"vf_1","pci_offset":"1"}]},{"name":"pf_2","capability":"","kpi":"","pci_offset":"2","vf":[{"name":"vf_2","pci_offset":"3"}]}]}"#;

/// Runs the binary in `cwd` against the noauth cloud, with no site from the environment.
fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args(args)
        .current_dir(cwd)
        .envs(local_cloud().os_env())
        .env("OS_CLOUD", NOAUTH)
        .env("NO_COLOR", "1")
        .env("FPGA_SYNC_CACHE_DIR", cwd.join(".cache"))
        .env_remove("FPGA_SYNC_SITE")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn uuid() -> String {
    uuid::Uuid::from_u128(rand::random()).to_string()
}

/// An active FPGA image with `properties` and `data`, made as an operator would.
async fn image_by_hand(
    session: &Session,
    name: &str,
    properties: BTreeMap<String, String>,
    data: &[u8],
) -> Image {
    let glance = Glance::new(session);
    let image = glance
        .create(&NewImage {
            name: name.into(),
            visibility: "private".into(),
            tags: vec!["FPGA".into(), "crypto".into()],
            properties,
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), data).unwrap();
    glance
        .upload(
            &image.id,
            &dir.path().join("data"),
            HashAlgo::Sha512,
            Arc::new(|_| {}),
        )
        .await
        .unwrap();
    image
}

#[tokio::test]
async fn imported_objects_validate_are_adopted_by_the_first_apply_and_then_plan_empty() {
    let cloud = local_cloud();
    let session = cloud.session(NOAUTH).await;
    let (glance, nova, placement) = (
        Glance::new(&session),
        Nova::new(&session),
        Placement::new(&session),
    );
    let token = unique("IMP");
    let trait_name = format!("CUSTOM_ACCELERATOR_{token}");
    let rc = format!("CUSTOM_FPGA_{token}_PF");
    placement.ensure_trait(&trait_name).await.unwrap();
    placement.ensure_resource_class(&rc).await.unwrap();
    let image_name = format!("aes-{token}.gbs");
    let data = format!("imported bitstream {token}\n").into_bytes();
    let properties: BTreeMap<String, String> = [
        ("bs-name", "aes-128".to_owned()),
        ("bs-uuid", uuid()),
        ("vendor", "Intel".into()),
        ("board", "PAC-A10".into()),
        ("version", "1.10".into()),
        ("driver", "OPAE".into()),
        ("driver_ver", "2.1".into()),
        ("driver_path", "/opt/opae".into()),
        ("topology", TOPOLOGY.into()),
        ("region_uuid", uuid()),
        ("function_uuid", uuid()),
        ("function_name", "aes-128".into()),
        ("type", "crypto".into()),
        ("note", "yes: \"1.10\" # not a comment".into()),
        ("owner_specified.openstack.sha256", "0".repeat(64)),
        ("owner_specified.openstack.object", "images/aes".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let image = image_by_hand(&session, &image_name, properties, &data).await;
    let flavor_name = format!("fpga.{token}");
    let flavor = nova
        .create_flavor(
            &flavor_name,
            &fpga_sync::observed::FlavorShape {
                vcpus: 2,
                ram: 1024,
                disk: 5,
                ephemeral: 0,
                swap: 0,
                is_public: true,
                description: Some("made by hand".into()),
            },
            None,
        )
        .await
        .unwrap();
    nova.set_extra_specs(
        &flavor.id,
        &BTreeMap::from([
            (format!("resources:{rc}"), "2".to_owned()),
            (format!("trait:{trait_name}"), "required".to_owned()),
            ("hw:cpu_policy".to_owned(), "dedicated".to_owned()),
        ]),
    )
    .await
    .unwrap();

    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("site");
    let site_arg = site.to_string_lossy().into_owned();
    // The image and the flavor by name; the trait and class come with the flavor.
    let (image_glob, flavor_glob) = (format!("aes-{token}*"), flavor_name.clone());
    let import = |force: bool| {
        let mut args = vec![
            "import",
            "--to",
            &site_arg,
            "--match",
            &image_glob,
            "--match",
            &flavor_glob,
        ];
        if force {
            args.push("--force");
        }
        run(work.path(), &args)
    };
    let out = import(false);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(
        text(&out.stdout).contains(&format!("bitstreams/files/aes-{token}.gbs")),
        "{}",
        text(&out.stdout)
    );

    let read = |name: &str| std::fs::read_to_string(site.join(name)).unwrap();
    let bitstreams = read("bitstreams.yaml");
    let sha = format!("{:x}", Sha256::digest(&data));
    for line in [
        "# yaml-language-server: $schema=./fpga-sync.schema.json\n",
        &format!("# Glance image {}\n", image.id),
        &format!("name: \"{image_name}\"\n"),
        &format!("file: \"bitstreams/files/aes-{token}.gbs\"\n"),
        &format!("sha256: \"{sha}\"\n"),
        "tags:\n  - \"crypto\"\nadopt: true\n",
        "  version: \"1.10\"\n",
        "  topology:\n    pf_num: 2\n    vf_num: 2\n    pf:\n      - name: \"pf_1\"\n        pci_offset: 0\n        vf:\n          - name: \"vf_1\"\n            pci_offset: 1\n",
        "  \"note\": \"yes: \\\"1.10\\\" # not a comment\"\n",
        "  \"type\": \"crypto\"\n",
    ] {
        assert!(bitstreams.contains(line), "no {line:?} in:\n{bitstreams}");
    }
    assert!(bitstreams.starts_with("# yaml-language-server:"));
    assert!(!bitstreams.contains("fpga_sync_"), "{bitstreams}");
    assert!(!bitstreams.contains("owner_specified"), "{bitstreams}");
    assert_eq!(
        std::fs::read(site.join(format!("bitstreams/files/aes-{token}.gbs"))).unwrap(),
        data
    );
    let placement_yaml = read("placement.yaml");
    assert!(
        placement_yaml.contains(&format!("kind: \"Trait\"\nname: \"{trait_name}\"\n"))
            && placement_yaml.contains(&format!("kind: \"ResourceClass\"\nname: \"{rc}\"\n")),
        "{placement_yaml}"
    );
    let flavors = read("flavors.yaml");
    for line in [
        format!("name: \"{flavor_name}\"\nvcpus: 2\nram: 1024\ndisk: 5\n"),
        "description: \"made by hand\"\nadopt: true\n".to_owned(),
        format!("  \"resources:{rc}\": 2\n"),
        format!("  \"trait:{trait_name}\": \"required\"\n"),
        "  \"hw:cpu_policy\": \"dedicated\"\n".to_owned(),
    ] {
        assert!(flavors.contains(&line), "no {line:?} in:\n{flavors}");
    }
    assert_eq!(
        read("fpga-sync.schema.json"),
        fpga_sync::desired::schema::document_schema_text()
    );

    let validate = run(
        work.path(),
        &["validate", "--worktree", "--repo", &site_arg],
    );
    assert!(
        validate.status.success(),
        "{}{}",
        text(&validate.stdout),
        text(&validate.stderr)
    );

    let again = import(false);
    assert_eq!(again.status.code(), Some(1));
    let err = text(&again.stderr);
    assert!(
        err.contains(&format!(
            "refusing to overwrite `{}`",
            site.join("bitstreams.yaml").display()
        )) && err.contains("`--overwrite`"),
        "{err}"
    );
    // Only the flavor: no claim that the cloud holds no FPGA images.
    let only_flavor = work.path().join("only-flavor");
    let out = run(
        work.path(),
        &[
            "import",
            "--to",
            only_flavor.to_str().unwrap(),
            "--match",
            &flavor_name,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bitstreams = std::fs::read_to_string(only_flavor.join("bitstreams.yaml")).unwrap();
    assert!(
        bitstreams.contains("# Only the images and flavors `--match` names")
            && bitstreams.contains("# No FPGA-tagged images to import.")
            && !bitstreams.contains("holds no"),
        "{bitstreams}"
    );

    let plan = |site_name: &str| {
        run(
            work.path(),
            &[
                "plan",
                "--repo",
                &site_arg,
                "--worktree",
                "--site",
                site_name,
                "--detailed-exitcode",
            ],
        )
    };
    let out = plan(&token);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{shown}{}", text(&out.stderr));
    assert!(
        shown.contains(&format!("adopt image {}", image.id)),
        "{shown}"
    );
    assert!(shown.contains(&format!("flavor {flavor_name}")), "{shown}");
    assert!(
        !shown.contains("+ image") && !shown.contains("+ flavor") && !shown.contains("-/+"),
        "adopted in place, nothing created or replaced: {shown}"
    );
    let out = run(
        work.path(),
        &[
            "apply",
            "--repo",
            &site_arg,
            "--worktree",
            "--site",
            &token,
            "--auto-approve",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = plan(&token);
    assert_eq!(
        out.status.code(),
        Some(0),
        "converged: {}",
        text(&out.stdout)
    );
    let adopted = glance.image(&image.id).await.unwrap().properties();
    assert_eq!(adopted["fpga_sync_owner"], token);
    assert_eq!(adopted["fpga_sync_sha256"], sha);

    // Imported again after the adoption, the marks stay out and the plan stays empty.
    let out = import(true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("is managed by fpga-sync site `{token}`")),
        "{}",
        text(&out.stderr)
    );
    assert!(!read("bitstreams.yaml").contains("fpga_sync_"));
    assert!(!read("flavors.yaml").contains("fpga_sync:site"));
    let out = plan(&token);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    glance.delete(&image.id).await.unwrap();
    nova.delete_flavor(&flavor.id).await.unwrap();
    placement.delete_trait(&trait_name).await.unwrap();
    placement.delete_resource_class(&rc).await.unwrap();
}

#[tokio::test]
async fn incomplete_metadata_gets_todos_and_warnings_and_validate_points_at_it() {
    let session = local_cloud().session(NOAUTH).await;
    let glance = Glance::new(&session);
    let token = unique("IMPHALF");
    let name = format!("half-{token}");
    let properties = BTreeMap::from([
        ("bs-name".to_owned(), "half".to_owned()),
        ("bs-uuid".to_owned(), "not-a-uuid".to_owned()),
        ("vendor".to_owned(), "Intel".to_owned()),
    ]);
    let image = image_by_hand(&session, &name, properties, b"half a bitstream").await;
    let queued = glance
        .create(&NewImage {
            name: format!("queued-{token}"),
            visibility: "private".into(),
            tags: vec!["FPGA".into()],
            properties: BTreeMap::new(),
        })
        .await
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("site");
    let site_arg = site.to_string_lossy().into_owned();
    let out = run(
        work.path(),
        &["import", "--to", &site_arg, "--match", &format!("*{token}")],
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("warning: image `{name}` ({}) is incomplete: metadata `board`, `version`, `driver_ver`, `driver_path`, `function_uuid` missing", image.id)),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "warning: image `queued-{token}` ({}) is `queued`: it has no data to import",
            queued.id
        )),
        "{err}"
    );
    let bitstreams = std::fs::read_to_string(site.join("bitstreams.yaml")).unwrap();
    assert!(
        bitstreams.contains("# TODO: metadata `board`, `version`, `driver_ver`, `driver_path`, `function_uuid` missing")
            && bitstreams.contains("# TODO: metadata `bs-uuid` is not a uuid\n")
            && bitstreams.contains("  bs-uuid: \"not-a-uuid\"\n  vendor: \"Intel\"\n")
            && !bitstreams.contains("board:")
            && !bitstreams.contains(&format!("queued-{token}")),
        "{bitstreams}"
    );

    let validate = run(
        work.path(),
        &["validate", "--worktree", "--repo", &site_arg],
    );
    assert_eq!(validate.status.code(), Some(1));
    let err = text(&validate.stderr);
    assert!(
        err.contains("missing field `board` in `metadata`") && err.contains("bitstreams.yaml"),
        "{err}"
    );

    glance.delete(&image.id).await.unwrap();
    glance.delete(&queued.id).await.unwrap();
}

#[test]
fn a_bad_match_pattern_is_a_usage_error() {
    let work = tempfile::tempdir().unwrap();
    let out = run(work.path(), &["import", "--to", "site", "--match", "[oops"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`--match [oops` is not a valid glob"),
        "{}",
        text(&out.stderr)
    );
    assert!(!work.path().join("site").exists(), "nothing written");
}
