//! Planning rules for bitstream images. An image is the bitstream's `bs-uuid` plus its
//! content digest: the same content is never uploaded twice, new content under an
//! unchanged path is a replace, and what an interrupted run left behind (a `queued` image,
//! an upload not marked verified, a duplicate) is finished, verified or removed — but an
//! upload marked with the lease a live run holds is that run's, and its bitstream is left
//! alone. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Change, Draft, FingerprintKey, ImagePatch, ImageSpec, Kind, ObjectType, Operation, PlanInput,
    Problem, Tally, Why, image_fingerprint,
};
use crate::desired::Bitstream;
use crate::desired::files::FileDigest;
use crate::markers::{
    self, IMAGE_COMMIT, IMAGE_LEASE, IMAGE_OWNER, IMAGE_SHA256, IMAGE_SOURCE, IMAGE_STATE,
    STATE_COMPLETE, STATE_UPLOADING,
};
use crate::observed::{ImageStatus, Observed, ObservedImage};

/// The ids of the images with `bs-uuid` `uuid`, sorted, for fingerprints.
pub(super) fn ids_of(observed: &Observed, uuid: &str) -> String {
    let mut ids: Vec<&str> = observed
        .images
        .iter()
        .filter(|i| i.properties.get("bs-uuid").map(String::as_str) == Some(uuid))
        .map(|i| i.id.as_str())
        .collect();
    ids.sort_unstable();
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(",")
    }
}

/// The image a bitstream becomes, marks included (`uploading`, set to `complete` once
/// the upload is verified).
pub(super) fn spec(
    b: &Bitstream,
    digest: &FileDigest,
    commit: Option<&str>,
    site: &str,
) -> ImageSpec {
    let mut properties: BTreeMap<String, String> = b
        .metadata_properties()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    properties.extend(b.properties.clone());
    let source = b.file.clone().unwrap_or_default();
    properties.insert(IMAGE_OWNER.into(), site.into());
    properties.insert(IMAGE_SOURCE.into(), source.clone());
    properties.insert(IMAGE_SHA256.into(), digest.sha256.clone());
    properties.insert(IMAGE_COMMIT.into(), commit.unwrap_or("worktree").into());
    properties.insert(IMAGE_STATE.into(), STATE_UPLOADING.into());
    let visibility = serde_json::to_value(b.visibility)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "private".into());
    ImageSpec {
        name: b.name.clone(),
        visibility,
        tags: b.image_tags(),
        properties,
        source,
        sha256: digest.sha256.clone(),
        size: digest.size,
    }
}

/// Properties compared between the desired and the observed image: all but the marks
/// that record a run (commit, state, lease).
fn compared(properties: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    properties
        .iter()
        .filter(|(k, _)| *k != IMAGE_COMMIT && *k != IMAGE_STATE && *k != IMAGE_LEASE)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// What turns `observed` into `spec`, as changes to show and as the patch to apply.
struct ImageDiff {
    changes: Vec<Change>,
    patch: ImagePatch,
}

fn diff(spec: &ImageSpec, observed: &ObservedImage) -> ImageDiff {
    let mut d = ImageDiff {
        changes: vec![],
        patch: ImagePatch::default(),
    };
    if observed.name.as_deref() != Some(spec.name.as_str()) {
        d.changes.push(Change {
            field: "name".into(),
            old: observed.name.clone(),
            new: Some(spec.name.clone()),
        });
        d.patch.rename = Some(spec.name.clone());
    }
    if observed.visibility.as_deref() != Some(spec.visibility.as_str()) {
        d.changes.push(Change {
            field: "visibility".into(),
            old: observed.visibility.clone(),
            new: Some(spec.visibility.clone()),
        });
        d.patch.visibility = Some(spec.visibility.clone());
    }
    let (want, have) = (compared(&spec.properties), compared(&observed.properties));
    for (k, v) in &want {
        if have.get(k) != Some(v) {
            d.changes.push(Change {
                field: format!("properties.{k}"),
                old: have.get(k).map(|s| (*s).to_owned()),
                new: Some((*v).to_owned()),
            });
            d.patch.set.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    for (k, v) in &have {
        if !want.contains_key(k) {
            d.changes.push(Change {
                field: format!("properties.{k}"),
                old: Some((*v).to_owned()),
                new: None,
            });
            d.patch.remove.push((*k).to_owned());
        }
    }
    let want_tags: BTreeSet<&str> = spec.tags.iter().map(String::as_str).collect();
    let have_tags: BTreeSet<&str> = observed.tags.iter().map(String::as_str).collect();
    for t in want_tags.difference(&have_tags) {
        d.changes.push(Change {
            field: "tags".into(),
            old: None,
            new: Some((*t).to_owned()),
        });
        d.patch.add_tags.push((*t).to_owned());
    }
    for t in have_tags.difference(&want_tags) {
        d.changes.push(Change {
            field: "tags".into(),
            old: Some((*t).to_owned()),
            new: None,
        });
        d.patch.remove_tags.push((*t).to_owned());
    }
    d
}

/// Checks an existing image's content against the file, then patches it to `spec` and
/// marks it verified: for an adopted image and for an upload whose last step was lost.
fn verify_and_patch(
    spec: &ImageSpec,
    observed: &ObservedImage,
    commit: Option<&str>,
) -> (Vec<Change>, Operation) {
    let mut d = diff(spec, observed);
    d.patch
        .set
        .insert(IMAGE_STATE.into(), STATE_COMPLETE.into());
    d.patch
        .set
        .insert(IMAGE_COMMIT.into(), commit.unwrap_or("worktree").into());
    let operation = Operation::VerifyAndPatchImage {
        id: observed.id.clone(),
        source: spec.source.clone(),
        sha256: spec.sha256.clone(),
        patch: d.patch,
    };
    (d.changes, operation)
}

fn state(i: &ObservedImage) -> Option<&str> {
    i.properties.get(IMAGE_STATE).map(String::as_str)
}

fn sha(i: &ObservedImage) -> Option<&str> {
    i.properties.get(IMAGE_SHA256).map(String::as_str)
}

/// Whether a live run is uploading the image: it is marked `uploading` under the lease
/// held on the site.
fn in_progress(i: &ObservedImage, live_lease: Option<&str>) -> bool {
    live_lease.is_some() && markers::upload_lease(&i.properties) == live_lease
}

fn in_progress_note(i: &ObservedImage, lease: &str) -> String {
    format!(
        "image {} ({}) is being uploaded by the run holding lease {lease}: left alone",
        i.name.as_deref().unwrap_or(i.id.as_str()),
        i.id
    )
}

pub(super) fn plan(
    input: &PlanInput<'_>,
    used_by: &BTreeMap<String, Vec<String>>,
    drafts: &mut Vec<Draft>,
    problems: &mut Vec<Problem>,
    fingerprints: &mut BTreeMap<FingerprintKey, String>,
    not_pruned: &mut Vec<String>,
    in_progress_notes: &mut Vec<String>,
) -> Tally {
    let observed = input.observed;
    let live = input.live_lease;
    let commit = input.desired.commit.as_deref();
    let mut tally = Tally {
        owned: 0,
        unchanged: 0,
    };
    let owned: Vec<&ObservedImage> = observed
        .images
        .iter()
        .filter(|i| markers::image_site(&i.properties) == Some(input.settings.site.as_str()))
        .collect();
    tally.owned = owned.len();
    let mut claimed: BTreeSet<&str> = BTreeSet::new();

    for declared in input.desired.bitstreams.values() {
        let b = &declared.spec;
        let uuid = b.metadata.bs_uuid.to_string();
        fingerprints.insert(
            FingerprintKey::ImagesOf(uuid.clone()),
            ids_of(observed, &uuid),
        );
        let Some(digest) = input.digests.get(&b.name) else {
            problems.push(Problem {
                message: format!("bitstream `{}` ({}) has no file to upload", b.name, declared.origin()),
                help: if b.url.is_some() { "fetching bitstreams from `url` is not supported yet; keep the file in the repository with `file:`".into() } else { "check that `file` exists in the commit".into() },
            });
            continue;
        };
        let spec = spec(b, digest, commit, &input.settings.site);
        let users = used_by.get(&b.name).cloned().unwrap_or_default();
        let mine: Vec<&ObservedImage> = owned
            .iter()
            .copied()
            .filter(|i| i.properties.get("bs-uuid") == Some(&uuid))
            .collect();
        for i in &mine {
            fingerprints.insert(FingerprintKey::Image(i.id.clone()), image_fingerprint(i));
            claimed.insert(i.id.as_str());
        }
        let strangers: Vec<&ObservedImage> = observed
            .images
            .iter()
            .filter(|i| markers::image_site(&i.properties) != Some(input.settings.site.as_str()))
            .filter(|i| {
                i.properties.get("bs-uuid") == Some(&uuid)
                    || i.name.as_deref() == Some(b.name.as_str())
            })
            .collect();
        for i in &strangers {
            fingerprints.insert(FingerprintKey::Image(i.id.clone()), image_fingerprint(i));
        }
        // Another run is uploading this bitstream: whatever else is there (its leftovers
        // or its image about to be marked complete) is its to settle.
        if let (Some(lease), Some(busy)) = (live, mine.iter().find(|i| in_progress(i, live))) {
            in_progress_notes.push(in_progress_note(busy, lease));
            continue;
        }
        let draft = |kind, reason: Option<Why>, changes, operation| Draft {
            kind,
            object: ObjectType::Image,
            name: b.name.clone(),
            reason,
            changes,
            operation,
            needs: vec![],
            used_by: users.clone(),
        };
        if mine.is_empty() {
            match (strangers.as_slice(), b.adopt) {
                ([], _) => {
                    let what = Some(Why::upload(&spec.source, spec.size, &spec.sha256));
                    drafts.push(draft(
                        Kind::Create,
                        what,
                        vec![],
                        Operation::CreateImage { image: spec },
                    ));
                }
                ([stranger], true) if stranger.status == ImageStatus::Active => {
                    let (changes, operation) = verify_and_patch(&spec, stranger, commit);
                    let reason = Why::AdoptImage {
                        id: stranger.id.clone(),
                        source: spec.source.clone(),
                    };
                    drafts.push(draft(Kind::Update, Some(reason), changes, operation));
                }
                (found, _) => {
                    let ids: Vec<String> = found
                        .iter()
                        .map(|i| format!("{} ({})", i.id, i.status))
                        .collect();
                    problems.push(Problem {
                        message: format!("bitstream `{}` ({}) collides with image {} that fpga-sync does not manage", b.name, declared.origin(), ids.join(", ")),
                        help: if found.len() == 1 {
                            "to take the image over, add `adopt: true` to the Bitstream (its content is checked against `file` first); or rename the bitstream and give it its own `bs-uuid`".into()
                        } else {
                            "several images collide: delete the extra ones by hand, then add `adopt: true`".into()
                        },
                    });
                }
            }
            continue;
        }
        // The image that stays: verified with this content, else this content, else any.
        let mut ranked = mine.clone();
        ranked.sort_by_key(|i| {
            (
                sha(i) != Some(&spec.sha256),
                state(i) != Some(STATE_COMPLETE),
                i.status != ImageStatus::Active,
                i.id.clone(),
            )
        });
        let primary = ranked[0];
        for leftover in &ranked[1..] {
            drafts.push(Draft {
                kind: Kind::Delete,
                object: ObjectType::Image,
                name: b.name.clone(),
                reason: Some(Why::Leftover {
                    id: leftover.id.clone(),
                    status: leftover.status.clone(),
                }),
                changes: vec![],
                operation: Operation::DeleteImage {
                    id: leftover.id.clone(),
                },
                needs: vec![],
                used_by: vec![],
            });
        }
        let same_content = sha(primary) == Some(spec.sha256.as_str());
        match (same_content, &primary.status, state(primary)) {
            (true, ImageStatus::Active, Some(STATE_COMPLETE)) => {
                let mut d = diff(&spec, primary);
                if d.changes.is_empty() {
                    tally.unchanged += 1;
                } else {
                    d.patch
                        .set
                        .insert(IMAGE_COMMIT.into(), commit.unwrap_or("worktree").into());
                    let operation = Operation::PatchImage {
                        id: primary.id.clone(),
                        patch: d.patch,
                    };
                    drafts.push(draft(Kind::Update, None, d.changes, operation));
                }
            }
            // A record as the repository now says: its data is uploaded into it.
            (true, ImageStatus::Queued, _) if diff(&spec, primary).changes.is_empty() => drafts
                .push(draft(
                    Kind::Update,
                    Some(Why::FinishUpload {
                        id: primary.id.clone(),
                    }),
                    vec![],
                    Operation::FinishImage {
                        id: primary.id.clone(),
                        image: spec,
                    },
                )),
            (true, ImageStatus::Active, _) => {
                let (changes, operation) = verify_and_patch(&spec, primary, commit);
                let reason = Why::VerifyUpload {
                    id: primary.id.clone(),
                };
                drafts.push(draft(Kind::Update, Some(reason), changes, operation));
            }
            (true, status, _) => drafts.push(draft(
                Kind::Replace,
                Some(Why::Interrupted {
                    id: primary.id.clone(),
                    status: status.clone(),
                }),
                vec![],
                Operation::ReplaceImage {
                    old_id: primary.id.clone(),
                    image: spec,
                },
            )),
            (false, _, _) => {
                let old = sha(primary).unwrap_or("unknown");
                drafts.push(draft(
                    Kind::Replace,
                    Some(Why::content_changed(old, &spec.sha256, &spec.source)),
                    vec![Change {
                        field: "sha256".into(),
                        old: Some(old.to_owned()),
                        new: Some(spec.sha256.clone()),
                    }],
                    Operation::ReplaceImage {
                        old_id: primary.id.clone(),
                        image: spec,
                    },
                ));
            }
        }
    }

    for image in owned.iter().filter(|i| !claimed.contains(i.id.as_str())) {
        fingerprints.insert(
            FingerprintKey::Image(image.id.clone()),
            image_fingerprint(image),
        );
        if let Some(lease) = live.filter(|_| in_progress(image, live)) {
            in_progress_notes.push(in_progress_note(image, lease));
            continue;
        }
        let name = image.name.clone().unwrap_or_else(|| image.id.to_string());
        if input.settings.prune {
            drafts.push(Draft {
                kind: Kind::Delete,
                object: ObjectType::Image,
                name,
                reason: Some(Why::PrunedImage {
                    id: image.id.clone(),
                }),
                changes: vec![],
                operation: Operation::DeleteImage {
                    id: image.id.clone(),
                },
                needs: vec![],
                used_by: vec![],
            });
        } else {
            not_pruned.push(format!("image {name} ({})", image.id));
        }
    }
    tally
}
