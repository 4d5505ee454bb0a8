//! Who holds a slot, asked of the cloud: each consumer's Placement type (microversion 1.38:
//! `FPGA_SYNC_CLAIM` is an fpga-sync claim) and, unless it is a claim, the Nova server of
//! that id (`GET /servers/{id}`, which an admin may read in any project). Best effort: a
//! consumer that Nova does not know (404), a Nova the credentials cannot reach, or an older
//! Placement leaves the consumer known by its id; messages then name the id. Only the
//! consumers a plan names are looked up (held slots), never every allocation of a fleet.
//! I/O: Placement and Nova.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;

use crate::cloud::nova::Nova;
use crate::cloud::placement::Placement;
use crate::cloud::session::Session;
use crate::host::plan::ProviderState;
use crate::host::plan::consumer::{Consumer, Server};

/// What is known of each consumer in `ids`, by id.
pub async fn describe(session: &Session, ids: &BTreeSet<String>) -> BTreeMap<String, Consumer> {
    let placement = Placement::new(session);
    let nova = Nova::new(session);
    let found = join_all(ids.iter().map(|id| {
        let (placement, nova) = (&placement, &nova);
        async move {
            let kind = match placement.consumer(id).await {
                Ok(c) => c.consumer_type,
                Err(e) => {
                    tracing::debug!(consumer = %id, error = %e, "reading the consumer's type");
                    None
                }
            };
            let mut consumer = Consumer {
                id: id.clone(),
                server: None,
                kind,
            };
            if !consumer.is_claim() {
                match nova.server(id).await {
                    Ok(Some(s)) => {
                        consumer.server = Some(Server {
                            name: s.name,
                            project: s.tenant_id,
                        });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(consumer = %id, error = %e, "looking the consumer up in Nova");
                    }
                }
            }
            (id.clone(), consumer)
        }
    }))
    .await;
    found.into_iter().collect()
}

/// Replaces the consumers of `providers` that `described` knows with what it says.
pub fn fill(providers: &mut [ProviderState], described: &BTreeMap<String, Consumer>) {
    for p in providers {
        for c in &mut p.consumers {
            if let Some(d) = described.get(&c.id) {
                c.clone_from(d);
            }
        }
    }
}
