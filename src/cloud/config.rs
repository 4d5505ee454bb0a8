//! Which cloud to talk to and how to log in, resolved as the `openstack` CLI does it:
//! `--os-cloud` or `OS_CLOUD` picks a cloud from `clouds.yaml` (with `secure.yaml` merged
//! over it) from `OS_CLIENT_CONFIG_FILE`, `./`, `~/.config/openstack/` or
//! `/etc/openstack/`; without a cloud name the `OS_*` variables describe it. I/O: reads
//! those files and the environment (through the `Env` the caller passes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{CloudError, Service};
use super::secret::Secret;
use crate::text::SourceText;
use crate::yaml::{Limits, load_documents, to_json};

/// A resolved cloud: where its services are and how to authenticate.
#[derive(Clone, Debug)]
pub struct CloudConfig {
    /// The cloud's name in clouds.yaml, or `environment` for `OS_*` variables.
    pub name: String,
    /// How to authenticate.
    pub auth: AuthConfig,
    /// The catalog region, when the cloud has several.
    pub region: Option<String>,
    /// The catalog interface: `public` (default), `internal` or `admin`.
    pub interface: String,
    /// Endpoints that bypass the catalog (`placement_endpoint_override`, ...).
    pub endpoint_overrides: BTreeMap<Service, String>,
    /// A CA bundle to trust, besides the system's.
    pub cacert: Option<PathBuf>,
    /// Whether to verify TLS certificates (`verify: false` or `OS_INSECURE` turns it off).
    pub verify: bool,
}

/// A Keystone domain, by id or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Domain {
    /// By id.
    Id(String),
    /// By name.
    Name(String),
}

/// What a token is scoped to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A project by id.
    ProjectId(String),
    /// A project by name in a domain.
    ProjectName(String, Domain),
    /// A domain.
    Domain(Domain),
    /// Unscoped (or, for an application credential, its own scope).
    None,
}

/// A user, by id or by name in a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum User {
    /// By id.
    Id(String),
    /// By name in a domain.
    Name(String, Domain),
}

/// How to authenticate.
#[derive(Clone, Debug)]
pub enum AuthConfig {
    /// Keystone v3 password.
    Password {
        /// Keystone's URL (with or without `/v3`).
        auth_url: String,
        /// The user.
        user: User,
        /// The password.
        password: Secret,
        /// The scope.
        scope: Scope,
    },
    /// Keystone v3 application credential.
    ApplicationCredential {
        /// Keystone's URL.
        auth_url: String,
        /// The credential's id, or its name with the user.
        id: Option<String>,
        /// The credential's name (needs `user`).
        name: Option<String>,
        /// The owning user, when the credential is named.
        user: Option<User>,
        /// The secret.
        secret: Secret,
    },
    /// An existing Keystone token, exchanged for a scoped one.
    Token {
        /// Keystone's URL.
        auth_url: String,
        /// The token.
        token: Secret,
        /// The scope.
        scope: Scope,
    },
    /// A fixed token sent as is, without Keystone (`auth_type: admin_token`); endpoints
    /// come from the overrides.
    AdminToken {
        /// The token.
        token: Secret,
    },
    /// No authentication at all (`auth_type: none`); endpoints from the overrides.
    None,
}

/// Reads environment variables; tests pass a map instead of the process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

const SERVICES: [Service; 4] = [
    Service::Identity,
    Service::Placement,
    Service::Image,
    Service::Compute,
];

/// Resolves the cloud: `cloud` (from `--os-cloud`) or `OS_CLOUD` from clouds.yaml, else the
/// `OS_*` variables.
pub fn resolve(cloud: Option<&str>, env: Env<'_>) -> Result<CloudConfig, CloudError> {
    let name = cloud.map(str::to_owned).or_else(|| env("OS_CLOUD"));
    let Some(name) = name else {
        return from_env(env);
    };
    let home = env("HOME").map(PathBuf::from);
    let candidates = |file: &str, var: &str| -> Vec<PathBuf> {
        let mut c: Vec<PathBuf> = env(var).map(PathBuf::from).into_iter().collect();
        c.push(PathBuf::from(file));
        if let Some(h) = &home {
            c.push(h.join(".config/openstack").join(file));
        }
        c.push(Path::new("/etc/openstack").join(file));
        c
    };
    let clouds_file = candidates("clouds.yaml", "OS_CLIENT_CONFIG_FILE")
        .into_iter()
        .find(|p| p.is_file());
    let Some(clouds_file) = clouds_file else {
        return Err(config_error(
            format!("cloud `{name}` was asked for, but no clouds.yaml was found"),
            "put clouds.yaml in ./, ~/.config/openstack/ or /etc/openstack/, or point OS_CLIENT_CONFIG_FILE at it",
        ));
    };
    let mut clouds = read_yaml(&clouds_file)?;
    if let Some(secure) = candidates("secure.yaml", "OS_CLIENT_SECURE_FILE")
        .into_iter()
        .find(|p| p.is_file())
    {
        merge(&mut clouds, read_yaml(&secure)?);
    }
    let entry = clouds
        .get("clouds")
        .and_then(|c| c.get(&name))
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = clouds
                .get("clouds")
                .and_then(Value::as_object)
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let known = if names.is_empty() {
                "none".to_owned()
            } else {
                names
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            config_error(
                format!(
                    "cloud `{name}` (`--os-cloud` or OS_CLOUD) is not in {}",
                    clouds_file.display()
                ),
                match crate::desired::suggest::closest(&name, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? The clouds there are: {known}"),
                    None => format!("the clouds there are: {known}"),
                },
            )
        })?;
    from_entry(name, &normalise(entry))
}

fn config_error(message: impl Into<String>, help: impl Into<String>) -> CloudError {
    CloudError::Config {
        message: message.into(),
        help: help.into(),
    }
}

fn read_yaml(path: &Path) -> Result<Value, CloudError> {
    let io = |e: std::io::Error| CloudError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let source = SourceText::new(path.display().to_string(), text);
    let (docs, errors) = load_documents(&source, Limits::default());
    if let Some(e) = errors.first() {
        let (line, column) = source.line_col(e.span.start);
        return Err(config_error(
            format!("{}:{line}:{column}: {}", path.display(), e.message),
            "fix the YAML of this file",
        ));
    }
    Ok(docs.first().map(|d| to_json(d).0).unwrap_or(Value::Null))
}

/// Deep-merges `over` into `base`, as secure.yaml is merged over clouds.yaml.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// clouds.yaml accepts `auth-url` for `auth_url`.
fn normalise(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('-', "_"), normalise(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Builds the clouds.yaml-shaped entry the `OS_*` variables describe.
fn from_env(env: Env<'_>) -> Result<CloudConfig, CloudError> {
    let mut auth = Map::new();
    for key in [
        "auth_url",
        "username",
        "user_id",
        "password",
        "project_name",
        "project_id",
        "user_domain_name",
        "user_domain_id",
        "project_domain_name",
        "project_domain_id",
        "domain_name",
        "domain_id",
        "application_credential_id",
        "application_credential_name",
        "application_credential_secret",
        "token",
        "endpoint",
    ] {
        if let Some(v) = env(&format!("OS_{}", key.to_uppercase())) {
            auth.insert(key.into(), Value::String(v));
        }
    }
    if auth.get("project_name").is_none()
        && let Some(v) = env("OS_TENANT_NAME")
    {
        auth.insert("project_name".into(), Value::String(v));
    }
    let mut entry = Map::new();
    entry.insert("auth".into(), Value::Object(auth));
    for (key, var) in [
        ("auth_type", "OS_AUTH_TYPE"),
        ("region_name", "OS_REGION_NAME"),
        ("interface", "OS_INTERFACE"),
        ("cacert", "OS_CACERT"),
    ] {
        if let Some(v) = env(var) {
            entry.insert(key.into(), Value::String(v));
        }
    }
    if env("OS_INSECURE")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
    {
        entry.insert("verify".into(), Value::Bool(false));
    }
    for service in SERVICES {
        let var = format!(
            "OS_{}_ENDPOINT_OVERRIDE",
            service.catalog_type().to_uppercase()
        );
        if let Some(v) = env(&var) {
            entry.insert(
                format!("{}_endpoint_override", service.catalog_type()),
                Value::String(v),
            );
        }
    }
    let empty =
        entry["auth"].as_object().is_some_and(Map::is_empty) && !entry.contains_key("auth_type");
    if empty {
        return Err(config_error(
            "no cloud configured: neither `--os-cloud`/`OS_CLOUD` nor `OS_AUTH_URL` is set",
            "name a cloud of clouds.yaml with `--os-cloud NAME` or `OS_CLOUD`, or source an openrc file",
        ));
    }
    from_entry("environment".into(), &Value::Object(entry))
}

fn string(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Turns one clouds.yaml entry (normalised) into a [`CloudConfig`].
fn from_entry(name: String, entry: &Value) -> Result<CloudConfig, CloudError> {
    let auth = entry
        .get("auth")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let auth_type = string(entry, "auth_type").unwrap_or_else(|| "password".into());
    let missing = |what: &str| {
        config_error(
            format!("cloud `{name}` (auth_type `{auth_type}`) has no `{what}`"),
            format!(
                "add `{what}` under `auth:` in clouds.yaml (secrets in secure.yaml), or set OS_{}",
                what.to_uppercase()
            ),
        )
    };
    let auth_url = || string(&auth, "auth_url").ok_or_else(|| missing("auth_url"));
    let domain = |id_key: &str, name_key: &str| -> Option<Domain> {
        string(&auth, id_key)
            .map(Domain::Id)
            .or_else(|| string(&auth, name_key).map(Domain::Name))
    };
    let default_domain =
        || domain("domain_id", "domain_name").unwrap_or(Domain::Id("default".into()));
    let user = || -> Option<User> {
        string(&auth, "user_id").map(User::Id).or_else(|| {
            string(&auth, "username").map(|n| {
                User::Name(
                    n,
                    domain("user_domain_id", "user_domain_name").unwrap_or_else(default_domain),
                )
            })
        })
    };
    let scope = || -> Scope {
        if let Some(id) = string(&auth, "project_id") {
            Scope::ProjectId(id)
        } else if let Some(project) = string(&auth, "project_name") {
            Scope::ProjectName(
                project,
                domain("project_domain_id", "project_domain_name").unwrap_or_else(default_domain),
            )
        } else if let Some(d) = domain("domain_id", "domain_name") {
            Scope::Domain(d)
        } else {
            Scope::None
        }
    };
    let secret = |key: &str| {
        string(&auth, key)
            .map(Secret::new)
            .ok_or_else(|| missing(key))
    };
    let auth_config = match auth_type.as_str() {
        "password" | "v3password" => AuthConfig::Password {
            auth_url: auth_url()?,
            user: user().ok_or_else(|| missing("username"))?,
            password: secret("password")?,
            scope: scope(),
        },
        "v3applicationcredential" | "applicationcredential" => AuthConfig::ApplicationCredential {
            auth_url: auth_url()?,
            id: string(&auth, "application_credential_id"),
            name: string(&auth, "application_credential_name"),
            user: user(),
            secret: secret("application_credential_secret")?,
        },
        "token" | "v3token" => AuthConfig::Token {
            auth_url: auth_url()?,
            token: secret("token")?,
            scope: scope(),
        },
        "admin_token" => AuthConfig::AdminToken {
            token: secret("token")?,
        },
        "none" | "noauth" => AuthConfig::None,
        other => {
            return Err(config_error(
                format!(
                    "cloud `{name}` uses auth_type `{other}`, which fpga-sync does not support"
                ),
                "use password, v3applicationcredential, token, admin_token or none",
            ));
        }
    };
    if let AuthConfig::ApplicationCredential {
        id: None,
        name: None,
        ..
    } = &auth_config
    {
        return Err(missing("application_credential_id"));
    }
    let mut endpoint_overrides = BTreeMap::new();
    for service in SERVICES {
        if let Some(url) = string(
            entry,
            &format!("{}_endpoint_override", service.catalog_type()),
        ) {
            endpoint_overrides.insert(service, url);
        }
    }
    // `auth: {endpoint: URL}` of the admin_token/none plugins serves services without an
    // override of their own.
    if let Some(endpoint) = string(&auth, "endpoint") {
        for service in SERVICES {
            endpoint_overrides
                .entry(service)
                .or_insert_with(|| endpoint.clone());
        }
    }
    if matches!(
        auth_config,
        AuthConfig::AdminToken { .. } | AuthConfig::None
    ) && endpoint_overrides.is_empty()
    {
        return Err(config_error(
            format!("cloud `{name}` has no Keystone (auth_type `{auth_type}`) and no endpoints"),
            "set `placement_endpoint_override`, `image_endpoint_override` and `compute_endpoint_override`",
        ));
    }
    let verify = match entry.get("verify") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !matches!(s.to_ascii_lowercase().as_str(), "false" | "no" | "0"),
        _ => !entry
            .get("insecure")
            .is_some_and(|v| v == &Value::Bool(true)),
    };
    Ok(CloudConfig {
        name,
        auth: auth_config,
        region: string(entry, "region_name"),
        interface: string(entry, "interface")
            .unwrap_or_else(|| "public".into())
            .trim_end_matches("URL")
            .to_owned(),
        endpoint_overrides,
        cacert: string(entry, "cacert").map(PathBuf::from),
        verify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn clouds_yaml_with_secure_yaml_merged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("clouds.yaml"),
            "clouds:\n  prod:\n    auth:\n      auth_url: https://keystone.example/v3\n      username: ops\n      project_name: fpga\n      user_domain_name: Default\n    region_name: RegionTwo\n    placement_endpoint_override: https://placement.example\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("secure.yaml"),
            "clouds:\n  prod:\n    auth:\n      password: hunter2\n",
        )
        .unwrap();
        let clouds = dir.path().join("clouds.yaml").display().to_string();
        let secure = dir.path().join("secure.yaml").display().to_string();
        let pairs = [
            ("OS_CLIENT_CONFIG_FILE", clouds.as_str()),
            ("OS_CLIENT_SECURE_FILE", secure.as_str()),
            ("OS_CLOUD", "prod"),
        ];
        let env = env_of(&pairs);
        let c = resolve(None, &env).unwrap();
        assert_eq!(c.region.as_deref(), Some("RegionTwo"));
        assert_eq!(
            c.endpoint_overrides[&Service::Placement],
            "https://placement.example"
        );
        let AuthConfig::Password {
            user,
            password,
            scope,
            ..
        } = &c.auth
        else {
            panic!("{:?}", c.auth)
        };
        assert_eq!(
            user,
            &User::Name("ops".into(), Domain::Name("Default".into()))
        );
        assert_eq!(password.expose(), "hunter2");
        assert_eq!(
            scope,
            &Scope::ProjectName("fpga".into(), Domain::Id("default".into()))
        );
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "Debug never shows the password"
        );
        let err = resolve(Some("staging"), &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cloud `staging` (`--os-cloud` or OS_CLOUD) is not in {clouds}")
        );
        assert_eq!(err.help().unwrap(), "the clouds there are: `prod`");
        let err = resolve(Some("prd"), &env).unwrap_err();
        assert_eq!(
            err.help().unwrap(),
            "did you mean `prod`? The clouds there are: `prod`"
        );
    }

    #[test]
    fn os_variables_describe_a_cloud() {
        let env = env_of(&[
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_AUTH_TYPE", "v3applicationcredential"),
            ("OS_APPLICATION_CREDENTIAL_ID", "abc"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
            ("OS_INSECURE", "true"),
        ]);
        let c = resolve(None, &env).unwrap();
        assert!(
            matches!(c.auth, AuthConfig::ApplicationCredential { ref id, .. } if id.as_deref() == Some("abc"))
        );
        assert!(!c.verify);
        let err = resolve(None, &env_of(&[])).unwrap_err();
        assert!(err.to_string().starts_with("no cloud configured"));
        let err = resolve(
            None,
            &env_of(&[("OS_AUTH_URL", "http://k/v3"), ("OS_USERNAME", "u")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cloud `environment` (auth_type `password`) has no `password`"
        );
    }
}
