//! The Placement client against the real Placement, in both auth modes: traits, resource
//! classes, nested providers, inventories with all six fields, provider traits, usages,
//! allocations, and generation conflicts between two writers.

use std::collections::{BTreeMap, BTreeSet};

use fpga_sync::cloud::placement::{Inventory, Placement};

use crate::support::cloud::{MODES, local_cloud, unique};

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn traits_and_resource_classes_are_ensured_listed_and_deleted() {
    for mode in MODES {
        let session = local_cloud().session(mode).await;
        let placement = Placement::new(&session);
        placement.check_version().await.unwrap();
        let name = unique("CUSTOM_FPGA_T");
        assert!(
            placement.ensure_trait(&name).await.unwrap(),
            "{mode}: created"
        );
        assert!(
            !placement.ensure_trait(&name).await.unwrap(),
            "{mode}: second ensure is a no-op"
        );
        assert!(
            placement
                .traits("CUSTOM_FPGA_T")
                .await
                .unwrap()
                .contains(&name)
        );
        placement.delete_trait(&name).await.unwrap();
        assert!(
            !placement
                .traits("CUSTOM_FPGA_T")
                .await
                .unwrap()
                .contains(&name)
        );

        let rc = unique("CUSTOM_FPGA_RC");
        assert!(placement.ensure_resource_class(&rc).await.unwrap());
        assert!(!placement.ensure_resource_class(&rc).await.unwrap());
        assert!(placement.resource_classes().await.unwrap().contains(&rc));
        placement.delete_resource_class(&rc).await.unwrap();
        assert!(!placement.resource_classes().await.unwrap().contains(&rc));
    }
}

#[tokio::test]
async fn nested_providers_inventories_traits_usages_and_allocations() {
    for mode in MODES {
        let session = local_cloud().session(mode).await;
        let placement = Placement::new(&session);
        let host = placement
            .create_provider(&unique("host"), None, None)
            .await
            .unwrap();
        let device_name = format!("{}_0000:5e:00.0", host.name);
        let device = placement
            .create_provider(&device_name, None, Some(&host.uuid))
            .await
            .unwrap();
        assert_eq!(
            device.parent_provider_uuid.as_deref(),
            Some(host.uuid.as_str())
        );
        let by_name = placement.providers(Some(&device_name), None).await.unwrap();
        assert_eq!(
            by_name.iter().map(|p| &p.uuid).collect::<Vec<_>>(),
            [&device.uuid]
        );
        let tree: BTreeSet<String> = placement
            .providers(None, Some(&host.uuid))
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.uuid)
            .collect();
        assert_eq!(tree, set(&[&host.uuid, &device.uuid]));

        let rc = unique("CUSTOM_FPGA_PF");
        placement.ensure_resource_class(&rc).await.unwrap();
        let inventory = Inventory {
            total: 2,
            reserved: 2,
            min_unit: 1,
            max_unit: 2,
            step_size: 1,
            allocation_ratio: 1.0,
        };
        let generation = placement
            .update_inventories(
                &device.uuid,
                &BTreeMap::from([(rc.clone(), inventory)]),
                &BTreeSet::new(),
            )
            .await
            .unwrap();
        let (read_generation, inventories) = placement.inventories(&device.uuid).await.unwrap();
        assert_eq!(read_generation, generation);
        assert_eq!(
            inventories[&rc], inventory,
            "{mode}: all six fields round-trip, reserved == total included"
        );

        let trait_name = unique("CUSTOM_FPGA_FUNC");
        placement.ensure_trait(&trait_name).await.unwrap();
        let (traits, _) = placement
            .update_provider_traits(&device.uuid, &set(&[&trait_name]), &BTreeSet::new())
            .await
            .unwrap();
        assert_eq!(traits, set(&[&trait_name]));
        assert_eq!(
            placement.usages(&device.uuid).await.unwrap(),
            BTreeMap::from([(rc.clone(), 0)])
        );
        assert!(
            placement
                .allocations(&device.uuid)
                .await
                .unwrap()
                .is_empty()
        );

        placement.delete_provider(&device.uuid).await.unwrap();
        placement.delete_provider(&host.uuid).await.unwrap();
        placement.delete_trait(&trait_name).await.unwrap();
        placement.delete_resource_class(&rc).await.unwrap();
    }
}

#[tokio::test]
async fn a_stale_generation_is_refused_and_merging_writers_keep_each_other_s_traits() {
    for mode in MODES {
        let session = local_cloud().session(mode).await;
        let other_session = local_cloud().session(mode).await;
        let placement = Placement::new(&session);
        let other = Placement::new(&other_session);
        let device = placement
            .create_provider(&unique("device"), None, None)
            .await
            .unwrap();
        let ours = unique("CUSTOM_OURS");
        let theirs = unique("CUSTOM_THEIRS");
        placement.ensure_trait(&ours).await.unwrap();
        placement.ensure_trait(&theirs).await.unwrap();

        // Writer A reads, writer B writes, A's write with the old generation is refused.
        let (generation, _) = placement.provider_traits(&device.uuid).await.unwrap();
        other
            .update_provider_traits(&device.uuid, &set(&[&theirs]), &BTreeSet::new())
            .await
            .unwrap();
        let stale = placement
            .set_provider_traits(&device.uuid, generation, &set(&[&ours]))
            .await
            .unwrap_err();
        assert_eq!(stale.status(), Some(409), "{mode}: {stale}");
        assert!(
            stale
                .to_string()
                .starts_with("Placement refused PUT /resource_providers/"),
            "{stale}"
        );

        // The merging update re-reads and keeps B's trait.
        let (traits, _) = placement
            .update_provider_traits(&device.uuid, &set(&[&ours]), &BTreeSet::new())
            .await
            .unwrap();
        assert_eq!(traits, set(&[&ours, &theirs]));

        // Many writers at once: every trait survives, because each conflict re-reads and merges.
        let names: Vec<String> = (0..6).map(|_| unique("CUSTOM_W")).collect();
        for n in &names {
            placement.ensure_trait(n).await.unwrap();
        }
        let writers = names.iter().enumerate().map(|(i, n)| {
            let placement = Placement::new(if i % 2 == 0 { &session } else { &other_session });
            let uuid = device.uuid.clone();
            async move {
                placement
                    .update_provider_traits(&uuid, &set(&[n]), &BTreeSet::new())
                    .await
            }
        });
        for result in futures_util::future::join_all(writers).await {
            result.unwrap();
        }
        let (_, final_traits) = placement.provider_traits(&device.uuid).await.unwrap();
        let mut expected = set(&[&ours, &theirs]);
        expected.extend(names.iter().cloned());
        assert_eq!(
            final_traits, expected,
            "{mode}: no writer's trait was dropped"
        );

        placement.delete_provider(&device.uuid).await.unwrap();
        for n in names.iter().chain([&ours, &theirs]) {
            placement.delete_trait(n).await.unwrap();
        }
    }
}

#[tokio::test]
async fn allocations_and_usages_show_what_a_consumer_holds() {
    for mode in MODES {
        let session = local_cloud().session(mode).await;
        let placement = Placement::new(&session);
        let device = placement
            .create_provider(&unique("alloc-device"), None, None)
            .await
            .unwrap();
        let rc = unique("CUSTOM_FPGA_ALLOC");
        placement.ensure_resource_class(&rc).await.unwrap();
        let inventory = Inventory {
            total: 4,
            reserved: 0,
            min_unit: 1,
            max_unit: 4,
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
        // A VM's claim, as Nova's scheduler writes it.
        let consumer = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            rand::random::<u32>(),
            rand::random::<u64>() & 0xFFFF_FFFF_FFFF
        );
        let endpoint = session
            .endpoint(fpga_sync::cloud::error::Service::Placement)
            .await
            .unwrap();
        let token = session.current_token().await.unwrap();
        let claim = serde_json::json!({"allocations": {&device.uuid: {"resources": {&rc: 2}}},
            "project_id": "6f1c1d3e2b0a4c559f3e8d1b2a3c4d5e", "user_id": "0d1b2a3c4d5e6f1c1d3e2b0a4c559f3e"});
        let client = reqwest::Client::new();
        let put = client
            .put(format!("{endpoint}/allocations/{consumer}"))
            .header("X-Auth-Token", token.expose())
            .header("OpenStack-API-Version", "placement 1.26")
            .json(&claim)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 204, "{mode}");
        assert_eq!(
            placement.allocations(&device.uuid).await.unwrap(),
            BTreeMap::from([(consumer.clone(), BTreeMap::from([(rc.clone(), 2)]))])
        );
        assert_eq!(
            placement.usages(&device.uuid).await.unwrap(),
            BTreeMap::from([(rc.clone(), 2)])
        );
        let busy = placement.delete_provider(&device.uuid).await.unwrap_err();
        assert_eq!(
            busy.status(),
            Some(409),
            "{mode}: a provider with allocations cannot go: {busy}"
        );
        let freed = client
            .delete(format!("{endpoint}/allocations/{consumer}"))
            .header("X-Auth-Token", token.expose())
            .header("OpenStack-API-Version", "placement 1.26")
            .send()
            .await
            .unwrap();
        assert_eq!(freed.status(), 204);
        placement.delete_provider(&device.uuid).await.unwrap();
        placement.delete_resource_class(&rc).await.unwrap();
    }
}
