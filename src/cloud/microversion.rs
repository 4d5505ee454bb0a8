//! API microversions: parsing, ordering, and reading the supported range from a service's
//! version document. Pure: no I/O.

use std::fmt;
use std::str::FromStr;

/// A microversion such as `1.39`. Ordered numerically, so `2.10 > 2.9`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
}

impl Microversion {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Microversion { major, minor }
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for Microversion {
    type Err = String;

    /// Parses `1.39`; refuses `latest` and anything else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s
            .trim()
            .split_once('.')
            .ok_or_else(|| format!("`{s}` is not a microversion"))?;
        let parse = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("`{s}` is not a microversion"))
        };
        Ok(Microversion::new(parse(major)?, parse(minor)?))
    }
}

/// The microversions a service supports, from its version document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Supported {
    /// The oldest it serves.
    pub min: Microversion,
    /// The newest it serves.
    pub max: Microversion,
}

impl Supported {
    /// Reads `min_version` and `max_version` (Placement) or `version` (Nova) from a version
    /// document: the root's `versions` list (the current one) or a single `version`. Empty
    /// strings mean "no microversions"; `None` when the document has none.
    pub fn from_document(doc: &serde_json::Value) -> Option<Supported> {
        let entry = doc.get("version").filter(|v| v.is_object()).or_else(|| {
            let versions = doc.get("versions")?.as_array()?;
            versions
                .iter()
                .find(|v| v.get("status").and_then(|s| s.as_str()) == Some("CURRENT"))
                .or_else(|| versions.first())
        })?;
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .and_then(|s| s.parse().ok())
        };
        let max = field("max_version").or_else(|| field("version"))?;
        let min = field("min_version").unwrap_or(max);
        Some(Supported { min, max })
    }

    /// Whether `version` is in range.
    pub fn contains(&self, version: Microversion) -> bool {
        self.min <= version && version <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_numerically() {
        let a: Microversion = "2.9".parse().unwrap();
        let b: Microversion = "2.10".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.to_string(), "2.10");
        assert!("latest".parse::<Microversion>().is_err());
        assert!("1".parse::<Microversion>().is_err());
    }

    #[test]
    fn reads_placement_and_nova_version_documents() {
        let placement = serde_json::json!({"versions": [{"id": "v1.0", "max_version": "1.39", "min_version": "1.0", "status": "CURRENT"}]});
        assert_eq!(
            Supported::from_document(&placement),
            Some(Supported {
                min: Microversion::new(1, 0),
                max: Microversion::new(1, 39)
            })
        );
        let nova = serde_json::json!({"version": {"id": "v2.1", "version": "2.104", "min_version": "2.1"}});
        let s = Supported::from_document(&nova).unwrap();
        assert!(s.contains(Microversion::new(2, 61)));
        assert!(!s.contains(Microversion::new(2, 105)));
        let none = serde_json::json!({"version": {"id": "v2.0", "version": "", "min_version": ""}});
        assert_eq!(Supported::from_document(&none), None);
    }
}
