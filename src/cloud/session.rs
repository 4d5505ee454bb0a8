//! One authenticated conversation with a cloud: the HTTP client (timeouts, TLS), the
//! Keystone token (fetched, renewed before it expires, re-fetched once on a 401; a refused
//! login is a configuration error naming Keystone's URL), the endpoints (overrides or
//! catalog), a concurrency limit shared by every request, and the one place requests are
//! sent, with bounded retries for what may be retried. Every request is traced at debug
//! level (target `fpga_sync::http`: method, URL without credentials, status, request id,
//! elapsed time; never headers or bodies, so never a token or password). I/O: HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tokio::sync::{Mutex, Semaphore};

use super::auth::{self, Token};
use super::config::{AuthConfig, CloudConfig};
use super::error::{CloudError, Service, service_message};
use super::retry::{RetryPolicy, is_idempotent, is_retryable_status, parse_retry_after};
use super::secret::{Secret, redact_url};

/// How a session behaves.
#[derive(Clone, Copy, Debug)]
pub struct SessionOptions {
    /// Most requests in flight at once, across all services.
    pub concurrency: usize,
    /// Timeout of one ordinary request (uploads and downloads have none; their reads do).
    pub timeout: Duration,
    /// Timeout to connect.
    pub connect_timeout: Duration,
    /// Retry bounds.
    pub retry: RetryPolicy,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            concurrency: 8,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

/// An authenticated session with one cloud.
pub struct Session {
    http: reqwest::Client,
    config: CloudConfig,
    options: SessionOptions,
    token: Mutex<Option<Token>>,
    limit: Arc<Semaphore>,
    authentications: AtomicU32,
    requests: AtomicU32,
    warnings: Vec<String>,
}

/// What a request needs besides its URL: everything but the body is set here.
pub struct Call<'a> {
    /// The service.
    pub service: Service,
    /// The method.
    pub method: Method,
    /// Path below the service's endpoint (`/traits/CUSTOM_X`), or a full URL.
    pub path: &'a str,
    /// `OpenStack-API-Version` value, e.g. `placement 1.26`.
    pub microversion: Option<&'a str>,
}

impl Call<'_> {
    /// `PUT /traits/CUSTOM_X`, for messages.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

impl Session {
    /// Builds the HTTP client and, for Keystone clouds, authenticates.
    pub async fn connect(
        config: CloudConfig,
        options: SessionOptions,
    ) -> Result<Session, CloudError> {
        let mut warnings = Vec::new();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(Duration::from_secs(300))
            .user_agent(concat!("fpga-sync/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.cacert {
            let pem = std::fs::read(path).map_err(|e| CloudError::Io {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| CloudError::Config {
                message: format!("`{}` is not a PEM CA certificate: {e}", path.display()),
                help:
                    "point `cacert` at the PEM file of the CA that signed the cloud's certificates"
                        .into(),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        if !config.verify {
            warnings.push(format!(
                "TLS certificates of cloud `{}` are not verified (`verify: false`): anyone on the path can read the token",
                config.name
            ));
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| CloudError::Config {
            message: format!("cannot set up HTTP: {e}"),
            help: "check `cacert` and the TLS settings".into(),
        })?;
        let session = Session {
            http,
            limit: Arc::new(Semaphore::new(options.concurrency.max(1))),
            config,
            options,
            token: Mutex::new(None),
            authentications: AtomicU32::new(0),
            requests: AtomicU32::new(0),
            warnings,
        };
        session.fresh_token(false).await?;
        Ok(session)
    }

    /// A second session on the same cloud that shares the HTTP client and starts with this
    /// session's token, but has its own limit of `concurrency` requests in flight: for a
    /// background task that must not queue behind this session's requests (the lease's
    /// renewals behind long uploads, which hold their slot for the whole stream).
    pub async fn sibling(&self, concurrency: usize) -> Session {
        Session {
            http: self.http.clone(),
            config: self.config.clone(),
            options: self.options,
            token: Mutex::new(self.token.lock().await.clone()),
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
            authentications: AtomicU32::new(0),
            requests: AtomicU32::new(0),
            warnings: Vec::new(),
        }
    }

    /// Warnings to show the user (e.g. TLS verification off).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The cloud's name.
    pub fn cloud_name(&self) -> &str {
        &self.config.name
    }

    /// How many times the session authenticated with Keystone.
    pub fn authentications(&self) -> u32 {
        self.authentications.load(Ordering::Relaxed)
    }

    /// How many HTTP requests the session sent, retries and authentication included.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The current token, for tests that revoke it.
    pub async fn current_token(&self) -> Option<Secret> {
        match &self.config.auth {
            AuthConfig::AdminToken { token } => Some(token.clone()),
            AuthConfig::None => None,
            _ => self.token.lock().await.as_ref().map(|t| t.value.clone()),
        }
    }

    /// The project and user ids of the session's Keystone token (`None` without one: an
    /// admin token or no authentication), for records that name their owner, such as
    /// Placement allocations.
    pub async fn token_owner(&self) -> Result<(Option<String>, Option<String>), CloudError> {
        self.fresh_token(false).await?;
        let token = self.token.lock().await;
        Ok(token
            .as_ref()
            .map_or((None, None), |t| (t.project_id.clone(), t.user_id.clone())))
    }

    /// A valid token: the cached one, unless `renew` or it expires within five minutes.
    async fn fresh_token(&self, renew: bool) -> Result<Option<Secret>, CloudError> {
        let auth_url = match &self.config.auth {
            AuthConfig::AdminToken { token } => return Ok(Some(token.clone())),
            AuthConfig::None => return Ok(None),
            AuthConfig::Password { auth_url, .. }
            | AuthConfig::ApplicationCredential { auth_url, .. }
            | AuthConfig::Token { auth_url, .. } => auth_url.clone(),
        };
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| !renew && !expires_soon(t)) {
            return Ok(Some(token.value.clone()));
        }
        let url = format!("{}/auth/tokens", auth::identity_v3(&auth_url));
        let body = auth::request_body(&self.config.auth).expect("Keystone methods have a body");
        let call = Call {
            service: Service::Identity,
            method: Method::POST,
            path: "/v3/auth/tokens",
            microversion: None,
        };
        self.authentications.fetch_add(1, Ordering::Relaxed);
        let response = self
            .send_with_retries(&call, &url, None, |r| r.json(&body))
            .await
            .map_err(|e| self.refused_login(e, &auth_url))?;
        let value = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(Secret::new)
            .ok_or_else(|| CloudError::Decode {
                service: Service::Identity,
                request: call.name(),
                reason: "no X-Subject-Token header".into(),
            })?;
        let body: serde_json::Value = read_json(response, &call).await?;
        let token = auth::read_token(value.clone(), &body);
        *cached = Some(token);
        Ok(Some(value))
    }

    /// Keystone's refusal of a login (a 401; for a token also the 404 Keystone gives one
    /// it cannot validate, revoked or expired), as the configuration error it is: which
    /// credentials, at which URL, and what to do.
    fn refused_login(&self, e: CloudError, auth_url: &str) -> CloudError {
        let token = matches!(self.config.auth, AuthConfig::Token { .. });
        let CloudError::Status {
            status,
            message,
            request_id,
            ..
        } = &e
        else {
            return e;
        };
        if !(*status == 401 || token && *status == 404) {
            return e;
        }
        let status = match StatusCode::from_u16(*status)
            .ok()
            .and_then(|s| s.canonical_reason())
        {
            Some(reason) => format!("{status} {reason}"),
            None => status.to_string(),
        };
        let said = match (message.is_empty(), request_id) {
            (false, Some(id)) => format!(": {message} (request {id})"),
            (false, None) => format!(": {message}"),
            (true, Some(id)) => format!(" (request {id})"),
            (true, None) => String::new(),
        };
        let cloud = &self.config.name;
        let (what, help) = match &self.config.auth {
            AuthConfig::Token { .. } => (
                "the token (`auth.token` or OS_TOKEN): it has expired or been revoked",
                format!(
                    "get a new token from Keystone at {auth_url} (`openstack token issue`) and set it, or use a password or application credential, which fpga-sync renews by itself"
                ),
            ),
            AuthConfig::ApplicationCredential { .. } => (
                "the application credential",
                format!(
                    "check `application_credential_id` (or name and user) and `application_credential_secret` of cloud `{cloud}`; the credential may have expired or been deleted (`openstack application credential list` against {auth_url})"
                ),
            ),
            _ => (
                "the user and password",
                format!(
                    "check `username`, `password`, `user_domain_name` and the project of cloud `{cloud}` in clouds.yaml / secure.yaml (or the OS_* variables) against Keystone at {auth_url}"
                ),
            ),
        };
        CloudError::Config {
            message: format!(
                "Keystone at {auth_url} refused {what} of cloud `{cloud}`: {status}{said}"
            ),
            help,
        }
    }

    /// The endpoint of `service`: its override, or the catalog's for the configured
    /// interface and region.
    pub async fn endpoint(&self, service: Service) -> Result<String, CloudError> {
        if let Some(url) = self.config.endpoint_overrides.get(&service) {
            return Ok(url.trim_end_matches('/').to_owned());
        }
        self.fresh_token(false).await?;
        let token = self.token.lock().await;
        let catalog = token
            .as_ref()
            .map(|t| t.catalog.as_slice())
            .unwrap_or_default();
        auth::find_endpoint(
            catalog,
            service.catalog_type(),
            &self.config.interface,
            self.config.region.as_deref(),
        )
        .map(|u| u.trim_end_matches('/').to_owned())
        .ok_or_else(|| CloudError::Config {
            message: format!(
                "the catalog of cloud `{}` has no {} (`{}`) endpoint for interface `{}`{}",
                self.config.name,
                service,
                service.catalog_type(),
                self.config.interface,
                self.config
                    .region
                    .as_deref()
                    .map(|r| format!(" in region `{r}`"))
                    .unwrap_or_default()
            ),
            help: format!(
                "set `{}_endpoint_override`, or fix `region_name`/`interface`",
                service.catalog_type()
            ),
        })
    }

    /// Sends a request built by `body` (which adds the body, if any) and returns the
    /// successful response. Idempotent requests (and asking Keystone for a token) are
    /// retried on transport errors, 502/503/504 and an answer cut short; any request on
    /// 429. A 401 with Keystone auth renews the token once.
    pub async fn send(
        &self,
        call: &Call<'_>,
        body: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, CloudError> {
        let url = self.url(call).await?;
        let token = self.fresh_token(false).await?;
        match self
            .send_with_retries(call, &url, token.as_ref(), &body)
            .await
        {
            Err(CloudError::Status { status: 401, .. }) if self.renewable() => {
                let token = self.fresh_token(true).await?;
                self.send_with_retries(call, &url, token.as_ref(), &body)
                    .await
            }
            other => other,
        }
    }

    /// Sends a request whose body can be sent only once (a file upload): no retries; the
    /// token is renewed first when it is close to expiry.
    pub async fn send_once(
        &self,
        call: &Call<'_>,
        body: reqwest::Body,
        content_type: &str,
    ) -> Result<Response, CloudError> {
        let url = self.url(call).await?;
        let token = self.fresh_token(false).await?;
        let _permit = self
            .limit
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.requests.fetch_add(1, Ordering::Relaxed);
        let request = self
            .builder(call, &url, token.as_ref())
            .header("Content-Type", content_type)
            .body(body);
        let started = Instant::now();
        let outcome = request.send().await;
        trace(call, &url, &outcome, started, 1);
        let response = outcome.map_err(|e| unreachable(call, &e))?;
        check(response, call).await
    }

    /// Gets a new token (Keystone auth); `false` when the cloud's auth has none to renew.
    pub async fn renew(&self) -> Result<bool, CloudError> {
        if !self.renewable() {
            return Ok(false);
        }
        self.fresh_token(true).await?;
        Ok(true)
    }

    fn renewable(&self) -> bool {
        !matches!(
            self.config.auth,
            AuthConfig::AdminToken { .. } | AuthConfig::None
        )
    }

    async fn url(&self, call: &Call<'_>) -> Result<String, CloudError> {
        if call.path.starts_with("http://") || call.path.starts_with("https://") {
            return Ok(call.path.to_owned());
        }
        Ok(format!(
            "{}{}",
            self.endpoint(call.service).await?,
            call.path
        ))
    }

    fn builder(&self, call: &Call<'_>, url: &str, token: Option<&Secret>) -> RequestBuilder {
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .header("Accept", "application/json");
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token.expose());
        }
        if let Some(version) = call.microversion {
            request = request.header("OpenStack-API-Version", version);
        }
        request
    }

    async fn send_with_retries(
        &self,
        call: &Call<'_>,
        url: &str,
        token: Option<&Secret>,
        body: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, CloudError> {
        let retry = self.options.retry;
        // Asking Keystone for a token changes nothing that a second ask would double.
        let idempotent = is_idempotent(&call.method)
            || (call.service == Service::Identity && call.path.ends_with("/auth/tokens"));
        let mut attempt = 1;
        loop {
            let outcome = {
                let _permit = self
                    .limit
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                self.requests.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let outcome = body(self.builder(call, url, token))
                    .timeout(self.options.timeout)
                    .send()
                    .await;
                trace(call, url, &outcome, started, attempt);
                outcome
            };
            let wait = match &outcome {
                Err(_) if idempotent => retry.wait(attempt, None, rand::random()),
                Ok(r)
                    if r.status() == StatusCode::TOO_MANY_REQUESTS
                        || (is_retryable_status(r.status()) && idempotent) =>
                {
                    let after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    retry.wait(attempt, after, rand::random())
                }
                _ => None,
            };
            match (outcome, wait) {
                (_, Some(wait)) => {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                (Ok(response), None) => {
                    let response = check(response, call).await?;
                    if !idempotent || !is_json(&response) {
                        return Ok(response);
                    }
                    // An API answer (JSON, small) is read here, so that a connection
                    // cut in the middle of it is retried like one cut before it; data
                    // (image files) streams to the caller.
                    match buffered(response).await {
                        Ok(response) => return Ok(response),
                        Err(e) => match retry.wait(attempt, None, rand::random()) {
                            Some(wait) => {
                                tokio::time::sleep(wait).await;
                                attempt += 1;
                            }
                            None => return Err(unreachable(call, &e)),
                        },
                    }
                }
                (Err(e), None) => return Err(unreachable(call, &e)),
            }
        }
    }
}

/// The request trace: one debug event per HTTP request sent.
fn trace(
    call: &Call<'_>,
    url: &str,
    outcome: &Result<Response, reqwest::Error>,
    started: Instant,
    attempt: u32,
) {
    if !tracing::enabled!(target: "fpga_sync::http", tracing::Level::DEBUG) {
        return;
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let raw = url;
    let url = redact_url(raw);
    match outcome {
        Ok(r) => {
            let request_id = r
                .headers()
                .get("x-openstack-request-id")
                .or_else(|| r.headers().get("x-compute-request-id"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::debug!(
                target: "fpga_sync::http",
                service = call.service.name(),
                method = %call.method,
                url = %url,
                status = r.status().as_u16(),
                request_id,
                elapsed_ms,
                attempt,
                "http request"
            );
        }
        Err(e) => tracing::debug!(
            target: "fpga_sync::http",
            service = call.service.name(),
            method = %call.method,
            url = %url,
            error = %e.to_string().replace(raw, &url),
            elapsed_ms,
            attempt,
            "http request failed"
        ),
    }
}

/// Whether a response is an API answer (JSON) rather than data.
fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
}

/// The response with its body read into memory.
async fn buffered(response: Response) -> Result<Response, reqwest::Error> {
    let mut builder = http::Response::builder()
        .status(response.status())
        .version(response.version());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let bytes = response.bytes().await?;
    Ok(Response::from(
        builder
            .body(bytes)
            .expect("the parts of a response just read"),
    ))
}

fn expires_soon(token: &Token) -> bool {
    let Some(expires) = token.expires_at.as_deref().and_then(httpdate_from_rfc3339) else {
        return false;
    };
    expires
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        < Duration::from_secs(300)
}

/// Parses Keystone's `2026-11-22T04:05:06.000000Z`.
fn httpdate_from_rfc3339(text: &str) -> Option<SystemTime> {
    let (date, time) = text.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + min * 60 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

fn unreachable(call: &Call<'_>, e: &reqwest::Error) -> CloudError {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    CloudError::Unreachable {
        service: call.service,
        request: call.name(),
        reason,
    }
}

/// Passes a successful response, turns an error status into [`CloudError::Status`].
async fn check(response: Response, call: &Call<'_>) -> Result<Response, CloudError> {
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        return Ok(response);
    }
    let request_id = response
        .headers()
        .get("x-openstack-request-id")
        .or_else(|| response.headers().get("x-compute-request-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    if status == StatusCode::NOT_ACCEPTABLE {
        return Err(CloudError::Status {
            service: call.service,
            request: call.name(),
            status: 406,
            message: format!(
                "microversion {} refused: {}",
                call.microversion.unwrap_or("-"),
                service_message(&body)
            ),
            request_id,
        });
    }
    Err(CloudError::Status {
        service: call.service,
        request: call.name(),
        status: status.as_u16(),
        message: service_message(&body),
        request_id,
    })
}

/// Percent-escapes one URL path or query segment: names and uuids pass unchanged.
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Reads a JSON body.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    response: Response,
    call: &Call<'_>,
) -> Result<T, CloudError> {
    let bytes = response.bytes().await.map_err(|e| unreachable(call, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| CloudError::Decode {
        service: call.service,
        request: call.name(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_expiry_times_parse() {
        let t = httpdate_from_rfc3339("2001-09-09T01:46:40.000000Z").unwrap();
        assert_eq!(
            t,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000)
        );
        assert!(httpdate_from_rfc3339("soon").is_none());
    }
}
