//! Who holds a slot: a consumer of Placement allocations on a device provider, with what is
//! known about it — the Nova server it is (name and project), or an fpga-sync claim
//! (`fpga-sync claim`, Placement consumer type [`CLAIM_CONSUMER_TYPE`]), or only its id.
//! The planners name these in refusals and in the fleet view. Pure: no I/O.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The Placement consumer type (microversion 1.38) of the allocations `fpga-sync claim`
/// makes. Nova's servers are `INSTANCE`.
pub const CLAIM_CONSUMER_TYPE: &str = "FPGA_SYNC_CLAIM";

/// One consumer holding allocations on a provider.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Consumer {
    /// The consumer's uuid, as Placement holds it (a Nova server's id for a server).
    pub id: String,
    /// The Nova server it is, when Nova knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Server>,
    /// Placement's consumer type (`INSTANCE`, `MIGRATION`, `FPGA_SYNC_CLAIM`, ...), when it
    /// was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A Nova server, as much as a message needs.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Server {
    /// Its name.
    pub name: String,
    /// Its project's id.
    pub project: String,
}

impl Consumer {
    /// A consumer known only by its id.
    pub fn id(id: impl Into<String>) -> Self {
        Consumer {
            id: id.into(),
            server: None,
            kind: None,
        }
    }

    /// Whether it is an fpga-sync claim.
    pub fn is_claim(&self) -> bool {
        self.kind.as_deref() == Some(CLAIM_CONSUMER_TYPE)
    }
}

impl fmt::Display for Consumer {
    /// `server `web-1` (id 5f0c…, project 9a1b…)`, `fpga-sync claim `…``, or
    /// `consumer `…``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.server {
            Some(s) => write!(
                f,
                "server `{}` (id {}, project {})",
                s.name, self.id, s.project
            ),
            None if self.is_claim() => write!(f, "fpga-sync claim `{}`", self.id),
            None => write!(f, "consumer `{}`", self.id),
        }
    }
}

/// Who holds a provider, for messages: the consumers named (`server `a` (…), fpga-sync
/// claim `b``), or `N consumer(s)` when only their number is known.
pub fn holders(consumers: &[Consumer], count: usize) -> String {
    if consumers.is_empty() {
        return format!("{count} consumer(s)");
    }
    consumers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to do about the holders of a slot: release claims, move or delete servers.
pub fn holders_help(consumers: &[Consumer]) -> String {
    let claims: Vec<&str> = consumers
        .iter()
        .filter(|c| c.is_claim())
        .map(|c| c.id.as_str())
        .collect();
    let release = claims
        .iter()
        .map(|id| format!("`fpga-sync release --consumer {id}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match (claims.len(), consumers.len()) {
        (0, _) => "move or delete the instances using it, or run again with `--allow-busy` to program it anyway".to_owned(),
        (c, n) if c == n => format!(
            "release the claim ({release}), or run again with `--allow-busy` to program it anyway"
        ),
        _ => format!(
            "move or delete the instances using it and release the claims ({release}), or run again with `--allow-busy` to program it anyway"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumers_are_named_by_what_is_known_of_them() {
        let server = Consumer {
            id: "5f0c".into(),
            server: Some(Server {
                name: "web-1".into(),
                project: "9a1b".into(),
            }),
            kind: Some("INSTANCE".into()),
        };
        let claim = Consumer {
            id: "c1".into(),
            server: None,
            kind: Some(CLAIM_CONSUMER_TYPE.into()),
        };
        assert_eq!(server.to_string(), "server `web-1` (id 5f0c, project 9a1b)");
        assert_eq!(claim.to_string(), "fpga-sync claim `c1`");
        assert_eq!(Consumer::id("77").to_string(), "consumer `77`");
        assert_eq!(holders(&[], 2), "2 consumer(s)");
        assert_eq!(
            holders(&[server.clone(), claim.clone()], 2),
            "server `web-1` (id 5f0c, project 9a1b), fpga-sync claim `c1`"
        );
        assert!(holders_help(&[claim]).contains("fpga-sync release --consumer c1"));
        assert!(holders_help(&[server]).starts_with("move or delete"));
    }
}
