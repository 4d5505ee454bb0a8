//! The example site repository: it validates, and its bitstream files carry headers whose
//! ids agree with their metadata (GBS `interface-uuid` = `region_uuid`,
//! `accelerator-type-uuid` = `function_uuid`).

use fpga_sync::source;

use crate::support::{examples_dir, fpga_sync};

fn load_examples() -> fpga_sync::desired::Desired {
    let mut spec = crate::support::Site::new().spec();
    spec.repo = examples_dir().to_string_lossy().into_owned();
    spec.worktree = true;
    let outcome = fpga_sync::reconcile::check(&source::read(&spec).unwrap());
    let findings = crate::support::findings(&outcome);
    outcome.desired.unwrap_or_else(|| panic!("{findings:#?}"))
}

#[test]
fn examples_validate() {
    let desired = load_examples();
    assert!(desired.bitstreams.len() >= 3);
    let aes = desired
        .bitstreams
        .values()
        .find(|b| b.spec.metadata.topology.is_some())
        .expect("a bitstream with a topology");
    let topology = aes.spec.metadata.topology.as_ref().unwrap();
    assert_eq!((topology.pf_num, topology.vf_num), (2, 2));
    let out = fpga_sync(
        &["validate", "--worktree", "--repo", "examples"],
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gbs_headers_agree_with_the_metadata() {
    let desired = load_examples();
    let mut checked = 0;
    for b in desired
        .bitstreams
        .values()
        .filter(|b| b.spec.file.as_deref().is_some_and(|f| f.ends_with(".gbs")))
    {
        let bytes = std::fs::read(examples_dir().join(b.spec.file.as_ref().unwrap())).unwrap();
        assert_eq!(
            &bytes[..16],
            b"XeonFPGA\xb7GBSv001",
            "{}: GBS GUID",
            b.spec.name
        );
        let len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
        let meta: serde_json::Value =
            serde_json::from_slice(&bytes[20..20 + len]).expect("GBS JSON metadata");
        let afu = &meta["afu-image"];
        assert_eq!(afu["magic-no"], 488_605_312);
        let interface = afu["interface-uuid"].as_str().unwrap().to_ascii_lowercase();
        assert_eq!(
            Some(interface),
            b.spec.metadata.region_uuid.map(|u| u.to_string()),
            "{}",
            b.spec.name
        );
        let function = afu["accelerator-clusters"][0]["accelerator-type-uuid"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase();
        assert_eq!(
            function,
            b.spec.metadata.function_uuid.to_string(),
            "{}",
            b.spec.name
        );
        checked += 1;
    }
    assert!(checked >= 1, "the examples hold GBS files");
}

/// Every `fpga_sync_*` series the dashboard and the alert rules use is one the agent
/// serves, and both files parse.
#[test]
fn the_dashboard_and_alert_rules_use_the_metrics_the_agent_serves() {
    use fpga_sync::reconcile::watch::Metrics;
    let metrics = Metrics::new(std::time::Duration::from_secs(60));
    let group = std::collections::BTreeSet::from(["g".to_owned()]);
    metrics.record_rollouts(1, &group, &group);
    let served = metrics.encode();
    let dir = examples_dir().join("monitoring");
    let dashboard = std::fs::read_to_string(dir.join("grafana-dashboard.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 8));
    let alerts = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();
    let (docs, errors) = fpga_sync::yaml::load_documents(
        &fpga_sync::text::SourceText::new("alerts.yml", alerts.as_str()),
        fpga_sync::yaml::Limits::default(),
    );
    assert!(
        errors.is_empty() && docs.len() == 1,
        "alerts.yml: {errors:?}"
    );
    let (rules, _) = fpga_sync::yaml::to_json(&docs[0]);
    let rules = &rules["groups"][0]["rules"];
    for alert in [
        "FpgaSyncSlotFailed",
        "FpgaSyncHostBehindHead",
        "FpgaSyncRolloutHalted",
    ] {
        assert!(
            rules
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["alert"] == alert && r["expr"].is_string()),
            "{alert} in {rules}"
        );
    }
    for (file, text) in [
        ("grafana-dashboard.json", &dashboard),
        ("alerts.yml", &alerts),
    ] {
        let mut used = Vec::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("fpga_sync_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            used.push(name);
        }
        assert!(!used.is_empty(), "{file}");
        for name in used {
            assert!(
                served
                    .lines()
                    .any(|l| l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name} "))),
                "{file} uses `{name}`, which the agent does not serve:\n{served}"
            );
        }
    }
}
