//! The documents `import` writes: Bitstreams from images (metadata, topology back to
//! structured YAML, `# TODO`s for what is missing), Traits, ResourceClasses and Flavors. Pure.

use super::*;

pub(super) fn head(kind: Kind, name: &str) -> Vec<(Key, Yaml)> {
    vec![
        (Key::Field("apiVersion"), Yaml::Str(API_VERSION.into())),
        (Key::Field("kind"), Yaml::Str(kind.name().into())),
        (Key::Field("name"), Yaml::Str(name.into())),
    ]
}

/// `bitstreams.yaml` for `images`, with the sha256 of each image's data (by id); also the
/// problems of each image that got TODO comments. Pure.
pub fn bitstreams_file<'a>(
    header: &str,
    images: &'a [SelectedImage],
    sha256: &BTreeMap<String, String>,
) -> (String, Vec<(&'a ObservedImage, Vec<String>)>) {
    let mut docs = Vec::new();
    let mut todos = Vec::new();
    for image in images {
        let digest = sha256.get(image.id.as_str()).map_or("", String::as_str);
        let (doc, issues) = bitstream_doc(image, &image.file, digest);
        if !issues.is_empty() {
            todos.push((&image.image, issues));
        }
        docs.push(doc);
    }
    (render_file(header, &docs, "FPGA-tagged images"), todos)
}

/// The Bitstream document of an image, and what it lacks (each also a `# TODO` comment).
/// Pure.
pub fn bitstream_doc(image: &ObservedImage, file: &str, sha256: &str) -> (Doc, Vec<String>) {
    let name = image.name.clone().unwrap_or_default();
    let mut fields = head(Kind::Bitstream, &name);
    fields.push((Key::Field("file"), Yaml::Str(file.into())));
    fields.push((Key::Field("sha256"), Yaml::Str(sha256.into())));
    let mut issues = Vec::new();
    match image.visibility.as_deref() {
        Some(v @ ("private" | "public" | "shared" | "community")) => {
            fields.push((Key::Field("visibility"), Yaml::Str(v.into())));
        }
        other => issues.push(format!(
            "visibility `{}` is not one fpga-sync knows: set `visibility`",
            other.unwrap_or("none")
        )),
    }
    let tags: Vec<Yaml> = image
        .tags
        .iter()
        .filter(|t| t.as_str() != FPGA_TAG)
        .map(|t| Yaml::Str(t.clone()))
        .collect();
    if !tags.is_empty() {
        fields.push((Key::Field("tags"), Yaml::Seq(tags)));
    }
    fields.push((Key::Field("adopt"), Yaml::Bool(true)));
    let (metadata, metadata_issues) = metadata(&image.properties);
    issues.extend(metadata_issues);
    fields.push((Key::Field("metadata"), Yaml::Map(metadata)));
    let (properties, property_issues) = other_properties(&image.properties);
    issues.extend(property_issues);
    if !properties.is_empty() {
        fields.push((Key::Field("properties"), Yaml::Map(properties)));
    }
    let mut comments = vec![format!("Glance image {}", image.id)];
    if let Some(site) = markers::image_site(&image.properties) {
        comments.push(format!("managed by fpga-sync site `{site}` until now"));
    }
    comments.extend(issues.iter().map(|i| format!("TODO: {i}")));
    (Doc { comments, fields }, issues)
}

/// The spec's metadata keys of an image's properties, in the spec's order, and what is
/// missing or malformed.
pub(super) fn metadata(properties: &BTreeMap<String, String>) -> (Vec<(Key, Yaml)>, Vec<String>) {
    let mut out = Vec::new();
    let missing: Vec<String> = REQUIRED_KEYS
        .iter()
        .filter(|k| !properties.contains_key(**k))
        .map(|k| format!("`{k}`"))
        .collect();
    let mut issues = Vec::new();
    if !missing.is_empty() {
        issues.push(format!(
            "metadata {} missing (the bitstream metadata spec requires it): fill in the real values",
            missing.join(", ")
        ));
    }
    for key in METADATA_KEYS {
        let Some(value) = properties.get(key) else {
            continue;
        };
        if key == "topology" {
            match parse_topology(value) {
                Ok(t) => out.push((Key::Field(key), topology_yaml(&t))),
                Err(why) => {
                    issues.push(format!(
                        "metadata `topology` is not the spec's JSON ({why}): write it as structured YAML"
                    ));
                    out.push((Key::Field(key), Yaml::Str(value.clone())));
                }
            }
            continue;
        }
        if UUID_KEYS.contains(&key) && !is_uuid(value) {
            issues.push(format!("metadata `{key}` is not a uuid"));
        } else if REQUIRED_KEYS.contains(&key) && value.is_empty() {
            issues.push(format!("metadata `{key}` is empty"));
        }
        out.push((Key::Field(key), Yaml::Str(value.clone())));
    }
    (out, issues)
}

/// The properties that are neither metadata nor fpga-sync's marks, and the ones left out
/// because their names are reserved.
pub(super) fn other_properties(
    properties: &BTreeMap<String, String>,
) -> (Vec<(Key, Yaml)>, Vec<String>) {
    let mut out = Vec::new();
    let mut issues = Vec::new();
    for (k, v) in properties {
        // `owner_specified.*` are the checksums openstacksdk's uploads add: Glance's
        // bookkeeping, not the operator's.
        if METADATA_KEYS.contains(&k.as_str())
            || k.starts_with(OWNER_PROPERTY_PREFIX)
            || k.starts_with("owner_specified.")
        {
            continue;
        }
        if k.starts_with("os_") || GLANCE_RESERVED_PROPERTIES.contains(&k.as_str()) {
            issues.push(format!(
                "property `{k}` is not imported (fpga-sync reserves the name); the first apply removes it from the image"
            ));
            continue;
        }
        out.push((Key::Free(k.clone()), Yaml::Str(v.clone())));
    }
    (out, issues)
}

/// Whether `s` is a uuid written 8-4-4-4-12.
pub(super) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The spec's topology JSON (numbers or number strings, as the spec writes them) as a
/// [`Topology`]; unknown keys are refused rather than dropped.
pub(super) fn parse_topology(json: &str) -> Result<Topology, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let obj = object(&value, &["pf_num", "vf_num", "pf"])?;
    Ok(Topology {
        pf_num: whole(obj, "pf_num")?,
        vf_num: whole(obj, "vf_num")?,
        pf: list(obj, "pf")?
            .iter()
            .map(|pf| {
                let o = object(pf, &["name", "capability", "kpi", "pci_offset", "vf"])?;
                Ok(PhysicalFunction {
                    name: text(o, "name", true)?,
                    capability: text(o, "capability", false)?,
                    kpi: text(o, "kpi", false)?,
                    pci_offset: whole(o, "pci_offset")?,
                    vf: list(o, "vf")?
                        .iter()
                        .map(|vf| {
                            let o = object(vf, &["name", "pci_offset"])?;
                            Ok(VirtualFunction {
                                name: text(o, "name", true)?,
                                pci_offset: whole(o, "pci_offset")?,
                            })
                        })
                        .collect::<Result<_, String>>()?,
                })
            })
            .collect::<Result<_, String>>()?,
    })
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

pub(super) fn object<'a>(
    value: &'a serde_json::Value,
    keys: &[&str],
) -> Result<&'a JsonObject, String> {
    let obj = value.as_object().ok_or("an entry is not a JSON object")?;
    match obj.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown key `{k}`")),
        None => Ok(obj),
    }
}

pub(super) fn whole(obj: &JsonObject, key: &str) -> Result<u32, String> {
    let n = match obj.get(key) {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("`{key}` is not a whole number"))
}

pub(super) fn text(obj: &JsonObject, key: &str, required: bool) -> Result<String, String> {
    match obj.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        None | Some(serde_json::Value::Null) if !required => Ok(String::new()),
        _ => Err(format!("`{key}` is not a string")),
    }
}

pub(super) fn list<'a>(obj: &'a JsonObject, key: &str) -> Result<&'a [serde_json::Value], String> {
    match obj.get(key) {
        Some(serde_json::Value::Array(items)) => Ok(items),
        None | Some(serde_json::Value::Null) => Ok(&[]),
        _ => Err(format!("`{key}` is not a list")),
    }
}

pub(super) fn topology_yaml(t: &Topology) -> Yaml {
    let pf =
        t.pf.iter()
            .map(|pf| {
                let mut fields = vec![(Key::Field("name"), Yaml::Str(pf.name.clone()))];
                if !pf.capability.is_empty() {
                    fields.push((Key::Field("capability"), Yaml::Str(pf.capability.clone())));
                }
                if !pf.kpi.is_empty() {
                    fields.push((Key::Field("kpi"), Yaml::Str(pf.kpi.clone())));
                }
                fields.push((Key::Field("pci_offset"), Yaml::Int(pf.pci_offset.into())));
                let vf: Vec<Yaml> = pf
                    .vf
                    .iter()
                    .map(|vf| {
                        Yaml::Map(vec![
                            (Key::Field("name"), Yaml::Str(vf.name.clone())),
                            (Key::Field("pci_offset"), Yaml::Int(vf.pci_offset.into())),
                        ])
                    })
                    .collect();
                if !vf.is_empty() {
                    fields.push((Key::Field("vf"), Yaml::Seq(vf)));
                }
                Yaml::Map(fields)
            })
            .collect();
    Yaml::Map(vec![
        (Key::Field("pf_num"), Yaml::Int(t.pf_num.into())),
        (Key::Field("vf_num"), Yaml::Int(t.vf_num.into())),
        (Key::Field("pf"), Yaml::Seq(pf)),
    ])
}

/// `placement.yaml`: a Trait per custom trait, then a ResourceClass per custom resource
/// class. Pure.
pub fn placement_file(header: &str, selection: &Selection) -> String {
    let docs: Vec<Doc> = selection
        .traits
        .iter()
        .map(|t| (Kind::Trait, t))
        .chain(
            selection
                .resource_classes
                .iter()
                .map(|r| (Kind::ResourceClass, r)),
        )
        .map(|(kind, name)| Doc {
            comments: vec![],
            fields: head(kind, name),
        })
        .collect();
    render_file(header, &docs, "custom traits or resource classes")
}

/// `flavors.yaml`: a Flavor per flavor, with `adopt: true` and its extra specs but
/// fpga-sync's site mark. Pure.
pub fn flavors_file(header: &str, flavors: &[ObservedFlavor]) -> String {
    let docs: Vec<Doc> = flavors.iter().map(flavor_doc).collect();
    render_file(header, &docs, "flavors with FPGA requests")
}

/// The Flavor document of a flavor. Pure.
pub fn flavor_doc(f: &ObservedFlavor) -> Doc {
    let mut fields = head(Kind::Flavor, &f.name);
    for (key, value) in [
        ("vcpus", f.shape.vcpus),
        ("ram", f.shape.ram),
        ("disk", f.shape.disk),
        ("ephemeral", f.shape.ephemeral),
        ("swap", f.shape.swap),
    ] {
        fields.push((Key::Field(key), Yaml::Int(value.into())));
    }
    fields.push((Key::Field("is_public"), Yaml::Bool(f.shape.is_public)));
    if let Some(d) = &f.shape.description {
        fields.push((Key::Field("description"), Yaml::Str(d.clone())));
    }
    fields.push((Key::Field("adopt"), Yaml::Bool(true)));
    let specs: Vec<(Key, Yaml)> = f
        .extra_specs
        .iter()
        .filter(|(k, _)| k.as_str() != FLAVOR_OWNER_SPEC)
        .map(|(k, v)| (Key::Free(k.clone()), spec_value(v)))
        .collect();
    if !specs.is_empty() {
        fields.push((Key::Field("extra_specs"), Yaml::Map(specs)));
    }
    let mut comments = vec![format!("Nova flavor {}", f.id)];
    if let Some(site) = markers::flavor_site(&f.extra_specs) {
        comments.push(format!("managed by fpga-sync site `{site}` until now"));
    }
    Doc { comments, fields }
}

/// An extra spec value: an integer when it is one written canonically (so it reads back
/// as the same text), else a string.
pub(super) fn spec_value(v: &str) -> Yaml {
    match v.parse::<i64>() {
        Ok(n) if n.to_string() == v => Yaml::Int(n),
        _ => Yaml::Str(v.to_owned()),
    }
}
