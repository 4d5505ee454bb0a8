//! What `import` takes from the cloud, and the file names the downloads get. Pure.

use super::*;
use crate::observed::ImageStatus;

/// What an import takes from the cloud.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// Images to import, by name; `file` holds the path the data goes to.
    pub images: Vec<SelectedImage>,
    /// Custom traits, sorted.
    pub traits: Vec<String>,
    /// Custom resource classes, sorted.
    pub resource_classes: Vec<String>,
    /// Flavors with FPGA requests, by name.
    pub flavors: Vec<ObservedFlavor>,
    /// Lines for stderr: images left out and why, objects another site manages.
    pub notes: Vec<String>,
    /// Whether `--match` chose the objects (else everything was taken).
    pub filtered: bool,
}

/// An image to import and where its data goes.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectedImage {
    /// The image as observed.
    pub image: ObservedImage,
    /// Path of its data file relative to `--to`, `/`-separated.
    pub file: String,
}

impl std::ops::Deref for SelectedImage {
    type Target = ObservedImage;
    fn deref(&self) -> &ObservedImage {
        &self.image
    }
}

/// Chooses what to import: active, named images (the first of several with one name),
/// custom traits and resource classes (but the lease's and the rollout budgets', fpga-sync's
/// own), FPGA flavors; with `filter`, only names it matches, plus the custom traits and
/// resource classes the chosen flavors ask for (so that the imported state validates).
/// Pure.
pub fn select(observed: &Observed, filter: Option<&GlobSet>) -> Selection {
    let wanted = |name: &str| filter.is_none_or(|f| f.is_match(name));
    let mut out = Selection {
        filtered: filter.is_some(),
        ..Selection::default()
    };
    select_images(observed, &wanted, &mut out);
    let mut flavors: Vec<ObservedFlavor> = observed
        .flavors
        .iter()
        .filter(|f| wanted(&f.name))
        .cloned()
        .collect();
    flavors.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let used: BTreeSet<&str> = flavors
        .iter()
        .flat_map(|f| f.extra_specs.keys())
        .filter_map(|k| {
            k.split_once(':')
                .filter(|(group, _)| group.starts_with("trait") || group.starts_with("resources"))
                .map(|(_, name)| name)
        })
        .collect();
    let taken = |name: &str| wanted(name) || used.contains(name);
    out.traits = sorted(observed.traits.iter().filter(|t| taken(t)));
    out.resource_classes = sorted(observed.resource_classes.iter().filter(|r| {
        *r != markers::LEASE_CLASS && *r != crate::host::plan::rollout::UNIT_CLASS && taken(r)
    }));
    for f in &flavors {
        if let Some(site) = markers::flavor_site(&f.extra_specs) {
            out.notes
                .push(site_note("flavor", &one_line(&f.name), f.id.as_str(), site));
        }
    }
    out.flavors = flavors;
    out
}

/// The images of [`select`], each with an unused file name, and notes on those left out.
pub(super) fn select_images(
    observed: &Observed,
    wanted: &dyn Fn(&str) -> bool,
    out: &mut Selection,
) {
    let mut first_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut files = BTreeSet::new();
    let mut images: Vec<&ObservedImage> = observed.images.iter().collect();
    images.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    for image in images {
        let Some(name) = image.name.as_deref().filter(|n| !n.is_empty()) else {
            out.notes.push(format!(
                "warning: image {} has no name, so it cannot be a Bitstream; not imported",
                image.id
            ));
            continue;
        };
        if !wanted(name) {
            continue;
        }
        let shown = one_line(name);
        if image.status != ImageStatus::Active {
            out.notes.push(format!(
                "warning: image `{shown}` ({}) is `{}`: it has no data to import; not imported",
                image.id, image.status
            ));
            continue;
        }
        if let Some(first) = first_of.get(name) {
            out.notes.push(format!(
                "warning: image `{shown}` ({}) has the same name as image {first}, which is imported; bitstream names are unique, so rename or delete one by hand",
                image.id
            ));
            continue;
        }
        first_of.insert(name, image.id.as_str());
        if let Some(site) = markers::image_site(&image.properties) {
            out.notes
                .push(site_note("image", &shown, image.id.as_str(), site));
        }
        out.images.push(SelectedImage {
            image: image.clone(),
            file: format!(
                "{FILES_DIR}/{}",
                file_name(name, image.id.as_str(), &mut files)
            ),
        });
    }
}

pub(super) fn sorted<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = names.cloned().collect();
    v.sort();
    v
}

pub(super) fn site_note(what: &str, name: &str, id: &str, site: &str) -> String {
    format!(
        "note: {what} `{name}` ({id}) is managed by fpga-sync site `{}`: plan with `--site {}` to keep it there (with another site, `adopt: true` takes it over)",
        one_line(site),
        one_line(site)
    )
}

/// A safe, unused file name for an image's data: the name's `.gbs`, `.xclbin` or `.bin`
/// suffix kept (else `.bin` added), other characters than letters, digits, `.`, `-` and
/// `_` replaced by `_`, and the image id's start added when the name is taken. Pure.
pub fn file_name(image_name: &str, id: &str, taken: &mut BTreeSet<String>) -> String {
    let lower = image_name.to_ascii_lowercase();
    let (stem, ext) = match BITSTREAM_SUFFIXES.iter().find(|s| lower.ends_with(*s)) {
        Some(s) => (
            &image_name[..image_name.len() - s.len()],
            &image_name[image_name.len() - s.len()..],
        ),
        None => (image_name, ".bin"),
    };
    let mut safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    safe = safe.trim_start_matches('.').to_owned();
    safe.truncate(MAX_STEM);
    if safe.is_empty() {
        safe = "image".into();
    }
    let short_id: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let mut name = format!("{safe}{ext}");
    let mut n = 1;
    while taken.contains(&name.to_ascii_lowercase()) {
        name = match n {
            1 => format!("{safe}-{short_id}{ext}"),
            _ => format!("{safe}-{short_id}-{n}{ext}"),
        };
        n += 1;
    }
    taken.insert(name.to_ascii_lowercase());
    name
}
