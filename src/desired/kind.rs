//! The kinds of desired-state document and the `apiVersion` they carry. Pure: no I/O.

use std::fmt;

/// The `apiVersion` of every fpga-sync document.
pub const API_VERSION: &str = "fpga-sync/v1";

/// The kind of a desired-state document: the value of its `kind` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A bitstream image in Glance.
    Bitstream,
    /// A custom Placement trait.
    Trait,
    /// A custom Placement resource class.
    ResourceClass,
    /// A Nova flavor.
    Flavor,
    /// FPGA assignments for a group of compute hosts.
    HostGroup,
}

impl Kind {
    /// Every kind, in the order documents are described.
    pub const ALL: [Kind; 5] = [
        Kind::Bitstream,
        Kind::Trait,
        Kind::ResourceClass,
        Kind::Flavor,
        Kind::HostGroup,
    ];

    /// The name written in `kind:`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bitstream => "Bitstream",
            Kind::Trait => "Trait",
            Kind::ResourceClass => "ResourceClass",
            Kind::Flavor => "Flavor",
            Kind::HostGroup => "HostGroup",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
