//! Checks that need more than one field or more than one document: unique names and
//! `bs-uuid`s, references that must resolve (shells, traits, resource classes,
//! bitstreams), bitstream property rules, topology consistency, flavor extra specs, and
//! host group rules (device selectors, partial bitstreams and their shells, overrides,
//! two groups assigning one device, rollouts). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use globset::{Glob, GlobMatcher};

use super::bitstream::{
    Bitstream, GLANCE_RESERVED_PROPERTIES, MAX_IMAGE_PROPERTIES, MAX_IMAGE_TAGS,
    MAX_PROPERTY_VALUE_BYTES, METADATA_KEYS, OWNER_PROPERTY_COUNT, OWNER_PROPERTY_PREFIX,
};
use super::document::{Declared, DocContext};
use super::extra_specs;
use super::host_group::{
    Amount, Backend, Canary, DeviceAssignment, DeviceKey, HostGroup, Policy, Rollout, is_pattern,
    percent, resolve_for_host,
};
use super::kind::Kind;
use super::parse::{Broken, Documents};
use super::placement_name::{STANDARD_RESOURCE_CLASSES, is_standard_trait};
use super::suggest::closest;
use crate::diagnostic::Diagnostic;

/// Every cross-field and cross-document problem.
pub fn check(docs: &Documents, broken: &Broken) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    unique(
        &docs.bitstreams,
        |b| b.name.clone(),
        "/name",
        "bitstream",
        &mut out,
    );
    unique(
        &docs.bitstreams,
        |b| b.metadata.bs_uuid.to_string(),
        "/metadata/bs-uuid",
        "bs-uuid",
        &mut out,
    );
    unique(&docs.traits, |t| t.name.clone(), "/name", "trait", &mut out);
    unique(
        &docs.resource_classes,
        |r| r.name.clone(),
        "/name",
        "resource class",
        &mut out,
    );
    unique(
        &docs.flavors,
        |f| f.name.clone(),
        "/name",
        "flavor",
        &mut out,
    );
    unique(
        &docs.host_groups,
        |g| g.name.clone(),
        "/name",
        "host group",
        &mut out,
    );
    let names = Names::of(docs, broken);
    for b in &docs.bitstreams {
        check_bitstream(b, &names, &mut out);
    }
    for f in &docs.flavors {
        let read = extra_specs::read(&f.spec.extra_specs);
        for p in &read.problems {
            let pointer = format!("/extra_specs/{}", crate::yaml::escape(&p.key));
            let ctx = &f.context;
            let d = if p.in_value {
                ctx.error_at(&pointer, "fpga_sync::extra_spec", p.message.clone())
            } else {
                ctx.error_at_key(&pointer, "fpga_sync::extra_spec", p.message.clone())
            };
            out.push(d.help(p.help.clone()));
        }
        for (key, name) in &read.traits {
            names.check_trait(
                &f.context,
                &format!("/extra_specs/{}", crate::yaml::escape(key)),
                name,
                true,
                &mut out,
            );
        }
        for (key, name) in &read.resource_classes {
            names.check_resource_class(
                &f.context,
                &format!("/extra_specs/{}", crate::yaml::escape(key)),
                name,
                true,
                &mut out,
            );
        }
    }
    for g in &docs.host_groups {
        check_host_group(g, &names, &mut out);
    }
    check_device_conflicts(&docs.host_groups, &mut out);
    out
}

/// Reports every value of `key` seen twice among `items`, at the second, with the first.
fn unique<T>(
    items: &[Declared<T>],
    key: impl Fn(&T) -> String,
    pointer: &str,
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen: BTreeMap<String, &DocContext> = BTreeMap::new();
    for item in items {
        let k = key(&item.spec);
        match seen.get(&k) {
            Some(first) => out.push(
                item.context
                    .error_at(
                        pointer,
                        "fpga_sync::duplicate",
                        format!("{what} `{k}` is declared twice"),
                    )
                    .label("declared again here")
                    .help(format!(
                        "each {what} is declared once; remove or rename one of them"
                    ))
                    .related(&first.source, first.span(pointer), "first declared here"),
            ),
            None => {
                seen.insert(k, &item.context);
            }
        }
    }
}

/// The names declared in the repository, for resolving references.
struct Names<'a> {
    broken: &'a Broken,
    bitstreams: BTreeMap<&'a str, &'a Bitstream>,
    shells_by_uuid: BTreeMap<String, &'a Bitstream>,
    traits: BTreeSet<&'a str>,
    resource_classes: BTreeSet<&'a str>,
}

impl<'a> Names<'a> {
    fn of(docs: &'a Documents, broken: &'a Broken) -> Self {
        Names {
            broken,
            bitstreams: docs
                .bitstreams
                .iter()
                .map(|b| (b.spec.name.as_str(), &b.spec))
                .collect(),
            shells_by_uuid: docs
                .bitstreams
                .iter()
                .filter(|b| b.spec.is_shell())
                .map(|b| (b.spec.metadata.bs_uuid.to_string(), &b.spec))
                .collect(),
            traits: docs.traits.iter().map(|t| t.spec.name.as_str()).collect(),
            resource_classes: docs
                .resource_classes
                .iter()
                .map(|r| r.spec.name.as_str())
                .collect(),
        }
    }

    fn check_trait(
        &self,
        ctx: &DocContext,
        pointer: &str,
        name: &str,
        at_key: bool,
        out: &mut Vec<Diagnostic>,
    ) {
        if self.traits.contains(name)
            || is_standard_trait(name)
            || self.broken.has(Kind::Trait, name)
        {
            return;
        }
        let message = if name.starts_with("CUSTOM_") {
            format!("trait `{name}` is not declared in the repository")
        } else {
            format!("trait `{name}` is neither a custom trait nor a standard one")
        };
        let help = match closest(name, self.traits.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if name.starts_with("CUSTOM_") => format!(
                "declare it:\n  apiVersion: fpga-sync/v1\n  kind: Trait\n  name: {name}"
            ),
            None => "custom traits start with `CUSTOM_`; standard ones come from os-traits (`HW_`, `COMPUTE_`, ...)".to_owned(),
        };
        out.push(unresolved(ctx, pointer, at_key, message, help));
    }

    fn check_resource_class(
        &self,
        ctx: &DocContext,
        pointer: &str,
        name: &str,
        at_key: bool,
        out: &mut Vec<Diagnostic>,
    ) {
        if self.resource_classes.contains(name)
            || STANDARD_RESOURCE_CLASSES.contains(&name)
            || self.broken.has(Kind::ResourceClass, name)
        {
            return;
        }
        let message = if name.starts_with("CUSTOM_") {
            format!("resource class `{name}` is not declared in the repository")
        } else {
            format!("resource class `{name}` is neither a custom one nor a standard one")
        };
        let candidates = self
            .resource_classes
            .iter()
            .copied()
            .chain(STANDARD_RESOURCE_CLASSES);
        let help = match closest(name, candidates) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "declare it:\n  apiVersion: fpga-sync/v1\n  kind: ResourceClass\n  name: {name}"
            ),
        };
        out.push(unresolved(ctx, pointer, at_key, message, help));
    }

    fn check_bitstream_ref(
        &self,
        ctx: &DocContext,
        pointer: &str,
        name: &str,
        out: &mut Vec<Diagnostic>,
    ) -> Option<&'a Bitstream> {
        if let Some(b) = self.bitstreams.get(name) {
            return Some(b);
        }
        if self.broken.has(Kind::Bitstream, name) {
            return None;
        }
        // A bitstream is named by its document's `name`, not its metadata's `bs-name`.
        let by_bs_name: Vec<&str> = self
            .bitstreams
            .iter()
            .filter(|(_, b)| b.metadata.bs_name == name)
            .map(|(n, _)| *n)
            .collect();
        let help = match (
            by_bs_name.as_slice(),
            closest(name, self.bitstreams.keys().copied()),
        ) {
            ([one], _) => format!(
                "did you mean `{one}`? `{name}` is its `bs-name`; host groups name a Bitstream by its `name`"
            ),
            ([_, ..], _) => format!(
                "did you mean one of {}? `{name}` is their `bs-name`; host groups name a Bitstream by its `name`",
                by_bs_name
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ([], Some(s)) => format!("did you mean `{s}`?"),
            ([], None) => "name a `Bitstream` document of the repository by its `name`".to_owned(),
        };
        out.push(
            ctx.error_at(
                pointer,
                "fpga_sync::unresolved",
                format!("bitstream `{name}` is not declared in the repository"),
            )
            .help(help),
        );
        None
    }
}

/// A reference that resolves to nothing, underlined at the key (an extra spec names it
/// there) or at the value.
fn unresolved(
    ctx: &DocContext,
    pointer: &str,
    at_key: bool,
    message: String,
    help: String,
) -> Diagnostic {
    let d = if at_key {
        ctx.error_at_key(pointer, "fpga_sync::unresolved", message)
    } else {
        ctx.error_at(pointer, "fpga_sync::unresolved", message)
    };
    d.help(help)
}

fn check_bitstream(b: &Declared<Bitstream>, names: &Names<'_>, out: &mut Vec<Diagnostic>) {
    let (spec, ctx) = (&b.spec, &b.context);
    match (&spec.file, &spec.url) {
        (None, None) => out.push(
            ctx.error_at_key("/name", "fpga_sync::missing_field", format!("bitstream `{}` has neither `file` nor `url`", spec.name))
                .help("add `file: path/in/repo.gbs`, or `url: https://...` with `sha256:`"),
        ),
        (Some(_), Some(_)) => out.push(
            ctx.error_at_key("/url", "fpga_sync::conflicting_fields", "a bitstream has `file` or `url`, not both")
                .help("keep `file` for a bitstream in the repo, or `url` (with `sha256`) for one kept elsewhere"),
        ),
        (None, Some(_)) if spec.sha256.is_none() => out.push(
            ctx.error_at_key("/url", "fpga_sync::missing_field", "a bitstream fetched from `url` needs `sha256`")
                .help("pin the content: add `sha256:` with the 64 hex digits `sha256sum FILE` prints"),
        ),
        _ => {}
    }
    for (key, value) in &spec.properties {
        let pointer = format!("/properties/{}", crate::yaml::escape(key));
        // Glance refuses property names over 255 characters; values have no API limit, but
        // a MySQL-backed Glance stores them as TEXT (65,535 bytes).
        let problem = if key.chars().count() > 255 {
            Some("its name is longer than the 255 characters Glance accepts")
        } else if value.len() > MAX_PROPERTY_VALUE_BYTES {
            Some("its value is longer than the 65,535 bytes Glance's database keeps")
        } else {
            None
        };
        if let Some(problem) = problem {
            let shown: String = key.chars().take(40).collect();
            out.push(
                ctx.error_at_key(
                    &pointer,
                    "fpga_sync::too_long",
                    format!("property `{shown}` cannot be stored: {problem}"),
                )
                .help("shorten it; long data belongs in the bitstream file"),
            );
        }
        let why = if METADATA_KEYS.contains(&key.as_str()) {
            Some(format!("`{key}` is bitstream metadata"))
        } else if GLANCE_RESERVED_PROPERTIES.contains(&key.as_str()) || key.starts_with("os_") {
            Some(format!("`{key}` belongs to Glance"))
        } else if key.starts_with(OWNER_PROPERTY_PREFIX) {
            Some(format!(
                "`{OWNER_PROPERTY_PREFIX}*` properties are fpga-sync's ownership markers"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            let help = if METADATA_KEYS.contains(&key.as_str()) {
                format!("move it under `metadata:` as `{key}`")
            } else {
                "choose another property name".to_owned()
            };
            out.push(
                ctx.error_at_key(
                    &pointer,
                    "fpga_sync::reserved_property",
                    format!("property `{key}` cannot be set here: {why}"),
                )
                .help(help),
            );
        }
    }
    let properties =
        spec.metadata_properties().len() + spec.properties.len() + OWNER_PROPERTY_COUNT;
    if properties > MAX_IMAGE_PROPERTIES {
        out.push(
            ctx.error_at_key("/properties", "fpga_sync::too_many", format!("the image would carry {properties} properties, more than the {MAX_IMAGE_PROPERTIES} Glance allows"))
                .help(format!("the metadata and fpga-sync's {OWNER_PROPERTY_COUNT} ownership markers count too; drop some `properties`")),
        );
    }
    if spec.image_tags().len() > MAX_IMAGE_TAGS {
        out.push(
            ctx.error_at_key(
                "/tags",
                "fpga_sync::too_many",
                format!(
                    "the image would carry {} tags, more than the {MAX_IMAGE_TAGS} Glance allows",
                    spec.image_tags().len()
                ),
            )
            .help("`FPGA` counts too; drop some tags"),
        );
    }
    if let Some(topology) = &spec.metadata.topology {
        for p in topology.problems() {
            out.push(
                ctx.error_at(
                    &format!("/metadata/topology{}", p.pointer),
                    "fpga_sync::topology",
                    p.message,
                )
                .help(p.help),
            );
        }
    }
    if let Some(shell_id) = spec.metadata.shell_id {
        let shell_id = shell_id.to_string();
        if shell_id == spec.metadata.bs_uuid.to_string() {
            out.push(
                ctx.error_at(
                    "/metadata/shell_id",
                    "fpga_sync::unresolved",
                    "`shell_id` names this bitstream itself",
                )
                .help("a shell has no `shell_id`; a partial bitstream names its shell's `bs-uuid`"),
            );
        } else if !names.shells_by_uuid.contains_key(&shell_id)
            && !names.broken.bs_uuids.contains(&shell_id)
            && !names.broken.unknown_bs_uuid
        {
            let partial = names
                .bitstreams
                .values()
                .find(|o| o.metadata.bs_uuid.to_string() == shell_id);
            let message = match partial {
                Some(o) => format!(
                    "`shell_id` names `{}`, which is itself a partial bitstream, not a shell",
                    o.name
                ),
                None => format!("`shell_id` {shell_id} names no shell bitstream of the repository"),
            };
            let shells: Vec<String> = names
                .shells_by_uuid
                .iter()
                .map(|(u, b)| format!("`{u}` ({})", b.name))
                .collect();
            let help = if shells.is_empty() {
                "declare the shell as a Bitstream without `shell_id`, and put its `bs-uuid` here"
                    .to_owned()
            } else {
                format!("the shells declared are: {}", shells.join(", "))
            };
            out.push(
                ctx.error_at("/metadata/shell_id", "fpga_sync::unresolved", message)
                    .help(help),
            );
        }
    }
}

fn check_host_group(g: &Declared<HostGroup>, names: &Names<'_>, out: &mut Vec<Diagnostic>) {
    let (spec, ctx) = (&g.spec, &g.context);
    for (i, host) in spec.hosts.iter().enumerate() {
        if let Some(Err(e)) = is_pattern(host).then(|| Glob::new(host)) {
            out.push(
                ctx.error_at(
                    &format!("/hosts/{i}"),
                    "fpga_sync::host_pattern",
                    format!("`{host}` is not a valid host pattern: {}", e.kind()),
                )
                .help("patterns use `*`, `?`, `[a-z]` and `{a,b}`, e.g. `compute-*.rack-a`"),
            );
        }
    }
    check_devices(ctx, "/devices", &spec.devices, &spec.devices, names, out);
    let uses_exec = std::iter::once((String::from("/backend"), Some(spec.backend)))
        .chain(
            spec.overrides
                .iter()
                .enumerate()
                .map(|(i, o)| (format!("/overrides/{i}/backend"), o.backend)),
        )
        .find(|(_, b)| *b == Some(Backend::Exec));
    if let (Some((pointer, _)), None) = (uses_exec, &spec.exec) {
        out.push(
            ctx.error_at(&pointer, "fpga_sync::missing_field", "the `exec` backend needs an `exec:` section with its commands")
                .help("add `exec: {discover: [...], program: [...], read_back: [...]}` to the group (see docs/format.md)"),
        );
    }
    let group_hosts = HostMatcher::new(&spec.hosts);
    if let Some(r) = &spec.rollout {
        check_rollout(ctx, "/rollout", r, &group_hosts, out);
    }
    for (i, o) in spec.overrides.iter().enumerate() {
        if let Some(r) = &o.rollout {
            check_rollout(
                ctx,
                &format!("/overrides/{i}/rollout"),
                r,
                &HostMatcher::new(&o.hosts),
                out,
            );
        }
        for (j, host) in o.hosts.iter().enumerate() {
            if !is_pattern(host) && !group_hosts.covers(host) {
                out.push(
                    ctx.error_at(&format!("/overrides/{i}/hosts/{j}"), "fpga_sync::override_host", format!("override names host `{host}`, which the group's `hosts` do not include"))
                        .help("add the host to the group's `hosts`, or move the override to the group that holds it"),
                );
            }
        }
        // An override's entries are checked together with the group's, as a host sees them.
        let mut merged = spec.devices.clone();
        for d in &o.devices {
            match merged.iter_mut().find(|m| m.key() == d.key()) {
                Some(m) => *m = d.clone(),
                None => merged.push(d.clone()),
            }
        }
        check_devices(
            ctx,
            &format!("/overrides/{i}/devices"),
            &o.devices,
            &merged,
            names,
            out,
        );
    }
}

/// A `rollout:` (at `base`): a share between 1% and 100%, canaries named exactly among
/// the hosts it covers.
fn check_rollout(
    ctx: &DocContext,
    base: &str,
    rollout: &Rollout,
    hosts: &HostMatcher,
    out: &mut Vec<Diagnostic>,
) {
    if let Some(Amount::Percent(p)) = &rollout.max_unavailable
        && !percent(p).is_some_and(|n| (1..=100).contains(&n))
    {
        out.push(
            ctx.error_at(
                &format!("{base}/max_unavailable"),
                "fpga_sync::out_of_range",
                format!("`max_unavailable: {p}` is not a share between 1% and 100%"),
            )
            .help("give a percentage from `1%` to `100%` of the hosts, or a count such as `2`"),
        );
    }
    if let Some(Canary::Hosts(names)) = &rollout.canary {
        for (j, name) in names.iter().enumerate() {
            let at = format!("{base}/canary/{j}");
            if is_pattern(name) {
                out.push(
                    ctx.error_at(&at, "fpga_sync::canary_pattern", format!("canary `{name}` is a pattern; canaries are named hosts"))
                        .help("list the canary hosts by name, or give a count (`canary: 2` takes the first hosts in name order)"),
                );
            } else if !hosts.covers(name) {
                out.push(
                    ctx.error_at(&at, "fpga_sync::canary_host", format!("canary `{name}` is not one of the hosts this rollout covers"))
                        .help("name a host of the group's `hosts` (or of the override's, for an override's rollout)"),
                );
            }
        }
    }
}

/// Checks `entries` (at `base`), knowing `all` the entries a host would see with them.
fn check_devices(
    ctx: &DocContext,
    base: &str,
    entries: &[DeviceAssignment],
    all: &[DeviceAssignment],
    names: &Names<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen: BTreeMap<DeviceKey, usize> = BTreeMap::new();
    for (i, d) in entries.iter().enumerate() {
        let at = |field: &str| format!("{base}/{i}{field}");
        match (&d.address, &d.pci_id, &d.manager) {
            (None, None, None) => {
                out.push(
                    ctx.error_at(&at(""), "fpga_sync::missing_field", "a device entry needs `address`, `pci_id` or `manager`")
                        .help("add `address: \"0000:5e:00.0\"` for one device, `pci_id: \"8086:09c4\"` for every device of that kind, or `manager: fpga0` for an FPGA without a PCI device")
                );
                continue;
            }
            (Some(_), Some(_), _) => {
                out.push(
                    ctx.error_at_key(
                        &at("/pci_id"),
                        "fpga_sync::conflicting_fields",
                        "a device entry has one of `address`, `pci_id` and `manager`, not several",
                    )
                    .help(
                        "keep `address` for one device, or `pci_id` for every device of that kind",
                    ),
                );
                continue;
            }
            (Some(_), None, Some(_)) | (None, Some(_), Some(_)) => {
                out.push(
                    ctx.error_at_key(
                        &at("/manager"),
                        "fpga_sync::conflicting_fields",
                        "a device entry has one of `address`, `pci_id` and `manager`, not several",
                    )
                    .help(
                        "`manager` names an FPGA that has no PCI device (a SoC's); keep `address` or `pci_id` for a PCI card",
                    ),
                );
                continue;
            }
            _ => {}
        }
        if d.manager.is_some() && d.region.is_some() {
            out.push(
                ctx.error_at_key(
                    &at("/region"),
                    "fpga_sync::conflicting_fields",
                    "an FPGA manager has no regions: it loads the whole device",
                )
                .help("remove `region`; a partial bitstream on a manager is loaded with its `flags` set to partial reconfiguration"),
            );
            continue;
        }
        if let Some(first) = seen.insert(d.key(), i) {
            out.push(
                ctx.error_at(
                    &at(""),
                    "fpga_sync::duplicate",
                    "this device and region are assigned twice in the same list",
                )
                .help("merge the two entries")
                .related(
                    &ctx.source,
                    ctx.span(&format!("{base}/{first}")),
                    "first assigned here",
                ),
            );
        }
        match (d.policy, &d.bitstream) {
            (Policy::Managed, None) => out.push(
                ctx.error_at(&at(""), "fpga_sync::missing_field", "a managed device needs `bitstream`")
                    .help("name the Bitstream it carries, or set `policy: manual` to leave the device alone"),
            ),
            (Policy::Manual, Some(_)) => {
                out.push(
                    ctx.error_at_key(&at("/bitstream"), "fpga_sync::conflicting_fields", "a manual device has no assigned bitstream: fpga-sync leaves it alone")
                        .help("remove `bitstream`, or set `policy: managed`"),
                );
                continue;
            }
            _ => {}
        }
        if let Some(rc) = &d.resource_class {
            names.check_resource_class(ctx, &at("/resource_class"), rc, false, out);
        }
        for (j, t) in d.traits.iter().enumerate() {
            names.check_trait(ctx, &at(&format!("/traits/{j}")), t, false, out);
        }
        let pinned_shell = d
            .shell
            .as_deref()
            .and_then(|s| names.check_bitstream_ref(ctx, &at("/shell"), s, out));
        if let Some(shell) = pinned_shell.filter(|s| !s.is_shell()) {
            out.push(
                ctx.error_at(
                    &at("/shell"),
                    "fpga_sync::not_a_shell",
                    format!("`{}` is a partial bitstream, not a shell", shell.name),
                )
                .help("`shell` names a Bitstream without `shell_id`"),
            );
        }
        let Some(bitstream) = d
            .bitstream
            .as_deref()
            .and_then(|b| names.check_bitstream_ref(ctx, &at("/bitstream"), b, out))
        else {
            continue;
        };
        if bitstream.is_shell() {
            if d.region.is_some() {
                out.push(
                    ctx.error_at_key(
                        &at("/region"),
                        "fpga_sync::shell_in_region",
                        format!(
                            "`{}` is a shell; a shell loads on the whole device, not a region",
                            bitstream.name
                        ),
                    )
                    .help("remove `region`, or assign a partial bitstream to the region"),
                );
            }
            if d.shell.is_some() {
                out.push(
                    ctx.error_at_key(
                        &at("/shell"),
                        "fpga_sync::conflicting_fields",
                        "a shell bitstream does not sit on another shell",
                    )
                    .help("remove `shell`"),
                );
            }
            continue;
        }
        let needed = bitstream
            .metadata
            .shell_id
            .map(|u| u.to_string())
            .unwrap_or_default();
        let needed_name = names
            .shells_by_uuid
            .get(&needed)
            .map_or_else(|| needed.clone(), |s| s.name.clone());
        let device_shell = all
            .iter()
            .find(|o| {
                o.region.is_none()
                    && o.key().selector == d.key().selector
                    && o.bitstream
                        .as_deref()
                        .is_some_and(|b| names.bitstreams.get(b).is_some_and(|b| b.is_shell()))
            })
            .and_then(|o| o.bitstream.as_deref())
            .and_then(|b| names.bitstreams.get(b).copied());
        let shell = pinned_shell.or(device_shell);
        // A shell named by a document that failed to read is that document's error.
        let names_broken_shell = names.broken.bs_uuids.contains(&needed)
            || names.broken.unknown_bs_uuid
            || d.shell
                .as_deref()
                .is_some_and(|s| names.broken.has(Kind::Bitstream, s))
            || all.iter().any(|o| {
                o.region.is_none()
                    && o.key().selector == d.key().selector
                    && o.bitstream
                        .as_deref()
                        .is_some_and(|b| names.broken.has(Kind::Bitstream, b))
            });
        match shell {
            None if names_broken_shell => {}
            None => out.push(
                ctx.error_at(&at("/bitstream"), "fpga_sync::shell_required", format!("partial bitstream `{}` needs shell `{needed_name}` on this device, and nothing assigns or pins it", bitstream.name))
                    .help(format!("add `shell: {needed_name}` to this entry, or an entry for the whole device with `bitstream: {needed_name}`")),
            ),
            Some(s) if s.metadata.bs_uuid.to_string() != needed => out.push(
                ctx.error_at(&at(if pinned_shell.is_some() { "/shell" } else { "/bitstream" }), "fpga_sync::shell_mismatch", format!("partial bitstream `{}` needs shell `{needed_name}`, but the device carries `{}`", bitstream.name, s.name))
                    .help(format!("use `{needed_name}` as the shell, or assign a partial bitstream built for `{}`", s.name)),
            ),
            Some(_) => {}
        }
    }
}

/// Tells whether a `hosts` list covers a host: by name, or by one of its patterns.
struct HostMatcher {
    names: BTreeSet<String>,
    patterns: Vec<GlobMatcher>,
}

impl HostMatcher {
    fn new(hosts: &[String]) -> Self {
        HostMatcher {
            names: hosts.iter().filter(|h| !is_pattern(h)).cloned().collect(),
            patterns: hosts
                .iter()
                .filter(|h| is_pattern(h))
                .filter_map(|h| Glob::new(h).ok())
                .map(|g| g.compile_matcher())
                .collect(),
        }
    }

    fn covers(&self, host: &str) -> bool {
        self.names.contains(host) || self.patterns.iter().any(|p| p.is_match(host))
    }
}

/// Whether a `hosts` entry (name or pattern) covers `host`.
pub fn host_entry_matches(entry: &str, host: &str) -> bool {
    if is_pattern(entry) {
        Glob::new(entry).is_ok_and(|g| g.compile_matcher().is_match(host))
    } else {
        entry == host
    }
}

/// Two groups that assign the same device and region of a host that one of them names.
/// Hosts known only by pattern in both groups are checked when the plan meets real hosts.
fn check_device_conflicts(groups: &[Declared<HostGroup>], out: &mut Vec<Diagnostic>) {
    let matchers: Vec<HostMatcher> = groups
        .iter()
        .map(|g| HostMatcher::new(&g.spec.hosts))
        .collect();
    let hosts: BTreeSet<&str> = matchers
        .iter()
        .flat_map(|m| m.names.iter().map(String::as_str))
        .collect();
    let mut reported = BTreeSet::new();
    for host in hosts {
        let mut owner: BTreeMap<DeviceKey, usize> = BTreeMap::new();
        for (gi, group) in groups
            .iter()
            .enumerate()
            .filter(|(gi, _)| matchers[*gi].covers(host))
        {
            let (_, devices) = resolve_for_host(&group.spec, host, host_entry_matches);
            for d in devices {
                let first = *owner.entry(d.key()).or_insert(gi);
                if first == gi || !reported.insert((first, gi, d.key())) {
                    continue;
                }
                let region = d
                    .region
                    .as_deref()
                    .map(|r| format!(" region {r}"))
                    .unwrap_or_default();
                let (a, b) = (&groups[first], group);
                out.push(
                    b.context
                        .error_at("/name", "fpga_sync::assignment_conflict", format!("host `{host}` device `{}`{region} is assigned by both `{}` and `{}`", d.key().selector, a.spec.name, b.spec.name))
                        .help("a device carries one bitstream: take the host out of one group, or use an override")
                        .related(&a.context.source, a.context.span("/name"), "also assigned by this group"),
                );
            }
        }
    }
}
