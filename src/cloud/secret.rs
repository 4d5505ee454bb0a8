//! A secret (password, token, application credential secret) that never prints itself:
//! `Debug` and `Display` show `[redacted]`, and it serialises to nothing readable; and URLs
//! made fit for logs (credentials and secret-looking query values removed). Pure.

use std::fmt;

/// A secret string. The value is reachable only through [`Secret::expose`], which the
/// code calls exactly where the secret goes on the wire.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for a request header or body.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `url` fit for a log line: a user and password in it replaced by `***`, and the values
/// of query parameters whose names look secret (`token`, `password`, `secret`, `key`,
/// `credential`, `signature`) by `[redacted]`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme && !base[scheme + 3..at].contains('/') => {
            format!("{}://***@{}", &base[..scheme], &base[at + 1..])
        }
        _ => base.to_owned(),
    };
    let Some(query) = query else {
        return base;
    };
    let secret = [
        "token",
        "password",
        "secret",
        "key",
        "credential",
        "signature",
    ];
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if secret.iter().any(|s| k.to_ascii_lowercase().contains(s)) => {
                format!("{k}=[redacted]")
            }
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::{Secret, redact_url};

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url(
                "https://admin:hunter2@cloud.example:5000/v3?x=1&auth_token=abc&X-Auth-Token=t"
            ),
            "https://***@cloud.example:5000/v3?x=1&auth_token=[redacted]&X-Auth-Token=[redacted]"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8778/traits?name=startswith:CUSTOM_"),
            "http://127.0.0.1:8778/traits?name=startswith:CUSTOM_"
        );
        assert_eq!(
            redact_url("http://h/v2/images?marker=a@b"),
            "http://h/v2/images?marker=a@b"
        );
    }

    #[test]
    fn never_prints_itself() {
        let s = Secret::new("hunter2");
        assert_eq!(
            format!("{s} {s:?} {:?}", Some(&s)),
            "[redacted] [redacted] Some([redacted])"
        );
        assert_eq!(s.expose(), "hunter2");
    }
}
