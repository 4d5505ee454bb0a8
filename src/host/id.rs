//! 128-bit FPGA identifiers (interface, accelerator, xclbin and bitstream ids) in one
//! normal form. Every source writes them differently: sysfs `compat_id` as 32 lower-case
//! hex digits, GBS headers as dashed upper-case uuids, `xrt-smi` JSON in upper case,
//! `xclbinuuid` dashed lower case. Pure: no I/O.

use std::fmt;
use std::str::FromStr;

/// A 128-bit id; compares equal however it was written. Displays as 32 lower-case hex
/// digits without dashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id128(pub u128);

/// Text that is not a 128-bit id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadId(pub String);

impl fmt::Display for BadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a 128-bit id (32 hex digits, dashes allowed)",
            self.0
        )
    }
}

impl std::error::Error for BadId {}

impl Id128 {
    /// The id of a uuid.
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Id128(uuid.as_u128())
    }

    /// The first 128 bits of a sha256 given as hex: the identity of an image format that
    /// carries no id of its own.
    pub fn from_sha256_hex(sha256: &str) -> Option<Self> {
        sha256.get(..32)?.parse().ok()
    }

    /// Upper-case hex, for Placement trait names.
    pub fn upper(&self) -> String {
        format!("{:032X}", self.0)
    }

    /// Dashed lower-case uuid form, for messages read by people.
    pub fn dashed(&self) -> String {
        uuid::Uuid::from_u128(self.0).to_string()
    }

    /// Whether it is all zeros, which sysfs writes for "nothing loaded".
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Id128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for Id128 {
    type Err = BadId;

    /// Accepts dashed or undashed, any case, an optional `0x`, surrounding whitespace and
    /// the NUL padding some sysfs files carry.
    fn from_str(s: &str) -> Result<Self, BadId> {
        let trimmed = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        let bare = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed);
        let hex: String = bare.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(BadId(s.trim().to_owned()));
        }
        u128::from_str_radix(&hex, 16)
            .map(Id128)
            .map_err(|_| BadId(s.trim().to_owned()))
    }
}

impl serde::Serialize for Id128 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Id128 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_form_compares_equal() {
        let forms = [
            "a108d99e87ee4f7ea539a23b77f2b433",
            "A108D99E-87EE-4F7E-A539-A23B77F2B433",
            "a108d99e-87ee-4f7e-a539-a23b77f2b433\n",
            "0xa108d99e87ee4f7ea539a23b77f2b433\0\0",
        ];
        let ids: Vec<Id128> = forms.iter().map(|f| f.parse().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
        assert_eq!(ids[0].to_string(), "a108d99e87ee4f7ea539a23b77f2b433");
        assert_eq!(ids[0].upper(), "A108D99E87EE4F7EA539A23B77F2B433");
        assert_eq!(ids[0].dashed(), "a108d99e-87ee-4f7e-a539-a23b77f2b433");
    }

    #[test]
    fn short_long_and_non_hex_text_is_refused() {
        for bad in [
            "",
            "a108d99e",
            "a108d99e87ee4f7ea539a23b77f2b433ff",
            "g108d99e87ee4f7ea539a23b77f2b433",
        ] {
            assert!(bad.parse::<Id128>().is_err(), "{bad}");
        }
    }
}
