//! Reads what the cloud holds into [`Observed`]: Glance, Placement and Nova in parallel,
//! provider details with the session's shared concurrency limit. I/O: HTTP.

use futures_util::future::try_join_all;

use super::error::CloudError;
use super::glance::Glance;
use super::nova::Nova;
use super::placement::Placement;
use super::session::Session;
use crate::observed::{
    FlavorId, Observed, ObservedFlavor, ObservedImage, ObservedProvider, is_fpga_extra_spec,
    is_fpga_resource_class, is_fpga_trait,
};

/// Checks once that each service serves the API version fpga-sync is written for.
pub async fn check_versions(session: &Session) -> Result<(), CloudError> {
    let (placement, glance, nova) = (
        Placement::new(session),
        Glance::new(session),
        Nova::new(session),
    );
    tokio::try_join!(
        placement.check_version(),
        glance.check_version(),
        nova.check_version()
    )?;
    Ok(())
}

/// Reads the cloud.
pub async fn observe(session: &Session) -> Result<Observed, CloudError> {
    let placement = Placement::new(session);
    let (images, traits, resource_classes, providers, (flavors, other_flavors)) = tokio::try_join!(
        images(session),
        placement.traits("CUSTOM_"),
        placement.resource_classes(),
        providers(session),
        flavors(session)
    )?;
    Ok(Observed {
        images,
        traits,
        resource_classes,
        providers,
        flavors,
        other_flavors,
    })
}

async fn images(session: &Session) -> Result<Vec<ObservedImage>, CloudError> {
    let mut out: Vec<ObservedImage> = Glance::new(session)
        .images(&["FPGA"])
        .await?
        .into_iter()
        .map(|i| {
            let properties = i.properties();
            let mut tags = i.tags;
            tags.sort();
            ObservedImage {
                id: i.id.into(),
                name: i.name,
                status: i.status,
                visibility: i.visibility,
                tags,
                size: i.size,
                os_hash_algo: i.os_hash_algo,
                os_hash_value: i.os_hash_value,
                updated_at: i.updated_at,
                properties,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(out)
}

/// Nested providers whose inventories count FPGAs or whose traits name them. Root
/// providers (compute nodes) are not devices and are not read further.
async fn providers(session: &Session) -> Result<Vec<ObservedProvider>, CloudError> {
    let placement = Placement::new(session);
    let nested: Vec<_> = placement
        .providers(None, None)
        .await?
        .into_iter()
        .filter(|p| p.parent_provider_uuid.is_some())
        .collect();
    let details = try_join_all(nested.into_iter().map(|p| {
        let placement = Placement::new(session);
        async move {
            let read = tokio::try_join!(
                placement.inventories(&p.uuid),
                placement.provider_traits(&p.uuid)
            );
            let (inventories, traits) = match read {
                Ok(r) => r,
                // Deleted between the listing and this read: it is not there any more.
                Err(e) if e.status() == Some(404) => return Ok(None),
                Err(e) => return Err(e),
            };
            Ok::<_, CloudError>(Some(ObservedProvider {
                generation: traits.0.max(inventories.0),
                uuid: p.uuid,
                name: p.name,
                parent: p.parent_provider_uuid,
                inventories: inventories.1,
                traits: traits.1,
            }))
        }
    }))
    .await?;
    let mut out: Vec<ObservedProvider> = details
        .into_iter()
        .flatten()
        .filter(|p| {
            p.inventories.keys().any(|rc| is_fpga_resource_class(rc))
                || p.traits.iter().any(|t| is_fpga_trait(t))
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

async fn flavors(
    session: &Session,
) -> Result<
    (
        Vec<ObservedFlavor>,
        std::collections::BTreeMap<String, FlavorId>,
    ),
    CloudError,
> {
    let (fpga, other): (Vec<_>, Vec<_>) = Nova::new(session)
        .flavors()
        .await?
        .into_iter()
        .partition(|f| {
            f.extra_specs.keys().any(|k| is_fpga_extra_spec(k))
                || crate::markers::flavor_site(&f.extra_specs).is_some()
        });
    let other = other.into_iter().map(|f| (f.name, f.id.into())).collect();
    let mut out: Vec<ObservedFlavor> = fpga
        .into_iter()
        .map(|f| ObservedFlavor {
            shape: f.shape(),
            id: f.id.into(),
            name: f.name,
            extra_specs: f.extra_specs,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, other))
}
