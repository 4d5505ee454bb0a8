//! The Glance v2 client: list images (tag filter, `next` pagination), get, create, upload a
//! file as a stream while computing sha256 and Glance's multihash and reporting progress,
//! then verify Glance's hash; JSON-patch properties, add and remove single tags; delete;
//! download as a stream
//! into a temporary file that is verified before it is renamed into place. Memory stays
//! flat whatever the file size. I/O: HTTP through the session, local files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::error::{CloudError, Service};
use super::hashing::{Digests, HashAlgo, Hashers};
use super::microversion::Microversion;
use super::session::{Call, Session, read_json, segment};

/// The oldest image API fpga-sync works with: 2.7 brought `os_hash_algo`/`os_hash_value`.
pub const MIN_API: Microversion = Microversion::new(2, 7);

/// The JSON-patch media type of image updates.
pub const PATCH_CONTENT_TYPE: &str = "application/openstack-images-v2.1-json-patch";

const CHUNK: usize = 1 << 20;

/// An image as Glance holds it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Image {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// `queued`, `saving`, `active`, ...
    pub status: ImageStatus,
    /// Visibility.
    #[serde(default)]
    pub visibility: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Size in bytes, once uploaded.
    #[serde(default)]
    pub size: Option<u64>,
    /// The multihash algorithm.
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    /// The multihash.
    #[serde(default)]
    pub os_hash_value: Option<String>,
    /// Last change.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Every other field: the custom properties among them.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

pub use crate::observed::ImageStatus;

/// Fields of the image record that are not custom properties.
const CORE_FIELDS: [&str; 17] = [
    "checksum",
    "container_format",
    "created_at",
    "direct_url",
    "disk_format",
    "file",
    "locations",
    "min_disk",
    "min_ram",
    "os_hidden",
    "owner",
    "protected",
    "schema",
    "self",
    "stores",
    "virtual_size",
    "os_glance_failed_import",
];

impl Image {
    /// The custom properties (string values only, as Glance keeps them).
    pub fn properties(&self) -> BTreeMap<String, String> {
        self.extra
            .iter()
            .filter(|(k, _)| !CORE_FIELDS.contains(&k.as_str()) && !k.starts_with("os_glance"))
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect()
    }
}

/// One JSON-patch operation on an image.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    /// Adds or replaces `/path`.
    Add {
        /// `/property`, or `/tags` with the whole list.
        path: String,
        /// The value.
        value: Value,
    },
    /// Replaces `/path`.
    Replace {
        /// `/property`.
        path: String,
        /// The value.
        value: Value,
    },
    /// Removes `/path`.
    Remove {
        /// `/property`.
        path: String,
    },
}

/// What a new image is made of.
#[derive(Clone, Debug, Default)]
pub struct NewImage {
    /// Name.
    pub name: String,
    /// Visibility.
    pub visibility: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom properties.
    pub properties: BTreeMap<String, String>,
}

/// A Glance client.
pub struct Glance<'s> {
    session: &'s Session,
    page_size: u32,
}

impl<'s> Glance<'s> {
    /// A client on `session`.
    pub fn new(session: &'s Session) -> Self {
        Glance {
            session,
            page_size: 200,
        }
    }

    /// The same client asking for `n` images per listing page.
    pub fn with_page_size(self, n: u32) -> Self {
        Glance {
            page_size: n.max(1),
            ..self
        }
    }

    fn call<'a>(method: Method, path: &'a str) -> Call<'a> {
        Call {
            service: Service::Image,
            method,
            path,
            microversion: None,
        }
    }

    /// Checks once that the service serves image API [`MIN_API`] or newer. An endpoint
    /// that does not answer as Glance (another service's, a wrong port) is a
    /// configuration error naming the URL and, when it can tell, what answers there.
    pub async fn check_version(&self) -> Result<(), CloudError> {
        let call = Self::call(Method::GET, "/versions");
        let doc: Option<Value> = match self.session.send(&call, |r| r).await {
            Ok(response) => read_json(response, &call).await.ok(),
            Err(CloudError::Status {
                status: 300 | 400 | 404 | 405,
                ..
            }) => None,
            Err(e) => return Err(e),
        };
        let Some(doc) = doc.filter(looks_like_glance) else {
            return Err(self.not_glance().await);
        };
        let newest = doc["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                v["id"]
                    .as_str()?
                    .trim_start_matches('v')
                    .parse::<Microversion>()
                    .ok()
            })
            .max();
        match newest {
            Some(v) if v >= MIN_API => Ok(()),
            _ => Err(CloudError::Microversion {
                service: Service::Image,
                wanted: MIN_API,
                supported: newest.map(|max| super::microversion::Supported {
                    min: Microversion::new(2, 0),
                    max,
                }),
            }),
        }
    }

    /// The error for an image endpoint that does not answer as Glance.
    async fn not_glance(&self) -> CloudError {
        let endpoint = match self.session.endpoint(Service::Image).await {
            Ok(e) => e,
            Err(e) => return e,
        };
        let root_path = format!("{endpoint}/");
        let root = Self::call(Method::GET, &root_path);
        let answer = match self.session.send(&root, |r| r).await {
            Ok(response) => read_json::<Value>(response, &root)
                .await
                .ok()
                .and_then(|d| service_of_version_document(&d)),
            Err(_) => None,
        };
        CloudError::Config {
            message: format!(
                "the image endpoint {endpoint} does not answer as Glance{}",
                answer.map_or(String::new(), |s| format!(": {s} answers there"))
            ),
            help: format!(
                "point the cloud's `image` endpoint at Glance (its catalog entry for the interface and region used, or `image_endpoint_override` / OS_IMAGE_ENDPOINT_OVERRIDE; Glance listens on port 9292 by default), not {endpoint}"
            ),
        }
    }

    /// Every image carrying all `tags`, following `next` links.
    pub async fn images(&self, tags: &[&str]) -> Result<Vec<Image>, CloudError> {
        #[derive(Deserialize)]
        struct Page {
            images: Vec<Image>,
            #[serde(default)]
            next: Option<String>,
        }
        let query: String = tags
            .iter()
            .map(|t| format!("&tag={}", segment(t)))
            .collect();
        let mut next = Some(format!("/v2/images?limit={}{query}", self.page_size));
        let mut out = Vec::new();
        while let Some(path) = next.take() {
            let call = Self::call(Method::GET, &path);
            let page: Page = read_json(self.session.send(&call, |r| r).await?, &call).await?;
            out.extend(page.images);
            next = page.next;
        }
        Ok(out)
    }

    /// One image.
    pub async fn image(&self, id: &str) -> Result<Image, CloudError> {
        let path = format!("/v2/images/{}", segment(id));
        let call = Self::call(Method::GET, &path);
        read_json(self.session.send(&call, |r| r).await?, &call).await
    }

    /// Creates an image record (status `queued`), raw bitstream data in a bare container.
    pub async fn create(&self, image: &NewImage) -> Result<Image, CloudError> {
        let mut body = json!({
            "name": image.name, "visibility": image.visibility, "tags": image.tags,
            "disk_format": "raw", "container_format": "bare",
        });
        for (k, v) in &image.properties {
            body[k] = json!(v);
        }
        let call = Self::call(Method::POST, "/v2/images");
        read_json(self.session.send(&call, |r| r.json(&body)).await?, &call).await
    }

    /// Applies JSON-patch operations to an image's properties and tags.
    pub async fn patch(&self, id: &str, ops: &[PatchOp]) -> Result<Image, CloudError> {
        let path = format!("/v2/images/{}", segment(id));
        let call = Self::call(Method::PATCH, &path);
        let body = serde_json::to_vec(ops).expect("patch operations serialise");
        let response = self
            .session
            .send(&call, |r| {
                r.header("Content-Type", PATCH_CONTENT_TYPE)
                    .body(body.clone())
            })
            .await?;
        read_json(response, &call).await
    }

    /// Adds one tag (other tags stay, whoever set them).
    pub async fn add_tag(&self, id: &str, tag: &str) -> Result<(), CloudError> {
        let path = format!("/v2/images/{}/tags/{}", segment(id), segment(tag));
        self.session
            .send(&Self::call(Method::PUT, &path), |r| r)
            .await
            .map(drop)
    }

    /// Removes one tag.
    pub async fn remove_tag(&self, id: &str, tag: &str) -> Result<(), CloudError> {
        let path = format!("/v2/images/{}/tags/{}", segment(id), segment(tag));
        self.session
            .send(&Self::call(Method::DELETE, &path), |r| r)
            .await
            .map(drop)
    }

    /// Deletes an image.
    pub async fn delete(&self, id: &str) -> Result<(), CloudError> {
        let path = format!("/v2/images/{}", segment(id));
        self.session
            .send(&Self::call(Method::DELETE, &path), |r| r)
            .await
            .map(drop)
    }

    /// Streams `file` into the image's data, computing sha256 and `algo` on the way and
    /// calling `progress` with the bytes sent so far; then checks that Glance's size and
    /// `os_hash_value` equal what was sent. Returns the digests.
    pub async fn upload(
        &self,
        id: &str,
        file: &Path,
        algo: HashAlgo,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<Digests, CloudError> {
        let io = |e: std::io::Error| CloudError::Io {
            path: file.display().to_string(),
            reason: e.to_string(),
        };
        let path = format!("/v2/images/{}/file", segment(id));
        let call = Self::call(Method::PUT, &path);
        let mut renewed = false;
        let hashers = loop {
            let reader = tokio::fs::File::open(file).await.map_err(io)?;
            let hashers = Arc::new(Mutex::new(Hashers::new(algo)));
            let fed = hashers.clone();
            let progress = progress.clone();
            let stream = ReaderStream::with_capacity(reader, CHUNK).map(move |chunk| {
                if let Ok(bytes) = &chunk {
                    let mut h = fed.lock().expect("the hasher lock is never poisoned");
                    h.update(bytes);
                    progress(h.bytes());
                }
                chunk
            });
            let sent = self
                .session
                .send_once(
                    &call,
                    reqwest::Body::wrap_stream(stream),
                    "application/octet-stream",
                )
                .await;
            match sent {
                // The token was refused (expired or revoked since the last request):
                // Glance stored nothing, so the upload is sent again with a new one.
                Err(CloudError::Status { status: 401, .. })
                    if !renewed && self.session.renew().await? =>
                {
                    renewed = true;
                }
                Err(e) => return Err(e),
                Ok(_) => break hashers,
            }
        };
        let digests = Arc::try_unwrap(hashers)
            .map_err(|_| CloudError::Io {
                path: file.display().to_string(),
                reason: "the upload stream outlived the request".into(),
            })?
            .into_inner()
            .expect("the hasher lock is never poisoned")
            .finish();
        let image = self.image(id).await?;
        verify(&image, &digests, file).await?;
        Ok(digests)
    }

    /// Streams the image's data to `dest`: into a temporary file beside it, hashed on the
    /// way, checked against Glance's `os_hash_value` (and `expected_sha256`, when given),
    /// synced, and only then renamed to `dest`. Nothing is left behind on failure.
    pub async fn download(
        &self,
        id: &str,
        dest: &Path,
        expected_sha256: Option<&str>,
    ) -> Result<Digests, CloudError> {
        let image = self.image(id).await?;
        let algo = image
            .os_hash_algo
            .as_deref()
            .and_then(HashAlgo::from_name)
            .unwrap_or(HashAlgo::Sha512);
        let path = format!("/v2/images/{}/file", segment(id));
        let call = Self::call(Method::GET, &path);
        let response = self.session.send(&call, |r| r).await?;
        if response.status().as_u16() == 204 {
            return Err(CloudError::Status {
                service: Service::Image,
                request: call.name(),
                status: 204,
                message: "the image has no data".into(),
                request_id: None,
            });
        }
        let temp = temp_path(dest);
        let result = write_verified(response, &temp, algo, &image, expected_sha256, &call).await;
        match result {
            Ok(digests) => {
                tokio::fs::rename(&temp, dest)
                    .await
                    .map_err(|e| CloudError::Io {
                        path: dest.display().to_string(),
                        reason: e.to_string(),
                    })?;
                Ok(digests)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(e)
            }
        }
    }
}

async fn write_verified(
    response: reqwest::Response,
    temp: &Path,
    algo: HashAlgo,
    image: &Image,
    expected_sha256: Option<&str>,
    call: &Call<'_>,
) -> Result<Digests, CloudError> {
    let io = |e: std::io::Error| CloudError::Io {
        path: temp.display().to_string(),
        reason: e.to_string(),
    };
    let mut out = tokio::fs::File::create(temp).await.map_err(io)?;
    let mut hashers = Hashers::new(algo);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CloudError::Unreachable {
            service: Service::Image,
            request: call.name(),
            reason: e.to_string(),
        })?;
        hashers.update(&chunk);
        out.write_all(&chunk).await.map_err(io)?;
    }
    out.sync_all().await.map_err(io)?;
    let digests = hashers.finish();
    if let Some(expected) = &image.os_hash_value
        && image.os_hash_algo.as_deref() == Some(algo.name())
        && expected != &digests.multihash
    {
        return Err(CloudError::Integrity {
            what: format!("download of image {}", image.id),
            expected: format!("{} {expected}", algo.name()),
            actual: digests.multihash,
        });
    }
    if let Some(expected) = expected_sha256
        && expected != digests.sha256
    {
        return Err(CloudError::Integrity {
            what: format!("download of image {}", image.id),
            expected: format!("sha256 {expected}"),
            actual: digests.sha256,
        });
    }
    Ok(digests)
}

/// Checks Glance's record of an upload against what was sent. When Glance hashes with
/// another algorithm than the one computed on the way, the file is read once more.
async fn verify(image: &Image, sent: &Digests, file: &Path) -> Result<(), CloudError> {
    let what = || format!("upload of `{}` to image {}", file.display(), image.id);
    if image.size != Some(sent.size) {
        return Err(CloudError::Integrity {
            what: what(),
            expected: format!("{} bytes", sent.size),
            actual: format!("{:?} bytes", image.size),
        });
    }
    let (Some(algo), Some(value)) = (
        image.os_hash_algo.as_deref(),
        image.os_hash_value.as_deref(),
    ) else {
        return Ok(());
    };
    let ours = if algo == sent.algo.name() {
        sent.multihash.clone()
    } else {
        let Some(other) = HashAlgo::from_name(algo) else {
            return Ok(());
        };
        digest_file(file, other).await?.multihash
    };
    if ours != value {
        return Err(CloudError::Integrity {
            what: what(),
            expected: format!("{algo} {ours}"),
            actual: value.to_owned(),
        });
    }
    Ok(())
}

/// Digests of a local file, streamed.
pub async fn digest_file(file: &Path, algo: HashAlgo) -> Result<Digests, CloudError> {
    let io = |e: std::io::Error| CloudError::Io {
        path: file.display().to_string(),
        reason: e.to_string(),
    };
    let reader = tokio::fs::File::open(file).await.map_err(io)?;
    let mut stream = ReaderStream::with_capacity(reader, CHUNK);
    let mut hashers = Hashers::new(algo);
    while let Some(chunk) = stream.next().await {
        hashers.update(&chunk.map_err(io)?);
    }
    Ok(hashers.finish())
}

fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.part-{:08x}", rand::random::<u32>()))
}

/// Whether a `GET /versions` document is Glance's: a list of `v2.x` versions (Placement's
/// list has `max_version`).
fn looks_like_glance(doc: &Value) -> bool {
    doc["versions"].as_array().is_some_and(|versions| {
        versions.iter().any(|v| {
            v["id"].as_str().is_some_and(|id| id.starts_with("v2."))
                && v.get("max_version").is_none()
        })
    })
}

/// Which OpenStack service wrote a root version document, when it can be told.
fn service_of_version_document(doc: &Value) -> Option<&'static str> {
    let one = &doc["version"];
    let list = doc["versions"]
        .as_array()
        .map(|v| v.as_slice())
        .or_else(|| doc["versions"]["values"].as_array().map(|v| v.as_slice()))
        .unwrap_or_default();
    let ids: Vec<&str> = list
        .iter()
        .chain(std::iter::once(one))
        .filter_map(|v| v["id"].as_str())
        .collect();
    let media = doc.to_string();
    if media.contains("identity-v3") || ids.iter().any(|id| id.starts_with("v3.")) {
        return Some("Keystone");
    }
    if list.iter().any(|v| v.get("max_version").is_some()) && ids.contains(&"v1.0") {
        return Some("Placement");
    }
    if ids.contains(&"v2.1") {
        return Some("Nova");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{ImageStatus, looks_like_glance, service_of_version_document};
    use serde_json::json;

    #[test]
    fn version_documents_tell_the_services_apart() {
        let glance = json!({"versions": [{"id": "v2.15", "status": "CURRENT"}]});
        let placement =
            json!({"versions": [{"id": "v1.0", "max_version": "1.39", "min_version": "1.0"}]});
        let nova = json!({"version": {"id": "v2.1", "version": "2.104", "min_version": "2.1"}});
        let keystone = json!({"version": {"id": "v3.14", "media-types": [{"type": "application/vnd.openstack.identity-v3+json"}]}});
        assert!(looks_like_glance(&glance));
        assert!(!looks_like_glance(&placement) && !looks_like_glance(&nova));
        assert_eq!(service_of_version_document(&placement), Some("Placement"));
        assert_eq!(service_of_version_document(&nova), Some("Nova"));
        assert_eq!(service_of_version_document(&keystone), Some("Keystone"));
        assert_eq!(service_of_version_document(&json!({"hello": 1})), None);
    }

    #[test]
    fn image_statuses_read_and_write_glance_s_names() {
        let names = [
            "queued",
            "saving",
            "uploading",
            "importing",
            "active",
            "deactivated",
            "killed",
            "deleted",
            "pending_delete",
            "resting",
        ];
        for name in names {
            let status: ImageStatus = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(status.to_string(), name);
            assert_eq!(
                serde_json::to_value(&status).unwrap(),
                serde_json::json!(name)
            );
            assert_eq!(status, ImageStatus::from(name));
        }
        assert_eq!(
            ImageStatus::from("pending_delete"),
            ImageStatus::PendingDelete
        );
        assert_eq!(
            ImageStatus::from("resting"),
            ImageStatus::Other("resting".into())
        );
    }
}
