//! Saved plans keep their format. Five hand-made observations of the test site give every
//! kind of action, reason and fingerprint key; their saved plans must equal, byte for
//! byte, the files in `tests/fixtures/saved-plans/`, which the planner wrote before its
//! phases, reasons, fingerprint keys, image statuses and ids were typed (commit cafd51e).
//! Those files load into the typed plan, nothing in them left untyped, and write back
//! unchanged. No cloud.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use fpga_sync::desired::Desired;
use fpga_sync::observed::{Observed, ObservedFlavor, ObservedImage};
use fpga_sync::plan::{FingerprintKey, PlanInput, PlanSettings, Why, plan};
use fpga_sync::reconcile::SavedPlan;
use fpga_sync::source::FileDigest;

use crate::support::valid_site;

const AES_UUID: &str = "5e4f3a2b-1c0d-4e8f-9a7b-6c5d4e3f2a1b";
const SHELL_UUID: &str = "0b7d2b4e-8f0c-4d1a-9e55-3c2f6a1d7e01";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/saved-plans")
        .join(format!("{name}.json"))
}

fn digests(d: &Desired) -> BTreeMap<String, FileDigest> {
    d.bitstreams
        .keys()
        .map(|n| {
            let digest = FileDigest {
                sha256: format!("{:0>64}", n.len()),
                size: 10,
            };
            (n.clone(), digest)
        })
        .collect()
}

fn sha_of(name: &str) -> String {
    format!("{:0>64}", name.len())
}

fn image(
    id: &str,
    name: Option<&str>,
    uuid: &str,
    site: Option<&str>,
    sha: &str,
    status: &str,
    state: &str,
) -> ObservedImage {
    let mut properties = BTreeMap::from([("bs-uuid".to_owned(), uuid.to_owned())]);
    if let Some(site) = site {
        properties.insert("fpga_sync_owner".into(), site.into());
        properties.insert("fpga_sync_sha256".into(), sha.into());
        properties.insert("fpga_sync_state".into(), state.into());
    }
    ObservedImage {
        id: id.into(),
        name: name.map(str::to_owned),
        status: status.into(),
        visibility: Some("private".into()),
        tags: vec!["FPGA".into()],
        size: Some(10),
        os_hash_algo: Some("sha512".into()),
        os_hash_value: Some(format!("{:x<128}", id.len())),
        updated_at: Some("2025-01-02T03:04:05Z".into()),
        properties,
    }
}

fn flavor(id: &str, name: &str, ram: u32, description: Option<&str>) -> ObservedFlavor {
    ObservedFlavor {
        id: id.into(),
        name: name.into(),
        shape: fpga_sync::observed::FlavorShape {
            vcpus: 4,
            ram,
            disk: 40,
            ephemeral: 0,
            swap: 0,
            is_public: true,
            description: description.map(str::to_owned),
        },
        extra_specs: BTreeMap::from([
            ("resources:CUSTOM_FPGA_INTEL_PF".to_owned(), "2".to_owned()),
            (
                "trait:CUSTOM_ACCELERATOR_CRYPTO".to_owned(),
                "required".to_owned(),
            ),
            ("fpga_sync:site".to_owned(), "default".to_owned()),
        ]),
    }
}

fn placement() -> Observed {
    Observed {
        traits: vec!["CUSTOM_ACCELERATOR_CRYPTO".into(), "CUSTOM_FPGA".into()],
        resource_classes: vec!["CUSTOM_FPGA_INTEL_PF".into()],
        ..Observed::default()
    }
}

/// Each scenario's saved plan, by fixture name.
fn scenarios() -> Vec<(&'static str, SavedPlan)> {
    let site = valid_site();
    let desired = site.load().desired.expect("valid");
    let digests = digests(&desired);
    let (aes, shell) = (sha_of("aes-128"), sha_of("pac-shell"));
    let mut out = Vec::new();
    let mut save = |name, desired: &Desired, observed: &Observed, settings| {
        let plan = plan(&PlanInput {
            desired,
            digests: &digests,
            observed,
            settings,
            live_lease: None,
        })
        .unwrap_or_else(|p| panic!("{name}: {p:?}"));
        let saved = SavedPlan {
            format_version: 1,
            repo: "/srv/site".into(),
            dir: None,
            worktree: false,
            cloud: "prod".into(),
            site: None,
            plan,
            fleet: None,
            schedulable: None,
            seen: None,
        };
        out.push((name, saved));
    };

    // Nothing there yet: creates.
    save(
        "fresh",
        &desired,
        &Observed::default(),
        PlanSettings::default(),
    );

    // New content, an unfinished upload beside a duplicate, a size change, and owned
    // objects that left the repository, pruned.
    let drift = Observed {
        images: vec![
            image(
                "img-aes-old",
                Some("aes-128"),
                AES_UUID,
                Some("default"),
                &"a".repeat(64),
                "active",
                "complete",
            ),
            image(
                "img-shell-queued",
                Some("pac-shell"),
                SHELL_UUID,
                Some("default"),
                &shell,
                "queued",
                "uploading",
            ),
            image(
                "img-shell-dup",
                Some("pac-shell"),
                SHELL_UUID,
                Some("default"),
                &"b".repeat(64),
                "active",
                "complete",
            ),
            image(
                "img-gone",
                Some("old-bitstream"),
                "11111111-2222-4333-8444-555555555555",
                Some("default"),
                &"c".repeat(64),
                "active",
                "complete",
            ),
            image(
                "img-noname",
                None,
                "66666666-7777-4888-9999-aaaaaaaaaaaa",
                Some("default"),
                &"d".repeat(64),
                "active",
                "complete",
            ),
            image(
                "img-theirs",
                Some("theirs"),
                "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff",
                Some("lab"),
                &"e".repeat(64),
                "active",
                "complete",
            ),
        ],
        flavors: vec![
            flavor("fl-aes", "fpga.aes", 4096, None),
            flavor("fl-gone", "fpga.gone", 2048, None),
        ],
        other_flavors: BTreeMap::from([("m1.small".into(), "fl-small".into())]),
        ..placement()
    };
    save(
        "drift",
        &desired,
        &drift,
        PlanSettings {
            prune: true,
            allow_mass_delete: true,
            ..PlanSettings::default()
        },
    );
    // The same without pruning: the objects that left are noted, the leftover deleted.
    save("kept", &desired, &drift, PlanSettings::default());

    // An upload not verified, one killed, a flavor changed in place.
    let recover = Observed {
        images: vec![
            image(
                "img-aes-half",
                Some("aes-128"),
                AES_UUID,
                Some("default"),
                &aes,
                "active",
                "uploading",
            ),
            image(
                "img-shell-killed",
                Some("pac-shell"),
                SHELL_UUID,
                Some("default"),
                &shell,
                "killed",
                "uploading",
            ),
        ],
        flavors: vec![flavor("fl-aes", "fpga.aes", 8192, Some("old"))],
        ..placement()
    };
    save("recover", &desired, &recover, PlanSettings::default());

    // Objects made by hand, adopted; a trait missing.
    let mut adopting = desired.clone();
    adopting.bitstreams.get_mut("aes-128").unwrap().spec.adopt = true;
    adopting
        .flavors
        .get_mut("fpga.aes")
        .unwrap()
        .spec
        .flavor
        .adopt = true;
    let adopt = Observed {
        images: vec![
            image(
                "img-aes-hand",
                Some("aes-128"),
                AES_UUID,
                None,
                &aes,
                "active",
                "",
            ),
            image(
                "img-shell-deleting",
                Some("pac-shell"),
                SHELL_UUID,
                Some("default"),
                &shell,
                "pending_delete",
                "complete",
            ),
        ],
        traits: vec!["CUSTOM_ACCELERATOR_CRYPTO".into()],
        other_flavors: BTreeMap::from([("fpga.aes".into(), "fl-hand".into())]),
        ..placement()
    };
    save("adopt", &adopting, &adopt, PlanSettings::default());
    out
}

fn to_file(saved: &SavedPlan) -> String {
    serde_json::to_string_pretty(saved).unwrap() + "\n"
}

/// Takes out the `id` each flavor to create carries since flavors are created with
/// fpga-sync's own id (`markers::flavor_id`), checking it is that id.
fn without_flavor_ids(value: &mut serde_json::Value, site: &str) -> usize {
    let mut found = 0;
    match value {
        serde_json::Value::Object(map) => {
            if map.contains_key("extra_specs")
                && let (Some(id), Some(name)) = (map.get("id"), map.get("name"))
            {
                let name = name.as_str().unwrap();
                assert_eq!(
                    id.as_str(),
                    Some(fpga_sync::markers::flavor_id(site, name).as_str())
                );
                map.shift_remove("id");
                found += 1;
            }
            for v in map.values_mut() {
                found += without_flavor_ids(v, site);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                found += without_flavor_ids(v, site);
            }
        }
        _ => {}
    }
    found
}

/// The fixture as the planner writes it since a queued image whose record is not what the
/// repository says is replaced rather than finished (the fixtures' queued images have
/// partial records): each `finish_image` becomes the `replace_image` of that image.
fn with_queued_replaced(text: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
    for action in value["plan"]["actions"].as_array_mut().unwrap() {
        if action["operation"]["op"] != "finish_image" {
            continue;
        }
        let id = action["operation"]["id"].as_str().unwrap().to_owned();
        let image = action["operation"]["image"].take();
        action["kind"] = "replace".into();
        action["reason"] = format!("an interrupted upload left image {id} `queued`").into();
        action["operation"] =
            serde_json::json!({"op": "replace_image", "old_id": id, "image": image});
    }
    serde_json::to_string_pretty(&value).unwrap() + "\n"
}

#[test]
fn saved_plans_are_byte_for_byte_what_the_untyped_planner_wrote() {
    let mut ids = 0;
    for (name, saved) in scenarios() {
        let want = with_queued_replaced(&std::fs::read_to_string(fixture(name)).unwrap());
        let mut value = serde_json::to_value(&saved).unwrap();
        ids += without_flavor_ids(&mut value, "default");
        let got = serde_json::to_string_pretty(&value).unwrap() + "\n";
        assert_eq!(got, want, "{name}");
    }
    assert!(ids > 0, "the flavors to create carry their id");
}

#[test]
fn saved_plans_of_the_untyped_planner_load_typed_and_write_back_unchanged() {
    let mut reasons = Vec::new();
    let mut key_kinds = BTreeSet::new();
    for name in ["fresh", "drift", "kept", "recover", "adopt"] {
        let path = fixture(name);
        let saved = SavedPlan::read(&path).unwrap_or_else(|d| panic!("{name}: {}", d.message));
        assert_eq!(
            to_file(&saved),
            std::fs::read_to_string(&path).unwrap(),
            "{name}"
        );
        key_kinds.extend(saved.plan.fingerprints.keys().map(FingerprintKey::kind));
        reasons.extend(saved.plan.actions.into_iter().filter_map(|a| a.reason));
    }
    assert_eq!(
        key_kinds,
        BTreeSet::from([
            "flavor",
            "flavor_named",
            "image",
            "images_of",
            "resource_class",
            "trait"
        ])
    );
    assert!(
        reasons.iter().all(|r| !matches!(r, Why::Other(_))),
        "every reason the planner writes reads back typed: {reasons:#?}"
    );
    let kinds: BTreeSet<String> = reasons
        .iter()
        .map(|r| {
            format!("{r:?}")
                .split([' ', '('])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(
            [
                "AdoptFlavor",
                "AdoptImage",
                "ContentChanged",
                "FinishUpload",
                "FixedFields",
                "Interrupted",
                "Leftover",
                "NewFlavor",
                "PrunedFlavor",
                "PrunedImage",
                "Upload",
                "VerifyUpload",
            ]
            .map(String::from)
        )
    );
}

#[test]
fn a_saved_plan_with_a_fingerprint_of_an_unknown_kind_is_refused_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    let text = std::fs::read_to_string(fixture("fresh")).unwrap();
    assert!(text.contains("\"trait:CUSTOM_FPGA\": \"absent\""));
    std::fs::write(
        &path,
        text.replace("\"trait:CUSTOM_FPGA\"", "\"provider:CUSTOM_FPGA\""),
    )
    .unwrap();
    let err = SavedPlan::read(&path).unwrap_err();
    assert!(
        err.message.contains("is not a saved plan")
            && err
                .message
                .contains("`provider:CUSTOM_FPGA` is not a fingerprint key"),
        "{}",
        err.message
    );
}
