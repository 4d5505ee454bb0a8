//! `plan` and `apply` end to end against the real local cloud, through the binary: a site
//! repository in git is applied, then each kind of change shows as exactly that change
//! (rendered plans snapshotted) and converges; stale saved plans are refused; objects
//! fpga-sync does not own are never touched; an upload killed halfway is finished by the
//! next apply; the prune guard holds; the `openstack` CLI sees what the repository says.

use std::path::Path;
use std::process::{Command, Output};

use fpga_sync::cloud::glance::ImageStatus;
use git2::Repository;

use crate::support::Site;
use crate::support::cloud::{KEYSTONE, NOAUTH, local_cloud, unique};

/// A site repository in git whose names carry a token, so tests share the cloud safely.
struct Repo {
    site: Site,
    git: Repository,
    token: String,
    cloud: &'static str,
}

fn files(t: &str) -> Vec<(String, String)> {
    let lower = t.to_ascii_lowercase();
    let uuid = |n: u8| {
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            u32::from_str_radix(&lower[lower.len() - 8..], 16).unwrap_or(0),
            n
        )
    };
    vec![
        // Fixed content, so the digests in the snapshots stay the same from run to run.
        ("files/shell.bin".into(), "shell bitstream\n".into()),
        ("files/aes.gbs".into(), "aes bitstream\n".into()),
        (
            "bitstreams.yaml".into(),
            format!(
                "apiVersion: fpga-sync/v1\nkind: Bitstream\nname: shell-{lower}\nfile: files/shell.bin\nmetadata:\n  bs-name: shell\n  bs-uuid: {s}\n  vendor: Intel\n  board: PAC-A10\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {f1}\n---\napiVersion: fpga-sync/v1\nkind: Bitstream\nname: aes-{lower}\nfile: files/aes.gbs\ntags: [crypto]\nmetadata:\n  bs-name: aes-128\n  bs-uuid: {a}\n  vendor: Intel\n  board: PAC-A10\n  shell_id: {s}\n  version: \"1.0\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {f2}\nproperties:\n  type: crypto\n",
                s = uuid(1),
                a = uuid(2),
                f1 = uuid(3),
                f2 = uuid(4)
            ),
        ),
        (
            "placement.yaml".into(),
            format!(
                "apiVersion: fpga-sync/v1\nkind: Trait\nname: CUSTOM_{t}_CRYPTO\n---\napiVersion: fpga-sync/v1\nkind: ResourceClass\nname: CUSTOM_{t}_PF\n"
            ),
        ),
        (
            "flavors.yaml".into(),
            format!(
                "apiVersion: fpga-sync/v1\nkind: Flavor\nname: small-{lower}\nvcpus: 2\nram: 2048\ndisk: 10\nextra_specs:\n  resources:CUSTOM_{t}_PF: 1\n  trait:CUSTOM_{t}_CRYPTO: required\n---\napiVersion: fpga-sync/v1\nkind: Flavor\nname: big-{lower}\nvcpus: 8\nram: 16384\ndisk: 80\nextra_specs:\n  resources1:CUSTOM_{t}_PF: 2\n  required1: CUSTOM_{t}_CRYPTO\n"
            ),
        ),
    ]
}

impl Repo {
    fn new(cloud: &'static str) -> Repo {
        let site = Site::new();
        let token = unique("E2E");
        for (path, text) in files(&token) {
            site.write(&format!("state/{path}"), text);
        }
        let git = Repository::init(site.path()).unwrap();
        let repo = Repo {
            site,
            git,
            token,
            cloud,
        };
        repo.commit("initial");
        repo
    }

    fn lower(&self) -> String {
        self.token.to_ascii_lowercase()
    }

    fn edit(&self, path: &str, from: &str, to: &str) {
        let full = self.site.path().join("state").join(path);
        let text = std::fs::read_to_string(&full).unwrap();
        assert!(text.contains(from), "{path} has no {from:?}");
        std::fs::write(full, text.replacen(from, to, 1)).unwrap();
    }

    fn commit(&self, message: &str) {
        crate::support::commit_all(&self.git, "*", message);
    }

    fn run(&self, args: &[&str]) -> Output {
        let cloud = local_cloud();
        Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
            .args(args)
            .current_dir(self.site.path())
            .envs(cloud.os_env())
            .env("OS_CLOUD", self.cloud)
            .env("FPGA_SYNC_SITE", &self.token)
            .env("FPGA_SYNC_CACHE_DIR", self.site.path().join(".cache"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn plan(&self, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec!["plan", "--dir", "state", "--detailed-exitcode"];
        args.extend(extra);
        let out = self.run(&args);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    fn apply(&self, extra: &[&str]) -> (i32, String) {
        let mut args = vec!["apply", "--dir", "state", "--auto-approve"];
        args.extend(extra);
        let out = self.run(&args);
        (
            out.status.code().unwrap_or(-1),
            format!("{}{}", text(&out.stdout), text(&out.stderr)),
        )
    }

    /// The plan's text without the header, with the token and ids made stable.
    fn shown(&self, plan_stdout: &str) -> String {
        let body = plan_stdout
            .split_once("\n\n")
            .map_or(plan_stdout, |(_, rest)| rest);
        let mut out = body
            .replace(&self.token, "TOKEN")
            .replace(&self.lower(), "token");
        for (i, id) in uuids(&out).into_iter().enumerate() {
            out = out.replace(&id, &format!("<id{i}>"));
        }
        out
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Glance ids in a text, in order of first appearance.
fn uuids(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, _) in text.char_indices() {
        let Some(cand) = text.get(i..i + 36) else {
            continue;
        };
        let ok = cand.char_indices().all(|(j, c)| {
            if [8, 13, 18, 23].contains(&j) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
        if ok && !out.iter().any(|o| o == cand) {
            out.push(cand.to_owned());
        }
    }
    out
}

#[test]
fn apply_converges_and_each_change_plans_exactly_that_change() {
    let repo = Repo::new(KEYSTONE);
    let (code, out, err) = repo.plan(&[]);
    assert_eq!(code, 2, "{out}{err}");
    insta::assert_snapshot!("first_plan", repo.shown(&out));
    let (code, log) = repo.apply(&[]);
    assert_eq!(code, 0, "{log}");
    let (code, out, _) = repo.plan(&[]);
    assert_eq!(code, 0, "a second plan is empty: {out}");

    repo.edit(
        "bitstreams.yaml",
        "  type: crypto\n",
        "  type: compression\n",
    );
    repo.commit("property");
    let (code, out, _) = repo.plan(&[]);
    assert_eq!(code, 2);
    insta::assert_snapshot!("property_change", repo.shown(&out));
    assert_eq!(repo.apply(&[]).0, 0);

    repo.edit("bitstreams.yaml", "tags: [crypto]", "tags: [crypto, fast]");
    repo.commit("tag");
    let (_, out, _) = repo.plan(&[]);
    insta::assert_snapshot!("tag_change", repo.shown(&out));
    assert_eq!(repo.apply(&[]).0, 0);

    repo.edit("flavors.yaml", "ram: 2048", "ram: 4096");
    repo.commit("ram");
    let (_, out, _) = repo.plan(&[]);
    insta::assert_snapshot!("flavor_ram_change", repo.shown(&out));
    assert_eq!(repo.apply(&[]).0, 0);

    repo.edit("files/aes.gbs", "aes bitstream", "aes bitstream, rebuilt");
    repo.commit("file");
    let (_, out, _) = repo.plan(&[]);
    insta::assert_snapshot!("bitstream_file_change", repo.shown(&out));
    assert_eq!(repo.apply(&[]).0, 0);

    let flavors = std::fs::read_to_string(repo.site.path().join("state/flavors.yaml")).unwrap();
    std::fs::write(
        repo.site.path().join("state/flavors.yaml"),
        flavors.split("---\n").next().unwrap(),
    )
    .unwrap();
    repo.commit("remove a flavor");
    let (code, out, _) = repo.plan(&[]);
    assert_eq!(code, 0, "without --prune nothing is deleted");
    assert!(
        out.contains(&format!("note: flavor big-{} (", repo.lower())),
        "{out}"
    );
    let (_, out, _) = repo.plan(&["--prune"]);
    insta::assert_snapshot!("flavor_removed_with_prune", repo.shown(&out));
    assert_eq!(repo.apply(&["--prune"]).0, 0);
    let (code, out, _) = repo.plan(&["--prune"]);
    assert_eq!(code, 0, "converged: {out}");

    verify_with_the_openstack_cli(&repo);
}

/// What the `openstack` CLI shows after apply is what the repository says.
fn verify_with_the_openstack_cli(repo: &Repo) {
    let cloud = local_cloud();
    let openstack = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(cloud.var("FPGA_SYNC_CLOUD_OPENSTACK"))
            .args(args)
            .args(["-f", "json"])
            .envs(cloud.os_env())
            .env("OS_CLOUD", KEYSTONE)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openstack {args:?}: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let lower = repo.lower();
    let images = openstack(&["image", "list", "--tag", "FPGA", "--long"]);
    let names: Vec<&str> = images
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["Name"].as_str())
        .filter(|n| n.ends_with(&lower))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let shown = openstack(&["image", "show", &format!("aes-{lower}")]);
    let props = &shown["properties"];
    assert_eq!(props["type"], "compression");
    assert_eq!(props["bs-name"], "aes-128");
    assert_eq!(props["fpga_sync_owner"], repo.token.as_str());
    assert_eq!(props["fpga_sync_state"], "complete");
    let tags: Vec<&str> = shown["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(tags.contains(&"FPGA") && tags.contains(&"fast"), "{tags:?}");
    let flavor = openstack(&["flavor", "show", &format!("small-{lower}")]);
    assert_eq!(flavor["ram"], 4096);
    let specs = &flavor["properties"];
    assert_eq!(specs[format!("resources:CUSTOM_{}_PF", repo.token)], "1");
    let traits = openstack(&["--os-placement-api-version", "1.6", "trait", "list"]);
    assert!(
        traits
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == format!("CUSTOM_{}_CRYPTO", repo.token))
    );
    let classes = openstack(&["resource", "class", "list"]);
    assert!(
        classes
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == format!("CUSTOM_{}_PF", repo.token))
    );
}

#[tokio::test]
async fn a_stale_saved_plan_is_refused_naming_what_moved() {
    let repo = Repo::new(NOAUTH);
    assert_eq!(repo.apply(&[]).0, 0);
    repo.edit(
        "bitstreams.yaml",
        "  type: crypto\n",
        "  type: compression\n",
    );
    repo.commit("change");
    let plan_file = repo.site.path().join("plan.json");
    let out = repo.run(&[
        "plan",
        "--dir",
        "state",
        "--out",
        &plan_file.to_string_lossy(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Someone changes the image by hand before the plan is applied.
    let session = local_cloud().session(NOAUTH).await;
    let glance = fpga_sync::cloud::glance::Glance::new(&session);
    let image = glance
        .images(&["FPGA"])
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name.as_deref() == Some(&format!("aes-{}", repo.lower())))
        .unwrap();
    glance
        .patch(
            &image.id,
            &[fpga_sync::cloud::glance::PatchOp::Add {
                path: "/vendor".into(),
                value: serde_json::json!("Altera"),
            }],
        )
        .await
        .unwrap();
    let out = repo.run(&["apply", &plan_file.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    // The lease lines before the refusal carry the random site and lease id.
    let err: String = text(&out.stderr)
        .lines()
        .filter(|l| !l.contains(" the lease of site "))
        .map(|l| format!("{l}\n"))
        .collect();
    let err = err
        .replace(&*plan_file.to_string_lossy(), "PLAN")
        .replace(&repo.lower(), "token");
    insta::assert_snapshot!(err, @r"
    fpga_sync::stale_plan

      × the saved plan `PLAN` is stale: 1 object(s) changed since it was made:
      │   image aes-token: property vendor changed (Intel → Altera) since the plan was made
      help: make a new plan with `fpga-sync plan --out FILE` and review it
    ");
    // A plan saved before it recorded what it saw still loads; its refusal shows the
    // fingerprints.
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert!(old["seen"]["images"].is_array(), "{old}");
    old.as_object_mut().unwrap().remove("seen");
    std::fs::write(&plan_file, old.to_string()).unwrap();
    let out = repo.run(&["apply", &plan_file.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("image:{}: was active|", image.id)),
        "{err}"
    );
    assert_eq!(
        glance.image(&image.id).await.unwrap().properties()["type"],
        "crypto",
        "nothing was applied"
    );
    // A fresh plan, saved and applied at once, goes through.
    let out = repo.run(&[
        "plan",
        "--dir",
        "state",
        "--out",
        &plan_file.to_string_lossy(),
    ]);
    assert!(out.status.success());
    let out = repo.run(&["apply", &plan_file.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        glance.image(&image.id).await.unwrap().properties()["vendor"],
        "Intel"
    );
}

#[tokio::test]
async fn objects_fpga_sync_does_not_own_are_never_touched() {
    let repo = Repo::new(NOAUTH);
    let session = local_cloud().session(NOAUTH).await;
    let nova = fpga_sync::cloud::nova::Nova::new(&session);
    // A flavor made by hand under a name the repository wants.
    let theirs = nova
        .create_flavor(
            &format!("small-{}", repo.lower()),
            &fpga_sync::observed::FlavorShape {
                vcpus: 1,
                ram: 512,
                disk: 1,
                ephemeral: 0,
                swap: 0,
                is_public: true,
                description: Some("by hand".into()),
            },
            None,
        )
        .await
        .unwrap();
    let (code, out, err) = repo.plan(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(&format!(
            "collides with flavor {} that fpga-sync does not manage",
            theirs.id
        )),
        "{err}"
    );
    assert!(err.contains("add `adopt: true` to the Flavor"), "{err}");
    assert_eq!(repo.apply(&[]).0, 1);
    let after = nova
        .flavors()
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.id == theirs.id)
        .unwrap();
    assert_eq!(
        (
            after.ram,
            after.description.as_deref(),
            after.extra_specs.len()
        ),
        (512, Some("by hand"), 0),
        "untouched"
    );

    // Adopting it brings it in line.
    repo.edit("flavors.yaml", "disk: 10\n", "disk: 10\nadopt: true\n");
    repo.commit("adopt");
    let (code, log) = repo.apply(&[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(repo.plan(&[]).0, 0);

    // An FPGA image of someone else survives a prune of everything of ours.
    let glance = fpga_sync::cloud::glance::Glance::new(&session);
    let stranger = glance
        .create(&fpga_sync::cloud::glance::NewImage {
            name: unique("by-hand"),
            visibility: "private".into(),
            tags: vec!["FPGA".into()],
            properties: Default::default(),
        })
        .await
        .unwrap();
    for f in ["bitstreams.yaml", "flavors.yaml"] {
        std::fs::remove_file(repo.site.path().join("state").join(f)).unwrap();
    }
    repo.commit("empty");
    let (code, log) = repo.apply(&["--prune", "--allow-mass-delete"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        glance.image(&stranger.id).await.unwrap().status,
        ImageStatus::Queued,
        "the unowned image is still there"
    );
    glance.delete(&stranger.id).await.unwrap();
}

#[test]
fn the_prune_guard_refuses_mass_deletion() {
    let repo = Repo::new(NOAUTH);
    assert_eq!(repo.apply(&[]).0, 0);
    for f in ["bitstreams.yaml", "flavors.yaml"] {
        std::fs::remove_file(repo.site.path().join("state").join(f)).unwrap();
    }
    repo.commit("everything gone");
    let (code, out, err) = repo.plan(&["--prune"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("refusing to delete 4 of the 4 objects fpga-sync manages (100%, more than the 50% allowed)"), "{err}");
    assert!(err.contains("`--allow-mass-delete`"), "{err}");
    let (code, log) = repo.apply(&["--prune", "--allow-mass-delete"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(repo.plan(&["--prune"]).0, 0);
}

#[tokio::test]
async fn an_upload_killed_halfway_is_finished_by_the_next_apply() {
    // A plain folder with a big sparse bitstream, so the upload takes long enough to kill.
    let repo = Repo::new(NOAUTH);
    // A tag of its own, so the test finds its image without listing everyone else's.
    repo.edit(
        "bitstreams.yaml",
        "tags: [crypto]",
        &format!("tags: [crypto, {}]", repo.token),
    );
    let big = repo.site.path().join("state/files/aes.gbs");
    std::fs::File::options()
        .append(true)
        .open(&big)
        .unwrap()
        .set_len(384 * 1024 * 1024)
        .unwrap();
    let before: std::collections::BTreeSet<std::ffi::OsString> =
        std::fs::read_dir(local_cloud().state.join("noauth-glance/images"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args([
            "apply",
            "--dir",
            "state",
            "--worktree",
            "--auto-approve",
            "--parallel",
            "1",
        ])
        .current_dir(repo.site.path())
        .envs(local_cloud().os_env())
        .env("OS_CLOUD", NOAUTH)
        .env("FPGA_SYNC_SITE", &repo.token)
        .env("FPGA_SYNC_CACHE_DIR", repo.site.path().join(".cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(repo.site.path().join("killed-apply.log")).unwrap())
        .spawn()
        .unwrap();
    let session = local_cloud().session(NOAUTH).await;
    let glance = fpga_sync::cloud::glance::Glance::new(&session);
    let name = format!("aes-{}", repo.lower());
    // The single Glance worker is busy with the upload, so the API cannot show it in
    // progress; Glance's file store can: a new file that grows is this upload.
    let store = local_cloud().state.join("noauth-glance/images");
    let mut growing = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while growing.is_none() && std::time::Instant::now() < deadline {
        growing = std::fs::read_dir(&store)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| !before.contains(&e.file_name()))
            .find(|e| e.metadata().is_ok_and(|m| m.len() >= 16 << 20))
            .map(|e| e.file_name().to_string_lossy().into_owned());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log =
        || std::fs::read_to_string(repo.site.path().join("killed-apply.log")).unwrap_or_default();
    let id = growing.unwrap_or_else(|| {
        panic!(
            "the upload never reached Glance's store; the apply said:\n{}",
            log()
        )
    });
    let half = glance.image(&id).await.unwrap();
    assert_eq!(half.name.as_deref(), Some(name.as_str()));
    assert_ne!(
        half.status,
        ImageStatus::Active,
        "killed halfway: {}",
        log()
    );
    let left = glance.image(&half.id).await.unwrap();
    assert_ne!(
        left.properties()["fpga_sync_state"],
        "complete",
        "the killed run never marked it verified"
    );

    let out = repo.run(&[
        "plan",
        "--dir",
        "state",
        "--worktree",
        "--detailed-exitcode",
    ]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(&format!("image {name} (")) && shown.contains(&half.id),
        "the plan names the half-finished image: {shown}"
    );
    // One action at a time: the test Glance has a single worker, which one upload keeps busy.
    let out = repo.run(&[
        "apply",
        "--dir",
        "state",
        "--worktree",
        "--auto-approve",
        "--parallel",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = repo.run(&[
        "plan",
        "--dir",
        "state",
        "--worktree",
        "--detailed-exitcode",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "converged: {}",
        text(&out.stdout)
    );
    let done: Vec<_> = glance
        .images(&["FPGA"])
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.name.as_deref() == Some(&name))
        .collect();
    assert_eq!(done.len(), 1, "one image, no leftovers");
    assert_eq!(
        (&done[0].status, done[0].size),
        (&ImageStatus::Active, Some(384 * 1024 * 1024))
    );
    assert_eq!(done[0].properties()["fpga_sync_state"], "complete");
}

#[test]
fn an_unchanged_bitstream_is_not_read_again_its_digest_comes_from_the_cache() {
    let repo = Repo::new(NOAUTH);
    assert_eq!(repo.apply(&[]).0, 0);
    // In a commit the cache key is the blob id. Poison the cached digest of `aes.gbs`: if
    // the next plan read the file, it would find nothing to do; it trusts the cache, so it
    // plans a replace to the poisoned digest, which proves the file was not read.
    let blob = repo
        .git
        .head()
        .unwrap()
        .peel_to_tree()
        .unwrap()
        .get_path(Path::new("state/files/aes.gbs"))
        .unwrap()
        .id();
    let entry = repo
        .site
        .path()
        .join(".cache/digests")
        .join(format!("git-{blob}"));
    let cached: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&entry).expect("the first plan cached the digest"),
    )
    .unwrap();
    assert_eq!(cached["size"], "aes bitstream\n".len());
    std::fs::write(
        &entry,
        serde_json::json!({"sha256": "ab".repeat(32), "size": cached["size"]}).to_string(),
    )
    .unwrap();
    let (code, out, _) = repo.plan(&[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("content changed: sha256 73daf4ba07e2 → abababababab"),
        "{out}"
    );
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let repo = Repo::new(NOAUTH);
    let (_, plain, _) = repo.plan(&[]);
    assert!(
        !plain.contains('\x1b'),
        "not a terminal, NO_COLOR set: no colour"
    );
    let out = repo.run(&["--color", "always", "plan", "--dir", "state"]);
    let coloured = text(&out.stdout);
    assert!(coloured.contains("\x1b[32m+ trait CUSTOM_"), "{coloured:?}");
    let markdown = repo.run(&["plan", "--dir", "state", "--format", "markdown"]);
    let md = text(&markdown.stdout);
    assert!(
        md.starts_with("### fpga-sync plan\n")
            && md.contains("**Plan: 6 to add, 0 to change, 0 to replace, 0 to destroy.**")
            && md.contains("```diff\n+ + trait CUSTOM_"),
        "{md}"
    );
}
