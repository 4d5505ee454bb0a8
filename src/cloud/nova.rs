//! The Nova client: flavors (list them with their extra specs in one request, create them
//! with a description, set and unset extra specs, change the description, delete), and one
//! server's name and project, to say who holds a slot (fpga-sync never boots or changes
//! servers). I/O: HTTP through the session.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::{CloudError, Service};
use super::microversion::Microversion;
use super::placement::check_supported;
use super::session::{Call, Session, read_json, segment};
use crate::observed::FlavorShape;

/// The microversion every request uses: extra specs in flavor listings (2.61), flavor
/// descriptions (2.55), and `swap` as a number (2.75).
pub const MICROVERSION: Microversion = Microversion::new(2, 75);

/// A flavor as Nova holds it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct NovaFlavor {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory, MiB.
    pub ram: u32,
    /// Root disk, GiB.
    pub disk: u32,
    /// Ephemeral disk, GiB.
    #[serde(rename = "OS-FLV-EXT-DATA:ephemeral", default)]
    pub ephemeral: u32,
    /// Swap, MiB.
    #[serde(default)]
    pub swap: u32,
    /// Whether every project may use it.
    #[serde(rename = "os-flavor-access:is_public", default = "yes")]
    pub is_public: bool,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Its extra specs.
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

/// A server, as much as fpga-sync reads of it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct NovaServer {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its project's id.
    pub tenant_id: String,
    /// `ACTIVE`, `ERROR`, ...
    #[serde(default)]
    pub status: String,
}

impl NovaFlavor {
    /// Its shape, as the rest of fpga-sync holds it.
    pub fn shape(&self) -> FlavorShape {
        FlavorShape {
            vcpus: self.vcpus,
            ram: self.ram,
            disk: self.disk,
            ephemeral: self.ephemeral,
            swap: self.swap,
            is_public: self.is_public,
            description: self.description.clone(),
        }
    }
}

/// A Nova client.
pub struct Nova<'s> {
    session: &'s Session,
}

fn version() -> String {
    format!("compute {MICROVERSION}")
}

impl<'s> Nova<'s> {
    /// A client on `session`.
    pub fn new(session: &'s Session) -> Self {
        Nova { session }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, CloudError> {
        let v = version();
        let call = Call {
            service: Service::Compute,
            method,
            path,
            microversion: Some(&v),
        };
        self.session
            .send(&call, |r| match &body {
                Some(b) => r.json(b),
                None => r,
            })
            .await
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, CloudError> {
        let v = version();
        let call = Call {
            service: Service::Compute,
            method: method.clone(),
            path,
            microversion: Some(&v),
        };
        read_json(self.call(method, path, body).await?, &call).await
    }

    /// Checks once that the service serves [`MICROVERSION`].
    pub async fn check_version(&self) -> Result<(), CloudError> {
        let doc: serde_json::Value = self.json(Method::GET, "/", None).await?;
        check_supported(Service::Compute, MICROVERSION, &doc)
    }

    /// Every flavor, public and private, with its extra specs, following pagination.
    pub async fn flavors(&self) -> Result<Vec<NovaFlavor>, CloudError> {
        #[derive(Deserialize)]
        struct Page {
            flavors: Vec<NovaFlavor>,
            #[serde(default)]
            flavors_links: Vec<Link>,
        }
        #[derive(Deserialize)]
        struct Link {
            rel: String,
            href: String,
        }
        let mut out = Vec::new();
        let mut next = Some("/flavors/detail?is_public=None".to_owned());
        while let Some(path) = next.take() {
            let page: Page = self.json(Method::GET, &path, None).await?;
            out.extend(page.flavors);
            next = page
                .flavors_links
                .into_iter()
                .find(|l| l.rel == "next")
                .map(|l| l.href);
        }
        Ok(out)
    }

    /// Creates a flavor with `id`, or with an id Nova picks.
    pub async fn create_flavor(
        &self,
        name: &str,
        flavor: &FlavorShape,
        id: Option<&str>,
    ) -> Result<NovaFlavor, CloudError> {
        #[derive(Deserialize)]
        struct Out {
            flavor: NovaFlavor,
        }
        let body = json!({"flavor": {
            "name": name, "vcpus": flavor.vcpus, "ram": flavor.ram, "disk": flavor.disk,
            "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral, "swap": flavor.swap,
            "os-flavor-access:is_public": flavor.is_public, "description": flavor.description,
        }});
        let mut body = body;
        if let Some(id) = id {
            body["flavor"]["id"] = json!(id);
        }
        Ok(self
            .json::<Out>(Method::POST, "/flavors", Some(body))
            .await?
            .flavor)
    }

    /// Sets extra specs (adding or changing; others stay).
    pub async fn set_extra_specs(
        &self,
        id: &str,
        specs: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.call(
            Method::POST,
            &format!("/flavors/{}/os-extra_specs", segment(id)),
            Some(json!({"extra_specs": specs})),
        )
        .await
        .map(drop)
    }

    /// Removes one extra spec.
    pub async fn unset_extra_spec(&self, id: &str, key: &str) -> Result<(), CloudError> {
        self.call(
            Method::DELETE,
            &format!("/flavors/{}/os-extra_specs/{}", segment(id), segment(key)),
            None,
        )
        .await
        .map(drop)
    }

    /// Changes a flavor's description (the one field Nova lets change in place).
    pub async fn set_description(
        &self,
        id: &str,
        description: Option<&str>,
    ) -> Result<(), CloudError> {
        self.call(
            Method::PUT,
            &format!("/flavors/{}", segment(id)),
            Some(json!({"flavor": {"description": description}})),
        )
        .await
        .map(drop)
    }

    /// One server, in any project when the session is an admin's (Nova's policy lets an
    /// admin read every project's servers); `None` when Nova has no server with that id
    /// (404: the consumer is not a server, or it was deleted).
    pub async fn server(&self, id: &str) -> Result<Option<NovaServer>, CloudError> {
        #[derive(Deserialize)]
        struct Out {
            server: NovaServer,
        }
        match self
            .json::<Out>(Method::GET, &format!("/servers/{}", segment(id)), None)
            .await
        {
            Ok(out) => Ok(Some(out.server)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a flavor.
    pub async fn delete_flavor(&self, id: &str) -> Result<(), CloudError> {
        self.call(Method::DELETE, &format!("/flavors/{}", segment(id)), None)
            .await
            .map(drop)
    }
}
