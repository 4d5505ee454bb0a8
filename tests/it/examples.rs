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
