//! The executor on a hand-made plan, with Placement replaced by a scripted server that
//! fails: the failed action's dependents are skipped, independent actions still run and
//! succeed against the real Glance and Nova, and every outcome is reported. Under a
//! lease, uploads carry its id and a lost lease starts no further action.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use fpga_sync::apply::{BitstreamFiles, Reporter, Under, apply, apply_under};
use fpga_sync::cloud::CloudError;
use fpga_sync::cloud::error::Service;
use fpga_sync::cloud::glance::ImageStatus;
use fpga_sync::cloud::session::{Session, SessionOptions};
use fpga_sync::plan::{Action, FlavorSpec, ImageSpec, Kind, ObjectType, Operation, Plan};

use crate::support::cloud::{NOAUTH, local_cloud, unique};
use crate::support::faulty::{Answer, serve};

struct Folder(PathBuf);

impl BitstreamFiles for Folder {
    fn path_for(&self, source: &str) -> std::io::Result<PathBuf> {
        Ok(self.0.join(source))
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<String>>);

impl Reporter for Events {
    fn started(&self, a: &Action) {
        self.0.lock().unwrap().push(format!("start {}", a.id));
    }
    fn progress(&self, _: &Action, _: u64, _: u64) {}
    fn finished(&self, a: &Action, outcome: &Result<(), CloudError>) {
        self.0.lock().unwrap().push(format!(
            "{} {}",
            if outcome.is_ok() { "done" } else { "failed" },
            a.id
        ));
    }
    fn skipped(&self, a: &Action, because: usize) {
        self.0
            .lock()
            .unwrap()
            .push(format!("skip {} because {because}", a.id));
    }
}

fn action(
    id: usize,
    kind: Kind,
    object: ObjectType,
    name: &str,
    depends_on: Vec<usize>,
    operation: Operation,
) -> Action {
    Action {
        id,
        kind,
        object,
        name: name.into(),
        reason: None,
        changes: vec![],
        depends_on,
        used_by: vec![],
        operation,
    }
}

#[tokio::test]
async fn a_failure_skips_its_dependents_and_lets_the_rest_finish() {
    let broken_placement = serve(vec![Answer::Status(
        500,
        vec![],
        r#"{"errors": [{"detail": "disk full"}]}"#.into(),
    )])
    .await;
    let mut config = local_cloud().config(NOAUTH);
    config
        .endpoint_overrides
        .insert(Service::Placement, broken_placement.url.clone());
    let session = Session::connect(config, SessionOptions::default())
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.bin"), b"bits").unwrap();
    let real_sha = {
        use sha2::Digest;
        sha2::Sha256::digest(b"bits")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let trait_name = unique("CUSTOM_EXEC");
    let image_name = unique("exec-image");
    let flavor_name = unique("exec.flavor");
    let plan = Plan {
        format_version: 1,
        commit: None,
        actions: vec![
            action(
                0,
                Kind::Create,
                ObjectType::Trait,
                &trait_name,
                vec![],
                Operation::EnsureTrait {
                    name: trait_name.clone(),
                },
            ),
            action(
                1,
                Kind::Create,
                ObjectType::Image,
                &image_name,
                vec![],
                Operation::CreateImage {
                    image: ImageSpec {
                        name: image_name.clone(),
                        visibility: "private".into(),
                        tags: vec!["FPGA".into()],
                        properties: BTreeMap::from([
                            ("fpga_sync_owner".into(), "exec-test".into()),
                            ("fpga_sync_state".into(), "uploading".into()),
                        ]),
                        source: "b.bin".into(),
                        sha256: real_sha,
                        size: 4,
                    },
                },
            ),
            action(
                2,
                Kind::Create,
                ObjectType::Flavor,
                &flavor_name,
                vec![0],
                Operation::CreateFlavor {
                    flavor: FlavorSpec {
                        name: flavor_name.clone(),
                        shape: fpga_sync::observed::FlavorShape {
                            vcpus: 1,
                            ram: 512,
                            disk: 1,
                            ephemeral: 0,
                            swap: 0,
                            is_public: true,
                            description: None,
                        },
                        extra_specs: BTreeMap::from([(
                            format!("trait:{trait_name}"),
                            "required".into(),
                        )]),
                        id: None,
                    },
                },
            ),
        ],
        unchanged: 0,
        fingerprints: BTreeMap::new(),
        not_pruned: vec![],
        in_progress: vec![],
    };
    let events = Events::default();
    let applied = apply(&plan, &session, &Folder(dir.path().to_owned()), &events, 4).await;
    assert_eq!(applied.succeeded, [1]);
    assert_eq!(
        applied.failed.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [0]
    );
    assert_eq!(
        applied.failed[0].1.to_string(),
        format!("Placement refused PUT /traits/{trait_name}: 500 Internal Server Error: disk full")
    );
    assert_eq!(applied.skipped, [(2, 0)]);
    assert_eq!(
        *events.0.lock().unwrap(),
        [
            "start 0",
            "failed 0",
            "start 1",
            "done 1",
            "skip 2 because 0"
        ]
    );

    // The independent image went all the way: uploaded, checked, marked complete.
    let glance = fpga_sync::cloud::glance::Glance::new(&session);
    let image = glance
        .images(&["FPGA"])
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name.as_deref() == Some(image_name.as_str()))
        .unwrap();
    assert_eq!(
        (
            &image.status,
            image.properties()["fpga_sync_state"].as_str()
        ),
        (&ImageStatus::Active, "complete")
    );
    glance.delete(&image.id).await.unwrap();
    let nova = fpga_sync::cloud::nova::Nova::new(&session);
    assert!(
        nova.flavors()
            .await
            .unwrap()
            .iter()
            .all(|f| f.name != flavor_name),
        "the skipped flavor was not created"
    );
}

#[tokio::test]
async fn content_that_is_not_the_planned_content_is_never_left_as_an_image() {
    let session = local_cloud().session(NOAUTH).await;
    let dir = tempfile::tempdir().unwrap();
    // The file changed between plan and apply.
    std::fs::write(dir.path().join("b.bin"), b"changed after planning").unwrap();
    let name = unique("exec-changed");
    let plan = Plan {
        format_version: 1,
        commit: None,
        actions: vec![action(
            0,
            Kind::Create,
            ObjectType::Image,
            &name,
            vec![],
            Operation::CreateImage {
                image: ImageSpec {
                    name: name.clone(),
                    visibility: "private".into(),
                    tags: vec!["FPGA".into()],
                    properties: BTreeMap::new(),
                    source: "b.bin".into(),
                    sha256: "0".repeat(64),
                    size: 4,
                },
            },
        )],
        unchanged: 0,
        fingerprints: BTreeMap::new(),
        not_pruned: vec![],
        in_progress: vec![],
    };
    let applied = apply(
        &plan,
        &session,
        &Folder(dir.path().to_owned()),
        &Events::default(),
        1,
    )
    .await;
    assert_eq!(applied.failed.len(), 1);
    assert!(
        applied.failed[0].1.to_string().starts_with(
            "`b.bin` (it changed after planning) does not match: expected sha256 0000"
        ),
        "{}",
        applied.failed[0].1
    );
    let glance = fpga_sync::cloud::glance::Glance::new(&session);
    assert!(
        glance
            .images(&["FPGA"])
            .await
            .unwrap()
            .iter()
            .all(|i| i.name.as_deref() != Some(name.as_str())),
        "the image was deleted again"
    );
}

#[tokio::test]
async fn under_a_lease_uploads_carry_its_id_and_a_lost_lease_starts_nothing_more() {
    let session = local_cloud().session(NOAUTH).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.bin"), b"leased bits").unwrap();
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(b"leased bits")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let name = unique("exec-leased");
    let traits: Vec<String> = (0..3).map(|_| unique("CUSTOM_EXEC_LEASE")).collect();
    let mut actions = vec![action(
        0,
        Kind::Create,
        ObjectType::Image,
        &name,
        vec![],
        Operation::CreateImage {
            image: ImageSpec {
                name: name.clone(),
                visibility: "private".into(),
                tags: vec!["FPGA".into()],
                properties: BTreeMap::from([("fpga_sync_state".into(), "uploading".into())]),
                source: "b.bin".into(),
                sha256: sha,
                size: 11,
            },
        },
    )];
    // One phase of three trait creations, run one at a time.
    for (i, t) in traits.iter().enumerate() {
        actions.insert(
            i,
            action(
                i,
                Kind::Create,
                ObjectType::Trait,
                t,
                vec![],
                Operation::EnsureTrait { name: t.clone() },
            ),
        );
    }
    for (i, a) in actions.iter_mut().enumerate() {
        a.id = i;
    }
    let plan = Plan {
        format_version: 1,
        commit: None,
        actions,
        unchanged: 0,
        fingerprints: BTreeMap::new(),
        not_pruned: vec![],
        in_progress: vec![],
    };
    let events = Events::default();
    // The lease is lost once the first trait is done.
    let halted = || {
        events
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| e == "done 0")
            .then(|| "the lease of site `x` was lost: broken".to_owned())
    };
    let applied = apply_under(
        &plan,
        &session,
        &Folder(dir.path().to_owned()),
        &events,
        1,
        &Under {
            lease: Some("lease-test"),
            halted: &halted,
        },
    )
    .await;
    assert_eq!(applied.succeeded, [0]);
    assert_eq!(applied.halted, [1, 2, 3]);
    assert_eq!(
        applied.halt_reason.as_deref(),
        Some("the lease of site `x` was lost: broken")
    );
    assert!(!applied.ok());
    assert_eq!(*events.0.lock().unwrap(), ["start 0", "done 0"]);
    let placement = fpga_sync::cloud::placement::Placement::new(&session);
    let existing = placement.traits("CUSTOM_EXEC_LEASE").await.unwrap();
    assert!(existing.contains(&traits[0]));
    assert!(!existing.contains(&traits[1]) && !existing.contains(&traits[2]));

    // Not halted: the upload records the lease it ran under.
    let only_image = Plan {
        actions: vec![Action {
            id: 0,
            depends_on: vec![],
            ..plan.actions[3].clone()
        }],
        ..plan
    };
    let applied = apply_under(
        &only_image,
        &session,
        &Folder(dir.path().to_owned()),
        &Events::default(),
        1,
        &Under {
            lease: Some("lease-test"),
            halted: &|| None,
        },
    )
    .await;
    assert!(applied.ok(), "{applied:?}");
    let glance = fpga_sync::cloud::glance::Glance::new(&session);
    let image = glance
        .images(&["FPGA"])
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name.as_deref() == Some(name.as_str()))
        .expect("uploaded");
    let properties = image.properties();
    assert_eq!(properties["fpga_sync_lease"].as_str(), "lease-test");
    assert_eq!(properties["fpga_sync_state"].as_str(), "complete");
    glance.delete(&image.id).await.unwrap();
}
