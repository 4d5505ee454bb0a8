//! Why an action exists, as data: the planner decides by it (the mass-delete guard counts
//! only [`Why::PrunedImage`] and [`Why::PrunedFlavor`]) and people read it rendered as the
//! action's `reason` text. A saved plan holds that text; reading it back recognises every
//! text this planner writes and keeps any other as [`Why::Other`], so a plan saved by
//! another version still loads and shows its reasons as written. Pure.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Change;
use crate::observed::{FlavorId, ImageId, ImageStatus};

/// How many hex digits of a sha256 a reason shows.
const SHORT_SHA: usize = 12;

const FORCED: &str = " forces a new flavor: Nova cannot change it; running servers keep their copy";
const PRUNED: &str = "no longer in the repository; ";

/// Why an action exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// A new image, uploaded from a file.
    Upload {
        /// The bitstream file, relative to the desired-state folder.
        source: String,
        /// Its size in bytes.
        size: u64,
        /// The first 12 hex digits of its sha256.
        sha256: String,
    },
    /// A new flavor, with its sizes.
    NewFlavor {
        /// Virtual CPUs.
        vcpus: u32,
        /// Memory, MiB.
        ram: u32,
        /// Root disk, GiB.
        disk: u32,
    },
    /// An image fpga-sync does not own is taken over (`adopt: true`), its content checked
    /// against the file first.
    AdoptImage {
        /// The image.
        id: ImageId,
        /// The bitstream file.
        source: String,
    },
    /// A flavor fpga-sync does not own is taken over; its sizes are not known, so it is
    /// recreated.
    AdoptFlavor {
        /// The flavor.
        id: FlavorId,
    },
    /// An interrupted run created the flavor (it has fpga-sync's id for the name) but did
    /// not mark it: it is recreated.
    InterruptedFlavor {
        /// The flavor.
        id: FlavorId,
    },
    /// An interrupted run created the image but uploaded nothing: the upload is finished.
    FinishUpload {
        /// The image.
        id: ImageId,
    },
    /// An interrupted run uploaded the image but did not verify it: it is verified.
    VerifyUpload {
        /// The image.
        id: ImageId,
    },
    /// An interrupted upload left the image in a status it cannot leave: it is replaced.
    Interrupted {
        /// The image.
        id: ImageId,
        /// Its status.
        status: ImageStatus,
    },
    /// A duplicate an interrupted upload left beside the image that stays: it is deleted.
    Leftover {
        /// The duplicate.
        id: ImageId,
        /// Its status.
        status: ImageStatus,
    },
    /// The bitstream's content changed: the image is replaced.
    ContentChanged {
        /// The first 12 hex digits of the old sha256 (`unknown` when it was not recorded).
        old: String,
        /// The first 12 hex digits of the new sha256.
        new: String,
        /// The bitstream file.
        source: String,
    },
    /// Fields Nova cannot change in place changed: the flavor is replaced.
    FixedFields(
        /// The fields, old and new.
        Vec<Change>,
    ),
    /// An owned image left the repository and pruning is on: it is deleted.
    PrunedImage {
        /// The image.
        id: ImageId,
    },
    /// An owned flavor left the repository and pruning is on: it is deleted.
    PrunedFlavor {
        /// The flavor.
        id: FlavorId,
    },
    /// A reason this fpga-sync does not write, read from a saved plan: shown as written.
    Other(String),
}

impl Why {
    /// A new image from `source`.
    pub fn upload(source: &str, size: u64, sha256: &str) -> Why {
        Why::Upload {
            source: source.to_owned(),
            size,
            sha256: short(sha256).to_owned(),
        }
    }

    /// The content of the image from `source` changed from sha256 `old` to `new`.
    pub fn content_changed(old: &str, new: &str, source: &str) -> Why {
        Why::ContentChanged {
            old: short(old).to_owned(),
            new: short(new).to_owned(),
            source: source.to_owned(),
        }
    }

    /// Whether the action deletes what pruning removes: an owned object that left the
    /// repository (not the leftover of an interrupted run).
    pub fn is_pruning(&self) -> bool {
        matches!(self, Why::PrunedImage { .. } | Why::PrunedFlavor { .. })
    }

    /// The reason a saved plan holds, read back. A text this planner does not write (or
    /// that does not render back exactly) is kept as [`Why::Other`].
    pub fn from_text(text: &str) -> Why {
        parse(text)
            .filter(|why| why.to_string() == text)
            .unwrap_or_else(|| Why::Other(text.to_owned()))
    }
}

fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(SHORT_SHA)]
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Upload {
                source,
                size,
                sha256,
            } => write!(f, "from `{source}`, {size} bytes, sha256 {sha256}"),
            Why::NewFlavor { vcpus, ram, disk } => {
                write!(f, "{vcpus} vCPU, {ram} MiB RAM, {disk} GiB disk")
            }
            Why::AdoptImage { id, source } => write!(
                f,
                "adopt image {id}: its content is checked against `{source}` first"
            ),
            Why::AdoptFlavor { id } => write!(
                f,
                "adopt flavor {id}: its sizes are not known, so it is recreated"
            ),
            Why::InterruptedFlavor { id } => write!(
                f,
                "finish flavor {id}: an interrupted run created it but did not mark it, so it is recreated"
            ),
            Why::FinishUpload { id } => write!(
                f,
                "finish image {id}: an interrupted run created it but uploaded nothing"
            ),
            Why::VerifyUpload { id } => write!(
                f,
                "verify image {id}: an interrupted run uploaded it but did not check it"
            ),
            Why::Interrupted { id, status } => {
                write!(f, "an interrupted upload left image {id} `{status}`")
            }
            Why::Leftover { id, status } => write!(
                f,
                "image {id} is a leftover of an interrupted upload ({status})"
            ),
            Why::ContentChanged { old, new, source } => {
                write!(f, "content changed: sha256 {old} → {new} (`{source}`)")
            }
            Why::FixedFields(changes) => {
                for (i, c) in changes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(
                        f,
                        "{} {} → {}",
                        c.field,
                        c.old.as_deref().unwrap_or("-"),
                        c.new.as_deref().unwrap_or("-")
                    )?;
                }
                f.write_str(FORCED)
            }
            Why::PrunedImage { id } => write!(f, "{PRUNED}image {id}"),
            Why::PrunedFlavor { id } => write!(f, "{PRUNED}flavor {id}"),
            Why::Other(text) => f.write_str(text),
        }
    }
}

/// The variant whose text `text` is, without checking that it renders back the same.
fn parse(text: &str) -> Option<Why> {
    if let Some(rest) = text.strip_prefix(PRUNED) {
        if let Some(id) = rest.strip_prefix("image ") {
            return Some(Why::PrunedImage { id: id.into() });
        }
        return Some(Why::PrunedFlavor {
            id: rest.strip_prefix("flavor ")?.into(),
        });
    }
    if let Some(rest) = text.strip_prefix("from `") {
        let (source, rest) = rest.rsplit_once("`, ")?;
        let (size, sha256) = rest.split_once(" bytes, sha256 ")?;
        return Some(Why::Upload {
            source: source.to_owned(),
            size: size.parse().ok()?,
            sha256: sha256.to_owned(),
        });
    }
    if let Some(rest) = text.strip_prefix("adopt image ") {
        let (id, source) = rest
            .strip_suffix("` first")?
            .split_once(": its content is checked against `")?;
        return Some(Why::AdoptImage {
            id: id.into(),
            source: source.to_owned(),
        });
    }
    if let Some(rest) = text.strip_prefix("adopt flavor ") {
        let id = rest.strip_suffix(": its sizes are not known, so it is recreated")?;
        return Some(Why::AdoptFlavor { id: id.into() });
    }
    if let Some(rest) = text.strip_prefix("finish flavor ") {
        let id = rest.strip_suffix(
            ": an interrupted run created it but did not mark it, so it is recreated",
        )?;
        return Some(Why::InterruptedFlavor { id: id.into() });
    }
    if let Some(rest) = text.strip_prefix("finish image ") {
        let id = rest.strip_suffix(": an interrupted run created it but uploaded nothing")?;
        return Some(Why::FinishUpload { id: id.into() });
    }
    if let Some(rest) = text.strip_prefix("verify image ") {
        let id = rest.strip_suffix(": an interrupted run uploaded it but did not check it")?;
        return Some(Why::VerifyUpload { id: id.into() });
    }
    if let Some(rest) = text.strip_prefix("an interrupted upload left image ") {
        let (id, status) = rest.strip_suffix('`')?.split_once(" `")?;
        return Some(Why::Interrupted {
            id: id.into(),
            status: status.into(),
        });
    }
    if let Some(rest) = text.strip_prefix("image ") {
        let (id, status) = rest
            .strip_suffix(')')?
            .split_once(" is a leftover of an interrupted upload (")?;
        return Some(Why::Leftover {
            id: id.into(),
            status: status.into(),
        });
    }
    if let Some(rest) = text.strip_prefix("content changed: sha256 ") {
        let (shas, source) = rest.strip_suffix("`)")?.split_once(" (`")?;
        let (old, new) = shas.split_once(" → ")?;
        return Some(Why::ContentChanged {
            old: old.to_owned(),
            new: new.to_owned(),
            source: source.to_owned(),
        });
    }
    if let Some(fields) = text.strip_suffix(FORCED) {
        let changes = fields
            .split(", ")
            .map(|one| {
                let (field, values) = one.split_once(' ')?;
                let (old, new) = values.split_once(" → ")?;
                Some(Change {
                    field: field.to_owned(),
                    old: Some(old.to_owned()),
                    new: Some(new.to_owned()),
                })
            })
            .collect::<Option<Vec<Change>>>()?;
        return Some(Why::FixedFields(changes));
    }
    let rest = text.strip_suffix(" GiB disk")?;
    let (vcpus, rest) = rest.split_once(" vCPU, ")?;
    let (ram, disk) = rest.split_once(" MiB RAM, ")?;
    Some(Why::NewFlavor {
        vcpus: vcpus.parse().ok()?,
        ram: ram.parse().ok()?,
        disk: disk.parse().ok()?,
    })
}

impl Serialize for Why {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Why {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Why::from_text(&String::deserialize(d)?))
    }
}

impl schemars::JsonSchema for Why {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Why".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Why the action exists, for people: e.g. `from `files/aes.gbs`, 1024 bytes, sha256 4f1d…`, `content changed: sha256 73daf4ba07e2 → 81f4f2774201 (`files/aes.gbs`)`, `no longer in the repository; image ID`.",
            "type": "string"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Why> {
        vec![
            Why::upload("files/aes.gbs", 1024, &"ab".repeat(32)),
            Why::NewFlavor {
                vcpus: 4,
                ram: 8192,
                disk: 40,
            },
            Why::AdoptImage {
                id: "0f3c".into(),
                source: "files/a b, (c).gbs".into(),
            },
            Why::AdoptFlavor { id: "42".into() },
            Why::InterruptedFlavor { id: "42".into() },
            Why::FinishUpload { id: "0f3c".into() },
            Why::VerifyUpload { id: "0f3c".into() },
            Why::Interrupted {
                id: "0f3c".into(),
                status: ImageStatus::Killed,
            },
            Why::Interrupted {
                id: "0f3c".into(),
                status: ImageStatus::Other("resting".into()),
            },
            Why::Leftover {
                id: "0f3c".into(),
                status: ImageStatus::Queued,
            },
            Why::content_changed("unknown", &"f".repeat(64), "files/aes.gbs"),
            Why::FixedFields(vec![
                Change {
                    field: "vcpus".into(),
                    old: Some("2".into()),
                    new: Some("4".into()),
                },
                Change {
                    field: "is_public".into(),
                    old: Some("true".into()),
                    new: Some("false".into()),
                },
            ]),
            Why::PrunedImage { id: "0f3c".into() },
            Why::PrunedFlavor { id: "42".into() },
        ]
    }

    #[test]
    fn every_reason_reads_back_from_its_text() {
        for why in every_kind() {
            let text = why.to_string();
            assert_eq!(Why::from_text(&text), why, "{text}");
            let json = serde_json::to_value(&why).unwrap();
            assert_eq!(json, serde_json::json!(text));
            assert_eq!(serde_json::from_value::<Why>(json).unwrap(), why);
        }
    }

    #[test]
    fn reasons_render_as_the_planner_always_wrote_them() {
        let texts: Vec<String> = every_kind().iter().map(Why::to_string).collect();
        assert_eq!(
            texts,
            [
                "from `files/aes.gbs`, 1024 bytes, sha256 abababababab",
                "4 vCPU, 8192 MiB RAM, 40 GiB disk",
                "adopt image 0f3c: its content is checked against `files/a b, (c).gbs` first",
                "adopt flavor 42: its sizes are not known, so it is recreated",
                "finish flavor 42: an interrupted run created it but did not mark it, so it is recreated",
                "finish image 0f3c: an interrupted run created it but uploaded nothing",
                "verify image 0f3c: an interrupted run uploaded it but did not check it",
                "an interrupted upload left image 0f3c `killed`",
                "an interrupted upload left image 0f3c `resting`",
                "image 0f3c is a leftover of an interrupted upload (queued)",
                "content changed: sha256 unknown → ffffffffffff (`files/aes.gbs`)",
                "vcpus 2 → 4, is_public true → false forces a new flavor: Nova cannot change it; running servers keep their copy",
                "no longer in the repository; image 0f3c",
                "no longer in the repository; flavor 42",
            ]
        );
    }

    #[test]
    fn other_texts_are_kept_as_written() {
        for text in [
            "",
            "because",
            "no longer in the repository; trait X",
            "from `x`, many bytes, sha256 ab",
            "4 vCPU, 8192 MiB RAM, lots GiB disk",
        ] {
            assert_eq!(Why::from_text(text), Why::Other(text.into()));
            assert_eq!(Why::from_text(text).to_string(), text);
        }
    }

    #[test]
    fn only_pruned_deletions_are_pruning() {
        let pruning: Vec<bool> = every_kind().iter().map(Why::is_pruning).collect();
        let n = pruning.len();
        assert_eq!(pruning[n - 2..], [true, true]);
        assert!(pruning[..n - 2].iter().all(|p| !p));
        assert!(!Why::Other("no longer in the repository; image x".into()).is_pruning());
    }
}
