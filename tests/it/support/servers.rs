//! The end user's side of the compute profile, which fpga-sync never does: a tiny boot
//! image in Glance, servers booted with a flavor through the Nova API (`"networks":
//! "none"`, compute API 2.37) and waited for, deleted and waited for. Plain REST with the
//! session's token and endpoints.

use std::time::{Duration, Instant};

use fpga_sync::cloud::Service;
use fpga_sync::cloud::session::Session;
use serde_json::{Value, json};

/// A REST call to `service` with the session's token; returns status and JSON body (null
/// when empty).
pub async fn call(
    session: &Session,
    service: Service,
    method: reqwest::Method,
    path: &str,
    version: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let endpoint = session.endpoint(service).await.unwrap();
    let token = session.current_token().await.unwrap();
    let mut request = reqwest::Client::new()
        .request(method, format!("{endpoint}{path}"))
        .header("X-Auth-Token", token.expose());
    if let Some(v) = version {
        request = request.header("OpenStack-API-Version", v);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A small raw image to boot from (the fake virt driver never reads it); its id.
pub async fn boot_image(session: &Session, name: &str) -> String {
    let (status, image) = call(
        session,
        Service::Image,
        reqwest::Method::POST,
        "/v2/images",
        None,
        Some(json!({"name": name, "disk_format": "raw", "container_format": "bare"})),
    )
    .await;
    assert_eq!(status, 201, "{image}");
    let id = image["id"].as_str().unwrap().to_owned();
    let endpoint = session.endpoint(Service::Image).await.unwrap();
    let token = session.current_token().await.unwrap();
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/v2/images/{id}/file"))
        .header("X-Auth-Token", token.expose())
        .header("Content-Type", "application/octet-stream")
        .body(format!("boot image {name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    id
}

/// Deletes an image.
pub async fn delete_image(session: &Session, id: &str) {
    let path = format!("/v2/images/{id}");
    call(
        session,
        Service::Image,
        reqwest::Method::DELETE,
        &path,
        None,
        None,
    )
    .await;
}

const COMPUTE: Option<&str> = Some("compute 2.37");

/// Boots a server with no network; its id.
pub async fn boot(session: &Session, name: &str, flavor: &str, image: &str) -> String {
    let (status, body) = call(
        session,
        Service::Compute,
        reqwest::Method::POST,
        "/servers",
        COMPUTE,
        Some(
            json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor,
            "networks": "none"}}),
        ),
    )
    .await;
    assert_eq!(status, 202, "POST /servers: {body}");
    body["server"]["id"].as_str().unwrap().to_owned()
}

/// A server, once it is ACTIVE or ERROR (two minutes at most), and how long that took.
pub async fn settled(session: &Session, id: &str) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let (status, body) = call(
            session,
            Service::Compute,
            reqwest::Method::GET,
            &format!("/servers/{id}"),
            COMPUTE,
            None,
        )
        .await;
        assert_eq!(status, 200, "GET /servers/{id}: {body}");
        let state = body["server"]["status"].as_str().unwrap_or_default();
        if state == "ACTIVE" || state == "ERROR" {
            return (body["server"].clone(), start.elapsed());
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "server {id} is still {state} after two minutes: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Deletes a server and waits until Nova no longer knows it and Placement holds nothing
/// for it (two minutes at most).
pub async fn delete(session: &Session, id: &str) {
    let path = format!("/servers/{id}");
    let (status, body) = call(
        session,
        Service::Compute,
        reqwest::Method::DELETE,
        &path,
        COMPUTE,
        None,
    )
    .await;
    assert!(
        status == 204 || status == 404,
        "DELETE {path}: {status} {body}"
    );
    let start = Instant::now();
    loop {
        let (gone, _) = call(
            session,
            Service::Compute,
            reqwest::Method::GET,
            &path,
            COMPUTE,
            None,
        )
        .await;
        let (_, held) = call(
            session,
            Service::Placement,
            reqwest::Method::GET,
            &format!("/allocations/{id}"),
            Some("placement 1.28"),
            None,
        )
        .await;
        let empty = held["allocations"].as_object().is_none_or(|a| a.is_empty());
        if gone == 404 && empty {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "server {id} is not gone after two minutes"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Deletes every server whose name starts with `prefix`, in any project (what a run that
/// died left behind).
pub async fn delete_named(session: &Session, prefix: &str) {
    let (status, body) = call(
        session,
        Service::Compute,
        reqwest::Method::GET,
        "/servers?all_tenants=1",
        COMPUTE,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for s in body["servers"].as_array().into_iter().flatten() {
        if s["name"].as_str().is_some_and(|n| n.starts_with(prefix)) {
            delete(session, s["id"].as_str().unwrap()).await;
        }
    }
}
