//! Errors of the cloud clients. Each says which service, which request and what the
//! service answered (its message, not a raw dump), and whether trying again may help.
//! Credentials never appear: requests are named by method and path, bodies are not echoed
//! beyond the service's own message. Pure: no I/O.

use std::fmt;

use super::microversion::{Microversion, Supported};

/// An OpenStack service fpga-sync talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// Keystone.
    Identity,
    /// Placement.
    Placement,
    /// Glance.
    Image,
    /// Nova.
    Compute,
}

impl Service {
    /// The service type in the catalog.
    pub fn catalog_type(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Placement => "placement",
            Service::Image => "image",
            Service::Compute => "compute",
        }
    }

    /// The name people know it by.
    pub fn name(self) -> &'static str {
        match self {
            Service::Identity => "Keystone",
            Service::Placement => "Placement",
            Service::Image => "Glance",
            Service::Compute => "Nova",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong talking to the cloud.
#[derive(Clone, Debug)]
pub enum CloudError {
    /// The cloud configuration is unusable (no cloud named, missing `auth_url`, ...).
    Config {
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: String,
    },
    /// The service could not be reached (connection refused, DNS, TLS, timeout), after
    /// the retries.
    Unreachable {
        /// Which service.
        service: Service,
        /// `GET /v2/images`, ...
        request: String,
        /// The transport's reason.
        reason: String,
    },
    /// The service answered with an error status.
    Status {
        /// Which service.
        service: Service,
        /// `PUT /traits/CUSTOM_X`, ...
        request: String,
        /// The HTTP status.
        status: u16,
        /// The service's own message.
        message: String,
        /// `x-openstack-request-id`, when given.
        request_id: Option<String>,
    },
    /// The service cannot serve the microversion fpga-sync needs.
    Microversion {
        /// Which service.
        service: Service,
        /// What fpga-sync needs.
        wanted: Microversion,
        /// What the service offers, when it says.
        supported: Option<Supported>,
    },
    /// A response could not be read.
    Decode {
        /// Which service.
        service: Service,
        /// The request.
        request: String,
        /// Why.
        reason: String,
    },
    /// Data did not match its digest (an upload or a download).
    Integrity {
        /// What was checked.
        what: String,
        /// The digest expected.
        expected: String,
        /// The digest found.
        actual: String,
    },
    /// A local file could not be read or written.
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl CloudError {
    /// Whether the same request may succeed later (outage, throttling, conflict).
    pub fn is_transient(&self) -> bool {
        match self {
            CloudError::Unreachable { .. } => true,
            CloudError::Status { status, .. } => matches!(status, 409 | 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// Whether the cloud's configuration is wrong (no such cloud, an unreadable
    /// clouds.yaml or CA file, a login Keystone refuses): a person must change it.
    pub fn is_configuration(&self) -> bool {
        matches!(self, CloudError::Config { .. })
    }

    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CloudError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How to fix it, when something can be said.
    pub fn help(&self) -> Option<String> {
        match self {
            CloudError::Config { help, .. } => Some(help.clone()),
            CloudError::Unreachable { service, .. } => Some(format!(
                "check that {service} is running and that its endpoint (catalog or `*_endpoint_override`) is right"
            )),
            CloudError::Status { status: 401, service: Service::Identity, .. } => {
                Some("check the user, password (or application credential) and domain in clouds.yaml / secure.yaml".into())
            }
            CloudError::Status { status: 403, .. } => Some("the user lacks the role this request needs (usually admin)".into()),
            CloudError::Microversion { service, wanted, .. } => Some(format!(
                "fpga-sync needs {service} API {wanted} or newer; upgrade the service"
            )),
            _ => None,
        }
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudError::Config { message, .. } => write!(f, "{message}"),
            CloudError::Unreachable {
                service,
                request,
                reason,
            } => {
                write!(f, "{service} is unreachable: {request}: {reason}")
            }
            CloudError::Status {
                service,
                request,
                status,
                message,
                request_id,
            } => {
                write!(f, "{service} refused {request}: {status}")?;
                if let Some(reason) = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                {
                    write!(f, " {reason}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                if let Some(id) = request_id {
                    write!(f, " (request {id})")?;
                }
                Ok(())
            }
            CloudError::Microversion {
                service,
                wanted,
                supported,
            } => match supported {
                Some(s) => write!(
                    f,
                    "{service} serves API {}–{}, but fpga-sync needs {wanted}",
                    s.min, s.max
                ),
                None => write!(
                    f,
                    "{service} has no microversions, but fpga-sync needs {wanted}"
                ),
            },
            CloudError::Decode {
                service,
                request,
                reason,
            } => {
                write!(
                    f,
                    "{service} answered {request} with something unreadable: {reason}"
                )
            }
            CloudError::Integrity {
                what,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "{what} does not match: expected {expected}, got {actual}"
                )
            }
            CloudError::Io { path, reason } => write!(f, "{path}: {reason}"),
        }
    }
}

impl std::error::Error for CloudError {}

impl From<CloudError> for crate::diagnostic::Diagnostic {
    fn from(e: CloudError) -> Self {
        let d = crate::diagnostic::Diagnostic::error("fpga_sync::cloud", e.to_string());
        match e.help() {
            Some(help) => d.help(help),
            None => d,
        }
    }
}

/// The service's own message from an error body: Placement's `errors[].detail`, Nova's
/// `{"badRequest": {"message": ...}}`, Keystone's `error.message`, or the text of an HTML
/// page; at most 300 characters.
pub fn service_message(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
            if let Some(errors) = v.get("errors").and_then(|e| e.as_array()) {
                let details: Vec<String> = errors
                    .iter()
                    .filter_map(|e| e.get("detail").and_then(text))
                    .collect();
                if !details.is_empty() {
                    return Some(details.join("; "));
                }
            }
            if let Some(m) = v.get("message").and_then(text) {
                return Some(m);
            }
            v.as_object()?
                .values()
                .find_map(|inner| inner.get("message").and_then(text))
        });
    // Glance's messages carry HTML line breaks even inside JSON.
    let text = strip_tags(&from_json.unwrap_or_else(|| body.to_owned()));
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

fn strip_tags(html: &str) -> String {
    let body = html.find("<body>").map_or(html, |i| &html[i + 6..]);
    let mut out = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::service_message;

    #[test]
    fn reads_each_service_s_error_shape() {
        assert_eq!(
            service_message(
                r#"{"errors":[{"status":409,"title":"Conflict","detail":"generation conflict","code":"placement.concurrent_update"}]}"#
            ),
            "generation conflict"
        );
        assert_eq!(
            service_message(r#"{"conflictingRequest":{"code":409,"message":"Flavor exists."}}"#),
            "Flavor exists."
        );
        assert_eq!(
            service_message(
                r#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#
            ),
            "The request you have made requires authentication."
        );
        assert_eq!(
            service_message(
                "<html><head><title>409 Conflict</title></head><body><h1>409 Conflict</h1>Image status transition from active to saving is not allowed<br /><br /></body></html>"
            ),
            "409 Conflict Image status transition from active to saving is not allowed"
        );
    }
}
