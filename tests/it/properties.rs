//! Property tests of the central planner (`plan::plan`): for generated desired states
//! (bitstreams with changing content, adopted or not; flavors; traits; resource classes)
//! and generated clouds (images of this site, of another site and of nobody, in every
//! Glance status and every upload state, with drifted properties; flavors marked, unmarked
//! and interrupted; some traits and classes already there), with and without `--prune`:
//!
//! - the plan is deterministic: the same inputs give the same plan;
//! - it converges: carried out on the observation (the scenarios' in-memory model of the
//!   executor and of `observe`), the next plan is empty;
//! - nothing without the site's mark is ever updated, replaced or deleted, except what
//!   the repository says to adopt and a flavor carrying fpga-sync's own id.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256 here).

use std::collections::BTreeMap;

use fpga_sync::desired::{self, FileFact, RawContent, RawFile};
use fpga_sync::markers::{
    self, FLAVOR_OWNER_SPEC, IMAGE_OWNER, IMAGE_SHA256, IMAGE_STATE, STATE_COMPLETE,
    STATE_UPLOADING,
};
use fpga_sync::observed::{
    FlavorId, FlavorShape, ImageId, ImageStatus, Observed, ObservedFlavor, ObservedImage,
};
use fpga_sync::plan::{self, Operation, Plan, PlanInput, PlanSettings};
use fpga_sync::source::FileDigest;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const SITE: &str = "prop";

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bs_uuid(i: usize) -> String {
    format!("{:08x}-0000-4000-8000-0000000000aa", i + 1)
}

fn content(i: usize, version: u8) -> Vec<u8> {
    format!("bitstream {i} version {version}").into_bytes()
}

#[derive(Clone, Debug)]
struct WantBitstream {
    version: u8,
    adopt: bool,
    crypto_tag: bool,
}

#[derive(Clone, Debug)]
struct WantFlavor {
    vcpus: u8,
    with_trait: bool,
    description: bool,
    adopt: bool,
}

#[derive(Clone, Debug)]
struct SeenImage {
    /// 0: this site, 1: another site, 2: nobody.
    owner: u8,
    /// A desired bitstream (index), or none of them when past the end.
    bitstream: u8,
    /// The content version; 3: content the repository never had.
    version: u8,
    /// queued, saving, active, killed.
    status: u8,
    /// No mark, uploading, complete.
    state: u8,
    /// A property changed since (by hand or by an older repository).
    drift: bool,
    renamed: bool,
}

#[derive(Clone, Debug)]
struct SeenFlavor {
    /// 0: this site, 1: another site, 2: unmarked with fpga-sync's id for its name (an
    /// interrupted creation), 3: unmarked (someone else's).
    owner: u8,
    /// A desired flavor (index), or another name when past the end.
    name: u8,
    vcpus: u8,
    with_trait: bool,
}

#[derive(Clone, Debug)]
struct World {
    bitstreams: Vec<WantBitstream>,
    flavors: Vec<WantFlavor>,
    images: Vec<SeenImage>,
    seen_flavors: Vec<SeenFlavor>,
    traits_there: bool,
    prune: bool,
    allow_mass_delete: bool,
}

fn world() -> impl Strategy<Value = World> {
    let bitstream = (0u8..3, prop::bool::weighted(0.2), any::<bool>()).prop_map(
        |(version, adopt, crypto_tag)| WantBitstream {
            version,
            adopt,
            crypto_tag,
        },
    );
    let flavor = (
        1u8..4,
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(vcpus, with_trait, description, adopt)| WantFlavor {
            vcpus,
            with_trait,
            description,
            adopt,
        });
    let image = (
        0u8..3,
        0u8..5,
        0u8..4,
        0u8..4,
        0u8..3,
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(owner, bitstream, version, status, state, drift, renamed)| SeenImage {
                owner,
                bitstream,
                version,
                status,
                state,
                drift,
                renamed,
            },
        );
    let seen_flavor =
        (0u8..4, 0u8..4, 1u8..4, any::<bool>()).prop_map(|(owner, name, vcpus, with_trait)| {
            SeenFlavor {
                owner,
                name,
                vcpus,
                with_trait,
            }
        });
    (
        prop::collection::vec(bitstream, 0..4),
        prop::collection::vec(flavor, 0..3),
        prop::collection::vec(image, 0..8),
        prop::collection::vec(seen_flavor, 0..4),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                bitstreams,
                flavors,
                images,
                seen_flavors,
                traits_there,
                prune,
                allow_mass_delete,
            )| World {
                bitstreams,
                flavors,
                images,
                seen_flavors,
                traits_there,
                prune,
                allow_mass_delete,
            },
        )
}

/// The desired state of `w`, parsed and checked as the loader does, and its digests.
fn desired(w: &World) -> (desired::Desired, BTreeMap<String, FileDigest>) {
    let mut yaml = String::from(
        "apiVersion: fpga-sync/v1\nkind: Trait\nname: CUSTOM_PROP_T\n---\napiVersion: fpga-sync/v1\nkind: ResourceClass\nname: CUSTOM_PROP_RC\n",
    );
    let mut digests = BTreeMap::new();
    let mut facts = BTreeMap::new();
    for (i, b) in w.bitstreams.iter().enumerate() {
        let tags = if b.crypto_tag { "[crypto]" } else { "[]" };
        yaml.push_str(&format!(
            "---\napiVersion: fpga-sync/v1\nkind: Bitstream\nname: bs{i}\nfile: files/bs{i}.bin\ntags: {tags}\nadopt: {}\nmetadata:\n  bs-name: bs{i}\n  bs-uuid: {u}\n  vendor: Intel\n  board: PAC-A10\n  version: \"1\"\n  driver_ver: \"2.1\"\n  driver_path: /opt/opae\n  function_uuid: {u}\n",
            b.adopt,
            u = bs_uuid(i)
        ));
        let bytes = content(i, b.version);
        let digest = FileDigest {
            sha256: sha(&bytes),
            size: bytes.len() as u64,
        };
        facts.insert(
            format!("files/bs{i}.bin"),
            FileFact::Present {
                size: digest.size,
                sha256: Some(digest.sha256.clone()),
            },
        );
        digests.insert(format!("bs{i}"), digest);
    }
    for (i, f) in w.flavors.iter().enumerate() {
        yaml.push_str(&format!(
            "---\napiVersion: fpga-sync/v1\nkind: Flavor\nname: flavor{i}\nvcpus: {}\nram: 1024\ndisk: 10\nadopt: {}\n{}extra_specs:\n  resources:CUSTOM_PROP_RC: 1\n{}",
            f.vcpus,
            f.adopt,
            if f.description { "description: generated\n" } else { "" },
            if f.with_trait { "  trait:CUSTOM_PROP_T: required\n" } else { "" },
        ));
    }
    let parsed = desired::parse(vec![RawFile {
        path: "site.yaml".into(),
        content: RawContent::Bytes(yaml.clone().into_bytes()),
    }]);
    let requests = parsed.file_requests();
    let facts = requests
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                facts.get(&r.path).cloned().unwrap_or(FileFact::Missing),
            )
        })
        .collect();
    let outcome = desired::finish(parsed, &facts);
    let problems: Vec<String> = outcome
        .diagnostics
        .iter()
        .map(|d| d.message.clone())
        .collect();
    let desired = outcome
        .desired
        .unwrap_or_else(|| panic!("the generated desired state is invalid: {problems:#?}\n{yaml}"));
    (desired, digests)
}

/// The cloud of `w`.
fn observed(w: &World) -> Observed {
    let mut o = Observed::default();
    for (j, seen) in w.images.iter().enumerate() {
        let index = usize::from(seen.bitstream);
        let mut properties = BTreeMap::new();
        match seen.owner {
            0 => drop(properties.insert(IMAGE_OWNER.to_owned(), SITE.to_owned())),
            1 => drop(properties.insert(IMAGE_OWNER.to_owned(), "elsewhere".to_owned())),
            _ => {}
        }
        let uuid = if index < w.bitstreams.len() {
            bs_uuid(index)
        } else {
            format!("{:08x}-0000-4000-8000-0000000000ff", j + 100)
        };
        properties.insert("bs-uuid".into(), uuid);
        properties.insert("bs-name".into(), format!("bs{index}"));
        let sha256 = if seen.version < 3 {
            sha(&content(index, seen.version))
        } else {
            "f".repeat(64)
        };
        properties.insert(IMAGE_SHA256.into(), sha256);
        match seen.state {
            1 => drop(properties.insert(IMAGE_STATE.into(), STATE_UPLOADING.into())),
            2 => drop(properties.insert(IMAGE_STATE.into(), STATE_COMPLETE.into())),
            _ => {}
        }
        if seen.drift {
            properties.insert("hw_note".into(), "changed by hand".into());
        }
        let status = match seen.status {
            0 => ImageStatus::Queued,
            1 => ImageStatus::Saving,
            2 => ImageStatus::Active,
            _ => ImageStatus::Killed,
        };
        o.images.push(ObservedImage {
            id: ImageId::from(format!("img-{j}")),
            name: Some(if seen.renamed {
                format!("old-{j}")
            } else {
                format!("bs{index}")
            }),
            size: (status == ImageStatus::Active).then_some(32),
            status,
            visibility: Some("private".into()),
            tags: vec!["FPGA".into()],
            os_hash_algo: None,
            os_hash_value: None,
            updated_at: None,
            properties,
        });
    }
    let mut other_names = 0;
    for (j, seen) in w.seen_flavors.iter().enumerate() {
        let index = usize::from(seen.name);
        let name = if index < w.flavors.len() {
            format!("flavor{index}")
        } else {
            other_names += 1;
            format!("stranger{other_names}")
        };
        if o.flavors.iter().any(|f| f.name == name) || o.other_flavors.contains_key(&name) {
            continue; // Nova's names are unique.
        }
        let mut extra_specs =
            BTreeMap::from([("resources:CUSTOM_PROP_RC".to_owned(), "1".to_owned())]);
        if seen.with_trait {
            extra_specs.insert("trait:CUSTOM_PROP_T".into(), "required".into());
        }
        match seen.owner {
            0 | 1 => {
                let site = if seen.owner == 0 { SITE } else { "elsewhere" };
                extra_specs.insert(FLAVOR_OWNER_SPEC.into(), site.into());
                o.flavors.push(ObservedFlavor {
                    id: FlavorId::from(format!("fl-{j}")),
                    name,
                    shape: FlavorShape {
                        vcpus: u32::from(seen.vcpus),
                        ram: 1024,
                        disk: 10,
                        ephemeral: 0,
                        swap: 0,
                        is_public: true,
                        description: None,
                    },
                    extra_specs,
                });
            }
            2 => {
                let id = markers::flavor_id(SITE, &name);
                o.other_flavors.insert(name, FlavorId::from(id));
            }
            _ => {
                o.other_flavors
                    .insert(name, FlavorId::from(format!("fl-{j}")));
            }
        }
    }
    if w.traits_there {
        o.traits.push("CUSTOM_PROP_T".into());
        o.resource_classes.push("CUSTOM_PROP_RC".into());
    }
    o.images
        .sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    o.flavors.sort_by(|a, b| a.name.cmp(&b.name));
    o
}

/// Every object a plan changes or deletes that fpga-sync does not own must be one the
/// repository adopts, or an interrupted creation of fpga-sync's own.
fn check_marks(w: &World, d: &desired::Desired, o: &Observed, plan: &Plan) -> Result<(), String> {
    let image = |id: &ImageId| o.images.iter().find(|i| &i.id == id);
    let adopted_image = |id: &ImageId| {
        image(id).is_some_and(|i| {
            d.bitstreams.values().any(|b| {
                b.spec.adopt
                    && i.properties.get("bs-uuid") == Some(&b.spec.metadata.bs_uuid.to_string())
            })
        })
    };
    let owned_image =
        |id: &ImageId| image(id).is_some_and(|i| markers::image_site(&i.properties) == Some(SITE));
    let flavor_ok = |id: &FlavorId, name: &str| {
        let marked = o
            .flavors
            .iter()
            .any(|f| &f.id == id && markers::flavor_site(&f.extra_specs) == Some(SITE));
        let adopted = d.flavors.get(name).is_some_and(|f| f.spec.flavor.adopt);
        let ours = id.as_str() == markers::flavor_id(SITE, name);
        marked || adopted || ours
    };
    for a in &plan.actions {
        let ok = match &a.operation {
            Operation::FinishImage { id, .. }
            | Operation::PatchImage { id, .. }
            | Operation::DeleteImage { id } => owned_image(id),
            Operation::VerifyAndPatchImage { id, .. } => owned_image(id) || adopted_image(id),
            Operation::ReplaceImage { old_id, .. } => owned_image(old_id),
            Operation::UpdateFlavor { id, .. } => flavor_ok(id, &a.name),
            Operation::ReplaceFlavor { old_id, .. } | Operation::DeleteFlavor { id: old_id } => {
                flavor_ok(old_id, &a.name)
            }
            Operation::EnsureTrait { .. }
            | Operation::EnsureResourceClass { .. }
            | Operation::CreateImage { .. }
            | Operation::CreateFlavor { .. } => true,
        };
        if !ok {
            return Err(format!(
                "action {} touches an object without the site's mark: {a:#?}\n{w:#?}",
                a.id
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_central_plan_is_deterministic_converges_and_touches_only_what_the_site_owns(w in world()) {
        let (d, digests) = desired(&w);
        let o = observed(&w);
        let settings = || PlanSettings {
            site: SITE.into(),
            prune: w.prune,
            max_delete_share: 0.5,
            allow_mass_delete: w.allow_mass_delete,
        };
        let input = |observed| PlanInput { desired: &d, digests: &digests, observed, settings: settings(), live_lease: None };
        let first = plan::plan(&input(&o));
        let again = plan::plan(&input(&o));
        prop_assert_eq!(format!("{first:?}"), format!("{again:?}"), "not deterministic");
        let Ok(plan) = first else {
            // Refused (a collision with someone else's object, the mass-delete guard):
            // nothing is done, which is safe.
            return Ok(());
        };
        check_marks(&w, &d, &o, &plan).map_err(TestCaseError::fail)?;
        let mut after = o.clone();
        crate::scenarios::apply(&mut after, &plan);
        match plan::plan(&input(&after)) {
            Ok(next) => prop_assert!(
                !next.has_changes(),
                "does not converge: after\n{}\nthe next plan is\n{}",
                plan::render::human(&plan, "plan", false),
                plan::render::human(&next, "next", false)
            ),
            Err(problems) => prop_assert!(false, "the next plan is refused: {problems:?}"),
        }
    }
}

// ---- The host planner ----------------------------------------------------------------
//
// From the `host-in-sync` scenario (a card with its shell and one region assigned
// `pac-a10-aes128-1.0`, its provider verified), generated variations: what the region
// carries (nothing, its assignment, another image, an unknown id), whether it is busy,
// whether the shell is there, the provider (absent, verified, withdrawn, without
// fpga-sync's mark, with someone else's trait) and its consumers, a provider of a device
// that is gone (fpga-sync's or not), `--force`. Then:
//
// - the plan is deterministic;
// - no provider without fpga-sync's mark (`CUSTOM_FPGA_SYNC_MANAGED`) is written or
//   removed, and no busy slot is programmed unless forced;
// - carried out (programs succeed and read back; Placement writes as
//   `report::write_device_provider` makes them: fpga-sync's unwanted traits removed,
//   others kept, the wanted ones added, inventories replaced), the next plan has nothing
//   to do.

use fpga_sync::host::driver::{Busy, Loaded};
use fpga_sync::host::id::Id128;
use fpga_sync::host::plan::observed::{self as host_observed, HostObserved};
use fpga_sync::host::plan::provider::{self as host_provider, OWNER_TRAIT, ProviderTarget};
use fpga_sync::host::plan::{HostPlan, ProviderState, SlotAction};

#[derive(Clone, Debug)]
struct HostWorld {
    /// 0: nothing, 1: its assignment, 2: another image, 3: an unknown id.
    region: u8,
    region_busy: bool,
    shell_there: bool,
    /// 0: absent, 1: verified, 2: withdrawn, 3: without fpga-sync's mark, 4: with a
    /// trait of someone else.
    provider: u8,
    consumers: bool,
    /// 0: none, 1: fpga-sync's provider of a device that is gone, 2: someone else's.
    gone: u8,
    force: bool,
}

fn host_world() -> impl Strategy<Value = HostWorld> {
    (
        0u8..4,
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.8),
        0u8..5,
        prop::bool::weighted(0.3),
        0u8..3,
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(region, region_busy, shell_there, provider, consumers, gone, force)| HostWorld {
                region,
                region_busy,
                shell_there,
                provider,
                consumers,
                gone,
                force,
            },
        )
}

struct HostBase {
    loaded: fpga_sync::reconcile::Loaded,
    targets: BTreeMap<String, fpga_sync::host::plan::assignment::Target>,
    observed: HostObserved,
    _cache: tempfile::TempDir,
}

fn host_base() -> HostBase {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/host-in-sync");
    let cache = tempfile::tempdir().unwrap();
    let loaded = crate::scenarios::load(&dir, cache.path()).unwrap();
    let targets = fpga_sync::host::discover::targets::targets(
        &loaded.desired,
        &loaded.digests,
        &loaded.snapshot,
        cache.path(),
    )
    .0;
    let observed: HostObserved =
        serde_json::from_str(&std::fs::read_to_string(dir.join("host.json")).unwrap()).unwrap();
    HostBase {
        loaded,
        targets,
        observed,
        _cache: cache,
    }
}

fn host_observation(base: &HostBase, w: &HostWorld) -> HostObserved {
    let mut o = base.observed.clone();
    o.force = w.force;
    let assigned = base.targets["pac-a10-aes128-1.0"].identity.id;
    let other = base
        .targets
        .values()
        .map(|t| t.identity.id)
        .find(|id| *id != assigned)
        .unwrap();
    for result in o.devices.values_mut() {
        let devices = result.as_mut().unwrap();
        let device = &mut devices[0];
        if !w.shell_there {
            device.loaded = Loaded::Empty;
        }
        let region = &mut device.regions[0];
        region.loaded = match w.region {
            0 => Loaded::Empty,
            1 => Loaded::Id(assigned),
            2 => Loaded::Id(other),
            _ => Loaded::Id(Id128(0x1234_5678_9abc_4def_8000_0000_0000_0001)),
        };
        region.busy = if w.region_busy {
            Busy::InUse("2 open contexts".into())
        } else {
            Busy::Free
        };
    }
    let provider = &mut o.providers[0];
    provider.allocations = usize::from(w.consumers);
    let function = provider
        .traits
        .iter()
        .find(|t| t.starts_with("CUSTOM_FPGA_FUNCTION_ID_"))
        .cloned()
        .unwrap();
    match w.provider {
        0 => o.providers.clear(),
        2 => {
            provider.traits.remove(&function);
            provider.traits.remove(host_provider::VERIFIED_TRAIT);
            provider
                .traits
                .insert(host_provider::WITHDRAWN_TRAIT.into());
            for i in provider.inventories.values_mut() {
                i.reserved = i.total;
            }
        }
        3 => {
            provider.traits.remove(OWNER_TRAIT);
        }
        4 => {
            provider.traits.insert("CUSTOM_SOMEONE_ELSES".into());
        }
        _ => {}
    }
    if w.gone > 0 {
        let mut traits = std::collections::BTreeSet::from(["CUSTOM_FPGA".to_owned()]);
        if w.gone == 1 {
            traits.insert(OWNER_TRAIT.into());
        }
        o.providers.push(ProviderState {
            uuid: "5f0c5a52-1f3c-4a34-8d51-2f8e3b7f5dff".into(),
            name: format!("{}_0000:99:00.0", o.host),
            traits,
            inventories: BTreeMap::new(),
            allocations: 0,
            consumers: Vec::new(),
        });
    }
    o
}

/// Writes `want` as `report::write_device_provider` does.
fn write_provider(
    providers: &mut Vec<ProviderState>,
    want: &ProviderTarget,
    owned: &dyn Fn(&str) -> bool,
) {
    let index = match providers.iter().position(|p| p.name == want.name) {
        Some(i) => i,
        None => {
            providers.push(ProviderState {
                uuid: format!("made-for-{}", want.name),
                name: want.name.clone(),
                traits: Default::default(),
                inventories: BTreeMap::new(),
                allocations: 0,
                consumers: Vec::new(),
            });
            providers.len() - 1
        }
    };
    let p = &mut providers[index];
    p.traits.retain(|t| !owned(t) || want.traits.contains(t));
    p.traits.extend(want.traits.iter().cloned());
    p.inventories.clone_from(&want.inventories);
}

/// Carries out `plan` on `o`, every program and read-back succeeding.
fn host_apply(o: &mut HostObserved, plan: &HostPlan, owned: &dyn Fn(&str) -> bool) {
    for s in &plan.slots {
        if let Some(w) = &s.withdraw {
            write_provider(&mut o.providers, w, owned);
        }
        let report = match &s.action {
            SlotAction::Program { .. } => {
                let target = s.assignment.bitstream.as_ref().unwrap();
                for result in o.devices.values_mut() {
                    for d in result.as_mut().unwrap().iter_mut() {
                        if d.address != s.assignment.slot.address {
                            continue;
                        }
                        match &s.assignment.slot.region {
                            None => d.loaded = Loaded::Id(target.identity.id),
                            Some(r) => {
                                for region in d.regions.iter_mut().filter(|x| &x.name == r) {
                                    region.loaded = Loaded::Id(target.identity.id);
                                }
                            }
                        }
                    }
                }
                true
            }
            SlotAction::InSync { report } => *report,
            _ => false,
        };
        if report && let Some(want) = &s.on_success {
            write_provider(&mut o.providers, want, owned);
        }
    }
    for r in &plan.removals {
        if r.provider.allocations == 0 {
            o.providers.retain(|p| p.uuid != r.provider.uuid);
        } else if let Some(p) = o.providers.iter_mut().find(|p| p.uuid == r.provider.uuid) {
            for i in p.inventories.values_mut() {
                i.reserved = i.total;
            }
        }
    }
}

fn check_host_plan(o: &HostObserved, plan: &HostPlan) -> Result<(), String> {
    for s in &plan.slots {
        let writes = s.withdraw.is_some()
            || matches!(
                s.action,
                SlotAction::Program { .. } | SlotAction::InSync { report: true }
            );
        if writes
            && let Some(p) = &s.provider
            && !p.traits.contains(OWNER_TRAIT)
        {
            return Err(format!(
                "slot {} writes provider {} without fpga-sync's mark: {s:#?}",
                s.assignment.slot, p.name
            ));
        }
        if let SlotAction::Program { forced, .. } = s.action {
            let busy = o
                .devices
                .values()
                .flat_map(|r| r.as_ref().unwrap())
                .any(|d| {
                    d.address == s.assignment.slot.address
                        && match &s.assignment.slot.region {
                            Some(r) => d
                                .regions
                                .iter()
                                .any(|x| &x.name == r && x.busy != Busy::Free),
                            None => d.busy != Busy::Free,
                        }
                });
            let held = s.provider.as_ref().is_some_and(|p| p.allocations > 0);
            if (busy || held) && !(forced && o.force) {
                return Err(format!(
                    "slot {} is programmed while in use, unforced: {s:#?}",
                    s.assignment.slot
                ));
            }
        }
    }
    for r in &plan.removals {
        if !r.provider.traits.contains(OWNER_TRAIT) {
            return Err(format!(
                "removes provider {} without fpga-sync's mark",
                r.provider.name
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_host_plan_is_deterministic_converges_and_touches_only_what_fpga_sync_owns(w in host_world()) {
        thread_local! {
            static BASE: HostBase = host_base();
        }
        BASE.with(|base| host_case(base, &w))?;
    }
}

fn host_case(base: &HostBase, w: &HostWorld) -> Result<(), TestCaseError> {
    {
        let o = host_observation(base, w);
        let (plan, problems) = host_observed::plan(&base.loaded.desired, &base.targets, &o);
        let (again, _) = host_observed::plan(&base.loaded.desired, &base.targets, &o);
        prop_assert_eq!(&plan, &again, "not deterministic");
        check_host_plan(&o, &plan).map_err(TestCaseError::fail)?;
        let named = host_provider::named_traits(&base.loaded.desired);
        let owned = host_provider::owned_traits(&named);
        let mut after = o.clone();
        host_apply(&mut after, &plan, &owned);
        let (next, _) = host_observed::plan(&base.loaded.desired, &base.targets, &after);
        prop_assert!(
            !next.has_changes(),
            "does not converge ({problems:?}): after\n{}\nthe next plan is\n{}\n{w:#?}",
            fpga_sync::host::plan::render::human(&plan, &[], "plan"),
            fpga_sync::host::plan::render::human(&next, &[], "next")
        );
    }
    Ok(())
}
