//! Authentication and faults against the real Keystone and services: password,
//! application credential and token auth; catalog lookup by interface and region; a
//! revoked (expired) token renewed on 401; a wrong password (clear error, password never
//! shown); a service that is down (named); microversions checked against the real version
//! documents; and, on a scripted server, the faults a real service cannot be made to give.

use std::time::{Duration, Instant};

use fpga_sync::cloud::config::{AuthConfig, Scope};
use fpga_sync::cloud::error::Service;
use fpga_sync::cloud::microversion::Microversion;
use fpga_sync::cloud::placement::{Placement, check_supported};
use fpga_sync::cloud::retry::RetryPolicy;
use fpga_sync::cloud::secret::Secret;
use fpga_sync::cloud::session::{Session, SessionOptions};
use serde_json::json;

use crate::support::cloud::{KEYSTONE, NOAUTH, local_cloud};
use crate::support::faulty::{Answer, serve};

/// Logs in by hand (as an operator's script would) and returns the token and the body.
async fn raw_login(password: &str) -> (String, serde_json::Value) {
    let cloud = local_cloud();
    let url = format!("{}/auth/tokens", cloud.var("FPGA_SYNC_CLOUD_KEYSTONE_URL"));
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": cloud.var("FPGA_SYNC_CLOUD_ADMIN_USER"), "domain": {"name": cloud.var("FPGA_SYNC_CLOUD_ADMIN_DOMAIN")}, "password": password}}},
        "scope": {"project": {"name": cloud.var("FPGA_SYNC_CLOUD_ADMIN_PROJECT"), "domain": {"name": cloud.var("FPGA_SYNC_CLOUD_ADMIN_DOMAIN")}}}}});
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let token = response.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_owned();
    (token, response.json().await.unwrap())
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_that_never_shows_the_password() {
    let mut config = local_cloud().config(KEYSTONE);
    let AuthConfig::Password { password, .. } = &mut config.auth else {
        panic!("password cloud")
    };
    *password = Secret::new("not-the-Pa55word-42");
    let err = Session::connect(config, SessionOptions::default())
        .await
        .err()
        .expect("refused");
    let text = format!("{err} {err:?} {}", err.help().unwrap_or_default());
    let url = local_cloud().var("FPGA_SYNC_CLOUD_KEYSTONE_URL");
    assert!(
        err.to_string().starts_with(&format!(
            "Keystone at {url} refused the user and password of cloud `local-keystone`: 401 Unauthorized"
        )),
        "{err}"
    );
    assert!(
        err.is_configuration(),
        "a refused login is the configuration's fault"
    );
    assert!(!text.contains("not-the-Pa55word-42"), "{text}");
    assert_eq!(
        err.help().unwrap(),
        format!(
            "check `username`, `password`, `user_domain_name` and the project of cloud `local-keystone` in clouds.yaml / secure.yaml (or the OS_* variables) against Keystone at {url}"
        )
    );
}

/// Runs the binary with the local cloud's clouds.yaml and `env`.
fn fpga_sync(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_fpga-sync"))
        .args(args)
        .current_dir(dir.path())
        .envs(local_cloud().os_env())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("OS_CLOUD")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Point 9: an expired (or revoked) token gets a help line naming Keystone's URL; point 7:
/// `-vv` traces every request (method, URL, status, request id, time) and no secret.
#[tokio::test]
async fn an_expired_token_is_named_and_the_request_trace_shows_no_secret() {
    let cloud = local_cloud();
    let url = cloud.var("FPGA_SYNC_CLOUD_KEYSTONE_URL").to_owned();
    let password = cloud.admin_password();
    let (token, _) = raw_login(&password).await;
    let token_env = [
        ("OS_AUTH_TYPE", "token"),
        ("OS_AUTH_URL", url.as_str()),
        ("OS_TOKEN", token.as_str()),
        (
            "OS_PROJECT_NAME",
            cloud.var("FPGA_SYNC_CLOUD_ADMIN_PROJECT"),
        ),
        (
            "OS_PROJECT_DOMAIN_NAME",
            cloud.var("FPGA_SYNC_CLOUD_ADMIN_DOMAIN"),
        ),
        ("OS_REGION_NAME", cloud.var("FPGA_SYNC_CLOUD_REGION")),
    ];
    // The trace of a keystone-mode run with a password, then with a token: every request
    // shown, no password or token.
    for env in [&[("OS_CLOUD", KEYSTONE)][..], &token_env[..]] {
        let out = fpga_sync(&["observe", "--format", "json", "-vv"], env);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{log}");
        assert!(log.contains("http request"), "{log}");
        assert!(
            log.contains("method=POST") && log.contains("/auth/tokens"),
            "{log}"
        );
        assert!(log.contains("status=201"), "{log}");
        assert!(log.contains("request_id=\"req-"), "{log}");
        assert!(log.contains("elapsed_ms="), "{log}");
        assert!(
            log.contains("method=GET") && log.contains("status=200"),
            "{log}"
        );
        for secret in [
            password.as_str(),
            token.as_str(),
            "gAAAAA",
            "X-Auth-Token",
            "x-subject-token",
        ] {
            assert!(
                !log.contains(secret),
                "the trace shows a secret ({secret}): {log}"
            );
        }
    }
    // Revoke the token: the next run says it has expired or been revoked, with the URL.
    let revoked = reqwest::Client::new()
        .delete(format!("{url}/auth/tokens"))
        .header("X-Auth-Token", &token)
        .header("X-Subject-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let out = fpga_sync(&["observe"], &token_env);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "Keystone at {url} refused the token (`auth.token` or OS_TOKEN): it has expired or been revoked"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "help: get a new token from Keystone at {url} (`openstack token issue`)"
        )),
        "{err}"
    );
    assert!(!err.contains(&token), "{err}");
}

/// Point 9: a Glance endpoint that points at another service is named, with what answers
/// there and how to fix it.
#[test]
fn a_glance_endpoint_that_is_another_service_is_named() {
    let cloud = local_cloud();
    let placement = cloud.var("FPGA_SYNC_CLOUD_NOAUTH_PLACEMENT_URL").to_owned();
    let out = fpga_sync(
        &["observe"],
        &[
            ("OS_AUTH_TYPE", "admin_token"),
            ("OS_TOKEN", cloud.var("FPGA_SYNC_CLOUD_NOAUTH_TOKEN")),
            ("OS_PLACEMENT_ENDPOINT_OVERRIDE", placement.as_str()),
            ("OS_IMAGE_ENDPOINT_OVERRIDE", placement.as_str()),
            (
                "OS_COMPUTE_ENDPOINT_OVERRIDE",
                cloud.var("FPGA_SYNC_CLOUD_NOAUTH_NOVA_URL"),
            ),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the image endpoint {placement} does not answer as Glance: Placement answers there"
        )),
        "{err}"
    );
    assert!(
        err.contains("help: point the cloud's `image` endpoint at Glance"),
        "{err}"
    );
}

#[tokio::test]
async fn a_revoked_token_is_renewed_once_and_the_request_succeeds() {
    let cloud = local_cloud();
    let session = cloud.session(KEYSTONE).await;
    let placement = Placement::new(&session);
    placement.traits("CUSTOM_").await.unwrap();
    assert_eq!(session.authentications(), 1);
    // Revoke the session's token, as an expiry or `openstack token revoke` would.
    let (admin, _) = raw_login(&cloud.admin_password()).await;
    let token = session.current_token().await.unwrap();
    let revoked = reqwest::Client::new()
        .delete(format!(
            "{}/auth/tokens",
            cloud.var("FPGA_SYNC_CLOUD_KEYSTONE_URL")
        ))
        .header("X-Auth-Token", admin)
        .header("X-Subject-Token", token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    // Glance has not seen this token yet, so its middleware asks Keystone and gets "revoked"
    // (Placement's middleware would answer from its token cache for a few minutes).
    fpga_sync::cloud::glance::Glance::new(&session)
        .images(&["FPGA"])
        .await
        .expect("renewed after the 401");
    assert_eq!(session.authentications(), 2);
    assert_ne!(session.current_token().await.unwrap(), token);
}

#[tokio::test]
async fn application_credentials_and_tokens_log_in_too() {
    let cloud = local_cloud();
    let (token, body) = raw_login(&cloud.admin_password()).await;
    let user_id = body["token"]["user"]["id"].as_str().unwrap().to_owned();
    let name = crate::support::cloud::unique("fpga-sync-test");
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/users/{user_id}/application_credentials",
            cloud.var("FPGA_SYNC_CLOUD_KEYSTONE_URL")
        ))
        .header("X-Auth-Token", &token)
        .json(&json!({"application_credential": {"name": name}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = cloud.config(KEYSTONE);
    let auth_url = cloud.var("FPGA_SYNC_CLOUD_KEYSTONE_URL").to_owned();
    let mut by_credential = base.clone();
    by_credential.auth = AuthConfig::ApplicationCredential {
        auth_url: auth_url.clone(),
        id: created["application_credential"]["id"]
            .as_str()
            .map(str::to_owned),
        name: None,
        user: None,
        secret: Secret::new(
            created["application_credential"]["secret"]
                .as_str()
                .unwrap(),
        ),
    };
    let session = Session::connect(by_credential, SessionOptions::default())
        .await
        .unwrap();
    Placement::new(&session).traits("CUSTOM_").await.unwrap();

    let mut by_token = base.clone();
    by_token.auth = AuthConfig::Token {
        auth_url,
        token: Secret::new(token),
        scope: Scope::ProjectName(
            cloud.var("FPGA_SYNC_CLOUD_ADMIN_PROJECT").into(),
            fpga_sync::cloud::config::Domain::Name(
                cloud.var("FPGA_SYNC_CLOUD_ADMIN_DOMAIN").into(),
            ),
        ),
    };
    let session = Session::connect(by_token, SessionOptions::default())
        .await
        .unwrap();
    Placement::new(&session).traits("CUSTOM_").await.unwrap();
}

#[tokio::test]
async fn the_catalog_is_searched_by_interface_and_region() {
    let cloud = local_cloud();
    let mut internal = cloud.config(KEYSTONE);
    internal.interface = "internal".into();
    let session = Session::connect(internal, SessionOptions::default())
        .await
        .unwrap();
    assert!(
        session
            .endpoint(Service::Placement)
            .await
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let mut elsewhere = cloud.config(KEYSTONE);
    elsewhere.region = Some("Atlantis".into());
    let session = Session::connect(elsewhere, SessionOptions::default())
        .await
        .unwrap();
    let err = session.endpoint(Service::Image).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the catalog of cloud `local-keystone` has no Glance (`image`) endpoint for interface `public` in region `Atlantis`"
    );
}

#[tokio::test]
async fn a_service_that_is_down_is_named() {
    let mut config = local_cloud().config(NOAUTH);
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    config
        .endpoint_overrides
        .insert(Service::Placement, format!("http://{closed}"));
    let options = SessionOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
        },
        ..SessionOptions::default()
    };
    let session = Session::connect(config, options).await.unwrap();
    let err = Placement::new(&session)
        .traits("CUSTOM_")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Placement is unreachable: GET /traits?name=startswith:CUSTOM_: "),
        "{err}"
    );
    assert!(err.is_transient());
    assert_eq!(
        session.requests(),
        3,
        "an idempotent request is tried max_attempts times"
    );
}

#[tokio::test]
async fn microversions_are_checked_against_the_real_version_documents() {
    let cloud = local_cloud();
    for mode in [KEYSTONE, NOAUTH] {
        let session = cloud.session(mode).await;
        Placement::new(&session).check_version().await.unwrap();
        fpga_sync::cloud::nova::Nova::new(&session)
            .check_version()
            .await
            .unwrap();
        fpga_sync::cloud::glance::Glance::new(&session)
            .check_version()
            .await
            .unwrap();
    }
    let doc: serde_json::Value = reqwest::get(format!(
        "{}/",
        cloud.var("FPGA_SYNC_CLOUD_NOAUTH_PLACEMENT_URL")
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let err = check_supported(Service::Placement, Microversion::new(1, 99), &doc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Placement serves API 1.0–1.39, but fpga-sync needs 1.99"
    );
    assert_eq!(
        err.help().as_deref(),
        Some("fpga-sync needs Placement API 1.99 or newer; upgrade the service")
    );
}

fn fast_retries() -> SessionOptions {
    SessionOptions {
        retry: RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
        },
        ..SessionOptions::default()
    }
}

async fn faulty_session(url: &str) -> Session {
    let mut config = local_cloud().config(NOAUTH);
    config
        .endpoint_overrides
        .insert(Service::Placement, url.to_owned());
    Session::connect(config, fast_retries()).await.unwrap()
}

#[tokio::test]
async fn gateway_errors_and_dropped_connections_are_retried_for_idempotent_requests() {
    let ok = Answer::Status(
        200,
        vec![],
        r#"{"traits": ["CUSTOM_B", "CUSTOM_A"]}"#.into(),
    );
    let server = serve(vec![
        Answer::Status(503, vec![], "{}".into()),
        Answer::Drop,
        Answer::Status(502, vec![], "{}".into()),
        ok,
    ])
    .await;
    let session = faulty_session(&server.url).await;
    let traits = Placement::new(&session).traits("CUSTOM_").await.unwrap();
    assert_eq!(traits, ["CUSTOM_A", "CUSTOM_B"]);
    assert_eq!(server.seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn an_answer_cut_in_the_middle_of_its_body_is_retried_for_idempotent_requests() {
    // Found by the chaos proxy: a reset after the headers used to fail the whole run.
    let body = r#"{"traits": ["CUSTOM_B", "CUSTOM_A"]}"#;
    let server = serve(vec![
        Answer::Truncated(body.into()),
        Answer::Truncated(body.into()),
        Answer::Status(200, vec![], body.into()),
    ])
    .await;
    let session = faulty_session(&server.url).await;
    let traits = Placement::new(&session).traits("CUSTOM_").await.unwrap();
    assert_eq!(traits, ["CUSTOM_A", "CUSTOM_B"]);
    assert_eq!(server.seen.lock().unwrap().len(), 3);

    // Cut every time: the error names the service and the request.
    let server = serve(vec![Answer::Truncated(body.into()); 4]).await;
    let session = faulty_session(&server.url).await;
    let err = Placement::new(&session)
        .traits("CUSTOM_")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Placement is unreachable: GET /traits"),
        "{err}"
    );
    assert_eq!(server.seen.lock().unwrap().len(), 4, "four attempts");
}

#[tokio::test]
async fn asking_keystone_for_a_token_is_retried_on_a_gateway_error() {
    // Found by the chaos proxy: one 502 on POST /v3/auth/tokens failed a whole apply.
    let token = r#"{"token": {"expires_at": "2099-01-01T00:00:00.000000Z", "catalog": []}}"#;
    let server = serve(vec![
        Answer::Status(502, vec![], "{}".into()),
        Answer::Truncated(token.into()),
        Answer::Status(201, vec![("X-Subject-Token", "t0k3n".into())], token.into()),
    ])
    .await;
    let mut config = local_cloud().config(KEYSTONE);
    let fpga_sync::cloud::config::AuthConfig::Password { auth_url, .. } = &mut config.auth else {
        panic!("{:?}", config.auth)
    };
    *auth_url = format!("{}/v3", server.url);
    let session = Session::connect(config, fast_retries()).await.unwrap();
    assert_eq!(session.authentications(), 1);
    assert_eq!(
        *server.seen.lock().unwrap(),
        ["POST /v3/auth/tokens"; 3],
        "retried twice"
    );
}

#[tokio::test]
async fn a_post_is_not_retried_on_a_gateway_error() {
    let server = serve(vec![Answer::Status(
        503,
        vec![],
        r#"{"errors": [{"detail": "try later"}]}"#.into(),
    )])
    .await;
    let session = faulty_session(&server.url).await;
    let err = Placement::new(&session)
        .create_provider("p", None, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Placement refused POST /resource_providers: 503 Service Unavailable: try later"
    );
    assert_eq!(
        server.seen.lock().unwrap().len(),
        1,
        "a POST may have been applied: never repeated"
    );
}

#[tokio::test]
async fn throttling_waits_for_retry_after() {
    let ok = Answer::Status(200, vec![], r#"{"traits": []}"#.into());
    let server = serve(vec![
        Answer::Status(429, vec![("Retry-After", "1".into())], "{}".into()),
        ok,
    ])
    .await;
    let mut config = local_cloud().config(NOAUTH);
    config
        .endpoint_overrides
        .insert(Service::Placement, server.url.clone());
    let options = SessionOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_secs(5),
        },
        ..SessionOptions::default()
    };
    let session = Session::connect(config, options).await.unwrap();
    let start = Instant::now();
    Placement::new(&session).traits("CUSTOM_").await.unwrap();
    // Not a timing assertion on speed: the wait must at least honour the server's second.
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(server.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn tls_verification_off_is_warned_about() {
    let mut config = local_cloud().config(NOAUTH);
    config.verify = false;
    let session = Session::connect(config, SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(
        session.warnings(),
        [
            "TLS certificates of cloud `local-noauth` are not verified (`verify: false`): anyone on the path can read the token"
        ]
    );
}

/// An `openssl s_server` with a fresh self-signed certificate for 127.0.0.1.
struct TlsServer {
    child: std::process::Child,
    url: String,
    cert: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server() -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command (Debian package openssl) makes the test certificate");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
        ])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    TlsServer {
        child,
        url: format!("https://127.0.0.1:{port}"),
        cert,
        _dir: dir,
    }
}

#[tokio::test]
async fn a_cacert_is_trusted_and_an_unknown_certificate_is_not() {
    let server = tls_server();
    let session_with = |cacert: Option<std::path::PathBuf>, verify: bool| {
        let mut config = local_cloud().config(NOAUTH);
        config
            .endpoint_overrides
            .insert(Service::Placement, server.url.clone());
        config.cacert = cacert;
        config.verify = verify;
        Session::connect(config, fast_retries())
    };
    // The server speaks TLS but not Placement: getting as far as its HTML proves the
    // handshake was accepted.
    let trusted = session_with(Some(server.cert.clone()), true).await.unwrap();
    let err = Placement::new(&trusted)
        .traits("CUSTOM_")
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "Placement answered GET /traits?name=startswith:CUSTOM_ with something unreadable"
        ),
        "{err}"
    );
    let untrusted = session_with(None, true).await.unwrap();
    let err = Placement::new(&untrusted)
        .traits("CUSTOM_")
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("Placement is unreachable")
            && err.to_string().contains("certificate"),
        "{err}"
    );
    let unverified = session_with(None, false).await.unwrap();
    let err = Placement::new(&unverified)
        .traits("CUSTOM_")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("with something unreadable"),
        "{err}"
    );
}
