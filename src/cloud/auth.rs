//! Keystone v3 authentication: the request body for each method (password, application
//! credential, token), and reading the token, its expiry and the service catalog from the
//! answer. Pure: builds and reads JSON; the session sends it.

use serde_json::{Value, json};

use super::config::{AuthConfig, Domain, Scope, User};
use super::secret::Secret;

/// A token and what came with it.
#[derive(Clone, Debug)]
pub struct Token {
    /// The token (`X-Subject-Token`).
    pub value: Secret,
    /// When it expires, as Keystone says (RFC 3339), if it says.
    pub expires_at: Option<String>,
    /// The service catalog.
    pub catalog: Vec<CatalogEntry>,
    /// The id of the project it is scoped to, if any.
    pub project_id: Option<String>,
    /// The id of the user it belongs to.
    pub user_id: Option<String>,
}

/// One endpoint of the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Service type (`placement`, `image`, ...).
    pub service_type: String,
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// The region id, if any.
    pub region: Option<String>,
    /// The URL.
    pub url: String,
}

/// Keystone's `/v3` URL for `auth_url`, which may or may not end in `/v3`.
pub fn identity_v3(auth_url: &str) -> String {
    let base = auth_url.trim_end_matches('/');
    if base.ends_with("/v3") {
        base.to_owned()
    } else {
        format!("{base}/v3")
    }
}

fn domain(d: &Domain) -> Value {
    match d {
        Domain::Id(id) => json!({"id": id}),
        Domain::Name(name) => json!({"name": name}),
    }
}

fn user(u: &User) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    match u {
        User::Id(id) => {
            out.insert("id".into(), json!(id));
        }
        User::Name(name, d) => {
            out.insert("name".into(), json!(name));
            out.insert("domain".into(), domain(d));
        }
    }
    out
}

fn scope(s: &Scope) -> Option<Value> {
    match s {
        Scope::ProjectId(id) => Some(json!({"project": {"id": id}})),
        Scope::ProjectName(name, d) => {
            Some(json!({"project": {"name": name, "domain": domain(d)}}))
        }
        Scope::Domain(d) => Some(json!({"domain": domain(d)})),
        Scope::None => None,
    }
}

/// The body of `POST /v3/auth/tokens`, or `None` for the methods that need no Keystone.
pub fn request_body(auth: &AuthConfig) -> Option<Value> {
    let (identity, scope_value) = match auth {
        AuthConfig::Password {
            user: u,
            password,
            scope: s,
            ..
        } => {
            let mut u = user(u);
            u.insert("password".into(), json!(password.expose()));
            (
                json!({"methods": ["password"], "password": {"user": u}}),
                scope(s),
            )
        }
        AuthConfig::ApplicationCredential {
            id,
            name,
            user: u,
            secret,
            ..
        } => {
            let mut cred = serde_json::Map::new();
            if let Some(id) = id {
                cred.insert("id".into(), json!(id));
            } else if let Some(name) = name {
                cred.insert("name".into(), json!(name));
                if let Some(u) = u {
                    cred.insert("user".into(), Value::Object(user(u)));
                }
            }
            cred.insert("secret".into(), json!(secret.expose()));
            (
                json!({"methods": ["application_credential"], "application_credential": cred}),
                None,
            )
        }
        AuthConfig::Token {
            token, scope: s, ..
        } => (
            json!({"methods": ["token"], "token": {"id": token.expose()}}),
            scope(s),
        ),
        AuthConfig::AdminToken { .. } | AuthConfig::None => return None,
    };
    let mut auth = json!({"identity": identity});
    if let Some(s) = scope_value {
        auth["scope"] = s;
    }
    Some(json!({"auth": auth}))
}

/// Reads the token's body: expiry, catalog, project and user.
pub fn read_token(value: Secret, body: &Value) -> Token {
    let token = &body["token"];
    let catalog = token["catalog"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|service| {
            let service_type = service["type"].as_str().unwrap_or_default().to_owned();
            service["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |e| CatalogEntry {
                    service_type: service_type.clone(),
                    interface: e["interface"].as_str().unwrap_or_default().to_owned(),
                    region: e["region_id"]
                        .as_str()
                        .or_else(|| e["region"].as_str())
                        .map(str::to_owned),
                    url: e["url"].as_str().unwrap_or_default().to_owned(),
                })
        })
        .collect();
    Token {
        value,
        expires_at: token["expires_at"].as_str().map(str::to_owned),
        catalog,
        project_id: token["project"]["id"].as_str().map(str::to_owned),
        user_id: token["user"]["id"].as_str().map(str::to_owned),
    }
}

/// The catalog URL of `service_type` for `interface` and, when given, `region`.
pub fn find_endpoint<'a>(
    catalog: &'a [CatalogEntry],
    service_type: &str,
    interface: &str,
    region: Option<&str>,
) -> Option<&'a str> {
    catalog
        .iter()
        .filter(|e| e.service_type == service_type && e.interface == interface)
        .find(|e| region.is_none_or(|r| e.region.as_deref() == Some(r)))
        .map(|e| e.url.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_body_names_user_domain_and_scope() {
        let auth = AuthConfig::Password {
            auth_url: "http://k:5000".into(),
            user: User::Name("admin".into(), Domain::Name("Default".into())),
            password: Secret::new("pw"),
            scope: Scope::ProjectName("admin".into(), Domain::Id("default".into())),
        };
        assert_eq!(
            request_body(&auth).unwrap(),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "pw"}}},
                            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
        );
        assert_eq!(identity_v3("http://k:5000/"), "http://k:5000/v3");
        assert_eq!(identity_v3("http://k:5000/v3"), "http://k:5000/v3");
    }

    #[test]
    fn catalog_lookup_by_type_interface_and_region() {
        let body = json!({"token": {"expires_at": "2026-01-01T00:00:00Z", "catalog": [
            {"type": "placement", "endpoints": [
                {"interface": "public", "region_id": "One", "url": "http://p1"},
                {"interface": "internal", "region_id": "One", "url": "http://p1-int"},
                {"interface": "public", "region_id": "Two", "url": "http://p2"}]}]}});
        let t = read_token(Secret::new("t"), &body);
        assert_eq!(
            find_endpoint(&t.catalog, "placement", "public", Some("Two")),
            Some("http://p2")
        );
        assert_eq!(
            find_endpoint(&t.catalog, "placement", "internal", None),
            Some("http://p1-int")
        );
        assert_eq!(find_endpoint(&t.catalog, "image", "public", None), None);
    }
}
