//! Replayed plans, in the style of cargo's and uv's UI tests: each folder of
//! `tests/scenarios/` is a desired state (`desired/`, a plain site folder), a saved
//! observation and the plan the pure planner must make from them (`plan.snap`). A folder
//! with `observed.json` (what `fpga-sync observe --format json` prints; an optional
//! `settings.json` sets `prune`, `allow_mass_delete`, `max_delete_share`, `site`) is
//! planned by `plan::plan`, rendered as `fpga-sync plan` shows it with the operations
//! below, and then applied to the observation in memory and planned again, which must
//! find nothing to do. A folder with `host.json` (a `HostObserved`) is planned by the host
//! planner, with targets from the headers of the desired bitstream files, rendered as
//! `fpga-sync plan --host` shows it with what each provider will hold. No cloud, no
//! hardware, no network: observations are files.
//!
//! Every scenario runs and every mismatch is reported with a diff. `UPDATE_SCENARIOS=1`
//! rewrites the snapshots that differ (never when `CI` is set); `SCENARIO=<part of a name>`
//! runs only the matching ones. How to add one: `tests/scenarios/README.md`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use fpga_sync::host::discover::targets;
use fpga_sync::host::plan::observed::{self, HostObserved};
use fpga_sync::host::plan::provider::ProviderTarget;
use fpga_sync::host::plan::{HostPlan, SlotAction, fleet, render as host_render};
use fpga_sync::markers::{IMAGE_STATE, STATE_COMPLETE};
use fpga_sync::observed::{
    FlavorId, ImageId, ImageStatus, Observed, ObservedFlavor, ObservedImage,
};
use fpga_sync::plan::{
    self, Action, FlavorSpec, ImagePatch, ImageSpec, Operation, Plan, PlanInput, PlanSettings,
    render,
};
use fpga_sync::reconcile::Loaded;
use fpga_sync::source::RepoSpec;
use serde::Deserialize;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios");

/// The files a scenario folder may hold.
const KNOWN: [&str; 6] = [
    "README.md",
    "desired",
    "observed.json",
    "host.json",
    "settings.json",
    "plan.snap",
];

#[test]
fn every_scenario_plans_as_its_snapshot_says() {
    let filter = std::env::var("SCENARIO").ok();
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    let asked = std::env::var_os("UPDATE_SCENARIOS").is_some();
    let update = asked && !ci;
    let mut failures = Vec::new();
    let mut ran = 0;
    for dir in scenario_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        ran += 1;
        let (text, mut problems) = match replay(&name, &dir) {
            Ok(done) => done,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let snap = dir.join("plan.snap");
        let expected = std::fs::read_to_string(&snap).ok();
        if expected.as_deref() != Some(text.as_str()) {
            if update {
                std::fs::write(&snap, &text).unwrap();
                eprintln!("updated {}", snap.display());
            } else {
                let how = if asked {
                    "UPDATE_SCENARIOS is ignored because CI is set"
                } else {
                    "rerun with UPDATE_SCENARIOS=1 to accept it"
                };
                problems.push(match &expected {
                    Some(old) => format!(
                        "the plan differs from plan.snap ({how}):\n{}",
                        similar::TextDiff::from_lines(old.as_str(), text.as_str())
                            .unified_diff()
                            .context_radius(3)
                            .header("plan.snap", "planned")
                    ),
                    None => {
                        format!("no plan.snap yet ({how}, then review it); the plan is:\n{text}")
                    }
                });
            }
        }
        failures.extend(problems.into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(ran > 0, "no scenario in {ROOT} matches SCENARIO={filter:?}");
    assert!(
        failures.is_empty(),
        "{} of {ran} scenario(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn scenario_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(ROOT)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Plans one scenario: the rendered plan, and what is wrong besides its snapshot.
fn replay(name: &str, dir: &Path) -> Result<(String, Vec<String>), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let file = entry.map_err(|e| e.to_string())?.file_name();
        let file = file.to_string_lossy();
        if !KNOWN.contains(&file.as_ref()) {
            return Err(format!(
                "`{file}` is not a scenario file (expected {})",
                KNOWN.join(", ")
            ));
        }
    }
    if !dir.join("README.md").is_file() {
        return Err("no README.md saying what the scenario shows".into());
    }
    let cache = tempfile::tempdir().unwrap();
    let loaded = load(dir, cache.path())?;
    match (
        dir.join("observed.json").is_file(),
        dir.join("host.json").is_file(),
    ) {
        (true, false) => central(name, dir, &loaded, cache.path()),
        (false, true) => host(name, dir, &loaded, cache.path()).map(|text| (text, Vec::new())),
        _ => Err("needs exactly one of observed.json (central) and host.json (host)".into()),
    }
}

/// `desired/` through the normal loader, as the files on disk (the folder is inside this
/// repository's git checkout, whose commit must not be what is read).
pub(crate) fn load(dir: &Path, cache: &Path) -> Result<Loaded, String> {
    let spec = RepoSpec {
        repo: dir.join("desired").to_string_lossy().into_owned(),
        reference: None,
        dir: None,
        worktree: true,
        cache_dir: cache.to_owned(),
        ssh: Default::default(),
        require_signed_by: None,
    };
    fpga_sync::reconcile::load(&spec).map_err(|diagnostics| {
        let lines: Vec<String> = diagnostics
            .iter()
            .map(|d| format!("  {}", d.message))
            .collect();
        format!("desired/ does not load:\n{}", lines.join("\n"))
    })
}

/// A JSON file as `T`, strictly: it must say what `T` writes back, so a misspelt field
/// is an error rather than ignored. `extra` keys are dropped first.
fn read_json<T>(path: &Path, extra: &[&str]) -> Result<T, String>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    if let Some(object) = value.as_object_mut() {
        for key in extra {
            object.shift_remove(*key);
        }
    }
    let read: T = serde_path_to_error::deserialize(value.clone())
        .map_err(|e| format!("{file}: at `{}`: {}", e.path(), e.inner()))?;
    let written = serde_json::to_value(&read).unwrap();
    if written != value {
        let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(&sorted(v)).unwrap();
        return Err(format!(
            "{file} does not read back as written (a field misspelt or missing, or a list out of the order it is written in):\n{}",
            similar::TextDiff::from_lines(&pretty(&value), &pretty(&written))
                .unified_diff()
                .header(&file, "as read")
        ));
    }
    Ok(read)
}

/// `value` with the keys of every object in order, so two values diff by content.
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            serde_json::Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(sorted).collect())
        }
        other => other.clone(),
    }
}

/// `settings.json`: the planner settings `plan` takes as flags.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    site: String,
    prune: bool,
    max_delete_share: f64,
    allow_mass_delete: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let d = PlanSettings::default();
        Settings {
            site: d.site,
            prune: d.prune,
            max_delete_share: d.max_delete_share,
            allow_mass_delete: d.allow_mass_delete,
        }
    }
}

impl Settings {
    fn read(dir: &Path) -> Result<Settings, String> {
        let path = dir.join("settings.json");
        if !path.is_file() {
            return Ok(Settings::default());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("settings.json: {e}"))
    }

    fn plan_settings(&self) -> PlanSettings {
        PlanSettings {
            site: self.site.clone(),
            prune: self.prune,
            max_delete_share: self.max_delete_share,
            allow_mass_delete: self.allow_mass_delete,
        }
    }

    /// The flags of `fpga-sync plan` that give these settings.
    fn flags(&self) -> String {
        let d = Settings::default();
        let mut out = String::new();
        if self.site != d.site {
            let _ = write!(out, " --site {}", self.site);
        }
        if self.prune {
            out.push_str(" --prune");
        }
        if self.max_delete_share != d.max_delete_share {
            let _ = write!(out, " --max-delete-share {}", self.max_delete_share);
        }
        if self.allow_mass_delete {
            out.push_str(" --allow-mass-delete");
        }
        out
    }
}

fn central(
    name: &str,
    dir: &Path,
    loaded: &Loaded,
    cache: &Path,
) -> Result<(String, Vec<String>), String> {
    let observed: Observed = read_json(&dir.join("observed.json"), &["format_version", "cloud"])?;
    let settings = Settings::read(dir)?;
    let head = format!(
        "fpga-sync plan{}: scenario `{name}` (desired/ → observed.json)",
        settings.flags()
    );
    let planned = |observed: &Observed| {
        plan::plan(&PlanInput {
            desired: &loaded.desired,
            digests: &loaded.digests,
            observed,
            settings: settings.plan_settings(),
            live_lease: None,
        })
    };
    let plan = match planned(&observed) {
        Ok(plan) => plan,
        Err(problems) => {
            let mut text = format!("{head}\n\nThe plan cannot be made:\n");
            for p in problems {
                let _ = writeln!(text, "  error: {}\n    help: {}", p.message, p.help);
            }
            return Ok((text, Vec::new()));
        }
    };
    let mut text = render::human(&plan, &head, false);
    if !loaded.desired.host_groups.is_empty() {
        let targets = targets::targets(&loaded.desired, &loaded.digests, &loaded.snapshot, cache).0;
        let slots = fleet::fleet(
            &loaded.desired,
            &targets,
            &observed.providers,
            &BTreeMap::new(),
        );
        text.push_str(&fleet::render(&slots, false));
    }
    if plan.has_changes() {
        text.push_str("\nOperations, in order:\n");
        for a in &plan.actions {
            let _ = writeln!(text, "  {}", operation(a));
        }
    }
    // The plan, carried out on the observation, must leave nothing to do.
    let mut after = observed.clone();
    apply(&mut after, &plan);
    let mut problems = Vec::new();
    match planned(&after) {
        Ok(again) if !again.has_changes() => text.push_str(
            "\nConverges: observed.json with this plan applied plans no further change.\n",
        ),
        Ok(again) => problems.push(format!(
            "does not converge: with the plan applied, the next plan is\n{}",
            render::human(&again, "(second plan)", false)
        )),
        Err(e) => problems.push(format!(
            "does not converge: with the plan applied, the next plan is refused: {e:?}"
        )),
    }
    Ok((text, problems))
}

fn host(name: &str, dir: &Path, loaded: &Loaded, cache: &Path) -> Result<String, String> {
    let observed: HostObserved = read_json(&dir.join("host.json"), &[])?;
    // As the host pipeline does: broken headers first, then the assignments' problems.
    let (targets, mut problems) =
        targets::targets(&loaded.desired, &loaded.digests, &loaded.snapshot, cache);
    let (plan, more) = observed::plan(&loaded.desired, &targets, &observed);
    problems.extend(more);
    let head = format!(
        "fpga-sync plan --host {}{}: scenario `{name}` (desired/ → host.json)",
        observed.host,
        if observed.force { " --allow-busy" } else { "" }
    );
    let mut text = host_render::human(&plan, &problems, &head);
    text.push_str(&placement_writes(&plan));
    Ok(text)
}

/// What each provider will hold, which the host renderer only names.
fn placement_writes(plan: &HostPlan) -> String {
    let mut out = String::from("\nPlacement writes:\n");
    let mut any = false;
    for s in &plan.slots {
        let Some(provider) = &s.provider_name else {
            continue;
        };
        let program = matches!(s.action, SlotAction::Program { .. });
        let writes = [
            ("first, withdraw", s.withdraw.as_ref()),
            (
                "once verified",
                s.on_success
                    .as_ref()
                    .filter(|_| program || s.action == SlotAction::InSync { report: true }),
            ),
            ("if it fails", s.on_failure.as_ref().filter(|_| program)),
        ];
        if writes.iter().all(|(_, w)| w.is_none()) {
            continue;
        }
        any = true;
        let _ = writeln!(out, "  {} → provider `{provider}`", s.assignment.slot);
        for (when, target) in writes {
            if let Some(target) = target {
                let _ = writeln!(out, "    {when}: {}", provider_target(target));
            }
        }
    }
    for r in &plan.removals {
        any = true;
        let _ = writeln!(
            out,
            "  provider `{}` ({}): {}",
            r.provider.name,
            r.provider.uuid,
            if r.provider.allocations > 0 {
                "every inventory reserved; kept while allocations remain"
            } else {
                "deleted"
            }
        );
    }
    if !any {
        out.push_str("  none\n");
    }
    out
}

fn provider_target(t: &ProviderTarget) -> String {
    let inventories: Vec<String> = t
        .inventories
        .iter()
        .map(|(rc, i)| format!("{rc} total {} reserved {}", i.total, i.reserved))
        .collect();
    let mut out = inventories.join(", ");
    for trait_name in &t.traits {
        let _ = write!(out, "\n        {trait_name}");
    }
    out
}

/// One line per action: what the executor is told to do, with the ids and marks the human
/// rendering leaves out.
fn operation(a: &Action) -> String {
    let after = if a.depends_on.is_empty() {
        String::new()
    } else {
        let ids: Vec<String> = a.depends_on.iter().map(|d| format!("#{d}")).collect();
        format!(" (after {})", ids.join(", "))
    };
    let what = match &a.operation {
        Operation::EnsureTrait { name } => format!("ensure trait {name}"),
        Operation::EnsureResourceClass { name } => format!("ensure resource class {name}"),
        Operation::CreateImage { image } => format!("create {}", image_spec(image)),
        Operation::FinishImage { id, image } => {
            format!("upload into image {id}: {}", image_spec(image))
        }
        Operation::VerifyAndPatchImage {
            id,
            source,
            sha256,
            patch,
        } => format!(
            "check image {id} against `{source}` (sha256 {}), then patch: {}",
            &sha256[..12],
            image_patch(patch)
        ),
        Operation::PatchImage { id, patch } => {
            format!("patch image {id}: {}", image_patch(patch))
        }
        Operation::ReplaceImage { old_id, image } => {
            format!("create {}, then delete image {old_id}", image_spec(image))
        }
        Operation::DeleteImage { id } => format!("delete image {id}"),
        Operation::CreateFlavor { flavor } => format!("create {}", flavor_spec(flavor)),
        Operation::UpdateFlavor {
            id,
            description,
            set_specs,
            unset_specs,
        } => {
            let mut parts = Vec::new();
            match description {
                Some(Some(d)) => parts.push(format!("description {d:?}")),
                Some(None) => parts.push("remove description".into()),
                None => {}
            }
            parts.extend(set_specs.iter().map(|(k, v)| format!("set {k}={v}")));
            parts.extend(unset_specs.iter().map(|k| format!("unset {k}")));
            format!("update flavor {id}: {}", parts.join(", "))
        }
        Operation::ReplaceFlavor { old_id, flavor } => format!(
            "delete flavor {old_id}, then create {}",
            flavor_spec(flavor)
        ),
        Operation::DeleteFlavor { id } => format!("delete flavor {id}"),
    };
    format!("#{} {what}{after}", a.id)
}

fn image_spec(i: &ImageSpec) -> String {
    format!(
        "image `{}` ({}, tags {}, {} properties, {}={}) from `{}`, {} bytes, sha256 {}",
        i.name,
        i.visibility,
        i.tags.join(","),
        i.properties.len(),
        IMAGE_STATE,
        i.properties.get(IMAGE_STATE).map_or("-", String::as_str),
        i.source,
        i.size,
        &i.sha256[..12]
    )
}

fn image_patch(p: &ImagePatch) -> String {
    let mut parts: Vec<String> = p.set.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.extend(p.remove.iter().map(|k| format!("remove {k}")));
    parts.extend(p.add_tags.iter().map(|t| format!("tag +{t}")));
    parts.extend(p.remove_tags.iter().map(|t| format!("tag -{t}")));
    parts.extend(p.rename.iter().map(|n| format!("name {n}")));
    parts.extend(p.visibility.iter().map(|v| format!("visibility {v}")));
    parts.join(", ")
}

fn flavor_spec(f: &FlavorSpec) -> String {
    let specs: Vec<String> = f
        .extra_specs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "flavor `{}` ({} vCPU, {} MiB, {} GiB, {}) with {}",
        f.name,
        f.shape.vcpus,
        f.shape.ram,
        f.shape.disk,
        if f.shape.is_public {
            "public"
        } else {
            "private"
        },
        specs.join(", ")
    )
}

/// Carries `plan` out on `observed` as the executor would on the cloud, `fpga-sync
/// observe` reading the result: a model, kept to what the planner reads.
pub(crate) fn apply(observed: &mut Observed, plan: &Plan) {
    let mut next_id = 0;
    let mut new_id = |kind: &str| {
        next_id += 1;
        format!("{kind}-made-by-action-{next_id}")
    };
    for a in &plan.actions {
        match &a.operation {
            Operation::EnsureTrait { name } => observed.traits.push(name.clone()),
            Operation::EnsureResourceClass { name } => observed.resource_classes.push(name.clone()),
            Operation::CreateImage { image } => {
                let id = new_id("image");
                observed.images.push(uploaded(id, image));
            }
            Operation::FinishImage { id, image } => {
                let i = image_mut(observed, id);
                i.status = ImageStatus::Active;
                i.size = Some(image.size);
                i.properties
                    .insert(IMAGE_STATE.into(), STATE_COMPLETE.into());
            }
            Operation::VerifyAndPatchImage { id, patch, .. }
            | Operation::PatchImage { id, patch } => {
                let i = image_mut(observed, id);
                i.properties.extend(patch.set.clone());
                for k in &patch.remove {
                    i.properties.remove(k);
                }
                i.tags.extend(patch.add_tags.iter().cloned());
                i.tags.retain(|t| !patch.remove_tags.contains(t));
                i.tags.sort();
                if let Some(name) = &patch.rename {
                    i.name = Some(name.clone());
                }
                if let Some(v) = &patch.visibility {
                    i.visibility = Some(v.clone());
                }
            }
            Operation::ReplaceImage { old_id, image } => {
                let id = new_id("image");
                observed.images.push(uploaded(id, image));
                observed.images.retain(|i| &i.id != old_id);
            }
            Operation::DeleteImage { id } => observed.images.retain(|i| &i.id != id),
            Operation::CreateFlavor { flavor } => {
                let id = new_id("flavor");
                observed.flavors.push(created(id, flavor));
            }
            Operation::UpdateFlavor {
                id,
                description,
                set_specs,
                unset_specs,
            } => {
                let f = observed
                    .flavors
                    .iter_mut()
                    .find(|f| &f.id == id)
                    .expect("the plan updates an observed flavor");
                if let Some(d) = description {
                    f.shape.description.clone_from(d);
                }
                f.extra_specs.extend(set_specs.clone());
                for k in unset_specs {
                    f.extra_specs.remove(k);
                }
            }
            Operation::ReplaceFlavor { old_id, flavor } => {
                observed.flavors.retain(|f| &f.id != old_id);
                observed.other_flavors.retain(|_, id| id != old_id);
                let id = new_id("flavor");
                observed.flavors.push(created(id, flavor));
            }
            Operation::DeleteFlavor { id } => observed.flavors.retain(|f| &f.id != id),
        }
    }
    // As `observe` lists them.
    observed.traits.sort();
    observed.traits.dedup();
    observed.resource_classes.sort();
    observed.resource_classes.dedup();
    observed
        .images
        .sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    observed.flavors.sort_by(|a, b| a.name.cmp(&b.name));
}

fn image_mut<'a>(observed: &'a mut Observed, id: &ImageId) -> &'a mut ObservedImage {
    observed
        .images
        .iter_mut()
        .find(|i| &i.id == id)
        .expect("the plan names an observed image")
}

/// An image created, uploaded, checked and marked complete.
fn uploaded(id: String, spec: &ImageSpec) -> ObservedImage {
    let id = ImageId::from(id);
    let mut properties: BTreeMap<String, String> = spec.properties.clone();
    properties.insert(IMAGE_STATE.into(), STATE_COMPLETE.into());
    let mut tags = spec.tags.clone();
    tags.sort();
    ObservedImage {
        id,
        name: Some(spec.name.clone()),
        status: ImageStatus::Active,
        visibility: Some(spec.visibility.clone()),
        tags,
        size: Some(spec.size),
        os_hash_algo: Some("sha512".into()),
        os_hash_value: None,
        updated_at: None,
        properties,
    }
}

fn created(id: String, spec: &FlavorSpec) -> ObservedFlavor {
    let id = FlavorId::from(id);
    ObservedFlavor {
        id,
        name: spec.name.clone(),
        shape: fpga_sync::observed::FlavorShape {
            vcpus: spec.shape.vcpus,
            ram: spec.shape.ram,
            disk: spec.shape.disk,
            ephemeral: spec.shape.ephemeral,
            swap: spec.shape.swap,
            is_public: spec.shape.is_public,
            description: spec.shape.description.clone(),
        },
        extra_specs: spec.extra_specs.clone(),
    }
}
