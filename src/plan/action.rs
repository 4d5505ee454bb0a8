//! What a plan is made of: actions with everything the executor needs (no decisions are
//! left to it), the changes people read, and what depends on what. Plain data that
//! serialises, so a plan can be saved and applied later. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Why;
use crate::observed::{FlavorId, FlavorShape, ImageId};

/// What an action does to its object, as the plan shows it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `+` a new object.
    Create,
    /// `~` changed in place.
    Update,
    /// `-/+` replaced: a new object, the old one deleted.
    Replace,
    /// `-` deleted.
    Delete,
}

impl Kind {
    /// The plan's marker for it.
    pub fn symbol(self) -> &'static str {
        match self {
            Kind::Create => "+",
            Kind::Update => "~",
            Kind::Replace => "-/+",
            Kind::Delete => "-",
        }
    }
}

/// The kind of object an action is about.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    /// A Placement trait.
    Trait,
    /// A Placement resource class.
    ResourceClass,
    /// A Glance image.
    Image,
    /// A Nova flavor.
    Flavor,
}

impl ObjectType {
    /// How the plan names it.
    pub fn label(self) -> &'static str {
        match self {
            ObjectType::Trait => "trait",
            ObjectType::ResourceClass => "resource class",
            ObjectType::Image => "image",
            ObjectType::Flavor => "flavor",
        }
    }
}

/// One field that changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Change {
    /// `ram`, `properties.vendor`, `tags`, `extra_specs.trait:CUSTOM_X`, ...
    pub field: String,
    /// The value now; `None` when it is added.
    pub old: Option<String>,
    /// The value wanted; `None` when it is removed.
    pub new: Option<String>,
}

/// An image as it is to be created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageSpec {
    /// Image name.
    pub name: String,
    /// Visibility.
    pub visibility: String,
    /// Tags, `FPGA` first.
    pub tags: Vec<String>,
    /// Every property, fpga-sync's marks included.
    pub properties: BTreeMap<String, String>,
    /// The bitstream file, relative to the desired-state folder.
    pub source: String,
    /// Its sha256: the upload must match it.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A flavor as it is to be created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FlavorSpec {
    /// Name.
    pub name: String,
    /// Its sizes, visibility and description.
    #[serde(flatten)]
    pub shape: FlavorShape,
    /// Extra specs, fpga-sync's mark included.
    pub extra_specs: BTreeMap<String, String>,
    /// The id to create it with ([`crate::markers::flavor_id`]); plans saved before it
    /// existed let Nova choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Changes to an existing image's record (its data stays).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImagePatch {
    /// Properties added or changed.
    pub set: BTreeMap<String, String>,
    /// Properties removed.
    pub remove: Vec<String>,
    /// Tags added.
    pub add_tags: Vec<String>,
    /// Tags removed.
    pub remove_tags: Vec<String>,
    /// The new name, when it changes.
    pub rename: Option<String>,
    /// The new visibility, when it changes.
    pub visibility: Option<String>,
}

/// Exactly what the executor does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// `PUT /traits/{name}`.
    EnsureTrait {
        /// The trait.
        name: String,
    },
    /// `PUT /resource_classes/{name}`.
    EnsureResourceClass {
        /// The resource class.
        name: String,
    },
    /// Create the image (marked `uploading`), stream the file, check Glance's hash, mark it
    /// `complete`.
    CreateImage {
        /// The image.
        image: ImageSpec,
    },
    /// An interrupted earlier run left this image `queued` with fpga-sync's marks: stream
    /// the file into it, check, mark `complete`.
    FinishImage {
        /// The image's id.
        id: ImageId,
        /// The image.
        image: ImageSpec,
    },
    /// Check that the file's digest equals Glance's `os_hash_value` (an adopted image, or
    /// an upload whose last step was interrupted), then patch.
    VerifyAndPatchImage {
        /// The image's id.
        id: ImageId,
        /// The bitstream file.
        source: String,
        /// Its sha256.
        sha256: String,
        /// The changes.
        patch: ImagePatch,
    },
    /// Patch properties and tags in place.
    PatchImage {
        /// The image's id.
        id: ImageId,
        /// The changes.
        patch: ImagePatch,
    },
    /// Create the new image first (as [`Operation::CreateImage`]), then delete the old
    /// one, so a bitstream is always in Glance.
    ReplaceImage {
        /// The old image's id.
        old_id: ImageId,
        /// The new image.
        image: ImageSpec,
    },
    /// `DELETE /v2/images/{id}`.
    DeleteImage {
        /// The image's id.
        id: ImageId,
    },
    /// Create the flavor and set its extra specs.
    CreateFlavor {
        /// The flavor.
        flavor: FlavorSpec,
    },
    /// Change the description and extra specs in place.
    UpdateFlavor {
        /// The flavor's id.
        id: FlavorId,
        /// The new description, when it changes.
        description: Option<Option<String>>,
        /// Extra specs set.
        set_specs: BTreeMap<String, String>,
        /// Extra specs removed.
        unset_specs: Vec<String>,
    },
    /// Delete the old flavor, then create the new one: Nova cannot change sizes, and names
    /// are unique. Running servers keep their copy of the old flavor.
    ReplaceFlavor {
        /// The old flavor's id.
        old_id: FlavorId,
        /// The new flavor.
        flavor: FlavorSpec,
    },
    /// `DELETE /flavors/{id}`.
    DeleteFlavor {
        /// The flavor's id.
        id: FlavorId,
    },
}

/// When an operation runs, in the order they run: the planner sorts its actions by it and
/// the executor runs the actions of one phase in parallel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Traits are created.
    Traits,
    /// Resource classes are created.
    ResourceClasses,
    /// Images are uploaded, finished, verified, patched or replaced.
    Images,
    /// Flavors are created, changed or replaced: after the traits and resource classes
    /// their extra specs name.
    Flavors,
    /// Flavors are deleted.
    FlavorDeletions,
    /// Images are deleted: last, after the flavors that might have used them.
    ImageDeletions,
}

impl Operation {
    /// The phase it runs in.
    pub fn phase(&self) -> Phase {
        match self {
            Operation::EnsureTrait { .. } => Phase::Traits,
            Operation::EnsureResourceClass { .. } => Phase::ResourceClasses,
            Operation::CreateImage { .. }
            | Operation::FinishImage { .. }
            | Operation::VerifyAndPatchImage { .. }
            | Operation::PatchImage { .. }
            | Operation::ReplaceImage { .. } => Phase::Images,
            Operation::CreateFlavor { .. }
            | Operation::UpdateFlavor { .. }
            | Operation::ReplaceFlavor { .. } => Phase::Flavors,
            Operation::DeleteFlavor { .. } => Phase::FlavorDeletions,
            Operation::DeleteImage { .. } => Phase::ImageDeletions,
        }
    }
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Action {
    /// Its position in the plan, from 0.
    pub id: usize,
    /// `+`, `~`, `-/+` or `-`.
    pub kind: Kind,
    /// What it is about.
    pub object: ObjectType,
    /// The object's name.
    pub name: String,
    /// Why, when it is not obvious (a replace, a delete, a finished upload); written as
    /// its text.
    pub reason: Option<Why>,
    /// What changes.
    pub changes: Vec<Change>,
    /// Actions that must succeed first.
    pub depends_on: Vec<usize>,
    /// Objects of the desired state that refer to this one (`flavor fpga.aes`,
    /// `host group rack-a`).
    pub used_by: Vec<String>,
    /// What the executor does.
    pub operation: Operation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_run_traits_classes_images_flavors_then_deletions_flavors_first() {
        let image = ImageSpec {
            name: "i".into(),
            visibility: "private".into(),
            tags: vec![],
            properties: BTreeMap::new(),
            source: "i.bin".into(),
            sha256: "0".repeat(64),
            size: 1,
        };
        let flavor = FlavorSpec {
            name: "f".into(),
            shape: crate::observed::FlavorShape {
                vcpus: 1,
                ram: 1,
                disk: 1,
                ephemeral: 0,
                swap: 0,
                is_public: true,
                description: None,
            },
            extra_specs: BTreeMap::new(),
            id: None,
        };
        let id = || ImageId::from("id");
        let flavor_id = || FlavorId::from("id");
        let in_order = [
            (Operation::EnsureTrait { name: "T".into() }, Phase::Traits),
            (
                Operation::EnsureResourceClass { name: "R".into() },
                Phase::ResourceClasses,
            ),
            (
                Operation::CreateImage {
                    image: image.clone(),
                },
                Phase::Images,
            ),
            (
                Operation::FinishImage {
                    id: id(),
                    image: image.clone(),
                },
                Phase::Images,
            ),
            (
                Operation::VerifyAndPatchImage {
                    id: id(),
                    source: "i.bin".into(),
                    sha256: "0".repeat(64),
                    patch: ImagePatch::default(),
                },
                Phase::Images,
            ),
            (
                Operation::PatchImage {
                    id: id(),
                    patch: ImagePatch::default(),
                },
                Phase::Images,
            ),
            (
                Operation::ReplaceImage {
                    old_id: id(),
                    image,
                },
                Phase::Images,
            ),
            (
                Operation::CreateFlavor {
                    flavor: flavor.clone(),
                },
                Phase::Flavors,
            ),
            (
                Operation::UpdateFlavor {
                    id: flavor_id(),
                    description: None,
                    set_specs: BTreeMap::new(),
                    unset_specs: vec![],
                },
                Phase::Flavors,
            ),
            (
                Operation::ReplaceFlavor {
                    old_id: flavor_id(),
                    flavor,
                },
                Phase::Flavors,
            ),
            (
                Operation::DeleteFlavor { id: flavor_id() },
                Phase::FlavorDeletions,
            ),
            (Operation::DeleteImage { id: id() }, Phase::ImageDeletions),
        ];
        for (op, phase) in &in_order {
            assert_eq!(op.phase(), *phase, "{op:?}");
        }
        let phases: Vec<Phase> = in_order.iter().map(|(op, _)| op.phase()).collect();
        assert!(phases.is_sorted(), "{phases:?}");
        assert!(Phase::Traits < Phase::ResourceClasses);
        assert!(Phase::ResourceClasses < Phase::Images);
        assert!(Phase::Images < Phase::Flavors);
        assert!(Phase::Flavors < Phase::FlavorDeletions);
        assert!(Phase::FlavorDeletions < Phase::ImageDeletions);
    }
}
