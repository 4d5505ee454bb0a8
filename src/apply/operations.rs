//! One operation each: the exact API calls, in the order that keeps the cloud
//! convergeable if the process dies between any two of them. I/O: the cloud, files.

use std::sync::Arc;

use serde_json::json;

use super::{BitstreamFiles, Reporter};
use crate::cloud::CloudError;
use crate::cloud::glance::{Glance, NewImage, PatchOp, digest_file};
use crate::cloud::hashing::HashAlgo;
use crate::cloud::nova::Nova;
use crate::cloud::placement::Placement;
use crate::cloud::session::Session;
use crate::markers::{IMAGE_LEASE, IMAGE_STATE, STATE_COMPLETE};
use crate::plan::{Action, FlavorSpec, ImagePatch, ImageSpec, Operation};

fn io(source: &str) -> impl Fn(std::io::Error) -> CloudError + '_ {
    move |e| CloudError::Io {
        path: source.to_owned(),
        reason: e.to_string(),
    }
}

pub(super) async fn run(
    action: &Action,
    session: &Session,
    files: &dyn BitstreamFiles,
    reporter: &dyn Reporter,
    lease: Option<&str>,
) -> Result<(), CloudError> {
    let (placement, glance, nova) = (
        Placement::new(session),
        Glance::new(session),
        Nova::new(session),
    );
    match &action.operation {
        Operation::EnsureTrait { name } => placement.ensure_trait(name).await.map(drop),
        Operation::EnsureResourceClass { name } => {
            placement.ensure_resource_class(name).await.map(drop)
        }
        Operation::CreateImage { image } => {
            create_image(&glance, image, action, files, reporter, lease).await
        }
        Operation::FinishImage { id, image } => {
            // The upload is this run's now: mark it so, before it starts.
            if let Some(lease) = lease {
                glance
                    .patch(
                        id.as_str(),
                        &[PatchOp::Add {
                            path: format!("/{IMAGE_LEASE}"),
                            value: json!(lease),
                        }],
                    )
                    .await?;
            }
            upload_and_mark(&glance, id.as_str(), image, action, files, reporter).await
        }
        Operation::VerifyAndPatchImage {
            id,
            source,
            sha256,
            patch,
        } => {
            let path = files.path_for(source).map_err(io(source))?;
            let current = glance.image(id.as_str()).await?;
            let algo = current
                .os_hash_algo
                .as_deref()
                .and_then(HashAlgo::from_name)
                .unwrap_or(HashAlgo::Sha512);
            let local = digest_file(&path, algo).await?;
            if &local.sha256 != sha256 {
                return Err(CloudError::Integrity {
                    what: format!("`{source}`"),
                    expected: format!("sha256 {sha256}"),
                    actual: local.sha256,
                });
            }
            if current.os_hash_value.as_deref() != Some(local.multihash.as_str()) {
                return Err(CloudError::Integrity {
                    what: format!("image {id} against `{source}`"),
                    expected: format!("{} {}", algo.name(), local.multihash),
                    actual: current.os_hash_value.unwrap_or_else(|| "no hash".into()),
                });
            }
            patch_image(&glance, id.as_str(), patch).await
        }
        Operation::PatchImage { id, patch } => patch_image(&glance, id.as_str(), patch).await,
        Operation::ReplaceImage { old_id, image } => {
            create_image(&glance, image, action, files, reporter, lease).await?;
            glance.delete(old_id.as_str()).await
        }
        Operation::DeleteImage { id } => match glance.delete(id.as_str()).await {
            // Already gone is what was wanted.
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other,
        },
        Operation::CreateFlavor { flavor } => create_flavor(&nova, flavor).await,
        Operation::UpdateFlavor {
            id,
            description,
            set_specs,
            unset_specs,
        } => {
            if let Some(description) = description {
                nova.set_description(id.as_str(), description.as_deref())
                    .await?;
            }
            if !set_specs.is_empty() {
                nova.set_extra_specs(id.as_str(), set_specs).await?;
            }
            for key in unset_specs {
                nova.unset_extra_spec(id.as_str(), key).await?;
            }
            Ok(())
        }
        Operation::ReplaceFlavor { old_id, flavor } => {
            match nova.delete_flavor(old_id.as_str()).await {
                Err(e) if e.status() != Some(404) => return Err(e),
                _ => {}
            }
            create_flavor(&nova, flavor).await
        }
        Operation::DeleteFlavor { id } => match nova.delete_flavor(id.as_str()).await {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other,
        },
    }
}

/// Creates the image marked `uploading` (under `lease`), then uploads, checks and marks
/// it.
async fn create_image(
    glance: &Glance<'_>,
    image: &ImageSpec,
    action: &Action,
    files: &dyn BitstreamFiles,
    reporter: &dyn Reporter,
    lease: Option<&str>,
) -> Result<(), CloudError> {
    let mut properties = image.properties.clone();
    if let Some(lease) = lease {
        properties.insert(IMAGE_LEASE.into(), lease.into());
    }
    let created = glance
        .create(&NewImage {
            name: image.name.clone(),
            visibility: image.visibility.clone(),
            tags: image.tags.clone(),
            properties,
        })
        .await?;
    upload_and_mark(glance, &created.id, image, action, files, reporter).await
}

/// Streams the file into image `id`, checks that what went up is the planned content and
/// what Glance stored, then marks the image `complete`. Content that is not the planned
/// content deletes the image: it must never be mistaken for the bitstream.
async fn upload_and_mark(
    glance: &Glance<'_>,
    id: &str,
    image: &ImageSpec,
    action: &Action,
    files: &dyn BitstreamFiles,
    reporter: &dyn Reporter,
) -> Result<(), CloudError> {
    let path = files.path_for(&image.source).map_err(io(&image.source))?;
    let total = image.size;
    // The upload's callback only counts; this task reads the count on a timer, so the
    // borrowed reporter is called from here.
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let upload = glance.upload(
        id,
        &path,
        HashAlgo::Sha512,
        Arc::new(move |n| counter.store(n, std::sync::atomic::Ordering::Relaxed)),
    );
    tokio::pin!(upload);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let digests = loop {
        tokio::select! {
            result = &mut upload => break result,
            _ = tick.tick() => reporter.progress(action, sent.load(std::sync::atomic::Ordering::Relaxed), total),
        }
    };
    let digests = match digests {
        Ok(d) => d,
        Err(e @ CloudError::Integrity { .. }) => {
            let _ = glance.delete(id).await;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    reporter.progress(action, digests.size, total);
    if digests.sha256 != image.sha256 {
        let _ = glance.delete(id).await;
        return Err(CloudError::Integrity {
            what: format!("`{}` (it changed after planning)", image.source),
            expected: format!("sha256 {}", image.sha256),
            actual: digests.sha256,
        });
    }
    glance
        .patch(
            id,
            &[PatchOp::Add {
                path: format!("/{IMAGE_STATE}"),
                value: json!(STATE_COMPLETE),
            }],
        )
        .await
        .map(drop)
}

/// Properties, name and visibility in one JSON patch; tags one by one, so that tags set by
/// others stay.
async fn patch_image(glance: &Glance<'_>, id: &str, patch: &ImagePatch) -> Result<(), CloudError> {
    let ImagePatch {
        set,
        remove,
        add_tags,
        remove_tags,
        rename,
        visibility,
    } = patch;
    let mut ops: Vec<PatchOp> = set
        .iter()
        .map(|(k, v)| PatchOp::Add {
            path: format!("/{k}"),
            value: json!(v),
        })
        .collect();
    ops.extend(remove.iter().map(|k| PatchOp::Remove {
        path: format!("/{k}"),
    }));
    if let Some(name) = rename {
        ops.push(PatchOp::Replace {
            path: "/name".into(),
            value: json!(name),
        });
    }
    if let Some(v) = visibility {
        ops.push(PatchOp::Replace {
            path: "/visibility".into(),
            value: json!(v),
        });
    }
    if !ops.is_empty() {
        glance.patch(id, &ops).await?;
    }
    for tag in add_tags {
        glance.add_tag(id, tag).await?;
    }
    for tag in remove_tags {
        glance.remove_tag(id, tag).await?;
    }
    Ok(())
}

/// Creates the flavor, then sets its extra specs (the owner mark among them). If the specs
/// cannot be set, the flavor is deleted again: an unmarked flavor would block the next run.
async fn create_flavor(nova: &Nova<'_>, flavor: &FlavorSpec) -> Result<(), CloudError> {
    let created = nova
        .create_flavor(&flavor.name, &flavor.shape, flavor.id.as_deref())
        .await?;
    if let Err(e) = nova.set_extra_specs(&created.id, &flavor.extra_specs).await {
        let _ = nova.delete_flavor(&created.id).await;
        return Err(e);
    }
    Ok(())
}
