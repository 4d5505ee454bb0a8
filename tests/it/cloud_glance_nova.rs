//! The Glance and Nova clients against the real services, in both auth modes: image
//! create, streaming upload verified against Glance's multihash, tag-filtered listing with
//! pagination, JSON-patch of properties and tags, verified atomic download (and a corrupt
//! store file refused), delete; flavors with descriptions and extra specs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fpga_sync::cloud::glance::{Glance, ImageStatus, NewImage, PatchOp, digest_file};
use fpga_sync::cloud::hashing::HashAlgo;
use fpga_sync::cloud::nova::Nova;
use serde_json::json;

use crate::support::cloud::{MODES, local_cloud, unique};

fn new_image(tag: &str) -> NewImage {
    NewImage {
        name: unique("fpga-sync-test"),
        visibility: "private".into(),
        tags: vec!["FPGA".into(), tag.into()],
        properties: BTreeMap::from([
            ("bs-name".into(), "aes-128".into()),
            ("type".into(), "crypto".into()),
        ]),
    }
}

#[tokio::test]
async fn images_upload_verify_list_patch_download_and_delete() {
    for mode in MODES {
        let session = local_cloud().session(mode).await;
        let glance = Glance::new(&session);
        glance.check_version().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("aes.gbs");
        // 3 MiB and a bit: several chunks, the last one short.
        let data: Vec<u8> = (0..3 * 1024 * 1024 + 12_345u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(&file, &data).unwrap();
        let expected = digest_file(&file, HashAlgo::Sha512).await.unwrap();

        let tag = unique("TEST");
        let image = glance.create(&new_image(&tag)).await.unwrap();
        assert_eq!(image.status, ImageStatus::Queued);
        let seen = Arc::new(AtomicU64::new(0));
        let progress = seen.clone();
        let sent = glance
            .upload(
                &image.id,
                &file,
                HashAlgo::Sha512,
                Arc::new(move |n| progress.store(n, Ordering::Relaxed)),
            )
            .await
            .unwrap();
        assert_eq!(
            sent, expected,
            "{mode}: digests computed on the way equal the file's"
        );
        assert_eq!(
            seen.load(Ordering::Relaxed),
            data.len() as u64,
            "{mode}: progress reached the end"
        );
        let stored = glance.image(&image.id).await.unwrap();
        assert_eq!(stored.status, ImageStatus::Active);
        assert_eq!(
            stored.os_hash_value.as_deref(),
            Some(expected.multihash.as_str())
        );
        assert_eq!(stored.properties()["bs-name"], "aes-128");

        // Pagination: five images with the tag, read two per page.
        let mut ids = vec![image.id.clone()];
        for _ in 0..4 {
            ids.push(glance.create(&new_image(&tag)).await.unwrap().id);
        }
        let listed: Vec<String> = Glance::new(&session)
            .with_page_size(2)
            .images(&["FPGA", &tag])
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        let mut sorted_ids = ids.clone();
        sorted_ids.sort();
        let mut sorted_listed = listed.clone();
        sorted_listed.sort();
        assert_eq!(sorted_listed, sorted_ids, "{mode}: every page was followed");

        let patched = glance
            .patch(
                &image.id,
                &[
                    PatchOp::Replace {
                        path: "/type".into(),
                        value: json!("compression"),
                    },
                    PatchOp::Add {
                        path: "/function_name".into(),
                        value: json!("aes-128"),
                    },
                    PatchOp::Remove {
                        path: "/bs-name".into(),
                    },
                    PatchOp::Replace {
                        path: "/tags".into(),
                        value: json!(["FPGA", tag, "CRYPTO"]),
                    },
                ],
            )
            .await
            .unwrap();
        let props = patched.properties();
        assert_eq!(
            (props["type"].as_str(), props["function_name"].as_str()),
            ("compression", "aes-128")
        );
        assert!(!props.contains_key("bs-name"));
        assert!(patched.tags.contains(&"CRYPTO".to_owned()));
        glance.add_tag(&image.id, "AES").await.unwrap();
        glance.remove_tag(&image.id, "CRYPTO").await.unwrap();
        let mut tags = glance.image(&image.id).await.unwrap().tags;
        tags.sort();
        let mut expected_tags = vec!["AES".to_owned(), "FPGA".to_owned(), tag.clone()];
        expected_tags.sort();
        assert_eq!(
            tags, expected_tags,
            "{mode}: single-tag changes leave the other tags alone"
        );

        let dest = dir.path().join("downloaded.gbs");
        let got = glance
            .download(&image.id, &dest, Some(&expected.sha256))
            .await
            .unwrap();
        assert_eq!(got.sha256, expected.sha256);
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".part-"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left");

        let wrong = dir.path().join("wrong.gbs");
        let err = glance
            .download(&image.id, &wrong, Some(&"0".repeat(64)))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("download of image {} does not match", image.id)),
            "{err}"
        );
        assert!(
            !wrong.exists(),
            "{mode}: a download that fails its check is not renamed into place"
        );

        for id in &ids {
            glance.delete(id).await.unwrap();
        }
        let err = glance.image(&image.id).await.unwrap_err();
        assert_eq!(err.status(), Some(404));
    }
}

#[tokio::test]
async fn a_corrupt_store_file_is_never_accepted_as_a_download() {
    let cloud = local_cloud();
    let session = cloud.session(crate::support::cloud::NOAUTH).await;
    let glance = Glance::new(&session);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.bin");
    std::fs::write(&file, vec![7u8; 200_000]).unwrap();
    let image = glance.create(&new_image(&unique("TEST"))).await.unwrap();
    glance
        .upload(&image.id, &file, HashAlgo::Sha512, Arc::new(|_| {}))
        .await
        .unwrap();
    // Flip bytes in Glance's own file store: a real fault of a real Glance (disk rot).
    let stored = cloud.state.join("noauth-glance/images").join(&image.id);
    let mut bytes = std::fs::read(&stored).unwrap_or_else(|e| panic!("{}: {e}", stored.display()));
    bytes[1000] ^= 0xFF;
    std::fs::write(&stored, bytes).unwrap();
    let dest = dir.path().join("out.bin");
    let err = glance.download(&image.id, &dest, None).await.unwrap_err();
    assert!(
        err.to_string().contains("does not match: expected sha512 "),
        "{err}"
    );
    assert!(!dest.exists());
    glance.delete(&image.id).await.unwrap();
}

#[tokio::test]
async fn flavors_with_descriptions_and_extra_specs() {
    for mode in MODES {
        let session = local_cloud().session(mode).await;
        let nova = Nova::new(&session);
        nova.check_version().await.unwrap();
        let name = unique("fpga.test");
        let created = nova
            .create_flavor(
                &name,
                &fpga_sync::observed::FlavorShape {
                    vcpus: 2,
                    ram: 4096,
                    disk: 20,
                    ephemeral: 1,
                    swap: 512,
                    is_public: false,
                    description: Some("made by fpga-sync tests".into()),
                },
                None,
            )
            .await
            .unwrap();
        let specs = BTreeMap::from([
            ("resources:CUSTOM_FPGA_INTEL_PF".to_owned(), "2".to_owned()),
            ("trait:CUSTOM_FPGA".to_owned(), "required".to_owned()),
        ]);
        nova.set_extra_specs(&created.id, &specs).await.unwrap();
        nova.unset_extra_spec(&created.id, "trait:CUSTOM_FPGA")
            .await
            .unwrap();
        nova.set_description(&created.id, Some("changed"))
            .await
            .unwrap();
        let listed = nova
            .flavors()
            .await
            .unwrap()
            .into_iter()
            .find(|f| f.name == name)
            .expect("listed, private ones included");
        assert_eq!(
            (
                listed.vcpus,
                listed.ram,
                listed.disk,
                listed.ephemeral,
                listed.swap,
                listed.is_public
            ),
            (2, 4096, 20, 1, 512, false)
        );
        assert_eq!(listed.description.as_deref(), Some("changed"));
        assert_eq!(
            listed.extra_specs,
            BTreeMap::from([("resources:CUSTOM_FPGA_INTEL_PF".to_owned(), "2".to_owned())]),
            "{mode}"
        );
        nova.delete_flavor(&created.id).await.unwrap();
        assert!(nova.flavors().await.unwrap().iter().all(|f| f.name != name));
    }
}
