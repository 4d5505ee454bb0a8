//! The pure planner on hand-made observations: deterministic, ordered with its
//! dependencies, identity by `bs-uuid` plus content, leftovers of interrupted runs
//! cleaned up, other sites' objects treated as not ours. No cloud.

use std::collections::BTreeMap;

use fpga_sync::desired::Desired;
use fpga_sync::observed::{Observed, ObservedImage};
use fpga_sync::plan::{Kind, ObjectType, Operation, PlanInput, PlanSettings, Why, plan};
use fpga_sync::source::FileDigest;

use crate::support::valid_site;

fn desired() -> Desired {
    valid_site().load().desired.expect("valid")
}

fn digests(d: &Desired) -> BTreeMap<String, FileDigest> {
    d.bitstreams
        .keys()
        .map(|n| {
            (
                n.clone(),
                FileDigest {
                    sha256: format!("{:0>64}", n.len()),
                    size: 10,
                },
            )
        })
        .collect()
}

fn image(
    id: &str,
    name: &str,
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
        name: Some(name.into()),
        status: status.into(),
        visibility: Some("private".into()),
        tags: vec!["FPGA".into()],
        size: Some(10),
        os_hash_algo: None,
        os_hash_value: None,
        updated_at: None,
        properties,
    }
}

#[test]
fn a_plan_from_nothing_is_ordered_and_knows_its_dependencies() {
    let d = desired();
    let digests = digests(&d);
    let observed = Observed::default();
    let input = PlanInput {
        desired: &d,
        digests: &digests,
        observed: &observed,
        settings: PlanSettings::default(),
        live_lease: None,
    };
    let p = plan(&input).unwrap();
    assert_eq!(p, plan(&input).unwrap(), "deterministic");
    let order: Vec<(ObjectType, &str)> = p
        .actions
        .iter()
        .map(|a| (a.object, a.name.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (ObjectType::Trait, "CUSTOM_ACCELERATOR_CRYPTO"),
            (ObjectType::Trait, "CUSTOM_FPGA"),
            (ObjectType::ResourceClass, "CUSTOM_FPGA_INTEL_PF"),
            (ObjectType::Image, "aes-128"),
            (ObjectType::Image, "pac-shell"),
            (ObjectType::Flavor, "fpga.aes"),
        ]
    );
    let flavor = p.actions.last().unwrap();
    assert_eq!(
        flavor.depends_on,
        [0, 2],
        "the flavor waits for the trait and the resource class it asks for"
    );
    assert_eq!(p.actions[1].used_by, ["host group rack-a"]);
    assert_eq!(p.counts(), (6, 0, 0, 0));
}

#[test]
fn identity_is_bs_uuid_and_content_and_leftovers_are_removed() {
    let d = desired();
    let digests = digests(&d);
    let aes = &d.bitstreams["aes-128"].spec;
    let uuid = aes.metadata.bs_uuid.to_string();
    let sha = digests["aes-128"].sha256.clone();
    // The verified image, a duplicate an interrupted run left queued, and someone else's.
    let observed = Observed {
        images: vec![
            image(
                "id-verified",
                "aes-128",
                &uuid,
                Some("default"),
                &sha,
                "active",
                "complete",
            ),
            image(
                "id-leftover",
                "aes-128",
                &uuid,
                Some("default"),
                &sha,
                "queued",
                "uploading",
            ),
        ],
        traits: vec!["CUSTOM_ACCELERATOR_CRYPTO".into(), "CUSTOM_FPGA".into()],
        resource_classes: vec!["CUSTOM_FPGA_INTEL_PF".into()],
        ..Observed::default()
    };
    let p = plan(&PlanInput {
        desired: &d,
        digests: &digests,
        observed: &observed,
        settings: PlanSettings::default(),
        live_lease: None,
    })
    .unwrap();
    let aes_actions: Vec<(Kind, &Operation)> = p
        .actions
        .iter()
        .filter(|a| a.name == "aes-128")
        .map(|a| (a.kind, &a.operation))
        .collect();
    assert!(
        matches!(aes_actions.as_slice(), [(Kind::Update, Operation::PatchImage { id, .. }), (Kind::Delete, Operation::DeleteImage { id: gone })] if id.as_str() == "id-verified" && gone.as_str() == "id-leftover"),
        "{aes_actions:#?}"
    );

    // New content under the same bs-uuid is a replace, never a second upload beside it.
    let changed = {
        let mut digests = digests.clone();
        digests.get_mut("aes-128").unwrap().sha256 = "f".repeat(64);
        digests
    };
    let p = plan(&PlanInput {
        desired: &d,
        digests: &changed,
        observed: &observed,
        settings: PlanSettings::default(),
        live_lease: None,
    })
    .unwrap();
    let replace = p
        .actions
        .iter()
        .find(|a| a.name == "aes-128" && a.kind == Kind::Replace)
        .expect("a replace");
    assert!(
        matches!(&replace.reason, Some(Why::ContentChanged { source, .. }) if source == "files/aes.gbs"),
        "{:?}",
        replace.reason
    );
    assert!(
        replace
            .reason
            .as_ref()
            .unwrap()
            .to_string()
            .starts_with("content changed: sha256 "),
        "{:?}",
        replace.reason
    );
}

#[test]
fn another_site_s_image_is_not_ours() {
    let d = desired();
    let digests = digests(&d);
    let uuid = d.bitstreams["aes-128"].spec.metadata.bs_uuid.to_string();
    let observed = Observed {
        images: vec![image(
            "id-theirs",
            "aes-128",
            &uuid,
            Some("lab"),
            &digests["aes-128"].sha256,
            "active",
            "complete",
        )],
        ..Observed::default()
    };
    let problems = plan(&PlanInput {
        desired: &d,
        digests: &digests,
        observed: &observed,
        settings: PlanSettings::default(),
        live_lease: None,
    })
    .unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .message
            .contains("collides with image id-theirs (active) that fpga-sync does not manage"),
        "{}",
        problems[0].message
    );
    // With pruning on, another site's image is never a deletion candidate either.
    let mut other = d.clone();
    other.bitstreams.clear();
    other.host_groups.clear();
    let p = plan(&PlanInput {
        desired: &other,
        digests: &digests,
        observed: &observed,
        settings: PlanSettings {
            prune: true,
            ..PlanSettings::default()
        },
        live_lease: None,
    })
    .unwrap();
    assert!(
        p.actions.iter().all(|a| a.object != ObjectType::Image),
        "{:#?}",
        p.actions
    );
}

#[test]
fn the_mass_delete_guard_counts_only_what_pruning_removes() {
    let d = desired();
    let digests = digests(&d);
    let aes = d.bitstreams["aes-128"].spec.metadata.bs_uuid.to_string();
    let sha = digests["aes-128"].sha256.clone();
    let owned = |id: &str, uuid: &str, status: &str, state: &str| {
        image(id, "aes-128", uuid, Some("default"), &sha, status, state)
    };
    // The verified image and three duplicates interrupted runs left.
    let leftovers = Observed {
        images: vec![
            owned("id-a", &aes, "active", "complete"),
            owned("id-b", &aes, "queued", "uploading"),
            owned("id-c", &aes, "queued", "uploading"),
            owned("id-d", &aes, "killed", "uploading"),
        ],
        ..Observed::default()
    };
    let strict = PlanSettings {
        prune: true,
        max_delete_share: 0.0,
        ..PlanSettings::default()
    };
    let input = |observed| PlanInput {
        desired: &d,
        digests: &digests,
        observed,
        settings: strict.clone(),
        live_lease: None,
    };
    let p = plan(&input(&leftovers)).expect("leftovers are not pruning");
    let deletes: Vec<&Why> = p
        .actions
        .iter()
        .filter(|a| a.kind == Kind::Delete)
        .filter_map(|a| a.reason.as_ref())
        .collect();
    assert_eq!(deletes.len(), 3, "{deletes:#?}");
    assert!(deletes.iter().all(|w| matches!(w, Why::Leftover { .. })));

    // One owned image that left the repository is what the guard counts: 1 of 5.
    let mut one_gone = leftovers.clone();
    one_gone.images.push(owned(
        "id-gone",
        "11111111-2222-4333-8444-555555555555",
        "active",
        "complete",
    ));
    let problems = plan(&input(&one_gone)).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0]
            .message
            .starts_with("refusing to delete 1 of the 5 objects fpga-sync manages (20%"),
        "{}",
        problems[0].message
    );
    let allowed = PlanInput {
        settings: PlanSettings {
            allow_mass_delete: true,
            ..strict.clone()
        },
        ..input(&one_gone)
    };
    let p = plan(&allowed).unwrap();
    let pruned: Vec<&Why> = p
        .actions
        .iter()
        .filter_map(|a| a.reason.as_ref())
        .filter(|w| w.is_pruning())
        .collect();
    assert_eq!(
        pruned,
        [&Why::PrunedImage {
            id: "id-gone".into()
        }]
    );
}

#[test]
fn an_upload_under_the_live_lease_is_left_alone_and_any_other_is_interrupted() {
    let d = desired();
    let digests = digests(&d);
    let aes = d.bitstreams["aes-128"].spec.metadata.bs_uuid.to_string();
    let sha = digests["aes-128"].sha256.clone();
    let marked = |id: &str, uuid: &str, status: &str, lease: Option<&str>| {
        let mut i = image(
            id,
            "aes-128",
            uuid,
            Some("default"),
            &sha,
            status,
            "uploading",
        );
        if let Some(lease) = lease {
            i.properties.insert("fpga_sync_lease".into(), lease.into());
        }
        i
    };
    // The live run's upload under way, and a leftover of its own earlier attempt.
    let observed = Observed {
        images: vec![
            marked("id-saving", &aes, "saving", Some("lease-live")),
            marked("id-queued", &aes, "queued", Some("lease-dead")),
            // An image of a bitstream that left the repository, being uploaded by the
            // live run (it applies another commit).
            marked(
                "id-other",
                "11111111-2222-4333-8444-555555555555",
                "queued",
                Some("lease-live"),
            ),
        ],
        ..Observed::default()
    };
    let planned = |live: Option<&str>| {
        plan(&PlanInput {
            desired: &d,
            digests: &digests,
            observed: &observed,
            settings: PlanSettings {
                prune: true,
                allow_mass_delete: true,
                ..PlanSettings::default()
            },
            live_lease: live,
        })
        .unwrap()
    };
    let touched = |p: &fpga_sync::plan::Plan| -> Vec<String> {
        p.actions
            .iter()
            .filter(|a| a.object == ObjectType::Image && a.name != "shell")
            .map(|a| format!("{:?} {} {:?}", a.kind, a.name, a.reason))
            .collect()
    };

    // `plan` while the run holding `lease-live` works: its uploads are left alone, even
    // with --prune, and noted.
    let p = planned(Some("lease-live"));
    assert!(
        p.actions
            .iter()
            .all(|a| a.object != ObjectType::Image || a.name != "aes-128"),
        "{:#?}",
        touched(&p)
    );
    assert!(
        p.actions.iter().all(|a| !matches!(
            &a.operation,
            Operation::DeleteImage { id } if id.as_str() == "id-other"
        )),
        "{:#?}",
        touched(&p)
    );
    assert_eq!(
        p.in_progress,
        [
            "image aes-128 (id-saving) is being uploaded by the run holding lease lease-live: left alone",
            "image aes-128 (id-other) is being uploaded by the run holding lease lease-live: left alone",
        ]
    );
    // Their fingerprints are kept: a saved plan is refused once they move.
    assert!(
        p.fingerprints
            .keys()
            .any(|k| k.to_string().contains("id-saving"))
    );

    // Under another lease (the holder of `lease-live` is gone), or with uploads marked
    // before leases, they are interrupted: replaced, finished, deleted.
    for live in [Some("lease-new"), None] {
        let p = planned(live);
        assert!(p.in_progress.is_empty(), "{:?}", p.in_progress);
        let aes_ops: Vec<&Operation> = p
            .actions
            .iter()
            .filter(|a| a.name == "aes-128")
            .map(|a| &a.operation)
            .collect();
        assert!(
            aes_ops.iter().any(
                |o| matches!(o, Operation::FinishImage { id, .. } if id.as_str() == "id-queued")
            ),
            "{aes_ops:#?}"
        );
        assert!(
            aes_ops
                .iter()
                .any(|o| matches!(o, Operation::DeleteImage { id } if id.as_str() == "id-saving")),
            "{aes_ops:#?}"
        );
        assert!(p.actions.iter().any(|a| matches!(
            &a.operation,
            Operation::DeleteImage { id } if id.as_str() == "id-other"
        )));
    }
}

/// Point 9: adopting another site's image is a highlighted warning in the plan (and
/// counted in its summary), not an ordinary `~`.
#[test]
fn taking_over_another_site_s_image_is_a_warning_in_the_plan() {
    let mut d = desired();
    d.bitstreams.get_mut("aes-128").unwrap().spec.adopt = true;
    let digests = digests(&d);
    let uuid = d.bitstreams["aes-128"].spec.metadata.bs_uuid.to_string();
    let observed = Observed {
        images: vec![image(
            "id-theirs",
            "aes-128",
            &uuid,
            Some("lab"),
            &digests["aes-128"].sha256,
            "active",
            "complete",
        )],
        ..Observed::default()
    };
    let p = plan(&PlanInput {
        desired: &d,
        digests: &digests,
        observed: &observed,
        settings: PlanSettings::default(),
        live_lease: None,
    })
    .unwrap();
    let adopt = p.actions.iter().find(|a| a.name == "aes-128").unwrap();
    assert_eq!(fpga_sync::plan::render::taken_over_from(adopt), Some("lab"));
    let text = fpga_sync::plan::render::human(&p, "header", false);
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("  ~ image aes-128 (adopt image id-theirs"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        lines[at + 1],
        "    ! takes image aes-128 over from fpga-sync site `lab`: that site's plans will refuse it as unmanaged from now on"
    );
    assert!(
        text.contains("to destroy. 1 taken over from another site."),
        "{text}"
    );
    let coloured = fpga_sync::plan::render::human(&p, "header", true);
    assert!(
        coloured.contains("\x1b[1;31m! takes image aes-128 over"),
        "{coloured}"
    );
    let md = fpga_sync::plan::render::markdown(&p, "header");
    assert!(
        md.contains("> **Warning:** takes image aes-128 over from fpga-sync site `lab`"),
        "{md}"
    );
}
