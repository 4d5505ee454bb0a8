//! The Placement client: traits, resource classes, resource providers (nested), their
//! inventories, traits, usages and allocations. Writes that carry a provider generation
//! merge with what is there and retry on a generation conflict (409), bounded, so another
//! writer's traits and inventories are never dropped. I/O: HTTP through the session.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::{CloudError, Service};
use super::microversion::Microversion;
use super::session::{Call, Session, read_json, segment};

/// The microversion every request uses: 1.26 lets `reserved` equal `total` (draining a
/// device), and brings what fpga-sync needs before it: traits (1.6), idempotent resource
/// class PUT (1.7), nested providers and `in_tree` (1.14), provider bodies from POST (1.20)
/// and error codes (1.23).
pub const MICROVERSION: Microversion = Microversion::new(1, 26);

/// The microversion of allocation-candidate queries: nested providers take part from 1.29,
/// and `in_tree` (candidates below one compute node) needs 1.31. The response format is
/// written for exactly this version.
pub const CANDIDATES_MICROVERSION: Microversion = Microversion::new(1, 31);

/// The microversion of consumer reads and writes (`/allocations/{consumer}`), pinned per
/// call as allocation candidates pin theirs: from 1.28 every allocation write carries the
/// consumer's generation (`null` for a new consumer), so a write made on a stale read is
/// refused with a 409, and empty allocations remove a consumer's; from 1.38 consumers have
/// a type, so fpga-sync's leases and claims are told apart from Nova's servers.
pub const CONSUMER_MICROVERSION: Microversion = Microversion::new(1, 38);

/// One allocation candidate: provider uuid → resource class → amount.
pub type Candidate = BTreeMap<String, BTreeMap<String, u64>>;

/// Who a new consumer's allocations belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerOwner {
    /// The project id.
    pub project_id: String,
    /// The user id.
    pub user_id: String,
    /// The consumer type.
    pub consumer_type: String,
}

/// How often a generation-guarded write is retried after a conflict.
pub const CONFLICT_RETRIES: u32 = 5;

/// A resource provider.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Provider {
    /// Its uuid.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// Its generation.
    pub generation: u64,
    /// Its parent's uuid, for nested providers.
    #[serde(default)]
    pub parent_provider_uuid: Option<String>,
    /// The root of its tree.
    #[serde(default)]
    pub root_provider_uuid: Option<String>,
}

pub use crate::observed::Inventory;

/// A Placement client.
pub struct Placement<'s> {
    session: &'s Session,
}

impl<'s> Placement<'s> {
    /// A client on `session`.
    pub fn new(session: &'s Session) -> Self {
        Placement { session }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, CloudError> {
        self.call_at(MICROVERSION, method, path, body).await
    }

    async fn call_at<T: serde::de::DeserializeOwned>(
        &self,
        microversion: Microversion,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, CloudError> {
        let v = format!("placement {microversion}");
        let call = Call {
            service: Service::Placement,
            method,
            path,
            microversion: Some(&v),
        };
        let response = self
            .session
            .send(&call, |r| match &body {
                Some(b) => r.json(b),
                None => r,
            })
            .await?;
        read_json(response, &call).await
    }

    async fn call_empty(&self, method: Method, path: &str) -> Result<u16, CloudError> {
        self.call_empty_at(MICROVERSION, method, path, None).await
    }

    /// A request whose answer has no body worth reading (204): its status.
    async fn call_empty_at(
        &self,
        microversion: Microversion,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<u16, CloudError> {
        let v = format!("placement {microversion}");
        let call = Call {
            service: Service::Placement,
            method,
            path,
            microversion: Some(&v),
        };
        let response = self
            .session
            .send(&call, |r| match &body {
                Some(b) => r.json(b),
                None => r,
            })
            .await?;
        Ok(response.status().as_u16())
    }

    /// Checks once that the service serves [`MICROVERSION`].
    pub async fn check_version(&self) -> Result<(), CloudError> {
        self.check_version_at(MICROVERSION).await
    }

    /// Checks that the service serves `wanted` (one request).
    pub async fn check_version_at(&self, wanted: Microversion) -> Result<(), CloudError> {
        let call = Call {
            service: Service::Placement,
            method: Method::GET,
            path: "/",
            microversion: None,
        };
        let doc: serde_json::Value =
            read_json(self.session.send(&call, |r| r).await?, &call).await?;
        check_supported(Service::Placement, wanted, &doc)
    }

    /// Traits whose names start with `prefix` (e.g. `CUSTOM_`), sorted.
    pub async fn traits(&self, prefix: &str) -> Result<Vec<String>, CloudError> {
        #[derive(Deserialize)]
        struct Traits {
            traits: Vec<String>,
        }
        let t: Traits = self
            .call(
                Method::GET,
                &format!("/traits?name=startswith:{}", segment(prefix)),
                None,
            )
            .await?;
        let mut traits = t.traits;
        traits.sort();
        Ok(traits)
    }

    /// Creates a custom trait; `true` when it was created, `false` when it was there.
    pub async fn ensure_trait(&self, name: &str) -> Result<bool, CloudError> {
        Ok(self
            .call_empty(Method::PUT, &format!("/traits/{}", segment(name)))
            .await?
            == 201)
    }

    /// Deletes a custom trait (409 while a provider has it).
    pub async fn delete_trait(&self, name: &str) -> Result<(), CloudError> {
        self.call_empty(Method::DELETE, &format!("/traits/{}", segment(name)))
            .await
            .map(drop)
    }

    /// Custom resource classes, sorted.
    pub async fn resource_classes(&self) -> Result<Vec<String>, CloudError> {
        #[derive(Deserialize)]
        struct Classes {
            resource_classes: Vec<Named>,
        }
        #[derive(Deserialize)]
        struct Named {
            name: String,
        }
        let c: Classes = self.call(Method::GET, "/resource_classes", None).await?;
        let mut names: Vec<String> = c
            .resource_classes
            .into_iter()
            .map(|n| n.name)
            .filter(|n| n.starts_with("CUSTOM_"))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Creates a custom resource class; `true` when it was created.
    pub async fn ensure_resource_class(&self, name: &str) -> Result<bool, CloudError> {
        Ok(self
            .call_empty(Method::PUT, &format!("/resource_classes/{}", segment(name)))
            .await?
            == 201)
    }

    /// Deletes a custom resource class (409 while an inventory uses it).
    pub async fn delete_resource_class(&self, name: &str) -> Result<(), CloudError> {
        self.call_empty(
            Method::DELETE,
            &format!("/resource_classes/{}", segment(name)),
        )
        .await
        .map(drop)
    }

    /// Providers, filtered by exact `name` and/or `in_tree` (a provider uuid).
    pub async fn providers(
        &self,
        name: Option<&str>,
        in_tree: Option<&str>,
    ) -> Result<Vec<Provider>, CloudError> {
        #[derive(Deserialize)]
        struct Providers {
            resource_providers: Vec<Provider>,
        }
        let mut query = Vec::new();
        if let Some(n) = name {
            query.push(format!("name={}", segment(n)));
        }
        if let Some(t) = in_tree {
            query.push(format!("in_tree={}", segment(t)));
        }
        let path = if query.is_empty() {
            "/resource_providers".to_owned()
        } else {
            format!("/resource_providers?{}", query.join("&"))
        };
        Ok(self
            .call::<Providers>(Method::GET, &path, None)
            .await?
            .resource_providers)
    }

    /// Providers matching query filters as Placement takes them on `GET
    /// /resource_providers` (`required`, `resources`, `member_of`, `in_tree`, `name`), each
    /// a key and value (encoded here).
    pub async fn providers_matching(
        &self,
        filters: &[(&str, &str)],
    ) -> Result<Vec<Provider>, CloudError> {
        #[derive(Deserialize)]
        struct Providers {
            resource_providers: Vec<Provider>,
        }
        let query: Vec<String> = filters
            .iter()
            .map(|(k, v)| format!("{}={}", segment(k), segment(v)))
            .collect();
        Ok(self
            .call::<Providers>(
                Method::GET,
                &format!("/resource_providers?{}", query.join("&")),
                None,
            )
            .await?
            .resource_providers)
    }

    /// One provider.
    pub async fn provider(&self, uuid: &str) -> Result<Provider, CloudError> {
        self.call(
            Method::GET,
            &format!("/resource_providers/{}", segment(uuid)),
            None,
        )
        .await
    }

    /// Creates a provider, nested under `parent` when given.
    pub async fn create_provider(
        &self,
        name: &str,
        uuid: Option<&str>,
        parent: Option<&str>,
    ) -> Result<Provider, CloudError> {
        let mut body = json!({"name": name});
        if let Some(u) = uuid {
            body["uuid"] = json!(u);
        }
        if let Some(p) = parent {
            body["parent_provider_uuid"] = json!(p);
        }
        self.call(Method::POST, "/resource_providers", Some(body))
            .await
    }

    /// Deletes a provider (409 while it has allocations or children).
    pub async fn delete_provider(&self, uuid: &str) -> Result<(), CloudError> {
        self.call_empty(
            Method::DELETE,
            &format!("/resource_providers/{}", segment(uuid)),
        )
        .await
        .map(drop)
    }

    /// Reads a generation-guarded part of a provider (`inventories` or `traits`) and the
    /// provider's generation.
    async fn read_guarded<T: serde::de::DeserializeOwned>(
        &self,
        uuid: &str,
        part: &str,
    ) -> Result<(u64, T), CloudError> {
        let path = format!("/resource_providers/{}/{part}", segment(uuid));
        let mut body: serde_json::Value = self.call(Method::GET, &path, None).await?;
        let generation = body["resource_provider_generation"]
            .as_u64()
            .unwrap_or_default();
        let value = serde_json::from_value(body[part].take()).map_err(|e| CloudError::Decode {
            service: Service::Placement,
            request: format!("GET {path}"),
            reason: e.to_string(),
        })?;
        Ok((generation, value))
    }

    /// Replaces a generation-guarded part of a provider; returns the new generation. A
    /// stale generation is a 409.
    async fn write_guarded<T: Serialize>(
        &self,
        uuid: &str,
        part: &str,
        generation: u64,
        value: &T,
    ) -> Result<u64, CloudError> {
        let path = format!("/resource_providers/{}/{part}", segment(uuid));
        let body = json!({"resource_provider_generation": generation, (part): value});
        let out: serde_json::Value = self.call(Method::PUT, &path, Some(body)).await?;
        Ok(out["resource_provider_generation"]
            .as_u64()
            .unwrap_or_default())
    }

    /// Reads a guarded part, computes the wanted value from it with `merge`, and writes it
    /// when it differs. A generation conflict (another writer got there first) re-reads and
    /// merges again, at most [`CONFLICT_RETRIES`] times, so that writer's changes survive.
    async fn merge_guarded<T>(
        &self,
        uuid: &str,
        part: &str,
        merge: impl Fn(&T) -> T,
    ) -> Result<(T, u64), CloudError>
    where
        T: serde::de::DeserializeOwned + Serialize + PartialEq,
    {
        let mut attempt = 0;
        loop {
            let (generation, current) = self.read_guarded::<T>(uuid, part).await?;
            let wanted = merge(&current);
            if wanted == current {
                return Ok((current, generation));
            }
            match self.write_guarded(uuid, part, generation, &wanted).await {
                Err(e) if e.status() == Some(409) && attempt < CONFLICT_RETRIES => attempt += 1,
                Err(e) => return Err(e),
                Ok(generation) => return Ok((wanted, generation)),
            }
        }
    }

    /// A provider's inventories and its generation.
    pub async fn inventories(
        &self,
        uuid: &str,
    ) -> Result<(u64, BTreeMap<String, Inventory>), CloudError> {
        self.read_guarded(uuid, "inventories").await
    }

    /// Replaces a provider's inventories, guarded by `generation`; returns the new
    /// generation.
    pub async fn set_inventories(
        &self,
        uuid: &str,
        generation: u64,
        inventories: &BTreeMap<String, Inventory>,
    ) -> Result<u64, CloudError> {
        self.write_guarded(uuid, "inventories", generation, inventories)
            .await
    }

    /// A provider's traits and its generation.
    pub async fn provider_traits(&self, uuid: &str) -> Result<(u64, BTreeSet<String>), CloudError> {
        self.read_guarded(uuid, "traits").await
    }

    /// Replaces a provider's traits, guarded by `generation`; returns the new generation.
    pub async fn set_provider_traits(
        &self,
        uuid: &str,
        generation: u64,
        traits: &BTreeSet<String>,
    ) -> Result<u64, CloudError> {
        self.write_guarded(uuid, "traits", generation, traits).await
    }

    /// Adds `add` and removes `remove` from a provider's traits, keeping every other trait
    /// (another writer's), merging again after a generation conflict. Returns the traits
    /// written and the new generation.
    pub async fn update_provider_traits(
        &self,
        uuid: &str,
        add: &BTreeSet<String>,
        remove: &BTreeSet<String>,
    ) -> Result<(BTreeSet<String>, u64), CloudError> {
        self.merge_guarded(uuid, "traits", |current: &BTreeSet<String>| {
            current
                .difference(remove)
                .chain(add.iter())
                .cloned()
                .collect()
        })
        .await
    }

    /// Sets the inventory of each given resource class (others stay), removing those in
    /// `remove`, merging again after a generation conflict. Returns the new generation.
    pub async fn update_inventories(
        &self,
        uuid: &str,
        set: &BTreeMap<String, Inventory>,
        remove: &BTreeSet<String>,
    ) -> Result<u64, CloudError> {
        let merge = |current: &BTreeMap<String, Inventory>| {
            let mut wanted = current.clone();
            wanted.retain(|rc, _| !remove.contains(rc));
            wanted.extend(set.iter().map(|(k, v)| (k.clone(), *v)));
            wanted
        };
        Ok(self.merge_guarded(uuid, "inventories", merge).await?.1)
    }

    /// How much of each resource class is in use on a provider.
    pub async fn usages(&self, uuid: &str) -> Result<BTreeMap<String, u64>, CloudError> {
        #[derive(Deserialize)]
        struct Usages {
            usages: BTreeMap<String, u64>,
        }
        Ok(self
            .call::<Usages>(
                Method::GET,
                &format!("/resource_providers/{}/usages", segment(uuid)),
                None,
            )
            .await?
            .usages)
    }

    /// The allocation candidates Placement offers for a request, as the scheduler asks
    /// for them: `query` holds `resources`, `required`, `in_tree`, granular
    /// `resourcesN`/`requiredN` and `group_policy` pairs. Each candidate maps provider
    /// uuids to what it would allocate there.
    pub async fn allocation_candidates(
        &self,
        query: &[(String, String)],
    ) -> Result<Vec<Candidate>, CloudError> {
        #[derive(Deserialize)]
        struct Candidates {
            allocation_requests: Vec<Request>,
        }
        #[derive(Deserialize)]
        struct Request {
            allocations: BTreeMap<String, Resources>,
        }
        #[derive(Deserialize)]
        struct Resources {
            resources: BTreeMap<String, u64>,
        }
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", segment(k), segment(v)))
            .collect();
        let c: Candidates = self
            .call_at(
                CANDIDATES_MICROVERSION,
                Method::GET,
                &format!("/allocation_candidates?{}", query.join("&")),
                None,
            )
            .await?;
        Ok(c.allocation_requests
            .into_iter()
            .map(|r| {
                r.allocations
                    .into_iter()
                    .map(|(uuid, res)| (uuid, res.resources))
                    .collect()
            })
            .collect())
    }

    /// The consumers holding allocations against a provider, read at
    /// [`CONSUMER_MICROVERSION`]: consumer uuid → its resources there and its generation.
    pub async fn provider_consumers(
        &self,
        uuid: &str,
    ) -> Result<BTreeMap<String, ProviderConsumer>, CloudError> {
        #[derive(Deserialize)]
        struct Allocations {
            allocations: BTreeMap<String, ProviderConsumer>,
        }
        let a: Allocations = self
            .call_at(
                CONSUMER_MICROVERSION,
                Method::GET,
                &format!("/resource_providers/{}/allocations", segment(uuid)),
                None,
            )
            .await?;
        Ok(a.allocations)
    }

    /// One consumer's allocations, generation, project and user, read at
    /// [`CONSUMER_MICROVERSION`]. A consumer that does not exist reads as empty.
    pub async fn consumer(&self, consumer: &str) -> Result<ConsumerAllocations, CloudError> {
        self.call_at(
            CONSUMER_MICROVERSION,
            Method::GET,
            &format!("/allocations/{}", segment(consumer)),
            None,
        )
        .await
    }

    /// Replaces one consumer's allocations, guarded by its generation (`None`: the
    /// consumer must not exist yet), at [`CONSUMER_MICROVERSION`]. Placement checks the
    /// providers' capacity and both generations in one transaction: a 409 means another
    /// writer got there first, or there is no room.
    pub async fn set_consumer(
        &self,
        consumer: &str,
        write: &ConsumerWrite,
    ) -> Result<(), CloudError> {
        self.call_empty_at(
            CONSUMER_MICROVERSION,
            Method::PUT,
            &format!("/allocations/{}", segment(consumer)),
            Some(serde_json::to_value(write).expect("allocations serialise")),
        )
        .await
        .map(drop)
    }

    /// Replaces several consumers' allocations in one transaction (`POST /allocations`,
    /// at [`CONSUMER_MICROVERSION`]): all of them or none, each guarded by its
    /// generation; empty allocations remove a consumer's. Never repeated by the session.
    pub async fn set_consumers(
        &self,
        writes: &BTreeMap<String, ConsumerWrite>,
    ) -> Result<(), CloudError> {
        self.call_empty_at(
            CONSUMER_MICROVERSION,
            Method::POST,
            "/allocations",
            Some(serde_json::to_value(writes).expect("allocations serialise")),
        )
        .await
        .map(drop)
    }

    /// Replaces everything `consumer` holds with `allocations` (provider uuid → resource
    /// class → amount), guarded by its `generation` (`None`: a new consumer), owned by
    /// `owner`; empty `allocations` frees all it holds. See [`Self::set_consumer`].
    pub async fn set_consumer_allocations(
        &self,
        consumer: &str,
        allocations: &BTreeMap<String, BTreeMap<String, u64>>,
        generation: Option<u64>,
        owner: &ConsumerOwner,
    ) -> Result<(), CloudError> {
        let write = ConsumerWrite {
            allocations: allocations
                .iter()
                .map(|(p, r)| {
                    (
                        p.clone(),
                        Resources {
                            resources: r.clone(),
                        },
                    )
                })
                .collect(),
            consumer_generation: generation,
            project_id: owner.project_id.clone(),
            user_id: owner.user_id.clone(),
            consumer_type: owner.consumer_type.clone(),
        };
        self.set_consumer(consumer, &write).await
    }

    /// Deletes all of one consumer's allocations, unguarded (404 when it has none).
    pub async fn delete_consumer(&self, consumer: &str) -> Result<(), CloudError> {
        self.call_empty(
            Method::DELETE,
            &format!("/allocations/{}", segment(consumer)),
        )
        .await
        .map(drop)
    }

    /// The allocations against a provider, by consumer: resource class → amount.
    pub async fn allocations(
        &self,
        uuid: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, u64>>, CloudError> {
        #[derive(Deserialize)]
        struct Allocations {
            allocations: BTreeMap<String, Consumer>,
        }
        #[derive(Deserialize)]
        struct Consumer {
            resources: BTreeMap<String, u64>,
        }
        let a: Allocations = self
            .call(
                Method::GET,
                &format!("/resource_providers/{}/allocations", segment(uuid)),
                None,
            )
            .await?;
        Ok(a.allocations
            .into_iter()
            .map(|(k, c)| (k, c.resources))
            .collect())
    }
}

/// A consumer's allocations against one provider, as a provider's allocation listing
/// gives them.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ProviderConsumer {
    /// Resource class → amount.
    pub resources: BTreeMap<String, u64>,
    /// The consumer's generation.
    #[serde(default)]
    pub consumer_generation: Option<u64>,
}

/// Resources held on one provider.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Resources {
    /// Resource class → amount.
    pub resources: BTreeMap<String, u64>,
}

/// One consumer's allocations as `GET /allocations/{consumer}` gives them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ConsumerAllocations {
    /// Provider uuid → what the consumer holds there; empty when the consumer does not
    /// exist.
    #[serde(default)]
    pub allocations: BTreeMap<String, Resources>,
    /// Its generation (absent for a consumer that does not exist).
    #[serde(default)]
    pub consumer_generation: Option<u64>,
    /// Its project.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Its user.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Its type (`INSTANCE` or `unknown` for Nova's servers, `FPGA_SYNC_CLAIM` for claims,
    /// `FPGA_SYNC_LEASE` for leases).
    #[serde(default)]
    pub consumer_type: Option<String>,
}

/// One consumer's allocations to write (`PUT /allocations/{consumer}`, or an entry of
/// `POST /allocations`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ConsumerWrite {
    /// Provider uuid → what to hold there; empty removes the consumer's allocations.
    pub allocations: BTreeMap<String, Resources>,
    /// The generation the write expects (`None`: a new consumer).
    pub consumer_generation: Option<u64>,
    /// The consumer's project.
    pub project_id: String,
    /// The consumer's user.
    pub user_id: String,
    /// The consumer's type (required from 1.38).
    pub consumer_type: String,
}

/// Fails with [`CloudError::Microversion`] unless `doc` says `wanted` is served.
pub fn check_supported(
    service: Service,
    wanted: Microversion,
    doc: &serde_json::Value,
) -> Result<(), CloudError> {
    let supported = super::microversion::Supported::from_document(doc);
    match supported {
        Some(s) if s.contains(wanted) => Ok(()),
        _ => Err(CloudError::Microversion {
            service,
            wanted,
            supported,
        }),
    }
}
