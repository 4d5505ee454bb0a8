//! The host agent's cloud I/O against the real Placement and Glance: finding the compute
//! node by exact, short and FQDN names; writing a device provider (traits, all six
//! inventory fields, another writer's trait kept); reserving; removal refused while a
//! consumer holds an allocation; the bitstream cache (verified download, cache hits without
//! requests, a changed cached file refetched, a corrupt store file refused, other sites'
//! and unfinished images ignored).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fpga_sync::cloud::error::Service;
use fpga_sync::cloud::glance::{Glance, Image, NewImage, digest_file};
use fpga_sync::cloud::hashing::HashAlgo;
use fpga_sync::cloud::placement::{Inventory, Placement};
use fpga_sync::cloud::session::Session;
use fpga_sync::host::execute::fetch::{BitstreamCache, FetchError, find_image};
use fpga_sync::host::plan::provider::ProviderTarget;
use fpga_sync::host::report::{
    ComputeNodeError, Removal, device_providers, find_compute_node, remove_device_provider,
    reserve_all, write_device_provider,
};
use fpga_sync::markers::{IMAGE_OWNER, IMAGE_SHA256, IMAGE_STATE, STATE_COMPLETE, STATE_UPLOADING};

use crate::support::cloud::{MODES, NOAUTH, local_cloud, unique};

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Names unique to this run, lower-case as host names usually are.
fn host_name(prefix: &str) -> String {
    unique(prefix).to_lowercase().replace('_', "-")
}

#[tokio::test]
async fn the_compute_node_is_found_by_exact_short_and_fqdn_names() {
    for mode in MODES {
        let session = local_cloud().session(mode).await;
        let placement = Placement::new(&session);
        let mut created = Vec::new();

        // nova-compute registered the FQDN; the operator says the short name, or the FQDN.
        let a = host_name("cn-a");
        let fqdn = placement
            .create_provider(&format!("{a}.example.org"), None, None)
            .await
            .unwrap();
        created.push(fqdn.uuid.clone());
        let exact = find_compute_node(&placement, &fqdn.name).await.unwrap();
        assert_eq!(exact.uuid, fqdn.uuid, "{mode}: exact");
        let by_short = find_compute_node(&placement, &a).await.unwrap();
        assert_eq!(
            by_short.uuid, fqdn.uuid,
            "{mode}: short name finds the FQDN"
        );
        let by_upper = find_compute_node(&placement, &a.to_uppercase())
            .await
            .unwrap();
        assert_eq!(by_upper.uuid, fqdn.uuid, "{mode}: host names ignore case");

        // nova-compute registered the short name; the operator says an FQDN.
        let b = host_name("cn-b");
        let short = placement.create_provider(&b, None, None).await.unwrap();
        created.push(short.uuid.clone());
        let by_fqdn = find_compute_node(&placement, &format!("{b}.lab.example.net"))
            .await
            .unwrap();
        assert_eq!(
            by_fqdn.uuid, short.uuid,
            "{mode}: FQDN finds the short name"
        );
        // Another FQDN whose short form matches a root's short form.
        let by_other_fqdn = find_compute_node(&placement, &format!("{a}.other.example"))
            .await
            .unwrap();
        assert_eq!(by_other_fqdn.uuid, fqdn.uuid, "{mode}");

        // Not found: a nested provider with a matching short name is not a compute node.
        let c = host_name("cn-c");
        let child = placement
            .create_provider(&format!("{c}.nested"), None, Some(&short.uuid))
            .await
            .unwrap();
        let err = find_compute_node(&placement, &format!("{c}.example.org"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ComputeNodeError::NotFound { .. }),
            "{mode}: {err}"
        );
        let text = err.to_string();
        for needle in [
            format!("the name `{c}.example.org`"),
            format!("the short name `{c}`"),
            format!("root providers whose short name is `{c}`"),
            "nova-compute must have registered it".to_owned(),
            "--host".to_owned(),
            "openstack resource provider list".to_owned(),
        ] {
            assert!(text.contains(&needle), "{mode}: `{needle}` in: {text}");
        }

        // Ambiguous: two roots share the short name.
        let d = host_name("cn-d");
        for domain in ["rack1.example", "rack2.example"] {
            created.push(
                placement
                    .create_provider(&format!("{d}.{domain}"), None, None)
                    .await
                    .unwrap()
                    .uuid,
            );
        }
        let err = find_compute_node(&placement, &d).await.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, ComputeNodeError::Ambiguous { candidates, .. } if candidates.len() == 2),
            "{mode}: {text}"
        );
        assert!(
            text.contains(&format!("`{d}.rack1.example`"))
                && text.contains(&format!("`{d}.rack2.example`")),
            "{text}"
        );
        // The exact name still picks one of them.
        assert_eq!(
            find_compute_node(&placement, &format!("{d}.rack2.example"))
                .await
                .unwrap()
                .uuid,
            created[3]
        );

        placement.delete_provider(&child.uuid).await.unwrap();
        for uuid in created {
            placement.delete_provider(&uuid).await.unwrap();
        }
    }
}

fn inventory(total: u64, reserved: u64) -> Inventory {
    Inventory {
        total,
        reserved,
        min_unit: 1,
        max_unit: total,
        step_size: 1,
        allocation_ratio: 1.0,
    }
}

#[tokio::test]
async fn a_device_provider_is_written_converged_and_other_writers_traits_survive() {
    for mode in MODES {
        let session = local_cloud().session(mode).await;
        let placement = Placement::new(&session);
        let host = placement
            .create_provider(&host_name("wr-host"), None, None)
            .await
            .unwrap();
        let prefix = unique("CUSTOM_HC");
        let owned_prefix = format!("{prefix}_OURS_");
        let owned = |t: &str| t.starts_with(&owned_prefix);
        let (func_a, func_b) = (format!("{owned_prefix}A"), format!("{owned_prefix}B"));
        let theirs = format!("{prefix}_THEIRS");
        let (rc_a, rc_b) = (format!("{prefix}_RC_A"), format!("{prefix}_RC_B"));
        let name = format!("{}_0000:5e:00.0", host.name);

        // First write: creates the provider under the host with exactly this.
        let inv_a = BTreeMap::from([(
            rc_a.clone(),
            Inventory {
                total: 4,
                reserved: 1,
                min_unit: 2,
                max_unit: 3,
                step_size: 1,
                allocation_ratio: 1.5,
            },
        )]);
        let traits_a = set(&[&func_a, "HW_CPU_X86_AVX2"]);
        let uuid = write_device_provider(
            &placement,
            &host.uuid,
            None,
            &target(name.clone(), &traits_a, &inv_a),
            owned,
        )
        .await
        .unwrap();
        let devices = device_providers(&placement, &host.uuid).await.unwrap();
        assert_eq!(devices.len(), 1, "{mode}: only the device, not the host");
        let device = &devices[0];
        assert_eq!(
            (device.uuid.as_str(), device.name.as_str()),
            (uuid.as_str(), name.as_str())
        );
        assert_eq!(device.traits, traits_a, "{mode}");
        assert_eq!(
            device.inventories, inv_a,
            "{mode}: all six fields read back"
        );
        assert_eq!(device.allocations, 0);
        assert_eq!(
            placement
                .provider(&uuid)
                .await
                .unwrap()
                .parent_provider_uuid
                .as_deref(),
            Some(host.uuid.as_str())
        );

        // Another writer adds its own trait.
        placement.ensure_trait(&theirs).await.unwrap();
        placement
            .update_provider_traits(&uuid, &set(&[&theirs]), &BTreeSet::new())
            .await
            .unwrap();

        // Second write: another function, another resource class.
        let inv_b = BTreeMap::from([(rc_b.clone(), inventory(2, 0))]);
        let traits_b = set(&[&func_b]);
        let again = write_device_provider(
            &placement,
            &host.uuid,
            Some(device),
            &target(name.clone(), &traits_b, &inv_b),
            owned,
        )
        .await
        .unwrap();
        assert_eq!(again, uuid);
        let device = device_providers(&placement, &host.uuid)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            device.traits,
            set(&[&func_b, &theirs, "HW_CPU_X86_AVX2"]),
            "{mode}: our old trait went, the other writer's and the unowned standard trait stayed"
        );
        assert_eq!(
            device.inventories, inv_b,
            "{mode}: the old resource class went"
        );

        // Unchanged input: a no-op that changes no generation.
        let before = placement.provider(&device.uuid).await.unwrap().generation;
        write_device_provider(
            &placement,
            &host.uuid,
            Some(&device),
            &target(name.clone(), &traits_b, &inv_b),
            owned,
        )
        .await
        .unwrap();
        assert_eq!(
            placement.provider(&device.uuid).await.unwrap().generation,
            before,
            "{mode}: nothing was rewritten"
        );

        // Caller's view stale (existing = None) but the provider is under this host: adopted.
        let adopted = write_device_provider(
            &placement,
            &host.uuid,
            None,
            &target(name.clone(), &traits_b, &inv_b),
            owned,
        )
        .await
        .unwrap();
        assert_eq!(adopted, uuid, "{mode}");

        // The name taken elsewhere: an error naming the provider.
        let other_host = placement
            .create_provider(&host_name("wr-other"), None, None)
            .await
            .unwrap();
        let err = write_device_provider(
            &placement,
            &other_host.uuid,
            None,
            &target(name.clone(), &traits_b, &inv_b),
            owned,
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), Some(409), "{mode}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("`{name}` exists already")),
            "{err}"
        );

        placement.delete_provider(&uuid).await.unwrap();
        placement.delete_provider(&host.uuid).await.unwrap();
        placement.delete_provider(&other_host.uuid).await.unwrap();
        for t in [&func_a, &func_b, &theirs] {
            placement.delete_trait(t).await.unwrap();
        }
        for rc in [&rc_a, &rc_b] {
            placement.delete_resource_class(rc).await.unwrap();
        }
    }
}

pub async fn allocate(session: &Session, consumer: &str, provider: &str, rc: &str, amount: u64) {
    let endpoint = session.endpoint(Service::Placement).await.unwrap();
    let token = session.current_token().await.unwrap();
    let claim = serde_json::json!({"allocations": {provider: {"resources": {rc: amount}}},
        "project_id": "6f1c1d3e2b0a4c559f3e8d1b2a3c4d5e", "user_id": "0d1b2a3c4d5e6f1c1d3e2b0a4c559f3e"});
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/allocations/{consumer}"))
        .header("X-Auth-Token", token.expose())
        .header("OpenStack-API-Version", "placement 1.26")
        .json(&claim)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
}

pub async fn free(session: &Session, consumer: &str) {
    let endpoint = session.endpoint(Service::Placement).await.unwrap();
    let token = session.current_token().await.unwrap();
    let response = reqwest::Client::new()
        .delete(format!("{endpoint}/allocations/{consumer}"))
        .header("X-Auth-Token", token.expose())
        .header("OpenStack-API-Version", "placement 1.26")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn reserve_all_and_removal_refused_while_a_consumer_holds_an_allocation() {
    for mode in MODES {
        let session = local_cloud().session(mode).await;
        let placement = Placement::new(&session);
        let host = placement
            .create_provider(&host_name("rm-host"), None, None)
            .await
            .unwrap();
        let (rc_a, rc_b) = (unique("CUSTOM_HC_RES_A"), unique("CUSTOM_HC_RES_B"));
        let inventories = BTreeMap::from([
            (rc_a.clone(), inventory(2, 0)),
            (rc_b.clone(), inventory(3, 1)),
        ]);
        let name = format!("{}_0000:af:00.0", host.name);
        let uuid = write_device_provider(
            &placement,
            &host.uuid,
            None,
            &target(name.clone(), &BTreeSet::new(), &inventories),
            |_| false,
        )
        .await
        .unwrap();

        reserve_all(&placement, &uuid).await.unwrap();
        let (_, read) = placement.inventories(&uuid).await.unwrap();
        assert_eq!(
            read,
            BTreeMap::from([
                (rc_a.clone(), inventory(2, 2)),
                (rc_b.clone(), inventory(3, 3))
            ]),
            "{mode}: reserved = total, the other fields untouched"
        );
        let generation = placement.provider(&uuid).await.unwrap().generation;
        reserve_all(&placement, &uuid).await.unwrap();
        assert_eq!(
            placement.provider(&uuid).await.unwrap().generation,
            generation,
            "{mode}: already reserved, nothing written"
        );

        // Unreserve, and let a VM claim some of it.
        write_device_provider(
            &placement,
            &host.uuid,
            None,
            &target(name.clone(), &BTreeSet::new(), &inventories),
            |_| false,
        )
        .await
        .unwrap();
        let consumer = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            rand::random::<u32>(),
            rand::random::<u64>() & 0xFFFF_FFFF_FFFF
        );
        allocate(&session, &consumer, &uuid, &rc_a, 1).await;
        let device = device_providers(&placement, &host.uuid)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(device.allocations, 1, "{mode}");

        // Reserving with an allocation present is allowed (it drains).
        reserve_all(&placement, &uuid).await.unwrap();
        assert_eq!(
            placement.inventories(&uuid).await.unwrap().1[&rc_a].reserved,
            2
        );

        // The caller's view says no allocations: the removal reads them again.
        let stale = device_providers(&placement, &host.uuid)
            .await
            .unwrap()
            .remove(0);
        let stale = fpga_sync::host::plan::ProviderState {
            allocations: 0,
            ..stale
        };
        assert_eq!(
            remove_device_provider(&placement, &stale).await.unwrap(),
            Removal::InUse { consumers: 1 },
            "{mode}"
        );
        assert!(
            placement.provider(&uuid).await.is_ok(),
            "{mode}: still there"
        );

        free(&session, &consumer).await;
        assert_eq!(
            remove_device_provider(&placement, &stale).await.unwrap(),
            Removal::Removed
        );
        assert_eq!(
            placement.provider(&uuid).await.unwrap_err().status(),
            Some(404)
        );
        assert_eq!(
            remove_device_provider(&placement, &stale).await.unwrap(),
            Removal::Removed,
            "{mode}: already gone is removed"
        );
        assert!(
            device_providers(&placement, &host.uuid)
                .await
                .unwrap()
                .is_empty()
        );

        placement.delete_provider(&host.uuid).await.unwrap();
        placement.delete_resource_class(&rc_a).await.unwrap();
        placement.delete_resource_class(&rc_b).await.unwrap();
    }
}

/// Uploads `data` as a bitstream image of `site` in `state`; returns the image.
async fn upload(
    glance: &Glance<'_>,
    dir: &std::path::Path,
    site: &str,
    bs_uuid: &str,
    state: &str,
    data: &[u8],
) -> (Image, String) {
    let file = dir.join(unique("bs"));
    std::fs::write(&file, data).unwrap();
    let sha256 = digest_file(&file, HashAlgo::Sha512).await.unwrap().sha256;
    let image = glance
        .create(&NewImage {
            name: unique("fpga-sync-host-test"),
            visibility: "private".into(),
            tags: vec!["FPGA".into()],
            properties: BTreeMap::from([
                ("bs-uuid".into(), bs_uuid.into()),
                (IMAGE_OWNER.into(), site.into()),
                (IMAGE_SHA256.into(), sha256.clone()),
                (IMAGE_STATE.into(), state.into()),
            ]),
        })
        .await
        .unwrap();
    glance
        .upload(&image.id, &file, HashAlgo::Sha512, Arc::new(|_| {}))
        .await
        .unwrap();
    (glance.image(&image.id).await.unwrap(), sha256)
}

fn bitstream(seed: u32, len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[tokio::test]
async fn bitstreams_are_found_fetched_verified_and_served_from_the_cache() {
    for mode in MODES {
        let session = local_cloud().session(mode).await;
        let glance = Glance::new(&session);
        let dir = tempfile::tempdir().unwrap();
        let cache = BitstreamCache::new(dir.path().join("cache"));
        let site = unique("site");
        let bs_uuid = uuid::Uuid::from_u128(rand::random()).to_string();
        // A bit over 2 MiB: several chunks.
        let data = bitstream(1, 2 * 1024 * 1024 + 777);

        // Other site's image and an unfinished upload of the same content: never chosen.
        let (foreign, sha256) = upload(
            &glance,
            dir.path(),
            &unique("other"),
            &bs_uuid,
            STATE_COMPLETE,
            &data,
        )
        .await;
        let (unfinished, _) =
            upload(&glance, dir.path(), &site, &bs_uuid, STATE_UPLOADING, &data).await;
        let err = find_image(&glance, &site, &bs_uuid, &sha256)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::NotInGlance { .. }),
            "{mode}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&bs_uuid) && text.contains("`fpga-sync apply` (central) uploads it"),
            "{text}"
        );

        let (ours, _) = upload(&glance, dir.path(), &site, &bs_uuid, STATE_COMPLETE, &data).await;
        let found = find_image(&glance, &site, &bs_uuid, &sha256).await.unwrap();
        assert_eq!(found.id, ours.id, "{mode}: only our complete image");
        assert!(
            find_image(&glance, &site, &bs_uuid, &"0".repeat(64))
                .await
                .is_err(),
            "{mode}: another sha256 is another bitstream"
        );

        // First fetch downloads into the cache, verified and read-only.
        assert_eq!(cache.cached(&sha256).await, None);
        let path = cache.fetch(&glance, &found, &sha256).await.unwrap();
        assert_eq!(path, cache.path(&sha256));
        assert_eq!(path, dir.path().join("cache").join(&sha256));
        assert_eq!(std::fs::read(&path).unwrap(), data, "{mode}");
        assert!(std::fs::metadata(&path).unwrap().permissions().readonly());

        // Second fetch: from the cache, no request at all.
        let before = session.requests();
        assert_eq!(cache.fetch(&glance, &found, &sha256).await.unwrap(), path);
        assert_eq!(session.requests(), before, "{mode}: served from the cache");

        // A cached file changed afterwards is caught and fetched again.
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        let mut tampered = data.clone();
        tampered[4096] ^= 0x01;
        std::fs::write(&path, &tampered).unwrap();
        assert_eq!(
            cache.cached(&sha256).await,
            None,
            "{mode}: tampering detected"
        );
        assert!(!path.exists(), "{mode}: the changed file was deleted");
        std::fs::write(&path, &tampered).unwrap();
        let before = session.requests();
        assert_eq!(cache.fetch(&glance, &found, &sha256).await.unwrap(), path);
        assert!(session.requests() > before, "{mode}: downloaded again");
        assert_eq!(std::fs::read(&path).unwrap(), data);

        // A sha256 that is not one never names a file.
        let err = cache
            .fetch(&glance, &found, "../../etc/passwd")
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::BadDigest { .. }), "{err}");

        let entries: Vec<String> = std::fs::read_dir(dir.path().join("cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            entries,
            [sha256.as_str()],
            "{mode}: nothing else in the cache"
        );

        for image in [&foreign, &unfinished, &ours] {
            glance.delete(&image.id).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_corrupt_glance_store_file_leaves_nothing_in_the_cache() {
    let cloud = local_cloud();
    let session = cloud.session(NOAUTH).await;
    let glance = Glance::new(&session);
    let dir = tempfile::tempdir().unwrap();
    let cache = BitstreamCache::new(dir.path().join("cache"));
    let site = unique("site");
    let bs_uuid = uuid::Uuid::from_u128(rand::random()).to_string();
    let (image, sha256) = upload(
        &glance,
        dir.path(),
        &site,
        &bs_uuid,
        STATE_COMPLETE,
        &bitstream(2, 300_000),
    )
    .await;
    // Flip a byte in Glance's own file store (disk rot).
    let stored = cloud.state.join("noauth-glance/images").join(&image.id);
    let mut bytes = std::fs::read(&stored).unwrap_or_else(|e| panic!("{}: {e}", stored.display()));
    bytes[1000] ^= 0xFF;
    std::fs::write(&stored, bytes).unwrap();

    let found = find_image(&glance, &site, &bs_uuid, &sha256).await.unwrap();
    let err = cache.fetch(&glance, &found, &sha256).await.unwrap_err();
    assert!(matches!(err, FetchError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "the download of image {} did not match and was discarded",
            image.id
        )),
        "{err}"
    );
    assert!(!cache.path(&sha256).exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "no temporary file either");
    glance.delete(&image.id).await.unwrap();
}

fn target(
    name: String,
    traits: &std::collections::BTreeSet<String>,
    inventories: &std::collections::BTreeMap<String, fpga_sync::cloud::placement::Inventory>,
) -> ProviderTarget {
    ProviderTarget {
        name,
        traits: traits.clone(),
        inventories: inventories.clone(),
    }
}
