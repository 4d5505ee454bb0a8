//! `fpga-sync observe` against the real cloud, in both auth modes: what was put into
//! Glance, Placement and Nova shows in the JSON and the tables, and no secret shows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fpga_sync::cloud::glance::{Glance, NewImage};
use fpga_sync::cloud::hashing::HashAlgo;
use fpga_sync::cloud::nova::Nova;
use fpga_sync::cloud::placement::{Inventory, Placement};

use crate::support::cloud::{MODES, local_cloud, unique};

#[tokio::test]
async fn observe_shows_images_traits_classes_providers_and_flavors() {
    let cloud = local_cloud();
    for mode in MODES {
        let session = cloud.session(mode).await;
        let (placement, glance, nova) = (
            Placement::new(&session),
            Glance::new(&session),
            Nova::new(&session),
        );
        let trait_name = unique("CUSTOM_FPGA_OBS");
        let rc = unique("CUSTOM_FPGA_OBS_PF");
        placement.ensure_trait(&trait_name).await.unwrap();
        placement.ensure_resource_class(&rc).await.unwrap();
        let host = placement
            .create_provider(&unique("obs-host"), None, None)
            .await
            .unwrap();
        let device = placement
            .create_provider(
                &format!("{}_0000:5e:00.0", host.name),
                None,
                Some(&host.uuid),
            )
            .await
            .unwrap();
        let inventory = Inventory {
            total: 2,
            reserved: 0,
            min_unit: 1,
            max_unit: 2,
            step_size: 1,
            allocation_ratio: 1.0,
        };
        placement
            .update_inventories(
                &device.uuid,
                &BTreeMap::from([(rc.clone(), inventory)]),
                &BTreeSet::new(),
            )
            .await
            .unwrap();
        placement
            .update_provider_traits(
                &device.uuid,
                &BTreeSet::from([trait_name.clone()]),
                &BTreeSet::new(),
            )
            .await
            .unwrap();
        let image_name = unique("obs-aes");
        let image = glance
            .create(&NewImage {
                name: image_name.clone(),
                visibility: "private".into(),
                tags: vec!["FPGA".into()],
                properties: BTreeMap::from([
                    (
                        "bs-uuid".into(),
                        "5e4f3a2b-1c0d-4e8f-9a7b-6c5d4e3f2a1b".into(),
                    ),
                    ("vendor".into(), "Intel".into()),
                ]),
            })
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"bitstream").unwrap();
        glance
            .upload(
                &image.id,
                &dir.path().join("f"),
                HashAlgo::Sha512,
                Arc::new(|_| {}),
            )
            .await
            .unwrap();
        let flavor_name = unique("obs.fpga");
        let flavor = nova
            .create_flavor(
                &flavor_name,
                &fpga_sync::observed::FlavorShape {
                    vcpus: 1,
                    ram: 512,
                    disk: 1,
                    ephemeral: 0,
                    swap: 0,
                    is_public: true,
                    description: None,
                },
                None,
            )
            .await
            .unwrap();
        nova.set_extra_specs(
            &flavor.id,
            &BTreeMap::from([(format!("resources:{rc}"), "1".to_owned())]),
        )
        .await
        .unwrap();

        let mut env = cloud.os_env();
        env.insert("OS_CLOUD".into(), mode.into());
        let run = |format: &str| {
            std::process::Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
                .args(["observe", "--format", format])
                .envs(&env)
                .env("NO_COLOR", "1")
                .output()
                .unwrap()
        };
        let out = run("json");
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["format_version"], 1);
        assert_eq!(json["cloud"], mode);
        let observed_image = json["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == image_name.as_str())
            .expect("the image");
        assert_eq!(observed_image["status"], "active");
        assert_eq!(observed_image["properties"]["vendor"], "Intel");
        assert!(
            json["traits"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(trait_name))
        );
        assert!(
            json["resource_classes"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(rc))
        );
        let provider = json["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["uuid"] == device.uuid.as_str())
            .expect("the device provider");
        assert_eq!(provider["parent"], host.uuid.as_str());
        assert_eq!(provider["inventories"][&rc]["total"], 2);
        assert_eq!(provider["traits"], serde_json::json!([trait_name]));
        assert!(
            json["providers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["uuid"] != host.uuid.as_str()),
            "compute nodes are not devices"
        );
        let observed_flavor = json["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == flavor_name.as_str())
            .expect("the flavor");
        assert_eq!(
            observed_flavor["extra_specs"][format!("resources:{rc}")],
            "1"
        );

        let table = run("table");
        let text = String::from_utf8_lossy(&table.stdout);
        assert!(
            text.contains(&format!("  {image_name}"))
                && text.contains(&format!("{}_0000:5e:00.0", host.name)),
            "{text}"
        );
        let everything = format!(
            "{}{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            text
        );
        if mode == crate::support::cloud::KEYSTONE {
            assert!(
                !everything.contains(&cloud.admin_password()),
                "the password never shows"
            );
        }

        placement.delete_provider(&device.uuid).await.unwrap();
        placement.delete_provider(&host.uuid).await.unwrap();
        placement.delete_trait(&trait_name).await.unwrap();
        nova.delete_flavor(&flavor.id).await.unwrap();
        placement.delete_resource_class(&rc).await.unwrap();
        glance.delete(&image.id).await.unwrap();
    }
}

#[test]
fn observe_without_a_cloud_says_how_to_name_one() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .arg("observe")
        .env_clear()
        .env("NO_COLOR", "1")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "no cloud configured: neither `--os-cloud`/`OS_CLOUD` nor `OS_AUTH_URL` is set"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: name a cloud of clouds.yaml with `--os-cloud NAME`"),
        "{stderr}"
    );
}
